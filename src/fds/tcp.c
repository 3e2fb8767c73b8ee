/* "tcp": a TCP socket in any state but LISTEN and CLOSE: a connection,
 * one in the making (SYN_SENT), or one half closed. Melt makes it one of
 * two ways (TcpConn.mode):
 *
 * REPAIRED, when its peer is in the group too (both ends come back) or
 * the user froze the group with --tcp-established: dump puts the socket
 * in TCP repair mode and reads its sequence numbers, both queues (with
 * MSG_PEEK in repair mode: nothing is taken), its MSS, window scaling,
 * SACK, timestamps and window. Melt makes a socket in repair mode that
 * takes the same 4-tuple, the same numbers and queues; cryo takes it out
 * of repair mode (resume) just before the group runs again. A FIN sent
 * or received is given back by shutdown() once out of repair mode.
 *
 * While the state is read, and from freeze to melt for a peer outside the
 * group, a hold (tcphold.h) drops every packet of the 4-tuple: nothing
 * arrives that the image would miss, and the peer's retransmissions meet
 * silence instead of the reset a port without a socket answers with. A
 * socket closed in repair mode (the frozen process killed) sends nothing.
 * The peer never notices more than a pause, and the conversation goes on
 * when its retransmission timer next fires.
 *
 * RESET, otherwise (a plain snapshot, a freeze without the option, a
 * connection in the making, or a hold that is gone at melt): the peer
 * outside the group went away, the way a peer that went away looks. Melt
 * makes a real connection to a throw-away listener on loopback, has that
 * peer send the bytes the socket had received and not read, and then
 * reset it (SO_LINGER 0 and close) or, if the real peer had closed, close
 * it: the program reads what was queued, then ECONNRESET once (or end of
 * file), and a write fails with EPIPE; a connection in the making is
 * refused (ECONNREFUSED), by a port without a listener. */
#define LOG_PREFIX "fds/tcp: "
#include "fds/sock.h"
#include "fds/tcphold.h"
#include "common/log.h"
#include "common/vec.h"
#include "proc/sockdiag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* The kernel's TCP states (include/net/tcp_states.h). */
enum {
	ST_ESTABLISHED = 1, ST_SYN_SENT, ST_SYN_RECV, ST_FIN_WAIT1, ST_FIN_WAIT2,
	ST_TIME_WAIT, ST_CLOSE, ST_CLOSE_WAIT, ST_LAST_ACK, ST_LISTEN, ST_CLOSING,
};

#define INLINE_MAX	(16u << 10)	/* a larger queue goes to a content space */
#define QUEUE_MAX	(256u << 20)	/* a larger queue is refused */
#define SETTLE_MS	5000		/* the throw-away peer's bytes and reset */
#define READ_TRIES	8		/* reads of a connection until it is still */

/* One connection of the capture in repair mode and/or held (fd.h). */
struct fd_tcp_held {
	int fd;				/* cryo's copy of the socket */
	struct tcp_tuple t;
	bool held;			/* its hold is ours to lift */
	bool repair;			/* repair mode is on */
	bool keep;			/* peer outside: held on after freeze */
	int reuse;			/* SO_REUSEADDR to put back (repair resets it) */
};

static const char *state_name(uint32_t st)
{
	static const char *const n[] = {
		"?", "established", "syn-sent", "syn-recv", "fin-wait1", "fin-wait2",
		"time-wait", "close", "close-wait", "last-ack", "listen", "closing",
	};

	return st < sizeof(n) / sizeof(n[0]) ? n[st] : "?";
}

static int tcp_state(int fd, uint32_t *st, struct tcp_info *out)
{
	struct tcp_info ti = { 0 };
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -errno;
	*st = ti.tcpi_state;
	if (out)
		*out = ti;
	return 0;
}

/* States repair can give back: established, and half closed ones (made
 * as established, then shut down the way they were). */
static int repairable(uint32_t st)
{
	return st == ST_ESTABLISHED || st == ST_CLOSE_WAIT || st == ST_FIN_WAIT1 ||
	       st == ST_FIN_WAIT2 || st == ST_LAST_ACK || st == ST_CLOSING;
}

static int fin_sent(uint32_t st)
{
	return st == ST_FIN_WAIT1 || st == ST_FIN_WAIT2 || st == ST_LAST_ACK ||
	       st == ST_CLOSING;
}

static int fin_rcvd(uint32_t st)
{
	return st == ST_CLOSE_WAIT || st == ST_LAST_ACK || st == ST_CLOSING;
}

