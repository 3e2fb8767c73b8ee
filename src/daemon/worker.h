/* cryod's worker: the process that stops, reads and writes groups.
 *
 * cryod decides; the worker does every snapshot (ptrace, injection, the
 * store) and keeps each group's write tracker between snapshots. They are
 * two processes so that a kill -9 of cryod never lands inside a snapshot:
 * a group stopped with its registers set for an injected syscall dies if
 * its tracer does (docs/DESIGN-daemon.md). The worker ignores the signals
 * meant for cryod (SIGINT from a terminal, SIGTERM, SIGHUP, SIGUSR1/2),
 * finishes the job at hand, and exits when cryod's end of the socket
 * closes. It holds none of cryod's fds (the lock, the log aside).
 *
 * Wire: one fixed-size request and one reply per job on a SOCK_SEQPACKET
 * socketpair between the two (same binary, never another program). */
#ifndef CRYO_DAEMON_WORKER_H
#define CRYO_DAEMON_WORKER_H

#include <stdbool.h>
#include <sys/types.h>

#include "dump/dump.h"

struct worker {
	pid_t pid;
	int fd;		/* -1: not running */
};

/* Fork the worker for the store at store_path, keeping keep snapshots of
 * each group after each of its snapshots (0: all). */
int worker_start(struct worker *w, const char *store_path, unsigned keep);
/* A snapshot of group name (process pid), on top of its newest (freeze:
 * then the process ends): 0 with *res filled, or the snapshot's -errno;
 * -EPIPE when the worker died (it is started again at the next job).
 * *armed: the group's writes are tracked for the next one. */
int worker_snapshot(struct worker *w, const char *name, pid_t pid, bool freeze,
		    struct dump_result *res, bool *armed);
/* The worker forgets what it keeps for name (its tracker). */
void worker_forget(struct worker *w, const char *name);
/* Close cryod's end and wait for the worker to finish its job and go. */
void worker_stop(struct worker *w);

#endif
