/* Developer commands of `cryo store`: demo-write makes snapshots of
 * synthetic memory (until real processes can be snapshotted, the README
 * demo and the tests use it); cat prints one page or record back. */
#include "cli/store_cmd.h"
#include "cli/json.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- synthetic memory, deterministic from (seed, generation, vpn) ---- */

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finaliser: a well-known bijective mixer. */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t page_hash(uint64_t seed, uint64_t gen, uint64_t vpn)
{
	return mix64(mix64(mix64(seed) ^ gen) ^ vpn);
}

enum demo_kind { DEMO_ZERO, DEMO_TEXT, DEMO_RANDOM };

/* Roughly what a process's memory looks like: 30% zero pages, 50% text
 * and structures that compress, 20% that do not. */
static enum demo_kind demo_kind_of(uint64_t h)
{
	unsigned r = (unsigned)(h % 10);
	return r < 3 ? DEMO_ZERO : r < 8 ? DEMO_TEXT : DEMO_RANDOM;
}

static void demo_page(uint64_t h, uint8_t *page)
{
	static const char *const words[] = {
		"the", "process", "snapshot", "segment", "freeze", "melt", "page", "log",
		"store", "commit", "checkpoint", "index", "of", "a", "and", "memory",
		"0x7ffd", "NULL", "return", "errno", "struct", "int", "void", "char",
	};
	uint64_t x = h | 1;
	size_t i = 0;

	switch (demo_kind_of(h)) {
	case DEMO_ZERO:
		memset(page, 0, STORE_PAGE_SIZE);
		return;
	case DEMO_RANDOM:
		for (i = 0; i < STORE_PAGE_SIZE; i += 8) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			memcpy(page + i, &x, 8);
		}
		return;
	case DEMO_TEXT:
		while (i < STORE_PAGE_SIZE) {
			const char *w;
			size_t n;

			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			w = words[x % (sizeof(words) / sizeof(words[0]))];
			n = strlen(w);
			if (n > STORE_PAGE_SIZE - i)
				n = STORE_PAGE_SIZE - i;
			memcpy(page + i, w, n);
			i += n;
			if (i < STORE_PAGE_SIZE)
				page[i++] = (x >> 32) % 11 ? ' ' : '\n';
		}
		return;
	}
}

/* ---- demo-write ---- */

struct demo_args {
	uint64_t pages, seed;
	double change;
	int pages_set, change_set;
};

static int demo_opt(struct store_cmd *sc, void *arg, int ch, const char *optarg)
{
	struct demo_args *a = arg;
	char *end;

	switch (ch) {
	case 'P':
		if (cli_parse_u64(optarg, &a->pages) || !a->pages || a->pages > STORE_VPN_MAX)
			return cli_usage(sc->c, sc->cmdpath, "--pages: not a page count: '%s'", optarg);
		a->pages_set = 1;
		return 0;
	case 'c':
		errno = 0;
		a->change = strtod(optarg, &end);
		if (errno || end == optarg || *end || !(a->change >= 0 && a->change <= 100))
			return cli_usage(sc->c, sc->cmdpath, "--change: not a percentage 0..100: '%s'",
					 optarg);
		a->change_set = 1;
		return 0;
	case 'e':
		if (cli_parse_u64(optarg, &a->seed))
			return cli_usage(sc->c, sc->cmdpath, "--seed: not a number: '%s'", optarg);
		return 0;
	}
	return CLI_USAGE;
}

static int newest_fn(void *arg, const struct store_snap_info *info)
{
	struct store_snap_info *newest = arg;

	if (info->no > newest->no)
		*newest = *info;
	return 0;
}

struct demo_result {
	uint64_t no, pages, zero, changed, written;
	double secs;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The snapshot: every page of a new object, or --change percent of the
 * newest one's pages (chosen and filled from the seed and the snapshot's
 * generation, so a rerun writes the same bytes). */
