/* Incremental snapshots, by comparison with the base snapshot.
 *
 * The transaction starts from the group's newest snapshot (copy-on-write
 * index: every page not touched stays shared with it). Each page read from
 * the process is compared with the base's page at the same address; only
 * pages that differ are written. Base pages the capture did not cover
 * (unmapped since, dropped with MADV_DONTNEED, never resident) are dropped
 * from the new snapshot, so it holds exactly what a full capture of the
 * same instant would: the test compares the two page by page.
 *
 * This needs no state between snapshots, so `cryo snap` can do it without
 * a daemon. It still reads all resident memory (and the base's pages) while
 * the process is stopped; what it saves is compression and writing, the
 * expensive part (DESIGN: the write path is CPU-bound). Tracking written
 * pages with userfaultfd-WP (src/proc/dirty.c) needs a daemon that keeps
 * the tracker between snapshots: issue 4.
 *
 * File contents and shared memory (spaces other than the process's) are
 * saved whole each time. */
#define LOG_PREFIX "dump: "
#include "dump/dump_int.h"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096u
#define CMP_PAGES 256u		/* a run of add_run is at most 1 MiB */

int dump_incr_open(struct dump_ctx *d, struct store *s, pid_t pid)
{
	Cryo__GroupEntry *g = NULL;
	struct store_snap *sn;
	int r = store_snap_open(s, d->name, STORE_SNAP_NEWEST, &sn);

	if (r == -ENOENT)
		return 0;
	if (r)
		return r;
	/* Only a base of this very process: page space 1 must mean the same
	 * address space, and its records the same keys. */
	r = image_get_group(sn, &g);
	if (r || g->root_pid != (uint32_t)pid || g->n_procs != 1) {
		if (g)
			image_free(&g->base);
		store_snap_close(sn);
		return r == -ENOENT ? 0 : r;
	}
	image_free(&g->base);
	d->cmp = malloc((size_t)CMP_PAGES * PAGE);
	d->cmp_kinds = malloc(CMP_PAGES);
	if (!d->cmp || !d->cmp_kinds) {
		store_snap_close(sn);
		return -ENOMEM;
	}
	d->base = sn;
	return 0;
}

int dump_incr_begin(struct dump_ctx *d)
{
	uint64_t lo = STORE_KEY(d->space, 0), hi = STORE_KEY(d->space + 1, 0);
	int r;

	if (!d->base)
		return 0;
	r = store_txn_drop_pages(d->txn, 0, lo);
	if (!r)
		r = store_txn_drop_pages(d->txn, hi, STORE_VPN_MAX - hi + 1);
	return r;
}

int dump_runs_append(struct dump_runs *c, uint64_t first, uint64_t end)
{
	if (first >= end)
		return 0;
	if (c->n && c->r[c->n - 1].end == first) {
		c->r[c->n - 1].end = end;
		return 0;
	}
	if (c->n && first < c->r[c->n - 1].end)
		return -EINVAL;
	return dump_runs_push(c, first, end);
}

int dump_runs_push(struct dump_runs *c, uint64_t first, uint64_t end)
{
	if (first >= end)
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct dump_run *r = realloc(c->r, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		c->r = r;
		c->cap = cap;
	}
	c->r[c->n].first = first;
	c->r[c->n++].end = end;
	return 0;
}

