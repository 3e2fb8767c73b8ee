/* Internals shared by the store's files; nothing outside src/store sees it.
 *
 * Files, by on-disk structure:
 *   chunk.c      the log writer (chunk builder) and chunk/item readers
 *   state.c      checkpoint slots and the state they name
 *   store.c      create, open + recovery (roll-forward), close, stat, tables
 *   pagetable.c  the copy-on-write page index
 *   txn.c        writing a snapshot
 *   snap.c       reading a snapshot; list, delete, retain
 *   clean.c      the cleaner
 *   fsck.c       the checker
 */
#ifndef CRYO_STORE_INTERNAL_H
#define CRYO_STORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "store/format.h"
#include "store/store.h"

#define SEG_DEFAULT_SIZE	(8u << 20)
#define CHUNK_MAX		(4u << 20)	/* bytes of one chunk, all parts */
#define SEG_TAIL_MIN		(32u << 10)	/* less room than this: next segment */
#define CKPT_LOG_BYTES		(64ull << 20)	/* I6: log between checkpoints */
#define CACHE_DEFAULT		(64ull << 20)
#define NO_SEG			UINT64_MAX
#define STATE_NREC_MAX		(CHUNK_MAX / sizeof(struct fmt_rec))

static inline uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* Segment states in memory. PENDING: emptied by the cleaner, free once the
 * next checkpoint is durable (I1); recorded as FREE in that checkpoint. */
enum seg_state { SEG_FREE = 0, SEG_USED = 1, SEG_PENDING = 2 };

struct seg_mem {
	uint8_t state;
	uint64_t mtime_ns;
};

struct obj_mem {
	uint64_t id;
	uint64_t next_no;
	uint64_t ctime_ns;
	char name[FMT_NAME_LEN];
	struct fmt_snap *snaps;		/* by number, ascending */
	size_t nsnaps, cap;
};

/* The chunk being built: header space, data area, then descriptors. */
struct chunk_buf {
	uint8_t *buf;			/* CHUNK_MAX bytes: header + data */
	struct fmt_item *items;
	size_t nitems, items_cap;
	uint32_t data_len;		/* bytes in the data area */
	uint64_t start;			/* device address of the chunk */
	uint64_t room;			/* bytes from start to the segment's end */
	bool open;
};

/* Decoded index nodes by address: direct-mapped, dropped whole when the
 * cleaner frees segments (addresses get reused then). */
struct node_cache {
	struct cache_slot {
		uint64_t addr;		/* 0 = empty (no item lives at 0) */
		uint32_t csum;		/* with addr, the key */
		struct fmt_entry e[FMT_FANOUT];
	} *slots;
	size_t nslots;
	uint64_t hits, misses;
};

struct store {
	struct store_io *io;
	int file_fd;			/* io's fd when opened by path, else -1 */
	struct fmt_super sb;
	bool ro, poisoned, no_autoclean;

	/* tables */
	struct obj_mem **objs;		/* by name */
	size_t nobj, objs_cap;
	uint64_t next_obj;
	struct seg_mem *segs;

	/* the log writer: where the next chunk goes (I2) */
	uint64_t head, lsn, prev_sum;
	struct chunk_buf cb;

	/* checkpoints */
	struct fmt_slot slot;		/* the newest durable one */
	uint64_t log_since_ckpt;
	bool dirty;			/* anything committed since it */

	struct node_cache cache;
	int txn_open, snaps_open;

	/* counters for store_stat */
	uint64_t open_chunks, bytes_written, new_bytes, clean_bytes, segs_cleaned;
	uint64_t item_bytes;		/* stored bytes of every item added */
	bool cleaning;			/* writes count as clean_bytes */
	bool in_clean;			/* the cleaner may use the reserve */
	uint64_t txn_segs;		/* segments the open transaction took */
	uint64_t txn_segs_peak;		/* the most any transaction took */
};

/* ---- chunk.c: writing ---- */
/* Append an item; *ent gets where it lives. Flushes full chunks. */
int log_add(struct store *s, unsigned kind, unsigned codec, const void *data,
	    uint32_t len, uint32_t raw, uint64_t owner, uint64_t key, uint8_t level,
	    struct fmt_entry *ent);
/* Compress then append (codec of the store, raw if it does not shrink). */
int log_add_compressed(struct store *s, unsigned kind, const void *data, uint32_t raw,
		       uint64_t owner, uint64_t key, uint8_t level, struct fmt_entry *ent);
/* Write the open chunk (if any) with flags; sync if asked. */
int log_flush(struct store *s, uint16_t flags, bool sync);
uint64_t seg_of(const struct store *s, uint64_t addr);
uint64_t seg_addr(const struct store *s, uint64_t seg);
uint64_t segs_free(const struct store *s);
uint64_t segs_reserve(const struct store *s);
void store_poison(struct store *s, int err, const char *what);

/* ---- chunk.c: reading ---- */
/* Read an item's stored bytes and check them against the entry (I7). */
/* Is [addr, addr + len) inside one segment of the device? (Item addresses
 * come from disk: untrusted.) */
