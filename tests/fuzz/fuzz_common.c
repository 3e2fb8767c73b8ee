/* Shared parts of the store's fuzz targets: see fuzz_common.h. */
#include "fuzz_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/csum.h"
#include "store/format.h"
#include "store/io_record.h"
#include "store/store.h"

static void fill(uint8_t *p, size_t n, unsigned seed, int style)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		p[i] = style == 0 ? (uint8_t)s : style == 1 ? (uint8_t)("cryo log "[(i + seed) % 9]) : 0;
	}
}

static int commit(struct store *s, const char *obj, uint64_t base, unsigned seed, unsigned npages)
{
	uint8_t page[STORE_PAGE_SIZE], rec[3000];
	struct store_txn *t = NULL;
	uint64_t no;
	int r = store_txn_begin(s, obj, base, &t);

	for (unsigned i = 0; !r && i < npages; i++) {
		fill(page, sizeof(page), seed + i, (int)((seed + i) % 3));
		r = store_txn_put_page(t, 0x100 + (seed * 7 + i * 3) % 64, page);
	}
	if (!r)
		r = store_txn_put_zero(t, 0x900 + seed % 8);
	if (!r)
		r = store_txn_drop_pages(t, 0x100 + seed % 64, 2);
	if (!r) {
		fill(rec, sizeof(rec), seed, 1);
		r = store_txn_put_record(t, seed % 2 ? "regs" : "files", rec, 100 + seed * 37 % 2900);
	}
	if (!r)
		r = store_txn_put_page(t, STORE_VPN_MAX, page);
	if (r) {
		store_txn_abort(t);
		return r;
	}
	return store_txn_commit(t, &no);
}

static uint8_t *build(enum codec codec, size_t *size)
{
	struct store_create_opts co = {
		.size = FMT_SEG_START + (uint64_t)FUZZ_NSEGS * FUZZ_SEG_SIZE,
		.seg_size = FUZZ_SEG_SIZE, .codec = codec,
	};
	struct store_open_opts oo = { .no_autoclean = 1 };
	struct io_record *rec = NULL;
	struct store_io *io = NULL;
	struct store *s = NULL;
	uint8_t *img = NULL;
	int r;

	if (io_record_new(co.size, &rec))
		return NULL;
	r = io_record_io(rec, &io);
	if (!r)
		r = store_create_io(io, &co);
	if (!r)
		r = io_record_io(rec, &io);
	if (!r)
		r = store_open_io(io, &oo, &s);
	if (!r)
		r = commit(s, "editor", 0, 1, 24);
	if (!r)
		r = commit(s, "shell", 0, 2, 16);
	if (!r)
		r = commit(s, "editor", STORE_SNAP_NEWEST, 3, 6);
	if (!r)
		r = commit(s, "daemon", 0, 4, 8);
	if (!r)
		r = store_snap_delete(s, "shell", 1);
	if (!r)
		r = store_checkpoint(s);
	/* after the checkpoint: open has commits to roll forward */
	if (!r)
		r = commit(s, "editor", STORE_SNAP_NEWEST, 5, 5);
	if (!r)
		r = commit(s, "shell", 0, 6, 4);
	if (!r)
		r = store_retain(s, "editor", 2);
	if (!r) {
		img = malloc(co.size);
		if (img) {
			memcpy(img, io_record_device(rec), co.size);
			*size = co.size;
		}
	} else {
		fprintf(stderr, "fuzz: cannot build the seed store: %d\n", r);
	}
	store_close(s);
	io_record_free(rec);
	return img;
}

const uint8_t *fuzz_seed_image(enum codec codec, size_t *size)
{
	/* Built once per codec and kept for the life of the fuzzing process:
	 * libFuzzer calls the target millions of times. */
	static uint8_t *img[CODEC__COUNT];
	static size_t len[CODEC__COUNT];

	if (codec >= CODEC__COUNT)
		return NULL;
	if (!img[codec])
		img[codec] = build(codec, &len[codec]);
	*size = len[codec];
	return img[codec];
}