static int tcp_match(const struct fd_probe *p)
{
	int d, type, proto;
	uint32_t st = 0;

	if (!S_ISSOCK(p->st.st_mode) || p->local < 0)
		return 0;
	d = sock_domain(p->local);
	if ((d != AF_INET && d != AF_INET6) ||
	    sock_get_int(p->local, SOL_SOCKET, SO_TYPE, &type) || type != SOCK_STREAM ||
	    sock_get_int(p->local, SOL_SOCKET, SO_PROTOCOL, &proto) || proto != IPPROTO_TCP ||
	    tcp_state(p->local, &st, NULL))
		return 0;
	return st != ST_LISTEN && st != ST_CLOSE;
}

/* ---- dump ---- */

static int set_int(int fd, int level, int name, int v)
{
	return setsockopt(fd, level, name, &v, sizeof(v)) < 0 ? -errno : 0;
}

/* Peek at most cap bytes of the queue repair mode selects (or, outside
 * repair mode, of the receive queue), without taking them: a peek offset
 * the program set is put aside meanwhile. */
static int peek_queue(int fd, size_t cap, uint8_t **out, size_t *len)
{
	int old = -1, none = -1, has_off;
	uint8_t *buf = malloc(cap + 1);
	ssize_t n;

	*out = NULL;
	*len = 0;
	if (!buf)
		return -ENOMEM;
	has_off = sock_get_int(fd, SOL_SOCKET, SO_PEEK_OFF, &old) == 0 && old >= 0;
	if (has_off && setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &none, sizeof(none)) < 0)
		has_off = 0;
	n = recv(fd, buf, cap + 1, MSG_PEEK | MSG_DONTWAIT);
	if (has_off)
		(void)setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		n = 0;
	if (n < 0) {
		int err = -errno;

		free(buf);
		return err;
	}
	*out = buf;
	*len = (size_t)n;
	return 0;
}

/* A queue into the message: inline when small, else as pages. */
static int queue_put(struct fd_dump_ctx *c, const uint8_t *buf, size_t len,
		     ProtobufCBinaryData *inl, protobuf_c_boolean *has_inl, uint32_t *space,
		     protobuf_c_boolean *has_space, uint64_t *qlen, protobuf_c_boolean *has_len)
{
	int r;

	if (!len)
		return 0;
	if (len <= INLINE_MAX) {
		*has_inl = 1;
		return sock_bytes_copy(inl, buf, len);
	}
	r = fd_bytes_save(c, buf, len, space);
	if (r)
		return r;
	*has_space = *has_len = 1;
	*qlen = len;
	return 0;
}

static int recv_queue_put(struct fd_dump_ctx *c, Cryo__TcpConn *m, const uint8_t *buf,
			  size_t len)
{
	return queue_put(c, buf, len, &m->recv_queue, &m->has_recv_queue, &m->recv_space,
			 &m->has_recv_space, &m->recv_len, &m->has_recv_len);
}

static int send_queue_put(struct fd_dump_ctx *c, Cryo__TcpConn *m, const uint8_t *buf,
			  size_t len)
{
	return queue_put(c, buf, len, &m->send_queue, &m->has_send_queue, &m->send_space,
			 &m->has_send_space, &m->send_len, &m->has_send_len);
}

/* The socket's two addresses; the peer may be unknown (SYN_SENT). */
static int dump_names(const struct fd_probe *p, Cryo__TcpConn *m)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	int r;

	if (getsockname(p->local, (struct sockaddr *)&a, &len) < 0)
		return -errno;
	if ((r = sock_bytes_copy(&m->addr, &a, len)))
		return r;
	len = sizeof(a);
	if (getpeername(p->local, (struct sockaddr *)&a, &len) < 0) {
		if (errno != ENOTCONN)
			return -errno;
		len = 0;
	}
	return sock_bytes_copy(&m->peer, &a, len);
}

/* Whether a process of the group holds the other end: the socket whose
 * local end is our remote one. */
static int peer_in_group(const struct fd_probe *p, const struct tcp_tuple *t, uint64_t *ino)
{
	char link[64];

	*ino = 0;
	if (proc_inet_sock_ino(t->family, t->raddr, t->rport, t->laddr, t->lport, ino) || !*ino)
		return 0;
	snprintf(link, sizeof(link), "socket:[%" PRIu64 "]", *ino);
	return fd_group_holds(p, link);
}

