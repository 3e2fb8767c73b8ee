/* Incremental snapshots from tracked writes (userfaultfd-WP + PAGEMAP_SCAN,
 * proc/dirty.c), with pre-copy.
 *
 * A tracker is armed while the process is stopped for a snapshot S: every
 * private mapping is write-protected in async mode (a write just clears
 * the bit, the process never waits). A later snapshot on top of S needs
 * only the pages written since: a scan reports them and protects them
 * again, in one call.
 *
 * Pre-copy: most written pages are read while the process runs (scan,
 * read, put), in rounds until a round finds little. Once it is stopped,
 * one more scan gives only what was written in between; those pages are
 * read again and overwrite their pre-copied copies (a page put twice in
 * one transaction keeps the last). The same scan says which pages of the
 * registered ranges are gone (no PTE, or a file's page): everything else
 * there is resident, with no resident-set walk (d->known, d->gone; only
 * what is new gets one). The process is stopped for its state (maps, fds,
 * registers), that scan (one page-table walk) and the pages written
 * during the pre-copy, not for all of its writes.
 *
 * Why a tracked snapshot equals a full capture of the same instant:
 *  T1 its base was captured at or after the tracker's last scan, of the
 *     same address space: same process (its pidfd has not exited), base
 *     number >= the snapshot the last scan belongs to. An exec makes a
 *     new address space whose mappings the tracker cannot register: the
 *     snapshot fails over to comparing pages (dump.c retries untracked).
 *  T2 a page resident at the stop and not reported written is the base's
 *     (the kernel clears the WP bit on every write, also through
 *     process_vm_writev or a COW break); a reported one is read again.
 *  T3 base pages and pre-copied pages that are not resident at the stop
 *     (unmapped, DONTNEED'd, remapped away, the file's page again) are
 *     dropped: the capture's covered runs say what is resident
 *     (dump_incr_finish, dump_track_finish). In a registered range a page
 *     without a PTE is never protected, so every scan returns it (gone);
 *     a file's page is protected once met, so the pre-copy's ones are
 *     kept for the stop (pre_gone).
 *  T4 a mapping not registered yet (new since the last scan) is read
 *     whole: it has no WP bits to tell writes by.
 *  T5 any failure after a scan disarms the tracker: the protection that
 *     scan reset is lost, so the next snapshot compares pages instead.
 *
 * At the stop, the mappings come from /proc/PID/maps, and their VmFlags
 * from the pre-copy's smaps when the list is the same mapping for mapping:
 * smaps walks every page table to count RSS, 4 ms per GiB here, while the
 * process waits. A flag changed on a whole mapping in between (madvise,
 * mlock; a change on part of one splits it and is seen) is taken at the
 * next snapshot. RSS is not known then, so no mapping is skipped as empty:
 * the scan finds its pages, or none, at the cost of its page tables. */
#define LOG_PREFIX "dump: "
#include "dump/dump_int.h"
#include "common/log.h"
#include "proc/dirty.h"
#include "proc/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE		4096ull
#define PRE_BATCH	(4u << 20)	/* bytes read per process_vm_readv */
#define PRE_RANGES	256u		/* ranges per read */
#define PRE_RANGE_MAX	(1u << 20)	/* proc_mem_readv's bound per range */
#define PRE_ROUNDS	4u		/* pre-copy rounds at most */
#define PRE_SMALL	512u		/* pages written in a round: stop there */

struct dump_track {
	struct proc_dirty *dirty;	/* NULL: not armed */
	pid_t pid;
	int pidfd;			/* the armed process: readable once it exits */
	uint64_t snap_no;		/* the snapshot the last scan belongs to */
};

struct dump_track *dump_track_new(void)
{
	struct dump_track *t = calloc(1, sizeof(*t));

	if (t)
		t->pidfd = -1;
	return t;
}

void dump_track_disarm(struct dump_track *t)
{
	if (!t)
		return;
	proc_dirty_close(t->dirty);
	t->dirty = NULL;
	if (t->pidfd >= 0)
		close(t->pidfd);
	t->pidfd = -1;
	t->snap_no = 0;
}

void dump_track_free(struct dump_track *t)
{
	dump_track_disarm(t);
	free(t);
}

bool dump_track_armed(const struct dump_track *t)
{
	return t && t->dirty && t->snap_no;
}

static int process_exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) != 0;
}

int dump_track_usable(struct dump_ctx *d)
{
	struct dump_track *t = d->track;
	struct store_snap_info info;

	if (!dump_track_armed(t))
		return 0;
	if (d->base && t->pid == d->pid && !process_exited(t->pidfd)) {
		store_snap_info(d->base, &info);
		if (info.no >= t->snap_no)
			return 1;
	}
	dump_track_disarm(t);
	return 0;
}

