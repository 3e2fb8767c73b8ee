/* zdtm-style workloads for the melt tests: `restore_workload MODE DIR`.
 * Each sets up its state, creates DIR/ready, waits for DIR/go (created by
 * the test after the freeze and melt), checks its state and writes "PASS"
 * or "FAIL: why" to DIR/result, then exits. It opens files only by path,
 * so it needs no fd of its own across the melt. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"

static const char *dir;

/* Written under a temporary name and renamed, so the test never reads a
 * file that exists but is still empty (a lazily melted workload may fault
 * between the create and the write). */
static void touch(const char *name, const char *text)
{
	char p[4096], tmp[4200];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	if (text && write(fd, text, strlen(text)) < 0)
		(void)0;
	close(fd);
	if (rename(tmp, p))
		unlink(tmp);
}

static int exists(const char *name)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

static void wait_go(void)
{
	while (!exists("go"))
		usleep(5000);
}

static __attribute__((noreturn)) void result(int ok, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	strcpy(buf, ok ? "PASS\n" : "FAIL: ");
	if (!ok) {
		va_start(ap, fmt);
		vsnprintf(buf + 6, sizeof(buf) - 8, fmt, ap);
		va_end(ap);
		strcat(buf, "\n");
	}
	touch("result", buf);
	exit(ok ? 0 : 1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- mem: every mapping kind ---- */

static void fill(void *p, size_t len, uint32_t seed)
{
	uint32_t *w = p;
	for (size_t i = 0; i < len / 4; i++)
		w[i] = pat(i, seed);
}

static int check(const void *p, size_t len, uint32_t seed)
{
	const uint32_t *w = p;
	for (size_t i = 0; i < len / 4; i++)
		if (w[i] != pat(i, seed))
			return 0;
	return 1;
}

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

static void mode_mem(void)
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

static void mode_regs(void)
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

static void mode_threads(void)
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

static void mode_signals(void)
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

static void mode_itimer(void)
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

static void mode_sleep(void)
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

/* ---- files: offsets, flags, a pipe with bytes in flight ---- */

static void mode_files(void)
{
	char p1[4096], p2[4096], buf[10000], got[16];
	int rw, app, ro, pp[2];
	struct stat st;

	snprintf(p1, sizeof(p1), "%s/data", dir);
	snprintf(p2, sizeof(p2), "%s/append", dir);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('a' + i % 26);
	rw = open(p1, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (rw < 0 || write(rw, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		result(0, "setup data file");
	lseek(rw, 4321, SEEK_SET);
	app = open(p2, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (app < 0 || write(app, "12345", 5) != 5)
		result(0, "setup append file");
	ro = open(p1, O_RDONLY);
	lseek(ro, 77, SEEK_SET);
	if (pipe(pp) || write(pp[1], "bytes in flight", 15) != 15)
		result(0, "setup pipe");
	touch("ready", NULL);
	wait_go();
	if (lseek(rw, 0, SEEK_CUR) != 4321 || read(rw, got, 4) != 4 || memcmp(got, buf + 4321, 4))
		result(0, "read-write file offset");
	if (lseek(ro, 0, SEEK_CUR) != 77 || (fcntl(ro, F_GETFL) & O_ACCMODE) != O_RDONLY)
		result(0, "read-only file offset or mode");
	if (!(fcntl(app, F_GETFL) & O_APPEND) || !(fcntl(app, F_GETFD) & FD_CLOEXEC))
		result(0, "O_APPEND / FD_CLOEXEC lost");
	if (write(app, "6", 1) != 1 || fstat(app, &st) || st.st_size != 6)
		result(0, "append after melt (size %lld)", (long long)st.st_size);
	fcntl(pp[0], F_SETFL, O_NONBLOCK);
	memset(got, 0, sizeof(got));
	if (read(pp[0], got, sizeof(got)) != 15 || memcmp(got, "bytes in flight", 15))
		result(0, "pipe contents: \"%.15s\"", got);
	if (write(pp[1], "x", 1) != 1 || read(pp[0], got, 1) != 1 || got[0] != 'x')
		result(0, "pipe ends are not connected");
	result(1, NULL);
}

/* ---- read: blocked in read() on a pipe at the freeze ---- */

static int rpipe[2];

static void *waker(void *arg)
{
	(void)arg;
	wait_go();
	if (write(rpipe[1], "wake", 4) != 4)
		result(0, "waker write");
	return NULL;
}

static void mode_read(void)
{
	pthread_t th;
	char got[8] = { 0 };
	ssize_t n;

	if (pipe(rpipe))
		result(0, "pipe");
	pthread_create(&th, NULL, waker, NULL);
	touch("ready", NULL);
	n = read(rpipe[0], got, sizeof(got));
	if (n != 4 || memcmp(got, "wake", 4))
		result(0, "read returned %zd \"%s\" (errno %d)", n, got, errno);
	result(1, NULL);
}

/* ---- sockets: eventfd, epoll, listeners and a bound datagram socket ---- */

static int listener(int family, int type, const char *unix_path, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = socket(family, type, 0), one = 1;

	memset(&ss, 0, sizeof(ss));
	if (fd < 0)
		result(0, "socket(%d, %d)", family, type);
	if (family == AF_UNIX) {
		struct sockaddr_un *u = (struct sockaddr_un *)&ss;

		u->sun_family = AF_UNIX;
		strncpy(u->sun_path, unix_path, sizeof(u->sun_path) - 1);
		if (unix_path[0] == '@')
			u->sun_path[0] = '\0';
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(unix_path));
	} else if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (type == SOCK_STREAM)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		/* Without it the port stays taken by the TIME_WAITs of
		 * talk()'s connections, after melt as after any restart. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)&ss, len))
		result(0, "bind (family %d): %s", family, strerror(errno));
	if (type != SOCK_DGRAM && listen(fd, 7))
		result(0, "listen");
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	if (port)
		*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
			      family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : 0);
	return fd;
}

/* Connect a client to the listener lfd (its own address), accept, and
 * pass a byte each way. */
static int talk(int lfd, const char *what)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int c, a;
	char b = 0;

	if (getsockname(lfd, (struct sockaddr *)&ss, &len))
		result(0, "%s: getsockname", what);
	c = socket(ss.ss_family, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&ss, len))
		result(0, "%s: connect after melt: %s", what, strerror(errno));
	a = accept(lfd, NULL, NULL);
	if (a < 0 || write(c, "p", 1) != 1 || read(a, &b, 1) != 1 || b != 'p' ||
	    write(a, "q", 1) != 1 || read(c, &b, 1) != 1 || b != 'q')
		result(0, "%s: accept/exchange after melt", what);
	close(a);
	close(c);
	return 0;
}

static int getint(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);

	getsockopt(fd, level, name, &v, &l);
	return v;
}

/* The data of each ready event, OR'ed; -1 on error. */
static long ready_mask(int ep)
{
	struct epoll_event ev[8];
	long m = 0;
	int n = epoll_wait(ep, ev, 8, 0);

	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++)
		m |= (long)ev[i].data.u64;
	return m;
}

static void mode_sockets(void)
{
	char upath[4096], apath[64];
	uint16_t port4, port6, uport;
	int efd, sem, pp[2], t4, t6, un, ab, udp, ep, c, fresh;
	struct epoll_event ev;
	struct sockaddr_un ua;
	socklen_t ulen = sizeof(ua);
	uint64_t v;
	struct sockaddr_in to = { .sin_family = AF_INET };
	char b[8];

	snprintf(upath, sizeof(upath), "%s/sock", dir);
	unlink(upath);
	snprintf(apath, sizeof(apath), "@cryo-test-%d", (int)getpid());
	efd = eventfd(5, EFD_NONBLOCK);
	sem = eventfd(3, EFD_NONBLOCK | EFD_SEMAPHORE);
	if (efd < 0 || sem < 0 || pipe2(pp, O_NONBLOCK))
		result(0, "setup eventfd/pipe");
	t4 = listener(AF_INET, SOCK_STREAM, NULL, &port4);
	t6 = listener(AF_INET6, SOCK_STREAM, NULL, &port6);
	un = listener(AF_UNIX, SOCK_STREAM, upath, NULL);
	ab = listener(AF_UNIX, SOCK_STREAM, apath, NULL);
	udp = listener(AF_INET, SOCK_DGRAM, NULL, &uport);
	fresh = socket(AF_UNIX, SOCK_SEQPACKET, 0);	/* neither bound nor connected */
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.u64 = 1;
	epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &ev);
	ev.data.u64 = 2;
	epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = 4;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, t4, &ev))
		result(0, "setup epoll");
	touch("ready", NULL);
	wait_go();

	if (ready_mask(ep) != 2)
		result(0, "epoll after melt: ready %ld, expected only the eventfd (2)", ready_mask(ep));
	if (read(efd, &v, 8) != 8 || v != 5)
		result(0, "eventfd count %llu, expected 5", (unsigned long long)v);
	for (int i = 0; i < 3; i++)
		if (read(sem, &v, 8) != 8 || v != 1)
			result(0, "semaphore eventfd read %d", i);
	if (read(sem, &v, 8) != -1 || errno != EAGAIN)
		result(0, "semaphore eventfd not drained after 3 reads");
	if (write(pp[1], "x", 1) != 1 || ready_mask(ep) != 1)
		result(0, "epoll does not see the pipe");
	ev.events = EPOLLIN;
	ev.data.u64 = 8;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, pp[0], &ev) || ready_mask(ep) != 8)
		result(0, "EPOLL_CTL_MOD on the pipe's own fd number: %s", strerror(errno));
	if (read(pp[0], b, 1) != 1)
		result(0, "pipe read");
	c = socket(AF_INET, SOCK_STREAM, 0);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	to.sin_port = htons(port4);
	if (connect(c, (struct sockaddr *)&to, sizeof(to)) || ready_mask(ep) != 4)
		result(0, "epoll does not see a connection on the tcp listener");
	close(c);
	close(accept(t4, NULL, NULL));
	talk(t4, "tcp4");
	talk(t6, "tcp6");
	talk(un, "unix path");
	talk(ab, "unix abstract");
	if (getint(fresh, SOL_SOCKET, SO_TYPE) != SOCK_SEQPACKET ||
	    getsockname(fresh, (struct sockaddr *)&ua, &ulen) || ulen != sizeof(sa_family_t))
		result(0, "the unbound unix socket did not come back unbound, seqpacket");
	if (getint(t4, SOL_SOCKET, SO_REUSEADDR) != 1 || getint(t4, IPPROTO_TCP, TCP_NODELAY) != 1 ||
	    getint(t6, IPPROTO_IPV6, IPV6_V6ONLY) != 1 || !getint(t4, SOL_SOCKET, SO_ACCEPTCONN))
		result(0, "socket options lost");
	to.sin_port = htons(uport);
	if (sendto(udp, "u", 1, 0, (struct sockaddr *)&to, sizeof(to)) != 1 ||
	    recv(udp, b, 1, 0) != 1 || b[0] != 'u')
		result(0, "udp socket not back on port %u", uport);
	result(1, NULL);
}

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

