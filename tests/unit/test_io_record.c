/* Unit tests: store/io_record (the recording device the crash tests use). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/io_record.h"

#define DEV	(64u * 1024u)

static void fill(uint8_t *p, size_t n, uint8_t v)
{
	memset(p, v, n);
}

/* Writes w0 (4 KiB of 0x11 at 0), sync, w1 (4 KiB of 0x22 at 4096),
 * w2 (4 KiB of 0x33 at 0), sync, w3 (4 KiB of 0x44 at 8192). */
static struct io_record *scripted(void)
{
	struct io_record *rec;
	struct store_io *io;
	uint8_t b[4096];

	assert_int_equal(io_record_new(DEV, &rec), 0);
	assert_int_equal(io_record_io(rec, &io), 0);
	fill(b, sizeof(b), 0x11);
	assert_int_equal(io_write(io, b, sizeof(b), 0), 0);
	assert_int_equal(io_sync(io), 0);
	fill(b, sizeof(b), 0x22);
	assert_int_equal(io_write(io, b, sizeof(b), 4096), 0);
	fill(b, sizeof(b), 0x33);
	assert_int_equal(io_write(io, b, sizeof(b), 0), 0);
	assert_int_equal(io_sync(io), 0);
	fill(b, sizeof(b), 0x44);
	assert_int_equal(io_write(io, b, sizeof(b), 8192), 0);
	io_close(io);	/* the recorder outlives the io */
	return rec;
}

