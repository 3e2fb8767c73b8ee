/* On-disk format of the cryo store. docs/FORMAT.md says the same in prose.
 *
 * Every field is little-endian (x86_64 only, checked below). Every structure
 * has a magic, a version and a checksum; everything read back is untrusted.
 *
 * Layout of the device (byte offsets):
 *
 *   0        4096  superblock            written once, by store_create
 *   4096     4096  checkpoint slot 0     checkpoints with even seq
 *   8192     4096  checkpoint slot 1     checkpoints with odd seq
 *   12288    ...   reserved up to the first segment (seg_start)
 *   seg_start      segment 0, segment 1, ... each seg_size bytes
 *
 * A segment holds chunks, back to back, each starting on a 4 KiB boundary:
 *
 *   [chunk header, 128 B][data area: items][pad to 8][item descriptors][pad to 4 KiB]
 *
 * The data area comes right after the header so an item's address is known
 * the moment it is added; the descriptors follow once the chunk is full.
 * The summary of a chunk is its header plus its descriptors.
 *
 * The chunks form one chain, the log: each names the lsn it has, the summary
 * checksum of the chunk before it, and the address of the chunk after it
 * (in the same segment, or the start of a segment reserved beforehand).
 *
 * CRASH INVARIANTS (cited as I1..I8 by the code and the tests)
 *
 * I1  Nothing live is overwritten. Chunks are written only into the current
 *     segment past the head, or into a segment that the newest durable
 *     checkpoint records as free. A segment the cleaner empties stays
 *     PENDING until the next checkpoint that records it free is durable.
 * I2  A chunk is valid only if magic, version, uuid, summary checksum and
 *     data checksum are right, its lsn is the one expected and its prev_sum
 *     is the summary checksum of the chunk before it. The first invalid
 *     chunk ends the log; stale chunks from a segment's earlier life can
 *     never continue the chain (wrong lsn or wrong prev_sum).
 * I3  A commit is a run of chunks that ends with one flagged COMMIT. Its ops
 *     apply only when every chunk of the run is valid. store_txn_commit
 *     returns only after the sync that covers every chunk of the run.
 * I4  A checkpoint slot is written only after its state chunk, and the log
 *     before it, are synced. Slots alternate by seq % 2; the valid slot with
 *     the highest seq wins; a torn slot fails its checksum and is not there.
 * I5  Recovery never writes. Open = newest valid checkpoint + roll forward
 *     over valid commits; running it twice gives the same state.
 * I6  Roll-forward is bounded: a checkpoint follows at most CKPT_LOG_BYTES
 *     of log, so open time does not grow with the store's size.
 * I7  Every stored item is checksummed where it is referenced (index entry,
 *     record entry, checkpoint slot). A bad item fails only the reads that
 *     reach it; older snapshots that do not share it stay readable.
 * I8  After a failed write or sync the handle is poisoned and refuses writes
 *     until reopened; the store on disk is what recovery finds: the last
 *     commit that returned success, or a later one.
 */
#ifndef CRYO_STORE_FORMAT_H
#define CRYO_STORE_FORMAT_H

#include <assert.h>
#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the store format is little-endian; add byte swapping for this target"
#endif

#define FMT_BLOCK		4096u
#define FMT_VERSION		1u
#define FMT_SB_OFF		0u
#define FMT_SLOT_OFF(i)		(4096u * (1u + (i)))
#define FMT_SEG_START		(64u * 1024u)
#define FMT_SEG_MIN		(256u * 1024u)
#define FMT_SEG_MAX		(256u * 1024u * 1024u)
#define FMT_SEGS_MIN		8u

#define FMT_SB_MAGIC		0x524f54534f595243ull	/* "CRYOSTOR" */
#define FMT_SLOT_MAGIC		0x54504b434f595243ull	/* "CRYOCKPT" */
#define FMT_CHUNK_MAGIC		0x4b4e48434f595243ull	/* "CRYOCHNK" */
#define FMT_STATE_MAGIC		0x54415453434f5952ull	/* "RYOCSTAT" */

