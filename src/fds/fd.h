/* File descriptors: one kind per file in src/fds/, all behind one ops table.
 *
 * Dump runs in cryo while the target is stopped: each fd is probed, the
 * first kind in fd_kinds[] whose match() says yes dumps it. A kind that
 * cannot save an fd faithfully refuses (-ENOTSUP with a reason logged),
 * and the snapshot fails: nothing is saved wrong.
 *
 * Restore runs in the process being made, in plain C, before its memory is
 * replaced: restore() makes the fd at e->fd with its flags and offset.
 * Connections to outside the group come back by policy (struct fd_policy):
 * stdin from /dev/null, output appended to a log, unless the user chose. */
#ifndef CRYO_FDS_FD_H
#define CRYO_FDS_FD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "image/image.h"
#include "proc/fds.h"

/* Every fd of a capture's processes by what it links to (readlink of
 * /proc/PID/fd/N), sorted by link, then group order, then fd: made once,
 * on the first question about who else holds a pipe or socket (asking
 * each process's fd directory per fd cost a tree of 64 processes half of
 * its snapshot). The processes are stopped: their fd tables hold still. */
struct fd_link {
	char *link;
	uint32_t at;			/* the process's index in the group */
	int fd;
	pid_t pid;
};
struct fd_links {
	struct fd_link *v;
	size_t n;
	int made;
};
void fd_links_free(struct fd_links *l);

/* What dump knows of one fd of a stopped process. */
struct fd_probe {
	pid_t pid;
	int fd;
	const char *link;		/* readlink of /proc/PID/fd/N */
	struct stat st;			/* stat of /proc/PID/fd/N: the object */
	const struct proc_fdinfo *info;	/* pos, flags, kind-specific lines */
	int local;			/* the same open file in cryo (pidfd_getfd), or -1 */
	/* every process of the capture, in group order (a pipe between two
	 * of them is inside the group); 0: only pid */
	const pid_t *group;
	size_t ngroup;
	struct fd_links *links;		/* of group (or pid); NULL: made per question */
};

/* A file whose contents a snapshot holds, by identity: saved once even
 * when several fds and mappings show it. */
struct fd_saved {
	uint64_t dev, ino;
	uint32_t space;
	uint64_t size;
	pid_t pid;			/* whose capture saved it */
};

struct fd_dump_ctx {
	struct store_txn *txn;
	pid_t pid;			/* the process being captured */
	uint32_t next_space;		/* next free page space for file contents */
	/* contents saved so far (fd_contents_save); fd_dump_ctx_fini frees */
	struct fd_saved *saved;
	size_t nsaved, saved_cap;
	uint64_t content_pages;		/* pages written for file contents */
	struct fd_links links;		/* the group's fds; fd_dump_ctx_fini frees */
};

/* Where a connection to outside the group goes at melt. NULL fields take
 * the defaults: stdin /dev/null, outputs appended to log_path. */
struct fd_policy {
	const char *stdin_path;
	const char *stdout_path;
	const char *stderr_path;
	const char *log_path;		/* CRYO_HOME/log/NAME.log */
	/* the slave of the group's new terminal (src/term), for the fds that
	 * were on a pty; NULL: reconnected as outside connections are */
	const char *tty_path;
};

struct fd_restore_ctx {
	struct store_snap *snap;
	const struct fd_policy *policy;
	/* objects several fds share (the two ends of a pipe), by capture id */
	struct fd_shared { uint64_t id; int fd[2]; } *shared;
	size_t nshared, shared_cap;
	int max_fd;			/* highest fd the image uses: scratch fds go above */
};

struct fd_ops {
	const char *name;		/* FdEntry.kind */
	/* 1 if this kind handles the fd, 0 if not. */
	int (*match)(const struct fd_probe *p);
	/* Fill e (payload, desc; flags/pos/cloexec are filled before). */
	int (*dump)(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e);
	/* Make the fd at e->fd in the calling process. */
	int (*restore)(struct fd_restore_ctx *c, const Cryo__FdEntry *e);
	/* Optional: run once every fd of the process is at its own number
	 * (an epoll registers its targets by their numbers). */
	int (*finish)(struct fd_restore_ctx *c, const Cryo__FdEntry *e);
	/* Optional: the kernel object behind the fd when several open files
	 * make one (the two ends of a pipe), else 0. Melt makes all the open
	 * files of one object in one process: held by several processes, they
	 * are made by the group's root before it forks the others. */
	uint64_t (*object)(const Cryo__FdEntry *e);
	/* One line for `cryo inspect`. */
	void (*describe)(const Cryo__FdEntry *e, char *buf, size_t n);
};

/* The registry, in match order, NULL-terminated. */
extern const struct fd_ops *const fd_kinds[];

const struct fd_ops *fd_kind_by_name(const char *name);
const struct fd_ops *fd_kind_match(const struct fd_probe *p);

/* Save the bytes of the file open at local (a memfd, a deleted file, the
 * shmem object of a shared anonymous mapping) as pages of a new content
 * space, from offset 0; holes (SEEK_DATA/SEEK_HOLE) are not stored. The
 * same object (st dev/ino) is saved once: later calls return its space. */
int fd_contents_save(struct fd_dump_ctx *c, int local, const struct stat *st,
		     uint32_t *space, uint64_t *size);
/* The process whose capture saved the object first, or 0. */
pid_t fd_contents_saver(const struct fd_dump_ctx *c, const struct stat *st);
void fd_dump_ctx_fini(struct fd_dump_ctx *c);

/* Write the pages of content space `space` into fd from offset 0 and
 * make the file exactly size bytes long. */
int fd_contents_load(struct store_snap *sn, uint32_t space, uint64_t size, int fd);

/* Identity of a file at capture, and the check at melt: -ESTALE with
 * "PATH changed since the snapshot" logged when dev/ino/size/mtime differ. */
void fd_file_id(const struct stat *st, Cryo__FileId *id);
int fd_file_id_check(const char *path, const Cryo__FileId *id, const struct stat *now);

/* Close the scratch fds restore kept for shared objects (pipe ends never
 * placed) and free the table; call once every fd is made. */
void fd_restore_ctx_fini(struct fd_restore_ctx *c);

#endif
