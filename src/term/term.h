/* A group's terminal: a pseudo-terminal held by a small process of its own
 * (the "holder"), like tmux's server or dtach, one per group.
 *
 * The holder keeps the pty's master (and a slave fd, so the master never
 * hangs up while no process has the terminal open), records what the
 * program writes in a bounded ring, and relays between the pty and at most
 * one attached client over CRYO_HOME/term/NAME.sock (mode 0600: its
 * owner's). It outlives `cryo run` and `cryo attach`; it ends when the
 * process it watches ends (after a freeze too: melt starts a new one).
 *
 *   cryo run:   term_start(argv)  holder forks the command on the slave as
 *               a session leader with the pty as controlling terminal, and
 *               reports its pid once exec succeeded; as its parent it
 *               records its exit status in CRYO_HOME/term/NAME.exit.
 *   cryo melt:  term_start(NULL)  a fresh pty for a process whose snapshot
 *               had a terminal (fds/tty.c opens its slave at restore);
 *               term_watch(pid) once it runs, term_quit() if melt failed.
 *   cryo attach: term_attach()    raw mode, window size passed on (and on
 *               each SIGWINCH), the ring replayed, Ctrl-\ detaches.
 *
 * Wire: the client sends frames (1 byte type, 2 bytes length little-endian,
 * data): 'a' attach, 'i' input bytes, 'w' window size (rows, cols as two
 * u16), 'p' watch pid (u32), 'q' quit. The holder sends raw output. */
#ifndef CRYO_TERM_TERM_H
#define CRYO_TERM_TERM_H

#include <stddef.h>
#include <sys/types.h>

#define TERM_DETACH_KEY 0x1c	/* Ctrl-\ */
#define TERM_RING	(64u << 10)

struct term_start_opts {
	const char *home;	/* CRYO_HOME */
	const char *name;	/* group */
	char *const *argv;	/* run: the command; NULL: a pty for melt */
	unsigned short rows, cols;	/* initial window size, 0: 24x80 */
};

/* Start a holder; returns once it serves. run: *pid = the command's pid
 * after its exec succeeded (-ENOEXEC-like errno from exec otherwise).
 * slave (n bytes) gets the pty's slave path. -EEXIST when a holder already
 * serves name. */
int term_start(const struct term_start_opts *o, pid_t *pid, char *slave, size_t n);
/* Tell the holder of name which process has its terminal (melt). */
int term_watch(const char *home, const char *name, pid_t pid);
/* Ask the holder of name to end (a melt that failed); 0 if none. */
int term_quit(const char *home, const char *name);
/* Attach the caller's terminal (in, out) to name's until detached (0) or
 * the terminal ends (1); -errno when there is none. */
int term_attach(const char *home, const char *name, int in, int out);
/* The same over sock, a connection to the holder made by term_connect()
 * (by cryod, for a user who may not open the holder's socket: ctl.h);
 * closes sock. */
int term_attach_fd(int sock, int in, int out);
/* A connected socket to name's holder, or -ENOENT when none serves. */
int term_connect(const char *home, const char *name);

/* CRYO_HOME/term/NAME.sock (or .exit with suffix "exit"). */
int term_path(const char *home, const char *name, const char *suffix, char *buf, size_t n);

#endif
