/* bench_store_incr: a 4 GiB object (snapshot 1, full), then 1% of its pages
 * changed at random and an incremental snapshot committed (base = newest).
 * Figures: time and bytes written for the incremental beside the full one,
 * and beside the floor: the changed pages' stored bytes (lz4, measured in
 * the same run). The index nodes on the changed paths come on top; their
 * count is printed (their stored size depends on how well they compress).
 *
 * Pages come from a pool (bench_util.h), so 4 GiB of input never sits in
 * memory and the time goes to the store, not the generator. */
#define LOG_PREFIX "bench_store_incr: "
#include "bench_util.h"
#include "common/codec.h"
#include "common/log.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME "bench_store_incr"
#define SEED 7

struct snap_run {
	uint64_t ns, commit_ns, written, pages;
};

/* Snapshot of object "big": version 0 of every page when changed is NULL,
 * else version 1 of the pages whose bit is set in changed, on the newest. */
static int snapshot(struct store *s, const struct bu_pool *pool, uint64_t npages,
		    const uint8_t *changed, struct snap_run *out)
{
	static uint8_t page[BU_PAGE] __attribute__((aligned(4096)));
	struct store_stat st0, st1;
	struct store_txn *t = NULL;
	uint64_t t0, t1, no;
	int err;

	store_stat(s, &st0);
	sync();
	out->pages = 0;
	t0 = bu_now_ns();
	err = store_txn_begin(s, "big", changed ? STORE_SNAP_NEWEST : 0, &t);
	for (uint64_t vpn = 0; !err && vpn < npages; vpn++) {
		if (changed && !(changed[vpn / 8] & (1u << (vpn % 8))))
			continue;
		bu_pool_page(pool, vpn, changed ? 1 : 0, page);
		err = store_txn_put_page(t, vpn, page);
		out->pages++;
	}
	if (err) {
		pr_err("put_page: %s\n", store_strerror(err));
		store_txn_abort(t);
		return err;
	}
	t1 = bu_now_ns();
	err = store_txn_commit(t, &no);
	out->ns = bu_now_ns() - t0;
	out->commit_ns = bu_now_ns() - t1;
	if (err) {
		pr_err("commit: %s\n", store_strerror(err));
		return err;
	}
	store_stat(s, &st1);
	out->written = st1.bytes_written - st0.bytes_written;
	return 0;
}

/* The floor of an incremental snapshot: the changed pages as lz4 stores
 * them; and how many index nodes lie on their paths. */
static void cow_floor(const struct bu_pool *pool, uint64_t npages, const uint8_t *changed,
			  uint64_t *data_bytes, uint64_t *nodes)
{
	static uint8_t page[BU_PAGE] __attribute__((aligned(4096)));
	size_t cap = codec_bound(BU_PAGE);
	uint8_t *dst = malloc(cap);
	uint64_t last[5] = { UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX };

	*data_bytes = 0;
	*nodes = 0;
	if (!dst)
		return;
	for (uint64_t vpn = 0; vpn < npages; vpn++) {
		enum codec used;

		if (!(changed[vpn / 8] & (1u << (vpn % 8))))
			continue;
		bu_pool_page(pool, vpn, 1, page);
		*data_bytes += codec_compress(CODEC_LZ4, page, BU_PAGE, dst, cap, &used);
		/* vpn order: a node is new when its prefix changes */
		for (int lvl = 0; lvl < 5; lvl++) {
			uint64_t key = vpn >> (8 * (lvl + 1));

			if (key != last[lvl]) {
				last[lvl] = key;
				(*nodes)++;
			}
		}
	}
	free(dst);
}

