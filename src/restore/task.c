/* Threads and the state of the process, set by injection and ptrace once
 * the memory is in place; registers last, then detach. */
#define LOG_PREFIX "restore: "
#include "restore/internal.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fault.h"
#include "common/log.h"
#include "proc/inject.h"
#include "proc/mem.h"
#include "proc/status.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
/* 6.17+: timer_create() takes the id in *timerid (include/uapi/linux/prctl.h). */
#define PR_TIMER_CREATE_RESTORE_IDS	77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF	0
#define PR_TIMER_CREATE_RESTORE_IDS_ON	1
#endif

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1u << 31)
#endif

#define ERESTARTSYS_		512
#define ERESTARTNOINTR_		513
#define ERESTARTNOHAND_		514
#define ERESTART_RESTARTBLOCK_	516

#define RESUMES_MAX 64

/* A call on thread idx whose -errno is the answer. */
static int tcall(struct rst *r, size_t idx, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
		 uint64_t a3, int64_t *res)
{
	int64_t v;
	int ret = rst_call(r, idx, nr, a0, a1, a2, a3, 0, 0, &v);

	if (ret)
		return ret;
	if (res)
		*res = v;
	return v < 0 && v > -4096 ? (int)v : 0;
}

/* ---- threads ---- */

static struct proc_thread *ctl_add(struct proc_ctl *ctl, pid_t tid)
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

/* Run clone3 at our gadget on thread 0: the caller stops at the int3, the
 * new thread spins in pause() (its registers are all set later). */
static int inject_clone3(struct rst *r, uint64_t args, size_t size, int64_t *res)
{
	struct proc_thread *t = &r->ctl->t[0];
	struct user_regs_struct saved, regs, cur;
	uint64_t end = r->scratch + RST_CLONE_GADGET_OFF + 17;
	int ret, r2;

	ret = proc_get_regs(t->tid, &saved);
	if (ret)
		return ret;
	regs = saved;
	regs.rip = r->scratch + RST_CLONE_GADGET_OFF;
	regs.rax = SYS_clone3;
	regs.orig_rax = (uint64_t)-1;
	regs.rdi = args;
	regs.rsi = size;
	ret = proc_set_regs(t->tid, &regs);
	for (int i = 0; !ret && i < RESUMES_MAX; i++) {
		if (ptrace(PTRACE_CONT, t->tid, 0, 0)) {
			ret = -errno;
			break;
		}
		t->stopped = false;
		ret = proc_wait_stop(t);
		if (ret)
			break;
		if (t->stop_event)
			continue;
		ret = proc_get_regs(t->tid, &cur);
		if (ret)
			break;
		if (t->stop_sig == SIGTRAP && cur.rip == end) {
			*res = (int64_t)cur.rax;
			goto out;
		}
		if (t->stop_sig == SIGTRAP) {
			pr_err("clone3 gadget: trap at %#llx", (unsigned long long)cur.rip);
			ret = -EIO;
		}
		/* other signals are not for us: the process is not running yet */
	}
	if (!ret)
		ret = -EIO;
out:
	r2 = proc_set_regs(t->tid, &saved);
	return ret ? ret : r2;
}

static int seize_new(struct rst *r, pid_t tid)
{
	struct proc_thread *t = ctl_add(r->ctl, tid);
	int ret;

	if (!t)
		return -ENOMEM;
	if (ptrace(PTRACE_SEIZE, tid, 0, 0)) {
		ret = -errno;
		r->ctl->n--;
		return ret;
	}
	t->seized = true;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0))
		return -errno;
	for (int i = 0; i < RESUMES_MAX; i++) {
		ret = proc_wait_stop(t);
		if (ret)
			return ret;
		if (t->stop_event == PTRACE_EVENT_STOP)
			return 0;
		t->stopped = false;
		if (ptrace(PTRACE_CONT, tid, 0, 0))
			return -errno;
	}
	return -EIO;
}

