#define LOG_PREFIX "cryod: "
#include "daemon/cryod.h"
#include "daemon/sched.h"
#include "daemon/worker.h"
#include "daemon/ctl.h"
#include "proc/status.h"
#include "image/image.h"
#include "common/clock.h"
#include "common/log.h"
#include "dump/dump.h"
#include "image/registry.h"
#include "pager/serve.h"
#include "proc/exits.h"
#include "term/term.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

/* What cryod knows of one group between ticks. */
struct group {
	char name[STORE_NAME_MAX + 1];
	pid_t pid;
	uint64_t starttime;
	struct sched_look prev;
	bool have_prev, gone, seen;
	uint64_t last_snap_ns;		/* wall clock of the newest snapshot */
	uint64_t weak, force, skipped, failed;
	bool tracking;			/* the worker tracks its writes */
	/* how it ended (proc/exits.h): the wait status of the last exit
	 * event of its process; watched: seen alive since we listen */
	bool watched, exit_seen;
	int exit_status;
};

struct cryod {
	const struct cryod_opts *o;
	char store_path[PATH_MAX];
	struct group *g;
	size_t n, cap;
	enum sched_action want;		/* asked for by a signal, for every group */
	struct worker w;		/* does the snapshots (worker.h) */
	uint64_t started_ns;
	size_t paging;			/* lazy melts still paging in this tick */
	int exits;			/* exit events (proc/exits.h), or -1 */
};

/* ---- the lock and the pid file ---- */

static int lock_path(const char *home, const char *file, char *buf, size_t n)
{
	return snprintf(buf, n, "%s/%s", home, file) >= (int)n ? -ENAMETOOLONG : 0;
}

int cryod_pid(const char *home, pid_t *pid)
{
	char path[PATH_MAX], buf[32] = "";
	int fd, r;

	if ((r = lock_path(home, "cryod.lock", path, sizeof(path))))
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ESRCH;
	/* If we can take it, nobody holds it. */
	if (!flock(fd, LOCK_SH | LOCK_NB)) {
		close(fd);
		return -ESRCH;
	}
	r = (int)pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	*pid = r > 0 ? (pid_t)atoi(buf) : 0;
	return *pid > 0 ? 0 : -ESRCH;
}

/* Hold home/cryod.lock for the daemon's life (the fd is left open); the
 * file holds the pid for `cryo daemon status|stop`. */
static int take_lock(const char *home)
{
	char path[PATH_MAX], buf[32];
	int fd, r, len;
	pid_t other;

	if ((r = lock_path(home, "cryod.lock", path, sizeof(path))))
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		pr_err("%s: %s", path, strerror(errno));
		return r;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		close(fd);
		if (!cryod_pid(home, &other))
			pr_err("cryod already runs for %s as pid %d", home, (int)other);
		else
			pr_err("cryod already runs for %s", home);
		return -EALREADY;
	}
	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, buf, (size_t)len, 0) != len) {
		r = -errno;
		close(fd);
		return r;
	}
	return 0;
}

/* ---- groups ---- */

static struct group *group_get(struct cryod *d, const struct registry_entry *e)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->g[i].name, e->name)) {
			if (d->g[i].pid != e->pid || d->g[i].starttime != e->starttime) {
				/* melted again, or re-adopted: a new process */
				d->g[i].pid = e->pid;
				d->g[i].starttime = e->starttime;
				d->g[i].have_prev = d->g[i].gone = false;
				d->g[i].watched = d->g[i].exit_seen = false;
				worker_forget(&d->w, d->g[i].name);
				d->g[i].tracking = false;
			}
			return &d->g[i];
		}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct group *ng = realloc(d->g, cap * sizeof(*ng));

		if (!ng)
			return NULL;
		d->g = ng;
		d->cap = cap;
	}
	memset(&d->g[d->n], 0, sizeof(d->g[0]));
	snprintf(d->g[d->n].name, sizeof(d->g[0].name), "%s", e->name);
	d->g[d->n].pid = e->pid;
	d->g[d->n].starttime = e->starttime;
	return &d->g[d->n++];
}

