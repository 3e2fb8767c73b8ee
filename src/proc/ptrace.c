#define LOG_PREFIX "proc: "
#include "proc/ptrace.h"

#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "proc/inject.h"
#include "proc/procfs.h"
#include "proc/status.h"

#define SEIZE_ROUNDS_MAX 1000
#define SEIZE_EPERM_RETRIES 200  /* x 1 ms */
#define PEEKSIGINFO_BATCH 32
#define PEEKSIGINFO_MAX 65536

int proc_ctl_find(const struct proc_ctl *ctl, pid_t tid)
{
	for (size_t i = 0; i < ctl->n; i++)
		if (ctl->t[i].tid == tid)
			return (int)i;
	return -1;
}

/* flags WNOHANG: -EAGAIN when t has not stopped yet. */
static int wait_stop(struct proc_thread *t, int flags)
{
	int status;
	pid_t r;

	do
		r = waitpid(t->tid, &status, __WALL | flags);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -EAGAIN;
	if (r < 0) {
		int ret = -errno;
		pr_err("waitpid %d: %s", (int)t->tid, strerror(-ret));
		if (ret == -ECHILD) {
			t->gone = true;
			t->seized = false;
			t->stopped = false;
			return -ESRCH;
		}
		return ret;
	}
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		t->gone = true;
		t->seized = false;
		t->stopped = false;
		return -ESRCH;
	}
	if (!WIFSTOPPED(status))
		return -EIO;
	t->stop_event = (status >> 16) & 0xff;
	if (t->stop_event == PTRACE_EVENT_EXIT) {
		/* It is exiting (PTRACE_O_TRACEEXIT): let it go now, before
		 * it is a zombie only its tracer sees. Its parent's wait and
		 * pidfd then see the exit as if we were not there (a pidfd
		 * readable while waitid finds nothing, otherwise). */
		(void)ptrace(PTRACE_DETACH, t->tid, 0, 0);
		t->gone = true;
		t->seized = false;
		t->stopped = false;
		return -ESRCH;
	}
	t->stopped = true;
	t->stop_sig = WSTOPSIG(status);
	return 0;
}

void proc_collect_exit(pid_t tid)
{
	int st;

	while (waitpid(tid, &st, __WALL) == tid && !WIFEXITED(st) && !WIFSIGNALED(st))
		if (WIFSTOPPED(st))
			(void)ptrace(PTRACE_CONT, tid, 0, 0);
}

int proc_wait_stop(struct proc_thread *t)
{
	return wait_stop(t, 0);
}

int proc_resume_wait(struct proc_thread *t, int request, const char *why)
{
	if (ptrace((enum __ptrace_request)request, t->tid, 0, 0)) {
		int ret = -errno;

		pr_err("resume %d %s: %s", (int)t->tid, why, strerror(-ret));
		return ret;
	}
	t->stopped = false;
	return proc_wait_stop(t);
}

/* Bring a freshly interrupted thread to its PTRACE_EVENT_STOP. A signal
 * that reaches the thread first (signal-delivery-stop) is passed on: the
 * pending interrupt then stops it right after, and the process merely ran
 * a little further before the snapshot instant. flags WNOHANG: -EAGAIN
 * while it has not stopped yet. */
static int wait_interrupt_stop(struct proc_thread *t, int flags)
{
	for (int i = 0; i < 1000; i++) {
		int ret = wait_stop(t, flags);
		if (ret)
			return ret;
		if (t->stop_event == PTRACE_EVENT_STOP)
			return 0;
		t->stopped = false;
		if (ptrace(PTRACE_CONT, t->tid, 0, (long)(t->stop_event ? 0 : t->stop_sig))) {
			ret = -errno;
			pr_err("resume %d to its interrupt: %s", (int)t->tid, strerror(-ret));
			return ret;
		}
	}
	pr_err("thread %d never reached its interrupt stop", (int)t->tid);
	return -EAGAIN;
}

static struct proc_thread *add_thread(struct proc_ctl *ctl, pid_t tid)
{
	if (ctl->n == ctl->cap) {
		size_t cap = ctl->cap ? ctl->cap * 2 : 16;
		struct proc_thread *nt = realloc(ctl->t, cap * sizeof(*nt));
		if (!nt)
			return NULL;
		ctl->t = nt;
		ctl->cap = cap;
	}
	memset(&ctl->t[ctl->n], 0, sizeof(ctl->t[0]));
	ctl->t[ctl->n].tid = tid;
	return &ctl->t[ctl->n++];
}

