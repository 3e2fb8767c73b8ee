/* Process and thread state: what /proc shows, and what only the process
 * can tell (sigactions, itimers, POSIX timer values, pdeath signal,
 * sigaltstack, clear_child_tid), asked by injected syscalls. */
#define LOG_PREFIX "dump: "
#include "dump/dump_int.h"
#include "common/log.h"
#include "proc/inject.h"
#include "proc/mem.h"
#include "proc/pidns.h"
#include "proc/procfs.h"
#include "proc/rlimits.h"
#include "proc/status.h"
#include "proc/timers.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's struct sigaction on x86_64 (not glibc's). */
struct ksigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

#define ERESTARTSYS		512
#define ERESTARTNOINTR		513
#define ERESTARTNOHAND		514
#define ERESTART_RESTARTBLOCK	516

static int inject(struct dump_ctx *d, size_t idx, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
		  uint64_t a3, int64_t *ret)
{
	uint64_t a[6] = { a0, a1, a2, a3, 0, 0 };
	int r = proc_inject_syscall_thread(d->ctl, idx, nr, a, ret);

	if (r)
		pr_err("pid %d: injecting syscall %ld: %s", (int)d->pid, nr, strerror(-r));
	return r;
}

static int fill_creds(struct dump_ctx *d, const struct proc_status *st, Cryo__ProcessEntry *pe)
{
	Cryo__Creds *c = dump_alloc(&d->a, sizeof(*c));
	uint64_t scratch;
	int64_t ret;
	int r;

	if (!c)
		return -ENOMEM;
	cryo__creds__init(c);
	c->uid = dump_alloc(&d->a, 4 * sizeof(uint32_t));
	c->gid = dump_alloc(&d->a, 4 * sizeof(uint32_t));
	c->groups = dump_alloc(&d->a, st->ngroups * sizeof(uint32_t) + 1);
	if (!c->uid || !c->gid || !c->groups)
		return -ENOMEM;
	memcpy(c->uid, st->uid, 4 * sizeof(uint32_t));
	memcpy(c->gid, st->gid, 4 * sizeof(uint32_t));
	c->n_uid = c->n_gid = 4;
	memcpy(c->groups, st->groups, st->ngroups * sizeof(uint32_t));
	c->n_groups = st->ngroups;
	c->has_cap_inh = c->has_cap_prm = c->has_cap_eff = c->has_cap_bnd = c->has_cap_amb = 1;
	c->cap_inh = st->cap_inh;
	c->cap_prm = st->cap_prm;
	c->cap_eff = st->cap_eff;
	c->cap_bnd = st->cap_bnd;
	c->cap_amb = st->cap_amb;
	(void)scratch;
	r = inject(d, 0, SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0, &ret);
	if (r)
		return r;
	if (ret >= 0) {
		c->has_securebits = 1;
		c->securebits = (uint32_t)ret;
	}
	pe->creds = c;
	return 0;
}

static int fill_rlimits(struct dump_ctx *d, Cryo__ProcessEntry *pe)
{
	struct proc_rlimits rl;
	int r = proc_rlimits_read(d->pid, &rl);

	if (r)
		return r;
	pe->rlimits = dump_alloc(&d->a, PROC_RLIM_COUNT * sizeof(*pe->rlimits));
	if (!pe->rlimits)
		return -ENOMEM;
	for (unsigned i = 0; i < PROC_RLIM_COUNT; i++) {
		Cryo__RLimit *l;

		if (!(rl.seen & (1u << i)))
			continue;
		l = dump_alloc(&d->a, sizeof(*l));
		if (!l)
			return -ENOMEM;
		cryo__rlimit__init(l);
		l->resource = i;
		l->cur = rl.lim[i].rlim_cur;
		l->max = rl.lim[i].rlim_max;
		pe->rlimits[pe->n_rlimits++] = l;
	}
	return 0;
}

static Cryo__SigInfo **siginfos(struct dump_ctx *d, const siginfo_t *si, size_t n)
{
	Cryo__SigInfo **v = dump_alloc(&d->a, n * sizeof(*v) + 1);

	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		uint8_t *raw = dump_alloc(&d->a, sizeof(siginfo_t));

		v[i] = dump_alloc(&d->a, sizeof(**v));
		if (!v[i] || !raw)
			return NULL;
		cryo__sig_info__init(v[i]);
		memcpy(raw, &si[i], sizeof(siginfo_t));
		v[i]->raw.data = raw;
		v[i]->raw.len = sizeof(siginfo_t);
	}
	return v;
}