/* What the connection is, read until two reads agree: a packet that got
 * past the hold before it was in place may still be taken in meanwhile. */
struct tcp_snapshot {
	uint32_t rseq, wseq;
	int inq, outq, unsent;
	uint8_t *rbuf, *sbuf;
	size_t rlen, slen;
};

static int queue_seq(int fd, int q, uint32_t *seq)
{
	socklen_t len = sizeof(*seq);
	int r = set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, q);

	if (!r && getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, seq, &len) < 0)
		r = -errno;
	return r;
}

static int counts(int fd, struct tcp_snapshot *s)
{
	if (ioctl(fd, SIOCINQ, &s->inq) < 0 || ioctl(fd, SIOCOUTQ, &s->outq) < 0 ||
	    ioctl(fd, SIOCOUTQNSD, &s->unsent) < 0)
		return -errno;
	return 0;
}

static int read_once(int fd, struct tcp_snapshot *s)
{
	int r;

	if ((r = counts(fd, s)))
		return r;
	if (s->inq < 0 || s->outq < 0 || (size_t)s->inq > QUEUE_MAX || (size_t)s->outq > QUEUE_MAX)
		return -E2BIG;
	if ((r = queue_seq(fd, TCP_RECV_QUEUE, &s->rseq)) ||
	    (r = peek_queue(fd, (size_t)s->inq + 1, &s->rbuf, &s->rlen)) ||
	    (r = queue_seq(fd, TCP_SEND_QUEUE, &s->wseq)) ||
	    (r = peek_queue(fd, (size_t)s->outq + 1, &s->sbuf, &s->slen)))
		return r;
	return set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
}

static void snapshot_free(struct tcp_snapshot *s)
{
	free(s->rbuf);
	free(s->sbuf);
	s->rbuf = s->sbuf = NULL;
}