static int demo_txn(struct store_cmd *sc, struct store *s, const char *obj,
		    const struct demo_args *a, struct demo_result *res)
{
	struct store_snap_info base = { 0 };
	struct store_txn *t = NULL;
	struct store_snap *sn = NULL;
	struct store_snap_info info;
	uint64_t pages, gen, limit;
	uint8_t *page;
	char rec[160];
	int err, n;

	err = store_list_object(s, obj, newest_fn, &base);
	if (err && err != -ENOENT)
		return cli_fail_store(sc->c, err, "listing object %s", obj);
	pages = a->pages_set ? a->pages : base.no ? base.pages : 1024;
	gen = base.no + 1;
	/* Pick page i when its hash falls under change% of the range. */
	limit = (uint64_t)((a->change_set ? a->change : 100.0) / 100.0 * 1e6);

	page = aligned_alloc(STORE_PAGE_SIZE, STORE_PAGE_SIZE);
	if (!page)
		return cli_fail(sc->c, "out of memory");
	res->secs = now_s();
	err = store_txn_begin(s, obj, base.no ? STORE_SNAP_NEWEST : 0, &t);
	if (err) {
		free(page);
		if (err == -EINVAL)
			return cli_fail(sc->c, "invalid object name '%s' (1..%d bytes; no spaces, "
					"'/' or control characters)", obj, STORE_NAME_MAX);
		return cli_fail_store(sc->c, err, "begin snapshot of %s", obj);
	}
	for (uint64_t vpn = 0; vpn < pages; vpn++) {
		uint64_t h;

		if (base.no && vpn < base.pages &&
		    mix64(page_hash(a->seed, gen, vpn) ^ 0x5eed) % 1000000 >= limit)
			continue;
		h = page_hash(a->seed, gen, vpn);
		demo_page(h, page);
		err = store_txn_put_page(t, vpn, page);
		if (err) {
			store_txn_abort(t);
			free(page);
			return cli_fail_store(sc->c, err, "writing page %" PRIu64 " of %s", vpn, obj);
		}
		res->changed++;
	}
	free(page);
	if (base.no && base.pages > pages) {
		err = store_txn_drop_pages(t, pages, base.pages - pages);
		if (err) {
			store_txn_abort(t);
			return cli_fail_store(sc->c, err, "dropping pages of %s", obj);
		}
	}
	n = snprintf(rec, sizeof(rec), "demo-write seed=%" PRIu64 " gen=%" PRIu64 " pages=%" PRIu64
		     " change=%g\n", a->seed, gen, pages, a->change_set ? a->change : 100.0);
	err = store_txn_put_record(t, "demo", rec, (size_t)n);
	if (err) {
		store_txn_abort(t);
		return cli_fail_store(sc->c, err, "writing record of %s", obj);
	}
	err = store_txn_commit(t, &res->no);
	if (err)
		return cli_fail_store(sc->c, err, "commit of %s", obj);
	res->secs = now_s() - res->secs;

	err = store_snap_open(s, obj, res->no, &sn);
	if (err)
		return cli_fail_store(sc->c, err, "reading back snapshot %" PRIu64 " of %s", res->no, obj);
	store_snap_info(sn, &info);
	store_snap_close(sn);
	res->pages = info.pages;
	res->zero = info.zero_pages;
	res->written = info.written;
	return CLI_OK;
}

