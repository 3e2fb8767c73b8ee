/* The pager process of one lazy melt (serve.h). */
#define LOG_PREFIX "pager: "
#include "pager/serve.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "proc/inject.h"
#include "proc/ptrace.h"
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
#define SEIZE_TRIES		500	/* x 20 ms: a snapshot may hold the process */
#define KCMP_FILE		0
#define RELEASE_WAIT_MS		2000	/* prefetch waits this long at most for the restore */
#define SLOW_BURST_MS		5	/* pager.slow: prefetch this long per 20 ms */

/* ---- state files ---- */

static void state_path(char *buf, size_t n, const char *dir, const char *name, const char *ext)
{
	snprintf(buf, n, "%s/%s.%s", dir, name, ext);
}

/* starttime of pid (field 22 of stat), 0 if it is gone or a zombie. */
static uint64_t start_of(pid_t pid)
{
	struct proc_stat st;

	if (pid <= 0 || proc_stat_read(pid, 0, &st) || st.state == 'Z' || st.state == 'X' ||
	    st.nfields < 22)
		return 0;
	return (uint64_t)st.f[22];
}

static int write_atomic(const char *path, const void *buf, size_t len)
{
	char tmp[PATH_MAX + 8];
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, len) != (ssize_t)len)
		r = -EIO;
	if (close(fd) && !r)
		r = -errno;
	if (!r && rename(tmp, path))
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

int pager_state_read(const char *dir, const char *name, struct pager_state *st)
{
	char path[PATH_MAX], buf[256];
	int fd, n;

	state_path(path, sizeof(path), dir, name, "state");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EBADMSG;
	buf[n] = 0;
	memset(st, 0, sizeof(*st));
	if (sscanf(buf, "pager %d %" SCNu64 " target %d %" SCNu64 " fd %d snap %" SCNu64,
		   &st->pager, &st->pager_start, &st->target, &st->target_start, &st->fd,
		   &st->snap) != 6 || st->pager <= 0 || st->target <= 0 || st->fd < 0)
		return -EBADMSG;
	return 0;
}

enum pager_health pager_health(const char *dir, const char *name, struct pager_state *st)
{
	struct pager_state dummy;

	if (!st)
		st = &dummy;
	if (pager_state_read(dir, name, st))
		return PAGER_NONE;
	if (start_of(st->target) != st->target_start)
		return PAGER_STALE;
	if (start_of(st->pager) == st->pager_start)
		return PAGER_WORKING;
	return PAGER_DEAD;
}

enum pager_health pager_check_dead(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct pager_state st;
	enum pager_health h = pager_health(dir, name, &st);

	state_path(path, sizeof(path), dir, name, "state");
	if (h == PAGER_DEAD) {
		/* Its faults would wait forever, and no new pager can know
		 * what the dead one had read (serve.h): end it. */
		int pfd = (int)syscall(SYS_pidfd_open, st.target, 0);
		if (pfd >= 0 && start_of(st.target) == st.target_start)
			syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
		if (pfd >= 0)
			close(pfd);
		pr_err("%s: its pager (pid %d) died while pid %d was still paging in from "
		       "snapshot %" PRIu64 "; pid %d was killed so it never runs on missing "
		       "memory. 'cryo melt %s' (or recover) brings it back from its snapshot",
		       name, (int)st.pager, (int)st.target, st.snap, (int)st.target, name);
	}
	if (h == PAGER_DEAD || h == PAGER_STALE)
		unlink(path);
	return h;
}

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
	state_path(path, sizeof(path), j->dir, j->name, "touched");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	v = malloc(TOUCHED_READ_MAX * sizeof(*v));
	n = v ? read(fd, v, TOUCHED_READ_MAX * sizeof(*v)) : -1;
	close(fd);
	/* Only an order: a wrong vpn is skipped by the pager, never copied
	 * anywhere but where the image says. */
	if (n > 0)
		(void)pager_hint(p, j->space, v, (size_t)n / sizeof(*v));
	free(v);
}

