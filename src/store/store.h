/* The cryo store: a log-structured store of objects and their snapshots.
 *
 * An object (later: a process group) has numbered snapshots. A snapshot
 * holds 4 KiB pages addressed by a 48-bit key, STORE_KEY(space, vpn): 4096
 * page spaces of 36-bit virtual page numbers (one per process of a group),
 * through a copy-on-write page index, and metadata records
 * (opaque bytes under a short key). A snapshot based on an earlier one
 * shares every page and index node it does not change, so writing k
 * changed pages costs O(k) pages and nodes.
 *
 * It knows nothing of processes. Format and crash invariants: format.h.
 *
 * Errors are 0 or -errno. A handle is used by one thread at a time.
 * Ownership: every pointer returned through an out-parameter belongs to the
 * caller and is released with the matching _close/_free/_abort function;
 * passing NULL to those does nothing.
 */
#ifndef CRYO_STORE_STORE_H
#define CRYO_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/codec.h"
#include "store/io.h"

#define STORE_PAGE_SIZE		4096u
/* Pages are addressed by a 48-bit key: (space << 36) | vpn. */
#define STORE_SPACE_BITS	12
#define STORE_VPN_BITS		36
#define STORE_KEY(space, vpn)	(((uint64_t)(space) << STORE_VPN_BITS) | (vpn))
#define STORE_VPN_MAX		((1ull << (STORE_SPACE_BITS + STORE_VPN_BITS)) - 1)
#define STORE_NAME_MAX		63	/* object name, bytes */
#define STORE_KEY_MAX		39	/* record key, bytes */
#define STORE_RECORD_MAX	(2u << 20)
#define STORE_SNAP_NEWEST	UINT64_MAX

struct store;
struct store_txn;
struct store_snap;

struct store_create_opts {
	uint64_t size;		/* device size in bytes (files grow to it) */
	uint32_t seg_size;	/* 0 = default (8 MiB) */
	enum codec codec;	/* default for pages and records */
};

struct store_open_opts {
	int read_only;		/* no writes at all (fsck, inspect) */
	int no_autoclean;	/* never clean by itself (tests, benches) */
	uint64_t cache_bytes;	/* index node cache; 0 = default (64 MiB) */
	/* store_open takes a lock on the file (one writer, or readers) and
	 * waits this long for it; 0 = default (120 s), then -EBUSY. */
	unsigned lock_wait_ms;
};

/* Make a new store in path (a new file, or an existing block device), or
 * through io (which is consumed). */
int store_create(const char *path, const struct store_create_opts *o);
int store_create_io(struct store_io *io, const struct store_create_opts *o);

/* Open and recover (I5). o may be NULL for defaults. store_open_io
 * consumes io, also on failure. */
int store_open(const char *path, const struct store_open_opts *o, struct store **out);
int store_open_io(struct store_io *io, const struct store_open_opts *o, struct store **out);

/* Write a checkpoint if anything changed since the last, then close. The
 * return value is that checkpoint's; the handle is freed either way. */
int store_close(struct store *s);
/* The store file's descriptor when opened by path (store_open), else -1:
 * a child that keeps it open keeps the store's lock too. */
int store_file_fd(const struct store *s);

/* A checkpoint now (normally automatic, I6). */
int store_checkpoint(struct store *s);

/* ---- writing a snapshot ---- */

/* Begin a snapshot of object (created on commit if new). base: 0 starts
 * empty, STORE_SNAP_NEWEST starts from the newest snapshot (empty if none),
 * any other number from that snapshot (-ENOENT if absent). Pages and
 * records of the base are kept unless put or dropped. One transaction at a
 * time per store (-EBUSY). */
int store_txn_begin(struct store *s, const char *object, uint64_t base,
		    struct store_txn **out);
/* Store one page; a page of zeros is kept as a hole, nothing written.
 * -ENOSPC: the store is full; abort, store_clean() and try again (the
 * cleaner cannot run while a transaction is open). */
int store_txn_put_page(struct store_txn *t, uint64_t vpn, const void *page);
/* Store a page known to be zero without looking at it. */
int store_txn_put_zero(struct store_txn *t, uint64_t vpn);
/* Forget count pages from vpn (unmapped since the base). */
int store_txn_drop_pages(struct store_txn *t, uint64_t vpn, uint64_t count);
int store_txn_put_record(struct store_txn *t, const char *key, const void *data, size_t len);
int store_txn_drop_record(struct store_txn *t, const char *key);
/* Make the snapshot durable and visible, atomically (I3). Frees t, also on
 * failure; on failure nothing of it is visible and, if the failure was an
 * I/O error, the store refuses writes until reopened (I8). */
int store_txn_commit(struct store_txn *t, uint64_t *snap_no);
void store_txn_abort(struct store_txn *t);

/* ---- reading a snapshot ---- */

enum store_page_kind { STORE_PAGE_NONE = 0, STORE_PAGE_ZERO = 1, STORE_PAGE_DATA = 2 };

int store_snap_open(struct store *s, const char *object, uint64_t snap,
		    struct store_snap **out);
void store_snap_close(struct store_snap *sn);

/* Read a page: returns its kind (>= 0) or -errno. buf gets the data (zeros
 * for STORE_PAGE_ZERO) and is left alone for STORE_PAGE_NONE. A corrupt
 * page is -EBADMSG (I7). */
