/* Making the process: a helper clone3()s it with its old pid and exits, so
 * the new process is nobody's child; the new process then sets up, in plain
 * C, what a process can do for itself, reports over a pipe, and waits in
 * pause() to be seized. */
#define LOG_PREFIX "restore: "
#include "restore/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fault.h"
#include "common/log.h"
#include "common/vec.h"
#include "proc/status.h"

#define ZOMBIE_WAIT_MS	3000	/* pid 1 here reaps orphans every 0.5-2 s */
#define STATUS_MAX	4096

/* ---- inside the new process (plain C, before its memory is replaced) ---- */

/* One line to cryo: 'W' warning, 'E' error or 'K' ready, the pid, a
 * space, the text. Shorter than PIPE_BUF: lines of several processes on
 * the one pipe never mix. */
static void say(int sfd, char kind, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n, h;

	h = snprintf(buf, sizeof(buf), "%c%d ", kind, (int)getpid());
	va_start(ap, fmt);
	n = vsnprintf(buf + h, sizeof(buf) - (size_t)h - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n = (int)strlen(buf);
	buf[n++] = '\n';
	if (write(sfd, buf, (size_t)n) < 0)
		return;
}

static int highest_open_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int hi = 2;

	if (!d)
		return 1023;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (fd > hi)
			hi = fd;
	}
	closedir(d);
	return hi;
}

static const char *fd_desc(const Cryo__FdEntry *e)
{
	return e->desc ? e->desc : "";
}

/* The root, before it forks the others: make every open file that
 * processes of the group share (and every end of a pipe between them) at
 * its slot number, which all processes then inherit. */
static int make_slots(struct rst_tree *t, int sfd)
{
	struct fd_restore_ctx c = { .snap = t->p[0].sn, .policy = &t->p[0].o->fds,
				    .objs = t->sh.objs, .nobjs = t->sh.nobjs };
	int base, ret = 0;

	if (!t->nslots)
		return 0;
	base = highest_open_fd() + 1;
	c.max_fd = base + (int)t->nslots;
	for (size_t k = 0; k < t->nslots && !ret; k++) {
		const Cryo__FdEntry *e = t->p[t->slot_proc[k]].fds->fds[t->slot_idx[k]];
		const struct fd_ops *kind = fd_kind_by_name(e->kind);
		Cryo__FdEntry tmp = *e;

		if (!kind || !kind->restore) {
			say(sfd, 'E', "fd %u: kind \"%s\" is not known to this cryo", e->fd, e->kind);
			ret = -ENOTSUP;
			break;
		}
		tmp.fd = (uint32_t)(base + 1 + (int)k);
		ret = kind->restore(&c, &tmp);
		if (ret)
			say(sfd, 'E', "pid %d fd %u (%s %s), shared: %s",
			    (int)t->p[t->slot_proc[k]].pid, e->fd, e->kind, fd_desc(e),
			    strerror(-ret));
		t->slot_fd[k] = (int)tmp.fd;
	}
	fd_restore_ctx_fini(&c);
	return ret;
}

/* Each fd is first made at a scratch number above every fd in use (the
 * store's own fds stay usable while kinds read file contents from it),
 * then everything else is closed and each is moved to its number. An fd
 * the root made comes from its slot; another fd of the same open file
 * from that fd. */
