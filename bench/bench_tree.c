/* bench_tree: snapshot, freeze and melt of a 64-process tree holding 1,000
 * fds in all, beside a single process with the same memory and fds.
 *
 * The tree: a root with 7 children with 8 children each (64 processes);
 * each process has 4 MiB of pseudo-random memory (256 MiB in all), a pipe
 * to its parent and to each child, and /dev/null open 10 times (~1,000
 * fds in all). Each runs a fresh image (exec of this program), not a fork
 * of the benchmark with its store buffers. The
 * single process: 256 MiB and 1,000 fds. Each figure: snap (stopped,
 * durable), freeze (durable), eager melt (until it runs), lazy melt (until
 * it runs, until its one pager has every page of every process in; the
 * processes sleep meanwhile: all of it is prefetch). Limits: memcpy
 * of the same bytes (stopped), disk write+fdatasync of the same bytes
 * (durable, freeze), and the tree beside the single process (measured
 * as bench_group.h says).
 *
 * usage (root): bench_tree [--dir DIR] [--json RESULTS] [--scale F] */
#define LOG_PREFIX "bench: "
#include "bench_util.h"
#include "bench_group.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB	(1ull << 20)
#define FANOUT	7	/* root's children; each has FANOUT + 1 */
#define NPROC	(1 + FANOUT + FANOUT * (FANOUT + 1))
#define NULLS	10	/* /dev/null fds per tree process */
#define SINGLE_FDS 1000

static void fill(size_t len, uint64_t seed)
{
	uint64_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t x = seed | 1;

	if (m == MAP_FAILED)
		_exit(1);
	for (size_t i = 0; i < len / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		m[i] = x;
	}
}

/* A child keeps only fds 0-2, *a and *b (moved to 3 and 4): not its
 * parent's pipes to earlier siblings nor its /dev/null fds, so the tree
 * holds ~1,000 fds in all. */
static void keep_only(int *a, int *b)
{
	int na = fcntl(*a, F_DUPFD, 1000), nb = fcntl(*b, F_DUPFD, 1001);

	if (na < 0 || nb < 0)
		_exit(1);
	syscall(SYS_close_range, 3u, 999u, 0u);
	if (dup2(na, 3) != 3 || dup2(nb, 4) != 4)
		_exit(1);
	syscall(SYS_close_range, 5u, ~0u, 0u);
	*a = 3;
	*b = 4;
}

/* One process of the tree: its memory and fds, then its children, then
 * "ready" on fd ready, then wait. */
