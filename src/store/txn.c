/* Writing a snapshot: pages and records go to the log as they come; the
 * changed index nodes, the record table and the commit op follow at
 * commit, in the chunk that carries the COMMIT flag (I3). */
#define LOG_PREFIX "store: "
#include "store/internal.h"
#include "common/clock.h"
#include "store/batch.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct store_txn {
	struct store *s;
	char name[FMT_NAME_LEN];
	uint64_t obj_id, no, parent;
	struct fmt_entry base_root, base_rectab;
	uint32_t base_nrec;
	struct pt_node *root;
	struct fmt_rec *recs;		/* by key, ascending */
	size_t nrec, rec_cap;
	bool recs_changed;
	uint64_t pages, zeros;
	uint64_t bytes_at_begin;
	struct page_batch *batch;	/* pages not yet compressed */
	int err;			/* a failed put fails the commit */
};

static bool key_ok(const char *key)
{
	size_t n = strnlen(key, STORE_KEY_MAX + 1);
	return n && n <= STORE_KEY_MAX;
}

int store_txn_begin(struct store *s, const char *object, uint64_t base, struct store_txn **out)
{
	struct store_txn *t;
	struct obj_mem *o;
	const struct fmt_snap *b = NULL;
	int r;

	if (s->ro)
		return -EROFS;
	if (s->poisoned)
		return -EIO;
	if (s->txn_open)
		return -EBUSY;
	if (!name_ok(object))
		return -EINVAL;
	/* Clean ahead while no transaction pins the index, when the free
	 * segments would not hold the largest transaction seen so far (a
	 * group's snapshots are alike in size) with room to spare. The
	 * cleaner caps the goal at what dead space can pay for. */
	uint64_t need = segs_reserve(s) + s->txn_segs_peak + 2;
	if (!s->no_autoclean && !s->snaps_open &&
	    (segs_free(s) < need || segs_free(s) < s->sb.seg_count / 16)) {
		uint64_t want = segs_reserve(s) + 2 * s->txn_segs_peak + 2;
		if (want < s->sb.seg_count / 8)
			want = s->sb.seg_count / 8;
		r = store_clean(s, want, NULL);
		if (r && r != -ENOSPC)
			pr_warn("cleaning before a snapshot of %s failed: %s", object, store_strerror(r));
		if (s->poisoned)
			return -EIO;
	}
	o = obj_find(s, object);
	if (o && base == STORE_SNAP_NEWEST && o->nsnaps)
		b = &o->snaps[o->nsnaps - 1];
	else if (base && base != STORE_SNAP_NEWEST && !(o && (b = snap_find(o, base))))
		return -ENOENT;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->s = s;
	snprintf(t->name, sizeof(t->name), "%s", object);
	t->obj_id = o ? o->id : s->next_obj;
	t->no = o ? o->next_no : 1;
	if (b) {
		t->parent = b->no;
		t->base_root = b->root;
		t->base_rectab = b->rectab;
		t->base_nrec = b->nrec;
		t->pages = b->pages;
		t->zeros = b->zero_pages;
		r = rectab_load(s, b, &t->recs);
		if (r)
			goto fail;
		t->nrec = t->rec_cap = b->nrec;
	}
	r = pt_load_root(s, &t->base_root, &t->root);
	if (r)
		goto fail;
	t->bytes_at_begin = s->item_bytes;
	s->txn_segs = 0;
	s->txn_open = 1;
	*out = t;
	return 0;
fail:
	free(t->recs);
	free(t);
	return r;
}

static void txn_free(struct store_txn *t)
{
	if (t->s->txn_segs > t->s->txn_segs_peak)
		t->s->txn_segs_peak = t->s->txn_segs;
	t->s->txn_open = 0;
	batch_free(t->batch);
	pt_free(t->root);
	free(t->recs);
	free(t);
}

void store_txn_abort(struct store_txn *t)
{
	if (!t)
		return;
	/* items of this transaction still in the open chunk are dropped;
	 * ones already written are garbage the cleaner reclaims */
	t->s->cb.open = false;
	txn_free(t);
}

static int txn_set(struct store_txn *t, uint64_t vpn, struct fmt_entry e)
{
	struct fmt_entry old;
	int r = pt_set(t->s, t->root, vpn, e, &old);

	if (r)
		return t->err = r;
	unsigned ok = fmt_entry_kind(&old), nk = fmt_entry_kind(&e);
	t->pages += (ok == FMT_KIND_NONE);
	t->zeros += (nk == FMT_KIND_ZERO);
	t->zeros -= (ok == FMT_KIND_ZERO);
	return 0;
}

static bool page_is_zero(const void *page)
{
	const uint64_t *p = page;
	for (size_t i = 0; i < STORE_PAGE_SIZE / 8; i++)
		if (p[i])
			return false;
	return true;
}

static int apply_page(void *arg, uint64_t key, bool zero, enum codec used, const void *data,
		      uint32_t len)
{
	struct store_txn *t = arg;
	struct fmt_entry e = fmt_entry_make(0, FMT_KIND_ZERO, CODEC_RAW, 0, 0);

	if (!zero) {
		int r = log_add(t->s, FMT_KIND_PAGE, used, data, len, STORE_PAGE_SIZE, t->obj_id,
				key, 0, &e);
		if (r)
			return r;
	}
	return txn_set(t, key, e);
}