/* Only private memory goes to the process's page space; written pages of
 * shared mappings are saved another way (objects) or not at all (files). */
static int precopy_wanted(const struct proc_vma *v)
{
	if (v->shared)
		return 0;
	return !v->special || !strcmp(v->path, "[heap]") || !strcmp(v->path, "[stack]") ||
	       !strncmp(v->path, "[anon:", 6);
}

struct pre_batch {
	struct proc_mem_range r[PRE_RANGES];
	size_t n, bytes;
	uint8_t *buf;
};

static int pre_flush(struct dump_ctx *d, struct pre_batch *b)
{
	const uint8_t *p = b->buf;
	int r;

	if (!b->n)
		return 0;
	/* It runs: a range unmapped meanwhile fails the read. Read it at the
	 * stop instead (its WP bits were reset by the scan: T5 otherwise). */
	if (proc_mem_readv(d->pid, b->r, b->n, b->buf)) {
		for (size_t i = 0; i < b->n; i++) {
			r = dump_runs_push(&d->pending, b->r[i].addr / PAGE,
					   (b->r[i].addr + b->r[i].len) / PAGE);
			if (r)
				return r;
		}
		b->n = b->bytes = 0;
		return 0;
	}
	for (size_t i = 0; i < b->n; i++) {
		for (uint64_t a = b->r[i].addr; a < b->r[i].addr + b->r[i].len; a += PAGE) {
			r = store_txn_put_page(d->txn, STORE_KEY(d->space, a / PAGE), p);
			if (r)
				return r;
			p += PAGE;
		}
		r = dump_runs_push(&d->pre, b->r[i].addr / PAGE,
				   (b->r[i].addr + b->r[i].len) / PAGE);
		if (r)
			return r;
	}
	d->bytes += b->bytes;
	b->n = b->bytes = 0;
	return 0;
}

static int pre_add(struct dump_ctx *d, struct pre_batch *b, uint64_t a, uint64_t end)
{
	while (a < end) {
		uint64_t len = end - a;

		if (len > PRE_RANGE_MAX)
			len = PRE_RANGE_MAX;
		if (len > PRE_BATCH - b->bytes)
			len = PRE_BATCH - b->bytes;
		b->r[b->n].addr = a;
		b->r[b->n].len = len;
		b->n++;
		b->bytes += len;
		a += len;
		if (b->n == PRE_RANGES || b->bytes == PRE_BATCH) {
			int r = pre_flush(d, b);

			if (r)
				return r;
		}
	}
	return 0;
}

/* The written runs that lie in private mappings of m, cut to them. */
static int pre_read(struct dump_ctx *d, const struct proc_maps *m, const struct proc_range *w,
		    size_t nw)
{
	struct pre_batch *b = malloc(sizeof(*b));
	size_t vi = 0;
	int r = 0;

	if (!b)
		return -ENOMEM;
	b->n = b->bytes = 0;
	b->buf = malloc(PRE_BATCH);
	if (!b->buf) {
		free(b);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nw && !r; i++) {
		while (vi < m->n && m->v[vi].end <= w[i].start)
			vi++;
		for (size_t k = vi; k < m->n && m->v[k].start < w[i].end && !r; k++) {
			uint64_t s = w[i].start > m->v[k].start ? w[i].start : m->v[k].start;
			uint64_t e = w[i].end < m->v[k].end ? w[i].end : m->v[k].end;

			/* process_vm_readv cannot read what the process may not
			 * (PROT_NONE, exec-only): /proc/PID/mem at the stop can */
			if (precopy_wanted(&m->v[k]) && !(m->v[k].prot & PROC_PROT_READ))
				r = dump_runs_push(&d->pending, s / PAGE, e / PAGE);
			else if (precopy_wanted(&m->v[k]))
				r = pre_add(d, b, s, e);
		}
	}
	if (!r)
		r = pre_flush(d, b);
	free(b->buf);
	free(b);
	return r;
}

/* Push ranges (addresses) as vpn runs. */
static int push_ranges(struct dump_runs *c, const struct proc_range *v, size_t n)
{
	int r = 0;

	for (size_t i = 0; i < n && !r; i++)
		r = dump_runs_push(c, v[i].start / PAGE, v[i].end / PAGE);
	return r;
}

/* One round: smaps, register what is new (read whole at the stop, T4),
 * scan, read what was written. *written: pages read this round. */
