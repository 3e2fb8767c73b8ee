/* Fuzz target: a valid small store, patched where the input says, its
 * checksums repaired if the input asks, so the parsers behind them (state,
 * chunk descriptors, commit ops, roll-forward, the cleaner on whatever
 * opens) see the mutated bytes instead of stopping at a checksum.
 *
 * Input:
 *   byte 0: flags: 1 repair checksums, 2 truncate, 4 write after opening
 *   (flags & 2) bytes 1-2: new size = size * n / 65536
 *   then patches: [where][off: 3 bytes LE][len][len bytes]
 *     where % 4: 0 absolute offset (mod size), 1 in the newest slot's
 *     state item, 2 in chunk (where / 4) % nchunks's summary, 3 in its data
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "store/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Start and length of the region a patch aims at. */
static void region(const uint8_t *img, size_t len, unsigned where, const uint64_t *chunks,
		   size_t nchunks, uint64_t *at, uint64_t *span)
{
	*at = 0;
	*span = len;
	if (where % 4 == 1) {
		struct fmt_slot a, b;

		if (len < FMT_SLOT_OFF(1) + sizeof(b))
			return;
		memcpy(&a, img + FMT_SLOT_OFF(0), sizeof(a));
		memcpy(&b, img + FMT_SLOT_OFF(1), sizeof(b));
		if (b.seq > a.seq)
			a = b;
		if (a.state_addr < len && a.state_len) {
			*at = a.state_addr;
			*span = a.state_len < len - a.state_addr ? a.state_len : len - a.state_addr;
		}
	} else if (where % 4 >= 2 && nchunks) {
		struct fmt_chunk h;
		uint64_t c = chunks[(where / 4) % nchunks];

		memcpy(&h, img + c, sizeof(h));
		if (where % 4 == 2) {
			*at = c;
			*span = h.sum_len && h.sum_len <= len - c ? h.sum_len : FMT_BLOCK;
		} else if (h.sum_len < len - c) {
			*at = c + h.sum_len;
			*span = h.data_len && h.data_len <= len - *at ? h.data_len : len - *at;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = 0, pos = 1, nchunks;
	const uint8_t *seed = fuzz_seed_image(&len);
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
	nchunks = fuzz_chunks(img, len, chunks, 512);
	while (len && pos + 5 <= size) {
		unsigned where = data[pos];
		uint64_t off = data[pos + 1] | (uint64_t)data[pos + 2] << 8 | (uint64_t)data[pos + 3] << 16;
		size_t n = data[pos + 4], i;
		uint64_t at, span;

		pos += 5;
		if (n > size - pos)
			n = size - pos;
		region(img, len, where, chunks, nchunks, &at, &span);
		if (!span)
			span = 1;
		off = at + off % span;
		for (i = 0; i < n && off + i < len; i++)
			img[off + i] = data[pos + i];
		pos += n;
	}
	if (flags & 1)
		fuzz_fix_checksums(img, len);
	fuzz_exercise(img, len, (flags & 4) != 0);
	free(img);
	return 0;
}
