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

/* ---- files in flight in a unix socket's queue (unixfds.c) ---- */

#define UNIX_FLIGHT_DEPTH	4	/* sockets in flight carrying more, at most */
#define UNIX_FLIGHT_FDS_MAX	253	/* SCM_MAX_FD: files one message carries */

/* Dump the n files message msg of the socket probed by p carries (cryo's
 * copies, from a MSG_PEEK: the caller closes them) into u->queued_fds.
 * Refuses (-ENOTSUP, logged) a file melt could not bring back. */
int unix_flight_dump(struct fd_dump_ctx *c, const struct fd_probe *p, uint32_t msg,
		     const int *fds, int n, Cryo__UnixConn *u);
/* Free what unix_flight_dump added to u. */
void unix_flight_free(Cryo__UnixConn *u);
/* Files in flight in u's queue, all messages. */
size_t unix_flight_count(const Cryo__UnixConn *u);
/* 1 if message msg of u carries files. */
int unix_flight_has(const Cryo__UnixConn *u, size_t msg);
/* Make the files message msg of u carries and send data with them through
 * sock (a stream takes what the first send left, plain); the files then
 * live in the queue only. */
int unix_flight_send(struct fd_restore_ctx *c, const Cryo__UnixConn *u, size_t msg, int sock,
		     const uint8_t *data, size_t len);
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
