/* "pidfd": a pidfd (pidfd_open, CLONE_PIDFD).
 *
 * To a process of the group (or a zombie child of one, which melt makes
 * again): melt opens a pidfd to the same pid, which the melted process
 * has again, so poll, waitid(P_PIDFD) and pidfd_send_signal act on it as
 * before. The process may not be made yet when this fd is (a sibling made
 * after its elder): pidfd_open is tried again for a while.
 *
 * To a process outside the group, or one that had exited (fdinfo "Pid:
 * -1"): a peer that went away, like every connection to outside. Melt
 * gives a pidfd to a process that has exited and been reaped: poll says
 * readable (it exited), pidfd_send_signal fails with ESRCH, waitid with
 * ECHILD (not a child). The program sees the process gone, which it
 * handles, rather than a process that is not the one it knew.
 *
 * Refused: a pidfd to a thread that is not its process's leader (threads
 * are made after the fds); a pidfd that processes of the group share
 * (fork), or one in flight in a unix socket's queue, to a process other
 * than the group's root: the root makes shared files before any other
 * process exists. */
#define LOG_PREFIX "fds/pidfd: "
#include "fds/fd_priv.h"
#include "common/log.h"
#include "common/compat.h"
#include "proc/status.h"

#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PIDFD_LINK	"anon_inode:[pidfd]"
#define WAIT_MS		10000	/* for a process of the group to be made */

static int pidfd_match(const struct fd_probe *p)
{
	return !strcmp(p->link, PIDFD_LINK);
}

static int in_list(const pid_t *v, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == pid)
			return 1;
	return 0;
}

static int in_group(const struct fd_probe *p, pid_t pid)
{
	return p->ngroup ? in_list(p->group, p->ngroup, pid) : pid == p->pid;
}

/* A zombie whose parent is in the group: dump keeps it, melt makes it. */
static int group_zombie(const struct fd_probe *p, pid_t pid)
{
	struct proc_stat st;

	/* field 4 of stat: the parent */
	return proc_stat_read(pid, 0, &st) == 0 && st.state == 'Z' &&
	       in_group(p, (pid_t)st.f[4]);
}

/* A thread of a process of the group that is not its leader. */
static pid_t thread_of_group(const struct fd_probe *p, pid_t tid)
{
	const pid_t *v = p->ngroup ? p->group : &p->pid;
	size_t n = p->ngroup ? p->ngroup : 1;
	char path[64];

	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)v[i], (int)tid);
		if (access(path, F_OK) == 0)
			return v[i];
	}
	return 0;
}

/* Another process of the group holds this very pidfd (kcmp KCMP_FILE). */
static int same_pidfd(void *arg, pid_t q, int fd)
{
	const struct fd_probe *p = arg;

	return q != p->pid && syscall(SYS_kcmp, p->pid, q, 0 /* KCMP_FILE */, p->fd, fd) == 0;
}

static int shared_in_group(const struct fd_probe *p)
{
	return fd_group_each(p, PIDFD_LINK, same_pidfd, (void *)p) > 0;
}

/* Whether a pidfd to pid, in the group, can be made at melt. */
static int check_member(const struct fd_probe *p, pid_t pid)
{
	pid_t root = p->ngroup ? p->group[0] : p->pid;

	if (pid == root)
		return 0;
	/* in flight, it is made by whoever makes its socket: maybe the root,
	 * before the others exist */
	if (p->in_flight) {
		pr_err("a pidfd in flight to pid %d cannot be saved yet (only one to the group's "
		       "root can)", (int)pid);
		return -ENOTSUP;
	}
	if (p->ngroup > 1 && shared_in_group(p)) {
		pr_err("pid %d fd %d: a pidfd to pid %d that several processes of the group share "
		       "cannot be saved yet (only one to the group's root can)", (int)p->pid, p->fd,
		       (int)pid);
		return -ENOTSUP;
	}
	return 0;
}

