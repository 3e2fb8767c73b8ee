/* bench_store_read: random page reads from a 1 GiB snapshot (100k reads),
 * p50/p99 latency, cold (page cache dropped, freshly opened store) and warm,
 * beside raw 4 KiB preads at the same random offsets of a plain file of the
 * same size on the same file system, cold and warm, in the same run.
 *
 * Reads go to pages that hold data (a zero page is a hole and costs no
 * I/O, which would flatter the store); each page read is checked. */
#define LOG_PREFIX "bench_store_read: "
#include "bench_util.h"
#include "common/log.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define NAME "bench_store_read"
#define SEED 11

struct lat {
	uint64_t p50, p99, sum;
};

static int fill_store(const char *path, const struct bu_pool *pool, uint64_t npages,
		      uint64_t size)
{
	static uint8_t page[BU_PAGE] __attribute__((aligned(4096)));
	struct store_create_opts co = { .size = size, .codec = CODEC_LZ4 };
	struct store_open_opts oo = { .no_autoclean = 1 };
	struct store_txn *t = NULL;
	struct store *s = NULL;
	uint64_t no;
	int err;

	err = store_create(path, &co);
	if (!err)
		err = store_open(path, &oo, &s);
	if (err)
		return err;
	err = store_txn_begin(s, "mem", 0, &t);
	for (uint64_t vpn = 0; !err && vpn < npages; vpn++) {
		bu_pool_page(pool, vpn, 0, page);
		err = store_txn_put_page(t, vpn, page);
	}
	if (err)
		store_txn_abort(t);
	else
		err = store_txn_commit(t, &no);
	if (store_close(s) && !err)
		err = -EIO;
	return err;
}

static int fill_raw(const char *path, uint64_t bytes)
{
	uint8_t *buf = aligned_alloc(BU_PAGE, 1 << 20);
	struct bu_rng r;
	int fd, err = 0;

	if (!buf)
		return -ENOMEM;
	bu_rng_seed(&r, SEED);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	for (uint64_t done = 0; done < bytes && !err; done += 1 << 20) {
		for (unsigned i = 0; i < (1u << 20); i += BU_PAGE)
			bu_page_random(&r, buf + i);
		if (write(fd, buf, 1 << 20) != 1 << 20)
			err = -EIO;
	}
	if (!err && fdatasync(fd))
		err = -errno;
	close(fd);
	free(buf);
	return err;
}

/* Random reads through the store; fresh handles each time (cold = their
 * caches empty as well as the kernel's). bad counts wrong contents. */
static int read_store(const char *path, const struct bu_pool *pool, const uint64_t *vpns,
		      uint64_t n, uint64_t npages, int warm, int advice, uint64_t *lat, uint64_t *bad,
		      uint64_t *open_ns)
{
	struct bu_count cnt = { 0 };
	struct store_io *io = NULL;
	static uint8_t page[BU_PAGE] __attribute__((aligned(4096)));
	static uint8_t want[BU_PAGE] __attribute__((aligned(4096)));
	struct store_open_opts oo = { .read_only = 1 };
	const char *cache_mb = getenv("BENCH_CACHE_MB");	/* experiments only */
	struct store_snap *sn = NULL;
	struct store *s = NULL;
	uint64_t t0 = bu_now_ns();
	int err;

	if (cache_mb)
		oo.cache_bytes = strtoull(cache_mb, NULL, 10) << 20;
	err = bu_count_io_open2(path, O_RDONLY, advice, &cnt, &io);
	if (!err)
		err = store_open_io(io, &oo, &s);
	if (!err)
		err = store_snap_open(s, "mem", STORE_SNAP_NEWEST, &sn);
	*open_ns = bu_now_ns() - t0;
	if (err)
		goto out;
	if (warm) {
		for (uint64_t vpn = 0; vpn < npages && err >= 0; vpn++)
			err = store_snap_read_page(sn, vpn, page);
		if (err < 0)
			goto out;
	}
	for (uint64_t i = 0; i < n; i++) {
		t0 = bu_now_ns();
		err = store_snap_read_page(sn, vpns[i], page);
		lat[i] = bu_now_ns() - t0;
		if (err < 0) {
			pr_err("read page %llu: %s\n", (unsigned long long)vpns[i],
			       store_strerror(err));
			goto out;
		}
		bu_pool_page(pool, vpns[i], 0, want);
		if (err != STORE_PAGE_DATA || memcmp(page, want, BU_PAGE))
			(*bad)++;
	}
	err = 0;
out:
	store_snap_close(sn);
	store_close(s);
	return err;
}