static void mode_incr(void)
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

static void mode_churn(void)
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

static void mode_lazyops(void)
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

/* ---- fdkinds: timerfd and signalfd ----
 * A one-shot timerfd 3 s out, a periodic one (50 ms) never read, and a
 * signalfd for SIGUSR1/SIGUSR2 with SIGUSR2 pending at the freeze. After
 * melt: the one-shot still has time left (no more than it had) and no
 * interval; the periodic one has expirations to read and its interval; the
 * signalfd reads the pending SIGUSR2, then a SIGUSR1 sent after melt. */

static void mode_fdkinds(void)
{
	struct itimerspec once = { .it_value = { 3, 0 } }, per = { { 0, 50000000 }, { 0, 50000000 } };
	struct itimerspec now;
	struct signalfd_siginfo si;
	uint64_t ticks = 0;
	sigset_t m;
	int t1, t2, sfd;

	t1 = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	t2 = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	sigaddset(&m, SIGUSR2);
	sigprocmask(SIG_BLOCK, &m, NULL);
	sfd = signalfd(-1, &m, SFD_NONBLOCK);
	if (t1 < 0 || t2 < 0 || sfd < 0 || timerfd_settime(t1, 0, &once, NULL) ||
	    timerfd_settime(t2, 0, &per, NULL) || raise(SIGUSR2))
		result(0, "setup");
	usleep(200000);		/* a few expirations of t2 unread */
	touch("ready", NULL);
	wait_go();
	if (timerfd_gettime(t1, &now) || (!now.it_value.tv_sec && !now.it_value.tv_nsec) ||
	    now.it_value.tv_sec >= 3 || now.it_interval.tv_sec || now.it_interval.tv_nsec)
		result(0, "one-shot timerfd after melt: %ld.%09ld left, interval %ld.%09ld",
		       (long)now.it_value.tv_sec, now.it_value.tv_nsec,
		       (long)now.it_interval.tv_sec, now.it_interval.tv_nsec);
	if (read(t2, &ticks, sizeof(ticks)) != sizeof(ticks) || ticks < 1 ||
	    timerfd_gettime(t2, &now) || now.it_interval.tv_nsec != 50000000)
		result(0, "periodic timerfd after melt: %llu expirations",
		       (unsigned long long)ticks);
	if (read(sfd, &si, sizeof(si)) != sizeof(si) || si.ssi_signo != SIGUSR2)
		result(0, "signalfd after melt: the pending SIGUSR2 is not there");
	kill(getpid(), SIGUSR1);
	if (read(sfd, &si, sizeof(si)) != sizeof(si) || si.ssi_signo != SIGUSR1)
		result(0, "signalfd after melt: SIGUSR1 sent after melt not read");
	result(1, NULL);
}

/* ---- unixconn: connected unix sockets with messages queued ----
 * Queued at the freeze: both ways on a stream socketpair, three records on
 * a seqpacket pair, two datagrams on a dgram pair, bytes then the sender's
 * shutdown on a stream pair, a peer that closed after writing, and a
 * connection accepted from a named listener. After melt each is read back
 * exactly (boundaries kept), and each pair still talks. */

static int uc_recv(int fd, const char *want)
{
	char buf[256];
	size_t n = strlen(want);
	ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	return r == (ssize_t)n && !memcmp(buf, want, n);
}

