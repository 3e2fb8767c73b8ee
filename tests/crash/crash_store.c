/* Power-cut test of the store (issue 2, "Proof"; invariants I1..I8 of
 * store/format.h).
 *
 * 1. A deterministic workload runs once on a small store through the
 *    recording device (store/io_record.h): several objects, full and
 *    incremental snapshots (pages, zero pages, dropped ranges, records),
 *    snapshot deletes, retention, an object delete, explicit cleaning and
 *    checkpoints, and enough data for automatic checkpoints and cleaning.
 *    After every store call that returned success the model (crash_model.h)
 *    notes what is committed and at which write count the call returned.
 * 2. For every write k (cut points) and several flavours of power cut
 *    (clean cut, unsynced writes dropped, subset, reordered, one torn at a
 *    sector), the crash image is opened read-only and must:
 *      - open without writing (I5), fsck with 0 problems;
 *      - show exactly the snapshots of the last version whose call returned
 *        before the cut, or of the version after the call in flight (I3:
 *        all or nothing), each byte-identical: every page, every record;
 *      - open a second time to the same list and stat (I5);
 *      - for a sample (every state with CRYO_LONG=1): take a new commit
 *        after recovery, close, reopen, and still check clean (I1, I2).
 * 3. Fault points (CRYO_FAULT): EIO and ENOSPC on any write, EIO on any sync
 *    of a commit, a delete or a checkpoint: the call fails with that error,
 *    the handle refuses writes until reopened (I8), the state after reopen
 *    is the previous one (or the failed call complete, I8), byte-identical.
 *    EIO on reads: calls fail, no read returns wrong bytes.
 * 4. A store filled up: -ENOSPC, not poisoned, all committed data intact.
 *
 * Prints "crash states checked: N, failed: M"; exits 1 when M > 0.
 * CRYO_LONG=1: every cut point, every flavour, post-recovery commits on
 * every state. CRYO_CRASH_STRIDE=n: check every nth cut point. */
#include "crash_model.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/csum.h"
#include "common/fault.h"
#include "store/format.h"
#include "store/io_record.h"
#include "store/store.h"

#define SEG_SIZE	(256u * 1024u)
#define NSEGS		24u
#define DEV_SIZE	((uint64_t)FMT_SEG_START + (uint64_t)NSEGS * SEG_SIZE)
#define ROUNDS		24
#define CACHE_BYTES	(1u << 20)	/* small: thousands of opens */
#define MAX_SHOWN	25	/* failures printed in full */

static const char *const objs[] = { "alpha", "beta", "gamma", "delta" };
#define NOBJS	(sizeof(objs) / sizeof(objs[0]))