/* Superblock: block 0, written once at create.
 *
 * OFFSET SIZE DESCRIPTION
 *      0    8 magic FMT_SB_MAGIC
 *      8    4 version (FMT_VERSION)
 *     12    4 block size (4096)
 *     16    4 segment size in bytes (multiple of 4096, FMT_SEG_MIN..MAX)
 *     20    4 default codec for new items (enum codec)
 *     24    8 segment count (>= FMT_SEGS_MIN)
 *     32    8 byte offset of segment 0 (FMT_SEG_START)
 *     40   16 uuid: random, names every chunk and slot of this store
 *     56    8 creation time, ns since the epoch
 *     64   56 reserved, zero
 *    120    8 csum64 of bytes 0..119
 */
struct fmt_super {
	uint64_t magic;
	uint32_t version;
	uint32_t block_size;
	uint32_t seg_size;
	uint32_t codec;
	uint64_t seg_count;
	uint64_t seg_start;
	uint8_t uuid[16];
	uint64_t ctime_ns;
	uint8_t reserved[56];
	uint64_t csum;
};
static_assert(sizeof(struct fmt_super) == 128, "fmt_super size");

/* Checkpoint slot: block 1 + (seq % 2).
 *
 * OFFSET SIZE DESCRIPTION
 *      0    8 magic FMT_SLOT_MAGIC
 *      8    4 version
 *     12    4 reserved, zero
 *     16    8 seq: 1 for the checkpoint store_create writes, +1 each time
 *     24    8 lsn the first chunk after this checkpoint must have
 *     32    8 head: byte address where that chunk starts
 *     40    8 prev_sum: summary checksum of the chunk before head
 *     48    8 state item: byte address
 *     56    4 state item: stored length
 *     60    4 state item: raw length
 *     64    8 state item: csum64 of the stored bytes
 *     72    4 state item: codec
 *     76    4 reserved, zero
 *     80   16 uuid (as the superblock)
 *     96    8 time written, ns
 *    104   16 reserved, zero
 *    120    8 csum64 of bytes 0..119
 */
struct fmt_slot {
	uint64_t magic;
	uint32_t version;
	uint32_t reserved0;
	uint64_t seq;
	uint64_t lsn;
	uint64_t head;
	uint64_t prev_sum;
	uint64_t state_addr;
	uint32_t state_len;
	uint32_t state_raw;
	uint64_t state_csum;
	uint32_t state_codec;
	uint32_t reserved1;
	uint8_t uuid[16];
	uint64_t time_ns;
	uint8_t reserved2[16];
	uint64_t csum;
};
static_assert(sizeof(struct fmt_slot) == 128, "fmt_slot size");

/* Chunk header: first bytes of a chunk's summary.
 *
 * OFFSET SIZE DESCRIPTION
 *      0    8 magic FMT_CHUNK_MAGIC
 *      8    2 version
 *     10    2 flags: FMT_CHUNK_COMMIT ends a commit, FMT_CHUNK_STATE holds
 *               a checkpoint's state
 *     12    4 item count n; n descriptors follow the header
 *     16    8 lsn: one more than the chunk before
 *     24    8 prev_sum: summary checksum of the chunk before
 *     32   16 uuid (as the superblock)
 *     48    8 time written, ns
 *     56    4 chunk length in bytes: header, data, descriptors, padded to
 *               4096 (descriptors start at 128 + data length, rounded up to 8)
 *     60    4 data length in bytes (the data area starts at byte 128)
 *     64    8 next: byte address of the chunk after this one
 *     72    8 csum64 of the data area (data length bytes)
 *     80   40 reserved, zero
 *    120    8 summary checksum: csum64 of header (this field as zero)
 *               and the n descriptors
 */
#define FMT_CHUNK_COMMIT	0x1u
#define FMT_CHUNK_STATE		0x2u
#define FMT_CHUNK_HDR		128u
#define FMT_CHUNK_DESC_OFF(data_len) ((FMT_CHUNK_HDR + (data_len) + 7u) & ~7u)
struct fmt_chunk {
	uint64_t magic;
	uint16_t version;
	uint16_t flags;
	uint32_t nitems;
	uint64_t lsn;
	uint64_t prev_sum;
	uint8_t uuid[16];
	uint64_t time_ns;
	uint32_t chunk_len;
	uint32_t data_len;
	uint64_t next;
	uint64_t data_csum;
	uint8_t reserved[40];
	uint64_t sum_csum;
};
static_assert(sizeof(struct fmt_chunk) == 128, "fmt_chunk size");

