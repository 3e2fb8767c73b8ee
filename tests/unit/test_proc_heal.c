/* Unit tests: src/proc/inject_heal — the tracer killed in every state an
 * injection goes through (the fault point proc.inject.crash@N, N = 1, 2,
 * ... until a run completes) must leave the target running on correctly
 * and untraced, with nothing of ours left in it; and the next tracer must
 * be able to inject into it again.
 *
 * The target checks itself: its main thread is in read() (restarted, the
 * bytes arrive whole, no EINTR), a thread sleeps in nanosleep() over and
 * over (never short, never EINTR), a thread spins in a loop whose flags
 * and registers are checked between every two instructions that set and
 * use them, signals queued while blocked are still queued with their
 * values, and its signal mask is what it set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fault.h"
#include "proc/inject.h"
#include "proc/maps.h"
#include "proc/mem.h"
#include "proc/procfs.h"
#include "proc/ptrace.h"
#include "proc/status.h"

#include "../integration/regspin.h"

#define NTHREADS 3		/* main, sleeper, spinner */
#define SLEEP_MS 30

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts))
		;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the target ---- */

static volatile int stop_flag;
static volatile unsigned long sleeps, sleep_bad, spins, spin_bad;
static volatile pid_t tids[NTHREADS];

static void *sleeper(void *arg)
{
	(void)arg;
	tids[1] = (pid_t)syscall(SYS_gettid);
	while (!stop_flag) {
		struct timespec ts = { 0, SLEEP_MS * 1000000L };
		uint64_t t0 = now_ms();
		int r = nanosleep(&ts, NULL);

		if (r || now_ms() - t0 < SLEEP_MS)
			sleep_bad++;
		sleeps++;
	}
	return NULL;
}

/* Flags and registers set, then used an instruction later: a thread put
 * back with a flag or register wrong takes the "bad" exit. */
static void *spinner(void *arg)
{
	(void)arg;
	tids[2] = (pid_t)syscall(SYS_gettid);
	while (!stop_flag) {
		if (regspin())
			spin_bad++;
		spins++;
	}
	return NULL;
}

static sigset_t want_mask;

/* Queued while blocked: SIGUSR2 to the thread, two SIGRTMIN with values
 * to the process. They must all still be there, in order. */
static int signals_still_queued(void)
{
	struct timespec zero = { 0, 0 };
	siginfo_t si;
	sigset_t one;

	sigemptyset(&one);
	sigaddset(&one, SIGRTMIN);
	for (int v = 7; v <= 8; v++)
		if (sigtimedwait(&one, &si, &zero) != SIGRTMIN || si.si_value.sival_int != v)
			return 0;
	if (sigtimedwait(&one, &si, &zero) >= 0)
		return 0;
	sigemptyset(&one);
	sigaddset(&one, SIGUSR2);
	return sigtimedwait(&one, &si, &zero) == SIGUSR2;
}

static __attribute__((noreturn)) void target_main(int in, int out, int ready)
{
	pthread_t th[2];
	char buf[16] = { 0 }, msg[256];
	sigset_t cur;
	union sigval v;
	ssize_t r;
	int err, n, mask_ok;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&want_mask);
	sigaddset(&want_mask, SIGUSR2);
	sigaddset(&want_mask, SIGRTMIN);
	sigprocmask(SIG_SETMASK, &want_mask, NULL);
	raise(SIGUSR2);
	v.sival_int = 7;
	sigqueue(getpid(), SIGRTMIN, v);
	v.sival_int = 8;
	sigqueue(getpid(), SIGRTMIN, v);
	tids[0] = (pid_t)syscall(SYS_gettid);
	if (pthread_create(&th[0], NULL, sleeper, NULL) || pthread_create(&th[1], NULL, spinner, NULL))
		_exit(3);
	while (!tids[1] || !tids[2] || !spins || !sleeps)
		msleep(1);
	if (write(ready, "r", 1) != 1)
		_exit(2);
	r = read(in, buf, 5);
	err = r < 0 ? errno : 0;
	stop_flag = 1;
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	sigprocmask(SIG_SETMASK, NULL, &cur);
	mask_ok = 1;
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&cur, s) != sigismember(&want_mask, s))
			mask_ok = 0;
	n = snprintf(msg, sizeof(msg), "%zd %d %s sbad=%lu pbad=%lu mask=%d sig=%d", r, err, buf,
		     sleep_bad, spin_bad, mask_ok, signals_still_queued());
	if (write(out, msg, (size_t)n) != n)
		_exit(2);
	_exit(0);
}

