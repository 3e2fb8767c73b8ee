/* Unit tests: src/proc/inject — syscalls run inside children this test
 * forks, including children stopped in the middle of read() and
 * nanosleep(), which must carry on correctly after release. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc/fds.h"
#include "proc/inject.h"
#include "proc/maps.h"
#include "proc/mem.h"
#include "proc/procfs.h"
#include "proc/ptrace.h"
#include "proc/status.h"

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

/* Wait until the child's main thread sleeps inside syscall nr. */
static void wait_in_syscall(pid_t pid, long nr)
{
	for (int i = 0; i < 500; i++) {
		char *buf;
		size_t len;
		long got = -1;
		/* "running" while it runs, else the number of the syscall it
		 * sleeps in. */
		if (proc_read_file(pid, "syscall", &buf, &len) == 0) {
			if (buf[0] >= '0' && buf[0] <= '9')
				got = strtol(buf, NULL, 10);
			free(buf);
		}
		if (got == nr)
			return;
		msleep(2);
	}
	fail_msg("child %d never entered syscall %ld", (int)pid, nr);
}

static void maps_equal(pid_t pid, const struct proc_maps *a)
{
	struct proc_maps b;
	assert_int_equal(proc_maps_read(pid, false, &b), 0);
	assert_int_equal(a->n, b.n);
	for (size_t i = 0; i < a->n; i++) {
		assert_int_equal(a->v[i].start, b.v[i].start);
		assert_int_equal(a->v[i].end, b.v[i].end);
		assert_int_equal(a->v[i].prot, b.v[i].prot);
		assert_string_equal(a->v[i].path, b.v[i].path);
	}
	proc_maps_free(&b);
}

/* ---- child blocked in read() ---- */

static volatile int usr1_seen;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_seen++;
}

/* Reads 5 bytes from in, reports "<ret> <errno> <usr1_seen> <bytes>". */
static void reader(int in, int out)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	char buf[16] = { 0 }, msg[64];
	ssize_t r;
	int n;

	sigaction(SIGUSR1, &sa, NULL);
	r = read(in, buf, 5);
	n = snprintf(msg, sizeof(msg), "%zd %d %d %s", r, r < 0 ? errno : 0, usr1_seen, buf);
	if (write(out, msg, (size_t)n) != n)
		_exit(2);
	_exit(0);
}