static int read_still(const struct fd_probe *p, struct tcp_snapshot *s)
{
	for (int i = 0; i < READ_TRIES; i++) {
		struct tcp_snapshot again;
		uint32_t seq;
		int r = read_once(p->local, s);

		if (!r)
			r = counts(p->local, &again);
		if (!r)
			r = queue_seq(p->local, TCP_RECV_QUEUE, &seq);
		(void)set_int(p->local, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
		if (r) {
			pr_err("pid %d fd %d: reading the connection in repair mode: %s", p->pid,
			       p->fd, strerror(-r));
			return r;
		}
		if (seq == s->rseq && again.inq == s->inq && again.outq == s->outq &&
		    again.unsent == s->unsent)
			return 0;
		snapshot_free(s);
	}
	pr_err("pid %d fd %d: the connection kept changing while it was held", p->pid, p->fd);
	return -EAGAIN;
}

static struct fd_tcp_held *held_add(struct fd_dump_ctx *c, const struct fd_probe *p,
				    const struct tcp_tuple *t)
{
	struct fd_tcp_held *h;

	if (vec_reserve((void **)&c->held, &c->held_cap, c->nheld + 1, sizeof(*h)))
		return NULL;
	h = &c->held[c->nheld];
	*h = (struct fd_tcp_held){ .fd = fcntl(p->local, F_DUPFD_CLOEXEC, 0), .t = *t };
	if (h->fd < 0)
		return NULL;
	c->nheld++;
	return h;
}

/* Options and counters that repair gives back. */
static int dump_repair_opts(const struct fd_probe *p, Cryo__TcpConn *m, Cryo__TcpWindow *w)
{
	struct tcp_repair_window rw;
	struct tcp_info ti = { 0 };
	socklen_t len;
	uint32_t st, v;
	int iv, r = tcp_state(p->local, &st, &ti);

	if (r)
		return r;
	m->has_sack = m->has_timestamps = m->has_wscale = 1;
	m->sack = (ti.tcpi_options & TCPI_OPT_SACK) != 0;
	m->timestamps = (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) != 0;
	m->wscale = (ti.tcpi_options & TCPI_OPT_WSCALE) != 0;
	if (m->wscale) {
		m->has_snd_wscale = m->has_rcv_wscale = 1;
		m->snd_wscale = ti.tcpi_snd_wscale;
		m->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	if (!sock_get_int(p->local, IPPROTO_TCP, TCP_MAXSEG, &iv) && iv > 0) {
		m->has_mss = 1;
		m->mss = (uint32_t)iv;
	}
	len = sizeof(v);
	if (m->timestamps && getsockopt(p->local, IPPROTO_TCP, TCP_TIMESTAMP, &v, &len) == 0) {
		m->has_tsval = 1;
		m->tsval = v;
	}
	len = sizeof(rw);
	if (getsockopt(p->local, IPPROTO_TCP, TCP_REPAIR_WINDOW, &rw, &len) == 0 &&
	    len == sizeof(rw)) {
		w->snd_wl1 = rw.snd_wl1;
		w->snd_wnd = rw.snd_wnd;
		w->max_window = rw.max_window;
		w->rcv_wnd = rw.rcv_wnd;
		w->rcv_wup = rw.rcv_wup;
		m->window = w;
	}
	if (!sock_get_int(p->local, SOL_SOCKET, SO_SNDBUF, &iv) && iv > 0) {
		m->has_sndbuf = 1;
		m->sndbuf = (uint32_t)iv;
	}
	if (!sock_get_int(p->local, SOL_SOCKET, SO_RCVBUF, &iv) && iv > 0) {
		m->has_rcvbuf = 1;
		m->rcvbuf = (uint32_t)iv;
	}
	return 0;
}

/* Hold the connection, put it in repair mode, read it. */
static int dump_repaired(struct fd_dump_ctx *c, const struct fd_probe *p,
			 const struct tcp_tuple *t, int inside, Cryo__TcpConn *m,
			 Cryo__TcpWindow *w)
{
	struct tcp_snapshot s = { 0 };
	struct fd_tcp_held *h = held_add(c, p, t);
	uint32_t fs = fin_sent(m->state), fr = fin_rcvd(m->state);
	size_t unsent;
	int r;

	if (!h)
		return -ENOMEM;
	h->keep = !inside;
	sock_get_int(p->local, SOL_SOCKET, SO_REUSEADDR, &h->reuse);
	if ((r = tcp_hold_add(t)))
		return r;
	h->held = true;
	if ((r = set_int(p->local, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON))) {
		pr_err("pid %d fd %d: TCP repair mode: %s", p->pid, p->fd, strerror(-r));
		return r;
	}
	h->repair = true;
	if ((r = read_still(p, &s)))
		goto out;
	/* Sequence numbers say where the data ends; a FIN took one more. */
	unsent = s.unsent > 0 ? (size_t)s.unsent - fs : 0;
	if (unsent > s.slen)
		unsent = s.slen;
	m->has_snd_seq = m->has_rcv_seq = m->has_unsent = 1;
	m->snd_seq = s.wseq - fs;
	m->rcv_seq = s.rseq - fr;
	m->unsent = unsent;
	m->has_fin_sent = m->has_fin_rcvd = 1;
	m->fin_sent = fs;
	m->fin_rcvd = fr;
	if ((r = recv_queue_put(c, m, s.rbuf, s.rlen)) ||
	    (r = send_queue_put(c, m, s.sbuf, s.slen)))
		goto out;
	r = dump_repair_opts(p, m, w);
	m->has_held = 1;
	m->held = c->freeze && !inside;
out:
	snapshot_free(&s);
	return r;
}

/* What a reset connection needs: the bytes the program will still read. */
static int dump_reset(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__TcpConn *m)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int inq = 0, r;

	if (m->state == ST_SYN_SENT || m->state == ST_SYN_RECV)
		return 0;
	if (ioctl(p->local, SIOCINQ, &inq) < 0)
		return -errno;
	if (inq < 0 || (size_t)inq > QUEUE_MAX)
		return -E2BIG;
	if (!inq)
		return 0;
	r = peek_queue(p->local, (size_t)inq, &buf, &len);
	if (!r)
		r = recv_queue_put(c, m, buf, len);
	free(buf);
	return r;
}

static void tcp_msg_free(Cryo__TcpConn *m)
{
	sock_opts_free(m->opts, m->n_opts);
	free(m->addr.data);
	free(m->peer.data);
	free(m->recv_queue.data);
	free(m->send_queue.data);
}

static uint64_t queue_len(const ProtobufCBinaryData *inl, protobuf_c_boolean has_len,
			  uint64_t len)
{
	return has_len ? len : inl->len;
}

static int tcp_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__TcpConn m = CRYO__TCP_CONN__INIT;
	Cryo__TcpWindow w = CRYO__TCP_WINDOW__INIT;
	struct sock_opt_def defs[SOCK_INET_OPTS_MAX];
	struct tcp_tuple t;
	char where[128] = "unconnected", *what;
	uint64_t ino = 0;
	int inside = 0, r;

	m.family = sock_domain(p->local);
	if ((r = tcp_state(p->local, &m.state, NULL)) || (r = dump_names(p, &m)) ||
	    (r = sock_dump_opts(p, defs, sock_inet_opts(m.family, defs), &m.opts, &m.n_opts)))
		goto out;
	m.has_ino = 1;
	m.ino = (uint64_t)p->st.st_ino;
	if (m.peer.len && !tcp_tuple_of(m.addr.data, m.addr.len, m.peer.data, m.peer.len, &t)) {
		tcp_tuple_text(&t, where, sizeof(where));
		inside = peer_in_group(p, &t, &ino);
	}
	if (inside) {
		m.has_peer_ino = 1;
		m.peer_ino = ino;
	}
	m.mode = repairable(m.state) && m.peer.len && (inside || (c->tcp_established && c->freeze)) ?
		 CRYO__TCP_MODE__TCP_REPAIRED : CRYO__TCP_MODE__TCP_RESET;
	r = m.mode == CRYO__TCP_MODE__TCP_REPAIRED ? dump_repaired(c, p, &t, inside, &m, &w) :
						     dump_reset(c, p, &m);
	if (r)
		goto out;
	r = fd_pack(e, &m.base);
	what = m.mode == CRYO__TCP_MODE__TCP_RESET ? "reset at melt" :
	       inside ? "repaired, peer in the group" : m.held ? "repaired, held" : "repaired";
	if (!r)
		r = fd_set_desc(e, "tcp%s %s %s, %s, %" PRIu64 " bytes queued in, %" PRIu64 " out",
				m.family == AF_INET6 ? "6" : "", where, state_name(m.state), what,
				queue_len(&m.recv_queue, m.has_recv_len, m.recv_len),
				queue_len(&m.send_queue, m.has_send_len, m.send_len));
out:
	tcp_msg_free(&m);
	return r;
}