/* Compress and log what the batch holds; a failure sticks to the txn. */
static int txn_flush(struct store_txn *t)
{
	if (t->err || !t->batch || batch_empty(t->batch))
		return t->err;
	int r = batch_flush(t->batch, t->s->sb.codec, apply_page, t);
	if (r)
		t->err = r;
	return r;
}

static int txn_queue(struct store_txn *t, uint64_t vpn, const void *page)
{
	int r;

	if (t->err)
		return t->err;
	if (vpn > STORE_VPN_MAX)
		return -EINVAL;
	if (!t->batch && (r = batch_new(&t->batch)))
		return t->err = r;
	batch_add(t->batch, vpn, page);
	return batch_full(t->batch) ? txn_flush(t) : 0;
}

int store_txn_put_zero(struct store_txn *t, uint64_t vpn)
{
	return txn_queue(t, vpn, NULL);
}

int store_txn_put_page(struct store_txn *t, uint64_t vpn, const void *page)
{
	return txn_queue(t, vpn, page_is_zero(page) ? NULL : page);
}

int store_txn_drop_pages(struct store_txn *t, uint64_t vpn, uint64_t count)
{
	uint64_t pages = 0, zeros = 0;
	int r;

	if (txn_flush(t))
		return t->err;	/* drops apply after the puts before them */
	if (!count)
		return 0;
	if (vpn > STORE_VPN_MAX || count - 1 > STORE_VPN_MAX - vpn)
		return -EINVAL;
	r = pt_drop(t->s, t->root, vpn, vpn + count - 1, &pages, &zeros);
	if (r)
		return t->err = r;
	t->pages -= pages;
	t->zeros -= zeros;
	return 0;
}

static size_t rec_pos(const struct store_txn *t, const char *key, bool *found)
{
	size_t lo = 0, hi = t->nrec;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(t->recs[mid].key, key);
		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

int store_txn_put_record(struct store_txn *t, const char *key, const void *data, size_t len)
{
	struct fmt_rec rec = { 0 };
	bool found;
	size_t pos;
	int r;

	if (t->err)
		return t->err;
	if (!key_ok(key))
		return -EINVAL;
	if (len > STORE_RECORD_MAX)
		return -EFBIG;
	snprintf(rec.key, sizeof(rec.key), "%s", key);
	rec.raw = (uint32_t)len;
	rec.ent = fmt_entry_make(0, FMT_KIND_RECORD, CODEC_RAW, 0, 0);
	if (len) {
		r = log_add_compressed(t->s, FMT_KIND_RECORD, data, (uint32_t)len, t->obj_id, 0, 0,
				       &rec.ent);
		if (r)
			return t->err = r;
	}
	pos = rec_pos(t, key, &found);
	if (!found) {
		if (t->nrec == t->rec_cap) {
			size_t cap = t->rec_cap ? t->rec_cap * 2 : 16;
			struct fmt_rec *n = realloc(t->recs, cap * sizeof(*n));
			if (!n)
				return t->err = -ENOMEM;
			t->recs = n;
			t->rec_cap = cap;
		}
		memmove(&t->recs[pos + 1], &t->recs[pos], (t->nrec - pos) * sizeof(rec));
		t->nrec++;
	}
	t->recs[pos] = rec;
	t->recs_changed = true;
	return 0;
}

int store_txn_drop_record(struct store_txn *t, const char *key)
{
	bool found;
	size_t pos;

	if (t->err)
		return t->err;
	if (!key_ok(key))
		return -EINVAL;
	pos = rec_pos(t, key, &found);
	if (!found)
		return -ENOENT;
	memmove(&t->recs[pos], &t->recs[pos + 1], (t->nrec - pos - 1) * sizeof(*t->recs));
	t->nrec--;
	t->recs_changed = true;
	return 0;
}

int store_txn_commit(struct store_txn *t, uint64_t *snap_no)
{
	struct store *s = t->s;
	struct fmt_op op = { .type = FMT_OP_SNAP_ADD };
	struct fmt_snap *d = &op.snap;
	int r = txn_flush(t);

	if (r)
		goto fail;
	d->root = t->base_root;
	if (t->root->dirty) {
		r = pt_write(s, t->root, t->obj_id, &d->root);
		if (r)
			goto fail;
	}
	d->rectab = t->base_rectab;
	d->nrec = t->base_nrec;
	if (t->recs_changed) {
		d->nrec = (uint32_t)t->nrec;
		d->rectab = (struct fmt_entry){ 0 };
		if (t->nrec) {
			r = log_add_compressed(s, FMT_KIND_RECTAB, t->recs,
					       (uint32_t)(t->nrec * sizeof(*t->recs)), t->obj_id, 0, 0,
					       &d->rectab);
			if (r)
				goto fail;
		}
	}
	memcpy(op.name, t->name, sizeof(op.name));
	d->obj = t->obj_id;
	d->no = t->no;
	d->parent = t->parent;
	d->time_ns = wall_ns();
	d->pages = t->pages;
	d->zero_pages = t->zeros;
	d->written = s->item_bytes - t->bytes_at_begin;
	r = commit_ops(s, &op, 1);
	if (r)
		goto fail;
	if (snap_no)
		*snap_no = t->no;
	txn_free(t);
	return 0;
fail:
	store_txn_abort(t);
	return r;
}