int rst_threads(struct rst *r)
{
	struct {
		struct clone_args ca;
		pid_t tid;
	} d;
	int ret;

	if (r->pe->n_threads == 0 || r->pe->threads[0]->tid != (uint32_t)r->pid) {
		pr_err("%s: threads[0] of pid %d is not its leader", r->name, (int)r->pid);
		return -EBADMSG;
	}
	for (size_t i = 1; i < r->pe->n_threads; i++) {
		pid_t tid = (pid_t)r->pe->threads[i]->tid, htid;
		uint64_t addr;
		int64_t res = 0;

		memset(&d, 0, sizeof(d));
		d.ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
			     CLONE_SYSVSEM;
		d.tid = tid;
		ret = rst_put_data(r, &d, sizeof(d), &addr);
		if (ret)
			return ret;
		d.ca.set_tid = addr + offsetof(typeof(d), tid);
		d.ca.set_tid_size = 1;
		ret = rst_put_data(r, &d, sizeof(d), &addr);
		if (ret)
			return ret;
		ret = fault_fire(FP_RESTORE_THREADS_FAIL);
		if (!ret)
			ret = inject_clone3(r, addr, sizeof(d.ca), &res);
		if (!ret && res < 0)
			ret = (int)res;
		if (ret) {
			pr_err("thread %d: clone3: %s%s", (int)tid, strerror(-ret),
			       ret == -EEXIST ? " (tid in use)" : "");
			return ret;
		}
		ret = rst_pidns_tid(r, tid, &htid);
		if (!ret)
			ret = seize_new(r, htid);
		if (ret) {
			pr_err("thread %d: seize: %s", (int)tid, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* ---- per-thread state (all but registers, xstate and mask) ---- */

static int thread_state(struct rst *r, size_t idx, const Cryo__ThreadEntry *te)
{
	pid_t tid = (pid_t)te->tid;
	uint64_t addr;
	int ret = 0;

	/* Always set: without one saved, the main thread would keep the
	 * signal stack of the cryo it was forked from (ASan's, say), and an
	 * SA_ONSTACK handler (CPython's) would run on memory that is gone. */
	{
		int on = te->has_altstack_sp && !(te->altstack_flags & SS_DISABLE);
		stack_t ss = { .ss_sp = on ? (void *)(uintptr_t)te->altstack_sp : NULL,
			       .ss_size = on ? te->altstack_size : 0,
			       .ss_flags = on ? (int)(te->altstack_flags & SS_AUTODISARM) :
						SS_DISABLE };
		ret = rst_put_data(r, &ss, sizeof(ss), &addr);
		if (!ret)
			ret = tcall(r, idx, SYS_sigaltstack, addr, 0, 0, 0, NULL);
		if (ret) {
			pr_err("thread %d: sigaltstack: %s", (int)tid, strerror(-ret));
			return ret;
		}
	}
	if (te->has_robust_list && te->robust_list) {
		ret = tcall(r, idx, SYS_set_robust_list, te->robust_list, te->robust_len, 0, 0,
			    NULL);
		if (ret) {
			pr_err("thread %d: set_robust_list: %s", (int)tid, strerror(-ret));
			return ret;
		}
	}
	ret = tcall(r, idx, SYS_set_tid_address, te->has_clear_child_tid ? te->clear_child_tid : 0,
		    0, 0, 0, NULL);
	if (ret) {
		pr_err("thread %d: set_tid_address: %s", (int)tid, strerror(-ret));
		return ret;
	}
	if (te->comm) {
		char comm[16] = { 0 };
		strncpy(comm, te->comm, sizeof(comm) - 1);
		ret = rst_put_data(r, comm, sizeof(comm), &addr);
		if (!ret)
			ret = tcall(r, idx, SYS_prctl, PR_SET_NAME, addr, 0, 0, NULL);
		if (ret) {
			pr_err("thread %d: comm: %s", (int)tid, strerror(-ret));
			return ret;
		}
	}
	if (te->has_rseq_ptr && te->rseq_ptr) {
		ret = tcall(r, idx, SYS_rseq, te->rseq_ptr, te->rseq_len, 0, te->rseq_sig, NULL);
		if (ret) {
			pr_err("thread %d: rseq at %#llx: %s", (int)tid,
			       (unsigned long long)te->rseq_ptr, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* ---- process-wide state ---- */

static int sigactions(struct rst *r)
{
	for (size_t i = 0; i < r->pe->n_sigactions; i++) {
		const Cryo__SigAction *a = r->pe->sigactions[i];
		uint64_t ka[4] = { a->handler, a->flags, a->restorer, a->mask }, addr;
		int ret;

		if (a->sig == SIGKILL || a->sig == SIGSTOP || a->sig < 1 || a->sig > 64)
			continue;
		ret = rst_put_data(r, ka, sizeof(ka), &addr);
		if (!ret)
			ret = tcall(r, 0, SYS_rt_sigaction, a->sig, addr, 0, 8, NULL);
		if (ret) {
			pr_err("action of signal %u: %s", a->sig, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int itimers(struct rst *r)
{
	for (size_t i = 0; i < r->pe->n_itimers; i++) {
		const Cryo__ITimer *t = r->pe->itimers[i];
		struct itimerval v = {
			{ (time_t)(t->interval_us / 1000000), (suseconds_t)(t->interval_us % 1000000) },
			{ (time_t)(t->value_us / 1000000), (suseconds_t)(t->value_us % 1000000) },
		};
		uint64_t addr;
		int ret;

		if (!t->value_us)
			continue;
		ret = rst_put_data(r, &v, sizeof(v), &addr);
		if (!ret)
			ret = tcall(r, 0, SYS_setitimer, t->which, addr, 0, 0, NULL);
		if (ret) {
			pr_err("itimer %u: %s", t->which, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int posix_timers(struct rst *r)
{
	int ret;

	if (!r->pe->n_timers)
		return 0;
	ret = tcall(r, 0, SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON,
		    0, 0, NULL);
	if (ret) {
		pr_err("POSIX timers need PR_TIMER_CREATE_RESTORE_IDS (kernel 6.17+): %s",
		       strerror(-ret));
		return ret;
	}
	for (size_t i = 0; i < r->pe->n_timers && !ret; i++) {
		const Cryo__PosixTimer *t = r->pe->timers[i];
		struct {
			struct sigevent ev;
			int32_t id;
			int32_t pad;
			struct itimerspec its;
		} d;
		uint64_t addr;

		memset(&d, 0, sizeof(d));
		d.ev.sigev_notify = t->notify;
		d.ev.sigev_signo = t->signo;
		d.ev.sigev_value.sival_ptr = (void *)(uintptr_t)t->sigev_value;
		if (t->has_notify_tid)
			d.ev._sigev_un._tid = t->notify_tid;
		d.id = t->id;
		d.its.it_interval.tv_sec = (time_t)(t->interval_ns / 1000000000ull);
		d.its.it_interval.tv_nsec = (long)(t->interval_ns % 1000000000ull);
		d.its.it_value.tv_sec = (time_t)(t->value_ns / 1000000000ull);
		d.its.it_value.tv_nsec = (long)(t->value_ns % 1000000000ull);
		ret = rst_put_data(r, &d, sizeof(d), &addr);
		if (!ret)
			ret = tcall(r, 0, SYS_timer_create, (uint64_t)t->clock, addr,
				    addr + offsetof(typeof(d), id), 0, NULL);
		if (!ret && (t->value_ns || t->interval_ns))
			ret = tcall(r, 0, SYS_timer_settime, (uint64_t)t->id, 0,
				    addr + offsetof(typeof(d), its), 0, NULL);
		if (ret)
			pr_err("POSIX timer %d: %s", t->id, strerror(-ret));
	}
	(void)tcall(r, 0, SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF,
		    0, 0, NULL);
	return ret;
}

/* Creds are per thread: each thread gets them. Skipped when the process
 * already has them (it was made by us, root with our caps). */
static int creds(struct rst *r, size_t idx)
{
	const Cryo__Creds *c = r->pe->creds;
	struct proc_status st;
	int ret;

	if (!c || c->n_uid < 3 || c->n_gid < 3)
		return 0;
	ret = proc_status_read(r->hpid, r->ctl->t[idx].tid, &st);
	if (ret)
		return ret;
	if (c->n_groups <= 4096 && (c->n_groups != st.ngroups ||
	    (st.ngroups && memcmp(c->groups, st.groups, st.ngroups * sizeof(uint32_t))))) {
		uint64_t addr;
		gid_t g[1024];
		size_t n = c->n_groups < 1024 ? c->n_groups : 1024;
		for (size_t i = 0; i < n; i++)
			g[i] = c->groups[i];
		ret = rst_put_data(r, g, n * sizeof(gid_t), &addr);
		if (!ret)
			ret = tcall(r, idx, SYS_setgroups, n, addr, 0, 0, NULL);
		if (ret) {
			pr_err("setgroups: %s", strerror(-ret));
			return ret;
		}
	}
	if (c->gid[0] != st.gid[0] || c->gid[1] != st.gid[1] || c->gid[2] != st.gid[2]) {
		ret = tcall(r, idx, SYS_setresgid, c->gid[0], c->gid[1], c->gid[2], 0, NULL);
		if (ret) {
			pr_err("setresgid %u/%u/%u: %s", c->gid[0], c->gid[1], c->gid[2],
			       strerror(-ret));
			return ret;
		}
	}
	if (c->uid[0] != st.uid[0] || c->uid[1] != st.uid[1] || c->uid[2] != st.uid[2]) {
		(void)tcall(r, idx, SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, NULL);
		ret = tcall(r, idx, SYS_setresuid, c->uid[0], c->uid[1], c->uid[2], 0, NULL);
		if (ret) {
			pr_err("setresuid %u/%u/%u: %s", c->uid[0], c->uid[1], c->uid[2],
			       strerror(-ret));
			return ret;
		}
	}
	if (c->has_cap_prm && (c->cap_prm != st.cap_prm || c->cap_eff != st.cap_eff ||
			       c->cap_inh != st.cap_inh)) {
		struct {
			struct __user_cap_header_struct h;
			struct __user_cap_data_struct d[2];
		} cd = { { _LINUX_CAPABILITY_VERSION_3, 0 },
			 { { (uint32_t)c->cap_eff, (uint32_t)c->cap_prm, (uint32_t)c->cap_inh },
			   { (uint32_t)(c->cap_eff >> 32), (uint32_t)(c->cap_prm >> 32),
			     (uint32_t)(c->cap_inh >> 32) } } };
		uint64_t addr;

		ret = rst_put_data(r, &cd, sizeof(cd), &addr);
		if (!ret)
			ret = tcall(r, idx, SYS_capset, addr, addr + sizeof(cd.h), 0, 0, NULL);
		if (ret) {
			pr_err("capset: %s", strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int rst_process_state(struct rst *r)
{
	const Cryo__ProcessEntry *pe = r->pe;
	int ret;

	for (size_t i = 0; i < pe->n_threads; i++) {
		ret = thread_state(r, i, pe->threads[i]);
		if (ret)
			return ret;
	}
	ret = sigactions(r);
	if (!ret)
		ret = itimers(r);
	if (!ret)
		ret = posix_timers(r);
	if (ret)
		return ret;
	if (pe->has_personality &&
	    (ret = tcall(r, 0, SYS_personality, pe->personality, 0, 0, 0, NULL))) {
		pr_err("personality %#x: %s", pe->personality, strerror(-ret));
		return ret;
	}
	if (pe->has_pdeath_sig && pe->pdeath_sig)
		(void)tcall(r, 0, SYS_prctl, PR_SET_PDEATHSIG, pe->pdeath_sig, 0, 0, NULL);
	if (pe->has_child_subreaper && pe->child_subreaper)
		(void)tcall(r, 0, SYS_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, NULL);
	if (pe->has_no_new_privs && pe->no_new_privs &&
	    (ret = tcall(r, 0, SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, NULL))) {
		pr_err("no_new_privs: %s", strerror(-ret));
		return ret;
	}
	for (size_t i = 0; i < r->ctl->n; i++) {
		pid_t tid = r->ctl->t[i].tid;
		if (pe->has_nice && setpriority(PRIO_PROCESS, (id_t)tid, pe->nice))
			pr_warn("thread %d: nice %d: %s", (int)tid, pe->nice, strerror(errno));
		if (pe->has_sched_policy && pe->sched_policy != SCHED_OTHER) {
			struct sched_param sp = { .sched_priority = (int)pe->sched_prio };
			if (sched_setscheduler(tid, (int)pe->sched_policy, &sp))
				pr_warn("thread %d: scheduling policy %u: %s", (int)tid,
					pe->sched_policy, strerror(errno));
		}
	}
	/* Creds last: after them the process may no longer be allowed the rest. */
	for (size_t i = 0; i < r->ctl->n; i++) {
		ret = creds(r, i);
		if (ret)
			return ret;
	}
	/* A uid change resets dumpable: set it after. */
	if (pe->has_dumpable)
		(void)tcall(r, 0, SYS_prctl, PR_SET_DUMPABLE, pe->dumpable ? 1 : 0, 0, 0, NULL);
	return 0;
}

/* ---- pending signals, registers, detach ---- */

static int queue_one(struct rst *r, size_t idx, pid_t tid, const Cryo__SigInfo *si, bool shared)
{
	siginfo_t info;
	uint64_t addr;
	int ret;

	if (si->raw.len != sizeof(info)) {
		pr_err("pending signal record of %zu bytes, not %zu", si->raw.len, sizeof(info));
		return -EBADMSG;
	}
	memcpy(&info, si->raw.data, sizeof(info));
	ret = rst_put_data(r, &info, sizeof(info), &addr);
	if (ret)
		return ret;
	if (shared)
		ret = tcall(r, idx, SYS_rt_sigqueueinfo, (uint64_t)r->pid, (uint64_t)info.si_signo,
			    addr, 0, NULL);
	else
		ret = tcall(r, idx, SYS_rt_tgsigqueueinfo, (uint64_t)r->pid, (uint64_t)tid,
			    (uint64_t)info.si_signo, addr, NULL);
	if (ret)
		pr_err("queue pending signal %d for %d: %s", info.si_signo, (int)tid,
		       strerror(-ret));
	return ret;
}

/* Final registers. A thread stopped in a syscall keeps rax = -ERESTART*
 * and orig_rax: the kernel's own restart fix-up runs when it leaves this
 * stop, exactly as it would have. -ERESTART_RESTARTBLOCK needs the
 * thread's restart_block, which did not survive: the call returns EINTR
 * instead (nanosleep has already written the time left, and callers such
 * as sleep(1) sleep the rest). */
static int set_regs(struct rst *r, size_t idx, const Cryo__ThreadEntry *te)
{
	struct user_regs_struct regs;
	pid_t tid = r->ctl->t[idx].tid;
	int ret;

	if (te->regs.len != sizeof(regs)) {
		pr_err("thread %d: registers record of %zu bytes, not %zu", (int)tid, te->regs.len,
		       sizeof(regs));
		return -EBADMSG;
	}
	memcpy(&regs, te->regs.data, sizeof(regs));
	if ((int64_t)regs.orig_rax >= 0 && (int64_t)regs.rax == -ERESTART_RESTARTBLOCK_)
		regs.rax = (uint64_t)-EINTR;
	if (te->has_xstate && te->xstate.len) {
		ret = proc_set_xstate(tid, te->xstate.data, te->xstate.len);
		if (ret) {
			pr_err("thread %d: xstate (%zu bytes): %s", (int)tid, te->xstate.len,
			       strerror(-ret));
			return ret;
		}
	}
	ret = fault_fire(FP_RESTORE_REGS_FAIL);
	if (!ret)
		ret = proc_set_regs(tid, &regs);
	if (ret) {
		pr_err("thread %d: registers: %s", (int)tid, strerror(-ret));
		return ret;
	}
	ret = proc_set_sigmask(tid, te->sigmask);
	if (ret)
		pr_err("thread %d: signal mask: %s", (int)tid, strerror(-ret));
	return ret;
}

int rst_finish(struct rst *r)
{
	const Cryo__ProcessEntry *pe = r->pe;
	int ret = 0;

	/* Block everything while queueing, so that no signal is delivered to
	 * injected code; the real masks come back with the registers. */
	for (size_t i = 0; i < r->ctl->n && !ret; i++)
		ret = proc_set_sigmask(r->ctl->t[i].tid, ~0ull);
	if (!ret)
		ret = fault_fire(FP_RESTORE_SIGNALS_FAIL);
	for (size_t i = 0; i < pe->n_shared_pending && !ret; i++)
		ret = queue_one(r, 0, r->pid, pe->shared_pending[i], true);
	for (size_t i = 0; i < pe->n_threads && !ret; i++) {
		const Cryo__ThreadEntry *te = pe->threads[i];
		for (size_t k = 0; k < te->n_pending && !ret; k++)
			ret = queue_one(r, i, (pid_t)te->tid, te->pending[k], false);
	}
	if (ret)
		return ret;
	ret = proc_inject_cleanup(r->ctl);
	if (ret) {
		pr_err("remove the scratch pages: %s", strerror(-ret));
		return ret;
	}
	for (size_t i = 0; i < pe->n_threads && !ret; i++)
		ret = set_regs(r, i, pe->threads[i]);
	return ret;
}
