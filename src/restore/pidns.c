/* Melting into a new pid namespace: when a pid or tid of the group is
 * taken on the host (or when asked), the group is made in a namespace of
 * its own, where every process and thread gets its old pid back and the
 * host gives it another one. Never a silent renumbering: the program sees
 * exactly the pids it had.
 *
 *   cryo ─fork─▶ helper ─clone3(NEWPID|NEWNS)─▶ init (pid 1 inside)
 *                  │ writes init's host pid, exits: init is nobody's child
 *                  ▼
 *   init: own session; mounts slaves of the host's; a /proc of its own;
 *         clone3(set_tid = {root's old pid}) ─▶ root ─▶ the others
 *         (make.c, exactly as on the host); closes every fd; then reaps
 *         orphans, forwards SIGHUP/INT/QUIT/TERM/USR1/USR2 to the root,
 *         and exits with the root's status once no process is left.
 *
 * The namespace needs a mount namespace: getpid() and /proc/self must
 * agree, and /proc shows the pids of the namespace it was mounted in. The
 * copy of the host's mounts is made a slave: mounts the host makes later
 * under a shared mount still appear inside, mounts made inside never leak
 * out; everything else of the file system is the host's, the same files.
 *
 * cryo then finds each process's host pid (its parent's children, by the
 * NSpid line of their status) and drives the rest of the melt by those. */
#define LOG_PREFIX "restore: "
#include "restore/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "proc/pidns.h"
#include "proc/status.h"

#define ZOMBIE_WAIT_MS	3000	/* pid 1 here reaps orphans every 0.5-2 s */
#define NS_LEVEL	1	/* the new namespace, as cryo's /proc counts */
#define INIT_POLL_S	1	/* the init also looks for exits this often */

/* Signals a user (or a service manager) sends to the init and means for
 * the program. */
static const int forwarded[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 };

/* ---- is a pid free? ---- */

/* 0 when id is free on the host, or becomes free within the bound (a
 * zombie, e.g. of the process freeze just ended, that pid 1 reaps in its
 * own time); -EEXIST with why (who holds it) otherwise. */
static int pid_wait_free(pid_t id, char *why, size_t n)
{
	for (int ms = 0;; ms += 10) {
		struct proc_stat st;
		int r = proc_stat_read(id, 0, &st);

		if (r == -ENOENT || r == -ESRCH)
			return 0;
		if (r == 0 && st.state != 'Z' && st.state != 'X') {
			snprintf(why, n, "by %s", st.comm);
			return -EEXIST;
		}
		if (ms >= ZOMBIE_WAIT_MS) {
			snprintf(why, n, "a zombie nobody reaped in %d ms", ZOMBIE_WAIT_MS);
			return -EEXIST;
		}
		usleep(10000);
	}
}

/* The first pid or tid of the tree in use: 0 and *taken = 0 when all are
 * free; else *taken, its process's pid and the reason. */
static void first_taken(const struct rst_tree *t, pid_t *taken, pid_t *of, char *why, size_t n)
{
	*taken = 0;
	for (size_t i = 0; i < t->n; i++) {
		const Cryo__ProcessEntry *pe = t->p[i].pe;

		if (pid_wait_free(t->p[i].pid, why, n)) {
			*taken = *of = t->p[i].pid;
			return;
		}
		for (size_t k = 0; !t->p[i].zombie && k < pe->n_threads; k++) {
			pid_t tid = (pid_t)pe->threads[k]->tid;

			if (tid != t->p[i].pid && pid_wait_free(tid, why, n)) {
				*taken = tid;
				*of = t->p[i].pid;
				return;
			}
		}
	}
}

/* Into a namespace: where pid 1 is its init, no process may have it. */
static int use_ns(struct rst_tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const Cryo__ProcessEntry *pe = t->p[i].pe;

		for (size_t k = 0; k <= pe->n_threads; k++) {
			uint32_t id = k ? pe->threads[k - 1]->tid : (uint32_t)t->p[i].pid;

			if (id == 1) {
				pr_err("%s: pid 1 of the snapshot (the init of a pid namespace) cannot "
				       "be melted into a new namespace yet", t->p[0].name);
				return -ENOTSUP;
			}
		}
	}
	t->pidns = true;
	for (size_t i = 0; i < t->n; i++)
		t->p[i].ns = true;
	return 0;
}