/* PTRACE_SEIZE options: syscall stops told apart from SIGTRAPs (the heal
 * path stops after an injected syscall that way, inject_heal.c); a
 * process being made dies with us (PROC_SEIZE_MADE); any other stops as
 * it starts to exit, and is let go there (wait_stop). */
static unsigned long seize_options(const struct proc_ctl *ctl)
{
	unsigned long o = PTRACE_O_TRACESYSGOOD;

	if (ctl->flags & PROC_SEIZE_MADE)
		o |= PTRACE_O_EXITKILL;
	else
		o |= PTRACE_O_TRACEEXIT;
	return o;
}

/* ptrace_attach() says EPERM, not ESRCH, for a thread that is exiting.
 * Tell that apart from a real refusal (another tracer, no permission):
 * an exiting thread's task directory vanishes within moments, or stays
 * as a zombie's (a child exited, its parent not waiting yet). */
static int seize_retry_eperm(struct proc_ctl *ctl, struct proc_thread *t)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)ctl->pid, (int)t->tid);
	for (int i = 0; i < SEIZE_EPERM_RETRIES; i++) {
		struct timespec ts = { 0, 1000000 };
		struct proc_status st;

		if (access(path, F_OK) ||
		    (!proc_status_read(ctl->pid, t->tid, &st) && (st.state == 'Z' || st.state == 'X')))
			return -ESRCH;
		nanosleep(&ts, NULL);
		if (ptrace(PTRACE_SEIZE, t->tid, 0, seize_options(ctl)) == 0)
			return 0;
		if (errno != EPERM)
			return -errno;
	}
	return -EPERM;
}

static int seize_one(struct proc_ctl *ctl, struct proc_thread *t)
{
	int ret = 0;

	if (ptrace(PTRACE_SEIZE, t->tid, 0, seize_options(ctl))) {
		ret = -errno;
		if (ret == -EPERM)
			ret = seize_retry_eperm(ctl, t);
		if (ret == -ESRCH) {   /* exited between listing and seizing */
			t->gone = true;
			return 0;
		}
		if (ret) {
			pr_err("seize %d (thread %d): %s%s", (int)ctl->pid, (int)t->tid,
			       strerror(-ret), ret == -EPERM ? " (already traced?)" : "");
			return ret;
		}
	}
	t->seized = true;
	if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0)) {
		ret = -errno;
		if (ret == -ESRCH) {
			/* It died; reap what is left to reap. */
			(void)proc_wait_stop(t);
			t->gone = true;
			t->seized = false;
			return 0;
		}
		pr_err("interrupt %d: %s", (int)t->tid, strerror(-ret));
		return ret;
	}
	return 0;
}

/* Move live threads to the front so t[0] is a usable thread. */
static void compact(struct proc_ctl *ctl)
{
	size_t j = 0;
	for (size_t i = 0; i < ctl->n; i++)
		if (!ctl->t[i].gone)
			ctl->t[j++] = ctl->t[i];
	ctl->n = j;
}

/* Seize every thread of ctl->pid not seized yet; *added: how many. */
static int seize_new(struct proc_ctl *ctl, size_t *added)
{
	pid_t *tids;
	size_t ntids;
	int ret;

	*added = 0;
	ret = proc_task_list(ctl->pid, &tids, &ntids);
	if (ret) {
		pr_err("list threads of %d: %s", (int)ctl->pid, strerror(-ret));
		return ret;
	}
	for (size_t i = 0; i < ntids && !ret; i++) {
		struct proc_thread *t;
		int k = proc_ctl_find(ctl, tids[i]);
		if (k >= 0 && !ctl->t[k].gone)
			continue;
		if (k >= 0) {
			/* A tid that ended and was reused by a new thread. */
			t = &ctl->t[k];
			memset(t, 0, sizeof(*t));
			t->tid = tids[i];
		} else {
			t = add_thread(ctl, tids[i]);
		}
		if (!t) {
			ret = -ENOMEM;
			break;
		}
		(*added)++;
		ret = seize_one(ctl, t);
	}
	free(tids);
	return ret;
}

/* Wait until every seized thread is in its interrupt stop. flags
 * WNOHANG: -EAGAIN while one is not. The leader (t[0]) last: if the
 * process is exiting, the leader's exit is reported only once its other
 * threads' exits were collected (by us, their tracer). */
