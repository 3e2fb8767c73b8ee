/* The socket part the inet and unix kinds share: read a socket through
 * cryo's own copy of it (pidfd_getfd), and make it again. */
#define LOG_PREFIX "fds/sock: "
#include "fds/sock.h"
#include "common/log.h"
#include "proc/sockdiag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

const char *sock_type_name(int type)
{
	switch (type) {
	case SOCK_STREAM: return "stream";
	case SOCK_DGRAM: return "dgram";
	case SOCK_SEQPACKET: return "seqpacket";
	case SOCK_RAW: return "raw";
	default: return "?";
	}
}

int sock_get_int(int fd, int level, int name, int *v)
{
	socklen_t len = sizeof(*v);

	return getsockopt(fd, level, name, v, &len) < 0 ? -errno : 0;
}

#define get_int sock_get_int

int sock_domain(int fd)
{
	int v, r = get_int(fd, SOL_SOCKET, SO_DOMAIN, &v);

	return r ? r : v;
}

int sock_bytes_copy(ProtobufCBinaryData *b, const void *p, size_t n)
{
	b->data = malloc(n ? n : 1);
	if (!b->data)
		return -ENOMEM;
	memcpy(b->data, p, n);
	b->len = n;
	return 0;
}

/* Bytes queued in or out: a snapshot would drop them. */
static int nothing_queued(const struct fd_probe *p, int listening, int inet_dgram)
{
	int in = 0, out = 0;

	if (listening || inet_dgram)
		return 0;	/* a UDP socket's queue is inet.c's to save */
	if (ioctl(p->local, SIOCINQ, &in) < 0 || ioctl(p->local, SIOCOUTQ, &out) < 0)
		return -errno;
	if (in || out) {
		pr_err("pid %d fd %d: socket has %d bytes queued in and %d out; they cannot be "
		       "saved yet", p->pid, p->fd, in, out);
		return -ENOTSUP;
	}
	return 0;
}

/* A TCP socket that is neither listening nor closed is a connection, or
 * one in the making (SYN_SENT): it cannot come back alone. */
static int tcp_closed(const struct fd_probe *p)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(p->local, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -errno;
	if (ti.tcpi_state != 7 /* TCP_CLOSE */) {
		pr_err("pid %d fd %d: a TCP connection (state %u) cannot be saved yet; "
		       "only listening and unconnected sockets can", p->pid, p->fd,
		       ti.tcpi_state);
		return -ENOTSUP;
	}
	return 0;
}

int sock_dump_opts(const struct fd_probe *p, const struct sock_opt_def *defs, size_t n,
		   Cryo__SockOpt ***opts, size_t *nopts)
{
	*nopts = 0;
	*opts = calloc(n ? n : 1, sizeof(**opts));
	if (!*opts)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		Cryo__SockOpt *o;
		int v, r = get_int(p->local, defs[i].level, defs[i].name, &v);

		if (r == -ENOPROTOOPT || r == -EOPNOTSUPP)
			continue;	/* not an option of this socket's protocol */
		if (r) {
			pr_err("pid %d fd %d: reading %s: %s", p->pid, p->fd, defs[i].what,
			       strerror(-r));
			return r;
		}
		o = malloc(sizeof(*o));
		if (!o)
			return -ENOMEM;
		cryo__sock_opt__init(o);
		o->level = defs[i].level;
		o->name = defs[i].name;
		o->value = v;
		(*opts)[(*nopts)++] = o;
	}
	return 0;
}

void sock_opts_free(Cryo__SockOpt **opts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(opts[i]);
	free(opts);
}

