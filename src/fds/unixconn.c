/* "unixconn": a connected unix socket — an end of a socketpair, a
 * connection accepted by a listener, a client connected to one — with the
 * messages queued to it.
 *
 * Dump reads the receive queue WITHOUT taking it: SO_PEEK_OFF on cryo's
 * copy (pidfd_getfd shares the socket), one MSG_PEEK per message, the old
 * peek offset put back. The files messages carry (SCM_RIGHTS) are saved
 * as files in flight (unixfds.c) and sent again with their message.
 *
 * Melt makes one socketpair per connection (the two ends meet through
 * fd_restore_ctx.shared, keyed by the lower inode; ends in two processes
 * are made by the group's root, see fd_ops.object) and sends each end's
 * queue through the other end. A peer outside the group, or one already
 * closed, comes back as a departed peer: its end is closed once the queue
 * is in, so the program reads what was queued, then end of file, and a
 * write fails with EPIPE. Names (a listener's path) are not given back:
 * getsockname/getpeername of a melted connection return unnamed.
 *
 * A datagram socket connected to a named one stays "unix" (it connects to
 * the path again). */
#define LOG_PREFIX "fds/unixconn: "
#include "fds/sock.h"
#include "common/log.h"
#include "proc/sockdiag.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/un.h>
#include <unistd.h>

#define TCP_ESTABLISHED_STATE	1
#define MSG_MAX			(1u << 20)	/* a larger datagram is refused */
#define RCV_SHUTDOWN_BIT	1

static int get_int(int fd, int level, int name, int *v)
{
	socklen_t len = sizeof(*v);

	return getsockopt(fd, level, name, v, &len) < 0 ? -errno : 0;
}

/* A named peer: getpeername gives more than the family. */
static int peer_named(int fd)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);

	return getpeername(fd, (struct sockaddr *)&a, &len) == 0 && len > sizeof(sa_family_t);
}

static int unixconn_match(const struct fd_probe *p)
{
	struct proc_unix_info ui;
	int type, listening = 0;

	if (!S_ISSOCK(p->st.st_mode) || p->local < 0 || sock_domain(p->local) != AF_UNIX)
		return 0;
	if (get_int(p->local, SOL_SOCKET, SO_TYPE, &type) ||
	    get_int(p->local, SOL_SOCKET, SO_ACCEPTCONN, &listening) || listening)
		return 0;
	if (proc_unix_info((uint64_t)p->st.st_ino, &ui))
		return 0;
	if (p->fd <= 2) {
		/* stdin/out/err to outside: "ext" reconnects them by policy */
		char link[64];

		snprintf(link, sizeof(link), "socket:[%" PRIu64 "]", ui.peer_ino);
		if (!ui.peer_ino || !fd_group_holds(p, link))
			return 0;
	}
	if (type == SOCK_DGRAM)
		return ui.peer_ino && !peer_named(p->local);
	return ui.peer_ino || ui.state == TCP_ESTABLISHED_STATE;
}

/* Append one message to u->queued. */
static int push_msg(Cryo__UnixConn *u, const uint8_t *buf, size_t n)
{
	ProtobufCBinaryData *q = realloc(u->queued, (u->n_queued + 1) * sizeof(*q));

	if (!q)
		return -ENOMEM;
	u->queued = q;
	q[u->n_queued].data = malloc(n ? n : 1);
	if (!q[u->n_queued].data)
		return -ENOMEM;
	memcpy(q[u->n_queued].data, buf, n);
	q[u->n_queued++].len = n;
	return 0;
}

/* Append bytes to the last message (a stream's bytes are one run until a
 * message carrying files cuts it). */
static int append_last(Cryo__UnixConn *u, const uint8_t *buf, size_t n)
{
	ProtobufCBinaryData *q = &u->queued[u->n_queued - 1];
	uint8_t *d = realloc(q->data, q->len + n);

	if (!d)
		return -ENOMEM;
	memcpy(d + q->len, buf, n);
	q->data = d;
	q->len += n;
	return 0;
}

