/* The holder of a group's terminal (term.h): start, serve, end. */
#define LOG_PREFIX "term: "
#include "term/term.h"
#include "term/term_int.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

struct holder {
	const struct term_start_opts *o;
	int master, slave, lsock;
	int client;			/* attached, or -1 */
	int pending[4];			/* accepted, first frame not read yet */
	int pidfd;			/* the process with the terminal, or -1 */
	pid_t pid;
	int own_child;			/* pid is ours (run): reap it */
	uint8_t ring[TERM_RING];
	size_t ring_len, ring_at;	/* bytes kept; next write position */
};

int term_path(const char *home, const char *name, const char *suffix, char *buf, size_t n)
{
	if (snprintf(buf, n, "%s/term/%s.%s", home, name, suffix) >= (int)n)
		return -ENAMETOOLONG;
	return 0;
}

int term_connect(const char *home, const char *name)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, r;

	r = term_path(home, name, "sock", a.sun_path, sizeof(a.sun_path));
	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		r = errno == ECONNREFUSED || errno == ENOENT ? -ENOENT : -errno;
		close(fd);
		return r;
	}
	return fd;
}

int term_send(int fd, char type, const void *data, size_t len)
{
	uint8_t h[3] = { (uint8_t)type, (uint8_t)(len & 0xff), (uint8_t)(len >> 8) };
	struct iovec v[2] = { { h, 3 }, { (void *)data, len } };
	struct msghdr m = { .msg_iov = v, .msg_iovlen = len ? 2 : 1 };

	if (len > 0xffff)
		return -EMSGSIZE;
	return sendmsg(fd, &m, MSG_NOSIGNAL) == (ssize_t)(3 + len) ? 0 : -EIO;
}

static void ring_put(struct holder *h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h->ring[h->ring_at] = p[i];
		h->ring_at = (h->ring_at + 1) % TERM_RING;
	}
	h->ring_len = h->ring_len + n > TERM_RING ? TERM_RING : h->ring_len + n;
}

/* Write all of p to a client; a client that does not take it in 2 s is
 * dropped, never the program's output stalled. */
