/* cryo hibernate / cryo resume: the laptop case. hibernate freezes every
 * running group (memory freed, image in the store), the most recently
 * used first, and writes their order to CRYO_HOME/hibernate.list; resume
 * melts the groups of that list that are still frozen, lazily, in that
 * order, so the one used last runs first.
 *
 * "Most recently used": the latest time any thread of the group was on a
 * CPU (se.exec_start in /proc/PID/task/TID/sched).
 *
 * Every group is stopped first (ptrace, invisibly: hold_all), then the
 * freezes run one after another, each group let go just before its own
 * freeze seizes it again. Stopping first is what makes hibernate short
 * on a busy machine: the syscalls a freeze injects run in the group's own
 * threads, which wait for a CPU behind every group still running
 * (bench_hibernate.sh: 4 busy groups, 2 cores). Capturing in parallel is
 * not done: the store has one writer, and a freeze here is one core's
 * work (docs/DESIGN-pager.md "hibernate and resume" has the figures). */
#include "cli/json.h"
#include "cli/store_cmd.h"
#include "common/clock.h"
#include "common/vec.h"
#include "dump/dump.h"
#include "image/registry.h"
#include "proc/procfs.h"
#include "proc/ptrace.h"
#include "restore/restore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIST_FILE "hibernate.list"

struct hib_group {
	struct registry_entry e;
	double last_run_ms;		/* ms after boot a thread last ran */
	struct proc_ctl **held;		/* its processes, stopped until its turn */
	size_t nheld, nheld_cap;
};

struct hib {
	struct hib_group *g;
	size_t n, cap;
};

/* The latest se.exec_start of pid's threads, or 0. */
static double last_run_ms(pid_t pid)
{
	char path[64], line[256];
	struct dirent *de;
	double best = 0, v;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char sp[PATH_MAX];
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(sp, sizeof(sp), "/proc/%d/task/%s/sched", (int)pid, de->d_name);
		f = fopen(sp, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "se.exec_start", 13) &&
			    sscanf(strchr(line, ':') ? strchr(line, ':') + 1 : "", "%lf", &v) == 1 &&
			    v > best)
				best = v;
		fclose(f);
	}
	closedir(d);
	return best;
}

static int collect(void *arg, const struct registry_entry *e)
{
	struct hib *h = arg;
	uint64_t st;

	if (e->state != REGISTRY_RUNNING || registry_pid_starttime(e->pid, &st) ||
	    st != e->starttime)
		return 0;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		void *p = realloc(h->g, cap * sizeof(*h->g));
		if (!p)
			return -ENOMEM;
		h->g = p;
		h->cap = cap;
	}
	memset(&h->g[h->n], 0, sizeof(h->g[0]));
	h->g[h->n].e = *e;
	h->g[h->n++].last_run_ms = last_run_ms(e->pid);
	return 0;
}

/* Stop g's processes (the root and all under it) until let_go(): none
 * is changed (a ptrace stop: no signal, nothing a snapshot records). One
 * that cannot be stopped is only frozen later, running meanwhile. */
static void hold(struct hib_group *g)
{
	pid_t *todo = NULL;
	size_t n = 0, cap = 0;

	if (vec_reserve((void **)&todo, &cap, 1, sizeof(*todo)))
		return;
	todo[n++] = g->e.pid;
	while (n) {
		pid_t pid = todo[--n], *kids = NULL;
		struct proc_ctl *ctl;
		size_t nk = 0;

		if (vec_reserve((void **)&g->held, &g->nheld_cap, g->nheld + 1, sizeof(*g->held)) ||
		    proc_seize(pid, &ctl))
			continue;
		g->held[g->nheld++] = ctl;
		/* stopped, it forks no more: its children are all there */
		if (proc_children(pid, &kids, &nk))
			continue;
		if (nk && !vec_reserve((void **)&todo, &cap, n + nk, sizeof(*todo))) {
			memcpy(todo + n, kids, nk * sizeof(*kids));
			n += nk;
		}
		free(kids);
	}
	free(todo);
}

static void let_go(struct hib_group *g)
{
	for (size_t i = 0; i < g->nheld; i++)
		(void)proc_release(g->held[i]);
	free(g->held);
	g->held = NULL;
	g->nheld = g->nheld_cap = 0;
}

static int by_recent(const void *a, const void *b)
{
	const struct hib_group *x = a, *y = b;
	return (x->last_run_ms < y->last_run_ms) - (x->last_run_ms > y->last_run_ms);
}

static int list_path(char *buf, size_t n)
{
	return snprintf(buf, n, "%s/%s", cli_home(), LIST_FILE) >= (int)n ? -ENAMETOOLONG : 0;
}

/* Write names (one per line) atomically: a crash leaves the old list or
 * the new one. n == 0 removes it. */
static int list_write(char (*names)[STORE_NAME_MAX + 1], size_t n)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;
	int r;

	if ((r = list_path(path, sizeof(path))))
		return r;
	if (!n)
		return unlink(path) && errno != ENOENT ? -errno : 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", names[i]);
	if (fflush(f) || fsync(fileno(f))) {
		r = -errno;
		fclose(f);
		unlink(tmp);
		return r;
	}
	fclose(f);
	return rename(tmp, path) ? -errno : 0;
}