static int newest_time(void *arg, const struct store_snap_info *info)
{
	uint64_t *t = arg;

	if (info->time_ns > *t)
		*t = info->time_ns;
	return 0;
}

/* When a group is first seen: the time of its newest snapshot. */
static void load_last(struct cryod *d, struct group *g)
{
	struct store_open_opts oo = { .read_only = 1 };
	struct store *s;

	if (store_open(d->store_path, &oo, &s))
		return;
	(void)store_list_object(s, g->name, newest_time, &g->last_snap_ns);
	store_close(s);
}

/* One snapshot of g: incremental on top of its newest, then retention. */
static void snapshot(struct cryod *d, struct group *g, int force)
{
	struct dump_result res;
	int r = 0;

	if (d->w.fd < 0)
		r = worker_start(&d->w, d->store_path, d->o->keep);
	if (!r)
		r = worker_snapshot(&d->w, g->name, g->pid, false, &res, &g->tracking);
	if (r) {
		g->tracking = false;
		g->failed++;
		pr_err("%s snapshot of %s (pid %d) failed: %s", force ? "force" : "weak", g->name,
		       (int)g->pid, store_strerror(r));
		return;
	}
	g->last_snap_ns = wall_ns();
	if (force)
		g->force++;
	else
		g->weak++;
	pr_info("%s snapshot %" PRIu64 " of %s (pid %d): %" PRIu64 " pages written (%s, %" PRIu64
		" before the stop), stopped %.1f ms", force ? "force" : "weak", res.snap_no, g->name,
		(int)g->pid, res.pages, res.tracked ? "tracked writes" :
		res.incremental ? "compared with the newest" : "full", res.precopied,
		res.stopped_ns / 1e6);
}

static void tick_group(struct cryod *d, struct group *g)
{
	struct sched_policy p = { d->o->interval_ns, d->o->max_age_ns };
	struct sched_look now;
	enum sched_action a;

	if (sched_look(g->pid, &now)) {
		if (!g->gone)
			pr_info("group %s: pid %d is gone (exited or killed); `cryo recover` "
				"melts it from its newest snapshot", g->name, (int)g->pid);
		g->gone = true;
		worker_forget(&d->w, g->name);
		g->tracking = false;
		return;
	}
	a = sched_decide(&p, wall_ns(), g->last_snap_ns, &now, &g->prev, g->have_prev, d->want);
	g->prev = now;
	g->have_prev = true;
	switch (a) {
	case SCHED_WEAK:
		snapshot(d, g, 0);
		break;
	case SCHED_FORCE:
		snapshot(d, g, 1);
		break;
	case SCHED_SKIP_BUSY:
		g->skipped++;
		break;
	case SCHED_NONE:
		break;
	}
	/* The next idle check compares with the group as the dump left it
	 * (its injected syscalls count as the group's CPU time). */
	if ((a == SCHED_WEAK || a == SCHED_FORCE) && !sched_look(g->pid, &now))
		g->prev = now;
}

/* An exit event: a thread of a group's process ended (the last one's
 * status is the process's). */
static void on_exit_event(void *arg, pid_t tgid, pid_t tid, int status)
{
	struct cryod *d = arg;

	(void)tid;
	for (size_t i = 0; i < d->n; i++)
		if (d->g[i].pid == tgid && !d->g[i].gone) {
			d->g[i].exit_seen = true;
			d->g[i].exit_status = status;
		}
}

static void drain_exits(struct cryod *d)
{
	if (d->exits < 0 || proc_exits_drain(d->exits, on_exit_event, d) != -ENOBUFS)
		return;
	/* some were lost: a status seen before may not be the last one */
	pr_warn("exit events were lost: how a group ends now may show as unknown");
	for (size_t i = 0; i < d->n; i++)
		d->g[i].exit_seen = false;
}

