/* dump_group(): one snapshot of one process, in one store transaction.
 *
 *   txn begin ─▶ seize ─▶ smaps ─▶ plan mm (refusals, saved objects)
 *     ─▶ fds (refusals) ─▶ core + threads (injection) ─▶ pages
 *     ─▶ snap:   release ─▶ records ─▶ commit
 *        freeze: records ─▶ commit ─▶ SIGKILL ─▶ release (reap if a child)
 *   any failure: abort the txn, release: the process runs on as before.
 *
 * For snap the process is released before the commit's fsync: nothing the
 * snapshot holds can change by then (every byte was copied while it was
 * stopped), and a commit that fails leaves the process as it would have
 * been anyway. Freeze keeps it stopped until the image is durable and then
 * ends it, so nothing it does after the image is ever seen outside. */
#define LOG_PREFIX "dump: "
#include "dump/dump_int.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "proc/fds.h"
#include "proc/inject.h"
#include "proc/maps.h"
#include "proc/pidns.h"
#include "proc/procfs.h"
#include "proc/status.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct dump_arena_blk {
	struct dump_arena_blk *next;
	size_t used, cap;
	max_align_t data[];
};

#define ARENA_BLK	(64u << 10)

void *dump_alloc(struct dump_arena *a, size_t n)
{
	struct dump_arena_blk *b = a->head;
	void *p;

	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (!n)
		n = sizeof(max_align_t);
	if (!b || b->cap - b->used < n) {
		size_t cap = n > ARENA_BLK ? n : ARENA_BLK;

		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = a->head;
		b->used = 0;
		b->cap = cap;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

char *dump_strdup(struct dump_arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = dump_alloc(a, n);

	if (p)
		memcpy(p, s, n);
	return p;
}

void dump_arena_free(struct dump_arena *a)
{
	while (a->head) {
		struct dump_arena_blk *n = a->head->next;
		free(a->head);
		a->head = n;
	}
}


static char *boot_id(struct dump_arena *a)
{
	char buf[64] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
	return dump_strdup(a, buf);
}

int dump_put_records(struct dump_ctx *d, Cryo__ProcessEntry *pe, Cryo__MmEntry *mm,
		     Cryo__FdsEntry *fe)
{
	char key[STORE_KEY_MAX + 1];
	int r;

	image_key(key, sizeof(key), d->vpid, "core");
	if ((r = image_put(d->txn, key, &pe->base)))
		return r;
	image_key(key, sizeof(key), d->vpid, "mm");
	if ((r = image_put(d->txn, key, &mm->base)))
		return r;
	image_key(key, sizeof(key), d->vpid, "fds");
	return image_put(d->txn, key, &fe->base);
}

int dump_put_group(struct dump_ctx *d, size_t n, Cryo__ProcRef *zombies, size_t nzombies,
		   const struct dump_opts *o, uint64_t time_ns, uint64_t stopped_ns)
{
	Cryo__GroupEntry g = CRYO__GROUP_ENTRY__INIT;
	Cryo__ProcRef *refs = dump_alloc(&d->a, n * sizeof(*refs));
	Cryo__ProcRef **prefs = dump_alloc(&d->a, (n + nzombies) * sizeof(*prefs));

	if (!refs || !prefs)
		return -ENOMEM;
	g.version = IMAGE_VERSION;
	g.name = (char *)d->name;
	g.root_pid = (uint32_t)d->vpid;
	/* pids as the programs saw them; the host's beside them, for inspect */
	g.has_pid_ns = 1;
	g.pid_ns = d->ns_level > 0;
	for (size_t i = 0; i < n; i++) {
		struct proc_stat ps;

		cryo__proc_ref__init(&refs[i]);
		refs[i].pid = (uint32_t)d[i].vpid;
		refs[i].space = d[i].space;
		if (!proc_stat_read(d[i].pid, 0, &ps)) {
			refs[i].has_ppid = 1;
			refs[i].ppid = (uint32_t)dump_ns_vpid(d, (pid_t)ps.f[PROC_STAT_PPID], 0);
		}
		if (d->ns_level) {
			refs[i].has_host_pid = 1;
			refs[i].host_pid = (uint32_t)d[i].pid;
		}
		prefs[i] = &refs[i];
	}
	for (size_t i = 0; i < nzombies; i++)
		prefs[n + i] = &zombies[i];	/* after every parent */
	g.procs = prefs;
	g.n_procs = n + nzombies;
	g.time_ns = time_ns;
	g.cryo_version = CRYO_VERSION;
	g.has_frozen = 1;
	g.frozen = o && o->freeze;
	g.has_stopped_ns = 1;
	g.stopped_ns = stopped_ns;
	g.boot_id = boot_id(&d->a);
	{
		struct proc_status st;

		if (!proc_status_read(d->pid, 0, &st)) {
			g.has_owner_uid = 1;
			g.owner_uid = st.uid[0];
		}
	}
	if (d->shm) {
		int r = dump_shm_group(d->shm, &g);

		if (r)
			return r;
	}
	return image_put(d->txn, IMAGE_KEY_GROUP, &g.base);
}

int dump_ns_setup(struct dump_ctx *d, int want_level)
{
	unsigned level = 0;
	int r = proc_ns_level(d->pid, &level);

	if (r == -ENOTSUP)
		r = 0;		/* no NSpid lines: a kernel without them sees one level */
	if (r) {
		pr_err("pid %d: its pid namespace: %s", (int)d->pid, strerror(-r));
		return r;
	}
	if (want_level >= 0 && level != (unsigned)want_level) {
		pr_err("pid %d is in a pid namespace of its own (level %u, the group's is %d): "
		       "not supported yet", (int)d->pid, level, want_level);
		return -ENOTSUP;
	}
	d->ns_level = level;
	d->vpid = dump_ns_vpid(d, d->pid, 0);
	if (d->vpid <= 0) {
		pr_err("pid %d: no pid in its own namespace", (int)d->pid);
		return -ESRCH;
	}
	return 0;
}

pid_t dump_ns_vpid(const struct dump_ctx *d, pid_t pid, pid_t tid)
{
	pid_t v = 0;

	if (!d->ns_level || pid <= 0)
		return tid ? tid : pid;
	if (proc_ns_pid(pid, tid, d->ns_level, &v))
		return 0;
	return v;
}

/* What makes a process impossible to capture faithfully, said before it
 * is ever stopped. */
int dump_check_target(pid_t pid)
{
	struct proc_status st;
	int r = proc_status_read(pid, 0, &st);

	if (r) {
		pr_err("cannot capture pid %d: %s", (int)pid, r == -ENOENT ? "no such process" :
		       strerror(-r));
		return r == -ENOENT ? -ESRCH : r;
	}
	if (st.tgid != pid) {
		pr_err("cannot capture pid %d: it is a thread of process %d", (int)pid, (int)st.tgid);
		return -EINVAL;
	}
	if (st.tracer_pid) {
		pr_err("cannot capture pid %d: it is being traced by pid %d", (int)pid,
		       (int)st.tracer_pid);
		return -EBUSY;
	}
	if (st.state == 'Z' || st.state == 'X') {
		pr_err("cannot capture pid %d: it has exited", (int)pid);
		return -ESRCH;
	}
	if (st.seccomp == 2) {
		pr_err("cannot capture pid %d: seccomp filters are not supported yet", (int)pid);
		return -ENOTSUP;
	}
	return 0;
}

#define UFFD_LINK "anon_inode:[userfaultfd]"

/* 1 if a process other than pid holds the userfaultfd open at pid's fd:
 * its pager does (each userfaultfd has an inode of its own). */
static int uffd_held_elsewhere(pid_t pid, int fd)
{
	char path[300], link[64];
	struct stat want, st;
	struct dirent *pe, *fe;
	int found = 0;
	DIR *proc;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	if (stat(path, &want) < 0 || !(proc = opendir("/proc")))
		return 1;	/* cannot tell: as before, taken for the pager's */
	while (!found && (pe = readdir(proc))) {
		DIR *fds;

		if (pe->d_name[0] < '1' || pe->d_name[0] > '9' || atoi(pe->d_name) == (int)pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", pe->d_name);
		if (!(fds = opendir(path)))
			continue;
		while (!found && (fe = readdir(fds))) {
			ssize_t n = readlinkat(dirfd(fds), fe->d_name, link, sizeof(link) - 1);

			if (n != (ssize_t)strlen(UFFD_LINK) || memcmp(link, UFFD_LINK, (size_t)n))
				continue;
			found = fstatat(dirfd(fds), fe->d_name, &st, 0) == 0 &&
				st.st_ino == want.st_ino && st.st_dev == want.st_dev;
		}
		closedir(fds);
	}
	closedir(proc);
	return found;
}

/* A process melted lazily holds its pager's userfaultfd until every page
 * is in (src/pager/serve.h); pages still out are not in its memory, so a
 * snapshot now would lose them. The caller waits and tries again. A
 * userfaultfd no other process holds is the program's own: the fd kinds
 * refuse it, naming it. */
int dump_check_paged_in(pid_t pid)
{
	struct proc_fds fds = { 0 };
	int r = proc_fds_list(pid, &fds);

	if (r)
		return 0;	/* the capture says why */
	for (size_t i = 0; i < fds.n && !r; i++)
		if (!strcmp(fds.v[i].target, UFFD_LINK) && uffd_held_elsewhere(pid, fds.v[i].fd)) {
			pr_err("cannot capture pid %d yet: it is still paging in from its "
			       "snapshot (fd %d is a userfaultfd)", (int)pid, fds.v[i].fd);
			r = -EINPROGRESS;
		}
	proc_fds_free(&fds);
	return r;
}

void dump_mark(struct dump_ctx *d, const char *step)
{
	uint64_t now;

	if (!log_enabled(LOG_DEBUG))
		return;
	now = mono_ns();
	if (d->mark_ns && step)
		pr_debug("pid %d: %s %.3f ms", (int)d->pid, step, (now - d->mark_ns) / 1e6);
	d->mark_ns = now;
}

/* Everything read while the process is stopped. */
int dump_capture(struct dump_ctx *d, Cryo__ProcessEntry *pe, Cryo__MmEntry *mm,
		   Cryo__FdsEntry *fe)
{
	int r;

	/* Before any injection: the scratch page injection maps must not be
	 * taken for the process's own memory. */
	r = d->tracked ? dump_track_maps(d) : -EAGAIN;
	if (r == -EAGAIN)
		r = proc_maps_read(d->pid, true, &d->maps);
	if (r) {
		pr_err("pid %d: smaps: %s", (int)d->pid, strerror(-r));
		return r;
	}
	dump_mark(d, "maps");
	if ((r = dump_mm_plan(d, mm)))
		return r;
	if (!d->base)
		for (size_t i = 0; i < d->nvmas; i++)
			if (d->vmas[i].store_pages)
				progress_plan(d->prog, d->vmas[i].v->rss_kb * 1024);
	dump_mark(d, "mm plan");
	if ((r = dump_fds(d, fe)))
		return r;
	dump_mark(d, "fds");
	if ((r = dump_core(d, pe)))
		return r;
	dump_mark(d, "core");
	/* The exact program break (stat has only its start). */
	{
		uint64_t a[6] = { 0 };
		int64_t brk;

		r = proc_inject_syscall(d->ctl, SYS_brk, a, &brk);
		if (r)
			return r;
		if (brk > 0)
			mm->brk = (uint64_t)brk;
	}
	if ((r = fault_fire(FP_DUMP_PAGES_EIO)))
		return r;
	dump_mark(d, "brk");
	if (d->tracked && (r = dump_track_select(d)))
		return r;
	dump_mark(d, "select");
	r = dump_mm_pages(d);
	dump_mark(d, "pages");
	/* Arm for the next snapshot while nothing can be written (not for
	 * freeze: the process ends). Not being able to is no failure. */
	if (!r && d->track && !d->tracked && d->defer_pages)
		(void)dump_track_arm(d);
	return r;
}

static size_t proc_ctl_find_leader(const struct dump_ctx *d)
{
	int i = proc_ctl_find(d->ctl, d->pid);

	return i < 0 ? d->ctl->n : (size_t)i;
}

void dump_end_process(struct dump_ctx *d)
{
	int status;

	if (kill(d->pid, SIGKILL) < 0 && errno != ESRCH)
		pr_warn("pid %d: kill: %s", (int)d->pid, strerror(errno));
	/* As its tracer we see each thread die and must collect that, or its
	 * parent could not reap it while we live. Nothing is left to undo in
	 * a dead process (its scratch pages went with it). */
	/* Other threads first: the leader is reported only after all of them
	 * are collected, and they wait for us, their tracer, to do it. */
	for (size_t k = 0; k <= d->ctl->n; k++) {
		size_t i = k < d->ctl->n ? k : proc_ctl_find_leader(d);
		pid_t tid;

		if (i >= d->ctl->n || d->ctl->t[i].gone)
			continue;
		tid = d->ctl->t[i].tid;
		if (k < d->ctl->n && tid == d->pid)
			continue;
		proc_collect_exit(tid);
		d->ctl->t[i].gone = true;
		d->ctl->t[i].stopped = false;
		d->ctl->t[i].seized = false;
	}
	d->ctl->scratch_code = d->ctl->scratch_data = 0;
	proc_release(d->ctl);
	d->ctl = NULL;
	/* Reap it if it is our own child (tests, `cryo run` later). */
	while (waitpid(d->pid, &status, WNOHANG) < 0 && errno == EINTR)
		;
}

/* Start the snapshot's transaction: on top of the newest snapshot when an
 * incremental one was asked for and that snapshot is of this process
 * (opened after the begin, which may clean, and pinned until the end),
 * else from nothing. */
static int begin(struct dump_ctx *d, struct store *s, int incremental)
{
	int r = store_txn_begin(s, d->name, incremental ? STORE_SNAP_NEWEST : 0, &d->txn);

	if (!r && incremental) {
		r = dump_incr_open(d, s, d->vpid);
		if (!r && !d->base) {
			/* no usable base: a full snapshot, with nothing of the old */
			store_txn_abort(d->txn);
			d->txn = NULL;
			r = store_txn_begin(s, d->name, 0, &d->txn);
		} else if (!r) {
			r = dump_incr_begin(d);
		}
	}
	if (r)
		pr_err("group %s: starting a snapshot: %s", d->name, store_strerror(r));
	return r;
}

static int has_children(pid_t pid)
{
	pid_t *kids = NULL;
	size_t n = 0;

	if (proc_children(pid, &kids, &n))
		return 0;
	free(kids);
	return n > 0;
}

/* -ESTALE from dump_once: the tracker failed before the process was
 * stopped; dump_group tries again comparing pages (T1, T5). */
static int dump_once(struct store *s, const char *name, pid_t pid, const struct dump_opts *o,
		     struct dump_result *res, int *tree)
{
	struct fd_dump_ctx fdc = { 0 };
	struct dump_shm shm = { 0 };
	Cryo__ProcessEntry pe = CRYO__PROCESS_ENTRY__INIT;
	Cryo__MmEntry mm = CRYO__MM_ENTRY__INIT;
	Cryo__FdsEntry fe = CRYO__FDS_ENTRY__INIT;
	struct dump_ctx d = { .name = name, .pid = pid, .space = 1, .fdc = &fdc, .shm = &shm,
			      .prog = o ? o->progress : NULL };
	uint64_t t0 = mono_ns(), t_stop = 0, stopped = 0, time_ns, snap_no = 0;
	int freeze = o && o->freeze, released = 0, r;

	if (res)
		memset(res, 0, sizeof(*res));
	if (pid <= 0 || !name)
		return -EINVAL;
	d.chunks_tail = &d.chunks;
	d.track = o ? o->track : NULL;
	/* the pids the image records, before an incremental base is chosen */
	r = dump_check_target(pid);
	if (!r)
		r = dump_ns_setup(&d, -1);
	if (r)
		return r;
	r = begin(&d, s, o && o->base);
	if (r)
		return r;
	/* snap: copy memory out while stopped, write it once running again;
	 * freeze: the process waits for the commit anyway, so stream. */
	d.defer_pages = !freeze;
	fdc.defer = !freeze;
	fdc.txn = d.txn;
	fdc.freeze = freeze;
	fdc.tcp_established = freeze && o->tcp_established;
	fdc.pid = pid;
	fdc.next_space = IMAGE_SPACE_FILES;

	r = dump_check_target(pid);
	if (!r)
		r = dump_check_paged_in(pid);
	if (r)
		goto out;
	d.tracked = dump_track_usable(&d);
	dump_mark(&d, NULL);
	if (d.tracked && dump_track_precopy(&d)) {
		r = -ESTALE;
		goto out;
	}
	dump_mark(&d, d.tracked ? "pre-copy" : NULL);
	r = dump_mm_prepare(&d);
	if (r) {
		pr_err("group %s: no memory to read pid %d into", name, (int)pid);
		goto out;
	}
	r = proc_seize(pid, &d.ctl);
	if (r) {
		pr_err("group %s: cannot stop pid %d: %s", name, (int)pid, strerror(-r));
		goto out;
	}
	t_stop = mono_ns();
	time_ns = wall_ns();
	dump_mark(&d, "seize");
	/* A child forked before the stop makes this a tree: dump_tree. */
	if (has_children(pid)) {
		*tree = 1;
		r = -EAGAIN;
		goto out;
	}
	r = dump_capture(&d, &pe, &mm, &fe);
	if (!r)
		r = dump_fds_share(&d, &fe, 1);
	if (!r)
		r = dump_shm_check(&shm, name);
	if (r)
		goto out;
	if (!freeze) {
		dump_mark(&d, "fds share");
		fd_dump_thaw(&fdc);	/* connections out of repair mode before it runs */
		r = proc_release(d.ctl);
		d.ctl = NULL;
		released = 1;
		stopped = mono_ns() - t_stop;
		dump_mark(&d, "release");
		if (r) {
			pr_err("group %s: releasing pid %d: %s", name, (int)pid, strerror(-r));
			goto out;
		}
	} else {
		stopped = mono_ns() - t_stop;
	}
	r = dump_mm_store(&d);
	if (!r)
		r = fd_contents_flush(&fdc);
	if (!r)
		r = dump_incr_finish(&d);
	if (!r && d.tracked)
		r = dump_track_finish(&d);
	if (!r)
		r = dump_put_records(&d, &pe, &mm, &fe);
	if (!r)
		r = dump_put_group(&d, 1, NULL, 0, o, time_ns, stopped);
	if (r)
		goto out;
	r = store_txn_commit(d.txn, &snap_no);
	d.txn = NULL;
	if (r) {
		pr_err("group %s: committing the snapshot: %s", name, store_strerror(r));
		goto out;
	}
	dump_track_committed(&d, snap_no);
	if (freeze) {
		dump_end_process(&d);
		fd_dump_frozen(&fdc);
		stopped = mono_ns() - t_stop;
	}
	if (res) {
		res->snap_no = snap_no;
		res->pages = d.pages + d.precopied + fdc.content_pages;
		res->unchanged = d.unchanged;
		res->incremental = d.base != NULL;
		res->tracked = d.tracked;
		res->precopied = d.precopied;
		res->bytes = d.bytes;
		res->stopped_ns = stopped;
		res->total_ns = mono_ns() - t0;
	}
out:
	if (d.txn)
		store_txn_abort(d.txn);
	if (d.ctl) {
		int rr;

		fd_dump_thaw(&fdc);
		rr = proc_release(d.ctl);

		if (rr)
			pr_err("group %s: releasing pid %d: %s", name, (int)pid, strerror(-rr));
	}
	(void)released;
	/* T5; and a frozen process is tracked no more */
	if (d.track && (r || freeze))
		dump_track_disarm(d.track);
	dump_ctx_free(&d, &fe);
	fd_dump_ctx_fini(&fdc);
	dump_shm_free(&shm);
	return r;
}

void dump_ctx_free(struct dump_ctx *d, Cryo__FdsEntry *fe)
{
	dump_track_ctx_free(d);
	dump_incr_free(d);
	dump_mm_free(d);
	dump_fds_free(fe);
	proc_maps_free(&d->maps);
	dump_arena_free(&d->a);
}

/* A zombie in a tree is usually a moment from being reaped by its parent. */
#define TREE_TRIES	40
#define TREE_RETRY_US	50000

static int dump_tree_retry(struct store *s, const char *name, pid_t pid,
			   const struct dump_opts *o, struct dump_result *res)
{
	int r = -EAGAIN;

	for (int i = 0; i < TREE_TRIES && r == -EAGAIN; i++) {
		if (i)
			usleep(TREE_RETRY_US);
		r = dump_tree(s, name, pid, o, res);
	}
	return r;
}

int dump_group(struct store *s, const char *name, pid_t pid, const struct dump_opts *o,
	       struct dump_result *res)
{
	int tree = has_children(pid), r;

	if (tree)
		return dump_tree_retry(s, name, pid, o, res);
	r = dump_once(s, name, pid, o, res, &tree);
	if (r == -ESTALE) {
		pr_info("group %s: write tracking failed; comparing pages instead", name);
		r = dump_once(s, name, pid, o, res, &tree);	/* the tracker is disarmed now */
	}
	if (tree)
		r = dump_tree_retry(s, name, pid, o, res);
	return r;
}
