/* Compression of stored items: lz4 (default) or zstd, from their libraries.
 * An item that does not shrink is stored raw, so a reader never pays a
 * decompression for random data. */
#ifndef CRYO_COMMON_CODEC_H
#define CRYO_COMMON_CODEC_H

#include <stddef.h>

enum codec {
	CODEC_RAW = 0,
	CODEC_LZ4 = 1,
	CODEC_ZSTD = 2,
	CODEC__COUNT
};

const char *codec_name(enum codec c);
/* -EINVAL for an unknown name. */
int codec_parse(const char *name, enum codec *out);

/* Upper bound of codec_compress output for n input bytes (any codec). */
size_t codec_bound(size_t n);

/* Compress src[n] into dst (capacity cap >= codec_bound(n)) with codec want.
 * Returns the stored length and sets *used to the codec actually used:
 * CODEC_RAW (a copy) when compression would not save at least 1/16. */
size_t codec_compress(enum codec want, const void *src, size_t n,
		      void *dst, size_t cap, enum codec *used);

/* Decompress exactly raw_len bytes; -EBADMSG when src is not a valid
 * stream of that length (corrupt input is never trusted). */
int codec_decompress(enum codec c, const void *src, size_t n,
		     void *dst, size_t raw_len);

#endif
