/* Files in flight: the fds a message queued on a unix socket carries
 * (SCM_RIGHTS), for "unixconn".
 *
 * Dump: peeking the message (MSG_PEEK) installs its files in cryo, which
 * is how they are read: each is probed and dumped by the kind that takes
 * it, as an fd of cryo standing for the message (fd_probe.in_flight),
 * into an FdEntry nested in the connection's record. Nothing is taken:
 * the message stays queued with its files.
 *
 * Melt: each nested entry is made by its kind at a scratch number, the
 * message is sent again with them, and the scratch fds are closed; the
 * files then live in the queue only, as before.
 *
 * Refused, because melt would bring them back wrong: a file in flight that
 * a process of the group also holds, or that is in flight twice (melt
 * would make two: a listener bound twice, a memfd no longer shared) but
 * for files that come back by path (reg, dir, dev: they then no longer
 * share an offset); an epoll (its targets are fd numbers of a process); a
 * pipe end or unix connection whose other end a process of the group
 * holds (the two are made apart); files nested deeper than
 * UNIX_FLIGHT_DEPTH (a socket in flight on itself). */
#define LOG_PREFIX "fds/unixconn: "
#include "fds/sock.h"
#include "common/log.h"
#include "common/vec.h"
#include "proc/sockdiag.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define FLIGHT_FD_BASE	3	/* the numbers nested entries get: any above stdio */

static int same_file(pid_t p1, int fd1, pid_t p2, int fd2)
{
	return syscall(SYS_kcmp, p1, p2, 0 /* KCMP_FILE */, fd1, fd2) == 0;
}

/* Which process of the group holds the open file cryo has at want->fd. */
struct holder {
	int fd;			/* cryo's */
	pid_t pid;		/* found: its process and fd */
	int held_fd;
};

static int same_as(void *arg, pid_t pid, int fd)
{
	struct holder *h = arg;

	if (!same_file(getpid(), h->fd, pid, fd))
		return 0;
	h->pid = pid;
	h->held_fd = fd;
	return 1;
}

/* The process of the group (and its fd) that holds the open file cryo
 * has at fd, or 0: the group's fds with the same link, compared. */
static pid_t held_in_group(const struct fd_probe *p, int *held_fd)
{
	struct holder h = { .fd = p->fd };

	if (fd_group_each(p, p->link, same_as, &h) <= 0)
		return 0;
	*held_fd = h.held_fd;
	return h.pid;
}

/* An earlier file in flight that is this one, or -1. */
static int flight_seen(const struct fd_dump_ctx *c, int fd)
{
	for (size_t i = 0; i < c->nflight; i++)
		if (same_file(getpid(), c->flight[i], getpid(), fd))
			return (int)i;
	return -1;
}

static int flight_keep(struct fd_dump_ctx *c, int fd)
{
	int kept;

	if (vec_reserve((void **)&c->flight, &c->flight_cap, c->nflight + 1, sizeof(*c->flight)))
		return -ENOMEM;
	kept = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (kept < 0)
		return -errno;
	c->flight[c->nflight++] = kept;
	return 0;
}

/* Why the kind k cannot bring the file of probe f back from flight, or
 * NULL. */
static const char *cannot_fly(struct fd_dump_ctx *c, const struct fd_probe *f,
			      const struct fd_ops *k, char *why, size_t n)
{
	int by_path = !strcmp(k->name, "reg") || !strcmp(k->name, "dir") || !strcmp(k->name, "dev");
	struct proc_unix_info ui;
	struct fd_pipe_ends ends;
	uint64_t ino;
	pid_t holder;
	int hfd = -1;

	if (!by_path && (holder = held_in_group(f, &hfd))) {
		snprintf(why, n, "pid %d holds it too (fd %d)", (int)holder, hfd);
		return why;
	}
	if (!by_path && flight_seen(c, f->fd) >= 0)
		return "it is in flight twice";
	if (!strcmp(k->name, "epoll"))
		return "an epoll's targets are fd numbers of a process";
	if (fd_link_pipe(f->link, &ino) && !fd_pipe_scan(f, ino, &ends) &&
	    ends.nread + ends.nwrite > 0)
		return "a process of the group holds the pipe's other end";
	if (!strcmp(k->name, "unixconn") && !proc_unix_info((uint64_t)f->st.st_ino, &ui) &&
	    ui.peer_ino) {
		char link[64];

		snprintf(link, sizeof(link), "socket:[%" PRIu64 "]", ui.peer_ino);
		if (fd_group_holds(f, link))
			return "a process of the group holds the other end of its connection";
	}
	return NULL;
}

