/* bench_track: how much write tracking (userfaultfd write-protect in async
 * mode, what cryod keeps between snapshots) slows a program that writes
 * memory, beside the same program untracked. Issue 4's target: under 2%.
 *
 * Two parts.
 *
 * The fault. Every tracked page's first write after a scan is one
 * write-protect fault; nothing else of tracking runs in the program. Its
 * cost is measured here in this process (a uffd of our own, 64 MiB, each
 * page once), beside the cheapest fault the kernel has (a read that maps
 * the zero page) and a first touch (allocate and clear a page): the limit
 * is the minor fault. A VM whose page-table changes trap to its host makes
 * all of them slow alike.
 *
 * The program. A child writes 256 MiB over and over, in two styles: one
 * word per page (the worst case: each first write to a page after a scan
 * is a fault, for the least work) and whole pages (memset). Windows are
 * measured in pairs, untracked and tracked; a tracked window starts with
 * a scan that reports and re-protects every page (what a snapshot does),
 * so every page faults once in it: a window of S seconds is a snapshot
 * interval of S seconds. The rate is pages written per second of the
 * child's own CPU time (it stamps its thread CPU clock beside its count),
 * so other work on the machine does not show as tracking cost; the wall
 * rate is noted beside it. Windows: 1 s (three pairs, median), 10 s, and
 * with BENCH_TRACK_LONG=1 the 60 s of cryod's default interval (four
 * minutes more).
 *
 * usage (root): bench_track [--json RESULTS] [--scale F] */
#define LOG_PREFIX "bench: "
#include "bench_util.h"
#include "common/log.h"
#include "proc/dirty.h"
#include "proc/maps.h"
#include "proc/ptrace.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/userfaultfd.h>

#include "common/compat.h"	/* after <linux/fs.h> */

#define MIB (1ull << 20)
#define PAIRS 3
#define STAMP_EVERY 1024	/* pages between two CPU clock stamps */
#define FAULT_MIB 64
#define RING 1024		/* passes whose CPU time the child keeps */
#define AFTER 12		/* passes looked at after a scan */

/* What the child publishes: a consistent (pages, cpu_ns) is read with seq
 * even and unchanged across the read; pass_ns[k % RING] is the CPU time
 * of its pass k over the whole buffer, pass the passes completed. */
