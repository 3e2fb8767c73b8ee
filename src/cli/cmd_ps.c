/* cryo ps: the groups, their processes and their snapshots, one line each.
 *
 *   NAME PID STATE LAST-SNAPSHOT SNAPSHOTS STORED RSS DIRTY/s NS-PID
 *
 * PID is the host's (what kill, gdb and cryod use); NS-PID the one the
 * program sees when it runs in a pid namespace of its own (a melt whose
 * pids were taken), "-" otherwise.
 * STATE is the registry's, except that a running group whose process is
 * gone shows "exited". DIRTY/s needs cryod's dirty tracking: "-" until it
 * runs. */
#include "cli/json.h"
#include "cli/store_cmd.h"
#include "common/clock.h"
#include "image/registry.h"
#include "pager/serve.h"
#include "term/term.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ps_row {
	struct registry_entry e;
	int alive;
	char ended[24];			/* "exited(3)": how its process ended */
	const char *paging;		/* a lazy melt not all in: "paging", "stalled" */
	uint64_t snaps, stored, last_ns;
	uint64_t rss;			/* bytes; 0 when not running */
};

struct ps {
	struct ps_row *rows;
	size_t n, cap;
};

static int add_row(void *arg, const struct registry_entry *e)
{
	struct ps *p = arg;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct ps_row *nr = realloc(p->rows, cap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		p->rows = nr;
		p->cap = cap;
	}
	memset(&p->rows[p->n], 0, sizeof(p->rows[0]));
	p->rows[p->n++].e = *e;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct ps_row *)a)->e.name, ((const struct ps_row *)b)->e.name);
}

static int count_snap(void *arg, const struct store_snap_info *info)
{
	struct ps_row *r = arg;

	r->snaps++;
	r->stored += info->written;
	if (info->time_ns > r->last_ns)
		r->last_ns = info->time_ns;
	return 0;
}

