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
#include "proc/status.h"

#define ZOMBIE_WAIT_MS	3000	/* pid 1 here reaps orphans every 0.5-2 s */
#define STATUS_MAX	4096

/* ---- the pid ---- */

/* 0 when pid is free (or becomes free within the bound: a zombie, e.g. of
 * the process freeze just ended, waiting for pid 1 to reap it). */
static int pid_wait_free(pid_t pid)
{
	for (int ms = 0;; ms += 10) {
		struct proc_stat st;
		int r = proc_stat_read(pid, 0, &st);

		if (r == -ENOENT || r == -ESRCH)
			return 0;
		if (r == 0 && st.state != 'Z' && st.state != 'X') {
			pr_err("pid %d is in use (by %s)", (int)pid, st.comm);
			return -EEXIST;
		}
		if (ms >= ZOMBIE_WAIT_MS) {
			pr_err("pid %d is in use (a zombie nobody reaped in %d ms)", (int)pid,
			       ZOMBIE_WAIT_MS);
			return -EEXIST;
		}
		usleep(10000);
	}
}

/* ---- inside the new process (plain C, before its memory is replaced) ---- */

/* One line to cryo: 'W' warning or 'E' error, then the text. */
static void say(int sfd, char kind, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	buf[0] = kind;
	va_start(ap, fmt);
	n = vsnprintf(buf + 1, sizeof(buf) - 2, fmt, ap);
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

/* Each fd is first made at a scratch number above every fd in use (the
 * store's own fds stay usable while kinds read file contents from it),
 * then everything else is closed and each is moved to its number. */
static int child_fds(struct rst *r, int *sfd)
{
	struct fd_restore_ctx c = { .snap = r->sn, .policy = &r->o->fds };
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

		if (!k || !k->restore) {
			say(*sfd, 'E', "fd %u: kind \"%s\" is not known to this cryo", e->fd, e->kind);
			ret = -ENOTSUP;
			goto out;
		}
		tmp.fd = (uint32_t)(base + 1 + (int)i);
		ret = k->restore(&c, &tmp);
		if (ret) {
			say(*sfd, 'E', "fd %u (%s %s): %s", e->fd, e->kind,
			    e->desc ? e->desc : "", strerror(-ret));
			goto out;
		}
	}
	/* The store and cryo's own fds go now; then each fd to its number. */
	syscall(SYS_close_range, 0u, (unsigned)base - 1, 0u);
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
	for (size_t i = 0; i < n; i++) {
		const Cryo__FdEntry *e = r->fds->fds[i];
		const struct fd_ops *k = fd_kind_by_name(e->kind);

		if (!k->finish)
			continue;
		ret = k->finish(&c, e);
		if (ret) {
			say(*sfd, 'E', "fd %u (%s %s): %s", e->fd, e->kind,
			    e->desc ? e->desc : "", strerror(-ret));
			goto out;
		}
	}
out:
	free(c.shared);
	return ret;
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

static __attribute__((noreturn)) void child_main(struct rst *r, int sfd)
{
	int ret;
	sigset_t all;

	/* Default actions until the real ones are set by injection. */
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	if (setsid() < 0)
		say(sfd, 'W', "setsid: %s", strerror(errno));
	ret = child_fds(r, &sfd);
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
	say(sfd, 'K', "ok");
	close(sfd);
	for (;;)
		pause();
}

/* ---- in cryo ---- */

/* The helper: clone3 the target with its pid, report the errno as exit
 * status, exit (the target is reparented to pid 1 or a subreaper). */
static __attribute__((noreturn)) void helper_main(struct rst *r, int sfd)
{
	pid_t tid = r->pid;
	struct clone_args ca = {
		.exit_signal = r->pe->has_exit_signal && r->pe->exit_signal ?
			       r->pe->exit_signal : SIGCHLD,
		.set_tid = (uint64_t)(uintptr_t)&tid,
		.set_tid_size = 1,
	};
	long p = syscall(SYS_clone3, &ca, sizeof(ca));

	if (p == 0)
		child_main(r, sfd);
	_exit(p < 0 ? (errno & 0xff) : 0);
}

/* Read the new process's report; relay warnings; 0 if it said "ok". */
static int read_report(struct rst *r, int fd)
{
	char buf[STATUS_MAX + 1];
	size_t len = 0;
	ssize_t n;
	int ok = 0;

	while (len < STATUS_MAX && (n = read(fd, buf + len, STATUS_MAX - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		len += (size_t)n;
	}
	buf[len] = 0;
	for (char *line = buf, *nl; *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = 0;
		else
			nl = line + strlen(line);
		if (line[0] == 'W')
			pr_warn("%s: pid %d: %s", r->name, (int)r->pid, line + 1);
		else if (line[0] == 'E')
			pr_err("%s: pid %d: %s", r->name, (int)r->pid, line + 1);
		else if (line[0] == 'K')
			ok = 1;
	}
	return ok ? 0 : -EIO;
}

/* Fork the helper that clone3s the process with its pid; its exit status
 * is clone3's errno. */
static int spawn(struct rst *r, int sp[2])
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
		helper_main(r, sp[1]);
	}
	close(sp[1]);
	while (waitpid(helper, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && !WEXITSTATUS(st))
		return 0;
	close(sp[0]);
	return WIFEXITED(st) ? -WEXITSTATUS(st) : -ECHILD;
}

int rst_make_process(struct rst *r)
{
	int sp[2], ret;

	ret = pid_wait_free(r->pid);
	if (ret)
		return ret;
	/* A pid no process has can still be taken as the process group or
	 * session of others: a child the frozen process left, dead and
	 * waiting for pid 1 to reap it. Wait for that as for a zombie. */
	for (int ms = 0; (ret = spawn(r, sp)) == -EEXIST && ms < ZOMBIE_WAIT_MS; ms += 50)
		usleep(50000);
	if (ret) {
		if (ret == -EEXIST)
			pr_err("pid %d is in use (as the process group or session of other "
			       "processes: children it left?)", (int)r->pid);
		else
			pr_err("clone3 with pid %d: %s", (int)r->pid, strerror(-ret));
		return ret;
	}
	ret = read_report(r, sp[0]);
	close(sp[0]);
	if (ret) {
		/* It exits by itself after an error; make sure, and let it be
		 * gone (or a zombie for pid 1) before saying so. */
		kill(r->pid, SIGKILL);
		for (int ms = 0; ms < ZOMBIE_WAIT_MS; ms += 5) {
			struct proc_stat ps;
			if (proc_stat_read(r->pid, 0, &ps) || ps.state == 'Z' || ps.state == 'X')
				break;
			usleep(5000);
		}
		pr_err("%s: pid %d: setting up the process failed", r->name, (int)r->pid);
	}
	return ret;
}
