/* "unixconn": a connected unix socket — an end of a socketpair, a
 * connection accepted by a listener, a client connected to one — with the
 * messages queued to it.
 *
 * Dump reads the receive queue WITHOUT taking it: SO_PEEK_OFF on cryo's
 * copy (pidfd_getfd shares the socket), one MSG_PEEK per message, the old
 * peek offset put back. Messages carrying fds (SCM_RIGHTS) are refused.
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

/* One peeked message: its length, or 0 when the queue is empty; a
 * message with fds in it is refused. */
static ssize_t peek_one(const struct fd_probe *p, uint8_t *buf, size_t cap, int stream)
{
	char ctl[CMSG_SPACE(sizeof(int) * 253)];
	struct iovec iov = { buf, cap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	ssize_t n = recvmsg(p->local, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC |
			    (stream ? 0 : MSG_TRUNC));
	int fds = 0;

	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			close(fd);
			fds++;
		}
	}
	if (fds || (mh.msg_flags & MSG_CTRUNC)) {
		pr_err("pid %d fd %d: a queued message carries file descriptors; they cannot "
		       "be saved yet", (int)p->pid, p->fd);
		return -ENOTSUP;
	}
	if (!stream && (size_t)n > cap) {
		pr_err("pid %d fd %d: a queued message of %zd bytes is too large", (int)p->pid,
		       p->fd, n);
		return -ENOTSUP;
	}
	return n;
}

/* The receive queue, message by message, without taking it. */
static int read_queue(const struct fd_probe *p, int type, Cryo__UnixConn *u)
{
	int old = -1, zero = 0, r = 0, stream = type == SOCK_STREAM;
	uint8_t *buf = malloc(MSG_MAX);
	size_t total = 0;

	if (!buf)
		return -ENOMEM;
	if ((r = get_int(p->local, SOL_SOCKET, SO_PEEK_OFF, &old)) ||
	    setsockopt(p->local, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0) {
		r = r ? r : -errno;
		free(buf);
		return r;
	}
	for (;;) {
		ssize_t n = peek_one(p, buf, MSG_MAX, stream);

		if (n < 0)
			r = (int)n;
		if (n <= 0)
			break;
		total += (size_t)n;
		r = push_msg(u, buf, (size_t)n);
		if (r)
			break;
	}
	if (setsockopt(p->local, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)) < 0 && !r)
		r = -errno;
	/* a stream's chunks are one byte stream: keep them as one */
	if (!r && stream && u->n_queued > 1) {
		uint8_t *all = malloc(total);
		size_t off = 0;

		if (!all)
			r = -ENOMEM;
		for (size_t i = 0; !r && i < u->n_queued; i++) {
			memcpy(all + off, u->queued[i].data, u->queued[i].len);
			off += u->queued[i].len;
			free(u->queued[i].data);
		}
		if (!r) {
			u->queued[0].data = all;
			u->queued[0].len = total;
			u->n_queued = 1;
		}
	}
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

	(void)c;
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
	r = read_queue(p, type, &u);
	if (!r)
		r = copy_name(p->local, 0, &u.addr, &u.has_addr);
	if (!r)
		r = copy_name(p->local, 1, &u.peer_addr, &u.has_peer_addr);
	if (!r)
		r = fd_pack(e, &u.base);
	for (size_t i = 0; i < u.n_queued; i++)
		bytes += u.queued[i].len;
	if (!r)
		r = fd_set_desc(e, "unix %s %s, %zu messages (%zu bytes) queued",
				sock_type_name(type), u.has_peer_ino ? "connected in the group" :
				"peer outside the group", u.n_queued, bytes);
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
static int refill(const Cryo__UnixConn *u, int other)
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
	if ((r = refill(u, sh->fd[1 - mine])))
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

const struct fd_ops fd_ops_unixconn = {
	.name = "unixconn",
	.match = unixconn_match,
	.dump = unixconn_dump,
	.restore = unixconn_restore,
	.object = unixconn_object,
	.describe = unixconn_describe,
};
