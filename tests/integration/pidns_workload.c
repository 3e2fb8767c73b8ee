/* Workload and helper of test_pidns.sh.
 *
 *   pidns_workload run DIR NTHREADS [root]
 *       Starts NTHREADS threads, writes DIR/ids ("pid P ppid Q pgid G
 *       sid S tids T1 T2 ..."), then checks itself each time DIR/check.N
 *       appears: every thread's gettid() and /proc/thread-self/stat, the
 *       process's getpid(), getppid(), getpgrp(), getsid(), /proc/self
 *       (the link and stat's pid, ppid, pgrp and session fields), the
 *       NSpid line of /proc/self/status and the tids in /proc/self/task,
 *       all against what it saved before any freeze, and that a POSIX
 *       timer made for its last thread (SIGEV_THREAD_ID: a tid) still
 *       signals that thread and no other. It writes DIR/result.N:
 *       "PASS N ..." or "FAIL N: what differs". "root": it is the root of
 *       its group, whose parent after a melt is an init (pid 1): its ppid
 *       may be the saved one or 1, and must be the same in /proc.
 *
 *   pidns_workload take DIR PID...
 *       Makes a process with exactly each PID (clone3 set_tid, as root),
 *       named "pidtaker", writes DIR/taken ("ok", or "FAIL ...") and waits;
 *       its children die with it (PR_SET_PDEATHSIG). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 16

struct saved {
	pid_t pid, ppid, pgid, sid;
	pid_t tid[MAX_THREADS + 1];	/* [0] the leader */
	int n;
};

static struct saved sv;
static int is_root;		/* its parent may have become pid 1 */
static atomic_int generation, acks;
static atomic_int ticks[MAX_THREADS + 1];	/* timer signals each thread took */
static int bad[MAX_THREADS + 1];
static char why[MAX_THREADS + 1][160];

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int read_text(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "re");
	size_t got;

	if (!f)
		return -1;
	got = fread(buf, 1, n - 1, f);
	buf[got] = 0;
	fclose(f);
	return 0;
}

/* Fields 1 (pid), 4 (ppid), 5 (pgrp), 6 (session) of a stat line. */
static int stat_fields(const char *path, long *pid, long *ppid, long *pgrp, long *sid)
{
	char buf[1024], *p;

	if (read_text(path, buf, sizeof(buf)))
		return -1;
	*pid = strtol(buf, NULL, 10);
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %ld %ld %ld", ppid, pgrp, sid) != 3)
		return -1;
	return 0;
}

/* A thread's own view: 0 if it matches the saved tid. */
static int check_thread(int i, char *w, size_t n)
{
	long pid, ppid, pgrp, sid;
	char link[64], want[64];
	ssize_t len;
	pid_t tid = (pid_t)syscall(SYS_gettid);

	if (tid != sv.tid[i])
		return snprintf(w, n, "thread %d: gettid() %d, saved %d", i, tid, sv.tid[i]), 1;
	if (stat_fields("/proc/thread-self/stat", &pid, &ppid, &pgrp, &sid) || pid != tid)
		return snprintf(w, n, "thread %d: /proc/thread-self/stat pid %ld, gettid() %d", i,
				pid, tid), 1;
	len = readlink("/proc/thread-self", link, sizeof(link) - 1);
	link[len > 0 ? len : 0] = 0;
	snprintf(want, sizeof(want), "%d/task/%d", sv.pid, tid);
	if (strcmp(link, want))
		return snprintf(w, n, "thread %d: /proc/thread-self -> %s, want %s", i, link, want), 1;
	return 0;
}

static void *thread_main(void *arg)
{
	int i = (int)(intptr_t)arg, seen = 0;

	sv.tid[i] = (pid_t)syscall(SYS_gettid);
	atomic_fetch_add(&acks, 1);
	for (;;) {
		int g = atomic_load(&generation);

		if (g == seen) {
			nap_ms(10);
			continue;
		}
		seen = g;
		bad[i] = check_thread(i, why[i], sizeof(why[i]));
		atomic_fetch_add(&acks, 1);
	}
	return NULL;
}

static void on_tick(int sig)
{
	pid_t t = (pid_t)syscall(SYS_gettid);

	(void)sig;
	for (int i = 0; i < sv.n; i++)
		if (sv.tid[i] == t)
			atomic_fetch_add(&ticks[i], 1);
}