static pid_t start_reader(int *to_child, int *from_child)
{
	int a[2], b[2];
	pid_t pid;

	assert_int_equal(pipe2(a, O_CLOEXEC), 0);
	assert_int_equal(pipe2(b, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(a[1]);
		close(b[0]);
		reader(a[0], b[1]);
	}
	close(a[0]);
	close(b[1]);
	*to_child = a[1];
	*from_child = b[0];
	wait_in_syscall(pid, SYS_read);
	return pid;
}

static void finish(pid_t pid, int from_child, const char *want)
{
	char msg[64] = { 0 };
	int st;

	assert_true(read(from_child, msg, sizeof(msg) - 1) > 0);
	assert_string_equal(msg, want);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	close(from_child);
}

static void inject_basic_calls(void **state)
{
	int to, from;
	pid_t pid = start_reader(&to, &from);
	struct proc_maps before;
	struct proc_ctl *ctl;
	uint64_t args[6] = { 0 }, addr;
	int64_t ret;
	const struct proc_vma *v;
	struct proc_maps m;
	uint32_t word = 0xabcdef01, back;
	(void)state;

	assert_int_equal(proc_maps_read(pid, false, &before), 0);
	assert_int_equal(proc_seize(pid, &ctl), 0);
	assert_int_equal(proc_inject_syscall(ctl, SYS_getpid, args, &ret), 0);
	assert_int_equal(ret, pid);
	assert_int_equal(proc_inject_syscall(ctl, SYS_getppid, args, &ret), 0);
	assert_int_equal(ret, getpid());
	/* An error comes back as the kernel returns it. */
	args[0] = 12345;
	assert_int_equal(proc_inject_syscall(ctl, SYS_close, args, &ret), 0);
	assert_int_equal(ret, -EBADF);

	assert_int_equal(proc_remote_mmap(ctl, 0, 3 * 4096, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &addr), 0);
	assert_int_equal(proc_maps_read(pid, false, &m), 0);
	v = proc_maps_find(&m, addr);
	assert_non_null(v);
	assert_int_equal(v->prot, PROC_PROT_READ | PROC_PROT_WRITE);
	proc_maps_free(&m);
	assert_int_equal(proc_mem_write(pid, addr + 4096, &word, 4, NULL), 0);
	assert_int_equal(proc_mem_read(pid, addr + 4096, &back, 4, NULL), 0);
	assert_int_equal(back, word);
	assert_int_equal(proc_remote_mprotect(ctl, addr, 3 * 4096, PROT_READ), 0);
	assert_int_equal(proc_maps_read(pid, false, &m), 0);
	assert_int_equal(proc_maps_find(&m, addr)->prot, PROC_PROT_READ);
	proc_maps_free(&m);
	assert_int_equal(proc_remote_madvise(ctl, addr, 3 * 4096, MADV_DONTNEED), 0);
	assert_int_equal(proc_mem_read(pid, addr + 4096, &back, 4, NULL), 0);
	assert_int_equal(back, 0);
	assert_int_equal(proc_remote_madvise(ctl, addr, 3 * 4096, 9999), -EINVAL);
	assert_int_equal(proc_remote_munmap(ctl, addr, 3 * 4096), 0);
	assert_int_equal(proc_release(ctl), 0);

	/* Nothing added stays behind, and the read goes on. */
	maps_equal(pid, &before);
	proc_maps_free(&before);
	assert_int_equal(write(to, "hello", 5), 5);
	finish(pid, from, "5 0 0 hello");
	close(to);
}

static void read_restarts_after_injection(void **state)
{
	(void)state;
	for (int round = 0; round < 5; round++) {
		int to, from;
		pid_t pid = start_reader(&to, &from);
		struct proc_ctl *ctl;
		struct user_regs_struct regs, after;
		uint64_t args[6] = { 0 }, scratch;
		int64_t ret;

		assert_int_equal(proc_seize(pid, &ctl), 0);
		if (round & 1)
			ctl->heal = -1;		/* the plain path */
		assert_int_equal(proc_get_regs(pid, &regs), 0);
		/* Stopped inside read: the kernel shows the restart state. */
		assert_int_equal(regs.orig_rax, SYS_read);
		assert_int_equal((int64_t)regs.rax, -512 /* ERESTARTSYS */);
		for (int i = 0; i < 20; i++) {
			assert_int_equal(proc_inject_syscall(ctl, SYS_getpid, args, &ret), 0);
			assert_int_equal(ret, pid);
		}
		assert_int_equal(proc_inject_scratch_data(ctl, &scratch), 0);
		/* The heal path keeps the thread on our registers between
		 * calls (its own are put back at cleanup); the plain path
		 * (odd rounds) puts them back after each call. */
		assert_int_equal(ctl->t[0].inj_active, ctl->heal > 0);
		assert_int_equal(proc_inject_cleanup(ctl), 0);
		assert_false(ctl->t[0].inj_active);
		assert_int_equal(proc_get_regs(pid, &after), 0);
		for (size_t w = 0; w < sizeof(regs) / 8; w++)
			if (((uint64_t *)&regs)[w] != ((uint64_t *)&after)[w])
				fprintf(stderr, "word %zu: %#llx -> %#llx\n", w,
					(unsigned long long)((uint64_t *)&regs)[w],
					(unsigned long long)((uint64_t *)&after)[w]);
		assert_memory_equal(&regs, &after, sizeof(regs));
		assert_int_equal(proc_release(ctl), 0);
		msleep(round * 5);
		assert_int_equal(write(to, "abcde", 5), 5);
		finish(pid, from, "5 0 0 abcde");
		close(to);
	}
}

static void signal_during_injection(bool plain)
{
	int to, from;
	pid_t pid = start_reader(&to, &from);
	struct proc_ctl *ctl;
	struct proc_status st;
	uint64_t args[6] = { 0 };
	int64_t ret;

	assert_int_equal(proc_seize(pid, &ctl), 0);
	if (plain)
		ctl->heal = -1;
	/* Queued while stopped: it arrives when injected code runs and must
	 * not be delivered there, but after release, to the real context. */
	assert_int_equal(kill(pid, SIGUSR1), 0);
	assert_int_equal(proc_inject_syscall(ctl, SYS_getpid, args, &ret), 0);
	assert_int_equal(ret, pid);
	if (plain) {
		/* taken from the queue at a signal stop, handed back at detach */
		assert_int_equal(ctl->t[0].deferred_sigs, 1ULL << (SIGUSR1 - 1));
	} else {
		/* blocked while in the slot: still queued, so a tracer that
		 * dies now loses nothing */
		assert_int_equal(ctl->t[0].deferred_sigs, 0);
		assert_int_equal(proc_status_read(pid, 0, &st), 0);
		assert_true(st.shd_pnd & (1ULL << (SIGUSR1 - 1)));
	}
	assert_int_equal(proc_release(ctl), 0);
	msleep(20);
	assert_int_equal(write(to, "xyzzy", 5), 5);
	/* SA_RESTART: the handler ran once and read restarted. */
	finish(pid, from, "5 0 1 xyzzy");
	close(to);
}

static void signal_during_injection_is_kept(void **state)
{
	(void)state;
	signal_during_injection(false);
}

static void signal_during_plain_injection_is_kept(void **state)
{
	(void)state;
	signal_during_injection(true);
}

/* ---- child in nanosleep ---- */

/* raw: the nanosleep syscall itself; else glibc's nanosleep, which is
 * clock_nanosleep underneath. */
static void sleeper(int out, int ms, bool raw)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L }, rem = { 0, 0 };
	uint64_t t0 = now_ms();
	int r = raw ? (int)syscall(SYS_nanosleep, &ts, &rem) : nanosleep(&ts, &rem);
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "%d %llu", r, (unsigned long long)(now_ms() - t0));
	if (write(out, msg, (size_t)n) != n)
		_exit(2);
	_exit(0);
}

