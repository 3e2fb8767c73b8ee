#define LOG_PREFIX "proc: "
#include "proc/mem.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"

/* One remote iovec covers at most this much, so a huge range is split and a
 * fault is located to within a chunk. */
#define MEM_CHUNK (1u << 20)
#define MEM_IOV_MAX 512

static int transfer(pid_t pid, uint64_t addr, void *buf, size_t len, size_t *done,
		    bool write)
{
	size_t off = 0;

	while (off < len) {
		struct iovec local, remote[MEM_IOV_MAX];
		size_t batch = 0, want = 0;
		ssize_t r;

		while (batch < MEM_IOV_MAX && off + want < len) {
			size_t n = len - off - want;
			if (n > MEM_CHUNK)
				n = MEM_CHUNK;
			remote[batch].iov_base = (void *)(uintptr_t)(addr + off + want);
			remote[batch].iov_len = n;
			want += n;
			batch++;
		}
		local.iov_base = (uint8_t *)buf + off;
		local.iov_len = want;
		if (write)
			r = process_vm_writev(pid, &local, 1, remote, batch, 0);
		else
			r = process_vm_readv(pid, &local, 1, remote, batch, 0);
		if (r < 0) {
			int ret = -errno;
			if (done)
				*done = off;
			pr_debug("process_vm_%s %d at %#llx: %s", write ? "writev" : "readv",
				 (int)pid, (unsigned long long)(addr + off), strerror(-ret));
			return ret;
		}
		off += (size_t)r;
		if ((size_t)r < want) {
			if (done)
				*done = off;
			return -EFAULT;
		}
	}
	if (done)
		*done = off;
	return 0;
}

int proc_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len, size_t *done)
{
	return transfer(pid, addr, buf, len, done, false);
}

int proc_mem_write(pid_t pid, uint64_t addr, const void *buf, size_t len, size_t *done)
{
	return transfer(pid, addr, (void *)buf, len, done, true);
}

int proc_mem_readv(pid_t pid, const struct proc_mem_range *r, size_t n, void *buf)
{
	uint8_t *p = buf;

	while (n) {
		struct iovec local, remote[MEM_IOV_MAX];
		size_t batch = 0, want = 0;
		ssize_t got;

		/* Ranges larger than MEM_CHUNK go through proc_mem_read. */
		if (r->len > MEM_CHUNK) {
			int ret = proc_mem_read(pid, r->addr, p, r->len, NULL);
			if (ret)
				return ret;
			p += r->len;
			r++;
			n--;
			continue;
		}
		while (batch < n && batch < MEM_IOV_MAX && r[batch].len <= MEM_CHUNK) {
			remote[batch].iov_base = (void *)(uintptr_t)r[batch].addr;
			remote[batch].iov_len = r[batch].len;
			want += r[batch].len;
			batch++;
		}
		local.iov_base = p;
		local.iov_len = want;
		got = process_vm_readv(pid, &local, 1, remote, batch, 0);
		if (got < 0)
			return -errno;
		if ((size_t)got != want)
			return -EFAULT;
		p += want;
		r += batch;
		n -= batch;
	}
	return 0;
}

int proc_mem_peek(pid_t tid, uint64_t addr, void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t off = 0; off < len; off += 8) {
		long w;
		size_t n = len - off < 8 ? len - off : 8;
		errno = 0;
		w = ptrace(PTRACE_PEEKDATA, tid, (void *)(uintptr_t)(addr + off), 0);
		if (w == -1 && errno)
			return -errno;
		memcpy(p + off, &w, n);
	}
	return 0;
}

int proc_mem_poke(pid_t tid, uint64_t addr, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t off = 0; off < len; off += 8) {
		long w;
		size_t n = len - off < 8 ? len - off : 8;
		if (n < 8) {
			/* Keep the bytes after the tail as they are. */
			int ret = proc_mem_peek(tid, addr + off, &w, 8);
			if (ret)
				return ret;
		}
		memcpy(&w, p + off, n);
		if (ptrace(PTRACE_POKEDATA, tid, (void *)(uintptr_t)(addr + off), (void *)w))
			return -errno;
	}
	return 0;
}

int proc_pagemap_read_fd(int fd, uint64_t start, size_t npages, uint64_t *out)
{
	long psz = sysconf(_SC_PAGESIZE);
	size_t want = npages * sizeof(uint64_t), got = 0;
	off_t off = (off_t)(start / (uint64_t)psz * sizeof(uint64_t));

	while (got < want) {
		ssize_t r = pread(fd, (uint8_t *)out + got, want - got, off + (off_t)got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		got += (size_t)r;
	}
	return 0;
}

int proc_pagemap_read(pid_t pid, uint64_t start, size_t npages, uint64_t *out)
{
	char path[64];
	int fd, ret;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("open %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = proc_pagemap_read_fd(fd, start, npages, out);
	if (ret)
		pr_err("read %s at %#llx: %s", path, (unsigned long long)start, strerror(-ret));
	close(fd);
	return ret;
}