/* Every 20 ms SIGUSR1 for the last thread, by its tid. */
static int start_timer(void)
{
	struct sigaction sa = { .sa_handler = on_tick, .sa_flags = SA_RESTART };
	struct sigevent ev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR1 };
	struct itimerspec its = { { 0, 20000000 }, { 0, 20000000 } };
	timer_t id;

	if (sv.n < 2)
		return 0;
	ev._sigev_un._tid = sv.tid[sv.n - 1];
	if (sigaction(SIGUSR1, &sa, NULL) || timer_create(CLOCK_MONOTONIC, &ev, &id) ||
	    timer_settime(id, 0, &its, NULL))
		return -1;
	return 0;
}

/* The timer fires again, and only at its thread. */
static int check_timer(char *w, size_t n)
{
	int target = sv.n - 1, before;

	if (target < 1)
		return 0;
	before = atomic_load(&ticks[target]);
	for (int i = 0; i < 100 && atomic_load(&ticks[target]) == before; i++)
		nap_ms(5);
	if (atomic_load(&ticks[target]) == before)
		return snprintf(w, n, "the timer of thread %d (tid %d) fired no more in 0.5 s",
				target, sv.tid[target]), 1;
	for (int i = 0; i < target; i++)
		if (atomic_load(&ticks[i]))
			return snprintf(w, n, "the timer of tid %d signalled thread %d (tid %d)",
					sv.tid[target], i, sv.tid[i]), 1;
	return 0;
}

/* The tids in /proc/self/task are exactly the saved ones. */
static int check_tasks(char *w, size_t n)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int found = 0;

	if (!d)
		return snprintf(w, n, "/proc/self/task: %s", strerror(errno)), 1;
	while ((de = readdir(d))) {
		pid_t t = (pid_t)atoi(de->d_name);
		int known = 0;

		if (de->d_name[0] == '.')
			continue;
		for (int i = 0; i < sv.n; i++)
			known |= sv.tid[i] == t;
		if (!known) {
			closedir(d);
			return snprintf(w, n, "/proc/self/task has %d, not a saved tid", t), 1;
		}
		found++;
	}
	closedir(d);
	if (found != sv.n)
		return snprintf(w, n, "/proc/self/task has %d threads, saved %d", found, sv.n), 1;
	return 0;
}

static int check_process(char *w, size_t n)
{
	long pid, ppid, pgrp, sid;
	char buf[4096], link[32], *ns;
	ssize_t len;

	pid_t want_ppid = is_root && getppid() == 1 ? 1 : sv.ppid;

	if (getpid() != sv.pid || getppid() != want_ppid || getpgrp() != sv.pgid ||
	    getsid(0) != sv.sid)
		return snprintf(w, n, "getpid/getppid/getpgrp/getsid %d %d %d %d, saved %d %d %d %d",
				getpid(), getppid(), getpgrp(), getsid(0), sv.pid, sv.ppid, sv.pgid,
				sv.sid), 1;
	if (stat_fields("/proc/self/stat", &pid, &ppid, &pgrp, &sid) || pid != sv.pid ||
	    ppid != want_ppid || pgrp != sv.pgid || sid != sv.sid)
		return snprintf(w, n, "/proc/self/stat pid %ld ppid %ld pgrp %ld session %ld, want "
				"%d %d %d %d", pid, ppid, pgrp, sid, sv.pid, want_ppid, sv.pgid, sv.sid),
		       1;
	len = readlink("/proc/self", link, sizeof(link) - 1);
	link[len > 0 ? len : 0] = 0;
	if (atoi(link) != sv.pid)
		return snprintf(w, n, "/proc/self -> %s, getpid() %d", link, sv.pid), 1;
	/* the /proc it sees is its namespace's: one level, its own pid */
	if (read_text("/proc/self/status", buf, sizeof(buf)) || !(ns = strstr(buf, "NSpid:")))
		return snprintf(w, n, "/proc/self/status: no NSpid line"), 1;
	ns[strcspn(ns, "\n")] = 0;
	if (strtol(ns + 6, &ns, 10) != sv.pid || strspn(ns, " \t") != strlen(ns))
		return snprintf(w, n, "/proc/self/status %s, want one level, %d", ns, sv.pid), 1;
	return check_tasks(w, n);
}

