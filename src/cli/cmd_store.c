/* cryo store init|stat|ls|fsck|gc: the store, by hand. */
#include "cli/store_cmd.h"
#include "cli/json.h"
#include "store/format.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_SIZE	(8ull << 30)
#define DEFAULT_SEG	(8u << 20)	/* what the store picks for 0; said in help */
/* A one-shot command reads few index nodes; the store's default cache is
 * sized for the daemon and costs time to set up (and to tear down). */
#define CLI_CACHE_BYTES	(8ull << 20)

/* ---- shared by every store subcommand ---- */

int store_cmd_parse(struct store_cmd *sc, struct cli *c, const struct cli_cmd *self,
		    int argc, char **argv, const struct option *extra,
		    store_opt_fn on_opt, void *arg, int min_pos, int max_pos)
{
	static const struct option common[] = {
		{ "store", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
	};
	struct option opts[STORE_CMD_OPTS_MAX];
	size_t n = 0;
	int ch;

	memset(sc, 0, sizeof(*sc));
	sc->c = c;
	sc->self = self;
	snprintf(sc->cmdpath, sizeof(sc->cmdpath), "store %s", self->name);
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		opts[n++] = common[i];
	for (; extra && extra->name && n < STORE_CMD_OPTS_MAX - 1; extra++)
		opts[n++] = *extra;
	memset(&opts[n], 0, sizeof(opts[n]));

	opterr = 0;
	optind = 0;
	/* Long options only: short letters would be one more thing to keep
	 * unique across commands that later issues add. */
	while ((ch = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
		int r;

		switch (ch) {
		case 1:	/* a positional argument, in order ("-" above) */
			if (sc->npos >= max_pos || (unsigned)sc->npos >= STORE_CMD_POS_MAX)
				return cli_usage(c, sc->cmdpath, "%s: unexpected argument '%s'",
						 sc->cmdpath, optarg);
			sc->pos[sc->npos++] = optarg;
			continue;
		case 'h':
			cli_print_help(self, stdout);
			return CLI_OK;
		case 's':
			if (!*optarg)
				return cli_usage(c, sc->cmdpath, "%s: --store needs a path", sc->cmdpath);
			sc->path_opt = optarg;
			continue;
		case 'j':
			sc->json = 1;
			continue;
		case '?':
			return cli_usage(c, sc->cmdpath, "%s: unknown option '%s'", sc->cmdpath,
					 argv[optind - 1]);
		case ':':
			return cli_usage(c, sc->cmdpath, "%s: option '%s' needs a value", sc->cmdpath,
					 argv[optind - 1]);
		}
		r = on_opt ? on_opt(sc, arg, ch, optarg) : CLI_USAGE;
		if (r)
			return r;
	}
	/* After "--" getopt stops: the rest are positional, "-x" included. */
	for (; optind < argc; optind++) {
		if (sc->npos >= max_pos || (unsigned)sc->npos >= STORE_CMD_POS_MAX)
			return cli_usage(c, sc->cmdpath, "%s: unexpected argument '%s'",
					 sc->cmdpath, argv[optind]);
		sc->pos[sc->npos++] = argv[optind];
	}
	if (sc->npos < min_pos)
		return cli_usage(c, sc->cmdpath, "%s: missing argument (see usage)", sc->cmdpath);
	sc->path = cli_store_path(sc->path_opt, sc->path_buf, sizeof(sc->path_buf));
	cli_log_hold(c);
	return -1;
}

int store_cmd_open(struct store_cmd *sc, int rw, struct store **out)
{
	struct store_open_opts o = { .read_only = !rw, .cache_bytes = CLI_CACHE_BYTES };
	struct stat st;
	int err;

	if (stat(sc->path, &st)) {
		if (errno == ENOENT)
			return cli_fail(sc->c, "no store at %s (create one with 'cryo store init')",
					sc->path);
		return cli_fail(sc->c, "%s: %s", sc->path, strerror(errno));
	}
	if (S_ISDIR(st.st_mode))
		return cli_fail(sc->c, "%s is a directory, not a store", sc->path);
	err = store_open(sc->path, &o, out);
	if (err)
		return cli_fail_store(sc->c, err, "cannot open store %s", sc->path);
	return CLI_OK;
}

int store_cmd_close(struct store_cmd *sc, struct store *s, int rc)
{
	int err = store_close(s);

	if (err && rc == CLI_OK)
		return cli_fail_store(sc->c, err, "closing store %s", sc->path);
	return rc;
}

int store_cmd_parse_snap(const char *s, uint64_t *out)
{
	if (!strcmp(s, "newest") || !strcmp(s, "latest")) {
		*out = STORE_SNAP_NEWEST;
		return 0;
	}
	if (cli_parse_u64(s, out) || *out == 0 || *out == STORE_SNAP_NEWEST)
		return -EINVAL;
	return 0;
}

/* ---- init ---- */

struct init_args {
	uint64_t size, seg_size;
	enum codec codec;
};

static int init_opt(struct store_cmd *sc, void *arg, int ch, const char *optarg)
{
	struct init_args *a = arg;

	switch (ch) {
	case 'S':
		if (cli_parse_size(optarg, &a->size) || !a->size)
			return cli_usage(sc->c, sc->cmdpath, "--size: not a size: '%s'", optarg);
		return 0;
	case 'G':
		if (cli_parse_size(optarg, &a->seg_size) || a->seg_size % FMT_BLOCK ||
		    a->seg_size < FMT_SEG_MIN || a->seg_size > FMT_SEG_MAX)
			return cli_usage(sc->c, sc->cmdpath,
					 "--segment-size: '%s' is not a multiple of 4K from 256K to 256M",
					 optarg);
		return 0;
	case 'C':
		if (codec_parse(optarg, &a->codec) || a->codec == CODEC_RAW)
			return cli_usage(sc->c, sc->cmdpath, "--codec: '%s' is not lz4 or zstd", optarg);
		return 0;
	}
	return CLI_USAGE;
}

/* mkdir -p, new directories 0700: the store and the socket are root's. */
static int make_home(const char *dir)
{
	char buf[PATH_MAX];
	size_t n = strlen(dir);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || !*p) {
			char keep = *p;

			*p = 0;
			if (mkdir(buf, 0700) && errno != EEXIST)
				return -errno;
			*p = keep;
			if (!keep)
				break;
		}
	}
	return 0;
}