static int client_write(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void drop_client(struct holder *h)
{
	if (h->client >= 0)
		close(h->client);
	h->client = -1;
}

static void replay(struct holder *h)
{
	size_t start = (h->ring_at + TERM_RING - h->ring_len) % TERM_RING;
	size_t first = h->ring_len < TERM_RING - start ? h->ring_len : TERM_RING - start;

	if (client_write(h->client, h->ring + start, first) ||
	    client_write(h->client, h->ring, h->ring_len - first))
		drop_client(h);
}

/* A new size makes the kernel send SIGWINCH to the foreground group; the
 * same size would not, so a full-screen program would not redraw on
 * attach: nudge it through a size one row off. */
static void set_size(struct holder *h, const uint8_t *d, size_t n, int redraw)
{
	struct winsize now = { 0 }, ws = { 0 };

	if (n != 4)
		return;
	ws.ws_row = (unsigned short)(d[0] | d[1] << 8);
	ws.ws_col = (unsigned short)(d[2] | d[3] << 8);
	if (!ws.ws_row || !ws.ws_col)
		return;
	if (redraw && !ioctl(h->master, TIOCGWINSZ, &now) && now.ws_row == ws.ws_row &&
	    now.ws_col == ws.ws_col) {
		struct winsize off = ws;

		off.ws_row = ws.ws_row > 1 ? ws.ws_row - 1 : ws.ws_row + 1;
		(void)ioctl(h->master, TIOCSWINSZ, &off);
	}
	(void)ioctl(h->master, TIOCSWINSZ, &ws);
}

static void watch(struct holder *h, pid_t pid, int own)
{
	if (h->pidfd >= 0)
		close(h->pidfd);
	h->pid = pid;
	h->own_child = own;
	h->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (h->pidfd < 0)
		pr_warn("watching pid %d: %s", (int)pid, strerror(errno));
}

/* Read one frame; 1 with it, 0 at EOF, -errno. */
static int read_frame(int fd, char *type, uint8_t *data, size_t *len)
{
	uint8_t hd[3];
	size_t got = 0, n;

	while (got < 3) {
		ssize_t r = read(fd, hd + got, 3 - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : 0;
		got += (size_t)r;
	}
	n = (size_t)hd[1] | (size_t)hd[2] << 8;
	for (got = 0; got < n;) {
		ssize_t r = read(fd, data + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EIO;
		got += (size_t)r;
	}
	*type = (char)hd[0];
	*len = n;
	return 1;
}

/* A frame from the attached client (or a control connection). 1: quit. */
static int on_frame(struct holder *h, int fd, char type, const uint8_t *d, size_t n)
{
	uint32_t pid;

	switch (type) {
	case 'i':
		if (fd == h->client && write(h->master, d, n) < 0)
			pr_warn("input to the terminal: %s", strerror(errno));
		return 0;
	case 'w':
		if (fd == h->client)
			set_size(h, d, n, 0);
		return 0;
	case 'p':
		if (n == 4) {
			memcpy(&pid, d, 4);
			watch(h, (pid_t)pid, 0);
		}
		return 0;
	case 'q':
		return 1;
	default:
		return 0;	/* unknown: ignored, the client may be newer */
	}
}

static int on_pending(struct holder *h, int i)
{
	uint8_t d[0x10000];
	size_t n;
	char type;
	int fd = h->pending[i], r = read_frame(fd, &type, d, &n);

	h->pending[i] = -1;
	if (r <= 0) {
		close(fd);
		return 0;
	}
	if (type != 'a') {
		r = on_frame(h, fd, type, d, n);
		(void)term_send(fd, 'k', NULL, 0);	/* done: the sender may go on */
		close(fd);
		return r;
	}
	if (h->client >= 0) {
		static const char msg[] = "\r\n[cryo: attached elsewhere]\r\n";

		(void)client_write(h->client, (const uint8_t *)msg, sizeof(msg) - 1);
		drop_client(h);
	}
	h->client = fd;
	replay(h);
	/* the attach frame carries the client's size: redraw at it */
	if (h->client >= 0)
		set_size(h, d, n, 1);
	return 0;
}

static void on_accept(struct holder *h)
{
	int fd = accept4(h->lsock, NULL, NULL, SOCK_CLOEXEC);
	struct timeval tv = { 2, 0 };

	if (fd < 0)
		return;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (size_t i = 0; i < sizeof(h->pending) / sizeof(h->pending[0]); i++)
		if (h->pending[i] < 0) {
			h->pending[i] = fd;
			return;
		}
	close(fd);	/* too many at once */
}

static void on_output(struct holder *h)
{
	uint8_t buf[4096];
	ssize_t n = read(h->master, buf, sizeof(buf));

	if (n <= 0)
		return;
	ring_put(h, buf, (size_t)n);
	if (h->client >= 0 && client_write(h->client, buf, (size_t)n))
		drop_client(h);
}

/* The watched process ended: its status (ours to reap in run) goes to
 * NAME.exit, for `cryo ps`. */
static void on_exit_of(struct holder *h)
{
	char path[4096], text[64];
	int status;
	FILE *f;

	if (!h->own_child || waitpid(h->pid, &status, WNOHANG) != h->pid)
		return;
	if (WIFEXITED(status))
		snprintf(text, sizeof(text), "exited %d\n", WEXITSTATUS(status));
	else
		snprintf(text, sizeof(text), "killed %d\n", WTERMSIG(status));
	if (term_path(h->o->home, h->o->name, "exit", path, sizeof(path)))
		return;
	f = fopen(path, "we");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void serve(struct holder *h)
{
	for (;;) {
		struct pollfd p[8];
		size_t np = 0, first_pending;
		int quit = 0;

		p[np++] = (struct pollfd){ .fd = h->master, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = h->lsock, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = h->client, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = h->pidfd, .events = POLLIN };
		first_pending = np;
		for (size_t i = 0; i < 4; i++)
			p[np++] = (struct pollfd){ .fd = h->pending[i], .events = POLLIN };
		if (poll(p, np, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[0].revents & POLLIN)
			on_output(h);
		if (p[1].revents & POLLIN)
			on_accept(h);
		if (p[2].revents) {
			uint8_t d[0x10000];
			size_t n;
			char type;

			if (read_frame(h->client, &type, d, &n) <= 0)
				drop_client(h);
			else
				quit |= on_frame(h, h->client, type, d, n);
		}
		for (size_t i = 0; i < 4; i++)
			if (p[first_pending + i].revents)
				quit |= on_pending(h, (int)i);
		if (p[3].revents) {
			/* what it wrote last, then goodbye */
			while (poll(p, 1, 50) > 0 && (p[0].revents & POLLIN))
				on_output(h);
			on_exit_of(h);
			return;
		}
		if (quit)
			return;
	}
}

static int listen_on(struct holder *h)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char dir[4096];
	struct stat st;
	int r;

	snprintf(dir, sizeof(dir), "%s/term", h->o->home);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	r = term_path(h->o->home, h->o->name, "sock", a.sun_path, sizeof(a.sun_path));
	if (r)
		return r;
	/* a socket file left by a holder that died: nobody answers on it */
	if (!lstat(a.sun_path, &st)) {
		int fd = term_connect(h->o->home, h->o->name);

		if (fd >= 0) {
			close(fd);
			return -EEXIST;
		}
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		unlink(a.sun_path);
	}
	h->lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->lsock < 0)
		return -errno;
	if (bind(h->lsock, (struct sockaddr *)&a, sizeof(a)) || chmod(a.sun_path, 0600) ||
	    listen(h->lsock, 4))
		return -errno;
	return 0;
}

static int open_pty(struct holder *h, char *slave, size_t n)
{
	struct winsize ws = { .ws_row = h->o->rows ? h->o->rows : 24,
			      .ws_col = h->o->cols ? h->o->cols : 80 };

	h->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (h->master < 0 || grantpt(h->master) || unlockpt(h->master) ||
	    ptsname_r(h->master, slave, n))
		return -errno;
	h->slave = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (h->slave < 0)
		return -errno;
	(void)ioctl(h->master, TIOCSWINSZ, &ws);
	return 0;
}

/* The command, on the slave: session leader, controlling terminal. */
static __attribute__((noreturn)) void exec_child(struct holder *h, const char *slave, int errp)
{
	int fd;

	setsid();
	fd = open(slave, O_RDWR);	/* the first tty a leader opens: its ctty */
	if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 ||
	    dup2(fd, 2) < 0)
		goto fail;
	if (fd > 2)
		close(fd);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	execvp(h->o->argv[0], h->o->argv);
fail:
	fd = errno;
	if (write(errp, &fd, sizeof(fd)) < 0)
		(void)0;
	_exit(127);
}

/* In the holder: the command; its pid once exec succeeded, or -errno. */
static int run_command(struct holder *h, const char *slave, pid_t *pid)
{
	int p[2], err = 0;
	ssize_t n;
	pid_t c;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	c = fork();
	if (c < 0)
		return -errno;
	if (c == 0)
		exec_child(h, slave, p[1]);
	close(p[1]);
	n = read(p[0], &err, sizeof(err));	/* EOF: exec closed it */
	close(p[0]);
	if (n == sizeof(err)) {
		waitpid(c, NULL, 0);
		return -err;
	}
	*pid = c;
	watch(h, c, 1);
	return 0;
}

struct report {
	int32_t err;
	int32_t pid;
	char slave[108];
};

/* What the holder has to say goes to CRYO_HOME/log/term-NAME.log: it has
 * no terminal of its own. */
static void log_to_file(const struct term_start_opts *o)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/log", o->home);
	(void)mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/log/term-%s.log", o->home, o->name);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
}

static __attribute__((noreturn)) void holder_main(const struct term_start_opts *o, int rep)
{
	static struct holder h;
	struct report r = { 0 };
	pid_t pid = 0;
	int devnull;

	h.o = o;
	h.master = h.slave = h.lsock = h.client = h.pidfd = -1;
	for (size_t i = 0; i < 4; i++)
		h.pending[i] = -1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	(void)prctl(PR_SET_NAME, "cryo-term");
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
	}
	log_to_file(o);
	r.err = listen_on(&h);
	if (!r.err) {
		char path[4096];

		/* how an earlier process of the group ended is not this one's */
		if (!term_path(o->home, o->name, "exit", path, sizeof(path)))
			unlink(path);
		r.err = open_pty(&h, r.slave, sizeof(r.slave));
	}
	if (!r.err && o->argv)
		r.err = run_command(&h, r.slave, &pid);
	r.pid = (int32_t)pid;
	if (write(rep, &r, sizeof(r)) < 0)
		(void)0;
	close(rep);
	if (!r.err)
		serve(&h);
	if (r.err != -EEXIST) {
		char path[4096];

		if (!term_path(o->home, o->name, "sock", path, sizeof(path)))
			unlink(path);
	}
	_exit(0);
}

