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
	/* 0: an fd of the process; n > 0: a file in flight, carried by a
	 * message queued on a unix socket (n: how deep, a socket in flight
	 * carrying more), which cryo holds at fd (pid is cryo's own) */
	int in_flight;
	const struct fd_probe *carrier;	/* in flight: the socket whose queue holds it */
};

/* A file whose contents a snapshot holds, by identity: saved once even
 * when several fds and mappings show it. */
struct fd_saved {
	uint64_t dev, ino;
	uint32_t tag;			/* fd_contents_save_tag */
	uint32_t space;
	uint64_t size;
};

struct fd_chunk;

struct fd_dump_ctx {
	struct store_txn *txn;
	pid_t pid;			/* the process being captured */
	uint32_t next_space;		/* next free page space for file contents */
	/* contents saved so far (fd_contents_save); fd_dump_ctx_fini frees */
	struct fd_saved *saved;
	size_t nsaved, saved_cap;
	uint64_t content_pages;		/* pages written for file contents */
	struct fd_links links;		/* the group's fds; fd_dump_ctx_fini frees */
	/* files in flight captured so far (cryo's own copies, kept open to
	 * tell the same file sent twice); fd_dump_ctx_fini closes them */
	int *flight;
	size_t nflight, flight_cap;
	/* freeze --tcp-established: a connection to outside the group is
	 * saved by TCP repair and held still until melt (fds/tcp.c) */
	bool tcp_established;
	bool freeze;			/* the capture ends the processes */
	/* TCP connections put in repair mode and held for the capture, each
	 * with cryo's own copy of its socket: fd_dump_thaw or fd_dump_frozen
	 * ends them */
	struct fd_tcp_held *held;
	size_t nheld, held_cap;
	/* 1 (snap): contents read while the processes are stopped are kept,
	 * up to a budget, and written by fd_contents_flush once they run
	 * again; 0 (freeze): written as they are read. */
	int defer;
	uint64_t deferred;		/* bytes kept so far */
	struct fd_chunk *chunks, *chunks_last;
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

/* A file whose contents the snapshot holds (memfd, deleted file, shared
 * anonymous memory), made once by the melting cryo before any process of
 * the group, so that every fd and every mapping that had it has the one
 * object again. The processes inherit its fds at these numbers. */
struct fd_object {
	uint32_t space;			/* its content space */
	int fd;				/* O_RDWR */
	int fd_ro;			/* O_RDONLY: mappings the file was not writable for */
	bool has_seals;			/* a memfd's seals, added once all have mapped it */
	uint32_t seals;
};

/* What melt needs to make such a file before the processes: its contents
 * (space, size) and what it was. Strings are malloc'd: fd_content_fini. */
struct fd_content {
	uint32_t space;
	uint64_t size;
	char *memfd_name;		/* a memfd: its name; else NULL */
	char *path;			/* a deleted file: where it lived; else NULL */
	uint32_t mode;			/* a deleted file's mode bits */
	bool has_seals;
	uint32_t seals;
};

struct fd_restore_ctx {
	struct store_snap *snap;
	const struct fd_policy *policy;
	/* the files made before the processes (may be none): a kind whose
	 * file is one of them reopens it instead of making another */
	const struct fd_object *objs;
	size_t nobjs;
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
	/* Optional: make the terminal open at fd the caller's controlling
	 * terminal if e's was. Called in a session leader without one, once
	 * per open file: before it forks its children for a file the root
	 * made (they inherit the terminal), else once its fds are placed. */
	int (*ctty)(struct fd_restore_ctx *c, const Cryo__FdEntry *e, int fd);
	/* Optional: run in cryo once every process of the group is rebuilt,
	 * just before they run again; local is cryo's own copy of the fd
	 * (pidfd_getfd). A TCP connection leaves repair mode here. */
	int (*resume)(struct fd_restore_ctx *c, const Cryo__FdEntry *e, int local);
	/* Optional: 1 with *out filled when the fd's file is one whose
	 * contents the snapshot holds (a memfd, a deleted file): melt makes it
	 * once, before the processes (struct fd_object); 0 if not; -errno. */
	int (*content)(const Cryo__FdEntry *e, struct fd_content *out);
	/* Optional: call fn on each fd entry e's payload holds (files in
	 * flight in a connection's queue), so that melt makes what they need
	 * too (their content objects); stops at fn's first non-zero. */
	int (*nested)(const Cryo__FdEntry *e, int (*fn)(void *arg, const Cryo__FdEntry *n),
		      void *arg);
	/* One line for `cryo inspect`. */
	void (*describe)(const Cryo__FdEntry *e, char *buf, size_t n);
};

/* Advisory locks taken through an open file (locks.c), any kind: read
 * from p's fdinfo into e->locks (malloc'd, freed by fd_locks_free); taken
 * again by the calling process on fd e->fd once all its fds are placed.
 * On failure *why (n bytes) says which lock and why. */
int fd_locks_dump(const struct fd_probe *p, Cryo__FdEntry *e);
void fd_locks_free(Cryo__FdEntry *e);
int fd_locks_restore(const Cryo__FdEntry *e, char *why, size_t n);

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
/* Save len bytes of buf as pages of a new content space (a TCP queue). */
int fd_bytes_save(struct fd_dump_ctx *c, const void *buf, size_t len, uint32_t *space);
/* Read them back: *out is malloc'd (the caller frees). */
int fd_bytes_load(struct store_snap *sn, uint32_t space, uint64_t len, uint8_t **out);
/* The same for objects that their inode does not tell apart from others:
 * a System V segment's inode number is its shmid, on the mount that holds
 * every other shmem file too. Objects of different tags are different. */
int fd_contents_save_tag(struct fd_dump_ctx *c, int local, const struct stat *st, uint32_t tag,
			 uint32_t *space, uint64_t *size);
/* Write what fd_contents_save kept (defer), and free it. */
int fd_contents_flush(struct fd_dump_ctx *c);
void fd_dump_ctx_fini(struct fd_dump_ctx *c);

/* The capture is over and the processes run on (snap, or any failure):
 * every TCP connection repair mode was put on for it leaves it and its
 * hold is lifted. Call before the processes are released. Idempotent. */
void fd_dump_thaw(struct fd_dump_ctx *c);
/* Freeze committed and the processes are killed: the connections close
 * silently (in repair mode, nothing is sent) and those to outside the
 * group stay held for melt. */
void fd_dump_frozen(struct fd_dump_ctx *c);

/* Write the pages of content space `space` into fd from offset 0 and
 * make the file exactly size bytes long. */
int fd_contents_load(struct store_snap *sn, uint32_t space, uint64_t size, int fd);

/* Move fd to the lowest free number >= min, close-on-exec (closing fd);
 * the new fd or -errno. */
int fd_move_above(int fd, int min);

/* Reopen the file open at fd with other access flags (through
 * /proc/self/fd); returns the new fd or -errno. */
int fd_reopen(int fd, int flags);

/* The made file holding content space `space` (struct fd_object), its
 * O_RDWR fd; -1 when c has none. */
int fd_object_fd(const struct fd_restore_ctx *c, uint32_t space);
void fd_content_fini(struct fd_content *c);

/* An unlinked file beside where the deleted file `path` lived
 * (O_TMPFILE, O_RDWR), else a memfd: nothing is left behind if melt
 * fails. The fd or -errno. */
int fd_make_unlinked(const char *path);

/* Identity of a file at capture, and the check at melt: -ESTALE with
 * "PATH changed since the snapshot" logged when dev/ino/size/mtime differ.
 * appended_ok: the same file grown since is fine (a log the process only
 * appends to: what it wrote after the snapshot stays, its next write goes
 * to the end anyway). */
void fd_file_id(const struct stat *st, Cryo__FileId *id);
int fd_file_id_check(const char *path, const Cryo__FileId *id, const struct stat *now,
		     bool appended_ok);

/* Close the scratch fds restore kept for shared objects (pipe ends never
 * placed) and free the table; call once every fd is made. */
void fd_restore_ctx_fini(struct fd_restore_ctx *c);

#endif