static int wait_all(struct proc_ctl *ctl, int flags)
{
	for (size_t i = ctl->n; i-- > 0;) {
		struct proc_thread *t = &ctl->t[i];
		int ret;

		if (!t->seized || t->stopped)
			continue;
		ret = wait_interrupt_stop(t, flags);
		if (ret && ret != -ESRCH)
			return ret;
	}
	return 0;
}

static int ctl_new(pid_t pid, unsigned flags, struct proc_ctl **out)
{
	struct proc_ctl *ctl = calloc(1, sizeof(*ctl));
	int ret;

	if (!ctl)
		return -ENOMEM;
	ctl->pid = pid;
	ctl->flags = flags;
	ctl->heal_memfd = -1;
	ctl->heal_owner = -1;
	ctl->pidfd = pidfd_open(pid, 0);
	if (ctl->pidfd < 0) {
		ret = -errno;
		pr_err("pidfd_open %d: %s", (int)pid, strerror(-ret));
		free(ctl);
		return ret;
	}
	*out = ctl;
	return 0;
}

/* All stopped and no thread added by the last round: the set is final. */
static int seize_done(struct proc_ctl *ctl)
{
	compact(ctl);
	if (!ctl->n) {
		pr_err("process %d has no live thread", (int)ctl->pid);
		return -ESRCH;
	}
	pr_debug("seized %d: %zu threads", (int)ctl->pid, ctl->n);
	return 0;
}

int proc_seize(pid_t pid, struct proc_ctl **out)
{
	return proc_seize_opts(pid, 0, out);
}

int proc_seize_opts(pid_t pid, unsigned flags, struct proc_ctl **out)
{
	struct proc_ctl *ctl = NULL;
	int ret = ctl_new(pid, flags, &ctl), round;

	if (ret)
		return ret;
	for (round = 0; round < SEIZE_ROUNDS_MAX; round++) {
		size_t added;

		ret = seize_new(ctl, &added);
		/* A thread not yet stopped may still clone: wait for all, then
		 * list again; only a round that adds nothing is final. */
		if (!ret)
			ret = wait_all(ctl, 0);
		if (ret)
			goto fail;
		if (!added)
			break;
	}
	if (round == SEIZE_ROUNDS_MAX) {
		pr_err("threads of %d keep appearing; giving up", (int)pid);
		ret = -EAGAIN;
		goto fail;
	}
	ret = seize_done(ctl);
	if (ret)
		goto fail;
	*out = ctl;
	return 0;
fail:
	proc_release(ctl);
	return ret;
}

int proc_seize_start(pid_t pid, struct proc_ctl **out)
{
	struct proc_ctl *ctl = NULL;
	size_t added;
	int ret = ctl_new(pid, 0, &ctl);

	if (ret)
		return ret;
	ret = seize_new(ctl, &added);
	if (ret) {
		proc_release(ctl);
		return ret;
	}
	*out = ctl;
	return 0;
}

int proc_seize_poll(struct proc_ctl *ctl)
{
	size_t added;
	int ret = wait_all(ctl, WNOHANG);

	if (!ret)
		ret = seize_new(ctl, &added);
	if (ret)
		return ret;
	return added ? -EAGAIN : seize_done(ctl);
}

/* PTRACE_DETACH said ESRCH of a thread we hold stopped: killed since
 * (SIGKILL wakes a tracee), it runs to its exit, where it stops again
 * (PTRACE_O_TRACEEXIT: wait_stop lets it go there) or ends (collected).
 * Left alone it would wait in that stop for as long as we live. */
static void detach_dying(struct proc_thread *t)
{
	t->stopped = false;
	if (!t->gone && wait_stop(t, 0) == 0)
		(void)ptrace(PTRACE_DETACH, t->tid, 0, 0);
}

