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

static int inet_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__Socket s = CRYO__SOCKET__INIT;
	struct sock_opt_def defs[SOCK_INET_OPTS_MAX];
	size_t n = sock_inet_opts(sock_domain(p->local), defs);
	char local[80] = "unbound", peer[80] = "";
	int r;

	(void)c;
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
