/* Checkpoints: the state (objects, snapshots, segments) written into the
 * log as one STATE item, then a slot that names it (I4). */
#define LOG_PREFIX "store: "
#include "store/internal.h"
#include "common/clock.h"
#include "common/csum.h"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATE_RAW_MAX	(CHUNK_MAX - FMT_BLOCK)

static size_t state_size(const struct store *s)
{
	size_t n = sizeof(struct fmt_state) + s->nobj * sizeof(struct fmt_obj) +
		   s->sb.seg_count * sizeof(struct fmt_seg);
	for (size_t i = 0; i < s->nobj; i++)
		n += s->objs[i]->nsnaps * sizeof(struct fmt_snap);
	return n;
}

static uint8_t *state_encode(const struct store *s, size_t *len)
{
	size_t n = state_size(s), nsnap = 0;
	uint8_t *buf = calloc(1, n), *p;

	if (!buf)
		return NULL;
	p = buf + sizeof(struct fmt_state);
	for (size_t i = 0; i < s->nobj; i++) {
		const struct obj_mem *o = s->objs[i];
		struct fmt_obj fo = { .id = o->id, .next_no = o->next_no, .ctime_ns = o->ctime_ns };
		memcpy(fo.name, o->name, sizeof(fo.name));
		memcpy(p, &fo, sizeof(fo));
		p += sizeof(fo);
	}
	for (size_t i = 0; i < s->nobj; i++) {
		const struct obj_mem *o = s->objs[i];
		if (o->nsnaps)
			memcpy(p, o->snaps, o->nsnaps * sizeof(struct fmt_snap));
		p += o->nsnaps * sizeof(struct fmt_snap);
		nsnap += o->nsnaps;
	}
	for (uint64_t i = 0; i < s->sb.seg_count; i++) {
		struct fmt_seg fs = {
			.state = s->segs[i].state == SEG_USED ? FMT_SEG_USED : FMT_SEG_FREE,
			.mtime_ns = s->segs[i].mtime_ns,
		};
		memcpy(p, &fs, sizeof(fs));
		p += sizeof(fs);
	}
	struct fmt_state h = {
		.magic = FMT_STATE_MAGIC, .version = FMT_VERSION, .nobj = (uint32_t)s->nobj,
		.nsnap = nsnap, .nseg = s->sb.seg_count, .next_obj = s->next_obj,
	};
	memcpy(buf, &h, sizeof(h));
	*len = n;
	return buf;
}

/* Fill empty tables from a state; every count and name is checked. */
static int state_decode(struct store *s, const uint8_t *buf, size_t len, const char **why)
{
	struct fmt_state h;
	const uint8_t *p = buf + sizeof(h);

	*why = "state too short";
	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, buf, sizeof(h));
	*why = "bad state header";
	if (h.magic != FMT_STATE_MAGIC || h.version != FMT_VERSION || h.nseg != s->sb.seg_count ||
	    h.nobj > len / sizeof(struct fmt_obj) || h.nsnap > len / sizeof(struct fmt_snap))
		return -EBADMSG;
	*why = "state length does not match its counts";
	if (len != sizeof(h) + h.nobj * sizeof(struct fmt_obj) + h.nsnap * sizeof(struct fmt_snap) +
			   h.nseg * sizeof(struct fmt_seg))
		return -EBADMSG;
	s->next_obj = h.next_obj;
	for (uint32_t i = 0; i < h.nobj; i++, p += sizeof(struct fmt_obj)) {
		struct fmt_obj fo;
		struct obj_mem *o;
		memcpy(&fo, p, sizeof(fo));
		*why = "bad object in state";
		if (!fo.id || fo.id >= h.next_obj || !fo.next_no || fo.name[FMT_NAME_LEN - 1] ||
		    !name_ok(fo.name) || obj_create(s, fo.id, fo.name, fo.ctime_ns, &o))
			return -EBADMSG;
		o->next_no = fo.next_no;
	}
	for (uint64_t i = 0; i < h.nsnap; i++, p += sizeof(struct fmt_snap)) {
		struct fmt_snap d;
		memcpy(&d, p, sizeof(d));
		struct obj_mem *o = obj_find_id(s, d.obj);
		uint64_t next_no = o ? o->next_no : 0;
		*why = "bad snapshot in state";
		if (!o || !snap_desc_ok(&d) || d.no >= next_no || snap_insert(o, &d))
			return -EBADMSG;
	}
	for (uint64_t i = 0; i < h.nseg; i++, p += sizeof(struct fmt_seg)) {
		struct fmt_seg fs;
		memcpy(&fs, p, sizeof(fs));
		*why = "bad segment state";
		if (fs.state > FMT_SEG_USED)
			return -EBADMSG;
		s->segs[i].state = fs.state == FMT_SEG_USED ? SEG_USED : SEG_FREE;
		s->segs[i].mtime_ns = fs.mtime_ns;
	}
	return 0;
}