struct wl {
	struct io_record *rec;
	struct store *s;
	struct model m;
	uint64_t rng;
	uint64_t create_end;	/* writes when store_create_io returned */
	uint64_t ckpt_explicit, ckpt_seq_end, segs_cleaned, auto_ckpt_seen;
	uint8_t *final_img;	/* the device after the workload closed */
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- what the workload writes ---- */

enum style { ST_RANDOM, ST_TEXT, ST_SPARSE, ST_ZERO, ST__COUNT };

static void gen_bytes(uint8_t *p, size_t n, uint64_t seed, enum style st)
{
	static const char words[] = "persistent process freeze melt log segment cleaner ";
	uint64_t s = seed;

	switch (st) {
	case ST_RANDOM:
		for (size_t i = 0; i < n; i += 8) {
			uint64_t v = rnd(&s);
			memcpy(p + i, &v, n - i < 8 ? n - i : 8);
		}
		break;
	case ST_TEXT:
		for (size_t i = 0; i < n; i++)
			p[i] = (uint8_t)words[(i + seed) % (sizeof(words) - 1)];
		break;
	case ST_SPARSE:
		memset(p, 0, n);
		for (int i = 0; i < 5 && n; i++)
			p[rnd(&s) % n] = (uint8_t)(rnd(&s) | 1);
		break;
	default:
		memset(p, 0, n);
	}
}

/* Each object uses three regions: low, middle, and the top of the 48-bit
 * space (the index's last root slot). vpn 1 is never used: a hole to read. */
static uint64_t pick_vpn(struct wl *w, unsigned obj)
{
	static const uint64_t region[3] = { 0x400, 0x7f0000, STORE_VPN_MAX - 255 };
	uint64_t r = rnd(&w->rng);

	return region[r % 3] + obj * 0x100000ull * (r % 3 == 1) + (r >> 8) % 160;
}

#define CHECK(expr, ...)                                               \
	do {                                                           \
		int r_ = (expr);                                       \
		if (r_ < 0) {                                          \
			fprintf(stderr, "workload: %s = %d (%s): ", #expr, r_, \
				store_strerror(r_));                   \
			fprintf(stderr, __VA_ARGS__);                  \
			fprintf(stderr, "\n");                         \
			return r_;                                     \
		}                                                      \
	} while (0)

struct snap_plan {
	uint64_t base;		/* 0, STORE_SNAP_NEWEST or a number */
	unsigned pages, zeros, drops, recs, rec_drops;
	int abort;
};

static int txn_pages(struct wl *w, struct store_txn *t, struct m_snap *ms, unsigned obj,
		     const struct snap_plan *p)
{
	uint8_t page[STORE_PAGE_SIZE];

	for (unsigned i = 0; i < p->pages; i++) {
		uint64_t vpn = pick_vpn(w, obj), seed = rnd(&w->rng);
		enum style st = (enum style)(seed % ST__COUNT);

		gen_bytes(page, sizeof(page), seed, st);
		CHECK(store_txn_put_page(t, vpn, page), "%s vpn %#" PRIx64, objs[obj], vpn);
		if (st == ST_ZERO)
			CHECK(model_put_page(ms, vpn, STORE_PAGE_ZERO, 0), "model");
		else
			CHECK(model_put_page(ms, vpn, STORE_PAGE_DATA, csum64(page, sizeof(page))), "model");
	}
	for (unsigned i = 0; i < p->zeros; i++) {
		uint64_t vpn = pick_vpn(w, obj);

		CHECK(store_txn_put_zero(t, vpn), "%s vpn %#" PRIx64, objs[obj], vpn);
		CHECK(model_put_page(ms, vpn, STORE_PAGE_ZERO, 0), "model");
	}
	for (unsigned i = 0; i < p->drops; i++) {
		uint64_t vpn = pick_vpn(w, obj), n = 1 + rnd(&w->rng) % 24;

		if (vpn + n - 1 > STORE_VPN_MAX)
			n = STORE_VPN_MAX - vpn + 1;
		CHECK(store_txn_drop_pages(t, vpn, n), "%s drop %#" PRIx64 "+%" PRIu64,
		      objs[obj], vpn, n);
		model_drop_pages(ms, vpn, n);
	}
	return 0;
}

static int txn_records(struct wl *w, struct store_txn *t, struct m_snap *ms, unsigned obj,
		       const struct snap_plan *p)
{
	static uint8_t data[96 * 1024];
	char key[STORE_KEY_MAX + 1];

	for (unsigned i = 0; i < p->recs; i++) {
		uint64_t seed = rnd(&w->rng);
		size_t len = seed % 7 == 0 ? 30000 + seed % 60000 : seed % 5000;

		snprintf(key, sizeof(key), "rec.%s.%u", objs[obj], (unsigned)(seed >> 40) % 10);
		gen_bytes(data, len, seed, (enum style)((seed >> 8) % 3));
		CHECK(store_txn_put_record(t, key, data, len), "%s key %s len %zu", objs[obj], key, len);
		CHECK(model_put_rec(ms, key, csum64(data, len), len), "model");
	}
	for (unsigned i = 0; i < p->rec_drops && ms->nrec; i++) {
		char k[STORE_KEY_MAX + 1];

		snprintf(k, sizeof(k), "%s", ms->rec[rnd(&w->rng) % ms->nrec].key);
		CHECK(store_txn_drop_record(t, k), "%s key %s", objs[obj], k);
		model_drop_rec(ms, k);
	}
	return 0;
}

static int snapshot(struct wl *w, unsigned obj, const struct snap_plan *p)
{
	uint64_t s0 = io_record_writes(w->rec), no = 0;
	const struct m_snap *base = NULL;
	struct store_txn *t = NULL;
	struct m_snap *ms;
	char what[64];
	int id, r;

	if (p->base == STORE_SNAP_NEWEST) {
		int b = model_newest(&w->m, objs[obj]);
		base = b >= 0 ? model_snap(&w->m, (uint32_t)b) : NULL;
	} else if (p->base) {
		int b = model_find(&w->m, model_now(&w->m), objs[obj], p->base);
		if (b < 0) {
			fprintf(stderr, "workload: no base %s#%" PRIu64 "\n", objs[obj], p->base);
			return -ENOENT;
		}
		base = model_snap(&w->m, (uint32_t)b);
	}
	id = model_snap_new(&w->m, objs[obj], base);
	if (id < 0)
		return id;
	ms = model_snap(&w->m, (uint32_t)id);
	CHECK(store_txn_begin(w->s, objs[obj], p->base, &t), "%s base %" PRIu64, objs[obj], p->base);
	r = txn_pages(w, t, ms, obj, p);
	if (!r)
		r = txn_records(w, t, ms, obj, p);
	if (r || p->abort) {
		store_txn_abort(t);
		if (r)
			return r;
		return model_event(&w->m, s0, io_record_writes(w->rec), "abort");
	}
	CHECK(store_txn_commit(t, &no), "commit %s", objs[obj]);
	ms->no = no;
	CHECK(model_add(&w->m, (uint32_t)id), "model");
	snprintf(what, sizeof(what), "commit %s#%" PRIu64, objs[obj], no);
	return model_event(&w->m, s0, io_record_writes(w->rec), what);
}

struct del_arg {
	const char *obj;
	uint64_t no;		/* 0: every snapshot of obj */
	uint64_t below;		/* retention: numbers under this go */
};

static int del_pred(const struct m_snap *sn, void *arg)
{
	const struct del_arg *a = arg;

	if (strcmp(sn->obj, a->obj))
		return 0;
	if (a->below)
		return sn->no < a->below;
	return !a->no || sn->no == a->no;
}

static int count_obj(const struct model *m, const char *obj, uint64_t *nos, size_t max)
{
	const struct m_ver *v = model_now(m);
	size_t n = 0;

	for (size_t i = 0; i < v->n; i++) {
		const struct m_snap *sn = model_snap(m, v->ids[i]);
		if (!strcmp(sn->obj, obj) && n < max)
			nos[n++] = sn->no;
	}
	return (int)n;
}

static int retain(struct wl *w, unsigned obj, unsigned keep)
{
	uint64_t s0 = io_record_writes(w->rec), nos[256];
	int n = count_obj(&w->m, objs[obj], nos, 256);
	struct del_arg a = { objs[obj], 0, 0 };
	char what[64];

	if (n == 0)
		return 0;	/* -ENOENT: no such object, nothing to keep */
	CHECK(store_retain(w->s, objs[obj], keep), "%s keep %u", objs[obj], keep);
	if (n > (int)keep) {
		a.below = nos[n - keep];	/* list order: by number */
		CHECK(model_remove(&w->m, del_pred, &a), "model");
	}
	snprintf(what, sizeof(what), "retain %s %u", objs[obj], keep);
	return model_event(&w->m, s0, io_record_writes(w->rec), what);
}

static int snap_delete(struct wl *w, unsigned obj, int which)
{
	uint64_t s0 = io_record_writes(w->rec), nos[256];
	int n = count_obj(&w->m, objs[obj], nos, 256);
	struct del_arg a = { objs[obj], 0, 0 };
	char what[64];

	if (n == 0)
		return 0;
	a.no = nos[which < 0 ? n - 1 : which % n];
	CHECK(store_snap_delete(w->s, objs[obj], a.no), "%s#%" PRIu64, objs[obj], a.no);
	CHECK(model_remove(&w->m, del_pred, &a), "model");
	snprintf(what, sizeof(what), "delete %s#%" PRIu64, objs[obj], a.no);
	return model_event(&w->m, s0, io_record_writes(w->rec), what);
}

static int object_delete(struct wl *w, unsigned obj)
{
	uint64_t s0 = io_record_writes(w->rec);
	struct del_arg a = { objs[obj], 0, 0 };
	char what[64];

	CHECK(store_object_delete(w->s, objs[obj]), "%s", objs[obj]);
	CHECK(model_remove(&w->m, del_pred, &a), "model");
	snprintf(what, sizeof(what), "object delete %s", objs[obj]);
	return model_event(&w->m, s0, io_record_writes(w->rec), what);
}

static int upkeep(struct wl *w, int clean)
{
	uint64_t s0 = io_record_writes(w->rec);
	struct store_clean_report cr = { 0 };

	if (clean) {
		CHECK(store_clean(w->s, 0, &cr), "clean");
		w->segs_cleaned += cr.segs_cleaned;
	} else {
		CHECK(store_checkpoint(w->s), "checkpoint");
		w->ckpt_explicit++;
	}
	return model_event(&w->m, s0, io_record_writes(w->rec), clean ? "clean" : "checkpoint");
}

static int one_round(struct wl *w, int round, int *gamma_gone)
{
	for (unsigned o = 0; o < NOBJS; o++) {
		struct snap_plan p = {
			.base = round == 0 ? 0 : STORE_SNAP_NEWEST,
			.pages = round == 0 ? 100 : 6 + (unsigned)(rnd(&w->rng) % 30),
			.zeros = (unsigned)(rnd(&w->rng) % 5),
			.drops = round == 0 ? 0 : (unsigned)(rnd(&w->rng) % 3),
			.recs = 1 + (unsigned)(rnd(&w->rng) % 3),
			.rec_drops = round % 4 == 3,
			.abort = round == 9 && o == 1,
		};
		uint64_t nos[256];
		int n;

		if (o == 2 && *gamma_gone)
			continue;
		n = count_obj(&w->m, objs[o], nos, 256);
		if (n == 0)
			p.base = 0, p.pages = 80;
		else if (round % 5 == 3 && o == 1)
			p.base = nos[0];	/* explicit older base */
		else if (round == 12 && o == 0)
			p.base = 0;		/* a full snapshot again */
		if (snapshot(w, o, &p))
			return -1;
	}
	if (round % 3 == 2 && retain(w, (unsigned)(round / 3) % NOBJS, 3))
		return -1;
	if (round % 4 == 1 && snap_delete(w, (unsigned)round % NOBJS, round))
		return -1;
	if (round == 7) {
		if (object_delete(w, 2))
			return -1;
		*gamma_gone = 1;
	}
	if (round == 11)
		*gamma_gone = 0;	/* made again, from number 1 or on */
	if (round % 5 == 4 && upkeep(w, 1))
		return -1;
	if (round % 6 == 5 && upkeep(w, 0))
		return -1;
	return 0;
}

static int workload(struct wl *w)
{
	struct store_create_opts co = { .size = DEV_SIZE, .seg_size = SEG_SIZE, .codec = CODEC_LZ4 };
	struct store_open_opts oo = { 0 };
	struct store_io *io;
	struct store_stat st;
	uint64_t s0, seq0;
	int gamma_gone = 0, r;

	w->rng = 0x5eed;
	if (model_init(&w->m) || io_record_new(DEV_SIZE, &w->rec))
		return -ENOMEM;
	CHECK(io_record_io(w->rec, &io), "io");
	CHECK(store_create_io(io, &co), "create");
	w->create_end = io_record_writes(w->rec);
	CHECK(model_event(&w->m, 0, w->create_end, "create"), "model");
	s0 = io_record_writes(w->rec);
	CHECK(io_record_io(w->rec, &io), "io");
	CHECK(store_open_io(io, &oo, &w->s), "open");
	CHECK(model_event(&w->m, s0, io_record_writes(w->rec), "open"), "model");
	CHECK(store_stat(w->s, &st), "stat");
	seq0 = st.ckpt_seq;

	for (int round = 0; round < ROUNDS; round++)
		if (one_round(w, round, &gamma_gone))
			return -1;

	CHECK(store_stat(w->s, &st), "stat");
	w->ckpt_seq_end = st.ckpt_seq;
	w->segs_cleaned += st.segs_cleaned;
	w->auto_ckpt_seen = st.ckpt_seq - seq0 > w->ckpt_explicit;
	printf("workload: %zu calls, %" PRIu64 " writes, %" PRIu64 " syncs, %zu snapshots kept, "
	       "checkpoints %" PRIu64 " (%" PRIu64 " explicit), segments cleaned %" PRIu64
	       ", free %" PRIu64 "/%" PRIu64 "\n",
	       w->m.nevs, io_record_writes(w->rec), io_record_syncs(w->rec), model_now(&w->m)->n,
	       st.ckpt_seq - seq0, w->ckpt_explicit, st.segs_cleaned, st.segs_free, st.segs);
	s0 = io_record_writes(w->rec);
	r = store_close(w->s);
	w->s = NULL;
	CHECK(r, "close");
	CHECK(model_event(&w->m, s0, io_record_writes(w->rec), "close"), "model");
	w->final_img = malloc(DEV_SIZE);
	if (!w->final_img)
		return -ENOMEM;
	memcpy(w->final_img, io_record_device(w->rec), DEV_SIZE);
	return 0;
}

/* ---- checking a store against the model ---- */

struct why {
	char msg[512];
	int set;
};

static void whyf(struct why *y, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void whyf(struct why *y, const char *fmt, ...)
{
	va_list ap;

	if (y->set)
		return;	/* the first reason is the one that matters */
	va_start(ap, fmt);
	vsnprintf(y->msg, sizeof(y->msg), fmt, ap);
	va_end(ap);
	y->set = 1;
}

struct walk {
	struct m_page *pg;
	size_t n, cap;
};

static int walk_cb(void *arg, uint64_t vpn, enum store_page_kind kind)
{
	struct walk *wk = arg;

	if (wk->n == wk->cap) {
		size_t cap = wk->cap ? wk->cap * 2 : 256;
		void *p = realloc(wk->pg, cap * sizeof(*wk->pg));
		if (!p)
			return -ENOMEM;
		wk->pg = p;
		wk->cap = cap;
	}
	wk->pg[wk->n++] = (struct m_page){ .vpn = vpn, .kind = (int)kind };
	return 0;
}

struct keys {
	struct m_rec *k;
	size_t n, cap;
};

/* store_snap_keys gives each key (a C string) with its record's length. */
static int keys_cb(void *arg, const char *key, size_t len)
{
	struct keys *ks = arg;

	if (strlen(key) > STORE_KEY_MAX)
		return -E2BIG;
	if (ks->n == ks->cap) {
		size_t cap = ks->cap ? ks->cap * 2 : 16;
		void *p = realloc(ks->k, cap * sizeof(*ks->k));
		if (!p)
			return -ENOMEM;
		ks->k = p;
		ks->cap = cap;
	}
	snprintf(ks->k[ks->n].key, sizeof(ks->k[ks->n].key), "%s", key);
	ks->k[ks->n].len = len;
	ks->n++;
	return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

static void check_pages(struct store_snap *sn, const struct m_snap *ms, struct why *y)
{
	uint8_t buf[STORE_PAGE_SIZE];
	struct walk wk = { 0 };
	int r = store_snap_walk(sn, 0, STORE_VPN_MAX, walk_cb, &wk);

	if (r) {
		whyf(y, "%s#%" PRIu64 ": walk = %d", ms->obj, ms->no, r);
		goto out;
	}
	if (wk.n != ms->npg)
		whyf(y, "%s#%" PRIu64 ": %zu pages, want %zu", ms->obj, ms->no, wk.n, ms->npg);
	for (size_t i = 0; i < wk.n && i < ms->npg && !y->set; i++) {
		const struct m_page *want = &ms->pg[i];

		if (wk.pg[i].vpn != want->vpn || wk.pg[i].kind != want->kind) {
			whyf(y, "%s#%" PRIu64 ": page %zu is vpn %#" PRIx64 " kind %d, want %#" PRIx64
			     " kind %d", ms->obj, ms->no, i, wk.pg[i].vpn, wk.pg[i].kind,
			     want->vpn, want->kind);
			break;
		}
		memset(buf, 0xee, sizeof(buf));
		r = store_snap_read_page(sn, want->vpn, buf);
		if (r != want->kind)
			whyf(y, "%s#%" PRIu64 ": read vpn %#" PRIx64 " = %d, want kind %d",
			     ms->obj, ms->no, want->vpn, r, want->kind);
		else if (want->kind == STORE_PAGE_ZERO && !all_zero(buf, sizeof(buf)))
			whyf(y, "%s#%" PRIu64 ": zero page %#" PRIx64 " reads non-zero",
			     ms->obj, ms->no, want->vpn);
		else if (want->kind == STORE_PAGE_DATA && csum64(buf, sizeof(buf)) != want->hash)
			whyf(y, "%s#%" PRIu64 ": page %#" PRIx64 " differs", ms->obj, ms->no, want->vpn);
	}
	r = store_snap_read_page(sn, 1, buf);	/* vpn 1: never written */
	if (r != STORE_PAGE_NONE)
		whyf(y, "%s#%" PRIu64 ": hole vpn 1 reads %d", ms->obj, ms->no, r);
out:
	free(wk.pg);
}

static void check_records(struct store_snap *sn, const struct m_snap *ms, struct why *y)
{
	struct keys ks = { 0 };
	int r = store_snap_keys(sn, keys_cb, &ks);

	if (r) {
		whyf(y, "%s#%" PRIu64 ": keys = %d", ms->obj, ms->no, r);
		goto out;
	}
	if (ks.n != ms->nrec)
		whyf(y, "%s#%" PRIu64 ": %zu records, want %zu", ms->obj, ms->no, ks.n, ms->nrec);
	for (size_t i = 0; i < ks.n && i < ms->nrec && !y->set; i++) {
		void *data = NULL;
		size_t len = 0;

		if (strcmp(ks.k[i].key, ms->rec[i].key) || ks.k[i].len != ms->rec[i].len) {
			whyf(y, "%s#%" PRIu64 ": key %zu is %s (%zu bytes), want %s (%zu)", ms->obj,
			     ms->no, i, ks.k[i].key, ks.k[i].len, ms->rec[i].key, ms->rec[i].len);
			break;
		}
		r = store_snap_read_record(sn, ms->rec[i].key, &data, &len);
		if (r)
			whyf(y, "%s#%" PRIu64 ": read record %s = %d", ms->obj, ms->no, ms->rec[i].key, r);
		else if (len != ms->rec[i].len || csum64(data, len) != ms->rec[i].hash)
			whyf(y, "%s#%" PRIu64 ": record %s differs (len %zu, want %zu)", ms->obj, ms->no,
			     ms->rec[i].key, len, ms->rec[i].len);
		free(data);
	}
out:
	free(ks.k);
}

static void check_snapshot(struct store *s, const struct m_snap *ms, struct why *y)
{
	struct store_snap *sn = NULL;
	struct store_snap_info info;
	uint64_t zeros = 0;
	int r = store_snap_open(s, ms->obj, ms->no, &sn);

	if (r) {
		whyf(y, "%s#%" PRIu64 ": open = %d", ms->obj, ms->no, r);
		return;
	}
	for (size_t i = 0; i < ms->npg; i++)
		zeros += ms->pg[i].kind == STORE_PAGE_ZERO;
	store_snap_info(sn, &info);
	if (strcmp(info.object, ms->obj) || info.no != ms->no || info.pages != ms->npg ||
	    info.zero_pages != zeros || info.records != ms->nrec)
		whyf(y, "%s#%" PRIu64 ": info says %s#%" PRIu64 " pages %" PRIu64 " zero %" PRIu64
		     " records %u, want pages %zu zero %" PRIu64 " records %zu", ms->obj, ms->no,
		     info.object, info.no, info.pages, info.zero_pages, info.records, ms->npg, zeros,
		     ms->nrec);
	check_pages(sn, ms, y);
	check_records(sn, ms, y);
	store_snap_close(sn);
}

struct list {
	struct store_snap_info *a;
	size_t n, cap;
};

static int list_cb(void *arg, const struct store_snap_info *info)
{
	struct list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		void *p = realloc(l->a, cap * sizeof(*l->a));
		if (!p)
			return -ENOMEM;
		l->a = p;
		l->cap = cap;
	}
	l->a[l->n++] = *info;
	return 0;
}

static int list_is(const struct model *m, const struct list *l, const uint32_t *ids, size_t n)
{
	if (l->n != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct m_snap *sn = model_snap(m, ids[i]);
		if (strcmp(l->a[i].object, sn->obj) || l->a[i].no != sn->no)
			return 0;
	}
	return 1;
}

static void list_str(char *buf, size_t len, const struct list *l)
{
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; i < l->n && o + 1 < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s#%" PRIu64 " ", l->a[i].object, l->a[i].no);
}

static void ver_str(char *buf, size_t len, const struct model *m, const uint32_t *ids, size_t n)
{
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n && o + 1 < len; i++) {
		const struct m_snap *sn = model_snap(m, ids[i]);
		o += (size_t)snprintf(buf + o, len - o, "%s#%" PRIu64 " ", sn->obj, sn->no);
	}
}

static int same_lists(const struct list *a, const struct list *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct store_snap_info *x = &a->a[i], *y = &b->a[i];
		if (strcmp(x->object, y->object) || x->object_id != y->object_id || x->no != y->no ||
		    x->parent != y->parent || x->time_ns != y->time_ns || x->pages != y->pages ||
		    x->zero_pages != y->zero_pages || x->records != y->records ||
		    x->written != y->written)
			return 0;
	}
	return 1;
}

