/* cryo melt NAME: bring a group back from its newest (or Nth) snapshot. */
#include "cli/store_cmd.h"
#include "image/registry.h"
#include "restore/restore.h"
#include "image/image.h"
#include "term/term.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct melt_args {
	uint64_t snap;
	int eager;
	enum restore_pidns pidns;
	const char *in, *out, *err;
};

static int melt_opt(struct store_cmd *sc, void *arg, int ch, const char *optarg)
{
	struct melt_args *a = arg;

	switch (ch) {
	case 'n':
		if (store_cmd_parse_snap(optarg, &a->snap))
			return cli_usage(sc->c, "melt", "melt: bad snapshot number '%s'", optarg);
		return 0;
	case 'i':
		a->in = optarg;
		return 0;
	case 'o':
		a->out = optarg;
		return 0;
	case 'e':
		a->err = optarg;
		return 0;
	case 'E':
		a->eager = 1;
		return 0;
	case 'P':
		a->pidns = RESTORE_PIDNS_ALWAYS;
		return 0;
	case 'N':
		a->pidns = RESTORE_PIDNS_NEVER;
		return 0;
	}
	return CLI_USAGE;
}

/* Record that name runs again as res->pid (the host's): with the start
 * time that tells this process from a later one with its pid, and its pid
 * namespace's pids if it went into one. */
