/* Unit tests: common/codec (compression round trips, corrupt input). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "common/codec.h"
#include "common/csum.h"

static void fill_text(uint8_t *p, size_t n)
{
	static const char words[] = "persistent process freeze melt log segment ";
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)words[i % (sizeof(words) - 1)];
}

static void roundtrip_each_codec(void **state)
{
	uint8_t src[4096], dst[8192], back[4096];
	(void)state;
	fill_text(src, sizeof(src));
	for (int c = 0; c < CODEC__COUNT; c++) {
		enum codec used;
		size_t n = codec_compress(c, src, sizeof(src), dst, sizeof(dst), &used);
		assert_true(n > 0);
		if (c != CODEC_RAW) {
			assert_int_equal(used, c);
			assert_true(n < sizeof(src) / 4);
		}
		assert_int_equal(codec_decompress(used, dst, n, back, sizeof(back)), 0);
		assert_memory_equal(src, back, sizeof(src));
	}
}

static void random_data_stored_raw(void **state)
{
	uint8_t src[4096], dst[8192];
	uint64_t x = 88172645463325252ull;
	enum codec used;
	(void)state;
	for (size_t i = 0; i < sizeof(src); i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		src[i] = (uint8_t)x;
	}
	assert_int_equal(codec_compress(CODEC_LZ4, src, sizeof(src), dst, sizeof(dst), &used), 4096);
	assert_int_equal(used, CODEC_RAW);
}

static void corrupt_stream_rejected(void **state)
{
	uint8_t src[4096], dst[8192], back[4096];
	enum codec used;
	size_t n;
	(void)state;
	fill_text(src, sizeof(src));
	n = codec_compress(CODEC_LZ4, src, sizeof(src), dst, sizeof(dst), &used);
	/* A truncated stream must fail, never read past its end. */
	assert_int_equal(codec_decompress(CODEC_LZ4, dst, n / 2, back, sizeof(back)), -EBADMSG);
	assert_int_equal(codec_decompress(CODEC_ZSTD, dst, n, back, sizeof(back)), -EBADMSG);
	assert_int_equal(codec_decompress(CODEC_RAW, dst, n, back, sizeof(back)), -EBADMSG);
	assert_int_equal(codec_decompress(7, dst, n, back, sizeof(back)), -EBADMSG);
}

static void names_parse(void **state)
{
	enum codec c;
	(void)state;
	assert_int_equal(codec_parse("zstd", &c), 0);
	assert_int_equal(c, CODEC_ZSTD);
	assert_int_equal(codec_parse("gzip", &c), -EINVAL);
}

static void csum_skip_ignores_field(void **state)
{
	uint8_t a[64] = { 1, 2, 3 }, b[64] = { 1, 2, 3 };
	(void)state;
	memset(a + 56, 0xaa, 8);
	assert_int_equal(csum64_skip(a, 64, 56, 8), csum64_skip(b, 64, 56, 8));
	assert_int_equal(csum64_skip(b, 64, 56, 8), csum64(b, 64));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(roundtrip_each_codec),
		cmocka_unit_test(random_data_stored_raw),
		cmocka_unit_test(corrupt_stream_rejected),
		cmocka_unit_test(names_parse),
		cmocka_unit_test(csum_skip_ignores_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