static int same_stat(const struct store_stat *a, const struct store_stat *b)
{
	return a->segs_free == b->segs_free && a->segs_used == b->segs_used &&
	       a->segs_pending == b->segs_pending && a->objects == b->objects &&
	       a->snapshots == b->snapshots && a->live_bytes == b->live_bytes &&
	       a->lsn == b->lsn && a->ckpt_seq == b->ckpt_seq && a->open_chunks == b->open_chunks;
}

static void say_cb(void *arg, const char *line)
{
	struct why *y = arg;
	whyf(y, "fsck: %s", line);
}

/* Open io (consumed), fsck, and check the visible set is one of the ids
 * lists given (exactly) and byte-identical. *which: the list it matched. */
static int open_and_check(struct store_io *io, int read_only, const struct model *m,
			  const uint32_t *const *ids, const size_t *nids, int nlists,
			  struct store **out, struct list *l, int *which, struct why *y)
{
	struct store_open_opts oo = { .read_only = read_only, .no_autoclean = 1,
				      .cache_bytes = CACHE_BYTES };
	struct store_fsck_report fr = { 0 };
	struct store *s = NULL;
	int r = store_open_io(io, &oo, &s);

	*which = -1;
	if (r) {
		whyf(y, "open = %d (%s)", r, store_strerror(r));
		return r;
	}
	r = store_fsck(s, &fr, say_cb, y);
	if (r || fr.problems)
		whyf(y, "fsck = %d, %" PRIu64 " problems", r, fr.problems);
	r = store_list(s, list_cb, l);
	if (r)
		whyf(y, "list = %d", r);
	for (int i = 0; i < nlists && *which < 0; i++)
		if (list_is(m, l, ids[i], nids[i]))
			*which = i;
	if (*which < 0) {
		char got[300], want[300], alt[300] = "";

		list_str(got, sizeof(got), l);
		ver_str(want, sizeof(want), m, ids[0], nids[0]);
		if (nlists > 1)
			ver_str(alt, sizeof(alt), m, ids[1], nids[1]);
		whyf(y, "visible [%s], want [%s]%s%s%s", got, want, nlists > 1 ? " or [" : "", alt,
		     nlists > 1 ? "]" : "");
	} else {
		for (size_t i = 0; i < nids[*which] && !y->set; i++)
			check_snapshot(s, model_snap(m, ids[*which][i]), y);
	}
	*out = s;
	return 0;
}

