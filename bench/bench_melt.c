/* Melt of a process with 256 MiB, 1 GiB (and 4 GiB when memory and disk
 * allow) of touched memory, eager and lazy: time from restore_group() to
 * the process running again (cold and warm page cache); for lazy melts the
 * time until every page is in (the pager ends: by prefetch alone, and
 * while the process reads) and the pager's fault service latency; and a
 * workload that reads 10% of the pages in a scattered order right after
 * the melt, lazy vs eager vs never frozen, alone and with the melt.
 * Beside memcpy bandwidth and the disk's read bandwidth measured in the
 * same run.
 *
 * Each figure is printed beside its limit and the previous run's figure
 * (bench/results/bench_melt.json via bench/run.sh).
 *
 * usage (root): bench_melt [--dir DIR] [--json RESULTS] [--scale F] */
#include "bench_util.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dump/dump.h"
#include "pager/serve.h"
#include "restore/restore.h"

#define MIB (1ull << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Page contents that do not compress: xorshift from the page number. */
static void fill_page(uint64_t *w, uint64_t pg)
{
	uint64_t x = pg * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < 4096 / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

/* Sequential read of the first limit bytes of the store file (where the
 * image was written; the rest is a sparse tail) from a cold cache, MB/s. */
static double disk_read_mbs(const char *path, int cold, uint64_t limit)
{
	size_t bs = 4 * MIB;
	char *buf = malloc(bs);
	int fd = open(path, O_RDONLY);
	uint64_t total = 0;
	ssize_t n;
	double t;

	if (!buf || fd < 0)
		return 0;
	if (cold)
		bu_drop_caches();
	t = now();
	while (total < limit && (n = read(fd, buf, bs)) > 0)
		total += (uint64_t)n;
	t = now() - t;
	close(fd);
	free(buf);
	return (double)total / t / 1e6;
}

/* The workload: on SIGUSR1, read one word of every 10th page, in a
 * scattered order (a stride prime to the page count), then write the
 * time it took (ns) to path. */
static void touch_tenth(const uint64_t *m, uint64_t pages, const char *path)
{
	uint64_t n = pages / 10, stride = 7919, sum = 0, t;
	struct timespec a, b;
	char line[64];
	int fd;

	while (pages % stride == 0)
		stride += 2;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (uint64_t k = 0; k < n; k++)
		sum += m[(k * stride % pages) * 512];
	clock_gettime(CLOCK_MONOTONIC, &b);
	t = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull + (uint64_t)b.tv_nsec -
	    (uint64_t)a.tv_nsec;
	snprintf(line, sizeof(line), "%llu %llu\n", (unsigned long long)t,
		 (unsigned long long)(sum & 1));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		(void)!write(fd, line, strlen(line));
		close(fd);
	}
}

static pid_t spawn(uint64_t bytes, uint64_t *addr, const char *touch_path)
{
	int p[2];
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid == 0) {
		uint64_t *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int null = open("/dev/null", O_RDWR);

		if (m == MAP_FAILED)
			_exit(1);
		for (uint64_t pg = 0; pg < bytes / 4096; pg++)
			fill_page(m + pg * 512, pg);
		sigset_t usr1;

		/* blocked and waited for: a SIGUSR1 sent before the wait is
		 * pending, not lost (pause() after a handler could miss it) */
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		sigprocmask(SIG_BLOCK, &usr1, NULL);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		/* nothing of the bench's (the store!) stays open in it */
		if (dup2(p[1], 3) < 0)
			_exit(1);
		syscall(SYS_close_range, 4u, ~0u, 0u);
		if (write(3, &m, sizeof(m)) != sizeof(m))
			_exit(1);
		close(3);
		for (;;)
			if (sigwaitinfo(&usr1, NULL) == SIGUSR1)
				touch_tenth(m, bytes / 4096, touch_path);
	}
	close(p[1]);
	if (read(p[0], addr, sizeof(*addr)) != sizeof(*addr)) {
		close(p[0]);
		return -1;
	}
	close(p[0]);
	return pid;
}

