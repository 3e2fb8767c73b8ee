/* The pager: userfaultfd MISSING faults served from a snapshot, events of
 * the process followed, the rest prefetched, then the ranges let go.
 *
 * Three threads while prefetching (pager_run's, and two it starts and
 * ends before it returns):
 *
 *   faults (the caller's thread) walks the index first, then polls the
 *   uffds, reads every message, follows the events and serves each fault
 *   at once with a read of its own page: a fault waits for its read, not
 *   for a run of the prefetch;
 *   the reader picks runs (hinted pages first, then vpn order, which for
 *   a full snapshot is the log's), plans them, asks the disk for AHEAD of
 *   them (store_plan_readahead) and reads the oldest into a free buffer;
 *   the copier copies each run read, a slice at a time. Reading (pread,
 *   checksums) and copying (UFFDIO_COPY) cost about the same: on two
 *   cores they go side by side.
 *
 * The ranges are changed only by the faults thread (it reads the events),
 * under mu; it looks them up without mu. The copier looks up where a
 * slice goes and copies it under mu, and the faults thread reads each
 * batch of messages and acts on its events under mu (read_proc), so a
 * copy never uses ranges older than the events the kernel let go of (a
 * copy racing an event not read yet is refused by the kernel: -EAGAIN;
 * one between the read and our handling would not be). What is in
 * (done[], nwanted), gone and the stats are atomics: a fault never
 * waits for mu, so never for a copy of the prefetch. The index is
 * walked (collect_some) by the faults thread before the others start.
 * The queues of runs, the free buffers, stop and the threads' error are
 * under mu (with qcv). The store handle is guarded by smu (and the
 * owner's lock): index walks and plans take it; reading page data
 * (store_plan_fetch) does not, so no thread waits for another's disk.
 * Lock order: mu, then smu. */
#define LOG_PREFIX "pager: "
#include "pager/pager.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE		4096ull
#define RUN_MAX		128		/* pages per prefetch run: one plan, one read */
#define SLICE		32		/* pages copied per hold of mu */
#define AHEAD		4		/* runs asked of the disk ahead of the one read */
#define NBUF		3		/* runs read and waiting for their copy, or
					 * being copied */
#define TOUCHED_MAX	65536
#define COLLECT_CHUNK	16384		/* index entries walked between faults */
#define LAT_MAX		(1u << 20)
#define POLL_MS		100		/* faults thread: longest wait in poll */
#define EVENT_SLOW_US	50000		/* pager.event.slow: an event waits this long */
#define UFFD_FEATURES	(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | \
			 UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP)

/* [start, end) of the process now holds what the image had at src; zero:
 * the process dropped it (DONTNEED): faults get zeros, nothing is copied. */
struct pg_range {
	uint64_t start, end, src;
	bool zero;
};

struct pg_proc {
	int uffd;
	uint32_t space;
	struct pg_range *r;		/* by start; written by the faults thread */
	size_t nr, rcap;
	uint64_t *data;			/* image vpns of stored pages, ascending;
					 * fixed once collected */
	uint8_t *done;			/* per data[]: in, or no longer wanted (atomic) */
	size_t ndata, nwanted, cursor, data_cap;
	size_t plan_next;		/* reader: data[] planned up to here (mu) */
	bool gone;			/* atomic */
	bool unreg;			/* its ranges are unregistered (faults thread) */
	/* data[] is collected from the index a chunk at a time, between
	 * faults, so the first faults are served at once (attach returns
	 * before the walk); until it is, done[] does not exist and the
	 * ranges alone say what is wanted (a dropped range is zero). The
	 * faults thread's, under mu. */
	struct pager_range *todo;	/* the attach ranges, image addresses */
	size_t ntodo, todo_pos;
	uint64_t *early;		/* vpns faulted in before it was collected */
	size_t nearly, early_cap;
	uint64_t todo_next;		/* next image vpn to walk in todo[todo_pos] */
	bool collected;
};

/* A fault whose copy met an mm change (UFFDIO_COPY: EAGAIN while an event
 * such as a fork is not read yet): served again once events are read. */
struct pending {
	struct pg_proc *pp;
	uint64_t addr;
};
#define RETRY_MAX	1024

/* A run of the prefetch: data[i, i + n) of pp (consecutive image pages),
 * planned and asked of the disk (pl), then read into buf. */
struct run {
	struct pg_proc *pp;
	size_t i, n;
	struct store_plan *pl;
	uint8_t *buf;
};

struct pager {
	struct store_snap *sn;
	pthread_mutex_t *lock;		/* the owner's, around store calls */
	pthread_mutex_t mu;		/* shared state: see the top */
	pthread_mutex_t smu;		/* the store handle between our threads */
	struct pg_proc **procs;		/* grows under mu (fork) */
	size_t nprocs;
	struct pager_stats st;		/* atomic adds; read under mu */
	/* the reader and copier threads */
	pthread_t copier, reader;
	bool thr_on;			/* faults thread: started, not joined */
	bool stop, thr_done, busy;	/* mu; busy: the copier holds a run */
	int thr_err;			/* mu */
	pthread_cond_t qcv;		/* with mu: a queue or stop changed */
	int evfd;			/* written when the copier ends */
	struct run q[AHEAD];		/* planned, asked of the disk (mu) */
	size_t nq;
	struct run ready[NBUF];		/* read, for the copier (mu) */
	size_t nready;
	uint8_t *bufmem[NBUF];		/* RUN_MAX pages each */
	uint8_t *bufs[NBUF];		/* free ones (mu) */
	size_t nfree;
	uint64_t *hint;			/* the order to prefetch in first */
	size_t nhint, hint_pos;
	uint32_t hint_space;
	/* the faults thread */
	uint8_t *fbuf;			/* one page */
	uint64_t *touched;
	size_t ntouched;
	uint64_t *lat;
	size_t nlat;
	bool forked;			/* a new uffd arrived during this drain */
	struct pending retry[RETRY_MAX];	/* faults to serve again */
	size_t nretry;
	pager_fork_fn fork_fn;		/* told of each fork (pager_on_fork): faults thread */
	void *fork_arg;
};

