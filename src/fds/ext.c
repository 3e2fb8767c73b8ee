/* "ext": a connection to outside the group, which cannot come back as it
 * was: a terminal, a pipe whose other end another process holds, or a
 * socket on the standard streams (fd 0-2, e.g. journald's). At melt it is
 * reconnected by policy (struct fd_policy): a reader gets /dev/null (or
 * the user's --stdin FILE), a writer appends to the group's log under
 * CRYO_HOME (or the user's --stdout/--stderr FILE). To the process this
 * looks like a peer that went away and came back as a file. Other sockets
 * are not "ext": they are refused. */
#define LOG_PREFIX "fds/ext: "
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int is_tty(const struct stat *st)
{
	unsigned ma = major(st->st_rdev);

	/* 136-143: pseudo-terminal slaves; 4: virtual consoles and serial
	 * ports; 5: /dev/tty, /dev/console, /dev/ptmx. */
	return S_ISCHR(st->st_mode) && ((ma >= 136 && ma <= 143) || ma == 4 || ma == 5);
}

static int ext_match(const struct fd_probe *p)
{
	uint64_t ino;

	if (is_tty(&p->st))
		return 1;
	if (S_ISFIFO(p->st.st_mode) && fd_link_pipe(p->link, &ino))
		return 1;	/* "pipe" took those with both ends inside */
	return S_ISSOCK(p->st.st_mode) && p->fd <= 2;
}

static int is_reader(uint32_t flags, uint32_t fd)
{
	return fd == 0 || (flags & O_ACCMODE) == O_RDONLY;
}

static int ext_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__Reconnected rc = CRYO__RECONNECTED__INIT;
	int r;

	(void)c;
	rc.was = (char *)p->link;
	rc.policy = is_reader(p->info->flags, (uint32_t)p->fd) ? "null" : "log";
	r = fd_pack(e, &rc.base);
	if (!r)
		r = fd_set_desc(e, "%s (outside; reconnected at melt)", p->link);
	return r;
}

/* Where fd e goes under policy pol, and how to open it. */
static const char *choose(const struct fd_policy *pol, const Cryo__FdEntry *e, int *oflags)
{
	int acc = (int)(e->flags & O_ACCMODE);
	const char *path = NULL;

	if (is_reader(e->flags, e->fd)) {
		if (e->fd == 0 && pol && pol->stdin_path)
			path = pol->stdin_path;
		*oflags = path ? O_RDONLY : (acc == O_WRONLY ? O_RDONLY : acc);
		return path ? path : "/dev/null";
	}
	if (pol) {
		if (e->fd == 1 && pol->stdout_path)
			path = pol->stdout_path;
		else if (e->fd == 2 && pol->stderr_path)
			path = pol->stderr_path;
		else
			path = pol->log_path;
	}
	if (!path) {
		*oflags = acc;
		return "/dev/null";
	}
	*oflags = (acc == O_RDWR ? O_RDWR : O_WRONLY) | O_APPEND | O_CREAT;
	return path;
}

static int ext_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__FdEntry placed = *e;
	const char *path;
	int oflags, fd;

	path = choose(c->policy, e, &oflags);
	fd = open(path, oflags | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		int err = -errno;
		pr_err("fd %u: reconnecting to %s: %s", e->fd, path, strerror(errno));
		return err;
	}
	/* The new file keeps its own status flags (O_APPEND for a log), not
	 * the old terminal's or pipe's. */
	placed.flags = (uint32_t)oflags;
	placed.has_pos = 0;
	return fd_place(fd, &placed, 0);
}

static void ext_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	Cryo__Reconnected *rc = e->has_payload ?
		cryo__reconnected__unpack(NULL, e->payload.len, e->payload.data) : NULL;

	if (!rc) {
		snprintf(buf, n, "outside connection (undecodable)");
		return;
	}
	snprintf(buf, n, "outside %s -> %s at melt%s", rc->was,
		 !strcmp(rc->policy, "null") ? "/dev/null (or --stdin)" :
		 e->fd == 1 ? "log (or --stdout)" : e->fd == 2 ? "log (or --stderr)" : "log",
		 e->cloexec ? " cloexec" : "");
	cryo__reconnected__free_unpacked(rc, NULL);
}

const struct fd_ops fd_ops_ext = {
	.name = "ext",
	.match = ext_match,
	.dump = ext_dump,
	.restore = ext_restore,
	.describe = ext_describe,
};
