/* The cleaner (Sprite LFS): find what is live, pick segments by
 * cost-benefit, copy their live items forward, free them after the next
 * checkpoint (I1).
 *
 * Liveness is computed, not bookkept: a mark pass walks every kept
 * snapshot's index and records once (shared items once) and sums stored
 * bytes per segment. Nothing on disk can drift from it. */
#define LOG_PREFIX "store: "
#include "store/internal.h"
#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLEAN_UTIL_MAX	0.90	/* gc leaves fuller segments alone */
#define CLEAN_BATCH	64	/* segments per round */

/* A map from item address to the entry that replaces it (open
 * addressing; address 0 never holds an item, so it marks empty). */
struct addrmap {
	struct am_slot { uint64_t addr; struct fmt_entry e; } *slots;
	size_t cap, n;
};

static uint64_t am_hash(uint64_t a)
{
	return (a / 16) * 0x9E3779B97F4A7C15ull;
}

static int am_grow(struct addrmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 4096;
	struct am_slot *n = calloc(cap, sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].addr)
			continue;
		size_t k = am_hash(m->slots[i].addr) & (cap - 1);
		while (n[k].addr)
			k = (k + 1) & (cap - 1);
		n[k] = m->slots[i];
	}
	free(m->slots);
	m->slots = n;
	m->cap = cap;
	return 0;
}

/* The slot for addr: found (addr set) or the empty one to fill. */
static struct am_slot *am_slot(struct addrmap *m, uint64_t addr)
{
	if ((m->n + 1) * 2 > m->cap && am_grow(m))
		return NULL;
	size_t k = am_hash(addr) & (m->cap - 1);
	while (m->slots[k].addr && m->slots[k].addr != addr)
		k = (k + 1) & (m->cap - 1);
	return &m->slots[k];
}

/* 1 if addr was there already, 0 if added now, -ENOMEM. */
static int am_add(struct addrmap *m, uint64_t addr, const struct fmt_entry *e)
{
	struct am_slot *sl = am_slot(m, addr);
	if (!sl)
		return -ENOMEM;
	if (sl->addr)
		return 1;
	sl->addr = addr;
	sl->e = *e;
	m->n++;
	return 0;
}