/* One round: every thread checks itself, then the process. */
static void check_round(const char *dir, int round)
{
	char w[256] = "", path[4096];
	int fail = 0, base;
	FILE *f;

	base = atomic_load(&acks);
	atomic_fetch_add(&generation, 1);
	for (int i = 0; i < 3000 && atomic_load(&acks) < base + sv.n - 1; i++)
		nap_ms(1);
	if (atomic_load(&acks) < base + sv.n - 1) {
		snprintf(w, sizeof(w), "only %d of %d threads answered", atomic_load(&acks) - base,
			 sv.n - 1);
		fail = 1;
	}
	for (int i = 1; i < sv.n && !fail; i++)
		if (bad[i]) {
			snprintf(w, sizeof(w), "%s", why[i]);
			fail = 1;
		}
	if (!fail)
		fail = check_thread(0, w, sizeof(w));
	if (!fail)
		fail = check_process(w, sizeof(w));
	if (!fail)
		fail = check_timer(w, sizeof(w));
	snprintf(path, sizeof(path), "%s/result.%d", dir, round);
	f = fopen(path, "we");
	if (!f)
		return;
	if (fail)
		fprintf(f, "FAIL %d: %s\n", round, w);
	else
		fprintf(f, "PASS %d: pid %d ppid %d, %d threads with their tids, %d timer ticks at "
			"tid %d\n", round, sv.pid, getppid(), sv.n, atomic_load(&ticks[sv.n - 1]),
			sv.tid[sv.n - 1]);
	fclose(f);
}

static int run(const char *dir, int nthreads)
{
	char path[4096], tmp[4096 + 8];
	pthread_t th;
	FILE *f;

	if (nthreads < 0 || nthreads > MAX_THREADS)
		return 2;
	sv.pid = getpid();
	sv.ppid = getppid();
	sv.pgid = getpgrp();
	sv.sid = getsid(0);
	sv.tid[0] = (pid_t)syscall(SYS_gettid);
	sv.n = nthreads + 1;
	for (int i = 1; i <= nthreads; i++)
		if (pthread_create(&th, NULL, thread_main, (void *)(intptr_t)i))
			return 1;
	while (atomic_load(&acks) < nthreads)
		nap_ms(1);
	if (start_timer())
		return 1;
	snprintf(path, sizeof(path), "%s/ids", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return 1;
	fprintf(f, "pid %d ppid %d pgid %d sid %d tids", sv.pid, sv.ppid, sv.pgid, sv.sid);
	for (int i = 0; i < sv.n; i++)
		fprintf(f, " %d", sv.tid[i]);
	fprintf(f, "\n");
	fclose(f);
	rename(tmp, path);
	for (int round = 1;;) {
		snprintf(path, sizeof(path), "%s/check.%d", dir, round);
		if (access(path, F_OK)) {
			nap_ms(20);
			continue;
		}
		check_round(dir, round++);
	}
}

/* ---- take ---- */

static __attribute__((noreturn)) void take(const char *dir, int n, char **pids)
{
	char path[4096], msg[256] = "ok";
	FILE *f;

	for (int i = 0; i < n; i++) {
		pid_t want = (pid_t)atoi(pids[i]);
		struct clone_args ca = {
			.exit_signal = SIGCHLD,
			.set_tid = (uint64_t)(uintptr_t)&want,
			.set_tid_size = 1,
		};
		long p = syscall(SYS_clone3, &ca, sizeof(ca));

		if (p == 0) {
			prctl(PR_SET_NAME, "pidtaker");
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
		if (p < 0) {
			snprintf(msg, sizeof(msg), "FAIL pid %d: %s", want, strerror(errno));
			break;
		}
	}
	prctl(PR_SET_NAME, "pidtaker");
	snprintf(path, sizeof(path), "%s/taken", dir);
	f = fopen(path, "we");
	if (f) {
		fprintf(f, "%s\n", msg);
		fclose(f);
	}
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	if ((argc == 4 || (argc == 5 && !strcmp(argv[4], "root"))) && !strcmp(argv[1], "run")) {
		is_root = argc == 5;
		return run(argv[2], atoi(argv[3]));
	}
	if (argc >= 4 && !strcmp(argv[1], "take"))
		take(argv[2], argc - 3, argv + 3);
	fprintf(stderr, "usage: %s run DIR NTHREADS [root] | take DIR PID...\n", argv[0]);
	return 2;
}
