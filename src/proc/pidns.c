/* Pids across pid namespaces (pidns.h). Everything here is read from
 * /proc/PID/status, which the kernel prints for the namespace of the
 * /proc mount: that is level 0. */
#define LOG_PREFIX "proc: "
#include "proc/pidns.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "proc/procfs.h"
#include "proc/status.h"

/* What the status of pid (tid 0: the process; else its thread tid) says
 * at level: its pid, pgid and sid (0 where not visible), and how many
 * levels it has. Any of them may be NULL. */
static int ns_ids(pid_t pid, pid_t tid, unsigned level, pid_t *id, pid_t *pgid, pid_t *sid,
		  unsigned *levels)
{
	struct proc_status *st = malloc(sizeof(*st));
	int r;
	bool seen;

	if (!st)
		return -ENOMEM;
	r = proc_status_read(pid, tid, st);
	if (r == -ENOENT)
		r = -ESRCH;
	if (!r && !st->ns_levels)
		r = -ENOTSUP;	/* before Linux 4.1: no NSpid line */
	if (!r) {
		seen = level < st->ns_levels;
		if (id)
			*id = seen ? st->ns_pid[level] : 0;
		if (pgid)
			*pgid = seen ? st->ns_pgid[level] : 0;
		if (sid)
			*sid = seen ? st->ns_sid[level] : 0;
		if (levels)
			*levels = st->ns_levels;
	}
	free(st);
	return r;
}

int proc_ns_level(pid_t pid, unsigned *level)
{
	unsigned n = 0;
	int r = ns_ids(pid, 0, 0, NULL, NULL, NULL, &n);

	if (!r)
		*level = n - 1;
	return r;
}

int proc_ns_pid(pid_t pid, pid_t tid, unsigned level, pid_t *out)
{
	return ns_ids(pid, tid, level, out, NULL, NULL, NULL);
}

int proc_ns_pgid_sid(pid_t pid, unsigned level, pid_t *pgid, pid_t *sid)
{
	return ns_ids(pid, 0, level, NULL, pgid, sid, NULL);
}

/* The one of ids (host pids, or tids of pid when threads) whose id at
 * level is want. */
static int find_at_level(pid_t pid, const pid_t *ids, size_t n, int threads, unsigned level,
			 pid_t want, pid_t *found)
{
	for (size_t i = 0; i < n; i++) {
		pid_t at;
		int r = threads ? proc_ns_pid(pid, ids[i], level, &at) :
				  proc_ns_pid(ids[i], 0, level, &at);

		if (r == -ESRCH)
			continue;	/* gone since the listing */
		if (r)
			return r;
		if (at == want) {
			*found = ids[i];
			return 0;
		}
	}
	return -ESRCH;
}

/* The one of pid's children (or threads) whose id at level is want. */
static int find_listed(pid_t pid, int (*list)(pid_t, pid_t **, size_t *), int threads,
		       unsigned level, pid_t want, pid_t *found)
{
	pid_t *ids = NULL;
	size_t n = 0;
	int r = list(pid, &ids, &n);

	if (!r)
		r = find_at_level(pid, ids, n, threads, level, want, found);
	free(ids);
	return r;
}

int proc_ns_child(pid_t parent, unsigned level, pid_t nspid, pid_t *child)
{
	return find_listed(parent, proc_children, 0, level, nspid, child);
}

int proc_ns_thread(pid_t pid, unsigned level, pid_t nstid, pid_t *tid)
{
	return find_listed(pid, proc_task_list, 1, level, nstid, tid);
}
