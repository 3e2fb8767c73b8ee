/* The pager process of one lazy melt (serve.h). */
#define LOG_PREFIX "pager: "
#include "pager/serve_int.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "proc/status.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/userfaultfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOUCHED_READ_MAX	65536
#define RUN_MS			100	/* pager_run between looks at forks */
#define SLOW_MS			20	/* pager.slow: a burst of prefetch this often */
#define SLOW_BURST_MS		5	/* pager.slow: prefetch this long per SLOW_MS */
#define RELEASE_WAIT_MS		2000	/* prefetch waits this long at most for the restore */
#define LETGO_SLOW_MS		300	/* pager.letgo.slow: nothing read for this long */

/* ---- waiting ---- */

int pager_wait(pid_t pager_pid, int timeout_ms)
{
	int pfd = (int)syscall(SYS_pidfd_open, pager_pid, 0), r;
	struct pollfd p;

	if (pfd < 0)
		return errno == ESRCH ? 0 : -errno;
	p.fd = pfd;
	p.events = POLLIN;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	close(pfd);
	if (r < 0)
		return -errno;
	return r ? 0 : -ETIMEDOUT;
}

/* ---- the pager process ---- */

static void load_hint(struct pager *p, const struct pager_job *j)
{
	char path[PATH_MAX];
	uint64_t *v;
	ssize_t n;
	int fd;

	if (!j->dir)
		return;
	pager_state_path(path, sizeof(path), j->dir, j->name, "touched");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	v = malloc(TOUCHED_READ_MAX * sizeof(*v));
	n = v ? read(fd, v, TOUCHED_READ_MAX * sizeof(*v)) : -1;
	close(fd);
	/* Only an order: a wrong vpn is skipped by the pager, never copied
	 * anywhere but where the image says. */
	if (n > 0)
		(void)pager_hint(p, j->t[0].space, v, (size_t)n / sizeof(*v));
	free(v);
}

static void save_touched(const struct pager *p, const struct pager_job *j)
{
	char path[PATH_MAX];
	size_t n;
	const uint64_t *v = pager_touched(p, &n);

	if (!j->dir || !v || !n)
		return;
	pager_state_path(path, sizeof(path), j->dir, j->name, "touched");
	(void)pager_write_atomic(path, v, n * sizeof(*v));
}

/* While the restore still holds the processes (traced, their state being
 * written; they are let go together), serve faults only (and walk the
 * index): the restore's last steps and then the processes' first
 * instructions get the CPU and the disk, not the prefetch. 0 when the
 * root runs (or after RELEASE_WAIT_MS: something else traces it), 1 if
 * all is in already. */
static int wait_released(struct pager *p, pid_t root)
{
	uint64_t t0 = mono_ns();

	for (;;) {
		struct proc_status st;
		int r;

		if (proc_status_read(root, 0, &st) || !st.tracer_pid ||
		    mono_ns() - t0 > RELEASE_WAIT_MS * 1000000ull)
			return 0;
		r = pager_run(p, 1, 0);
		if (r != -ETIMEDOUT)
			return r ? r : 1;
	}
}

/* Serve until all is in, looking at forks' children between runs; slow
 * (fault point pager.slow) prefetches in bursts of SLOW_BURST_MS between
 * waits, so tests can act while pages are out (the prefetch's threads
 * first plan and read a few runs: a 1 ms burst brings almost nothing in;
 * 192 MiB took over a minute). */
static int serve(struct pager *p, struct served *sv, pid_t root)
{
	bool slow = fault_fire(FP_PAGER_SLOW) != 0;
	uint64_t burst = mono_ns();
	int r = wait_released(p, root);

	if (r)
		return r > 0 ? 0 : r;
	do {
		int ms = served_busy(sv) ? 1 : slow ? SLOW_MS : RUN_MS;

		r = pager_run(p, ms, !slow);
		if (r == -ETIMEDOUT && slow && mono_ns() - burst >= SLOW_MS * 1000000ull) {
			r = pager_run(p, SLOW_BURST_MS, 1);
			burst = mono_ns();
		}
		if (r == -ETIMEDOUT)
			served_step(sv);
	} while (r == -ETIMEDOUT);
	return r;
}

static int pump(void *arg)
{
	return pager_pump(arg);
}

/* All is in. Forks from now on need no copy (their memory is all in);
 * the ranges are unregistered, then each process's copy is closed, the
 * uffds read all the while (pager.h: a fork waits for its event). With
 * the fault point pager.letgo.slow, nothing is read for LETGO_SLOW_MS
 * first, so tests fork into this window. */
static int let_go(struct pager *p, struct served *sv, const struct pager_job *j)
{
	struct served_pump pu = { pump, p };
	int r;

	sv->finishing = true;
	if (fault_fire(FP_PAGER_LETGO_SLOW))
		usleep(LETGO_SLOW_MS * 1000);
	r = pager_pump(p);
	if (r)
		return r;
	served_finish(sv, &pu);
	r = pager_pump(p);	/* what raced in, read before we close */
	pr_debug("%s: let go: %d", j->name, r);
	return r;
}

static int attach_all(struct pager *p, const struct pager_job *j)
{
	int r = 0;

	for (size_t i = 0; i < j->nt; i++) {
		if (r) {
			close(j->t[i].uffd);	/* pager_attach owns it, also on failure */
			continue;
		}
		r = pager_attach(p, j->t[i].uffd, j->t[i].space, j->t[i].r, j->t[i].n);
	}
	return r;
}

