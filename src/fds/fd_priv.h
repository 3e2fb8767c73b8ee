/* Internal to src/fds: helpers the kinds share. */
#ifndef CRYO_FDS_FD_PRIV_H
#define CRYO_FDS_FD_PRIV_H

#include <fcntl.h>

#include "fds/fd.h"

/* Open-file status flags F_SETFL may change (the rest are fixed at open). */
#define FD_SETFL_MASK	(O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)

/* Move fd to e->fd (closing fd unless it is e->fd), then give it e's
 * close-on-exec, status flags and (when e has one and seek is set) offset.
 * On failure fd is closed. */
int fd_place(int fd, const Cryo__FdEntry *e, int seek);

/* Place at e->fd a new open of the file made before the processes for
 * content space `space` (struct fd_object), with e's access mode, flags
 * and offset; what names the file in errors. */
int fd_object_place(const struct fd_restore_ctx *c, const Cryo__FdEntry *e, uint32_t space,
		    const char *what);

/* Pack msg into e->payload (malloc'd; the caller of dump frees it). */
int fd_pack(Cryo__FdEntry *e, const ProtobufCMessage *msg);
/* e->desc = a malloc'd copy of the printf result. */
int fd_set_desc(Cryo__FdEntry *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The payload of e as desc, or NULL (logged) when it does not decode. */
ProtobufCMessage *fd_unpack(const Cryo__FdEntry *e, const ProtobufCMessageDescriptor *desc);

/* The shared object id in c, created (fds -1) if new; NULL on ENOMEM. */
struct fd_shared *fd_shared_get(struct fd_restore_ctx *c, uint64_t id);

/* fd was closed: no object of c keeps its number any more (a file made
 * to be sent in a message, whose kind noted where it placed it). */
void fd_shared_forget(struct fd_restore_ctx *c, int fd);

/* The ends of pipe ino that the probed process holds (or, when the probe
 * has a group, all its processes): counts of readable and writable fds,
 * and the first readable fd in group order (its process, lowest fd; -1
 * if none). */
struct fd_pipe_ends {
	int nread, nwrite;
	int first_read;
	pid_t first_read_pid;
};
int fd_pipe_scan(const struct fd_probe *p, uint64_t ino, struct fd_pipe_ends *out);
/* The same for the FIFO the probed fd is open on, by its inode. */
int fd_fifo_scan(const struct fd_probe *p, struct fd_pipe_ends *out);

/* Copy the bytes in the pipe (or FIFO) at rfd without taking them out:
 * tee() into a scratch pipe, read from there. *out is malloc'd (NULL when
 * the pipe is empty). (pipe.c) */
int fd_pipe_peek(int rfd, uint8_t **out, size_t *len);
/* Write all len bytes to fd (a pipe sized to hold them); 0 or -errno. */
int fd_write_all(int fd, const uint8_t *data, size_t len);

/* fn(arg, pid, fd) for each fd of the probe's group (or the probed
 * process) whose link reads `link`, in group order, until fn returns
 * nonzero: that value, or 0, or -errno. */
int fd_group_each(const struct fd_probe *p, const char *link,
		  int (*fn)(void *arg, pid_t pid, int fd), void *arg);

/* 1 if a process of the probe's group (or the probed one) has an fd
 * whose link reads `link` ("socket:[N]"). */
int fd_group_holds(const struct fd_probe *p, const char *link);

/* ---- pseudo-terminals (tty.c, ptmx.c) ---- */

/* The id of pty N as an object and in fd_restore_ctx.shared: apart from
 * pipe inodes, which are below 2^32. */
#define FD_PTY_ID(index)	((0x707479ull << 40) | (uint64_t)(index))

struct termios;
/* The settings of the terminal at fd into t (t->cc points into tio). */
int fd_tty_settings(int fd, Cryo__Tty *t, struct termios *tio);
/* t's settings onto the terminal at fd (failures are warnings). */
void fd_tty_apply(int fd, const Cryo__Tty *t);
/* 1 if a process of the probe's group holds the master of pty N. */
int fd_group_pty_master(const struct fd_probe *p, uint32_t index);
/* A new fd on the slave of the pair that stands for pty N in this melt,
 * with flags (O_NOCTTY is added); the master is made first if no fd of it
 * is made yet. Returns the fd or -errno. */
int fd_pty_open_slave(struct fd_restore_ctx *c, uint32_t index, int flags);

/* 1 if the link names an anonymous pipe "pipe:[N]" (N into *ino). */
int fd_link_pipe(const char *link, uint64_t *ino);

/* What a file on a pseudo file system is ("POSIX message queue",
 * "memfd_secret area"): its link looks like a path ("/queue") that names
 * nothing melt could open; NULL for an ordinary file. (unsupported.c) */
const char *fd_pseudo_file(const struct fd_probe *p);

/* The open flags to use at restore: e->flags without creation flags. */
static inline int fd_open_flags(const Cryo__FdEntry *e)
{
	return (int)(e->flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC | O_NOCTTY)) |
	       O_NOCTTY | O_CLOEXEC;
}

#endif
