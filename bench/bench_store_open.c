/* bench_store_open: open (recovery) time of a 1 GiB and a 16 GiB store,
 * each filled with committed snapshots spread over it; several runs, p50,
 * cold (page cache dropped) and warm. The floor, measured in the same run,
 * is what any open must do: open the file and pread the superblock and the
 * two checkpoint slots. Open time must be flat: the 16 GiB store opens as
 * fast as the 1 GiB one (I6).
 *
 * Also the open after a crash: a child commits a snapshot and exits without
 * closing, so the open rolls forward over the log tail (read-only opens, so
 * the tail stays for every run). */
#define LOG_PREFIX "bench_store_open: "
#include "bench_util.h"
#include "common/log.h"
#include "store/format.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NAME "bench_store_open"
#define SEED 13
#define RUNS 7

struct open_fig {
	uint64_t cold, warm, crash_cold, crash_warm;	/* p50, ns */
	uint64_t fcold, fwarm;				/* floor p50, ns */
	uint64_t snaps, bytes, tail_chunks, stat_ns;
	double fill_s;
};

/* One snapshot of obj: every page (version ver) when full, else 1% of
 * them on the newest. Random pages: stored bytes = input bytes. */
static int put_snapshot(struct store *s, const struct bu_pool *pool, const char *obj,
			uint64_t npages, uint32_t ver, int full)
{
	static uint8_t page[BU_PAGE] __attribute__((aligned(4096)));
	struct store_txn *t = NULL;
	uint64_t no;
	int err;

	err = store_txn_begin(s, obj, full ? 0 : STORE_SNAP_NEWEST, &t);
	for (uint64_t vpn = 0; !err && vpn < npages; vpn += full ? 1 : 100) {
		bu_pool_page_random(pool, vpn, ver, page);
		err = store_txn_put_page(t, vpn, page);
	}
	if (err) {
		store_txn_abort(t);
		return err;
	}
	return store_txn_commit(t, &no);
}

/* Fill a store of size bytes to ~70% with full snapshots of objects of
 * min(512 MiB, size/8), each followed by two 1% incrementals. */
static int fill(const char *path, const struct bu_pool *pool, uint64_t size, struct open_fig *f)
{
	struct store_create_opts co = { .size = size, .codec = CODEC_LZ4 };
	struct store_open_opts oo = { .no_autoclean = 1 };
	uint64_t obj_bytes = size / 8 < (512ull << 20) ? size / 8 : (512ull << 20);
	uint64_t npages = obj_bytes / BU_PAGE, t0 = bu_now_ns();
	struct store_stat st;
	struct bu_count c = { 0 };
	struct store_io *io = NULL;
	struct store *s = NULL;
	char obj[32];
	int err;

	err = store_create(path, &co);
	if (!err)
		err = bu_count_io_open(path, &c, &io);
	if (!err)
		err = store_open_io(io, &oo, &s);
	if (err)
		return err;
	for (uint32_t i = 0; !err; i++) {
		/* bytes counted in our I/O layer: store_stat walks every index */
		if (c.wr_bytes + obj_bytes + obj_bytes / 8 > size * 7 / 10)
			break;
		snprintf(obj, sizeof(obj), "obj%u", i % 6);
		err = put_snapshot(s, pool, obj, npages, i, 1);
		for (int j = 1; !err && j <= 2; j++)
			err = put_snapshot(s, pool, obj, npages, i * 4 + j, 0);
		f->snaps += 3;
	}
	f->fill_s = bu_secs(bu_now_ns() - t0);
	t0 = bu_now_ns();
	store_stat(s, &st);
	f->stat_ns = bu_now_ns() - t0;
	f->bytes = st.live_bytes;
	if (store_close(s) && !err)
		err = -EIO;
	if (err)
		pr_err("fill %s: %s\n", path, store_strerror(err));
	return err;
}

static int time_open(const char *path, int cold, int read_only, uint64_t *ns, uint64_t *chunks)
{
	struct store_open_opts oo = { .no_autoclean = 1, .read_only = read_only };
	struct store_stat st;
	struct store *s = NULL;
	uint64_t t0;
	int err;

	if (cold)
		bu_drop_caches();
	t0 = bu_now_ns();
	err = store_open(path, &oo, &s);
	*ns = bu_now_ns() - t0;
	if (err) {
		pr_err("open %s: %s\n", path, store_strerror(err));
		return err;
	}
	if (chunks) {
		/* not every run: store_stat walks every snapshot's index */
		store_stat(s, &st);
		*chunks = st.open_chunks;
	}
	err = store_close(s);
	if (err)
		pr_err("close %s: %s\n", path, store_strerror(err));
	return err;
}

/* The floor: open the file, pread superblock and both slots, close. */
static int time_floor(const char *path, int cold, uint64_t *ns)
{
	static uint8_t blk[3][FMT_BLOCK] __attribute__((aligned(4096)));
	uint64_t t0;
	int fd, err = 0;

	if (cold)
		bu_drop_caches();
	t0 = bu_now_ns();
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		pr_err("%s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (pread(fd, blk[0], FMT_BLOCK, FMT_SB_OFF) != FMT_BLOCK ||
	    pread(fd, blk[1], FMT_BLOCK, FMT_SLOT_OFF(0)) != FMT_BLOCK ||
	    pread(fd, blk[2], FMT_BLOCK, FMT_SLOT_OFF(1)) != FMT_BLOCK)
		err = -EIO;
	close(fd);
	*ns = bu_now_ns() - t0;
	return err;
}