/* Every signal that is caught or ignored: rt_sigaction(sig, NULL, &old). */
static int fill_sigactions(struct dump_ctx *d, const struct proc_status *st,
			   Cryo__ProcessEntry *pe)
{
	uint64_t want = st->sig_cgt | st->sig_ign, scratch;
	int r = proc_inject_scratch_data(d->ctl, &scratch);

	if (r)
		return r;
	pe->sigactions = dump_alloc(&d->a, 64 * sizeof(*pe->sigactions));
	if (!pe->sigactions)
		return -ENOMEM;
	for (unsigned sig = 1; sig <= 64; sig++) {
		struct ksigaction ka;
		Cryo__SigAction *sa;
		int64_t ret;

		if (!(want & (1ull << (sig - 1))) || sig == SIGKILL || sig == SIGSTOP)
			continue;
		r = inject(d, 0, SYS_rt_sigaction, sig, 0, scratch, 8, &ret);
		if (r)
			return r;
		if (ret < 0) {
			pr_err("pid %d: rt_sigaction(%u) in the process: %s", (int)d->pid, sig,
			       strerror((int)-ret));
			return (int)ret;
		}
		r = proc_mem_read(d->pid, scratch, &ka, sizeof(ka), NULL);
		if (r)
			return r;
		if (ka.handler == (uint64_t)(uintptr_t)SIG_DFL)
			continue;
		sa = dump_alloc(&d->a, sizeof(*sa));
		if (!sa)
			return -ENOMEM;
		cryo__sig_action__init(sa);
		sa->sig = sig;
		sa->handler = ka.handler;
		sa->flags = ka.flags;
		sa->has_restorer = sa->has_mask = 1;
		sa->restorer = ka.restorer;
		sa->mask = ka.mask;
		pe->sigactions[pe->n_sigactions++] = sa;
	}
	return 0;
}

static int fill_timers(struct dump_ctx *d, Cryo__ProcessEntry *pe)
{
	struct proc_timers pt = { 0 };
	int r;

	pe->itimers = dump_alloc(&d->a, 3 * sizeof(*pe->itimers));
	if (!pe->itimers)
		return -ENOMEM;
	for (int which = 0; which < 3; which++) {
		struct itimerval iv;
		Cryo__ITimer *it;

		r = proc_remote_getitimer(d->ctl, which, &iv);
		if (r) {
			pr_err("pid %d: getitimer(%d): %s", (int)d->pid, which, strerror(-r));
			return r;
		}
		it = dump_alloc(&d->a, sizeof(*it));
		if (!it)
			return -ENOMEM;
		cryo__itimer__init(it);
		it->which = (uint32_t)which;
		it->interval_us = (uint64_t)iv.it_interval.tv_sec * 1000000 + (uint64_t)iv.it_interval.tv_usec;
		it->value_us = (uint64_t)iv.it_value.tv_sec * 1000000 + (uint64_t)iv.it_value.tv_usec;
		pe->itimers[pe->n_itimers++] = it;
	}
	r = proc_timers_read(d->pid, &pt);
	if (r) {
		pr_err("pid %d: /proc timers: %s", (int)d->pid, strerror(-r));
		return r;
	}
	pe->timers = dump_alloc(&d->a, pt.n * sizeof(*pe->timers) + 1);
	if (!pe->timers) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < pt.n; i++) {
		struct itimerspec its;
		Cryo__PosixTimer *t = dump_alloc(&d->a, sizeof(*t));

		if (!t) {
			r = -ENOMEM;
			goto out;
		}
		r = proc_remote_timer_gettime(d->ctl, pt.t[i].id, &its);
		if (r) {
			pr_err("pid %d: timer_gettime(%d): %s", (int)d->pid, pt.t[i].id, strerror(-r));
			goto out;
		}
		cryo__posix_timer__init(t);
		t->id = pt.t[i].id;
		t->clock = pt.t[i].clock_id;
		t->notify = pt.t[i].notify | (pt.t[i].thread_id ? 4 /* SIGEV_THREAD_ID */ : 0);
		t->has_signo = t->has_sigev_value = t->has_notify_tid = t->has_overrun = 1;
		t->signo = pt.t[i].signo;
		t->sigev_value = pt.t[i].sigev_value;
		/* /proc prints it for our namespace: the program's is recorded */
		t->notify_tid = pt.t[i].notify_pid > 0 ?
				dump_ns_vpid(d, d->pid, pt.t[i].notify_pid) : pt.t[i].notify_pid;
		t->interval_ns = (uint64_t)its.it_interval.tv_sec * 1000000000ull +
				 (uint64_t)its.it_interval.tv_nsec;
		t->value_ns = (uint64_t)its.it_value.tv_sec * 1000000000ull +
			      (uint64_t)its.it_value.tv_nsec;
		pe->timers[pe->n_timers++] = t;
	}
out:
	proc_timers_free(&pt);
	return r;
}