/* An existing file is never overwritten: it may be someone's snapshots. A
 * block device is fine unless it already starts with a cryo superblock. */
static int init_refuse_existing(struct store_cmd *sc)
{
	struct stat st;
	uint64_t magic = 0;
	int fd;

	if (lstat(sc->path, &st)) {
		if (errno == ENOENT)
			return 0;
		return cli_fail(sc->c, "%s: %s", sc->path, strerror(errno));
	}
	if (!S_ISBLK(st.st_mode))
		return cli_fail(sc->c, "%s already exists; cryo never overwrites a store "
				"(remove it first to start over)", sc->path);
	fd = open(sc->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_fail(sc->c, "%s: %s", sc->path, strerror(errno));
	if (pread(fd, &magic, sizeof(magic), 0) == sizeof(magic) && magic == FMT_SB_MAGIC) {
		close(fd);
		return cli_fail(sc->c, "%s already holds a cryo store; cryo never overwrites one",
				sc->path);
	}
	close(fd);
	return 0;
}

static int print_stat(struct store_cmd *sc, struct store *s, int full);

static int run_init(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	static const struct option extra[] = {
		{ "size", required_argument, NULL, 'S' },
		{ "segment-size", required_argument, NULL, 'G' },
		{ "codec", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	struct init_args a = { .size = DEFAULT_SIZE, .codec = CODEC_LZ4 };
	struct store_create_opts o;
	struct store_cmd sc;
	struct store *s;
	uint32_t seg;
	int rc, err;

	rc = store_cmd_parse(&sc, c, self, argc, argv, extra, init_opt, &a, 0, 0);
	if (rc >= 0)
		return rc;
	/* First, so `init` on an existing store says so whatever the options. */
	rc = init_refuse_existing(&sc);
	if (rc)
		return rc;
	seg = a.seg_size ? (uint32_t)a.seg_size : DEFAULT_SEG;
	if (a.size < FMT_SEG_START + (uint64_t)FMT_SEGS_MIN * seg) {
		char need[32], segh[32];
		return cli_usage(c, sc.cmdpath, "--size: too small, a store needs %s for %u segments of %s "
				 "(or give a smaller --segment-size)",
				 cli_human(FMT_SEG_START + (uint64_t)FMT_SEGS_MIN * seg, need, sizeof(need)),
				 FMT_SEGS_MIN, cli_human(seg, segh, sizeof(segh)));
	}
	if (!sc.path_opt) {
		err = make_home(cli_home());
		if (err)
			return cli_fail(c, "cannot create CRYO_HOME %s: %s", cli_home(), strerror(-err));
	}

	o = (struct store_create_opts){ .size = a.size, .seg_size = (uint32_t)a.seg_size,
					.codec = a.codec };
	err = store_create(sc.path, &o);
	if (err)
		return cli_fail_store(c, err, "cannot create store %s", sc.path);
	/* Read back what was made, so the user sees the real geometry. */
	rc = store_cmd_open(&sc, 0, &s);
	if (rc)
		return rc;
	if (!sc.json)
		printf("created store %s\n", sc.path);
	rc = print_stat(&sc, s, 0);
	return store_cmd_close(&sc, s, rc);
}

/* ---- stat ---- */

static int print_stat(struct store_cmd *sc, struct store *s, int full)
{
	struct store_stat st;
	char b1[32], b2[32], b3[32];
	int err;

	err = store_stat(s, &st);
	if (err)
		return cli_fail_store(sc->c, err, "stat of store %s", sc->path);
	if (sc->json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j);
		json_kv_str(&j, "path", sc->path);
		json_kv_u64(&j, "size", st.size);
		json_kv_u64(&j, "seg_size", st.seg_size);
		json_kv_u64(&j, "segs", st.segs);
		json_kv_u64(&j, "segs_free", st.segs_free);
		json_kv_u64(&j, "segs_used", st.segs_used);
		json_kv_u64(&j, "segs_pending", st.segs_pending);
		json_kv_u64(&j, "objects", st.objects);
		json_kv_u64(&j, "snapshots", st.snapshots);
		json_kv_u64(&j, "live_bytes", st.live_bytes);
		json_kv_u64(&j, "lsn", st.lsn);
		json_kv_u64(&j, "ckpt_seq", st.ckpt_seq);
		json_kv_u64(&j, "open_chunks", st.open_chunks);
		json_kv_u64(&j, "bytes_written", st.bytes_written);
		json_kv_u64(&j, "new_bytes", st.new_bytes);
		json_kv_u64(&j, "clean_bytes", st.clean_bytes);
		json_kv_u64(&j, "segs_cleaned", st.segs_cleaned);
		json_kv_str(&j, "codec", codec_name(st.codec));
		json_kv_bool(&j, "poisoned", st.poisoned);
		json_obj_end(&j);
		json_end(&j);
		return CLI_OK;
	}
	printf("size          %s (%" PRIu64 " bytes)\n", cli_human(st.size, b1, sizeof(b1)), st.size);
	printf("segments      %" PRIu64 " of %s: %" PRIu64 " free, %" PRIu64 " used, %" PRIu64
	       " pending\n", st.segs, cli_human(st.seg_size, b1, sizeof(b1)),
	       st.segs_free, st.segs_used, st.segs_pending);
	printf("codec         %s\n", codec_name(st.codec));
	if (!full)
		return CLI_OK;
	printf("objects       %" PRIu64 "\n", st.objects);
	printf("snapshots     %" PRIu64 "\n", st.snapshots);
	printf("live data     %s (%" PRIu64 " bytes)\n", cli_human(st.live_bytes, b1, sizeof(b1)),
	       st.live_bytes);
	printf("log           lsn %" PRIu64 ", checkpoint %" PRIu64 ", %" PRIu64
	       " chunks rolled forward at open\n", st.lsn, st.ckpt_seq, st.open_chunks);
	/* Only gc and demo-write write through their handle; stat never does. */
	if (st.bytes_written || st.segs_cleaned)
		printf("this handle   wrote %s (%s new, %s by the cleaner), %" PRIu64 " segments cleaned\n",
		       cli_human(st.bytes_written, b1, sizeof(b1)),
		       cli_human(st.new_bytes, b2, sizeof(b2)),
		       cli_human(st.clean_bytes, b3, sizeof(b3)), st.segs_cleaned);
	printf("poisoned      %s\n", st.poisoned ? "yes (a write failed; reopen to recover)" : "no");
	return CLI_OK;
}

static int run_stat(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	struct store_cmd sc;
	struct store *s;
	int rc;

	rc = store_cmd_parse(&sc, c, self, argc, argv, NULL, NULL, NULL, 0, 0);
	if (rc >= 0)
		return rc;
	rc = store_cmd_open(&sc, 0, &s);
	if (rc)
		return rc;
	if (!sc.json)
		printf("store         %s\n", sc.path);
	rc = print_stat(&sc, s, 1);
	return store_cmd_close(&sc, s, rc);
}

/* ---- ls ---- */

struct snap_list {
	struct store_snap_info *v;
	size_t n, cap;
};

static int collect(void *arg, const struct store_snap_info *info)
{
	struct snap_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct store_snap_info *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *info;
	return 0;
}

static void print_ls(struct store_cmd *sc, const struct snap_list *l)
{
	int w = (int)strlen("OBJECT");
	char t[32], b[32];

	if (sc->json) {
		struct json j;

		json_init(&j, stdout);
		json_arr_begin(&j);
		for (size_t i = 0; i < l->n; i++) {
			const struct store_snap_info *x = &l->v[i];

			json_obj_begin(&j);
			json_kv_str(&j, "object", x->object);
			json_kv_u64(&j, "object_id", x->object_id);
			json_kv_u64(&j, "snap", x->no);
			json_kv_u64(&j, "parent", x->parent);
			json_kv_u64(&j, "time_ns", x->time_ns);
			json_kv_str(&j, "time", cli_time(x->time_ns, t, sizeof(t)));
			json_kv_u64(&j, "pages", x->pages);
			json_kv_u64(&j, "zero_pages", x->zero_pages);
			json_kv_u64(&j, "records", x->records);
			json_kv_u64(&j, "written", x->written);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_end(&j);
		return;
	}
	for (size_t i = 0; i < l->n; i++)
		if ((int)strlen(l->v[i].object) > w)
			w = (int)strlen(l->v[i].object);
	printf("%-*s %6s %-19s %10s %10s %7s %10s\n", w, "OBJECT", "SNAP", "TIME", "PAGES",
	       "ZERO", "RECORDS", "WRITTEN");
	for (size_t i = 0; i < l->n; i++) {
		const struct store_snap_info *x = &l->v[i];

		printf("%-*s %6" PRIu64 " %-19s %10" PRIu64 " %10" PRIu64 " %7u %10s\n", w,
		       x->object, x->no, cli_time(x->time_ns, t, sizeof(t)), x->pages,
		       x->zero_pages, x->records, cli_human(x->written, b, sizeof(b)));
	}
}

static int run_ls(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	struct snap_list l = { 0 };
	struct store_cmd sc;
	struct store *s;
	int rc, err;

	rc = store_cmd_parse(&sc, c, self, argc, argv, NULL, NULL, NULL, 0, 1);
	if (rc >= 0)
		return rc;
	rc = store_cmd_open(&sc, 0, &s);
	if (rc)
		return rc;
	if (sc.npos)
		err = store_list_object(s, sc.pos[0], collect, &l);
	else
		err = store_list(s, collect, &l);
	if (err == -ENOENT && sc.npos)
		rc = cli_fail(c, "no object '%s' in store %s", sc.pos[0], sc.path);
	else if (err)
		rc = cli_fail_store(c, err, "listing store %s", sc.path);
	else
		print_ls(&sc, &l);
	free(l.v);
	return store_cmd_close(&sc, s, rc);
}

/* ---- fsck ---- */

struct fsck_out {
	struct store_cmd *sc;
	char **lines;
	size_t n, cap;
	int nomem;
};

static void fsck_say(void *arg, const char *line)
{
	struct fsck_out *o = arg;

	if (!o->sc->json) {
		printf("problem: %s\n", line);
		return;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 32;
		char **v = realloc(o->lines, cap * sizeof(*v));

		if (!v) {
			o->nomem = 1;
			return;
		}
		o->lines = v;
		o->cap = cap;
	}
	o->lines[o->n] = strdup(line);
	if (o->lines[o->n])
		o->n++;
	else
		o->nomem = 1;
}

static int run_fsck(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	struct store_fsck_report r = { 0 };
	struct fsck_out out = { 0 };
	struct store_cmd sc;
	struct store *s;
	char b[32];
	int rc, err;

	rc = store_cmd_parse(&sc, c, self, argc, argv, NULL, NULL, NULL, 0, 0);
	if (rc >= 0)
		return rc;
	rc = store_cmd_open(&sc, 0, &s);
	if (rc)
		return rc;
	out.sc = &sc;
	err = store_fsck(s, &r, fsck_say, &out);
	if (err && err != -EUCLEAN) {
		rc = cli_fail_store(c, err, "fsck of store %s", sc.path);
		goto out_free;
	}
	if (sc.json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j);
		json_kv_str(&j, "path", sc.path);
		json_kv_bool(&j, "clean", !err);
		json_kv_u64(&j, "problems", r.problems);
		json_kv_u64(&j, "snapshots", r.snapshots);
		json_kv_u64(&j, "items", r.items);
		json_kv_u64(&j, "bytes", r.bytes);
		json_key(&j, "messages");
		json_arr_begin(&j);
		for (size_t i = 0; i < out.n; i++)
			json_str(&j, out.lines[i]);
		json_arr_end(&j);
		json_kv_bool(&j, "messages_truncated", out.nomem);
		json_obj_end(&j);
		json_end(&j);
	} else {
		printf("fsck %s: %" PRIu64 " snapshots, %" PRIu64 " items, %s checked: %" PRIu64
		       " problem%s\n", sc.path, r.snapshots, r.items, cli_human(r.bytes, b, sizeof(b)),
		       r.problems, r.problems == 1 ? "" : "s");
	}
	if (err)
		rc = cli_fail(c, "fsck found %" PRIu64 " problem%s in store %s", r.problems,
			      r.problems == 1 ? "" : "s", sc.path);
out_free:
	for (size_t i = 0; i < out.n; i++)
		free(out.lines[i]);
	free(out.lines);
	return store_cmd_close(&sc, s, rc);
}

/* ---- gc ---- */

static int run_gc(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	struct store_clean_report r = { 0 };
	struct store_stat before, after;
	struct store_open_opts oo = { .no_autoclean = 1, .cache_bytes = CLI_CACHE_BYTES };
	struct store_cmd sc;
	struct store *s;
	char b[32];
	int rc, err;

	rc = store_cmd_parse(&sc, c, self, argc, argv, NULL, NULL, NULL, 0, 0);
	if (rc >= 0)
		return rc;
	/* Open read-only first for the friendly "no store" message, then for
	 * real, without autoclean so the report is this command's work. */
	rc = store_cmd_open(&sc, 0, &s);
	if (rc)
		return rc;
	store_close(s);
	err = store_open(sc.path, &oo, &s);
	if (err)
		return cli_fail_store(c, err, "cannot open store %s", sc.path);
	err = store_stat(s, &before);
	if (!err)
		err = store_clean(s, 0, &r);
	if (!err)
		err = store_checkpoint(s);
	if (!err)
		err = store_stat(s, &after);
	if (err) {
		rc = cli_fail_store(c, err, "gc of store %s", sc.path);
		return store_cmd_close(&sc, s, rc);
	}
	if (sc.json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j);
		json_kv_str(&j, "path", sc.path);
		json_kv_u64(&j, "segs_cleaned", r.segs_cleaned);
		json_kv_u64(&j, "bytes_copied", r.bytes_copied);
		json_kv_u64(&j, "segs_freed", r.segs_freed);
		json_kv_u64(&j, "segs_free_before", before.segs_free);
		json_kv_u64(&j, "segs_free_after", after.segs_free);
		json_kv_u64(&j, "segs_pending_after", after.segs_pending);
		json_obj_end(&j);
		json_end(&j);
	} else {
		printf("gc %s: cleaned %" PRIu64 " segment%s, copied %s of live data forward, freed %"
		       PRIu64 " segment%s\n", sc.path, r.segs_cleaned, r.segs_cleaned == 1 ? "" : "s",
		       cli_human(r.bytes_copied, b, sizeof(b)), r.segs_freed,
		       r.segs_freed == 1 ? "" : "s");
		printf("free segments: %" PRIu64 " before, %" PRIu64 " after (%" PRIu64 " pending)\n",
		       before.segs_free, after.segs_free, after.segs_pending);
	}
	return store_cmd_close(&sc, s, CLI_OK);
}

/* ---- the family ---- */

#define COMMON_OPTS \
	"  --store PATH   the store (default: $CRYO_HOME/store, CRYO_HOME=/var/lib/cryo)\n" \
	"  --json         machine-readable output\n" \
	"  --help         this help\n"

static const struct cli_cmd cmd_init = {
	.name = "init", .run = run_init,
	.summary = "create a new store",
	.usage = "Usage: cryo store init [--size SIZE] [--segment-size SIZE] [--codec lz4|zstd]\n"
		 "                       [--store PATH] [--json]\n"
		 "\n"
		 "Create a new, empty store. An existing store is never overwritten.\n"
		 "Without --store, $CRYO_HOME is created (mode 0700) if missing.\n"
		 "\n"
		 "  --size SIZE           size of the store file, sparse (default 8G);\n"
		 "                        SIZE takes K, M, G, T suffixes (powers of 1024)\n"
		 "  --segment-size SIZE   segment size, 256K..256M (default 8M)\n"
		 "  --codec NAME          page compression: lz4 (default) or zstd\n"
		 COMMON_OPTS,
};

static const struct cli_cmd cmd_stat = {
	.name = "stat", .run = run_stat,
	.summary = "show the store's size, segments and contents",
	.usage = "Usage: cryo store stat [--store PATH] [--json]\n"
		 "\n"
		 "Open the store (recovering it if needed, without writing) and show its\n"
		 "geometry, segment use, objects, snapshots and live data.\n"
		 "\n" COMMON_OPTS,
};

static const struct cli_cmd cmd_ls = {
	.name = "ls", .run = run_ls,
	.summary = "list snapshots",
	.usage = "Usage: cryo store ls [OBJECT] [--store PATH] [--json]\n"
		 "\n"
		 "List every snapshot (or those of OBJECT), one line each:\n"
		 "OBJECT SNAP TIME PAGES ZERO RECORDS WRITTEN.\n"
		 "\n" COMMON_OPTS,
};

static const struct cli_cmd cmd_fsck = {
	.name = "fsck", .run = run_fsck,
	.summary = "check the whole store",
	.usage = "Usage: cryo store fsck [--store PATH] [--json]\n"
		 "\n"
		 "Check checkpoints, state, every chunk of every used segment and every\n"
		 "snapshot down to each page's checksum. Prints one line per problem and a\n"
		 "summary; exits 1 if there is any problem. Never writes.\n"
		 "\n" COMMON_OPTS,
};

static const struct cli_cmd cmd_gc = {
	.name = "gc", .run = run_gc,
	.summary = "clean segments now",
	.usage = "Usage: cryo store gc [--store PATH] [--json]\n"
		 "\n"
		 "Run the cleaner over every segment not fully in use: copy live data\n"
		 "forward, free the segments, write a checkpoint. Prints what it freed.\n"
		 "\n" COMMON_OPTS,
};

static const struct cli_cmd *const store_cmds[] = {
	&cmd_init,
	&cmd_stat,
	&cmd_ls,
	&cmd_fsck,
	&cmd_gc,
	&store_cmd_cat,
	&store_cmd_demo_write,
	NULL,
};

const struct cli_cmd cli_cmd_store = {
	.name = "store",
	.run = cli_dispatch,
	.summary = "create, inspect, check and clean the snapshot store",
	.usage = "Usage: cryo store COMMAND [OPTIONS]\n"
		 "\n"
		 "The store is the log-structured file (or block device) that holds every\n"
		 "snapshot: $CRYO_HOME/store unless --store PATH says otherwise.\n",
	.sub = store_cmds,
};
