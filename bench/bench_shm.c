/* bench_shm: snapshot, freeze and melt of memory shared between processes,
 * beside the same bytes held privately by one process.
 *
 * shared: a root and 3 children mapping one MAP_SHARED|MAP_ANONYMOUS
 * region of 256 MiB of pseudo-random bytes (one object: the snapshot
 * holds it once, melt makes it once and maps it 4 times). private: one
 * process with 256 MiB of the same kind of bytes, private. Each figure:
 * snap (stopped, durable), freeze (durable), eager melt (until all run).
 * Limits: memcpy of the same bytes (stopped, melt), disk write+fdatasync
 * of the same bytes (durable, freeze), and the private process for the
 * shared one (measured as bench_group.h says).
 *
 * usage (root): bench_shm [--dir DIR] [--json RESULTS] [--scale F] */
#define LOG_PREFIX "bench: "
#include "bench_util.h"
#include "bench_group.h"
#include "common/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB	(1ull << 20)
#define KIDS	3	/* the shared workload: a root and its KIDS children */

static uint64_t *filled(size_t len, int flags)
{
	uint64_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
	uint64_t x = 0x9e3779b97f4a7c15ull;

	if (m == MAP_FAILED)
		_exit(1);
	for (size_t i = 0; i < len / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		m[i] = x;
	}
	return m;
}

static __attribute__((noreturn)) void wait_here(int ready)
{
	if (write(ready, "r", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

/* The workload; its root once all its processes said ready. */
static pid_t start(int shared, size_t len)
{
	int p[2], n = shared ? KIDS + 1 : 1;
	pid_t pid;
	char c;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		bg_close_fds(p[1]);
		setsid();
		filled(len, shared ? MAP_SHARED : MAP_PRIVATE);
		for (int i = 0; shared && i < KIDS; i++)
			if (fork() == 0)
				wait_here(p[1]);
		wait_here(p[1]);
	}
	close(p[1]);
	for (int i = 0; i < n; i++)
		if (read(p[0], &c, 1) != 1) {
			close(p[0]);
			return -1;
		}
	close(p[0]);
	return pid;
}

static int measure(struct store *s, const char *name, int shared, size_t len, struct bg_figs *f)
{
	pid_t pid = start(shared, len);

	return pid < 0 ? -ECHILD : bg_measure(s, name, pid, f);
}

int main(int argc, char **argv)
{
	struct store_create_opts co = { .codec = CODEC_LZ4 };
	struct store_open_opts oo = { .no_autoclean = 1 };
	struct bg_figs fs, fp;
	struct bu_results res;
	struct bu_args args;
	struct store *s;
	char path[4096];
	size_t len;
	double mem, disk, ms_mem, ms_disk;
	int r;

	if (bu_parse_args(argc, argv, "bench_shm", &args))
		return 2;
	if (geteuid()) {
		printf("SKIP: needs root\n");
		return 77;
	}
	len = (size_t)(256 * args.scale) * MIB;
	if (len < 4 * MIB)
		len = 4 * MIB;
	if (bu_results_init(&res, "bench_shm", args.json))
		return 1;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mem = bu_memcpy_mibs();
	disk = bu_raw_write_mibs(args.dir, len);
	printf("bench_shm: limits memcpy %.0f MiB/s, disk write+fdatasync %.0f MiB/s (%s)\n", mem,
	       disk, args.dir);
	if (!(mem > 0) || !(disk > 0))
		return 1;
	ms_mem = (double)len / MIB / mem * 1e3;
	ms_disk = (double)len / MIB / disk * 1e3;
	co.size = len * 6 + 1024 * MIB;
	snprintf(path, sizeof(path), "%s/bench_shm.store.%d", args.dir, (int)getpid());
	unlink(path);
	r = store_create(path, &co);
	if (!r)
		r = store_open(path, &oo, &s);
	if (r) {
		fprintf(stderr, "store %s: %s\n", path, store_strerror(r));
		return 1;
	}
	r = measure(s, "private", 0, len, &fp);
	if (!r)
		r = measure(s, "shared", 1, len, &fs);
	store_close(s);
	unlink(path);
	if (r) {
		fprintf(stderr, "bench_shm: %s\n", strerror(-r));
		return 1;
	}
	bu_note(&res, "%zu MiB of random bytes: shared by %d processes (one object), or private "
		"to one", (size_t)(len / MIB), KIDS + 1);
	bu_report(&res, "private_snap_stopped_ms", "private: snap, stopped", fp.snap_stopped, "ms",
		  ms_mem, "memcpy of the same bytes");
	bu_report(&res, "shared_snap_stopped_ms", "shared: snap, stopped", fs.snap_stopped, "ms",
		  fp.snap_stopped, "the private process");
	bu_report(&res, "private_snap_durable_ms", "private: snap, durable", fp.snap_durable, "ms",
		  ms_disk, "disk write+fdatasync, same bytes");
	bu_report(&res, "shared_snap_durable_ms", "shared: snap, durable", fs.snap_durable, "ms",
		  fp.snap_durable, "the private process");
	bu_report(&res, "private_freeze_ms", "private: freeze, durable", fp.freeze_durable, "ms",
		  ms_disk, "disk write+fdatasync, same bytes");
	bu_report(&res, "shared_freeze_ms", "shared: freeze, durable", fs.freeze_durable, "ms",
		  fp.freeze_durable, "the private process");
	bu_report(&res, "private_melt_ms", "private: eager melt, running", fp.melt, "ms", ms_mem,
		  "memcpy of the same bytes");
	bu_report(&res, "shared_melt_ms", "shared: eager melt, all running", fs.melt, "ms", fp.melt,
		  "the private process");
	return bu_results_finish(&res);
}