static void nested_free(Cryo__FdEntry *e)
{
	if (!e)
		return;
	free(e->payload.data);
	free(e->desc);
	free(e);
}

/* Probe and dump the file cryo holds at fd (the idx-th of a message). */
static int dump_one(struct fd_dump_ctx *c, const struct fd_probe *owner, int fd, int idx,
		    Cryo__FdEntry **out)
{
	struct fd_probe f = { .pid = getpid(), .fd = fd, .local = fd, .group = owner->group,
			      .ngroup = owner->ngroup, .links = owner->links,
			      .in_flight = owner->in_flight + 1, .carrier = owner };
	const pid_t *self = &owner->pid;
	struct proc_fdinfo fi;
	char path[64], link[256], why[96];
	const struct fd_ops *k;
	const char *no;
	Cryo__FdEntry *e;
	ssize_t n;
	int r;

	if (!f.ngroup) {
		f.group = self;	/* a lone process: its own fds are "the group" */
		f.ngroup = 1;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0 || fstat(fd, &f.st) < 0)
		return -errno;
	link[n] = '\0';
	f.link = link;
	if ((r = proc_fdinfo_read(getpid(), fd, &fi)))
		return r;
	f.info = &fi;
	k = fd_kind_match(&f);
	if ((no = cannot_fly(c, &f, k, why, sizeof(why)))) {
		pr_err("pid %d fd %d: a queued message carries file descriptors; one of them (%s: "
		       "%s) cannot be saved yet: %s", (int)owner->pid, owner->fd, k->name, link, no);
		r = -ENOTSUP;
		goto out;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		r = -ENOMEM;
		goto out;
	}
	cryo__fd_entry__init(e);
	e->fd = (uint32_t)(FLIGHT_FD_BASE + idx);
	e->kind = (char *)k->name;
	e->flags = fi.flags & ~(uint32_t)O_CLOEXEC;
	e->has_pos = 1;
	e->pos = fi.pos;
	r = k->dump(c, &f, e);
	if (r) {
		pr_err("pid %d fd %d: a queued message carries file descriptors; one of them (%s: "
		       "%s) cannot be saved yet", (int)owner->pid, owner->fd, k->name, link);
		nested_free(e);
		goto out;
	}
	r = flight_keep(c, fd);
	if (r)
		nested_free(e);
	else
		*out = e;
out:
	proc_fdinfo_free(&fi);
	return r;
}

int unix_flight_dump(struct fd_dump_ctx *c, const struct fd_probe *p, uint32_t msg,
		     const int *fds, int n, Cryo__UnixConn *u)
{
	Cryo__UnixConnFds *qf, **nq;
	int r = 0;

	if (p->in_flight + 1 > UNIX_FLIGHT_DEPTH) {
		pr_err("pid %d fd %d: files in flight nested %d deep cannot be saved (a socket "
		       "queued on itself?)", (int)p->pid, p->fd, p->in_flight + 1);
		return -ENOTSUP;
	}
	nq = realloc(u->queued_fds, (u->n_queued_fds + 1) * sizeof(*nq));
	if (!nq)
		return -ENOMEM;
	u->queued_fds = nq;
	qf = calloc(1, sizeof(*qf));
	if (!qf)
		return -ENOMEM;
	cryo__unix_conn_fds__init(qf);
	qf->msg = msg;
	nq[u->n_queued_fds++] = qf;
	qf->fds = calloc((size_t)n, sizeof(*qf->fds));
	if (!qf->fds)
		return -ENOMEM;
	for (int i = 0; i < n && !r; i++) {
		r = dump_one(c, p, fds[i], i, &qf->fds[i]);
		if (!r)
			qf->n_fds++;
	}
	return r;
}

