/* "unix": a unix socket with nothing in flight: a listener (stream or
 * seqpacket), a bound datagram socket, on a path or in the abstract
 * namespace, or a socket not yet bound nor connected (a program between
 * socket() and connect(), as NSS lookups are): that one comes back as a
 * fresh socket of its type with its options. At melt the socket file left by the frozen process is
 * removed first (only if it is a socket: anything else at that path is
 * an error, never deleted), then bound again with its old mode and owner.
 * A relative path is refused: it was relative to a directory the process
 * may have left. Socketpairs and connections are "unixconn". */
#define LOG_PREFIX "fds/unix: "
#include "fds/sock.h"
#include "common/log.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static const struct sock_opt_def unix_opts[] = {
	{ SOL_SOCKET, SO_PASSCRED, "SO_PASSCRED" },
};

static int unix_match(const struct fd_probe *p)
{
	return S_ISSOCK(p->st.st_mode) && p->local >= 0 && sock_domain(p->local) == AF_UNIX;
}

/* The path of a bound address: "" for abstract (then *abstract = 1). The
 * bytes come from the kernel or the image: bounded by len, NUL added. */
static void sun_path_of(const ProtobufCBinaryData *b, char *out, size_t n, int *abstract)
{
	const struct sockaddr_un *a = (const void *)b->data;
	size_t plen;

	*abstract = 0;
	out[0] = '\0';
	if (b->len <= offsetof(struct sockaddr_un, sun_path) || b->len > sizeof(*a))
		return;
	plen = b->len - offsetof(struct sockaddr_un, sun_path);
	if (a->sun_path[0] == '\0') {
		*abstract = 1;
		a = (const void *)b->data;
		snprintf(out, n, "@%.*s", (int)(plen - 1), a->sun_path + 1);
		return;
	}
	snprintf(out, n, "%.*s", (int)strnlen(a->sun_path, plen), a->sun_path);
}

static int unix_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__Socket s = CRYO__SOCKET__INIT;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 2] = "";
	int abstract = 0, r;

	(void)c;
	r = sock_dump(p, unix_opts, sizeof(unix_opts) / sizeof(unix_opts[0]), &s);
	if (r)
		goto out;
	if (s.has_addr)
		sun_path_of(&s.addr, path, sizeof(path), &abstract);
	if (s.has_addr && !abstract) {
		struct stat st;

		if (path[0] != '/') {
			pr_err("pid %d fd %d: socket path \"%s\" is relative", p->pid, p->fd, path);
			r = -ENOTSUP;
			goto out;
		}
		/* The file may be gone (unlinked after bind): melt makes it again. */
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
			s.has_path_mode = s.has_path_uid = s.has_path_gid = true;
			s.path_mode = st.st_mode & 07777;
			s.path_uid = st.st_uid;
			s.path_gid = st.st_gid;
		}
	}
	r = fd_pack(e, &s.base);
	if (!r)
		r = fd_set_desc(e, "unix %s %s%s", sock_type_name(s.type),
				path[0] ? path : "unbound", s.listening ? " listening" : "");
out:
	sock_msg_free(&s);
	return r;
}

static int unix_bind(int fd, const Cryo__Socket *s)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];
	struct stat st;
	int abstract;

	sun_path_of(&s->addr, path, sizeof(path), &abstract);
	if (!abstract && path[0] && lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			pr_err("%s exists and is not a socket; not removing it", path);
			return -EEXIST;
		}
		if (unlink(path) < 0)
			return -errno;
	}
	if (bind(fd, (const struct sockaddr *)s->addr.data, (socklen_t)s->addr.len) < 0) {
		int err = -errno;

		pr_err("binding %s: %s", path, strerror(errno));
		return err;
	}
	if (!abstract && s->has_path_mode &&
	    (chmod(path, s->path_mode) < 0 || chown(path, s->path_uid, s->path_gid) < 0)) {
		int err = -errno;

		pr_err("%s: restoring mode and owner: %s", path, strerror(errno));
		return err;
	}
	return 0;
}

static int unix_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	(void)c;
	return sock_restore(e, unix_bind, NULL);
}

static void unix_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	snprintf(buf, n, "socket %s%s", e->desc ? e->desc : "unix", e->cloexec ? " cloexec" : "");
}

const struct fd_ops fd_ops_unix = {
	.name = "unix",
	.match = unix_match,
	.dump = unix_dump,
	.restore = unix_restore,
	.describe = unix_describe,
};