static void am_free(struct addrmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* ---- mark ---- */

struct mark {
	struct store *s;
	struct addrmap seen;
	uint64_t *per_seg;
};

static int mark_item(struct mark *mk, const struct fmt_entry *e)
{
	uint64_t a = fmt_entry_addr(e);

	/* addresses come from disk: one outside the segments is corruption */
	if (a < mk->s->sb.seg_start || seg_of(mk->s, a) >= mk->s->sb.seg_count)
		return -EBADMSG;
	int r = am_add(&mk->seen, a, e);
	if (r)
		return r;	/* 1: counted already (and below it, for nodes) */
	mk->per_seg[seg_of(mk->s, fmt_entry_addr(e))] += e->len;
	return 0;
}

static int mark_visit(void *arg, const struct fmt_entry *e, unsigned level, uint64_t vpn)
{
	(void)level;
	(void)vpn;
	return mark_item(arg, e);
}

static int mark_snap(struct mark *mk, const struct fmt_snap *d)
{
	struct fmt_rec *recs;
	int r = pt_visit(mk->s, &d->root, mark_visit, mk);

	if (r < 0 || !d->nrec)
		return r < 0 ? r : 0;
	r = mark_item(mk, &d->rectab);
	if (r < 0)
		return r;
	r = rectab_load(mk->s, d, &recs);
	for (uint32_t i = 0; !r && i < d->nrec; i++)
		if (recs[i].raw && (r = mark_item(mk, &recs[i].ent)) > 0)
			r = 0;
	free(recs);
	return r < 0 ? r : 0;
}

int live_bytes_per_seg(struct store *s, uint64_t *per_seg)
{
	struct mark mk = { .s = s, .per_seg = per_seg };
	int r = 0;

	for (size_t i = 0; !r && i < s->nobj; i++)
		for (size_t k = 0; !r && k < s->objs[i]->nsnaps; k++) {
			r = mark_snap(&mk, &s->objs[i]->snaps[k]);
			if (r)
				pr_err("%s/%llu: index unreadable (%s): cannot tell what is live",
				       s->objs[i]->name,
				       (unsigned long long)s->objs[i]->snaps[k].no, store_strerror(r));
		}
	/* the newest checkpoint's state is live until the next one */
	if (!r && s->slot.state_addr)
		per_seg[seg_of(s, s->slot.state_addr)] += s->slot.state_len;
	am_free(&mk.seen);
	return r;
}

int live_bytes_total(struct store *s, uint64_t *out)
{
	uint64_t *per = calloc(s->sb.seg_count, sizeof(*per));
	int r;

	*out = 0;
	if (!per)
		return -ENOMEM;
	r = live_bytes_per_seg(s, per);
	for (uint64_t i = 0; i < s->sb.seg_count; i++)
		*out += per[i];
	free(per);
	return r;
}

/* ---- relocate ---- */

struct reloc {
	struct store *s;
	const uint8_t *victim;		/* per segment */
	struct addrmap moved;		/* old address -> new entry */
	uint64_t copied;
};

static bool in_victim(const struct reloc *rc, const struct fmt_entry *e)
{
	return rc->victim[seg_of(rc->s, fmt_entry_addr(e))];
}

/* Copy one stored item as it is (same codec, length, checksum). */
static int copy_item(struct reloc *rc, const struct fmt_entry *e, unsigned kind, uint32_t raw,
		     uint64_t owner, uint64_t key, uint8_t level, struct fmt_entry *out)
{
	struct am_slot *sl = am_slot(&rc->moved, fmt_entry_addr(e));
	uint8_t *buf;
	int r;

	if (!sl)
		return -ENOMEM;
	if (sl->addr) {
		*out = sl->e;
		return 0;
	}
	buf = malloc(e->len);
	if (!buf)
		return -ENOMEM;
	r = item_read_stored(rc->s, e, buf);
	if (!r)
		r = log_add(rc->s, kind, fmt_entry_codec(e), buf, e->len, raw, owner, key, level, out);
	free(buf);
	if (r)
		return r;
	rc->copied += e->len;
	return am_add(&rc->moved, fmt_entry_addr(e), out) < 0 ? -ENOMEM : 0;
}

static int reloc_node(struct reloc *rc, const struct fmt_entry *e, unsigned level, uint64_t base,
		      uint64_t owner, struct fmt_entry *out)
{
	struct fmt_entry node[FMT_FANOUT];
	const struct fmt_entry *cached;
	struct am_slot *sl = am_slot(&rc->moved, fmt_entry_addr(e));
	bool changed = false;
	int r;

	if (!sl)
		return -ENOMEM;
	if (sl->addr) {
		*out = sl->e;
		return 0;
	}
	r = node_get(rc->s, e, &cached);
	if (r)
		return r;
	memcpy(node, cached, sizeof(node));
	for (unsigned i = 0; i < FMT_FANOUT; i++) {
		struct fmt_entry n = node[i];
		uint64_t lo = base + ((uint64_t)i << (8 * level));
		unsigned k = fmt_entry_kind(&node[i]);

		if (level == 0 && k == FMT_KIND_PAGE && in_victim(rc, &node[i]))
			r = copy_item(rc, &node[i], FMT_KIND_PAGE, STORE_PAGE_SIZE, owner, lo, 0, &n);
		else if (level > 0 && k == FMT_KIND_NODE)
			r = reloc_node(rc, &node[i], level - 1, lo, owner, &n);
		if (r)
			return r;
		if (memcmp(&n, &node[i], sizeof(n))) {
			node[i] = n;
			changed = true;
		}
	}
	*out = *e;
	if (changed || in_victim(rc, e)) {
		r = log_add_compressed(rc->s, FMT_KIND_NODE, node, FMT_BLOCK, owner, base,
				       (uint8_t)level, out);
		if (r)
			return r;
		rc->copied += out->len;
	}
	return am_add(&rc->moved, fmt_entry_addr(e), out) < 0 ? -ENOMEM : 0;
}

static int reloc_recs(struct reloc *rc, const struct fmt_snap *d, struct fmt_entry *out)
{
	struct fmt_rec *recs;
	struct am_slot *sl;
	bool changed = false;
	int r;

	*out = d->rectab;
	if (!d->nrec)
		return 0;
	sl = am_slot(&rc->moved, fmt_entry_addr(&d->rectab));
	if (!sl)
		return -ENOMEM;
	if (sl->addr) {
		*out = sl->e;
		return 0;
	}
	r = rectab_load(rc->s, d, &recs);
	if (r)
		return r;
	for (uint32_t i = 0; !r && i < d->nrec; i++) {
		if (!recs[i].raw || !in_victim(rc, &recs[i].ent))
			continue;
		r = copy_item(rc, &recs[i].ent, FMT_KIND_RECORD, recs[i].raw, d->obj, 0, 0,
			      &recs[i].ent);
		changed = true;
	}
	if (!r && (changed || in_victim(rc, &d->rectab)))
		r = log_add_compressed(rc->s, FMT_KIND_RECTAB, recs,
				       d->nrec * (uint32_t)sizeof(*recs), d->obj, 0, 0, out);
	free(recs);
	if (!r)
		r = am_add(&rc->moved, fmt_entry_addr(&d->rectab), out) < 0 ? -ENOMEM : 0;
	return r;
}

/* Move every live item out of the victims; one commit of SNAP_RELOC ops. */
static int relocate(struct store *s, const uint8_t *victim, uint64_t *copied)
{
	struct reloc rc = { .s = s, .victim = victim };
	struct fmt_op *ops = NULL;
	size_t nops = 0, cap = 0;
	int r = 0;

	for (size_t i = 0; !r && i < s->nobj; i++) {
		struct obj_mem *o = s->objs[i];
		for (size_t k = 0; !r && k < o->nsnaps; k++) {
			struct fmt_op op = { .type = FMT_OP_SNAP_RELOC, .snap = o->snaps[k] };
			if (fmt_entry_kind(&op.snap.root) == FMT_KIND_NODE)
				r = reloc_node(&rc, &o->snaps[k].root, FMT_LEVELS - 1, 0, o->id,
					       &op.snap.root);
			if (!r)
				r = reloc_recs(&rc, &o->snaps[k], &op.snap.rectab);
			if (r) {
				pr_err("cleaning %s/%llu: %s", o->name,
				       (unsigned long long)o->snaps[k].no, store_strerror(r));
				break;
			}
			if (!memcmp(&op.snap, &o->snaps[k], sizeof(op.snap)))
				continue;
			if (nops == cap) {
				cap = cap ? cap * 2 : 64;
				struct fmt_op *n = realloc(ops, cap * sizeof(*n));
				if (!n) {
					r = -ENOMEM;
					break;
				}
				ops = n;
			}
			ops[nops++] = op;
		}
	}
	/* ops in batches that fit a chunk; each batch is one commit. A crash
	 * between batches is fine: the victims stay USED until the end. */
	size_t batch = (CHUNK_MAX / 2) / sizeof(struct fmt_op);
	for (size_t i = 0; !r && i < nops; i += batch)
		r = commit_ops(s, ops + i, nops - i < batch ? nops - i : batch);
	if (r)
		s->cb.open = false;
	*copied = rc.copied;
	free(ops);
	am_free(&rc.moved);
	return r;
}

/* ---- choose ---- */

struct cand {
	uint64_t seg;
	double score;
	uint64_t live;
};

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	return x->score < y->score ? 1 : x->score > y->score ? -1 : (x->seg > y->seg) - (x->seg < y->seg);
}