static int run_demo_write(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	static const struct option extra[] = {
		{ "pages", required_argument, NULL, 'P' },
		{ "change", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	struct demo_args a = { .seed = 1 };
	struct demo_result res = { 0 };
	struct store_cmd sc;
	struct store *s;
	const char *obj;
	char b[32];
	int rc;

	rc = store_cmd_parse(&sc, c, self, argc, argv, extra, demo_opt, &a, 1, 1);
	if (rc >= 0)
		return rc;
	obj = sc.pos[0];
	if (!*obj || strlen(obj) > STORE_NAME_MAX)
		return cli_usage(c, sc.cmdpath, "%s: object name must be 1..%d bytes", sc.cmdpath,
				 STORE_NAME_MAX);
	rc = store_cmd_open(&sc, 1, &s);
	if (rc)
		return rc;
	rc = demo_txn(&sc, s, obj, &a, &res);
	if (rc)
		return store_cmd_close(&sc, s, rc);
	if (sc.json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j);
		json_kv_str(&j, "object", obj);
		json_kv_u64(&j, "snap", res.no);
		json_kv_u64(&j, "pages", res.pages);
		json_kv_u64(&j, "zero_pages", res.zero);
		json_kv_u64(&j, "pages_put", res.changed);
		json_kv_u64(&j, "written", res.written);
		json_key(&j, "seconds");
		json_f64(&j, res.secs);
		json_obj_end(&j);
		json_end(&j);
	} else {
		printf("%s snapshot %" PRIu64 ": %" PRIu64 " pages (%" PRIu64 " zero), %" PRIu64
		       " put, %s written in %.3f s\n", obj, res.no, res.pages, res.zero, res.changed,
		       cli_human(res.written, b, sizeof(b)), res.secs);
	}
	return store_cmd_close(&sc, s, CLI_OK);
}

const struct cli_cmd store_cmd_demo_write = {
	.name = "demo-write", .run = run_demo_write,
	.summary = "write a snapshot of synthetic pages (development)",
	.usage = "Usage: cryo store demo-write OBJECT [--pages N] [--change PCT] [--seed S]\n"
		 "                             [--store PATH] [--json]\n"
		 "\n"
		 "Development command: commit a snapshot of OBJECT made of synthetic pages at\n"
		 "vpn 0..N-1 (about 30% zero, 50% text-like, 20% random), deterministic from\n"
		 "the seed and the snapshot's number. The first snapshot of an object writes\n"
		 "every page; later ones start from the newest snapshot and rewrite PCT\n"
		 "percent of its pages (default 100). A record 'demo' describes the run.\n"
		 "\n"
		 "  --pages N      pages in the snapshot (default 1024, or the base's count)\n"
		 "  --change PCT   percentage of the base's pages to rewrite (default 100)\n"
		 "  --seed S       seed of the synthetic contents (default 1)\n"
		 "  --store PATH   the store (default: $CRYO_HOME/store)\n"
		 "  --json         machine-readable output\n",
	.flags = CLI_HIDDEN,
};

/* ---- cat ---- */

struct cat_args {
	const char *record;
	int raw;
};

static int cat_opt(struct store_cmd *sc, void *arg, int ch, const char *optarg)
{
	struct cat_args *a = arg;

	(void)sc;
	switch (ch) {
	case 'r':
		a->record = optarg;
		return 0;
	case 'R':
		a->raw = 1;
		return 0;
	}
	return CLI_USAGE;
}

/* Offset, 16 bytes in hex, the same as text; runs of identical lines as one
 * "*" line, like hexdump -C. */
static void hexdump(const uint8_t *p, size_t n)
{
	int starred = 0;

	for (size_t off = 0; off < n; off += 16) {
		size_t len = n - off < 16 ? n - off : 16;

		if (off && len == 16 && off + 16 <= n && !memcmp(p + off, p + off - 16, 16)) {
			if (!starred)
				puts("*");
			starred = 1;
			continue;
		}
		starred = 0;
		printf("%08zx ", off);
		for (size_t i = 0; i < 16; i++) {
			if (i == 8)
				putchar(' ');
			if (i < len)
				printf(" %02x", p[off + i]);
			else
				fputs("   ", stdout);
		}
		fputs("  |", stdout);
		for (size_t i = 0; i < len; i++)
			putchar(isprint(p[off + i]) ? p[off + i] : '.');
		puts("|");
	}
	printf("%08zx\n", n);
}

static int cat_record(struct store_cmd *sc, struct store_snap *sn, const char *obj,
		      uint64_t no, const struct cat_args *a)
{
	void *data = NULL;
	size_t len = 0;
	int err;

	err = store_snap_read_record(sn, a->record, &data, &len);
	if (err == -ENOENT)
		return cli_fail(sc->c, "no record '%s' in snapshot %" PRIu64 " of %s", a->record, no, obj);
	if (err)
		return cli_fail_store(sc->c, err, "record '%s' of %s snapshot %" PRIu64, a->record,
				      obj, no);
	if (a->raw)
		fwrite(data, 1, len, stdout);
	else
		hexdump(data, len);
	free(data);
	return CLI_OK;
}

static int cat_page(struct store_cmd *sc, struct store_snap *sn, const char *obj,
		    uint64_t no, const char *vpn_s, const struct cat_args *a)
{
	uint8_t page[STORE_PAGE_SIZE];
	unsigned long long vpn;
	char *end;
	int kind;

	errno = 0;
	vpn = strtoull(vpn_s, &end, 0);
	if (errno || end == vpn_s || *end || *vpn_s == '-' || vpn > STORE_VPN_MAX)
		return cli_usage(sc->c, sc->cmdpath, "%s: not a page number: '%s'", sc->cmdpath, vpn_s);
	kind = store_snap_read_page(sn, vpn, page);
	if (kind < 0)
		return cli_fail_store(sc->c, kind, "page %#llx of %s snapshot %" PRIu64, vpn, obj, no);
	if (kind == STORE_PAGE_NONE)
		return cli_fail(sc->c, "no page %#llx in snapshot %" PRIu64 " of %s", vpn, no, obj);
	if (a->raw) {
		fwrite(page, 1, sizeof(page), stdout);
		return CLI_OK;
	}
	printf("%s snapshot %" PRIu64 " page %#llx: %s\n", obj, no, vpn,
	       kind == STORE_PAGE_ZERO ? "zero" : "data");
	hexdump(page, sizeof(page));
	return CLI_OK;
}

static int run_cat(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	static const struct option extra[] = {
		{ "record", required_argument, NULL, 'r' },
		{ "raw", no_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct cat_args a = { 0 };
	struct store_snap_info info;
	struct store_snap *sn;
	struct store_cmd sc;
	struct store *s;
	uint64_t snap;
	int rc, err;

	rc = store_cmd_parse(&sc, c, self, argc, argv, extra, cat_opt, &a, 2, 3);
	if (rc >= 0)
		return rc;
	if (sc.json)
		return cli_usage(c, sc.cmdpath, "%s: no --json; use --raw for the bytes", sc.cmdpath);
	if (!a.record && sc.npos != 3)
		return cli_usage(c, sc.cmdpath, "%s: give a VPN or --record KEY", sc.cmdpath);
	if (a.record && sc.npos != 2)
		return cli_usage(c, sc.cmdpath, "%s: give either a VPN or --record KEY", sc.cmdpath);
	if (store_cmd_parse_snap(sc.pos[1], &snap))
		return cli_usage(c, sc.cmdpath, "%s: not a snapshot number: '%s'", sc.cmdpath, sc.pos[1]);
	rc = store_cmd_open(&sc, 0, &s);
	if (rc)
		return rc;
	err = store_snap_open(s, sc.pos[0], snap, &sn);
	if (err == -ENOENT) {
		rc = cli_fail(c, "no snapshot %s of object '%s' in %s", sc.pos[1], sc.pos[0], sc.path);
		return store_cmd_close(&sc, s, rc);
	}
	if (err) {
		rc = cli_fail_store(c, err, "snapshot %s of %s", sc.pos[1], sc.pos[0]);
		return store_cmd_close(&sc, s, rc);
	}
	store_snap_info(sn, &info);
	if (a.record)
		rc = cat_record(&sc, sn, sc.pos[0], info.no, &a);
	else
		rc = cat_page(&sc, sn, sc.pos[0], info.no, sc.pos[2], &a);
	store_snap_close(sn);
	return store_cmd_close(&sc, s, rc);
}

const struct cli_cmd store_cmd_cat = {
	.name = "cat", .run = run_cat,
	.summary = "print one page or record of a snapshot",
	.usage = "Usage: cryo store cat OBJECT SNAP VPN [--raw] [--store PATH]\n"
		 "       cryo store cat OBJECT SNAP --record KEY [--raw] [--store PATH]\n"
		 "\n"
		 "Print page VPN (decimal or 0x hex) of snapshot SNAP (a number, or\n"
		 "'newest') of OBJECT as a hex dump, or the metadata record KEY.\n"
		 "\n"
		 "  --record KEY   print a record instead of a page\n"
		 "  --raw          write the bytes as they are\n"
		 "  --store PATH   the store (default: $CRYO_HOME/store)\n",
};
