/* Unit tests: src/proc/ptrace — seizing every thread of children this test
 * forks, capturing their per-thread state, setting it, and releasing them
 * exactly as they were. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc/mem.h"
#include "proc/procfs.h"
#include "proc/ptrace.h"
#include "proc/status.h"

#define NTHREADS 8

struct child {
	pid_t pid;
	int hold;
};

static struct child start_child(void (*setup)(void))
{
	int ready[2], hold[2];
	struct child c;
	char b;

	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
	c.pid = fork();
	assert_true(c.pid >= 0);
	if (c.pid == 0) {
		close(ready[0]);
		close(hold[1]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setup();
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		while (read(hold[0], &b, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	assert_int_equal(read(ready[0], &b, 1), 1);
	close(ready[0]);
	c.hold = hold[1];
	return c;
}

static void stop_child(struct child *c)
{
	int st;
	close(c->hold);
	assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fail_msg("child %d ended with status %#x", (int)c->pid, st);
}

static void kill_child(struct child *c)
{
	kill(c->pid, SIGKILL);
	close(c->hold);
	waitpid(c->pid, NULL, 0);
}

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts))
		;
}

/* Every thread of pid: traced by us (want_traced) or by nobody. */
static void check_traced(pid_t pid, bool want_traced)
{
	pid_t *tids;
	size_t n;

	assert_int_equal(proc_task_list(pid, &tids, &n), 0);
	for (size_t i = 0; i < n; i++) {
		struct proc_status st;
		int r = proc_status_read(pid, tids[i], &st);
		if ((r == -ENOENT || r == -ESRCH) && !want_traced)
			continue;   /* a thread that ended since the listing */
		assert_int_equal(r, 0);
		if (want_traced) {
			assert_int_equal(st.tracer_pid, getpid());
			assert_int_equal(st.state, 't');
		} else {
			assert_int_equal(st.tracer_pid, 0);
			assert_true(st.state != 't');
		}
	}
	free(tids);
}

/* ---- busy counting threads ---- */

static _Atomic uint64_t counters[NTHREADS];

static void *count(void *arg)
{
	_Atomic uint64_t *c = arg;
	for (;;)
		atomic_fetch_add(c, 1);
	return NULL;
}

static void setup_counters(void)
{
	pthread_t t;
	for (int i = 0; i < NTHREADS; i++)
		if (pthread_create(&t, NULL, count, &counters[i]))
			_exit(3);
}

static void read_counters(pid_t pid, uint64_t *out)
{
	assert_int_equal(proc_mem_read(pid, (uint64_t)(uintptr_t)counters, out,
				       sizeof(counters), NULL), 0);
}

static void seize_stops_all_and_release_resumes(void **state)
{
	struct child c = start_child(setup_counters);
	struct proc_ctl *ctl;
	uint64_t a[NTHREADS], b[NTHREADS];
	(void)state;

	for (int round = 0; round < 3; round++) {
		assert_int_equal(proc_seize(c.pid, &ctl), 0);
		assert_int_equal(ctl->n, NTHREADS + 1);
		for (size_t i = 0; i < ctl->n; i++)
			assert_true(ctl->t[i].stopped);
		check_traced(c.pid, true);
		read_counters(c.pid, a);
		msleep(30);
		read_counters(c.pid, b);
		assert_memory_equal(a, b, sizeof(a));   /* nobody runs */
		assert_int_equal(proc_release(ctl), 0);
		check_traced(c.pid, false);
		/* All run again (8 busy threads share the CPUs: give each
		 * up to 2 s to be scheduled). */
		for (int i = 0; i < NTHREADS; i++) {
			int tries = 0;
			do {
				msleep(10);
				read_counters(c.pid, b);
			} while (b[i] == a[i] && ++tries < 200);
			if (b[i] == a[i])
				fail_msg("thread %d did not run after release", i);
		}
	}
	stop_child(&c);
}

/* ---- threads that keep appearing ---- */

static void *short_lived(void *arg)
{
	(void)arg;
	msleep(1);
	return NULL;
}

static void *spawner(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_t t;
		if (pthread_create(&t, NULL, short_lived, NULL) == 0)
			pthread_detach(t);
	}
	return NULL;
}

