/* Reading many pages at once (melt, eager paging): the page index is
 * walked once for the whole range (a plan), items that lie near each
 * other in the log are fetched with one pread (an extent), and the
 * extent's items are checked (I7) and decompressed on every core. Raw
 * pages that lie back to back in the log for consecutive pages (a full
 * snapshot of memory that does not compress) are read straight into
 * place and only checked: no copy through the extent buffer.
 *
 * A full snapshot lays its pages out in vpn order, so one extent covers a
 * few MiB of memory; an incremental one jumps between old and new
 * segments, which only makes the extents shorter.
 *
 * Planning walks the index (the handle's node cache: one thread at a
 * time, as every call on a handle); fetching and reading ahead only read
 * the store's file, so a reader may fetch one plan while another thread
 * plans the next (the pager serves faults beside its prefetch). */
#define LOG_PREFIX "store: "
#include "store/internal.h"
#include "common/csum.h"
#include "common/log.h"
#include "common/par.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define EXTENT_MAX	(4u << 20)	/* bytes of log read at once */
#define EXTENT_GAP	(64u << 10)	/* read through a gap this small */
#define DIRECT_MIN	4		/* raw pages in a row worth a read of their own */

struct bulk_item {
	uint32_t idx;			/* page index in the caller's range */
	struct fmt_entry e;
};

struct store_plan {
	struct store *s;
	uint64_t first;
	size_t n;
	uint8_t *kinds;			/* n */
	struct bulk_item *items;	/* stored pages, in vpn order */
	size_t nitems, cap;
};

static int collect(void *arg, uint64_t vpn, const struct fmt_entry *e)
{
	struct store_plan *pl = arg;
	size_t idx = vpn - pl->first;

	if (fmt_entry_kind(e) == FMT_KIND_ZERO) {
		pl->kinds[idx] = STORE_PAGE_ZERO;
		return 0;
	}
	if (pl->nitems == pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : pl->n < 256 ? pl->n : 256;
		struct bulk_item *ni = realloc(pl->items, cap * sizeof(*ni));

		if (!ni)
			return -ENOMEM;
		pl->items = ni;
		pl->cap = cap;
	}
	pl->items[pl->nitems++] = (struct bulk_item){ (uint32_t)idx, *e };
	pl->kinds[idx] = STORE_PAGE_DATA;
	return 0;
}

struct extent_job {
	uint8_t *buf;			/* the caller's pages */
	const struct bulk_item *items;	/* this extent's */
	const uint8_t *data;		/* the extent's bytes, from log address base;
					 * NULL: read into place already */
	uint64_t base;
	int *errs;			/* one per item */
};

static void decode_part(void *arg, size_t first, size_t end)
{
	struct extent_job *j = arg;

	for (size_t i = first; i < end; i++) {
		const struct bulk_item *it = &j->items[i];
		uint8_t *dst = j->buf + (size_t)it->idx * STORE_PAGE_SIZE;
		const uint8_t *src = j->data ? j->data + (fmt_entry_addr(&it->e) - j->base) : dst;

		if (csum32(src, it->e.len) != it->e.csum) {
			j->errs[i] = -EBADMSG;
			continue;
		}
		if (!j->data)
			continue;
		if (fmt_entry_codec(&it->e) == CODEC_RAW) {
			if (it->e.len != STORE_PAGE_SIZE) {
				j->errs[i] = -EBADMSG;
				continue;
			}
			memcpy(dst, src, STORE_PAGE_SIZE);
			continue;
		}
		j->errs[i] = codec_decompress(fmt_entry_codec(&it->e), src, it->e.len, dst,
					      STORE_PAGE_SIZE);
	}
}

/* How many items from i on fit one extent (at least 1). */
static size_t extent_len(const struct store_plan *pl, size_t i, uint64_t *span)
{
	uint64_t start = fmt_entry_addr(&pl->items[i].e);
	uint64_t end = start + pl->items[i].e.len;
	size_t k = 1;

	for (; i + k < pl->nitems; k++) {
		const struct fmt_entry *e = &pl->items[i + k].e;
		uint64_t a = fmt_entry_addr(e);

		if (a < end || a - end > EXTENT_GAP || a + e->len - start > EXTENT_MAX)
			break;
		end = a + e->len;
	}
	*span = end - start;
	return k;
}

/* How many of the k items from i on are raw pages back to back in the log
 * for consecutive pages: those are read straight into place. */