static void progress(int json, size_t k, size_t n, const char *name, const char *what)
{
	if (!json)
		printf("[%zu/%zu] %s: %s\n", k, n, name, what);
	fflush(stdout);
}

static int hib_opt(struct store_cmd *sc, void *arg, int ch, const char *optarg)
{
	(void)sc;
	(void)optarg;
	if (ch != 'T')
		return CLI_USAGE;
	*(int *)arg = 1;
	return 0;
}

static int run_hibernate(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	static const struct option extra[] = {
		{ "tcp-established", no_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	int tcp_established = 0;
	struct store_cmd sc;
	struct hib h = { 0 };
	struct store *s = NULL;
	char (*names)[STORE_NAME_MAX + 1] = NULL;
	uint64_t t0 = mono_ns(), bytes = 0, pages = 0;
	unsigned frozen = 0, failed = 0;
	int rc, err;

	rc = store_cmd_parse(&sc, c, self, argc, argv, extra, hib_opt, &tcp_established, 0, 0);
	if (rc >= 0)
		return rc;
	strncpy(sc.cmdpath, "hibernate", sizeof(sc.cmdpath));
	err = registry_list(cli_home(), collect, &h);
	if (err && err != -ENOENT)
		return cli_fail(c, "hibernate: reading the group registry: %s", strerror(-err));
	if (!h.n) {
		free(h.g);
		if (!sc.json)
			printf("nothing to hibernate: no group is running\n");
		else
			printf("{\"frozen\": 0, \"failed\": 0}\n");
		return CLI_OK;
	}
	qsort(h.g, h.n, sizeof(*h.g), by_recent);
	names = calloc(h.n, sizeof(*names));
	if (!names) {
		free(h.g);
		return cli_fail(c, "hibernate: out of memory");
	}
	for (size_t i = 0; i < h.n; i++)
		snprintf(names[i], sizeof(names[i]), "%s", h.g[i].e.name);
	/* the order first: resume melts what is frozen, whatever happens next */
	err = list_write(names, h.n);
	if (err) {
		rc = cli_fail(c, "hibernate: writing %s: %s", LIST_FILE, strerror(-err));
		goto out;
	}
	rc = store_cmd_open(&sc, 1, &s);
	if (rc)
		goto out;
	cli_log_release(c, 1);
	for (size_t i = 0; i < h.n; i++)
		hold(&h.g[i]);
	for (size_t i = 0; i < h.n; i++) {
		struct registry_entry *e = &h.g[i].e;
		struct dump_opts o = { .freeze = true, .base = STORE_SNAP_NEWEST,
				       .tcp_established = tcp_established };
		struct dump_result res;
		char what[160], hb[32];

		/* a moment running between the two: its image is the freeze's
		 * instant, as ever */
		let_go(&h.g[i]);
		err = cli_wait_paged_in(e->name);
		if (!err)
			err = dump_group(s, e->name, e->pid, &o, &res);
		if (!err) {
			e->state = REGISTRY_FROZEN;
			err = registry_put(cli_home(), e);
		}
		if (err) {
			failed++;
			snprintf(what, sizeof(what), "NOT frozen: %s", store_strerror(err));
		} else {
			frozen++;
			bytes += res.bytes;
			pages += res.pages;
			snprintf(what, sizeof(what), "frozen (pid %d, %s in memory, %" PRIu64
				 " pages written, %.0f ms)", (int)e->pid,
				 cli_human(res.bytes, hb, sizeof(hb)), res.pages, res.total_ns / 1e6);
		}
		progress(sc.json, i + 1, h.n, e->name, what);
	}
	{
		double secs = (double)(mono_ns() - t0) / 1e9;
		char hb[32];

		if (sc.json)
			printf("{\"frozen\": %u, \"failed\": %u, \"bytes\": %" PRIu64 ", \"pages\": %"
			       PRIu64 ", \"seconds\": %.3f}\n", frozen, failed, bytes, pages, secs);
		else
			printf("hibernated %u group%s (%s of memory, %" PRIu64 " pages written) in "
			       "%.1f s; %u failed\n", frozen, frozen == 1 ? "" : "s",
			       cli_human(bytes, hb, sizeof(hb)), pages, secs, failed);
	}
	rc = failed ? cli_fail(c, "hibernate: %u group%s could not be frozen", failed,
			       failed == 1 ? "" : "s") : CLI_OK;
	rc = store_cmd_close(&sc, s, rc);
out:
	for (size_t i = 0; i < h.n; i++)
		let_go(&h.g[i]);
	free(names);
	free(h.g);
	return rc;
}

/* The names of the list, in order; *n 0 when there is none. */
static int list_read(char (**names)[STORE_NAME_MAX + 1], size_t *n)
{
	char path[PATH_MAX], line[256];
	size_t cap = 0;
	FILE *f;
	int r;

	*names = NULL;
	*n = 0;
	if ((r = list_path(path, sizeof(path))))
		return r;
	f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!registry_name_ok(line))
			continue;	/* untrusted: only names a group can have */
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			void *p = realloc(*names, cap * sizeof(**names));
			if (!p) {
				fclose(f);
				return -ENOMEM;
			}
			*names = p;
		}
		memcpy((*names)[(*n)++], line, strlen(line) + 1);	/* name_ok: it fits */
	}
	fclose(f);
	return 0;
}

