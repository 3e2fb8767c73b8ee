/* A TCP conversation that checks itself across freeze and melt: two byte
 * streams, one each way, whose every byte is a function of its offset
 * (stream_byte), sent at a steady rate so that a freeze lands in the
 * middle and finds data in flight both ways.
 *
 *   tcpconv client PORT TOTAL RESULT keep|reset
 *       talks to tcp_server.py on 127.0.0.1:PORT (outside the group).
 *       keep:  the conversation must go on byte-exact, with no error, on
 *              the same fd with the same addresses (freeze --tcp-established).
 *       reset: the connection must come back as one its peer reset: on
 *              the same fd, with its flags and TCP_NODELAY, poll says
 *              POLLERR|POLLHUP, SO_ERROR ECONNRESET, the bytes it had
 *              received still read (exact), then end of file, and a write
 *              EPIPE; then it connects again and a whole new conversation
 *              must pass.
 *   tcpconv pair TOTAL RESULT [fork]
 *       both ends in the group: a listener on loopback, a connection to
 *       it, both streams between the two ends (in one process, or with
 *       fork in parent and child); it must go on byte-exact, no error.
 *
 * RESULT gets one line, "PASS ..." or "FAIL ...", when it is over (the
 * file is opened only then: nothing of it is open across a freeze). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK		8192
#define TICK_MS		10	/* one chunk each way per tick at most */
#define IDLE_LIMIT_MS	90000	/* no progress for this long: fail */
/* Reading pauses for 4/5 of every PERIOD_MS (reading catches up in the
 * rest): bytes wait in the receive queue (and, once it is full, in the
 * peer's send queue) for a freeze to find, most of the time. */
#define PERIOD_MS	500
#define paused()	(now_ms() % PERIOD_MS >= PERIOD_MS / 5)

static const char *result_path;

static uint8_t stream_byte(int stream, uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 13) * 7 + (uint64_t)stream * 29);
}

static __attribute__((noreturn, format(printf, 2, 3))) void finish(int ok, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f = fopen(result_path, "a");
	if (f) {
		fprintf(f, "%s %s\n", ok ? "PASS" : "FAIL", msg);
		fclose(f);
	}
	exit(ok ? 0 : 1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One end of the conversation: sends stream `out`, checks stream `in`. */
struct end {
	int fd;
	int out, in;
	uint64_t sent, rcvd, total;
	uint64_t next_tick;
	int err;		/* first errno seen (read, write, SO_ERROR) */
	int eof;
};

/* -1: an error (e->err set), 0: fine. */
static int pump_in(struct end *e)
{
	uint8_t buf[CHUNK * 4];
	ssize_t n = read(e->fd, buf, sizeof(buf));

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		e->err = errno;
		return -1;
	}
	if (n == 0) {
		e->eof = 1;
		return -1;
	}
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] != stream_byte(e->in, e->rcvd + (uint64_t)i))
			finish(0, "stream %d: byte %llu is %u, want %u", e->in,
			       (unsigned long long)(e->rcvd + (uint64_t)i), buf[i],
			       stream_byte(e->in, e->rcvd + (uint64_t)i));
	e->rcvd += (uint64_t)n;
	return 0;
}

static int pump_out(struct end *e)
{
	uint8_t buf[CHUNK];
	size_t want = e->total - e->sent < CHUNK ? (size_t)(e->total - e->sent) : CHUNK;
	ssize_t n;

	if (!want || now_ms() < e->next_tick)
		return 0;
	for (size_t i = 0; i < want; i++)
		buf[i] = stream_byte(e->out, e->sent + i);
	n = send(e->fd, buf, want, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		e->err = errno;
		return -1;
	}
	e->sent += (uint64_t)n;
	e->next_tick = now_ms() + TICK_MS;
	return 0;
}

