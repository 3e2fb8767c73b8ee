/* TEST-ONLY: see restore_capture.h. */
#define LOG_PREFIX "rtest: "
#include "restore_capture.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "image/image.h"
#include "proc/auxv.h"
#include "proc/inject.h"
#include "proc/maps.h"
#include "proc/mem.h"
#include "proc/ptrace.h"
#include "proc/rlimits.h"
#include "proc/status.h"

#define SPACE_PROC 1u
#define SPACE_SHM0 IMAGE_SPACE_FILES
#define BATCH 256

struct gc {
	void **p;
	size_t n, cap;
};

static void *gc_add(struct gc *g, void *p)
{
	if (!p)
		return NULL;
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 256;
		g->p = realloc(g->p, g->cap * sizeof(*g->p));
	}
	g->p[g->n++] = p;
	return p;
}

static void *gc_alloc(struct gc *g, size_t n)
{
	return gc_add(g, calloc(1, n ? n : 1));
}

static void gc_free(struct gc *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->p[i]);
	free(g->p);
}

static Cryo__FileId *file_id(struct gc *g, const char *path)
{
	struct stat st;
	Cryo__FileId *id;

	if (stat(path, &st))
		return NULL;
	id = gc_alloc(g, sizeof(*id));
	cryo__file_id__init(id);
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = (uint64_t)st.st_size;
	id->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
	return id;
}