static int uc_talks(int a, int b)
{
	return send(a, "ping", 4, 0) == 4 && uc_recv(b, "ping") && send(b, "pong", 4, 0) == 4 &&
	       uc_recv(a, "pong");
}

static void mode_unixconn(void)
{
	int st[2], sq[2], dg[2], sh[2], gone[2], lsn, cli, acc;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char buf[64];

	snprintf(a.sun_path, sizeof(a.sun_path), "%s/uc.sock", dir);
	unlink(a.sun_path);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq) ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) || socketpair(AF_UNIX, SOCK_STREAM, 0, sh) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, gone))
		result(0, "socketpair");
	lsn = socket(AF_UNIX, SOCK_STREAM, 0);
	cli = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(lsn, (struct sockaddr *)&a, sizeof(a)) || listen(lsn, 4) ||
	    connect(cli, (struct sockaddr *)&a, sizeof(a)) || (acc = accept(lsn, NULL, NULL)) < 0)
		result(0, "named connection");
	if (send(st[0], "abc", 3, 0) != 3 || send(st[1], "xyz", 3, 0) != 3 ||
	    send(sq[0], "m1", 2, 0) != 2 || send(sq[0], "mm2", 3, 0) != 3 ||
	    send(sq[0], "mmm3", 4, 0) != 4 || send(dg[1], "d1", 2, 0) != 2 ||
	    send(dg[1], "dd2", 3, 0) != 3 || send(sh[0], "bye", 3, 0) != 3 ||
	    shutdown(sh[0], SHUT_WR) || send(gone[1], "last words", 10, 0) != 10 ||
	    send(cli, "hello", 5, 0) != 5)
		result(0, "queueing");
	close(gone[1]);
	touch("ready", NULL);
	wait_go();
	if (!uc_recv(st[1], "abc") || !uc_recv(st[0], "xyz") || !uc_talks(st[0], st[1]))
		result(0, "stream pair: queued bytes or talk after melt");
	if (!uc_recv(sq[1], "m1") || !uc_recv(sq[1], "mm2") || !uc_recv(sq[1], "mmm3") ||
	    !uc_talks(sq[0], sq[1]))
		result(0, "seqpacket pair: records after melt");
	if (!uc_recv(dg[0], "d1") || !uc_recv(dg[0], "dd2") || !uc_talks(dg[0], dg[1]))
		result(0, "dgram pair: datagrams after melt");
	if (!uc_recv(sh[1], "bye") || recv(sh[1], buf, sizeof(buf), MSG_DONTWAIT) != 0 ||
	    send(sh[0], "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE)
		result(0, "shutdown pair: bytes, then end of file, and no more sending");
	if (!uc_recv(gone[0], "last words") || recv(gone[0], buf, sizeof(buf), MSG_DONTWAIT) != 0 ||
	    send(gone[0], "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE)
		result(0, "departed peer: its last words, then end of file, then EPIPE");
	if (!uc_recv(acc, "hello") || !uc_talks(cli, acc))
		result(0, "accepted connection after melt");
	result(1, NULL);
}

/* ---- fifo: named pipes ----
 * At the freeze: a FIFO with both ends open and bytes in it; one opened
 * read-write with bytes; one whose writer left (bytes, then end of file);
 * one whose reader left (EPIPE); one unlinked with bytes in it; one whose
 * path the test removes before each melt (made again there); 200 KB in a
 * FIFO grown to 256 KB. After melt each reads back what it held, each
 * path is the FIFO it was (same inode but the one made again), and the
 * ends still talk. */

#define FF_BIG	(200 * 1024)

static int ff_open(const char *name, int flags, char *path, size_t n)
{
	snprintf(path, n, "%s/%s", dir, name);
	return open(path, flags | O_NONBLOCK);
}

/* Reads exactly want (a blocking fd waits at most a second for it). */
static int ff_reads(int fd, const char *want, size_t n)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	char buf[256];
	ssize_t r;

	if (poll(&pf, 1, 1000) != 1)
		return 0;
	r = read(fd, buf, sizeof(buf));

	return r == (ssize_t)n && !memcmp(buf, want, n);
}

static void mode_fifo(void)
{
	static const char *names[] = { "both.fifo", "rdwr.fifo", "nowriter.fifo", "noreader.fifo",
				       "deleted.fifo", "gone.fifo", "big.fifo" };
	char p[7][4096];
	int br, bw, rw, nw, nr, dr, dw, gr, gw, gr2, bigr, bigw, tmp;
	struct stat st[7], now;
	char *big = malloc(FF_BIG), *got = malloc(FF_BIG);
	size_t off = 0;

	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < 7; i++) {
		snprintf(p[i], sizeof(p[i]), "%s/%s", dir, names[i]);
		unlink(p[i]);
		if (mkfifo(p[i], 0640))
			result(0, "mkfifo %s", names[i]);
	}
	br = ff_open(names[0], O_RDONLY, p[0], sizeof(p[0]));
	bw = ff_open(names[0], O_WRONLY, p[0], sizeof(p[0]));
	rw = ff_open(names[1], O_RDWR, p[1], sizeof(p[1]));
	nw = ff_open(names[2], O_RDONLY, p[2], sizeof(p[2]));
	tmp = ff_open(names[2], O_WRONLY, p[2], sizeof(p[2]));
	if (br < 0 || bw < 0 || rw < 0 || nw < 0 || tmp < 0 || write(bw, "both ends", 9) != 9 ||
	    write(rw, "read-write", 10) != 10 || write(tmp, "last words", 10) != 10)
		result(0, "setup fifos");
	close(tmp);
	tmp = ff_open(names[3], O_RDONLY, p[3], sizeof(p[3]));
	nr = ff_open(names[3], O_WRONLY, p[3], sizeof(p[3]));
	close(tmp);
	dr = ff_open(names[4], O_RDONLY, p[4], sizeof(p[4]));
	dw = ff_open(names[4], O_WRONLY, p[4], sizeof(p[4]));
	gr = ff_open(names[5], O_RDONLY, p[5], sizeof(p[5]));
	gw = ff_open(names[5], O_WRONLY, p[5], sizeof(p[5]));
	bigr = ff_open(names[6], O_RDONLY, p[6], sizeof(p[6]));
	bigw = ff_open(names[6], O_WRONLY, p[6], sizeof(p[6]));
	if (nr < 0 || dr < 0 || dw < 0 || gr < 0 || gw < 0 || bigr < 0 || bigw < 0 ||
	    write(dw, "unlinked", 8) != 8 || write(gw, "made again", 10) != 10 ||
	    fcntl(bigw, F_SETPIPE_SZ, 256 * 1024) < 256 * 1024)
		result(0, "setup fifos (2)");
	for (size_t i = 0; i < FF_BIG; i++)
		big[i] = (char)(i * 7 + i / 4096);
	if (write(bigw, big, FF_BIG) != FF_BIG)
		result(0, "filling the big fifo");
	/* blocking again: melt must give each end its own status flags */
	fcntl(br, F_SETFL, 0);
	for (int i = 0; i < 7; i++)
		if (stat(p[i], &st[i]))
			result(0, "stat %s", names[i]);
	unlink(p[4]);
	touch("ready", NULL);
	wait_go();

	if (fcntl(br, F_GETFL) & O_NONBLOCK || !(fcntl(bw, F_GETFL) & O_NONBLOCK) ||
	    (fcntl(rw, F_GETFL) & O_ACCMODE) != O_RDWR || (fcntl(nr, F_GETFL) & O_ACCMODE) != O_WRONLY)
		result(0, "fifo status flags or access modes changed");
	for (int i = 0; i < 7; i++) {
		if (i == 4)
			continue;
		if (stat(p[i], &now) || !S_ISFIFO(now.st_mode) || (now.st_mode & 07777) != 0640 ||
		    (i != 5 && now.st_ino != st[i].st_ino))
			result(0, "%s is not the FIFO it was (mode %o)", names[i], now.st_mode);
	}
	if (!ff_reads(br, "both ends", 9) || write(bw, "again", 5) != 5 || !ff_reads(br, "again", 5))
		result(0, "fifo with both ends: bytes in flight, then talk");
	if (!ff_reads(rw, "read-write", 10) || write(rw, "x", 1) != 1 || !ff_reads(rw, "x", 1))
		result(0, "read-write fifo");
	if (!ff_reads(nw, "last words", 10) || read(nw, got, 1) != 0)
		result(0, "fifo whose writer left: its bytes, then end of file");
	if (write(nr, "x", 1) != -1 || errno != EPIPE)
		result(0, "fifo whose reader left: a write must fail with EPIPE");
	if (fstat(dr, &now) || !S_ISFIFO(now.st_mode) || now.st_nlink != 0 ||
	    !ff_reads(dr, "unlinked", 8) || write(dw, "y", 1) != 1 || !ff_reads(dr, "y", 1))
		result(0, "unlinked fifo");
	if (!ff_reads(gr, "made again", 10) || (gr2 = open(p[5], O_WRONLY | O_NONBLOCK)) < 0 ||
	    write(gr2, "z", 1) != 1 || !ff_reads(gr, "z", 1))
		result(0, "fifo whose path was gone at melt: bytes, and the path reaches it");
	if (fcntl(bigr, F_GETPIPE_SZ) < 256 * 1024)
		result(0, "big fifo lost its size (%d)", fcntl(bigr, F_GETPIPE_SZ));
	while (off < FF_BIG) {
		ssize_t n = read(bigr, got + off, FF_BIG - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off != FF_BIG || memcmp(got, big, FF_BIG))
		result(0, "big fifo: %zu of %d bytes back", off, FF_BIG);
	result(1, NULL);
}

/* ---- inotify: watches with their wd numbers ----
 * wd 1: directory a (IN_CREATE|IN_DELETE); wd 2 removed (a gap); wd 3: file
 * f (IN_MODIFY); wds 4-8 added and removed; wd 9: directory c (IN_CREATE,
 * IN_ONESHOT); wd 10: directory gone, which the test removes before each
 * melt; wd 11: a file deleted while watched (kept open). An event queued
 * at the freeze is not saved (docs/fds.md). After melt: IN_IGNORED for 10
 * and 11; events on a, f, c arrive under wds 1, 3, 9 (c's once); the next
 * watch is wd 12. */

struct in_ev {
	int wd;
	uint32_t mask;
	char name[64];
};

/* Every event queued now (the fd is non-blocking). */
static int in_read(int fd, struct in_ev *ev, int max)
{
	char buf[4096] __attribute__((aligned(8)));
	int n = 0;
	ssize_t len;

	while ((len = read(fd, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + len && n < max;) {
			struct inotify_event *e = (struct inotify_event *)p;

			ev[n].wd = e->wd;
			ev[n].mask = e->mask;
			snprintf(ev[n].name, sizeof(ev[n].name), "%s", e->len ? e->name : "");
			n++;
			p += sizeof(*e) + e->len;
		}
	return n;
}

static int in_has(const struct in_ev *ev, int n, int wd, uint32_t mask, const char *name)
{
	for (int i = 0; i < n; i++)
		if (ev[i].wd == wd && (ev[i].mask & mask) && !strcmp(ev[i].name, name))
			return 1;
	return 0;
}

static void in_path(char *p, size_t n, const char *name)
{
	snprintf(p, n, "%s/%s", dir, name);
}

static void mode_inotify(void)
{
	char a[4096], b[4096], c[4096], f[4096], g[4096], d[4096], p[4200];
	struct in_ev ev[64];
	int in, wd[6], held, n;

	in_path(a, sizeof(a), "a");
	in_path(b, sizeof(b), "b");
	in_path(c, sizeof(c), "c");
	in_path(f, sizeof(f), "f");
	in_path(g, sizeof(g), "gone");
	in_path(d, sizeof(d), "deleted");
	mkdir(a, 0755);
	mkdir(b, 0755);
	mkdir(c, 0755);
	mkdir(g, 0755);
	close(open(f, O_CREAT | O_WRONLY, 0644));
	held = open(d, O_CREAT | O_RDWR, 0644);
	in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (in < 0 || held < 0)
		result(0, "inotify_init1");
	wd[0] = inotify_add_watch(in, a, IN_CREATE | IN_DELETE);
	wd[1] = inotify_add_watch(in, b, IN_CREATE);
	inotify_rm_watch(in, wd[1]);
	wd[2] = inotify_add_watch(in, f, IN_MODIFY);
	for (int i = 0; i < 5; i++)
		inotify_rm_watch(in, inotify_add_watch(in, b, IN_CREATE));
	wd[3] = inotify_add_watch(in, c, IN_CREATE | IN_ONESHOT);
	wd[4] = inotify_add_watch(in, g, IN_CREATE);
	wd[5] = inotify_add_watch(in, d, IN_MODIFY);
	if (wd[0] != 1 || wd[2] != 3 || wd[3] != 9 || wd[4] != 10 || wd[5] != 11)
		result(0, "setup: wds %d %d %d %d %d", wd[0], wd[2], wd[3], wd[4], wd[5]);
	unlink(d);
	in_read(in, ev, 64);	/* the IN_IGNOREDs of the removals */
	snprintf(p, sizeof(p), "%s/before", a);
	close(open(p, O_CREAT | O_WRONLY, 0644));	/* queued at the freeze: lost */
	unlink(p);
	touch("ready", NULL);
	wait_go();

	if (!(fcntl(in, F_GETFL) & O_NONBLOCK) || !(fcntl(in, F_GETFD) & FD_CLOEXEC))
		result(0, "inotify fd flags");
	n = in_read(in, ev, 64);
	/* exactly these: nothing of the gap fillers; the events queued at
	 * the freeze are not saved */
	if (n != 2 || !in_has(ev, n, 10, IN_IGNORED, "") || !in_has(ev, n, 11, IN_IGNORED, ""))
		result(0, "after melt: %d events (first wd %d mask %#x), not IN_IGNORED for wds 10 "
		       "and 11 only", n, n ? ev[0].wd : 0, n ? ev[0].mask : 0);
	snprintf(p, sizeof(p), "%s/new", a);
	close(open(p, O_CREAT | O_WRONLY, 0644));
	unlink(p);
	if ((held = open(f, O_WRONLY)) < 0 || write(held, "x", 1) != 1)
		result(0, "writing f");
	close(held);
	snprintf(p, sizeof(p), "%s/one", c);
	close(open(p, O_CREAT | O_WRONLY, 0644));
	unlink(p);	/* an earlier melt of the same snapshot must find none */
	snprintf(p, sizeof(p), "%s/two", c);
	close(open(p, O_CREAT | O_WRONLY, 0644));
	unlink(p);
	n = in_read(in, ev, 64);
	if (!in_has(ev, n, 1, IN_CREATE, "new") || !in_has(ev, n, 1, IN_DELETE, "new"))
		result(0, "no IN_CREATE/IN_DELETE of a/new under wd 1 (%d events)", n);
	if (!in_has(ev, n, 3, IN_MODIFY, ""))
		result(0, "no IN_MODIFY of f under wd 3");
	if (!in_has(ev, n, 9, IN_CREATE, "one") || in_has(ev, n, 9, IN_CREATE, "two") ||
	    !in_has(ev, n, 9, IN_IGNORED, ""))
		result(0, "the one-shot watch of c (wd 9): once, then IN_IGNORED");
	if ((n = inotify_add_watch(in, b, IN_CREATE)) != 12)
		result(0, "the next watch is wd %d, not 12", n);
	result(1, NULL);
}

/* ---- tree: a process tree with what its processes share ----
 *
 *   root ── A   (root's group; reads pipe p1 from root, writes p2 to B)
 *        ├─ B   (its own process group) ── C (in B's group)
 *        ├─ D   (its own session; pdeath signal SIGUSR1)
 *        ├─ Z1  (a zombie: exited with 7, not waited for)
 *        └─ Z2  (a zombie: killed by SIGTERM)
 *
 * All hold one memfd open file (one offset), inherited from root. Bytes
 * are in flight in p1 and p2 and both ways on a socketpair between root
 * and A at the freeze. After melt each child checks
 * its parent, group, session and what it reads, and exits with 0 or the
 * number of the check that failed; root collects every exit status (which
 * also proves they are its children) and writes the result. */

enum { T_PPID = 10, T_PGID, T_SID, T_P1, T_P2, T_OFF, T_PDEATH, T_C, T_WRITE, T_SOCK };

#define T_MSG1	"in-flight-from-root"
#define T_MSG2	"in-flight-from-a"

static int tree_read(int fd, const char *want)
{
	char buf[64];
	size_t n = strlen(want), got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0)
			return 0;
		got += (size_t)r;
	}
	return !memcmp(buf, want, n);
}

static void tree_ready(const char *who)
{
	char name[32];

	snprintf(name, sizeof(name), "ready-%s", who);
	touch(name, NULL);
}

static int tree_is(pid_t want_ppid, pid_t want_pgid, pid_t want_sid)
{
	if (getppid() != want_ppid)
		return T_PPID;
	if (getpgid(0) != want_pgid)
		return T_PGID;
	if (getsid(0) != want_sid)
		return T_SID;
	return 0;
}

static void tree_wait_ready(const char *const *who, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char name[32];

		snprintf(name, sizeof(name), "ready-%s", who[i]);
		while (!exists(name))
			usleep(2000);
	}
}

static void mode_tree(void)
{
	static const char *const kids[] = { "a", "b", "c", "d" };
	pid_t root = getpid(), a, b, d, z1, z2;
	siginfo_t si;
	int p1[2], p2[2], sp[2], mfd = (int)syscall(SYS_memfd_create, "tree-shared", 0);
	int st, bad = 0;
	char why[128] = "";

	if (mfd < 0 || pipe(p1) || pipe(p2) || socketpair(AF_UNIX, SOCK_STREAM, 0, sp))
		result(0, "setup");
	if (write(mfd, "R1", 2) != 2)
		result(0, "memfd write");
	a = fork();
	if (a == 0) {
		int r;

		close(p1[1]);
		close(p2[0]);
		close(sp[0]);
		if (write(p2[1], T_MSG2, strlen(T_MSG2)) < 0 || write(mfd, "A1", 2) != 2 ||
		    send(sp[1], "to-root", 7, 0) != 7)
			_exit(T_WRITE);
		tree_ready("a");
		wait_go();
		if ((r = tree_is(root, root, root)))
			_exit(r);
		if (!tree_read(p1[0], T_MSG1))
			_exit(T_P1);
		/* root wrote "R2" before "next": one offset */
		if (!tree_read(p1[0], "next") || lseek(mfd, 0, SEEK_CUR) != 6)
			_exit(T_OFF);
		/* a socketpair between root and A, queued both ways */
		if (!uc_recv(sp[1], "to-a") || send(sp[1], "a-ok", 4, 0) != 4)
			_exit(T_SOCK);
		_exit(0);
	}
	b = fork();
	if (b == 0) {
		pid_t c, me = getpid();
		int r;

		setpgid(0, 0);
		close(p1[1]);
		close(p2[1]);
		c = fork();
		if (c == 0) {
			tree_ready("c");
			wait_go();
			_exit(tree_is(me, me, root));
		}
		tree_ready("b");
		wait_go();
		if ((r = tree_is(root, getpid(), root)))
			_exit(r);
		if (!tree_read(p2[0], T_MSG2))
			_exit(T_P2);
		if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st))
			_exit(T_C);
		_exit(0);
	}
	d = fork();
	if (d == 0) {
		int sig = 0, r;

		setsid();
		prctl(PR_SET_PDEATHSIG, SIGUSR1);
		tree_ready("d");
		wait_go();
		if ((r = tree_is(root, getpid(), getpid())))
			_exit(r);
		if (prctl(PR_GET_PDEATHSIG, &sig) || sig != SIGUSR1)
			_exit(T_PDEATH);
		_exit(0);
	}
	z1 = fork();
	if (z1 == 0)
		_exit(7);
	z2 = fork();
	if (z2 == 0) {
		signal(SIGTERM, SIG_DFL);
		raise(SIGTERM);
		_exit(1);
	}
	if (waitid(P_PID, (id_t)z1, &si, WEXITED | WNOWAIT) ||
	    waitid(P_PID, (id_t)z2, &si, WEXITED | WNOWAIT))
		result(0, "zombies");
	close(p1[0]);
	close(p2[0]);
	close(p2[1]);
	close(sp[1]);
	if (write(p1[1], T_MSG1, strlen(T_MSG1)) < 0 || send(sp[0], "to-a", 4, 0) != 4)
		result(0, "pipe write");
	tree_wait_ready(kids, 4);
	touch("ready", NULL);
	wait_go();
	if (lseek(mfd, 0, SEEK_CUR) != 4)
		result(0, "shared offset %lld after melt, want 4", (long long)lseek(mfd, 0, SEEK_CUR));
	if (write(mfd, "R2", 2) != 2 || write(p1[1], "next", 4) != 4)
		result(0, "writes after melt");
	if (!tree_read(sp[0], "to-root") || !tree_read(sp[0], "a-ok"))
		result(0, "socketpair to child a after melt");
	for (int i = 0; i < 3; i++) {
		pid_t who = i == 0 ? a : i == 1 ? b : d;

		if (waitpid(who, &st, 0) != who) {
			snprintf(why, sizeof(why), "child %c: not our child after melt", "abd"[i]);
			bad = 1;
		} else if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			snprintf(why, sizeof(why), "child %c: failed check %d", "abd"[i],
				 WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
			bad = 1;
		}
	}
	if (bad)
		result(0, "%s", why);
	if (waitpid(z1, &st, 0) != z1 || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
		result(0, "zombie z1: not ours, or not exited with 7 (status %#x)", st);
	if (waitpid(z2, &st, 0) != z2 || !WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM)
		result(0, "zombie z2: not ours, or not killed by SIGTERM (status %#x)", st);
	result(1, NULL);
}