/* Ask pid to run its workload; its time in seconds, or -1. */
static double touch(pid_t pid, const char *path)
{
	unsigned long long ns = 0;
	FILE *f;

	unlink(path);
	kill(pid, SIGUSR1);
	for (int i = 0; i < 120000; i++) {
		f = fopen(path, "r");
		if (f) {
			int ok = fscanf(f, "%llu", &ns) == 1;
			fclose(f);
			if (ok)
				return (double)ns / 1e9;
		}
		usleep(1000);
	}
	return -1;
}

/* The last summary line of the pager's log: fault latency p50/p99 (us). */
static int pager_latency(const char *log, double *p50, double *p99, unsigned long long *faults)
{
	char line[512], last[512] = "";
	FILE *f = fopen(log, "r");
	const char *q;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "all in after"))
			snprintf(last, sizeof(last), "%s", line);
	fclose(f);
	if (!(q = strstr(last, "all in after")) || !(q = strstr(q, "ms: ")) ||
	    sscanf(q, "ms: %llu faults", faults) != 1 || !(q = strstr(q, "fault p50 ")) ||
	    sscanf(q, "fault p50 %lf us p99 %lf us", p50, p99) != 2)
		return -1;
	return 0;
}

static int verify(pid_t pid, uint64_t addr, uint64_t bytes)
{
	uint64_t want[512], got[512];

	for (uint64_t pg = 0; pg < bytes / 4096; pg += 997) {
		struct iovec l = { got, 4096 }, r = { (void *)(uintptr_t)(addr + pg * 4096), 4096 };
		fill_page(want, pg);
		if (process_vm_readv(pid, &l, 1, &r, 1, 0) != 4096 || memcmp(want, got, 4096))
			return -1;
	}
	return 0;
}

static void wait_gone(pid_t pid)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 1000; i++) {
		FILE *f = fopen(p, "r");
		char st = 0;
		if (!f)
			return;
		if (fscanf(f, "%*d (%*[^)]) %c", &st) != 1)
			st = 0;
		fclose(f);
		if (st == 'Z' || st == 'X')
			usleep(10000);	/* pid 1 reaps it in its own time */
		else
			usleep(5000);
	}
}

/* Melt the newest snapshot of "bench" (lazy or eager), from a cold page
 * cache if cold; *t_run: until restore_group returned (the process runs),
 * *t_in: until the pager ended (lazy) or = *t_run. */
static int melt_once(struct store *s, pid_t pid, uint64_t addr, uint64_t bytes, bool lazy,
		     bool cold, const char *plog, double *t_run, double *t_in, double *t_touch,
		     const char *touch_path)
{
	struct restore_opts ro = { .snap = STORE_SNAP_NEWEST, .lazy = lazy, .pager_log = plog };
	struct restore_result rr = { 0 };
	double t0;
	int ret;

	if (cold)
		bu_drop_caches();
	t0 = now();
	ret = restore_group(s, "bench", &ro, &rr);
	*t_run = now() - t0;
	if (ret) {
		fprintf(stderr, "%s melt failed: %s\n", lazy ? "lazy" : "eager", strerror(-ret));
		return -1;
	}
	if (t_touch)
		*t_touch = touch(pid, touch_path);
	if (lazy && pager_wait(rr.pager_pid, 600000)) {
		fprintf(stderr, "pager %d did not end\n", (int)rr.pager_pid);
		ret = -1;
	}
	*t_in = lazy ? now() - t0 : *t_run;
	if (!ret && verify(pid, addr, bytes)) {
		fprintf(stderr, "%s melt: memory differs\n", lazy ? "lazy" : "eager");
		ret = -1;
	}
	kill(pid, SIGKILL);
	wait_gone(pid);
	return ret;
}

