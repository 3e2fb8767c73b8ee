/* The store's one I/O layer. Every byte the store reads or writes passes
 * through a struct store_io, so tests can swap the file for a recorder that
 * cuts power at any write, reorders or drops unsynced writes, or tears them.
 *
 * Ownership: whoever receives a store_io (store_open_io, store_create_io)
 * closes it. */
#ifndef CRYO_STORE_IO_H
#define CRYO_STORE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "common/fault.h"

struct store_io;

struct store_io_ops {
	/* Read len bytes at off. 0 when all were read; -EIO (or the error)
	 * otherwise, including a read past the end of the device. */
	int (*pread)(struct store_io *io, void *buf, size_t len, uint64_t off);
	/* Write len bytes at off, all or an error. Not durable until sync. */
	int (*pwrite)(struct store_io *io, const void *buf, size_t len, uint64_t off);
	/* Make every write before it durable (fdatasync). */
	int (*sync)(struct store_io *io);
	/* Size of the device in bytes. */
	uint64_t (*size)(struct store_io *io);
	/* Grow or set the size (files; store_create uses it). */
	int (*resize)(struct store_io *io, uint64_t size);
	void (*close)(struct store_io *io);
	/* Optional (NULL: nothing): start reading [off, off + len) into the
	 * page cache in the background, so a pread of it later waits less
	 * (posix_fadvise WILLNEED). Only a hint: it reads nothing back. */
	void (*readahead)(struct store_io *io, uint64_t off, uint64_t len);
};

struct store_io {
	const struct store_io_ops *ops;
};

/* A file or block device. flags: O_RDWR or O_RDONLY, O_CREAT|O_EXCL to make
 * a new file. */
int store_io_file_open(const char *path, int flags, struct store_io **out);
/* flock the store file (exclusive or shared), waiting up to wait_ms;
 * -EBUSY after that. Only for an io from store_io_file_open. */
int store_io_file_lock(struct store_io *io, int exclusive, unsigned wait_ms);
/* Its file descriptor (to keep it, and its lock, open in a child). */
int store_io_file_fd(struct store_io *io);

/* The calls the store makes: fault points first, then the backend. */
static inline int io_read(struct store_io *io, void *buf, size_t len, uint64_t off)
{
	int r = fault_fire(FP_STORE_READ_EIO);
	return r ? r : io->ops->pread(io, buf, len, off);
}

static inline int io_write(struct store_io *io, const void *buf, size_t len, uint64_t off)
{
	int r = fault_fire(FP_STORE_WRITE_EIO);
	if (!r)
		r = fault_fire(FP_STORE_WRITE_ENOSPC);
	return r ? r : io->ops->pwrite(io, buf, len, off);
}

static inline int io_sync(struct store_io *io)
{
	int r = fault_fire(FP_STORE_SYNC_EIO);
	return r ? r : io->ops->sync(io);
}

static inline void io_readahead(struct store_io *io, uint64_t off, uint64_t len)
{
	if (io->ops->readahead)
		io->ops->readahead(io, off, len);
}

static inline uint64_t io_size(struct store_io *io)
{
	return io->ops->size(io);
}

static inline void io_close(struct store_io *io)
{
	if (io)
		io->ops->close(io);
}

#endif
