/* Unit tests: the store's API on a real file (no root needed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/fault.h"
#include "store/format.h"
#include "store/store.h"

#define SEG	(256u << 10)

struct fx {
	char path[64];
	struct store *s;
};

static void page_fill(uint8_t *p, uint64_t vpn, uint64_t gen)
{
	/* text-like but unique per (vpn, gen), so compression and mixups show */
	int n = snprintf((char *)p, STORE_PAGE_SIZE, "page %llu gen %llu ",
			 (unsigned long long)vpn, (unsigned long long)gen);
	for (size_t i = (size_t)n; i < STORE_PAGE_SIZE; i++)
		p[i] = (uint8_t)('a' + (i * 7 + vpn + gen) % 26);
}

static void rand_fill(uint8_t *p, uint64_t vpn, uint64_t gen)
{
	uint64_t x = vpn * 0x9E3779B97F4A7C15ull ^ gen * 0xD1B54A32D192ED03ull ^ 1;
	for (size_t i = 0; i < STORE_PAGE_SIZE; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
}

static struct store *reopen(struct fx *f)
{
	struct store_open_opts oo = { .no_autoclean = 1 };
	if (f->s)
		assert_int_equal(store_close(f->s), 0);
	f->s = NULL;
	assert_int_equal(store_open(f->path, &oo, &f->s), 0);
	return f->s;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct store_create_opts co = { .size = 64u << 20, .seg_size = SEG, .codec = CODEC_LZ4 };
	int fd;

	snprintf(f->path, sizeof(f->path), "/tmp/cryo-test-store-XXXXXX");
	fd = mkstemp(f->path);
	close(fd);
	unlink(f->path);
	assert_int_equal(store_create(f->path, &co), 0);
	reopen(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->s);
	unlink(f->path);
	free(f);
	return 0;
}

static void write_snap(struct store *s, const char *obj, uint64_t base, uint64_t first,
		       uint64_t n, uint64_t gen, uint64_t *no)
{
	struct store_txn *t;
	uint8_t page[STORE_PAGE_SIZE];

	assert_int_equal(store_txn_begin(s, obj, base, &t), 0);
	for (uint64_t v = first; v < first + n; v++) {
		page_fill(page, v, gen);
		assert_int_equal(store_txn_put_page(t, v, page), 0);
	}
	assert_int_equal(store_txn_commit(t, no), 0);
}

static void expect_page(struct store *s, const char *obj, uint64_t no, uint64_t vpn, uint64_t gen)
{
	struct store_snap *sn;
	uint8_t page[STORE_PAGE_SIZE], want[STORE_PAGE_SIZE];

	assert_int_equal(store_snap_open(s, obj, no, &sn), 0);
	assert_int_equal(store_snap_read_page(sn, vpn, page), STORE_PAGE_DATA);
	page_fill(want, vpn, gen);
	assert_memory_equal(page, want, sizeof(page));
	store_snap_close(sn);
}

/* Pre-copy (dump) writes a page while the process runs and again after the
 * stop if it changed meanwhile: within one transaction the last put, zero
 * or drop of a vpn must win, on a base and from empty, across a reopen. */
static void same_page_twice_last_wins(void **state)
{
	struct fx *f = *state;
	uint8_t page[STORE_PAGE_SIZE], buf[STORE_PAGE_SIZE];
	uint8_t zero[STORE_PAGE_SIZE] = { 0 };
	struct store_snap *sn;
	struct store_txn *t;
	uint64_t no;

	write_snap(f->s, "pc", 0, 100, 8, 1, &no);
	assert_int_equal(store_txn_begin(f->s, "pc", STORE_SNAP_NEWEST, &t), 0);
	for (uint64_t gen = 2; gen <= 4; gen++) {	/* base page, rewritten */
		page_fill(page, 100, gen);
		assert_int_equal(store_txn_put_page(t, 100, page), 0);
	}
	rand_fill(page, 101, 2);			/* data, then zero */
	assert_int_equal(store_txn_put_page(t, 101, page), 0);
	assert_int_equal(store_txn_put_zero(t, 101), 0);
	assert_int_equal(store_txn_put_zero(t, 102), 0);	/* zero, then data */
	page_fill(page, 102, 5);
	assert_int_equal(store_txn_put_page(t, 102, page), 0);
	page_fill(page, 103, 6);			/* data, then dropped */
	assert_int_equal(store_txn_put_page(t, 103, page), 0);
	assert_int_equal(store_txn_drop_pages(t, 103, 1), 0);
	assert_int_equal(store_txn_drop_pages(t, 104, 1), 0);	/* dropped, then data */
	page_fill(page, 104, 7);
	assert_int_equal(store_txn_put_page(t, 104, page), 0);
	page_fill(page, 500, 8);			/* new page twice */
	assert_int_equal(store_txn_put_page(t, 500, page), 0);
	page_fill(page, 500, 9);
	assert_int_equal(store_txn_put_page(t, 500, page), 0);
	assert_int_equal(store_txn_commit(t, &no), 0);

	for (int pass = 0; pass < 2; pass++) {
		expect_page(f->s, "pc", no, 100, 4);
		expect_page(f->s, "pc", no, 102, 5);
		expect_page(f->s, "pc", no, 104, 7);
		expect_page(f->s, "pc", no, 105, 1);	/* untouched base page */
		expect_page(f->s, "pc", no, 500, 9);
		expect_page(f->s, "pc", no - 1, 100, 1);	/* base unchanged */
		assert_int_equal(store_snap_open(f->s, "pc", no, &sn), 0);
		assert_int_equal(store_snap_read_page(sn, 101, buf), STORE_PAGE_ZERO);
		assert_memory_equal(buf, zero, sizeof(buf));
		assert_int_equal(store_snap_read_page(sn, 103, buf), STORE_PAGE_NONE);
		store_snap_close(sn);
		reopen(f);
	}
}

static void roundtrip_and_reopen(void **state)
{
	struct fx *f = *state;
	uint64_t no;
	uint8_t zero[STORE_PAGE_SIZE] = { 0 }, buf[STORE_PAGE_SIZE];
	struct store_snap *sn;
	struct store_txn *t;

	write_snap(f->s, "editor", 0, 0x7f0000000ull, 100, 1, &no);
	assert_int_equal(no, 1);
	assert_int_equal(store_txn_begin(f->s, "editor", STORE_SNAP_NEWEST, &t), 0);
	assert_int_equal(store_txn_put_page(t, 5, zero), 0);
	assert_int_equal(store_txn_put_record(t, "regs", "abc", 3), 0);
	assert_int_equal(store_txn_put_record(t, "empty", "", 0), 0);
	assert_int_equal(store_txn_commit(t, &no), 0);
	assert_int_equal(no, 2);

	for (int pass = 0; pass < 2; pass++) {
		expect_page(f->s, "editor", 1, 0x7f0000000ull + 42, 1);
		expect_page(f->s, "editor", 2, 0x7f0000000ull + 99, 1);
		assert_int_equal(store_snap_open(f->s, "editor", 2, &sn), 0);
		assert_int_equal(store_snap_read_page(sn, 5, buf), STORE_PAGE_ZERO);
		assert_int_equal(store_snap_read_page(sn, 6, buf), STORE_PAGE_NONE);
		void *data;
		size_t len;
		assert_int_equal(store_snap_read_record(sn, "regs", &data, &len), 0);
		assert_int_equal(len, 3);
		assert_memory_equal(data, "abc", 3);
		free(data);
		assert_int_equal(store_snap_read_record(sn, "empty", &data, &len), 0);
		assert_int_equal(len, 0);
		free(data);
		assert_int_equal(store_snap_read_record(sn, "nope", &data, &len), -ENOENT);
		struct store_snap_info info;
		store_snap_info(sn, &info);
		assert_int_equal(info.pages, 101);
		assert_int_equal(info.zero_pages, 1);
		assert_int_equal(info.parent, 1);
		store_snap_close(sn);
		assert_int_equal(store_fsck(f->s, NULL, NULL, NULL), 0);
		reopen(f);
	}
}

static void incremental_writes_only_changes(void **state)
{
	struct fx *f = *state;
	uint64_t no;
	struct store_stat a, b;
	struct store_snap *sn;
	struct store_snap_info info;

	write_snap(f->s, "big", 0, 0, 2048, 1, &no);
	assert_int_equal(store_stat(f->s, &a), 0);
	write_snap(f->s, "big", STORE_SNAP_NEWEST, 1000, 10, 2, &no);
	assert_int_equal(store_stat(f->s, &b), 0);
	/* 10 pages of ~100 bytes each compressed, 5 nodes on one path, an op:
	 * a few chunks, nowhere near the 2048-page object */
	assert_true(b.bytes_written - a.bytes_written < 64 * 1024);
	expect_page(f->s, "big", 2, 1005, 2);
	expect_page(f->s, "big", 2, 1500, 1);
	expect_page(f->s, "big", 1, 1005, 1);
	assert_int_equal(store_snap_open(f->s, "big", 2, &sn), 0);
	store_snap_info(sn, &info);
	assert_int_equal(info.pages, 2048);
	store_snap_close(sn);
}

static int count_cb(void *arg, uint64_t vpn, enum store_page_kind kind)
{
	(void)vpn;
	(void)kind;
	(*(uint64_t *)arg)++;
	return 0;
}

static void drop_range(void **state)
{
	struct fx *f = *state;
	struct store_txn *t;
	struct store_snap *sn;
	uint64_t no, n = 0;
	uint8_t buf[STORE_PAGE_SIZE];

	write_snap(f->s, "d", 0, 0, 70000, 1, &no);	/* spans leaves and a level-2 node */
	assert_int_equal(store_txn_begin(f->s, "d", STORE_SNAP_NEWEST, &t), 0);
	assert_int_equal(store_txn_drop_pages(t, 100, 65536), 0);
	assert_int_equal(store_txn_commit(t, &no), 0);
	assert_int_equal(store_snap_open(f->s, "d", no, &sn), 0);
	assert_int_equal(store_snap_walk(sn, 0, STORE_VPN_MAX, count_cb, &n), 0);
	assert_int_equal(n, 70000 - 65536);
	assert_int_equal(store_snap_read_page(sn, 100 + 65535, buf), STORE_PAGE_NONE);
	assert_int_equal(store_snap_read_page(sn, 99, buf), STORE_PAGE_DATA);
	store_snap_close(sn);
	assert_int_equal(store_fsck(f->s, NULL, NULL, NULL), 0);
}

static int list_cb(void *arg, const struct store_snap_info *i)
{
	char *out = arg;
	sprintf(out + strlen(out), "%s/%llu ", i->object, (unsigned long long)i->no);
	return 0;
}

static void delete_retain_clean(void **state)
{
	struct fx *f = *state;
	char out[512] = "";
	uint64_t no;
	struct store_clean_report rep;
	struct store_stat st;

	for (int g = 1; g <= 6; g++)
		write_snap(f->s, "a", STORE_SNAP_NEWEST, 0, 600, (uint64_t)g, &no);
	write_snap(f->s, "b", 0, 0, 300, 9, &no);
	assert_int_equal(store_retain(f->s, "a", 2), 0);
	assert_int_equal(store_snap_delete(f->s, "b", 1), 0);
	assert_int_equal(store_snap_delete(f->s, "b", 1), -ENOENT);
	write_snap(f->s, "c", 0, 0, 10, 3, &no);
	assert_int_equal(store_object_delete(f->s, "c"), 0);
	assert_int_equal(store_list(f->s, list_cb, out), 0);
	assert_string_equal(out, "a/5 a/6 ");
	assert_int_equal(store_clean(f->s, 0, &rep), 0);
	assert_true(rep.segs_freed > 0);
	expect_page(f->s, "a", 5, 599, 5);
	expect_page(f->s, "a", 6, 0, 6);
	assert_int_equal(store_fsck(f->s, NULL, NULL, NULL), 0);
	reopen(f);
	expect_page(f->s, "a", 5, 300, 5);
	assert_int_equal(store_fsck(f->s, NULL, NULL, NULL), 0);
	assert_int_equal(store_stat(f->s, &st), 0);
	assert_int_equal(st.snapshots, 2);
	/* the next snapshot number of b does not reuse the deleted one */
	write_snap(f->s, "b", 0, 0, 1, 1, &no);
	assert_int_equal(no, 2);
}

static void fill_until_full_then_clean(void **state)
{
	struct fx *f = *state;
	struct store_open_opts oo = { 0 };
	uint64_t no = 0;
	int r = 0;

	/* autoclean on, retention 1: the store never fills */
	store_close(f->s);
	assert_int_equal(store_open(f->path, &oo, &f->s), 0);
	for (uint64_t g = 1; g <= 60; g++) {
		struct store_txn *t;
		uint8_t page[STORE_PAGE_SIZE];
		assert_int_equal(store_txn_begin(f->s, "churn", STORE_SNAP_NEWEST, &t), 0);
		for (uint64_t v = 0; v < 1500 && !r; v++) {
			rand_fill(page, v, g);
			r = store_txn_put_page(t, v, page);
		}
		assert_int_equal(r, 0);
		assert_int_equal(store_txn_commit(t, &no), 0);
		assert_int_equal(store_retain(f->s, "churn", 1), 0);
	}
	/* 60 x 6 MiB of incompressible pages through a 64 MiB store */
	struct store_snap *sn;
	struct store_stat st;
	uint8_t want[STORE_PAGE_SIZE], got[STORE_PAGE_SIZE];
	assert_int_equal(store_snap_open(f->s, "churn", no, &sn), 0);
	for (uint64_t v = 0; v < 1500; v += 37) {
		rand_fill(want, v, 60);
		assert_int_equal(store_snap_read_page(sn, v, got), STORE_PAGE_DATA);
		assert_memory_equal(got, want, sizeof(got));
	}
	store_snap_close(sn);
	assert_int_equal(store_stat(f->s, &st), 0);
	assert_true(st.segs_cleaned > 100);
	assert_int_equal(store_fsck(f->s, NULL, NULL, NULL), 0);
}

static void enospc_is_clean(void **state)
{
	struct fx *f = *state;
	struct store_txn *t;
	uint8_t page[STORE_PAGE_SIZE];
	uint64_t no;
	int r = 0;

	write_snap(f->s, "keep", 0, 0, 10, 1, &no);
	assert_int_equal(store_txn_begin(f->s, "huge", 0, &t), 0);
	for (uint64_t v = 0; v < 100000 && !r; v++) {
		for (size_t i = 0; i < sizeof(page); i += 8)
			*(uint64_t *)(page + i) = (v * 2654435761u) ^ (i * 0x9E3779B97F4A7C15ull);
		r = store_txn_put_page(t, v, page);
	}
	assert_int_equal(r, -ENOSPC);
	assert_int_equal(store_txn_commit(t, &no), -ENOSPC);
	expect_page(f->s, "keep", 1, 9, 1);
	reopen(f);
	expect_page(f->s, "keep", 1, 9, 1);
	assert_int_equal(store_snap_open(f->s, "huge", 1, &(struct store_snap *){ NULL }), -ENOENT);
	assert_int_equal(store_fsck(f->s, NULL, NULL, NULL), 0);
}

static void eio_poisons_until_reopen(void **state)
{
	struct fx *f = *state;
	struct store_txn *t;
	uint64_t no;

	write_snap(f->s, "x", 0, 0, 10, 1, &no);
	setenv("CRYO_FAULT", "store.sync.eio", 1);
	fault_reset();
	assert_int_equal(store_txn_begin(f->s, "x", STORE_SNAP_NEWEST, &t), 0);
	assert_int_equal(store_txn_put_record(t, "k", "v", 1), 0);
	assert_int_equal(store_txn_commit(t, &no), -EIO);
	unsetenv("CRYO_FAULT");
	fault_reset();
	assert_int_equal(store_txn_begin(f->s, "x", STORE_SNAP_NEWEST, &t), -EIO);
	assert_int_equal(store_snap_delete(f->s, "x", 1), -EIO);
	store_close(f->s);
	f->s = NULL;
	reopen(f);
	expect_page(f->s, "x", 1, 3, 1);
	write_snap(f->s, "x", STORE_SNAP_NEWEST, 0, 1, 2, &no);
}

/* Find needle (n bytes) in the store file and write an 'X' at offset at
 * from it: a broken stored item. */
static void break_item(const char *path, const void *needle, size_t n, size_t at)
{
	int fd = open(path, O_RDWR);
	off_t size = lseek(fd, 0, SEEK_END);
	uint8_t *img = malloc((size_t)size);

	assert_int_equal(pread(fd, img, (size_t)size, 0), size);
	uint8_t *hit = memmem(img, (size_t)size, needle, n);
	assert_non_null(hit);
	assert_int_equal(pwrite(fd, "X", 1, hit - img + (off_t)at), 1);
	close(fd);
	free(img);
}

static void corrupt_page_fails_only_its_reads(void **state)
{
	struct fx *f = *state;
	uint64_t no;
	struct store_snap *sn;
	uint8_t buf[STORE_PAGE_SIZE];
	char hay[64];

	write_snap(f->s, "v", 0, 0, 50, 1, &no);
	write_snap(f->s, "v", STORE_SNAP_NEWEST, 7, 1, 2, &no);
	store_close(f->s);
	f->s = NULL;
	/* find the text of page 7 gen 2 in the file and break it */
	int n = snprintf(hay, sizeof(hay), "page 7 gen 2 ");
	break_item(f->path, hay, (size_t)n, 2);
	reopen(f);
	assert_int_equal(store_snap_open(f->s, "v", 2, &sn), 0);
	assert_int_equal(store_snap_read_page(sn, 7, buf), -EBADMSG);
	assert_int_equal(store_snap_read_page(sn, 8, buf), STORE_PAGE_DATA);
	/* a bulk read over the broken page fails too; one beside it works */
	uint8_t *many = malloc(40 * STORE_PAGE_SIZE), kinds[40];
	assert_int_equal(store_snap_read_pages(sn, 0, 40, many, kinds), -EBADMSG);
	assert_int_equal(store_snap_read_pages(sn, 8, 30, many, kinds), 0);
	free(many);
	store_snap_close(sn);
	expect_page(f->s, "v", 1, 7, 1);
	struct store_fsck_report rep;
	assert_int_equal(store_fsck(f->s, &rep, NULL, NULL), -EUCLEAN);
	assert_int_equal(rep.problems, 1);
}

/* store_snap_read_pages gives the same bytes and kinds as page-by-page
 * reads: over holes, zero pages, random and text pages, across several
 * incremental snapshots (items scattered over segments), at odd ranges. */
static void bulk_read_matches_page_reads(void **state)
{
	struct fx *f = *state;
	enum { N = 1500 };
	uint8_t *bulk = malloc((size_t)N * STORE_PAGE_SIZE), kinds[N];
	uint8_t page[STORE_PAGE_SIZE], zero[STORE_PAGE_SIZE] = { 0 };
	uint64_t no = 0, x = 12345;

	assert_non_null(bulk);
	for (uint64_t gen = 1; gen <= 4; gen++) {
		struct store_txn *t;

		assert_int_equal(store_txn_begin(f->s, "b", gen == 1 ? 0 : STORE_SNAP_NEWEST, &t), 0);
		for (uint64_t v = 0; v < N; v++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			if (gen > 1 && (x >> 33) % 4)
				continue;		/* later snapshots change a quarter */
			switch ((x >> 40) % 5) {
			case 0: continue;		/* a hole (or the older page) */
			case 1: assert_int_equal(store_txn_put_zero(t, v), 0); break;
			case 2: rand_fill(page, v, gen); assert_int_equal(store_txn_put_page(t, v, page), 0); break;
			default: page_fill(page, v, gen); assert_int_equal(store_txn_put_page(t, v, page), 0);
			}
		}
		assert_int_equal(store_txn_commit(t, &no), 0);
	}
	reopen(f);
	for (uint64_t s = 1; s <= no; s++) {
		struct store_snap *sn;
		static const uint64_t ranges[][2] = { { 0, N }, { 1, 1 }, { 77, 513 }, { N - 3, 3 } };

		assert_int_equal(store_snap_open(f->s, "b", s, &sn), 0);
		for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
			uint64_t first = ranges[r][0], n = ranges[r][1];

			memset(bulk, 0xee, (size_t)n * STORE_PAGE_SIZE);
			assert_int_equal(store_snap_read_pages(sn, first, n, bulk, kinds), 0);
			for (uint64_t i = 0; i < n; i++) {
				memset(page, 0xee, sizeof(page));
				assert_int_equal(store_snap_read_page(sn, first + i, page), kinds[i]);
				assert_memory_equal(bulk + i * STORE_PAGE_SIZE, page, STORE_PAGE_SIZE);
				if (kinds[i] == STORE_PAGE_ZERO)
					assert_memory_equal(page, zero, STORE_PAGE_SIZE);
			}
		}
		store_snap_close(sn);
	}
	free(bulk);
}

