/* store_io backed by a file or a block device. */
#define LOG_PREFIX "store-io: "
#include "store/io.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct io_file {
	struct store_io io;
	int fd;
	int is_blk;
};

static int file_pread(struct store_io *io, void *buf, size_t len, uint64_t off)
{
	struct io_file *f = (struct io_file *)io;
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(f->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;	/* past the end: the store is truncated */
		done += (size_t)r;
	}
	return 0;
}

static int file_pwrite(struct store_io *io, const void *buf, size_t len, uint64_t off)
{
	struct io_file *f = (struct io_file *)io;
	size_t done = 0;

	while (done < len) {
		ssize_t r = pwrite(f->fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)r;
	}
	return 0;
}

static int file_sync(struct store_io *io)
{
	struct io_file *f = (struct io_file *)io;
	return fdatasync(f->fd) ? -errno : 0;
}

static uint64_t file_size(struct store_io *io)
{
	struct io_file *f = (struct io_file *)io;
	struct stat st;
	uint64_t sz = 0;

	if (f->is_blk)
		return ioctl(f->fd, BLKGETSIZE64, &sz) ? 0 : sz;
	return fstat(f->fd, &st) ? 0 : (uint64_t)st.st_size;
}

static int file_resize(struct store_io *io, uint64_t size)
{
	struct io_file *f = (struct io_file *)io;

	if (f->is_blk)
		return file_size(io) >= size ? 0 : -ENOSPC;
	return ftruncate(f->fd, (off_t)size) ? -errno : 0;
}

static void file_readahead(struct store_io *io, uint64_t off, uint64_t len)
{
	struct io_file *f = (struct io_file *)io;

	/* a hint: if the kernel cannot, the later pread reads it anyway */
	(void)posix_fadvise(f->fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
}

static void file_close(struct store_io *io)
{
	struct io_file *f = (struct io_file *)io;
	close(f->fd);
	free(f);
}

static const struct store_io_ops file_ops = {
	.pread = file_pread,
	.pwrite = file_pwrite,
	.sync = file_sync,
	.size = file_size,
	.resize = file_resize,
	.close = file_close,
	.readahead = file_readahead,
};

/* One writer at a time per store, across processes (a cryo command and
 * cryod, two commands): flock on the open file, exclusive for a writer,
 * shared for readers, held until close. Waits up to wait_ms, polling:
 * a snapshot of a large process holds it for seconds. */
int store_io_file_lock(struct store_io *io, int exclusive, unsigned wait_ms)
{
	struct io_file *f = (struct io_file *)io;
	int op = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;

	for (unsigned waited = 0;; waited += 10) {
		if (!flock(f->fd, op))
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (waited >= wait_ms)
			return -EBUSY;
		usleep(10000);
	}
}

int store_io_file_fd(struct store_io *io)
{
	return ((struct io_file *)io)->fd;
}

int store_io_file_open(const char *path, int flags, struct store_io **out)
{
	struct io_file *f;
	struct stat st;
	int fd = open(path, flags | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->io.ops = &file_ops;
	f->fd = fd;
	f->is_blk = S_ISBLK(st.st_mode);
	*out = &f->io;
	return 0;
}