/* Item kinds: what a stored item is (chunk descriptors, index entries). */
enum fmt_kind {
	FMT_KIND_NONE = 0,	/* index entry: no page here */
	FMT_KIND_ZERO = 1,	/* index entry: a page of zeros, nothing stored */
	FMT_KIND_PAGE = 2,	/* 4096 bytes of memory */
	FMT_KIND_NODE = 3,	/* page index node: 256 fmt_entry */
	FMT_KIND_RECTAB = 4,	/* a snapshot's record table: fmt_rec[] */
	FMT_KIND_RECORD = 5,	/* a metadata record: opaque bytes */
	FMT_KIND_OPS = 6,	/* a commit's ops: fmt_op[] */
	FMT_KIND_STATE = 7,	/* a checkpoint's state: see fmt_state */
	FMT_KIND__COUNT
};

/* Item descriptor: one per item of a chunk, after the chunk header.
 *
 * OFFSET SIZE DESCRIPTION
 *      0    4 offset of the item in the chunk's data area (its byte
 *               address is chunk start + 128 + offset)
 *      4    4 stored length
 *      8    4 raw length (after decompression)
 *     12    1 kind (enum fmt_kind)
 *     13    1 codec (enum codec)
 *     14    1 level, for index nodes (0 = leaf)
 *     15    1 reserved, zero
 *     16    8 owner: object id (0 for ops and state)
 *     24    8 key: first page key covered (pages, nodes); else 0
 *     32    4 csum32 of the stored bytes
 *     36    4 reserved, zero
 */
struct fmt_item {
	uint32_t off;
	uint32_t len;
	uint32_t raw;
	uint8_t kind;
	uint8_t codec;
	uint8_t level;
	uint8_t reserved0;
	uint64_t owner;
	uint64_t key;
	uint32_t csum;
	uint32_t reserved1;
};
static_assert(sizeof(struct fmt_item) == 40, "fmt_item size");

/* Page index: a copy-on-write radix tree over 48-bit page keys. A key is
 * (space << 36) | vpn: a 36-bit virtual page number (48-bit addresses) in
 * one of 4096 page spaces, so every process of a group (and every file
 * whose contents a snapshot keeps) has its own address space inside one
 * atomic snapshot. Six levels of 8 bits; a node is 256 entries of 16
 * bytes = 4096 bytes.
 *
 * Index entry:
 * OFFSET SIZE DESCRIPTION
 *      0    8 bits 0..47 byte address of the item; 48..51 kind;
 *               52..55 codec; 56..63 zero
 *      8    4 stored length
 *     12    4 csum32 of the stored bytes
 */
#define FMT_LEVELS		6
#define FMT_FANOUT		256
#define FMT_KEY_BITS		48
#define FMT_ADDR_MASK		((1ull << 48) - 1)
struct fmt_entry {
	uint64_t word;
	uint32_t len;
	uint32_t csum;
};
static_assert(sizeof(struct fmt_entry) == 16, "fmt_entry size");
static_assert(sizeof(struct fmt_entry) * FMT_FANOUT == FMT_BLOCK, "node size");

static inline uint64_t fmt_entry_addr(const struct fmt_entry *e) { return e->word & FMT_ADDR_MASK; }
static inline unsigned fmt_entry_kind(const struct fmt_entry *e) { return (e->word >> 48) & 0xf; }
static inline unsigned fmt_entry_codec(const struct fmt_entry *e) { return (e->word >> 52) & 0xf; }
static inline struct fmt_entry fmt_entry_make(uint64_t addr, unsigned kind, unsigned codec,
					      uint32_t len, uint32_t csum)
{
	struct fmt_entry e = { (addr & FMT_ADDR_MASK) | ((uint64_t)(kind & 0xf) << 48) |
			       ((uint64_t)(codec & 0xf) << 52), len, csum };
	return e;
}

/* Record table entry: one per metadata record of a snapshot.
 *
 * OFFSET SIZE DESCRIPTION
 *      0   40 key, NUL-padded (at most 39 bytes, no NUL inside)
 *     40   16 fmt_entry of the record item (kind FMT_KIND_RECORD)
 *     56    4 raw length
 *     60    4 reserved, zero
 */
#define FMT_KEY_LEN		40
struct fmt_rec {
	char key[FMT_KEY_LEN];
	struct fmt_entry ent;
	uint32_t raw;
	uint32_t reserved;
};
static_assert(sizeof(struct fmt_rec) == 64, "fmt_rec size");

