/* cryo adopt | snap | freeze | history: a group's snapshots.
 *
 * Until the daemon exists, cryo does the work in-process through the same
 * library (dump_group) the daemon will call; the group registry is
 * CRYO_HOME/groups/NAME (image/registry.h). */
#include "cli/cli.h"
#include "cli/json.h"
#include "dump/dump.h"
#include "image/image.h"
#include "image/registry.h"
#include "proc/pidns.h"
#include "term/term.h"
#include "daemon/sched.h"

#include <errno.h>
#include <signal.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ADOPT_STORE_SIZE	(8ull << 30)	/* a sparse file: grows as used */

struct grp_args {
	const char *cmd;
	const char *store_opt;
	const char *name;
	int json;
	int weak, force, all;		/* snap only */
	int tcp_established;		/* freeze only */
	int npos;
	const char *pos[2];
	char path_buf[PATH_MAX];
	const char *path;
};

static const struct option grp_opts[] = {
	{ "store", required_argument, NULL, 's' },
	{ "json", no_argument, NULL, 'j' },
	{ "name", required_argument, NULL, 'n' },
	{ "help", no_argument, NULL, 'h' },
	{ "weak", no_argument, NULL, 'w' },
	{ "force", no_argument, NULL, 'F' },
	{ "all", no_argument, NULL, 'a' },
	{ "no-daemon", no_argument, NULL, 'D' },
	{ "tcp-established", no_argument, NULL, 'T' },
	{ NULL, 0, NULL, 0 },
};

/* Parse --store, --json, --name, --help and up to max_pos positionals.
 * Returns -1 to go on, else the exit code. */
static int grp_parse(struct cli *c, const struct cli_cmd *self, int argc, char **argv,
		     struct grp_args *a, int min_pos, int max_pos, int want_name)
{
	int ch;

	a->cmd = self->name;
	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "-:h", grp_opts, NULL)) != -1) {
		switch (ch) {
		case 1:
			if (a->npos >= max_pos)
				return cli_usage(c, a->cmd, "%s: unexpected argument '%s'", a->cmd, optarg);
			a->pos[a->npos++] = optarg;
			break;
		case 'h':
			cli_print_help(self, stdout);
			return CLI_OK;
		case 's':
			a->store_opt = optarg;
			break;
		case 'j':
			a->json = 1;
			break;
		case 'n':
			if (!want_name)
				return cli_usage(c, a->cmd, "%s: unknown option '--name'", a->cmd);
			a->name = optarg;
			break;
		case 'w':
		case 'F':
		case 'a':
			if (strcmp(a->cmd, "snap"))
				return cli_usage(c, a->cmd, "%s: unknown option '%s'", a->cmd,
						 argv[optind - 1]);
			*(ch == 'w' ? &a->weak : ch == 'F' ? &a->force : &a->all) = 1;
			break;
		case 'T':
			if (strcmp(a->cmd, "freeze"))
				return cli_usage(c, a->cmd, "%s: unknown option '%s'", a->cmd,
						 argv[optind - 1]);
			a->tcp_established = 1;
			break;
		case ':':
			return cli_usage(c, a->cmd, "%s: option '%s' needs a value", a->cmd,
					 argv[optind - 1]);
		default:
			return cli_usage(c, a->cmd, "%s: unknown option '%s'", a->cmd, argv[optind - 1]);
		}
	}
	if (a->npos < min_pos)
		return cli_usage(c, a->cmd, "%s: missing argument (see usage)", a->cmd);
	if (want_name && !a->name)
		return cli_usage(c, a->cmd, "%s: --name NAME is required", a->cmd);
	if (!want_name)
		a->name = a->pos[0];
	if (a->name && !registry_name_ok(a->name))
		return cli_usage(c, a->cmd, "%s: '%s' is not a valid group name (letters, digits, . _ -)",
				 a->cmd, a->name);
	a->path = cli_store_path(a->store_opt, a->path_buf, sizeof(a->path_buf));
	cli_log_hold(c);
	return -1;
}

static int open_store(struct cli *c, const char *path, int create, struct store **s)
{
	struct store_create_opts co = { .size = ADOPT_STORE_SIZE, .codec = CODEC_LZ4 };
	struct stat st;
	int err;

	if (stat(path, &st) < 0) {
		if (errno != ENOENT || !create)
			return cli_fail(c, "no store at %s (create one with 'cryo store init')", path);
		if (mkdir(cli_home(), 0700) < 0 && errno != EEXIST)
			return cli_fail(c, "%s: %s", cli_home(), strerror(errno));
		err = store_create(path, &co);
		if (err)
			return cli_fail_store(c, err, "cannot create store %s", path);
	}
	err = store_open(path, NULL, s);
	if (err)
		return cli_fail_store(c, err, "cannot open store %s", path);
	return CLI_OK;
}