static int one(struct bu_results *res, const char *dir, uint64_t mib, double memcpy_mibs)
{
	uint64_t bytes = mib * MIB, addr;
	char spath[512], plog[512], tpath[512], key[48], label[96];
	struct store_create_opts co = { .size = bytes * 2 + 512 * MIB };
	struct store *s = NULL;
	struct dump_opts dopt = { .freeze = true };
	struct dump_result dres;
	double t_cold, t_warm, t_lazy, t_lazy_warm, t_in, t_in_warm, disk, t_base, t_te, t_tl, dummy;
	double t_lazy_t, t_in_t;
	double p50 = 0, p99 = 0;
	unsigned long long faults = 0;
	double mib_b = (double)bytes / MIB;
	pid_t pid;
	int ret, st;

	snprintf(spath, sizeof(spath), "%s/bench-melt-%d.store", dir, (int)getpid());
	snprintf(plog, sizeof(plog), "%s/bench-melt-%d.pager.log", dir, (int)getpid());
	snprintf(tpath, sizeof(tpath), "%s/bench-melt-%d.touch", dir, (int)getpid());
	unlink(spath);
	unlink(plog);
	if ((ret = store_create(spath, &co)) || (ret = store_open(spath, NULL, &s))) {
		fprintf(stderr, "store %s: %s\n", spath, store_strerror(ret));
		return 1;
	}
	pid = spawn(bytes, &addr, tpath);
	if (pid < 0)
		goto fail;
	t_base = touch(pid, tpath);
	ret = dump_group(s, "bench", pid, &dopt, &dres);
	waitpid(pid, &st, 0);
	if (ret) {
		fprintf(stderr, "freeze: %s\n", strerror(-ret));
		goto fail;
	}
	store_close(s);
	s = NULL;
	disk = disk_read_mbs(spath, 1, bytes);
	if ((ret = store_open(spath, NULL, &s)))
		goto fail;
	if (melt_once(s, pid, addr, bytes, false, true, NULL, &t_cold, &dummy, &t_te, tpath) ||
	    melt_once(s, pid, addr, bytes, false, false, NULL, &t_warm, &dummy, NULL, tpath) ||
	    melt_once(s, pid, addr, bytes, true, true, NULL, &t_lazy, &t_in, NULL, tpath) ||
	    melt_once(s, pid, addr, bytes, true, true, plog, &t_lazy_t, &t_in_t, &t_tl, tpath) ||
	    pager_latency(plog, &p50, &p99, &faults) ||
	    melt_once(s, pid, addr, bytes, true, false, NULL, &t_lazy_warm, &t_in_warm, NULL, tpath))
		goto fail;

	snprintf(key, sizeof(key), "melt_cold_ms_%llu", (unsigned long long)mib);
	snprintf(label, sizeof(label), "eager melt %llu MiB, cold cache", (unsigned long long)mib);
	bu_report(res, key, label, t_cold * 1e3, "ms", bytes / (disk * 1e6) * 1e3,
		  "reading the image from disk");
	snprintf(key, sizeof(key), "melt_warm_ms_%llu", (unsigned long long)mib);
	snprintf(label, sizeof(label), "eager melt %llu MiB, warm cache", (unsigned long long)mib);
	bu_report(res, key, label, t_warm * 1e3, "ms", mib_b / memcpy_mibs * 1e3,
		  "memcpy of the same bytes");
	snprintf(key, sizeof(key), "lazy_run_cold_ms_%llu", (unsigned long long)mib);
	snprintf(label, sizeof(label), "lazy melt %llu MiB to running, cold (target < 20)",
		 (unsigned long long)mib);
	bu_report(res, key, label, t_lazy * 1e3, "ms", t_cold * 1e3, "eager melt, cold");
	snprintf(key, sizeof(key), "lazy_run_warm_ms_%llu", (unsigned long long)mib);
	snprintf(label, sizeof(label), "lazy melt %llu MiB to running, warm", (unsigned long long)mib);
	bu_report(res, key, label, t_lazy_warm * 1e3, "ms", t_warm * 1e3, "eager melt, warm");
	snprintf(key, sizeof(key), "lazy_prefetch_cold_ms_%llu", (unsigned long long)mib);
	snprintf(label, sizeof(label), "lazy melt %llu MiB all in (prefetch alone), cold",
		 (unsigned long long)mib);
	bu_report(res, key, label, t_in * 1e3, "ms", bytes / (disk * 1e6) * 1e3,
		  "reading the image from disk (dd)");
	snprintf(key, sizeof(key), "lazy_all_in_cold_ms_%llu", (unsigned long long)mib);
	snprintf(label, sizeof(label), "lazy melt %llu MiB all in while it reads 10%%, cold",
		 (unsigned long long)mib);
	bu_report(res, key, label, t_in_t * 1e3, "ms", bytes / (disk * 1e6) * 1e3,
		  "reading the image from disk (dd)");
	snprintf(key, sizeof(key), "lazy_all_in_warm_ms_%llu", (unsigned long long)mib);
	snprintf(label, sizeof(label), "lazy melt %llu MiB all in, warm", (unsigned long long)mib);
	bu_report(res, key, label, t_in_warm * 1e3, "ms", t_warm * 1e3, "eager melt, warm");
	snprintf(key, sizeof(key), "fault_p50_us_%llu", (unsigned long long)mib);
	snprintf(label, sizeof(label), "fault service p50 (%llu faults, cold start)", faults);
	bu_report(res, key, label, p50, "us", NAN, NULL);
	snprintf(key, sizeof(key), "fault_p99_us_%llu", (unsigned long long)mib);
	snprintf(label, sizeof(label), "fault service p99");
	bu_report(res, key, label, p99, "us", NAN, NULL);
	snprintf(key, sizeof(key), "touch10_never_ms_%llu", (unsigned long long)mib);
	snprintf(label, sizeof(label), "read 10%% of %llu MiB, never frozen", (unsigned long long)mib);
	bu_report(res, key, label, t_base * 1e3, "ms", NAN, NULL);
	snprintf(key, sizeof(key), "touch10_eager_ms_%llu", (unsigned long long)mib);
	snprintf(label, sizeof(label), "read 10%% right after eager melt (+ melt %.0f ms)",
		 t_cold * 1e3);
	bu_report(res, key, label, t_te * 1e3, "ms", t_base * 1e3, "never frozen");
	snprintf(key, sizeof(key), "touch10_lazy_ms_%llu", (unsigned long long)mib);
	snprintf(label, sizeof(label), "read 10%% right after lazy melt (+ melt %.0f ms)",
		 t_lazy_t * 1e3);
	bu_report(res, key, label, t_tl * 1e3, "ms", t_base * 1e3, "never frozen");
	snprintf(key, sizeof(key), "touch10_total_lazy_ms_%llu", (unsigned long long)mib);
	snprintf(label, sizeof(label), "lazy melt + read 10%%, cold");
	bu_report(res, key, label, (t_lazy_t + t_tl) * 1e3, "ms", (t_cold + t_te) * 1e3,
		  "eager melt + read 10%, cold");
	fflush(stdout);
	store_close(s);
	unlink(spath);
	unlink(plog);
	unlink(tpath);
	return 0;
fail:
	store_close(s);
	unlink(spath);
	return 1;
}