static int detach_one(pid_t pid, struct proc_thread *t)
{
	int ret = 0, first_sig = 0;

	if (!t->seized)
		return 0;
	/* PTRACE_DETACH needs a stopped tracee: stop it first if a failed
	 * step left it running. */
	if (!t->stopped) {
		if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) == 0)
			ret = wait_interrupt_stop(t, 0);
		else
			ret = -errno;
		if (ret == -ESRCH)
			return 0;
	}
	/* The first deferred signal rides on the detach; others are queued
	 * again (a standard signal already pending merges, as it would have). */
	for (int sig = 1; sig <= 64; sig++) {
		if (!(t->deferred_sigs & (1ULL << (sig - 1))))
			continue;
		if (!first_sig)
			first_sig = sig;
		else
			(void)syscall(SYS_tgkill, pid, t->tid, sig);
	}
	if (ptrace(PTRACE_DETACH, t->tid, 0, (long)first_sig)) {
		int err = -errno;
		if (err == -ESRCH)
			detach_dying(t);
		else {
			pr_err("detach %d: %s", (int)t->tid, strerror(-err));
			ret = ret ? ret : err;
		}
	}
	t->seized = false;
	t->stopped = false;
	t->deferred_sigs = 0;
	return ret;
}

int proc_release(struct proc_ctl *ctl)
{
	int ret = 0, r;

	if (!ctl)
		return 0;
	r = proc_inject_cleanup(ctl);
	if (r)
		ret = r;
	for (size_t i = 0; i < ctl->n; i++) {
		r = detach_one(ctl->pid, &ctl->t[i]);
		if (r && !ret)
			ret = r;
	}
	if (ctl->pidfd >= 0)
		close(ctl->pidfd);
	if (ctl->heal_memfd >= 0)
		close(ctl->heal_memfd);
	free(ctl->t);
	free(ctl);
	return ret;
}

int proc_get_regs(pid_t tid, struct user_regs_struct *regs)
{
	if (ptrace(PTRACE_GETREGS, tid, 0, regs)) {
		int ret = -errno;
		pr_err("GETREGS %d: %s", (int)tid, strerror(-ret));
		return ret;
	}
	return 0;
}

int proc_set_regs(pid_t tid, const struct user_regs_struct *regs)
{
	if (ptrace(PTRACE_SETREGS, tid, 0, regs)) {
		int ret = -errno;
		pr_err("SETREGS %d: %s", (int)tid, strerror(-ret));
		return ret;
	}
	return 0;
}

size_t proc_xstate_size(void)
{
	unsigned a, b, c, d;

	/* ECX of leaf 0xD/0: the XSAVE area for every feature the CPU has,
	 * an upper bound of what the kernel's regset holds. */
	if (__get_cpuid_max(0, NULL) >= 0xd) {
		__cpuid_count(0xd, 0, a, b, c, d);
		(void)a; (void)b; (void)d;
		if (c >= 512 && c <= (1u << 20))
			return c;
	}
	return 4096;
}

int proc_get_xstate(pid_t tid, uint8_t **bufp, size_t *lenp)
{
	size_t cap = proc_xstate_size();
	struct iovec iov;
	uint8_t *buf;
	int ret;

	for (int tries = 0; tries < 6; tries++) {
		buf = calloc(1, cap);
		if (!buf)
			return -ENOMEM;
		iov.iov_base = buf;
		iov.iov_len = cap;
		if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) == 0) {
			/* The kernel shrinks iov_len to what it wrote. */
			*bufp = buf;
			*lenp = iov.iov_len;
			return 0;
		}
		ret = -errno;
		free(buf);
		if (ret != -EINVAL && ret != -EFAULT)
			break;
		cap *= 2;  /* probe a larger area */
	}
	pr_err("GETREGSET xstate %d: %s", (int)tid, strerror(-ret));
	return ret;
}

int proc_set_xstate(pid_t tid, const uint8_t *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov)) {
		int ret = -errno;
		pr_err("SETREGSET xstate %d (%zu bytes): %s", (int)tid, len, strerror(-ret));
		return ret;
	}
	return 0;
}

int proc_get_sigmask(pid_t tid, uint64_t *mask)
{
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(*mask), mask)) {
		int ret = -errno;
		pr_err("GETSIGMASK %d: %s", (int)tid, strerror(-ret));
		return ret;
	}
	return 0;
}

int proc_set_sigmask(pid_t tid, uint64_t mask)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(mask), &mask)) {
		int ret = -errno;
		pr_err("SETSIGMASK %d: %s", (int)tid, strerror(-ret));
		return ret;
	}
	return 0;
}

