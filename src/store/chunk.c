/* The log: building chunks, writing them at the head, reading them back.
 *
 * Items are appended to the open chunk; a full chunk is written in one
 * pwrite. The writer decides where the chunk after it goes before writing
 * it (the header's next field), so recovery can follow the chain (I2). */
#define LOG_PREFIX "store: "
#include "store/internal.h"
#include "common/clock.h"
#include "common/csum.h"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t seg_of(const struct store *s, uint64_t addr)
{
	return (addr - s->sb.seg_start) / s->sb.seg_size;
}

uint64_t seg_addr(const struct store *s, uint64_t seg)
{
	return s->sb.seg_start + seg * s->sb.seg_size;
}

uint64_t segs_free(const struct store *s)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < s->sb.seg_count; i++)
		n += s->segs[i].state == SEG_FREE;
	return n;
}

/* Segments only the cleaner may take, so it can always make room. */
uint64_t segs_reserve(const struct store *s)
{
	uint64_t r = s->sb.seg_count / 32;
	return r < 2 ? 2 : r;
}

void store_poison(struct store *s, int err, const char *what)
{
	if (!s->poisoned)
		pr_err("%s failed (%s): store refuses writes until reopened", what, strerror(-err));
	s->poisoned = true;
}

static int seg_alloc(struct store *s, uint64_t *out)
{
	if (!s->in_clean && segs_free(s) <= segs_reserve(s))
		return -ENOSPC;
	for (uint64_t i = 0; i < s->sb.seg_count; i++) {
		if (s->segs[i].state == SEG_FREE) {
			s->segs[i].state = SEG_USED;
			s->segs[i].mtime_ns = wall_ns();
			*out = i;
			if (s->txn_open)
				s->txn_segs++;
			return 0;
		}
	}
	return -ENOSPC;
}

static void chunk_open(struct store *s)
{
	struct chunk_buf *cb = &s->cb;
	uint64_t seg = seg_of(s, s->head);

	cb->start = s->head;
	cb->room = seg_addr(s, seg) + s->sb.seg_size - s->head;
	cb->data_len = 0;
	cb->nitems = 0;
	cb->open = true;
	s->segs[seg].state = SEG_USED;
}

static size_t chunk_len_for(uint32_t data_len, size_t nitems)
{
	return round_up(FMT_CHUNK_DESC_OFF(data_len) + nitems * sizeof(struct fmt_item), FMT_BLOCK);
}

static uint64_t chunk_sum(const struct fmt_chunk *h, const struct fmt_item *items, size_t n)
{
	XXH3_state_t st;
	struct fmt_chunk c = *h;

	c.sum_csum = 0;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, &c, sizeof(c));
	XXH3_64bits_update(&st, items, n * sizeof(*items));
	return XXH3_64bits_digest(&st);
}

/* Write the open chunk. new_seg forces the next chunk into a fresh segment
 * (the item that comes next does not fit in what is left of this one). */
static int chunk_write(struct store *s, uint16_t flags, bool new_seg)
{
	struct chunk_buf *cb = &s->cb;
	struct fmt_chunk h = { 0 };
	size_t len = chunk_len_for(cb->data_len, cb->nitems);
	size_t desc = FMT_CHUNK_DESC_OFF(cb->data_len);
	uint64_t next = cb->start + len;
	int r;

	if (new_seg || cb->room - len < SEG_TAIL_MIN) {
		uint64_t seg;
		r = seg_alloc(s, &seg);
		if (r)
			return r;	/* nothing written: the caller gives up cleanly */
		next = seg_addr(s, seg);
	}
	h.magic = FMT_CHUNK_MAGIC;
	h.version = FMT_VERSION;
	h.flags = flags;
	h.nitems = (uint32_t)cb->nitems;
	h.lsn = s->lsn;
	h.prev_sum = s->prev_sum;
	memcpy(h.uuid, s->sb.uuid, sizeof(h.uuid));
	h.time_ns = wall_ns();
	h.chunk_len = (uint32_t)len;
	h.data_len = cb->data_len;
	h.next = next;
	h.data_csum = csum64(cb->buf + FMT_CHUNK_HDR, cb->data_len);
	h.sum_csum = chunk_sum(&h, cb->items, cb->nitems);

	memcpy(cb->buf, &h, sizeof(h));
	memset(cb->buf + FMT_CHUNK_HDR + cb->data_len, 0, desc - FMT_CHUNK_HDR - cb->data_len);
	memcpy(cb->buf + desc, cb->items, cb->nitems * sizeof(struct fmt_item));
	memset(cb->buf + desc + cb->nitems * sizeof(struct fmt_item), 0,
	       len - desc - cb->nitems * sizeof(struct fmt_item));

	r = fault_fire(FP_STORE_COMMIT_CRASH);	/* crash points fire before the write */
	if (!r)
		r = io_write(s->io, cb->buf, len, cb->start);
	if (r) {
		store_poison(s, r, "log write");
		cb->open = false;
		return r;
	}
	s->bytes_written += len;
	if (s->cleaning)
		s->clean_bytes += len;
	else
		s->new_bytes += len;
	s->log_since_ckpt += len;
	s->segs[seg_of(s, cb->start)].mtime_ns = h.time_ns;
	s->prev_sum = h.sum_csum;
	s->lsn++;
	s->head = next;
	cb->open = false;
	return 0;
}

