/* restore_group(): read the snapshot's records, make the process, rebuild
 * it, let it go. On any failure the half-made process is killed and the
 * image is left as it was (melt only reads it). */
#define LOG_PREFIX "restore: "
#include "restore/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "proc/inject.h"
#include "proc/status.h"

#define GONE_WAIT_MS 3000

uint64_t rst_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A zombie has no records: what its parent will wait for is in its ref. */
static int load_zombie(struct rst *r, const Cryo__ProcRef *ref)
{
	Cryo__ProcessEntry *pe = malloc(sizeof(*pe));

	if (!pe)
		return -ENOMEM;
	cryo__process_entry__init(pe);
	pe->pid = ref->pid;
	pe->has_ppid = ref->has_ppid;
	pe->ppid = ref->ppid;
	pe->has_pgid = ref->has_pgid;
	pe->pgid = ref->pgid;
	pe->has_sid = ref->has_sid;
	pe->sid = ref->sid;
	pe->has_exit_signal = ref->has_exit_signal;
	pe->exit_signal = ref->exit_signal;
	r->pe = pe;
	r->pid = r->hpid = (pid_t)ref->pid;
	r->zombie = true;
	r->exit_status = ref->exit_status;
	return 0;
}

static int load_one(struct rst *r, const Cryo__ProcRef *ref)
{
	char key[STORE_KEY_MAX + 1];
	int ret;

	if (ref->has_zombie && ref->zombie)
		return load_zombie(r, ref);
	r->pid = r->hpid = (pid_t)ref->pid;	/* on the host, until pidns.c says */
	r->space = ref->space;
	image_key(key, sizeof(key), r->pid, "core");
	ret = image_get(r->sn, key, &cryo__process_entry__descriptor, (ProtobufCMessage **)&r->pe);
	if (!ret) {
		image_key(key, sizeof(key), r->pid, "mm");
		ret = image_get(r->sn, key, &cryo__mm_entry__descriptor, (ProtobufCMessage **)&r->mm);
	}
	if (!ret) {
		image_key(key, sizeof(key), r->pid, "fds");
		ret = image_get(r->sn, key, &cryo__fds_entry__descriptor,
				(ProtobufCMessage **)&r->fds);
		if (ret == -ENOENT) {
			r->fds = NULL;
			ret = 0;
		}
	}
	if (ret)
		pr_err("%s: record %s: %s", r->name, key, store_strerror(ret));
	return ret;
}

/* The group's processes in its order (parents before children: dump
 * walks the tree breadth first); each parent must be in the group. */
static int load(struct rst_tree *t, const struct rst *proto, Cryo__GroupEntry *g)
{
	int ret = 0;

	if (g->version > IMAGE_VERSION) {
		pr_err("%s: image version %u is newer than this cryo (%u)", proto->name, g->version,
		       IMAGE_VERSION);
		return -EPROTO;
	}
	if (!g->n_procs || g->procs[0]->pid != g->root_pid ||
	    (g->procs[0]->has_zombie && g->procs[0]->zombie)) {
		pr_err("%s: the snapshot's process list does not start with its root",
		       proto->name);
		return -EBADMSG;
	}
	t->p = calloc(g->n_procs, sizeof(*t->p));
	if (!t->p)
		return -ENOMEM;
	for (size_t i = 0; i < g->n_procs && !ret; i++) {
		t->p[i] = *proto;
		t->p[i].lazy = proto->o->lazy;
		t->n++;
		ret = load_one(&t->p[i], g->procs[i]);
		for (size_t k = 0; !ret && i && k < i; k++)
			if (t->p[k].pid == t->p[i].pid)
				ret = -EBADMSG;
		if (!ret && i) {
			bool parent = false;

			for (size_t k = 0; k < i; k++)
				parent |= t->p[i].pe->has_ppid &&
					  (uint32_t)t->p[k].pid == t->p[i].pe->ppid;
			if (!parent) {
				pr_err("%s: pid %d: its parent is not before it in the snapshot",
				       proto->name, (int)t->p[i].pid);
				ret = -EBADMSG;
			}
		}
	}
	for (size_t i = 0; !ret && !proto->o->lazy && i < t->n; i++)
		progress_plan(proto->o->progress, rst_fill_bytes(&t->p[i]));
	return ret;
}

