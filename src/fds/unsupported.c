/* "unsupported": the last kind of the registry. It takes every fd no other
 * kind took and refuses it, naming what it is: an io_uring instance, a
 * netlink socket and its protocol, a POSIX message queue, ... so that the
 * user reads which object of the program stops the snapshot, not only
 * "an anonymous inode" or "a socket". Nothing of it is ever saved: its
 * restore is NULL (melt would say the kind is unknown). */
#define LOG_PREFIX "fds/unsupported: "
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>

#define MQUEUE_FS_MAGIC		0x19800202
#define SECRETMEM_FS_MAGIC	0x5345434d

static int unsupported_match(const struct fd_probe *p)
{
	(void)p;
	return 1;
}

/* Anonymous inodes by the name the kernel gives them. */
static const struct { const char *name, *what; } anon_names[] = {
	{ "[io_uring]", "io_uring instance" },
	{ "[fanotify]", "fanotify group" },
	{ "[userfaultfd]", "userfaultfd of the program's own" },
	{ "[perf_event]", "perf_event counter" },
	{ "bpf-map", "BPF map" },
	{ "bpf-prog", "BPF program" },
	{ "bpf_link", "BPF link" },
	{ "[bpf_iter]", "BPF iterator" },
	{ "[kvm-vm]", "KVM virtual machine" },
	{ "kvm-vcpu", "KVM virtual CPU" },
	{ "[vfio-device]", "VFIO device" },
	{ "[landlock-ruleset]", "Landlock ruleset" },
	{ "sync_file", "sync_file fence" },
};

static const struct { int family; const char *what; } families[] = {
	{ AF_NETLINK, "netlink socket" },
	{ AF_PACKET, "packet socket" },
	{ AF_VSOCK, "vsock socket" },
	{ AF_BLUETOOTH, "bluetooth socket" },
	{ AF_ALG, "AF_ALG (kernel crypto) socket" },
	{ AF_XDP, "AF_XDP socket" },
	{ AF_KEY, "PF_KEY socket" },
	{ AF_TIPC, "TIPC socket" },
	{ AF_CAN, "CAN socket" },
	{ AF_NFC, "NFC socket" },
	{ AF_RDS, "RDS socket" },
	{ AF_QIPCRTR, "QIPCRTR socket" },
	{ AF_SMC, "SMC socket" },
	{ AF_MCTP, "MCTP socket" },
};

static const char *const netlink_protocols[] = {
	[0] = "NETLINK_ROUTE", [2] = "NETLINK_USERSOCK", [4] = "NETLINK_SOCK_DIAG",
	[5] = "NETLINK_NFLOG", [6] = "NETLINK_XFRM", [7] = "NETLINK_SELINUX",
	[8] = "NETLINK_ISCSI", [9] = "NETLINK_AUDIT", [10] = "NETLINK_FIB_LOOKUP",
	[11] = "NETLINK_CONNECTOR", [12] = "NETLINK_NETFILTER", [13] = "NETLINK_IP6_FW",
	[14] = "NETLINK_DNRTMSG", [15] = "NETLINK_KOBJECT_UEVENT", [16] = "NETLINK_GENERIC",
	[18] = "NETLINK_SCSITRANSPORT", [19] = "NETLINK_ECRYPTFS", [20] = "NETLINK_RDMA",
	[21] = "NETLINK_CRYPTO", [22] = "NETLINK_SMC",
};

static int sock_int(int fd, int name, int *v)
{
	socklen_t len = sizeof(*v);

	return fd >= 0 && getsockopt(fd, SOL_SOCKET, name, v, &len) == 0 ? 0 : -1;
}

static void socket_words(const struct fd_probe *p, char *buf, size_t n)
{
	int family, type = 0, proto = 0;

	if (sock_int(p->local, SO_DOMAIN, &family)) {
		snprintf(buf, n, "socket of an unknown family");
		return;
	}
	sock_int(p->local, SO_TYPE, &type);
	sock_int(p->local, SO_PROTOCOL, &proto);
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		if (families[i].family != family)
			continue;
		if (family == AF_NETLINK && proto >= 0 &&
		    (size_t)proto < sizeof(netlink_protocols) / sizeof(netlink_protocols[0]) &&
		    netlink_protocols[proto])
			snprintf(buf, n, "%s, %s", families[i].what, netlink_protocols[proto]);
		else if (family == AF_PACKET)
			snprintf(buf, n, "%s, %s", families[i].what,
				 type == SOCK_RAW ? "raw" : type == SOCK_DGRAM ? "dgram" : "other type");
		else
			snprintf(buf, n, "%s, protocol %d", families[i].what, proto);
		return;
	}
	snprintf(buf, n, "socket of family %d, type %d, protocol %d", family, type, proto);
}

static void anon_words(const char *name, char *buf, size_t n)
{
	/* by prefix: "kvm-vcpu:3" */
	for (size_t i = 0; i < sizeof(anon_names) / sizeof(anon_names[0]); i++)
		if (!strncmp(name, anon_names[i].name, strlen(anon_names[i].name))) {
			snprintf(buf, n, "%s", anon_names[i].what);
			return;
		}
	snprintf(buf, n, "anonymous inode %s", name);
}

const char *fd_pseudo_file(const struct fd_probe *p)
{
	struct statfs sf;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)p->pid, p->fd);
	if ((p->local >= 0 ? fstatfs(p->local, &sf) : statfs(path, &sf)) < 0)
		return NULL;
	if (sf.f_type == MQUEUE_FS_MAGIC)
		return "POSIX message queue";
	if (sf.f_type == SECRETMEM_FS_MAGIC)
		return "memfd_secret area";
	return NULL;
}

/* What the fd is, in words: "io_uring instance", "netlink socket, ...". */
static void what_words(const struct fd_probe *p, char *buf, size_t n)
{
	const mode_t m = p->st.st_mode;
	const char *pseudo;

	if (S_ISSOCK(m))
		socket_words(p, buf, n);
	else if (!strncmp(p->link, "anon_inode:", 11))
		anon_words(p->link + 11, buf, n);
	else if ((pseudo = fd_pseudo_file(p)))
		snprintf(buf, n, "%s", pseudo);
	else if (S_ISCHR(m))
		snprintf(buf, n, "character device %u:%u", major(p->st.st_rdev),
			 minor(p->st.st_rdev));
	else if (S_ISBLK(m))
		snprintf(buf, n, "block device %u:%u", major(p->st.st_rdev), minor(p->st.st_rdev));
	else if (S_ISFIFO(m))
		snprintf(buf, n, "fifo");
	else if (S_ISDIR(m))
		snprintf(buf, n, "directory");
	else if (S_ISREG(m))
		snprintf(buf, n, "file");
	else
		snprintf(buf, n, "file of type %#o", (unsigned)(m & S_IFMT));
}

static int unsupported_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	char what[160];

	(void)c;
	(void)e;
	what_words(p, what, sizeof(what));
	if (p->carrier)		/* cryo's copy of a file a queued message carries */
		pr_err("pid %d fd %d: a queued message carries file descriptors; one of them "
		       "cannot be saved yet (%s: %s): not supported yet", (int)p->carrier->pid,
		       p->carrier->fd, what, p->link);
	else
		pr_err("cannot capture fd %d (%s: %s): not supported yet", p->fd, what, p->link);
	return -ENOTSUP;
}

static void unsupported_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	snprintf(buf, n, "%s (not supported)", e->desc ? e->desc : "?");
}

const struct fd_ops fd_ops_unsupported = {
	.name = "unsupported",
	.match = unsupported_match,
	.dump = unsupported_dump,
	.describe = unsupported_describe,
};