static int child_fds(struct rst_tree *t, size_t pi, int *sfd)
{
	struct rst *r = &t->p[pi];
	struct fd_restore_ctx c = { .snap = r->sn, .policy = &r->o->fds,
				    .objs = t->sh.objs, .nobjs = t->sh.nobjs };
	const struct rst_fdplan *fp = t->fp[pi];
	size_t n = r->fds ? r->fds->n_fds : 0;
	int base, max_fd = 2, ret = 0;

	for (size_t i = 0; i < n; i++)
		if ((int)r->fds->fds[i]->fd > max_fd)
			max_fd = (int)r->fds->fds[i]->fd;
	base = highest_open_fd();
	if (base < max_fd)
		base = max_fd;
	base++;
	if (dup2(*sfd, base) < 0)
		return -errno;
	close(*sfd);
	*sfd = base;
	c.max_fd = base + (int)n;
	for (size_t i = 0; i < n; i++) {
		const Cryo__FdEntry *e = r->fds->fds[i];
		const struct fd_ops *k = fd_kind_by_name(e->kind);
		Cryo__FdEntry tmp = *e;
		int at = base + 1 + (int)i;

		if (fp[i].slot >= 0 || fp[i].dup_of >= 0) {
			int from = fp[i].slot >= 0 ? t->slot_fd[fp[i].slot] :
						    base + 1 + fp[i].dup_of;

			if (dup2(from, at) < 0) {
				ret = -errno;
				say(*sfd, 'E', "fd %u (%s %s): %s", e->fd, e->kind, fd_desc(e),
				    strerror(-ret));
				goto out;
			}
			continue;
		}
		if (!k || !k->restore) {
			say(*sfd, 'E', "fd %u: kind \"%s\" is not known to this cryo", e->fd, e->kind);
			ret = -ENOTSUP;
			goto out;
		}
		tmp.fd = (uint32_t)at;
		ret = k->restore(&c, &tmp);
		if (ret) {
			say(*sfd, 'E', "fd %u (%s %s): %s", e->fd, e->kind, fd_desc(e),
			    strerror(-ret));
			goto out;
		}
	}
	/* The store and cryo's own fds go now (the shared objects' stay for
	 * the mappings: mm.c closes them); then each fd to its number. */
	rst_shared_close_below(&t->sh, base);
	for (size_t i = 0; i < n; i++) {
		const Cryo__FdEntry *e = r->fds->fds[i];
		int from = base + 1 + (int)i;

		if (dup2(from, (int)e->fd) < 0 ||
		    fcntl((int)e->fd, F_SETFD, e->cloexec ? FD_CLOEXEC : 0) < 0) {
			ret = -errno;
			say(*sfd, 'E', "fd %u: move into place: %s", e->fd, strerror(-ret));
			goto out;
		}
	}
	syscall(SYS_close_range, (unsigned)base + 1, ~0u, 0u);
	/* A terminal made here (not by the root) becomes the controlling one
	 * now; one from a slot already did, before the forks. */
	for (size_t i = 0; i < n && getsid(0) == getpid(); i++) {
		const Cryo__FdEntry *e = r->fds->fds[i];
		const struct fd_ops *k = fd_kind_by_name(e->kind);

		if (k->ctty && fp[i].slot < 0 && fp[i].dup_of < 0)
			(void)k->ctty(&c, e, (int)e->fd);
	}
	for (size_t i = 0; i < n; i++) {
		const Cryo__FdEntry *e = r->fds->fds[i];
		const struct fd_ops *k = fd_kind_by_name(e->kind);

		if (!k->finish || !fp[i].finish)
			continue;
		ret = k->finish(&c, e);
		if (ret) {
			say(*sfd, 'E', "fd %u (%s %s): %s", e->fd, e->kind, fd_desc(e),
			    strerror(-ret));
			goto out;
		}
	}
	/* last: closing any fd of a file drops our POSIX locks on it */
	for (size_t i = 0; i < n; i++) {
		const Cryo__FdEntry *e = r->fds->fds[i];
		char why[256];

		if (!e->n_locks || !(ret = fd_locks_restore(e, why, sizeof(why))))
			continue;
		say(*sfd, 'E', "fd %u (%s %s): %s", e->fd, e->kind, fd_desc(e), why);
		goto out;
	}
out:
	free(c.shared);
	return ret;
}

/* A session leader takes its controlling terminal, if the root made it
 * (a slot), before it forks its children: they inherit it then, as they
 * did when they were forked the first time. */
