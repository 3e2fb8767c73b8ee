/* How processes end, as the kernel tells a listener: the proc connector
 * (NETLINK_CONNECTOR, CN_IDX_PROC; CONFIG_PROC_EVENTS) multicasts an
 * exit event for every task that ends, with its wait status. Listening
 * takes CAP_NET_ADMIN. cryod uses it to say how a group that is not its
 * child ended (docs/DESIGN-daemon.md): waitpid() works only for children,
 * ptrace would stop the group, and taskstats needs a request per task.
 *
 * What it cannot do: tell events it was not listening for (cryod not
 * running), or events the kernel dropped when the socket's buffer was
 * full (the drain says so: -ENOBUFS). */
#ifndef CRYO_PROC_EXITS_H
#define CRYO_PROC_EXITS_H

#include <stddef.h>
#include <sys/types.h>

/* A non-blocking socket that receives exit events, or -errno (-EPERM
 * without CAP_NET_ADMIN, -EPROTONOSUPPORT without the connector). Kernels
 * of 6.6 and later are asked for exit events only. */
int proc_exits_open(void);

/* Called for each exit: tgid, the thread tid that ended (tid == tgid for
 * the leader), its wait status (the last thread's is the process's). */
typedef void (*proc_exit_fn)(void *arg, pid_t tgid, pid_t tid, int status);

/* Read every event waiting on fd; 0, or -ENOBUFS when some were lost
 * (after calling fn for the rest), or another -errno. */
int proc_exits_drain(int fd, proc_exit_fn fn, void *arg);

/* For the parser test: one datagram as read from the socket. */
void proc_exits_parse(const void *buf, size_t len, proc_exit_fn fn, void *arg);

#endif
