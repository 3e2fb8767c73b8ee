/* cryo inspect NAME [--snapshot N] [--json]: every record of a snapshot,
 * decoded: the group, each process's creds, limits, signals, timers,
 * threads (registers in summary), mappings (with the pages stored for
 * each) and fds (each described by its own kind). */
#include "cli/cli.h"
#include "cli/json.h"
#include "fds/fd.h"
#include "image/image.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/user.h>
#include <sys/wait.h>

struct insp {
	struct store_snap *sn;
	struct json *j;		/* NULL: text */
};

static const char *const vma_kinds[] = {
	[CRYO__VMA_KIND__VMA_ANON_PRIVATE] = "anon-private",
	[CRYO__VMA_KIND__VMA_ANON_SHARED] = "anon-shared",
	[CRYO__VMA_KIND__VMA_FILE_PRIVATE] = "file-private",
	[CRYO__VMA_KIND__VMA_FILE_SHARED] = "file-shared",
	[CRYO__VMA_KIND__VMA_SPECIAL] = "special",
	[CRYO__VMA_KIND__VMA_HEAP] = "heap",
	[CRYO__VMA_KIND__VMA_STACK] = "stack",
	[CRYO__VMA_KIND__VMA_SYSV_SHM] = "sysv-shm",
};

static const char *vma_kind(unsigned k)
{
	return k < sizeof(vma_kinds) / sizeof(vma_kinds[0]) && vma_kinds[k] ? vma_kinds[k] : "?";
}

static int count_page(void *arg, uint64_t vpn, enum store_page_kind kind)
{
	(void)vpn;
	(void)kind;
	(*(uint64_t *)arg)++;
	return 0;
}

static uint64_t pages_in(struct store_snap *sn, uint32_t space, uint64_t start, uint64_t end)
{
	uint64_t n = 0;

	if (end <= start || space > 4095)
		return 0;
	store_snap_walk(sn, STORE_KEY(space, start >> 12), STORE_KEY(space, (end >> 12) - 1),
			count_page, &n);
	return n;
}

static int signo_of(const ProtobufCBinaryData *raw)
{
	int s = 0;

	if (raw->len >= sizeof(int))
		memcpy(&s, raw->data, sizeof(int));
	return s;
}

static void hex(char *buf, size_t n, const uint8_t *p, size_t len)
{
	size_t o = 0;

	/* Little-endian bytes printed most significant first. */
	for (size_t i = len; i-- > 0 && o + 3 <= n;)
		o += (size_t)snprintf(buf + o, n - o, "%02x", p[i]);
}

/* ---- JSON ---- */

static void j_u64s(struct json *j, const char *k, const uint32_t *v, size_t n)
{
	json_key(j, k);
	json_arr_begin(j);
	for (size_t i = 0; i < n; i++)
		json_u64(j, v[i]);
	json_arr_end(j);
}

static void j_hex(struct json *j, const char *k, uint64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "0x%" PRIx64, v);
	json_kv_str(j, k, b);
}

static void j_regs(struct json *j, const Cryo__ThreadEntry *t)
{
	struct user_regs_struct r;

	if (t->regs.len != sizeof(r))
		return;
	memcpy(&r, t->regs.data, sizeof(r));
	json_key(j, "regs");
	json_obj_begin(j);
#define R(x) j_hex(j, #x, (uint64_t)r.x)
	R(rip); R(rsp); R(rbp); R(rax); R(rbx); R(rcx); R(rdx); R(rsi); R(rdi);
	R(r8); R(r9); R(r10); R(r11); R(r12); R(r13); R(r14); R(r15);
	R(orig_rax); R(eflags); R(fs_base); R(gs_base); R(cs); R(ss);
#undef R
	json_obj_end(j);
	/* XMM0-15 live at byte 160 of the XSAVE legacy area. */
	if (t->has_xstate && t->xstate.len >= 160 + 16 * 16) {
		json_key(j, "xmm");
		json_arr_begin(j);
		for (int i = 0; i < 16; i++) {
			char b[40];
			hex(b, sizeof(b), t->xstate.data + 160 + 16 * i, 16);
			json_str(j, b);
		}
		json_arr_end(j);
	}
}

