/* Internal to src/fds: what the socket kinds (inet.c, unix.c) share. A
 * socket comes back when nothing of it is in flight: unbound, bound,
 * listening (pending connections from outside are lost, as if the peer
 * went away), or a connected datagram socket (re-connected to its peer).
 * A UDP socket keeps its queued datagrams (inet.c); bytes queued to
 * another socket are refused. TCP connections are "tcp" (tcp.c), unix
 * connections "unixconn" (unixconn.c). */
#ifndef CRYO_FDS_SOCK_H
#define CRYO_FDS_SOCK_H

#include <sys/socket.h>

#include "fds/fd_priv.h"

/* An option worth carrying over: an int getsockopt can read and
 * setsockopt can write back unchanged. */
struct sock_opt_def {
	int level, name;
	const char *what;
};

/* SO_DOMAIN of the socket open at fd, or -errno. */
int sock_domain(int fd);

/* Fill s from the socket open at p->local: type, protocol, address,
 * listening and backlog, peer of a datagram socket, the options of defs.
 * Refuses (-ENOTSUP, logged) what cannot come back. The caller frees
 * with sock_msg_free. */
int sock_dump(const struct fd_probe *p, const struct sock_opt_def *defs, size_t ndefs,
	      Cryo__Socket *s);
void sock_msg_free(Cryo__Socket *s);

/* socket(), the options, then `bind_fn` (the kind's bind: a unix path
 * needs its stale file removed), `fill_fn` if any (what was queued to it),
 * listen or connect; the fd placed at e->fd. */
typedef int (*sock_bind_fn)(int fd, const Cryo__Socket *s);
int sock_restore(const Cryo__FdEntry *e, sock_bind_fn bind_fn, sock_bind_fn fill_fn);

const char *sock_type_name(int type);

/* b = a malloc'd copy of p[0..n). */
int sock_bytes_copy(ProtobufCBinaryData *b, const void *p, size_t n);

/* int getsockopt; 0 or -errno. */
int sock_get_int(int fd, int level, int name, int *v);
/* Read the options of defs from the socket at p->local into *opts
 * (malloc'd array of malloc'd entries; those the protocol lacks are
 * skipped); free with sock_opts_free. */
int sock_dump_opts(const struct fd_probe *p, const struct sock_opt_def *defs, size_t n,
		   Cryo__SockOpt ***opts, size_t *nopts);
void sock_opts_free(Cryo__SockOpt **opts, size_t n);
/* Set the options on fd; the first that fails is logged (what names the
 * socket) and its -errno returned. */
int sock_apply_opts(int fd, Cryo__SockOpt *const *opts, size_t n, const char *what);
/* "127.0.0.1:80", "[::1]:80" of a sockaddr's bytes. */
void sock_addr_text(const void *addr, size_t len, char *buf, size_t n);
/* The options "inet" and "tcp" carry over, for family (IPV6_V6ONLY only
 * for AF_INET6): into defs (room for SOCK_INET_OPTS_MAX), their count. */
#define SOCK_INET_OPTS_MAX 16
size_t sock_inet_opts(int family, struct sock_opt_def *defs);

#endif