static void lock(struct pager *p)
{
	pthread_mutex_lock(&p->mu);
}

static void unlock(struct pager *p)
{
	pthread_mutex_unlock(&p->mu);
}

static void store_lock(struct pager *p)
{
	pthread_mutex_lock(&p->smu);
	if (p->lock)
		pthread_mutex_lock(p->lock);
}

static void store_unlock(struct pager *p)
{
	if (p->lock)
		pthread_mutex_unlock(p->lock);
	pthread_mutex_unlock(&p->smu);
}

/* What is in (done[], nwanted), gone and the stats change in both threads
 * without mu: a fault must not wait for a copy of the prefetch. A page's
 * done goes 0 to 1 once, and nwanted counts those still 0. */
static bool is_done(const struct pg_proc *pp, size_t i)
{
	return __atomic_load_n(&pp->done[i], __ATOMIC_RELAXED);
}

static void set_done(struct pg_proc *pp, size_t i)
{
	if (!__atomic_exchange_n(&pp->done[i], 1, __ATOMIC_RELAXED))
		__atomic_fetch_sub(&pp->nwanted, 1, __ATOMIC_RELAXED);
}

static size_t nwanted(const struct pg_proc *pp)
{
	return __atomic_load_n(&pp->nwanted, __ATOMIC_RELAXED);
}

static bool is_gone(const struct pg_proc *pp)
{
	return __atomic_load_n(&pp->gone, __ATOMIC_RELAXED);
}

static void set_gone(struct pg_proc *pp)
{
	__atomic_store_n(&pp->gone, true, __ATOMIC_RELAXED);
}

#define ST_ADD(p, field, n)	__atomic_fetch_add(&(p)->st.field, (n), __ATOMIC_RELAXED)

/* ---- userfaultfd set-up ---- */

int pager_uffd_api(int uffd)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURES };

	if (ioctl(uffd, UFFDIO_API, &api))
		return -errno;
	if ((api.features & UFFD_FEATURES) != UFFD_FEATURES)
		return -ENOTSUP;
	return 0;
}

int pager_uffd_create(int *uffd)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int r;

	if (fd < 0)
		return -errno;
	r = pager_uffd_api(fd);
	if (r) {
		close(fd);
		return r;
	}
	*uffd = fd;
	return 0;
}

int pager_uffd_register(int uffd, uint64_t start, uint64_t end)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = end - start },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	return ioctl(uffd, UFFDIO_REGISTER, &reg) ? -errno : 0;
}

/* ---- ranges ---- */

static int ranges_reserve(struct pg_proc *pp, size_t more)
{
	if (pp->nr + more <= pp->rcap)
		return 0;
	size_t cap = (pp->nr + more) * 2;
	struct pg_range *n = realloc(pp->r, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	pp->r = n;
	pp->rcap = cap;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct pg_range *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

static struct pg_range *range_at(struct pg_proc *pp, uint64_t addr)
{
	size_t lo = 0, hi = pp->nr;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr < pp->r[mid].start)
			hi = mid;
		else if (addr >= pp->r[mid].end)
			lo = mid + 1;
		else
			return &pp->r[mid];
	}
	return NULL;
}

