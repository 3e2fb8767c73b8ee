/* "pipe": an anonymous pipe whose read and write ends are both held by
 * the process, or by processes of the group. The bytes in flight are read WITHOUT consuming them: tee()
 * from our copy of the read end (pidfd_getfd) into a scratch pipe, then
 * read the scratch pipe; the process's pipe is untouched. Melt makes one
 * pipe per captured pipe (the two ends meet through fd_restore_ctx.shared),
 * gives it the old size and writes the bytes back.
 *
 * A pipe with one end outside the group is "ext" (reconnected by policy).
 * Ends held by different processes are made by the group's root before it
 * forks the others (src/restore/make.c), so they meet again. */
#define LOG_PREFIX "fds/pipe: "
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int pipe_match(const struct fd_probe *p)
{
	struct fd_pipe_ends ends;
	uint64_t ino;

	if (!S_ISFIFO(p->st.st_mode) || !fd_link_pipe(p->link, &ino))
		return 0;
	if (fd_pipe_scan(p, ino, &ends))
		return 0;
	return ends.nread > 0 && ends.nwrite > 0;
}

int fd_pipe_peek(int rfd, uint8_t **out, size_t *len)
{
	int scratch[2], avail = 0, r = 0;
	size_t got = 0;
	uint8_t *buf;

	*out = NULL;
	*len = 0;
	if (ioctl(rfd, FIONREAD, &avail) < 0)
		return -errno;
	if (avail <= 0)
		return 0;
	buf = malloc((size_t)avail);
	if (!buf)
		return -ENOMEM;
	if (pipe2(scratch, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(buf);
		return -errno;
	}
	/* The scratch pipe must hold everything at once: tee never blocks. */
	if (fcntl(scratch[1], F_SETPIPE_SZ, avail) < 0 && avail > 65536) {
		r = -errno;
		goto out;
	}
	while (got < (size_t)avail) {
		ssize_t t = tee(rfd, scratch[1], (size_t)avail - got, SPLICE_F_NONBLOCK);

		if (t < 0) {
			r = -errno;
			goto out;
		}
		if (t == 0)
			break;
		/* tee copies from the start of the pipe each time: one call must
		 * take everything, or a second would repeat the first bytes. */
		got = (size_t)t;
		break;
	}
	for (size_t off = 0; off < got;) {
		ssize_t n = read(scratch[0], buf + off, got - off);

		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			goto out;
		}
		off += (size_t)n;
	}
	if (got != (size_t)avail) {
		pr_err("pipe holds %d bytes but tee copied %zu", avail, got);
		r = -EIO;
		goto out;
	}
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(scratch[0]);
	close(scratch[1]);
	return r;
}

static int pipe_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__PipeEnd pe = CRYO__PIPE_END__INIT;
	struct fd_pipe_ends ends;
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t ino = 0;
	int r, sz;

	(void)c;
	fd_link_pipe(p->link, &ino);
	pe.ino = ino;
	pe.write_end = (p->info->flags & O_ACCMODE) == O_WRONLY;
	r = fd_pipe_scan(p, ino, &ends);
	if (r)
		return r;
	if (p->local >= 0) {
		sz = fcntl(p->local, F_GETPIPE_SZ);
		if (sz > 0) {
			pe.has_size = 1;
			pe.size = (uint32_t)sz;
		}
	}
	/* The data goes once, with the lowest read end. */
	if (!pe.write_end && ends.first_read == p->fd && ends.first_read_pid == p->pid) {
		if (p->local < 0) {
			pr_err("pid %d fd %d: %s: no handle to read its bytes", (int)p->pid, p->fd,
			       p->link);
			return -ENOTSUP;
		}
		r = fd_pipe_peek(p->local, &data, &len);
		if (r) {
			pr_err("pid %d fd %d: reading bytes in %s: %s", (int)p->pid, p->fd, p->link,
			       strerror(-r));
			return r;
		}
		if (len) {
			pe.has_data = 1;
			pe.data.data = data;
			pe.data.len = len;
		}
	}
	r = fd_pack(e, &pe.base);
	if (!r)
		r = fd_set_desc(e, "%s %s end%s", p->link, pe.write_end ? "write" : "read",
				len ? " (with data)" : "");
	free(data);
	return r;
}

