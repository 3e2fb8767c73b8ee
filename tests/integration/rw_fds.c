/* restore_workload scenarios: file descriptors: files, pipes, sockets,
 * eventfd, epoll, timerfd, signalfd, unix connections, FIFOs, inotify,
 * files in flight. */
#include "rw.h"

#include "pattern.h"

/* ---- files: offsets, flags, a pipe with bytes in flight ---- */

void mode_files(void)
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

/* ---- locks: advisory locks held at the freeze ----
 * A POSIX write lock on bytes 5-14 and a read lock from 100 to EOF, an
 * OFD write lock on 50-59, a shared flock on another file. After melt a
 * child (another process: locks conflict only between owners) finds each
 * held, and the bytes around them free. */

enum { LK_POSIX_W = 1, LK_FREE = 2, LK_POSIX_R = 4, LK_OFD = 8, LK_FLOCK_EX = 16, LK_FLOCK_SH = 32 };

static int lk_try(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, cmd, &fl);
}

/* In the child: the checks that failed, as LK_ bits. */
static int lk_probe(const char *data, const char *other)
{
	int fd = open(data, O_RDWR), fo = open(other, O_RDONLY), bad = 0;

	if (fd < 0 || fo < 0)
		return 127;
	if (lk_try(fd, F_SETLK, F_WRLCK, 5, 10) == 0 || lk_try(fd, F_SETLK, F_WRLCK, 14, 1) == 0)
		bad |= LK_POSIX_W;
	if (lk_try(fd, F_SETLK, F_WRLCK, 20, 20) != 0 || lk_try(fd, F_SETLK, F_UNLCK, 20, 20))
		bad |= LK_FREE;
	if (lk_try(fd, F_SETLK, F_WRLCK, 5000, 1) == 0 || lk_try(fd, F_SETLK, F_RDLCK, 100, 10))
		bad |= LK_POSIX_R;
	if (lk_try(fd, F_OFD_SETLK, F_WRLCK, 55, 1) == 0)
		bad |= LK_OFD;
	if (flock(fo, LOCK_EX | LOCK_NB) == 0)
		bad |= LK_FLOCK_EX;
	if (flock(fo, LOCK_SH | LOCK_NB) != 0)
		bad |= LK_FLOCK_SH;
	return bad;
}

void mode_locks(void)
{
	char data[4096], other[4096], buf[8192] = { 0 };
	int a, b, c, st;
	pid_t k;

	snprintf(data, sizeof(data), "%s/locked", dir);
	snprintf(other, sizeof(other), "%s/flocked", dir);
	a = open(data, O_RDWR | O_CREAT | O_TRUNC, 0644);
	b = open(other, O_RDONLY | O_CREAT | O_TRUNC, 0644);
	c = open(data, O_RDWR);
	if (a < 0 || b < 0 || c < 0 || write(a, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		result(0, "setup lock files");
	if (lk_try(a, F_SETLK, F_WRLCK, 5, 10) || lk_try(a, F_SETLK, F_RDLCK, 100, 0) ||
	    lk_try(c, F_OFD_SETLK, F_WRLCK, 50, 10) || flock(b, LOCK_SH | LOCK_NB))
		result(0, "setup locks: %s", strerror(errno));
	touch("ready", NULL);
	wait_go();
	k = fork();
	if (k == 0)
		_exit(lk_probe(data, other));
	if (k < 0 || waitpid(k, &st, 0) != k || !WIFEXITED(st))
		result(0, "the probing child");
	if (WEXITSTATUS(st))
		result(0, "locks after melt: failed checks %#x (1 posix write, 2 free bytes, 4 posix "
			  "read, 8 ofd, 16/32 flock)", WEXITSTATUS(st));
	/* still ours: unlocking and locking again works */
	if (lk_try(a, F_SETLK, F_UNLCK, 5, 10) || lk_try(a, F_SETLK, F_WRLCK, 5, 10))
		result(0, "relock after melt: %s", strerror(errno));
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

void mode_read(void)
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

void mode_sockets(void)
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


/* ---- fdkinds: timerfd and signalfd ----
 * A one-shot timerfd 3 s out, a periodic one (50 ms) never read, and a
 * signalfd for SIGUSR1/SIGUSR2 with SIGUSR2 pending at the freeze. After
 * melt: the one-shot still has time left (no more than it had) and no
 * interval; the periodic one has expirations to read and its interval; the
 * signalfd reads the pending SIGUSR2, then a SIGUSR1 sent after melt. */

void mode_fdkinds(void)
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

int uc_recv(int fd, const char *want)
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

void mode_unixconn(void)
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
int ff_reads(int fd, const char *want, size_t n)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	char buf[256];
	ssize_t r;

	if (poll(&pf, 1, 1000) != 1)
		return 0;
	r = read(fd, buf, sizeof(buf));

	return r == (ssize_t)n && !memcmp(buf, want, n);
}

void mode_fifo(void)
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

void mode_inotify(void)
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

void mode_scmrights(void)
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