/* Whole segments the dead space of the candidates adds up to. */
static uint64_t reclaimable(const struct store *s, const uint64_t *live, double umax)
{
	uint64_t dead = 0, head_seg = seg_of(s, s->head);

	for (uint64_t i = 0; i < s->sb.seg_count; i++)
		if (s->segs[i].state == SEG_USED && i != head_seg &&
		    (double)live[i] / s->sb.seg_size < umax)
			dead += s->sb.seg_size - live[i];
	return dead / s->sb.seg_size;
}

/* Pick victims by (1-u)*age/(1+u) whose live bytes fit the free space. */
static size_t choose(struct store *s, const uint64_t *live, double umax, uint8_t *victim,
		     uint64_t *to_copy)
{
	struct cand *c = calloc(s->sb.seg_count, sizeof(*c));
	uint64_t now = wall_ns(), head_seg = seg_of(s, s->head), n = 0, picked = 0;
	uint64_t budget = (segs_free(s) > 1 ? segs_free(s) - 1 : 0) * (s->sb.seg_size / 8 * 7);

	*to_copy = 0;
	if (!c)
		return 0;
	for (uint64_t i = 0; i < s->sb.seg_count; i++) {
		if (s->segs[i].state != SEG_USED || i == head_seg)
			continue;
		double u = (double)live[i] / s->sb.seg_size;
		if (u >= umax)
			continue;
		double age = (double)(now > s->segs[i].mtime_ns ? now - s->segs[i].mtime_ns : 0) / 1e9 + 1;
		c[n++] = (struct cand){ i, (1 - u) * age / (1 + u), live[i] };
	}
	qsort(c, n, sizeof(*c), cand_cmp);
	for (uint64_t i = 0; i < n && picked < CLEAN_BATCH; i++) {
		if (*to_copy + c[i].live > budget)
			continue;
		victim[c[i].seg] = 1;
		*to_copy += c[i].live;
		picked++;
	}
	free(c);
	return picked;
}