size_t fuzz_chunks(const uint8_t *img, size_t size, uint64_t *addr, size_t max)
{
	size_t n = 0;

	for (size_t off = FMT_SEG_START; off + FMT_BLOCK <= size && n < max; off += FMT_BLOCK) {
		uint64_t magic;

		memcpy(&magic, img + off, sizeof(magic));
		if (magic == FMT_CHUNK_MAGIC)
			addr[n++] = off;
	}
	return n;
}

/* Fix one chunk's descriptor, data and summary checksums in place; returns
 * its summary checksum. Layout (format.h): header, data area from byte 128,
 * descriptors from FMT_CHUNK_DESC_OFF(data length). */
static uint64_t fix_chunk(uint8_t *img, size_t size, uint64_t at)
{
	struct fmt_chunk h;
	uint64_t desc, end;
	XXH3_state_t st;
	int data_in;
	size_t n;

	memcpy(&h, img + at, sizeof(h));
	n = h.nitems;
	/* the descriptors where the store looks for them: the same macro */
	desc = at + FMT_CHUNK_DESC_OFF((uint64_t)h.data_len);
	end = desc + (uint64_t)n * sizeof(struct fmt_item);
	if (n > FMT_BLOCK * 64 || end > size)
		return h.sum_csum;	/* nonsense: leave it broken */
	data_in = at + FMT_CHUNK_HDR <= size && h.data_len <= size - at - FMT_CHUNK_HDR;
	for (size_t i = 0; data_in && i < n; i++) {
		struct fmt_item it;
		uint8_t *p = img + desc + i * sizeof(it);

		memcpy(&it, p, sizeof(it));
		if (it.off <= h.data_len && it.len <= h.data_len - it.off) {
			it.csum = csum32(img + at + FMT_CHUNK_HDR + it.off, it.len);
			memcpy(p, &it, sizeof(it));
		}
	}
	/* a data length past the device keeps its old data checksum, but the
	 * summary is repaired: the store must not read past the chunk */
	if (data_in)
		h.data_csum = csum64(img + at + FMT_CHUNK_HDR, h.data_len);
	h.sum_csum = 0;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, &h, sizeof(h));
	XXH3_64bits_update(&st, img + desc, n * sizeof(struct fmt_item));
	h.sum_csum = XXH3_64bits_digest(&st);
	memcpy(img + at, &h, sizeof(h));
	return h.sum_csum;
}

static uint64_t lsn_of(const uint8_t *img, uint64_t at)
{
	uint64_t v;
	memcpy(&v, img + at + offsetof(struct fmt_chunk, lsn), 8);
	return v;
}

static int by_lsn(const void *a, const void *b, void *img)
{
	uint64_t x = lsn_of(img, *(const uint64_t *)a), y = lsn_of(img, *(const uint64_t *)b);
	return x < y ? -1 : x > y;
}

/* Recompute e's checksum from the bytes it names, children first: index
 * nodes and record tables stored raw are walked, so a patched node, page or
 * record still checks and its parser sees it. Depth-bounded: a patched
 * entry may point anywhere, even at its own node. */
static void fix_entry(uint8_t *img, size_t size, struct fmt_entry *e, unsigned depth)
{
	uint64_t a = fmt_entry_addr(e);
	unsigned kind = fmt_entry_kind(e);

	if (depth > FMT_LEVELS + 1 || kind == FMT_KIND_NONE || kind == FMT_KIND_ZERO ||
	    a > size || e->len > size - a || !e->len)
		return;
	if (kind == FMT_KIND_NODE && fmt_entry_codec(e) == CODEC_RAW && e->len == FMT_BLOCK) {
		for (unsigned i = 0; i < FMT_FANOUT; i++) {
			struct fmt_entry c;

			memcpy(&c, img + a + i * sizeof(c), sizeof(c));
			fix_entry(img, size, &c, depth + 1);
			memcpy(img + a + i * sizeof(c), &c, sizeof(c));
		}
	} else if (kind == FMT_KIND_RECTAB && fmt_entry_codec(e) == CODEC_RAW) {
		for (uint64_t i = 0; i < e->len / sizeof(struct fmt_rec); i++) {
			struct fmt_rec r;

			memcpy(&r, img + a + i * sizeof(r), sizeof(r));
			fix_entry(img, size, &r.ent, depth + 1);
			memcpy(img + a + i * sizeof(r), &r, sizeof(r));
		}
	}
	e->csum = csum32(img + a, e->len);
}

