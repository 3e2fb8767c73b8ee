/* "tty": the slave side of a pseudo-terminal (/dev/pts/N).
 *
 * Saved: the terminal's settings (termios as tcgetattr gives them), its
 * window size, whether it is the process's controlling terminal and then
 * its foreground process group, and whether its master is held in the
 * group (a pty the group opened itself: "ptmx", src/fds/ptmx.c).
 *
 * A pty whose master is the group's own comes back as a new pair: the
 * slave is opened from the restored master (TIOCGPTPEER), so the two are
 * connected again; its number /dev/pts/N is new. Any other pty (the
 * group's terminal, whose master another process holds) cannot come
 * back, so at melt the process gets a fresh one: cryo starts a terminal
 * holder for the group (src/term) and passes its slave as
 * fd_policy.tty_path; every such fd opens it, with the old settings.
 * `cryo attach NAME` reaches it. Without a tty_path (a library caller that
 * gave none) the fd is reconnected as "ext" is: /dev/null or the log.
 *
 * Opens never take a controlling terminal (O_NOCTTY): restore/make.c calls
 * the ctty op in each session leader at the one moment it is right (before
 * it forks its children, so they inherit it), and the finish op gives the
 * foreground back once the children's process groups exist. */
#define LOG_PREFIX "fds/tty: "
#include "fds/fd_priv.h"
#include "common/log.h"
#include "proc/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

extern const struct fd_ops fd_ops_ext;

static int tty_match(const struct fd_probe *p)
{
	unsigned ma = major(p->st.st_rdev);

	return S_ISCHR(p->st.st_mode) && ma >= 136 && ma <= 143;
}

/* N of /dev/pts/N: the Unix98 slaves take majors 136-143, 256 minors each. */
static uint32_t pty_index(dev_t rdev)
{
	return (major(rdev) - 136) * 256 + minor(rdev);
}

/* 1 if rdev is pid's controlling terminal; *fg: its foreground process
 * group then (0 if none). */
static int is_ctty(pid_t pid, dev_t rdev, int64_t *fg)
{
	struct proc_stat ps;

	*fg = 0;
	if (proc_stat_read(pid, 0, &ps) || (dev_t)ps.f[PROC_STAT_TTY_NR] != rdev)
		return 0;
	*fg = ps.f[PROC_STAT_TPGID] > 0 ? ps.f[PROC_STAT_TPGID] : 0;
	return 1;
}

int fd_tty_settings(int fd, Cryo__Tty *t, struct termios *tio)
{
	struct winsize ws;

	if (tcgetattr(fd, tio) || ioctl(fd, TIOCGWINSZ, &ws))
		return -errno;
	t->has_iflag = t->has_oflag = t->has_cflag = t->has_lflag = t->has_line = 1;
	t->iflag = tio->c_iflag;
	t->oflag = tio->c_oflag;
	t->cflag = tio->c_cflag;
	t->lflag = tio->c_lflag;
	t->line = tio->c_line;
	t->has_cc = 1;
	t->cc.data = tio->c_cc;
	t->cc.len = sizeof(tio->c_cc);
	t->has_ispeed = t->has_ospeed = 1;
	t->ispeed = (uint32_t)cfgetispeed(tio);
	t->ospeed = (uint32_t)cfgetospeed(tio);
	t->has_rows = t->has_cols = 1;
	t->rows = ws.ws_row;
	t->cols = ws.ws_col;
	return 0;
}

static int tty_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__Tty t = CRYO__TTY__INIT;
	struct termios tio;
	int64_t fg;
	int r;

	(void)c;
	r = p->local < 0 ? -EBADF : fd_tty_settings(p->local, &t, &tio);
	if (r) {
		pr_err("pid %d fd %d: %s: cannot read its settings: %s", p->pid, p->fd, p->link,
		       p->local < 0 ? "no copy of the fd" : strerror(-r));
		return -ENOTSUP;
	}
	t.was = (char *)p->link;
	t.has_ctty = 1;
	t.ctty = is_ctty(p->pid, p->st.st_rdev, &fg);
	if (fg > 0 && fg <= UINT32_MAX) {
		t.has_fg_pgrp = 1;
		t.fg_pgrp = (uint32_t)fg;
	}
	t.has_pty_index = 1;
	t.pty_index = pty_index(p->st.st_rdev);
	t.has_inner = 1;
	t.inner = fd_group_pty_master(p, t.pty_index);
	r = fd_pack(e, &t.base);
	if (!r)
		r = fd_set_desc(e, "%s%s %ux%u (%s at melt)", p->link, t.ctty ? " controlling" : "",
				t.cols, t.rows,
				t.inner ? "the group's own pty, made again" : "a fresh terminal");
	return r;
}

