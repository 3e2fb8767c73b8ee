/* bench_store_clean: the cleaner's write cost at 50%, 75% and 90% store
 * utilization under a hot/cold workload (10% of the pages get 90% of the
 * writes), retention keep 1, auto-clean on.
 *
 *   write cost = all bytes written / bytes of new page data committed
 *
 * counted below the store, in its I/O layer, so cleaning, index nodes,
 * commit records and checkpoints all count. 1/write cost is the fraction
 * of the disk's write bandwidth that carries new data; Sprite LFS reported
 * 70% (Rosenblum & Ousterhout, 1992): a constant from the literature,
 * printed as such, not measured here. Pages are random (incompressible) so
 * new page data = 4 KiB per page put. */
#define LOG_PREFIX "bench_store_clean: "
#include "bench_util.h"
#include "common/log.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME "bench_store_clean"
#define SEED 17
#define SPRITE_NEW_FRACTION 0.70	/* Sprite LFS, literature constant */
#define TXN_PAGES 512			/* pages changed per snapshot */

struct clean_fig {
	double util;		/* target */
	double util_seen;	/* live bytes / capacity at the end */
	double cost;		/* written / new */
	double cost_rw;		/* (read + written) / new, Sprite's definition */
	uint64_t new_bytes, wr, rd, commits, segs_cleaned, clean_bytes, meta_bytes;
	double secs;
};

