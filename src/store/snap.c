/* Reading snapshots; listing, deleting and retaining them. */
#define LOG_PREFIX "store: "
#include "store/internal.h"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct store_snap {
	struct store *s;
	char name[FMT_NAME_LEN];
	uint64_t obj_id;
	struct fmt_snap d;
	struct fmt_rec *recs;		/* loaded on first use */
	bool recs_loaded;
};

/* A snapshot's record table, checked entry by entry (*out: caller frees). */
int rectab_load(struct store *s, const struct fmt_snap *d, struct fmt_rec **out)
{
	struct fmt_rec *recs;
	int r;

	*out = NULL;
	if (!d->nrec)
		return 0;
	if (fmt_entry_kind(&d->rectab) != FMT_KIND_RECTAB || d->nrec > STATE_NREC_MAX)
		return -EBADMSG;
	recs = malloc(d->nrec * sizeof(*recs));
	if (!recs)
		return -ENOMEM;
	r = item_read(s, &d->rectab, d->nrec * (uint32_t)sizeof(*recs), recs);
	for (uint32_t i = 0; !r && i < d->nrec; i++) {
		const struct fmt_rec *rec = &recs[i];
		size_t n = strnlen(rec->key, FMT_KEY_LEN);
		if (!n || n == FMT_KEY_LEN || (i && strcmp(recs[i - 1].key, rec->key) >= 0) ||
		    fmt_entry_kind(&rec->ent) != FMT_KIND_RECORD || rec->raw > STORE_RECORD_MAX ||
		    (rec->raw == 0) != (rec->ent.len == 0))
			r = -EBADMSG;
	}
	if (r) {
		free(recs);
		return r;
	}
	*out = recs;
	return 0;
}

int store_snap_open(struct store *s, const char *object, uint64_t snap, struct store_snap **out)
{
	struct obj_mem *o = obj_find(s, object);
	const struct fmt_snap *d = NULL;
	struct store_snap *sn;

	if (!o || !o->nsnaps)
		return -ENOENT;
	d = snap == STORE_SNAP_NEWEST ? &o->snaps[o->nsnaps - 1] : snap_find(o, snap);
	if (!d)
		return -ENOENT;
	sn = calloc(1, sizeof(*sn));
	if (!sn)
		return -ENOMEM;
	sn->s = s;
	memcpy(sn->name, o->name, sizeof(sn->name));
	sn->obj_id = o->id;
	sn->d = *d;
	s->snaps_open++;
	*out = sn;
	return 0;
}

void store_snap_close(struct store_snap *sn)
{
	if (!sn)
		return;
	sn->s->snaps_open--;
	free(sn->recs);
	free(sn);
}

int store_snap_read_page(struct store_snap *sn, uint64_t vpn, void *buf)
{
	struct fmt_entry e;
	int r = pt_lookup(sn->s, &sn->d.root, vpn, &e);

	if (r)
		return r;
	switch (fmt_entry_kind(&e)) {
	case FMT_KIND_NONE:
		return STORE_PAGE_NONE;
	case FMT_KIND_ZERO:
		memset(buf, 0, STORE_PAGE_SIZE);
		return STORE_PAGE_ZERO;
	default:
		r = item_read(sn->s, &e, STORE_PAGE_SIZE, buf);
		return r ? r : STORE_PAGE_DATA;
	}
}

int store_snap_read_pages(struct store_snap *sn, uint64_t first, size_t n, void *buf,
			  uint8_t *kinds)
{
	return bulk_read_pages(sn->s, &sn->d.root, first, n, buf, kinds);
}

int store_snap_plan(struct store_snap *sn, uint64_t first, size_t n, struct store_plan **out)
{
	return bulk_plan(sn->s, &sn->d.root, first, n, out);
}

int store_snap_walk(struct store_snap *sn, uint64_t first, uint64_t last, store_page_fn fn, void *arg)
{
	if (last > STORE_VPN_MAX)
		last = STORE_VPN_MAX;
	return pt_walk(sn->s, &sn->d.root, first, last, fn, arg);
}