int store_clean(struct store *s, uint64_t want_free, struct store_clean_report *rep)
{
	uint64_t *live = NULL;
	uint8_t *victim = NULL;
	struct store_clean_report local = { 0 };
	double umax = want_free ? 0.95 : CLEAN_UTIL_MAX;
	int r = 0;

	if (s->ro)
		return -EROFS;
	if (s->poisoned)
		return -EIO;
	if (s->txn_open || s->snaps_open)
		return -EBUSY;
	live = calloc(s->sb.seg_count, sizeof(*live));
	victim = calloc(s->sb.seg_count, 1);
	if (!live || !victim) {
		r = -ENOMEM;
		goto out;
	}
	for (int round = 0; round < 256; round++) {
		uint64_t to_copy, copied = 0, before = segs_free(s);
		if (want_free && before >= want_free)
			break;
		memset(live, 0, s->sb.seg_count * sizeof(*live));
		memset(victim, 0, s->sb.seg_count);
		r = live_bytes_per_seg(s, live);
		if (r)
			break;
		/* a goal the dead space cannot pay for would copy forever */
		if (want_free && before + reclaimable(s, live, umax) * 4 / 5 <= want_free)
			want_free = before + reclaimable(s, live, umax) * 4 / 5;
		if (want_free && before >= want_free)
			break;
		size_t n = choose(s, live, umax, victim, &to_copy);
		if (!n)
			break;
		s->cleaning = s->in_clean = true;
		r = to_copy ? relocate(s, victim, &copied) : 0;
		if (!r) {
			for (uint64_t i = 0; i < s->sb.seg_count; i++)
				if (victim[i])
					s->segs[i].state = SEG_PENDING;
			r = fault_fire(FP_STORE_CLEAN_CRASH);
			if (!r)
				r = state_checkpoint(s);	/* frees them (I1) */
		}
		s->cleaning = s->in_clean = false;
		if (r) {
			/* victims stay as they were: nothing was freed */
			for (uint64_t i = 0; i < s->sb.seg_count; i++)
				if (s->segs[i].state == SEG_PENDING)
					s->segs[i].state = SEG_USED;
			break;
		}
		local.segs_cleaned += n;
		local.bytes_copied += copied;
		s->segs_cleaned += n;
		uint64_t after = segs_free(s);
		local.segs_freed += after > before ? after - before : 0;
		if (after <= before)
			break;	/* no progress: copying cost what it freed */
	}
out:
	free(live);
	free(victim);
	if (rep)
		*rep = local;
	return r;
}