/* The snapshots commits after the checkpoint add live in their OPS items
 * (stored raw in a raw store): repair their index and record tables. */
static void fix_ops(uint8_t *img, size_t size, const uint64_t *addr, size_t n)
{
	for (size_t c = 0; c < n; c++) {
		struct fmt_chunk h;
		uint64_t desc;

		memcpy(&h, img + addr[c], sizeof(h));
		desc = addr[c] + FMT_CHUNK_DESC_OFF((uint64_t)h.data_len);
		if (h.nitems > FMT_BLOCK * 64 || addr[c] + FMT_CHUNK_HDR > size ||
		    h.data_len > size - addr[c] - FMT_CHUNK_HDR ||
		    desc + (uint64_t)h.nitems * sizeof(struct fmt_item) > size)
			continue;
		for (uint32_t i = 0; i < h.nitems; i++) {
			struct fmt_item it;
			uint64_t at;

			memcpy(&it, img + desc + i * sizeof(it), sizeof(it));
			if (it.kind != FMT_KIND_OPS || it.codec != CODEC_RAW || it.off > h.data_len ||
			    it.len > h.data_len - it.off)
				continue;
			at = addr[c] + FMT_CHUNK_HDR + it.off;
			for (uint64_t k = 0; k < it.len / sizeof(struct fmt_op); k++) {
				struct fmt_op op;

				memcpy(&op, img + at + k * sizeof(op), sizeof(op));
				if (op.type != FMT_OP_SNAP_ADD && op.type != FMT_OP_SNAP_RELOC)
					continue;
				fix_entry(img, size, &op.snap.root, 0);
				fix_entry(img, size, &op.snap.rectab, 0);
				memcpy(img + at + k * sizeof(op), &op, sizeof(op));
			}
		}
	}
}

void fuzz_fix_checksums(uint8_t *img, size_t size)
{
	uint64_t addr[2048], sums[2048];
	size_t n;

	if (size >= sizeof(struct fmt_super)) {
		uint64_t c = csum64(img, offsetof(struct fmt_super, csum));
		memcpy(img + offsetof(struct fmt_super, csum), &c, 8);
	}
	n = fuzz_chunks(img, size, addr, 2048);
	fix_ops(img, size, addr, n);
	qsort_r(addr, n, sizeof(addr[0]), by_lsn, img);
	/* in lsn order: a chunk's prev_sum is the summary checksum of the
	 * chunk before it in the chain, so that one is final first */
	for (size_t i = 0; i < n; i++) {
		uint64_t lsn = lsn_of(img, addr[i]);

		for (size_t j = i; j-- > 0;) {
			uint64_t next;

			memcpy(&next, img + addr[j] + offsetof(struct fmt_chunk, next), 8);
			if (lsn_of(img, addr[j]) + 1 == lsn && next == addr[i]) {
				memcpy(img + addr[i] + offsetof(struct fmt_chunk, prev_sum), &sums[j], 8);
				break;
			}
		}
		sums[i] = fix_chunk(img, size, addr[i]);
	}
	for (unsigned s = 0; s < 2; s++) {
		struct fmt_slot sl;
		uint64_t at = FMT_SLOT_OFF(s);

		if (at + sizeof(sl) > size)
			break;
		memcpy(&sl, img + at, sizeof(sl));
		if (sl.state_addr <= size && sl.state_len <= size - sl.state_addr)
			sl.state_csum = csum64(img + sl.state_addr, sl.state_len);
		for (size_t i = 0; i < n; i++) {
			uint64_t next;

			memcpy(&next, img + addr[i] + offsetof(struct fmt_chunk, next), 8);
			if (next == sl.head && lsn_of(img, addr[i]) + 1 == sl.lsn)
				sl.prev_sum = sums[i];
		}
		sl.csum = csum64(&sl, offsetof(struct fmt_slot, csum));
		memcpy(img + at, &sl, sizeof(sl));
	}
}