static int read_raw(const char *path, const uint64_t *vpns, uint64_t n, int warm, int advice,
		    uint64_t *lat)
{
	static uint8_t page[BU_PAGE] __attribute__((aligned(4096)));
	uint8_t *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -errno;
	if (advice >= 0)
		posix_fadvise(fd, 0, 0, advice);
	if (warm) {
		buf = malloc(1 << 20);
		while (buf && read(fd, buf, 1 << 20) > 0)
			;
		free(buf);
	}
	for (uint64_t i = 0; i < n; i++) {
		uint64_t t0 = bu_now_ns();
		ssize_t r = pread(fd, page, BU_PAGE, (off_t)(vpns[i] * BU_PAGE));

		lat[i] = bu_now_ns() - t0;
		if (r != BU_PAGE) {
			close(fd);
			return -EIO;
		}
	}
	close(fd);
	return 0;
}

/* read_ahead_kb of the block device holding dir, or -1. */
static long readahead_kb(const char *dir)
{
	char p[128];
	struct stat st;
	long kb = -1;
	FILE *f;

	if (stat(dir, &st))
		return -1;
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/queue/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	f = fopen(p, "r");
	if (!f) {
		snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/../queue/read_ahead_kb",
			 major(st.st_dev), minor(st.st_dev));
		f = fopen(p, "r");
	}
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &kb) != 1)
		kb = -1;
	fclose(f);
	return kb;
}

static struct lat pct(uint64_t *lat, uint64_t n)
{
	struct lat l;

	l.sum = 0;
	for (uint64_t i = 0; i < n; i++)
		l.sum += lat[i];
	l.p50 = bu_percentile(lat, n, 50);
	l.p99 = bu_percentile(lat, n, 99);
	return l;
}

