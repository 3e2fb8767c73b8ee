/* /proc/PID/mountinfo: where a file system (by device number) is mounted. */
#ifndef CRYO_PROC_MOUNTINFO_H
#define CRYO_PROC_MOUNTINFO_H

#include <stddef.h>
#include <sys/types.h>

struct proc_mount {
	char *point;		/* owned: the mount point, unescaped */
	char *root;		/* owned: the directory of the file system mounted there */
};

struct proc_mounts {
	size_t n;
	struct proc_mount *v;	/* owned: proc_mounts_free(); whole mounts (root "/") first */
};

/* The mounts of device maj:min in the text of a mountinfo file. A line
 * that does not parse makes the whole parse fail (-EINVAL). */
int proc_mountinfo_parse(const char *buf, size_t len, unsigned maj, unsigned min,
			 struct proc_mounts *out);
/* The same, from /proc/PID/mountinfo (0: self). */
int proc_mounts_of_dev(pid_t pid, unsigned maj, unsigned min, struct proc_mounts *out);
void proc_mounts_free(struct proc_mounts *m);

#endif