static void setup_spawner(void)
{
	pthread_t t;
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t, NULL, spawner, NULL))
			_exit(4);
}

static void seize_catches_threads_created_meanwhile(void **state)
{
	struct child c = start_child(setup_spawner);
	(void)state;

	for (int round = 0; round < 30; round++) {
		struct proc_ctl *ctl;
		pid_t *tids;
		size_t n;

		assert_int_equal(proc_seize(c.pid, &ctl), 0);
		/* Stable: the task list is exactly the set we hold, all stopped. */
		assert_int_equal(proc_task_list(c.pid, &tids, &n), 0);
		assert_int_equal(n, ctl->n);
		for (size_t i = 0; i < n; i++) {
			int k = proc_ctl_find(ctl, tids[i]);
			assert_true(k >= 0);
			assert_true(ctl->t[k].stopped);
		}
		free(tids);
		check_traced(c.pid, true);
		assert_int_equal(proc_release(ctl), 0);
		check_traced(c.pid, false);
	}
	stop_child(&c);
}

/* ---- per-thread state ---- */

static const uint8_t xmm_pattern[32] = {
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xde, 0xad, 0xbe, 0xef, 0x11, 0x22, 0x33, 0x44,
	0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f,
};
#define R12_VALUE 0x1122334455667788ull
#define XSAVE_XMM0 160  /* legacy area: xmm0 at byte 160, 16 bytes each */

static _Atomic pid_t spin_tid;
static stack_t spin_alt;

static void *spin_regs(void *arg)
{
	sigset_t s;
	(void)arg;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	prctl(PR_SET_NAME, "spinner");
	atomic_store(&spin_tid, (pid_t)syscall(SYS_gettid));
	/* Registers the test reads back; the loop touches none of them. */
	__asm__ volatile("movdqu (%0), %%xmm0\n\t"
			 "movdqu 16(%0), %%xmm7\n\t"
			 "movabs $0x1122334455667788, %%r12\n\t"
			 "1: pause\n\t"
			 "jmp 1b\n\t"
			 : : "r"(xmm_pattern) : "xmm0", "xmm7", "r12", "memory");
	return NULL;
}

static void setup_spin(void)
{
	sigset_t s;
	pthread_t t;

	/* SIGUSR2 blocked everywhere: a kill() to the process stays shared
	 * pending. */
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	sigprocmask(SIG_BLOCK, &s, NULL);
	if (pthread_create(&t, NULL, spin_regs, NULL))
		_exit(5);
	while (!atomic_load(&spin_tid))
		msleep(1);
	msleep(10);
}

static void capture_thread_state(void **state)
{
	struct child c = start_child(setup_spin);
	struct proc_ctl *ctl;
	struct proc_thread_state st;
	pid_t tid;
	siginfo_t *sh;
	size_t nsh;
	int k;
	(void)state;

	assert_int_equal(proc_mem_read(c.pid, (uint64_t)(uintptr_t)&spin_tid, &tid,
				       sizeof(tid), NULL), 0);
	assert_int_equal(syscall(SYS_tgkill, c.pid, tid, SIGUSR1), 0);
	assert_int_equal(kill(c.pid, SIGUSR2), 0);
	msleep(10);

	assert_int_equal(proc_seize(c.pid, &ctl), 0);
	assert_int_equal(ctl->n, 2);
	k = proc_ctl_find(ctl, tid);
	assert_true(k >= 0);
	assert_int_equal(proc_thread_capture(ctl, (size_t)k, &st), 0);
	assert_int_equal(st.tid, tid);
	assert_int_equal(st.regs.r12, R12_VALUE);
	assert_true(st.regs.fs_base != 0);          /* TLS of the thread */
	assert_true(st.xstate_len >= 576);           /* legacy + header at least */
	assert_memory_equal(st.xstate + XSAVE_XMM0, xmm_pattern, 16);
	assert_memory_equal(st.xstate + XSAVE_XMM0 + 7 * 16, xmm_pattern + 16, 16);
	assert_int_equal(st.sigmask, (1ULL << (SIGUSR1 - 1)) | (1ULL << (SIGUSR2 - 1)));
	assert_int_equal(st.npending, 1);
	assert_int_equal(st.pending[0].si_signo, SIGUSR1);
	assert_int_equal(st.pending[0].si_code, SI_TKILL);
	assert_string_equal(st.comm, "spinner");
	/* glibc registers rseq and a robust list for every thread. */
	assert_true(st.has_rseq);
	assert_true(st.rseq.rseq_abi_pointer != 0);
	assert_true(st.robust_list != 0);
	assert_int_equal(st.robust_len, 24);
	assert_int_equal(proc_peek_siginfo(tid, true, &sh, &nsh), 0);
	assert_int_equal(nsh, 1);
	assert_int_equal(sh[0].si_signo, SIGUSR2);
	assert_int_equal(sh[0].si_pid, getpid());
	free(sh);
	proc_thread_state_free(&st);

	/* The main thread is blocked in read(): inside a syscall. */
	k = proc_ctl_find(ctl, c.pid);
	assert_true(k >= 0);
	assert_int_equal(proc_thread_capture(ctl, (size_t)k, &st), 0);
	assert_int_equal(st.regs.orig_rax, SYS_read);
	assert_int_equal(st.npending, 0);
	assert_int_equal(st.sigmask, 1ULL << (SIGUSR2 - 1));
	proc_thread_state_free(&st);
	assert_int_equal(proc_release(ctl), 0);
	(void)spin_alt;
	kill_child(&c);
}