static int close_store(struct cli *c, struct store *s, const char *path, int rc)
{
	int err = store_close(s);

	if (err && rc == CLI_OK)
		return cli_fail_store(c, err, "closing store %s", path);
	return rc;
}

static uint64_t now_realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void print_result(const struct grp_args *a, const char *what, pid_t pid,
			 const struct dump_result *res)
{
	char hb[32];

	if (a->json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j);
		json_kv_str(&j, "group", a->name);
		json_kv_str(&j, "action", what);
		json_kv_u64(&j, "pid", (uint64_t)pid);
		json_kv_u64(&j, "snapshot", res->snap_no);
		json_kv_u64(&j, "pages", res->pages);
		json_kv_bool(&j, "incremental", res->incremental);
		json_kv_u64(&j, "unchanged_pages", res->unchanged);
		json_kv_u64(&j, "bytes_read", res->bytes);
		json_kv_u64(&j, "stopped_ns", res->stopped_ns);
		json_kv_u64(&j, "total_ns", res->total_ns);
		json_obj_end(&j);
		json_end(&j);
		return;
	}
	printf("%s: %s pid %d: snapshot %" PRIu64 ", %" PRIu64 " pages", a->name, what, (int)pid,
	       res->snap_no, res->pages);
	if (res->incremental)
		printf(" written, %" PRIu64 " unchanged", res->unchanged);
	printf(" (%s read), stopped %.1f ms, durable in %.1f ms\n",
	       cli_human(res->bytes, hb, sizeof(hb)), res->stopped_ns / 1e6, res->total_ns / 1e6);
}

/* The registered group, with its process checked to be the same one. */
static int running_group(struct cli *c, const char *name, struct registry_entry *e)
{
	uint64_t st;
	int err = registry_get(cli_home(), name, e);

	if (err == -ENOENT)
		return cli_fail(c, "no group named %s (adopt a process with 'cryo adopt PID --name %s')",
				name, name);
	if (err)
		return cli_fail(c, "group %s: registry: %s", name, strerror(-err));
	if (e->state == REGISTRY_FROZEN)
		return cli_fail(c, "group %s is frozen (melt it first)", name);
	if (registry_pid_starttime(e->pid, &st) || st != e->starttime) {
		if (e->state != REGISTRY_EXITED) {
			e->state = REGISTRY_EXITED;
			(void)registry_put(cli_home(), e);
		}
		return cli_fail(c, "group %s: its process %d has exited", name, (int)e->pid);
	}
	return CLI_OK;
}

static int take(struct cli *c, struct grp_args *a, pid_t pid, int freeze, int adopt)
{
	/* After the first: only the pages that changed since the newest. */
	struct dump_opts o = { .freeze = freeze, .base = adopt ? 0 : STORE_SNAP_NEWEST,
			       .tcp_established = freeze && a->tcp_established };
	struct dump_result res;
	struct cli_bar bar;
	struct store *s;
	int rc, err;

	cli_bar_init(&bar, c, a->name, a->json);
	o.progress = &bar.p;
	if (!adopt && (err = cli_wait_paged_in(a->name)))
		return cli_fail(c, "%s %s: %s", a->cmd, a->name, err == -EINPROGRESS ?
				"still paging in from its snapshot; try again later" :
				err == -EOWNERDEAD ? "its pager had died; the process was ended" :
				strerror(-err));
	rc = open_store(c, a->path, adopt, &s);
	if (rc)
		return rc;
	err = dump_group(s, a->name, pid, &o, &res);
	cli_bar_end(&bar);
	if (err)
		rc = cli_fail_store(c, err, "%s %s (pid %d)", a->cmd, a->name, (int)pid);
	rc = close_store(c, s, a->path, rc);
	if (rc == CLI_OK)
		print_result(a, a->cmd, pid, &res);
	return rc;
}

/* The pid the program of host pid sees, when it lives in a pid namespace
 * below ours (a container's); 0 otherwise. */
static pid_t ns_pid_of(pid_t pid)
{
	unsigned level;
	pid_t v;

	if (proc_ns_level(pid, &level) || !level || proc_ns_pid(pid, 0, level, &v))
		return 0;
	return v;
}

