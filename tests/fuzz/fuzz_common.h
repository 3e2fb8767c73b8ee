/* Shared parts of the store's fuzz targets: a small valid store image to
 * start from, a way to repair the checksums a mutation broke (so the
 * parsers behind them see the mutated bytes), and the walk every target
 * does over whatever opens. */
#ifndef CRYO_TESTS_FUZZ_COMMON_H
#define CRYO_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "common/codec.h"

#define FUZZ_SEG_SIZE	(256u * 1024u)
#define FUZZ_NSEGS	8u

/* A small store with codec as its default, built once per process:
 * several objects and snapshots, records, a delete, a checkpoint, and
 * commits after it (so open rolls forward). The bytes are what a power cut
 * after the last commit leaves. Owned by this module; NULL if the store
 * could not be built. */
const uint8_t *fuzz_seed_image(enum codec codec, size_t *size);

/* Recompute, from format.h, the checksums that stand between a mutation
 * and the parsers: superblock, every chunk (descriptor csum32s, data and
 * summary checksums, prev_sum along the lsn chain) and both slots (state
 * item checksum, prev_sum, own checksum). Slots and chunks the mutation
 * made nonsense of are left as they are. Index entries are repaired for
 * the snapshots that commits after the checkpoint add (their ops hold the
 * roots), in a store stored raw; the others keep theirs, so a mutated page
 * or node fails their reads (I7). */
void fuzz_fix_checksums(uint8_t *img, size_t size);

/* Byte addresses of the chunks in img (4 KiB aligned blocks that start with
 * the chunk magic), at most max; returns how many. */
size_t fuzz_chunks(const uint8_t *img, size_t size, uint64_t *addr, size_t max);

/* Open img (copied), list, read every page and record of every snapshot,
 * fsck, close; when write is set, reopen read-write and commit a snapshot.
 * Never fails: errors are the expected outcome of bad input. Returns the
 * number of snapshots it could read, for drivers that want a figure. */
unsigned fuzz_exercise(const uint8_t *img, size_t size, int write);

struct fuzz_tally {
	unsigned long runs, opened, fsck_clean, snaps_read, committed;
};
void fuzz_tally(struct fuzz_tally *t);

#endif