/* One peek: its bytes (a datagram: its whole length) and the files it
 * brought into cryo. */
struct peek {
	size_t n;
	int fds[UNIX_FLIGHT_FDS_MAX];
	int nfds;
	int ctrunc;
};

static void peek_close(struct peek *pk)
{
	for (int i = 0; i < pk->nfds; i++)
		close(pk->fds[i]);
	pk->nfds = 0;
}

/* At most cap bytes from byte off of the queue, taking nothing: 1, or 0
 * when the queue ends there, or -errno. */
static int peek_at(const struct fd_probe *p, size_t off, uint8_t *buf, size_t cap, int stream,
		   struct peek *pk)
{
	char ctl[CMSG_SPACE(sizeof(int) * UNIX_FLIGHT_FDS_MAX)];
	struct iovec iov = { buf, cap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	int o = (int)off;
	ssize_t n;

	pk->nfds = 0;
	pk->ctrunc = 0;
	if (off > INT32_MAX)
		return -EOVERFLOW;
	if (setsockopt(p->local, SOL_SOCKET, SO_PEEK_OFF, &o, sizeof(o)) < 0)
		return -errno;
	n = recvmsg(p->local, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC |
		    (stream ? 0 : MSG_TRUNC));
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
			if (pk->nfds < UNIX_FLIGHT_FDS_MAX)
				memcpy(&pk->fds[pk->nfds++], CMSG_DATA(c) + i * sizeof(int),
				       sizeof(int));
	}
	pk->ctrunc = (mh.msg_flags & MSG_CTRUNC) != 0;
	pk->n = (size_t)n;
	return n > 0 || !stream;
}

/* One peeked message (or stream chunk) into u: its bytes, and the files
 * it carries, dumped as files in flight. *merge: the last item of u is a
 * stream's plain bytes, to which more plain bytes go.
 *
 * A stream chunk that brought files ends with the message that carries
 * them, but where that message starts no peek tells: the kernel glues the
 * plain bytes before it into one read, and a peek of even one byte brings
 * the files of the next message that has some. The files are put on the
 * chunk's last byte: a read of the whole message (of any size, of several
 * messages) gets them as before, and so does a reader that reads the plain
 * messages before it on their own; one that takes the files from a first
 * part of their message gets them with its last byte instead. */
static int take_peek(struct fd_dump_ctx *c, const struct fd_probe *p, int stream,
		     const struct peek *pk, uint8_t *buf, Cryo__UnixConn *u, int *merge)
{
	size_t at = 0;
	int r;

	if (pk->ctrunc) {
		pr_err("pid %d fd %d: a queued message carries more control data than cryo "
		       "reads", (int)p->pid, p->fd);
		return -ENOTSUP;
	}
	if (!stream && pk->n > MSG_MAX) {
		pr_err("pid %d fd %d: a queued message of %zu bytes is too large", (int)p->pid,
		       p->fd, pk->n);
		return -ENOTSUP;
	}
	if (!pk->nfds) {
		r = *merge ? append_last(u, buf, pk->n) : push_msg(u, buf, pk->n);
		*merge = stream;
		return r;
	}
	if (stream && pk->n)
		at = pk->n - 1;
	if (at && (r = *merge ? append_last(u, buf, at) : push_msg(u, buf, at)))
		return r;
	*merge = 0;
	if ((r = push_msg(u, buf + at, pk->n - at)))
		return r;
	return unix_flight_dump(c, p, (uint32_t)(u->n_queued - 1), pk->fds, pk->nfds, u);
}

/* The receive queue, message by message, without taking it: each peek at
 * an explicit offset (SO_PEEK_OFF), the old peek offset put back. */