/* Record pid as group a->name and take its first snapshot. */
static int adopt_pid(struct cli *c, struct grp_args *a, pid_t pid)
{
	struct registry_entry e = { 0 };
	int err = registry_get(cli_home(), a->name, &e), rc;

	if (!err && e.state != REGISTRY_EXITED)
		return cli_fail(c, "group %s exists (pid %d, %s)", a->name, (int)e.pid,
				registry_state_name(e.state));
	if (pid == getpid())
		return cli_fail(c, "adopt: pid %d is cryo itself", (int)pid);
	memset(&e, 0, sizeof(e));
	snprintf(e.name, sizeof(e.name), "%s", a->name);
	e.pid = pid;
	e.state = REGISTRY_RUNNING;
	e.created_ns = now_realtime();
	if (registry_pid_starttime(e.pid, &e.starttime))
		return cli_fail(c, "adopt: no process %d", (int)e.pid);
	e.ns_pid = ns_pid_of(pid);
	/* The first snapshot right away: adopting means protected from now. */
	rc = take(c, a, e.pid, 0, 1);
	if (rc)
		return rc;
	err = registry_put(cli_home(), &e);
	if (err)
		return cli_fail(c, "adopt %s: writing the registry: %s", a->name, strerror(-err));
	return CLI_OK;
}

static int run_adopt(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	struct grp_args a = { 0 };
	uint64_t pid;
	int rc = grp_parse(c, self, argc, argv, &a, 1, 1, 1);

	if (rc >= 0)
		return rc;
	if (cli_parse_u64(a.pos[0], &pid) || !pid || pid > INT32_MAX)
		return cli_usage(c, a.cmd, "adopt: not a pid: '%s'", a.pos[0]);
	return adopt_pid(c, &a, (pid_t)pid);
}

