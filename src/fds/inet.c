/* "inet": an IPv4 or IPv6 socket that is no TCP connection: a TCP
 * listener back on its address and port with its backlog and options, a
 * bound or fresh TCP socket, a UDP socket (bound, and re-connected to its
 * peer when it was) with the datagrams queued to it. A port someone else
 * took meanwhile fails the melt with "address in use". TCP connections
 * are "tcp" (tcp.c).
 *
 * Queued datagrams are read without taking them (MSG_PEEK under
 * SO_PEEK_OFF, the old peek offset put back) with their source addresses.
 * Melt sends each again to the socket before it connects (a connected
 * socket takes datagrams from its peer only), from a socket bound to the
 * datagram's source address where it can be (IP_TRANSPARENT allows a
 * foreign one; a port another socket holds does not), else from an
 * ephemeral port on loopback: recvfrom then names that one. */
#define LOG_PREFIX "fds/inet: "
#include "fds/sock.h"
#include "common/log.h"
#include "common/vec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

static int inet_match(const struct fd_probe *p)
{
	int d;

	if (!S_ISSOCK(p->st.st_mode) || p->local < 0)
		return 0;
	d = sock_domain(p->local);
	return d == AF_INET || d == AF_INET6;
}

static void addr_text(const ProtobufCBinaryData *b, char *buf, size_t n)
{
	sock_addr_text(b->data, b->len, buf, n);
}

#define DGRAM_MAX	65536		/* the largest UDP payload, and then some */
#define QUEUED_MAX	(8u << 20)	/* more bytes queued than this is refused */
#define FILL_MS		2000		/* the datagrams sent back must be in by then */

static void dgrams_free(Cryo__Socket *s)
{
	for (size_t i = 0; i < s->n_queued; i++) {
		free(s->queued[i]->data.data);
		free(s->queued[i]->from.data);
		free(s->queued[i]);
	}
	free(s->queued);
	s->queued = NULL;
	s->n_queued = 0;
}

static int dgram_push(Cryo__Socket *s, size_t *cap, const uint8_t *buf, size_t len,
		      const struct sockaddr_storage *from, socklen_t flen)
{
	Cryo__Datagram *d;
	int r = vec_reserve((void **)&s->queued, cap, s->n_queued + 1, sizeof(*s->queued));

	if (r || !(d = malloc(sizeof(*d))))
		return -ENOMEM;
	cryo__datagram__init(d);
	s->queued[s->n_queued++] = d;
	if ((r = sock_bytes_copy(&d->data, buf, len)))
		return r;
	if (flen > sizeof(sa_family_t)) {
		d->has_from = 1;
		return sock_bytes_copy(&d->from, from, flen);
	}
	return 0;
}

/* The datagrams queued to a UDP socket, in order, none taken. */
static int dump_dgrams(const struct fd_probe *p, Cryo__Socket *s)
{
	int old = -1, zero = 0, r = 0;
	uint8_t *buf = malloc(DGRAM_MAX);
	size_t cap = 0, total = 0;

	if (!buf)
		return -ENOMEM;
	if ((r = sock_get_int(p->local, SOL_SOCKET, SO_PEEK_OFF, &old)) ||
	    setsockopt(p->local, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0) {
		r = r ? r : -errno;
		free(buf);
		return r;
	}
	for (;;) {
		struct sockaddr_storage from;
		struct iovec iov = { buf, DGRAM_MAX };
		struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from),
				    .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n = recvmsg(p->local, &m, MSG_PEEK | MSG_DONTWAIT);

		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				r = -errno;
			break;
		}
		total += (size_t)n;
		if ((m.msg_flags & MSG_TRUNC) || total > QUEUED_MAX) {
			pr_err("pid %d fd %d: more than %u bytes of datagrams queued", p->pid, p->fd,
			       QUEUED_MAX);
			r = -ENOTSUP;
			break;
		}
		if ((r = dgram_push(s, &cap, buf, (size_t)n, &from, m.msg_namelen)))
			break;
	}
	if (setsockopt(p->local, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)) < 0 && !r)
		r = -errno;
	free(buf);
	return r;
}