/* Commit one snapshot changing the given pages (distinct), keep only it. */
static int commit_pages(struct store *s, const struct bu_pool *pool, const uint64_t *vpns,
			size_t n, uint32_t ver)
{
	static uint8_t page[BU_PAGE] __attribute__((aligned(4096)));
	struct store_txn *t = NULL;
	uint64_t no;
	int err;

	err = store_txn_begin(s, "obj", STORE_SNAP_NEWEST, &t);
	for (size_t i = 0; !err && i < n; i++) {
		bu_pool_page_random(pool, vpns[i], ver, page);
		err = store_txn_put_page(t, vpns[i], page);
	}
	if (err) {
		store_txn_abort(t);
		return err;
	}
	err = store_txn_commit(t, &no);
	if (!err)
		err = store_retain(s, "obj", 1);
	return err;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* TXN_PAGES distinct pages: 90% of them from the hot tenth of the object. */
static size_t pick(struct bu_rng *r, uint64_t live, uint64_t *vpns)
{
	uint64_t hot = live / 10 ? live / 10 : 1;
	size_t n = 0;

	for (size_t i = 0; i < TXN_PAGES; i++) {
		if (bu_rng_below(r, 10) < 9)
			vpns[i] = bu_rng_below(r, hot);
		else
			vpns[i] = hot + bu_rng_below(r, live - hot);
	}
	qsort(vpns, TXN_PAGES, sizeof(*vpns), cmp_u64);
	for (size_t i = 0; i < TXN_PAGES; i++)
		if (!n || vpns[n - 1] != vpns[i])
			vpns[n++] = vpns[i];
	return n;
}

/* policy: the store's own auto-clean, or (a diagnostic) auto-clean off
 * and store_clean called before each commit with a goal that the
 * utilization allows: the reserve plus a quarter of the free space. */
enum policy { POL_AUTO, POL_GOAL };

static int run(const char *path, const struct bu_pool *pool, uint64_t size, uint32_t seg,
	       uint64_t warm_bytes, uint64_t meas_bytes, enum policy pol, struct clean_fig *f)
{
	struct store_create_opts co = { .size = size, .seg_size = seg, .codec = CODEC_LZ4 };
	struct store_open_opts oo = { .no_autoclean = pol != POL_AUTO };
	uint64_t want = 0;
	struct store_stat st0, st1;
	struct bu_count c = { 0 }, c0 = { 0 };
	struct store_io *io = NULL;
	struct store *s = NULL;
	struct bu_rng r;
	uint64_t live, vpns[TXN_PAGES], done = 0, t0 = 0;
	uint32_t ver = 1;
	int err;

	err = store_create(path, &co);
	if (!err)
		err = bu_count_io_open(path, &c, &io);
	if (!err)
		err = store_open_io(io, &oo, &s);
	if (err) {
		pr_err("%s: %s\n", path, store_strerror(err));
		return err;
	}
	store_stat(s, &st0);
	live = (uint64_t)(f->util * (double)(st0.segs * st0.seg_size)) / BU_PAGE;
	if (pol == POL_GOAL) {
		uint64_t reserve = st0.segs / 32 > 2 ? st0.segs / 32 : 2;

		want = reserve + 4 + (uint64_t)((double)st0.segs * (1 - f->util) / 4);
	}
	/* the object, written once: live pages, TXN_PAGES per snapshot */
	for (uint64_t v = 0; !err && v < live; v += TXN_PAGES) {
		size_t n = 0;

		for (; n < TXN_PAGES && v + n < live; n++)
			vpns[n] = v + n;
		err = commit_pages(s, pool, vpns, n, 0);
	}
	bu_rng_seed(&r, SEED);
	for (int phase = 0; !err && phase < 2; phase++) {
		uint64_t target = phase ? meas_bytes : warm_bytes;

		if (phase) {
			store_stat(s, &st0);
			c0 = c;
			done = 0;
			f->commits = 0;
			t0 = bu_now_ns();
		}
		while (!err && done < target) {
			size_t n = pick(&r, live, vpns);

			/* returns at once while want segments are free */
			if (want && (err = store_clean(s, want, NULL)) == -ENOSPC)
				err = 0;
			if (!err)
				err = commit_pages(s, pool, vpns, n, ver++);
			done += n * BU_PAGE;
			f->commits++;
		}
	}
	if (err) {
		pr_err("at %.0f%% utilization, after %llu commits: %s\n", f->util * 100,
		       (unsigned long long)f->commits, store_strerror(err));
		store_close(s);
		return err;
	}
	f->secs = bu_secs(bu_now_ns() - t0);
	store_stat(s, &st1);
	f->new_bytes = done;
	f->wr = c.wr_bytes - c0.wr_bytes;
	f->rd = c.rd_bytes - c0.rd_bytes;
	f->cost = (double)f->wr / (double)done;
	f->cost_rw = (double)(f->wr + f->rd) / (double)done;
	f->segs_cleaned = st1.segs_cleaned - st0.segs_cleaned;
	f->clean_bytes = st1.clean_bytes - st0.clean_bytes;
	f->meta_bytes = (st1.new_bytes - st0.new_bytes) - done;
	f->util_seen = (double)st1.live_bytes / (double)(st1.segs * st1.seg_size);
	return store_close(s);
}

int main(int argc, char **argv)
{
	static const double utils[] = { 0.50, 0.75, 0.90 };
	struct bu_args a;
	struct bu_results res;
	struct bu_pool pool;
	char path[4096];
	uint64_t size;
	uint32_t seg = 1u << 20;
	int err = 0;

	if (bu_parse_args(argc, argv, NAME, &a))
		return 2;
	size = (uint64_t)((double)(256ull << 20) * a.scale) & ~(uint64_t)(seg - 1);
	if (size < (32ull << 20))
		size = 32ull << 20;
	bu_results_init(&res, NAME, a.json);
	printf("%s: %.0f MiB store, %u KiB segments, hot/cold 90/10, keep 1, auto-clean, in %s\n",
	       NAME, size / BU_MIB, seg >> 10, a.dir);
	if (bu_pool_init(&pool, SEED, 16384))
		return 1;
	bu_scratch_path(path, sizeof(path), a.dir, "clean.store");
	bu_note(&res, "limit: Sprite LFS used %.0f%% of disk bandwidth for new data (Rosenblum & Ousterhout 1992) - a literature constant, not measured here",
		SPRITE_NEW_FRACTION * 100);
	for (size_t j = 0; j < 2 * sizeof(utils) / sizeof(utils[0]); j++) {
		size_t i = j % 3;
		enum policy pol = j < 3 ? POL_AUTO : POL_GOAL;
		const char *kp = pol == POL_AUTO ? "" : "goal_";
		const char *lp = pol == POL_AUTO ? "" : "[goal] ";
		struct clean_fig f = { .util = utils[i] };
		char key[48], label[64];
		int pct = (int)(utils[i] * 100 + 0.5), e;

		if (j == 3)
			bu_note(&res, "diagnostic, not the store's policy: auto-clean off, store_clean(reserve + 4 + 1/4 of the free space) before each commit");
		e = run(path, &pool, size, seg, size / 2, size, pol, &f);
		unlink(path);
		if (e) {
			bu_note(&res, "%s%d%% utilization: FAILED (%s)", lp, pct, store_strerror(e));
			if (pol == POL_AUTO)
				err = e;
			continue;
		}
		bu_note(&res, "%s%d%%: %llu commits in %.1f s, new data %.0f MiB, written %.0f MiB (cleaner %.0f MiB, index+records+checkpoints %.0f MiB), read %.0f MiB, %llu segments cleaned, utilization seen %.1f%%",
			lp, pct, (unsigned long long)f.commits, f.secs, f.new_bytes / BU_MIB,
			f.wr / BU_MIB, f.clean_bytes / BU_MIB, (f.wr - f.new_bytes - f.clean_bytes) / BU_MIB,
			f.rd / BU_MIB, (unsigned long long)f.segs_cleaned, f.util_seen * 100);
		snprintf(key, sizeof(key), "%scost_%d", kp, pct);
		snprintf(label, sizeof(label), "%s%d%% util: write cost", lp, pct);
		bu_report(&res, key, label, f.cost, "x", 1.0 / SPRITE_NEW_FRACTION,
			  "Sprite LFS 1/0.70 (literature)");
		snprintf(key, sizeof(key), "%snew_fraction_%d", kp, pct);
		snprintf(label, sizeof(label), "%s%d%% util: bandwidth for new data", lp, pct);
		bu_report(&res, key, label, 100.0 / f.cost, "%", SPRITE_NEW_FRACTION * 100,
			  "Sprite LFS 70% (literature)");
		snprintf(key, sizeof(key), "%scost_rw_%d", kp, pct);
		snprintf(label, sizeof(label), "%s%d%% util: (read+write)/new", lp, pct);
		bu_report(&res, key, label, f.cost_rw, "x", 2.0 / (1.0 - utils[i]),
			  "2/(1-u): LFS greedy, uniform");
	}
	bu_pool_free(&pool);
	return bu_results_finish(&res) || err ? 1 : 0;
}