struct ctx {
	struct wl *w;
	uint64_t states, failed, post_checked, open_failed_early;
	uint32_t post_id;	/* model snapshot a post-recovery commit writes */
	int long_run;
};

/* After recovery the store must take new commits without harm to what
 * it recovered (a stale chunk must not continue the log, I1/I2): commit,
 * close (a checkpoint), reopen, check again. */
static void post_commit(struct ctx *c, const uint8_t *img, const uint32_t *ids, size_t n,
			struct why *y)
{
	const struct m_snap *ps = model_snap(&c->w->m, c->post_id);
	uint32_t *with = malloc((n + 1) * sizeof(*with));
	struct io_record *rec = NULL;
	struct store_io *io = NULL;
	struct store *s = NULL;
	struct store_txn *t = NULL;
	struct list l = { 0 };
	uint8_t page[STORE_PAGE_SIZE];
	size_t nwith = n + 1;
	uint64_t no = 0;
	int which, r;

	if (!with || io_record_new_image(img, DEV_SIZE, &rec) || io_record_io(rec, &io)) {
		whyf(y, "post: no memory");
		goto out;
	}
	if (n)
		memcpy(with, ids, n * sizeof(*with));
	with[n] = c->post_id;	/* "zzpost" sorts after every workload object */
	r = open_and_check(io, 0, &c->w->m, &ids, &n, 1, &s, &l, &which, y);
	if (r || y->set)
		goto out;
	r = store_txn_begin(s, "zzpost", 0, &t);
	for (size_t i = 0; !r && i < ps->npg; i++) {
		gen_bytes(page, sizeof(page), ps->pg[i].vpn, ST_TEXT);
		r = store_txn_put_page(t, ps->pg[i].vpn, page);
	}
	if (!r) {
		r = store_txn_commit(t, &no);
	} else {
		store_txn_abort(t);
	}
	if (r || no != 1) {
		whyf(y, "post: commit after recovery = %d (no %" PRIu64 ")", r, no);
		goto out;
	}
	r = store_close(s);
	s = NULL;
	if (r) {
		whyf(y, "post: close = %d", r);
		goto out;
	}
	l.n = 0;
	if (io_record_io(rec, &io)) {
		whyf(y, "post: no memory");
		goto out;
	}
	r = open_and_check(io, 1, &c->w->m, (const uint32_t **)&with, &nwith, 1, &s, &l, &which, y);
	if (y->set)
		whyf(y, "post: after commit and reopen");
	c->post_checked++;
out:
	store_close(s);
	io_record_free(rec);
	free(l.a);
	free(with);
}