static void child_ctty(struct rst_tree *t, size_t pi)
{
	struct rst *r = &t->p[pi];
	struct fd_restore_ctx c = { .snap = r->sn, .policy = &r->o->fds };
	const struct rst_fdplan *fp = t->fp[pi];
	size_t n = r->fds ? r->fds->n_fds : 0;

	if (getsid(0) != getpid())
		return;
	for (size_t i = 0; i < n; i++) {
		const Cryo__FdEntry *e = r->fds->fds[i];
		const struct fd_ops *k = fd_kind_by_name(e->kind);

		if (k && k->ctty && fp[i].slot >= 0)
			(void)k->ctty(&c, e, t->slot_fd[fp[i].slot]);
	}
}

static void child_rlimits(struct rst *r, int sfd)
{
	for (size_t i = 0; i < r->pe->n_rlimits; i++) {
		const Cryo__RLimit *l = r->pe->rlimits[i];
		struct rlimit want = { l->cur, l->max }, have;

		if (setrlimit((int)l->resource, &want) == 0)
			continue;
		if (getrlimit((int)l->resource, &have))
			continue;
		/* Raising a hard limit needs CAP_SYS_RESOURCE: keep ours. */
		if (want.rlim_max > have.rlim_max)
			want.rlim_max = have.rlim_max;
		if (want.rlim_cur > want.rlim_max)
			want.rlim_cur = want.rlim_max;
		if (setrlimit((int)l->resource, &want))
			say(sfd, 'W', "rlimit %u not restored: %s", l->resource, strerror(errno));
		else
			say(sfd, 'W', "rlimit %u: hard limit %llu kept below the snapshot's %llu",
			    l->resource, (unsigned long long)want.rlim_max,
			    (unsigned long long)l->max);
	}
}

static int in_group(const struct rst_tree *t, uint32_t pid)
{
	for (size_t i = 0; i < t->n; i++)
		if ((uint32_t)t->p[i].pid == pid)
			return 1;
	return 0;
}

/* Session and process group. The root starts its own session (the one it
 * had belongs to something outside the group); the others inherit their
 * parent's, start one if they led one, and join their process group, whose
 * leader was made before them (a parent before its children, an earlier
 * sibling's whole subtree before a later sibling). */
static void child_session(struct rst_tree *t, size_t pi, int sfd)
{
	const Cryo__ProcessEntry *pe = t->p[pi].pe;
	pid_t self = t->p[pi].pid;
	uint32_t pgid = pe->has_pgid ? pe->pgid : 0;

	if (pi == 0 || (pe->has_sid && pe->sid == (uint32_t)self)) {
		if (setsid() < 0)
			say(sfd, 'W', "setsid: %s", strerror(errno));
		return;		/* a session leader leads its process group */
	}
	if (!pgid || !in_group(t, pgid) || (pid_t)pgid == getpgid(0))
		return;		/* a group outside: it stays in its parent's */
	if (setpgid(0, (pid_t)pgid) < 0)
		say(sfd, 'W', "process group %u: %s", pgid, strerror(errno));
}

static __attribute__((noreturn)) void child_main(struct rst_tree *t, size_t pi, int sfd,
						 int sync_fd);

/* A zombie: its session and group, then the same exit. A core dump is not
 * made again (the status loses its core bit). */
static __attribute__((noreturn)) void zombie_main(struct rst_tree *t, size_t pi, int sfd)
{
	int st = t->p[pi].exit_status;

	child_session(t, pi, sfd);
	if (WIFSIGNALED(st)) {
		struct rlimit none = { 0, 0 };
		sigset_t one;

		setrlimit(RLIMIT_CORE, &none);
		signal(WTERMSIG(st), SIG_DFL);
		sigemptyset(&one);
		sigaddset(&one, WTERMSIG(st));
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		kill(getpid(), WTERMSIG(st));
	}
	_exit(WEXITSTATUS(st));
}

/* Wait until zombie child z has exited (not reaping it). Its exit signal
 * is not for this process: SIGCHLD is discarded (default action), another
 * is ignored while it comes. */
static int wait_zombie(pid_t z, int exit_signal)
{
	siginfo_t si;
	int r;

	while ((r = waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT | __WALL)) < 0 && errno == EINTR)
		;
	if (exit_signal != SIGCHLD && exit_signal > 0 && exit_signal < NSIG)
		signal(exit_signal, SIG_DFL);
	return r < 0 ? -errno : 0;
}