void unix_flight_free(Cryo__UnixConn *u)
{
	for (size_t i = 0; i < u->n_queued_fds; i++) {
		for (size_t j = 0; j < u->queued_fds[i]->n_fds; j++)
			nested_free(u->queued_fds[i]->fds[j]);
		free(u->queued_fds[i]->fds);
		free(u->queued_fds[i]);
	}
	free(u->queued_fds);
	u->queued_fds = NULL;
	u->n_queued_fds = 0;
}

size_t unix_flight_count(const Cryo__UnixConn *u)
{
	size_t n = 0;

	for (size_t i = 0; i < u->n_queued_fds; i++)
		n += u->queued_fds[i]->n_fds;
	return n;
}

/* ---- melt ---- */

static const Cryo__UnixConnFds *fds_of(const Cryo__UnixConn *u, size_t msg)
{
	for (size_t i = 0; i < u->n_queued_fds; i++)
		if (u->queued_fds[i]->msg == msg)
			return u->queued_fds[i];
	return NULL;
}

/* Make the nested entry e at a scratch number; the number or -errno. */
static int make_one(struct fd_restore_ctx *c, const Cryo__FdEntry *e, int any)
{
	const struct fd_ops *k = fd_kind_by_name(e->kind);
	Cryo__FdEntry tmp = *e;
	int slot, r;

	if (!k || !k->restore || k->finish) {
		pr_err("a file in flight of kind \"%s\" cannot be made", e->kind);
		return -EBADMSG;
	}
	/* a number of our own, above every fd the image uses: the kind's
	 * dup2 there replaces our placeholder */
	slot = fcntl(any, F_DUPFD_CLOEXEC, c->max_fd + 1);
	if (slot < 0)
		return -errno;
	tmp.fd = (uint32_t)slot;
	tmp.shared = 0;
	tmp.has_shared = 0;
	r = k->restore(c, &tmp);
	return r ? r : slot;
}

static int send_with(int sock, const uint8_t *data, size_t len, const int *fds, size_t n,
		     int stream)
{
	char ctl[CMSG_SPACE(sizeof(int) * UNIX_FLIGHT_FDS_MAX)];
	struct iovec iov = { (void *)data, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	size_t off = 0;
	ssize_t s;

	memset(ctl, 0, sizeof(ctl));
	mh.msg_control = ctl;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	s = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (s < 0)
		return -errno;
	/* the files went with the first bytes; a stream takes the rest plain */
	for (off = (size_t)s; stream && off < len; off += (size_t)s) {
		s = send(sock, data + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (s < 0)
			return -errno;
	}
	return 0;
}

int unix_flight_send(struct fd_restore_ctx *c, const Cryo__UnixConn *u, size_t msg, int sock,
		     const uint8_t *data, size_t len)
{
	const Cryo__UnixConnFds *qf = fds_of(u, msg);
	int fds[UNIX_FLIGHT_FDS_MAX];
	size_t made = 0;
	int r = 0;

	if (!qf || !qf->n_fds || qf->n_fds > UNIX_FLIGHT_FDS_MAX)
		return -EBADMSG;
	for (; made < qf->n_fds; made++) {
		int fd = make_one(c, qf->fds[made], sock);

		if (fd < 0) {
			r = fd;
			pr_err("message %zu: making the file in flight %s (%s): %s", msg,
			       qf->fds[made]->desc ? qf->fds[made]->desc : "",
			       qf->fds[made]->kind, strerror(-r));
			break;
		}
		fds[made] = fd;
	}
	if (!r)
		r = send_with(sock, data, len, fds, made, u->type == SOCK_STREAM);
	for (size_t i = 0; i < made; i++) {
		close(fds[i]);
		fd_shared_forget(c, fds[i]);
	}
	return r;
}

int unix_flight_has(const Cryo__UnixConn *u, size_t msg)
{
	return fds_of(u, msg) != NULL;
}
