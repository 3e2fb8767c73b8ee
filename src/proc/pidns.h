/* Pids across pid namespaces, from /proc/PID/status (NSpid, NSpgid,
 * NSsid).
 *
 * Levels count down from the namespace of cryo's /proc (level 0, "the
 * host") to the process's own: a process in a namespace one below the
 * host's is at level 1, where its NSpid line reads "<host pid> <its pid>".
 * A group frozen in a namespace records the pids its programs saw (their
 * level), and cryo keeps acting on them by their host pids. */
#ifndef CRYO_PROC_PIDNS_H
#define CRYO_PROC_PIDNS_H

#include <sys/types.h>

/* The level of process pid's own pid namespace (0: the host's). */
int proc_ns_level(pid_t pid, unsigned *level);
/* Process pid (tid 0) or its thread tid as seen at level: *out is 0 when
 * it is not visible there (it lives above that namespace). -ESRCH: gone. */
int proc_ns_pid(pid_t pid, pid_t tid, unsigned level, pid_t *out);
/* Its process group and session at level (0: not visible there). */
int proc_ns_pgid_sid(pid_t pid, unsigned level, pid_t *pgid, pid_t *sid);
/* The child of parent (host pids) whose pid at level is nspid: *child is
 * its host pid. -ESRCH when parent has no such child. */
int proc_ns_child(pid_t parent, unsigned level, pid_t nspid, pid_t *child);
/* The thread of pid whose tid at level is nstid: *tid is its host tid.
 * -ESRCH when pid has no such thread. */
int proc_ns_thread(pid_t pid, unsigned level, pid_t nstid, pid_t *tid);

#endif