/* ---- the end of a capture ---- */

void fd_dump_thaw(struct fd_dump_ctx *c)
{
	for (size_t i = 0; i < c->nheld; i++) {
		struct fd_tcp_held *h = &c->held[i];

		/* the hold first: the window probe leaving repair mode sends
		 * must get out */
		if (h->held)
			(void)tcp_hold_del(&h->t);
		if (h->repair) {
			(void)set_int(h->fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
			if (set_int(h->fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF))
				pr_warn("a TCP connection could not leave repair mode: %s",
					strerror(errno));
			(void)set_int(h->fd, SOL_SOCKET, SO_REUSEADDR, h->reuse);
		}
		close(h->fd);
	}
	free(c->held);
	c->held = NULL;
	c->nheld = c->held_cap = 0;
}

void fd_dump_frozen(struct fd_dump_ctx *c)
{
	for (size_t i = 0; i < c->nheld; i++) {
		struct fd_tcp_held *h = &c->held[i];

		close(h->fd);	/* the last reference: closed in repair mode, silently */
		if (h->held && !h->keep)
			(void)tcp_hold_del(&h->t);
	}
	free(c->held);
	c->held = NULL;
	c->nheld = c->held_cap = 0;
}

/* ---- melt ---- */

/* A queue of the message: its bytes (*own set when malloc'd). */
static int queue_get(struct fd_restore_ctx *c, const ProtobufCBinaryData *inl,
		     protobuf_c_boolean has_space, uint32_t space, uint64_t len,
		     const uint8_t **out, size_t *olen, uint8_t **own)
{
	int r;

	*own = NULL;
	if (!has_space) {
		*out = inl->data;
		*olen = inl->len;
		return 0;
	}
	if (len > QUEUE_MAX)
		return -E2BIG;
	r = fd_bytes_load(c->snap, space, len, own);
	*out = *own;
	*olen = (size_t)len;
	return r;
}

static int send_all(int fd, const uint8_t *d, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, d + off, len - off > (64u << 10) ? (64u << 10) : len - off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

/* A buffer big enough for len queued bytes: forced (root) only when the
 * kernel's own would not do, since a set size ends its autotuning. */
static void buf_fit(int fd, int name, int force, size_t len, uint32_t saved)
{
	int have = 0, want = (int)(len * 2 + 65536);

	if (!len || sock_get_int(fd, SOL_SOCKET, name, &have) || (size_t)have >= len * 2)
		return;
	if ((uint32_t)want < saved / 2)
		want = (int)(saved / 2);
	(void)set_int(fd, SOL_SOCKET, force, want);
}

static int set_repair_opts(int fd, const Cryo__TcpConn *m)
{
	struct tcp_repair_opt o[4];
	int n = 0;

	if (m->has_mss)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, m->mss };
	if (m->wscale)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_WINDOW, m->snd_wscale | (m->rcv_wscale << 16) };
	if (m->sack)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (m->timestamps)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if (n && setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, o, (socklen_t)(n * sizeof(o[0]))) < 0)
		return -errno;
	if (m->timestamps && m->has_tsval &&
	    set_int(fd, IPPROTO_TCP, TCP_TIMESTAMP, (int)m->tsval))
		return -errno;
	return 0;
}