int store_snap_read_page(struct store_snap *sn, uint64_t vpn, void *buf);

/* Read the n pages from vpn first into buf (n * STORE_PAGE_SIZE bytes);
 * kinds[i] gets page i's kind: a NONE page's bytes are left alone, a ZERO
 * page is zeroed. The same bytes as store_snap_read_page, faster: items
 * that lie near each other in the log are read with one pread and are
 * checked and decompressed on every core. A corrupt page is -EBADMSG (I7).
 * Not thread-safe on one snapshot; do not fork while it runs. */
int store_snap_read_pages(struct store_snap *sn, uint64_t first, size_t n, void *buf,
			  uint8_t *kinds);

/* The same read in two steps, for a reader with more than one thread
 * (the pager serves faults beside its prefetch). store_snap_plan walks
 * the index for the n pages from first (n >= 1) and checks where their
 * items are, as any call on the handle (one thread at a time);
 * store_plan_fetch then reads, checks and decodes them into buf (n pages)
 * and kinds (n) exactly as store_snap_read_pages, and store_plan_readahead
 * asks the kernel to start reading them into the page cache so that a
 * fetch soon after waits less (only a hint). Those two only read the
 * store's file: they may run on any thread beside other calls on the
 * handle, several at once. A plan is valid until store_plan_free and
 * while the store is open; it is the caller's. */
struct store_plan;
int store_snap_plan(struct store_snap *sn, uint64_t first, size_t n, struct store_plan **out);
int store_plan_fetch(const struct store_plan *pl, void *buf, uint8_t *kinds);
void store_plan_readahead(const struct store_plan *pl);
void store_plan_free(struct store_plan *pl);

/* Call fn for every present page in [first, last], in vpn order, without
 * reading page data. fn returns 0 to go on, anything else stops the walk
 * and is returned. */
typedef int (*store_page_fn)(void *arg, uint64_t vpn, enum store_page_kind kind);
int store_snap_walk(struct store_snap *sn, uint64_t first, uint64_t last,
		    store_page_fn fn, void *arg);

/* Read a record into a new buffer (*data, caller frees). -ENOENT if none. */
int store_snap_read_record(struct store_snap *sn, const char *key, void **data, size_t *len);

/* Record keys of the snapshot, in key order; fn as for store_snap_walk. */
typedef int (*store_key_fn)(void *arg, const char *key, size_t len);
int store_snap_keys(struct store_snap *sn, store_key_fn fn, void *arg);

struct store_snap_info {
	char object[STORE_NAME_MAX + 1];
	uint64_t object_id;
	uint64_t no;
	uint64_t parent;
	uint64_t time_ns;
	uint64_t pages;		/* present pages, zero ones included */
	uint64_t zero_pages;
	uint32_t records;
	uint64_t written;	/* stored bytes this snapshot added */
};
void store_snap_info(const struct store_snap *sn, struct store_snap_info *info);

/* ---- objects and snapshots ---- */

/* Every snapshot of every object (object name order, then number). */
typedef int (*store_list_fn)(void *arg, const struct store_snap_info *info);
int store_list(struct store *s, store_list_fn fn, void *arg);
/* Snapshots of one object; -ENOENT if there is no such object. */
int store_list_object(struct store *s, const char *object, store_list_fn fn, void *arg);

/* Each is one durable commit. */
int store_snap_delete(struct store *s, const char *object, uint64_t snap);
int store_object_delete(struct store *s, const char *object);
/* Delete all but the newest keep snapshots of object. */
int store_retain(struct store *s, const char *object, unsigned keep);

/* ---- upkeep ---- */

struct store_stat {
	uint64_t size, seg_size, segs, segs_free, segs_used, segs_pending;
	uint64_t objects, snapshots;
	uint64_t live_bytes;		/* stored bytes reachable from kept snapshots */
	uint64_t lsn, ckpt_seq;
	uint64_t open_chunks;		/* chunks rolled forward at open */
	uint64_t bytes_written;		/* by this handle, all kinds */
	uint64_t new_bytes;		/* by this handle, for commits (not cleaning) */
	uint64_t clean_bytes;		/* by this handle, copied by the cleaner */
	uint64_t segs_cleaned;
	enum codec codec;
	int poisoned;
};
int store_stat(struct store *s, struct store_stat *st);

/* Check everything: slots, state, every chunk of every used segment, every
 * snapshot's index and records down to each page's checksum. say() gets one
 * line per problem. 0 when clean, -EUCLEAN when problems were found. */
typedef void (*store_say_fn)(void *arg, const char *line);
struct store_fsck_report {
	uint64_t problems, snapshots, items, bytes;
};
int store_fsck(struct store *s, struct store_fsck_report *r, store_say_fn say, void *arg);

/* Clean: choose segments by cost-benefit ((1-u)*age/(1+u), Sprite LFS),
 * copy their live items forward, free them (after a checkpoint, I1).
 * want_free: stop when this many segments are free (0 = clean every
 * segment under 100% use). -EBUSY while a transaction or snapshot handle
 * is open. */
struct store_clean_report {
	uint64_t segs_cleaned, bytes_copied, segs_freed;
};
int store_clean(struct store *s, uint64_t want_free, struct store_clean_report *r);

/* A readable message for the errors the store makes up (-EBADMSG, ...). */
const char *store_strerror(int err);

#endif