int sock_apply_opts(int fd, Cryo__SockOpt *const *opts, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		const Cryo__SockOpt *o = opts[i];
		int v = o->value;

		if (setsockopt(fd, o->level, o->name, &v, sizeof(v)) < 0) {
			int err = errno;

			pr_err("%s: option %d/%d = %d: %s", what, o->level, o->name, v,
			       strerror(err));
			return -err;
		}
	}
	return 0;
}

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
static const struct sock_opt_def inet6_opt = { IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY" };

size_t sock_inet_opts(int family, struct sock_opt_def *defs)
{
	size_t n = sizeof(inet_opts) / sizeof(inet_opts[0]);

	_Static_assert(sizeof(inet_opts) / sizeof(inet_opts[0]) < SOCK_INET_OPTS_MAX,
		       "room for the IPv6 option");
	memcpy(defs, inet_opts, sizeof(inet_opts));
	if (family == AF_INET6)
		defs[n++] = inet6_opt;
	return n;
}

void sock_addr_text(const void *addr, size_t len, char *buf, size_t n)
{
	char host[INET6_ADDRSTRLEN] = "?";
	const struct sockaddr *sa = addr;

	if (len >= sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = addr;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(buf, n, "[%s]:%u", host, ntohs(a->sin6_port));
		return;
	}
	if (len >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = addr;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(buf, n, "%s:%u", host, ntohs(a->sin_port));
		return;
	}
	snprintf(buf, n, "%s:0", host);
}

/* Is a bound address "nothing": an inet socket not bound yet reports
 * the any address with port 0; an unbound unix socket, just the family. */
static int unbound(const struct sockaddr_storage *a, socklen_t len)
{
	if (len <= sizeof(sa_family_t))
		return 1;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_port == 0;
	if (a->ss_family == AF_INET6)
		return ((const struct sockaddr_in6 *)a)->sin6_port == 0;
	return 0;
}

static int dump_addrs(const struct fd_probe *p, Cryo__Socket *s)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	int r;

	if (getsockname(p->local, (struct sockaddr *)&a, &len) < 0)
		return -errno;
	if (!unbound(&a, len)) {
		if ((r = sock_bytes_copy(&s->addr, &a, len)))
			return r;
		s->has_addr = true;
	}
	len = sizeof(a);
	if (getpeername(p->local, (struct sockaddr *)&a, &len) < 0)
		return errno == ENOTCONN ? 0 : -errno;
	if (s->type != SOCK_DGRAM) {
		pr_err("pid %d fd %d: a connected %s socket cannot be saved yet (its peer "
		       "would have to come back with it)", p->pid, p->fd, sock_type_name(s->type));
		return -ENOTSUP;
	}
	if ((r = sock_bytes_copy(&s->peer, &a, len)))
		return r;
	s->has_peer = true;
	return 0;
}

int sock_dump(const struct fd_probe *p, const struct sock_opt_def *defs, size_t ndefs,
	      Cryo__Socket *s)
{
	int listening = 0, r;

	if (p->local < 0)
		return -ENOTSUP;
	if ((r = get_int(p->local, SOL_SOCKET, SO_DOMAIN, &s->family)) ||
	    (r = get_int(p->local, SOL_SOCKET, SO_TYPE, &s->type)) ||
	    (r = get_int(p->local, SOL_SOCKET, SO_PROTOCOL, &s->protocol)) ||
	    (r = get_int(p->local, SOL_SOCKET, SO_ACCEPTCONN, &listening)))
		return r;
	if (s->type != SOCK_STREAM && s->type != SOCK_DGRAM && s->type != SOCK_SEQPACKET) {
		pr_err("pid %d fd %d: %s sockets are not supported", p->pid, p->fd,
		       sock_type_name(s->type));
		return -ENOTSUP;
	}
	if (s->family != AF_UNIX && s->type == SOCK_STREAM && !listening &&
	    (r = tcp_closed(p)))
		return r;
	if ((r = nothing_queued(p, listening, s->family != AF_UNIX && s->type == SOCK_DGRAM)) || (r = dump_addrs(p, s)) ||
	    (r = sock_dump_opts(p, defs, ndefs, &s->opts, &s->n_opts)))
		return r;
	if (listening) {
		s->has_listening = s->listening = true;
		r = proc_sock_backlog(s->family, s->family == AF_UNIX ? 0 : s->protocol,
				      p->st.st_ino, &s->backlog);
		if (r) {
			pr_err("pid %d fd %d: the backlog of the listening socket: %s", p->pid,
			       p->fd, strerror(-r));
			return r;
		}
		s->has_backlog = true;
	}
	return 0;
}

void sock_msg_free(Cryo__Socket *s)
{
	sock_opts_free(s->opts, s->n_opts);
	free(s->addr.data);
	free(s->peer.data);
}

int sock_restore(const Cryo__FdEntry *e, sock_bind_fn bind_fn, sock_bind_fn fill_fn)
{
	Cryo__Socket *s = (Cryo__Socket *)fd_unpack(e, &cryo__socket__descriptor);
	int fd = -1, r = 0;

	if (!s)
		return -EBADMSG;
	fd = socket(s->family, s->type | SOCK_CLOEXEC, s->protocol);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if ((r = sock_apply_opts(fd, s->opts, s->n_opts, e->desc ? e->desc : "socket")))
		goto out;
	if (s->has_addr && (r = bind_fn(fd, s)))
		goto out;
	/* before connect: a connected socket takes datagrams from its peer only */
	if (fill_fn && (r = fill_fn(fd, s)))
		goto out;
	if (s->listening && listen(fd, (int)s->backlog) < 0) {
		r = -errno;
		goto out;
	}
	if (s->has_peer && connect(fd, (const struct sockaddr *)s->peer.data,
				   (socklen_t)s->peer.len) < 0) {
		r = -errno;
		goto out;
	}
	r = fd_place(fd, e, 0);
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	cryo__socket__free_unpacked(s, NULL);
	return r;
}
