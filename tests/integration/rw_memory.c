/* restore_workload scenarios: memory that changes between snapshots, and
 * a lazy melt's memory used every way before it is paged in. */
#include "rw.h"

#include "pattern.h"

/* ---- incr: memory that changes between snapshots, on SIGUSR1 ---- */

#define INCR_AP 64
#define INCR_WX 8	/* pages of W: read-only at each snapshot */
#define INCR_FP 8	/* pages of F: a file mapped private and writable */

/* F's file: page i holds the pattern of generation 5 for 3000 + i. */
static uint8_t *incr_file_map(void)
{
	char path[4096];
	uint8_t page[4096], *f;
	int fd;

	snprintf(path, sizeof(path), "%s/fmap", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		result(0, "open %s", path);
	for (uint32_t i = 0; i < INCR_FP; i++) {
		incr_page(page, 3000 + i, 5);
		if (write(fd, page, sizeof(page)) != (ssize_t)sizeof(page))
			result(0, "write %s", path);
	}
	f = mmap(NULL, INCR_FP * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (f == MAP_FAILED)
		result(0, "mmap %s", path);
	return f;
}

void mode_incr(void)
{
	uint32_t gen[INCR_AP], wgen[INCR_WX], fgen[INCR_FP], cgen = 0;
	size_t cpages = 0;
	uint8_t *a, *b, *c = NULL, *w, *f;
	volatile uint8_t sink;
	sigset_t set;
	char name[16];
	int sig;

	/* One CPU: the kernel writes the CPU number into glibc's rseq area on
	 * return to user space, so a move between the test's two snapshots
	 * of one instant would show as a page that differs. */
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		result(0, "sched_setaffinity");
	a = mmap(NULL, INCR_AP * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b = mmap(NULL, 32 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED || b == MAP_FAILED)
		result(0, "mmap");
	for (uint32_t i = 0; i < INCR_AP; i++)
		incr_page(a + i * 4096, i, gen[i] = 1);
	memset(b, 0x5b, 32 * 4096);
	/* W: written only while made writable for a moment between two
	 * snapshots, read-only whenever one is taken (a JIT's W^X code) */
	w = mmap(NULL, INCR_WX * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w == MAP_FAILED)
		result(0, "mmap w");
	for (uint32_t i = 0; i < INCR_WX; i++)
		incr_page(w + i * 4096, 2000 + i, wgen[i] = 3);
	if (mprotect(w, INCR_WX * 4096, PROT_READ))
		result(0, "mprotect w");
	/* F: its pages are the file's until written; a copy written, dropped
	 * and read in again is the file's once more */
	f = incr_file_map();
	for (uint32_t i = 0; i < INCR_FP; i++)
		fgen[i] = 5;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	touch("ready", NULL);
	for (int r = 1; r <= 4; r++) {
		if (sigwait(&set, &sig))
			result(0, "sigwait");
		for (uint32_t i = (uint32_t)r % 4; i < INCR_AP; i += 4)
			incr_page(a + i * 4096, i, gen[i] = 10 + (uint32_t)r);
		if (mprotect(w, INCR_WX * 4096, PROT_READ | PROT_WRITE))
			result(0, "mprotect w writable");
		for (uint32_t i = (uint32_t)r % 2; i < INCR_WX; i += 2)
			incr_page(w + i * 4096, 2000 + i, wgen[i] = 20 + (uint32_t)r);
		if (mprotect(w, INCR_WX * 4096, PROT_READ))
			result(0, "mprotect w read-only");
		if (r == 1)
			incr_page(f + 1 * 4096, 3000 + 1, fgen[1] = 31);
		if (r == 2) {
			incr_page(f + 1 * 4096, 3000 + 1, 32);
			if (madvise(f + 1 * 4096, 4096, MADV_DONTNEED))
				result(0, "madvise f");
			sink = f[1 * 4096];	/* the file's page again */
			fgen[1] = 5;
			incr_page(f + 2 * 4096, 3000 + 2, fgen[2] = 32);
		}
		if (r == 3) {
			sink = f[3 * 4096];	/* read in: still the file's */
			incr_page(f + 4 * 4096, 3000 + 4, fgen[4] = 33);
		}
		if (r == 4)
			incr_page(f + 3 * 4096, 3000 + 3, fgen[3] = 34);
		(void)sink;
		if (r == 1 && munmap(b, 32 * 4096))
			result(0, "munmap");
		if (r == 2) {
			cpages = 16;
			c = mmap(NULL, cpages * 4096, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (c == MAP_FAILED)
				result(0, "mmap c");
			for (uint32_t i = 0; i < cpages; i++)
				incr_page(c + i * 4096, 1000 + i, cgen = 7);
		}
		if (r == 3) {
			if (madvise(a + 32 * 4096, 16 * 4096, MADV_DONTNEED))
				result(0, "madvise");
			for (uint32_t i = 32; i < 48; i++)
				gen[i] = INCR_ZERO;
		}
		if (r == 4) {
			c = mremap(c, cpages * 4096, 24 * 4096, MREMAP_MAYMOVE);
			if (c == MAP_FAILED)
				result(0, "mremap");
			for (uint32_t i = (uint32_t)cpages; i < 24; i++)
				incr_page(c + i * 4096, 1000 + i, cgen);
			cpages = 24;
		}
		snprintf(name, sizeof(name), "done%d", r);
		touch(name, NULL);
	}
	/* Asleep until told to check (after the melt): polling would change
	 * the stack between the snapshots the test compares. */
	if (sigwait(&set, &sig))
		result(0, "sigwait for the check");
	for (uint32_t i = 0; i < INCR_AP; i++)
		if (!incr_page_ok(a + i * 4096, i, gen[i]))
			result(0, "page %u of A is not generation %u after melt", i, gen[i]);
	for (uint32_t i = 0; i < cpages; i++)
		if (!incr_page_ok(c + i * 4096, 1000 + i, cgen))
			result(0, "page %u of the mremapped mapping is wrong after melt", i);
	for (uint32_t i = 0; i < INCR_FP; i++)
		if (!incr_page_ok(f + i * 4096, 3000 + i, fgen[i]))
			result(0, "page %u of F (a private file mapping) is not generation %u after "
			       "melt", i, fgen[i]);
	for (uint32_t i = 0; i < INCR_WX; i++)
		if (!incr_page_ok(w + i * 4096, 2000 + i, wgen[i]))
			result(0, "page %u of W (read-only at snapshots) is not generation %u after "
			       "melt", i, wgen[i]);
	result(1, NULL);
}

/* ---- churn: memory written all the time, snapshots taken meanwhile ----
 * Pages of A are rewritten with a new generation, ranges dropped with
 * MADV_DONTNEED and mapping C replaced, without pause. The generations
 * live in memory too, so a snapshot of one instant is self-consistent; a
 * missed write or a stale page shows after melt. What was in flight at the
 * instant (fly_*) may be anything and is not checked. */

#define CHURN_P 4096u
#define CHURN_C 8u

static volatile sig_atomic_t churn_stop;

static void churn_usr1(int s)
{
	(void)s;
	churn_stop = 1;
}

void mode_churn(void)
{
	static uint32_t gen[CHURN_P];
	static volatile uint32_t fly_lo, fly_hi, fly_c;
	uint32_t cgen = 1, cpages = CHURN_C;
	uint64_t x = 88172645463325252ull;
	uint8_t *a, *c;

	a = mmap(NULL, CHURN_P * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	c = mmap(NULL, cpages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED || c == MAP_FAILED)
		result(0, "mmap");
	for (uint32_t i = 0; i < CHURN_P; i++)
		incr_page(a + i * 4096, i, gen[i] = 1);
	for (uint32_t i = 0; i < cpages; i++)
		incr_page(c + i * 4096, 5000 + i, cgen);
	signal(SIGUSR1, churn_usr1);
	{
		char lay[160];

		snprintf(lay, sizeof(lay), "%p %p %p %p %u\n", (void *)gen, (void *)&fly_lo,
			 (void *)&fly_hi, (void *)a, CHURN_P);
		touch("layout", lay);
	}
	touch("ready", NULL);
	for (unsigned long it = 1; !churn_stop; it++) {
		uint32_t i;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		i = (uint32_t)(x % CHURN_P);
		fly_lo = i;
		fly_hi = i + 1;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		gen[i] = gen[i] == INCR_ZERO ? 1 : gen[i] + 1;
		incr_page(a + i * 4096, i, gen[i]);
		if (it % 64 == 0) {
			i = (uint32_t)((x >> 20) % (CHURN_P - 8));
			fly_lo = i;
			fly_hi = i + 8;
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			if (madvise(a + (size_t)i * 4096, 8 * 4096, MADV_DONTNEED))
				result(0, "madvise");
			for (uint32_t k = i; k < i + 8; k++)
				gen[k] = INCR_ZERO;
		}
		if (it % 512 == 0) {
			fly_c = 1;
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			if (munmap(c, cpages * 4096))
				result(0, "munmap");
			cpages = cpages == CHURN_C ? CHURN_C + 4 : CHURN_C;
			c = mmap(NULL, cpages * 4096, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (c == MAP_FAILED)
				result(0, "mmap c");
			cgen++;
			for (uint32_t k = 0; k < cpages; k++)
				incr_page(c + k * 4096, 5000 + k, cgen);
		}
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		fly_lo = fly_hi = 0;
		fly_c = 0;
		if (it % 16 == 0)
			usleep(200);
	}
	for (uint32_t i = 0; i < CHURN_P; i++)
		if ((i < fly_lo || i >= fly_hi) && !incr_page_ok(a + i * 4096, i, gen[i]))
			result(0, "page %u of A is not generation %u after melt", i, gen[i]);
	for (uint32_t k = 0; k < cpages && !fly_c; k++)
		if (!incr_page_ok(c + k * 4096, 5000 + k, cgen))
			result(0, "page %u of C is not generation %u after melt", k, cgen);
	result(1, NULL);
}

/* ---- lazyops: a lazy melt's memory not paged in yet, used every way ----
 * Regions of LZ_PAGES pages, each its own pattern. After the melt (with a
 * slowed pager, DIR/lazy present): threads fault the same pages at once, a
 * forked child reads one region, others are madvise(DONTNEED)d, mremapped
 * and munmapped before they came in. Regions are mapped highest first so
 * the pager, which brings pages in from low addresses up, reaches the ones
 * acted on last; mincore() proves they were still out. */

#define LZ_PAGES	4096u
#define LZ_LEN		((size_t)LZ_PAGES * 4096)
#define LZ_THREADS	8

enum { LZ_DONTNEED, LZ_REMAP, LZ_UNMAP, LZ_PLAIN, LZ_FORK, LZ_SAME, LZ_N };

static char *lz[LZ_N];
static pthread_barrier_t lz_bar;
static volatile int lz_bad;

static size_t resident(const void *p, size_t len)
{
	unsigned char v[LZ_PAGES];
	size_t n = 0;

	if (mincore((void *)p, len, v))
		return len / 4096;
	for (size_t i = 0; i < len / 4096; i++)
		n += v[i] & 1;
	return n;
}

static void *lz_same(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&lz_bar);
	/* every thread at once on the same pages, first touch for all */
	for (size_t k = 0; k < LZ_LEN; k += 4096 * 64)
		if (*(volatile uint32_t *)(lz[LZ_SAME] + k) != pat(k / 4, 100 + LZ_SAME))
			lz_bad = 1;
	if (!check(lz[LZ_SAME], LZ_LEN, 100 + LZ_SAME))
		lz_bad = 1;
	return NULL;
}

void mode_lazyops(void)
{
	pthread_t th[LZ_THREADS];
	size_t before[LZ_N];
	char *to;
	int lazy, st = 0;
	pid_t c;

	for (int i = 0; i < LZ_N; i++) {
		lz[i] = mmap(NULL, LZ_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			     -1, 0);
		if (lz[i] == MAP_FAILED)
			result(0, "mmap");
		fill(lz[i], LZ_LEN, 100 + (uint32_t)i);
	}
	to = mmap(NULL, LZ_LEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (to == MAP_FAILED)
		result(0, "mmap");
	touch("ready", NULL);
	wait_go();
	lazy = exists("lazy");
	for (int i = 0; i < LZ_N; i++)
		before[i] = resident(lz[i], LZ_LEN);
	/* same pages from every thread at once */
	pthread_barrier_init(&lz_bar, NULL, LZ_THREADS);
	for (int i = 0; i < LZ_THREADS; i++)
		pthread_create(&th[i], NULL, lz_same, NULL);
	for (int i = 0; i < LZ_THREADS; i++)
		pthread_join(th[i], NULL);
	if (lz_bad)
		result(0, "threads faulting the same pages read wrong data");
	/* a child reads a region its parent had not paged in */
	c = fork();
	if (c == 0)
		_exit(check(lz[LZ_FORK], LZ_LEN, 100 + LZ_FORK) ? 0 : 1);
	if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st))
		result(0, "forked child read wrong data (status %#x)", st);
	/* dropped before it came in: zeros, never the snapshot's bytes */
	madvise(lz[LZ_DONTNEED], LZ_LEN / 2, MADV_DONTNEED);
	for (size_t k = 0; k < LZ_LEN / 2; k += 4)
		if (*(uint32_t *)(lz[LZ_DONTNEED] + k))
			result(0, "DONTNEED half reads %#x at %zu", *(uint32_t *)(lz[LZ_DONTNEED] + k), k);
	{
		const uint32_t *w = (const uint32_t *)lz[LZ_DONTNEED];
		for (size_t i = LZ_LEN / 8; i < LZ_LEN / 4; i++)
			if (w[i] != pat(i, 100 + LZ_DONTNEED))
				result(0, "the kept half of the DONTNEED region differs at word %zu", i);
	}
	/* moved before it came in: the pages follow */
	if (mremap(lz[LZ_REMAP], LZ_LEN, LZ_LEN, MREMAP_MAYMOVE | MREMAP_FIXED, to) != to)
		result(0, "mremap: %s", strerror(errno));
	{
		const uint32_t *w = (const uint32_t *)to;
		for (size_t i = 0; i < LZ_LEN / 4; i++)
			if (w[i] != pat(i, 100 + LZ_REMAP))
				result(0, "remapped region differs at word %zu", i);
	}
	/* unmapped before it came in, mapped anew: zeros */
	munmap(lz[LZ_UNMAP] + LZ_LEN / 2, LZ_LEN / 2);
	if (mmap(lz[LZ_UNMAP] + LZ_LEN / 2, LZ_LEN / 2, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		result(0, "mmap again");
	for (size_t k = LZ_LEN / 2; k < LZ_LEN; k += 4)
		if (*(uint32_t *)(lz[LZ_UNMAP] + k))
			result(0, "re-mapped half reads non-zero at %zu", k);
	if (!check(lz[LZ_UNMAP], LZ_LEN / 2, 100 + LZ_UNMAP))
		result(0, "the kept half of the unmapped region differs");
	if (!check(lz[LZ_PLAIN], LZ_LEN, 100 + LZ_PLAIN))
		result(0, "plain region differs");
	/* a lazy run that found it all in already tested nothing */
	if (lazy && (before[LZ_DONTNEED] == LZ_PAGES || before[LZ_REMAP] == LZ_PAGES ||
		     before[LZ_UNMAP] == LZ_PAGES))
		result(0, "regions were in before they were used (%zu %zu %zu of %u pages): "
		       "nothing was left to page in", before[LZ_DONTNEED], before[LZ_REMAP],
		       before[LZ_UNMAP], LZ_PAGES);
	{
		char buf[160];
		snprintf(buf, sizeof(buf), "PASS in before use: dontneed %zu remap %zu unmap %zu "
			 "of %u\n", before[LZ_DONTNEED], before[LZ_REMAP], before[LZ_UNMAP], LZ_PAGES);
		touch("result", buf);
	}
	exit(0);
}