/* A snapshot, as a commit op adds it and as the state keeps it.
 *
 * OFFSET SIZE DESCRIPTION
 *      0    8 object id
 *      8    8 snapshot number (per object, from 1, increasing)
 *     16    8 parent snapshot number it was based on (0 = none)
 *     24    8 commit time, ns
 *     32   16 root entry of the page index (kind NODE or NONE)
 *     48   16 record table entry (kind RECTAB or NONE)
 *     64    4 record count
 *     68    4 reserved, zero
 *     72    8 pages present (data + zero)
 *     80    8 zero pages
 *     88    8 bytes this snapshot wrote (stored, all kinds)
 *     96   32 reserved, zero
 */
struct fmt_snap {
	uint64_t obj;
	uint64_t no;
	uint64_t parent;
	uint64_t time_ns;
	struct fmt_entry root;
	struct fmt_entry rectab;
	uint32_t nrec;
	uint32_t reserved0;
	uint64_t pages;
	uint64_t zero_pages;
	uint64_t written;
	uint8_t reserved1[32];
};
static_assert(sizeof(struct fmt_snap) == 128, "fmt_snap size");

/* Commit op: a commit's OPS item is an array of these.
 *
 * OFFSET SIZE DESCRIPTION
 *      0    4 type (enum fmt_op_type)
 *      4    4 reserved, zero
 *      8   64 object name, NUL-padded (FMT_OP_SNAP_ADD creating an object)
 *     72  128 fmt_snap (SNAP_ADD, SNAP_RELOC: whole; SNAP_DEL: obj, no;
 *               OBJ_DEL: obj)
 */
enum fmt_op_type {
	FMT_OP_SNAP_ADD = 1,	/* a new snapshot (and its object, if new) */
	FMT_OP_SNAP_DEL = 2,	/* a snapshot is gone */
	FMT_OP_OBJ_DEL = 3,	/* an object and all its snapshots are gone */
	FMT_OP_SNAP_RELOC = 4,	/* the cleaner moved a snapshot's items */
};
#define FMT_NAME_LEN		64
struct fmt_op {
	uint32_t type;
	uint32_t reserved;
	char name[FMT_NAME_LEN];
	struct fmt_snap snap;
};
static_assert(sizeof(struct fmt_op) == 200, "fmt_op size");

/* State: what a checkpoint records, one STATE item.
 *
 * OFFSET SIZE DESCRIPTION
 *      0    8 magic FMT_STATE_MAGIC
 *      8    4 version
 *     12    4 object count
 *     16    8 snapshot count
 *     24    8 segment count (as the superblock)
 *     32    8 next object id
 *     40   24 reserved, zero
 *     64      objects: fmt_obj[object count]
 *             snapshots: fmt_snap[snapshot count], by object, then number
 *             segments: fmt_seg[segment count]
 */
struct fmt_state {
	uint64_t magic;
	uint32_t version;
	uint32_t nobj;
	uint64_t nsnap;
	uint64_t nseg;
	uint64_t next_obj;
	uint8_t reserved[24];
};
static_assert(sizeof(struct fmt_state) == 64, "fmt_state size");

/* OFFSET SIZE DESCRIPTION
 *      0    8 object id (> 0)
 *      8    8 next snapshot number
 *     16    8 creation time, ns
 *     24   64 name, NUL-padded
 *     88    8 reserved, zero
 */
struct fmt_obj {
	uint64_t id;
	uint64_t next_no;
	uint64_t ctime_ns;
	char name[FMT_NAME_LEN];
	uint64_t reserved;
};
static_assert(sizeof(struct fmt_obj) == 96, "fmt_obj size");

/* OFFSET SIZE DESCRIPTION
 *      0    4 state: FMT_SEG_FREE or FMT_SEG_USED
 *      4    4 reserved, zero
 *      8    8 time of the newest chunk written to it, ns (cleaner's age)
 */
enum { FMT_SEG_FREE = 0, FMT_SEG_USED = 1 };
struct fmt_seg {
	uint32_t state;
	uint32_t reserved;
	uint64_t mtime_ns;
};
static_assert(sizeof(struct fmt_seg) == 16, "fmt_seg size");

#endif
