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

int proc_sockdiag_scan(const void *buf, size_t len, int family, uint64_t ino,
		       uint32_t *backlog)
{
	size_t body = family == AF_UNIX ? sizeof(struct unix_diag_msg) :
					  sizeof(struct inet_diag_msg);

	for (size_t off = 0; len - off >= sizeof(struct nlmsghdr);) {
		const struct nlmsghdr *h = (const void *)((const char *)buf + off);

		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len - off)
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
		if (NLMSG_ALIGN(h->nlmsg_len) >= len - off)
			break;
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	return 0;
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
