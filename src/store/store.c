/* The store handle: create, open with recovery, close, the object and
 * snapshot tables, and applying commit ops to them. */
#define LOG_PREFIX "store: "
#include "store/internal.h"
#include "common/clock.h"
#include "common/csum.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- tables ---- */

bool name_ok(const char *name)
{
	size_t n = strnlen(name, STORE_NAME_MAX + 1);
	if (!n || n > STORE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= ' ' || c == '/' || c >= 0x7f)
			return false;
	}
	return true;
}

static size_t obj_pos(const struct store *s, const char *name, bool *found)
{
	size_t lo = 0, hi = s->nobj;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(s->objs[mid]->name, name);
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

struct obj_mem *obj_find(struct store *s, const char *name)
{
	bool found;
	size_t i = obj_pos(s, name, &found);
	return found ? s->objs[i] : NULL;
}

struct obj_mem *obj_find_id(struct store *s, uint64_t id)
{
	for (size_t i = 0; i < s->nobj; i++)
		if (s->objs[i]->id == id)
			return s->objs[i];
	return NULL;
}

struct fmt_snap *snap_find(struct obj_mem *o, uint64_t no)
{
	size_t lo = 0, hi = o->nsnaps;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (o->snaps[mid].no == no)
			return &o->snaps[mid];
		if (o->snaps[mid].no < no)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int obj_create(struct store *s, uint64_t id, const char *name, uint64_t ctime,
		      struct obj_mem **out)
{
	bool found;
	size_t pos = obj_pos(s, name, &found);
	struct obj_mem *o;

	if (found || obj_find_id(s, id) || !id)
		return -EEXIST;
	if (s->nobj == s->objs_cap) {
		size_t cap = s->objs_cap ? s->objs_cap * 2 : 16;
		struct obj_mem **n = realloc(s->objs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->objs = n;
		s->objs_cap = cap;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->id = id;
	o->next_no = 1;
	o->ctime_ns = ctime;
	snprintf(o->name, sizeof(o->name), "%s", name);
	memmove(&s->objs[pos + 1], &s->objs[pos], (s->nobj - pos) * sizeof(*s->objs));
	s->objs[pos] = o;
	s->nobj++;
	if (s->next_obj <= id)
		s->next_obj = id + 1;
	*out = o;
	return 0;
}

int snap_insert(struct obj_mem *o, const struct fmt_snap *d)
{
	size_t pos = o->nsnaps;

	if (o->nsnaps == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 8;
		struct fmt_snap *n = realloc(o->snaps, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		o->snaps = n;
		o->cap = cap;
	}
	while (pos && o->snaps[pos - 1].no > d->no)
		pos--;
	if (pos && o->snaps[pos - 1].no == d->no)
		return -EEXIST;
	memmove(&o->snaps[pos + 1], &o->snaps[pos], (o->nsnaps - pos) * sizeof(*o->snaps));
	o->snaps[pos] = *d;
	o->nsnaps++;
	if (o->next_no <= d->no)
		o->next_no = d->no + 1;
	return 0;
}

static void obj_remove(struct store *s, struct obj_mem *o)
{
	for (size_t i = 0; i < s->nobj; i++) {
		if (s->objs[i] == o) {
			memmove(&s->objs[i], &s->objs[i + 1], (s->nobj - i - 1) * sizeof(*s->objs));
			s->nobj--;
			break;
		}
	}
	free(o->snaps);
	free(o);
}

void tables_free(struct store *s)
{
	for (size_t i = 0; i < s->nobj; i++) {
		free(s->objs[i]->snaps);
		free(s->objs[i]);
	}
	free(s->objs);
	s->objs = NULL;
	s->nobj = s->objs_cap = 0;
}

bool snap_desc_ok(const struct fmt_snap *d)
{
	unsigned rk = fmt_entry_kind(&d->root), tk = fmt_entry_kind(&d->rectab);
	return d->no && d->obj && (rk == FMT_KIND_NONE || rk == FMT_KIND_NODE) &&
	       (tk == FMT_KIND_NONE || tk == FMT_KIND_RECTAB) &&
	       (tk != FMT_KIND_NONE || !d->nrec) &&
	       d->nrec <= STATE_NREC_MAX && d->zero_pages <= d->pages;
}

/* Apply one op to the tables. Ops read back from disk are untrusted:
 * every reference is checked and a bad op is an error, never a crash. */
int op_apply(struct store *s, const struct fmt_op *op, const char **why)
{
	struct obj_mem *o = op->snap.obj ? obj_find_id(s, op->snap.obj) : NULL;
	struct fmt_snap *d;
	int r;

	switch (op->type) {
	case FMT_OP_SNAP_ADD:
		*why = "bad snapshot in op";
		if (!snap_desc_ok(&op->snap))
			return -EBADMSG;
		if (!o) {
			*why = "bad object name in op";
			if (op->name[FMT_NAME_LEN - 1] || !name_ok(op->name))
				return -EBADMSG;
			*why = "object exists under another id";
			r = obj_create(s, op->snap.obj, op->name, op->snap.time_ns, &o);
			if (r)
				return r == -EEXIST ? -EBADMSG : r;
		}
		*why = "snapshot number not new";
		if (op->snap.no < o->next_no)
			return -EBADMSG;
		return snap_insert(o, &op->snap);
	case FMT_OP_SNAP_DEL:
	case FMT_OP_SNAP_RELOC:
		*why = "op names a snapshot that does not exist";
		if (!o || !(d = snap_find(o, op->snap.no)))
			return -EBADMSG;
		if (op->type == FMT_OP_SNAP_RELOC) {
			*why = "bad relocation";
			if (!snap_desc_ok(&op->snap))
				return -EBADMSG;
			d->root = op->snap.root;
			d->rectab = op->snap.rectab;
			return 0;
		}
		memmove(d, d + 1, (size_t)(o->snaps + o->nsnaps - d - 1) * sizeof(*d));
		o->nsnaps--;
		return 0;
	case FMT_OP_OBJ_DEL:
		*why = "op names an object that does not exist";
		if (!o)
			return -EBADMSG;
		obj_remove(s, o);
		return 0;
	default:
		*why = "unknown op";
		return -EBADMSG;
	}
}

int commit_ops(struct store *s, const struct fmt_op *ops, size_t n)
{
	struct fmt_entry e;
	const char *why;
	int r;

	r = log_add_compressed(s, FMT_KIND_OPS, ops, (uint32_t)(n * sizeof(*ops)), 0, 0, 0, &e);
	if (!r)
		r = log_flush(s, FMT_CHUNK_COMMIT, true);
	if (r) {
		s->cb.open = false;	/* whatever was half built is not there */
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		r = op_apply(s, &ops[i], &why);
		if (r) {
			/* our own op failed after it became durable: memory no
			 * longer matches disk, so stop writing */
			store_poison(s, r, why);
			return r;
		}
	}
	s->dirty = true;
	return maybe_checkpoint(s);
}

int maybe_checkpoint(struct store *s)
{
	if (s->log_since_ckpt < CKPT_LOG_BYTES)
		return 0;
	int r = state_checkpoint(s);
	if (r)
		pr_warn("checkpoint after commit failed: %s", strerror(-r));
	return 0;	/* the commit itself is durable */
}

void snap_to_info(const struct obj_mem *o, const struct fmt_snap *d, struct store_snap_info *info)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->object, sizeof(info->object), "%s", o->name);
	info->object_id = o->id;
	info->no = d->no;
	info->parent = d->parent;
	info->time_ns = d->time_ns;
	info->pages = d->pages;
	info->zero_pages = d->zero_pages;
	info->records = d->nrec;
	info->written = d->written;
}

/* ---- the handle ---- */

static int store_alloc(struct store_io *io, const struct fmt_super *sb, const struct store_open_opts *o,
		       struct store **out)
{
	struct store *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->io = io;
	s->file_fd = -1;
	s->sb = *sb;
	s->ro = o && o->read_only;
	s->no_autoclean = o && o->no_autoclean;
	s->next_obj = 1;
	s->segs = calloc(sb->seg_count, sizeof(*s->segs));
	s->cb.buf = s->ro ? NULL : malloc(CHUNK_MAX);
	r = cache_init(&s->cache, o && o->cache_bytes ? o->cache_bytes : CACHE_DEFAULT);
	if (!s->segs || (!s->ro && !s->cb.buf) || r) {
		cache_free(&s->cache);
		free(s->segs);
		free(s->cb.buf);
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

static void store_free(struct store *s)
{
	if (!s)
		return;
	tables_free(s);
	cache_free(&s->cache);
	free(s->segs);
	free(s->cb.buf);
	free(s->cb.items);
	io_close(s->io);
	free(s);
}

int store_create_io(struct store_io *io, const struct store_create_opts *o)
{
	struct fmt_super sb = { 0 };
	uint8_t block[FMT_BLOCK] = { 0 };
	struct store *s = NULL;
	uint64_t size = o->size;
	int r;

	sb.seg_size = o->seg_size ? o->seg_size : SEG_DEFAULT_SIZE;
	r = -EINVAL;
	if (sb.seg_size % FMT_BLOCK || sb.seg_size < FMT_SEG_MIN || sb.seg_size > FMT_SEG_MAX ||
	    (unsigned)o->codec >= CODEC__COUNT) {
		pr_err("segment size must be a multiple of 4 KiB from %u KiB to %u MiB",
		       FMT_SEG_MIN >> 10, FMT_SEG_MAX >> 20);
		goto fail;
	}
	if (!size)
		size = io_size(io);
	if (size < FMT_SEG_START || (size - FMT_SEG_START) / sb.seg_size < FMT_SEGS_MIN) {
		pr_err("a store needs room for at least %u segments of %u KiB",
		       FMT_SEGS_MIN, sb.seg_size >> 10);
		goto fail;
	}
	sb.magic = FMT_SB_MAGIC;
	sb.version = FMT_VERSION;
	sb.block_size = FMT_BLOCK;
	sb.codec = o->codec;
	sb.seg_count = (size - FMT_SEG_START) / sb.seg_size;
	sb.seg_start = FMT_SEG_START;
	if (getrandom(sb.uuid, sizeof(sb.uuid), 0) != sizeof(sb.uuid)) {
		r = -errno;
		goto fail;
	}
	sb.ctime_ns = wall_ns();
	sb.csum = csum64(&sb, offsetof(struct fmt_super, csum));

	if (io_size(io) < size && (r = io->ops->resize(io, size)))
		goto fail;
	/* clear the slots first: a store made over an old one must not
	 * find the old one's checkpoints (their uuid differs anyway) */
	if ((r = io_write(io, block, sizeof(block), FMT_SLOT_OFF(0))) ||
	    (r = io_write(io, block, sizeof(block), FMT_SLOT_OFF(1))))
		goto fail;
	memcpy(block, &sb, sizeof(sb));
	if ((r = io_write(io, block, sizeof(block), FMT_SB_OFF)) || (r = io_sync(io)))
		goto fail;
	r = store_alloc(io, &sb, NULL, &s);
	if (r)
		goto fail;
	io = NULL;
	s->head = seg_addr(s, 0);
	s->lsn = 1;
	r = state_checkpoint(s);	/* checkpoint 1: the empty store */
	store_free(s);
	return r;
fail:
	io_close(io);
	return r;
}

int store_create(const char *path, const struct store_create_opts *o)
{
	struct store_io *io;
	int r = store_io_file_open(path, O_RDWR | O_CREAT | O_EXCL, &io);

	if (r == -EINVAL || r == -EEXIST) {
		/* an existing block device is fine; anything else exists */
		r = store_io_file_open(path, O_RDWR, &io);
		if (!r && io_size(io) && !o->size) {
			return store_create_io(io, o);
		}
		if (!r)
			io_close(io);
		return -EEXIST;
	}
	if (r)
		return r;
	return store_create_io(io, o);
}

static int super_read(struct store_io *io, struct fmt_super *sb)
{
	int r = io_read(io, sb, sizeof(*sb), FMT_SB_OFF);

	if (r) {
		pr_err("cannot read the superblock: %s", r == -EIO ? "file too short" : strerror(-r));
		return r == -EIO ? -EBADMSG : r;
	}
	if (sb->magic != FMT_SB_MAGIC) {
		pr_err("not a cryo store (no superblock magic)");
		return -EBADMSG;
	}
	if (sb->csum != csum64(sb, offsetof(struct fmt_super, csum))) {
		pr_err("superblock checksum does not match: store corrupt");
		return -EBADMSG;
	}
	if (sb->version != FMT_VERSION) {
		pr_err("store format version %u, this cryo reads %u", sb->version, FMT_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (sb->block_size != FMT_BLOCK || sb->seg_size % FMT_BLOCK || sb->seg_size < FMT_SEG_MIN ||
	    sb->seg_size > FMT_SEG_MAX || sb->seg_count < FMT_SEGS_MIN ||
	    sb->seg_count > (1ull << 40) / sb->seg_size * 256 || sb->seg_start != FMT_SEG_START ||
	    sb->codec >= CODEC__COUNT) {
		pr_err("superblock geometry is invalid");
		return -EBADMSG;
	}
	uint64_t need = sb->seg_start + sb->seg_count * sb->seg_size;
	if (io_size(io) < need) {
		pr_err("store is truncated: %llu bytes, its superblock needs %llu",
		       (unsigned long long)io_size(io), (unsigned long long)need);
		return -EBADMSG;
	}
	return 0;
}

/* Apply the ops of one valid commit chunk, all or none (I3). */
static int rf_apply_commit(struct store *s, const struct chunk_view *v)
{
	const char *why;

	for (uint32_t i = 0; i < v->hdr.nitems; i++) {
		const struct fmt_item *it = &v->items[i];
		struct fmt_op *ops;
		int r;

		if (it->kind != FMT_KIND_OPS)
			continue;
		if (!it->raw || it->raw % sizeof(struct fmt_op) || it->raw > CHUNK_MAX)
			return -EBADMSG;
		ops = malloc(it->raw);
		if (!ops)
			return -ENOMEM;
		r = codec_decompress(it->codec, v->data + it->off, it->len, ops, it->raw);
		for (size_t k = 0; !r && k < it->raw / sizeof(*ops); k++) {
			r = op_apply(s, &ops[k], &why);
			if (r)
				pr_err("commit at lsn %llu: %s",
				       (unsigned long long)v->hdr.lsn, why);
		}
		free(ops);
		if (r)
			return r;
	}
	return 0;
}

/* Roll forward from the checkpoint over valid chunks (I2, I3, I5). The head
 * ends after the last complete commit; chunks past it are as if never
 * written. Reads only. */
static int roll_forward(struct store *s)
{
	uint64_t pos = s->head, lsn = s->lsn, prev = s->prev_sum;
	uint64_t *pend = NULL;
	size_t npend = 0, cap = 0;
	int r = 0;

	for (;;) {
		struct chunk_view v;
		const char *why;

		r = chunk_read(s, pos, lsn, prev, &v, &why);
		if (r == -ENOMEM)
			break;
		if (r) {
			pr_debug("log ends at lsn %llu: %s", (unsigned long long)lsn, why);
			r = 0;
			break;
		}
		if (npend == cap) {
			cap = cap ? cap * 2 : 64;
			uint64_t *n = realloc(pend, cap * sizeof(*n));
			if (!n) {
				chunk_view_free(&v);
				r = -ENOMEM;
				break;
			}
			pend = n;
		}
		pend[npend++] = pos;
		if (v.hdr.flags & FMT_CHUNK_COMMIT) {
			r = rf_apply_commit(s, &v);
			if (r) {
				chunk_view_free(&v);
				break;
			}
			for (size_t i = 0; i < npend; i++) {
				struct seg_mem *sm = &s->segs[seg_of(s, pend[i])];
				sm->state = SEG_USED;
				if (sm->mtime_ns < v.hdr.time_ns)
					sm->mtime_ns = v.hdr.time_ns;
			}
			s->open_chunks += npend;
			npend = 0;
			s->head = v.hdr.next;
			s->lsn = lsn + 1;
			s->prev_sum = v.hdr.sum_csum;
			s->dirty = true;
		}
		pos = v.hdr.next;
		prev = v.hdr.sum_csum;
		lsn++;
		chunk_view_free(&v);
	}
	free(pend);
	/* the head's segment is ours even if the state thought it free */
	s->segs[seg_of(s, s->head)].state = SEG_USED;
	return r;
}

int store_open_io(struct store_io *io, const struct store_open_opts *o, struct store **out)
{
	struct fmt_super sb;
	struct store *s = NULL;
	int r;

	r = super_read(io, &sb);
	if (r) {
		io_close(io);
		return r;
	}
	r = store_alloc(io, &sb, o, &s);
	if (r) {
		io_close(io);
		return r;
	}
	r = state_load_newest(s);
	if (!r)
		r = roll_forward(s);
	if (r) {
		store_free(s);
		return r;
	}
	*out = s;
	return 0;
}

int store_open(const char *path, const struct store_open_opts *o, struct store **out)
{
	struct store_io *io;
	int ro = o && o->read_only;
	int r = store_io_file_open(path, ro ? O_RDONLY : O_RDWR, &io);

	if (r)
		return r;
	r = store_io_file_lock(io, !ro, o && o->lock_wait_ms ? o->lock_wait_ms : 120000);
	if (r) {
		if (r == -EBUSY)
			pr_err("%s: in use by another cryo (a snapshot in progress?)", path);
		io->ops->close(io);
		return r;
	}
	r = store_open_io(io, o, out);
	if (!r)
		(*out)->file_fd = store_io_file_fd(io);
	return r;
}

int store_file_fd(const struct store *s)
{
	return s->file_fd;
}

int store_checkpoint(struct store *s)
{
	if (s->txn_open)
		return -EBUSY;
	return state_checkpoint(s);
}

int store_close(struct store *s)
{
	int r = 0;

	if (!s)
		return 0;
	if (!s->ro && !s->poisoned && s->dirty && !s->txn_open)
		r = state_checkpoint(s);
	store_free(s);
	return r;
}

int store_stat(struct store *s, struct store_stat *st)
{
	int r;

	memset(st, 0, sizeof(*st));
	st->size = s->sb.seg_start + s->sb.seg_count * s->sb.seg_size;
	st->seg_size = s->sb.seg_size;
	st->segs = s->sb.seg_count;
	for (uint64_t i = 0; i < s->sb.seg_count; i++) {
		st->segs_free += s->segs[i].state == SEG_FREE;
		st->segs_used += s->segs[i].state == SEG_USED;
		st->segs_pending += s->segs[i].state == SEG_PENDING;
	}
	st->objects = s->nobj;
	for (size_t i = 0; i < s->nobj; i++)
		st->snapshots += s->objs[i]->nsnaps;
	r = live_bytes_total(s, &st->live_bytes);
	st->lsn = s->lsn;
	st->ckpt_seq = s->slot.seq;
	st->open_chunks = s->open_chunks;
	st->bytes_written = s->bytes_written;
	st->new_bytes = s->new_bytes;
	st->clean_bytes = s->clean_bytes;
	st->segs_cleaned = s->segs_cleaned;
	st->codec = s->sb.codec;
	st->poisoned = s->poisoned;
	return r;
}

const char *store_strerror(int err)
{
	switch (-err) {
	case EBADMSG: return "store data is corrupt (checksum or format)";
	case EPROTONOSUPPORT: return "store format version not supported";
	case ENOSPC: return "store is full";
	case EFBIG: return "item too large for a segment";
	case EROFS: return "store is open read-only";
	case EBUSY: return "a transaction or snapshot handle is open";
	default: return strerror(-err);
	}
}