int rst_pidns_decide(struct rst_tree *t, enum restore_pidns mode)
{
	char why[96];
	pid_t taken, of;

	if (mode == RESTORE_PIDNS_ALWAYS)
		return use_ns(t);
	first_taken(t, &taken, &of, why, sizeof(why));
	if (!taken)
		return 0;
	if (mode == RESTORE_PIDNS_NEVER) {
		if (taken == of)
			pr_err("pid %d is in use (%s)", (int)taken, why);
		else
			pr_err("tid %d (a thread of pid %d) is in use (%s)", (int)taken, (int)of, why);
		return -EEXIST;
	}
	if (taken == of)
		pr_warn("%s: pid %d is in use (%s): melting into a new pid namespace", t->p[0].name,
			(int)taken, why);
	else
		pr_warn("%s: tid %d (a thread of pid %d) is in use (%s): melting into a new pid "
			"namespace", t->p[0].name, (int)taken, (int)of, why);
	return use_ns(t);
}

/* ---- the init ---- */

static __attribute__((noreturn)) void exit_as(int status)
{
	/* pid 1 cannot die of its own signal: the shell's way, 128 + it */
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) :
	      WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1);
}

/* Reap every child that exited; 1 when none is left. */
static int reap(pid_t root, int *root_status, bool *root_gone)
{
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG | __WALL);

		if (p > 0) {
			if (p == root) {
				*root_status = st;
				*root_gone = true;
			}
			continue;
		}
		return p < 0 && errno == ECHILD;
	}
}

/* pid 1 of the namespace, once the root runs: its signals stay blocked
 * and are taken with sigtimedwait, so none is lost between two looks
 * (the kernel drops signals a namespace's init has no handler for). */
static __attribute__((noreturn)) void init_loop(pid_t root, const sigset_t *set)
{
	int root_status = 0;
	bool root_gone = false;

	for (;;) {
		struct timespec ts = { INIT_POLL_S, 0 };
		int sig = sigtimedwait(set, NULL, &ts);

		if (sig > 0 && sig != SIGCHLD && !root_gone)
			kill(root, sig);
		if (reap(root, &root_status, &root_gone))
			exit_as(root_status);
	}
}

/* A /proc of the namespace's own, in a copy of the host's mounts that
 * takes the host's later mounts and gives none back. */
static int init_mounts(int sfd)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL)) {
		rst_say(sfd, 'E', "new mount namespace: making its mounts slaves: %s",
			strerror(errno));
		return -1;
	}
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) {
		rst_say(sfd, 'E', "new pid namespace: mounting its /proc: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* What ps shows for the init: "cryo-init NAME", not the command line of
 * the cryo it was forked from (a "cryo melt" that seems to hang). Its
 * arguments are our own memory: written over in place, setproctitle's
 * way, NUL-padded to their old end. */
static void init_title(const char *name)
{
	char title[STORE_NAME_MAX + 16], *start, *end;
	struct proc_stat st;

	/* first: name may well point into those arguments */
	snprintf(title, sizeof(title), "cryo-init %s", name);
	if (proc_stat_read(getpid(), 0, &st) || st.nfields < PROC_STAT_ARG_END)
		return;
	start = (char *)(uintptr_t)st.f[PROC_STAT_ARG_START];
	end = (char *)(uintptr_t)st.f[PROC_STAT_ARG_END];
	if (end <= start)
		return;
	memset(start, 0, (size_t)(end - start));
	snprintf(start, (size_t)(end - start), "%s", title);
}

static __attribute__((noreturn)) void init_main(struct rst_tree *t, int sfd)
{
	pid_t tid = t->p[0].pid;
	/* the init is the root's parent now: it wants SIGCHLD, whatever the
	 * root sent the parent it had */
	struct clone_args ca = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)(uintptr_t)&tid,
		.set_tid_size = 1,
	};
	sigset_t set;
	long p;
	int fd;

	setsid();	/* none of the caller's terminal's signals */
	(void)prctl(PR_SET_NAME, "cryo-init");
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);	/* the root resets its own mask */
	if (init_mounts(sfd))
		_exit(1);
	init_title(t->p[0].name);	/* its own /proc now says where its arguments are */
	p = syscall(SYS_clone3, &ca, sizeof(ca));
	if (p == 0)
		rst_root_main(t, sfd);
	if (p < 0) {
		rst_say(sfd, 'E', "clone3 with pid %d in the new pid namespace: %s", (int)tid,
			strerror(errno));
		_exit(1);
	}
	/* Nothing of cryo's: an open store would stay locked (its flock goes
	 * with the open file) for as long as the group runs. */
	syscall(SYS_close_range, 0u, ~0u, 0u);
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd == 0) {
		dup2(0, 1);
		dup2(0, 2);
	}
	init_loop((pid_t)p, &set);
}