static void j_pending(struct json *j, const char *k, Cryo__SigInfo **v, size_t n)
{
	json_key(j, k);
	json_arr_begin(j);
	for (size_t i = 0; i < n; i++)
		json_u64(j, (uint64_t)signo_of(&v[i]->raw));
	json_arr_end(j);
}

static void j_core(struct json *j, const Cryo__ProcessEntry *p)
{
	json_key(j, "core");
	json_obj_begin(j);
	json_kv_u64(j, "pid", p->pid);
	json_kv_u64(j, "ppid", p->ppid);
	json_kv_u64(j, "pgid", p->pgid);
	json_kv_u64(j, "sid", p->sid);
	json_kv_str(j, "comm", p->comm ? p->comm : "");
	if (p->creds) {
		json_key(j, "creds");
		json_obj_begin(j);
		j_u64s(j, "uid", p->creds->uid, p->creds->n_uid);
		j_u64s(j, "gid", p->creds->gid, p->creds->n_gid);
		j_u64s(j, "groups", p->creds->groups, p->creds->n_groups);
		j_hex(j, "cap_eff", p->creds->cap_eff);
		j_hex(j, "cap_prm", p->creds->cap_prm);
		j_hex(j, "cap_inh", p->creds->cap_inh);
		j_hex(j, "cap_bnd", p->creds->cap_bnd);
		j_hex(j, "cap_amb", p->creds->cap_amb);
		json_kv_u64(j, "securebits", p->creds->securebits);
		json_obj_end(j);
	}
	json_kv_u64(j, "umask", p->umask);
	json_kv_str(j, "cwd", p->cwd ? p->cwd : "");
	json_kv_str(j, "root", p->root ? p->root : "");
	json_kv_u64(j, "personality", p->personality);
	json_key(j, "nice");
	json_i64(j, p->nice);
	json_kv_u64(j, "sched_policy", p->sched_policy);
	json_kv_u64(j, "sched_prio", p->sched_prio);
	json_kv_u64(j, "exit_signal", p->exit_signal);
	json_kv_u64(j, "pdeath_sig", p->pdeath_sig);
	json_kv_bool(j, "dumpable", p->dumpable);
	json_kv_bool(j, "no_new_privs", p->no_new_privs);
	json_kv_u64(j, "child_subreaper", p->child_subreaper);
	json_key(j, "rlimits");
	json_arr_begin(j);
	for (size_t i = 0; i < p->n_rlimits; i++) {
		json_obj_begin(j);
		json_kv_u64(j, "resource", p->rlimits[i]->resource);
		json_kv_u64(j, "cur", p->rlimits[i]->cur);
		json_kv_u64(j, "max", p->rlimits[i]->max);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_key(j, "sigactions");
	json_arr_begin(j);
	for (size_t i = 0; i < p->n_sigactions; i++) {
		const Cryo__SigAction *s = p->sigactions[i];
		json_obj_begin(j);
		json_kv_u64(j, "sig", s->sig);
		j_hex(j, "handler", s->handler);
		j_hex(j, "flags", s->flags);
		j_hex(j, "restorer", s->restorer);
		j_hex(j, "mask", s->mask);
		json_obj_end(j);
	}
	json_arr_end(j);
	j_pending(j, "shared_pending", p->shared_pending, p->n_shared_pending);
	json_key(j, "itimers");
	json_arr_begin(j);
	for (size_t i = 0; i < p->n_itimers; i++) {
		json_obj_begin(j);
		json_kv_u64(j, "which", p->itimers[i]->which);
		json_kv_u64(j, "interval_us", p->itimers[i]->interval_us);
		json_kv_u64(j, "value_us", p->itimers[i]->value_us);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_key(j, "timers");
	json_arr_begin(j);
	for (size_t i = 0; i < p->n_timers; i++) {
		const Cryo__PosixTimer *t = p->timers[i];
		json_obj_begin(j);
		json_key(j, "id");
		json_i64(j, t->id);
		json_key(j, "clock");
		json_i64(j, t->clock);
		json_key(j, "notify");
		json_i64(j, t->notify);
		json_key(j, "signo");
		json_i64(j, t->signo);
		json_kv_u64(j, "interval_ns", t->interval_ns);
		json_kv_u64(j, "value_ns", t->value_ns);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_key(j, "threads");
	json_arr_begin(j);
	for (size_t i = 0; i < p->n_threads; i++) {
		const Cryo__ThreadEntry *t = p->threads[i];
		json_obj_begin(j);
		json_kv_u64(j, "tid", t->tid);
		json_kv_str(j, "comm", t->comm ? t->comm : "");
		j_regs(j, t);
		json_kv_u64(j, "xstate_len", t->has_xstate ? t->xstate.len : 0);
		j_hex(j, "sigmask", t->sigmask);
		j_pending(j, "pending", t->pending, t->n_pending);
		j_hex(j, "altstack_sp", t->altstack_sp);
		json_kv_u64(j, "altstack_size", t->altstack_size);
		json_kv_u64(j, "altstack_flags", t->altstack_flags);
		j_hex(j, "rseq_ptr", t->rseq_ptr);
		j_hex(j, "robust_list", t->robust_list);
		j_hex(j, "clear_child_tid", t->clear_child_tid);
		json_kv_bool(j, "in_syscall", t->in_syscall);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

static void j_mm(struct insp *in, uint32_t space, const Cryo__MmEntry *mm)
{
	struct json *j = in->j;

	json_key(j, "mm");
	json_obj_begin(j);
#define M(x) j_hex(j, #x, mm->x)
	M(start_code); M(end_code); M(start_data); M(end_data); M(start_brk); M(brk);
	M(start_stack); M(arg_start); M(arg_end); M(env_start); M(env_end);
#undef M
	json_kv_str(j, "exe", mm->exe_path ? mm->exe_path : "");
	json_kv_u64(j, "auxv_entries", mm->n_auxv / 2);
	json_key(j, "vmas");
	json_arr_begin(j);
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Cryo__VmaEntry *v = mm->vmas[i];
		json_obj_begin(j);
		j_hex(j, "start", v->start);
		j_hex(j, "end", v->end);
		json_kv_u64(j, "prot", v->prot);
		json_kv_str(j, "kind", vma_kind(v->kind));
		json_kv_str(j, "path", v->path ? v->path : "");
		json_kv_u64(j, "pgoff", v->pgoff);
		j_hex(j, "vmflags", v->vmflags);
		json_kv_bool(j, "deleted", v->deleted);
		json_kv_u64(j, "pages", pages_in(in->sn, space, v->start, v->end));
		if (v->has_shmem_space) {
			json_kv_u64(j, "shmem_space", v->shmem_space);
			json_kv_u64(j, "shmem_pages", pages_in(in->sn, v->shmem_space, 0, 1ull << 47));
		}
		if (v->has_memfd_space) {
			json_kv_u64(j, "memfd_space", v->memfd_space);
			json_kv_u64(j, "memfd_pages", pages_in(in->sn, v->memfd_space, 0, 1ull << 47));
		}
		if (v->has_object_size)
			json_kv_u64(j, "object_size", v->object_size);
		if (v->has_sysv_shmid)
			json_kv_u64(j, "sysv_shmid", v->sysv_shmid);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

static void j_fds(struct json *j, const Cryo__FdsEntry *fe)
{
	json_key(j, "fds");
	json_arr_begin(j);
	for (size_t i = 0; i < fe->n_fds; i++) {
		const Cryo__FdEntry *e = fe->fds[i];
		const struct fd_ops *k = fd_kind_by_name(e->kind);
		char d[512] = "";

		if (k)
			k->describe(e, d, sizeof(d));
		json_obj_begin(j);
		json_kv_u64(j, "fd", e->fd);
		json_kv_str(j, "kind", e->kind);
		json_kv_u64(j, "flags", e->flags);
		json_kv_bool(j, "cloexec", e->cloexec);
		json_kv_u64(j, "pos", e->pos);
		json_kv_str(j, "desc", e->desc ? e->desc : "");
		json_kv_str(j, "describe", d);
		json_obj_end(j);
	}
	json_arr_end(j);
}

/* ---- text ---- */

static void t_core(const Cryo__ProcessEntry *p)
{
	printf("process %u (%s) ppid %u pgid %u sid %u\n", p->pid, p->comm ? p->comm : "?", p->ppid,
	       p->pgid, p->sid);
	if (p->creds && p->creds->n_uid == 4 && p->creds->n_gid == 4)
		printf("  creds: uid %u/%u/%u/%u gid %u/%u/%u/%u, %zu groups, cap eff %#" PRIx64
		       " prm %#" PRIx64 " bnd %#" PRIx64 "\n",
		       p->creds->uid[0], p->creds->uid[1], p->creds->uid[2], p->creds->uid[3],
		       p->creds->gid[0], p->creds->gid[1], p->creds->gid[2], p->creds->gid[3],
		       p->creds->n_groups, p->creds->cap_eff, p->creds->cap_prm, p->creds->cap_bnd);
	printf("  cwd %s root %s umask %03o personality %#x nice %d policy %u prio %u\n",
	       p->cwd ? p->cwd : "?", p->root ? p->root : "?", p->umask, p->personality, p->nice,
	       p->sched_policy, p->sched_prio);
	printf("  pdeath_sig %u dumpable %d no_new_privs %d child_subreaper %u exit_signal %u\n",
	       p->pdeath_sig, p->dumpable, p->no_new_privs, p->child_subreaper, p->exit_signal);
	printf("  rlimits:");
	for (size_t i = 0; i < p->n_rlimits; i++) {
		char c[24], m[24];
		const Cryo__RLimit *l = p->rlimits[i];
		snprintf(c, sizeof(c), l->cur == UINT64_MAX ? "inf" : "%" PRIu64, l->cur);
		snprintf(m, sizeof(m), l->max == UINT64_MAX ? "inf" : "%" PRIu64, l->max);
		printf(" %u=%s/%s", l->resource, c, m);
	}
	printf("\n  signal handlers: %zu\n", p->n_sigactions);
	for (size_t i = 0; i < p->n_sigactions; i++) {
		const Cryo__SigAction *s = p->sigactions[i];
		printf("    %-8s %s%#" PRIx64 " flags %#" PRIx64 " mask %#" PRIx64 "\n",
		       sigabbrev_np((int)s->sig) ? sigabbrev_np((int)s->sig) : "RT",
		       s->handler == 1 ? "ignored " : "handler ", s->handler, s->flags, s->mask);
	}
	printf("  shared pending:");
	for (size_t i = 0; i < p->n_shared_pending; i++)
		printf(" %d", signo_of(&p->shared_pending[i]->raw));
	printf("\n  itimers:");
	for (size_t i = 0; i < p->n_itimers; i++)
		printf(" [%u] value %" PRIu64 " us interval %" PRIu64 " us", p->itimers[i]->which,
		       p->itimers[i]->value_us, p->itimers[i]->interval_us);
	printf("\n  posix timers: %zu\n", p->n_timers);
	for (size_t i = 0; i < p->n_timers; i++)
		printf("    id %d clock %d notify %d signo %d value %" PRIu64 " ns interval %" PRIu64 " ns\n",
		       p->timers[i]->id, p->timers[i]->clock, p->timers[i]->notify, p->timers[i]->signo,
		       p->timers[i]->value_ns, p->timers[i]->interval_ns);
	printf("  threads: %zu\n", p->n_threads);
	for (size_t i = 0; i < p->n_threads; i++) {
		const Cryo__ThreadEntry *t = p->threads[i];
		struct user_regs_struct r = { 0 };

		if (t->regs.len == sizeof(r))
			memcpy(&r, t->regs.data, sizeof(r));
		printf("    tid %u (%s) rip %#llx rsp %#llx rax %#llx orig_rax %lld fs_base %#llx xstate %zu B\n",
		       t->tid, t->comm ? t->comm : "?", r.rip, r.rsp, r.rax, (long long)r.orig_rax,
		       r.fs_base, t->has_xstate ? t->xstate.len : (size_t)0);
		printf("      sigmask %#" PRIx64 " pending %zu altstack %#" PRIx64 "+%" PRIu64
		       " rseq %#" PRIx64 " robust %#" PRIx64 " clear_child_tid %#" PRIx64 "%s\n",
		       t->sigmask, t->n_pending, t->altstack_sp, t->altstack_size, t->rseq_ptr,
		       t->robust_list, t->clear_child_tid, t->in_syscall ? " in-syscall" : "");
	}
}

static void t_mm(struct insp *in, uint32_t space, const Cryo__MmEntry *mm)
{
	printf("  exe %s\n", mm->exe_path ? mm->exe_path : "?");
	printf("  code %#" PRIx64 "-%#" PRIx64 " data %#" PRIx64 "-%#" PRIx64 " brk %#" PRIx64
	       "-%#" PRIx64 " stack %#" PRIx64 "\n", mm->start_code, mm->end_code, mm->start_data,
	       mm->end_data, mm->start_brk, mm->brk, mm->start_stack);
	printf("  mappings: %zu\n", mm->n_vmas);
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Cryo__VmaEntry *v = mm->vmas[i];

		printf("    %012" PRIx64 "-%012" PRIx64 " %c%c%c %-12s %6" PRIu64 " pages  %s",
		       v->start, v->end, v->prot & 1 ? 'r' : '-', v->prot & 2 ? 'w' : '-',
		       v->prot & 4 ? 'x' : '-', vma_kind(v->kind),
		       pages_in(in->sn, space, v->start, v->end), v->path ? v->path : "");
		if (v->has_shmem_space)
			printf(" [shmem space %u]", v->shmem_space);
		if (v->has_memfd_space)
			printf(" [contents space %u]", v->memfd_space);
		if (v->has_sysv_shmid)
			printf(" [System V shm %u]", v->sysv_shmid);
		printf("\n");
	}
}

static void t_fds(const Cryo__FdsEntry *fe)
{
	printf("  fds: %zu\n", fe->n_fds);
	for (size_t i = 0; i < fe->n_fds; i++) {
		const struct fd_ops *k = fd_kind_by_name(fe->fds[i]->kind);
		char d[512] = "(unknown kind)";

		if (k)
			k->describe(fe->fds[i], d, sizeof(d));
		printf("    %3u %-6s %s\n", fe->fds[i]->fd, fe->fds[i]->kind, d);
	}
}

/* A process of a group in a pid namespace: its pids above are the ones
 * its program saw; the host's at the snapshot beside them. */
static void host_pid_line(const Cryo__ProcRef *ref)
{
	if (ref->has_host_pid)
		printf("  host pid %u (pid %u in its pid namespace)\n", ref->host_pid, ref->pid);
}

/* A zombie has only its ref: what its parent's wait will read. */
static void zombie(struct insp *in, const Cryo__ProcRef *z)
{
	if (in->j) {
		json_obj_begin(in->j);
		json_kv_u64(in->j, "pid", z->pid);
		if (z->has_host_pid)
			json_kv_u64(in->j, "host_pid", z->host_pid);
		json_kv_u64(in->j, "ppid", z->ppid);
		json_kv_bool(in->j, "zombie", true);
		json_kv_u64(in->j, "exit_status", (uint32_t)z->exit_status);
		json_obj_end(in->j);
		return;
	}
	printf("zombie %u ppid %u pgid %u sid %u: ", z->pid, z->ppid, z->pgid, z->sid);
	if (WIFSIGNALED(z->exit_status))
		printf("killed by signal %d\n", WTERMSIG(z->exit_status));
	else
		printf("exited with %d\n", WEXITSTATUS(z->exit_status));
	host_pid_line(z);
}

/* System V segments: the group's, not one process's. */
static void t_sysv(const Cryo__GroupEntry *g)
{
	for (size_t i = 0; i < g->n_sysv_shm; i++) {
		const Cryo__SysvShm *m = g->sysv_shm[i];

		printf("sysv-shm %u key %#x %" PRIu64 " bytes mode %o owner %u:%u creator %u:%u "
		       "space %u%s%s\n", m->shmid, (unsigned)m->key, m->size, m->mode, m->uid, m->gid,
		       m->cuid, m->cgid, m->space, m->removed ? " removed" : "",
		       m->locked ? " locked" : "");
	}
}

static void j_sysv(struct json *j, const Cryo__GroupEntry *g)
{
	json_key(j, "sysv_shm");
	json_arr_begin(j);
	for (size_t i = 0; i < g->n_sysv_shm; i++) {
		const Cryo__SysvShm *m = g->sysv_shm[i];

		json_obj_begin(j);
		json_kv_u64(j, "shmid", m->shmid);
		json_kv_u64(j, "key", (uint32_t)m->key);
		json_kv_u64(j, "size", m->size);
		json_kv_u64(j, "mode", m->mode);
		json_kv_u64(j, "uid", m->uid);
		json_kv_u64(j, "gid", m->gid);
		json_kv_u64(j, "space", m->space);
		json_kv_bool(j, "removed", m->removed);
		json_kv_bool(j, "locked", m->locked);
		json_obj_end(j);
	}
	json_arr_end(j);
}

static int one_proc(struct cli *c, struct insp *in, const Cryo__ProcRef *ref)
{
	char key[STORE_KEY_MAX + 1];
	Cryo__ProcessEntry *pe = NULL;
	Cryo__MmEntry *mm = NULL;
	Cryo__FdsEntry *fe = NULL;
	int err;

	if (ref->has_zombie && ref->zombie) {
		zombie(in, ref);
		return 0;
	}

	image_key(key, sizeof(key), (pid_t)ref->pid, "core");
	err = image_get(in->sn, key, &cryo__process_entry__descriptor, (ProtobufCMessage **)&pe);
	if (!err) {
		image_key(key, sizeof(key), (pid_t)ref->pid, "mm");
		err = image_get(in->sn, key, &cryo__mm_entry__descriptor, (ProtobufCMessage **)&mm);
	}
	if (!err) {
		image_key(key, sizeof(key), (pid_t)ref->pid, "fds");
		err = image_get(in->sn, key, &cryo__fds_entry__descriptor, (ProtobufCMessage **)&fe);
	}
	if (err) {
		err = cli_fail_store(c, err, "record %s", key);
		goto out;
	}
	if (in->j) {
		json_obj_begin(in->j);
		json_kv_u64(in->j, "pid", ref->pid);
		if (ref->has_host_pid)
			json_kv_u64(in->j, "host_pid", ref->host_pid);
		json_kv_u64(in->j, "space", ref->space);
		j_core(in->j, pe);
		j_mm(in, ref->space, mm);
		j_fds(in->j, fe);
		json_obj_end(in->j);
	} else {
		t_core(pe);
		host_pid_line(ref);
		t_mm(in, ref->space, mm);
		t_fds(fe);
	}
out:
	image_free(pe ? &pe->base : NULL);
	image_free(mm ? &mm->base : NULL);
	image_free(fe ? &fe->base : NULL);
	return err;
}

static int run_inspect(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "snapshot", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *store_opt = NULL, *name = NULL, *path;
	char path_buf[PATH_MAX], tb[32];
	uint64_t snap = STORE_SNAP_NEWEST;
	struct store_open_opts so = { .read_only = 1 };
	struct store_snap_info info;
	Cryo__GroupEntry *g = NULL;
	struct store *s = NULL;
	struct insp in = { 0 };
	struct json j;
	int ch, rc = CLI_OK, err;

	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
		switch (ch) {
		case 1:
			if (name)
				return cli_usage(c, "inspect", "inspect: unexpected argument '%s'", optarg);
			name = optarg;
			break;
		case 'h':
			cli_print_help(self, stdout);
			return CLI_OK;
		case 's':
			store_opt = optarg;
			break;
		case 'j':
			in.j = &j;
			break;
		case 'n':
			if (!strcmp(optarg, "newest") || !strcmp(optarg, "latest"))
				snap = STORE_SNAP_NEWEST;
			else if (cli_parse_u64(optarg, &snap) || !snap || snap == STORE_SNAP_NEWEST)
				return cli_usage(c, "inspect", "--snapshot: not a snapshot number: '%s'",
						 optarg);
			break;
		case ':':
			return cli_usage(c, "inspect", "inspect: option '%s' needs a value",
					 argv[optind - 1]);
		default:
			return cli_usage(c, "inspect", "inspect: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (!name)
		return cli_usage(c, "inspect", "inspect: missing group name");
	path = cli_store_path(store_opt, path_buf, sizeof(path_buf));
	cli_log_hold(c);
	err = store_open(path, &so, &s);
	if (err)
		return cli_fail_store(c, err, "cannot open store %s", path);
	err = store_snap_open(s, name, snap, &in.sn);
	if (err) {
		rc = err == -ENOENT ? cli_fail(c, "%s: no such snapshot", name) :
				      cli_fail_store(c, err, "%s: opening the snapshot", name);
		goto out;
	}
	store_snap_info(in.sn, &info);
	err = image_get_group(in.sn, &g);
	if (err) {
		rc = cli_fail_store(c, err, "%s snapshot %" PRIu64 ": group record", name, info.no);
		goto out;
	}
	if (in.j) {
		json_init(&j, stdout);
		json_obj_begin(&j);
		json_kv_str(&j, "group", g->name);
		json_kv_u64(&j, "snapshot", info.no);
		json_kv_u64(&j, "image_version", g->version);
		json_kv_u64(&j, "time_ns", g->time_ns);
		json_kv_bool(&j, "frozen", g->frozen);
		json_kv_bool(&j, "pid_ns", g->pid_ns);
		json_kv_u64(&j, "stopped_ns", g->stopped_ns);
		json_kv_u64(&j, "pages", info.pages);
		json_kv_u64(&j, "zero_pages", info.zero_pages);
		json_kv_u64(&j, "records", info.records);
		json_kv_str(&j, "boot_id", g->boot_id ? g->boot_id : "");
		json_key(&j, "processes");
		json_arr_begin(&j);
	} else {
		printf("group %s snapshot %" PRIu64 " taken %s%s, stopped %.1f ms, %" PRIu64
		       " pages (%" PRIu64 " zero), %u records, image v%u, cryo %s%s\n",
		       g->name, info.no, cli_time(g->time_ns, tb, sizeof(tb)),
		       g->frozen ? " (freeze)" : "", g->stopped_ns / 1e6, info.pages,
		       info.zero_pages, info.records, g->version,
		       g->cryo_version ? g->cryo_version : "?",
		       g->pid_ns ? "; in a pid namespace (pids as its programs saw them)" : "");
	}
	if (!in.j)
		t_sysv(g);
	for (size_t i = 0; i < g->n_procs && !rc; i++)
		rc = one_proc(c, &in, g->procs[i]);
	if (in.j && !rc) {
		json_arr_end(&j);
		j_sysv(&j, g);
		json_obj_end(&j);
		json_end(&j);
	}
out:
	image_free(g ? &g->base : NULL);
	store_snap_close(in.sn);
	store_close(s);
	return rc;
}

const struct cli_cmd cli_cmd_inspect = {
	.name = "inspect",
	.run = run_inspect,
	.summary = "decode what a snapshot holds",
	.usage = "Usage: cryo inspect NAME [--snapshot N] [--json] [--store PATH]\n"
		 "\n"
		 "Decodes every record of the newest (or Nth) snapshot of group NAME:\n"
		 "the group; per process its credentials, limits, signal handlers and\n"
		 "pending signals, timers, threads (registers in summary; --json adds\n"
		 "every general register and XMM0-15), mappings with the pages stored\n"
		 "for each, and fds as their kind describes them.\n",
};