static int pidfd_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__PidFd pf = CRYO__PID_FD__INIT;
	const char *v = proc_fdinfo_get(p->info, "Pid");
	char *end;
	long pid;
	int r;

	(void)c;
	errno = 0;
	pid = v ? strtol(v, &end, 10) : 0;
	if (!v || !*v || errno || *end || pid < -1 || pid == 0 || pid > INT32_MAX) {
		pr_err("pid %d fd %d: pidfd without a readable Pid in fdinfo", (int)p->pid, p->fd);
		return -ENOTSUP;
	}
	pf.has_was = 1;
	pf.was = (int32_t)pid;
	pf.has_thread = 1;
	pf.thread = (p->info->flags & PIDFD_THREAD) != 0;
	if (pid > 0 && (in_group(p, (pid_t)pid) || group_zombie(p, (pid_t)pid))) {
		if ((r = check_member(p, (pid_t)pid)))
			return r;
		pf.has_pid = 1;
		pf.pid = (uint32_t)pid;
	} else if (pid > 0 && thread_of_group(p, (pid_t)pid)) {
		pr_err("pid %d fd %d: a pidfd to thread %ld of pid %d cannot be saved yet (threads "
		       "are made after the fds)", (int)p->pid, p->fd, pid,
		       (int)thread_of_group(p, (pid_t)pid));
		return -ENOTSUP;
	} else if (pid > 0) {
		pf.has_outside = pf.outside = 1;
	}
	r = fd_pack(e, &pf.base);
	if (!r)
		r = fd_set_desc(e, "to %s %ld%s", pf.thread ? "thread" : "pid", pid,
				pf.has_pid ? " (in the group)" : pf.outside ?
				" (outside the group: exited at melt)" : " (exited)");
	return r;
}

/* ---- melt ---- */

static void sleep_ms(int ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A pidfd to pid, once some process has it (made by this melt). */
static int open_member(pid_t pid, unsigned flags)
{
	for (int ms = 0;; ms += 2) {
		int fd = (int)syscall(SYS_pidfd_open, pid, flags);

		if (fd >= 0)
			return fd;
		if (errno != ESRCH || ms >= WAIT_MS) {
			int err = -errno;

			pr_err("pidfd to pid %d: %s", (int)pid,
			       errno == ESRCH ? "the process was not made" : strerror(errno));
			return err;
		}
		sleep_ms(2);
	}
}

/* A pidfd to a process that has exited and been reaped: a child made
 * for it, exiting at once, waited for (no signal: exit_signal 0). */
static int open_exited(void)
{
	struct clone_args ca = { .flags = CLONE_PIDFD, .exit_signal = 0 };
	siginfo_t si;
	int pfd = -1;
	long child;

	ca.pidfd = (uint64_t)(uintptr_t)&pfd;
	child = syscall(SYS_clone3, &ca, sizeof(ca));
	if (child == 0)
		_exit(0);
	if (child < 0)
		return -errno;
	while (waitid(P_PIDFD, (id_t)pfd, &si, WEXITED | __WALL) < 0 && errno == EINTR)
		;
	return pfd;
}

static int pidfd_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__PidFd *pf = (Cryo__PidFd *)fd_unpack(e, &cryo__pid_fd__descriptor);
	int fd, r;

	(void)c;
	if (!pf)
		return -EBADMSG;
	if (pf->has_pid && (!pf->pid || pf->pid > INT32_MAX)) {
		r = -EBADMSG;
		goto out;
	}
	fd = pf->has_pid ? open_member((pid_t)pf->pid, pf->thread ? PIDFD_THREAD : 0) :
			   open_exited();
	if (fd < 0) {
		r = fd;
		pr_err("fd %u: %s: %s", e->fd, e->desc ? e->desc : "pidfd", strerror(-r));
		goto out;
	}
	r = fd_place(fd, e, 0);
out:
	cryo__pid_fd__free_unpacked(pf, NULL);
	return r;
}

static void pidfd_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	snprintf(buf, n, "pidfd %s%s", e->desc ? e->desc : "", e->cloexec ? " cloexec" : "");
}

const struct fd_ops fd_ops_pidfd = {
	.name = "pidfd",
	.match = pidfd_match,
	.dump = pidfd_dump,
	.restore = pidfd_restore,
	.describe = pidfd_describe,
};
