/* bench_store_full: a full snapshot of 1 GiB of realistic memory (~30% zero
 * pages, ~40% text-like, ~30% random) into a fresh store, durable when the
 * commit returns. Figures: MiB/s of input and MiB/s of bytes written to the
 * disk, beside a raw sequential write+fdatasync of the same number of bytes
 * on the same file system (1 MiB writes), measured in the same run. */
#define LOG_PREFIX "bench_store_full: "
#include "bench_util.h"
#include "common/codec.h"
#include "common/log.h"
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME "bench_store_full"

struct full_run {
	uint64_t ns, commit_ns, close_ns;
	uint64_t written;	/* store_stat bytes_written of the snapshot */
	struct bu_count io;	/* what reached the file */
};

static int run_store(const char *path, const uint8_t *data, uint64_t npages, uint64_t store_size,
		     struct full_run *fr)
{
	struct store_create_opts co = { .size = store_size, .codec = CODEC_LZ4 };
	struct store_open_opts oo = { .no_autoclean = 1 };
	struct store_stat st0, st1;
	struct store_txn *t = NULL;
	struct store_io *io = NULL;
	struct store *s = NULL;
	uint64_t t0, t1, no = 0;
	int err;

	err = store_create(path, &co);
	if (err) {
		pr_err("store_create %s: %s\n", path, store_strerror(err));
		return err;
	}
	err = bu_count_io_open(path, &fr->io, &io);
	if (err)
		return err;
	err = store_open_io(io, &oo, &s);
	if (err) {
		pr_err("store_open %s: %s\n", path, store_strerror(err));
		return err;
	}
	store_stat(s, &st0);
	sync();
	memset(&fr->io, 0, sizeof(fr->io));

	t0 = bu_now_ns();
	err = store_txn_begin(s, "mem", 0, &t);
	for (uint64_t vpn = 0; !err && vpn < npages; vpn++)
		err = store_txn_put_page(t, vpn, data + vpn * BU_PAGE);
	if (err) {
		pr_err("put_page: %s\n", store_strerror(err));
		store_txn_abort(t);
		goto out_close;
	}
	t1 = bu_now_ns();
	err = store_txn_commit(t, &no);
	fr->ns = bu_now_ns() - t0;
	fr->commit_ns = bu_now_ns() - t1;
	if (err) {
		pr_err("commit: %s\n", store_strerror(err));
		goto out_close;
	}
	store_stat(s, &st1);
	fr->written = st1.bytes_written - st0.bytes_written;
out_close:
	t0 = bu_now_ns();
	if (store_close(s) && !err)
		err = -EIO;
	fr->close_ns = bu_now_ns() - t0;
	return err;
}

/* What lz4 makes of the input alone: the data floor of the bytes written,
 * and the single-core compression speed (the CPU limit of a full snapshot). */
static void measure_codec(const uint8_t *data, uint64_t npages, uint64_t *stored, double *mibs)
{
	size_t cap = codec_bound(BU_PAGE);
	uint8_t *dst = malloc(cap);
	uint64_t t0, sum = 0, n = 0;
	static const uint8_t zero[BU_PAGE];

	if (!dst) {
		*stored = 0;
		*mibs = 0;
		return;
	}
	t0 = bu_now_ns();
	for (uint64_t i = 0; i < npages; i++) {
		const uint8_t *p = data + i * BU_PAGE;
		enum codec used;

		if (!memcmp(p, zero, BU_PAGE))
			continue;	/* a hole: nothing stored */
		sum += codec_compress(CODEC_LZ4, p, BU_PAGE, dst, cap, &used);
		n++;
	}
	*mibs = (double)npages * BU_PAGE / BU_MIB / bu_secs(bu_now_ns() - t0);
	*stored = sum;
	free(dst);
}

struct codec_part {
	const uint8_t *data;
	uint64_t first, n, stored;
	double mibs;
};

static void *codec_thread(void *arg)
{
	struct codec_part *p = arg;

	measure_codec(p->data + p->first * BU_PAGE, p->n, &p->stored, &p->mibs);
	return NULL;
}

/* lz4 of the input on every core at once (one slice each): MiB/s of
 * input, the CPU limit of a store that compresses in parallel. */
static double measure_codec_all(const uint8_t *data, uint64_t npages, int ncpu)
{
	struct codec_part part[64];
	pthread_t th[64];
	uint64_t t0;
	int n = ncpu < 1 ? 1 : ncpu > 64 ? 64 : ncpu, started = 0;

	t0 = bu_now_ns();
	for (int i = 0; i < n; i++) {
		part[i] = (struct codec_part){ data, npages * i / n, npages * (i + 1) / n - npages * i / n, 0, 0 };
		if (pthread_create(&th[i], NULL, codec_thread, &part[i]))
			codec_thread(&part[i]);
		else
			started |= 1 << i;
	}
	for (int i = 0; i < n; i++)
		if (started & (1 << i))
			pthread_join(th[i], NULL);
	return (double)npages * BU_PAGE / BU_MIB / bu_secs(bu_now_ns() - t0);
}