static int nonblock(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return -1;
	return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Run the ends until both streams are complete (1), or one fails (0:
 * e->err or e->eof tells). */
static int converse(struct end *ends, int n)
{
	uint64_t last = now_ms(), progress = 0;

	for (;;) {
		struct pollfd p[2];
		uint64_t now = 0;
		int done = 1;

		for (int i = 0; i < n; i++) {
			p[i].fd = ends[i].fd;
			p[i].events = POLLIN | (ends[i].sent < ends[i].total ? POLLOUT : 0);
			done &= ends[i].sent == ends[i].total && ends[i].rcvd == ends[i].total;
			now += ends[i].sent + ends[i].rcvd;
		}
		if (done)
			return 1;
		if (now != progress) {
			progress = now;
			last = now_ms();
		} else if (now_ms() - last > IDLE_LIMIT_MS) {
			finish(0, "no progress for %d s (sent %llu, received %llu)",
			       IDLE_LIMIT_MS / 1000, (unsigned long long)ends[0].sent,
			       (unsigned long long)ends[0].rcvd);
		}
		if (paused())
			for (int i = 0; i < n; i++)
				p[i].events &= ~POLLIN;
		if (poll(p, (nfds_t)n, TICK_MS) < 0 && errno != EINTR)
			finish(0, "poll: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			if ((p[i].revents & (POLLERR | POLLHUP)) && !ends[i].err) {
				int soerr = 0;
				socklen_t len = sizeof(soerr);

				getsockopt(ends[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
				if (soerr) {
					ends[i].err = soerr;
					return 0;
				}
			}
			if ((p[i].revents & POLLIN) && !paused() &&
			    pump_in(&ends[i]))
				return 0;
			if (pump_out(&ends[i]))
				return 0;
		}
	}
}

static int connect_to(const struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (const struct sockaddr *)a, sizeof(*a)) < 0 || nonblock(fd))
		finish(0, "connect to port %u: %s", ntohs(a->sin_port), strerror(errno));
	return fd;
}

static int same_names(int fd, const struct sockaddr_in *l0, const struct sockaddr_in *p0)
{
	struct sockaddr_in l, p;
	socklen_t ll = sizeof(l), pl = sizeof(p);

	return getsockname(fd, (struct sockaddr *)&l, &ll) == 0 &&
	       getpeername(fd, (struct sockaddr *)&p, &pl) == 0 && !memcmp(&l, l0, sizeof(l)) &&
	       !memcmp(&p, p0, sizeof(p));
}

/* What a socket its peer reset looks like, checked on e (just failed). */
static void check_reset(struct end *e, int fd0)
{
	struct pollfd p = { .fd = e->fd, .events = POLLIN | POLLOUT };
	int one = 0, fl = fcntl(e->fd, F_GETFL);
	socklen_t len = sizeof(one);
	uint64_t before = e->rcvd;
	char c = 0;

	if (e->fd != fd0 || fl < 0 || !(fl & O_NONBLOCK))
		finish(0, "reset: fd %d (was %d), flags %#x", e->fd, fd0, fl);
	if (getsockopt(e->fd, IPPROTO_TCP, TCP_NODELAY, &one, &len) < 0 || !one)
		finish(0, "reset: TCP_NODELAY is gone");
	if (e->err != ECONNRESET && e->err != EPIPE)
		finish(0, "reset: the first error is %s (eof %d), want ECONNRESET",
		       e->err ? strerror(e->err) : "none", e->eof);
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLHUP))
		finish(0, "reset: poll says %#x, want POLLHUP", p.revents);
	/* what it had received is still there, exact, then end of file */
	e->err = e->eof = 0;
	while (!pump_in(e))
		;
	if (!e->eof)
		finish(0, "reset: reading after the reset gave %s, want end of file",
		       strerror(e->err));
	if (send(e->fd, &c, 1, MSG_NOSIGNAL) >= 0 || errno != EPIPE)
		finish(0, "reset: a write did not fail with EPIPE (%s)", strerror(errno));
	printf("reset seen: %llu bytes still read after it\n",
	       (unsigned long long)(e->rcvd - before));
	fflush(stdout);	/* before the result says it is over */
}

