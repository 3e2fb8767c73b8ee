/* /proc/PID/fd and /proc/PID/fdinfo/N. */
#ifndef CRYO_PROC_FDS_H
#define CRYO_PROC_FDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_FDINFO_EXTRA_MAX 4096

struct proc_kv {
	char *key;                /* owned */
	char *val;                /* owned, leading blanks stripped */
};

struct proc_fdinfo {
	uint64_t pos;
	uint32_t flags;           /* open flags, octal in the file */
	uint32_t mnt_id;
	uint64_t ino;
	bool has_mnt_id, has_ino;
	size_t nextra;
	struct proc_kv *extra;    /* kind-specific lines (eventfd-count, tfd, ...) */
};

/* pos and flags are required; other lines go to extra in order. */
int proc_fdinfo_parse(const char *buf, size_t len, struct proc_fdinfo *out);
int proc_fdinfo_read(pid_t pid, int fd, struct proc_fdinfo *out);
void proc_fdinfo_free(struct proc_fdinfo *fi);
/* The value of an extra key, or NULL. */
const char *proc_fdinfo_get(const struct proc_fdinfo *fi, const char *key);

struct proc_fd {
	int fd;
	char *target;             /* owned: readlink of /proc/PID/fd/N */
};

struct proc_fds {
	size_t n;
	struct proc_fd *v;        /* ascending fd; owned: proc_fds_free() */
};

/* List the open fds and their link targets. An fd closed while listing is
 * skipped. */
int proc_fds_list(pid_t pid, struct proc_fds *out);
void proc_fds_free(struct proc_fds *f);

#endif