struct target {
	pid_t pid;
	int to, from;
	pid_t tid[NTHREADS];
};

/* Wait until the main thread sleeps in read() and the sleeper in its
 * nanosleep, so the tracer catches both inside a syscall. */
static void wait_blocked(pid_t pid, pid_t tid, long nr)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "task/%d/syscall", (int)tid);
	for (int i = 0; i < 1000; i++) {
		char *buf;
		size_t len;
		long got = -1;

		if (proc_read_file(pid, rel, &buf, &len) == 0) {
			if (buf[0] >= '0' && buf[0] <= '9')
				got = strtol(buf, NULL, 10);
			free(buf);
		}
		if (got == nr)
			return;
		msleep(1);
	}
	fail_msg("thread %d of %d never entered syscall %ld", (int)tid, (int)pid, nr);
}

static void start_target(struct target *t)
{
	int a[2], b[2], c[2];
	char ch;

	assert_int_equal(pipe2(a, O_CLOEXEC), 0);
	assert_int_equal(pipe2(b, O_CLOEXEC), 0);
	assert_int_equal(pipe2(c, O_CLOEXEC), 0);
	t->pid = fork();
	assert_true(t->pid >= 0);
	if (t->pid == 0) {
		close(a[1]);
		close(b[0]);
		close(c[0]);
		target_main(a[0], b[1], c[1]);
	}
	close(a[0]);
	close(b[1]);
	close(c[1]);
	assert_int_equal(read(c[0], &ch, 1), 1);
	close(c[0]);
	t->to = a[1];
	t->from = b[0];
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(proc_mem_read(t->pid, (uint64_t)(uintptr_t)&tids[i], &t->tid[i],
					       sizeof(pid_t), NULL), 0);
	wait_blocked(t->pid, t->tid[0], SYS_read);
	wait_blocked(t->pid, t->tid[1], SYS_clock_nanosleep);
}

