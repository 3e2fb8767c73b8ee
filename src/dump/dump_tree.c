/* dump_tree(): a process and every process under it, in one snapshot.
 *
 *   txn begin ─▶ seize the root, list its children, seize each, list
 *     theirs ... (a stopped process cannot fork: the walk ends)
 *     ─▶ capture each (its own page space: 1, 2, ...) ─▶ shared fds
 *     ─▶ snap:   release all ─▶ pages, records ─▶ commit
 *        freeze: pages, records ─▶ commit ─▶ SIGKILL all ─▶ release
 *   any failure: abort, release every process seized so far.
 *
 * A zombie child is kept as one (no records but its exit status, group
 * and session). Always a full snapshot: incremental snapshots and write tracking are
 * kept per single process (dump.c) for now. */
#define LOG_PREFIX "dump: "
#include "dump/dump_int.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/vec.h"
#include "proc/pidns.h"
#include "proc/procfs.h"
#include "proc/status.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define TREE_MAX	(IMAGE_SPACE_FILES - 1)	/* page spaces 1 .. TREE_MAX */

struct tree {
	struct dump_ctx *d;		/* d[0] is the root */
	Cryo__ProcRef *zombies;		/* children that exited, not waited for */
	size_t nzombies, zcap;
	pid_t *pids;			/* the same order, for fd probes */
	Cryo__ProcessEntry *pe;
	Cryo__MmEntry *mm;
	Cryo__FdsEntry *fe;
	size_t n, cap;
	struct fd_dump_ctx fdc;
	struct dump_shm shm;		/* System V segments of the tree */
	struct progress *prog;		/* dump_opts.progress */
};

static int tree_has(const struct tree *t, pid_t pid)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->pids[i] == pid)
			return 1;
	for (size_t i = 0; i < t->nzombies; i++)
		if ((t->zombies[i].has_host_pid ? t->zombies[i].host_pid : t->zombies[i].pid) ==
		    (uint32_t)pid)
			return 1;
	return 0;
}

/* A zombie's pid, group and session as the group's programs see them. */
static int zombie_ids(const struct tree *t, Cryo__ProcRef *z, pid_t pid, pid_t parent)
{
	const struct dump_ctx *root = &t->d[0];
	pid_t v = dump_ns_vpid(root, pid, 0), pgid, sid;
	int r;

	if (!root->ns_level)
		return 0;
	r = v > 0 ? proc_ns_pgid_sid(pid, root->ns_level, &pgid, &sid) : -ESRCH;
	if (r) {
		pr_err("zombie %d (a child of %d): its pids in the group's namespace: %s", (int)pid,
		       (int)parent, strerror(-r));
		return r == -ESRCH ? -EAGAIN : r;	/* reaped meanwhile: list again */
	}
	z->pid = (uint32_t)v;
	z->ppid = (uint32_t)dump_ns_vpid(root, parent, 0);
	z->pgid = (uint32_t)pgid;
	z->sid = (uint32_t)sid;
	z->has_host_pid = 1;
	z->host_pid = (uint32_t)pid;
	return 0;
}

/* A zombie child: kept with what its parent's wait will read. Its stat
 * cannot change any more (it is dead; its parent is stopped). */
static int add_zombie(struct tree *t, const struct proc_stat *st, pid_t pid, pid_t parent)
{
	Cryo__ProcRef *z;
	int r = vec_reserve((void **)&t->zombies, &t->zcap, t->nzombies + 1, sizeof(*z));

	if (r)
		return r;
	if (st->nfields < PROC_STAT_EXIT_CODE) {
		pr_err("pid %d (a child of %d) has exited; this kernel does not say its exit "
		       "status", (int)pid, (int)parent);
		return -ENOTSUP;
	}
	z = &t->zombies[t->nzombies++];
	cryo__proc_ref__init(z);
	z->pid = (uint32_t)pid;
	z->has_ppid = z->has_zombie = z->has_exit_status = 1;
	z->ppid = (uint32_t)parent;
	z->zombie = 1;
	z->exit_status = (int32_t)st->f[PROC_STAT_EXIT_CODE];
	z->has_pgid = z->has_sid = z->has_exit_signal = 1;
	z->pgid = (uint32_t)st->f[PROC_STAT_PGRP];
	z->sid = (uint32_t)st->f[PROC_STAT_SESSION];
	z->exit_signal = (uint32_t)st->f[PROC_STAT_EXIT_SIGNAL];
	r = zombie_ids(t, z, pid, parent);
	if (r)
		t->nzombies--;
	return r;
}