static int all_is(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

static void reads_see_writes_and_bounds(void **state)
{
	struct io_record *rec;
	struct store_io *io;
	uint8_t b[4096];
	(void)state;

	assert_int_equal(io_record_new(DEV, &rec), 0);
	assert_int_equal(io_record_io(rec, &io), 0);
	assert_int_equal(io_size(io), DEV);
	assert_int_equal(io->ops->resize(io, DEV), 0);
	assert_int_equal(io->ops->resize(io, DEV + 1), -ENOSPC);
	fill(b, sizeof(b), 0xab);
	assert_int_equal(io_write(io, b, 100, 10), 0);
	memset(b, 0, sizeof(b));
	assert_int_equal(io_read(io, b, 120, 0), 0);
	assert_true(all_is(b, 10, 0));
	assert_true(all_is(b + 10, 100, 0xab));
	assert_true(all_is(b + 110, 10, 0));
	assert_int_equal(io_read(io, b, 2, DEV - 1), -EIO);
	assert_int_equal(io_read(io, b, 1, UINT64_MAX), -EIO);
	assert_int_equal(io_write(io, b, 2, DEV - 1), -ENOSPC);
	assert_int_equal(io_record_writes(rec), 1);
	assert_int_equal(io_record_syncs(rec), 0);
	assert_true(all_is(io_record_device(rec) + 10, 100, 0xab));
	io_close(io);
	io_record_free(rec);
	io_record_free(NULL);
}

static void counts_and_window(void **state)
{
	struct io_record *rec = scripted();
	uint64_t off, len;
	(void)state;

	assert_int_equal(io_record_writes(rec), 4);
	assert_int_equal(io_record_syncs(rec), 2);
	assert_int_equal(io_record_unsynced(rec, 0), 0);
	assert_int_equal(io_record_unsynced(rec, 1), 1);	/* w0 */
	assert_int_equal(io_record_unsynced(rec, 2), 1);	/* w1 */
	assert_int_equal(io_record_unsynced(rec, 3), 2);	/* w1, w2 */
	assert_int_equal(io_record_unsynced(rec, 4), 1);	/* w3 */
	assert_int_equal(io_record_write_at(rec, 2, &off, &len), 0);
	assert_int_equal(off, 0);
	assert_int_equal(len, 4096);
	assert_int_equal(io_record_write_at(rec, 4, &off, &len), -ERANGE);
	io_record_free(rec);
}

static uint8_t *image(struct io_record *rec, uint64_t cut, enum io_record_keep keep,
		      enum io_record_tear tear, uint64_t seed)
{
	struct io_record_crash c = { .cut = cut, .keep = keep, .tear = tear, .seed = seed };
	uint8_t *img = NULL;

	assert_int_equal(io_record_crash_image(rec, &c, &img), 0);
	return img;
}

static void synced_writes_survive_unsynced_may_not(void **state)
{
	struct io_record *rec = scripted();
	struct io_record_crash bad = { .cut = 5 };
	uint8_t *img = NULL;
	(void)state;

	assert_int_equal(io_record_crash_image(rec, &bad, &img), -EINVAL);

	img = image(rec, 0, IO_RECORD_KEEP_ALL, IO_RECORD_TEAR_NONE, 1);
	assert_true(all_is(img, DEV, 0));
	free(img);

	/* cut at 3: w0 synced; w1 and w2 not */
	img = image(rec, 3, IO_RECORD_KEEP_NONE, IO_RECORD_TEAR_NONE, 1);
	assert_true(all_is(img, 4096, 0x11));
	assert_true(all_is(img + 4096, DEV - 4096, 0));
	free(img);
	img = image(rec, 3, IO_RECORD_KEEP_ALL, IO_RECORD_TEAR_NONE, 1);
	assert_true(all_is(img, 4096, 0x33));
	assert_true(all_is(img + 4096, 4096, 0x22));
	assert_true(all_is(img + 8192, DEV - 8192, 0));
	free(img);

	/* going back to an earlier cut rebuilds the cached prefix */
	img = image(rec, 4, IO_RECORD_KEEP_NONE, IO_RECORD_TEAR_NONE, 1);
	assert_true(all_is(img, 4096, 0x33));
	assert_true(all_is(img + 8192, 4096, 0));
	free(img);
	img = image(rec, 1, IO_RECORD_KEEP_NONE, IO_RECORD_TEAR_NONE, 1);
	assert_true(all_is(img, DEV, 0));
	free(img);
	io_record_free(rec);
}

/* Over many seeds, SUBSET and SHUFFLE reach every state the two unsynced
 * writes of cut 3 allow, and nothing else (block 0 keeps the synced 0x11
 * or gets 0x33). */
static void subsets_and_reordering(void **state)
{
	struct io_record *rec = scripted();
	int seen[2][2] = { { 0 } }, old_seen[2] = { 0 };
	(void)state;

	for (uint64_t seed = 0; seed < 200; seed++) {
		for (int shuffle = 0; shuffle < 2; shuffle++) {
			uint8_t *img = image(rec, 3, shuffle ? IO_RECORD_KEEP_SHUFFLE :
					     IO_RECORD_KEEP_SUBSET, IO_RECORD_TEAR_NONE, seed);
			int b0 = all_is(img, 4096, 0x33), b1 = all_is(img + 4096, 4096, 0x22);

			assert_true(b0 || all_is(img, 4096, 0x11));
			assert_true(b1 || all_is(img + 4096, 4096, 0));
			assert_true(all_is(img + 8192, DEV - 8192, 0));
			seen[b0][b1] = 1;
			old_seen[shuffle] |= !b0;
			free(img);
		}
	}
	assert_true(seen[0][0] && seen[0][1] && seen[1][0] && seen[1][1]);
	assert_true(old_seen[0] && old_seen[1]);
	io_record_free(rec);
}

/* Two unsynced writes that overlap in one sector: w0 = 0x11 on sectors
 * 0-1, w1 = 0x22 on sectors 1-2. In issue order sectors (0x11, 0x11, 0x22)
 * cannot happen (w1 would win sector 1); shuffled, w0 may land last. */
static void shuffle_reorders(void **state)
{
	struct io_record *rec;
	struct store_io *io;
	uint8_t b[1024];
	int reordered = 0;
	(void)state;

	assert_int_equal(io_record_new(DEV, &rec), 0);
	assert_int_equal(io_record_io(rec, &io), 0);
	fill(b, sizeof(b), 0x11);
	assert_int_equal(io_write(io, b, sizeof(b), 0), 0);
	fill(b, sizeof(b), 0x22);
	assert_int_equal(io_write(io, b, sizeof(b), 512), 0);
	io_close(io);
	for (uint64_t seed = 0; seed < 200; seed++) {
		uint8_t *s = image(rec, 2, IO_RECORD_KEEP_SUBSET, IO_RECORD_TEAR_NONE, seed);
		uint8_t *h = image(rec, 2, IO_RECORD_KEEP_SHUFFLE, IO_RECORD_TEAR_NONE, seed);

		assert_false(all_is(s, 1024, 0x11) && all_is(s + 1024, 512, 0x22));
		if (all_is(h, 1024, 0x11) && all_is(h + 1024, 512, 0x22))
			reordered = 1;
		free(s);
		free(h);
	}
	assert_true(reordered);
	io_record_free(rec);
}

static void same_seed_same_image(void **state)
{
	struct io_record *rec = scripted();
	(void)state;

	for (uint64_t seed = 0; seed < 20; seed++) {
		uint8_t *a = image(rec, 3, IO_RECORD_KEEP_SHUFFLE, IO_RECORD_TEAR_GARBAGE, seed);
		uint8_t *b = image(rec, 3, IO_RECORD_KEEP_SHUFFLE, IO_RECORD_TEAR_GARBAGE, seed);

		assert_memory_equal(a, b, DEV);
		free(a);
		free(b);
	}
	io_record_free(rec);
}

/* Count sectors of the 4 KiB block at off holding v, and check the rest
 * hold old. */
static unsigned sectors_with(const uint8_t *img, uint64_t off, uint8_t v, uint8_t old,
			     unsigned *garbage)
{
	unsigned n = 0;

	*garbage = 0;
	for (unsigned s = 0; s < 4096 / IO_RECORD_SECTOR; s++) {
		const uint8_t *p = img + off + s * IO_RECORD_SECTOR;

		if (all_is(p, IO_RECORD_SECTOR, v))
			n++;
		else if (!all_is(p, IO_RECORD_SECTOR, old))
			(*garbage)++;
	}
	return n;
}

static void torn_writes(void **state)
{
	struct io_record *rec = scripted();
	unsigned seen_n[8] = { 0 }, g;
	int sectors_gap = 0;
	(void)state;

	for (uint64_t seed = 0; seed < 300; seed++) {
		uint8_t *img = image(rec, 4, IO_RECORD_KEEP_ALL, IO_RECORD_TEAR_PREFIX, seed);
		unsigned n = sectors_with(img, 8192, 0x44, 0, &g), s;

		/* a proper prefix of w3's sectors landed, nothing else moved */
		assert_true(n < 8);
		assert_int_equal(g, 0);
		for (s = 0; s < n; s++)
			assert_true(all_is(img + 8192 + s * IO_RECORD_SECTOR, IO_RECORD_SECTOR, 0x44));
		assert_true(all_is(img, 4096, 0x33));
		seen_n[n] = 1;
		free(img);

		img = image(rec, 4, IO_RECORD_KEEP_ALL, IO_RECORD_TEAR_GARBAGE, seed);
		n = sectors_with(img, 8192, 0x44, 0, &g);
		assert_true(n < 8);
		assert_int_equal(g, 1);	/* the sector after the prefix */
		free(img);

		img = image(rec, 4, IO_RECORD_KEEP_ALL, IO_RECORD_TEAR_SECTORS, seed);
		n = sectors_with(img, 8192, 0x44, 0, &g);
		assert_true(n < 8);
		assert_int_equal(g, 0);
		/* a landed sector after a missing one: not a prefix */
		for (unsigned s2 = 1; s2 < 8; s2++)
			if (all_is(img + 8192 + s2 * IO_RECORD_SECTOR, IO_RECORD_SECTOR, 0x44) &&
			    !all_is(img + 8192 + (s2 - 1) * IO_RECORD_SECTOR, IO_RECORD_SECTOR, 0x44))
				sectors_gap = 1;
		free(img);
	}
	for (unsigned n = 0; n < 8; n++) {
		struct io_record_crash c = { .cut = 4, .keep = IO_RECORD_KEEP_ALL,
					     .tear = IO_RECORD_TEAR_PREFIX, .tear_fixed = 1,
					     .tear_sectors = n };
		uint8_t *img = NULL;

		assert_true(seen_n[n]);
		/* a fixed tear lands exactly n sectors */
		assert_int_equal(io_record_crash_image(rec, &c, &img), 0);
		assert_int_equal(sectors_with(img, 8192, 0x44, 0, &g), n);
		free(img);
	}
	{
		/* clamped: never the whole write */
		struct io_record_crash c = { .cut = 4, .keep = IO_RECORD_KEEP_ALL,
					     .tear = IO_RECORD_TEAR_GARBAGE, .tear_fixed = 1,
					     .tear_sectors = 100 };
		uint8_t *img = NULL;

		assert_int_equal(io_record_crash_image(rec, &c, &img), 0);
		assert_int_equal(sectors_with(img, 8192, 0x44, 0, &g), 7);
		assert_int_equal(g, 1);
		free(img);
	}
	assert_true(sectors_gap);
	io_record_free(rec);
}

static void take_and_lazy_base(void **state)
{
	struct io_record *rec;
	struct store_io *io;
	uint8_t *img = malloc(DEV), b[4096];
	struct io_record_crash c = { .cut = 1 };
	uint8_t *crash = NULL;
	(void)state;

	assert_non_null(img);
	fill(img, DEV, 0x77);
	assert_int_equal(io_record_new_take(img, DEV, &rec), 0);
	assert_ptr_equal(io_record_device(rec), img);
	assert_int_equal(io_record_io(rec, &io), 0);
	fill(b, sizeof(b), 0x88);
	assert_int_equal(io_write(io, b, sizeof(b), 4096), 0);
	io_close(io);
	/* the crash image starts from the device as taken, not as written */
	c.keep = IO_RECORD_KEEP_NONE;
	assert_int_equal(io_record_crash_image(rec, &c, &crash), 0);
	assert_true(all_is(crash, DEV, 0x77));
	free(crash);
	io_record_free(rec);
}

static void open_image_is_private(void **state)
{
	uint8_t img[8192], b[16];
	struct store_io *io;
	(void)state;

	fill(img, sizeof(img), 0x5a);
	assert_int_equal(io_record_open_image(img, sizeof(img), &io), 0);
	assert_int_equal(io_read(io, b, sizeof(b), 100), 0);
	assert_true(all_is(b, sizeof(b), 0x5a));
	fill(b, sizeof(b), 0);
	assert_int_equal(io_write(io, b, sizeof(b), 100), 0);
	assert_int_equal(io_read(io, b, sizeof(b), 100), 0);
	assert_true(all_is(b, sizeof(b), 0));
	assert_true(all_is(img, sizeof(img), 0x5a));
	io_close(io);

	assert_int_equal(io_record_open_image(NULL, 0, &io), 0);
	assert_int_equal(io_size(io), 0);
	assert_int_equal(io_read(io, b, 1, 0), -EIO);
	io_close(io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reads_see_writes_and_bounds),
		cmocka_unit_test(counts_and_window),
		cmocka_unit_test(synced_writes_survive_unsynced_may_not),
		cmocka_unit_test(subsets_and_reordering),
		cmocka_unit_test(shuffle_reorders),
		cmocka_unit_test(same_seed_same_image),
		cmocka_unit_test(torn_writes),
		cmocka_unit_test(take_and_lazy_base),
		cmocka_unit_test(open_image_is_private),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
