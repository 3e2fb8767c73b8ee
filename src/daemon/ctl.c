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

size_t ctl_handle(const uint8_t *req, size_t len, uid_t uid, const struct ctl_ops *ops,
		  void *arg, uint8_t *out)
{
	Cryo__CtlReply rep = CRYO__CTL_REPLY__INIT;
	Cryo__CtlRequest *r = len <= CTL_MSG_MAX ? cryo__ctl_request__unpack(NULL, len, req) : NULL;
	size_t n;

	if (!r) {
		rep.err = -EBADMSG;
		rep.text = strdup("malformed request");
	} else if (!strcmp(r->op, "ps")) {
		rep.err = ops->ps(arg, uid, &rep);
	} else if (!strcmp(r->op, "snap") || !strcmp(r->op, "freeze") || !strcmp(r->op, "melt")) {
		if (!r->name || !r->name[0]) {
			rep.err = -EINVAL;
			rep.text = strdup("which group?");
		} else if (!strcmp(r->op, "melt")) {
			rep.err = ops->melt(arg, uid, r->name, &rep);
		} else {
			rep.err = ops->snap(arg, uid, r->name, r->has_weak && r->weak,
					    !strcmp(r->op, "freeze"), &rep);
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
		m = ctl_handle(in, (size_t)n, cred.uid, ops, arg, out);
		if (send(fd, out, m, MSG_NOSIGNAL) < 0)
			pr_warn("control socket: a reply to uid %u was not taken", (unsigned)cred.uid);
	}
	close(fd);
}

int ctl_call(const char *home, const Cryo__CtlRequest *req, Cryo__CtlReply **rep)
{
	static uint8_t buf[CTL_MSG_MAX];
	struct sockaddr_un a;
	struct timeval tv = { 120, 0 };		/* a force snapshot of a big group */
	size_t len = cryo__ctl_request__get_packed_size(req);
	ssize_t n;
	int fd, r = sock_path(home, &a);

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
	n = recv(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	*rep = cryo__ctl_reply__unpack(NULL, (size_t)n, buf);
	return *rep ? 0 : -EBADMSG;
}