/* Check one crash image (taken over: freed here) for a cut after write
 * k-1. 0 when it passes. */
static int check_state(struct ctx *c, uint8_t *img, uint64_t k, const char *flavour,
		       int post)
{
	const struct model *m = &c->w->m;
	const struct m_ev *inflight;
	size_t va, vb, nids[2];
	const uint32_t *ids[2];
	struct io_record *rec = NULL;
	struct store_io *io = NULL;
	struct store *s = NULL;
	struct store_stat st1, st2;
	struct list l1 = { 0 }, l2 = { 0 };
	struct why y = { .set = 0 };
	int which = -1, r;

	model_allowed(m, k, &va, &vb, &inflight);
	ids[0] = m->vers[va].ids;
	nids[0] = m->vers[va].n;
	ids[1] = m->vers[vb].ids;
	nids[1] = m->vers[vb].n;
	c->states++;

	if (io_record_new_take(img, DEV_SIZE, &rec)) {
		free(img);
		whyf(&y, "no memory");
		goto out;
	}
	if (io_record_io(rec, &io)) {
		whyf(&y, "no memory");
		goto out;
	}
	r = open_and_check(io, 1, m, ids, nids, va == vb ? 1 : 2, &s, &l1, &which, &y);
	if (r && k <= c->w->create_end) {
		/* power cut before store_create returned: no store is fine */
		c->open_failed_early++;
		y.set = 0;
		goto out;
	}
	if (r)
		goto out;
	if (io_record_writes(rec))
		whyf(&y, "I5: read-only open and checks wrote %" PRIu64 " times", io_record_writes(rec));
	if (store_stat(s, &st1))
		whyf(&y, "stat failed");
	store_close(s);
	s = NULL;
	if (y.set)
		goto out;

	/* I5: recovery again, on the same bytes, finds the same */
	if (io_record_io(rec, &io)) {
		whyf(&y, "no memory");
		goto out;
	}
	r = store_open_io(io, &(struct store_open_opts){ .read_only = 1, .cache_bytes = CACHE_BYTES }, &s);
	if (r) {
		whyf(&y, "I5: second open = %d", r);
		goto out;
	}
	if (store_list(s, list_cb, &l2) || !same_lists(&l1, &l2))
		whyf(&y, "I5: second open lists something else");
	if (store_stat(s, &st2) || !same_stat(&st1, &st2))
		whyf(&y, "I5: second open: stat differs (lsn %" PRIu64 "/%" PRIu64 ", seq %" PRIu64
		     "/%" PRIu64 ", live %" PRIu64 "/%" PRIu64 ")", st1.lsn, st2.lsn, st1.ckpt_seq,
		     st2.ckpt_seq, st1.live_bytes, st2.live_bytes);
	store_close(s);
	s = NULL;
	if (!y.set && post && which >= 0)
		post_commit(c, io_record_device(rec), ids[which], nids[which], &y);
out:
	store_close(s);
	io_record_free(rec);
	free(l1.a);
	free(l2.a);
	if (!y.set)
		return 0;
	if (c->failed++ < MAX_SHOWN) {
		uint64_t off = 0, len = 0;

		if (k)
			io_record_write_at(c->w->rec, k - 1, &off, &len);
		printf("FAIL cut %" PRIu64 " (%s; last write %" PRIu64 "+%" PRIu64 ", %" PRIu64
		       " unsynced; in flight: %s): %s\n", k, flavour, off, len,
		       io_record_unsynced(c->w->rec, k), inflight ? inflight->what : "nothing", y.msg);
	}
	return 1;
}

/* The power cuts made at one cut point. */
struct variant {
	struct io_record_crash cr;
	char name[48];
};

enum { FL_CLEAN, FL_DROPPED, FL_SUBSET, FL_REORDERED, FL_TORN_PREFIX, FL_TORN_GARBAGE,
       FL_TORN_SECTORS, FL__COUNT };
static const char *const fl_names[FL__COUNT] = {
	"clean cut", "unsynced dropped", "unsynced subset", "unsynced reordered",
	"torn prefix", "torn garbage", "torn sectors",
};

static void add(struct variant *v, size_t *n, unsigned fl, uint64_t k, enum io_record_keep keep,
		enum io_record_tear tear, int fixed, uint32_t at, uint64_t seed, unsigned *kind)
{
	struct variant *x = &v[*n];

	x->cr = (struct io_record_crash){ .cut = k, .keep = keep, .tear = tear, .seed = seed,
					  .tear_fixed = fixed, .tear_sectors = at };
	if (fixed)
		snprintf(x->name, sizeof(x->name), "%s at sector %u", fl_names[fl], at);
	else
		snprintf(x->name, sizeof(x->name), "%s, seed %" PRIu64, fl_names[fl], seed);
	kind[(*n)++] = fl;
}

/* The states a cut after write k-1 can leave that the others do not: the
 * clean cut; with two or more unsynced writes, dropped (once per window),
 * subsets and reorderings; for a write of several sectors, torn after 0,
 * 1, half and all but one of its sectors, garbage after 1, and random
 * sector subsets (seeds of them). full (CRYO_LONG) adds tears after 2 and
 * 8 sectors, garbage after 0 and all but one, and more seeds. */
static size_t variants(const struct io_record *rec, uint64_t k, unsigned seeds, int full,
		       struct variant *v, unsigned *kind)
{
	uint64_t un = io_record_unsynced(rec, k), off = 0, len = 0, nsec;
	uint32_t cuts[6], gcuts[3];
	size_t n = 0, nc = 0, ng = 0;

