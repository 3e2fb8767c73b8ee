/* The pager process: one per lazy melt of a group, started by restore once
 * the anonymous memory of every process of the group is registered, each
 * process with a userfaultfd of its own. It serves faults and prefetches
 * from the snapshot until every stored page of every process is in, then
 * closes the processes' own copies of their userfaultfds and ends.
 *
 * Why a process of its own and not a thread of cryod (docs/DESIGN-pager.md):
 * a melt must not depend on cryod running, a slow disk must not stall
 * cryod's ticks, and a crash of one pager touches one group.
 *
 * Never wrong memory. Each melted process keeps its own copy of its uffd
 * (at a high fd number, close-on-exec) while pages are still out, so if the
 * pager dies its faults wait instead of being zero-filled by the kernel. A
 * process that forks while paging in: the kernel gives its child's uffd to
 * the pager only; the pager then gives the child its own copy (ptrace and
 * injection, as at the end). A pager that died cannot be replaced safely
 * (events it had read, e.g. a madvise(DONTNEED), are lost with it), so
 * cryod kills every process of such a group and says so in its log
 * (pager_check_dead); the snapshot is still there.
 *
 * Files in dir (CRYO_HOME/pager), when given:
 *   NAME.state    first line "pager PID START target PID START fd N snap S"
 *                 (the root), then "proc PID START fd N" for each other
 *                 process served (forked children added once they hold
 *                 their copy): exists while the pager works; removed when
 *                 all is in.
 *   NAME.touched  image vpns of the root in the order it faulted them
 *                 first: read as the prefetch order of the next melt. */
#ifndef CRYO_PAGER_SERVE_H
#define CRYO_PAGER_SERVE_H

#include <stdint.h>
#include <sys/types.h>

#include "pager/pager.h"

/* A process's own copy of its uffd goes this high, out of the way of the
 * fd numbers a program picks itself (bash's 255, dup2 to small numbers). */
#define PAGER_COPY_FD_MIN	1000

/* One process of the group, as restore leaves it to the pager. */
struct pager_target {
	pid_t pid;
	int uffd;			/* ours; the pager process takes it */
	int target_fd;			/* the process's own copy of it */
	uint32_t space;			/* its page space in the snapshot */
	const struct pager_range *r;	/* as registered */
	size_t n;
};

struct pager_job {
	const char *name;		/* the group */
	struct store_snap *sn;		/* inherited by the pager process */
	uint64_t snap;			/* its number, for the state file */
	int keep_fd;			/* the store's file: stays open in the pager */
	const struct pager_target *t;	/* t[0]: the root */
	size_t nt;
	const char *dir;		/* state and touched files; NULL: none */
	const char *log_path;		/* NULL: /dev/null */
};

/* Start the pager process (detached: not a child of the caller). The
 * caller's uffds stay open; close them after. *pager_pid: its pid. */
int pager_spawn(const struct pager_job *j, pid_t *pager_pid);

/* Wait until the pager process pid has ended; -ETIMEDOUT after
 * timeout_ms (-1: forever). */
int pager_wait(pid_t pager_pid, int timeout_ms);

/* Read dir/NAME.state. 0 and the fields of its first line (the root);
 * -ENOENT if there is none. */
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
	PAGER_DEAD,		/* pager gone, processes wait on their faults */
	PAGER_STALE,		/* every process gone too: nothing to do */
};
enum pager_health pager_health(const char *dir, const char *name, struct pager_state *st);

/* If name's pager died while a process of the group still waits for
 * pages: kill every process of the group (listed in the state file, and
 * every process under them: they would wait forever) and remove the state
 * file; also clean a stale one. Returns the health found. */
enum pager_health pager_check_dead(const char *dir, const char *name);

#endif