struct fetch_job {
	const struct store_plan *pl;
	uint8_t *buf, *kinds;
	int r;
};

static void *fetch_thread(void *arg)
{
	struct fetch_job *j = arg;

	j->r = store_plan_fetch(j->pl, j->buf, j->kinds);
	return NULL;
}

/* Raw pages back to back in the log (memory that does not compress) are
 * read straight into place: the same bytes as page reads, a broken one
 * still found (I7). A plan fetched on another thread while this one reads
 * and plans other pages gives the same bytes too. */
static void raw_runs_read_in_place(void **state)
{
	struct fx *f = *state;
	enum { N = 600, BAD = 200 };
	uint8_t *bulk = malloc((size_t)N * STORE_PAGE_SIZE), *other = malloc(64 * STORE_PAGE_SIZE);
	uint8_t kinds[N], okinds[64], page[STORE_PAGE_SIZE];
	struct store_txn *t;
	struct store_snap *sn;
	struct store_plan *pl, *pl2;
	uint64_t no;

	assert_non_null(bulk);
	assert_non_null(other);
	assert_int_equal(store_txn_begin(f->s, "raw", 0, &t), 0);
	for (uint64_t v = 0; v < N; v++) {
		if (v == 400)
			continue;	/* a hole */
		if (v == 300) {
			assert_int_equal(store_txn_put_zero(t, v), 0);
			continue;
		}
		if (v % 100 == 50)
			page_fill(page, v, 1);	/* compresses: cuts the run */
		else
			rand_fill(page, v, 1);
		assert_int_equal(store_txn_put_page(t, v, page), 0);
	}
	assert_int_equal(store_txn_commit(t, &no), 0);
	reopen(f);
	assert_int_equal(store_snap_open(f->s, "raw", no, &sn), 0);
	memset(bulk, 0xee, (size_t)N * STORE_PAGE_SIZE);
	assert_int_equal(store_snap_read_pages(sn, 0, N, bulk, kinds), 0);
	for (uint64_t v = 0; v < N; v++) {
		memset(page, 0xee, sizeof(page));
		assert_int_equal(store_snap_read_page(sn, v, page), kinds[v]);
		assert_memory_equal(bulk + v * STORE_PAGE_SIZE, page, STORE_PAGE_SIZE);
	}
	assert_int_equal(kinds[300], STORE_PAGE_ZERO);
	assert_int_equal(kinds[400], STORE_PAGE_NONE);

	/* a fetch on another thread beside plans and reads on this one */
	struct fetch_job j = { NULL, bulk, kinds, -1 };
	pthread_t th;

	assert_int_equal(store_snap_plan(sn, 10, 500, &pl), 0);
	store_plan_readahead(pl);
	j.pl = pl;
	memset(bulk, 0xee, (size_t)N * STORE_PAGE_SIZE);
	assert_int_equal(pthread_create(&th, NULL, fetch_thread, &j), 0);
	for (int k = 0; k < 20; k++) {
		assert_int_equal(store_snap_plan(sn, 520, 64, &pl2), 0);
		assert_int_equal(store_plan_fetch(pl2, other, okinds), 0);
		store_plan_free(pl2);
		assert_int_equal(store_snap_read_page(sn, 530 + k, page), STORE_PAGE_DATA);
		assert_memory_equal(other + (10 + k) * STORE_PAGE_SIZE, page, STORE_PAGE_SIZE);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(j.r, 0);
	for (uint64_t i = 0; i < 500; i++) {
		memset(page, 0xee, sizeof(page));
		assert_int_equal(store_snap_read_page(sn, 10 + i, page), kinds[i]);
		assert_memory_equal(bulk + i * STORE_PAGE_SIZE, page, STORE_PAGE_SIZE);
	}
	store_plan_free(pl);
	store_snap_close(sn);
	store_close(f->s);
	f->s = NULL;

	/* break a raw page in the middle of a run */
	rand_fill(page, BAD, 1);
	break_item(f->path, page, 64, 2000);
	reopen(f);
	assert_int_equal(store_snap_open(f->s, "raw", no, &sn), 0);
	assert_int_equal(store_snap_read_pages(sn, 0, N, bulk, kinds), -EBADMSG);
	assert_int_equal(store_snap_read_pages(sn, BAD - 40, 60, bulk, kinds), -EBADMSG);
	assert_int_equal(store_snap_read_pages(sn, BAD + 1, 60, bulk, kinds), 0);
	assert_int_equal(store_snap_read_page(sn, BAD, page), -EBADMSG);
	store_snap_close(sn);
	free(bulk);
	free(other);
}

/* One writer per store across handles (and processes): a second open,
 * for writing or reading, waits, then is -EBUSY; after close it works. */
static void one_writer_at_a_time(void **state)
{
	struct fx *f = *state;
	struct store_open_opts quick = { .lock_wait_ms = 50 }, quick_ro = { .read_only = 1, .lock_wait_ms = 50 };
	struct store *other = NULL;

	assert_int_equal(store_open(f->path, &quick, &other), -EBUSY);
	assert_int_equal(store_open(f->path, &quick_ro, &other), -EBUSY);
	assert_int_equal(store_close(f->s), 0);
	f->s = NULL;
	assert_int_equal(store_open(f->path, &quick_ro, &other), 0);
	struct store *reader2 = NULL;
	assert_int_equal(store_open(f->path, &quick_ro, &reader2), 0);	/* readers share */
	assert_int_equal(store_open(f->path, &quick, &f->s), -EBUSY);	/* not with a writer */
	store_close(reader2);
	store_close(other);
	reopen(f);
}

static void bad_files_are_clear_errors(void **state)
{
	char path[] = "/tmp/cryo-test-bad-XXXXXX";
	int fd = mkstemp(path);
	struct store *s;
	uint8_t junk[8192];
	(void)state;

	assert_int_equal(store_open(path, NULL, &s), -EBADMSG);	/* empty */
	memset(junk, 0x5a, sizeof(junk));
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	assert_int_equal(store_open(path, NULL, &s), -EBADMSG);	/* foreign */
	close(fd);
	unlink(path);
	struct store_create_opts co = { .size = 64u << 20, .seg_size = SEG };
	assert_int_equal(store_create(path, &co), 0);
	assert_int_equal(store_create(path, &co), -EEXIST);
	assert_int_equal(truncate(path, 32u << 20), 0);
	assert_int_equal(store_open(path, NULL, &s), -EBADMSG);	/* truncated */
	unlink(path);
	co.size = 1u << 20;
	assert_int_equal(store_create(path, &co), -EINVAL);	/* too small */
	unlink(path);
}

static void bad_arguments(void **state)
{
	struct fx *f = *state;
	struct store_txn *t, *t2;
	uint8_t page[STORE_PAGE_SIZE] = { 1 };
	char longkey[64];

	assert_int_equal(store_txn_begin(f->s, "", 0, &t), -EINVAL);
	assert_int_equal(store_txn_begin(f->s, "a/b", 0, &t), -EINVAL);
	assert_int_equal(store_txn_begin(f->s, "new", 3, &t), -ENOENT);
	assert_int_equal(store_txn_begin(f->s, "ok", 0, &t), 0);
	assert_int_equal(store_txn_begin(f->s, "ok2", 0, &t2), -EBUSY);
	assert_int_equal(store_txn_put_page(t, STORE_VPN_MAX + 1, page), -EINVAL);
	memset(longkey, 'k', sizeof(longkey));
	longkey[63] = 0;
	assert_int_equal(store_txn_put_record(t, longkey, "", 0), -EINVAL);
	assert_int_equal(store_txn_put_page(t, STORE_VPN_MAX, page), 0);
	store_txn_abort(t);
	assert_int_equal(store_snap_open(f->s, "ok", STORE_SNAP_NEWEST, &(struct store_snap *){ NULL }), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(roundtrip_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(incremental_writes_only_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(drop_range, setup, teardown),
		cmocka_unit_test_setup_teardown(same_page_twice_last_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(delete_retain_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(fill_until_full_then_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(enospc_is_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(eio_poisons_until_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_page_fails_only_its_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(bulk_read_matches_page_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(raw_runs_read_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(one_writer_at_a_time, setup, teardown),
		cmocka_unit_test(bad_files_are_clear_errors),
		cmocka_unit_test_setup_teardown(bad_arguments, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