/* Fork child ci of this process with its pid; wait until it and all under
 * it have their sessions and groups (so a later sibling can join them). */
static int fork_child(struct rst_tree *t, size_t ci, int sfd, int parent_sync)
{
	const Cryo__ProcessEntry *pe = t->p[ci].pe;
	pid_t tid = t->p[ci].pid;
	struct clone_args ca = {
		.exit_signal = pe->has_exit_signal && pe->exit_signal ? pe->exit_signal : SIGCHLD,
		.set_tid = (uint64_t)(uintptr_t)&tid,
		.set_tid_size = 1,
	};
	int sync[2];
	long p;
	char c;

	if (pipe2(sync, O_CLOEXEC))
		return -errno;
	if (t->p[ci].zombie && (int)ca.exit_signal != SIGCHLD && ca.exit_signal < NSIG)
		signal((int)ca.exit_signal, SIG_IGN);
	p = syscall(SYS_clone3, &ca, sizeof(ca));
	if (p == 0) {
		close(sync[0]);
		if (parent_sync >= 0)
			close(parent_sync);	/* only its own parent waits on it */
		if (t->p[ci].zombie)
			zombie_main(t, ci, sfd);
		child_main(t, ci, sfd, sync[1]);
	}
	close(sync[1]);
	if (p < 0) {
		int err = errno;

		close(sync[0]);
		say(sfd, 'E', "clone3 with pid %d: %s", (int)tid,
		    err == EEXIST ? "the pid is in use" : strerror(err));
		return -err;
	}
	if (t->p[ci].zombie) {
		int r = wait_zombie((pid_t)p, (int)ca.exit_signal);

		close(sync[0]);
		if (r)
			say(sfd, 'E', "zombie %d: %s", (int)tid, strerror(-r));
		return r;
	}
	while (read(sync[0], &c, 1) < 0 && errno == EINTR)
		;
	close(sync[0]);
	return 0;
}

static __attribute__((noreturn)) void child_main(struct rst_tree *t, size_t pi, int sfd,
						 int sync_fd)
{
	struct rst *r = &t->p[pi];
	int ret;
	sigset_t all;

	/* Default actions until the real ones are set by injection. */
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	child_session(t, pi, sfd);
	if (pi == 0 && make_slots(t, sfd))
		_exit(1);
	child_ctty(t, pi);
	for (size_t ci = 1; ci < t->n; ci++)
		if (t->p[ci].pe->has_ppid && t->p[ci].pe->ppid == (uint32_t)r->pid &&
		    fork_child(t, ci, sfd, sync_fd))
			_exit(1);
	if (sync_fd >= 0)
		close(sync_fd);	/* this subtree has its sessions and groups */
	ret = child_fds(t, pi, &sfd);
	if (ret)
		_exit(1);
	if (r->pe->root && strcmp(r->pe->root, "/") && chroot(r->pe->root)) {
		say(sfd, 'E', "root %s: %s", r->pe->root, strerror(errno));
		_exit(1);
	}
	if (r->pe->cwd && chdir(r->pe->cwd)) {
		say(sfd, 'E', "cwd %s: %s", r->pe->cwd, strerror(errno));
		_exit(1);
	}
	if (r->pe->has_umask)
		umask((mode_t)r->pe->umask);
	child_rlimits(r, sfd);
	if (fault_fire(FP_RESTORE_CHILD_FAIL)) {
		say(sfd, 'E', "fault point restore.child.fail");
		_exit(1);
	}
	/* Ready; then wait to be seized. If cryo dies before it seizes us,
	 * its end of the pipe closes (POLLERR here) and we go: nothing is
	 * left half made. Seized, our registers are replaced and the wait
	 * is over; cryo closes sfd for us. */
	say(sfd, 'K', "%d", sfd);
	for (;;) {
		struct pollfd pf = { .fd = sfd, .events = 0 };

		if (poll(&pf, 1, -1) > 0 && (pf.revents & (POLLERR | POLLHUP | POLLNVAL)))
			_exit(1);
	}
}

