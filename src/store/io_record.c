/* Recording in-memory store_io: see io_record.h. */
#define LOG_PREFIX "io-record: "
#include "store/io_record.h"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct rec_write {
	uint64_t off;
	uint64_t len;
	uint64_t data;		/* offset of the bytes in the arena */
	uint64_t synced;	/* writes the newest sync before this one covered */
};

struct io_record {
	unsigned refs;
	uint64_t size;
	uint8_t *base;		/* the device when the recorder was made; NULL
				 * until the first write (then dev still is it) */
	uint8_t *dev;		/* the device now: every write applied */

	struct rec_write *w;
	uint64_t nw, capw;
	uint8_t *arena;		/* bytes of every write, back to back */
	uint64_t arena_len, arena_cap;
	uint64_t synced;	/* writes the newest sync covered */
	uint64_t nsync;

	/* Synced prefix of the newest crash image: base + writes [0, upto).
	 * Cuts are usually asked in increasing order, so it only advances. */
	uint8_t *cache;
	uint64_t cache_upto;
};

struct rec_io {
	struct store_io io;
	struct io_record *rec;
};

static struct io_record *rec_of(struct store_io *io)
{
	return ((struct rec_io *)io)->rec;
}

/* Whether [off, off + len) lies inside a device of size bytes. */
static int in_device(uint64_t size, uint64_t off, uint64_t len)
{
	return off <= size && len <= size - off;
}

static int rec_pread(struct store_io *io, void *buf, size_t len, uint64_t off)
{
	struct io_record *rec = rec_of(io);

	if (!in_device(rec->size, off, len))
		return -EIO;
	memcpy(buf, rec->dev + off, len);
	return 0;
}

