/* The pager: userfaultfd MISSING faults served from a snapshot, events of
 * the process followed, the rest prefetched, then the ranges let go. */
#define LOG_PREFIX "pager: "
#include "pager/pager.h"
#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE		4096ull
#define RUN_MAX		256		/* pages per prefetch copy: one bulk read */
#define RUN_BUSY	16		/* ... while the process faults: a fault
					 * waits for the run at hand */
#define BUSY_NS		50000000ull	/* a fault this recent: busy */
#define TOUCHED_MAX	65536
#define COLLECT_CHUNK	16384		/* index entries walked between faults */
#define LAT_MAX		(1u << 20)
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
	struct pg_range *r;		/* by start */
	size_t nr, rcap;
	uint64_t *data;			/* image vpns of stored pages, ascending */
	uint8_t *done;			/* per data[]: in, or no longer wanted */
	size_t ndata, nwanted, cursor, data_cap;
	bool gone;
	/* data[] is collected from the index a chunk at a time, between
	 * faults, so the first faults are served at once (attach returns
	 * before the walk); until it is, done[] does not exist and the
	 * ranges alone say what is wanted (a dropped range is zero). */
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

struct pager {
	struct store_snap *sn;
	pthread_mutex_t *lock;
	struct pg_proc **procs;
	size_t nprocs;
	uint64_t *hint;
	size_t nhint, hint_pos;
	uint32_t hint_space;
	uint64_t *touched;
	size_t ntouched;
	uint64_t *lat;
	size_t nlat;
	uint8_t *buf;			/* RUN_MAX pages */
	bool forked;			/* a new uffd arrived during this drain */
	struct pending retry[RETRY_MAX];	/* faults to serve again */
	size_t nretry;
	uint64_t last_fault_ns;		/* when a fault was last served */
	pager_fork_fn fork_fn;		/* told of each fork (pager_on_fork) */
	void *fork_arg;
	struct pager_stats st;
};

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
	if (i >= 0 && !pp->done[i]) {
		pp->done[i] = 1;
		pp->nwanted--;
	}
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