/* ---- in cryo ---- */

/* ---- which process makes which open file ---- */

/* The processes holding an object (a description, or a pipe's ends):
 * the first one and whether any other does. */
struct holder {
	uint64_t key;
	size_t first;
	bool several;
};

struct holders {
	struct holder *v;
	size_t n, cap;
};

static struct holder *holder_get(struct holders *h, uint64_t key, size_t proc)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].key == key) {
			if (h->v[i].first != proc)
				h->v[i].several = true;
			return &h->v[i];
		}
	if (vec_reserve((void **)&h->v, &h->cap, h->n + 1, sizeof(*h->v)))
		return NULL;
	h->v[h->n] = (struct holder){ key, proc, false };
	return &h->v[h->n++];
}

/* Description and object keys of an entry (0: none). An fd reconnected
 * by policy is its own: the user may send fd 1 and fd 2 apart. */
static uint64_t desc_key(const Cryo__FdEntry *e)
{
	return e->has_shared && e->shared && strcmp(e->kind, "ext") ? e->shared : 0;
}

static uint64_t object_key(const Cryo__FdEntry *e)
{
	const struct fd_ops *k = fd_kind_by_name(e->kind);

	return k && k->object ? k->object(e) : 0;
}

static int plan_count(struct rst_tree *t, struct holders *descs, struct holders *objs)
{
	for (size_t i = 0; i < t->n; i++)
		for (size_t x = 0; t->p[i].fds && x < t->p[i].fds->n_fds; x++) {
			const Cryo__FdEntry *e = t->p[i].fds->fds[x];
			uint64_t d = desc_key(e), o = object_key(e);

			if ((d && !holder_get(descs, d, i)) || (o && !holder_get(objs, o, i)))
				return -ENOMEM;
		}
	return 0;
}

/* Whether the root makes entry e: its open file or its object is held by
 * several processes. */
static bool root_makes(const Cryo__FdEntry *e, struct holders *descs, struct holders *objs,
		       size_t proc)
{
	uint64_t d = desc_key(e), o = object_key(e);

	return (d && holder_get(descs, d, proc)->several) ||
	       (o && holder_get(objs, o, proc)->several);
}

/* First entry of process i before x with the same description, or -1. */
static int same_before(const Cryo__FdsEntry *fds, size_t x)
{
	uint64_t d = desc_key(fds->fds[x]);

	for (size_t y = 0; d && y < x; y++)
		if (desc_key(fds->fds[y]) == d)
			return (int)y;
	return -1;
}

static int plan_entry(struct rst_tree *t, size_t i, size_t x, struct holders *descs,
		      struct holders *objs, uint64_t *slot_key)
{
	const Cryo__FdEntry *e = t->p[i].fds->fds[x];
	struct rst_fdplan *fp = &t->fp[i][x];
	uint64_t d = desc_key(e);

	*fp = (struct rst_fdplan){ .slot = -1, .dup_of = -1, .finish = true };
	if (!root_makes(e, descs, objs, i)) {
		fp->dup_of = same_before(t->p[i].fds, x);
		fp->finish = fp->dup_of < 0;
		return 0;
	}
	for (size_t k = 0; d && k < t->nslots; k++)
		if (slot_key[k] == d) {
			fp->slot = (int)k;
			fp->finish = false;
			return 0;
		}
	slot_key[t->nslots] = d;
	t->slot_proc[t->nslots] = i;
	t->slot_idx[t->nslots] = x;
	fp->slot = (int)t->nslots++;
	return 0;
}

