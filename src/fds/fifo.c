/* "fifo": a named pipe, by its path, with the bytes in flight.
 *
 * Dump: the path, the FIFO's inode (the ends of one FIFO, in one process
 * or several, meet again through it), mode and owner, the pipe size, and
 * the bytes in it, copied with tee() from cryo's copy of the first read
 * end of the group (nothing is taken). The bytes are kept only when the
 * group holds a read end: with readers outside only, they were on their
 * way out of the group.
 *
 * Melt: the path is opened O_RDWR|O_NONBLOCK (a FIFO open never blocks
 * that way: the opener is its own reader and writer) and kept as a
 * scratch "holder" while the group's ends are made: each end reopens the
 * holder (/proc/self/fd) with its access mode and O_NONBLOCK, so a write
 * end finds a reader, then gets its saved status flags. The bytes are
 * written back through the holder, unless the FIFO has bytes already: an
 * outside process kept it open across the freeze, and what is in it is the
 * truth. The holder is closed once the process's fds are made, so a peer
 * outside the group that is gone looks gone: a reader gets the bytes, then
 * end of file; a writer gets EPIPE.
 *
 * A FIFO whose path is gone at melt is made again there (mkfifo, with its
 * old mode and owner): the path is the rendezvous the program and its
 * peers expect. Anything else at the path is an error, never removed. A
 * FIFO unlinked before the snapshot comes back as an unlinked FIFO made
 * beside its old path (else an anonymous pipe). */
#define LOG_PREFIX "fds/fifo: "
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define DELETED_SUFFIX " (deleted)"
/* Object keys of FIFOs are kept apart from pipe and socket inode numbers. */
#define FIFO_KEY_BIT	(1ull << 63)

static int fifo_match(const struct fd_probe *p)
{
	uint64_t ino;

	return S_ISFIFO(p->st.st_mode) && !fd_link_pipe(p->link, &ino);
}

static char *link_path(const char *link)
{
	size_t n = strlen(link), sl = strlen(DELETED_SUFFIX);

	if (n > sl && !strcmp(link + n - sl, DELETED_SUFFIX))
		n -= sl;
	return strndup(link, n);
}

/* The bytes in flight, when this fd is the group's first read end. */
static int fifo_data(const struct fd_probe *p, Cryo__FifoEnd *f)
{
	struct fd_pipe_ends ends;
	size_t len = 0;
	int r = fd_fifo_scan(p, &ends);

	if (r)
		return r;
	/* a read end in flight holds the bytes when no process of the group
	 * reads (melt writes them once: FIONREAD is then no longer 0) */
	if (p->in_flight ? ends.nread > 0 :
	    ends.first_read != p->fd || ends.first_read_pid != p->pid)
		return 0;
	if (p->local < 0) {
		pr_err("pid %d fd %d: FIFO %s: no handle to read its bytes", (int)p->pid, p->fd,
		       f->path);
		return -ENOTSUP;
	}
	r = fd_pipe_peek(p->local, &f->data.data, &len);
	if (r) {
		pr_err("pid %d fd %d: reading the bytes in FIFO %s: %s", (int)p->pid, p->fd,
		       f->path, strerror(-r));
		return r;
	}
	f->data.len = len;
	f->has_data = len > 0;
	return 0;
}

static int fifo_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__FifoEnd f = CRYO__FIFO_END__INIT;
	int r, sz;

	(void)c;
	f.path = link_path(p->link);
	if (!f.path)
		return -ENOMEM;
	if (f.path[0] != '/') {
		pr_err("pid %d fd %d: FIFO \"%s\" is not reachable by a path", (int)p->pid, p->fd,
		       f.path);
		r = -ENOTSUP;
		goto out;
	}
	f.dev = p->st.st_dev;
	f.ino = p->st.st_ino;
	f.has_deleted = 1;
	f.deleted = p->st.st_nlink == 0;
	f.has_mode = f.has_uid = f.has_gid = 1;
	f.mode = p->st.st_mode & 07777;
	f.uid = p->st.st_uid;
	f.gid = p->st.st_gid;
	if (p->local >= 0 && (sz = fcntl(p->local, F_GETPIPE_SZ)) > 0) {
		f.has_size = 1;
		f.size = (uint32_t)sz;
	}
	if ((p->info->flags & O_ACCMODE) != O_WRONLY && (r = fifo_data(p, &f)))
		goto out;
	r = fd_pack(e, &f.base);
	if (!r)
		r = fd_set_desc(e, "%s%s, %s, %zu bytes in flight", f.path,
				f.deleted ? " (deleted)" : "",
				(p->info->flags & O_ACCMODE) == O_WRONLY ? "write end" :
				(p->info->flags & O_ACCMODE) == O_RDONLY ? "read end" : "read-write",
				f.has_data ? f.data.len : (size_t)0);
out:
	free(f.path);
	free(f.data.data);
	return r;
}

static uint64_t fifo_key(const Cryo__FifoEnd *f)
{
	return FIFO_KEY_BIT | ((f->ino ^ (f->dev * 0x9e3779b97f4a7c15ull)) & ~FIFO_KEY_BIT);
}