static int run_client(int port, uint64_t total, int keep)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in l0, p0;
	socklen_t len = sizeof(l0);
	struct end e = { .out = 0, .in = 1, .total = total };
	int fd0;

	e.fd = fd0 = connect_to(&a);
	getsockname(e.fd, (struct sockaddr *)&l0, &len);
	len = sizeof(p0);
	getpeername(e.fd, (struct sockaddr *)&p0, &len);
	printf("ready\n");
	fflush(stdout);
	if (converse(&e, 1)) {
		if (!keep)
			finish(0, "the conversation went on: no reset seen (sent %llu)",
			       (unsigned long long)e.sent);
		if (!same_names(e.fd, &l0, &p0))
			finish(0, "the connection's addresses changed");
		finish(1, "client: %llu bytes each way, byte-exact, no error, same fd and "
		       "addresses", (unsigned long long)total);
	}
	if (keep)
		finish(0, "error in keep mode: %s (eof %d) after %llu in, %llu out",
		       e.err ? strerror(e.err) : "none", e.eof, (unsigned long long)e.rcvd,
		       (unsigned long long)e.sent);
	check_reset(&e, fd0);
	close(e.fd);
	/* a new conversation, whole */
	e = (struct end){ .out = 0, .in = 1, .total = total, .fd = connect_to(&a) };
	if (!converse(&e, 1))
		finish(0, "the new conversation failed: %s", strerror(e.err));
	finish(1, "client: reset seen (ECONNRESET, queued bytes kept, then EOF, EPIPE), "
	       "reconnected, a new conversation of %llu bytes each way passed",
	       (unsigned long long)total);
}

static int run_pair(uint64_t total, int forked)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), c, s, st;
	struct end ends[2];
	pid_t kid;

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0)
		finish(0, "listener: %s", strerror(errno));
	c = connect_to(&a);
	s = accept(l, NULL, NULL);
	if (s < 0 || nonblock(s))
		finish(0, "accept: %s", strerror(errno));
	close(l);
	ends[0] = (struct end){ .fd = c, .out = 2, .in = 3, .total = total };
	ends[1] = (struct end){ .fd = s, .out = 3, .in = 2, .total = total };
	if (!forked) {
		printf("ready\n");
		fflush(stdout);
		if (!converse(ends, 2))
			finish(0, "pair: %s (eof %d/%d)", strerror(ends[0].err ? ends[0].err :
			       ends[1].err), ends[0].eof, ends[1].eof);
		finish(1, "pair in one process: %llu bytes each way, byte-exact, no error",
		       (unsigned long long)total);
	}
	kid = fork();
	if (kid < 0)
		finish(0, "fork: %s", strerror(errno));
	if (kid == 0) {
		close(c);
		if (!converse(&ends[1], 1))
			_exit(1);
		_exit(0);
	}
	close(s);
	printf("ready\n");
	fflush(stdout);
	if (!converse(&ends[0], 1))
		finish(0, "pair (parent): %s (eof %d)", strerror(ends[0].err), ends[0].eof);
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st))
		finish(0, "pair: the child's end failed (status %#x)", st);
	finish(1, "pair across fork: %llu bytes each way, byte-exact, no error",
	       (unsigned long long)total);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 6 && !strcmp(argv[1], "client")) {
		result_path = argv[4];
		return run_client(atoi(argv[2]), strtoull(argv[3], NULL, 0),
				  !strcmp(argv[5], "keep"));
	}
	if (argc >= 4 && !strcmp(argv[1], "pair")) {
		result_path = argv[3];
		return run_pair(strtoull(argv[2], NULL, 0), argc > 4 && !strcmp(argv[4], "fork"));
	}
	fprintf(stderr, "usage: tcpconv client PORT TOTAL RESULT keep|reset\n"
			"       tcpconv pair TOTAL RESULT [fork]\n");
	return 2;
}