static int add_proc(struct pager *p, struct pg_proc *pp)
{
	struct pg_proc **n = realloc(p->procs, (p->nprocs + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	p->procs = n;
	p->procs[p->nprocs++] = pp;
	p->st.processes++;
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

/* Walk the next chunk of the index; once all is walked, data[] is sorted
 * and done[] made: from then on prefetch knows what is wanted. */
static int collect_some(struct pager *p, struct pg_proc *pp)
{
	if (pp->todo_pos < pp->ntodo) {
		const struct pager_range *t = &pp->todo[pp->todo_pos];
		uint64_t end = (t->src + (t->end - t->start)) / PAGE;	/* exclusive */
		uint64_t last = pp->todo_next + COLLECT_CHUNK < end ? pp->todo_next + COLLECT_CHUNK : end;
		int r;

		if (p->lock)
			pthread_mutex_lock(p->lock);
		r = store_snap_walk(p->sn, STORE_KEY(pp->space, pp->todo_next),
				    STORE_KEY(pp->space, last - 1), collect_cb, pp);
		if (p->lock)
			pthread_mutex_unlock(p->lock);
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
		if (!pp->done[k] && !addr_of(pp, pp->data[k])) {
			pp->done[k] = 1;
			pp->nwanted--;
		}
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
	ret = add_proc(p, pp);
	if (ret)
		goto fail;
	return 0;
fail:
	proc_free(pp);
	return ret;
}

/* A forked child starts with what its parent has: same ranges, same
 * pages in or not. */
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
	pp->todo = NULL;
	pp->early = NULL;
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

static int read_page(struct pager *p, uint32_t space, uint64_t vpn, void *buf)
{
	if (p->lock)
		pthread_mutex_lock(p->lock);
	int r = store_snap_read_page(p->sn, STORE_KEY(space, vpn), buf);
	if (p->lock)
		pthread_mutex_unlock(p->lock);
	return r;
}

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

static int serve_fault(struct pager *p, struct pg_proc *pp, uint64_t addr, uint64_t t0)
{
	struct pg_range *g = range_at(pp, addr & ~(PAGE - 1));
	uint64_t page = addr & ~(PAGE - 1);
	int r;

	if (!g) {
		/* not ours (a range the process mapped since): let the
		 * kernel give it what it would without us */
		r = zero_in(pp, page);
	} else if (g->zero) {
		r = zero_in(pp, page);
		p->st.zero_faults++;
	} else {
		uint64_t vpn = (g->src + (page - g->start)) / PAGE;
		int kind = read_page(p, pp->space, vpn, p->buf);
		if (kind < 0) {
			/* never zeros in place of data: the fault keeps
			 * waiting, the error is the caller's to act on */
			pr_err("space %u page %#llx unreadable: %s", pp->space,
			       (unsigned long long)vpn, store_strerror(kind));
			return kind;
		}
		if (kind == STORE_PAGE_DATA) {
			uint64_t in;
			r = copy_in(pp, page, p->buf, PAGE, &in);
			if (!r) {
				mark_done(pp, vpn);
				p->st.pages_copied++;
			}
		} else {
			r = zero_in(pp, page);
			p->st.zero_faults++;
		}
		if (!r && p->ntouched < TOUCHED_MAX && pp == p->procs[0]) {
			if (!p->touched)
				p->touched = malloc(TOUCHED_MAX * sizeof(*p->touched));
			if (p->touched)
				p->touched[p->ntouched++] = vpn;
		}
	}
	if (r == -ENOENT) {
		/* no longer a mapping of ours (the fault raced an unmap or
		 * unregister): let the thread fault again without us */
		uffd_wake(pp->uffd, page, PAGE);
		return 0;
	}
	if (!r) {
		p->st.faults++;
		p->last_fault_ns = mono_ns();
		note_latency(p, p->last_fault_ns - t0);
	}
	return r;
}

/* ---- events ---- */

static int handle_msg(struct pager *p, struct pg_proc *pp, const struct uffd_msg *m)
{
	int r = 0;

	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		pr_debug("fault %#llx", (unsigned long long)m->arg.pagefault.address);
		r = serve_fault(p, pp, m->arg.pagefault.address, mono_ns());
		if (r == -EAGAIN && p->nretry < RETRY_MAX) {
			p->retry[p->nretry++] = (struct pending){ pp, m->arg.pagefault.address };
			r = 0;
		}
		break;
	case UFFD_EVENT_FORK:
		p->st.events++;
		r = on_fork(p, pp, (int)m->arg.fork.ufd);
		p->forked = true;	/* the poll set must grow: end this drain */
		break;
	case UFFD_EVENT_REMAP:
		p->st.events++;
		r = on_remap(pp, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
		break;
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		p->st.events++;
		r = on_remove(pp, m->arg.remove.start, m->arg.remove.end,
			      m->event == UFFD_EVENT_UNMAP);
		break;
	default:
		break;
	}
	if (r == -ESRCH) {
		pp->gone = true;
		r = 0;
	}
	return r;
}

/* Read and handle every message waiting on every uffd. */
static int drain(struct pager *p, int timeout_ms)
{
	size_t n = p->nprocs;
	struct pollfd *pfd = calloc(n ? n : 1, sizeof(*pfd));
	size_t kept = 0;
	int r = 0;

	if (!pfd)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		pfd[i].fd = p->procs[i]->gone ? -1 : p->procs[i]->uffd;
		pfd[i].events = POLLIN;
	}
	int k = poll(pfd, n, timeout_ms);
	if (k < 0 && errno != EINTR)
		r = -errno;
	p->forked = false;
	for (size_t i = 0; k > 0 && !r && !p->forked && i < n; i++) {
		struct pg_proc *pp = p->procs[i];
		if (pfd[i].revents & (POLLERR | POLLHUP)) {
				pp->gone = true;
			continue;
		}
		if (!(pfd[i].revents & POLLIN))
			continue;
		for (;;) {
			struct uffd_msg m[16];
			ssize_t got = read(pp->uffd, m, sizeof(m));
			if (got < 0) {
				if (errno != EAGAIN && errno != EINTR)
					pp->gone = true;
				break;
			}
			for (size_t j = 0; !r && j < (size_t)got / sizeof(m[0]); j++)
				r = handle_msg(p, pp, &m[j]);
			if (r || p->forked || (size_t)got < sizeof(m))
				break;
		}
	}
	/* Faults whose copy raced an mm change: once each. One still waiting
	 * for an event not read yet (a fork that cut this drain short, or
	 * one queued behind) stays for the next drain: spinning on it here
	 * would wait for ourselves (the fork waits for us to read its event). */
	for (size_t i = 0; !r && i < p->nretry; i++) {
		struct pending q = p->retry[i];
		int rr = q.pp->gone ? 0 : serve_fault(p, q.pp, q.addr, mono_ns());

		if (rr == -EAGAIN)
			p->retry[kept++] = q;
		else if (rr == -ESRCH)
			q.pp->gone = true;
		else
			r = rr;
	}
	p->nretry = r ? p->nretry : kept;
	free(pfd);
	return r;
}

/* ---- prefetch ---- */

/* Where image vpn lives in the process now, or 0 if it is not mapped (or
 * dropped: a zero range). */
static uint64_t addr_of(const struct pg_proc *pp, uint64_t vpn)
{
	uint64_t src = vpn * PAGE;
	for (size_t i = 0; i < pp->nr; i++) {
		const struct pg_range *g = &pp->r[i];
		if (!g->zero && src >= g->src && src < g->src + (g->end - g->start))
			return g->start + (src - g->src);
	}
	return 0;
}

/* Copy one run of consecutive wanted pages starting at data[i]. */
static int prefetch_at(struct pager *p, struct pg_proc *pp, size_t i)
{
	uint64_t addr = addr_of(pp, pp->data[i]);
	size_t n = 0;
	int r;

	if (!addr) {
		pp->done[i] = 1;	/* not mapped any more */
		pp->nwanted--;
		return 0;
	}
	uint8_t kinds[RUN_MAX];
	/* long runs read fast; short ones keep a faulting process waiting
	 * less (p99 3.6 ms at 256 pages from a cold cache) */
	size_t max = mono_ns() - p->last_fault_ns < BUSY_NS ? RUN_BUSY : RUN_MAX;

	while (i + n < pp->ndata && n < max && !pp->done[i + n] &&
	       pp->data[i + n] == pp->data[i] + n && addr_of(pp, pp->data[i + n]) == addr + n * PAGE)
		n++;
	if (!n)
		return 0;
	/* one bulk read: neighbours in the log come with one pread */
	if (p->lock)
		pthread_mutex_lock(p->lock);
	r = store_snap_read_pages(p->sn, STORE_KEY(pp->space, pp->data[i]), n, p->buf, kinds);
	if (p->lock)
		pthread_mutex_unlock(p->lock);
	if (r < 0)
		return r;
	for (size_t k = 0; k < n; k++)
		if (kinds[k] != STORE_PAGE_DATA)
			return -EBADMSG;	/* the index changed under us */
	uint64_t in;
	r = copy_in(pp, addr, p->buf, n * PAGE, &in);
	for (size_t k = 0; k < in / PAGE; k++) {
		pp->done[i + k] = 1;
		pp->nwanted--;
	}
	p->st.pages_copied += in / PAGE;
	p->st.pages_prefetched += in / PAGE;
	if (r == -ENOENT) {
		/* not in a mapping of ours any more: nothing to bring in */
		size_t k = i + in / PAGE;
		if (!pp->done[k]) {
			pp->done[k] = 1;
			pp->nwanted--;
		}
		return 0;
	}
	if (r == -ESRCH) {
		pp->gone = true;
		return 0;
	}
	return r;
}

static struct pg_proc *first_uncollected(const struct pager *p)
{
	for (size_t k = 0; k < p->nprocs; k++)
		if (!p->procs[k]->gone && !p->procs[k]->collected)
			return p->procs[k];
	return NULL;
}

static bool uncollected(const struct pager *p)
{
	return first_uncollected(p) != NULL;
}

static int collect_next(struct pager *p)
{
	struct pg_proc *pp = first_uncollected(p);
	return pp ? collect_some(p, pp) : 0;
}

/* Bring in one run: hinted pages first, then the rest in order (once
 * the index is walked: until then, walk a chunk of it). */
static int prefetch_some(struct pager *p)
{
	if (uncollected(p))
		return collect_next(p);
	while (p->hint_pos < p->nhint) {
		uint64_t vpn = p->hint[p->hint_pos++];
		for (size_t k = 0; k < p->nprocs; k++) {
			struct pg_proc *pp = p->procs[k];
			ssize_t i = pp->space == p->hint_space ? data_index(pp, vpn) : -1;
			if (!pp->gone && i >= 0 && !pp->done[i])
				return prefetch_at(p, pp, (size_t)i);
		}
	}
	for (size_t k = 0; k < p->nprocs; k++) {
		struct pg_proc *pp = p->procs[k];
		if (pp->gone || !pp->nwanted)
			continue;
		while (pp->cursor < pp->ndata && pp->done[pp->cursor])
			pp->cursor++;
		if (pp->cursor < pp->ndata)
			return prefetch_at(p, pp, pp->cursor);
	}
	return 0;
}

static uint64_t wanted(const struct pager *p)
{
	uint64_t n = 0;
	for (size_t k = 0; k < p->nprocs; k++)
		if (!p->procs[k]->gone)
			n += p->procs[k]->nwanted + !p->procs[k]->collected;
	return n;
}

/* Everything stored is in: unregister, so faults in holes are the
 * kernel's own zero fill, and close our uffds. */
static void let_go(struct pager *p)
{
	for (size_t k = 0; k < p->nprocs; k++) {
		struct pg_proc *pp = p->procs[k];
		for (size_t i = 0; !pp->gone && i < pp->nr; i++) {
			struct uffdio_range rg = { pp->r[i].start, pp->r[i].end - pp->r[i].start };
			if (ioctl(pp->uffd, UFFDIO_UNREGISTER, &rg))
				pr_err("unregister %#llx-%#llx: %s", (unsigned long long)rg.start,
				       (unsigned long long)(rg.start + rg.len), strerror(errno));
		}
		close(pp->uffd);
		pp->uffd = -1;
		pp->gone = true;
	}
}

int pager_run(struct pager *p, int timeout_ms, int prefetch)
{
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	int r;

	for (;;) {
		if (!wanted(p)) {
			/* serve what raced in, then let go */
			r = drain(p, 0);
			if (r)
				return r;
			if (!wanted(p)) {
				let_go(p);
				return 0;
			}
		}
		uint64_t now = mono_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		/* short polls: a process may have forked a new uffd in */
		bool walking = uncollected(p);
		int wait = prefetch || walking || p->nretry ? 0 : 100;
		r = drain(p, wait);
		if (r)
			return r;
		if (prefetch || walking) {
			r = prefetch || !walking ? prefetch_some(p) : collect_next(p);
			if (r == -EAGAIN)
				continue;	/* events first, then again */
			if (r)
				return r;
		}
	}
}

/* ---- the rest ---- */

int pager_new(struct store_snap *sn, pthread_mutex_t *store_lock, struct pager **out)
{
	struct pager *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->sn = sn;
	p->lock = store_lock;
	p->buf = aligned_alloc(PAGE, RUN_MAX * PAGE);
	if (!p->buf) {
		free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void pager_free(struct pager *p)
{
	if (!p)
		return;
	for (size_t k = 0; k < p->nprocs; k++)
		proc_free(p->procs[k]);
	free(p->procs);
	free(p->hint);
	free(p->touched);
	free(p->lat);
	free(p->buf);
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
	free(p->hint);
	p->hint = h;
	p->nhint = n;
	p->hint_pos = 0;
	p->hint_space = space;
	return 0;
}

const uint64_t *pager_touched(const struct pager *p, size_t *n)
{
	*n = p->ntouched;
	return p->touched;
}

void pager_get_stats(const struct pager *p, struct pager_stats *st)
{
	*st = p->st;
	st->pages_wanted = wanted(p);
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