static int precopy_round(struct dump_ctx *d, struct proc_maps *m, uint64_t *written)
{
	struct proc_dirty_found f = { 0 };
	struct proc_range *added = NULL;
	size_t nadded = 0;
	int r;

	*written = 0;
	proc_maps_free(m);
	r = proc_maps_read(d->pid, true, m);
	if (!r)
		r = proc_dirty_register_maps(d->track->dirty, m, &added, &nadded,
					     PROC_DIRTY_RUNNING);
	for (size_t i = 0; i < nadded && !r; i++)
		r = dump_runs_push(&d->pending, added[i].start / PAGE, added[i].end / PAGE);
	if (!r)
		r = proc_dirty_scan_found(d->track->dirty, 0, UINT64_MAX, 0, &f);
	for (size_t i = 0; i < f.nfresh && !r; i++)	/* new too */
		r = dump_runs_push(&d->pending, f.fresh[i].start / PAGE, f.fresh[i].end / PAGE);
	/* a file's pages met now are protected: the stop will not see them */
	if (!r)
		r = push_ranges(&d->pre_gone, f.gone, f.ngone);
	for (size_t i = 0; i < f.nwritten; i++)
		*written += (f.written[i].end - f.written[i].start) / PAGE;
	if (!r)
		r = pre_read(d, m, f.written, f.nwritten);
	/* what is registered now (the kernel's "uw"), for dump_track_maps */
	for (size_t i = 0; i < nadded && !r; i++)
		for (size_t k = 0; k < m->n; k++)
			if (m->v[k].start >= added[i].start && m->v[k].end <= added[i].end)
				m->v[k].vmflags |= PROC_VMF(UW);
	free(added);
	proc_dirty_found_free(&f);
	return r;
}

/* Rounds until what one round found written is small enough to read at
 * the stop quickly, or stops shrinking (a process writing faster than we
 * read), or PRE_ROUNDS: each round walks the page tables once more. The
 * last round's smaps is the one the stop compares its mappings with. */
int dump_track_precopy(struct dump_ctx *d)
{
	struct proc_maps m = { 0 };
	uint64_t written, prev = UINT64_MAX;
	int r = 0;

	for (unsigned round = 0; round < PRE_ROUNDS && !r; round++) {
		r = precopy_round(d, &m, &written);
		if (!r)
			pr_debug("group %s: pre-copy round %u: %" PRIu64 " pages written", d->name,
				 round + 1, written);
		if (written <= PRE_SMALL || written > prev / 2)
			break;
		prev = written;
	}
	if (r) {
		pr_err("group %s: pre-copy of pid %d: %s", d->name, (int)d->pid, store_strerror(r));
		proc_maps_free(&m);
	} else {
		d->pre_maps = m;
	}
	return r;
}

static int same_mapping(const struct proc_vma *a, const struct proc_vma *b)
{
	return a->start == b->start && a->end == b->end && a->pgoff == b->pgoff &&
	       a->inode == b->inode && a->dev_major == b->dev_major &&
	       a->dev_minor == b->dev_minor && a->prot == b->prot && a->shared == b->shared &&
	       a->deleted == b->deleted && !strcmp(a->path, b->path);
}

int dump_track_maps(struct dump_ctx *d)
{
	const struct proc_maps *pre = &d->pre_maps;
	int r = proc_maps_read(d->pid, false, &d->maps);

	if (r)
		return r;
	if (d->maps.n != pre->n)
		goto slow;
	for (size_t i = 0; i < pre->n; i++)
		if (!pre->v[i].has_smaps || !same_mapping(&d->maps.v[i], &pre->v[i]))
			goto slow;
	for (size_t i = 0; i < pre->n; i++) {
		struct proc_vma *v = &d->maps.v[i];

		v->has_smaps = true;
		v->vmflags = pre->v[i].vmflags;
		v->vmflags_unknown = pre->v[i].vmflags_unknown;
		/* unknown: never "empty" (dump_mm.c skips rss 0 + swap 0) */
		v->rss_kb = v->anon_kb = v->swap_kb = UINT64_MAX;
	}
	return 0;
slow:
	proc_maps_free(&d->maps);
	return -EAGAIN;
}

/* Stopped. One scan of every registered range says what was written since
 * the pre-copy (read now) and what is not resident (T3: dropped); ranges
 * new since the pre-copy, or whose pre-copy read failed, are read whole
 * and their residency is walked (dump_mm_pages). */