int fd_write_all(int fd, const uint8_t *data, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (size_t)n;
	}
	return 0;
}

static int make_pipe(struct fd_restore_ctx *c, struct fd_shared *sh, const Cryo__PipeEnd *pe)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	/* Above every fd the image uses, so placing others never hits them. */
	sh->fd[0] = fd_move_above(fds[0], c->max_fd + 1);
	sh->fd[1] = fd_move_above(fds[1], c->max_fd + 1);
	if (sh->fd[0] < 0 || sh->fd[1] < 0)
		return sh->fd[0] < 0 ? sh->fd[0] : sh->fd[1];
	if (pe->has_size && pe->size && fcntl(sh->fd[1], F_SETPIPE_SZ, (int)pe->size) < 0)
		pr_warn("pipe:[%" PRIu64 "]: cannot set size %u: %s", pe->ino, pe->size,
			strerror(errno));
	return 0;
}

static int pipe_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__PipeEnd *pe = (Cryo__PipeEnd *)fd_unpack(e, &cryo__pipe_end__descriptor);
	struct fd_shared *sh;
	int end, src, fd, r = 0;

	if (!pe)
		return -EBADMSG;
	sh = fd_shared_get(c, pe->ino);
	if (!sh) {
		r = -ENOMEM;
		goto out;
	}
	if (sh->fd[0] < 0 && sh->fd[1] < 0) {
		r = make_pipe(c, sh, pe);
		if (r) {
			pr_err("fd %u: making pipe:[%" PRIu64 "]: %s", e->fd, pe->ino, strerror(-r));
			goto out;
		}
	}
	if (pe->has_data && pe->data.len &&
	    (r = fd_write_all(sh->fd[1], pe->data.data, pe->data.len))) {
		pr_err("fd %u: refilling pipe:[%" PRIu64 "]: %s", e->fd, pe->ino, strerror(-r));
		goto out;
	}
	end = pe->write_end ? 1 : 0;
	src = sh->fd[end];
	if ((e->flags & O_ACCMODE) == O_RDWR)
		fd = fd_reopen(src, O_RDWR | O_CLOEXEC);
	else if (src > c->max_fd)
		fd = src;	/* the scratch end itself moves into place */
	else
		fd = fcntl(src, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		r = fd == -1 ? -errno : fd;
		goto out;
	}
	r = fd_place(fd, e, 0);
	if (r) {
		if (fd == src)
			sh->fd[end] = -1;
		goto out;
	}
	if (fd == src)
		sh->fd[end] = (int)e->fd;	/* later ends dup from here */
out:
	cryo__pipe_end__free_unpacked(pe, NULL);
	return r;
}

static uint64_t pipe_object(const Cryo__FdEntry *e)
{
	Cryo__PipeEnd *pe = (Cryo__PipeEnd *)fd_unpack(e, &cryo__pipe_end__descriptor);
	uint64_t ino = pe ? pe->ino : 0;

	if (pe)
		cryo__pipe_end__free_unpacked(pe, NULL);
	return ino;
}

static void pipe_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	Cryo__PipeEnd *pe = e->has_payload ?
		cryo__pipe_end__unpack(NULL, e->payload.len, e->payload.data) : NULL;

	if (!pe) {
		snprintf(buf, n, "pipe (undecodable)");
		return;
	}
	snprintf(buf, n, "pipe:[%llu] %s end, %zu bytes buffered, size %u%s",
		 (unsigned long long)pe->ino, pe->write_end ? "write" : "read",
		 pe->has_data ? pe->data.len : (size_t)0, pe->size, e->cloexec ? " cloexec" : "");
	cryo__pipe_end__free_unpacked(pe, NULL);
}

const struct fd_ops fd_ops_pipe = {
	.name = "pipe",
	.match = pipe_match,
	.dump = pipe_dump,
	.restore = pipe_restore,
	.object = pipe_object,
	.describe = pipe_describe,
};
