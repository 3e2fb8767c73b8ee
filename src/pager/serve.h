/* The pager process: one per lazy melt, started by restore once the new
 * process's anonymous memory is registered with its userfaultfd. It serves
 * faults and prefetches from the snapshot until every stored page is in,
 * then closes the process's own copy of the userfaultfd and ends.
 *
 * Why a process of its own and not a thread of cryod (docs/DESIGN-pager.md):
 * a melt must not depend on cryod running, a slow disk must not stall
 * cryod's ticks, and a crash of one pager touches one group.
 *
 * Never wrong memory. The melted process keeps its own copy of the uffd
 * (at a high fd number, close-on-exec) while pages are still out, so if the
 * pager dies its faults wait instead of being zero-filled by the kernel.
 * A pager that died cannot be replaced safely (events it had read, e.g. a
 * madvise(DONTNEED), are lost with it), so cryod kills such a process and
 * says so in its log (pager_check_dead); the snapshot is still there.
 *
 * Files in dir (CRYO_HOME/pager), when given:
 *   NAME.state    "pager PID START target PID START fd N snap S": exists
 *                 while the pager works; removed when all is in.
 *   NAME.touched  image vpns in the order the process faulted them first:
 *                 read as the prefetch order of the next melt. */
#ifndef CRYO_PAGER_SERVE_H
#define CRYO_PAGER_SERVE_H

#include <stdint.h>
#include <sys/types.h>

#include "pager/pager.h"

struct pager_job {
	const char *name;		/* the group */
	struct store_snap *sn;		/* inherited by the pager process */
	uint64_t snap;			/* its number, for the state file */
	int keep_fd;			/* the store's file: stays open in the pager */
	int uffd;			/* ours; the pager process takes it */
	uint32_t space;
	const struct pager_range *r;
	size_t n;
	pid_t pid;			/* the process served */
	int target_fd;			/* its own copy of the uffd */
	const char *dir;		/* state and touched files; NULL: none */
	const char *log_path;		/* NULL: /dev/null */
};

/* Start the pager process (detached: not a child of the caller). The
 * caller's uffd stays open; close it after. *pager_pid: its pid. */
int pager_spawn(const struct pager_job *j, pid_t *pager_pid);

/* Wait until the pager process pid has ended; -ETIMEDOUT after
 * timeout_ms (-1: forever). */
int pager_wait(pid_t pager_pid, int timeout_ms);

/* Read dir/NAME.state. 0 and the fields; -ENOENT if there is none. */
struct pager_state {
	pid_t pager, target;
	uint64_t pager_start, target_start;	/* /proc starttime */
	int fd;
	uint64_t snap;
};
int pager_state_read(const char *dir, const char *name, struct pager_state *st);

/* What a state file means now. */
enum pager_health {
	PAGER_NONE,		/* no state file */
	PAGER_WORKING,		/* its pager runs */
	PAGER_DEAD,		/* pager gone, process waits on its faults */
	PAGER_STALE,		/* process gone too: nothing to do */
};
enum pager_health pager_health(const char *dir, const char *name, struct pager_state *st);

/* If name's pager died while its process still waits for pages: kill the
 * process (it would wait forever) and remove the state file; also clean a
 * stale one. Returns the health found. */
enum pager_health pager_check_dead(const char *dir, const char *name);

#endif