/* cryo run: COMMAND on a terminal of its own (src/term), adopted at once. */
static int run_run(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	struct grp_args a = { .cmd = "run" };
	struct term_start_opts to = { .home = cli_home() };
	char slave[128];
	const char *base;
	pid_t pid;
	int ch, err, rc, daemon = 1;

	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "+:h", grp_opts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			cli_print_help(self, stdout);
			return CLI_OK;
		case 's':
			a.store_opt = optarg;
			break;
		case 'j':
			a.json = 1;
			break;
		case 'n':
			a.name = optarg;
			break;
		case 'D':
			daemon = 0;
			break;
		case ':':
			return cli_usage(c, "run", "run: %s needs a value", argv[optind - 1]);
		default:
			return cli_usage(c, "run", "run: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage(c, "run", "run: no command given (cryo run [--name NAME] -- COMMAND)");
	base = strrchr(argv[optind], '/') ? strrchr(argv[optind], '/') + 1 : argv[optind];
	if (!a.name)
		a.name = base;
	if (!registry_name_ok(a.name))
		return cli_usage(c, "run", "run: '%s' is not a valid group name (letters, digits, "
				 ". _ -; use --name)", a.name);
	a.path = cli_store_path(a.store_opt, a.path_buf, sizeof(a.path_buf));
	if (mkdir(cli_home(), 0700) < 0 && errno != EEXIST)
		return cli_fail(c, "%s: %s", cli_home(), strerror(errno));
	cli_log_hold(c);
	to.name = a.name;
	to.argv = argv + optind;
	err = term_start(&to, &pid, slave, sizeof(slave));
	if (err == -EEXIST)
		return cli_fail(c, "run: group %s already has a terminal", a.name);
	if (err)
		return cli_fail(c, "run %s: %s: %s", a.name, argv[optind], strerror(-err));
	rc = adopt_pid(c, &a, pid);
	if (rc) {
		kill(pid, SIGKILL);	/* not persistent: not left running */
		return rc;
	}
	if (!a.json)
		printf("%s runs as pid %d on %s; 'cryo attach %s' to reach it\n", a.name, (int)pid,
		       slave, a.name);
	return daemon ? cli_daemon_ensure(c, a.json) : CLI_OK;
}

static int run_snap_or_freeze(struct cli *c, const struct cli_cmd *self, int argc, char **argv,
			      int freeze)
{
	struct grp_args a = { 0 };
	struct registry_entry e;
	int rc = grp_parse(c, self, argc, argv, &a, 1, 1, 0), err;

	if (rc >= 0)
		return rc;
	/* the store is root's: others ask cryod, for their own groups */
	if (geteuid() != 0) {
		if (a.tcp_established)
			return cli_fail(c, "freeze %s: --tcp-established is for root (it needs "
					"CAP_NET_ADMIN)", a.name);
		return cli_ctl_snap(c, a.name, 0, freeze);
	}
	rc = running_group(c, a.name, &e);
	if (rc)
		return rc;
	rc = take(c, &a, e.pid, freeze, 0);
	if (rc || !freeze)
		return rc;
	e.state = REGISTRY_FROZEN;
	err = registry_put(cli_home(), &e);
	if (err)
		return cli_fail(c, "freeze %s: writing the registry: %s", a.name, strerror(-err));
	return CLI_OK;
}

/* One group of snap: CLI_OK, or the failure (said). */
static int snap_one(struct cli *c, struct grp_args *a, const char *name)
{
	struct registry_entry e;
	int rc;

	a->name = name;
	rc = running_group(c, name, &e);
	if (rc)
		return rc;
	if (a->weak && !sched_idle_now(e.pid, 200)) {
		if (a->json)
			printf("{\"name\": \"%s\", \"skipped\": \"busy\"}\n", name);
		else
			printf("%s: busy, weak snapshot skipped\n", name);
		return CLI_OK;
	}
	return take(c, a, e.pid, 0, 0);
}

struct snap_all {
	unsigned failed;
	char (*names)[STORE_NAME_MAX + 1];
	size_t n, cap;
};

static int collect_running(void *arg, const struct registry_entry *e)
{
	struct snap_all *sa = arg;

	if (e->state != REGISTRY_RUNNING)
		return 0;
	if (sa->n == sa->cap) {
		size_t cap = sa->cap ? sa->cap * 2 : 16;
		void *p = realloc(sa->names, cap * sizeof(*sa->names));

		if (!p)
			return -ENOMEM;
		sa->names = p;
		sa->cap = cap;
	}
	snprintf(sa->names[sa->n++], sizeof(sa->names[0]), "%s", e->name);
	return 0;
}

static int run_snap(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	struct grp_args a = { 0 };
	struct snap_all sa = { 0 };
	int rc = grp_parse(c, self, argc, argv, &a, 0, 1, 0), err;

	if (rc >= 0)
		return rc;
	if (a.weak && a.force)
		return cli_usage(c, "snap", "snap: --weak or --force, not both");
	if (a.all == (a.npos == 1))
		return cli_usage(c, "snap", "snap: a group NAME or --all");
	/* the store is root's: others ask cryod, for their own groups */
	if (geteuid() != 0) {
		if (a.all)
			return cli_fail(c, "snap --all is for root");
		return cli_ctl_snap(c, a.pos[0], a.weak, 0);
	}
	if (!a.all)
		return snap_one(c, &a, a.pos[0]);
	/* the list first: each snapshot may rewrite the registry */
	err = registry_list(cli_home(), collect_running, &sa);
	if (err && err != -ENOENT) {
		free(sa.names);
		return cli_fail(c, "snap --all: the group registry: %s", strerror(-err));
	}
	for (size_t i = 0; i < sa.n; i++)
		if (snap_one(c, &a, sa.names[i]) != CLI_OK)
			sa.failed++;
	free(sa.names);
	if (sa.failed)
		return cli_fail(c, "snap --all: %u of %zu groups failed", sa.failed, sa.n);
	return CLI_OK;
}

static int run_freeze(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	return run_snap_or_freeze(c, self, argc, argv, 1);
}

/* ---- history ---- */

struct hist {
	struct store *s;
	struct json *j;
	int err;
};

static int hist_one(void *arg, const struct store_snap_info *info)
{
	struct hist *h = arg;
	Cryo__GroupEntry *g = NULL;
	struct store_snap *sn;
	char tb[32], sb[16];
	uint64_t stopped = 0;
	int have = 0;

	if (!store_snap_open(h->s, info->object, info->no, &sn)) {
		if (!image_get_group(sn, &g)) {
			have = g->has_stopped_ns;
			stopped = g->stopped_ns;
			image_free(&g->base);
		}
		store_snap_close(sn);
	}
	if (h->j) {
		json_obj_begin(h->j);
		json_kv_u64(h->j, "number", info->no);
		json_kv_u64(h->j, "time_ns", info->time_ns);
		json_kv_u64(h->j, "pages", info->pages);
		json_kv_u64(h->j, "stored_bytes", info->written);
		if (have)
			json_kv_u64(h->j, "stopped_ns", stopped);
		json_obj_end(h->j);
		return 0;
	}
	printf("%-6" PRIu64 " %-19s %10" PRIu64 " %10s ", info->no,
	       cli_time(info->time_ns, tb, sizeof(tb)), info->pages,
	       cli_human(info->written, sb, sizeof(sb)));
	if (have)
		printf("%8.1f ms\n", stopped / 1e6);
	else
		printf("%11s\n", "-");
	return 0;
}

static int run_history(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	struct grp_args a = { 0 };
	struct json j;
	struct hist h = { 0 };
	int rc = grp_parse(c, self, argc, argv, &a, 1, 1, 0), err;

	if (rc >= 0)
		return rc;
	rc = open_store(c, a.path, 0, &h.s);
	if (rc)
		return rc;
	if (a.json) {
		json_init(&j, stdout);
		h.j = &j;
		json_arr_begin(&j);
	} else {
		printf("%-6s %-19s %10s %10s %11s\n", "NUMBER", "TIME", "PAGES", "STORED", "STOPPED");
	}
	err = store_list_object(h.s, a.name, hist_one, &h);
	if (a.json) {
		json_arr_end(&j);
		json_end(&j);
	}
	if (err == -ENOENT)
		rc = cli_fail(c, "no snapshots of %s", a.name);
	else if (err)
		rc = cli_fail_store(c, err, "history %s", a.name);
	return close_store(c, h.s, a.path, rc);
}

const struct cli_cmd cli_cmd_adopt = {
	.name = "adopt",
	.run = run_adopt,
	.summary = "make a running process a group, and snapshot it now",
	.usage = "Usage: cryo adopt PID --name NAME [--store PATH] [--json]\n"
		 "\n"
		 "Records process PID as group NAME (CRYO_HOME/groups/NAME) and takes\n"
		 "its first snapshot right away; the process keeps running. Creates the\n"
		 "store (8 GiB, sparse) if there is none. A process cryo cannot capture\n"
		 "faithfully (a socket, an unknown fd kind, a device mapping) is refused\n"
		 "with the reason and left running untouched.\n",
};

const struct cli_cmd cli_cmd_run = {
	.name = "run",
	.run = run_run,
	.summary = "start a command on a terminal of its own, as a persistent group",
	.usage = "Usage: cryo run [--name NAME] [--no-daemon] [--store PATH] [--json] -- COMMAND [ARG...]\n"
		 "\n"
		 "Starts COMMAND on a pseudo-terminal that a small holder process keeps\n"
		 "(like tmux): the program runs on with nobody attached, and what it\n"
		 "writes meanwhile is kept (the last 64 KiB). The process becomes group\n"
		 "NAME (default: the command's name) and its first snapshot is taken at\n"
		 "once. 'cryo attach NAME' gives it your terminal; a melt or recover\n"
		 "gives it a fresh terminal with its old settings that attach reaches.\n"
		 "Starts cryod (with its defaults) unless it runs or --no-daemon.\n",
};

const struct cli_cmd cli_cmd_snap = {
	.name = "snap",
	.run = run_snap,
	.summary = "snapshot a group, leave it running",
	.usage = "Usage: cryo snap NAME|--all [--weak|--force] [--store PATH] [--json]\n"
		 "\n"
		 "Stops the group's process briefly, writes a snapshot in one store\n"
		 "transaction, and lets it run on. Prints the snapshot number, pages,\n"
		 "how long the process was stopped and the time until durable.\n"
		 "\n"
		 "  --all    every running group\n"
		 "  --weak   only if the group is idle (every thread asleep, no CPU used\n"
		 "           over 0.2 s); a busy group is skipped and said so\n"
		 "  --force  stop it whatever it does (the default)\n",
};

const struct cli_cmd cli_cmd_freeze = {
	.name = "freeze",
	.run = run_freeze,
	.summary = "snapshot a group, then end it; the image stays",
	.usage = "Usage: cryo freeze NAME [--tcp-established] [--store PATH] [--json]\n"
		 "\n"
		 "Like snap, but the process stays stopped until the snapshot is\n"
		 "durable and is then killed (SIGKILL). The group is marked frozen;\n"
		 "'cryo melt NAME' brings it back.\n"
		 "\n"
		 "A TCP connection to a process outside the group comes back at melt\n"
		 "as one its peer reset (the program reads what it had received, then\n"
		 "ECONNRESET), unless:\n"
		 "  --tcp-established  keep such connections: each is saved with TCP\n"
		 "                     repair (sequence numbers, queues, options) and\n"
		 "                     its packets are dropped (nftables table 'inet\n"
		 "                     cryo') until melt, so the peer sees a pause,\n"
		 "                     not a reset. The first melt takes them back.\n",
};

const struct cli_cmd cli_cmd_history = {
	.name = "history",
	.run = run_history,
	.summary = "list a group's snapshots",
	.usage = "Usage: cryo history NAME [--store PATH] [--json]\n"
		 "\n"
		 "One line per snapshot: NUMBER TIME PAGES STORED STOPPED (pages\n"
		 "present, bytes this snapshot added to the store, how long the\n"
		 "process was stopped).\n",
};