int proc_peek_siginfo(pid_t tid, bool shared, siginfo_t **outp, size_t *np)
{
	siginfo_t *out = NULL, *no;
	size_t n = 0;

	for (;;) {
		struct __ptrace_peeksiginfo_args a = {
			.off = n,
			.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0,
			.nr = PEEKSIGINFO_BATCH,
		};
		long r;

		if (n >= PEEKSIGINFO_MAX) {
			free(out);
			return -E2BIG;
		}
		no = realloc(out, (n + PEEKSIGINFO_BATCH) * sizeof(*out));
		if (!no) {
			free(out);
			return -ENOMEM;
		}
		out = no;
		r = ptrace(PTRACE_PEEKSIGINFO, tid, &a, out + n);
		if (r < 0) {
			int ret = -errno;
			pr_err("PEEKSIGINFO %d: %s", (int)tid, strerror(-ret));
			free(out);
			return ret;
		}
		n += (size_t)r;
		if (r < PEEKSIGINFO_BATCH)
			break;
	}
	*outp = out;
	*np = n;
	return 0;
}

int proc_get_rseq(pid_t tid, struct proc_rseq *rs)
{
	struct __ptrace_rseq_configuration c;
	long r = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof(c), &c);

	if (r < 0) {
		int ret = -errno;
		pr_err("GET_RSEQ_CONFIGURATION %d: %s", (int)tid, strerror(-ret));
		return ret;
	}
	if (!c.rseq_abi_pointer)
		return -ENOENT;
	rs->rseq_abi_pointer = c.rseq_abi_pointer;
	rs->rseq_abi_size = c.rseq_abi_size;
	rs->signature = c.signature;
	rs->flags = c.flags;
	return 0;
}

int proc_get_robust_list(pid_t tid, uint64_t *head, uint64_t *len)
{
	void *h = NULL;
	size_t l = 0;

	if (syscall(SYS_get_robust_list, tid, &h, &l)) {
		int ret = -errno;
		pr_err("get_robust_list %d: %s", (int)tid, strerror(-ret));
		return ret;
	}
	*head = (uint64_t)(uintptr_t)h;
	*len = l;
	return 0;
}

int proc_get_comm(pid_t pid, pid_t tid, char comm[17])
{
	char rel[64], *buf;
	size_t len;
	int ret;

	snprintf(rel, sizeof(rel), "task/%d/comm", (int)tid);
	ret = proc_read_file(pid, rel, &buf, &len);
	if (ret)
		return ret;
	if (len && buf[len - 1] == '\n')
		len--;
	if (len > 16) {
		free(buf);
		return -EINVAL;
	}
	memcpy(comm, buf, len);
	comm[len] = '\0';
	free(buf);
	return 0;
}

void proc_thread_state_free(struct proc_thread_state *st)
{
	if (!st)
		return;
	free(st->xstate);
	free(st->pending);
	st->xstate = NULL;
	st->pending = NULL;
}

int proc_thread_capture(struct proc_ctl *ctl, size_t idx, struct proc_thread_state *st)
{
	pid_t tid;
	int ret;

	if (idx >= ctl->n || !ctl->t[idx].stopped)
		return -EINVAL;
	tid = ctl->t[idx].tid;
	memset(st, 0, sizeof(*st));
	st->tid = tid;
	/* A thread in the middle of heal-path injections has our registers
	 * and mask loaded; its own are kept aside. */
	if (ctl->t[idx].inj_active)
		st->regs = ctl->t[idx].r0;
	else if ((ret = proc_get_regs(tid, &st->regs)))
		goto fail;
	if ((ret = proc_get_xstate(tid, &st->xstate, &st->xstate_len)))
		goto fail;
	if (ctl->t[idx].inj_active)
		st->sigmask = ctl->t[idx].r0_mask;
	else if ((ret = proc_get_sigmask(tid, &st->sigmask)))
		goto fail;
	if ((ret = proc_peek_siginfo(tid, false, &st->pending, &st->npending)))
		goto fail;
	ret = proc_get_rseq(tid, &st->rseq);
	if (ret && ret != -ENOENT)
		goto fail;
	st->has_rseq = ret == 0;
	if ((ret = proc_get_robust_list(tid, &st->robust_list, &st->robust_len)))
		goto fail;
	if ((ret = proc_get_comm(ctl->pid, tid, st->comm)))
		goto fail;
	return 0;
fail:
	pr_err("capture thread %d of %d: %s", (int)tid, (int)ctl->pid, strerror(-ret));
	proc_thread_state_free(st);
	return ret;
}