/* VmRSS of pid in bytes, 0 if unknown. */
static uint64_t rss_of(pid_t pid)
{
	char path[64], line[256];
	unsigned long long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

/* How a group's process ended: as cryod saw it (any group it watched:
 * registry_exit_get), or as the terminal's holder of a `cryo run` group
 * (its parent) did: CRYO_HOME/term/NAME.exit "exited N" or "killed SIG".
 * Neither: "exited", how not known. */
static void read_ended(struct ps_row *r)
{
	char path[PATH_MAX], how[16];
	int v;
	FILE *f;

	if (!registry_exit_get(cli_home(), &r->e, &v) && v >= 0) {
		registry_exit_text(v, r->ended, sizeof(r->ended));
		return;
	}
	if (term_path(cli_home(), r->e.name, "exit", path, sizeof(path)))
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	if (fscanf(f, "%15s %d", how, &v) == 2 && (!strcmp(how, "exited") || !strcmp(how, "killed")))
		snprintf(r->ended, sizeof(r->ended), "%s(%d)", how, v);
	fclose(f);
}

static const char *state_of(const struct ps_row *r)
{
	if (r->e.state == REGISTRY_RUNNING && !r->alive)
		return r->ended[0] ? r->ended : "exited";
	if (r->paging)
		return r->paging;
	return registry_state_name(r->e.state);
}

/* "12s ago", "5m ago", "3h ago", "2d ago", or "-". */
static const char *age(uint64_t then_ns, uint64_t now_ns, char *buf, size_t n)
{
	uint64_t s = now_ns > then_ns ? (now_ns - then_ns) / 1000000000ull : 0;

	if (!then_ns)
		snprintf(buf, n, "-");
	else if (s < 120)
		snprintf(buf, n, "%" PRIu64 "s ago", s);
	else if (s < 7200)
		snprintf(buf, n, "%" PRIu64 "m ago", s / 60);
	else if (s < 172800)
		snprintf(buf, n, "%" PRIu64 "h ago", s / 3600);
	else
		snprintf(buf, n, "%" PRIu64 "d ago", s / 86400);
	return buf;
}

static void print_rows(const struct ps *p, struct json *j)
{
	uint64_t now = wall_ns();
	char a[32], st[16], rs[16], np[16];

	if (!j)
		printf("%-16s %8s %-8s %-14s %9s %10s %10s %8s %8s\n", "NAME", "PID", "STATE",
		       "LAST-SNAPSHOT", "SNAPSHOTS", "STORED", "RSS", "DIRTY/s", "NS-PID");
	for (size_t i = 0; i < p->n; i++) {
		const struct ps_row *r = &p->rows[i];

		if (j) {
			json_obj_begin(j);
			json_kv_str(j, "name", r->e.name);
			json_key(j, "pid");
			json_i64(j, r->e.pid);
			json_key(j, "ns_pid");
			if (r->e.ns_pid)
				json_i64(j, r->e.ns_pid);
			else
				json_null(j);
			json_key(j, "ns_init_pid");
			if (r->e.ns_init)
				json_i64(j, r->e.ns_init);
			else
				json_null(j);
			json_kv_str(j, "state", state_of(r));
			json_kv_u64(j, "last_snapshot_ns", r->last_ns);
			json_kv_u64(j, "snapshots", r->snaps);
			json_kv_u64(j, "stored_bytes", r->stored);
			json_kv_u64(j, "rss_bytes", r->rss);
			json_key(j, "dirty_per_s");
			json_null(j);
			json_obj_end(j);
			continue;
		}
		if (r->e.ns_pid)
			snprintf(np, sizeof(np), "%d", (int)r->e.ns_pid);
		printf("%-16s %8d %-8s %-14s %9" PRIu64 " %10s %10s %8s %8s\n", r->e.name,
		       (int)r->e.pid, state_of(r), age(r->last_ns, now, a, sizeof(a)), r->snaps,
		       cli_human(r->stored, st, sizeof(st)),
		       r->alive ? cli_human(r->rss, rs, sizeof(rs)) : "-", "-",
		       r->e.ns_pid ? np : "-");
	}
}

static int run_ps(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	struct ps p = { 0 };
	struct store_cmd sc;
	struct store *s = NULL;
	struct json j;
	int rc, err;

	rc = store_cmd_parse(&sc, c, self, argc, argv, NULL, NULL, NULL, 0, 0);
	if (rc >= 0)
		return rc;
	strncpy(sc.cmdpath, "ps", sizeof(sc.cmdpath));
	/* the registry and store are root's: others ask cryod */
	if (geteuid() != 0)
		return cli_ctl_ps(c, sc.json);
	err = registry_list(cli_home(), add_row, &p);
	if (err) {
		free(p.rows);
		return cli_fail(c, "ps: reading the group registry: %s", strerror(-err));
	}
	/* No store yet: no groups either, nothing to open. */
	if (p.n) {
		rc = store_cmd_open(&sc, 0, &s);
		if (rc) {
			free(p.rows);
			return rc;
		}
	}
	qsort(p.rows, p.n, sizeof(p.rows[0]), by_name);
	for (size_t i = 0; i < p.n; i++) {
		struct ps_row *r = &p.rows[i];
		char pdir[PATH_MAX];
		uint64_t st;

		r->alive = r->e.state == REGISTRY_RUNNING &&
			   registry_pid_starttime(r->e.pid, &st) == 0 && st == r->e.starttime;
		if (r->alive) {
			enum pager_health h = cli_pager_dir(pdir, sizeof(pdir)) ?
					      pager_health(pdir, r->e.name, NULL) : PAGER_NONE;
			r->rss = rss_of(r->e.pid);
			r->paging = h == PAGER_WORKING ? "paging" : h == PAGER_DEAD ? "stalled" : NULL;
		} else
			read_ended(r);
		err = store_list_object(s, r->e.name, count_snap, r);
		if (err && err != -ENOENT) {
			free(p.rows);
			return store_cmd_close(&sc, s, cli_fail_store(c, err, "ps %s", r->e.name));
		}
	}
	cli_log_release(c, 1);
	if (sc.json) {
		json_init(&j, stdout);
		json_arr_begin(&j);
	}
	print_rows(&p, sc.json ? &j : NULL);
	if (sc.json) {
		json_arr_end(&j);
		json_end(&j);
	}
	free(p.rows);
	return s ? store_cmd_close(&sc, s, CLI_OK) : CLI_OK;
}

const struct cli_cmd cli_cmd_ps = {
	.name = "ps", .run = run_ps,
	.summary = "list the groups, their state and snapshots",
	.usage = "Usage: cryo ps [--store PATH] [--json]\n"
		 "\n"
		 "One line per group: NAME PID STATE LAST-SNAPSHOT SNAPSHOTS STORED RSS\n"
		 "DIRTY/s NS-PID. PID is the host's; NS-PID the pid the program sees\n"
		 "when it runs in a pid namespace of its own (its pids were taken at\n"
		 "melt), \"-\" otherwise. STATE is running, frozen, or exited (registered\n"
		 "running but its process is gone: `cryo recover` brings it back):\n"
		 "exited(N) or killed(SIG) when cryod (or the terminal of a `cryo run`\n"
		 "group) saw how it ended, exited alone when nothing did; paging while\n"
		 "a lazy melt still brings its memory in, stalled if that melt's pager\n"
		 "died (the next snap, or cryod, ends it). STORED is what its\n"
		 "snapshots added to the store; RSS the running process's resident\n"
		 "memory; DIRTY/s needs the daemon and shows \"-\" without it.\n"
		 "\n"
		 "Options:\n"
		 "  --store PATH   the store (default $CRYO_HOME/store)\n"
		 "  --json         a JSON array of groups\n"
		 "  --help         show this help\n",
};