static int tree_grow(struct tree *t)
{
	size_t cap_pids = t->cap;
	int r = vec_reserve((void **)&t->pids, &cap_pids, t->n + 1, sizeof(*t->pids));

	if (!r)
		r = vec_reserve((void **)&t->d, &t->cap, t->n + 1, sizeof(*t->d));
	/* the array moved: a context's chunks_tail may point into it */
	for (size_t i = 0; !r && i < t->n; i++) {
		struct dump_ctx *d = &t->d[i];

		d->chunks_tail = &d->chunks;
		while (*d->chunks_tail)
			d->chunks_tail = &(*d->chunks_tail)->next;
	}
	return r;
}

/* Why a process under the root cannot be captured now; 1 for a zombie
 * (kept as one), 0 for a process to seize. */
static int check_child(struct tree *t, pid_t pid, pid_t parent)
{
	struct proc_stat st;
	int r = proc_stat_read(pid, 0, &st);

	if (r == -ENOENT || r == -ESRCH)
		return -EAGAIN;	/* gone since the listing: list again */
	if (!r && st.state == 'Z') {
		r = add_zombie(t, &st, pid, parent);
		return r ? r : 1;
	}
	if (!r && st.state == 'X')
		return -EAGAIN;	/* being reaped right now */
	r = dump_check_target(pid);
	if (!r)
		r = dump_check_paged_in(pid);
	return r;
}

/* Gone, a zombie, or on its way out (PF_EXITING: stat's flags). */
static int exiting(pid_t pid)
{
	struct proc_stat st;

	if (proc_stat_read(pid, 0, &st))
		return 1;
	return st.state == 'Z' || st.state == 'X' ||
	       (st.f[PROC_STAT_FLAGS] & 0x4 /* PF_EXITING */);
}

static int add_process(struct tree *t, const char *name, pid_t pid)
{
	struct dump_ctx *d;
	int r;

	if (t->n == TREE_MAX) {
		pr_err("group %s: more than %u processes", name, TREE_MAX);
		return -E2BIG;
	}
	if (t->n == t->cap && (r = tree_grow(t)))
		return r;
	d = &t->d[t->n];
	memset(d, 0, sizeof(*d));
	d->name = name;
	d->pid = pid;
	d->space = (uint32_t)t->n + 1;
	d->fdc = &t->fdc;
	d->shm = &t->shm;
	d->prog = t->prog;
	d->chunks_tail = &d->chunks;
	r = dump_ns_setup(d, t->n ? (int)t->d[0].ns_level : -1);
	if (r == -ESRCH && t->n)
		return -EAGAIN;	/* gone since the listing */
	if (r)
		return r;
	r = proc_seize(pid, &d->ctl);
	if (r && t->n && exiting(pid)) {
		/* a child exiting as we came (ptrace refuses it): list again */
		pr_info("group %s: pid %d exited while it was being stopped", name, (int)pid);
		return -EAGAIN;
	}
	if (r) {
		pr_err("group %s: cannot stop pid %d: %s", name, (int)pid, strerror(-r));
		return r;
	}
	t->pids[t->n++] = pid;
	return 0;
}

/* Seize the root, then breadth first every child of a stopped process. */
static int seize_tree(struct tree *t, const char *name, pid_t root)
{
	int r = dump_check_target(root);

	if (!r)
		r = dump_check_paged_in(root);
	if (!r)
		r = add_process(t, name, root);
	for (size_t i = 0; !r && i < t->n; i++) {
		pid_t *kids = NULL;
		size_t nk = 0;

		r = proc_children(t->pids[i], &kids, &nk);
		for (size_t k = 0; !r && k < nk; k++) {
			if (tree_has(t, kids[k]))
				continue;
			r = check_child(t, kids[k], t->pids[i]);
			if (!r)
				r = add_process(t, name, kids[k]);
			else if (r == 1)
				r = 0;
		}
		free(kids);
	}
	return r;
}

static void release_all(struct tree *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++) {
		int r;

		if (!t->d[i].ctl)
			continue;
		r = proc_release(t->d[i].ctl);
		t->d[i].ctl = NULL;
		if (r)
			pr_err("group %s: releasing pid %d: %s", name, (int)t->d[i].pid,
			       strerror(-r));
	}
}

static int alloc_records(struct tree *t)
{
	t->pe = calloc(t->n, sizeof(*t->pe));
	t->mm = calloc(t->n, sizeof(*t->mm));
	t->fe = calloc(t->n, sizeof(*t->fe));
	if (!t->pe || !t->mm || !t->fe)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		cryo__process_entry__init(&t->pe[i]);
		cryo__mm_entry__init(&t->mm[i]);
		cryo__fds_entry__init(&t->fe[i]);
		t->d[i].group = t->pids;
		t->d[i].ngroup = t->n;
	}
	return 0;
}