int main(int argc, char **argv)
{
	static const uint64_t sizes[] = { 256, 1024, 4096 };
	struct bu_results res;
	struct bu_args args;
	struct sysinfo si;
	struct statvfs vfs;
	double mc;
	int rc = 0;

	if (bu_parse_args(argc, argv, "bench_melt", &args))
		return 2;
	if (geteuid()) {
		printf("SKIP: needs root\n");
		return 77;
	}
	if (bu_results_init(&res, "bench_melt", args.json))
		return 1;
	mc = bu_memcpy_mibs();
	printf("bench_melt: eager and lazy melt (restore_group until the process runs; lazy: "
	       "until its pager has every page in), incompressible memory, store in %s\n",
	       args.dir);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t mib = (uint64_t)(sizes[i] * args.scale), b = mib * MIB;

		if (!mib)
			continue;
		/* the process, the bench's own page cache and the store */
		if (sysinfo(&si) == 0 && (uint64_t)si.freeram * si.mem_unit < b * 2 + 512 * MIB) {
			bu_note(&res, "%llu MiB skipped: %llu MiB of free memory",
				(unsigned long long)mib,
				(unsigned long long)si.freeram * si.mem_unit / MIB);
			continue;
		}
		if (statvfs(args.dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < b * 2) {
			bu_note(&res, "%llu MiB skipped: not enough disk in %s",
				(unsigned long long)mib, args.dir);
			continue;
		}
		rc |= one(&res, args.dir, mib, mc);
	}
	bu_note(&res, "for scale, CRIU 4.2 restores 256 MiB / 1 GiB / 4 GiB eagerly in "
		"205 / 673 / 2228 ms on a machine of this kind (issue 3)");
	return bu_results_finish(&res) || rc;
}