int main(int argc, char **argv)
{
	struct bu_args a;
	struct bu_results res;
	struct bu_pool pool;
	struct bu_rng rng;
	struct lat sc = { 0 }, sw = { 0 }, rc = { 0 }, rw = { 0 }, snr = { 0 }, rnr = { 0 };
	char spath[4096], rpath[4096];
	uint64_t bytes, npages, n, *vpns, *lat, bad = 0, open_cold = 0, open_warm = 0;
	int err, cold_err;

	if (bu_parse_args(argc, argv, NAME, &a))
		return 2;
	bytes = (uint64_t)((double)(1ull << 30) * a.scale) & ~(uint64_t)(BU_PAGE - 1);
	npages = bytes / BU_PAGE;
	n = (uint64_t)(100000 * a.scale);
	if (n < 1000)
		n = 1000;
	bu_results_init(&res, NAME, a.json);
	printf("%s: %llu random page reads of a %.0f MiB snapshot, in %s\n", NAME,
	       (unsigned long long)n, bytes / BU_MIB, a.dir);
	if (bu_fs_free(a.dir) < 3 * bytes) {
		pr_err("%s: not enough free space\n", a.dir);
		return 1;
	}
	if (bu_pool_init(&pool, SEED, 16384))
		return 1;
	vpns = calloc(n, sizeof(*vpns));
	lat = calloc(n, sizeof(*lat));
	if (!vpns || !lat)
		return 1;
	bu_rng_seed(&rng, SEED);
	for (uint64_t i = 0; i < n;) {
		uint64_t vpn = bu_rng_below(&rng, npages);

		if (bu_page_kind_of(SEED, vpn) != BU_ZERO)
			vpns[i++] = vpn;
	}
	bu_scratch_path(spath, sizeof(spath), a.dir, "read.store");
	bu_scratch_path(rpath, sizeof(rpath), a.dir, "read.raw");
	err = fill_store(spath, &pool, npages, 2 * bytes + (64ull << 20));
	if (!err)
		err = fill_raw(rpath, bytes);
	if (err) {
		pr_err("setup: %s\n", store_strerror(err));
		goto out;
	}

	cold_err = bu_drop_caches();
	err = read_store(spath, &pool, vpns, n, npages, 0, -1, lat, &bad, &open_cold);
	if (err)
		goto out;
	sc = pct(lat, n);
	err = read_store(spath, &pool, vpns, n, npages, 1, -1, lat, &bad, &open_warm);
	if (err)
		goto out;
	sw = pct(lat, n);
	if (!cold_err)
		cold_err = bu_drop_caches();
	err = read_raw(rpath, vpns, n, 0, -1, lat);
	if (err)
		goto out;
	rc = pct(lat, n);
	err = read_raw(rpath, vpns, n, 1, -1, lat);
	if (err)
		goto out;
	rw = pct(lat, n);
	/* cold again, with readahead off (POSIX_FADV_RANDOM) on both files */
	if (!cold_err)
		cold_err = bu_drop_caches();
	err = read_store(spath, &pool, vpns, n, npages, 0, POSIX_FADV_RANDOM, lat, &bad, &open_cold);
	if (err)
		goto out;
	snr = pct(lat, n);
	if (!cold_err)
		cold_err = bu_drop_caches();
	err = read_raw(rpath, vpns, n, 0, POSIX_FADV_RANDOM, lat);
	if (err)
		goto out;
	rnr = pct(lat, n);

	if (cold_err)
		bu_note(&res, "drop_caches NOT permitted (%s): the cold figures are not cold",
			strerror(-cold_err));
	bu_note(&res, "reads of data pages only (zero pages are holes); %llu of %llu reads returned wrong data",
		(unsigned long long)bad, (unsigned long long)n);
	bu_note(&res, "kernel readahead of the file system's device: %ld KiB (a store read of an item that is not one aligned page can start readahead, so the store's default cold pass warms as it goes; hence also a cold pass with POSIX_FADV_RANDOM on both files)",
		readahead_kb(a.dir));
	bu_note(&res, "store open + snapshot open: %.2f ms cold, %.2f ms warm",
		open_cold / 1e6, open_warm / 1e6);
	bu_report(&res, "cold_p50_us", "cold read p50", sc.p50 / 1e3, "us", rc.p50 / 1e3, "raw 4 KiB pread p50, cold");
	bu_report(&res, "cold_p99_us", "cold read p99", sc.p99 / 1e3, "us", rc.p99 / 1e3, "raw 4 KiB pread p99, cold");
	bu_report(&res, "cold_mean_us", "cold read mean (whole pass)", sc.sum / 1e3 / n, "us", rc.sum / 1e3 / n, "raw 4 KiB pread mean, cold");
	bu_report(&res, "cold_nora_p50_us", "cold, readahead off: p50", snr.p50 / 1e3, "us", rnr.p50 / 1e3, "raw pread p50, cold, readahead off");
	bu_report(&res, "cold_nora_p99_us", "cold, readahead off: p99", snr.p99 / 1e3, "us", rnr.p99 / 1e3, "raw pread p99, cold, readahead off");
	bu_report(&res, "cold_nora_mean_us", "cold, readahead off: mean", snr.sum / 1e3 / n, "us", rnr.sum / 1e3 / n, "raw pread mean, cold, readahead off");
	bu_report(&res, "warm_p50_us", "warm read p50", sw.p50 / 1e3, "us", rw.p50 / 1e3, "raw 4 KiB pread p50, warm");
	bu_report(&res, "warm_p99_us", "warm read p99", sw.p99 / 1e3, "us", rw.p99 / 1e3, "raw 4 KiB pread p99, warm");
	if (bad) {
		printf("%s: FAILED: %llu reads returned wrong data\n", NAME, (unsigned long long)bad);
		err = -EBADMSG;
	}
out:
	unlink(spath);
	unlink(rpath);
	free(vpns);
	free(lat);
	bu_pool_free(&pool);
	if (err)
		printf("%s: FAILED: %s\n", NAME, store_strerror(err));
	return bu_results_finish(&res) || err ? 1 : 0;
}