static size_t direct_len(const struct store_plan *pl, size_t i, size_t k)
{
	const struct bulk_item *a = &pl->items[i];
	size_t m = 0;

	for (; m < k; m++) {
		const struct bulk_item *it = &pl->items[i + m];

		if (fmt_entry_codec(&it->e) != CODEC_RAW || it->e.len != STORE_PAGE_SIZE ||
		    it->idx != a->idx + m ||
		    fmt_entry_addr(&it->e) != fmt_entry_addr(&a->e) + m * STORE_PAGE_SIZE)
			break;
	}
	return m;
}

/* Addresses and lengths come from disk: all are checked before any read. */
static int items_ok(const struct store_plan *pl)
{
	for (size_t i = 0; i < pl->nitems; i++) {
		const struct fmt_entry *e = &pl->items[i].e;

		if (!e->len || e->len > CHUNK_MAX || !chunk_addr_ok(pl->s, fmt_entry_addr(e), e->len))
			return -EBADMSG;
	}
	return 0;
}

static int read_extents(const struct store_plan *pl, uint8_t *buf)
{
	uint8_t *data = NULL;
	int *errs = calloc(pl->nitems ? pl->nitems : 1, sizeof(*errs));
	unsigned threads = par_threads();
	int r = errs ? 0 : -ENOMEM;

	for (size_t i = 0; i < pl->nitems && !r;) {
		uint64_t span;
		size_t k = extent_len(pl, i, &span), d = direct_len(pl, i, k);
		struct extent_job j = { buf, pl->items + i, NULL, fmt_entry_addr(&pl->items[i].e),
					errs + i };

		if (d >= DIRECT_MIN || d == k) {
			k = d;
			r = io_read(pl->s->io, buf + (size_t)pl->items[i].idx * STORE_PAGE_SIZE,
				    k * STORE_PAGE_SIZE, j.base);
		} else {
			if (!data)
				data = malloc(EXTENT_MAX + CHUNK_MAX);
			j.data = data;
			r = data ? io_read(pl->s->io, data, span, j.base) : -ENOMEM;
		}
		if (r)
			break;
		/* a thread is worth it for decompressing, not for checksums
		 * alone (it costs about what 64 KiB of them do) */
		par_for(k, j.data && k >= 64 ? threads : 1, 32, decode_part, &j);
		for (size_t m = 0; m < k && !r; m++)
			r = errs[i + m];
		i += k;
	}
	free(data);
	free(errs);
	return r;
}

int bulk_plan(struct store *s, const struct fmt_entry *root, uint64_t first, size_t n,
	      struct store_plan **out)
{
	struct store_plan *pl;
	int r;

	*out = NULL;
	if (!n || first > STORE_VPN_MAX || n - 1 > STORE_VPN_MAX - first)
		return -EINVAL;
	pl = calloc(1, sizeof(*pl));
	if (!pl)
		return -ENOMEM;
	pl->s = s;
	pl->first = first;
	pl->n = n;
	pl->kinds = calloc(n, 1);	/* STORE_PAGE_NONE */
	r = pl->kinds ? pt_walk_entries(s, root, first, first + n - 1, collect, pl) : -ENOMEM;
	if (!r)
		r = items_ok(pl);
	if (r) {
		store_plan_free(pl);
		return r;
	}
	*out = pl;
	return 0;
}

int store_plan_fetch(const struct store_plan *pl, void *buf, uint8_t *kinds)
{
	uint8_t *b = buf;

	memcpy(kinds, pl->kinds, pl->n);
	for (size_t i = 0; i < pl->n; i++)
		if (pl->kinds[i] == STORE_PAGE_ZERO)
			memset(b + i * STORE_PAGE_SIZE, 0, STORE_PAGE_SIZE);
	return read_extents(pl, b);
}

void store_plan_readahead(const struct store_plan *pl)
{
	for (size_t i = 0; i < pl->nitems;) {
		uint64_t span;
		size_t k = extent_len(pl, i, &span);

		io_readahead(pl->s->io, fmt_entry_addr(&pl->items[i].e), span);
		i += k;
	}
}

void store_plan_free(struct store_plan *pl)
{
	if (!pl)
		return;
	free(pl->kinds);
	free(pl->items);
	free(pl);
}

int bulk_read_pages(struct store *s, const struct fmt_entry *root, uint64_t first, size_t n,
		    void *buf, uint8_t *kinds)
{
	struct store_plan *pl;
	int r;

	if (!n)
		return 0;
	r = bulk_plan(s, root, first, n, &pl);
	if (!r)
		r = store_plan_fetch(pl, buf, kinds);
	store_plan_free(pl);
	return r;
}