static int link_of(struct dump_ctx *d, const char *what, char **out)
{
	char path[64], buf[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)d->pid, what);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	*out = dump_strdup(&d->a, buf);
	return *out ? 0 : -ENOMEM;
}

static int fill_misc(struct dump_ctx *d, const struct proc_status *st, Cryo__ProcessEntry *pe)
{
	struct proc_stat ps;
	uint64_t scratch;
	int64_t ret;
	uint32_t v32;
	char *buf;
	size_t len;
	int r;

	r = proc_stat_read(d->pid, 0, &ps);
	if (r)
		return r;
	pe->has_ppid = pe->has_pgid = pe->has_sid = 1;
	pe->ppid = (uint32_t)dump_ns_vpid(d, (pid_t)ps.f[PROC_STAT_PPID], 0);
	pe->pgid = (uint32_t)ps.f[PROC_STAT_PGRP];
	pe->sid = (uint32_t)ps.f[PROC_STAT_SESSION];
	if (d->ns_level) {
		pid_t pgid, sid;

		r = proc_ns_pgid_sid(d->pid, d->ns_level, &pgid, &sid);
		if (r)
			return r;
		pe->pgid = (uint32_t)pgid;
		pe->sid = (uint32_t)sid;
	}
	pe->comm = dump_strdup(&d->a, ps.comm);
	pe->has_nice = pe->has_sched_policy = pe->has_sched_prio = pe->has_exit_signal = 1;
	pe->nice = (int32_t)ps.f[PROC_STAT_NICE];
	pe->sched_policy = (uint32_t)ps.f[PROC_STAT_POLICY];
	pe->sched_prio = (uint32_t)ps.f[PROC_STAT_RT_PRIORITY];
	pe->exit_signal = (uint32_t)ps.f[PROC_STAT_EXIT_SIGNAL];
	if (st->has_umask) {
		pe->has_umask = 1;
		pe->umask = st->umask;
	}
	if (st->no_new_privs >= 0) {
		pe->has_no_new_privs = 1;
		pe->no_new_privs = st->no_new_privs != 0;
	}
	r = link_of(d, "cwd", &pe->cwd);
	if (!r)
		r = link_of(d, "root", &pe->root);
	if (r)
		return r;
	r = proc_read_file(d->pid, "personality", &buf, &len);
	if (r)
		return r;
	pe->has_personality = 1;
	pe->personality = (uint32_t)strtoul(buf, NULL, 16);
	free(buf);

	r = proc_inject_scratch_data(d->ctl, &scratch);
	if (r)
		return r;
	r = inject(d, 0, SYS_prctl, PR_GET_PDEATHSIG, scratch, 0, 0, &ret);
	if (!r && ret == 0 && !(r = proc_mem_read(d->pid, scratch, &v32, sizeof(v32), NULL))) {
		pe->has_pdeath_sig = 1;
		pe->pdeath_sig = v32;
	}
	if (r)
		return r;
	r = inject(d, 0, SYS_prctl, PR_GET_CHILD_SUBREAPER, scratch, 0, 0, &ret);
	if (!r && ret == 0 && !(r = proc_mem_read(d->pid, scratch, &v32, sizeof(v32), NULL))) {
		pe->has_child_subreaper = 1;
		pe->child_subreaper = v32;
	}
	if (r)
		return r;
	r = inject(d, 0, SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, &ret);
	if (r)
		return r;
	if (ret >= 0) {
		pe->has_dumpable = 1;
		pe->dumpable = ret != 0;
	}
	return 0;
}

static int in_restartable_syscall(const struct user_regs_struct *regs)
{
	long rax = (long)regs->rax;

	if ((long)regs->orig_rax < 0)
		return 0;
	return rax == -ERESTARTSYS || rax == -ERESTARTNOINTR || rax == -ERESTARTNOHAND ||
	       rax == -ERESTART_RESTARTBLOCK;
}