/* Store the pages of [start, end) that pagemap says are worth storing. */
static int save_pages(struct store_txn *t, pid_t pid, uint64_t start, uint64_t end,
		      uint32_t space, uint64_t first_vpn, bool only_anon, bool readable)
{
	size_t np = (end - start) >> 12;
	uint64_t *pm = malloc(np * sizeof(*pm));
	uint8_t *buf = malloc(BATCH * 4096);
	int ret = 0;

	if (!pm || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	ret = proc_pagemap_read(pid, start, np, pm);
	if (ret)
		goto out;
	for (size_t i = 0; i < np && !ret;) {
		size_t k = 0;
		while (i + k < np && k < BATCH && proc_pm_populated(pm[i + k]) &&
		       !(only_anon && (pm[i + k] & PROC_PM_FILE_SHARED)))
			k++;
		if (!k) {
			i++;
			continue;
		}
		if (readable)
			ret = proc_mem_read(pid, start + i * 4096, buf, k * 4096, NULL);
		else
			ret = proc_mem_peek(pid, start + i * 4096, buf, k * 4096);
		for (size_t j = 0; j < k && !ret; j++)
			ret = store_txn_put_page(t, STORE_KEY(space, first_vpn + i + j),
						 buf + j * 4096);
		i += k;
	}
out:
	free(pm);
	free(buf);
	return ret;
}

static int capture_mm(struct gc *g, struct store_txn *t, pid_t pid, Cryo__MmEntry *mm,
		      uint32_t *next_shm)
{
	struct proc_maps m;
	struct proc_stat st;
	struct proc_auxv av;
	char exe[PATH_MAX];
	ssize_t n;
	int ret;

	ret = proc_maps_read(pid, true, &m);
	if (ret)
		return ret;
	mm->vmas = gc_alloc(g, m.n * sizeof(*mm->vmas));
	for (size_t i = 0; i < m.n && !ret; i++) {
		const struct proc_vma *v = &m.v[i];
		Cryo__VmaEntry *e = gc_alloc(g, sizeof(*e));
		bool save = false, only_anon = false;
		uint32_t space = SPACE_PROC;
		uint64_t first = v->start >> 12;

		cryo__vma_entry__init(e);
		e->start = v->start;
		e->end = v->end;
		e->prot = v->prot;
		e->has_pgoff = true;
		e->pgoff = v->pgoff;
		e->has_vmflags = true;
		e->vmflags = v->vmflags;
		if (*v->path)
			e->path = gc_add(g, strdup(v->path));
		if (!strcmp(v->path, "[heap]")) {
			e->kind = CRYO__VMA_KIND__VMA_HEAP;
			save = true;
		} else if (!strcmp(v->path, "[stack]")) {
			e->kind = CRYO__VMA_KIND__VMA_STACK;
			save = true;
		} else if (v->special) {
			e->kind = CRYO__VMA_KIND__VMA_SPECIAL;
		} else if (!*v->path) {
			e->kind = CRYO__VMA_KIND__VMA_ANON_PRIVATE;
			save = true;
		} else if (v->shared && v->deleted && !strcmp(v->path, "/dev/zero")) {
			e->kind = CRYO__VMA_KIND__VMA_ANON_SHARED;
			e->has_shmem_space = true;
			e->shmem_space = space = (*next_shm)++;
			first = v->pgoff >> 12;
			save = true;
		} else if (v->deleted) {
			pr_err("deleted file mapping %s: not in this test capture", v->path);
			ret = -ENOTSUP;
			break;
		} else {
			e->kind = v->shared ? CRYO__VMA_KIND__VMA_FILE_SHARED
					    : CRYO__VMA_KIND__VMA_FILE_PRIVATE;
			e->file = file_id(g, v->path);
			save = !v->shared;
			only_anon = true;
		}
		if (save)
			ret = save_pages(t, pid, v->start, v->end, space, first, only_anon,
					 v->prot & PROC_PROT_READ);
		mm->vmas[mm->n_vmas++] = e;
	}
	proc_maps_free(&m);
	if (ret)
		return ret;
	ret = proc_stat_read(pid, 0, &st);
	if (ret)
		return ret;
#define F(field, idx) do { mm->has_##field = true; mm->field = (uint64_t)st.f[idx]; } while (0)
	F(start_code, PROC_STAT_START_CODE);
	F(end_code, PROC_STAT_END_CODE);
	F(start_stack, PROC_STAT_START_STACK);
	F(start_data, PROC_STAT_START_DATA);
	F(end_data, PROC_STAT_END_DATA);
	F(start_brk, PROC_STAT_START_BRK);
	F(arg_start, PROC_STAT_ARG_START);
	F(arg_end, PROC_STAT_ARG_END);
	F(env_start, PROC_STAT_ENV_START);
	F(env_end, PROC_STAT_ENV_END);
#undef F
	ret = proc_auxv_read(pid, &av);
	if (ret)
		return ret;
	mm->auxv = gc_alloc(g, av.n * 2 * sizeof(uint64_t));
	for (size_t i = 0; i < av.n; i++) {
		mm->auxv[2 * i] = av.type[i];
		mm->auxv[2 * i + 1] = av.val[i];
	}
	mm->n_auxv = av.n * 2;
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	{
		char target[PATH_MAX];
		n = readlink(exe, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = 0;
			mm->exe_path = gc_add(g, strdup(target));
			mm->exe_id = file_id(g, target);
		}
	}
	return 0;
}

static Cryo__SigInfo **siginfos(struct gc *g, const siginfo_t *si, size_t n)
{
	Cryo__SigInfo **v = gc_alloc(g, n * sizeof(*v));

	for (size_t i = 0; i < n; i++) {
		v[i] = gc_alloc(g, sizeof(**v));
		cryo__sig_info__init(v[i]);
		v[i]->raw.len = sizeof(siginfo_t);
		v[i]->raw.data = gc_alloc(g, sizeof(siginfo_t));
		memcpy(v[i]->raw.data, &si[i], sizeof(siginfo_t));
	}
	return v;
}

static int capture_threads(struct gc *g, struct proc_ctl *ctl, Cryo__ProcessEntry *pe)
{
	pe->threads = gc_alloc(g, ctl->n * sizeof(*pe->threads));
	/* leader first */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < ctl->n; i++) {
			struct proc_thread_state st;
			Cryo__ThreadEntry *te;
			stack_t ss;
			uint64_t ctid = 0;
			int ret;

			if ((ctl->t[i].tid == ctl->pid) != (pass == 0))
				continue;
			ret = proc_thread_capture(ctl, i, &st);
			if (ret)
				return ret;
			te = gc_alloc(g, sizeof(*te));
			cryo__thread_entry__init(te);
			te->tid = (uint32_t)st.tid;
			te->regs.len = sizeof(st.regs);
			te->regs.data = gc_alloc(g, sizeof(st.regs));
			memcpy(te->regs.data, &st.regs, sizeof(st.regs));
			te->has_xstate = true;
			te->xstate.len = st.xstate_len;
			te->xstate.data = gc_add(g, st.xstate);
			st.xstate = NULL;
			te->sigmask = st.sigmask;
			te->pending = siginfos(g, st.pending, st.npending);
			te->n_pending = st.npending;
			if (st.has_rseq) {
				te->has_rseq_ptr = te->has_rseq_len = te->has_rseq_sig = true;
				te->rseq_ptr = st.rseq.rseq_abi_pointer;
				te->rseq_len = st.rseq.rseq_abi_size;
				te->rseq_sig = st.rseq.signature;
			}
			te->has_robust_list = te->has_robust_len = true;
			te->robust_list = st.robust_list;
			te->robust_len = st.robust_len;
			te->comm = gc_add(g, strdup(st.comm));
			te->has_in_syscall = true;
			te->in_syscall = (int64_t)st.regs.orig_rax >= 0;
			proc_thread_state_free(&st);
			if (proc_remote_sigaltstack(ctl, i, &ss) == 0) {
				te->has_altstack_sp = te->has_altstack_size = true;
				te->has_altstack_flags = true;
				te->altstack_sp = (uint64_t)(uintptr_t)ss.ss_sp;
				te->altstack_size = ss.ss_size;
				te->altstack_flags = (uint32_t)ss.ss_flags;
			}
			if (proc_remote_get_tid_address(ctl, i, &ctid) == 0) {
				te->has_clear_child_tid = true;
				te->clear_child_tid = ctid;
			}
			pe->threads[pe->n_threads++] = te;
		}
	return 0;
}