static void sleep_resumes_after_injection(bool raw)
{
	long nr = raw ? SYS_nanosleep : SYS_clock_nanosleep;
	int p[2], st;
	pid_t pid;
	struct proc_ctl *ctl;
	struct user_regs_struct regs;
	uint64_t args[6] = { 0 }, t0;
	int64_t ret;
	char msg[64] = { 0 };
	int r;
	unsigned long long took;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	t0 = now_ms();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		sleeper(p[1], 400, raw);
	}
	close(p[1]);
	wait_in_syscall(pid, nr);
	assert_int_equal(proc_seize(pid, &ctl), 0);
	assert_int_equal(proc_get_regs(pid, &regs), 0);
	assert_int_equal(regs.orig_rax, nr);
	assert_int_equal((int64_t)regs.rax, -516 /* ERESTART_RESTARTBLOCK */);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(proc_inject_syscall(ctl, SYS_getpid, args, &ret), 0);
		assert_int_equal(ret, pid);
	}
	msleep(100);  /* held stopped for a while */
	assert_int_equal(proc_release(ctl), 0);
	assert_true(read(p[0], msg, sizeof(msg) - 1) > 0);
	assert_int_equal(sscanf(msg, "%d %llu", &r, &took), 2);
	/* The sleep completed (not EINTR) and lasted its full time, restarted
	 * with the remaining time rather than from scratch or not at all. */
	assert_int_equal(r, 0);
	assert_true(took >= 400);
	assert_true(now_ms() - t0 < 3000);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(p[0]);
}

static void nanosleep_resumes_after_injection(void **state)
{
	(void)state;
	sleep_resumes_after_injection(true);
}

static void clock_nanosleep_resumes_after_injection(void **state)
{
	(void)state;
	sleep_resumes_after_injection(false);
}

/* ---- helpers that read state through injection ---- */

static char altstack[65536];
static uint32_t tid_word;
static timer_t tmr;

static void setup_helpers(void)
{
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	struct itimerval it = { { 0, 0 }, { 100, 0 } };
	struct sigevent sev = { .sigev_notify = SIGEV_NONE };
	struct itimerspec ts = { { 1, 0 }, { 50, 0 } };

	if (sigaltstack(&ss, NULL) || setitimer(ITIMER_REAL, &it, NULL))
		_exit(3);
	if (timer_create(CLOCK_MONOTONIC, &sev, &tmr) || timer_settime(tmr, 0, &ts, NULL))
		_exit(3);
	syscall(SYS_set_tid_address, &tid_word);
}