/* It reads "abcde" whole and finds everything as it was. */
static void finish_target(struct target *t)
{
	char msg[256] = { 0 };
	int st;

	assert_int_equal(write(t->to, "abcde", 5), 5);
	assert_true(read(t->from, msg, sizeof(msg) - 1) > 0);
	assert_string_equal(msg, "5 0 abcde sbad=0 pbad=0 mask=1 sig=1");
	assert_int_equal(waitpid(t->pid, &st, 0), t->pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	close(t->to);
	close(t->from);
}

/* ---- the tracer ---- */

/* What a snapshot asks of a process, in short: calls on every thread,
 * the data page, output arguments, a uffd taken into the tracer. */
static int tracer_sequence(pid_t pid, bool plain)
{
	struct proc_ctl *ctl;
	uint64_t a[6] = { 0 }, addr, tid_addr;
	struct itimerval it;
	int64_t r;
	stack_t ss;
	int uffd, ret;

	ret = proc_seize(pid, &ctl);
	if (ret)
		return ret;
	if (plain)
		ctl->heal = -1;
	for (int i = 0; i < 2 && !ret; i++)
		ret = proc_inject_syscall(ctl, SYS_getpid, a, &r);
	if (!ret)
		ret = proc_inject_scratch_data(ctl, &addr);
	for (size_t k = 0; k < ctl->n && !ret; k++) {
		ret = proc_remote_sigaltstack(ctl, k, &ss);
		if (!ret)
			ret = proc_remote_get_tid_address(ctl, k, &tid_addr);
	}
	if (!ret)
		ret = proc_remote_userfaultfd(ctl, O_CLOEXEC | O_NONBLOCK, &uffd);
	if (!ret) {
		close(uffd);
		ret = proc_remote_getitimer(ctl, ITIMER_REAL, &it);
	}
	if (!ret)
		ret = proc_inject_syscall(ctl, SYS_getpid, a, &r);
	return proc_release(ctl) ?: ret;
}

/* Run the sequence in a child of ours killed at window n (0: not killed).
 * Returns its wait status. */
static int run_tracer(pid_t pid, unsigned long n, bool plain)
{
	pid_t tr = fork();
	int st;

	assert_true(tr >= 0);
	if (tr == 0) {
		char env[64];

		snprintf(env, sizeof(env), "proc.inject.crash@%lu", n);
		if (n)
			setenv("CRYO_FAULT", env, 1);
		else
			unsetenv("CRYO_FAULT");
		setenv("CRYO_LOG", "quiet", 0);
		fault_reset();
		_exit(tracer_sequence(pid, plain) ? 1 : 0);
	}
	assert_int_equal(waitpid(tr, &st, 0), tr);
	return st;
}

/* Every thread untraced and not in a ptrace stop, within 2 s. */
static bool untraced(const struct target *t)
{
	for (int ms = 0; ms < 2000; ms += 2) {
		bool ok = true;

		for (int i = 0; i < NTHREADS && ok; i++) {
			struct proc_status st;

			if (proc_status_read(t->pid, t->tid[i], &st))
				return false;
			ok = st.tracer_pid == 0 && st.state != 't' && st.state != 'Z' &&
			     st.state != 'X';
		}
		if (ok)
			return true;
		msleep(2);
	}
	return false;
}

static size_t count_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static bool maps_same(pid_t pid, const struct proc_maps *a)
{
	struct proc_maps b;
	bool same;

	assert_int_equal(proc_maps_read(pid, false, &b), 0);
	same = a->n == b.n;
	for (size_t i = 0; same && i < a->n; i++)
		same = a->v[i].start == b.v[i].start && a->v[i].end == b.v[i].end &&
		       a->v[i].prot == b.v[i].prot;
	proc_maps_free(&b);
	return same;
}

/* The thread that was in its slot undoes what we made (the data page, a
 * uffd) on its way back: give it 2 s of a loaded machine to get there. */
static void nothing_left(pid_t pid, const struct proc_maps *before, size_t fds, unsigned long n)
{
	for (int ms = 0; ms < 2000; ms += 2) {
		if (maps_same(pid, before) && count_fds(pid) == fds)
			return;
		msleep(2);
	}
	fail_msg("killed at window %lu: %s left behind", n,
		 maps_same(pid, before) ? "an fd" : "a mapping");
}

static void tracer_killed_at_every_window(void **state)
{
	unsigned long n;
	(void)state;

	for (n = 1; n < 1000; n++) {
		struct target t;
		struct proc_maps before;
		size_t fds;
		int st;

		start_target(&t);
		assert_int_equal(proc_maps_read(t.pid, false, &before), 0);
		fds = count_fds(t.pid);
		st = run_tracer(t.pid, n, false);
		if (WIFEXITED(st)) {
			/* n is past the last window: the sequence completed */
			assert_int_equal(WEXITSTATUS(st), 0);
			proc_maps_free(&before);
			finish_target(&t);
			break;
		}
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		if (!untraced(&t))
			fail_msg("killed at window %lu: the target is traced, stopped or dead", n);
		nothing_left(t.pid, &before, fds, n);
		/* the next tracer finds what this one left and injects again */
		st = run_tracer(t.pid, 0, false);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			fail_msg("killed at window %lu: a later tracer failed (status %#x)", n, st);
		nothing_left(t.pid, &before, fds, n);
		proc_maps_free(&before);
		finish_target(&t);
	}
	print_message("killed the tracer in each of %lu windows\n", n - 1);
	assert_true(n > 20);
}

/* Why the heal path exists: the plain path's target dies with its tracer
 * (and the test above can tell). */
static void plain_path_dies_with_its_tracer(void **state)
{
	struct target t;
	int st;
	(void)state;

	start_target(&t);
	st = run_tracer(t.pid, 1, true);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(waitpid(t.pid, &st, 0), t.pid);
	assert_true(WIFSIGNALED(st));
	print_message("the target died of signal %d\n", WTERMSIG(st));
	close(t.to);
	close(t.from);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tracer_killed_at_every_window),
		cmocka_unit_test(plain_path_dies_with_its_tracer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