/* ---- pidfd: pidfds, and FIFOs between two processes ----
 * The root holds pidfds to its child k (non-blocking), to itself, to the
 * test (outside the group), to a child it reaped, and to a zombie child
 * z (exited with 7); k holds one to the root. FIFOs between root and k
 * have bytes in flight both ways. After melt: the pidfds of the group
 * name the same pids (poll, pidfd_send_signal, fdinfo); the outside and
 * the reaped one read as exited (readable, ESRCH, ECHILD); waitid on the
 * zombie's gives its 7, on k's gives the 42 k exits with once its own
 * checks passed. */

#define PF_TO_K		"to the child"
#define PF_TO_ROOT	"to the root"

enum { PF_OK = 42, PF_ROOT_GONE = 10, PF_FIFO, PF_WRITE };

static int pf_open(pid_t pid, unsigned flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

static int pf_signal(int fd)
{
	return (int)syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0);
}

/* fdinfo's Pid of a pidfd, or 0. */
static long pf_pid(int fd)
{
	char path[64], line[128];
	long pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Pid:", 4))
			pid = strtol(line + 4, NULL, 10);
	if (f)
		fclose(f);
	return pid;
}

static int pf_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Exited and not ours: readable, no signal reaches it, no wait for it. */
static int pf_exited(int fd)
{
	siginfo_t si;

	return pf_readable(fd) && pf_signal(fd) == -1 && errno == ESRCH &&
	       waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) == -1 && errno == ECHILD;
}