static int read_queue(struct fd_dump_ctx *c, const struct fd_probe *p, int type,
		      Cryo__UnixConn *u)
{
	int old = -1, r, stream = type == SOCK_STREAM, merge = 0, empties = 0;
	uint8_t *buf = malloc(MSG_MAX);
	size_t off = 0;

	if (!buf)
		return -ENOMEM;
	if ((r = get_int(p->local, SOL_SOCKET, SO_PEEK_OFF, &old)))
		goto out;
	for (;;) {
		struct peek pk;
		int got = peek_at(p, off, buf, MSG_MAX, stream, &pk);

		if (got <= 0) {
			r = got;
			break;
		}
		/* the kernel passes a datagram of no bytes once it was peeked,
		 * at an offset that reached it; never loop on one */
		if (!pk.n && ++empties > 1024) {
			peek_close(&pk);
			pr_err("pid %d fd %d: more than 1024 empty datagrams queued", (int)p->pid,
			       p->fd);
			r = -ENOTSUP;
			break;
		}
		r = take_peek(c, p, stream, &pk, buf, u, &merge);
		peek_close(&pk);
		if (r)
			break;
		off += pk.n;
	}
	if (setsockopt(p->local, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)) < 0 && !r)
		r = -errno;
out:
	free(buf);
	return r;
}

static int copy_name(int fd, int peer, ProtobufCBinaryData *b, protobuf_c_boolean *has)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);

	if ((peer ? getpeername(fd, (struct sockaddr *)&a, &len) :
		    getsockname(fd, (struct sockaddr *)&a, &len)) < 0 ||
	    len <= sizeof(sa_family_t))
		return 0;
	b->data = malloc(len);
	if (!b->data)
		return -ENOMEM;
	memcpy(b->data, &a, len);
	b->len = len;
	*has = 1;
	return 0;
}

static void unixconn_msg_free(Cryo__UnixConn *u)
{
	unix_flight_free(u);
	for (size_t i = 0; i < u->n_queued; i++)
		free(u->queued[i].data);
	free(u->queued);
	free(u->addr.data);
	free(u->peer_addr.data);
}

static int unixconn_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__UnixConn u = CRYO__UNIX_CONN__INIT;
	struct proc_unix_info ui;
	char link[64];
	size_t bytes = 0;
	int type, r;

	if ((r = get_int(p->local, SOL_SOCKET, SO_TYPE, &type)) ||
	    (r = proc_unix_info((uint64_t)p->st.st_ino, &ui)))
		return r;
	u.type = type;
	u.ino = (uint64_t)p->st.st_ino;
	snprintf(link, sizeof(link), "socket:[%" PRIu64 "]", ui.peer_ino);
	if (ui.peer_ino && fd_group_holds(p, link)) {
		u.has_peer_ino = 1;
		u.peer_ino = ui.peer_ino;
	}
	u.has_shut_rd = 1;
	u.shut_rd = (ui.shutdown & RCV_SHUTDOWN_BIT) != 0;
	r = read_queue(c, p, type, &u);
	if (!r)
		r = copy_name(p->local, 0, &u.addr, &u.has_addr);
	if (!r)
		r = copy_name(p->local, 1, &u.peer_addr, &u.has_peer_addr);
	if (!r)
		r = fd_pack(e, &u.base);
	for (size_t i = 0; i < u.n_queued; i++)
		bytes += u.queued[i].len;
	if (!r)
		r = fd_set_desc(e, "unix %s %s, %zu messages (%zu bytes, %zu files) queued",
				sock_type_name(type), u.has_peer_ino ? "connected in the group" :
				"peer outside the group", u.n_queued, bytes, unix_flight_count(&u));
	unixconn_msg_free(&u);
	return r;
}

static uint64_t conn_key(const Cryo__UnixConn *u)
{
	return u->has_peer_ino && u->peer_ino < u->ino ? u->peer_ino : u->ino;
}

static uint64_t unixconn_object(const Cryo__FdEntry *e)
{
	Cryo__UnixConn *u = (Cryo__UnixConn *)fd_unpack(e, &cryo__unix_conn__descriptor);
	uint64_t k = u && u->has_peer_ino ? conn_key(u) : 0;

	if (u)
		cryo__unix_conn__free_unpacked(u, NULL);
	return k;
}

