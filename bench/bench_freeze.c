/* bench_freeze: snapshot and freeze a process with N MiB of touched
 * memory, beside the limits measured in the same run.
 *
 * For each size (256 MiB, 1 GiB, and 4 GiB when memory allows; or the
 * sizes given as arguments, in MiB) a child touches every page with
 * pseudo-random words (incompressible: the worst case for the store), then:
 *   snap    dump_group(): stopped time, time to durable
 *   freeze  dump_group(freeze): time to durable (= stopped: the process
 *           waits for the commit, then is killed)
 * Limits, measured here first: memcpy bandwidth (one core) and disk
 * write+fdatasync bandwidth in the directory that holds the store.
 * Printed: each time, and the time the limit alone would take for the same
 * bytes (size / bandwidth) as a ratio. Not a test: it prints figures.
 *
 * usage: bench_freeze [MIB...]     dir: $CRYO_BENCH_DIR or /var/tmp */
#define LOG_PREFIX "bench: "
#include "common/log.h"
#include "dump/dump.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1ull << 20)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double memcpy_bw(void)
{
	size_t len = 256 * MIB;
	char *a = malloc(len), *b = malloc(len);
	double t, best = 0;

	if (!a || !b)
		return 0;
	memset(a, 1, len);
	memset(b, 2, len);
	for (int i = 0; i < 4; i++) {
		t = now_s();
		memcpy(b, a, len);
		t = now_s() - t;
		if (len / t > best)
			best = (double)len / t;
		a[i] = b[len - 1 - i];	/* keep the copies */
	}
	free(a);
	free(b);
	return best;
}

static double disk_bw(const char *dir)
{
	size_t chunk = 8 * MIB, total = 512 * MIB;
	char path[4096];
	char *buf = malloc(chunk);
	double t;
	int fd;

	snprintf(path, sizeof(path), "%s/bench_freeze.disk.%d", dir, (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || !buf) {
		free(buf);
		return 0;
	}
	for (size_t i = 0; i < chunk; i++)
		buf[i] = (char)(i * 2654435761u >> 13);
	t = now_s();
	for (size_t off = 0; off < total; off += chunk)
		if (write(fd, buf, chunk) != (ssize_t)chunk)
			break;
	fdatasync(fd);
	t = now_s() - t;
	close(fd);
	unlink(path);
	free(buf);
	return (double)total / t;
}

/* A child with mib MiB touched; returns its pid once ready. */
static pid_t spawn(uint64_t mib)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid == 0) {
		size_t len = mib * MIB;
		uint64_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				   -1, 0), x = 88172645463325252ull;

		if (m == MAP_FAILED)
			_exit(1);
		for (size_t i = 0; i < len / 8; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			m[i] = x;
		}
		close(p[0]);
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (pid < 0 || read(p[0], &c, 1) != 1) {
		close(p[0]);
		return -1;
	}
	close(p[0]);
	return pid;
}

static uint64_t mem_available_mib(void)
{
	char line[256];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb / 1024;
}

static int one_size(const char *dir, uint64_t mib, double mbw, double dbw)
{
	struct store_create_opts co = { .size = (mib * 3 + 1024) * MIB, .codec = CODEC_LZ4 };
	struct store_open_opts oo = { .no_autoclean = 1 };
	struct dump_opts snap = { 0 }, frz = { .freeze = true };
	struct dump_result rs, rf;
	char path[4096];
	struct store *s;
	double bytes = (double)mib * MIB;
	pid_t pid;
	int r, status;

	snprintf(path, sizeof(path), "%s/bench_freeze.store.%d", dir, (int)getpid());
	unlink(path);
	r = store_create(path, &co);
	if (!r)
		r = store_open(path, &oo, &s);
	if (r) {
		fprintf(stderr, "store %s: %s\n", path, store_strerror(r));
		return r;
	}
	pid = spawn(mib);
	if (pid < 0) {
		store_close(s);
		unlink(path);
		return -ECHILD;
	}
	r = dump_group(s, "bench", pid, &snap, &rs);
	if (!r)
		r = dump_group(s, "bench", pid, &frz, &rf);
	if (r) {
		fprintf(stderr, "dump of %" PRIu64 " MiB: %s\n", mib, strerror(-r));
		kill(pid, SIGKILL);
	}
	waitpid(pid, &status, 0);
	store_close(s);
	unlink(path);
	if (r)
		return r;
	printf("%6" PRIu64 " MiB  snap: stopped %8.1f ms (memcpy limit %7.1f ms, x%.1f), durable %8.1f ms\n",
	       mib, rs.stopped_ns / 1e6, bytes / mbw * 1e3, rs.stopped_ns / 1e9 / (bytes / mbw),
	       rs.total_ns / 1e6);
	printf("%6" PRIu64 " MiB  freeze: durable %8.1f ms (disk limit %7.1f ms, x%.1f), %.2f GB/s, stopped %8.1f ms\n",
	       mib, rf.total_ns / 1e6, bytes / dbw * 1e3, rf.total_ns / 1e9 / (bytes / dbw),
	       bytes / (rf.total_ns / 1e9) / 1e9, rf.stopped_ns / 1e6);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = getenv("CRYO_BENCH_DIR") ? getenv("CRYO_BENCH_DIR") : "/var/tmp";
	uint64_t sizes[8] = { 256, 1024, 4096 };
	size_t n = 3;
	double mbw, dbw;
	int rc = 0;

	if (argc > 1) {
		n = 0;
		for (int i = 1; i < argc && n < 8; i++)
			sizes[n++] = strtoull(argv[i], NULL, 10);
	}
	mbw = memcpy_bw();
	dbw = disk_bw(dir);
	printf("limits: memcpy %.2f GB/s, disk write+fdatasync %.2f GB/s (%s)\n", mbw / 1e9,
	       dbw / 1e9, dir);
	if (mbw <= 0 || dbw <= 0)
		return 1;
	for (size_t i = 0; i < n; i++) {
		/* the child's memory, the snap's copy and the page cache */
		if (mem_available_mib() < sizes[i] * 3 + 1024) {
			printf("%6" PRIu64 " MiB  skipped: only %" PRIu64 " MiB available\n", sizes[i],
			       mem_available_mib());
			continue;
		}
		if (one_size(dir, sizes[i], mbw, dbw))
			rc = 1;
	}
	return rc;
}