int term_start(const struct term_start_opts *o, pid_t *pid, char *slave, size_t n)
{
	struct report r = { .err = -EIO };
	int p[2], status;
	pid_t a;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	/* Twice forked and in its own session: no parent waits for it, no
	 * terminal's hangup reaches it. */
	a = fork();
	if (a < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (a == 0) {
		close(p[0]);
		/* Nothing of the caller's: an open store would stay locked
		 * (its flock goes with the open file) for the holder's life. */
		if (p[1] > 3)
			(void)syscall(SYS_close_range, 3u, (unsigned)p[1] - 1, 0u);
		(void)syscall(SYS_close_range, (unsigned)p[1] + 1, ~0u, 0u);
		setsid();
		if (fork() == 0)
			holder_main(o, p[1]);
		_exit(0);
	}
	close(p[1]);
	waitpid(a, &status, 0);
	if (read(p[0], &r, sizeof(r)) != sizeof(r))
		r.err = -EIO;
	close(p[0]);
	if (r.err)
		return r.err;
	if (pid)
		*pid = r.pid;
	if (slave && snprintf(slave, n, "%s", r.slave) >= (int)n)
		return -ENAMETOOLONG;
	return 0;
}

/* One control frame; waits for the holder's 'k' so it took effect. */
static int control(const char *home, const char *name, char type, const void *d, size_t n)
{
	int fd = term_connect(home, name), r;
	char k[3];

	if (fd < 0)
		return fd;
	r = term_send(fd, type, d, n);
	if (!r && read(fd, k, sizeof(k)) != sizeof(k))
		r = type == 'q' ? 0 : -EIO;
	close(fd);
	return r;
}

int term_watch(const char *home, const char *name, pid_t pid)
{
	uint32_t p = (uint32_t)pid;

	return control(home, name, 'p', &p, sizeof(p));
}

int term_quit(const char *home, const char *name)
{
	int r = control(home, name, 'q', NULL, 0);

	return r == -ENOENT ? 0 : r;
}
