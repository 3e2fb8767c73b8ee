/* Reading many pages at once (melt, eager paging): the page index is
 * walked once for the whole range, items that lie near each other in the
 * log are fetched with one pread (an extent), and the extent's items are
 * checked (I7) and decompressed on every core.
 *
 * A full snapshot lays its pages out in vpn order, so one extent covers a
 * few MiB of memory; an incremental one jumps between old and new
 * segments, which only makes the extents shorter. */
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

struct bulk_item {
	uint32_t idx;			/* page index in the caller's range */
	struct fmt_entry e;
};

struct bulk {
	uint64_t first;
	size_t n;
	uint8_t *buf;
	uint8_t *kinds;
	struct bulk_item *items;
	size_t nitems, cap;
	int err;
};

static int collect(void *arg, uint64_t vpn, const struct fmt_entry *e)
{
	struct bulk *b = arg;
	size_t idx = vpn - b->first;

	if (fmt_entry_kind(e) == FMT_KIND_ZERO) {
		memset(b->buf + idx * STORE_PAGE_SIZE, 0, STORE_PAGE_SIZE);
		b->kinds[idx] = STORE_PAGE_ZERO;
		return 0;
	}
	if (b->nitems == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct bulk_item *ni = realloc(b->items, cap * sizeof(*ni));

		if (!ni)
			return -ENOMEM;
		b->items = ni;
		b->cap = cap;
	}
	b->items[b->nitems++] = (struct bulk_item){ (uint32_t)idx, *e };
	b->kinds[idx] = STORE_PAGE_DATA;
	return 0;
}

struct extent_job {
	struct bulk *b;
	const struct bulk_item *items;	/* this extent's */
	const uint8_t *data;		/* the extent's bytes, from log address base */
	uint64_t base;
	int *errs;			/* one per item */
};

static void decode_part(void *arg, size_t first, size_t end)
{
	struct extent_job *j = arg;

	for (size_t i = first; i < end; i++) {
		const struct bulk_item *it = &j->items[i];
		const uint8_t *src = j->data + (fmt_entry_addr(&it->e) - j->base);
		uint8_t *dst = j->b->buf + (size_t)it->idx * STORE_PAGE_SIZE;

		if (csum32(src, it->e.len) != it->e.csum) {
			j->errs[i] = -EBADMSG;
			continue;
		}
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
static size_t extent_len(const struct bulk *b, size_t i, uint64_t *span)
{
	uint64_t start = fmt_entry_addr(&b->items[i].e);
	uint64_t end = start + b->items[i].e.len;
	size_t k = 1;

	for (; i + k < b->nitems; k++) {
		const struct fmt_entry *e = &b->items[i + k].e;
		uint64_t a = fmt_entry_addr(e);

		if (a < end || a - end > EXTENT_GAP || a + e->len - start > EXTENT_MAX)
			break;
		end = a + e->len;
	}
	*span = end - start;
	return k;
}

/* Addresses and lengths come from disk: all are checked before any read. */
static int items_ok(const struct store *s, const struct bulk *b)
{
	for (size_t i = 0; i < b->nitems; i++) {
		const struct fmt_entry *e = &b->items[i].e;

		if (!e->len || e->len > CHUNK_MAX || !chunk_addr_ok(s, fmt_entry_addr(e), e->len))
			return -EBADMSG;
	}
	return 0;
}

static int read_extents(struct store *s, struct bulk *b)
{
	uint8_t *data = malloc(EXTENT_MAX + CHUNK_MAX);
	int *errs = calloc(b->nitems ? b->nitems : 1, sizeof(*errs));
	unsigned threads = par_threads();
	int r = items_ok(s, b);

	if (!data || !errs)
		r = -ENOMEM;
	for (size_t i = 0; i < b->nitems && !r;) {
		uint64_t span;
		size_t k = extent_len(b, i, &span);
		struct extent_job j = { b, b->items + i, data, fmt_entry_addr(&b->items[i].e),
					errs + i };

		r = io_read(s->io, data, span, j.base);
		if (r)
			break;
		par_for(k, k >= 64 ? threads : 1, 32, decode_part, &j);
		for (size_t m = 0; m < k && !r; m++)
			r = errs[i + m];
		i += k;
	}
	free(data);
	free(errs);
	return r;
}

int bulk_read_pages(struct store *s, const struct fmt_entry *root, uint64_t first, size_t n,
		    void *buf, uint8_t *kinds)
{
	struct bulk b = { .first = first, .n = n, .buf = buf, .kinds = kinds };
	int r;

	if (!n)
		return 0;
	if (first > STORE_VPN_MAX || n - 1 > STORE_VPN_MAX - first)
		return -EINVAL;
	memset(kinds, STORE_PAGE_NONE, n);
	r = pt_walk_entries(s, root, first, first + n - 1, collect, &b);
	if (!r)
		r = read_extents(s, &b);
	free(b.items);
	return r;
}