void fd_tty_apply(int fd, const Cryo__Tty *t)
{
	struct termios tio;
	struct winsize ws = { .ws_row = (unsigned short)t->rows, .ws_col = (unsigned short)t->cols };

	if (!tcgetattr(fd, &tio)) {
		tio.c_iflag = t->iflag;
		tio.c_oflag = t->oflag;
		tio.c_cflag = t->cflag;
		tio.c_lflag = t->lflag;
		tio.c_line = (cc_t)t->line;
		if (t->has_cc && t->cc.len == sizeof(tio.c_cc))
			memcpy(tio.c_cc, t->cc.data, sizeof(tio.c_cc));
		(void)cfsetispeed(&tio, (speed_t)t->ispeed);
		(void)cfsetospeed(&tio, (speed_t)t->ospeed);
		if (tcsetattr(fd, TCSANOW, &tio))
			pr_warn("terminal settings not restored: %s", strerror(errno));
	}
	if (ws.ws_row && ws.ws_col)
		(void)ioctl(fd, TIOCSWINSZ, &ws);
}

/* The terminal's foreground process group as it was (a shell's job in
 * the foreground: else it would stop on SIGTTIN at its next read). A
 * finish step: it runs in the session leader once its fds are in place,
 * and so after its children and their process groups are made
 * (restore/make.c forks a process's children before its fds; a terminal
 * the root shares with them is made before the forks). A group that did
 * not come back (its leader had exited: make.c puts its members in their
 * parent's) is refused by the kernel, and the leader's stays. */
static int tty_finish(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__Tty *t;
	pid_t fg;

	if (getsid(0) != getpid())
		return 0;
	t = (Cryo__Tty *)fd_unpack(e, &cryo__tty__descriptor);
	if (!t)
		return -EBADMSG;
	if (!t->inner && (!c->policy || !c->policy->tty_path)) {
		cryo__tty__free_unpacked(t, NULL);
		return 0;	/* reconnected as "ext": no terminal */
	}
	fg = (pid_t)t->fg_pgrp;
	if (t->ctty && t->has_fg_pgrp && fg > 0 && fg != getpgrp() &&
	    tcsetpgrp((int)e->fd, fg) < 0)
		pr_warn("fd %u: foreground process group %d not restored (%s); the session "
			"leader's is", e->fd, (int)fg, strerror(errno));
	cryo__tty__free_unpacked(t, NULL);
	return 0;
}

static int tty_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__Tty *t = (Cryo__Tty *)fd_unpack(e, &cryo__tty__descriptor);
	int fd, r;

	if (!t)
		return -EBADMSG;
	if (t->inner) {
		fd = fd_pty_open_slave(c, t->pty_index, fd_open_flags(e));
		if (fd < 0) {
			r = fd;
			pr_err("fd %u: the slave of the group's pty %u: %s", e->fd, t->pty_index,
			       strerror(-r));
			goto out;
		}
	} else if (!c->policy || !c->policy->tty_path) {
		cryo__tty__free_unpacked(t, NULL);
		return fd_ops_ext.restore(c, e);
	} else {
		fd = open(c->policy->tty_path, fd_open_flags(e));
		if (fd < 0) {
			r = -errno;
			pr_err("fd %u: the new terminal %s: %s", e->fd, c->policy->tty_path,
			       strerror(errno));
			goto out;
		}
	}
	fd_tty_apply(fd, t);
	r = fd_place(fd, e, 0);
out:
	cryo__tty__free_unpacked(t, NULL);
	return r;
}

/* Make the terminal at fd the caller's controlling terminal if it was.
 * restore/make.c calls this in a session leader that has no terminal yet. */
static int tty_ctty(struct fd_restore_ctx *c, const Cryo__FdEntry *e, int fd)
{
	Cryo__Tty *t = (Cryo__Tty *)fd_unpack(e, &cryo__tty__descriptor);

	if (!t)
		return -EBADMSG;
	if (t->ctty && (t->inner || (c->policy && c->policy->tty_path)) &&
	    ioctl(fd, TIOCSCTTY, 0) < 0)
		pr_warn("fd %u: %s not made the controlling terminal again: %s", e->fd, t->was,
			strerror(errno));
	cryo__tty__free_unpacked(t, NULL);
	return 0;
}

static uint64_t tty_object(const Cryo__FdEntry *e)
{
	Cryo__Tty *t = (Cryo__Tty *)fd_unpack(e, &cryo__tty__descriptor);
	uint64_t key = t && t->inner ? FD_PTY_ID(t->pty_index) : 0;

	if (t)
		cryo__tty__free_unpacked(t, NULL);
	return key;
}

static void tty_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	snprintf(buf, n, "%s flags 0%o%s", e->desc ? e->desc : "tty", e->flags,
		 e->cloexec ? " cloexec" : "");
}

const struct fd_ops fd_ops_tty = {
	.name = "tty",
	.match = tty_match,
	.dump = tty_dump,
	.restore = tty_restore,
	.finish = tty_finish,
	.ctty = tty_ctty,
	.object = tty_object,
	.describe = tty_describe,
};
