/* "ptmx": the master side of a pseudo-terminal the group opened itself
 * (/dev/ptmx, posix_openpt): tmux or screen inside the group, script,
 * expect, python's pty module.
 *
 * Saved: which pty it is (fdinfo "tty-index", else TIOCGPTN), whether the
 * slave is still locked (TIOCGPTLCK), packet mode (TIOCGPKT) and the
 * window size. The slave's own settings are saved by the "tty" kind with
 * each slave fd the group holds; a slave is not opened here to read them
 * (closing the last slave would make the program's next read of its
 * master fail with EIO).
 *
 * Melt makes a new pair with posix_openpt; every slave fd of the group
 * for that pty is opened from it (TIOCGPTPEER, tty.c), so they are
 * connected again, under a new /dev/pts number. Master and slaves are one
 * object (FD_PTY_ID): held by several processes, the root makes them all
 * before it forks the others (restore/make.c).
 *
 * Not kept: bytes in flight in the pty's two queues (what the program
 * wrote and its peer has not read yet) — reading them would take them
 * from the running program; they are lost at melt, as on a hangup. */
#define LOG_PREFIX "fds/ptmx: "
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

static int ptmx_match(const struct fd_probe *p)
{
	return S_ISCHR(p->st.st_mode) && major(p->st.st_rdev) == 5 && minor(p->st.st_rdev) == 2;
}

static int master_index(const struct fd_probe *p, uint32_t *index)
{
	const char *v = proc_fdinfo_get(p->info, "tty-index");
	unsigned int n;
	char *end;

	if (v) {
		unsigned long x = strtoul(v, &end, 10);

		if (end == v || *end || x > UINT32_MAX)
			return -EINVAL;
		*index = (uint32_t)x;
		return 0;
	}
	if (p->local < 0 || ioctl(p->local, TIOCGPTN, &n) < 0)
		return -ENOTSUP;
	*index = n;
	return 0;
}

static int ptmx_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__PtyMaster pm = CRYO__PTY_MASTER__INIT;
	Cryo__Tty slave = CRYO__TTY__INIT;
	struct winsize ws;
	int locked = 0, packet = 0, r;

	(void)c;
	r = master_index(p, &pm.index);
	if (r || p->local < 0) {
		pr_err("pid %d fd %d: %s: which pty it is: %s", p->pid, p->fd, p->link,
		       r ? strerror(-r) : "no copy of the fd");
		return -ENOTSUP;
	}
	if (ioctl(p->local, TIOCGPTLCK, &locked) < 0 || ioctl(p->local, TIOCGPKT, &packet) < 0 ||
	    ioctl(p->local, TIOCGWINSZ, &ws) < 0) {
		r = -errno;
		pr_err("pid %d fd %d: pty %u: %s", p->pid, p->fd, pm.index, strerror(errno));
		return r;
	}
	pm.has_locked = pm.has_packet = 1;
	pm.locked = locked != 0;
	pm.packet = packet != 0;
	slave.was = (char *)"";
	slave.has_rows = slave.has_cols = 1;
	slave.rows = ws.ws_row;
	slave.cols = ws.ws_col;
	pm.slave = &slave;
	r = fd_pack(e, &pm.base);
	if (!r)
		r = fd_set_desc(e, "master of /dev/pts/%u %ux%u%s%s (made again at melt)", pm.index,
				ws.ws_col, ws.ws_row, pm.locked ? " locked" : "",
				pm.packet ? " packet mode" : "");
	return r;
}

/* The pair standing for pty index in this melt; its master made now if
 * it is not yet. */
static struct fd_shared *pty_pair(struct fd_restore_ctx *c, uint32_t index, int *err)
{
	struct fd_shared *sh = fd_shared_get(c, FD_PTY_ID(index));
	int m;

	*err = -ENOMEM;
	if (!sh)
		return NULL;
	if (sh->fd[0] >= 0)
		return sh;
	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0 || unlockpt(m) < 0) {
		*err = -errno;
		if (m >= 0)
			close(m);
		pr_err("a new pty for /dev/pts/%u: %s", index, strerror(-*err));
		return NULL;
	}
	/* above every fd the image uses, so placing others never hits it */
	sh->fd[0] = fd_move_above(m, c->max_fd + 1);
	if (sh->fd[0] < 0) {
		*err = sh->fd[0];
		return NULL;
	}
	return sh;
}

int fd_pty_open_slave(struct fd_restore_ctx *c, uint32_t index, int flags)
{
	int err, fd;
	struct fd_shared *sh = pty_pair(c, index, &err);

	if (!sh)
		return err;
	/* O_CLOEXEC given to TIOCGPTPEER stays in the file's f_flags, where
	 * fdinfo shows it as the fd's close-on-exec bit: the next snapshot
	 * would take fds 0-2 for close-on-exec. The fd flag is set apart. */
	fd = ioctl(sh->fd[0], TIOCGPTPEER, (flags & ~O_CLOEXEC) | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int ptmx_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__PtyMaster *pm = (Cryo__PtyMaster *)fd_unpack(e, &cryo__pty_master__descriptor);
	struct fd_shared *sh;
	int err, fd, r;

	if (!pm)
		return -EBADMSG;
	sh = pty_pair(c, pm->index, &err);
	if (!sh) {
		r = err;
		goto out;
	}
	if (pm->slave && pm->slave->rows && pm->slave->cols) {
		struct winsize ws = { .ws_row = (unsigned short)pm->slave->rows,
				      .ws_col = (unsigned short)pm->slave->cols };

		(void)ioctl(sh->fd[0], TIOCSWINSZ, &ws);
	}
	if (pm->packet) {
		int on = 1;

		if (ioctl(sh->fd[0], TIOCPKT, &on) < 0)
			pr_warn("fd %u: packet mode not set again: %s", e->fd, strerror(errno));
	}
	/* The master itself moves into place; slaves made later in this
	 * process open from it there. */
	fd = sh->fd[0];
	r = fd_place(fd, e, 0);
	sh->fd[0] = r ? -1 : (int)e->fd;
out:
	cryo__pty_master__free_unpacked(pm, NULL);
	return r;
}

/* Once every fd is in place (every slave of the group opened): lock the
 * slave again if it was locked. */
static int ptmx_finish(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__PtyMaster *pm = (Cryo__PtyMaster *)fd_unpack(e, &cryo__pty_master__descriptor);
	int on = 1;

	(void)c;
	if (!pm)
		return -EBADMSG;
	if (pm->locked && ioctl((int)e->fd, TIOCSPTLCK, &on) < 0)
		pr_warn("fd %u: slave not locked again: %s", e->fd, strerror(errno));
	cryo__pty_master__free_unpacked(pm, NULL);
	return 0;
}

static uint64_t ptmx_object(const Cryo__FdEntry *e)
{
	Cryo__PtyMaster *pm = (Cryo__PtyMaster *)fd_unpack(e, &cryo__pty_master__descriptor);
	uint64_t key = pm ? FD_PTY_ID(pm->index) : 0;

	if (pm)
		cryo__pty_master__free_unpacked(pm, NULL);
	return key;
}

static void ptmx_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s", e->desc ? e->desc : "pty master", e->cloexec ? " cloexec" : "");
}

const struct fd_ops fd_ops_ptmx = {
	.name = "ptmx",
	.match = ptmx_match,
	.dump = ptmx_dump,
	.restore = ptmx_restore,
	.finish = ptmx_finish,
	.object = ptmx_object,
	.describe = ptmx_describe,
};
