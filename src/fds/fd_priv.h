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

/* 1 if a process of the probe's group (or the probed one) has an fd
 * whose link reads `link` ("socket:[N]"). */
int fd_group_holds(const struct fd_probe *p, const char *link);

/* 1 if the link names an anonymous pipe "pipe:[N]" (N into *ino). */
int fd_link_pipe(const char *link, uint64_t *ino);

/* The open flags to use at restore: e->flags without creation flags. */
static inline int fd_open_flags(const Cryo__FdEntry *e)
{
	return (int)(e->flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC | O_NOCTTY)) |
	       O_NOCTTY | O_CLOEXEC;
}

#endif
