/* Eager melt of a process with 256 MiB, 1 GiB (and 4 GiB when memory and
 * disk allow) of touched memory: time from restore_group() to the process
 * running again, from a cold page cache and a warm one, beside memcpy
 * bandwidth and the disk's read bandwidth measured in the same run.
 *
 * Each figure is printed beside its limit and the previous run's figure
 * (bench/results/bench_melt.json via bench/run.sh).
 *
 * usage (root): bench_melt [--dir DIR] [--json RESULTS] [--scale F] */
#include "bench_util.h"

#include <errno.h>
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

static pid_t spawn(uint64_t bytes, uint64_t *addr)
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
			pause();
	}
	close(p[1]);
	if (read(p[0], addr, sizeof(*addr)) != sizeof(*addr)) {
		close(p[0]);
		return -1;
	}
	close(p[0]);
	return pid;
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

static int one(struct bu_results *res, const char *dir, uint64_t mib, double memcpy_mibs)
{
	uint64_t bytes = mib * MIB, addr;
	char spath[512];
	struct store_create_opts co = { .size = bytes * 2 + 512 * MIB };
	struct store *s = NULL;
	struct dump_opts dopt = { .freeze = true };
	struct dump_result dres;
	struct restore_opts ro = { .snap = STORE_SNAP_NEWEST };
	struct restore_result rr;
	double t_cold, t_warm, disk;
	pid_t pid;
	int ret, st;

	snprintf(spath, sizeof(spath), "%s/bench-melt-%d.store", dir, (int)getpid());
	unlink(spath);
	if ((ret = store_create(spath, &co)) || (ret = store_open(spath, NULL, &s))) {
		fprintf(stderr, "store %s: %s\n", spath, store_strerror(ret));
		return 1;
	}
	pid = spawn(bytes, &addr);
	if (pid < 0)
		goto fail;
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
	/* cold: the image comes from the disk */
	bu_drop_caches();
	t_cold = now();
	ret = restore_group(s, "bench", &ro, &rr);
	t_cold = now() - t_cold;
	if (ret || verify(pid, addr, bytes)) {
		fprintf(stderr, "melt (cold) failed or memory differs\n");
		kill(pid, SIGKILL);
		goto fail;
	}
	kill(pid, SIGKILL);
	wait_gone(pid);
	/* warm: the image is in the page cache */
	t_warm = now();
	ret = restore_group(s, "bench", &ro, &rr);
	t_warm = now() - t_warm;
	if (ret || verify(pid, addr, bytes)) {
		fprintf(stderr, "melt (warm) failed or memory differs\n");
		kill(pid, SIGKILL);
		goto fail;
	}
	kill(pid, SIGKILL);
	wait_gone(pid);
	{
		char key[48], label[64];
		double mib_b = (double)bytes / MIB;

		snprintf(key, sizeof(key), "melt_cold_ms_%llu", (unsigned long long)mib);
		snprintf(label, sizeof(label), "eager melt %llu MiB, cold cache", (unsigned long long)mib);
		bu_report(res, key, label, t_cold * 1e3, "ms", bytes / (disk * 1e6) * 1e3,
			  "reading the image from disk");
		snprintf(key, sizeof(key), "melt_warm_ms_%llu", (unsigned long long)mib);
		snprintf(label, sizeof(label), "eager melt %llu MiB, warm cache", (unsigned long long)mib);
		bu_report(res, key, label, t_warm * 1e3, "ms", mib_b / memcpy_mibs * 1e3,
			  "memcpy of the same bytes");
	}
	fflush(stdout);
	store_close(s);
	unlink(spath);
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
	printf("bench_melt: eager melt (restore_group until the process runs), incompressible "
	       "memory, store in %s\n", args.dir);
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