static int set_window(int fd, const Cryo__TcpWindow *w)
{
	struct tcp_repair_window rw = {
		.snd_wl1 = w->snd_wl1, .snd_wnd = w->snd_wnd, .max_window = w->max_window,
		.rcv_wnd = w->rcv_wnd, .rcv_wup = w->rcv_wup,
	};

	return setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &rw, sizeof(rw)) < 0 ? -errno : 0;
}

/* The option that must come before bind (which addresses an IPv6 socket
 * takes). */
static int set_v6only(int fd, const Cryo__TcpConn *m)
{
	for (size_t i = 0; i < m->n_opts; i++)
		if (m->opts[i]->level == IPPROTO_IPV6 && m->opts[i]->name == IPV6_V6ONLY)
			return set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, m->opts[i]->value);
	return 0;
}

/* The queued bytes, in repair mode: what was received into the receive
 * queue; of the send queue, what was sent (it counts as in flight and is
 * sent again by the retransmission timer); the unsent tail goes through
 * the normal path once repair mode is off (tcp_resume). */
static int fill_queues(struct fd_restore_ctx *c, int fd, const Cryo__TcpConn *m)
{
	const uint8_t *rq, *sq;
	uint8_t *rown = NULL, *sown = NULL;
	size_t rlen = 0, slen = 0;
	int r;

	if ((r = queue_get(c, &m->recv_queue, m->has_recv_space, m->recv_space, m->recv_len,
			   &rq, &rlen, &rown)) ||
	    (r = queue_get(c, &m->send_queue, m->has_send_space, m->send_space, m->send_len,
			   &sq, &slen, &sown)))
		goto out;
	if (m->unsent > slen) {
		r = -EBADMSG;
		goto out;
	}
	buf_fit(fd, SO_RCVBUF, SO_RCVBUFFORCE, rlen, m->rcvbuf);
	buf_fit(fd, SO_SNDBUF, SO_SNDBUFFORCE, slen, m->sndbuf);
	if ((r = set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)) ||
	    (r = send_all(fd, rq, rlen)))
		goto out;
	if (m->window && (r = set_window(fd, m->window)))
		goto out;
	if ((r = set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)) ||
	    (r = send_all(fd, sq, slen - (size_t)m->unsent)))
		goto out;
	r = set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
out:
	free(rown);
	free(sown);
	return r;
}

static uint64_t q_len(const ProtobufCBinaryData *inl, protobuf_c_boolean has_space, uint64_t len)
{
	return has_space ? len : inl->len;
}

static int seq_set(int fd, int q, uint32_t seq)
{
	int r = set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, q);

	return r ? r : set_int(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)seq);
}

/* A socket in repair mode with the connection's tuple, numbers, options
 * and queues; it leaves repair mode in tcp_resume. */
static int make_repaired(struct fd_restore_ctx *c, const Cryo__TcpConn *m, int *out)
{
	uint64_t rl = q_len(&m->recv_queue, m->has_recv_space, m->recv_len);
	uint64_t sl = q_len(&m->send_queue, m->has_send_space, m->send_len);
	const char *step = "socket";
	int fd = socket(m->family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP), r;

	if (fd < 0)
		return -errno;
	if ((r = set_v6only(fd, m)))
		goto fail;
	step = "repair mode";
	if ((r = set_int(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON)))
		goto fail;
	step = "sequence numbers";
	if ((r = seq_set(fd, TCP_SEND_QUEUE, m->snd_seq - (uint32_t)sl)) ||
	    (r = seq_set(fd, TCP_RECV_QUEUE, m->rcv_seq - (uint32_t)rl)))
		goto fail;
	step = "bind";
	if (bind(fd, (const struct sockaddr *)m->addr.data, (socklen_t)m->addr.len) < 0) {
		r = -errno;
		goto fail;
	}
	step = "connect";
	if (connect(fd, (const struct sockaddr *)m->peer.data, (socklen_t)m->peer.len) < 0) {
		r = -errno;
		goto fail;
	}
	step = "options";
	if ((r = set_repair_opts(fd, m)))
		goto fail;
	step = "queues";
	if ((r = fill_queues(c, fd, m)))
		goto fail;
	*out = fd;
	return 0;
fail:
	pr_err("repairing the connection: %s: %s", step, strerror(-r));
	close(fd);
	return r;
}

