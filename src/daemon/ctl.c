/* cryod's control socket (ctl.h). */
#define LOG_PREFIX "cryod: "
#include "daemon/ctl.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

bool ctl_allowed(uid_t uid, uid_t owner)
{
	return uid == 0 || uid == owner;
}

static int sock_path(const char *home, struct sockaddr_un *a)
{
	a->sun_family = AF_UNIX;
	if (snprintf(a->sun_path, sizeof(a->sun_path), "%s/cryod.sock", home) >=
	    (int)sizeof(a->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

static size_t pack_reply(Cryo__CtlReply *rep, uint8_t *out)
{
	size_t n = cryo__ctl_reply__get_packed_size(rep);

	if (n > CTL_MSG_MAX) {
		/* too many groups for one datagram: say so instead */
		Cryo__CtlReply small = CRYO__CTL_REPLY__INIT;

		small.err = -EMSGSIZE;
		small.text = "the reply is too long for one message";
		return cryo__ctl_reply__pack(&small, out);
	}
	return cryo__ctl_reply__pack(rep, out);
}

static void reply_free(Cryo__CtlReply *rep)
{
	for (size_t i = 0; i < rep->n_groups; i++) {
		free(rep->groups[i]->name);
		free(rep->groups[i]->state);
		free(rep->groups[i]);
	}
	free(rep->groups);
	free(rep->text);
}

/* An operation on one group (r->name set). */
static void group_op(const Cryo__CtlRequest *r, uid_t uid, const struct ctl_ops *ops, void *arg,
		     Cryo__CtlReply *rep, int *fd)
{
	if (!strcmp(r->op, "melt"))
		rep->err = ops->melt(arg, uid, r->name, rep);
	else if (!strcmp(r->op, "rm"))
		rep->err = ops->rm(arg, uid, r->name, r->has_force && r->force, rep);
	else if (!strcmp(r->op, "attach"))
		rep->err = ops->attach(arg, uid, r->name, rep, fd);
	else
		rep->err = ops->snap(arg, uid, r->name, r->has_weak && r->weak,
				     !strcmp(r->op, "freeze"), rep);
	if (rep->err && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	rep->has_fd = rep->fd = *fd >= 0;
}

static bool is_group_op(const char *op)
{
	static const char *const ops[] = { "snap", "freeze", "melt", "rm", "attach" };

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(op, ops[i]))
			return true;
	return false;
}

size_t ctl_handle(const uint8_t *req, size_t len, uid_t uid, const struct ctl_ops *ops,
		  void *arg, uint8_t *out, int *fd)
{
	Cryo__CtlReply rep = CRYO__CTL_REPLY__INIT;
	Cryo__CtlRequest *r = len <= CTL_MSG_MAX ? cryo__ctl_request__unpack(NULL, len, req) : NULL;
	size_t n;

	*fd = -1;
	if (!r) {
		rep.err = -EBADMSG;
		rep.text = strdup("malformed request");
	} else if (!strcmp(r->op, "ps")) {
		rep.err = ops->ps(arg, uid, &rep);
	} else if (is_group_op(r->op)) {
		if (!r->name || !r->name[0]) {
			rep.err = -EINVAL;
			rep.text = strdup("which group?");
		} else {
			group_op(r, uid, ops, arg, &rep, fd);
		}
	} else {
		rep.err = -EOPNOTSUPP;
		if (asprintf(&rep.text, "unknown operation '%.40s'", r->op) < 0)
			rep.text = NULL;
	}
	n = pack_reply(&rep, out);
	reply_free(&rep);
	if (r)
		cryo__ctl_request__free_unpacked(r, NULL);
	return n;
}

int ctl_listen(const char *home)
{
	struct sockaddr_un a;
	struct stat st;
	int fd, r = sock_path(home, &a);

	if (r)
		return r;
	/* cryod holds CRYO_HOME's lock: a socket file here is a dead one's */
	if (!lstat(a.sun_path, &st)) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		unlink(a.sun_path);
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || chmod(a.sun_path, 0666) ||
	    listen(fd, 16)) {
		r = -errno;
		close(fd);
		return r;
	}
	/* others reach the socket through CRYO_HOME: let them pass, not read */
	if (!stat(home, &st) && !(st.st_mode & S_IXOTH))
		(void)chmod(home, (st.st_mode & 07777) | S_IXGRP | S_IXOTH);
	return fd;
}

/* One datagram, with fd (if >= 0) as SCM_RIGHTS. */
static ssize_t send_reply(int sock, const uint8_t *buf, size_t len, int fd)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.b;
		mh.msg_controllen = sizeof(u.b);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL);
}

/* One datagram; *fd the first fd passed with it, or -1 (any others are
 * closed: we asked for one at the most). */
static ssize_t recv_reply(int sock, uint8_t *buf, size_t len, int *fd)
{
	union {
		char b[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			     .msg_controllen = sizeof(u.b) };
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

	*fd = -1;
	if (n < 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t k = 0; (k + 1) * sizeof(int) <= c->cmsg_len - CMSG_LEN(0); k++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
			if (*fd < 0)
				*fd = f;
			else
				close(f);
		}
	}
	return n;
}

void ctl_serve_one(int lfd, const struct ctl_ops *ops, void *arg)
{
	static uint8_t in[CTL_MSG_MAX + 1], out[CTL_MSG_MAX];
	struct timeval tv = { 1, 0 };
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	ssize_t n;
	size_t m;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) || cl != sizeof(cred)) {
		close(fd);
		return;
	}
	/* a client that never sends must not hold cryod */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = recv(fd, in, sizeof(in), MSG_TRUNC);
	if (n >= 0) {
		int pass;

		m = ctl_handle(in, (size_t)n, cred.uid, ops, arg, out, &pass);
		if (send_reply(fd, out, m, pass) < 0)
			pr_warn("control socket: a reply to uid %u was not taken", (unsigned)cred.uid);
		if (pass >= 0)
			close(pass);
	}
	close(fd);
}

int ctl_call(const char *home, const Cryo__CtlRequest *req, Cryo__CtlReply **rep)
{
	int fd, r = ctl_call_fd(home, req, rep, &fd);

	if (fd >= 0)
		close(fd);
	return r;
}

int ctl_call_fd(const char *home, const Cryo__CtlRequest *req, Cryo__CtlReply **rep, int *got)
{
	static uint8_t buf[CTL_MSG_MAX];
	struct sockaddr_un a;
	struct timeval tv = { 120, 0 };		/* a force snapshot of a big group */
	size_t len = cryo__ctl_request__get_packed_size(req);
	ssize_t n;
	int fd, r = sock_path(home, &a);

	*got = -1;
	if (r)
		return r;
	if (len > sizeof(buf))
		return -EMSGSIZE;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		r = errno == ENOENT || errno == ECONNREFUSED ? -ENOENT : -errno;
		close(fd);
		return r;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cryo__ctl_request__pack(req, buf);
	if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
		r = -errno;
		close(fd);
		return r ? r : -EIO;
	}
	n = recv_reply(fd, buf, sizeof(buf), got);
	r = n < 0 ? -errno : 0;
	close(fd);
	if (n <= 0)
		return r ? r : -EIO;
	*rep = cryo__ctl_reply__unpack(NULL, (size_t)n, buf);
	if (*rep)
		return 0;
	if (*got >= 0)
		close(*got);
	*got = -1;
	return -EBADMSG;
}
