/* Socket diagnostics over netlink: the max backlog of a listener, which no
 * getsockopt reports. inet_diag gives it as idiag_wqueue of a listening
 * socket, unix_diag as udiag_wqueue of its RQLEN attribute. */
#define LOG_PREFIX "proc/sockdiag: "
#include "proc/sockdiag.h"
#include "common/log.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TCP_LISTEN_STATE 10	/* TCP_LISTEN in the kernel's enum */

static int send_request(int nl, int family, int protocol, uint64_t ino)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct {
		struct nlmsghdr nlh;
		union {
			struct inet_diag_req_v2 inet;
			struct unix_diag_req unx;
		} r;
	} req;

	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	if (family == AF_UNIX) {
		req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(req.r.unx));
		req.r.unx.sdiag_family = AF_UNIX;
		req.r.unx.udiag_states = 1u << TCP_LISTEN_STATE;
		req.r.unx.udiag_ino = (uint32_t)ino;
		req.r.unx.udiag_show = UDIAG_SHOW_RQLEN;
		req.r.unx.udiag_cookie[0] = INET_DIAG_NOCOOKIE;
		req.r.unx.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
	} else {
		req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(req.r.inet));
		req.r.inet.sdiag_family = (uint8_t)family;
		req.r.inet.sdiag_protocol = (uint8_t)protocol;
		req.r.inet.idiag_states = 1u << TCP_LISTEN_STATE;
	}
	if (sendto(nl, &req, req.nlh.nlmsg_len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) < 0)
		return -errno;
	return 0;
}

static int unix_rqlen(const struct nlmsghdr *h, uint32_t *backlog)
{
	const struct unix_diag_msg *m = NLMSG_DATA(h);
	size_t left = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	const struct nlattr *a = (const void *)((const char *)m + NLMSG_ALIGN(sizeof(*m)));

	while (left >= sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= left) {
		if ((a->nla_type & NLA_TYPE_MASK) == UNIX_DIAG_RQLEN &&
		    a->nla_len >= NLA_HDRLEN + sizeof(struct unix_diag_rqlen)) {
			struct unix_diag_rqlen q;

			memcpy(&q, (const char *)a + NLA_HDRLEN, sizeof(q));
			*backlog = q.udiag_wqueue;
			return 1;
		}
		if ((size_t)NLA_ALIGN(a->nla_len) >= left)
			break;
		left -= (size_t)NLA_ALIGN(a->nla_len);
		a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
	return -EBADMSG;
}

/* The next message of a reply at *off (untrusted: every length checked):
 * 1 with *hp set and *off moved past it, 2 the dump is done, 0 the end of
 * this part, -errno on an error message or a malformed reply. */
static int reply_next(const void *buf, size_t len, size_t *off, size_t body,
		      const struct nlmsghdr **hp)
{
	const struct nlmsghdr *h = (const void *)((const char *)buf + *off);

	if (*off >= len || len - *off < sizeof(struct nlmsghdr))
		return 0;
	if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len - *off)
		return -EBADMSG;
	if (h->nlmsg_type == NLMSG_DONE)
		return 2;
	if (h->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(h);

		if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
			return -EBADMSG;
		return e->error < 0 ? e->error : -EPROTO;
	}
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(body))
		return -EBADMSG;
	*hp = h;
	*off = NLMSG_ALIGN(h->nlmsg_len) >= len - *off ? len : *off + NLMSG_ALIGN(h->nlmsg_len);
	return 1;
}

int proc_sockdiag_scan(const void *buf, size_t len, int family, uint64_t ino,
		       uint32_t *backlog)
{
	size_t body = family == AF_UNIX ? sizeof(struct unix_diag_msg) :
					  sizeof(struct inet_diag_msg);
	const struct nlmsghdr *h;
	size_t off = 0;
	int r;

	while ((r = reply_next(buf, len, &off, body, &h)) == 1) {
		if (family == AF_UNIX) {
			const struct unix_diag_msg *m = NLMSG_DATA(h);

			if (m->udiag_ino == ino)
				return unix_rqlen(h, backlog);
		} else {
			const struct inet_diag_msg *m = NLMSG_DATA(h);

			if (m->idiag_inode == ino) {
				*backlog = m->idiag_wqueue;
				return 1;
			}
		}
	}
	return r;
}

int proc_sock_backlog(int family, int protocol, uint64_t ino, uint32_t *backlog)
{
	static const size_t bufsz = 32768;
	char *buf = NULL;
	int nl, r;

	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -errno;
	r = send_request(nl, family, protocol, ino);
	if (r)
		goto out;
	buf = malloc(bufsz);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = recv(nl, buf, bufsz, 0);

		if (n < 0) {
			r = -errno;
			break;
		}
		r = proc_sockdiag_scan(buf, (size_t)n, family, ino, backlog);
		if (r == 1) {
			r = 0;
			break;
		}
		if (r == 2 || n == 0) {
			r = -ENOENT;
			break;
		}
		if (r < 0)
			break;
	}