static void remote_helpers(void **state)
{
	int hold[2], ready[2];
	pid_t pid;
	char b;
	struct proc_ctl *ctl;
	stack_t ss;
	struct itimerval it;
	struct itimerspec ts;
	uint64_t tid_addr;
	int uffd, tmr_id;
	struct proc_fds fds;
	char path[64], link[64];
	ssize_t n;
	(void)state;

	assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(hold[1]);
		setup_helpers();
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		while (read(hold[0], &b, 1) > 0)
			;
		_exit(0);
	}
	close(hold[0]);
	close(ready[1]);
	assert_int_equal(read(ready[0], &b, 1), 1);
	/* timer_create's id is what glibc stored in tmr. */
	assert_int_equal(proc_mem_read(pid, (uint64_t)(uintptr_t)&tmr, &tmr_id,
				       sizeof(tmr_id), NULL), 0);

	assert_int_equal(proc_seize(pid, &ctl), 0);
	assert_int_equal(proc_remote_sigaltstack(ctl, 0, &ss), 0);
	assert_ptr_equal(ss.ss_sp, altstack);
	assert_int_equal(ss.ss_size, sizeof(altstack));
	assert_int_equal(ss.ss_flags, 0);
	assert_int_equal(proc_remote_getitimer(ctl, ITIMER_REAL, &it), 0);
	assert_true(it.it_value.tv_sec >= 90 && it.it_value.tv_sec <= 100);
	assert_int_equal(it.it_interval.tv_sec, 0);
	assert_int_equal(proc_remote_timer_gettime(ctl, tmr_id, &ts), 0);
	assert_true(ts.it_value.tv_sec >= 40 && ts.it_value.tv_sec <= 50);
	assert_int_equal(ts.it_interval.tv_sec, 1);
	assert_int_equal(proc_remote_timer_gettime(ctl, tmr_id + 100, &ts), -EINVAL);
	assert_int_equal(proc_remote_get_tid_address(ctl, 0, &tid_addr), 0);
	assert_int_equal(tid_addr, (uint64_t)(uintptr_t)&tid_word);

	assert_int_equal(proc_remote_userfaultfd(ctl, O_CLOEXEC | O_NONBLOCK, &uffd), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", uffd);
	n = readlink(path, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = '\0';
	assert_string_equal(link, "anon_inode:[userfaultfd]");
	close(uffd);
	assert_int_equal(proc_release(ctl), 0);

	/* The target keeps no uffd and no scratch page. */
	assert_int_equal(proc_fds_list(pid, &fds), 0);
	for (size_t i = 0; i < fds.n; i++)
		assert_true(strstr(fds.v[i].target, "userfaultfd") == NULL);
	proc_fds_free(&fds);
	close(hold[1]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	close(ready[0]);
}

static void scratch_page_gadget(void **state)
{
	int to, from;
	pid_t pid = start_reader(&to, &from);
	struct proc_maps before, m;
	struct proc_ctl *ctl;
	uint64_t args[6] = { 0 };
	int64_t ret;
	(void)state;

	assert_int_equal(proc_maps_read(pid, false, &before), 0);
	assert_int_equal(proc_seize(pid, &ctl), 0);
	/* Force the fallback used when the vdso is not there (or is about to
	 * be unmapped): our own `syscall; int3` page. */
	assert_int_equal(proc_inject_make_scratch(ctl, 0), 0);
	assert_true(ctl->gadget_is_scratch);
	assert_int_equal(proc_maps_read(pid, false, &m), 0);
	assert_int_equal(m.n, before.n + 1);
	assert_non_null(proc_maps_find(&m, ctl->scratch_code));
	proc_maps_free(&m);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(proc_inject_syscall(ctl, SYS_gettid, args, &ret), 0);
		assert_int_equal(ret, pid);
	}
	assert_int_equal(proc_release(ctl), 0);
	maps_equal(pid, &before);
	proc_maps_free(&before);
	assert_int_equal(write(to, "12345", 5), 5);
	finish(pid, from, "5 0 0 12345");
	close(to);
}

static void no_vdso_rip_patch_path(void **state)
{
	/* Without a vdso gadget the first call patches bytes at RIP to map
	 * the scratch page; they must be put back exactly. */
	int to, from;
	pid_t pid = start_reader(&to, &from);
	struct proc_ctl *ctl;
	struct user_regs_struct regs;
	uint8_t code[16], code_after[16];
	uint64_t args[6] = { 0 };
	int64_t ret;
	(void)state;

	assert_int_equal(proc_seize(pid, &ctl), 0);
	assert_int_equal(proc_get_regs(pid, &regs), 0);
	assert_int_equal(proc_mem_peek(pid, regs.rip, code, sizeof(code)), 0);
	ctl->avoid_vdso = true;        /* as if there were no vdso */
	assert_int_equal(proc_inject_syscall(ctl, SYS_getpid, args, &ret), 0);
	assert_int_equal(ret, pid);
	assert_true(ctl->gadget_is_scratch);
	assert_int_equal(ctl->gadget, ctl->scratch_code);
	assert_int_equal(proc_mem_peek(pid, regs.rip, code_after, sizeof(code_after)), 0);
	assert_memory_equal(code, code_after, sizeof(code));
	{
		/* The gadget is not in the vdso. */
		struct proc_maps m;
		const struct proc_vma *v;
		assert_int_equal(proc_maps_read(pid, false, &m), 0);
		v = proc_maps_find(&m, ctl->gadget);
		assert_non_null(v);
		assert_false(v->special);
		proc_maps_free(&m);
	}
	{
		struct user_regs_struct after;
		assert_int_equal(proc_get_regs(pid, &after), 0);
		assert_memory_equal(&regs, &after, sizeof(regs));
	}
	assert_int_equal(proc_release(ctl), 0);
	assert_int_equal(write(to, "zzzzz", 5), 5);
	finish(pid, from, "5 0 0 zzzzz");
	close(to);
}

/* ---- per-thread injection, stopped and dying targets ---- */

#define NALT 3
static char alt[NALT][16384];
static volatile pid_t alt_tid[NALT];
static stack_t main_ss;   /* what the child's main thread has (ASan sets one) */

static void *alt_thread(void *arg)
{
	long i = (long)arg;
	stack_t ss = { .ss_sp = alt[i], .ss_size = sizeof(alt[i]) };
	if (sigaltstack(&ss, NULL))
		_exit(4);
	alt_tid[i] = (pid_t)syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

static void per_thread_sigaltstack(void **state)
{
	int hold[2], ready[2];
	struct proc_ctl *ctl;
	pid_t pid, tids[NALT];
	char b;
	(void)state;

	assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pthread_t t;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(hold[1]);
		for (long i = 0; i < NALT; i++)
			if (pthread_create(&t, NULL, alt_thread, (void *)i))
				_exit(3);
		for (int i = 0; i < NALT; i++)
			while (!alt_tid[i])
				msleep(1);
		if (sigaltstack(NULL, &main_ss))
			_exit(4);
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		while (read(hold[0], &b, 1) > 0)
			;
		_exit(0);
	}
	close(hold[0]);
	close(ready[1]);
	assert_int_equal(read(ready[0], &b, 1), 1);
	assert_int_equal(proc_mem_read(pid, (uint64_t)(uintptr_t)alt_tid, tids, sizeof(tids),
				       NULL), 0);
	assert_int_equal(proc_seize(pid, &ctl), 0);
	assert_int_equal(ctl->n, NALT + 1);
	for (int i = 0; i < NALT; i++) {
		stack_t ss;
		uint64_t a[6] = { 0 };
		int64_t ret;
		int k = proc_ctl_find(ctl, tids[i]);
		assert_true(k >= 0);
		assert_int_equal(proc_remote_sigaltstack(ctl, (size_t)k, &ss), 0);
		assert_ptr_equal(ss.ss_sp, alt[i]);
		assert_int_equal(ss.ss_size, sizeof(alt[i]));
		{
			/* Full capture: glibc points clear_child_tid of each
			 * thread at its own descriptor, so all differ. */
			struct proc_thread_state st;
			static uint64_t ctid[NALT];
			assert_int_equal(proc_thread_capture(ctl, (size_t)k, &st), 0);
			assert_int_equal(proc_thread_capture_injected(ctl, (size_t)k, &st), 0);
			assert_true(st.has_injected);
			assert_ptr_equal(st.altstack.ss_sp, alt[i]);
			assert_true(st.clear_child_tid != 0);
			ctid[i] = st.clear_child_tid;
			for (int j = 0; j < i; j++)
				assert_true(ctid[j] != ctid[i]);
			proc_thread_state_free(&st);
		}
		/* The call really ran in that thread. */
		assert_int_equal(proc_inject_syscall_thread(ctl, (size_t)k, SYS_gettid, a, &ret), 0);
		assert_int_equal(ret, tids[i]);
	}
	{
		stack_t ss, want;
		int k = proc_ctl_find(ctl, pid);
		assert_int_equal(proc_mem_read(pid, (uint64_t)(uintptr_t)&main_ss, &want,
					       sizeof(want), NULL), 0);
		assert_int_equal(proc_remote_sigaltstack(ctl, (size_t)k, &ss), 0);
		assert_ptr_equal(ss.ss_sp, want.ss_sp);
		assert_int_equal(ss.ss_size, want.ss_size);
		assert_int_equal(ss.ss_flags, want.ss_flags);
		for (int i = 0; i < NALT; i++)
			assert_ptr_not_equal(ss.ss_sp, alt[i]);
	}
	assert_int_equal(proc_release(ctl), 0);
	close(hold[1]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	close(ready[0]);
}

static void inject_into_group_stopped_process(void **state)
{
	int to, from, ws;
	pid_t pid = start_reader(&to, &from);
	struct proc_ctl *ctl;
	struct proc_status st;
	uint64_t a[6] = { 0 };
	int64_t ret;
	(void)state;

	assert_int_equal(kill(pid, SIGSTOP), 0);
	assert_int_equal(waitpid(pid, &ws, WUNTRACED), pid);
	assert_int_equal(proc_seize(pid, &ctl), 0);
	assert_int_equal(proc_inject_syscall(ctl, SYS_getpid, a, &ret), 0);
	assert_int_equal(ret, pid);
	assert_int_equal(proc_release(ctl), 0);
	/* Still stopped as before (after the detach wake-up settles). */
	for (int i = 0; i < 200; i++) {
		assert_int_equal(proc_status_read(pid, 0, &st), 0);
		if (st.state == 'T')
			break;
		msleep(10);
	}
	assert_int_equal(st.state, 'T');
	msleep(50);
	assert_int_equal(proc_status_read(pid, 0, &st), 0);
	assert_int_equal(st.state, 'T');
	assert_int_equal(kill(pid, SIGCONT), 0);
	assert_int_equal(write(to, "after", 5), 5);
	finish(pid, from, "5 0 0 after");
	close(to);
}

static void target_killed_while_held(void **state)
{
	int to, from;
	pid_t pid = start_reader(&to, &from);
	struct proc_ctl *ctl;
	uint64_t a[6] = { 0 }, addr;
	int64_t ret;
	(void)state;

	assert_int_equal(proc_seize(pid, &ctl), 0);
	assert_int_equal(proc_inject_scratch_data(ctl, &addr), 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	/* Injection and release report the death and do not hang. */
	assert_true(proc_inject_syscall(ctl, SYS_getpid, a, &ret) < 0);
	(void)proc_release(ctl);
	/* Gone. Its tracer is its parent here (never so in cryo), and may
	 * have collected its exit already: it stops at PTRACE_EVENT_EXIT,
	 * and an injection that runs it on from there waits for it. */
	if (waitpid(pid, NULL, 0) != pid)
		assert_int_equal(errno, ECHILD);
	assert_true(kill(pid, 0) < 0 && errno == ESRCH);
	close(to);
	close(from);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(inject_basic_calls),
		cmocka_unit_test(read_restarts_after_injection),
		cmocka_unit_test(signal_during_injection_is_kept),
		cmocka_unit_test(signal_during_plain_injection_is_kept),
		cmocka_unit_test(nanosleep_resumes_after_injection),
		cmocka_unit_test(clock_nanosleep_resumes_after_injection),
		cmocka_unit_test(remote_helpers),
		cmocka_unit_test(scratch_page_gadget),
		cmocka_unit_test(no_vdso_rip_patch_path),
		cmocka_unit_test(per_thread_sigaltstack),
		cmocka_unit_test(inject_into_group_stopped_process),
		cmocka_unit_test(target_killed_while_held),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