	add(v, &n, FL_CLEAN, k, IO_RECORD_KEEP_ALL, IO_RECORD_TEAR_NONE, 0, 0, 0, kind);
	if (!k)
		return n;
	io_record_write_at(rec, k - 1, &off, &len);
	nsec = (off + len - 1) / IO_RECORD_SECTOR - off / IO_RECORD_SECTOR + 1;
	if (un >= 2) {
		if (k == io_record_writes(rec) || io_record_unsynced(rec, k + 1) != un + 1)
			add(v, &n, FL_DROPPED, k, IO_RECORD_KEEP_NONE, IO_RECORD_TEAR_NONE, 0, 0, 0, kind);
		for (unsigned s = 0; s < (full ? 3u : 1u); s++) {
			add(v, &n, FL_SUBSET, k, IO_RECORD_KEEP_SUBSET, IO_RECORD_TEAR_NONE, 0, 0, k * 31 + s, kind);
			add(v, &n, FL_REORDERED, k, IO_RECORD_KEEP_SHUFFLE, IO_RECORD_TEAR_NONE, 0, 0, k * 37 + s, kind);
		}
	}
	if (nsec > 1) {
		/* distinct sector counts below nsec, in increasing order */
		uint32_t want[] = { 0, 1, 2, 8, (uint32_t)nsec / 2, (uint32_t)nsec - 1 };
		for (unsigned i = 0; i < 6; i++)
			if ((full || (i != 2 && i != 3)) && want[i] < nsec &&
			    (!nc || want[i] > cuts[nc - 1]))
				cuts[nc++] = want[i];
		uint32_t gwant[] = { 0, 1, (uint32_t)nsec - 1 };
		for (unsigned i = 0; i < 3; i++)
			if ((full || i == 1) && gwant[i] < nsec && (!ng || gwant[i] > gcuts[ng - 1]))
				gcuts[ng++] = gwant[i];
	} else {
		gcuts[ng++] = 0;	/* one sector: only garbage tears it */
	}
	for (size_t i = 0; i < nc; i++)
		add(v, &n, FL_TORN_PREFIX, k, IO_RECORD_KEEP_ALL, IO_RECORD_TEAR_PREFIX, 1, cuts[i], 0, kind);
	for (size_t i = 0; i < ng; i++)
		add(v, &n, FL_TORN_GARBAGE, k, IO_RECORD_KEEP_ALL, IO_RECORD_TEAR_GARBAGE, 1, gcuts[i], k, kind);
	for (unsigned s = 0; nsec > 1 && s < seeds; s++)
		add(v, &n, FL_TORN_SECTORS, k, un >= 2 ? IO_RECORD_KEEP_SHUFFLE : IO_RECORD_KEEP_ALL,
		    IO_RECORD_TEAR_SECTORS, 0, 0, k * 1009 + s, kind);
	return n;
}

#define MAX_VARIANTS	128

static void power_cuts(struct ctx *c, uint64_t stride, unsigned seeds, unsigned post_every)
{
	struct io_record *rec = c->w->rec;
	uint64_t nw = io_record_writes(rec), k, per[FL__COUNT] = { 0 };
	struct variant v[MAX_VARIANTS];
	unsigned kind[MAX_VARIANTS];

	if (seeds > MAX_VARIANTS - 32)
		seeds = MAX_VARIANTS - 32;
	for (k = 0; k <= nw; k += stride) {
		size_t n = variants(rec, k, seeds, c->long_run, v, kind);

		for (size_t i = 0; i < n; i++) {
			uint8_t *img = NULL;

			if (io_record_crash_image(rec, &v[i].cr, &img)) {
				printf("FAIL cut %" PRIu64 ": no crash image\n", k);
				c->failed++;
				continue;
			}
			per[kind[i]]++;
			check_state(c, img, k, v[i].name, post_every && c->states % post_every == 0);
		}
		if (stride > 1 && k + stride > nw && k != nw)
			k = nw - stride;	/* always end on the last write */
	}
	printf("power cuts by flavour:");
	for (unsigned f = 0; f < FL__COUNT; f++)
		printf(" %s %" PRIu64 "%s", fl_names[f], per[f], f + 1 < FL__COUNT ? "," : "\n");
}

/* ---- fault points: I/O errors while the handle is live (I8) ---- */

enum fault_op { FOP_COMMIT, FOP_DELETE, FOP_CHECKPOINT };

struct fault_kind {
	const char *point;
	int err;
	int on_sync;	/* counts syncs, not writes */
	enum fault_op op;
};

static const struct fault_kind fault_kinds[] = {
	{ "store.write.eio", EIO, 0, FOP_COMMIT },
	{ "store.write.enospc", ENOSPC, 0, FOP_COMMIT },
	{ "store.sync.eio", EIO, 1, FOP_COMMIT },
	{ "store.write.eio", EIO, 0, FOP_DELETE },
	{ "store.sync.eio", EIO, 1, FOP_DELETE },
	{ "store.write.eio", EIO, 0, FOP_CHECKPOINT },
	{ "store.sync.eio", EIO, 1, FOP_CHECKPOINT },
};
static const char *const fop_names[] = { "commit", "delete", "checkpoint" };

/* ids of version v with extra inserted in list order, or without drop. */
static uint32_t *ids_edit(const struct model *m, const struct m_ver *v, int extra, int drop,
			  size_t *n)
{
	uint32_t *ids = malloc((v->n + 1) * sizeof(*ids));
	size_t j = 0;
	int put = extra < 0;

	if (!ids)
		return NULL;
	for (size_t i = 0; i < v->n; i++) {
		const struct m_snap *a = model_snap(m, v->ids[i]);

		if (!put) {
			const struct m_snap *x = model_snap(m, (uint32_t)extra);
			int cmp = strcmp(x->obj, a->obj);
			if (cmp < 0 || (cmp == 0 && x->no < a->no)) {
				ids[j++] = (uint32_t)extra;
				put = 1;
			}
		}
		if ((int)v->ids[i] != drop)
			ids[j++] = v->ids[i];
	}
	if (!put)
		ids[j++] = (uint32_t)extra;
	*n = j;
	return ids;
}

static int faulty_commit(struct store *s, const struct m_snap *fs)
{
	uint8_t page[STORE_PAGE_SIZE];
	struct store_txn *t = NULL;
	uint64_t no = 0;
	int r = store_txn_begin(s, fs->obj, 0, &t);

	if (r)
		return r;
	for (size_t i = 0; !r && i < fs->npg; i++) {
		gen_bytes(page, sizeof(page), fs->pg[i].vpn * 977, ST_RANDOM);
		r = store_txn_put_page(t, fs->pg[i].vpn, page);
	}
	if (r) {
		store_txn_abort(t);
		return r;
	}
	r = store_txn_commit(t, &no);
	return r ? r : (no == fs->no ? 0 : -EPROTO);
}

/* Arm kind at hit n and run its op on a store opened from the workload's
 * final image. 1 when the fault did not fire (n is past the op's I/O), 0
 * when the case was checked (failures counted in c). */