int main(int argc, char **argv)
{
	struct bu_args a;
	struct bu_results res;
	struct bu_pool pool;
	struct snap_run full = { 0 }, incr = { 0 };
	struct store_create_opts co = { .codec = CODEC_LZ4 };
	struct store_open_opts oo = { .no_autoclean = 1 };
	struct store *s = NULL;
	struct bu_rng rng;
	char path[4096];
	uint64_t bytes, npages, k, floor_data, floor_nodes;
	uint8_t *changed;
	double raw_full, raw_incr;
	int err;

	if (bu_parse_args(argc, argv, NAME, &a))
		return 2;
	bytes = (uint64_t)((double)(4ull << 30) * a.scale) & ~(uint64_t)(BU_PAGE - 1);
	npages = bytes / BU_PAGE;
	k = npages / 100;
	bu_results_init(&res, NAME, a.json);
	printf("%s: %.0f MiB object, full snapshot, then %llu changed pages (1%%) incremental, in %s\n",
	       NAME, bytes / BU_MIB, (unsigned long long)k, a.dir);
	if (bu_fs_free(a.dir) < bytes + bytes / 2) {
		pr_err("%s: not enough free space\n", a.dir);
		return 1;
	}
	if (bu_pool_init(&pool, SEED, 16384))
		return 1;
	changed = calloc(npages / 8 + 1, 1);
	if (!changed)
		return 1;
	bu_rng_seed(&rng, SEED);
	for (uint64_t i = 0; i < k;) {
		uint64_t vpn = bu_rng_below(&rng, npages);

		if (changed[vpn / 8] & (1u << (vpn % 8)))
			continue;
		changed[vpn / 8] |= (uint8_t)(1u << (vpn % 8));
		i++;
	}
	cow_floor(&pool, npages, changed, &floor_data, &floor_nodes);

	bu_scratch_path(path, sizeof(path), a.dir, "incr.store");
	/* stored size is at most the input; room for both snapshots */
	co.size = bytes + bytes / 4 + (64ull << 20);
	err = store_create(path, &co);
	if (!err)
		err = store_open(path, &oo, &s);
	if (err) {
		pr_err("%s: %s\n", path, store_strerror(err));
		unlink(path);
		return 1;
	}
	err = snapshot(s, &pool, npages, NULL, &full);
	if (!err)
		err = snapshot(s, &pool, npages, changed, &incr);
	store_close(s);
	unlink(path);
	free(changed);
	bu_pool_free(&pool);
	if (err) {
		printf("%s: FAILED: %s\n", NAME, store_strerror(err));
		bu_results_finish(&res);
		return 1;
	}
	raw_full = bu_raw_write_mibs(a.dir, full.written);
	raw_incr = bu_raw_write_mibs(a.dir, incr.written);

	bu_note(&res, "full: %llu pages put, %.3f s (commit %.3f s), %.1f MiB written; incremental: %llu pages put, %.3f s (commit %.3f s), %.2f MiB written",
		(unsigned long long)full.pages, bu_secs(full.ns), bu_secs(full.commit_ns), full.written / BU_MIB,
		(unsigned long long)incr.pages, bu_secs(incr.ns), bu_secs(incr.commit_ns), incr.written / BU_MIB);
	bu_note(&res, "per page put: full %.1f us, incremental %.1f us (the incremental loads the base's index nodes on the changed paths)",
		(full.ns - full.commit_ns) / 1e3 / full.pages, (incr.ns - incr.commit_ns) / 1e3 / incr.pages);
	bu_note(&res, "floor of the incremental: %.2f MiB of lz4 page data; the index adds %llu nodes on the changed paths (%.2f MiB if stored raw, less compressed)",
		floor_data / BU_MIB, (unsigned long long)floor_nodes, floor_nodes * (double)BU_PAGE / BU_MIB);
	bu_report(&res, "incr_written_mib", "incremental: bytes written", incr.written / BU_MIB,
		  "MiB", floor_data / BU_MIB, "floor: changed pages, lz4");
	bu_report(&res, "incr_written_pct_full", "incremental bytes, % of full", 100.0 * incr.written / full.written,
		  "%", 100.0 * floor_data / full.written, "floor: changed pages, % of full");
	bu_report(&res, "incr_time_pct_full", "incremental time, % of full time", 100.0 * incr.ns / full.ns,
		  "%", 100.0 * floor_data / full.written, "floor: changed pages, % of full");
	bu_report(&res, "incr_written_mibs", "incremental: written MiB/s", incr.written / BU_MIB / bu_secs(incr.ns),
		  "MiB/s", raw_incr, "raw write+fdatasync, same bytes");
	bu_report(&res, "full_written_mibs", "full: written MiB/s", full.written / BU_MIB / bu_secs(full.ns),
		  "MiB/s", raw_full, "raw write+fdatasync, same bytes");
	bu_report(&res, "full_input_mibs", "full: input MiB/s", bytes / BU_MIB / bu_secs(full.ns),
		  "MiB/s", raw_full * (double)bytes / full.written, "raw MiB/s x input/written");
	return bu_results_finish(&res) ? 1 : 0;
}