/* ---- a connection whose peer went away ---- */

static void loopback(int family, struct sockaddr_storage *a, socklen_t *len)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)a;

		s->sin6_family = AF_INET6;
		s->sin6_addr = in6addr_loopback;
		*len = sizeof(*s);
	} else {
		struct sockaddr_in *s = (struct sockaddr_in *)a;

		s->sin_family = AF_INET;
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*s);
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait (bounded) until fd is in state want (or, want 0, no longer in
 * SYN_SENT / ESTABLISHED) with at least inq bytes to read. */
static int settle(int fd, uint32_t want, int inq)
{
	uint64_t end = now_ms() + SETTLE_MS;

	for (;;) {
		uint32_t st = 0;
		int have = 0;

		if (tcp_state(fd, &st, NULL) || ioctl(fd, SIOCINQ, &have) < 0)
			return -errno;
		if (have >= inq && (want ? st == want : st != ST_SYN_SENT && st != ST_ESTABLISHED))
			return 0;
		if (now_ms() > end)
			return -ETIMEDOUT;
		poll(NULL, 0, 1);
	}
}

/* The throw-away peer: a listener (or, for a refusal, a port with a bound
 * socket and no listener) on loopback of the family. */
static int throwaway(int family, int listening, struct sockaddr_storage *a, socklen_t *len)
{
	int l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0)
		return -errno;
	loopback(family, a, len);
	if (bind(l, (struct sockaddr *)a, *len) < 0 || (listening && listen(l, 1) < 0) ||
	    getsockname(l, (struct sockaddr *)a, len) < 0) {
		int err = -errno;

		close(l);
		return err;
	}
	return l;
}