static int recs_ensure(struct store_snap *sn)
{
	if (sn->recs_loaded)
		return 0;
	int r = rectab_load(sn->s, &sn->d, &sn->recs);
	if (!r)
		sn->recs_loaded = true;
	return r;
}

int store_snap_read_record(struct store_snap *sn, const char *key, void **data, size_t *len)
{
	int r = recs_ensure(sn);

	if (r)
		return r;
	for (uint32_t i = 0; i < sn->d.nrec; i++) {
		const struct fmt_rec *rec = &sn->recs[i];
		if (strcmp(rec->key, key))
			continue;
		void *buf = malloc(rec->raw ? rec->raw : 1);
		if (!buf)
			return -ENOMEM;
		r = rec->raw ? item_read(sn->s, &rec->ent, rec->raw, buf) : 0;
		if (r) {
			free(buf);
			return r;
		}
		*data = buf;
		*len = rec->raw;
		return 0;
	}
	return -ENOENT;
}

int store_snap_keys(struct store_snap *sn, store_key_fn fn, void *arg)
{
	int r = recs_ensure(sn);

	for (uint32_t i = 0; !r && i < sn->d.nrec; i++)
		r = fn(arg, sn->recs[i].key, sn->recs[i].raw);
	return r;
}

void store_snap_info(const struct store_snap *sn, struct store_snap_info *info)
{
	struct obj_mem o = { .id = sn->obj_id };
	memcpy(o.name, sn->name, sizeof(o.name));
	snap_to_info(&o, &sn->d, info);
}

/* ---- listing and deleting ---- */

static int list_obj(struct obj_mem *o, store_list_fn fn, void *arg)
{
	for (size_t k = 0; k < o->nsnaps; k++) {
		struct store_snap_info info;
		snap_to_info(o, &o->snaps[k], &info);
		int r = fn(arg, &info);
		if (r)
			return r;
	}
	return 0;
}

int store_list(struct store *s, store_list_fn fn, void *arg)
{
	for (size_t i = 0; i < s->nobj; i++) {
		int r = list_obj(s->objs[i], fn, arg);
		if (r)
			return r;
	}
	return 0;
}

int store_list_object(struct store *s, const char *object, store_list_fn fn, void *arg)
{
	struct obj_mem *o = obj_find(s, object);
	return o ? list_obj(o, fn, arg) : -ENOENT;
}

static int writable(struct store *s)
{
	if (s->ro)
		return -EROFS;
	if (s->poisoned)
		return -EIO;
	return s->txn_open ? -EBUSY : 0;
}

int store_snap_delete(struct store *s, const char *object, uint64_t snap)
{
	struct obj_mem *o = obj_find(s, object);
	struct fmt_op op = { .type = FMT_OP_SNAP_DEL };
	int r = writable(s);

	if (r)
		return r;
	if (!o || !snap_find(o, snap))
		return -ENOENT;
	op.snap.obj = o->id;
	op.snap.no = snap;
	return commit_ops(s, &op, 1);
}

int store_object_delete(struct store *s, const char *object)
{
	struct obj_mem *o = obj_find(s, object);
	struct fmt_op op = { .type = FMT_OP_OBJ_DEL };
	int r = writable(s);

	if (r)
		return r;
	if (!o)
		return -ENOENT;
	op.snap.obj = o->id;
	return commit_ops(s, &op, 1);
}

int store_retain(struct store *s, const char *object, unsigned keep)
{
	struct obj_mem *o = obj_find(s, object);
	struct fmt_op *ops;
	size_t n;
	int r = writable(s);

	if (r)
		return r;
	if (!o)
		return -ENOENT;
	if (o->nsnaps <= keep)
		return 0;
	n = o->nsnaps - keep;
	ops = calloc(n, sizeof(*ops));
	if (!ops)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		ops[i].type = FMT_OP_SNAP_DEL;
		ops[i].snap.obj = o->id;
		ops[i].snap.no = o->snaps[i].no;
	}
	r = commit_ops(s, ops, n);	/* one commit: all of them go, or none */
	free(ops);
	return r;
}