static __attribute__((noreturn)) void pager_main(const struct pager_job *j, const int *mine)
{
	char path[PATH_MAX];
	struct pager *p = NULL;
	struct pager_stats st;
	struct served sv;
	uint64_t t0 = mono_ns();
	int r;

	pr_debug("%s: pager pid %d for pid %d and %zu more", j->name, (int)getpid(),
		 (int)j->t[0].pid, j->nt - 1);
	r = served_init(&sv, j, mine);
	if (!r) {
		sv.dirty = true;
		served_step(&sv);	/* the state file */
		r = pager_new(j->sn, NULL, &p);
	}
	if (!r) {
		load_hint(p, j);
		pager_on_fork(p, served_fork, &sv);
		r = attach_all(p, j);
	} else {
		for (size_t i = 0; i < j->nt; i++)
			close(j->t[i].uffd);
	}
	pr_debug("%s: attached after %.1f ms: %d", j->name, (double)(mono_ns() - t0) / 1e6, r);
	if (!r)
		r = serve(p, &sv, j->t[0].pid);
	pr_debug("%s: served after %.1f ms: %d", j->name, (double)(mono_ns() - t0) / 1e6, r);
	if (r) {
		/* The processes' faults wait on their own copies of their
		 * uffds: exiting lets cryod see a dead pager and end them. */
		pr_err("%s: paging pid %d failed: %s", j->name, (int)j->t[0].pid, store_strerror(r));
		_exit(1);
	}
	r = let_go(p, &sv, j);
	pager_get_stats(p, &st);
	save_touched(p, j);
	pager_free(p);		/* our uffds: nothing waits on them now */
	if (j->dir && !r) {
		pager_state_path(path, sizeof(path), j->dir, j->name, "state");
		unlink(path);
	}
	if (r) {
		pr_err("%s: letting go of pid %d failed: %s", j->name, (int)j->t[0].pid,
		       store_strerror(r));
		_exit(1);
	}
	fprintf(stderr, "pager: %s: pid %d%s all in after %.1f ms: %" PRIu64 " faults (%" PRIu64
		" zero), %" PRIu64 " pages copied (%" PRIu64 " prefetched), fault p50 %.1f us "
		"p99 %.1f us, %" PRIu64 " events, %" PRIu64 " processes, %zu forks while "
		"letting go\n", j->name,
		(int)j->t[0].pid, j->nt > 1 ? " and its tree" : "",
		(double)(mono_ns() - t0) / 1e6, st.faults, st.zero_faults, st.pages_copied,
		st.pages_prefetched, (double)st.fault_ns_p50 / 1e3, (double)st.fault_ns_p99 / 1e3,
		st.events, st.processes, sv.late_forks);
	served_free(&sv);
	_exit(0);
}

static bool kept(const struct pager_job *j, const int *mine, int fd)
{
	if (fd == j->keep_fd)
		return true;
	for (size_t i = 0; i < j->nt; i++)
		if (fd == j->t[i].uffd || fd == mine[i])
			return true;
	return false;
}

/* In the pager process: stdio to /dev/null and the log, every other fd
 * of the caller closed but the store's file, the uffds and a dup of each
 * (mine[i], for j->t[i]). */
static int pager_fds(const struct pager_job *j, int *mine)
{
	int nul, logfd = -1, top = 3;

	for (size_t i = 0; i < j->nt; i++) {
		mine[i] = fcntl(j->t[i].uffd, F_DUPFD_CLOEXEC, 3);
		if (mine[i] < 0)
			return -errno;
	}
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (j->log_path)
		logfd = open(j->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(logfd >= 0 ? logfd : nul, 2);
	}
	if (j->keep_fd >= top)
		top = j->keep_fd + 1;
	for (size_t i = 0; i < j->nt; i++) {
		if (j->t[i].uffd >= top)
			top = j->t[i].uffd + 1;
		if (mine[i] >= top)
			top = mine[i] + 1;
	}
	/* close what is not kept, below the highest kept one, then above */
	for (int fd = 3; fd < top; fd++)
		if (!kept(j, mine, fd))
			close(fd);
	syscall(SYS_close_range, (unsigned)top, ~0u, 0u);
	return 0;
}

int pager_spawn(const struct pager_job *j, pid_t *pager_pid)
{
	int pipefd[2], st;
	pid_t c, g = -1;

	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	c = fork();
	if (c < 0) {
		int e = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return e;
	}
	if (c == 0) {
		close(pipefd[0]);
		setsid();
		g = fork();
		if (g == 0) {
			int *mine = calloc(j->nt + 1, sizeof(*mine));

			signal(SIGPIPE, SIG_IGN);
			signal(SIGINT, SIG_IGN);
			signal(SIGHUP, SIG_IGN);
			if (!mine || pager_fds(j, mine))
				_exit(1);
			pager_main(j, mine);
		}
		(void)!write(pipefd[1], &g, sizeof(g));
		_exit(0);
	}
	close(pipefd[1]);
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
	if (read(pipefd[0], &g, sizeof(g)) != sizeof(g) || g <= 0) {
		close(pipefd[0]);
		return -ECHILD;
	}
	close(pipefd[0]);
	*pager_pid = g;
	return 0;
}
