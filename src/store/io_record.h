/* A recording store_io over an in-memory device, for power-cut tests and
 * fuzzers (SQLite's test6.c idea: keep every write, then decide at a "crash"
 * which of the unsynced ones reached the platter).
 *
 * The recorder keeps the device as it was when made (the base), the device
 * now (every write applied, what reads see, like a page cache) and a log of
 * every write with the number of writes the newest sync before it covered.
 *
 * A crash image for cut point k is what a power cut right after write k-1
 * (before any sync that followed it) may leave:
 *   - every write before the newest sync that preceded write k-1 is there;
 *   - of the unsynced writes in between (k-1 is always one of them) all,
 *     none, or a random subset in issue or in random order is applied;
 *   - optionally one applied write is torn at a 512-byte sector boundary.
 *
 * Ownership: a recorder is reference-counted. io_record_new* returns one
 * reference for the caller; every store_io from io_record_io holds another,
 * dropped when the store closes it. So the log outlives the store that made
 * it. Not thread-safe (one store handle uses it at a time).
 */
#ifndef CRYO_STORE_IO_RECORD_H
#define CRYO_STORE_IO_RECORD_H

#include <stdint.h>

#include "store/io.h"

#define IO_RECORD_SECTOR	512u

struct io_record;

/* A device of size bytes, all zero. */
int io_record_new(uint64_t size, struct io_record **out);
/* A device that starts as a copy of img[size] (a crash image, a fuzz input). */
int io_record_new_image(const void *img, uint64_t size, struct io_record **out);
/* A device that starts as img[size], a malloc'd buffer the recorder takes
 * over (and frees with the last reference); on failure the caller keeps
 * it. Saves a copy per crash image. */
int io_record_new_take(uint8_t *img, uint64_t size, struct io_record **out);
/* Drop the caller's reference; NULL does nothing. */
void io_record_free(struct io_record *rec);

/* A new store_io on rec; it holds a reference until closed. */
int io_record_io(struct io_record *rec, struct store_io **out);
/* Shortcut: a store_io over a private copy of img[size]; closing it frees
 * everything. */
int io_record_open_image(const void *img, uint64_t size, struct store_io **out);

uint64_t io_record_size(const struct io_record *rec);
uint64_t io_record_writes(const struct io_record *rec);
uint64_t io_record_syncs(const struct io_record *rec);
/* Bytes as they are now (every write applied). Valid until rec is freed. */
const uint8_t *io_record_device(const struct io_record *rec);
/* Where write i went (for messages). -ERANGE past the log. */
int io_record_write_at(const struct io_record *rec, uint64_t i, uint64_t *off, uint64_t *len);
/* Writes of a cut at k that no sync covers (writes [k - n, k)); 0 for k = 0. */
uint64_t io_record_unsynced(const struct io_record *rec, uint64_t cut);

enum io_record_keep {
	IO_RECORD_KEEP_ALL,	/* every unsynced write, in issue order */
	IO_RECORD_KEEP_NONE,	/* none: only what syncs covered */
	IO_RECORD_KEEP_SUBSET,	/* each with probability 1/2, in issue order */
	IO_RECORD_KEEP_SHUFFLE,	/* each with probability 1/2, in random order */
};

enum io_record_tear {
	IO_RECORD_TEAR_NONE,
	IO_RECORD_TEAR_PREFIX,	/* only the first n sectors land (n < all) */
	IO_RECORD_TEAR_SECTORS,	/* a random proper subset of its sectors lands */
	IO_RECORD_TEAR_GARBAGE,	/* a prefix lands, the sector after it is garbage */
};

struct io_record_crash {
	uint64_t cut;			/* writes [0, cut) were issued */
	enum io_record_keep keep;
	enum io_record_tear tear;	/* torn: KEEP_ALL tears the last write,
					 * the others a random applied one */
	uint64_t seed;			/* for every random choice; same seed,
					 * same image */
	int tear_fixed;			/* PREFIX, GARBAGE: exactly tear_sectors */
	uint32_t tear_sectors;		/* sectors that land (clamped below all) */
};

/* Build the device a power cut as c describes leaves behind into a new
 * buffer of io_record_size(rec) bytes (*img, caller frees). -EINVAL when
 * c->cut is past the log. Cheap for cuts in increasing order: the synced
 * prefix is cached and only advanced. */
int io_record_crash_image(struct io_record *rec, const struct io_record_crash *c, uint8_t **img);

#endif