int log_flush(struct store *s, uint16_t flags, bool sync)
{
	int r;

	if (s->poisoned)
		return -EIO;
	if (flags && !s->cb.open)
		chunk_open(s);
	if (s->cb.open) {
		r = chunk_write(s, flags, false);
		if (r)
			return r;
	}
	if (sync) {
		r = io_sync(s->io);
		if (r) {
			store_poison(s, r, "log sync");
			return r;
		}
	}
	return 0;
}

static int items_reserve(struct chunk_buf *cb)
{
	if (cb->nitems < cb->items_cap)
		return 0;
	size_t cap = cb->items_cap ? cb->items_cap * 2 : 1024;
	struct fmt_item *n = realloc(cb->items, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	cb->items = n;
	cb->items_cap = cap;
	return 0;
}

int log_add(struct store *s, unsigned kind, unsigned codec, const void *data,
	    uint32_t len, uint32_t raw, uint64_t owner, uint64_t key, uint8_t level,
	    struct fmt_entry *ent)
{
	struct chunk_buf *cb = &s->cb;
	uint64_t cap = s->sb.seg_size < CHUNK_MAX ? s->sb.seg_size : CHUNK_MAX;
	int r;

	if (s->ro)
		return -EROFS;
	if (s->poisoned)
		return -EIO;
	if (chunk_len_for(len, 1) > cap)
		return -EFBIG;
	for (;;) {
		if (!cb->open)
			chunk_open(s);
		uint64_t fit = cb->room < CHUNK_MAX ? cb->room : CHUNK_MAX;
		if (chunk_len_for(cb->data_len + len, cb->nitems + 1) <= fit)
			break;
		/* Full, or too little left of this segment for the item:
		 * write what we have (an empty chunk just links onward). */
		uint64_t left = cb->room - chunk_len_for(cb->data_len, cb->nitems);
		r = chunk_write(s, 0, left < chunk_len_for(len, 1));
		if (r)
			return r;
	}
	r = items_reserve(cb);
	if (r)
		return r;
	uint32_t sum = csum32(data, len);
	memcpy(cb->buf + FMT_CHUNK_HDR + cb->data_len, data, len);
	cb->items[cb->nitems++] = (struct fmt_item){
		.off = cb->data_len, .len = len, .raw = raw, .kind = (uint8_t)kind,
		.codec = (uint8_t)codec, .level = level, .owner = owner, .key = key,
		.csum = sum,
	};
	*ent = fmt_entry_make(cb->start + FMT_CHUNK_HDR + cb->data_len, kind, codec, len, sum);
	cb->data_len += len;
	s->item_bytes += len;
	return 0;
}

int log_add_compressed(struct store *s, unsigned kind, const void *data, uint32_t raw,
		       uint64_t owner, uint64_t key, uint8_t level, struct fmt_entry *ent)
{
	enum codec used;
	size_t cap = codec_bound(raw);
	uint8_t stackbuf[8192];
	uint8_t *tmp = cap <= sizeof(stackbuf) ? stackbuf : malloc(cap);
	int r;

	if (!tmp)
		return -ENOMEM;
	size_t n = codec_compress(s->sb.codec, data, raw, tmp, cap, &used);
	r = log_add(s, kind, used, tmp, (uint32_t)n, raw, owner, key, level, ent);
	if (tmp != stackbuf)
		free(tmp);
	return r;
}

/* ---- reading ---- */

bool chunk_addr_ok(const struct store *s, uint64_t addr, uint64_t len)
{
	uint64_t end = s->sb.seg_start + s->sb.seg_count * s->sb.seg_size;
	if (addr < s->sb.seg_start || addr >= end || len > end - addr)
		return false;
	/* an item never crosses a segment's end */
	return seg_of(s, addr) == seg_of(s, addr + len - 1);
}

int item_read_stored(struct store *s, const struct fmt_entry *e, void *buf)
{
	uint64_t addr = fmt_entry_addr(e);
	int r;

	if (!e->len || e->len > CHUNK_MAX || !chunk_addr_ok(s, addr, e->len))
		return -EBADMSG;
	r = io_read(s->io, buf, e->len, addr);
	if (r)
		return r;
	return csum32(buf, e->len) == e->csum ? 0 : -EBADMSG;
}

int item_read(struct store *s, const struct fmt_entry *e, uint32_t raw, void *out)
{
	uint8_t stackbuf[8192];
	uint8_t *tmp;
	int r;

	if (fmt_entry_codec(e) == CODEC_RAW) {
		if (e->len != raw)
			return -EBADMSG;
		return item_read_stored(s, e, out);
	}
	if (e->len > CHUNK_MAX)
		return -EBADMSG;
	tmp = e->len <= sizeof(stackbuf) ? stackbuf : malloc(e->len);
	if (!tmp)
		return -ENOMEM;
	r = item_read_stored(s, e, tmp);
	if (!r)
		r = codec_decompress(fmt_entry_codec(e), tmp, e->len, out, raw);
	if (tmp != stackbuf)
		free(tmp);
	return r;
}

void chunk_view_free(struct chunk_view *v)
{
	free(v->data);
	free(v->items);
	v->data = NULL;
	v->items = NULL;
}

static int chunk_check_hdr(const struct store *s, uint64_t addr, const struct fmt_chunk *h,
			   uint64_t lsn, uint64_t prev_sum, const char **why)
{
	uint64_t seg_end = seg_addr(s, seg_of(s, addr)) + s->sb.seg_size;

	if (h->magic != FMT_CHUNK_MAGIC) { *why = "no chunk magic"; return -EBADMSG; }
	if (h->version != FMT_VERSION) { *why = "unknown chunk version"; return -EBADMSG; }
	if (memcmp(h->uuid, s->sb.uuid, sizeof(h->uuid))) { *why = "chunk of another store"; return -EBADMSG; }
	if (h->lsn != lsn) { *why = "unexpected lsn"; return -EBADMSG; }
	if (h->prev_sum != prev_sum) { *why = "broken chain"; return -EBADMSG; }
	if (h->chunk_len < FMT_BLOCK || h->chunk_len % FMT_BLOCK || h->chunk_len > CHUNK_MAX ||
	    h->chunk_len > seg_end - addr) { *why = "bad chunk length"; return -EBADMSG; }
	if (h->data_len > h->chunk_len || h->nitems > h->chunk_len / sizeof(struct fmt_item) ||
	    FMT_CHUNK_DESC_OFF((uint64_t)h->data_len) + (uint64_t)h->nitems * sizeof(struct fmt_item) >
		    h->chunk_len) { *why = "bad data length"; return -EBADMSG; }
	return 0;
}

static int chunk_check_next(const struct store *s, uint64_t addr, const struct fmt_chunk *h)
{
	uint64_t end = addr + h->chunk_len, n = h->next;
	uint64_t dev_end = s->sb.seg_start + s->sb.seg_count * s->sb.seg_size;

	if (n == end && seg_of(s, n) == seg_of(s, addr) &&
	    seg_addr(s, seg_of(s, addr)) + s->sb.seg_size - n >= FMT_BLOCK)
		return 0;
	if (n >= s->sb.seg_start && n < dev_end && (n - s->sb.seg_start) % s->sb.seg_size == 0)
		return 0;
	return -EBADMSG;
}

int chunk_read(struct store *s, uint64_t addr, uint64_t lsn, uint64_t prev_sum,
	       struct chunk_view *v, const char **why)
{
	uint8_t *buf = NULL;
	struct fmt_chunk h;
	int r;

	memset(v, 0, sizeof(*v));
	*why = "";
	if (addr % FMT_BLOCK || !chunk_addr_ok(s, addr, FMT_BLOCK)) {
		*why = "address outside the segments";
		return -EBADMSG;
	}
	r = io_read(s->io, &h, sizeof(h), addr);
	if (r) {
		*why = "read error";
		return r;
	}
	r = chunk_check_hdr(s, addr, &h, lsn, prev_sum, why);
	if (r)
		return r;
	buf = malloc(h.chunk_len);
	if (!buf)
		return -ENOMEM;
	r = io_read(s->io, buf, h.chunk_len, addr);
	if (r) {
		*why = "read error";
		goto fail;
	}
	const struct fmt_item *items = (const void *)(buf + FMT_CHUNK_DESC_OFF(h.data_len));
	r = -EBADMSG;
	if (chunk_sum(&h, items, h.nitems) != h.sum_csum) {
		*why = "summary checksum";
		goto fail;
	}
	if (csum64(buf + FMT_CHUNK_HDR, h.data_len) != h.data_csum) {
		*why = "data checksum";
		goto fail;
	}
	if (chunk_check_next(s, addr, &h)) {
		*why = "bad next address";
		goto fail;
	}
	for (uint32_t i = 0; i < h.nitems; i++) {
		const struct fmt_item *it = &items[i];
		if ((uint64_t)it->off + it->len > h.data_len || !it->len ||
		    it->kind >= FMT_KIND__COUNT || it->kind < FMT_KIND_PAGE ||
		    it->codec >= CODEC__COUNT) {
			*why = "bad item descriptor";
			goto fail;
		}
	}
	v->hdr = h;
	v->items = malloc(h.nitems * sizeof(struct fmt_item) + 1);
	v->data = malloc(h.data_len + 1);
	if (!v->items || !v->data) {
		chunk_view_free(v);
		r = -ENOMEM;
		goto fail;
	}
	memcpy(v->items, items, h.nitems * sizeof(struct fmt_item));
	memcpy(v->data, buf + FMT_CHUNK_HDR, h.data_len);
	free(buf);
	return 0;
fail:
	free(buf);
	return r;
}