static int run_resume(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	char (*names)[STORE_NAME_MAX + 1] = NULL;
	struct store_cmd sc;
	struct store *s = NULL;
	uint64_t t0 = mono_ns();
	unsigned melted = 0, failed = 0, skipped = 0;
	size_t n, nleft = 0;
	int rc, err;

	rc = store_cmd_parse(&sc, c, self, argc, argv, NULL, NULL, NULL, 0, 0);
	if (rc >= 0)
		return rc;
	strncpy(sc.cmdpath, "resume", sizeof(sc.cmdpath));
	err = list_read(&names, &n);
	if (err)
		return cli_fail(c, "resume: reading %s: %s", LIST_FILE, strerror(-err));
	if (!n) {
		if (sc.json)
			printf("{\"melted\": 0, \"failed\": 0}\n");
		else
			printf("nothing to resume: no hibernate to undo\n");
		free(names);
		return CLI_OK;
	}
	rc = store_cmd_open(&sc, 0, &s);
	if (rc) {
		free(names);
		return rc;
	}
	cli_log_release(c, 1);
	for (size_t i = 0; i < n; i++) {
		struct restore_opts o = { .snap = STORE_SNAP_NEWEST, .lazy = true };
		struct restore_result res = { 0 };
		struct registry_entry e;
		char what[160];

		if (registry_get(cli_home(), names[i], &e) || e.state != REGISTRY_FROZEN) {
			skipped++;
			progress(sc.json, i + 1, n, names[i], "not frozen: left alone");
			continue;
		}
		err = cli_melt_group(s, names[i], &o, &res);
		if (err) {
			failed++;
			if (nleft != i)
				memcpy(names[nleft], names[i], sizeof(names[0]));
			nleft++;
			snprintf(what, sizeof(what), "NOT melted: %s", store_strerror(err));
		} else {
			melted++;
			char note[64];

			snprintf(what, sizeof(what), "runs again as pid %d%s (%.1f ms; memory "
				 "pages in behind it)", (int)cli_melted_pid(&res),
				 cli_pidns_note(&res, note, sizeof(note)), res.total_ns / 1e6);
		}
		progress(sc.json, i + 1, n, names[i], what);
	}
	/* the ones that failed stay listed for the next resume */
	err = list_write(names, nleft);
	if (sc.json)
		printf("{\"melted\": %u, \"failed\": %u, \"skipped\": %u, \"seconds\": %.3f}\n", melted,
		       failed, skipped, (double)(mono_ns() - t0) / 1e9);
	else
		printf("resumed %u group%s in %.1f s; %u failed, %u left alone\n", melted,
		       melted == 1 ? "" : "s", (double)(mono_ns() - t0) / 1e9, failed, skipped);
	free(names);
	if (err)
		rc = cli_fail(c, "resume: writing %s: %s", LIST_FILE, strerror(-err));
	else
		rc = failed ? cli_fail(c, "resume: %u group%s could not be melted", failed,
				       failed == 1 ? "" : "s") : CLI_OK;
	return store_cmd_close(&sc, s, rc);
}

const struct cli_cmd cli_cmd_hibernate = {
	.name = "hibernate", .run = run_hibernate,
	.summary = "freeze every running group (the laptop case)",
	.usage = "Usage: cryo hibernate [--tcp-established] [--store PATH] [--json]\n"
		 "\n"
		 "Freeze every running group, the most recently used first, one line of\n"
		 "progress per group and a summary; their memory is freed, their images\n"
		 "stay in the store. The order is kept in $CRYO_HOME/hibernate.list for\n"
		 "'cryo resume'. Exits 1 if a group could not be frozen (it runs on).\n"
		 "\n"
		 "Options:\n"
		 "  --tcp-established  keep the groups' TCP connections to outside, as\n"
		 "                 'cryo freeze --tcp-established' does\n"
		 "  --store PATH   the store (default $CRYO_HOME/store)\n"
		 "  --json         a JSON summary\n"
		 "  --help         show this help\n",
};

const struct cli_cmd cli_cmd_resume = {
	.name = "resume", .run = run_resume,
	.summary = "melt every group hibernate froze",
	.usage = "Usage: cryo resume [--store PATH] [--json]\n"
		 "\n"
		 "Melt the groups the last 'cryo hibernate' froze, the most recently used\n"
		 "first, each lazily (running in milliseconds, its memory paged in\n"
		 "behind it). A group melted or removed since is left alone. Those that\n"
		 "fail stay listed for the next resume; exits 1 then.\n"
		 "\n"
		 "Options:\n"
		 "  --store PATH   the store (default $CRYO_HOME/store)\n"
		 "  --json         a JSON summary\n"
		 "  --help         show this help\n",
};