/* The FIFO at f->path, made again (mkfifo, old mode and owner) if gone. */
static int open_by_path(const Cryo__FifoEnd *f)
{
	struct stat st;
	int fd;

	if (lstat(f->path, &st) < 0) {
		if (errno != ENOENT)
			return -errno;
		if (mkfifo(f->path, 0600) < 0 ||
		    chmod(f->path, f->has_mode ? f->mode : 0600) < 0 ||
		    (f->has_uid && chown(f->path, f->uid, f->gid) < 0)) {
			int err = -errno;

			pr_err("making FIFO %s again: %s", f->path, strerror(errno));
			return err;
		}
		pr_info("FIFO %s was gone: made again", f->path);
	} else if (!S_ISFIFO(st.st_mode)) {
		pr_err("%s is no longer a FIFO; not touching it", f->path);
		return -EEXIST;
	}
	fd = open(f->path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		close(fd);
		pr_err("%s is no longer a FIFO", f->path);
		return -EEXIST;
	}
	return fd;
}

/* An unlinked FIFO beside the deleted one's path; else an anonymous pipe
 * (for the program both are S_ISFIFO and read and write the same). */
static int open_unlinked(const Cryo__FifoEnd *f)
{
	char *dir = strdup(f->path), tmp[4200];
	int fd = -1, pp[2];

	if (!dir)
		return -ENOMEM;
	snprintf(tmp, sizeof(tmp), "%s/.cryo-fifo-%d-%" PRIu64, dirname(dir), (int)getpid(),
		 f->ino);
	free(dir);
	if (mkfifo(tmp, 0600) == 0) {
		fd = open(tmp, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
		unlink(tmp);
		if (fd >= 0 && f->has_mode)
			(void)!fchmod(fd, f->mode);
		if (fd >= 0)
			return fd;
	}
	if (pipe2(pp, O_CLOEXEC) < 0)
		return -errno;
	fd = fd_reopen(pp[0], O_RDWR | O_NONBLOCK | O_CLOEXEC);
	close(pp[0]);
	close(pp[1]);
	return fd;
}

/* The holder of f in c: opened, sized, kept above every fd the image uses. */
static int holder_get(struct fd_restore_ctx *c, const Cryo__FifoEnd *f, int *out)
{
	struct fd_shared *sh = fd_shared_get(c, fifo_key(f));
	int fd;

	if (!sh)
		return -ENOMEM;
	if (sh->fd[0] < 0) {
		fd = f->deleted ? open_unlinked(f) : open_by_path(f);
		if (fd < 0)
			return fd;
		fd = fd_move_above(fd, c->max_fd + 1);
		if (fd < 0)
			return fd;
		sh->fd[0] = fd;
		if (f->has_size && f->size && fcntl(fd, F_SETPIPE_SZ, (int)f->size) < 0)
			pr_warn("FIFO %s: cannot set size %u: %s", f->path, f->size,
				strerror(errno));
	}
	*out = sh->fd[0];
	return 0;
}

static int refill(int holder, const Cryo__FifoEnd *f)
{
	int avail = 0;

	if (!f->has_data || !f->data.len)
		return 0;
	if (ioctl(holder, FIONREAD, &avail) < 0)
		return -errno;
	if (avail > 0) {
		pr_warn("FIFO %s holds %d bytes at melt (kept open from outside): its %zu "
			"saved bytes are not written again", f->path, avail, f->data.len);
		return 0;
	}
	return fd_write_all(holder, f->data.data, f->data.len);
}

static int fifo_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__FifoEnd *f = (Cryo__FifoEnd *)fd_unpack(e, &cryo__fifo_end__descriptor);
	int holder, fd, r;

	if (!f)
		return -EBADMSG;
	r = holder_get(c, f, &holder);
	if (r)
		pr_err("fd %u: FIFO %s: %s", e->fd, f->path, strerror(-r));
	else if ((r = refill(holder, f)))
		pr_err("fd %u: writing %zu bytes back into FIFO %s: %s", e->fd, f->data.len,
		       f->path, strerror(-r));
	if (r)
		goto out;
	/* O_NONBLOCK: a write end opens since the holder reads; fd_place
	 * then gives the end its own status flags. */
	fd = fd_reopen(holder, (int)(e->flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = fd;
		pr_err("fd %u: opening FIFO %s: %s", e->fd, f->path, strerror(-r));
		goto out;
	}
	r = fd_place(fd, e, 0);
out:
	cryo__fifo_end__free_unpacked(f, NULL);
	return r;
}

static uint64_t fifo_object(const Cryo__FdEntry *e)
{
	Cryo__FifoEnd *f = (Cryo__FifoEnd *)fd_unpack(e, &cryo__fifo_end__descriptor);
	uint64_t k = f ? fifo_key(f) : 0;

	if (f)
		cryo__fifo_end__free_unpacked(f, NULL);
	return k;
}

static void fifo_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s", e->desc ? e->desc : "fifo", e->cloexec ? " cloexec" : "");
}

const struct fd_ops fd_ops_fifo = {
	.name = "fifo",
	.match = fifo_match,
	.dump = fifo_dump,
	.restore = fifo_restore,
	.object = fifo_object,
	.describe = fifo_describe,
};