int state_checkpoint(struct store *s)
{
	uint8_t *raw = NULL, *packed = NULL;
	size_t raw_len, n;
	enum codec used;
	struct fmt_entry e;
	struct fmt_slot slot = { 0 };
	uint8_t block[FMT_BLOCK] = { 0 };
	int r;

	if (s->ro)
		return -EROFS;
	if (s->poisoned)
		return -EIO;
	r = log_flush(s, 0, false);	/* nothing may be pending, but be sure */
	if (r)
		return r;
	raw = state_encode(s, &raw_len);
	if (!raw)
		return -ENOMEM;
	r = -EFBIG;
	if (raw_len > STATE_RAW_MAX) {
		pr_err("state of %zu bytes exceeds a chunk", raw_len);
		goto out;
	}
	r = -ENOMEM;
	packed = malloc(codec_bound(raw_len));
	if (!packed)
		goto out;
	n = codec_compress(CODEC_LZ4, raw, raw_len, packed, codec_bound(raw_len), &used);
	s->in_clean = true;	/* a checkpoint may use the reserve: it frees segments */
	r = log_add(s, FMT_KIND_STATE, used, packed, (uint32_t)n, (uint32_t)raw_len, 0, 0, 0, &e);
	if (!r)
		r = log_flush(s, FMT_CHUNK_STATE, true);
	s->in_clean = false;
	if (r)
		goto out;
	r = fault_fire(FP_STORE_CKPT_CRASH);
	if (r)
		goto out;

	slot.magic = FMT_SLOT_MAGIC;
	slot.version = FMT_VERSION;
	slot.seq = s->slot.seq + 1;
	slot.lsn = s->lsn;
	slot.head = s->head;
	slot.prev_sum = s->prev_sum;
	slot.state_addr = fmt_entry_addr(&e);
	slot.state_len = (uint32_t)n;
	slot.state_raw = (uint32_t)raw_len;
	slot.state_csum = csum64(packed, n);
	slot.state_codec = used;
	memcpy(slot.uuid, s->sb.uuid, sizeof(slot.uuid));
	slot.time_ns = wall_ns();
	slot.csum = csum64(&slot, offsetof(struct fmt_slot, csum));
	memcpy(block, &slot, sizeof(slot));
	r = io_write(s->io, block, sizeof(block), FMT_SLOT_OFF(slot.seq % 2));
	if (!r)
		r = io_sync(s->io);
	if (r) {
		store_poison(s, r, "checkpoint write");
		goto out;
	}
	s->slot = slot;
	s->log_since_ckpt = 0;
	s->dirty = false;
	/* I1: only now may the segments the cleaner emptied be reused */
	bool freed = false;
	for (uint64_t i = 0; i < s->sb.seg_count; i++) {
		if (s->segs[i].state == SEG_PENDING) {
			s->segs[i].state = SEG_FREE;
			freed = true;
		}
	}
	if (freed)
		cache_drop_all(s);
out:
	free(raw);
	free(packed);
	return r;
}

int slot_read(struct store *s, unsigned i, struct fmt_slot *out, const char **why)
{
	struct fmt_slot sl;
	int r = io_read(s->io, &sl, sizeof(sl), FMT_SLOT_OFF(i));

	*why = "read error";
	if (r)
		return r;
	*why = "no slot magic";
	if (sl.magic != FMT_SLOT_MAGIC)
		return -EBADMSG;
	*why = "slot checksum";
	if (sl.csum != csum64(&sl, offsetof(struct fmt_slot, csum)))
		return -EBADMSG;
	*why = "slot of another store or version";
	if (sl.version != FMT_VERSION || memcmp(sl.uuid, s->sb.uuid, sizeof(sl.uuid)))
		return -EBADMSG;
	*why = "slot in the wrong place";
	if (sl.seq % 2 != i || !sl.seq)
		return -EBADMSG;
	*why = "slot names an address outside the segments";
	uint64_t end = s->sb.seg_start + s->sb.seg_count * s->sb.seg_size;
	if (sl.head < s->sb.seg_start || sl.head >= end || sl.head % FMT_BLOCK ||
	    sl.state_addr < s->sb.seg_start || sl.state_addr >= end ||
	    sl.state_len > CHUNK_MAX || sl.state_raw > STATE_RAW_MAX ||
	    sl.state_codec >= CODEC__COUNT || !sl.state_len)
		return -EBADMSG;
	*out = sl;
	return 0;
}

int state_load_newest(struct store *s)
{
	struct fmt_slot sl[2];
	int ok[2];
	const char *why[2], *dwhy = "";
	uint8_t *packed = NULL, *raw = NULL;
	int r;

	for (unsigned i = 0; i < 2; i++)
		ok[i] = slot_read(s, i, &sl[i], &why[i]) == 0;
	if (!ok[0] && !ok[1]) {
		pr_err("no valid checkpoint slot (slot 0: %s; slot 1: %s)", why[0], why[1]);
		return -EBADMSG;
	}
	unsigned best = ok[0] && (!ok[1] || sl[0].seq > sl[1].seq) ? 0 : 1;
	const struct fmt_slot *b = &sl[best];

	packed = malloc(b->state_len);
	raw = malloc(b->state_raw ? b->state_raw : 1);
	r = -ENOMEM;
	if (!packed || !raw)
		goto out;
	r = io_read(s->io, packed, b->state_len, b->state_addr);
	if (r) {
		pr_err("checkpoint %llu: cannot read its state", (unsigned long long)b->seq);
		goto out;
	}
	r = -EBADMSG;
	if (csum64(packed, b->state_len) != b->state_csum) {
		pr_err("checkpoint %llu: its state fails its checksum", (unsigned long long)b->seq);
		goto out;
	}
	if (codec_decompress(b->state_codec, packed, b->state_len, raw, b->state_raw)) {
		pr_err("checkpoint %llu: its state does not decompress", (unsigned long long)b->seq);
		goto out;
	}
	r = state_decode(s, raw, b->state_raw, &dwhy);
	if (r) {
		pr_err("checkpoint %llu: %s", (unsigned long long)b->seq, dwhy);
		goto out;
	}
	s->slot = *b;
	s->lsn = b->lsn;
	s->head = b->head;
	s->prev_sum = b->prev_sum;
out:
	free(packed);
	free(raw);
	return r;
}