/* k: pidfds to the root and to its younger sibling l (made after k at
 * melt: k's pidfd waits for it). */
static void pf_child(pid_t root, int to_k, int to_root, int l_pipe)
{
	int pr = pf_open(root, 0), pl;
	pid_t l = 0;

	if (read(l_pipe, &l, sizeof(l)) != sizeof(l) || (pl = pf_open(l, 0)) < 0 || pr < 0 ||
	    write(to_root, PF_TO_ROOT, strlen(PF_TO_ROOT)) < 0)
		_exit(PF_WRITE);
	close(l_pipe);
	tree_ready("k");
	wait_go();
	if (pf_pid(pr) != root || pf_signal(pr) || pf_pid(pl) != l || pf_signal(pl))
		_exit(PF_ROOT_GONE);
	if (!ff_reads(to_k, PF_TO_K, strlen(PF_TO_K)))
		_exit(PF_FIFO);
	while (!exists("exit-k"))
		usleep(2000);
	_exit(PF_OK);
}

/* The fifo at dir/name, both ends open (non-blocking opens do not wait). */
static void pf_fifo(const char *name, int *r, int *w)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
	if (mkfifo(p, 0600) || (*r = open(p, O_RDONLY | O_NONBLOCK)) < 0 ||
	    (*w = open(p, O_WRONLY | O_NONBLOCK)) < 0)
		result(0, "fifo %s", name);
}