/* Decide, for every fd of every process, where it comes from. */
static int plan_fds(struct rst_tree *t)
{
	struct holders descs = { 0 }, objs = { 0 };
	uint64_t *slot_key = NULL;
	size_t total = 0;
	int ret;

	for (size_t i = 0; i < t->n; i++)
		total += t->p[i].fds ? t->p[i].fds->n_fds : 0;
	t->fp = calloc(t->n, sizeof(*t->fp));
	t->slot_proc = calloc(total + 1, sizeof(*t->slot_proc));
	t->slot_idx = calloc(total + 1, sizeof(*t->slot_idx));
	t->slot_fd = calloc(total + 1, sizeof(*t->slot_fd));
	slot_key = calloc(total + 1, sizeof(*slot_key));
	ret = t->fp && t->slot_proc && t->slot_idx && t->slot_fd && slot_key ? 0 : -ENOMEM;
	if (!ret)
		ret = plan_count(t, &descs, &objs);
	for (size_t i = 0; i < t->n && !ret; i++) {
		size_t nf = t->p[i].fds ? t->p[i].fds->n_fds : 0;

		t->fp[i] = calloc(nf + 1, sizeof(**t->fp));
		if (!t->fp[i]) {
			ret = -ENOMEM;
			break;
		}
		for (size_t x = 0; x < nf && !ret; x++)
			ret = plan_entry(t, i, x, &descs, &objs, slot_key);
	}
	free(descs.v);
	free(objs.v);
	free(slot_key);
	return ret;
}

void rst_tree_free(struct rst_tree *t)
{
	for (size_t i = 0; t->fp && i < t->n; i++)
		free(t->fp[i]);
	free(t->fp);
	free(t->slot_proc);
	free(t->slot_idx);
	free(t->slot_fd);
	t->fp = NULL;
	t->slot_proc = t->slot_idx = NULL;
	t->slot_fd = NULL;
}

/* ---- making the processes ---- */

/* The helper: clone3 the root with its pid, report the errno as exit
 * status, exit (the root is reparented to pid 1 or a subreaper). */
static __attribute__((noreturn)) void helper_main(struct rst_tree *t, int sfd)
{
	const Cryo__ProcessEntry *pe = t->p[0].pe;
	pid_t tid = t->p[0].pid;
	struct clone_args ca = {
		.exit_signal = pe->has_exit_signal && pe->exit_signal ? pe->exit_signal : SIGCHLD,
		.set_tid = (uint64_t)(uintptr_t)&tid,
		.set_tid_size = 1,
	};
	long p = syscall(SYS_clone3, &ca, sizeof(ca));

	if (p == 0)
		child_main(t, 0, sfd, -1);
	_exit(p < 0 ? (errno & 0xff) : 0);
}

void rst_root_main(struct rst_tree *t, int sfd)
{
	child_main(t, 0, sfd, -1);
}

void rst_say(int sfd, char kind, const char *fmt, ...)
{
	char text[480];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	say(sfd, kind, "%s", text);
}

/* Read the processes' reports until every one said it is ready, one
 * failed, or all are gone; relay warnings. 0 when all are ready. */
static int read_report(struct rst_tree *t, int fd)
{
	char buf[STATUS_MAX + 1];
	size_t len = 0, ready = 0;
	bool failed = false;
	ssize_t n;

	size_t live = 0;

	for (size_t i = 0; i < t->n; i++)
		live += !t->p[i].zombie;
	while (ready < live && !failed) {
		char *nl;

		n = read(fd, buf + len, STATUS_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = 0;
		while ((nl = strchr(buf, '\n'))) {
			char *text = strchr(buf, ' ');
			int pid = atoi(buf + 1);

			*nl = 0;
			text = text ? text + 1 : buf + 1;
			if (buf[0] == 'W')
				pr_warn("%s: pid %d: %s", t->p[0].name, pid, text);
			else if (buf[0] == 'E') {
				pr_err("%s: pid %d: %s", t->p[0].name, pid, text);
				failed = true;
			} else if (buf[0] == 'K') {
				ready++;
				for (size_t i = 0; i < t->n; i++)
					if (t->p[i].pid == pid)
						t->p[i].report_fd = atoi(text);
			}
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len + 1);
		}
		if (len == STATUS_MAX)
			len = 0;	/* a line longer than any we write: drop it */
	}
	return ready == live && !failed ? 0 : -EIO;
}

/* Fork the helper that clone3s the root with its pid; its exit status
 * is clone3's errno. */
