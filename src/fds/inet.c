/* "inet": an IPv4 or IPv6 socket with nothing in flight: a TCP listener
 * back on its address and port with its backlog and options, a bound or
 * fresh TCP socket, a UDP socket (bound, and re-connected to its peer
 * when it was). A port someone else took meanwhile fails the melt with
 * "address in use". Established connections are refused (sock.h). */
#define LOG_PREFIX "fds/inet: "
#include "fds/sock.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct sock_opt_def inet_opts[] = {
	{ SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR" },
	{ SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT" },
	{ SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE" },
	{ SOL_SOCKET, SO_BROADCAST, "SO_BROADCAST" },
	{ SOL_SOCKET, SO_OOBINLINE, "SO_OOBINLINE" },
	{ IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY" },
	{ IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE" },
	{ IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL" },
	{ IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT" },
};

/* IPV6_V6ONLY decides which addresses an any-address socket takes: it must
 * be set before bind, and only exists for AF_INET6. */
static const struct sock_opt_def inet6_opts[] = {
	{ IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY" },
};

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
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (b->len >= sizeof(struct sockaddr_in6) &&
	    ((const struct sockaddr *)b->data)->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)b->data;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(buf, n, "[%s]:%u", host, port);
		return;
	}
	if (b->len >= sizeof(struct sockaddr_in) &&
	    ((const struct sockaddr *)b->data)->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)b->data;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
	}
	snprintf(buf, n, "%s:%u", host, port);
}

static int inet_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__Socket s = CRYO__SOCKET__INIT;
	struct sock_opt_def defs[sizeof(inet_opts) / sizeof(inet_opts[0]) + 1];
	size_t n = sizeof(inet_opts) / sizeof(inet_opts[0]);
	char local[80] = "unbound", peer[80] = "";
	int r;

	(void)c;
	memcpy(defs, inet_opts, sizeof(inet_opts));
	if (sock_domain(p->local) == AF_INET6)
		defs[n++] = inet6_opts[0];
	r = sock_dump(p, defs, n, &s);
	if (r)
		goto out;
	if (s.has_addr)
		addr_text(&s.addr, local, sizeof(local));
	if (s.has_peer)
		addr_text(&s.peer, peer, sizeof(peer));
	r = fd_pack(e, &s.base);
	if (!r)
		r = fd_set_desc(e, "%s%s %s%s%s%s", s.type == SOCK_DGRAM ? "udp" : "tcp",
				s.family == AF_INET6 ? "6" : "", local,
				s.listening ? " listening" : "", s.has_peer ? " connected to " : "",
				peer);
out:
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

static int inet_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	(void)c;
	return sock_restore(e, inet_bind);
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