static int run_cmp(const void *a, const void *b)
{
	const struct dump_run *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

void dump_runs_normalize(struct dump_runs *c)
{
	size_t k = 0;

	if (c->n < 2)
		return;
	qsort(c->r, c->n, sizeof(c->r[0]), run_cmp);
	for (size_t i = 1; i < c->n; i++) {
		if (c->r[i].first <= c->r[k].end) {
			if (c->r[i].end > c->r[k].end)
				c->r[k].end = c->r[i].end;
		} else {
			c->r[++k] = c->r[i];
		}
	}
	c->n = k + 1;
}

int dump_runs_subtract(const struct dump_runs *a, const struct dump_runs *b,
		       struct dump_runs *out)
{
	size_t k = 0;
	int r = 0;

	for (size_t i = 0; i < a->n && !r; i++) {
		uint64_t at = a->r[i].first, end = a->r[i].end;

		while (k < b->n && b->r[k].end <= at)
			k++;
		for (size_t j = k; j < b->n && b->r[j].first < end && !r; j++) {
			r = dump_runs_append(out, at, b->r[j].first > at ? b->r[j].first : at);
			if (b->r[j].end > at)
				at = b->r[j].end;
		}
		if (!r && at < end)
			r = dump_runs_append(out, at, end);
	}
	return r;
}

void dump_runs_free(struct dump_runs *c)
{
	free(c->r);
	memset(c, 0, sizeof(*c));
}

int dump_incr_cover(struct dump_ctx *d, uint64_t addr, uint64_t len)
{
	if (!d->base || !len)
		return 0;
	/* runs come in address order */
	return dump_runs_append(&d->covered, addr / PAGE, (addr + len) / PAGE);
}

static int all_zero(const uint8_t *p)
{
	static const uint8_t zero[PAGE];

	return !memcmp(p, zero, PAGE);
}

int dump_incr_changed(struct dump_ctx *d, uint64_t addr, size_t n, const uint8_t *p,
		      uint8_t *changed)
{
	for (size_t done = 0; done < n;) {
		size_t k = n - done < CMP_PAGES ? n - done : CMP_PAGES;
		uint64_t vpn = addr / PAGE + done;
		int r;

		/* tracked: the pages read are the written ones */
		if (!d->base || d->tracked) {
			memset(changed + done, 1, k);
			done += k;
			continue;
		}
		r = store_snap_read_pages(d->base, STORE_KEY(d->space, vpn), k, d->cmp,
					  d->cmp_kinds);
		if (r)
			return r;
		for (size_t i = 0; i < k; i++) {
			const uint8_t *now = p + (done + i) * PAGE;
			int same = d->cmp_kinds[i] == STORE_PAGE_DATA ?
					   !memcmp(now, d->cmp + i * PAGE, PAGE) :
				   d->cmp_kinds[i] == STORE_PAGE_ZERO ? all_zero(now) : 0;

			changed[done + i] = !same;
			d->unchanged += same;
		}
		done += k;
	}
	return 0;
}

struct uncovered {
	struct dump_ctx *d;
	size_t run;			/* next covered run to look at */
	uint64_t drop_first, drop_n;	/* pending range to drop */
	int err;
};

static int flush_drop(struct uncovered *u)
{
	int r = 0;

	if (u->drop_n)
		r = store_txn_drop_pages(u->d->txn, u->drop_first, u->drop_n);
	u->drop_n = 0;
	return r;
}

static int drop_if_uncovered(void *arg, uint64_t key, enum store_page_kind kind)
{
	struct uncovered *u = arg;
	const struct dump_runs *c = &u->d->covered;
	uint64_t vpn = key - STORE_KEY(u->d->space, 0);

	(void)kind;
	while (u->run < c->n && c->r[u->run].end <= vpn)
		u->run++;
	if (u->run < c->n && c->r[u->run].first <= vpn)
		return 0;		/* captured now: put or kept as equal */
	if (u->drop_n && u->drop_first + u->drop_n == key) {
		u->drop_n++;
		return 0;
	}
	u->err = flush_drop(u);
	u->drop_first = key;
	u->drop_n = 1;
	return u->err;
}

int dump_incr_finish(struct dump_ctx *d)
{
	struct uncovered u = { .d = d };
	int r;

	if (!d->base)
		return 0;
	r = store_snap_walk(d->base, STORE_KEY(d->space, 0),
			    STORE_KEY(d->space + 1, 0) - 1, drop_if_uncovered, &u);
	if (!r)
		r = flush_drop(&u);
	if (r)
		pr_err("group %s: dropping pages gone since the base snapshot: %s", d->name,
		       store_strerror(r));
	return r;
}

void dump_incr_free(struct dump_ctx *d)
{
	store_snap_close(d->base);
	d->base = NULL;
	dump_runs_free(&d->covered);
	free(d->cmp);
	free(d->cmp_kinds);
	d->cmp = d->cmp_kinds = NULL;
}
