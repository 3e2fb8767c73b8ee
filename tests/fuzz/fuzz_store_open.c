/* Fuzz target: the store's open path (superblock, checkpoint slots, state,
 * roll-forward) on bytes as they come. An input of at least FMT_SEG_START
 * bytes is the whole device (a truncated store, a foreign file, a store
 * with bits flipped); a shorter one is laid over the start of a small valid
 * store, so it changes the superblock and slots of a real store. Open,
 * list, read everything, fsck: never a crash, a leak or undefined behaviour
 * (ASan, UBSan, LeakSanitizer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "store/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t seed_len = 0;
	const uint8_t *seed = fuzz_seed_image(CODEC_LZ4, &seed_len);
	size_t len = size >= FMT_SEG_START ? size : seed_len;
	uint8_t *img;

	if (!seed)
		return 0;
	img = malloc(len + 1);
	if (!img)
		return 0;
	if (size < FMT_SEG_START)
		memcpy(img, seed, seed_len);
	memcpy(img, data, size);
	fuzz_exercise(img, len, 0);
	free(img);
	return 0;
}
