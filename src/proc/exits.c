#define LOG_PREFIX "proc: "
#include "proc/exits.h"

#include <errno.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/log.h"

#define EXITS_RCVBUF	(4u << 20)	/* a burst of exits must not be lost */

/* 6.6+: LISTEN with an event filter (struct proc_input); older kernels
 * ignore a request of that size, so they get the plain one. */
struct exits_listen {
	uint32_t op;
	uint32_t event_type;
};

static int filter_supported(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return 0;
	return major > 6 || (major == 6 && minor >= 6);
}

static int send_listen(int fd)
{
	uint8_t m[NLMSG_HDRLEN + sizeof(struct cn_msg) + sizeof(struct exits_listen)]
		__attribute__((aligned(8)));
	struct exits_listen l = { .op = PROC_CN_MCAST_LISTEN, .event_type = PROC_EVENT_EXIT };
	size_t len = filter_supported() ? sizeof(l) : sizeof(l.op);
	struct nlmsghdr nl = { 0 };
	struct cn_msg cn;

	memset(m, 0, sizeof(m));
	memset(&cn, 0, sizeof(cn));
	nl.nlmsg_len = (uint32_t)(NLMSG_HDRLEN + sizeof(cn) + len);
	nl.nlmsg_type = NLMSG_DONE;
	nl.nlmsg_pid = (uint32_t)getpid();
	cn.id.idx = CN_IDX_PROC;
	cn.id.val = CN_VAL_PROC;
	cn.len = (uint16_t)len;
	memcpy(m, &nl, sizeof(nl));
	memcpy(m + NLMSG_HDRLEN, &cn, sizeof(cn));
	memcpy(m + NLMSG_HDRLEN + sizeof(cn), &l, len);
	if (send(fd, m, nl.nlmsg_len, 0) != (ssize_t)nl.nlmsg_len)
		return -errno;
	return 0;
}

int proc_exits_open(void)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
	int buf = EXITS_RCVBUF, r;
	int fd = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		r = -errno;
		close(fd);
		return r;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)))
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	r = send_listen(fd);
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

/* The bytes are the kernel's, but checked as any input: every length
 * against what was read. */
void proc_exits_parse(const void *buf, size_t len, proc_exit_fn fn, void *arg)
{
	const uint8_t *p = buf;

	while (len >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr nl;
		struct cn_msg cn;
		struct proc_event ev;
		size_t n;

		memcpy(&nl, p, sizeof(nl));
		n = NLMSG_ALIGN(nl.nlmsg_len);
		if (nl.nlmsg_len < sizeof(nl) || nl.nlmsg_len > len)
			return;
		if (nl.nlmsg_type == NLMSG_DONE &&
		    nl.nlmsg_len >= NLMSG_LENGTH(sizeof(cn)) &&
		    (memcpy(&cn, p + NLMSG_HDRLEN, sizeof(cn)), cn.id.idx == CN_IDX_PROC) &&
		    cn.len >= sizeof(ev) &&
		    NLMSG_LENGTH(sizeof(cn) + sizeof(ev)) <= nl.nlmsg_len) {
			memcpy(&ev, p + NLMSG_HDRLEN + sizeof(cn), sizeof(ev));
			if (ev.what == PROC_EVENT_EXIT)
				fn(arg, ev.event_data.exit.process_tgid,
				   ev.event_data.exit.process_pid, (int)ev.event_data.exit.exit_code);
		}
		if (n >= len)
			return;
		p += n;
		len -= n;
	}
}

int proc_exits_drain(int fd, proc_exit_fn fn, void *arg)
{
	uint8_t buf[8192] __attribute__((aligned(8)));
	int lost = 0;

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			lost = 1;	/* the kernel dropped some: go on with the rest */
			continue;
		}
		if (n < 0)
			return errno == EAGAIN ? (lost ? -ENOBUFS : 0) : -errno;
		if (n == 0)
			return lost ? -ENOBUFS : 0;
		proc_exits_parse(buf, (size_t)n, fn, arg);
	}
}