/* g's process is gone: record how it ended, if we were watching. */
static void record_exit(struct cryod *d, struct group *g, const struct registry_entry *e)
{
	char text[32];
	int status = -1, r;

	if (d->exits < 0 || !g->watched)
		return;
	drain_exits(d);
	if (g->exit_seen)
		status = g->exit_status;
	r = registry_exit_put(d->o->home, e, status);
	if (r)
		pr_warn("group %s: recording how pid %d ended: %s", g->name, (int)e->pid,
			strerror(-r));
	pr_info("group %s: pid %d %s%s", g->name, (int)e->pid,
		registry_exit_text(status, text, sizeof(text)),
		status < 0 ? " (status unknown: its exit event was lost)" : "");
}

static int see(void *arg, const struct registry_entry *e)
{
	struct cryod *d = arg;
	struct group *g;
	uint64_t st;

	if (e->state != REGISTRY_RUNNING)
		return 0;
	g = group_get(d, e);
	if (!g)
		return -ENOMEM;
	if (!g->seen && !g->last_snap_ns)
		load_last(d, g);
	g->seen = true;
	if (registry_pid_starttime(e->pid, &st) || st != e->starttime) {
		if (!g->gone) {
			record_exit(d, g, e);
			pr_info("group %s: pid %d is gone; `cryo recover` melts it", g->name,
				(int)e->pid);
		}
		g->gone = true;
		worker_forget(&d->w, g->name);
		g->tracking = false;
		return 0;
	}
	g->gone = false;
	g->watched = d->exits >= 0;
	if (!d->paging)
		tick_group(d, g);
	return 0;
}

/* CRYO_HOME/cryod.status: what `cryo daemon status` prints. */
static void write_status(struct cryod *d)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;

	if (lock_path(d->o->home, "cryod.status", path, sizeof(path)))
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "pid %d\nstarted_ns %" PRIu64 "\ninterval_s %.3f\nmax_age_s %.3f\nkeep %u\n"
		"paging %zu\n", (int)getpid(), d->started_ns, d->o->interval_ns / 1e9,
		d->o->max_age_ns / 1e9, d->o->keep, d->paging);
	for (size_t i = 0; i < d->n; i++) {
		const struct group *g = &d->g[i];

		fprintf(f, "group %s pid %d state %s weak %" PRIu64 " force %" PRIu64
			" skipped_busy %" PRIu64 " failed %" PRIu64 " last_snapshot_ns %" PRIu64
			" tracking %s\n", g->name, (int)g->pid, g->gone ? "gone" : "running", g->weak,
			g->force, g->skipped, g->failed, g->last_snap_ns,
			g->tracking ? "yes" : "no");
	}
	if (fclose(f) == 0)
		(void)rename(tmp, path);
	else
		unlink(tmp);
}

/* Lazy melts still paging in (CRYO_HOME/pager/NAME.state): a process
 * whose pager died is ended (serve.h says why); the others are counted.
 * While one pages in, its pager holds the store open for reading, so a
 * snapshot would only wait for it: the tick takes none. */
static size_t check_pagers(struct cryod *d)
{
	char dir[PATH_MAX];
	struct dirent *de;
	size_t working = 0;
	DIR *dh;

	if (lock_path(d->o->home, "pager", dir, sizeof(dir)) || !(dh = opendir(dir)))
		return 0;
	while ((de = readdir(dh))) {
		char name[STORE_NAME_MAX + 1];
		size_t len = strlen(de->d_name);

		if (len <= 6 || len - 6 > STORE_NAME_MAX || strcmp(de->d_name + len - 6, ".state"))
			continue;
		memcpy(name, de->d_name, len - 6);
		name[len - 6] = 0;
		if (pager_check_dead(dir, name) == PAGER_WORKING)
			working++;
	}
	closedir(dh);
	return working;
}

static void tick(struct cryod *d)
{
	size_t kept = 0;
	int r;

	d->paging = check_pagers(d);
	for (size_t i = 0; i < d->n; i++)
		d->g[i].seen = false;
	r = registry_list(d->o->home, see, d);
	if (r && r != -ENOENT)
		pr_warn("reading the group registry: %s", strerror(-r));
	/* forget groups no longer registered running (frozen, removed) */
	for (size_t i = 0; i < d->n; i++)
		if (d->g[i].seen)
			d->g[kept++] = d->g[i];
		else
			worker_forget(&d->w, d->g[i].name);
	d->n = kept;
	if (!d->paging)
		d->want = SCHED_NONE;	/* a USR1/USR2 waits for the paging to end */
	write_status(d);
}