/* The peer's part: the bytes, then a reset or its close. */
static int peer_departs(int a, int fd, const uint8_t *q, size_t len, int closed)
{
	struct linger lg = { 1, 0 };
	int r;

	buf_fit(a, SO_SNDBUF, SO_SNDBUFFORCE, len, 0);
	if ((r = send_all(a, q, len)) || (r = settle(fd, ST_ESTABLISHED, (int)len)))
		return r;
	if (closed) {
		if (shutdown(a, SHUT_WR) < 0)
			return -errno;
		return settle(fd, ST_CLOSE_WAIT, (int)len);
	}
	if (setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		return -errno;
	return 0;
}

static int make_reset(struct fd_restore_ctx *c, const Cryo__FdEntry *e, const Cryo__TcpConn *m,
		      int *out)
{
	int refused = m->state == ST_SYN_SENT || m->state == ST_SYN_RECV;
	int closed = fin_rcvd(m->state), fd = -1, l, a = -1, r;
	struct sockaddr_storage at;
	socklen_t alen;
	const uint8_t *q;
	uint8_t *own = NULL;
	size_t qlen = 0;

	if ((r = queue_get(c, &m->recv_queue, m->has_recv_space, m->recv_space, m->recv_len, &q,
			   &qlen, &own)))
		return r;
	l = throwaway(m->family, !refused, &at, &alen);
	if (l < 0) {
		r = l;
		goto out;
	}
	fd = socket(m->family, SOCK_STREAM | SOCK_CLOEXEC | (refused ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if ((r = sock_apply_opts(fd, m->opts, m->n_opts, e->desc ? e->desc : "tcp")))
		goto out;
	buf_fit(fd, SO_RCVBUF, SO_RCVBUFFORCE, qlen, m->rcvbuf);
	if (connect(fd, (struct sockaddr *)&at, alen) < 0 && errno != EINPROGRESS) {
		r = -errno;
		goto out;
	}
	if (refused) {
		r = settle(fd, 0, 0);	/* the error stays for the program to see */
		goto out;
	}
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (a < 0) {
		r = -errno;
		goto out;
	}
	if (fin_sent(m->state) && shutdown(fd, SHUT_WR) < 0) {
		r = -errno;
		goto out;
	}
	if ((r = peer_departs(a, fd, q, qlen, closed)))
		goto out;
	close(a);
	a = -1;
	if (!closed)
		r = settle(fd, ST_CLOSE, (int)qlen);
out:
	if (a >= 0)
		close(a);
	if (l >= 0)
		close(l);
	free(own);
	if (r) {
		pr_err("%s: making the connection its peer left: %s", e->desc ? e->desc : "tcp",
		       strerror(-r));
		if (fd >= 0)
			close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

static int tcp_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__TcpConn *m = (Cryo__TcpConn *)fd_unpack(e, &cryo__tcp_conn__descriptor);
	int repair, fd = -1, r;
	struct tcp_tuple t;

	if (!m)
		return -EBADMSG;
	repair = m->mode == CRYO__TCP_MODE__TCP_REPAIRED;
	if (repair && (m->family != AF_INET && m->family != AF_INET6)) {
		r = -EBADMSG;
		goto out;
	}
	if (repair && tcp_tuple_of(m->addr.data, m->addr.len, m->peer.data, m->peer.len, &t)) {
		r = -EBADMSG;
		goto out;
	}
	/* Held no more (melted once already, a reboot): its peer has gone on
	 * without it, so it is a connection its peer left. */
	if (repair && m->held && tcp_hold_present(&t) != 1) {
		pr_warn("%s: the connection was not held since the freeze (melted before? "
			"rebooted?): it comes back reset", e->desc ? e->desc : "tcp");
		repair = 0;
	}
	r = repair ? make_repaired(c, m, &fd) : make_reset(c, e, m, &fd);
	if (!r)
		r = fd_place(fd, e, 0);
out:
	cryo__tcp_conn__free_unpacked(m, NULL);
	return r;
}

/* Out of repair mode, just before the group runs: the hold lifted first
 * so that the window probe leaving repair mode sends reaches the peer,
 * the options (repair mode had the socket's address reuse forced), the
 * unsent tail, and the FINs there were. */
static int tcp_resume(struct fd_restore_ctx *c, const Cryo__FdEntry *e, int local)
{
	Cryo__TcpConn *m = (Cryo__TcpConn *)fd_unpack(e, &cryo__tcp_conn__descriptor);
	struct tcp_repair_window rw;
	socklen_t len = sizeof(rw);
	const uint8_t *sq;
	uint8_t *own = NULL;
	size_t slen = 0;
	struct tcp_tuple t;
	int r = 0;

	if (!m)
		return -EBADMSG;
	/* not in repair mode: made reset, or resumed through another fd */
	if (m->mode != CRYO__TCP_MODE__TCP_REPAIRED ||
	    getsockopt(local, IPPROTO_TCP, TCP_REPAIR_WINDOW, &rw, &len) < 0)
		goto out;
	if (m->held && !tcp_tuple_of(m->addr.data, m->addr.len, m->peer.data, m->peer.len, &t))
		(void)tcp_hold_del(&t);
	if ((r = set_int(local, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF)) ||
	    (r = sock_apply_opts(local, m->opts, m->n_opts, e->desc ? e->desc : "tcp")))
		goto out;
	if (m->unsent) {
		r = queue_get(c, &m->send_queue, m->has_send_space, m->send_space, m->send_len,
			      &sq, &slen, &own);
		if (!r && m->unsent > slen)
			r = -EBADMSG;
		if (!r)
			r = send_all(local, sq + slen - m->unsent, (size_t)m->unsent);
		if (r)
			goto out;
	}
	if (m->fin_rcvd && shutdown(local, SHUT_RD) < 0)
		r = -errno;
	if (!r && m->fin_sent && shutdown(local, SHUT_WR) < 0)
		r = -errno;
out:
	if (r)
		pr_err("%s: leaving repair mode: %s", e->desc ? e->desc : "tcp", strerror(-r));
	free(own);
	cryo__tcp_conn__free_unpacked(m, NULL);
	return r;
}

static void tcp_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	snprintf(buf, n, "socket %s%s", e->desc ? e->desc : "tcp", e->cloexec ? " cloexec" : "");
}

const struct fd_ops fd_ops_tcp = {
	.name = "tcp",
	.match = tcp_match,
	.dump = tcp_dump,
	.restore = tcp_restore,
	.resume = tcp_resume,
	.describe = tcp_describe,
};