static void save_touched(const struct pager *p, const struct pager_job *j)
{
	char path[PATH_MAX];
	size_t n;
	const uint64_t *v = pager_touched(p, &n);

	if (!j->dir || !v || !n)
		return;
	state_path(path, sizeof(path), j->dir, j->name, "touched");
	(void)write_atomic(path, v, n * sizeof(*v));
}

/* Close the process's copy of the uffd (it must not outlive the paging:
 * a snapshot would find it), if that fd is still the same file. */
static int close_target_copy(const struct pager_job *j, int mine)
{
	struct proc_ctl *ctl = NULL;
	int r = -EBUSY;

	if (syscall(SYS_kcmp, getpid(), j->pid, KCMP_FILE, mine, j->target_fd) != 0)
		return 0;	/* gone, or the program reused the number */
	for (int i = 0; i < SEIZE_TRIES && r == -EBUSY; i++) {
		struct proc_status st;

		/* traced by the melt still finishing, or a snapshot: wait */
		if (proc_status_read(j->pid, 0, &st) || !start_of(j->pid))
			return 0;	/* gone, or a zombie */
		if (st.tracer_pid) {
			usleep(20000);
			continue;
		}
		r = proc_seize(j->pid, &ctl);
		if (r == -EPERM || r == -EBUSY)
			r = -EBUSY;
	}
	if (r)
		return r == -ESRCH ? 0 : r;
	r = proc_remote_close(ctl, j->target_fd);
	int r2 = proc_release(ctl);
	return r ? r : r2;
}

/* A registered mapping can grow in place (mremap, a realloc of a large
 * block): the part it grew by is registered too, though not in the
 * pager's ranges (its faults were zero-filled, rightly). Unregister
 * whatever is still registered with our uffd before the process's copy
 * goes, or those faults would wait forever. */
static void unregister_rest(int uffd, pid_t pid)
{
	char path[64], line[512];
	unsigned long long s = 0, e = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' '))
			continue;
		if (!strncmp(line, "VmFlags:", 8) && strstr(line, " um")) {
			struct uffdio_range rg = { .start = s, .len = e - s };
			if (ioctl(uffd, UFFDIO_UNREGISTER, &rg) && errno != EINVAL)
				pr_err("unregister %#llx-%#llx of pid %d: %s", s, e, (int)pid,
				       strerror(errno));
		}
	}
	fclose(f);
}

/* While the restore still holds the process (traced, its state being
 * written), serve its faults only (and walk the index): the restore's
 * last steps and then the process's first instructions get the CPU and
 * the disk, not the prefetch. 0 when it runs (or after RELEASE_WAIT_MS:
 * something else traces it), 1 if all is in already. */
static int wait_released(struct pager *p, pid_t pid)
{
	uint64_t t0 = mono_ns();

	for (;;) {
		struct proc_status st;
		int r;

		if (proc_status_read(pid, 0, &st) || !st.tracer_pid ||
		    mono_ns() - t0 > RELEASE_WAIT_MS * 1000000ull)
			return 0;
		r = pager_run(p, 1, 0);
		if (r != -ETIMEDOUT)
			return r ? r : 1;
	}
}

/* Serve until all is in; slow (fault point pager.slow) prefetches in
 * short bursts between waits, so tests can act while pages are out. A
 * burst is SLOW_BURST_MS: the prefetch's threads start each time and
 * first plan and ask the disk for a few runs, so a shorter one brings
 * almost nothing in (192 MiB took over a minute at 1 ms). */
static int serve(struct pager *p, pid_t pid)
{
	bool slow = fault_fire(FP_PAGER_SLOW) != 0;
	int r = wait_released(p, pid);

	if (r)
		return r > 0 ? 0 : r;
	if (!slow)
		return pager_run(p, -1, 1);
	do {
		r = pager_run(p, 20, 0);
		if (r == -ETIMEDOUT)
			r = pager_run(p, SLOW_BURST_MS, 1);
	} while (r == -ETIMEDOUT);
	return r;
}