static __attribute__((noreturn)) void member(size_t mem, int depth, int ready, uint64_t seed)
{
	int p[2];

	for (int i = 0; depth < 2 && i < FANOUT + depth; i++) {
		if (pipe(p))
			_exit(1);
		if (fork() == 0) {
			close(p[0]);
			keep_only(&ready, &p[1]);
			member(mem, depth + 1, ready, seed * 31 + (uint64_t)i + 1);
		}
		close(p[1]);	/* the parent keeps the read end: a pipe to each child */
	}
	/* after the forks: a child holds its own memory only */
	fill(mem, seed);
	for (int i = 0; i < NULLS; i++)
		if (open("/dev/null", O_RDONLY) < 0)
			_exit(1);
	if (write(ready, "r", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static __attribute__((noreturn)) void single(size_t mem, int ready)
{
	fill(mem, 7);
	for (int i = 3; i < SINGLE_FDS; i++)
		if (open("/dev/null", O_RDONLY) < 0)
			_exit(1);
	if (write(ready, "r", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

/* Start the workload; return its root once all n processes said ready. */
static pid_t start(int tree, size_t total, int n)
{
	char arg[32], fd[16];
	int p[2];
	pid_t pid;
	char c;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		/* nothing of ours: the store's fd would be captured as a file */
		bg_close_fds(p[1]);
		{
			int nul = open("/dev/null", O_RDWR);

			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			if (nul > 2)
				close(nul);
		}
		setsid();	/* bg_kill ends the session */
		/* a fresh image: a fork of ours would carry the store's buffers
		 * (~13 MiB of heap) into every one of the 64 processes */
		snprintf(arg, sizeof(arg), "%zu", total);
		snprintf(fd, sizeof(fd), "%d", p[1]);
		execl("/proc/self/exe", "bench_tree", "--workload", tree ? "tree" : "single", arg,
		      fd, (char *)NULL);
		_exit(127);
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

/* fds held by the process and every process under it */
static long count_fds(pid_t pid)
{
	char path[64], kids[4096];
	long n = 0;
	FILE *f;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path))) {
		struct dirent *de;

		while ((de = readdir(d)))
			n += de->d_name[0] != '.';
		closedir(d);
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	f = fopen(path, "re");
	if (f && fgets(kids, sizeof(kids), f))
		for (char *p = kids, *end; *p; p = end) {
			long k = strtol(p, &end, 10);

			if (end == p)
				break;
			n += count_fds((pid_t)k);
		}
	if (f)
		fclose(f);
	return n;
}

static int measure(struct store *s, const char *name, int tree, size_t total, long *fds,
		   struct bg_figs *f)
{
	pid_t pid = start(tree, total, tree ? NPROC : 1);
	int r;

	if (pid < 0)
		return -ECHILD;
	*fds = count_fds(pid);
	r = bg_measure(s, name, pid, f);
	return r ? r : bg_measure_lazy(s, name, f);
}

int main(int argc, char **argv)
{
	struct store_create_opts co = { .codec = CODEC_LZ4 };
	struct store_open_opts oo = { .no_autoclean = 1 };
	struct bg_figs ft, fs;
	long nft = 0, nfs = 0;
	struct bu_results res;
	struct bu_args args;
	struct store *s;
	char path[4096];
	size_t total;
	double mem, disk, ms_mem, ms_disk;
	int r;

	if (argc == 5 && !strcmp(argv[1], "--workload")) {
		total = strtoull(argv[3], NULL, 10);
		if (!strcmp(argv[2], "tree"))
			member(total / NPROC, 0, atoi(argv[4]), 1);
		single(total, atoi(argv[4]));
	}
	if (bu_parse_args(argc, argv, "bench_tree", &args))
		return 2;
	if (geteuid()) {
		printf("SKIP: needs root\n");
		return 77;
	}
	total = (size_t)(256 * args.scale) * MIB;
	if (total < NPROC * MIB)
		total = NPROC * MIB;
	if (bu_results_init(&res, "bench_tree", args.json))
		return 1;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mem = bu_memcpy_mibs();
	disk = bu_raw_write_mibs(args.dir, total);
	printf("bench_tree: limits memcpy %.0f MiB/s, disk write+fdatasync %.0f MiB/s (%s)\n",
	       mem, disk, args.dir);
	if (!(mem > 0) || !(disk > 0))
		return 1;
	ms_mem = (double)total / MIB / mem * 1e3;
	ms_disk = (double)total / MIB / disk * 1e3;
	co.size = total * 4 + 1024 * MIB;
	snprintf(path, sizeof(path), "%s/bench_tree.store.%d", args.dir, (int)getpid());
	unlink(path);
	r = store_create(path, &co);
	if (!r)
		r = store_open(path, &oo, &s);
	if (r) {
		fprintf(stderr, "store %s: %s\n", path, store_strerror(r));
		return 1;
	}
	r = measure(s, "single", 0, total, &nfs, &fs);
	if (!r)
		r = measure(s, "tree", 1, total, &nft, &ft);
	store_close(s);
	unlink(path);
	if (r) {
		fprintf(stderr, "bench_tree: %s\n", strerror(-r));
		return 1;
	}
	bu_note(&res, "%d processes, %ld fds (tree) vs 1 process, %ld fds; %zu MiB in all", NPROC,
		nft, nfs, (size_t)(total / MIB));
	bu_report(&res, "single_snap_stopped_ms", "single: snap, stopped", fs.snap_stopped, "ms",
		  ms_mem, "memcpy of the same bytes");
	bu_report(&res, "tree_snap_stopped_ms", "tree: snap, stopped", ft.snap_stopped, "ms",
		  fs.snap_stopped, "the single process");
	bu_report(&res, "single_snap_durable_ms", "single: snap, durable", fs.snap_durable, "ms",
		  ms_disk, "disk write+fdatasync, same bytes");
	bu_report(&res, "tree_snap_durable_ms", "tree: snap, durable", ft.snap_durable, "ms",
		  fs.snap_durable, "the single process");
	bu_report(&res, "single_freeze_ms", "single: freeze, durable", fs.freeze_durable, "ms",
		  ms_disk, "disk write+fdatasync, same bytes");
	bu_report(&res, "tree_freeze_ms", "tree: freeze, durable", ft.freeze_durable, "ms",
		  fs.freeze_durable, "the single process");
	bu_report(&res, "single_melt_ms", "single: eager melt, running", fs.melt, "ms", ms_mem,
		  "memcpy of the same bytes");
	bu_report(&res, "tree_melt_ms", "tree: eager melt, running", ft.melt, "ms", fs.melt,
		  "the single process");
	bu_report(&res, "single_lazy_run_ms", "single: lazy melt, running", fs.lazy_run, "ms",
		  fs.melt, "its eager melt");
	bu_report(&res, "single_lazy_in_ms", "single: lazy melt, all in", fs.lazy_in, "ms",
		  fs.melt, "its eager melt");
	bu_report(&res, "tree_lazy_run_ms", "tree: lazy melt, running", ft.lazy_run, "ms", ft.melt,
		  "its eager melt");
	bu_report(&res, "tree_lazy_in_ms", "tree: lazy melt, all in", ft.lazy_in, "ms", ft.melt,
		  "its eager melt");
	return bu_results_finish(&res);
}
