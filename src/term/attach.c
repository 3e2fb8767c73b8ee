/* cryo attach: the caller's terminal on a group's (term.h). */
#define LOG_PREFIX "term: "
#include "term/term.h"
#include "term/term_int.h"
#include "common/log.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

/* The window size of in as a 'w'/'a' payload; 0 bytes if in has none. */
static size_t size_of(int in, uint8_t d[4])
{
	struct winsize ws;

	if (ioctl(in, TIOCGWINSZ, &ws) || !ws.ws_row || !ws.ws_col)
		return 0;
	d[0] = (uint8_t)ws.ws_row;
	d[1] = (uint8_t)(ws.ws_row >> 8);
	d[2] = (uint8_t)ws.ws_col;
	d[3] = (uint8_t)(ws.ws_col >> 8);
	return 4;
}

/* Keys typed: sent on, up to the detach key. 1 when it was typed. */
static int on_input(int sock, const uint8_t *buf, size_t n)
{
	const uint8_t *k = memchr(buf, TERM_DETACH_KEY, n);
	size_t send_n = k ? (size_t)(k - buf) : n;

	if (send_n && term_send(sock, 'i', buf, send_n))
		return -EIO;
	return k != NULL;
}

static int relay(int sock, int in, int out, int sfd)
{
	uint8_t buf[4096];

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = in, .events = POLLIN },
			{ .fd = sock, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
		};
		ssize_t n;

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[2].revents & POLLIN) {
			struct signalfd_siginfo si;
			uint8_t d[4];
			size_t dn;

			if (read(sfd, &si, sizeof(si)) == sizeof(si) && (dn = size_of(in, d)))
				(void)term_send(sock, 'w', d, dn);
		}
		if (p[1].revents) {
			n = read(sock, buf, sizeof(buf));
			if (n <= 0)
				return 1;	/* the terminal ended */
			if (write(out, buf, (size_t)n) < 0)
				return -errno;
		}
		if (p[0].revents) {
			int r;

			n = read(in, buf, sizeof(buf));
			if (n <= 0)
				return 0;	/* our input ended: detach */
			r = on_input(sock, buf, (size_t)n);
			if (r)
				return r < 0 ? r : 0;
		}
	}
}

int term_attach(const char *home, const char *name, int in, int out)
{
	int sock = term_connect(home, name);

	return sock < 0 ? sock : term_attach_fd(sock, in, out);
}

int term_attach_fd(int sock, int in, int out)
{
	struct termios saved, raw;
	int tty, sfd, r;
	sigset_t set, old;
	uint8_t d[4];

	tty = !tcgetattr(in, &saved);
	if (tty) {
		raw = saved;
		cfmakeraw(&raw);
		(void)tcsetattr(in, TCSANOW, &raw);
	}
	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	sigprocmask(SIG_BLOCK, &set, &old);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	r = term_send(sock, 'a', d, size_of(in, d));
	if (!r)
		r = relay(sock, in, out, sfd);
	if (tty)
		(void)tcsetattr(in, TCSANOW, &saved);
	if (sfd >= 0)
		close(sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(sock);
	return r;
}