static __attribute__((noreturn)) void pager_main(const struct pager_job *j, int mine)
{
	char path[PATH_MAX], line[256];
	struct pager *p = NULL;
	struct pager_stats st;
	uint64_t t0 = mono_ns();
	int r, len;

	pr_debug("%s: pager pid %d for pid %d", j->name, (int)getpid(), (int)j->pid);
	if (j->dir) {
		state_path(path, sizeof(path), j->dir, j->name, "state");
		len = snprintf(line, sizeof(line),
			       "pager %d %" PRIu64 " target %d %" PRIu64 " fd %d snap %" PRIu64 "\n",
			       (int)getpid(), start_of(getpid()), (int)j->pid, start_of(j->pid),
			       j->target_fd, j->snap);
		if ((r = write_atomic(path, line, (size_t)len)))
			pr_err("%s: state file %s: %s", j->name, path, strerror(-r));
	}
	r = pager_new(j->sn, NULL, &p);
	if (!r) {
		load_hint(p, j);
		r = pager_attach(p, j->uffd, j->space, j->r, j->n);
	} else {
		close(j->uffd);
	}
	pr_debug("%s: attached after %.1f ms: %d", j->name, (double)(mono_ns() - t0) / 1e6, r);
	if (!r)
		r = serve(p, j->pid);
	pr_debug("%s: served after %.1f ms: %d", j->name, (double)(mono_ns() - t0) / 1e6, r);
	if (r) {
		/* The process's faults wait on its own copy of the uffd:
		 * exiting lets cryod see a dead pager and end it. */
		pr_err("%s: paging pid %d failed: %s", j->name, (int)j->pid, store_strerror(r));
		_exit(1);
	}
	pager_get_stats(p, &st);
	save_touched(p, j);
	unregister_rest(mine, j->pid);
	r = close_target_copy(j, mine);
	if (r)
		pr_err("%s: closing pid %d's fd %d: %s", j->name, (int)j->pid, j->target_fd,
		       strerror(-r));
	if (j->dir)
		unlink(path);
	fprintf(stderr, "pager: %s: pid %d all in after %.1f ms: %" PRIu64 " faults (%" PRIu64
		" zero), %" PRIu64 " pages copied (%" PRIu64 " prefetched), fault p50 %.1f us "
		"p99 %.1f us, %" PRIu64 " events\n", j->name, (int)j->pid,
		(double)(mono_ns() - t0) / 1e6, st.faults, st.zero_faults, st.pages_copied,
		st.pages_prefetched, (double)st.fault_ns_p50 / 1e3, (double)st.fault_ns_p99 / 1e3,
		st.events);
	_exit(r ? 1 : 0);
}

/* In the pager process: stdio to /dev/null and the log, every other fd
 * of the caller closed but the store's file, the uffd and its dup. */
static int pager_fds(const struct pager_job *j, int *mine)
{
	int keep[3] = { j->keep_fd, j->uffd, -1 }, nul, logfd = -1;
	int top = 3;

	*mine = fcntl(j->uffd, F_DUPFD_CLOEXEC, 3);
	keep[2] = *mine;
	if (*mine < 0)
		return -errno;
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (j->log_path)
		logfd = open(j->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(logfd >= 0 ? logfd : nul, 2);
	}
	for (int i = 0; i < 3; i++)
		if (keep[i] >= top)
			top = keep[i] + 1;
	/* close what is not kept, below the highest kept one, then above */
	for (int fd = 3; fd < top; fd++)
		if (fd != keep[0] && fd != keep[1] && fd != keep[2])
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
			int mine;

			signal(SIGPIPE, SIG_IGN);
			signal(SIGINT, SIG_IGN);
			signal(SIGHUP, SIG_IGN);
			if (pager_fds(j, &mine))
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