/* ---- the control socket (ctl.h) ---- */

/* The real uid of a group's live process, or -1 (gone, or not the same). */
static long owner_of(const struct registry_entry *e)
{
	struct proc_status st;
	uint64_t start;

	if (registry_pid_starttime(e->pid, &start) || start != e->starttime ||
	    proc_status_read(e->pid, 0, &st))
		return -1;
	return (long)st.uid[0];
}

/* The owner a group's newest snapshot records, or -1. */
static long recorded_owner(const char *store_path, const char *name)
{
	struct store_open_opts oo = { .read_only = 1 };
	Cryo__GroupEntry *g = NULL;
	struct store_snap *sn;
	struct store *s;
	long owner = -1;

	if (store_open(store_path, &oo, &s))
		return -1;
	if (!store_snap_open(s, name, STORE_SNAP_NEWEST, &sn)) {
		if (!image_get_group(sn, &g)) {
			if (g->has_owner_uid)
				owner = (long)g->owner_uid;
			image_free(&g->base);
		}
		store_snap_close(sn);
	}
	store_close(s);
	return owner;
}

struct ps_ctx {
	const char *home;
	const char *store_path;
	uid_t uid;
	Cryo__CtlReply *rep;
	size_t cap;
	int err;
};

static int ps_one(void *arg, const struct registry_entry *e)
{
	struct ps_ctx *p = arg;
	long owner = owner_of(e), seen = owner;
	Cryo__CtlGroup *g;

	/* a group without a process: the owner its snapshot records */
	if (seen < 0 && p->uid != 0)
		seen = recorded_owner(p->store_path, e->name);
	if (seen < 0 ? p->uid != 0 : !ctl_allowed(p->uid, (uid_t)seen))
		return 0;
	if (p->rep->n_groups == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		Cryo__CtlGroup **ng = realloc(p->rep->groups, cap * sizeof(*ng));

		if (!ng)
			return -ENOMEM;
		p->rep->groups = ng;
		p->cap = cap;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	cryo__ctl_group__init(g);
	p->rep->groups[p->rep->n_groups++] = g;
	g->name = strdup(e->name);
	if (e->state == REGISTRY_RUNNING && owner < 0) {
		char text[32];
		int status = -1;

		(void)registry_exit_get(p->home, e, &status);
		g->state = strdup(registry_exit_text(status, text, sizeof(text)));
	} else {
		g->state = strdup(e->state == REGISTRY_RUNNING ? "running" :
				  registry_state_name(e->state));
	}
	if (!g->name || !g->state)
		return -ENOMEM;
	g->pid = (int32_t)e->pid;
	if (e->ns_pid) {
		g->has_ns_pid = 1;
		g->ns_pid = (int32_t)e->ns_pid;
	}
	if (owner >= 0) {
		g->has_uid = 1;
		g->uid = (uint32_t)owner;
	}
	return 0;
}

static int ctl_ps(void *arg, uid_t uid, Cryo__CtlReply *rep)
{
	struct cryod *d = arg;
	struct ps_ctx p = { .home = d->o->home, .store_path = d->store_path, .uid = uid,
			    .rep = rep };
	int r = registry_list(d->o->home, ps_one, &p);

	return r == -ENOENT ? 0 : r;
}

/* *e: name's entry, if it runs and uid may act on it; else the reason in
 * rep->text and -errno. */
static int running_group(struct cryod *d, uid_t uid, const char *name, struct registry_entry *e,
			 Cryo__CtlReply *rep)
{
	long owner;

	if (!registry_name_ok(name) || registry_get(d->o->home, name, e))
		return asprintf(&rep->text, "no group named %s", name) < 0 ? -ENOMEM : -ENOENT;
	owner = owner_of(e);
	if (owner >= 0 && !ctl_allowed(uid, (uid_t)owner))
		return asprintf(&rep->text, "group %s is not yours", name) < 0 ? -ENOMEM : -EPERM;
	if (owner < 0 || e->state != REGISTRY_RUNNING)
		return asprintf(&rep->text, "group %s is not running", name) < 0 ? -ENOMEM : -ESRCH;
	return 0;
}

static int ctl_snap(void *arg, uid_t uid, const char *name, bool weak, bool freeze,
		    Cryo__CtlReply *rep)
{
	struct cryod *d = arg;
	struct registry_entry e;
	struct dump_result res;
	bool armed;
	int r;

	if ((r = running_group(d, uid, name, &e, rep)))
		return r;
	if (weak && !sched_idle_now(e.pid, 200))
		return asprintf(&rep->text, "%s: busy, weak snapshot skipped", name) < 0 ? -ENOMEM : 0;
	/* a pager holds the store for reading until its melt is all in */
	if ((d->paging = check_pagers(d)))
		return asprintf(&rep->text, "a melt is still paging in; try %s again in a "
				"moment", name) < 0 ? -ENOMEM : -EINPROGRESS;
	if (d->w.fd < 0 && (r = worker_start(&d->w, d->store_path, d->o->keep)))
		return r;
	r = worker_snapshot(&d->w, name, e.pid, freeze, &res, &armed);
	if (r)
		return asprintf(&rep->text, "snapshot of %s: %s", name, store_strerror(r)) < 0 ?
			       -ENOMEM : r;
	if (freeze) {
		e.state = REGISTRY_FROZEN;
		r = registry_put(d->o->home, &e);
		if (r)
			return asprintf(&rep->text, "%s frozen, but the registry: %s", name,
					strerror(-r)) < 0 ? -ENOMEM : r;
		return asprintf(&rep->text, "%s: frozen in snapshot %" PRIu64 " (%" PRIu64
				" pages written)", name, res.snap_no, res.pages) < 0 ? -ENOMEM : 0;
	}
	pr_info("snapshot %" PRIu64 " of %s (pid %d) asked for by uid %u", res.snap_no, name,
		(int)e.pid, (unsigned)uid);
	return asprintf(&rep->text, "%s: snapshot %" PRIu64 ", %" PRIu64 " pages written, "
			"stopped %.1f ms", name, res.snap_no, res.pages, res.stopped_ns / 1e6) < 0 ?
		       -ENOMEM : 0;
}

/* May uid melt name's newest snapshot? It must record uid as its owner,
 * and every process in it must hold only that uid (real, effective, saved,
 * fs) and no capability: melting must not give a user more than a process
 * of their own could have. *why: the reason when not. */
static bool snapshot_is_users(const char *store_path, const char *name, uid_t uid,
			      const char **why)
{
	struct store_open_opts oo = { .read_only = 1 };
	Cryo__GroupEntry *g = NULL;
	struct store_snap *sn;
	struct store *s;
	bool ok = false;

	*why = "it has no snapshot";
	if (store_open(store_path, &oo, &s))
		return false;
	if (store_snap_open(s, name, STORE_SNAP_NEWEST, &sn))
		goto out;
	if (image_get_group(sn, &g))
		goto out_snap;
	*why = "it is not yours";
	if (!g->has_owner_uid || g->owner_uid != uid)
		goto out_group;
	ok = true;
	for (size_t i = 0; i < g->n_procs && ok; i++) {
		Cryo__ProcessEntry *pe = NULL;
		char key[STORE_KEY_MAX + 1];

		if (g->procs[i]->has_zombie && g->procs[i]->zombie)
			continue;	/* no credentials left to check */
		image_key(key, sizeof(key), (pid_t)g->procs[i]->pid, "core");
		ok = !image_get(sn, key, &cryo__process_entry__descriptor, (ProtobufCMessage **)&pe) &&
		     pe->creds;
		for (size_t k = 0; ok && k < pe->creds->n_uid; k++)
			ok = pe->creds->uid[k] == uid;
		if (ok && ((pe->creds->has_cap_prm && pe->creds->cap_prm) ||
			   (pe->creds->has_cap_eff && pe->creds->cap_eff) ||
			   (pe->creds->has_cap_amb && pe->creds->cap_amb)))
			ok = false;
		if (!ok)
			*why = "its snapshot holds credentials other than yours (another uid or "
			       "capabilities): only root may melt it";
		image_free((ProtobufCMessage *)pe);
	}
out_group:
	image_free(&g->base);
out_snap:
	store_snap_close(sn);
out:
	store_close(s);
	return ok;
}

/* Run `cryo ARGS...` (this binary) and collect what it says: the work is
 * the command's (melt: with its terminal and registry steps), run as
 * root. */
static int run_cmd(char *const argv[], char **text)
{
	int p[2], st;
	char buf[4096];
	size_t n = 0;
	pid_t c;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	c = fork();
	if (c < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (c == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setenv("CRYO_LOG", "warn", 1);	/* the user gets the result, not our log */
		dup2(p[1], 1);
		dup2(p[1], 2);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t r = read(p[0], buf + n, sizeof(buf) - 1 - n);
		if (r <= 0 || (n += (size_t)r) == sizeof(buf) - 1)
			break;
	}
	close(p[0]);
	buf[n] = 0;
	while (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
	/* its last line says it all ("melted ...", or "cryo: why") */
	{
		char *last = strrchr(buf, '\n') ? strrchr(buf, '\n') + 1 : buf;
		if (!strncmp(last, "cryo: ", 6))
			last += 6;
		*text = strdup(last);
	}
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

static int ctl_melt(void *arg, uid_t uid, const char *name, Cryo__CtlReply *rep)
{
	struct cryod *d = arg;
	struct registry_entry e;
	const char *why;
	int r;

	if (!registry_name_ok(name) || registry_get(d->o->home, name, &e))
		return asprintf(&rep->text, "no group named %s", name) < 0 ? -ENOMEM : -ENOENT;
	if (owner_of(&e) >= 0)
		return asprintf(&rep->text, "group %s is running (pid %d)", name, (int)e.pid) < 0 ?
			       -ENOMEM : -EBUSY;
	if (uid != 0 && !snapshot_is_users(d->store_path, name, uid, &why))
		return asprintf(&rep->text, "%s: %s", name, why) < 0 ? -ENOMEM : -EPERM;
	{
		char *argv[] = { "cryo", "melt", (char *)name, NULL };

		r = run_cmd(argv, &rep->text);
	}
	pr_info("melt of %s asked for by uid %u: %s", name, (unsigned)uid,
		rep->text ? rep->text : strerror(-r));
	return r;
}

/* rm: the group's process's uid decides, or without one the owner its
 * newest snapshot records; neither: root's alone. `cryo rm` does the rest
 * (it refuses a running group without force). */
static int ctl_rm(void *arg, uid_t uid, const char *name, bool force, Cryo__CtlReply *rep)
{
	struct cryod *d = arg;
	struct registry_entry e;
	char *argv[] = { "cryo", "rm", (char *)name, force ? "--force" : NULL, NULL };
	long owner = -1;
	int known, r;

	if (!registry_name_ok(name))
		return asprintf(&rep->text, "no group named %s", name) < 0 ? -ENOMEM : -ENOENT;
	known = !registry_get(d->o->home, name, &e);
	if (known)
		owner = owner_of(&e);
	if (owner < 0)
		owner = recorded_owner(d->store_path, name);
	if (!known && owner < 0)
		return asprintf(&rep->text, "no group named %s", name) < 0 ? -ENOMEM : -ENOENT;
	if (owner < 0 ? uid != 0 : !ctl_allowed(uid, (uid_t)owner))
		return asprintf(&rep->text, "group %s is not yours", name) < 0 ? -ENOMEM : -EPERM;
	r = run_cmd(argv, &rep->text);
	pr_info("rm of %s asked for by uid %u: %s", name, (unsigned)uid,
		rep->text ? rep->text : strerror(-r));
	return r;
}

/* attach: a connection to the group's terminal holder, made here (its
 * socket is root's) for the owner of the group's running process. */
static int ctl_attach(void *arg, uid_t uid, const char *name, Cryo__CtlReply *rep, int *fd)
{
	struct cryod *d = arg;
	struct registry_entry e;
	int r;

	if ((r = running_group(d, uid, name, &e, rep)))
		return r;
	*fd = term_connect(d->o->home, name);
	if (*fd == -ENOENT)
		return asprintf(&rep->text, "group %s has no terminal (only 'cryo run' groups, "
				"and melted groups that had one, do)", name) < 0 ? -ENOMEM : -ENOENT;
	if (*fd < 0) {
		r = *fd;
		*fd = -1;
		return asprintf(&rep->text, "the terminal of %s: %s", name, strerror(-r)) < 0 ?
			       -ENOMEM : r;
	}
	pr_info("uid %u attaches to the terminal of %s", (unsigned)uid, name);
	return 0;
}

static const struct ctl_ops cryod_ctl_ops = { .ps = ctl_ps, .snap = ctl_snap, .melt = ctl_melt,
					      .rm = ctl_rm, .attach = ctl_attach };

static int signals_open(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, old))
		return -errno;
	int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

int cryod_run(const struct cryod_opts *o)
{
	struct cryod d = { .o = o, .started_ns = wall_ns(), .w = { .fd = -1 }, .exits = -1 };
	sigset_t old;
	uint64_t next_tick = 0;
	int sfd, lfd, r, stop = 0;

	if (o->store_path)
		snprintf(d.store_path, sizeof(d.store_path), "%s", o->store_path);
	else if (snprintf(d.store_path, sizeof(d.store_path), "%s/store", o->home) >=
		 (int)sizeof(d.store_path))
		return -ENAMETOOLONG;
	r = take_lock(o->home);
	if (r)
		return r;
	/* A status file left by an earlier cryod must not be read as ours. */
	write_status(&d);
	if (o->on_start)
		o->on_start(o->arg);
	sfd = signals_open(&old);
	if (sfd < 0)
		return sfd;
	pr_info("cryod %d runs for %s: interval %.1f s, force after %.1f s, keep %u",
		(int)getpid(), o->home, o->interval_ns / 1e9, o->max_age_ns / 1e9, o->keep);
	lfd = ctl_listen(o->home);
	if (lfd < 0)
		pr_warn("no control socket in %s: %s", o->home, strerror(-lfd));
	d.exits = proc_exits_open();
	if (d.exits < 0)
		pr_warn("how groups end cannot be known (the proc connector: %s): cryo ps "
			"says exited without a status", strerror(-d.exits));
	while (!stop) {
		struct pollfd pfd[3] = { { .fd = sfd, .events = POLLIN },
					 { .fd = lfd, .events = POLLIN },
					 { .fd = d.exits, .events = POLLIN } };
		struct signalfd_siginfo si;
		uint64_t now = mono_ns();

		if (now >= next_tick) {
			tick(&d);
			next_tick = mono_ns() + (uint64_t)o->tick_ms * 1000000u;
			now = mono_ns();
		}
		if (poll(pfd, 3, (int)((next_tick - now) / 1000000u) + 1) < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		if (pfd[2].revents & POLLIN)
			drain_exits(&d);
		if (pfd[1].revents & POLLIN)
			ctl_serve_one(lfd, &cryod_ctl_ops, &d);
		while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGUSR1 && d.want != SCHED_FORCE) {
				pr_info("SIGUSR1: a weak snapshot of every group");
				d.want = SCHED_WEAK;
			} else if (si.ssi_signo == SIGUSR2) {
				pr_info("SIGUSR2: a force snapshot of every group");
				d.want = SCHED_FORCE;
			} else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
				stop = 1;
			}
		}
	}
	write_status(&d);
	pr_info("cryod %d stops", (int)getpid());
	close(sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	worker_stop(&d.w);
	if (lfd >= 0) {
		char path[PATH_MAX];

		close(lfd);
		if (!lock_path(o->home, "cryod.sock", path, sizeof(path)))
			unlink(path);
	}
	if (d.exits >= 0)
		close(d.exits);
	free(d.g);
	return r;
}
