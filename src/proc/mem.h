/* The target's memory: bulk reads and writes with process_vm_readv/writev,
 * word-wise peek/poke with ptrace (which may write read-only text), and
 * /proc/PID/pagemap so untouched pages are never read. */
#ifndef CRYO_PROC_MEM_H
#define CRYO_PROC_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read/write exactly len bytes at addr; batches of at most IOV_MAX iovecs
 * of bounded size. A short transfer (a page not mapped or not readable)
 * is -EFAULT, and *done (if not NULL) says how far it got. */
int proc_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len, size_t *done);
int proc_mem_write(pid_t pid, uint64_t addr, const void *buf, size_t len, size_t *done);

/* Gather many ranges of the target into one local buffer, in order. */
struct proc_mem_range {
	uint64_t addr;
	size_t len;
};
int proc_mem_readv(pid_t pid, const struct proc_mem_range *r, size_t n, void *buf);

/* ptrace word access of a stopped tracee; works on read-only mappings
 * (FOLL_FORCE). len need not be a multiple of 8. */
int proc_mem_peek(pid_t tid, uint64_t addr, void *buf, size_t len);
int proc_mem_poke(pid_t tid, uint64_t addr, const void *buf, size_t len);

/* pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst). */
#define PROC_PM_PRESENT    (1ULL << 63)
#define PROC_PM_SWAPPED    (1ULL << 62)
#define PROC_PM_FILE_SHARED (1ULL << 61)  /* file page or shared anon */
#define PROC_PM_UFFD_WP    (1ULL << 57)
#define PROC_PM_EXCLUSIVE  (1ULL << 56)
#define PROC_PM_SOFT_DIRTY (1ULL << 55)

/* One u64 per page of [start, start + npages * page) into out. */
int proc_pagemap_read(pid_t pid, uint64_t start, size_t npages, uint64_t *out);
/* Same through an already open /proc/PID/pagemap fd. */
int proc_pagemap_read_fd(int fd, uint64_t start, size_t npages, uint64_t *out);

static inline int proc_pm_populated(uint64_t e)
{
	return (e & (PROC_PM_PRESENT | PROC_PM_SWAPPED)) != 0;
}

#endif