static int fault_case(struct ctx *c, const struct fault_kind *fk, unsigned n, uint32_t faulty_id)
{
	const struct model *m = &c->w->m;
	const struct m_ver *fin = model_now(m);
	const struct m_snap *fs = model_snap(m, faulty_id), *victim = model_snap(m, fin->ids[0]);
	struct io_record *rec = NULL;
	struct store_io *io = NULL;
	struct store *s = NULL;
	struct store_txn *t = NULL;
	struct store_stat st;
	struct list l = { 0 };
	struct why y = { .set = 0 };
	uint32_t *after = NULL;
	const uint32_t *lists[2];
	size_t nl[2], nafter = 0;
	uint64_t w0, s0, issued;
	char arm[64];
	int r, which, done = 0;

	lists[0] = fin->ids;
	nl[0] = fin->n;
	if (io_record_new_image(c->w->final_img, DEV_SIZE, &rec) || io_record_io(rec, &io)) {
		whyf(&y, "no memory");
		goto out;
	}
	r = store_open_io(io, &(struct store_open_opts){ .no_autoclean = 1 }, &s);
	if (r) {
		whyf(&y, "open = %d", r);
		goto out;
	}
	w0 = io_record_writes(rec);
	s0 = io_record_syncs(rec);
	snprintf(arm, sizeof(arm), "%s@%u", fk->point, n);
	setenv("CRYO_FAULT", arm, 1);
	fault_reset();
	switch (fk->op) {
	case FOP_COMMIT:
		r = faulty_commit(s, fs);
		break;
	case FOP_DELETE:
		r = store_snap_delete(s, victim->obj, victim->no);
		break;
	case FOP_CHECKPOINT:
		r = store_checkpoint(s);
		break;
	}
	unsetenv("CRYO_FAULT");
	fault_reset();
	issued = fk->on_sync ? io_record_syncs(rec) - s0 : io_record_writes(rec) - w0;
	if (r == 0) {
		/* the nth write or sync never came: past the op's I/O */
		if (issued >= n)
			whyf(&y, "the fault fired (%" PRIu64 " issued) but the %s returned 0",
			     issued, fop_names[fk->op]);
		done = 1;
		goto out;
	}
	if (r != -fk->err) {
		whyf(&y, "%s returned %d, want %d", fop_names[fk->op], r, -fk->err);
		goto out;
	}
	/* I8: poisoned until reopened */
	if (store_stat(s, &st) || !st.poisoned)
		whyf(&y, "I8: the handle is not poisoned after the failed %s", fop_names[fk->op]);
	r = store_txn_begin(s, "refused", 0, &t);
	if (!r) {
		uint64_t no = 0;
		uint8_t page[STORE_PAGE_SIZE];

		memset(page, 0x5a, sizeof(page));
		r = store_txn_put_page(t, 7, page);
		if (!r)
			r = store_txn_commit(t, &no);
		else
			store_txn_abort(t);
		if (!r)
			whyf(&y, "I8: a poisoned handle committed refused#%" PRIu64, no);
	}
	if (!store_snap_delete(s, victim->obj, victim->no))
		whyf(&y, "I8: a poisoned handle deleted %s#%" PRIu64, victim->obj, victim->no);
	if (!store_checkpoint(s))
		whyf(&y, "I8: a poisoned handle wrote a checkpoint");
	if (store_list(s, list_cb, &l) || !list_is(m, &l, fin->ids, fin->n))
		whyf(&y, "the failed %s is visible in its handle", fop_names[fk->op]);
	store_close(s);	/* may fail: poisoned */
	s = NULL;
	if (y.set)
		goto out;

	/* Reopen: the previous state, or (I8) the op complete, byte-identical */
	if (fk->op == FOP_COMMIT)
		after = ids_edit(m, fin, (int)faulty_id, -1, &nafter);
	else if (fk->op == FOP_DELETE)
		after = ids_edit(m, fin, -1, (int)fin->ids[0], &nafter);
	lists[1] = after;
	nl[1] = nafter;
	l.n = 0;
	if (io_record_io(rec, &io)) {
		whyf(&y, "no memory");
		goto out;
	}
	r = open_and_check(io, 0, m, lists, nl, after ? 2 : 1, &s, &l, &which, &y);
	if (r || y.set)
		goto out;
	/* the reopened handle writes again */
	if (fk->op != FOP_COMMIT || which == 0) {
		r = faulty_commit(s, fs);
		if (r)
			whyf(&y, "commit after reopen = %d", r);
	}
out:
	store_close(s);
	io_record_free(rec);
	free(l.a);
	free(after);
	c->states += !done;
	if (y.set && c->failed++ < MAX_SHOWN)
		printf("FAIL fault %s@%u during %s: %s\n", fk->point, n, fop_names[fk->op], y.msg);
	return done;
}

static void fault_points(struct ctx *c, uint32_t faulty_id)
{
	for (size_t i = 0; i < sizeof(fault_kinds) / sizeof(fault_kinds[0]); i++) {
		const struct fault_kind *fk = &fault_kinds[i];
		uint64_t before = c->states;
		unsigned n;

		for (n = 1; n < 400; n++)
			if (fault_case(c, fk, n, faulty_id))
				break;
		printf("faults: %s during %s: %" PRIu64 " cases (op done by hit %u)\n", fk->point,
		       fop_names[fk->op], c->states - before, n);
		if (c->states == before) {
			printf("FAIL fault %s never fired during %s\n", fk->point, fop_names[fk->op]);
			c->failed++;
		}
	}
}

/* A read error must fail the read, never return wrong bytes. */
static void read_faults(struct ctx *c)
{
	const struct model *m = &c->w->m;
	const struct m_ver *fin = model_now(m);
	uint64_t errs = 0, cases = 0;

	for (unsigned n = 1; n < 4000; n += n < 40 ? 1 : 97) {
		struct store_io *io = NULL;
		struct store *s = NULL;
		uint8_t buf[STORE_PAGE_SIZE];
		char arm[64];
		int r, bad = 0;

		snprintf(arm, sizeof(arm), "store.read.eio@%u", n);
		if (io_record_open_image(c->w->final_img, DEV_SIZE, &io))
			break;
		setenv("CRYO_FAULT", arm, 1);
		fault_reset();
		cases++;
		r = store_open_io(io, &(struct store_open_opts){ .read_only = 1 }, &s);
		for (size_t i = 0; !r && i < fin->n; i++) {
			const struct m_snap *ms = model_snap(m, fin->ids[i]);
			struct store_snap *sn = NULL;

			if (store_snap_open(s, ms->obj, ms->no, &sn)) {
				errs++;
				continue;
			}
			for (size_t p = 0; p < ms->npg; p++) {
				int k = store_snap_read_page(sn, ms->pg[p].vpn, buf);
				if (k < 0)
					errs++;
				else if (k != ms->pg[p].kind ||
					 (k == STORE_PAGE_DATA && csum64(buf, sizeof(buf)) != ms->pg[p].hash))
					bad = 1;
			}
			store_snap_close(sn);
		}
		if (r)
			errs++;
		unsetenv("CRYO_FAULT");
		fault_reset();
		store_close(s);
		c->states++;
		if (bad && c->failed++ < MAX_SHOWN)
			printf("FAIL read fault @%u: a read returned wrong data\n", n);
	}
	printf("faults: store.read.eio: %" PRIu64 " cases, %" PRIu64 " failed calls, no wrong data "
	       "unless FAIL above\n", cases, errs);
}

/* A store that fills up: commits of fresh random pages until the store
 * says -ENOSPC. That is a clean error, not an I/O failure: the snapshot in
 * the making is gone, the handle is not poisoned, everything committed
 * (before and while filling) reads back, and after cleaning and reopening
 * the store checks clean. */