static int capture_process(struct gc *g, struct proc_ctl *ctl, Cryo__ProcessEntry *pe)
{
	pid_t pid = ctl->pid;
	struct proc_status ps;
	struct proc_stat st;
	struct proc_rlimits rl;
	siginfo_t *sh = NULL;
	size_t nsh = 0;
	uint64_t addr;
	char path[64], buf[PATH_MAX];
	ssize_t n;
	int ret;

	ret = proc_status_read(pid, 0, &ps);
	if (!ret)
		ret = proc_stat_read(pid, 0, &st);
	if (!ret)
		ret = proc_rlimits_read(pid, &rl);
	if (ret)
		return ret;
	pe->comm = gc_add(g, strdup(st.comm));
	pe->has_umask = true;
	pe->umask = ps.umask;
	pe->has_nice = true;
	pe->nice = (int32_t)st.f[PROC_STAT_NICE];
	pe->has_exit_signal = true;
	pe->exit_signal = (uint32_t)st.f[PROC_STAT_EXIT_SIGNAL];
	pe->creds = gc_alloc(g, sizeof(*pe->creds));
	cryo__creds__init(pe->creds);
	pe->creds->uid = gc_alloc(g, 4 * sizeof(uint32_t));
	pe->creds->gid = gc_alloc(g, 4 * sizeof(uint32_t));
	memcpy(pe->creds->uid, ps.uid, 4 * sizeof(uint32_t));
	memcpy(pe->creds->gid, ps.gid, 4 * sizeof(uint32_t));
	pe->creds->n_uid = pe->creds->n_gid = 4;
	pe->creds->groups = gc_alloc(g, ps.ngroups * sizeof(uint32_t));
	memcpy(pe->creds->groups, ps.groups, ps.ngroups * sizeof(uint32_t));
	pe->creds->n_groups = ps.ngroups;
	pe->creds->has_cap_prm = pe->creds->has_cap_eff = pe->creds->has_cap_inh = true;
	pe->creds->cap_prm = ps.cap_prm;
	pe->creds->cap_eff = ps.cap_eff;
	pe->creds->cap_inh = ps.cap_inh;
	pe->rlimits = gc_alloc(g, PROC_RLIM_COUNT * sizeof(*pe->rlimits));
	for (unsigned i = 0; i < PROC_RLIM_COUNT; i++) {
		Cryo__RLimit *l;
		if (!(rl.seen & (1u << i)))
			continue;
		l = gc_alloc(g, sizeof(*l));
		cryo__rlimit__init(l);
		l->resource = i;
		l->cur = rl.lim[i].rlim_cur;
		l->max = rl.lim[i].rlim_max;
		pe->rlimits[pe->n_rlimits++] = l;
	}
	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = 0;
		pe->cwd = gc_add(g, strdup(buf));
	}
	pe->root = gc_add(g, strdup("/"));
	ret = proc_peek_siginfo(pid, true, &sh, &nsh);
	if (ret)
		return ret;
	pe->shared_pending = siginfos(g, sh, nsh);
	pe->n_shared_pending = nsh;
	free(sh);
	ret = proc_inject_scratch_data(ctl, &addr);
	if (ret)
		return ret;
	pe->sigactions = gc_alloc(g, 64 * sizeof(*pe->sigactions));
	for (int sig = 1; sig <= 64; sig++) {
		uint64_t a[6] = { (uint64_t)sig, 0, addr, 8, 0, 0 }, ka[4];
		int64_t r;
		Cryo__SigAction *sa;

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		ret = proc_inject_syscall(ctl, SYS_rt_sigaction, a, &r);
		if (ret || r)
			continue;
		ret = proc_mem_read(pid, addr, ka, sizeof(ka), NULL);
		if (ret)
			return ret;
		if (ka[0] == 0)
			continue;
		sa = gc_alloc(g, sizeof(*sa));
		cryo__sig_action__init(sa);
		sa->sig = (uint32_t)sig;
		sa->handler = ka[0];
		sa->flags = ka[1];
		sa->has_restorer = sa->has_mask = true;
		sa->restorer = ka[2];
		sa->mask = ka[3];
		pe->sigactions[pe->n_sigactions++] = sa;
	}
	pe->itimers = gc_alloc(g, 3 * sizeof(*pe->itimers));
	for (int w = 0; w < 3; w++) {
		struct itimerval iv;
		Cryo__ITimer *it;
		if (proc_remote_getitimer(ctl, w, &iv))
			continue;
		it = gc_alloc(g, sizeof(*it));
		cryo__itimer__init(it);
		it->which = (uint32_t)w;
		it->interval_us = (uint64_t)iv.it_interval.tv_sec * 1000000 +
				  (uint64_t)iv.it_interval.tv_usec;
		it->value_us = (uint64_t)iv.it_value.tv_sec * 1000000 + (uint64_t)iv.it_value.tv_usec;
		pe->itimers[pe->n_itimers++] = it;
	}
	return 0;
}