static int fill_thread(struct dump_ctx *d, size_t idx, Cryo__ThreadEntry *te)
{
	struct proc_thread_state ts = { 0 };
	uint64_t tidaddr = 0;
	stack_t ss;
	int r;

	cryo__thread_entry__init(te);
	r = proc_thread_capture(d->ctl, idx, &ts);
	if (r) {
		pr_err("pid %d: capturing thread %d: %s", (int)d->pid, (int)d->ctl->t[idx].tid,
		       strerror(-r));
		return r;
	}
	te->tid = (uint32_t)dump_ns_vpid(d, d->pid, ts.tid);
	if (!te->tid) {
		pr_err("pid %d: thread %d has no tid in the group's pid namespace", (int)d->pid,
		       (int)ts.tid);
		r = -ESRCH;
		goto out;
	}
	te->regs.data = dump_alloc(&d->a, sizeof(ts.regs));
	if (!te->regs.data) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(te->regs.data, &ts.regs, sizeof(ts.regs));
	te->regs.len = sizeof(ts.regs);
	if (ts.xstate_len) {
		te->has_xstate = 1;
		te->xstate.data = dump_alloc(&d->a, ts.xstate_len);
		if (!te->xstate.data) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(te->xstate.data, ts.xstate, ts.xstate_len);
		te->xstate.len = ts.xstate_len;
	}
	te->sigmask = ts.sigmask;
	if (ts.npending) {
		te->pending = siginfos(d, ts.pending, ts.npending);
		if (!te->pending) {
			r = -ENOMEM;
			goto out;
		}
		te->n_pending = ts.npending;
	}
	if (ts.has_rseq) {
		te->has_rseq_ptr = te->has_rseq_len = te->has_rseq_sig = 1;
		te->rseq_ptr = ts.rseq.rseq_abi_pointer;
		te->rseq_len = ts.rseq.rseq_abi_size;
		te->rseq_sig = ts.rseq.signature;
	}
	te->has_robust_list = te->has_robust_len = 1;
	te->robust_list = ts.robust_list;
	te->robust_len = ts.robust_len;
	te->comm = dump_strdup(&d->a, ts.comm);
	te->has_in_syscall = 1;
	te->in_syscall = in_restartable_syscall(&ts.regs);

	r = proc_remote_sigaltstack(d->ctl, idx, &ss);
	if (r) {
		pr_err("pid %d: sigaltstack of thread %d: %s", (int)d->pid, (int)ts.tid, strerror(-r));
		goto out;
	}
	te->has_altstack_sp = te->has_altstack_size = te->has_altstack_flags = 1;
	te->altstack_sp = (uint64_t)(uintptr_t)ss.ss_sp;
	te->altstack_size = ss.ss_size;
	te->altstack_flags = (uint32_t)ss.ss_flags;
	r = proc_remote_get_tid_address(d->ctl, idx, &tidaddr);
	if (r) {
		pr_err("pid %d: clear_child_tid of thread %d: %s", (int)d->pid, (int)ts.tid,
		       strerror(-r));
		goto out;
	}
	te->has_clear_child_tid = 1;
	te->clear_child_tid = tidaddr;
out:
	proc_thread_state_free(&ts);
	return r;
}

static int fill_threads(struct dump_ctx *d, Cryo__ProcessEntry *pe)
{
	size_t lead = 0, n = 0;
	int r;

	pe->threads = dump_alloc(&d->a, d->ctl->n * sizeof(*pe->threads) + 1);
	if (!pe->threads)
		return -ENOMEM;
	/* threads[0] is the thread group leader (tid == pid). */
	for (size_t i = 0; i < d->ctl->n; i++)
		if (d->ctl->t[i].tid == d->pid)
			lead = i;
	for (size_t k = 0; k < d->ctl->n; k++) {
		size_t i = k == 0 ? lead : (k <= lead ? k - 1 : k);

		if (d->ctl->t[i].gone)
			continue;
		pe->threads[n] = dump_alloc(&d->a, sizeof(Cryo__ThreadEntry));
		if (!pe->threads[n])
			return -ENOMEM;
		r = fill_thread(d, i, pe->threads[n]);
		if (r)
			return r;
		n++;
	}
	pe->n_threads = n;
	return 0;
}

int dump_core(struct dump_ctx *d, Cryo__ProcessEntry *pe)
{
	struct proc_status *st = malloc(sizeof(*st));
	siginfo_t *shared = NULL;
	size_t nshared = 0;
	int r;

	if (!st)
		return -ENOMEM;
	pe->pid = (uint32_t)d->vpid;
	r = proc_status_read(d->pid, 0, st);
	if (r) {
		pr_err("pid %d: status: %s", (int)d->pid, strerror(-r));
		goto out;
	}
	if ((r = fill_creds(d, st, pe)) || (r = fill_rlimits(d, pe)) ||
	    (r = fill_sigactions(d, st, pe)) || (r = fill_timers(d, pe)) ||
	    (r = fill_misc(d, st, pe)) || (r = fill_threads(d, pe)))
		goto out;
	r = proc_peek_siginfo(d->pid, true, &shared, &nshared);
	if (r) {
		pr_err("pid %d: shared pending signals: %s", (int)d->pid, strerror(-r));
		goto out;
	}
	if (nshared) {
		pe->shared_pending = siginfos(d, shared, nshared);
		if (!pe->shared_pending) {
			r = -ENOMEM;
			goto out;
		}
		pe->n_shared_pending = nshared;
	}
out:
	free(shared);
	free(st);
	return r;
}