/* Send the queue of our end through the other one; then what our end
 * can no longer receive. */
static int refill(struct fd_restore_ctx *c, const Cryo__UnixConn *u, int other)
{
	size_t total = 0;
	int sz;

	for (size_t i = 0; i < u->n_queued; i++)
		total += u->queued[i].len;
	/* root may: the queue fit the sender's buffer at the capture */
	sz = (int)(total * 2 + 65536);
	if (total && setsockopt(other, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		(void)0;	/* the default may well be enough */
	for (size_t i = 0; i < u->n_queued; i++) {
		const uint8_t *d = u->queued[i].data;
		size_t len = u->queued[i].len, off = 0;
		int r;

		if (unix_flight_has(u, i)) {
			if ((r = unix_flight_send(c, u, i, other, d, len)))
				return r;
			continue;
		}
		do {
			ssize_t n = send(other, d + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n < 0)
				return -errno;
			off += (size_t)n;
		} while (off < len && u->type == SOCK_STREAM);
	}
	if (u->shut_rd && shutdown(other, SHUT_WR) < 0)
		return -errno;
	return 0;
}

static int make_pair(struct fd_restore_ctx *c, struct fd_shared *sh, const Cryo__UnixConn *u)
{
	int sv[2];

	if (socketpair(AF_UNIX, u->type | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	sh->fd[0] = fd_move_above(sv[0], c->max_fd + 1);
	sh->fd[1] = fd_move_above(sv[1], c->max_fd + 1);
	return sh->fd[0] < 0 ? sh->fd[0] : sh->fd[1] < 0 ? sh->fd[1] : 0;
}

static int unixconn_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__UnixConn *u = (Cryo__UnixConn *)fd_unpack(e, &cryo__unix_conn__descriptor);
	struct fd_shared *sh;
	int mine, fd, r;

	if (!u)
		return -EBADMSG;
	/* a departed peer: a pair of its own, keyed apart from any pipe */
	sh = fd_shared_get(c, u->has_peer_ino ? conn_key(u) : u->ino);
	if (!sh) {
		r = -ENOMEM;
		goto out;
	}
	if (sh->fd[0] < 0 && sh->fd[1] < 0 && (r = make_pair(c, sh, u)))
		goto fail;
	mine = conn_key(u) == u->ino ? 0 : 1;
	if ((r = refill(c, u, sh->fd[1 - mine])))
		goto fail;
	if (!u->has_peer_ino) {
		close(sh->fd[1]);	/* the peer departs */
		sh->fd[1] = -1;
	}
	fd = sh->fd[mine];
	r = fd_place(fd, e, 0);
	sh->fd[mine] = r ? -1 : (int)e->fd;
	goto out;
fail:
	pr_err("fd %u: %s: %s", e->fd, e->desc ? e->desc : "unix connection", strerror(-r));
out:
	cryo__unix_conn__free_unpacked(u, NULL);
	return r;
}

static void unixconn_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	snprintf(buf, n, "socket %s%s", e->desc ? e->desc : "unix connection",
		 e->cloexec ? " cloexec" : "");
}

static int unixconn_nested(const Cryo__FdEntry *e,
			   int (*fn)(void *arg, const Cryo__FdEntry *n), void *arg)
{
	Cryo__UnixConn *u = (Cryo__UnixConn *)fd_unpack(e, &cryo__unix_conn__descriptor);
	int r = 0;

	if (!u)
		return -EBADMSG;
	for (size_t i = 0; i < u->n_queued_fds && !r; i++)
		for (size_t j = 0; j < u->queued_fds[i]->n_fds && !r; j++)
			r = fn(arg, u->queued_fds[i]->fds[j]);
	cryo__unix_conn__free_unpacked(u, NULL);
	return r;
}

const struct fd_ops fd_ops_unixconn = {
	.name = "unixconn",
	.match = unixconn_match,
	.dump = unixconn_dump,
	.restore = unixconn_restore,
	.object = unixconn_object,
	.nested = unixconn_nested,
	.describe = unixconn_describe,
};