static int capture_all(struct tree *t, int freeze)
{
	int r = alloc_records(t);

	t->fdc.defer = !freeze;
	for (size_t i = 0; !r && i < t->n; i++) {
		t->d[i].txn = t->fdc.txn;
		t->fdc.pid = t->d[i].pid;
		t->d[i].defer_pages = !freeze;
		r = dump_capture(&t->d[i], &t->pe[i], &t->mm[i], &t->fe[i]);
	}
	if (!r)
		r = dump_fds_share(t->d, t->fe, t->n);
	if (!r)
		r = dump_shm_check(&t->shm, t->d[0].name);
	return r;
}

static int store_all(struct tree *t, const struct dump_opts *o, uint64_t time_ns,
		     uint64_t stopped)
{
	int r = fd_contents_flush(&t->fdc);

	for (size_t i = 0; !r && i < t->n; i++) {
		r = dump_mm_store(&t->d[i]);
		if (!r)
			r = dump_put_records(&t->d[i], &t->pe[i], &t->mm[i], &t->fe[i]);
	}
	if (!r)
		r = dump_put_group(t->d, t->n, t->zombies, t->nzombies, o, time_ns, stopped);
	return r;
}

/* Freeze: every process is killed before any is collected, so none runs
 * on after its parent is gone. */
static void end_all(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		kill(t->d[i].pid, SIGKILL);
	for (size_t i = t->n; i-- > 0;)
		dump_end_process(&t->d[i]);
}

static void tree_free(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		dump_ctx_free(&t->d[i], t->fe ? &t->fe[i] : &(Cryo__FdsEntry){ 0 });
	fd_dump_ctx_fini(&t->fdc);
	dump_shm_free(&t->shm);
	free(t->d);
	free(t->pids);
	free(t->pe);
	free(t->mm);
	free(t->fe);
	free(t->zombies);
}

int dump_tree(struct store *s, const char *name, pid_t root, const struct dump_opts *o,
	      struct dump_result *res)
{
	int freeze = o && o->freeze, r;
	struct tree t = { .fdc = { .pid = root, .next_space = IMAGE_SPACE_FILES,
				   .freeze = freeze,
				   .tcp_established = freeze && o->tcp_established },
			 .prog = o ? o->progress : NULL };
	uint64_t t0 = mono_ns(), t_stop, stopped = 0, time_ns, snap_no = 0;

	if (res)
		memset(res, 0, sizeof(*res));
	r = store_txn_begin(s, name, 0, &t.fdc.txn);
	if (r) {
		pr_err("group %s: starting a snapshot: %s", name, store_strerror(r));
		return r;
	}
	r = seize_tree(&t, name, root);
	t_stop = mono_ns();
	time_ns = wall_ns();
	if (!r)
		r = capture_all(&t, freeze);
	if (r)
		goto out;
	if (!freeze) {
		fd_dump_thaw(&t.fdc);	/* connections out of repair mode before they run */
		release_all(&t, name);
	}
	stopped = mono_ns() - t_stop;
	r = store_all(&t, o, time_ns, stopped);
	if (r)
		goto out;
	r = store_txn_commit(t.fdc.txn, &snap_no);
	t.fdc.txn = NULL;
	if (r) {
		pr_err("group %s: committing the snapshot: %s", name, store_strerror(r));
		goto out;
	}
	if (freeze) {
		end_all(&t);
		fd_dump_frozen(&t.fdc);
		stopped = mono_ns() - t_stop;
	}
	pr_info("group %s: %zu processes (and %zu zombies) in snapshot %llu", name, t.n,
		t.nzombies, (unsigned long long)snap_no);
	if (res) {
		res->snap_no = snap_no;
		res->pages = t.fdc.content_pages;
		for (size_t i = 0; i < t.n; i++) {
			res->pages += t.d[i].pages;
			res->bytes += t.d[i].bytes;
		}
		res->stopped_ns = stopped;
		res->total_ns = mono_ns() - t0;
	}
out:
	if (t.fdc.txn)
		store_txn_abort(t.fdc.txn);
	fd_dump_thaw(&t.fdc);
	release_all(&t, name);
	if (o && o->track)
		dump_track_disarm(o->track);	/* a tree is not tracked */
	tree_free(&t);
	return r;
}
