/* Rebuild a group from a snapshot. Returns once the process runs on its
 * own (not a child of the caller, not traced). A failure at any step leaves
 * nothing behind (no half-restored process) and the image unchanged. */
#ifndef CRYO_RESTORE_RESTORE_H
#define CRYO_RESTORE_RESTORE_H

#include <stdint.h>
#include <sys/types.h>

#include "common/progress.h"
#include "fds/fd.h"
#include "store/store.h"

/* When a melt goes into a new pid namespace (docs/DESIGN-restore.md). */
enum restore_pidns {
	RESTORE_PIDNS_AUTO = 0,		/* only when a pid or tid of the group is taken */
	RESTORE_PIDNS_ALWAYS,
	RESTORE_PIDNS_NEVER,		/* a pid in use is an error */
};

struct restore_opts {
	uint64_t snap;			/* STORE_SNAP_NEWEST or a number */
	struct fd_policy fds;
	/* Lazy: private anonymous memory comes in on demand from a pager
	 * process (src/pager/serve.h) that outlives the call; the store's
	 * file (and its lock) stays open in it until every page is in. */
	bool lazy;
	const char *pager_dir;		/* its state files; NULL: none */
	const char *pager_log;		/* its log; NULL: none */
	enum restore_pidns pidns;
	/* Optional (not owned): an eager melt's page bytes, planned and written */
	struct progress *progress;
};

struct restore_result {
	pid_t pid;			/* the root's, as the host sees it */
	/* In a new pid namespace: the root's pid there (its old one), and
	 * the host pid of the namespace's init; both 0 otherwise. */
	pid_t ns_pid, ns_init;
	uint64_t total_ns;		/* call to running */
	pid_t pager_pid;		/* lazy: the pager process (pager_wait) */
};

int restore_group(struct store *s, const char *name, const struct restore_opts *o,
		  struct restore_result *res);

#endif
