/* Small /proc readers shared by the proc layer. */
#ifndef CRYO_PROC_PROCFS_H
#define CRYO_PROC_PROCFS_H

#include <stddef.h>
#include <sys/types.h>

/* Largest /proc file we accept (smaps of a huge process stays well under). */
#define PROC_FILE_MAX (256u << 20)

/* Read /proc/PID/NAME (pid 0 = "self") whole into a malloc'd buffer,
 * NUL-terminated for convenience (*len excludes the NUL). Caller frees. */
int proc_read_file(pid_t pid, const char *name, char **buf, size_t *len);

/* Thread ids of a process from /proc/PID/task, ascending. *tids is malloc'd
 * (caller frees). */
int proc_task_list(pid_t pid, pid_t **tids, size_t *n);

/* Child processes of a process: the children files of all its threads
 * (a child belongs to the thread that forked it), ascending, without
 * duplicates. Exact only while the process cannot fork (it is stopped).
 * *kids is malloc'd (caller frees). */
int proc_children(pid_t pid, pid_t **kids, size_t *n);

/* Parse a decimal directory entry name ("123") strictly. */
int proc_parse_dirent_num(const char *name, long max, long *out);

#endif