int main(int argc, char **argv)
{
	struct bu_args a;
	struct bu_results res;
	struct full_run fr = { 0 };
	char path[4096];
	uint64_t bytes, npages, nk[3] = { 0 }, stored_floor;
	double raw1, raw2, raw, lz4_mibs, lz4_all, memcpy_mibs, in_mibs, wr_mibs, serial_s, pipe_s;
	int ncpu;
	uint8_t *data;
	int err;

	if (bu_parse_args(argc, argv, NAME, &a))
		return 2;
	bytes = (uint64_t)((double)(1ull << 30) * a.scale) & ~(uint64_t)(BU_PAGE - 1);
	npages = bytes / BU_PAGE;
	bu_results_init(&res, NAME, a.json);
	printf("%s: full snapshot of %.0f MiB of memory into a fresh store in %s\n", NAME,
	       bytes / BU_MIB, a.dir);

	data = aligned_alloc(BU_PAGE, bytes);
	if (!data) {
		pr_err("cannot allocate %llu bytes\n", (unsigned long long)bytes);
		return 1;
	}
	for (uint64_t vpn = 0; vpn < npages; vpn++)
		nk[bu_page_gen(1, vpn, 0, data + vpn * BU_PAGE)]++;
	bu_note(&res, "input: %llu pages: %.1f%% zero, %.1f%% text-like, %.1f%% random",
		(unsigned long long)npages, 100.0 * nk[BU_ZERO] / npages,
		100.0 * nk[BU_TEXT] / npages, 100.0 * nk[BU_RANDOM] / npages);
	measure_codec(data, npages, &stored_floor, &lz4_mibs);
	memcpy_mibs = bu_memcpy_mibs();

	bu_scratch_path(path, sizeof(path), a.dir, "full.store");
	/* The store must hold the data (at most raw) plus its index and slack. */
	if (bu_fs_free(a.dir) < 3 * bytes) {
		pr_err("%s: not enough free space for a %llu-byte run\n", a.dir,
		       (unsigned long long)bytes);
		return 1;
	}
	raw1 = bu_raw_write_mibs(a.dir, bytes);
	err = run_store(path, data, npages, 2 * bytes + (64ull << 20), &fr);
	unlink(path);
	if (err) {
		free(data);
		printf("%s: FAILED: %s\n", NAME, store_strerror(err));
		bu_results_finish(&res);
		return 1;
	}
	/* the limit is the raw write of exactly what the store wrote; taken
	 * before and after the store's run, the better one counts */
	raw2 = bu_raw_write_mibs(a.dir, fr.written);
	{
		/* other work on the machine makes one pass noisy: best of two */
		uint64_t st2;
		double l2;

		measure_codec(data, npages, &st2, &l2);
		if (l2 > lz4_mibs)
			lz4_mibs = l2;
	}
	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	lz4_all = measure_codec_all(data, npages, ncpu);
	free(data);
	raw = raw1 > raw2 ? raw1 : raw2;
	in_mibs = bytes / BU_MIB / bu_secs(fr.ns);
	wr_mibs = fr.written / BU_MIB / bu_secs(fr.ns);

	bu_note(&res, "raw write+fdatasync, 1 MiB writes: %.0f MiB/s (%.0f MiB), %.0f MiB/s (%.0f MiB); limit = the better",
		raw1, bytes / BU_MIB, raw2, fr.written / BU_MIB);
	bu_note(&res, "snapshot: %.3f s (commit alone %.3f s), %.1f MiB written (%.1f MiB through the I/O layer, %llu syncs); close %.3f s",
		bu_secs(fr.ns), bu_secs(fr.commit_ns), fr.written / BU_MIB, fr.io.wr_bytes / BU_MIB,
		(unsigned long long)fr.io.syncs, bu_secs(fr.close_ns));
	bu_report(&res, "written_mibs", "written MiB/s (durable)", wr_mibs, "MiB/s", raw,
		  "raw write+fdatasync, same bytes");
	bu_report(&res, "input_mibs", "input MiB/s (durable)", in_mibs, "MiB/s",
		  raw * (double)bytes / (double)fr.written,
		  "raw MiB/s x input/written");
	bu_report(&res, "input_vs_lz4", "input MiB/s vs CPU", in_mibs, "MiB/s", lz4_mibs,
		  "lz4 of the input alone, 1 core");
	/* what one thread that compresses, then writes, could reach at best:
	 * tells a slow store from a single-threaded design */
	serial_s = bytes / BU_MIB / lz4_mibs + fr.written / BU_MIB / raw;
	bu_report(&res, "written_vs_serial", "written MiB/s vs 1-thread floor", wr_mibs, "MiB/s",
		  fr.written / BU_MIB / serial_s, "lz4 alone, then raw write, 1 thread");
	/* every core compressing while the disk writes: the slower of the two */
	pipe_s = bytes / BU_MIB / lz4_all;
	if (fr.written / BU_MIB / raw > pipe_s)
		pipe_s = fr.written / BU_MIB / raw;
	bu_note(&res, "lz4 of the input on %d cores at once: %.0f MiB/s", ncpu, lz4_all);
	bu_report(&res, "written_vs_pipelined", "written MiB/s vs all-core floor", wr_mibs, "MiB/s",
		  fr.written / BU_MIB / pipe_s, "max(lz4 on all cores, raw write)");
	bu_report(&res, "written_bytes", "bytes written", fr.written / BU_MIB, "MiB",
		  stored_floor / BU_MIB, "lz4 output of non-zero pages");
	bu_report(&res, "lz4_mibs", "lz4 compress, 1 core", lz4_mibs, "MiB/s", memcpy_mibs,
		  "memcpy bandwidth");
	printf("  ==> written/raw = %.3f (target >= 0.9): %s\n", wr_mibs / raw,
	       wr_mibs / raw >= 0.9 ? "met" : "NOT met");
	bu_note(&res, "written/raw = %.3f, target >= 0.9: %s", wr_mibs / raw,
		wr_mibs / raw >= 0.9 ? "met" : "NOT met");
	return bu_results_finish(&res) ? 1 : 0;
}