/* Kill the half-made process; collect what ptrace owes us. */
static void discard_one(struct rst *r)
{
	if (!r->ctl)
		return;
	/* Leader last: its exit is reported only after the others'. */
	for (size_t i = r->ctl->n; i-- > 0;)
		if (r->ctl->t[i].seized)
			proc_collect_exit(r->ctl->t[i].tid);
	if (r->ctl->pidfd >= 0)
		close(r->ctl->pidfd);
	free(r->ctl->t);
	free(r->ctl);
	r->ctl = NULL;
}

/* Kill every half-made process (all first, so none runs on alone), collect
 * what ptrace owes us, wait (bounded) until each pid is gone or only a
 * zombie to reap. */
static void discard(struct rst_tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->p[i].hpid > 0 && !t->p[i].zombie)
			kill(t->p[i].hpid, SIGKILL);
	for (size_t i = t->n; i-- > 0;)
		discard_one(&t->p[i]);
	for (size_t i = 0; i < t->n; i++)
		for (int ms = 0; t->p[i].hpid > 0 && !t->p[i].zombie && ms < GONE_WAIT_MS; ms += 5) {
			struct proc_stat st;
			if (proc_stat_read(t->p[i].hpid, 0, &st) || st.state == 'Z' ||
			    st.state == 'X')
				break;
			usleep(5000);
		}
	/* last: its exit waits until every process of the namespace is reaped,
	 * which needs the ptrace exits collected above */
	if (t->pidns)
		rst_pidns_kill(t);
}

/* One seized process, after its memory, to the last step before detach. */
static int rebuild(struct rst *r)
{
	int ret = rst_threads(r);

	if (!ret)
		ret = rst_process_state(r);
	if (!ret)
		ret = rst_finish(r);
	return ret;
}

/* The report pipe's end a seized process still holds: closed by
 * injection (until its seizure it watched cryo's end, make.c). */
static int close_report(struct rst *r)
{
	int ret = 0;

	if (r->report_fd >= 0) {
		ret = proc_remote_close(r->ctl, r->report_fd);
		if (ret)
			pr_err("%s: close the report pipe in %d: %s", r->name, (int)r->pid,
			       strerror(-ret));
		r->report_fd = -1;
	}
	return ret;
}

/* Every process's memory first, then (lazy) the group's pager, then the
 * rest of each: the rest touches lazy memory, which only a pager serves
 * (lazy.c). */
static int rebuild_all(struct rst_tree *t)
{
	int ret = 0;

	for (size_t i = 0; i < t->n && !ret; i++)
		if (!t->p[i].zombie) {
			ret = close_report(&t->p[i]);
			if (!ret)
				ret = rst_mm(&t->p[i]);
		}
	if (!ret && t->p[0].o->lazy)
		ret = rst_lazy_spawn(t);
	for (size_t i = 0; i < t->n && !ret; i++)
		if (!t->p[i].zombie)
			ret = rebuild(&t->p[i]);
	return ret;
}

/* Seized as processes being made: if cryo dies from now on, the kernel
 * kills them (PTRACE_O_EXITKILL). Until then they watched cryo's end of
 * the report pipe, closed here. */
static int seize_all(struct rst_tree *t)
{
	int ret = 0;

	for (size_t i = 0; i < t->n && !ret; i++) {
		ret = t->p[i].zombie ? 0 : proc_seize_opts(t->p[i].hpid, PROC_SEIZE_MADE,
							   &t->p[i].ctl);
		if (ret)
			pr_err("%s: seize new process %d (host pid %d): %s", t->p[i].name,
			       (int)t->p[i].pid, (int)t->p[i].hpid, strerror(-ret));
	}
	if (t->report_rd >= 0)
		close(t->report_rd);
	t->report_rd = -1;
	return ret;
}

/* The kinds' last word before the processes run (fd_ops.resume): each on
 * cryo's own copy of the fd. An fd several entries share is seen once per
 * entry; a kind makes that harmless. */
static int resume_fds(struct rst *r)
{
	struct fd_restore_ctx c = { .snap = r->sn, .policy = &r->o->fds };
	int ret = 0;

	for (size_t i = 0; r->fds && i < r->fds->n_fds && !ret; i++) {
		const Cryo__FdEntry *e = r->fds->fds[i];
		const struct fd_ops *k = fd_kind_by_name(e->kind);
		int local;

		if (!k || !k->resume)
			continue;
		local = (int)syscall(SYS_pidfd_getfd, r->ctl->pidfd, (int)e->fd, 0);
		if (local < 0) {
			ret = -errno;
			pr_err("%s: pid %d fd %u: %s", r->name, (int)r->pid, e->fd, strerror(errno));
			break;
		}
		ret = k->resume(&c, e, local);
		close(local);
		if (ret)
			pr_err("%s: pid %d fd %u (%s): %s", r->name, (int)r->pid, e->fd, e->kind,
			       strerror(-ret));
	}
	fd_restore_ctx_fini(&c);
	return ret;
}

