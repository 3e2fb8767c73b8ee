/* /proc/PID/limits: read limits from /proc because prlimit() on a process
 * of another uid needs CAP_SYS_RESOURCE, which root lacks here. */
#ifndef CRYO_PROC_RLIMITS_H
#define CRYO_PROC_RLIMITS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#define PROC_RLIM_COUNT 16     /* RLIMIT_CPU .. RLIMIT_RTTIME */

struct proc_rlimits {
	struct rlimit lim[PROC_RLIM_COUNT]; /* RLIM_INFINITY for "unlimited" */
	uint32_t seen;                      /* bit n: RLIMIT n was printed */
	uint32_t unknown;                   /* lines naming a limit we do not know */
};

int proc_rlimits_parse(const char *buf, size_t len, struct proc_rlimits *out);
int proc_rlimits_read(pid_t pid, struct proc_rlimits *out);

#endif
