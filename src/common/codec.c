#include "common/codec.h"

#include <errno.h>
#include <lz4.h>
#include <string.h>
#include <zstd.h>

const char *codec_name(enum codec c)
{
	switch (c) {
	case CODEC_RAW: return "raw";
	case CODEC_LZ4: return "lz4";
	case CODEC_ZSTD: return "zstd";
	default: return "?";
	}
}

int codec_parse(const char *name, enum codec *out)
{
	for (int c = 0; c < CODEC__COUNT; c++)
		if (!strcmp(name, codec_name(c))) {
			*out = c;
			return 0;
		}
	return -EINVAL;
}

size_t codec_bound(size_t n)
{
	size_t a = (size_t)LZ4_compressBound((int)n), b = ZSTD_compressBound(n);
	size_t m = a > b ? a : b;
	return m > n ? m : n;
}

size_t codec_compress(enum codec want, const void *src, size_t n,
		      void *dst, size_t cap, enum codec *used)
{
	size_t out = 0;

	if (want == CODEC_LZ4) {
		int r = LZ4_compress_default(src, dst, (int)n, (int)cap);
		out = r > 0 ? (size_t)r : 0;
	} else if (want == CODEC_ZSTD) {
		size_t r = ZSTD_compress(dst, cap, src, n, 3);
		out = ZSTD_isError(r) ? 0 : r;
	}
	if (out && out <= n - n / 16) {
		*used = want;
		return out;
	}
	memcpy(dst, src, n);
	*used = CODEC_RAW;
	return n;
}

int codec_decompress(enum codec c, const void *src, size_t n,
		     void *dst, size_t raw_len)
{
	switch (c) {
	case CODEC_RAW:
		if (n != raw_len)
			return -EBADMSG;
		memcpy(dst, src, n);
		return 0;
	case CODEC_LZ4: {
		int r = LZ4_decompress_safe(src, dst, (int)n, (int)raw_len);
		return r == (int)raw_len ? 0 : -EBADMSG;
	}
	case CODEC_ZSTD: {
		size_t r = ZSTD_decompress(dst, raw_len, src, n);
		return !ZSTD_isError(r) && r == raw_len ? 0 : -EBADMSG;
	}
	default:
		return -EBADMSG;
	}
}
