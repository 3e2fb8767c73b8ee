/* Pids across pid namespaces (pidns.h). Everything here is read from
 * /proc/PID/status, which the kernel prints for the namespace of the
 * /proc mount: that is level 0. */
#define LOG_PREFIX "proc: "
#include "proc/pidns.h"

#include <errno.h>
#include <stdlib.h>

#include "proc/procfs.h"
#include "proc/status.h"

/* status of pid (tid 0) or of its thread tid, with its NS lines. */
static int ns_status(pid_t pid, pid_t tid, struct proc_status **st)
{
	int r;

	*st = malloc(sizeof(**st));
	if (!*st)
		return -ENOMEM;
	r = proc_status_read(pid, tid, *st);
	if (r == -ENOENT)
		r = -ESRCH;
	if (!r && !(*st)->ns_levels)
		r = -ENOTSUP;	/* before Linux 4.1: no NSpid line */
	if (r) {
		free(*st);
		*st = NULL;
	}
	return r;
}

int proc_ns_level(pid_t pid, unsigned *level)
{
	struct proc_status *st;
	int r = ns_status(pid, 0, &st);

	if (r)
		return r;
	*level = st->ns_levels - 1;
	free(st);
	return 0;
}

int proc_ns_pid(pid_t pid, pid_t tid, unsigned level, pid_t *out)
{
	struct proc_status *st;
	int r = ns_status(pid, tid, &st);

	if (r)
		return r;
	*out = level < st->ns_levels ? st->ns_pid[level] : 0;
	free(st);
	return 0;
}

int proc_ns_pgid_sid(pid_t pid, unsigned level, pid_t *pgid, pid_t *sid)
{
	struct proc_status *st;
	int r = ns_status(pid, 0, &st);

	if (r)
		return r;
	*pgid = level < st->ns_levels ? st->ns_pgid[level] : 0;
	*sid = level < st->ns_levels ? st->ns_sid[level] : 0;
	free(st);
	return 0;
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