bool chunk_addr_ok(const struct store *s, uint64_t addr, uint64_t len);
int item_read_stored(struct store *s, const struct fmt_entry *e, void *buf);
/* Read, check and decompress into out (raw bytes). */
int item_read(struct store *s, const struct fmt_entry *e, uint32_t raw, void *out);

/* A chunk read back whole and checked (I2). */
struct chunk_view {
	struct fmt_chunk hdr;
	uint8_t *data;			/* data area, hdr.data_len bytes */
	struct fmt_item *items;		/* hdr.nitems descriptors */
};
/* 0 valid; -EBADMSG/-EIO when the chunk at addr is not a valid successor
 * of (lsn, prev_sum). why gets a short reason. */
int chunk_read(struct store *s, uint64_t addr, uint64_t lsn, uint64_t prev_sum,
	       struct chunk_view *v, const char **why);
void chunk_view_free(struct chunk_view *v);

/* ---- state.c ---- */
int state_checkpoint(struct store *s);
int state_load_newest(struct store *s);	/* slots + state into tables */
int slot_read(struct store *s, unsigned i, struct fmt_slot *out, const char **why);

/* ---- store.c: tables ---- */
struct obj_mem *obj_find(struct store *s, const char *name);
struct obj_mem *obj_find_id(struct store *s, uint64_t id);
struct fmt_snap *snap_find(struct obj_mem *o, uint64_t no);
int obj_create(struct store *s, uint64_t id, const char *name, uint64_t ctime,
	       struct obj_mem **out);
/* Insert keeping number order; -EEXIST for a number already there. */
int snap_insert(struct obj_mem *o, const struct fmt_snap *d);
bool snap_desc_ok(const struct fmt_snap *d);
int op_apply(struct store *s, const struct fmt_op *op, const char **why);
void tables_free(struct store *s);
/* Write ops as one commit (ops item + COMMIT chunk + sync), then apply. */
int commit_ops(struct store *s, const struct fmt_op *ops, size_t n);
int maybe_checkpoint(struct store *s);
void snap_to_info(const struct obj_mem *o, const struct fmt_snap *d,
		  struct store_snap_info *info);
bool name_ok(const char *name);

/* ---- pagetable.c ---- */
/* A node as a transaction holds it: mutable, children loaded on demand. */
struct pt_node {
	struct fmt_entry e[FMT_FANOUT];
	struct pt_node *child[FMT_FANOUT];
	bool dirty;
};
int node_get(struct store *s, const struct fmt_entry *e, const struct fmt_entry **out);
void cache_drop_all(struct store *s);
int cache_init(struct node_cache *c, uint64_t bytes);
void cache_free(struct node_cache *c);
int pt_lookup(struct store *s, const struct fmt_entry *root, uint64_t vpn,
	      struct fmt_entry *out);
/* readbulk.c: store_snap_read_pages under a root. */
int bulk_read_pages(struct store *s, const struct fmt_entry *root, uint64_t first, size_t n,
		    void *buf, uint8_t *kinds);
/* readbulk.c: store_snap_plan under a root. */
int bulk_plan(struct store *s, const struct fmt_entry *root, uint64_t first, size_t n,
	      struct store_plan **out);

/* The leaves (FMT_KIND_ZERO or FMT_KIND_PAGE entries) in [first, last], in
 * vpn order; e is valid during the call only. */
typedef int (*pt_leaf_fn)(void *arg, uint64_t vpn, const struct fmt_entry *e);
int pt_walk_entries(struct store *s, const struct fmt_entry *root, uint64_t first, uint64_t last,
		    pt_leaf_fn fn, void *arg);
int pt_walk(struct store *s, const struct fmt_entry *root, uint64_t first, uint64_t last,
	    store_page_fn fn, void *arg);
/* Mutable tree of a transaction. */
int pt_load_root(struct store *s, const struct fmt_entry *root, struct pt_node **out);
/* Set vpn's entry; *old gets what was there. */
int pt_set(struct store *s, struct pt_node *root, uint64_t vpn, struct fmt_entry e,
	   struct fmt_entry *old);
/* Drop [first, last]; adds dropped data/zero page counts. */
int pt_drop(struct store *s, struct pt_node *root, uint64_t first, uint64_t last,
	    uint64_t *pages, uint64_t *zeros);
/* Write dirty nodes bottom-up; *root_out is the new root entry. */
int pt_write(struct store *s, struct pt_node *root, uint64_t owner, struct fmt_entry *root_out);
void pt_free(struct pt_node *n);
/* Visit every node entry and leaf entry reachable from root once per call
 * (shared subtrees are visited each time they are reached). */
typedef int (*pt_visit_fn)(void *arg, const struct fmt_entry *e, unsigned level, uint64_t vpn);
int pt_visit(struct store *s, const struct fmt_entry *root, pt_visit_fn fn, void *arg);

/* ---- clean.c ---- */
/* Live stored bytes per segment (per_seg has seg_count entries, zeroed by
 * the caller): every item a kept snapshot or the checkpoint reaches. */
int live_bytes_per_seg(struct store *s, uint64_t *per_seg);
int live_bytes_total(struct store *s, uint64_t *out);

/* ---- snap.c ---- */
int rectab_load(struct store *s, const struct fmt_snap *d, struct fmt_rec **out);

#endif