static int spawn(struct rst_tree *t, int sp[2])
{
	pid_t helper;
	int st;

	if (pipe2(sp, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	helper = fork();
	if (helper < 0) {
		int ret = -errno;

		close(sp[0]);
		close(sp[1]);
		return ret;
	}
	if (helper == 0) {
		close(sp[0]);
		helper_main(t, sp[1]);
	}
	close(sp[1]);
	while (waitpid(helper, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && !WEXITSTATUS(st))
		return 0;
	close(sp[0]);
	return WIFEXITED(st) ? -WEXITSTATUS(st) : -ECHILD;
}

/* After a failed set-up: kill what of the group was made (a process
 * still in our own code: our comm), and let each be gone or a zombie for
 * pid 1 before saying so. */
static void unmake(struct rst_tree *t)
{
	char self[17] = "";

	proc_get_comm(getpid(), getpid(), self);
	for (size_t i = 0; i < t->n; i++) {
		struct proc_stat ps;

		if (!proc_stat_read(t->p[i].pid, 0, &ps) && !strcmp(ps.comm, self))
			kill(t->p[i].pid, SIGKILL);
	}
	for (size_t i = 0; i < t->n; i++)
		for (int ms = 0; ms < ZOMBIE_WAIT_MS; ms += 5) {
			struct proc_stat ps;
			if (proc_stat_read(t->p[i].pid, 0, &ps) || ps.state == 'Z' ||
			    ps.state == 'X' || strcmp(ps.comm, self))
				break;
			usleep(5000);
		}
}

/* On the host: the root with its pid. A pid no process has can still be
 * taken as the process group or session of others: a child the frozen
 * process left, dead and waiting for pid 1 to reap it. Wait for that as
 * for a zombie; then, unless the user said no, a new pid namespace. */
static int spawn_host(struct rst_tree *t, int sp[2])
{
	enum restore_pidns mode = t->p[0].o->pidns;
	int ret;

	for (int ms = 0; (ret = spawn(t, sp)) == -EEXIST && ms < ZOMBIE_WAIT_MS; ms += 50)
		usleep(50000);
	if (ret == -EEXIST && mode == RESTORE_PIDNS_AUTO) {
		pr_warn("%s: pid %d is in use as the process group or session of other "
			"processes: melting into a new pid namespace", t->p[0].name,
			(int)t->p[0].pid);
		ret = rst_pidns_decide(t, RESTORE_PIDNS_ALWAYS);
		return ret ? ret : rst_pidns_spawn(t, sp);
	}
	if (ret == -EEXIST)
		pr_err("pid %d is in use (as the process group or session of other "
		       "processes: children it left?)", (int)t->p[0].pid);
	else if (ret)
		pr_err("clone3 with pid %d: %s", (int)t->p[0].pid, strerror(-ret));
	return ret;
}

int rst_make_tree(struct rst_tree *t)
{
	int sp[2], ret;

	ret = rst_pidns_decide(t, t->p[0].o->pidns);
	if (!ret)
		ret = rst_shared_make(t);	/* once the pids (their mappings) are gone */
	if (!ret)
		ret = plan_fds(t);
	if (ret)
		return ret;
	ret = t->pidns ? rst_pidns_spawn(t, sp) : spawn_host(t, sp);
	if (ret)
		return ret;
	ret = read_report(t, sp[0]);
	if (!ret && t->pidns)
		ret = rst_pidns_map(t);
	/* Each process keeps its end open until seized (child_main): cryo
	 * closes it in the process by injection then (restore.c rebuild),
	 * so no stray fd stays in the program. */
	if (!ret) {
		t->report_rd = sp[0];
		return fault_fire(FP_RESTORE_SEIZE_CRASH);
	}
	close(sp[0]);
	if (ret) {
		if (t->pidns)
			rst_pidns_kill(t);
		else
			unmake(t);
		pr_err("%s: pid %d: setting up the process%s failed", t->p[0].name,
		       (int)t->p[0].pid, t->n > 1 ? "es" : "");
	}
	return ret;
}