static void set_thread_state_survives_release(void **state)
{
	struct child c = start_child(setup_spin);
	struct proc_ctl *ctl;
	struct user_regs_struct regs;
	uint8_t *xs;
	size_t xlen;
	uint64_t mask;
	pid_t tid;
	int k;
	(void)state;

	assert_int_equal(proc_mem_read(c.pid, (uint64_t)(uintptr_t)&spin_tid, &tid,
				       sizeof(tid), NULL), 0);
	assert_int_equal(proc_seize(c.pid, &ctl), 0);
	k = proc_ctl_find(ctl, tid);
	assert_true(k >= 0);
	assert_int_equal(proc_get_regs(tid, &regs), 0);
	regs.r12 = 0xfeedfacecafebeefull;
	assert_int_equal(proc_set_regs(tid, &regs), 0);
	assert_int_equal(proc_get_xstate(tid, &xs, &xlen), 0);
	memset(xs + XSAVE_XMM0, 0x5a, 16);
	assert_int_equal(proc_set_xstate(tid, xs, xlen), 0);
	free(xs);
	assert_int_equal(proc_set_sigmask(tid, 1ULL << (SIGTERM - 1)), 0);
	assert_int_equal(proc_release(ctl), 0);

	msleep(20);   /* the thread runs its loop with the new values */

	assert_int_equal(proc_seize(c.pid, &ctl), 0);
	assert_int_equal(proc_get_regs(tid, &regs), 0);
	assert_int_equal(regs.r12, 0xfeedfacecafebeefull);
	assert_int_equal(proc_get_xstate(tid, &xs, &xlen), 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(xs[XSAVE_XMM0 + i], 0x5a);
	assert_memory_equal(xs + XSAVE_XMM0 + 7 * 16, xmm_pattern + 16, 16);
	free(xs);
	assert_int_equal(proc_get_sigmask(tid, &mask), 0);
	assert_int_equal(mask, 1ULL << (SIGTERM - 1));
	assert_int_equal(proc_release(ctl), 0);
	kill_child(&c);
}

/* ---- a stopped process stays stopped ---- */

static void nothing(void)
{
}

static void group_stopped_process_stays_stopped(void **state)
{
	struct child c = start_child(nothing);
	struct proc_ctl *ctl;
	struct proc_status st;
	int ws;
	(void)state;

	assert_int_equal(kill(c.pid, SIGSTOP), 0);
	assert_int_equal(waitpid(c.pid, &ws, WUNTRACED), c.pid);
	assert_true(WIFSTOPPED(ws));
	assert_int_equal(proc_seize(c.pid, &ctl), 0);
	assert_int_equal(ctl->t[0].stop_sig, SIGSTOP);
	assert_int_equal(proc_release(ctl), 0);
	/* Detach wakes the thread, which goes back into its group stop. */
	for (int i = 0; i < 200; i++) {
		assert_int_equal(proc_status_read(c.pid, 0, &st), 0);
		if (st.state == 'T')
			break;
		msleep(10);
	}
	assert_int_equal(st.state, 'T');
	msleep(50);
	assert_int_equal(proc_status_read(c.pid, 0, &st), 0);
	assert_int_equal(st.state, 'T');
	assert_int_equal(st.tracer_pid, 0);
	assert_int_equal(kill(c.pid, SIGCONT), 0);
	stop_child(&c);     /* it runs again and exits normally */
}

/* ---- a process that exits while seized ---- */

/* The parent of the exiting process: it watches its child through a
 * non-blocking pidfd, as a program may (tests/integration rw_tree.c's
 * pidfd mode once failed this way under the pager's let-go): once the
 * pidfd is readable, waitid must find the exit. Exit 0 if it did. */
static void exit_watcher(int to_test, int child_hold)
{
	siginfo_t si;
	struct pollfd p;
	pid_t c = fork();

	if (c == 0) {
		char b;

		while (read(child_hold, &b, 1) > 0)
			;
		_exit(5);
	}
	close(child_hold);
	p.fd = (int)syscall(SYS_pidfd_open, c, PIDFD_NONBLOCK);
	p.events = POLLIN;
	if (p.fd < 0 || write(to_test, &c, sizeof(c)) != sizeof(c))
		_exit(3);
	if (poll(&p, 1, 10000) != 1)
		_exit(2);
	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, (id_t)p.fd, &si, WEXITED) || si.si_pid != c || si.si_status != 5)
		_exit(1);
	_exit(0);
}