/* ---- in cryo ---- */

/* The helper: clone3 the namespace and its init; tell cryo its host pid;
 * exit with clone3's errno. */
static __attribute__((noreturn)) void helper_main(struct rst_tree *t, int sfd, int ipfd)
{
	struct clone_args ca = { .flags = CLONE_NEWPID | CLONE_NEWNS, .exit_signal = SIGCHLD };
	long p = syscall(SYS_clone3, &ca, sizeof(ca));
	int32_t v = (int32_t)p;

	if (p == 0) {
		close(ipfd);
		init_main(t, sfd);
	}
	if (p < 0)
		_exit(errno & 0xff);
	_exit(write(ipfd, &v, sizeof(v)) == sizeof(v) ? 0 : EIO);
}

int rst_pidns_spawn(struct rst_tree *t, int sp[2])
{
	int ip[2], st = 0, ret;
	int32_t init = 0;
	pid_t helper;

	if (pipe2(sp, O_CLOEXEC))
		return -errno;
	if (pipe2(ip, O_CLOEXEC)) {
		ret = -errno;
		goto out_sp;
	}
	fflush(NULL);
	helper = fork();
	if (helper < 0) {
		ret = -errno;
		close(ip[0]);
		close(ip[1]);
		goto out_sp;
	}
	if (helper == 0) {
		close(sp[0]);
		close(ip[0]);
		helper_main(t, sp[1], ip[1]);
	}
	close(sp[1]);
	close(ip[1]);
	while (waitpid(helper, &st, 0) < 0 && errno == EINTR)
		;
	ret = read(ip[0], &init, sizeof(init)) == sizeof(init) ? 0 : -EIO;
	close(ip[0]);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		ret = WIFEXITED(st) ? -WEXITSTATUS(st) : -ECHILD;
	if (!ret && init <= 0)
		ret = -EIO;
	if (ret) {
		pr_err("%s: a new pid namespace: %s", t->p[0].name, strerror(-ret));
		close(sp[0]);
		return ret;
	}
	t->init_hpid = (pid_t)init;
	return 0;
out_sp:
	close(sp[0]);
	close(sp[1]);
	return ret;
}

/* The host pid of process i: a child of its parent's (the init's, for the
 * root) with its old pid in the namespace. */
static int map_one(struct rst_tree *t, size_t i)
{
	pid_t parent = t->init_hpid;
	int r;

	for (size_t k = 0; i && k < i; k++)
		if (t->p[i].pe->has_ppid && (uint32_t)t->p[k].pid == t->p[i].pe->ppid)
			parent = t->p[k].hpid;
	r = proc_ns_child(parent, NS_LEVEL, t->p[i].pid, &t->p[i].hpid);
	if (r)
		pr_err("%s: pid %d in the new namespace: its host pid (a child of %d): %s",
		       t->p[i].name, (int)t->p[i].pid, (int)parent, strerror(-r));
	return r;
}

int rst_pidns_map(struct rst_tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		int r;

		t->p[i].hpid = 0;
		if (t->p[i].zombie)
			continue;	/* exited again already: nothing to drive */
		r = map_one(t, i);
		if (r)
			return r;
	}
	return 0;
}

int rst_pidns_tid(const struct rst *r, pid_t tid, pid_t *htid)
{
	int ret;

	if (!r->ns) {
		*htid = tid;
		return 0;
	}
	ret = proc_ns_thread(r->hpid, NS_LEVEL, tid, htid);
	if (ret)
		pr_err("%s: thread %d of pid %d: its host tid: %s", r->name, (int)tid, (int)r->pid,
		       strerror(-ret));
	return ret;
}

void rst_pidns_kill(struct rst_tree *t)
{
	if (t->init_hpid <= 0)
		return;
	kill(t->init_hpid, SIGKILL);
	for (int ms = 0; ms < ZOMBIE_WAIT_MS; ms += 5) {
		struct proc_stat ps;

		if (proc_stat_read(t->init_hpid, 0, &ps) || ps.state == 'Z' || ps.state == 'X')
			break;
		usleep(5000);
	}
}