struct walk_arg {
	struct store_snap *sn;
	uint8_t buf[STORE_PAGE_SIZE];
};

static int read_cb(void *arg, uint64_t vpn, enum store_page_kind kind)
{
	struct walk_arg *w = arg;

	(void)kind;
	store_snap_read_page(w->sn, vpn, w->buf);
	return 0;
}

static int key_cb(void *arg, const char *key, size_t len)
{
	struct walk_arg *w = arg;
	char k[STORE_KEY_MAX + 1];
	void *data = NULL;
	size_t n = 0;

	(void)len;	/* the record's length; the key is a C string */
	snprintf(k, sizeof(k), "%s", key);
	if (!store_snap_read_record(w->sn, k, &data, &n))
		free(data);
	return 0;
}

struct list_arg {
	struct store_snap_info *a;
	size_t n, cap;
};

static int list_cb(void *arg, const struct store_snap_info *info)
{
	struct list_arg *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		void *p;

		if (cap > 4096)
			return 1;	/* enough to walk */
		p = realloc(l->a, cap * sizeof(*l->a));
		if (!p)
			return -ENOMEM;
		l->a = p;
		l->cap = cap;
	}
	l->a[l->n++] = *info;
	return 0;
}

static void say(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

/* What the runs reached: the one interface libFuzzer gives a target is a
 * function of the input, so the tally lives here, for drivers to print. */
static struct fuzz_tally tally;

void fuzz_tally(struct fuzz_tally *t)
{
	*t = tally;
}

unsigned fuzz_exercise(const uint8_t *img, size_t size, int write)
{
	struct store_open_opts ro = { .read_only = 1, .cache_bytes = 1u << 20 };
	struct store_open_opts rw = { .no_autoclean = 0, .cache_bytes = 1u << 20 };
	struct store_fsck_report fr;
	struct list_arg l = { 0 };
	struct walk_arg *w = malloc(sizeof(*w));
	struct store_io *io = NULL;
	struct store *s = NULL;
	unsigned good = 0;

	if (!w || io_record_open_image(img, size, &io))
		goto out;
	tally.runs++;
	if (store_open_io(io, &ro, &s))
		goto out;
	tally.opened++;
	store_list(s, list_cb, &l);
	for (size_t i = 0; i < l.n; i++) {
		struct store_snap_info info;

		if (store_snap_open(s, l.a[i].object, l.a[i].no, &w->sn))
			continue;
		store_snap_info(w->sn, &info);
		store_snap_walk(w->sn, 0, STORE_VPN_MAX, read_cb, w);
		store_snap_keys(w->sn, key_cb, w);
		store_snap_close(w->sn);
		good++;
	}
	tally.snaps_read += good;
	if (store_fsck(s, &fr, say, NULL) == 0)
		tally.fsck_clean++;
	store_close(s);
	s = NULL;

	if (write && !io_record_open_image(img, size, &io) && !store_open_io(io, &rw, &s)) {
		struct store_txn *t = NULL;
		uint64_t no;

		memset(w->buf, 0x3c, sizeof(w->buf));
		if (!store_txn_begin(s, "fuzz", STORE_SNAP_NEWEST, &t)) {
			if (!store_txn_put_page(t, 0x100, w->buf) &&
			    !store_txn_put_record(t, "k", w->buf, 100))
				tally.committed += store_txn_commit(t, &no) == 0;
			else
				store_txn_abort(t);
		}
		if (l.n)
			store_snap_delete(s, l.a[0].object, l.a[0].no);
		{
			struct store_clean_report cr;
			store_clean(s, 0, &cr);
		}
		store_fsck(s, &fr, say, NULL);
	}
out:
	store_close(s);
	free(l.a);
	free(w);
	return good;
}