static void full_store(struct ctx *c)
{
	const struct model *m = &c->w->m;
	const struct m_ver *fin = model_now(m);
	struct io_record *rec = NULL;
	struct store_io *io = NULL;
	struct store *s = NULL;
	struct store_stat st;
	struct list l = { 0 };
	struct why y = { .set = 0 };
	uint8_t page[STORE_PAGE_SIZE];
	unsigned fills = 0;
	int r = 0;

	c->states++;
	if (io_record_new_image(c->w->final_img, DEV_SIZE, &rec) || io_record_io(rec, &io)) {
		whyf(&y, "no memory");
		goto out;
	}
	r = store_open_io(io, &(struct store_open_opts){ .cache_bytes = CACHE_BYTES }, &s);
	if (r) {
		whyf(&y, "open = %d", r);
		goto out;
	}
	/* each commit keeps its object's newest snapshot only, so the store
	 * fills with live data the cleaner cannot free */
	for (fills = 0; fills < 64; fills++) {
		struct store_txn *t = NULL;
		char obj[16];
		uint64_t no;

		snprintf(obj, sizeof(obj), "fill%02u", fills);
		r = store_txn_begin(s, obj, 0, &t);
		for (uint64_t v = 0; !r && v < 256; v++) {
			gen_bytes(page, sizeof(page), fills * 1000003ull + v, ST_RANDOM);
			r = store_txn_put_page(t, v, page);
		}
		if (r) {
			store_txn_abort(t);
			break;
		}
		r = store_txn_commit(t, &no);
		if (r)
			break;
	}
	/* fills: the commits that returned success */
	if (r != -ENOSPC) {
		whyf(&y, "filling ended with %d after %u commits, want -ENOSPC", r, fills);
		goto out;
	}
	if (store_stat(s, &st) || st.poisoned)
		whyf(&y, "a full store poisoned its handle");
	if (store_list(s, list_cb, &l) || l.n != fin->n + fills) {
		whyf(&y, "a full store lists %zu snapshots, want %zu", l.n, fin->n + (size_t)fills);
		goto out;
	}
	for (size_t i = 0; i < fin->n && !y.set; i++)
		check_snapshot(s, model_snap(m, fin->ids[i]), &y);
	/* what filled it reads back too */
	for (size_t i = 0; i < l.n && !y.set; i++) {
		struct store_snap *sn = NULL;
		unsigned f;

		if (sscanf(l.a[i].object, "fill%02u", &f) != 1)
			continue;
		if (store_snap_open(s, l.a[i].object, l.a[i].no, &sn)) {
			whyf(&y, "%s does not open", l.a[i].object);
			break;
		}
		for (uint64_t v = 0; v < 256 && !y.set; v++) {
			uint8_t want[STORE_PAGE_SIZE];

			gen_bytes(want, sizeof(want), f * 1000003ull + v, ST_RANDOM);
			if (store_snap_read_page(sn, v, page) != STORE_PAGE_DATA ||
			    memcmp(page, want, sizeof(page)))
				whyf(&y, "%s page %" PRIu64 " differs", l.a[i].object, v);
		}
		store_snap_close(sn);
	}
	if (!y.set) {
		struct store_clean_report cr;

		store_object_delete(s, "fill00");
		r = store_clean(s, 0, &cr);
		if (r && r != -ENOSPC)
			whyf(&y, "clean after full = %d", r);
	}
	r = store_close(s);
	s = NULL;
	if (r && !y.set)
		whyf(&y, "close after full = %d", r);
	if (y.set)
		goto out;
	l.n = 0;
	if (io_record_io(rec, &io)) {
		whyf(&y, "no memory");
		goto out;
	}
	{
		struct store_fsck_report fr = { 0 };

		r = store_open_io(io, &(struct store_open_opts){ .read_only = 1, .cache_bytes = CACHE_BYTES }, &s);
		if (r) {
			whyf(&y, "reopen after full = %d", r);
			goto out;
		}
		r = store_fsck(s, &fr, say_cb, &y);
		if (r || fr.problems)
			whyf(&y, "fsck after full = %d, %" PRIu64 " problems", r, fr.problems);
		for (size_t i = 0; i < fin->n && !y.set; i++)
			check_snapshot(s, model_snap(m, fin->ids[i]), &y);
	}
out:
	store_close(s);
	io_record_free(rec);
	free(l.a);
	if (y.set && c->failed++ < MAX_SHOWN)
		printf("FAIL full store (after %u commits): %s\n", fills, y.msg);
	else if (!y.set)
		printf("full store: -ENOSPC after %u commits, handle not poisoned, everything reads back\n",
		       fills);
}

int main(void)
{
	struct wl w = { 0 };
	struct ctx c = { .w = &w };
	const char *env = getenv("CRYO_CRASH_STRIDE");
	uint64_t stride = 1;
	unsigned post_every = 16, seeds = 1;
	struct timespec t0, t1;
	int id;

	setvbuf(stdout, NULL, _IOLBF, 0);	/* progress shows in meson's log */
	setenv("CRYO_LOG", "quiet", 0);	/* thousands of torn logs are expected */
	/* device-sized buffers come and go thousands of times: keep them in
	 * the heap instead of an mmap and page faults each */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	unsetenv("CRYO_FAULT");
	fault_reset();
	c.long_run = getenv("CRYO_LONG") && atoi(getenv("CRYO_LONG")) > 0;
	if (c.long_run) {
		post_every = 1;
		seeds = 60;
	}
	if (env && atoi(env) > 0)
		stride = (uint64_t)atoi(env);
	clock_gettime(CLOCK_MONOTONIC, &t0);

	if (workload(&w)) {
		printf("FAIL: the workload itself failed\ncrash states checked: 0, failed: 1\n");
		return 1;
	}
	if (!w.auto_ckpt_seen)
		printf("note: no automatic checkpoint happened in the workload\n");
	if (!w.segs_cleaned)
		printf("note: the workload cleaned no segment\n");

	/* the snapshots post-recovery and fault commits write */
	id = model_snap_new(&w.m, "zzpost", NULL);
	if (id < 0)
		return 1;
	c.post_id = (uint32_t)id;
	model_snap(&w.m, c.post_id)->no = 1;
	for (uint64_t v = 0x400; v < 0x408; v++) {
		uint8_t page[STORE_PAGE_SIZE];
		gen_bytes(page, sizeof(page), v, ST_TEXT);
		model_put_page(model_snap(&w.m, c.post_id), v, STORE_PAGE_DATA, csum64(page, sizeof(page)));
	}
	id = model_snap_new(&w.m, "faulty", NULL);
	if (id < 0)
		return 1;
	model_snap(&w.m, (uint32_t)id)->no = 1;
	for (uint64_t v = 0x2000; v < 0x2000 + 90; v++) {
		uint8_t page[STORE_PAGE_SIZE];
		gen_bytes(page, sizeof(page), v * 977, ST_RANDOM);
		model_put_page(model_snap(&w.m, (uint32_t)id), v, STORE_PAGE_DATA, csum64(page, sizeof(page)));
	}

	power_cuts(&c, stride, seeds, post_every);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("power cuts: %" PRIu64 " writes, stride %" PRIu64 ", %" PRIu64 " states, "
	       "%" PRIu64 " with a commit after recovery, %" PRIu64 " before create returned "
	       "without a store, %.1f s\n", io_record_writes(w.rec), stride, c.states,
	       c.post_checked, c.open_failed_early,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	fault_points(&c, (uint32_t)id);
	read_faults(&c);
	full_store(&c);

	printf("crash states checked: %" PRIu64 ", failed: %" PRIu64 "\n", c.states, c.failed);
	model_free(&w.m);
	io_record_free(w.rec);
	free(w.final_img);
	return c.failed ? 1 : 0;
}
