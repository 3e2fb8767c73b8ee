/* restore_workload scenarios: the process itself: memory of every mapping kind,
 * registers, threads, signals, timers, a blocking sleep. */
#include "rw.h"

#include "pattern.h"

/* ---- mem: every mapping kind ---- */


static uint32_t data_var[1024] = { 1 };	/* .data */
static uint32_t bss_var[4096];		/* .bss */

static void *map_file(const char *name, size_t len, int flags, char c)
{
	char p[4096];
	char *buf = malloc(len);
	int fd;
	void *m;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	memset(buf, c, len);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		result(0, "create %s", name);
	free(buf);
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		result(0, "mmap %s", name);
	return m;
}

void mode_mem(void)
{
	volatile uint32_t stack_arr[4096];
	size_t pg = 4096;
	char *anon = mmap(NULL, 64 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *shared = mmap(NULL, 16 * pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *none = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *ro = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *sparse = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *dfork = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *fpriv = map_file("fpriv", 16 * pg, MAP_PRIVATE, 'A');
	char *fshared = map_file("fshared", 8 * pg, MAP_SHARED, 'B');
	char *heap = malloc(1 << 20);

	fill(anon, 64 * pg, 1);
	fill(shared, 16 * pg, 2);
	fill(none, 4 * pg, 3);
	mprotect(none, 4 * pg, PROT_NONE);
	fill(ro, 4 * pg, 4);
	mprotect(ro, 4 * pg, PROT_READ);
	for (int i = 0; i < 8; i++)
		fill(sparse + (size_t)i * (8 << 20), pg, 5 + i);
	fill(dfork, 4 * pg, 13);
	madvise(dfork, 4 * pg, MADV_DONTFORK);
	fill(fpriv, 8 * pg, 14);	/* pages 8..15 stay the file's 'A' */
	fill(fshared, 8 * pg, 15);
	fill(heap, 1 << 20, 16);
	fill(data_var, sizeof(data_var), 17);
	fill(bss_var, sizeof(bss_var), 18);
	for (size_t i = 0; i < 4096; i++)
		stack_arr[i] = pat(i, 19);
	touch("ready", NULL);
	wait_go();
	if (!check(anon, 64 * pg, 1))
		result(0, "anonymous private memory");
	if (!check(shared, 16 * pg, 2))
		result(0, "shared anonymous memory");
	if (mprotect(none, 4 * pg, PROT_READ) || !check(none, 4 * pg, 3))
		result(0, "PROT_NONE region");
	if (!check(ro, 4 * pg, 4))
		result(0, "read-only region");
	for (int i = 0; i < 8; i++) {
		if (!check(sparse + (size_t)i * (8 << 20), pg, 5 + i))
			result(0, "sparse region page %d", i);
		if (sparse[(size_t)i * (8 << 20) + 2 * pg] != 0)
			result(0, "sparse region hole %d not zero", i);
	}
	if (!check(dfork, 4 * pg, 13))
		result(0, "MADV_DONTFORK region");
	if (!check(fpriv, 8 * pg, 14))
		result(0, "modified pages of a private file mapping");
	for (size_t i = 8 * pg; i < 16 * pg; i++)
		if (fpriv[i] != 'A')
			result(0, "clean pages of a private file mapping");
	if (!check(fshared, 8 * pg, 15))
		result(0, "shared file mapping");
	if (!check(heap, 1 << 20, 16))
		result(0, "heap");
	if (!check(data_var, sizeof(data_var), 17) || !check(bss_var, sizeof(bss_var), 18))
		result(0, ".data/.bss");
	for (size_t i = 0; i < 4096; i++)
		if (stack_arr[i] != pat(i, 19))
			result(0, "stack");
	/* the heap keeps working: brk was restored */
	for (int i = 0; i < 64; i++) {
		char *p = malloc(256 << 10);
		if (!p)
			result(0, "malloc after melt");
		memset(p, i, 256 << 10);
	}
	result(1, NULL);
}

/* ---- regs: general and vector registers hold values across the melt ---- */

static volatile int regs_stop;

static void *regs_watch(void *arg)
{
	(void)arg;
	wait_go();
	regs_stop = 1;
	return NULL;
}

void mode_regs(void)
{
	static const uint64_t vin[8][4] __attribute__((aligned(32))) = {
		{ 0x0101010101010101, 0x1111111111111111, 0x2121212121212121, 0x3131313131313131 },
		{ 0x0202020202020202, 0x1212121212121212, 0x2222222222222222, 0x3232323232323232 },
		{ 0x0303030303030303, 0x1313131313131313, 0x2323232323232323, 0x3333333333333333 },
		{ 0x0404040404040404, 0x1414141414141414, 0x2424242424242424, 0x3434343434343434 },
		{ 0x0505050505050505, 0x1515151515151515, 0x2525252525252525, 0x3535353535353535 },
		{ 0x0606060606060606, 0x1616161616161616, 0x2626262626262626, 0x3636363636363636 },
		{ 0x0707070707070707, 0x1717171717171717, 0x2727272727272727, 0x3737373737373737 },
		{ 0x0808080808080808, 0x1818181818181818, 0x2828282828282828, 0x3838383838383838 },
	};
	uint64_t vout[8][4] __attribute__((aligned(32)));
	uint64_t g[4];
	pthread_t th;

	pthread_create(&th, NULL, regs_watch, NULL);
	touch("ready", NULL);
	__asm__ volatile(
		"vmovdqa 0(%[in]), %%ymm0\n\t"
		"vmovdqa 32(%[in]), %%ymm1\n\t"
		"vmovdqa 64(%[in]), %%ymm2\n\t"
		"vmovdqa 96(%[in]), %%ymm3\n\t"
		"vmovdqa 128(%[in]), %%ymm4\n\t"
		"vmovdqa 160(%[in]), %%ymm5\n\t"
		"vmovdqa 192(%[in]), %%ymm6\n\t"
		"vmovdqa 224(%[in]), %%ymm7\n\t"
		"movabs $0x1234567890abcdef, %%r12\n\t"
		"movabs $0x0fedcba987654321, %%r13\n\t"
		"movabs $0x5555aaaa5555aaaa, %%r14\n\t"
		"movabs $0xaaaa5555aaaa5555, %%r15\n\t"
		"1: pause\n\t"
		"cmpl $0, %[stop]\n\t"
		"je 1b\n\t"
		"vmovdqa %%ymm0, 0(%[out])\n\t"
		"vmovdqa %%ymm1, 32(%[out])\n\t"
		"vmovdqa %%ymm2, 64(%[out])\n\t"
		"vmovdqa %%ymm3, 96(%[out])\n\t"
		"vmovdqa %%ymm4, 128(%[out])\n\t"
		"vmovdqa %%ymm5, 160(%[out])\n\t"
		"vmovdqa %%ymm6, 192(%[out])\n\t"
		"vmovdqa %%ymm7, 224(%[out])\n\t"
		"movq %%r12, 0(%[g])\n\t"
		"movq %%r13, 8(%[g])\n\t"
		"movq %%r14, 16(%[g])\n\t"
		"movq %%r15, 24(%[g])\n\t"
		"vzeroupper\n\t"
		:
		: [in] "r"(vin), [out] "r"(vout), [g] "r"(g), [stop] "m"(regs_stop)
		: "r12", "r13", "r14", "r15", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
		  "xmm6", "xmm7", "memory", "cc");
	pthread_join(th, NULL);
	if (memcmp(vin, vout, sizeof(vin)))
		result(0, "vector registers ymm0-7 changed");
	if (g[0] != 0x1234567890abcdefull || g[1] != 0x0fedcba987654321ull ||
	    g[2] != 0x5555aaaa5555aaaaull || g[3] != 0xaaaa5555aaaa5555ull)
		result(0, "general registers r12-r15 changed");
	result(1, NULL);
}

/* ---- threads: 8 threads count, keep their tids ---- */

#define NTHREADS 8
static volatile uint64_t counts[NTHREADS];
static volatile pid_t tids[NTHREADS];

static void *counter(void *arg)
{
	size_t i = (size_t)arg;

	tids[i] = (pid_t)syscall(SYS_gettid);
	for (;;) {
		counts[i]++;
		if (counts[i] % 1024 == 0)
			sched_yield();
	}
	return NULL;
}

void mode_threads(void)
{
	pthread_t th[NTHREADS];
	uint64_t c0[NTHREADS];

	for (size_t i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, counter, (void *)i);
	while (1) {
		int all = 1;
		for (size_t i = 0; i < NTHREADS; i++)
			all &= counts[i] > 0;
		if (all)
			break;
		usleep(1000);
	}
	touch("ready", NULL);
	wait_go();
	for (size_t i = 0; i < NTHREADS; i++)
		c0[i] = counts[i];
	usleep(200000);
	for (size_t i = 0; i < NTHREADS; i++) {
		char p[64];
		if (counts[i] <= c0[i])
			result(0, "thread %zu stopped counting", i);
		snprintf(p, sizeof(p), "/proc/self/task/%d", (int)tids[i]);
		if (access(p, F_OK))
			result(0, "thread %zu lost its tid %d (tids %d %d %d)", i, (int)tids[i],
			       (int)tids[1], (int)tids[2], (int)tids[7]);
	}
	result(1, NULL);
}

/* ---- signals: handlers, masks, altstack, a pending signal ---- */

static volatile int usr1, usr2, usr1_on_alt;
static char altstack[65536];

static void on_usr1(int s)
{
	char here;
	(void)s;
	usr1++;
	usr1_on_alt = &here >= altstack && &here < altstack + sizeof(altstack);
}

static void on_usr2(int s)
{
	(void)s;
	usr2++;
}

void mode_signals(void)
{
	struct sigaction sa = { 0 };
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	sigset_t m, pend;

	sigaltstack(&ss, NULL);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sa.sa_flags = 0;
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGTERM, SIG_IGN);
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	sigprocmask(SIG_BLOCK, &m, NULL);
	kill(getpid(), SIGUSR2);	/* stays pending */
	touch("ready", NULL);
	wait_go();
	sigpending(&pend);
	if (!sigismember(&pend, SIGUSR2) || usr2)
		result(0, "SIGUSR2 is no longer pending");
	sigprocmask(SIG_UNBLOCK, &m, NULL);
	if (usr2 != 1)
		result(0, "pending SIGUSR2 not delivered after unblocking (%d)", usr2);
	raise(SIGUSR1);
	if (usr1 != 1 || !usr1_on_alt)
		result(0, "SIGUSR1 handler (ran %d, on altstack %d)", usr1, usr1_on_alt);
	sigaction(SIGTERM, NULL, &sa);
	if (sa.sa_handler != SIG_IGN)
		result(0, "SIGTERM is no longer ignored");
	result(1, NULL);
}

/* ---- itimer: still fires ---- */

static volatile int alarms;

static void on_alrm(int s)
{
	(void)s;
	alarms++;
}

void mode_itimer(void)
{
	struct itimerval it = { { 0, 50000 }, { 0, 50000 } };
	int a0;
	double t;

	signal(SIGALRM, on_alrm);
	setitimer(ITIMER_REAL, &it, NULL);
	touch("ready", NULL);
	wait_go();
	a0 = alarms;
	t = now();
	while (now() - t < 0.5)
		usleep(10000);
	if (alarms < a0 + 3)
		result(0, "the interval timer fired %d times in 0.5 s", alarms - a0);
	result(1, NULL);
}

/* ---- sleep: blocked in nanosleep at the freeze ---- */

void mode_sleep(void)
{
	struct timespec req = { 3, 0 }, rem;
	double t0 = now();

	touch("ready", NULL);
	while (nanosleep(&req, &rem) && errno == EINTR)
		req = rem;
	wait_go();
	if (now() - t0 < 2.95)
		result(0, "nanosleep ended after %.2f s of 3", now() - t0);
	result(1, NULL);
}