int rtest_capture(struct store *s, const char *name, pid_t pid, bool kill_it, uint64_t *snap_no)
{
	struct gc g = { 0 };
	struct proc_ctl *ctl = NULL;
	struct store_txn *t = NULL;
	Cryo__GroupEntry ge = CRYO__GROUP_ENTRY__INIT;
	Cryo__ProcRef pr = CRYO__PROC_REF__INIT, *prs[1] = { &pr };
	Cryo__ProcessEntry pe = CRYO__PROCESS_ENTRY__INIT;
	Cryo__MmEntry mm = CRYO__MM_ENTRY__INIT;
	Cryo__FdsEntry fe = CRYO__FDS_ENTRY__INIT;
	char key[STORE_KEY_MAX + 1];
	uint32_t next_shm = SPACE_SHM0;
	int64_t brk = 0;
	uint64_t a[6] = { 0 };
	int ret;

	ret = proc_seize(pid, &ctl);
	if (ret)
		return ret;
	ret = store_txn_begin(s, name, 0, &t);
	if (ret)
		goto out;
	/* memory before any injection adds its scratch pages */
	ret = capture_mm(&g, t, pid, &mm, &next_shm);
	if (!ret)
		ret = capture_threads(&g, ctl, &pe);
	if (!ret)
		ret = capture_process(&g, ctl, &pe);
	if (!ret)
		ret = proc_inject_syscall(ctl, SYS_brk, a, &brk);
	if (ret)
		goto out;
	mm.has_brk = true;
	mm.brk = (uint64_t)brk;
	pe.pid = (uint32_t)pid;
	ge.version = IMAGE_VERSION;
	ge.name = (char *)name;
	ge.root_pid = (uint32_t)pid;
	pr.pid = (uint32_t)pid;
	pr.space = SPACE_PROC;
	ge.procs = prs;
	ge.n_procs = 1;
	ge.time_ns = 0;
	ret = image_put(t, IMAGE_KEY_GROUP, &ge.base);
	image_key(key, sizeof(key), pid, "core");
	if (!ret)
		ret = image_put(t, key, &pe.base);
	image_key(key, sizeof(key), pid, "mm");
	if (!ret)
		ret = image_put(t, key, &mm.base);
	image_key(key, sizeof(key), pid, "fds");
	if (!ret)
		ret = image_put(t, key, &fe.base);
	if (!ret) {
		ret = store_txn_commit(t, snap_no);
		t = NULL;
	}
out:
	store_txn_abort(t);
	proc_release(ctl);
	if (kill_it && !ret)
		kill(pid, SIGKILL);
	gc_free(&g);
	return ret;
}
