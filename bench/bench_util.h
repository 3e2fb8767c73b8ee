/* Small helpers shared by the store benchmarks (bench/, not tests).
 *
 * Every figure a benchmark prints stands beside a limit measured in the same
 * run (raw disk bandwidth, raw pread latency, memcpy bandwidth, a floor) and
 * beside the figure of the previous run, read from the committed
 * bench/results/<name>.json before it is overwritten. */
#ifndef CRYO_BENCH_UTIL_H
#define CRYO_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "store/io.h"

#define BU_PAGE 4096u
#define BU_MIB (1024.0 * 1024.0)

/* ---- time ---- */
uint64_t bu_now_ns(void);
static inline double bu_secs(uint64_t ns) { return (double)ns / 1e9; }

/* p in [0, 100]; sorts v in place. 0 when n == 0. */
uint64_t bu_percentile(uint64_t *v, size_t n, double p);

/* ---- PRNG (xoshiro256**, seeded by splitmix64): deterministic runs ---- */
struct bu_rng {
	uint64_t s[4];
};
void bu_rng_seed(struct bu_rng *r, uint64_t seed);
uint64_t bu_rng_next(struct bu_rng *r);
/* Uniform in [0, n). */
uint64_t bu_rng_below(struct bu_rng *r, uint64_t n);
uint64_t bu_mix64(uint64_t x);

/* ---- page generators ---- */
enum bu_page_kind { BU_ZERO, BU_TEXT, BU_RANDOM };

/* "Realistic memory": for page vpn of a data set named by seed, ~30% zero
 * pages, ~40% text-like (compressible), ~30% random. The kind depends on
 * (seed, vpn) only; version changes the contents of text and random pages
 * (an incremental snapshot rewrites a page with a new version). */
enum bu_page_kind bu_page_kind_of(uint64_t seed, uint64_t vpn);
enum bu_page_kind bu_page_gen(uint64_t seed, uint64_t vpn, uint32_t version, void *page);
void bu_page_random(struct bu_rng *r, void *page);

/* A pool of pre-generated pages, so that a benchmark over more memory than
 * it can hold spends its time in the store, not in the generator: a page is
 * a copy of a pool page (chosen by (vpn, version), same kind mix) with
 * (vpn, version) stamped into its first 16 bytes so no two are equal.
 * A page of kind BU_ZERO is zero at version 0 and text-like after. */
struct bu_pool {
	uint8_t *pages;
	enum bu_page_kind *kinds;
	size_t n;
	uint64_t seed;
};
int bu_pool_init(struct bu_pool *p, uint64_t seed, size_t npages);
void bu_pool_free(struct bu_pool *p);
/* As bu_pool_page, but always a random (incompressible) page. */
void bu_pool_page_random(const struct bu_pool *p, uint64_t vpn, uint32_t version, void *page);
enum bu_page_kind bu_pool_page(const struct bu_pool *p, uint64_t vpn, uint32_t version,
			       void *page);

/* ---- limits measured in the same run ---- */

/* Sequential write of bytes (1 MiB writes of non-zero random data) into a
 * fresh file in dir, then fdatasync; the file is removed. Returns MiB/s, or
 * a negative -errno. */
double bu_raw_write_mibs(const char *dir, uint64_t bytes);
/* memcpy bandwidth over a 256 MiB buffer, MiB/s. */
double bu_memcpy_mibs(void);
/* sync + echo 3 > /proc/sys/vm/drop_caches. 0, or -errno when not allowed. */
int bu_drop_caches(void);

/* ---- store helpers ---- */

/* A store_io that counts bytes read and written, and syncs, over a file. */
struct bu_count {
	uint64_t rd_bytes, wr_bytes, syncs, rd_ops, wr_ops;
};
int bu_count_io_open(const char *path, struct bu_count *c, struct store_io **out);
/* The same with open flags and a posix_fadvise advice (-1: none). */
int bu_count_io_open2(const char *path, int flags, int advice, struct bu_count *c,
		      struct store_io **out);

/* Bytes used by a file on disk (st_blocks * 512). */
uint64_t bu_file_disk_bytes(const char *path);
/* Free bytes in the file system holding dir. */
uint64_t bu_fs_free(const char *dir);

/* ---- results: JSON writer, previous-result reader, report lines ---- */

#define BU_MAX_FIG 64
struct bu_fig {
	char key[48];
	double value, limit;
	char unit[16];
};
struct bu_results {
	const char *name;	/* bench name, e.g. "bench_store_full" */
	const char *path;	/* results file: read first, overwritten at the end */
	char *prev;		/* previous file's text, or NULL */
	struct bu_fig fig[BU_MAX_FIG];
	int nfig;
	char notes[2048];
};

int bu_results_init(struct bu_results *r, const char *name, const char *path);
/* A previous value of key, or NAN if none. */
double bu_prev(const struct bu_results *r, const char *key);

/* Print one figure: label, value and unit, its limit, the ratio
 * value/limit, and the previous run's value; record it for the JSON file.
 * limit <= 0 or NAN prints no ratio. */
void bu_report(struct bu_results *r, const char *key, const char *label, double value,
	       const char *unit, double limit, const char *limit_label);
/* A free-form note, printed and kept in the JSON file. */
void bu_note(struct bu_results *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write the JSON file (when path is set) and free. */
int bu_results_finish(struct bu_results *r);

/* Common arguments: --dir DIR (scratch dir on the file system to measure),
 * --json PATH (results file), --scale F (shrink sizes for a quick try).
 * Returns 0, or 2 after printing usage. */
struct bu_args {
	const char *dir;
	const char *json;
	double scale;
};
int bu_parse_args(int argc, char **argv, const char *name, struct bu_args *a);

/* dir/name.<pid> in buf. */
void bu_scratch_path(char *buf, size_t len, const char *dir, const char *name);

#endif