/* A crash: a child commits one more snapshot and exits without closing. */
static int crash_tail(const char *path, const struct bu_pool *pool)
{
	struct store_open_opts oo = { .no_autoclean = 1 };
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct store *s = NULL;
		int err = store_open(path, &oo, &s);

		if (!err)
			err = put_snapshot(s, pool, "tail", 2048, 1, 1);
		if (err)
			pr_err("crash tail in %s: %s\n", path, store_strerror(err));
		_exit(err ? 1 : 0);	/* no store_close: no checkpoint */
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		pr_err("crash tail in %s: the child failed\n", path);
		return -EIO;
	}
	return 0;
}

static int measure(const char *path, const struct bu_pool *pool, struct open_fig *f)
{
	uint64_t v[4][RUNS], fl[2][RUNS];
	int err = 0;

	for (int i = 0; i < RUNS && !err; i++) {
		err = time_open(path, 1, 0, &v[0][i], NULL);
		if (!err)
			err = time_open(path, 0, 0, &v[1][i], NULL);
		if (!err)
			err = time_floor(path, 1, &fl[0][i]);
		if (!err)
			err = time_floor(path, 0, &fl[1][i]);
	}
	if (!err)
		err = crash_tail(path, pool);
	for (int i = 0; i < RUNS && !err; i++) {
		err = time_open(path, 1, 1, &v[2][i], i ? NULL : &f->tail_chunks);
		if (!err)
			err = time_open(path, 0, 1, &v[3][i], NULL);
	}
	if (err)
		return err;
	f->cold = bu_percentile(v[0], RUNS, 50);
	f->warm = bu_percentile(v[1], RUNS, 50);
	f->crash_cold = bu_percentile(v[2], RUNS, 50);
	f->crash_warm = bu_percentile(v[3], RUNS, 50);
	f->fcold = bu_percentile(fl[0], RUNS, 50);
	f->fwarm = bu_percentile(fl[1], RUNS, 50);
	return 0;
}

static void report(struct bu_results *r, const char *tag, const struct open_fig *f)
{
	char key[48], label[64];

	bu_note(r, "%s store: %llu snapshots, %.0f MiB live, filled in %.1f s; crash tail: %llu chunks rolled forward; one store_stat took %.1f ms (it walks every index)",
		tag, (unsigned long long)f->snaps, f->bytes / BU_MIB, f->fill_s,
		(unsigned long long)f->tail_chunks, f->stat_ns / 1e6);
#define R(field, flo, name, lim)                                                     \
	snprintf(key, sizeof(key), "open_%s_%s_ms", tag, name);                       \
	snprintf(label, sizeof(label), "%s store: open p50, %s", tag, name);          \
	bu_report(r, key, label, f->field / 1e6, "ms", f->flo / 1e6, lim)
	R(cold, fcold, "cold", "floor: sb + 2 slots pread, cold");
	R(warm, fwarm, "warm", "floor: sb + 2 slots pread, warm");
	R(crash_cold, fcold, "crash_cold", "floor: sb + 2 slots pread, cold");
	R(crash_warm, fwarm, "crash_warm", "floor: sb + 2 slots pread, warm");
#undef R
}

int main(int argc, char **argv)
{
	struct bu_args a;
	struct bu_results res;
	struct bu_pool pool;
	struct open_fig small = { 0 }, big = { 0 };
	char p1[4096], p16[4096];
	uint64_t s1, s16;
	int err, drop;

	if (bu_parse_args(argc, argv, NAME, &a))
		return 2;
	s1 = (uint64_t)((double)(1ull << 30) * a.scale) & ~((1ull << 20) - 1);
	s16 = 16 * s1;
	bu_results_init(&res, NAME, a.json);
	printf("%s: open time of a %.0f MiB and a %.0f MiB store, %d runs each, in %s\n", NAME,
	       s1 / BU_MIB, s16 / BU_MIB, RUNS, a.dir);
	if (bu_fs_free(a.dir) < s1 + s16 + (4ull << 30)) {
		pr_err("%s: not enough free space for %llu bytes of stores\n", a.dir,
		       (unsigned long long)(s1 + s16));
		return 1;
	}
	drop = bu_drop_caches();
	if (bu_pool_init(&pool, SEED, 16384))
		return 1;
	bu_scratch_path(p1, sizeof(p1), a.dir, "open1.store");
	bu_scratch_path(p16, sizeof(p16), a.dir, "open16.store");
	err = fill(p1, &pool, s1, &small);
	if (!err)
		err = fill(p16, &pool, s16, &big);
	if (!err)
		err = measure(p1, &pool, &small);
	if (!err)
		err = measure(p16, &pool, &big);
	unlink(p1);
	unlink(p16);
	bu_pool_free(&pool);
	if (err) {
		printf("%s: FAILED: %s\n", NAME, store_strerror(err));
		bu_results_finish(&res);
		return 1;
	}
	if (drop)
		bu_note(&res, "drop_caches NOT permitted (%s): the cold figures are not cold",
			strerror(-drop));
	report(&res, "1g", &small);
	report(&res, "16g", &big);
	bu_report(&res, "flat_cold", "flatness: 16G/1G open p50, cold", (double)big.cold / small.cold,
		  "x", (double)big.fcold / small.fcold, "floor 16G/1G, cold");
	bu_report(&res, "flat_warm", "flatness: 16G/1G open p50, warm", (double)big.warm / small.warm,
		  "x", (double)big.fwarm / small.fwarm, "floor 16G/1G, warm");
	return bu_results_finish(&res) ? 1 : 0;
}