/* Every process runs again at once: none sees another half made. */
static int release_all(struct rst_tree *t)
{
	int ret = 0;

	for (size_t i = 0; i < t->n; i++) {
		int r = t->p[i].zombie ? 0 : proc_release(t->p[i].ctl);

		t->p[i].ctl = NULL;
		if (r && !ret) {
			pr_err("%s: detach pid %d: %s", t->p[i].name, (int)t->p[i].pid,
			       strerror(-r));
			ret = r;
		}
	}
	return ret;
}

static void tree_free(struct rst_tree *t)
{
	if (t->report_rd >= 0)
		close(t->report_rd);
	for (size_t i = 0; i < t->n; i++) {
		image_free((ProtobufCMessage *)t->p[i].fds);
		image_free((ProtobufCMessage *)t->p[i].mm);
		if (t->p[i].zombie)
			free(t->p[i].pe);	/* ours, made by load_zombie */
		else
			image_free((ProtobufCMessage *)t->p[i].pe);
		if (t->p[i].uffd >= 0)
			close(t->p[i].uffd);
		free(t->p[i].lazy_rg);
	}
	rst_tree_free(t);
	rst_shared_free(&t->sh);
	free(t->p);
}

int restore_group(struct store *s, const char *name, const struct restore_opts *o,
		  struct restore_result *res)
{
	struct rst proto = { .o = o, .name = name, .store = s, .uffd = -1, .lazy_target_fd = -1,
			     .report_fd = -1 };
	struct rst_tree t = { .sh = { .fd_lo = -1, .fd_hi = -1 }, .report_rd = -1 };
	Cryo__GroupEntry *g = NULL;
	uint64_t t0 = rst_now_ns(), pages = 0, read_ns = 0, write_ns = 0;
	int ret;

	ret = store_snap_open(s, name, o->snap, &proto.sn);
	if (ret) {
		pr_err("%s: open snapshot: %s", name, store_strerror(ret));
		return ret;
	}
	ret = image_get_group(proto.sn, &g);
	if (ret) {
		pr_err("%s: group record: %s", name, store_strerror(ret));
		goto out;
	}
	ret = load(&t, &proto, g);
	if (ret)
		goto out;
	t.g = g;
	ret = rst_make_tree(&t);
	if (ret) {
		rst_shared_undo(&t);
		goto out;	/* nothing of ours is left to kill */
	}
	ret = seize_all(&t);
	if (!ret)
		ret = rebuild_all(&t);
	for (size_t i = 0; i < t.n && !ret; i++)
		if (!t.p[i].zombie)
			ret = resume_fds(&t.p[i]);
	if (!ret)
		ret = rst_shared_finish(&t);
	if (!ret)
		ret = release_all(&t);
	if (ret)
		goto fail;
	for (size_t i = 0; i < t.n; i++) {
		pages += t.p[i].pages_written;
		read_ns += t.p[i].read_ns;
		write_ns += t.p[i].write_ns;
	}
	res->pid = t.p[0].hpid;
	res->ns_pid = t.pidns ? t.p[0].pid : 0;
	res->ns_init = t.pidns ? t.init_hpid : 0;
	res->total_ns = rst_now_ns() - t0;
	res->pager_pid = t.pager_pid;
	pr_info("%s: pid %d runs again%s%s (%llu pages written, %.1f ms; reading them %.1f ms, "
		"writing %.1f ms)", name, (int)t.p[0].pid, t.n > 1 ? ", with its tree" : "",
		t.pidns ? ", in a new pid namespace" : "",
		(unsigned long long)pages, (double)res->total_ns / 1e6, (double)read_ns / 1e6,
		(double)write_ns / 1e6);
	goto out;
fail:
	pr_err("%s: melt of pid %d failed: %s; the half-made process%s killed", name,
	       (int)t.p[0].pid, strerror(-ret), t.n > 1 ? "es are" : " is");
	discard(&t);
	rst_shared_undo(&t);
out:
	/* the uffd went to the pager, or is closed here */
	tree_free(&t);
	image_free((ProtobufCMessage *)g);
	store_snap_close(proto.sn);
	return ret;
}
