/* Fuzz target: a valid small store (stored raw, so every item is the bytes
 * its parser reads), patched where the input says, its checksums repaired
 * if the input asks, so the parsers behind the checksums (checkpoint
 * state, chunk headers and descriptors, commit ops, roll-forward, the
 * cleaner on whatever opens) see the mutated bytes instead of stopping at
 * a checksum. Index entry checksums are not repaired: a patched page, node
 * or record table must fail its reads (I7), never crash them.
 *
 * Input:
 *   byte 0: flags: 1 repair checksums, 2 truncate, 4 write after opening
 *   (flags & 2) bytes 1-2: new size = size * n / 65536
 *   then patches: [where][off: 3 bytes LE][len][len bytes]
 *     where % 4: 0 absolute offset (mod size); 1 the newest slot's state,
 *     decompressed, patched and compressed again (checksums repaired);
 *     2 chunk (where / 4) % nchunks: header, then descriptors; 3 its data
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "fuzz_common.h"
#include "store/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct patch {
	unsigned where;
	uint64_t off;
	const uint8_t *bytes;
	size_t len;
};

/* Patch the raw state of the newest slot. 1 when the state changed. */
static int edit_state(uint8_t *img, size_t len, const struct patch *p, size_t np,
		      const uint64_t *chunks, size_t nchunks)
{
	struct fmt_slot a, b;
	uint8_t *raw = NULL, *packed = NULL;
	unsigned slot = 0;
	enum codec used;
	size_t n;
	int done = 0;

	if (len < FMT_SLOT_OFF(1) + sizeof(b))
		return 0;
	memcpy(&a, img + FMT_SLOT_OFF(0), sizeof(a));
	memcpy(&b, img + FMT_SLOT_OFF(1), sizeof(b));
	if (b.seq > a.seq) {
		a = b;
		slot = 1;
	}
	if (a.state_addr > len || a.state_len > len - a.state_addr || !a.state_raw ||
	    a.state_raw > (16u << 20) || a.state_codec >= CODEC__COUNT)
		return 0;
	raw = malloc(a.state_raw);
	packed = malloc(codec_bound(a.state_raw));
	if (!raw || !packed ||
	    codec_decompress(a.state_codec, img + a.state_addr, a.state_len, raw, a.state_raw))
		goto out;
	for (size_t i = 0; i < np; i++)
		for (size_t j = 0; j < p[i].len; j++)
			raw[(p[i].off + j) % a.state_raw] = p[i].bytes[j];
	n = codec_compress(CODEC_LZ4, raw, a.state_raw, packed, codec_bound(a.state_raw), &used);
	if (!n || n > a.state_len)
		goto out;	/* does not fit where the state was */
	memcpy(img + a.state_addr, packed, n);
	for (size_t c = 0; c < nchunks; c++) {
		struct fmt_chunk h;

		memcpy(&h, img + chunks[c], sizeof(h));
		for (uint32_t i = 0; i < h.nitems && i < 4096; i++) {
			uint64_t at = chunks[c] + FMT_CHUNK_DESC_OFF((uint64_t)h.data_len) +
				      i * sizeof(struct fmt_item);
			struct fmt_item it;

			if (at + sizeof(it) > len)
				break;
			memcpy(&it, img + at, sizeof(it));
			if (chunks[c] + FMT_CHUNK_HDR + it.off == a.state_addr) {
				it.len = (uint32_t)n;
				it.codec = (uint8_t)used;
				memcpy(img + at, &it, sizeof(it));
			}
		}
	}
	a.state_len = (uint32_t)n;
	a.state_codec = used;
	memcpy(img + FMT_SLOT_OFF(slot), &a, sizeof(a));
	done = 1;
out:
	free(raw);
	free(packed);
	return done;
}

/* Apply a patch aimed at a chunk or at an absolute offset. */
static void apply(uint8_t *img, size_t len, const struct patch *p, const uint64_t *chunks,
		  size_t nchunks)
{
	uint64_t at = p->off % len;

	if (p->where % 4 >= 2 && nchunks) {
		uint64_t c = chunks[(p->where / 4) % nchunks];
		struct fmt_chunk h;
		uint64_t desc, span;

		memcpy(&h, img + c, sizeof(h));
		desc = c + FMT_CHUNK_DESC_OFF((uint64_t)h.data_len);
		if (p->where % 4 == 2) {
			span = FMT_CHUNK_HDR + (uint64_t)h.nitems * sizeof(struct fmt_item);
			at = p->off % span;
			at = at < FMT_CHUNK_HDR ? c + at : desc + at - FMT_CHUNK_HDR;
		} else {
			at = c + FMT_CHUNK_HDR + (h.data_len ? p->off % h.data_len : 0);
		}
	}
	for (size_t i = 0; i < p->len && at + i < len; i++)
		img[at + i] = p->bytes[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = 0, pos = 1, nchunks, np = 0, nstate = 0;
	const uint8_t *seed = fuzz_seed_image(CODEC_RAW, &len);
	struct patch p[64], st[64];
	uint64_t chunks[512];
	uint8_t *img, flags;

	if (!seed || size < 1)
		return 0;
	img = malloc(len + 1);
	if (!img)
		return 0;
	memcpy(img, seed, len);
	flags = data[0];
	if ((flags & 2) && size >= 3) {
		len = (size_t)((uint64_t)len * (data[1] | (unsigned)data[2] << 8) / 65536);
		pos = 3;
	}
	while (pos + 5 <= size && np < 64 && nstate < 64) {
		struct patch q = {
			.where = data[pos],
			.off = data[pos + 1] | (uint64_t)data[pos + 2] << 8 | (uint64_t)data[pos + 3] << 16,
			.len = data[pos + 4],
			.bytes = data + pos + 5,
		};

		pos += 5;
		if (q.len > size - pos)
			q.len = size - pos;
		pos += q.len;
		if (q.where % 4 == 1)
			st[nstate++] = q;
		else
			p[np++] = q;
	}
	if (len) {
		nchunks = fuzz_chunks(img, len, chunks, 512);
		if (nstate && edit_state(img, len, st, nstate, chunks, nchunks))
			flags |= 1;	/* an edited state is only worth it repaired */
		for (size_t i = 0; i < np; i++)
			apply(img, len, &p[i], chunks, nchunks);
		if (flags & 1)
			fuzz_fix_checksums(img, len);
	}
	fuzz_exercise(img, len, (flags & 4) != 0);
	free(img);
	return 0;
}
