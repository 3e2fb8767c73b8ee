/* Internal to src/fds: what the socket kinds (inet.c, unix.c) share. A
 * socket comes back when nothing of it is in flight: unbound, bound,
 * listening (pending connections from outside are lost, as if the peer
 * went away), or a connected datagram socket (re-connected to its peer).
 * A TCP connection, or bytes queued either way, is refused; unix
 * connections are "unixconn" (unixconn.c). */
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
 * needs its stale file removed), listen or connect; the fd placed at
 * e->fd. */
typedef int (*sock_bind_fn)(int fd, const Cryo__Socket *s);
int sock_restore(const Cryo__FdEntry *e, sock_bind_fn bind_fn);

const char *sock_type_name(int type);

#endif