struct progress {
	volatile uint64_t seq, pages, cpu_ns;
	volatile uint64_t pass, pass_ns[RING];
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void child(size_t len, int whole, struct progress *pr)
{
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t x = 1, n = 0;

	if (m == MAP_FAILED)
		_exit(1);
	for (;;) {
		uint64_t p0 = thread_cpu_ns();

		for (size_t off = 0; off < len; off += 4096) {
			if (whole)
				memset(m + off, (int)x, 4096);
			else
				*(uint64_t *)(m + off) = x;
			x++;
			if (++n % STAMP_EVERY == 0) {
				pr->seq++;
				__atomic_signal_fence(__ATOMIC_SEQ_CST);
				pr->pages = n;
				pr->cpu_ns = thread_cpu_ns();
				__atomic_signal_fence(__ATOMIC_SEQ_CST);
				pr->seq++;
			}
		}
		pr->pass_ns[pr->pass % RING] = thread_cpu_ns() - p0;
		__atomic_store_n(&pr->pass, pr->pass + 1, __ATOMIC_RELEASE);
	}
}

static void snapshot(const struct progress *pr, uint64_t *pages, uint64_t *cpu)
{
	uint64_t s;

	do {
		s = __atomic_load_n(&pr->seq, __ATOMIC_ACQUIRE);
		*pages = pr->pages;
		*cpu = pr->cpu_ns;
	} while ((s & 1) || __atomic_load_n(&pr->seq, __ATOMIC_ACQUIRE) != s);
}

static long child_minflt(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	/* minflt is the 10th field; the 2nd (comm) may hold spaces */
	if (!fgets(buf, sizeof(buf), f) || !(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %lu", &v) != 1)
		v = 0;
	fclose(f);
	return (long)v;
}

/* Arm a tracker on pid, as a snapshot would (stopped for the injection). */
static int arm(pid_t pid, struct proc_dirty **out)
{
	struct proc_maps m = { 0 };
	struct proc_ctl *ctl;
	int r = proc_seize(pid, &ctl);

	if (r)
		return r;
	r = proc_maps_read(pid, true, &m);
	if (!r)
		r = proc_dirty_open(ctl, out);
	if (!r) {
		r = proc_dirty_register_maps(*out, &m, NULL, NULL, 0);
		if (r)
			proc_dirty_close(*out);
	}
	proc_maps_free(&m);
	(void)proc_release(ctl);
	return r;
}

struct rate {
	double cpu, wall;	/* pages per second of the child's CPU; of the clock */
	double pages;		/* pages written in the window */
	long faults;		/* the child's minor faults in the window */
	double scan_ms;		/* tracked: the CPU the passes after the scan took more */
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* After a scan that re-protected everything while the child was in pass
 * k0: the pass it was in and the next one take every fault; the passes
 * after them are ordinary. What the first two took more than two
 * ordinary ones (the median of the next ten) is tracking's cost for one
 * snapshot interval, measured within a fraction of a second. */
static double scan_cost_ms(const struct progress *pr, uint64_t k0)
{
	uint64_t v[AFTER], t0 = bu_now_ns();
	double first;

	while (__atomic_load_n(&pr->pass, __ATOMIC_ACQUIRE) < k0 + AFTER + 1) {
		if (bu_now_ns() - t0 > 20000000000ull)
			return -1;
		usleep(1000);
	}
	if (__atomic_load_n(&pr->pass, __ATOMIC_ACQUIRE) > k0 + RING - 1)
		return -1;	/* the ring went round: we looked too late */
	for (unsigned i = 0; i < AFTER; i++)
		v[i] = pr->pass_ns[(k0 + i) % RING];
	first = (double)v[0] + (double)v[1];
	qsort(v + 2, AFTER - 2, sizeof(v[0]), cmp_u64);
	return (first - 2.0 * (double)v[2 + (AFTER - 2) / 2]) / 1e6;
}

/* One window of secs; with d, re-protect everything first. */
static int window(struct proc_dirty *d, pid_t pid, const struct progress *pr, unsigned secs,
		  struct rate *rt)
{
	struct proc_range *runs = NULL;
	uint64_t p0, c0, p1, c1, t0, k0 = __atomic_load_n(&pr->pass, __ATOMIC_ACQUIRE);
	size_t n = 0;
	long f0;

	rt->scan_ms = 0;
	if (d) {
		if (proc_dirty_scan(d, 0, UINT64_MAX, &runs, &n))
			return -EIO;
		free(runs);
	}
	f0 = child_minflt(pid);
	snapshot(pr, &p0, &c0);
	t0 = bu_now_ns();
	if (d)
		rt->scan_ms = scan_cost_ms(pr, k0);
	{
		uint64_t left = secs * 1000000000ull - (bu_now_ns() - t0);

		if ((int64_t)left > 0)
			usleep((useconds_t)(left / 1000));
	}
	snapshot(pr, &p1, &c1);
	rt->wall = (double)(p1 - p0) / bu_secs(bu_now_ns() - t0);
	rt->cpu = c1 > c0 ? (double)(p1 - p0) / bu_secs(c1 - c0) : 0;
	rt->faults = child_minflt(pid) - f0;
	rt->pages = (double)(p1 - p0);
	return rt->cpu > 0 ? 0 : -EIO;
}

static int cmp_rate(const void *a, const void *b)
{
	double x = ((const struct rate *)a)->cpu, y = ((const struct rate *)b)->cpu;

	return x < y ? -1 : x > y;
}

/* Median tracked and untracked windows of secs over pairs; *spread: how
 * far apart the untracked ones were (the resolution of the window rates
 * here and now). */
static int measure(pid_t pid, const struct progress *pr, unsigned secs, int pairs,
		   struct rate *um, struct rate *tm, double *spread)
{
	struct rate u[PAIRS], t[PAIRS];
	int r = 0;

	for (int i = 0; i < pairs && !r; i++) {
		struct proc_dirty *d = NULL;

		r = window(NULL, pid, pr, secs, &u[i]);
		if (r)
			break;
		r = arm(pid, &d);
		if (r) {
			fprintf(stderr, "bench_track: cannot track pid %d: %s\n", (int)pid,
				strerror(-r));
			break;
		}
		r = window(d, pid, pr, secs, &t[i]);
		proc_dirty_close(d);	/* untracked again */
	}
	if (r)
		return r;
	qsort(u, (size_t)pairs, sizeof(u[0]), cmp_rate);
	qsort(t, (size_t)pairs, sizeof(t[0]), cmp_rate);
	*um = u[pairs / 2];
	*tm = t[pairs / 2];
	*spread = u[0].cpu > 0 ? u[pairs - 1].cpu / u[0].cpu - 1.0 : 0;
	return 0;
}

/* ---- the fault, in this process ---- */

/* Microseconds of our CPU per page of touching each page of m once (write
 * or read); CPU, not the clock: other work on the machine is not ours. */
static double touch_us(uint8_t *m, size_t len, int write)
{
	volatile uint8_t sink = 0;
	uint64_t t0 = thread_cpu_ns();

	for (size_t off = 0; off < len; off += 4096) {
		if (write)
			m[off] = 1;
		else
			sink += m[off];
	}
	(void)sink;
	return bu_secs(thread_cpu_ns() - t0) * 1e6 / (double)(len / 4096);
}

static uint8_t *fresh(size_t len)
{
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	(void)madvise(m, len, MADV_NOHUGEPAGE);	/* 4 KiB faults, like the child's */
	return m;
}

/* The write-protect fault alone: a uffd of our own (user faults only),
 * WP-async, a populated range protected by one scan, then written. */
static double wp_fault_us(size_t len)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	struct pm_scan_arg a = { .size = sizeof(a), .flags = PM_SCAN_WP_MATCHING,
				 .category_mask = PAGE_IS_WRITTEN,
				 .return_mask = PAGE_IS_WRITTEN };
	uint8_t *m = fresh(len);
	double us = -1;
	int uffd, pm = -1;

	if (!m)
		return -1;
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api))
		goto out;
	memset(m, 1, len);
	{
		struct uffdio_register reg = { .range = { (uint64_t)(uintptr_t)m, len },
					       .mode = UFFDIO_REGISTER_MODE_WP };

		if (ioctl(uffd, UFFDIO_REGISTER, &reg))
			goto out;
	}
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	a.start = (uint64_t)(uintptr_t)m;
	a.end = a.start + len;
	if (pm < 0 || ioctl(pm, PAGEMAP_SCAN, &a) < 0)
		goto out;
	us = touch_us(m, len, 1);
out:
	if (pm >= 0)
		close(pm);
	if (uffd >= 0)
		close(uffd);
	munmap(m, len);
	return us;
}

/* The cost of a zero-page read fault here (us), after reporting the
 * write-protect fault beside it; -1 if they cannot be measured. */
static double fault_costs(struct bu_results *res)
{
	size_t len = FAULT_MIB * MIB;
	uint8_t *z = fresh(len), *f = fresh(len);
	double zero, first, wp = wp_fault_us(len);

	if (!z || !f || wp < 0) {
		bu_note(res, "the fault costs could not be measured here");
		return -1;
	}
	zero = touch_us(z, len, 0);
	first = touch_us(f, len, 1);
	munmap(z, len);
	munmap(f, len);
	bu_report(res, "wp_fault_us", "write-protect fault (async), per page", wp, "us", zero,
		  "a zero-page read fault");
	bu_note(res, "a first touch (allocate, clear) costs %.2f us a page here", first);
	return zero;
}

static int one_style(struct bu_results *res, size_t len, int whole, const unsigned *secs,
		     size_t nsecs, double zero_us)
{
	struct progress *pr = mmap(NULL, sizeof(*pr), PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	const char *style = whole ? "whole pages" : "one word per page", *k = whole ? "page" : "word";
	char key[48], label[96];
	uint64_t p, c;
	pid_t pid;
	int r = 0, status;

	if (pr == MAP_FAILED)
		return -ENOMEM;
	pid = fork();
	if (pid == 0)
		child(len, whole, pr);
	if (pid < 0)
		return -errno;
	do {			/* past its first pass: memory populated */
		usleep(100000);
		snapshot(pr, &p, &c);
	} while (p < 2 * len / 4096);
	for (size_t w = 0; w < nsecs && !r; w++) {
		struct rate um, tm;
		double spread;

		r = measure(pid, pr, secs[w], secs[w] == 1 ? PAIRS : 1, &um, &tm, &spread);
		if (r)
			break;
		if (tm.scan_ms < 0) {
			bu_note(res, "%s, %u s: the passes after the scan were not seen in time",
				style, secs[w]);
			tm.scan_ms = 0;
		}
		if (w == 0) {
			snprintf(key, sizeof(key), "scan_cpu_%s_ms", k);
			snprintf(label, sizeof(label), "%zu MiB, %s: CPU the writes after a scan "
				 "took more", (size_t)(len / MIB), style);
			bu_report(res, key, label, tm.scan_ms, "ms", zero_us * (double)tm.faults / 1e3,
				  "as many zero-page read faults");
			bu_note(res, "%s: the three untracked 1 s windows were %.1f%% apart: the "
				"window rates cannot tell differences smaller than that", style,
				100.0 * spread);
		}
		snprintf(key, sizeof(key), "tracked_rate_%s_%us", k, secs[w]);
		snprintf(label, sizeof(label), "%zu MiB, %s, %u s: tracked", (size_t)(len / MIB),
			 style, secs[w]);
		bu_report(res, key, label, tm.cpu / 1e3, "kpage/cpu-s", um.cpu / 1e3,
			  "the same, untracked");
		bu_note(res, "%s, a scan every %u s: slowdown while tracked %.2f%% by the window "
			"rates, %.2f%% from the CPU the writes after the scan took more (%.1f ms, "
			"%ld faults, %.2f us each) (target under 2%%); by the clock %.0f vs %.0f "
			"kpage/s", style, secs[w], 100.0 * (1.0 - tm.cpu / um.cpu),
			tm.scan_ms / (10.0 * secs[w]), tm.scan_ms, tm.faults,
			tm.faults > 0 ? tm.scan_ms * 1e3 / (double)tm.faults : 0, tm.wall / 1e3,
			um.wall / 1e3);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	munmap(pr, sizeof(*pr));
	return r;
}


int main(int argc, char **argv)
{
	static const unsigned secs[] = { 1, 10, 60 };
	struct bu_results res;
	struct bu_args args;
	const char *lg = getenv("BENCH_TRACK_LONG");
	size_t len, nsecs = lg && *lg == '1' ? 3 : 2;
	double zero;
	int rc = 0;

	if (bu_parse_args(argc, argv, "bench_track", &args))
		return 2;
	if (geteuid()) {
		printf("SKIP: needs root\n");
		return 77;
	}
	if (bu_results_init(&res, "bench_track", args.json))
		return 1;
	zero = fault_costs(&res);
	len = (size_t)(256 * MIB * args.scale) & ~(size_t)4095;
	if (one_style(&res, len, 0, secs, nsecs, zero) ||
	    one_style(&res, len, 1, secs, nsecs, zero))
		rc = 1;
	if (nsecs < 3)
		bu_note(&res, "the 60 s window (cryod's default interval) runs with "
			"BENCH_TRACK_LONG=1");
	return bu_results_finish(&res) || rc;
}