static void mode_pidfd(void)
{
	static const char *const kids[] = { "k", "l" };
	int tk_r, tk_w, tr_r, tr_w, pk, ps, po, pe, pz, st, lp[2];
	pid_t root = getpid(), k, l, e, z;
	siginfo_t si;

	pf_fifo("to-k.fifo", &tk_r, &tk_w);
	pf_fifo("to-root.fifo", &tr_r, &tr_w);
	if (pipe(lp))
		result(0, "pipe");
	k = fork();
	if (k == 0) {
		close(tk_w);
		close(tr_r);
		close(lp[1]);
		pf_child(root, tk_r, tr_w, lp[0]);
	}
	close(tk_r);
	close(tr_w);
	close(lp[0]);
	l = fork();
	if (l == 0) {
		tree_ready("l");
		wait_go();
		while (!exists("exit-k"))
			usleep(2000);
		_exit(0);
	}
	if (write(lp[1], &l, sizeof(l)) != sizeof(l))
		result(0, "pipe write");
	close(lp[1]);
	e = fork();
	if (e == 0)
		_exit(0);
	z = fork();
	if (z == 0)
		_exit(7);
	pk = pf_open(k, O_NONBLOCK);	/* PIDFD_NONBLOCK */
	ps = pf_open(root, 0);
	po = pf_open(getppid(), 0);
	pe = pf_open(e, 0);
	pz = pf_open(z, 0);
	if (pk < 0 || ps < 0 || po < 0 || pe < 0 || pz < 0 || waitpid(e, &st, 0) != e ||
	    waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT) ||
	    write(tk_w, PF_TO_K, strlen(PF_TO_K)) < 0)
		result(0, "setup pidfds");
	tree_wait_ready(kids, 2);
	touch("ready", NULL);
	wait_go();

	if (pf_pid(ps) != root || pf_signal(ps))
		result(0, "pidfd to itself: Pid %ld", pf_pid(ps));
	if (pf_pid(pk) != k || pf_signal(pk) || pf_readable(pk) || !(fcntl(pk, F_GETFL) & O_NONBLOCK))
		result(0, "pidfd to the child: Pid %ld, readable %d", pf_pid(pk), pf_readable(pk));
	if (!pf_exited(po))
		result(0, "pidfd to a process outside the group: not exited after melt");
	if (!pf_exited(pe))
		result(0, "pidfd to a reaped child: not exited after melt");
	if (waitid(P_PIDFD, (id_t)pz, &si, WEXITED) || si.si_pid != z || si.si_status != 7)
		result(0, "waitid on the zombie's pidfd: pid %d status %d", (int)si.si_pid,
		       si.si_status);
	if (!ff_reads(tr_r, PF_TO_ROOT, strlen(PF_TO_ROOT)))
		result(0, "fifo from the child: bytes in flight lost");
	touch("exit-k", NULL);
	{
		struct pollfd p = { .fd = pk, .events = POLLIN };

		if (poll(&p, 1, 5000) != 1 || waitid(P_PIDFD, (id_t)pk, &si, WEXITED) ||
		    si.si_pid != k || si.si_code != CLD_EXITED || si.si_status != PF_OK)
			result(0, "the child through its pidfd: exited %d (%d = its check failed)",
			       si.si_status, si.si_status);
	}
	if (waitpid(l, &st, 0) != l || !WIFEXITED(st) || WEXITSTATUS(st))
		result(0, "child l: status %#x", st);
	result(1, NULL);
}