static int grow(void **p, uint64_t *cap, uint64_t need, size_t elem)
{
	uint64_t n = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	q = realloc(*p, n * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

static int rec_pwrite(struct store_io *io, const void *buf, size_t len, uint64_t off)
{
	struct io_record *rec = rec_of(io);
	struct rec_write *w;

	if (!in_device(rec->size, off, len))
		return -ENOSPC;	/* as a block device says past its end */
	if (!len)
		return 0;
	if (!rec->base) {
		/* first write: keep the device as it was made, for crash images */
		rec->base = malloc(rec->size + 1);
		if (!rec->base)
			return -ENOMEM;
		memcpy(rec->base, rec->dev, rec->size);
	}
	if (grow((void **)&rec->w, &rec->capw, rec->nw + 1, sizeof(*rec->w)) ||
	    grow((void **)&rec->arena, &rec->arena_cap, rec->arena_len + len, 1))
		return -ENOMEM;
	w = &rec->w[rec->nw++];
	w->off = off;
	w->len = len;
	w->data = rec->arena_len;
	w->synced = rec->synced;
	memcpy(rec->arena + rec->arena_len, buf, len);
	rec->arena_len += len;
	memcpy(rec->dev + off, buf, len);
	return 0;
}

static int rec_sync(struct store_io *io)
{
	struct io_record *rec = rec_of(io);

	rec->synced = rec->nw;
	rec->nsync++;
	return 0;
}

static uint64_t rec_size(struct store_io *io)
{
	return rec_of(io)->size;
}

/* The device has a fixed size, like a block device. */
static int rec_resize(struct store_io *io, uint64_t size)
{
	return size <= rec_of(io)->size ? 0 : -ENOSPC;
}

static void rec_close(struct store_io *io)
{
	struct rec_io *h = (struct rec_io *)io;

	io_record_free(h->rec);
	free(h);
}

static const struct store_io_ops rec_ops = {
	.pread = rec_pread,
	.pwrite = rec_pwrite,
	.sync = rec_sync,
	.size = rec_size,
	.resize = rec_resize,
	.close = rec_close,
};

int io_record_new_take(uint8_t *img, uint64_t size, struct io_record **out)
{
	struct io_record *rec = calloc(1, sizeof(*rec));

	if (!rec)
		return -ENOMEM;
	rec->refs = 1;
	rec->size = size;
	rec->dev = img;
	*out = rec;
	return 0;
}

int io_record_new_image(const void *img, uint64_t size, struct io_record **out)
{
	uint8_t *dev;
	int r;

	if (size >= SIZE_MAX)
		return -EFBIG;
	/* +1: malloc(0) may return NULL for an empty device */
	dev = malloc(size + 1);
	if (!dev)
		return -ENOMEM;
	if (img)
		memcpy(dev, img, size);
	else
		memset(dev, 0, size);
	r = io_record_new_take(dev, size, out);
	if (r)
		free(dev);
	return r;
}

int io_record_new(uint64_t size, struct io_record **out)
{
	return io_record_new_image(NULL, size, out);
}

void io_record_free(struct io_record *rec)
{
	if (!rec || --rec->refs)
		return;
	free(rec->base);
	free(rec->dev);
	free(rec->w);
	free(rec->arena);
	free(rec->cache);
	free(rec);
}

int io_record_io(struct io_record *rec, struct store_io **out)
{
	struct rec_io *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->io.ops = &rec_ops;
	h->rec = rec;
	rec->refs++;
	*out = &h->io;
	return 0;
}

int io_record_open_image(const void *img, uint64_t size, struct store_io **out)
{
	struct io_record *rec;
	int r = io_record_new_image(img, size, &rec);

	if (r)
		return r;
	r = io_record_io(rec, out);
	io_record_free(rec);
	return r;
}

uint64_t io_record_size(const struct io_record *rec)
{
	return rec->size;
}

uint64_t io_record_writes(const struct io_record *rec)
{
	return rec->nw;
}

uint64_t io_record_syncs(const struct io_record *rec)
{
	return rec->nsync;
}

const uint8_t *io_record_device(const struct io_record *rec)
{
	return rec->dev;
}

int io_record_write_at(const struct io_record *rec, uint64_t i, uint64_t *off, uint64_t *len)
{
	if (i >= rec->nw)
		return -ERANGE;
	*off = rec->w[i].off;
	*len = rec->w[i].len;
	return 0;
}

uint64_t io_record_unsynced(const struct io_record *rec, uint64_t cut)
{
	if (!cut || cut > rec->nw)
		return 0;
	return cut - rec->w[cut - 1].synced;
}

/* splitmix64: small, good enough, and the same everywhere. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void apply(uint8_t *img, const struct io_record *rec, const struct rec_write *w)
{
	memcpy(img + w->off, rec->arena + w->data, w->len);
}

/* Apply the part of w that falls in device sector sec (absolute index). */
static void apply_sector(uint8_t *img, const struct io_record *rec,
			 const struct rec_write *w, uint64_t sec, int garbage, uint64_t *rs)
{
	uint64_t lo = sec * IO_RECORD_SECTOR, hi = lo + IO_RECORD_SECTOR;

	if (lo < w->off)
		lo = w->off;
	if (hi > w->off + w->len)
		hi = w->off + w->len;
	if (!garbage) {
		memcpy(img + lo, rec->arena + w->data + (lo - w->off), hi - lo);
		return;
	}
	for (uint64_t i = lo; i < hi; i++)
		img[i] = (uint8_t)rnd(rs);
}

/* Tear w: some of its sectors land, never all of them. */
static void apply_torn(uint8_t *img, const struct io_record *rec, const struct rec_write *w,
		       const struct io_record_crash *c, uint64_t *rs)
{
	uint64_t first = w->off / IO_RECORD_SECTOR;
	uint64_t nsec = (w->off + w->len - 1) / IO_RECORD_SECTOR - first + 1;
	uint64_t n = rnd(rs) % nsec, skip, s;
	enum io_record_tear how = c->tear;

	if (c->tear_fixed)
		n = c->tear_sectors < nsec ? c->tear_sectors : nsec - 1;
	switch (how) {
	case IO_RECORD_TEAR_PREFIX:
	case IO_RECORD_TEAR_GARBAGE:
		for (s = 0; s < n; s++)
			apply_sector(img, rec, w, first + s, 0, rs);
		if (how == IO_RECORD_TEAR_GARBAGE)
			apply_sector(img, rec, w, first + n, 1, rs);
		break;
	case IO_RECORD_TEAR_SECTORS:
		skip = rnd(rs) % nsec;	/* at least this one stays out */
		for (s = 0; s < nsec; s++)
			if (s != skip && (rnd(rs) & 1))
				apply_sector(img, rec, w, first + s, 0, rs);
		break;
	case IO_RECORD_TEAR_NONE:
		apply(img, rec, w);
		break;
	}
}

/* The synced prefix base + writes [0, upto), in rec->cache. */
static int synced_prefix(struct io_record *rec, uint64_t upto)
{
	if (!rec->cache) {
		rec->cache = malloc(rec->size + 1);
		if (!rec->cache)
			return -ENOMEM;
		rec->cache_upto = UINT64_MAX;
	}
	if (rec->cache_upto > upto) {
		memcpy(rec->cache, rec->base ? rec->base : rec->dev, rec->size);
		rec->cache_upto = 0;
	}
	for (; rec->cache_upto < upto; rec->cache_upto++)
		apply(rec->cache, rec, &rec->w[rec->cache_upto]);
	return 0;
}

int io_record_crash_image(struct io_record *rec, const struct io_record_crash *c, uint8_t **img)
{
	uint64_t cut = c->cut, durable, nun, napp = 0, i, rs;
	uint64_t *order = NULL;
	uint8_t *out;
	int r;

	if (cut > rec->nw)
		return -EINVAL;
	durable = cut ? rec->w[cut - 1].synced : 0;
	nun = cut - durable;
	r = synced_prefix(rec, durable);
	if (r)
		return r;
	out = malloc(rec->size + 1);
	order = malloc((nun + 1) * sizeof(*order));
	if (!out || !order) {
		free(out);
		free(order);
		return -ENOMEM;
	}
	memcpy(out, rec->cache, rec->size);

	rs = c->seed ^ (cut * 0xd1b54a32d192ed03ull);
	for (i = 0; i < nun; i++) {
		int keep = c->keep == IO_RECORD_KEEP_ALL ||
			   ((c->keep == IO_RECORD_KEEP_SUBSET || c->keep == IO_RECORD_KEEP_SHUFFLE) &&
			    (rnd(&rs) & 1));
		if (keep)
			order[napp++] = durable + i;
	}
	if (c->keep == IO_RECORD_KEEP_SHUFFLE)
		for (i = napp; i > 1; i--) {
			uint64_t j = rnd(&rs) % i, t = order[i - 1];
			order[i - 1] = order[j];
			order[j] = t;
		}

	if (c->tear != IO_RECORD_TEAR_NONE && napp) {
		/* A power cut tears the write in flight: the last one issued
		 * when all landed, any applied one when the disk reordered. */
		uint64_t torn = c->keep == IO_RECORD_KEEP_ALL ? napp - 1 : rnd(&rs) % napp;

		for (i = 0; i < napp; i++) {
			if (i == torn)
				apply_torn(out, rec, &rec->w[order[i]], c, &rs);
			else
				apply(out, rec, &rec->w[order[i]]);
		}
	} else {
		for (i = 0; i < napp; i++)
			apply(out, rec, &rec->w[order[i]]);
	}
	free(order);
	*img = out;
	return 0;
}