static void exit_while_seized_is_seen_by_its_parent(void **state)
{
	int to_test[2], hold[2], st;
	struct proc_ctl *ctl;
	pid_t watcher, c = 0;
	(void)state;

	assert_int_equal(pipe2(to_test, O_CLOEXEC), 0);
	assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
	watcher = fork();
	assert_true(watcher >= 0);
	if (watcher == 0) {
		close(to_test[0]);
		close(hold[1]);
		exit_watcher(to_test[1], hold[0]);
	}
	close(to_test[1]);
	close(hold[0]);
	assert_int_equal(read(to_test[0], &c, sizeof(c)), sizeof(c));
	assert_int_equal(proc_seize(c, &ctl), 0);
	/* Run it on (as injection does) into its exit, and hold it there a
	 * while: the watcher must not see a half exit meanwhile. */
	close(hold[1]);
	assert_int_equal(ptrace(PTRACE_CONT, c, 0, 0), 0);
	ctl->t[0].stopped = false;
	msleep(200);
	assert_int_equal(proc_wait_stop(&ctl->t[0]), -ESRCH);
	assert_true(ctl->t[0].gone);
	assert_int_equal(proc_release(ctl), 0);
	assert_int_equal(waitpid(watcher, &st, 0), watcher);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fail_msg("the parent of a process that exited while seized: status %#x "
			 "(1: its pidfd was readable but waitid found no exit)", st);
	close(to_test[0]);
}

static void seize_errors(void **state)
{
	struct proc_ctl *ctl = NULL;
	struct child c = start_child(nothing);
	(void)state;

	assert_int_equal(proc_seize(999999999, &ctl), -ESRCH);
	/* Already traced by us: the second seize fails, the first still holds
	 * and releases cleanly. */
	{
		struct proc_ctl *first;
		assert_int_equal(proc_seize(c.pid, &first), 0);
		assert_true(proc_seize(c.pid, &ctl) < 0);
		check_traced(c.pid, true);
		assert_int_equal(proc_release(first), 0);
		check_traced(c.pid, false);
	}
	assert_int_equal(proc_release(NULL), 0);
	stop_child(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seize_stops_all_and_release_resumes),
		cmocka_unit_test(seize_catches_threads_created_meanwhile),
		cmocka_unit_test(capture_thread_state),
		cmocka_unit_test(set_thread_state_survives_release),
		cmocka_unit_test(group_stopped_process_stays_stopped),
		cmocka_unit_test(seize_errors),
		cmocka_unit_test(exit_while_seized_is_seen_by_its_parent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