/* ---- scmrights: files in flight in unix sockets' queues ----
 * Queued at the freeze, on a stream pair: "hdr" plain; "F1" with a file
 * (at offset 5, a dup of which the process keeps) and a memfd; "tail"
 * plain; "F2" with an eventfd (count 9); "pq" with /dev/null, read a byte
 * at a time after melt (its file then comes with "q"). On a dgram pair: a message with
 * a socket whose peer left after queueing "inner" and, on it, a message
 * carrying /dev/null (files in flight in a file in flight). On a
 * seqpacket pair: a unix listener (abstract name), a pidfd to the process
 * itself and the read end of a FIFO with bytes in it (its only reader).
 * After melt each read takes what it took before (the plain bytes alone,
 * the files with their message) and each file is what was sent. */

#define SR_FILE_DATA	"0123456789abcdef"
#define SR_MEMFD_DATA	"memfd in flight"

static void sr_send(int s, const char *data, const int *fds, int n)
{
	char ctl[CMSG_SPACE(sizeof(int) * 4)] = { 0 };
	struct iovec iov = { (void *)data, strlen(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (n) {
		struct cmsghdr *c;

		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
	}
	if (sendmsg(s, &mh, 0) != (ssize_t)strlen(data))
		result(0, "sendmsg \"%s\": %s", data, strerror(errno));
}

/* Receive exactly want (at most strlen(want) bytes); the files it brought
 * into fds: their count, or -1 if the bytes differ. */
static int sr_recv(int s, const char *want, int *fds, int max)
{
	char buf[64], ctl[CMSG_SPACE(sizeof(int) * 8)];
	size_t n = strlen(want);
	struct iovec iov = { buf, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	ssize_t got = recvmsg(s, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	int k = 0;

	if (got != (ssize_t)n || memcmp(buf, want, n))
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		for (size_t i = 0; c->cmsg_type == SCM_RIGHTS &&
				   i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
			if (k < max)
				memcpy(&fds[k++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	return k;
}

static void sr_link(int fd, char *buf, size_t n)
{
	char p[64];
	ssize_t r;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	r = readlink(p, buf, n - 1);
	buf[r > 0 ? r : 0] = '\0';
}

static void mode_scmrights(void)
{
	int st[2], dg[2], sq[2], in[2], file, kept, mfd, efd, lsn, nul, pfd, fr, fw, got[8], n;
	char path[4096], fifo[4096], buf[64], abstract[64];
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat sfile, s2;
	uint64_t v;

	snprintf(path, sizeof(path), "%s/sent-file", dir);
	snprintf(fifo, sizeof(fifo), "%s/sent.fifo", dir);
	unlink(fifo);
	file = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	mfd = (int)syscall(SYS_memfd_create, "sr-memfd", 0);
	efd = eventfd(9, EFD_NONBLOCK);
	nul = open("/dev/null", O_RDONLY);
	if (file < 0 || mfd < 0 || efd < 0 || nul < 0 ||
	    write(file, SR_FILE_DATA, 16) != 16 || lseek(file, 5, SEEK_SET) != 5 ||
	    write(mfd, SR_MEMFD_DATA, strlen(SR_MEMFD_DATA)) < 0 || fstat(file, &sfile) ||
	    mkfifo(fifo, 0600) || (fr = open(fifo, O_RDONLY | O_NONBLOCK)) < 0 ||
	    (fw = open(fifo, O_WRONLY | O_NONBLOCK)) < 0 || write(fw, "fifo bytes", 10) != 10)
		result(0, "setup files");
	kept = dup(file);	/* the process keeps the file it sends */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq) || socketpair(AF_UNIX, SOCK_STREAM, 0, in))
		result(0, "socketpairs");
	sr_send(st[1], "hdr", NULL, 0);
	sr_send(st[1], "F1", (int[]){ file, mfd }, 2);
	sr_send(st[1], "tail", NULL, 0);
	sr_send(st[1], "F2", (int[]){ efd }, 1);
	sr_send(st[1], "pq", (int[]){ nul }, 1);
	close(file);
	close(mfd);
	close(efd);
	/* a socket in flight whose own queue carries a file */
	sr_send(in[1], "inner", (int[]){ nul }, 1);
	close(in[1]);
	close(nul);
	sr_send(dg[1], "sock", (int[]){ in[0] }, 1);
	close(in[0]);
	snprintf(abstract, sizeof(abstract), "cryo-sr-%d", (int)getpid());
	memcpy(a.sun_path + 1, abstract, strlen(abstract));
	lsn = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lsn < 0 || bind(lsn, (struct sockaddr *)&a,
			    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(abstract))) ||
	    listen(lsn, 2) || (pfd = (int)syscall(SYS_pidfd_open, getpid(), 0)) < 0)
		result(0, "listener, pidfd");
	sr_send(sq[1], "three", (int[]){ lsn, pfd, fr }, 3);
	close(lsn);
	close(pfd);
	close(fr);
	touch("ready", NULL);
	wait_go();

	/* stream: the plain bytes alone, the files with their message */
	if (sr_recv(st[0], "hdr", got, 8) != 0)
		result(0, "stream: \"hdr\" came with files or not at all");
	if ((n = sr_recv(st[0], "F1", got, 8)) != 2)
		result(0, "stream: \"F1\" with %d files, not 2", n);
	if (fstat(got[0], &s2) || s2.st_ino != sfile.st_ino || s2.st_dev != sfile.st_dev ||
	    lseek(got[0], 0, SEEK_CUR) != 5 || read(got[0], buf, 3) != 3 || memcmp(buf, "567", 3) ||
	    (fcntl(got[0], F_GETFL) & O_ACCMODE) != O_RDWR)
		result(0, "the file in flight: not the file, its offset or its mode");
	if (lseek(kept, 0, SEEK_CUR) != 5)
		result(0, "the process's own copy of the file moved (%lld)",
		       (long long)lseek(kept, 0, SEEK_CUR));
	sr_link(got[1], buf, sizeof(buf));
	if (strncmp(buf, "/memfd:sr-memfd", 15) || pread(got[1], path, 15, 0) != 15 ||
	    memcmp(path, SR_MEMFD_DATA, 15))
		result(0, "the memfd in flight: \"%s\"", buf);
	if (sr_recv(st[0], "tail", got, 8) != 0)
		result(0, "stream: \"tail\"");
	if (sr_recv(st[0], "F2", got, 8) != 1 || read(got[0], &v, 8) != 8 || v != 9)
		result(0, "stream: \"F2\" and its eventfd (count 9)");
	/* a known limit (docs/fds.md): read in parts, a message gives its
	 * files with its last byte, not its first */
	if (sr_recv(st[0], "p", got, 8) != 0 || sr_recv(st[0], "q", got, 8) != 1)
		result(0, "stream: \"pq\" read in two: its file not with its last byte");
	/* dgram: a socket in flight, with its own queue and file in flight */
	if (sr_recv(dg[0], "sock", got, 8) != 1)
		result(0, "dgram: the socket in flight");
	in[0] = got[0];
	if (sr_recv(in[0], "inner", got, 8) != 1)
		result(0, "the socket in flight: its queued message or its file");
	sr_link(got[0], buf, sizeof(buf));
	if (strcmp(buf, "/dev/null") || recv(in[0], buf, 1, MSG_DONTWAIT) != 0)
		result(0, "the socket in flight: /dev/null (%s), then end of file", buf);
	/* seqpacket: a listener, a pidfd, a FIFO's read end */
	if (sr_recv(sq[0], "three", got, 8) != 3)
		result(0, "seqpacket: three files");
	{
		int c = socket(AF_UNIX, SOCK_STREAM, 0), acc;

		if (c < 0 || connect(c, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un,
				     sun_path) + 1 + strlen(abstract))) ||
		    (acc = accept(got[0], NULL, NULL)) < 0)
			result(0, "the listener in flight does not accept: %s", strerror(errno));
		close(acc);
		close(c);
	}
	if (pf_pid(got[1]) != getpid())
		result(0, "the pidfd in flight: Pid %ld", pf_pid(got[1]));
	if (!ff_reads(got[2], "fifo bytes", 10) || write(fw, "z", 1) != 1 || !ff_reads(got[2], "z", 1))
		result(0, "the FIFO's read end in flight: its bytes, then talk");
	result(1, NULL);
}

/* ---- lazytree: a tree whose processes all fault on memory still out ----
 *
 *   root ── A ── C        each maps its own region after the fork (its
 *        └─ B             own pattern); all inherit "common" and "late"
 *
 * After a lazy melt with a slowed pager (DIR/lazy present), every process
 * checks its own region and common at once (each is still out: mincore),
 * then A forks F, which checks late, which nobody touched since the melt:
 * F's faults come through the userfaultfd the kernel gave it at the fork,
 * of which the pager must have given F its own copy (F waits for it).
 * Each exits with 0 or the number of its failed check; root collects them. */

#define LT_PAGES	2048u
#define LT_LEN		((size_t)LT_PAGES * 4096)

enum { LT_OWN = 20, LT_COMMON, LT_LATE, LT_FORK, LT_OUT, LT_NOCOPY };

/* How many userfaultfds this process holds. */
static int lt_uffds(void)
{
	char path[64], link[64];
	int n = 0;

	for (int fd = 0; fd < 4096; fd++) {
		ssize_t k;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		k = readlink(path, link, sizeof(link) - 1);
		if (k > 0) {
			link[k] = 0;
			n += !strcmp(link, "anon_inode:[userfaultfd]");
		}
	}
	return n;
}

static char *lt_common, *lt_late;

static size_t lt_resident(const void *p)
{
	unsigned char v[LT_PAGES];
	size_t n = 0;

	if (mincore((void *)p, LT_LEN, v))
		return LT_PAGES;
	for (size_t i = 0; i < LT_PAGES; i++)
		n += v[i] & 1;
	return n;
}

static char *lt_map(uint32_t seed)
{
	char *m = mmap(NULL, LT_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		result(0, "mmap");
	fill(m, LT_LEN, seed);
	return m;
}

/* After go: this process's checks; F too for A. 0 or the failed check. */
static int lt_check(const char *own, uint32_t seed, int forks)
{
	int lazy = exists("lazy"), st = 0;
	size_t r_own = lt_resident(own), r_common = lt_resident(lt_common);
	pid_t f;

	if (lazy && (r_own == LT_PAGES || r_common == LT_PAGES))
		return LT_OUT;	/* all in before use: nothing tested */
	if (!check(own, LT_LEN, seed))
		return LT_OWN;
	if (!check(lt_common, LT_LEN, 300))
		return LT_COMMON;
	if (!forks)
		return 0;
	f = fork();
	if (f == 0) {
		double t = now();

		if (lazy && lt_resident(lt_late) == LT_PAGES)
			_exit(LT_OUT);
		/* its parent's copy, inherited, and its own from the pager */
		while (lazy && lt_uffds() < 2)
			if (now() - t > 4)
				_exit(LT_NOCOPY);
			else
				usleep(1000);
		_exit(check(lt_late, LT_LEN, 301) ? 0 : LT_LATE);
	}
	if (f < 0 || waitpid(f, &st, 0) != f || !WIFEXITED(st))
		return LT_FORK;
	return WEXITSTATUS(st);
}

static __attribute__((noreturn)) void lt_child(const char *name, uint32_t seed, int forks,
					       pid_t (*more)(void))
{
	char *own = lt_map(seed);
	pid_t c = more ? more() : 0;
	int r, st;

	tree_ready(name);
	wait_go();
	r = lt_check(own, seed, forks);
	if (!r && c > 0 && (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)))
		r = WIFEXITED(st) ? WEXITSTATUS(st) : LT_FORK;
	_exit(r);
}

static pid_t lt_fork_c(void)
{
	pid_t c = fork();

	if (c == 0)
		lt_child("c", 203, 0, NULL);
	return c;
}

static void mode_lazytree(void)
{
	static const char *const kids[] = { "a", "b", "c" };
	char *own;
	pid_t a, b;
	int st, r;

	/* mapped first, highest: the pager prefetches from low addresses up */
	lt_late = lt_map(301);
	lt_common = lt_map(300);
	a = fork();
	if (a == 0)
		lt_child("a", 201, 1, lt_fork_c);
	b = fork();
	if (b == 0)
		lt_child("b", 202, 0, NULL);
	own = lt_map(200);
	tree_wait_ready(kids, 3);
	touch("ready", NULL);
	wait_go();
	r = lt_check(own, 200, 0);
	if (r)
		result(0, "root: check %d failed", r);
	for (int i = 0; i < 2; i++) {
		pid_t who = i ? b : a;

		if (waitpid(who, &st, 0) != who || !WIFEXITED(st) || WEXITSTATUS(st))
			result(0, "child %c: check %d failed (status %#x)", "ab"[i],
			       WIFEXITED(st) ? WEXITSTATUS(st) : -1, st);
	}
	result(1, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	dir = argv[2];
	if (!strcmp(argv[1], "mem"))
		mode_mem();
	else if (!strcmp(argv[1], "regs"))
		mode_regs();
	else if (!strcmp(argv[1], "threads"))
		mode_threads();
	else if (!strcmp(argv[1], "signals"))
		mode_signals();
	else if (!strcmp(argv[1], "itimer"))
		mode_itimer();
	else if (!strcmp(argv[1], "sleep"))
		mode_sleep();
	else if (!strcmp(argv[1], "files"))
		mode_files();
	else if (!strcmp(argv[1], "read"))
		mode_read();
	else if (!strcmp(argv[1], "sockets"))
		mode_sockets();
	else if (!strcmp(argv[1], "incr"))
		mode_incr();
	else if (!strcmp(argv[1], "churn"))
		mode_churn();
	else if (!strcmp(argv[1], "lazyops"))
		mode_lazyops();
	else if (!strcmp(argv[1], "tree"))
		mode_tree();
	else if (!strcmp(argv[1], "lazytree"))
		mode_lazytree();
	else if (!strcmp(argv[1], "unixconn"))
		mode_unixconn();
	else if (!strcmp(argv[1], "fdkinds"))
		mode_fdkinds();
	else if (!strcmp(argv[1], "fifo"))
		mode_fifo();
	else if (!strcmp(argv[1], "inotify"))
		mode_inotify();
	else if (!strcmp(argv[1], "pidfd"))
		mode_pidfd();
	else if (!strcmp(argv[1], "scmrights"))
		mode_scmrights();
	return 2;
}
