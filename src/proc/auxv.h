/* /proc/PID/auxv: the ELF auxiliary vector, binary (pairs of u64). */
#ifndef CRYO_PROC_AUXV_H
#define CRYO_PROC_AUXV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_AUXV_MAX 128     /* entries; the kernel's AT_VECTOR_SIZE is ~50 */

struct proc_auxv {
	size_t n;                 /* entries before AT_NULL */
	uint64_t type[PROC_AUXV_MAX];
	uint64_t val[PROC_AUXV_MAX];
};

/* len must be a multiple of 16 and hold an AT_NULL terminator. */
int proc_auxv_parse(const void *buf, size_t len, struct proc_auxv *out);
int proc_auxv_read(pid_t pid, struct proc_auxv *out);
/* 0 and *val set if type is present, -ENOENT otherwise. */
int proc_auxv_get(const struct proc_auxv *a, uint64_t type, uint64_t *val);

#endif
