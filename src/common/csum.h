/* Checksums: XXH3 from libxxhash, never hand-written.
 * csum64 protects summaries, checkpoints and states; csum32 (the low half
 * of the same hash) sits in index entries beside each stored item. */
#ifndef CRYO_COMMON_CSUM_H
#define CRYO_COMMON_CSUM_H

#include <stddef.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static inline uint64_t csum64(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

static inline uint32_t csum32(const void *p, size_t n)
{
	return (uint32_t)XXH3_64bits(p, n);
}

/* Checksum of a structure whose own checksum field must count as zero. */
static inline uint64_t csum64_skip(const void *p, size_t n, size_t field_off, size_t field_len)
{
	XXH3_state_t st;
	static const uint8_t zeros[16];
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, p, field_off);
	XXH3_64bits_update(&st, zeros, field_len);
	XXH3_64bits_update(&st, (const uint8_t *)p + field_off + field_len,
			   n - field_off - field_len);
	return XXH3_64bits_digest(&st);
}

#endif