static int inet_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__Socket s = CRYO__SOCKET__INIT;
	struct sock_opt_def defs[SOCK_INET_OPTS_MAX];
	size_t n = sock_inet_opts(sock_domain(p->local), defs);
	char local[80] = "unbound", peer[80] = "";
	int r;

	(void)c;
	r = sock_dump(p, defs, n, &s);
	if (!r && s.type == SOCK_DGRAM)
		r = dump_dgrams(p, &s);
	if (r)
		goto out;
	if (s.has_addr)
		addr_text(&s.addr, local, sizeof(local));
	if (s.has_peer)
		addr_text(&s.peer, peer, sizeof(peer));
	r = fd_pack(e, &s.base);
	if (!r)
		r = fd_set_desc(e, "%s%s %s%s%s%s%s", s.type == SOCK_DGRAM ? "udp" : "tcp",
				s.family == AF_INET6 ? "6" : "", local,
				s.listening ? " listening" : "", s.has_peer ? " connected to " : "",
				peer, s.n_queued ? ", datagrams queued" : "");
out:
	dgrams_free(&s);
	sock_msg_free(&s);
	return r;
}

static int inet_bind(int fd, const Cryo__Socket *s)
{
	char where[80];
	int err;

	if (bind(fd, (const struct sockaddr *)s->addr.data, (socklen_t)s->addr.len) == 0)
		return 0;
	err = errno;		/* before anything else can change it */
	addr_text(&s->addr, where, sizeof(where));
	if (err == EADDRINUSE)
		pr_err("address %s is in use", where);
	else
		pr_err("binding %s: %s", where, strerror(err));
	return -err;
}

/* Where to send a datagram so that fd receives it: its own address, the
 * any address made loopback. */
static int own_addr(int fd, struct sockaddr_storage *a, socklen_t *len)
{
	*len = sizeof(*a);
	if (getsockname(fd, (struct sockaddr *)a, len) < 0)
		return -errno;
	if (a->ss_family == AF_INET) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)a;

		if (v4->sin_addr.s_addr == htonl(INADDR_ANY))
			v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (a->ss_family == AF_INET6) {
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)a;

		if (IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr))
			v6->sin6_addr = in6addr_loopback;
	}
	return 0;
}

/* A socket to send one datagram from: bound to its old source if that
 * can be had, else unbound. */
static int sender(int family, const Cryo__Datagram *d)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || !d->has_from)
		return fd;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
	else
		(void)setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)d->from.data, (socklen_t)d->from.len) == 0)
		return fd;
	close(fd);
	return socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

/* How many datagrams wait in fd's queue (peeked, none taken). */
static int queue_count(int fd, uint8_t *buf)
{
	int zero = 0, none = -1, n = 0;

	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return -errno;
	while (recv(fd, buf, DGRAM_MAX, MSG_PEEK | MSG_DONTWAIT) >= 0)
		n++;
	(void)setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &none, sizeof(none));
	return n;
}

static int inet_fill(int fd, const Cryo__Socket *s)
{
	struct sockaddr_storage to;
	socklen_t tolen;
	size_t total = 0;
	uint8_t *buf;
	int r, sz;

	if (!s->n_queued)
		return 0;
	if ((r = own_addr(fd, &to, &tolen)))
		return r;
	for (size_t i = 0; i < s->n_queued; i++)
		total += s->queued[i]->data.len + 1024;	/* with the kernel's overhead */
	sz = (int)total;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	for (size_t i = 0; i < s->n_queued; i++) {
		const Cryo__Datagram *d = s->queued[i];
		int out = sender(s->family, d);
		ssize_t n;

		if (out < 0)
			return -errno;
		n = sendto(out, d->data.data, d->data.len, 0, (struct sockaddr *)&to, tolen);
		r = n < 0 ? -errno : 0;
		close(out);
		if (r) {
			pr_err("giving back a queued datagram: %s", strerror(-r));
			return r;
		}
	}
	/* loopback delivers at once, mostly: wait (bounded) for the rest */
	buf = malloc(DGRAM_MAX);
	if (!buf)
		return -ENOMEM;
	r = -ETIMEDOUT;
	for (int ms = 0; ms < FILL_MS; ms++) {
		int n = queue_count(fd, buf);

		if (n < 0 || (size_t)n >= s->n_queued) {
			r = n < 0 ? n : 0;
			break;
		}
		poll(NULL, 0, 1);
	}
	free(buf);
	if (r)
		pr_err("the %zu queued datagrams did not all come back: %s", s->n_queued,
		       strerror(-r));
	return r;
}

static int inet_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	(void)c;
	return sock_restore(e, inet_bind, inet_fill);
}

static void inet_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	snprintf(buf, n, "socket %s%s", e->desc ? e->desc : "inet",
		 e->cloexec ? " cloexec" : "");
}

const struct fd_ops fd_ops_inet = {
	.name = "inet",
	.match = inet_match,
	.dump = inet_dump,
	.restore = inet_restore,
	.describe = inet_describe,
};