static void registry_running(const char *name, const struct restore_result *res)
{
	pid_t pid = res->pid;
	struct registry_entry e = { 0 };
	struct timespec ts;

	if (registry_get(cli_home(), name, &e)) {
		memset(&e, 0, sizeof(e));
		snprintf(e.name, sizeof(e.name), "%s", name);
		clock_gettime(CLOCK_REALTIME, &ts);
		e.created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	e.pid = pid;
	e.ns_pid = res->ns_pid;
	e.ns_init = res->ns_init;
	e.state = REGISTRY_RUNNING;
	if (registry_pid_starttime(pid, &e.starttime) || registry_put(cli_home(), &e))
		fprintf(stderr, "cryo: warning: %s runs again as pid %d but the group "
			"registry was not updated\n", name, (int)pid);
}

/* 1 with its host pid if group name runs now (registered running, the
 * same process). Such a group is not melted a second time: its pids being
 * in use, the copy would go into a pid namespace of its own and the
 * registry would lose the first. */
static int running_now(const char *name, pid_t *pid)
{
	struct registry_entry e;
	uint64_t st;

	if (registry_get(cli_home(), name, &e) || e.state != REGISTRY_RUNNING ||
	    registry_pid_starttime(e.pid, &st) || st != e.starttime)
		return 0;
	*pid = e.pid;
	return 1;
}

/* 1 if a process of the snapshot had a pseudo-terminal (fds/tty.c). */
static int had_tty(struct store *s, const char *name, uint64_t snap)
{
	Cryo__GroupEntry *g = NULL;
	struct store_snap *sn;
	int found = 0;

	if (store_snap_open(s, name, snap, &sn))
		return 0;	/* the restore says why */
	if (!image_get_group(sn, &g)) {
		for (size_t i = 0; i < g->n_procs && !found; i++) {
			Cryo__FdsEntry *fe = NULL;
			char key[STORE_KEY_MAX + 1];

			image_key(key, sizeof(key), (pid_t)g->procs[i]->pid, "fds");
			if (image_get(sn, key, &cryo__fds_entry__descriptor, (ProtobufCMessage **)&fe))
				continue;
			for (size_t k = 0; k < fe->n_fds && !found; k++)
				found = !strcmp(fe->fds[k]->kind, "tty");
			image_free(&fe->base);
		}
		image_free(&g->base);
	}
	store_snap_close(sn);
	return found;
}

/* A fresh terminal for name (its slave into slave). The holder of the
 * process that was frozen ends on its own once that process is gone:
 * wait a little for it rather than take its terminal from a live one. */
static int new_terminal(const char *name, char *slave, size_t n)
{
	struct term_start_opts to = { .home = cli_home(), .name = name };
	int err = -EEXIST;

	for (int i = 0; i < 40 && err == -EEXIST; i++) {
		err = term_start(&to, NULL, slave, n);
		if (err == -EEXIST)
			usleep(50000);
	}
	return err;
}

int cli_melt_group(struct store *s, const char *name, struct restore_opts *o,
		   struct restore_result *res)
{
	char logdir[PATH_MAX], logpath[PATH_MAX + STORE_NAME_MAX + 8], slave[128];
	char pagerlog[PATH_MAX + STORE_NAME_MAX + 16], pagerdir[PATH_MAX];
	int err, tty = !o->fds.tty_path && had_tty(s, name, o->snap);

	snprintf(logdir, sizeof(logdir), "%s/log", cli_home());
	if (mkdir(logdir, 0700) && errno != EEXIST)
		return -errno;
	snprintf(logpath, sizeof(logpath), "%s/%s.log", logdir, name);
	if (!o->fds.log_path)
		o->fds.log_path = logpath;
	if (o->lazy) {
		snprintf(pagerlog, sizeof(pagerlog), "%s/pager-%s.log", logdir, name);
		o->pager_log = pagerlog;
		o->pager_dir = cli_pager_dir(pagerdir, sizeof(pagerdir));
	}
	if (tty) {
		err = new_terminal(name, slave, sizeof(slave));
		if (err) {
			fprintf(stderr, "cryo: %s: a new terminal: %s\n", name,
				err == -EEXIST ? "its old one is still in use" : strerror(-err));
			return err;
		}
		o->fds.tty_path = slave;
	}
	err = restore_group(s, name, o, res);
	if (o->fds.log_path == logpath)
		o->fds.log_path = NULL;
	o->pager_log = o->pager_dir = NULL;
	if (tty) {
		o->fds.tty_path = NULL;
		/* the holder watches the process from now, or ends */
		if (err)
			(void)term_quit(cli_home(), name);
		else if (term_watch(cli_home(), name, res->pid))
			fprintf(stderr, "cryo: %s: its terminal will not end with it\n", name);
	}
	if (!err)
		registry_running(name, res);
	return err;
}

static int run_melt(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	static const struct option extra[] = {
		{ "snapshot", required_argument, NULL, 'n' },
		{ "stdin", required_argument, NULL, 'i' },
		{ "stdout", required_argument, NULL, 'o' },
		{ "stderr", required_argument, NULL, 'e' },
		{ "eager", no_argument, NULL, 'E' },
		{ "pidns", no_argument, NULL, 'P' },
		{ "no-pidns", no_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	struct melt_args a = { .snap = STORE_SNAP_NEWEST };
	struct restore_opts o = { 0 };
	struct restore_result res = { 0 };
	struct cli_bar bar;
	struct store_cmd sc;
	struct store *s;
	const char *name;
	char note[64];
	pid_t running;
	int rc, err;

	rc = store_cmd_parse(&sc, c, self, argc, argv, extra, melt_opt, &a, 1, 1);
	if (rc >= 0)
		return rc;
	strncpy(sc.cmdpath, "melt", sizeof(sc.cmdpath));
	name = sc.pos[0];
	if (strlen(name) > STORE_NAME_MAX || strchr(name, '/'))
		return cli_usage(c, "melt", "melt: bad group name '%s'", name);
	/* the store is root's: others ask cryod, for a snapshot of their own */
	if (geteuid() != 0) {
		if (a.snap != STORE_SNAP_NEWEST || a.in || a.out || a.err || a.eager || a.pidns ||
		    sc.path_opt)
			return cli_fail(c, "melt %s: only root melts with options; others get the "
					"newest snapshot of their own groups through cryod", name);
		return cli_ctl_melt(c, name);
	}
	if (running_now(name, &running))
		return cli_fail(c, "melt %s: the group is running (pid %d is in use by it); freeze "
				"it first", name, (int)running);
	o.snap = a.snap;
	o.lazy = !a.eager;
	o.pidns = a.pidns;
	o.fds.stdin_path = a.in;
	o.fds.stdout_path = a.out;
	o.fds.stderr_path = a.err;
	rc = store_cmd_open(&sc, 0, &s);
	if (rc)
		return rc;
	cli_bar_init(&bar, c, name, sc.json);
	o.progress = &bar.p;
	err = cli_melt_group(s, name, &o, &res);
	cli_bar_end(&bar);
	if (err) {
		rc = cli_fail_store(c, err, "melt %s", name);
		return store_cmd_close(&sc, s, rc);
	}
	cli_log_release(c, 1);
	if (sc.json && res.ns_pid)
		printf("{\"name\": \"%s\", \"pid\": %d, \"ns_pid\": %d, \"ns_init_pid\": %d, "
		       "\"ms\": %.1f}\n", name, (int)res.pid, (int)res.ns_pid, (int)res.ns_init,
		       (double)res.total_ns / 1e6);
	else if (sc.json)
		printf("{\"name\": \"%s\", \"pid\": %d, \"ns_pid\": null, \"ms\": %.1f}\n", name,
		       (int)res.pid, (double)res.total_ns / 1e6);
	else
		printf("melted %s: pid %d runs again%s (%.1f ms)\n", name, (int)cli_melted_pid(&res),
		       cli_pidns_note(&res, note, sizeof(note)), (double)res.total_ns / 1e6);
	return store_cmd_close(&sc, s, CLI_OK);
}

const struct cli_cmd cli_cmd_melt = {
	.name = "melt", .run = run_melt,
	.summary = "bring a frozen group back from a snapshot",
	.usage = "Usage: cryo melt NAME [--snapshot N] [--stdin FILE] [--stdout FILE]\n"
		 "                 [--stderr FILE] [--eager] [--pidns | --no-pidns]\n"
		 "                 [--store PATH] [--json]\n"
		 "\n"
		 "Rebuild the process of group NAME from its newest snapshot (or snapshot\n"
		 "N) with its old pid, memory, threads, registers, signals, timers, fds and\n"
		 "credentials, and return once it runs on its own (not a child of cryo, not\n"
		 "traced). Its private memory comes in on demand: a pager process serves\n"
		 "each first touch from the store and brings the rest in behind it (log:\n"
		 "$CRYO_HOME/log/pager-NAME.log); snapshots of the group wait until all is\n"
		 "in. If a pid or tid of the group is in use, the group goes into a new\n"
		 "pid namespace (with a mount namespace and /proc of its own) in which\n"
		 "every process keeps its old pid; `cryo ps` shows both pids. Refuses a\n"
		 "group that is running; fails if a file it mapped changed since the\n"
		 "snapshot; a failed melt leaves no process behind and the image as it\n"
		 "was.\n"
		 "\n"
		 "Options:\n"
		 "  --eager        write all of its memory before it runs (no pager)\n"
		 "  --pidns        into a new pid namespace even if its pids are free\n"
		 "  --no-pidns     never: a pid in use is an error\n"
		 "  --snapshot N   melt snapshot N instead of the newest\n"
		 "  --stdin FILE   what a terminal or outside pipe on input becomes\n"
		 "                 (default /dev/null)\n"
		 "  --stdout FILE  where such an output goes (default: appended to\n"
		 "  --stderr FILE  $CRYO_HOME/log/NAME.log)\n"
		 "  --store PATH   the store (default $CRYO_HOME/store)\n"
		 "  --json         print the result as JSON\n"
		 "  --help         show this help\n",
};