static ssize_t data_index(const struct pg_proc *pp, uint64_t vpn)
{
	size_t lo = 0, hi = pp->ndata;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (pp->data[mid] == vpn)
			return (ssize_t)mid;
		if (pp->data[mid] < vpn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void mark_done(struct pg_proc *pp, uint64_t vpn)
{
	if (!pp->collected) {
		/* kept for when data[] exists (collect_some) */
		if (pp->nearly == pp->early_cap) {
			size_t cap = pp->early_cap ? pp->early_cap * 2 : 256;
			uint64_t *n = realloc(pp->early, cap * sizeof(*n));
			if (!n)
				return;	/* prefetch finds it in anyway (EEXIST) */
			pp->early = n;
			pp->early_cap = cap;
		}
		pp->early[pp->nearly++] = vpn;
		return;
	}
	ssize_t i = data_index(pp, vpn);
	if (i >= 0)
		set_done(pp, (size_t)i);
}

/* The stored pages under [start, end) are no longer wanted. */
static void drop_wanted(struct pg_proc *pp, const struct pg_range *r, uint64_t start, uint64_t end)
{
	if (r->zero || !pp->collected)
		return;
	for (uint64_t a = start; a < end; a += PAGE)
		mark_done(pp, (r->src + (a - r->start)) / PAGE);
}

/* Cut ranges so that none crosses start or end. */
static int split_at(struct pg_proc *pp, uint64_t at)
{
	struct pg_range *r = range_at(pp, at);
	if (!r || r->start == at)
		return 0;
	size_t i = (size_t)(r - pp->r);
	if (ranges_reserve(pp, 1))
		return -ENOMEM;
	r = &pp->r[i];
	struct pg_range tail = { at, r->end, r->src + (at - r->start), r->zero };
	r->end = at;
	memmove(&pp->r[i + 2], &pp->r[i + 1], (pp->nr - i - 1) * sizeof(*pp->r));
	pp->r[i + 1] = tail;
	pp->nr++;
	return 0;
}

static int on_remove(struct pg_proc *pp, uint64_t start, uint64_t end, bool unmap)
{
	int r = split_at(pp, start);
	if (!r)
		r = split_at(pp, end);
	if (r)
		return r;
	size_t k = 0;
	for (size_t i = 0; i < pp->nr; i++) {
		struct pg_range *g = &pp->r[i];
		if (g->start >= start && g->end <= end) {
			drop_wanted(pp, g, g->start, g->end);
			g->zero = true;
			if (unmap)
				continue;	/* gone from the process */
		}
		pp->r[k++] = *g;
	}
	pp->nr = k;
	return 0;
}

static int on_remap(struct pg_proc *pp, uint64_t from, uint64_t to, uint64_t len)
{
	int r = split_at(pp, from);
	if (!r)
		r = split_at(pp, from + len);
	if (r)
		return r;
	for (size_t i = 0; i < pp->nr; i++) {
		struct pg_range *g = &pp->r[i];
		if (g->start >= from && g->end <= from + len) {
			g->start = g->start - from + to;
			g->end = g->end - from + to;
		}
	}
	qsort(pp->r, pp->nr, sizeof(*pp->r), range_cmp);
	return 0;
}

/* ---- processes ---- */

static void proc_free(struct pg_proc *pp)
{
	if (!pp)
		return;
	if (pp->uffd >= 0)
		close(pp->uffd);
	free(pp->r);
	free(pp->data);
	free(pp->done);
	free(pp->todo);
	free(pp->early);
	free(pp);
}

/* Under mu: the reader and copier walk procs[]. */
static int add_proc(struct pager *p, struct pg_proc *pp)
{
	struct pg_proc **n = realloc(p->procs, (p->nprocs + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	p->procs = n;
	p->procs[p->nprocs++] = pp;
	ST_ADD(p, processes, 1);
	return 0;
}

static uint64_t addr_of(const struct pg_proc *pp, uint64_t vpn);

static int collect_cb(void *arg, uint64_t key, enum store_page_kind kind)
{
	struct pg_proc *pp = arg;

	if (kind != STORE_PAGE_DATA)
		return 0;	/* holes and zeros need nothing: anon memory is zero */
	if (pp->ndata == pp->data_cap) {
		size_t cap = pp->data_cap ? pp->data_cap * 2 : 4096;
		uint64_t *n = realloc(pp->data, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		pp->data = n;
		pp->data_cap = cap;
	}
	pp->data[pp->ndata++] = key & ((1ull << STORE_VPN_BITS) - 1);
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Under mu. Walk the next chunk of the index; once all is walked, data[]
 * is sorted and done[] made: from then on prefetch knows what is wanted. */
static int collect_some(struct pager *p, struct pg_proc *pp)
{
	if (pp->todo_pos < pp->ntodo) {
		const struct pager_range *t = &pp->todo[pp->todo_pos];
		uint64_t end = (t->src + (t->end - t->start)) / PAGE;	/* exclusive */
		uint64_t last = pp->todo_next + COLLECT_CHUNK < end ? pp->todo_next + COLLECT_CHUNK : end;
		int r;

		store_lock(p);
		r = store_snap_walk(p->sn, STORE_KEY(pp->space, pp->todo_next),
				    STORE_KEY(pp->space, last - 1), collect_cb, pp);
		store_unlock(p);
		if (r)
			return r;
		pp->todo_next = last;
		if (last == end && ++pp->todo_pos < pp->ntodo)
			pp->todo_next = pp->todo[pp->todo_pos].src / PAGE;
		return 0;
	}
	for (size_t i = 1; i < pp->ndata; i++)
		if (pp->data[i - 1] >= pp->data[i]) {
			qsort(pp->data, pp->ndata, sizeof(*pp->data), u64_cmp);
			break;
		}
	pp->done = calloc(pp->ndata + 1, 1);
	if (!pp->done)
		return -ENOMEM;
	pp->nwanted = pp->ndata;
	pp->collected = true;
	free(pp->todo);
	pp->todo = NULL;
	/* what happened meanwhile: pages faulted in, ranges dropped or gone */
	for (size_t k = 0; k < pp->nearly; k++)
		mark_done(pp, pp->early[k]);
	free(pp->early);
	pp->early = NULL;
	pp->nearly = pp->early_cap = 0;
	for (size_t k = 0; k < pp->ndata; k++)
		if (!addr_of(pp, pp->data[k]))
			set_done(pp, k);
	return 0;
}

static int collect_all(struct pager *p, struct pg_proc *pp)
{
	int r = 0;

	while (!r && !pp->collected)
		r = collect_some(p, pp);
	return r;
}

int pager_attach(struct pager *p, int uffd, uint32_t space, const struct pager_range *r, size_t n)
{
	struct pg_proc *pp = calloc(1, sizeof(*pp));
	int ret = -ENOMEM;

	if (!pp) {
		close(uffd);
		return -ENOMEM;
	}
	pp->uffd = uffd;
	pp->space = space;
	pp->todo = malloc((n ? n : 1) * sizeof(*pp->todo));
	if (!pp->todo || ranges_reserve(pp, n ? n : 1))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (r[i].start % PAGE || r[i].end % PAGE || r[i].src % PAGE || r[i].end <= r[i].start) {
			ret = -EINVAL;
			goto fail;
		}
		pp->r[pp->nr++] = (struct pg_range){ r[i].start, r[i].end, r[i].src, false };
		pp->todo[i] = r[i];
	}
	pp->ntodo = n;
	pp->todo_next = n ? r[0].src / PAGE : 0;
	qsort(pp->r, pp->nr, sizeof(*pp->r), range_cmp);
	lock(p);
	ret = add_proc(p, pp);
	unlock(p);
	if (ret)
		goto fail;
	return 0;
fail:
	proc_free(pp);
	return ret;
}

/* Under mu. A forked child starts with what its parent has: same ranges,
 * same pages in or not. */
static int on_fork(struct pager *p, struct pg_proc *parent, int uffd)
{
	struct pg_proc *pp;
	int r = collect_all(p, parent);	/* the child copies a finished list */

	if (r) {
		close(uffd);
		return r;
	}
	pp = calloc(1, sizeof(*pp));
	if (!pp) {
		close(uffd);
		return -ENOMEM;
	}
	*pp = *parent;
	pp->uffd = uffd;
	pp->unreg = false;	/* registered as its parent was at the fork */
	pp->todo = NULL;
	pp->early = NULL;
	pp->plan_next = pp->cursor;
	pp->r = malloc((parent->nr + 1) * sizeof(*pp->r));
	pp->data = malloc((parent->ndata + 1) * sizeof(*pp->data));
	pp->data_cap = parent->ndata + 1;
	pp->done = malloc(parent->ndata + 1);
	pp->rcap = parent->nr + 1;
	if (!pp->r || !pp->data || !pp->done || add_proc(p, pp)) {
		proc_free(pp);
		return -ENOMEM;
	}
	memcpy(pp->r, parent->r, parent->nr * sizeof(*pp->r));
	memcpy(pp->data, parent->data, parent->ndata * sizeof(*pp->data));
	memcpy(pp->done, parent->done, parent->ndata);
	if (p->fork_fn)
		p->fork_fn(p->fork_arg, parent->uffd, uffd);
	return 0;
}

/* ---- copying ---- */

static int uffd_wake(int uffd, uint64_t addr, uint64_t len)
{
	struct uffdio_range rg = { .start = addr, .len = len };
	return ioctl(uffd, UFFDIO_WAKE, &rg) ? -errno : 0;
}

/* Copy len bytes of buf to addr. *in gets how many bytes are now there
 * (copied, or present already); a run stops short only on an error.
 * 0 all in, -EAGAIN try the rest later (mm changing), -ESRCH process gone,
 * -ENOENT the page at addr + *in is not in a mapping registered with us. A
 * run across two mappings (the kernel copies within one) goes on page by
 * page. */
static int copy_in(struct pg_proc *pp, uint64_t addr, const void *buf, uint64_t len, uint64_t *in)
{
	bool one = false;

	*in = 0;
	while (*in < len) {
		uint64_t want = one ? PAGE : len - *in;
		struct uffdio_copy cp = { .dst = addr + *in,
					  .src = (uint64_t)(uintptr_t)buf + *in,
					  .len = want };
		if (!ioctl(pp->uffd, UFFDIO_COPY, &cp)) {
			*in += want;
			continue;
		}
		int e = errno;
		if (cp.copy > 0)
			*in += (uint64_t)cp.copy;	/* partial: go on after it */
		if (e == EEXIST) {
			/* this page is there already (a fault beat us): wake
			 * its waiters, copy the rest */
			uffd_wake(pp->uffd, addr + *in, PAGE);
			*in += PAGE;
			continue;
		}
		if (e == ENOENT && !one && len - *in > PAGE) {
			one = true;
			continue;
		}
		if (e == EAGAIN)
			return -EAGAIN;
		if (e == ENOENT)
			return -ENOENT;
		return e == ESRCH ? -ESRCH : -e;
	}
	return 0;
}

static int zero_in(struct pg_proc *pp, uint64_t addr)
{
	struct uffdio_zeropage z = { .range = { .start = addr, .len = PAGE } };

	if (!ioctl(pp->uffd, UFFDIO_ZEROPAGE, &z))
		return 0;
	if (errno == EEXIST) {
		uffd_wake(pp->uffd, addr, PAGE);
		return 0;
	}
	if (errno == EAGAIN)
		return -EAGAIN;
	return errno == ESRCH ? -ESRCH : -errno;
}

static void note_latency(struct pager *p, uint64_t ns)
{
	if (!p->lat)
		p->lat = malloc(LAT_MAX * sizeof(*p->lat));
	if (p->lat && p->nlat < LAT_MAX)
		p->lat[p->nlat++] = ns;
}

/* One page of the snapshot into fbuf: its kind, or -errno. The index walk
 * under smu, the disk read outside it (the prefetch plans meanwhile). */
static int read_page(struct pager *p, uint32_t space, uint64_t vpn, void *buf)
{
	struct store_plan *pl;
	uint8_t kind;
	int r;

	store_lock(p);
	r = store_snap_plan(p->sn, STORE_KEY(space, vpn), 1, &pl);
	store_unlock(p);
	if (!r)
		r = store_plan_fetch(pl, buf, &kind);
	store_plan_free(pl);
	return r ? r : kind;
}

static void note_touched(struct pager *p, struct pg_proc *pp, uint64_t vpn)
{
	if (p->ntouched >= TOUCHED_MAX || pp != p->procs[0])
		return;
	if (!p->touched)
		p->touched = malloc(TOUCHED_MAX * sizeof(*p->touched));
	if (p->touched)
		p->touched[p->ntouched++] = vpn;
}

/* Faults thread. The ranges are its own (it reads the events), so it
 * looks them up and copies without mu: no copy of the prefetch can land
 * in between that the kernel would not refuse or that is not the same
 * bytes (EEXIST). */
static int serve_fault(struct pager *p, struct pg_proc *pp, uint64_t addr, uint64_t t0)
{
	struct pg_range *g = range_at(pp, addr & ~(PAGE - 1));
	uint64_t page = addr & ~(PAGE - 1), vpn = 0;
	bool data = false, zero = false;
	int r;

	if (!g) {
		/* not ours (a range the process mapped since): let the
		 * kernel give it what it would without us */
		r = zero_in(pp, page);
	} else if (g->zero) {
		r = zero_in(pp, page);
		zero = true;
	} else {
		vpn = (g->src + (page - g->start)) / PAGE;
		int kind = read_page(p, pp->space, vpn, p->fbuf);
		if (kind < 0) {
			/* never zeros in place of data: the fault keeps
			 * waiting, the error is the caller's to act on */
			pr_err("space %u page %#llx unreadable: %s", pp->space,
			       (unsigned long long)vpn, store_strerror(kind));
			return kind;
		}
		if (kind == STORE_PAGE_DATA) {
			uint64_t in;
			r = copy_in(pp, page, p->fbuf, PAGE, &in);
			data = !r;
		} else {
			r = zero_in(pp, page);
			zero = true;
		}
		if (!r)
			note_touched(p, pp, vpn);
	}
	if (r == -ENOENT) {
		/* no longer a mapping of ours (the fault raced an unmap or
		 * unregister): let the thread fault again without us */
		uffd_wake(pp->uffd, page, PAGE);
		return 0;
	}
	if (!r) {
		if (data) {
			mark_done(pp, vpn);
			ST_ADD(p, pages_copied, 1);
		}
		ST_ADD(p, zero_faults, zero);
		ST_ADD(p, faults, 1);
		note_latency(p, mono_ns() - t0);
	}
	return r;
}

/* ---- events ---- */


static int handle_fault(struct pager *p, struct pg_proc *pp, uint64_t addr)
{
	int r;

	pr_debug("fault %#llx uffd %d", (unsigned long long)addr, pp->uffd);
	r = serve_fault(p, pp, addr, mono_ns());
	if (r == -EAGAIN && p->nretry < RETRY_MAX) {
		p->retry[p->nretry++] = (struct pending){ pp, addr };
		r = 0;
	}
	if (r == -ESRCH) {
		set_gone(pp);
		r = 0;
	}
	return r;
}

/* Under mu: an event of pp (anything but a fault). */
static int handle_event(struct pager *p, struct pg_proc *pp, const struct uffd_msg *m)
{
	int r = 0;

	switch (m->event) {
	case UFFD_EVENT_FORK:
		ST_ADD(p, events, 1);
		r = on_fork(p, pp, (int)m->arg.fork.ufd);
		p->forked = true;	/* the poll set must grow: end this drain */
		break;
	case UFFD_EVENT_REMAP:
		ST_ADD(p, events, 1);
		r = on_remap(pp, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
		break;
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		ST_ADD(p, events, 1);
		r = on_remove(pp, m->arg.remove.start, m->arg.remove.end,
			      m->event == UFFD_EVENT_UNMAP);
		break;
	default:
		break;
	}
	if (r == -ESRCH) {
		set_gone(pp);
		r = 0;
	}
	return r;
}

static void nap_us(long us);

static bool has_event(const struct uffd_msg *m, size_t n)
{
	for (size_t j = 0; j < n; j++)
		if (m[j].event != UFFD_EVENT_PAGEFAULT)
			return true;
	return false;
}

/* Faults thread: read what waits on pp's uffd, a batch at a time. The
 * read and the batch's events are under mu. The kernel refuses a copy
 * (EAGAIN) only until an event is read: from then on the process goes
 * on (its fork completes, its madvise zaps), so a copy of the prefetch
 * landing between our read and our handling would use ranges the event
 * made stale: a page copied into a parent after its fork, that its
 * child is then told it has (it has not: zeros once we let go), or
 * image bytes put back where the process just dropped its memory. The
 * copier copies under mu, so none lands in between. The batch's faults
 * are served after, without mu (after its events: the kernel hands out
 * faults before events anyway). */
static int read_proc(struct pager *p, struct pg_proc *pp)
{
	for (;;) {
		struct uffd_msg m[16];
		ssize_t got;
		size_t n;
		int r = 0, e;

		lock(p);
		got = read(pp->uffd, m, sizeof(m));
		e = errno;
		n = got > 0 ? (size_t)got / sizeof(m[0]) : 0;
		if (has_event(m, n) && fault_fire(FP_PAGER_EVENT_SLOW))
			nap_us(EVENT_SLOW_US);	/* tests: the copier must wait too */
		for (size_t j = 0; !r && j < n; j++)
			if (m[j].event != UFFD_EVENT_PAGEFAULT)
				r = handle_event(p, pp, &m[j]);
		unlock(p);
		if (got < 0) {
			if (e != EAGAIN && e != EINTR)
				set_gone(pp);
			return 0;
		}
		for (size_t j = 0; !r && j < n; j++)
			if (m[j].event == UFFD_EVENT_PAGEFAULT)
				r = handle_fault(p, pp, m[j].arg.pagefault.address);
		if (r || p->forked || (size_t)got < sizeof(m))
			return r;
	}
}

/* Faults thread: read and handle every message waiting on every uffd (and
 * note the copier's end). */
static int drain(struct pager *p, int timeout_ms)
{
	size_t n = p->nprocs;
	struct pollfd *pfd = calloc(n + 1, sizeof(*pfd));
	size_t kept = 0;
	int r = 0;

	if (!pfd)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		pfd[i].fd = is_gone(p->procs[i]) ? -1 : p->procs[i]->uffd;
		pfd[i].events = POLLIN;
	}
	pfd[n].fd = p->thr_on ? p->evfd : -1;
	pfd[n].events = POLLIN;
	int k = poll(pfd, n + 1, timeout_ms);
	if (k < 0 && errno != EINTR)
		r = -errno;
	if (k > 0 && (pfd[n].revents & POLLIN)) {
		uint64_t v;
		(void)!read(p->evfd, &v, sizeof(v));
	}
	p->forked = false;
	for (size_t i = 0; k > 0 && !r && !p->forked && i < n; i++) {
		struct pg_proc *pp = p->procs[i];
		if (pfd[i].revents & (POLLERR | POLLHUP)) {
			set_gone(pp);
			continue;
		}
		if (pfd[i].revents & POLLIN)
			r = read_proc(p, pp);
	}
	/* Faults whose copy raced an mm change: once each. One still waiting
	 * for an event not read yet (a fork that cut this drain short, or
	 * one queued behind) stays for the next drain: spinning on it here
	 * would wait for ourselves (the fork waits for us to read its event). */
	for (size_t i = 0; !r && i < p->nretry; i++) {
		struct pending q = p->retry[i];
		int rr = is_gone(q.pp) ? 0 : serve_fault(p, q.pp, q.addr, mono_ns());

		if (rr == -EAGAIN)
			p->retry[kept++] = q;
		else if (rr == -ESRCH)
			set_gone(q.pp);
		else
			r = rr;
	}
	p->nretry = r ? p->nretry : kept;
	free(pfd);
	return r;
}

/* ---- prefetch: its own thread ---- */

/* The range that holds image vpn now, or NULL if it is not mapped (or
 * dropped: a zero range). */
static const struct pg_range *range_of(const struct pg_proc *pp, uint64_t vpn)
{
	uint64_t src = vpn * PAGE;
	for (size_t i = 0; i < pp->nr; i++) {
		const struct pg_range *g = &pp->r[i];
		if (!g->zero && src >= g->src && src < g->src + (g->end - g->start))
			return g;
	}
	return NULL;
}

/* Where image vpn lives in the process now, or 0 if it is not mapped (or
 * dropped). */
static uint64_t addr_of(const struct pg_proc *pp, uint64_t vpn)
{
	const struct pg_range *g = range_of(pp, vpn);
	return g ? g->start + (vpn * PAGE - g->src) : 0;
}

/* The first image vpn after range g. */
static uint64_t range_src_end(const struct pg_range *g)
{
	return (g->src + (g->end - g->start)) / PAGE;
}

/* Under mu. The run from data[i]: consecutive image pages of one range,
 * up to RUN_MAX, through pages in already (a fault took them: one longer
 * read is cheaper than two), not ending on one. 0: data[i] is not mapped. */
static size_t run_len(const struct pg_proc *pp, size_t i)
{
	const struct pg_range *g = range_of(pp, pp->data[i]);
	size_t n = 0;

	if (!g)
		return 0;
	uint64_t end = range_src_end(g);
	while (i + n < pp->ndata && n < RUN_MAX && pp->data[i + n] == pp->data[i] + n &&
	       pp->data[i + n] < end)
		n++;
	while (n > 1 && is_done(pp, i + n - 1))
		n--;
	return n;
}

/* Under mu: the next run to plan, hinted pages first, then each process's
 * pages in order. false: every wanted page is planned. */
static bool next_run(struct pager *p, struct run *rn)
{
	while (p->hint_pos < p->nhint) {
		uint64_t vpn = p->hint[p->hint_pos++];
		for (size_t k = 0; k < p->nprocs; k++) {
			struct pg_proc *pp = p->procs[k];
			ssize_t i = pp->space == p->hint_space && pp->collected ? data_index(pp, vpn) : -1;
			size_t n;

			if (is_gone(pp) || i < 0 || is_done(pp, (size_t)i))
				continue;
			n = run_len(pp, (size_t)i);
			if (!n) {
				set_done(pp, (size_t)i);	/* not mapped any more */
				continue;
			}
			*rn = (struct run){ pp, (size_t)i, n, NULL };
			return true;
		}
	}
	for (size_t k = 0; k < p->nprocs; k++) {
		struct pg_proc *pp = p->procs[k];

		if (is_gone(pp) || !pp->collected)
			continue;
		while (pp->cursor < pp->ndata && is_done(pp, pp->cursor))
			pp->cursor++;
		if (pp->plan_next < pp->cursor)
			pp->plan_next = pp->cursor;
		while (pp->plan_next < pp->ndata) {
			size_t i = pp->plan_next, n;

			if (is_done(pp, i)) {
				pp->plan_next++;
				continue;
			}
			n = run_len(pp, i);
			if (!n) {
				set_done(pp, i);
				pp->plan_next++;
				continue;
			}
			pp->plan_next = i + n;
			*rn = (struct run){ pp, i, n, NULL };
			return true;
		}
	}
	return false;
}

/* Under mu: plan again from what is in (a run given up, a restart). */
static void replan(struct pager *p)
{
	for (size_t k = 0; k < p->nprocs; k++)
		p->procs[k]->plan_next = p->procs[k]->cursor;
}

static void nap_us(long us)
{
	struct timespec ts = { 0, us * 1000 };
	nanosleep(&ts, NULL);
}

/* Copy the pages of the run (read into rn->buf) that are still wanted, a
 * slice at a time under mu: where each slice goes is looked up at the
 * moment it is copied, after every event read so far. */
static int copy_run(struct pager *p, const struct run *rn)
{
	struct pg_proc *pp = rn->pp;
	size_t i = rn->i, k = 0;

	while (k < rn->n) {
		int r = 0;

		lock(p);
		if (p->stop || is_gone(pp)) {
			unlock(p);
			return 0;	/* what is left stays wanted */
		}
		while (k < rn->n && is_done(pp, i + k))
			k++;
		const struct pg_range *g = k < rn->n ? range_of(pp, pp->data[i + k]) : NULL;
		if (k < rn->n && !g) {
			set_done(pp, i + k++);	/* not mapped any more */
		} else if (g) {
			uint64_t addr = g->start + (pp->data[i + k] * PAGE - g->src);
			uint64_t end = range_src_end(g), in;
			size_t m = 0;

			while (k + m < rn->n && m < SLICE && !is_done(pp, i + k + m) &&
			       pp->data[i + k + m] < end)
				m++;
			r = copy_in(pp, addr, rn->buf + k * PAGE, m * PAGE, &in);
			for (size_t q = 0; q < in / PAGE; q++)
				set_done(pp, i + k + q);
			ST_ADD(p, pages_copied, in / PAGE);
			ST_ADD(p, pages_prefetched, in / PAGE);
			k += in / PAGE;
			if (r == -ENOENT) {
				/* not in a mapping of ours any more */
				set_done(pp, i + k++);
				r = 0;
			} else if (r == -ESRCH) {
				set_gone(pp);
				r = 0;
			}
		}
		unlock(p);
		if (r == -EAGAIN) {
			nap_us(50);	/* an event waits to be read by the faults thread */
			continue;
		}
		if (r)
			return r;
	}
	return 0;
}

static int fetch_run(struct run *rn)
{
	uint8_t kinds[RUN_MAX];
	int r = store_plan_fetch(rn->pl, rn->buf, kinds);

	store_plan_free(rn->pl);
	rn->pl = NULL;
	if (r < 0)
		return r;
	for (size_t k = 0; k < rn->n; k++)
		if (kinds[k] != STORE_PAGE_DATA)
			return -EBADMSG;	/* the index changed under us */
	return 0;
}

static uint64_t wanted(const struct pager *p);
static struct pg_proc *first_uncollected(const struct pager *p);

static void cond_wait_ms(struct pager *p, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += ms * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_cond_timedwait(&p->qcv, &p->mu, &ts);
}

/* Under mu: an error of either thread ends both. */
static void fail_threads(struct pager *p, int err)
{
	if (!p->thr_err)
		p->thr_err = err;
	p->stop = true;
	pthread_cond_broadcast(&p->qcv);
}

/* Under mu: the first of n queued runs out. */
static struct run run_pop(struct run *q, size_t *n)
{
	struct run rn = q[0];

	memmove(q, q + 1, --*n * sizeof(*q));
	return rn;
}

/* The reader thread: plans runs and asks the disk for AHEAD of them
 * (store_plan_readahead), reads the oldest into a free buffer for the
 * copier, and so on; the disk reads ahead while the copier copies. Not
 * further ahead: a fault's read waits behind what is asked here. */
static void *reader_main(void *arg)
{
	struct pager *p = arg;
	struct run rn;
	int r;

	lock(p);
	while (!p->stop) {
		if (p->nq < AHEAD && next_run(p, &rn)) {
			unlock(p);
			store_lock(p);
			r = store_snap_plan(p->sn, STORE_KEY(rn.pp->space, rn.pp->data[rn.i]), rn.n,
					    &rn.pl);
			store_unlock(p);
			if (!r)
				store_plan_readahead(rn.pl);
			lock(p);
			if (r) {
				fail_threads(p, r);
				break;
			}
			p->q[p->nq++] = rn;
			continue;
		}
		if (p->nq && p->nfree) {
			rn = run_pop(p->q, &p->nq);
			rn.buf = p->bufs[--p->nfree];
			unlock(p);
			r = fetch_run(&rn);
			lock(p);
			if (r) {
				p->bufs[p->nfree++] = rn.buf;
				fail_threads(p, r);
				break;
			}
			p->ready[p->nready++] = rn;
			pthread_cond_broadcast(&p->qcv);
			continue;
		}
		/* all planned and read, pages still wanted: a run was given
		 * up (its process changed under it); plan again from what is
		 * in once nothing is on its way */
		if (!p->nq && !p->nready && !p->busy && wanted(p))
			replan(p);
		cond_wait_ms(p, 10);
	}
	unlock(p);
	return NULL;
}

/* The copier thread (started, with the reader, once the index is
 * walked): copies the runs read, in order, until nothing is wanted or it
 * is asked to stop. */
static void *copier_main(void *arg)
{
	struct pager *p = arg;
	uint64_t one = 1;

	lock(p);
	while (!p->stop && wanted(p)) {
		if (!p->nready) {
			cond_wait_ms(p, 10);	/* faults also bring pages in */
			continue;
		}
		struct run rn = run_pop(p->ready, &p->nready);
		p->busy = true;
		unlock(p);
		int r = copy_run(p, &rn);
		lock(p);
		p->busy = false;
		p->bufs[p->nfree++] = rn.buf;
		pthread_cond_broadcast(&p->qcv);
		if (r)
			fail_threads(p, r);
	}
	p->thr_done = true;
	p->stop = true;		/* the reader too */
	pthread_cond_broadcast(&p->qcv);
	unlock(p);
	(void)!write(p->evfd, &one, sizeof(one));
	return NULL;
}

/* Under mu. */
static struct pg_proc *first_uncollected(const struct pager *p)
{
	for (size_t k = 0; k < p->nprocs; k++)
		if (!is_gone(p->procs[k]) && !p->procs[k]->collected)
			return p->procs[k];
	return NULL;
}

/* Under mu. */
static uint64_t wanted(const struct pager *p)
{
	uint64_t n = 0;
	for (size_t k = 0; k < p->nprocs; k++)
		if (!is_gone(p->procs[k]))
			n += nwanted(p->procs[k]) + !p->procs[k]->collected;
	return n;
}

/* Start the reader and copier threads. */
static int thread_start(struct pager *p)
{
	int r;

	lock(p);
	p->stop = false;
	p->thr_done = false;
	p->busy = false;
	p->thr_err = 0;
	replan(p);
	unlock(p);
	r = pthread_create(&p->copier, NULL, copier_main, p);
	if (r)
		return -r;
	r = pthread_create(&p->reader, NULL, reader_main, p);
	if (r) {
		lock(p);
		fail_threads(p, -r);
		unlock(p);
		pthread_join(p->copier, NULL);
		return -r;
	}
	p->thr_on = true;
	return 0;
}

/* Stop both threads (if they run) and wait for them: their error. The
 * runs planned or read and not copied are dropped (their pages stay
 * wanted). */
static int thread_stop(struct pager *p)
{
	int r;

	if (!p->thr_on)
		return 0;
	lock(p);
	p->stop = true;
	pthread_cond_broadcast(&p->qcv);
	unlock(p);
	pthread_join(p->copier, NULL);
	pthread_join(p->reader, NULL);
	p->thr_on = false;
	for (size_t k = 0; k < p->nq; k++)
		store_plan_free(p->q[k].pl);
	p->nq = 0;
	p->nready = 0;
	for (size_t k = 0; k < NBUF; k++)
		p->bufs[k] = p->bufmem[k];
	p->nfree = NBUF;
	r = p->thr_err;
	p->thr_err = 0;
	p->stop = false;
	p->thr_done = false;
	return r;
}

/* Everything stored is in: unregister every range, so faults in holes
 * are the kernel's own zero fill. The uffds stay open and are still read
 * (pager_pump): a fork that copied a registered range before this waits
 * in the kernel until its event is read. */
int pager_unregister(struct pager *p)
{
	int r = 0;

	for (size_t k = 0; k < p->nprocs; k++) {
		struct pg_proc *pp = p->procs[k];

		for (size_t i = 0; !pp->unreg && !is_gone(pp) && i < pp->nr; i++) {
			struct uffdio_range rg = { pp->r[i].start, pp->r[i].end - pp->r[i].start };

			if (!ioctl(pp->uffd, UFFDIO_UNREGISTER, &rg) || errno == EINVAL ||
			    errno == ENOMEM)
				continue;	/* EINVAL/ENOMEM: not mapped any more */
			if (errno == ESRCH) {
				set_gone(pp);
				break;
			}
			pr_err("unregister %#llx-%#llx: %s", (unsigned long long)rg.start,
			       (unsigned long long)(rg.start + rg.len), strerror(errno));
			r = r ? r : -errno;
		}
		pp->unreg = true;
	}
	return r;
}

int pager_pump(struct pager *p)
{
	int r = drain(p, 0);
	uint64_t w;

	if (r)
		return r;
	lock(p);
	w = wanted(p);
	unlock(p);
	/* A child forked before the unregister has its own ranges, and
	 * everything its parent had at the fork: so nothing is wanted. Were
	 * anything, serve it until it is in: never let go of a page out. */
	if (w) {
		pr_warn("%llu pages wanted again while letting go: serving them",
			(unsigned long long)w);
		r = pager_run(p, -1, 1);
	}
	if (!r)
		r = pager_unregister(p);
	/* A fault that raced the unregister (the kernel's wake may come
	 * before the faulting thread sleeps) is read here, and woken: its
	 * range is no longer ours. */
	return r ? r : drain(p, 0);
}

void pager_close(struct pager *p)
{
	for (size_t k = 0; k < p->nprocs; k++) {
		struct pg_proc *pp = p->procs[k];

		if (pp->uffd >= 0)
			close(pp->uffd);
		pp->uffd = -1;
		set_gone(pp);
	}
}

/* The faults thread's wait in poll: long while the copier works
 * (it wakes us when it ends), none while there is work here. */
static int poll_wait(const struct pager *p, bool walking, uint64_t deadline)
{
	uint64_t now = mono_ns(), left = deadline > now ? (deadline - now) / 1000000 + 1 : 0;
	int wait = POLL_MS;

	if (p->nretry)
		wait = p->thr_on ? 1 : 0;
	else if (walking)
		wait = 0;
	return (uint64_t)wait < left ? wait : (int)left;
}

int pager_run(struct pager *p, int timeout_ms, int prefetch)
{
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	int r = 0, r2;

	for (;;) {
		lock(p);
		uint64_t w = wanted(p);
		bool ended = p->thr_done, walking = first_uncollected(p) != NULL;
		unlock(p);
		if (p->thr_on && (ended || !w)) {
			r = thread_stop(p);
			if (r)
				break;
		}
		if (!w) {
			/* serve what raced in, then let go */
			r = drain(p, 0);
			if (r)
				break;
			lock(p);
			w = wanted(p);
			unlock(p);
			if (!w)
				return 0;
			continue;
		}
		if (mono_ns() >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		if (prefetch && !p->thr_on && !walking) {
			r = thread_start(p);
			if (r)
				break;
		}
		r = drain(p, poll_wait(p, walking, deadline));
		if (r)
			break;
		if (walking) {
			/* the index is walked here, a chunk between faults */
			lock(p);
			struct pg_proc *pp = first_uncollected(p);
			r = pp ? collect_some(p, pp) : 0;
			unlock(p);
			if (r)
				break;
		}
	}
	r2 = thread_stop(p);
	return r2 && (!r || r == -ETIMEDOUT) ? r2 : r;
}

/* ---- the rest ---- */

static void pager_bufs_free(struct pager *p)
{
	for (size_t k = 0; k < NBUF; k++)
		free(p->bufmem[k]);
	free(p->fbuf);
}

int pager_new(struct store_snap *sn, pthread_mutex_t *store_lock, struct pager **out)
{
	struct pager *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;
	bool ok;

	if (!p)
		return -ENOMEM;
	p->sn = sn;
	p->lock = store_lock;
	p->fbuf = aligned_alloc(PAGE, PAGE);
	ok = p->fbuf != NULL;
	for (size_t k = 0; k < NBUF; k++) {
		p->bufs[k] = p->bufmem[k] = aligned_alloc(PAGE, RUN_MAX * PAGE);
		ok &= p->bufmem[k] != NULL;
	}
	p->nfree = NBUF;
	p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->evfd < 0 || !ok) {
		int e = p->evfd < 0 ? -errno : -ENOMEM;
		if (p->evfd >= 0)
			close(p->evfd);
		pager_bufs_free(p);
		free(p);
		return e;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->qcv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->smu, NULL);
	*out = p;
	return 0;
}

void pager_free(struct pager *p)
{
	if (!p)
		return;
	(void)thread_stop(p);
	for (size_t k = 0; k < p->nprocs; k++)
		proc_free(p->procs[k]);
	free(p->procs);
	free(p->hint);
	free(p->touched);
	free(p->lat);
	pager_bufs_free(p);
	close(p->evfd);
	pthread_cond_destroy(&p->qcv);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->smu);
	free(p);
}

void pager_on_fork(struct pager *p, pager_fork_fn fn, void *arg)
{
	p->fork_fn = fn;
	p->fork_arg = arg;
}

int pager_hint(struct pager *p, uint32_t space, const uint64_t *vpns, size_t n)
{
	uint64_t *h = malloc((n ? n : 1) * sizeof(*h));
	if (!h)
		return -ENOMEM;
	memcpy(h, vpns, n * sizeof(*h));
	lock(p);
	free(p->hint);
	p->hint = h;
	p->nhint = n;
	p->hint_pos = 0;
	p->hint_space = space;
	unlock(p);
	return 0;
}

const uint64_t *pager_touched(const struct pager *p, size_t *n)
{
	*n = p->ntouched;
	return p->touched;
}

void pager_get_stats(const struct pager *p, struct pager_stats *st)
{
	struct pager *q = (struct pager *)p;	/* mu only */

	lock(q);
	*st = p->st;
	st->pages_wanted = wanted(p);
	unlock(q);
	if (p->nlat) {
		uint64_t *s = malloc(p->nlat * sizeof(*s));
		if (s) {
			memcpy(s, p->lat, p->nlat * sizeof(*s));
			qsort(s, p->nlat, sizeof(*s), u64_cmp);
			st->fault_ns_p50 = s[p->nlat / 2];
			st->fault_ns_p99 = s[p->nlat * 99 / 100];
			free(s);
		}
	}
}