int dump_track_select(struct dump_ctx *d)
{
	struct proc_dirty *pd = d->track->dirty;
	struct proc_dirty_found f = { 0 };
	struct proc_range *added = NULL;
	struct dump_runs reg = { 0 }, fresh = { 0 }, gone = { 0 };
	size_t nadded = 0;
	int r = proc_dirty_register_maps(pd, &d->maps, &added, &nadded, 0);

	dump_mark(d, "select: register");
	if (!r)
		r = proc_dirty_scan_found(pd, 0, UINT64_MAX, PROC_DIRTY_GONE, &f);
	dump_mark(d, "select: scan");
	if (!r)
		r = push_ranges(&fresh, added, nadded);
	if (!r)
		r = push_ranges(&fresh, f.fresh, f.nfresh);
	for (size_t i = 0; i < d->pending.n && !r; i++)
		r = dump_runs_push(&fresh, d->pending.r[i].first, d->pending.r[i].end);
	for (size_t i = 0; i < pd->n && !r; i++)
		r = dump_runs_push(&reg, pd->r[i].start / PAGE, pd->r[i].end / PAGE);
	/* gone: what the scan found so, and the file's pages the pre-copy
	 * met (protected since) unless written after all */
	if (!r)
		r = push_ranges(&gone, f.gone, f.ngone);
	for (size_t i = 0; i < d->pre_gone.n && !r; i++)
		r = dump_runs_push(&gone, d->pre_gone.r[i].first, d->pre_gone.r[i].end);
	/* read: what was written, and all that is new */
	if (!r)
		r = push_ranges(&d->sel, f.written, f.nwritten);
	if (!r) {
		dump_runs_normalize(&fresh);
		dump_runs_normalize(&reg);
		dump_runs_normalize(&gone);
		dump_runs_normalize(&d->sel);
		r = dump_runs_subtract(&reg, &fresh, &d->known);
	}
	if (!r)
		r = dump_runs_subtract(&gone, &d->sel, &d->gone);
	for (size_t i = 0; i < fresh.n && !r; i++)
		r = dump_runs_push(&d->sel, fresh.r[i].first, fresh.r[i].end);
	if (!r) {
		dump_runs_normalize(&d->sel);
		d->sel_at = d->known_at = 0;
	} else {
		pr_err("group %s: written pages of pid %d: %s", d->name, (int)d->pid,
		       store_strerror(r));
	}
	free(added);
	proc_dirty_found_free(&f);
	dump_runs_free(&reg);
	dump_runs_free(&fresh);
	dump_runs_free(&gone);
	return r;
}

int dump_track_arm(struct dump_ctx *d)
{
	struct dump_track *t = d->track;
	int r;

	dump_track_disarm(t);
	t->pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
	if (t->pidfd < 0)
		return -errno;
	r = proc_dirty_open(d->ctl, &t->dirty);
	if (!r)
		r = proc_dirty_register_maps(t->dirty, &d->maps, NULL, NULL, 0);
	if (r) {
		pr_warn("group %s: cannot track writes of pid %d (%s): the next snapshots "
			"compare pages instead", d->name, (int)d->pid, strerror(-r));
		dump_track_disarm(t);
		return r;
	}
	t->pid = d->pid;
	return 0;
}

void dump_track_committed(struct dump_ctx *d, uint64_t snap_no)
{
	if (d->track && d->track->dirty)
		d->track->snap_no = snap_no;
}

int dump_track_selected(struct dump_ctx *d, uint64_t vpn)
{
	const struct dump_runs *c = &d->sel;

	while (d->sel_at < c->n && c->r[d->sel_at].end <= vpn)
		d->sel_at++;
	return d->sel_at < c->n && c->r[d->sel_at].first <= vpn;
}

/* T3 for pre-copied pages: what was put before the stop but is not
 * resident at it goes, as a base page not covered would. */
int dump_track_finish(struct dump_ctx *d)
{
	const struct dump_runs *cov = &d->covered;
	size_t k = 0;
	int r = 0;

	dump_runs_normalize(&d->pre);
	d->precopied = 0;	/* pages, each once however many rounds read it */
	for (size_t i = 0; i < d->pre.n; i++)
		d->precopied += d->pre.r[i].end - d->pre.r[i].first;
	for (size_t i = 0; i < d->pre.n && !r; i++) {
		uint64_t a = d->pre.r[i].first, end = d->pre.r[i].end;

		while (a < end && !r) {
			while (k < cov->n && cov->r[k].end <= a)
				k++;
			if (k < cov->n && cov->r[k].first <= a) {
				a = cov->r[k].end;	/* covered up to there */
				continue;
			}
			uint64_t stop = k < cov->n && cov->r[k].first < end ? cov->r[k].first : end;

			r = store_txn_drop_pages(d->txn, STORE_KEY(d->space, a), stop - a);
			a = stop;
		}
	}
	return r;
}

void dump_track_ctx_free(struct dump_ctx *d)
{
	dump_runs_free(&d->sel);
	dump_runs_free(&d->pre);
	dump_runs_free(&d->pending);
	dump_runs_free(&d->known);
	dump_runs_free(&d->gone);
	dump_runs_free(&d->pre_gone);
	proc_maps_free(&d->pre_maps);
}