out:
	free(buf);
	close(nl);
	return r;
}

/* ---- one unix socket: peer and shutdown ---- */

static int unix_attrs(const struct nlmsghdr *h, struct proc_unix_info *out)
{
	const struct unix_diag_msg *m = NLMSG_DATA(h);
	size_t left = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	const struct nlattr *a = (const void *)((const char *)m + NLMSG_ALIGN(sizeof(*m)));

	out->state = m->udiag_state;
	while (left >= sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= left) {
		size_t plen = a->nla_len - NLA_HDRLEN;
		const char *pl = (const char *)a + NLA_HDRLEN;

		if ((a->nla_type & NLA_TYPE_MASK) == UNIX_DIAG_PEER && plen >= sizeof(uint32_t)) {
			uint32_t v;

			memcpy(&v, pl, sizeof(v));
			out->peer_ino = v;
		} else if ((a->nla_type & NLA_TYPE_MASK) == UNIX_DIAG_SHUTDOWN && plen >= 1) {
			out->shutdown = (uint8_t)pl[0];
		}
		if ((size_t)NLA_ALIGN(a->nla_len) >= left)
			break;
		left -= (size_t)NLA_ALIGN(a->nla_len);
		a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
	return 1;
}

int proc_unix_info_scan(const void *buf, size_t len, uint64_t ino, struct proc_unix_info *out)
{
	const struct nlmsghdr *h;
	size_t off = 0;
	int r;

	while ((r = reply_next(buf, len, &off, sizeof(struct unix_diag_msg), &h)) == 1)
		if (((const struct unix_diag_msg *)NLMSG_DATA(h))->udiag_ino == ino) {
			memset(out, 0, sizeof(*out));
			return unix_attrs(h, out);
		}
	return r;
}

/* Ask the kernel about one socket: send the request (a netlink message of
 * len bytes), read the reply until scan (a *_scan function above, with
 * its argument) finds it. 0, -ENOENT when there is no such socket. */
typedef int (*scan_fn)(const void *buf, size_t len, void *arg);

static int ask_one(void *req, size_t len, scan_fn scan, void *arg)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	char buf[8192];
	int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), r;

	if (nl < 0)
		return -errno;
	if (sendto(nl, req, len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);

		if (n < 0) {
			r = -errno;
			break;
		}
		r = scan(buf, (size_t)n, arg);
		if (r == 1) {
			r = 0;
			break;
		}
		if (r == 2 || n == 0 || r == 0) {
			r = -ENOENT;
			break;
		}
		if (r < 0)
			break;
	}
out:
	close(nl);
	return r;
}

struct unix_ask {
	uint64_t ino;
	struct proc_unix_info *out;
};

static int unix_scan(const void *buf, size_t len, void *arg)
{
	struct unix_ask *a = arg;

	return proc_unix_info_scan(buf, len, a->ino, a->out);
}

int proc_unix_info(uint64_t ino, struct proc_unix_info *out)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req r;
	} req;
	struct unix_ask a = { ino, out };

	if (ino > UINT32_MAX)
		return -ENOENT;
	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(req.r));
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST;	/* one socket, by inode */
	req.r.sdiag_family = AF_UNIX;
	req.r.udiag_states = ~0u;
	req.r.udiag_ino = (uint32_t)ino;
	req.r.udiag_show = UDIAG_SHOW_PEER;
	req.r.udiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
	return ask_one(&req, req.nlh.nlmsg_len, unix_scan, &a);
}

/* ---- one TCP socket by its 4-tuple ---- */

int proc_inet_ino_scan(const void *buf, size_t len, uint64_t *ino)
{
	const struct nlmsghdr *h;
	size_t off = 0;
	int r = reply_next(buf, len, &off, sizeof(struct inet_diag_msg), &h);

	if (r == 1)
		*ino = ((const struct inet_diag_msg *)NLMSG_DATA(h))->idiag_inode;
	return r;
}

static int inet_scan(const void *buf, size_t len, void *arg)
{
	return proc_inet_ino_scan(buf, len, arg);
}

int proc_inet_sock_ino(int family, const uint8_t *src, uint16_t sport, const uint8_t *dst,
		       uint16_t dport, uint64_t *ino)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req;
	size_t alen = family == AF_INET6 ? 16 : 4;

	*ino = 0;
	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(req.r));
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST;	/* one socket, by its tuple */
	req.r.sdiag_family = (uint8_t)family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	req.r.id.idiag_sport = htons(sport);
	req.r.id.idiag_dport = htons(dport);
	memcpy(req.r.id.idiag_src, src, alen);
	memcpy(req.r.id.idiag_dst, dst, alen);
	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	return ask_one(&req, req.nlh.nlmsg_len, inet_scan, ino);
}
