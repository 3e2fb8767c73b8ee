/* The processes a pager serves (serve_int.h): the group's, and every
 * process one of them forks while paging in.
 *
 * A fork while paging in. The kernel gives the child a userfaultfd of its
 * own (its memory is a copy of its parent's, registered the same way) and
 * hands it, with the fork event, to the pager only. If the pager then died
 * that uffd's last file would close, and the child's pages still out would
 * read as zeros. So the child gets its own copy, as every process of the
 * group has one:
 *
 *   fork event read ─▶ served_fork: find the child (below), seize it
 *     without waiting (its threads may be waiting on our faults; the
 *     pager goes on serving) ─▶ served_step: once it is stopped, give it
 *     its copy (copies.c) ─▶ release it, list it in the state file.
 *
 * Finding the child. The event comes before the child has a pid, and says
 * nothing of it. But the parent's thread that forked cannot fork again
 * before the pager reads that next event: so, right after the read, the
 * first child of the parent that was not there before, born since the
 * event, is this one (a few microseconds later, usually; FIND_NS at most).
 * A child that already exec'd or exited needs no copy (its memory is
 * gone). Two threads of one process forking at the same instant can be
 * told apart only by chance: the one that gets no copy, or the other's,
 * is as it was without this (docs/DESIGN-pager.md). */
#define LOG_PREFIX "pager: "
#include "pager/serve_int.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/vec.h"
#include "proc/procfs.h"
#include "proc/status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define KCMP_FILE	0
#define KCMP_VM		1
#define FIND_NS		20000000ull	/* a fork's child shows up within this */
#define STOP_NS		10000000000ull	/* a fork's child stops within this */

static int add(struct served *s, const struct served_proc *sp)
{
	int r = vec_reserve((void **)&s->p, &s->cap, s->n + 1, sizeof(*s->p));

	if (!r)
		s->p[s->n++] = *sp;
	return r;
}

static bool known(const struct served *s, pid_t pid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->p[i].pid == pid)
			return true;
	return false;
}

/* What is there before anything runs: the group's processes, stopped by
 * the melt, and their children (the group's, zombies included) as known
 * pids, so none is ever taken for a fork's child. */
int served_init(struct served *s, const struct pager_job *j, const int *mine)
{
	memset(s, 0, sizeof(*s));
	s->j = j;
	for (size_t i = 0; i < j->nt; i++) {
		struct served_proc sp = { .pid = j->t[i].pid, .start = pager_start_of(j->t[i].pid),
					  .ufd = j->t[i].uffd, .mine = mine[i],
					  .fd = j->t[i].target_fd, .parent = -1 };
		int r = add(s, &sp);

		if (r)
			return r;
	}
	for (size_t i = 0; i < j->nt; i++) {
		pid_t *kids = NULL;
		size_t nk = 0;

		if (proc_children(j->t[i].pid, &kids, &nk))
			continue;
		for (size_t k = 0; k < nk; k++) {
			struct served_proc sp = { .pid = kids[k], .ufd = -1, .mine = -1, .fd = -1,
						  .parent = (ssize_t)i };

			if (!known(s, kids[k]) && add(s, &sp)) {
				free(kids);
				return -ENOMEM;
			}
		}
		free(kids);
	}
	return 0;
}

/* starttime in clock ticks since boot, zombies included; 0 if gone. */
static uint64_t born(pid_t pid)
{
	struct proc_stat st;

	if (proc_stat_read(pid, 0, &st) || st.nfields < PROC_STAT_STARTTIME)
		return 0;
	return (uint64_t)st.f[PROC_STAT_STARTTIME];
}

static uint64_t ticks_now(void)
{
	long hz = sysconf(_SC_CLK_TCK);

	return clock_ns(CLOCK_BOOTTIME) / (1000000000ull / (uint64_t)(hz > 0 ? hz : 100));
}

/* The parent's new child (see the top), or 0 if none showed up in time;
 * *holds: it still holds its parent's copy (it neither exec'd nor exited). */
static pid_t find_child(const struct served *s, const struct served_proc *par, bool *holds)
{
	uint64_t t0 = mono_ns(), since = ticks_now();

	since = since ? since - 1 : 0;	/* starttime is rounded down */
	do {
		pid_t *kids = NULL, got = 0;
		size_t nk = 0;

		if (proc_children(par->pid, &kids, &nk))
			return 0;	/* the parent is gone */
		for (size_t k = 0; k < nk && !got; k++) {
			if (known(s, kids[k]) || born(kids[k]) < since ||
			    syscall(SYS_kcmp, par->pid, kids[k], KCMP_VM, 0, 0) == 0)
				continue;	/* not new, or a vfork sharing its memory */
			got = kids[k];
			*holds = par->fd >= 0 &&
				 syscall(SYS_kcmp, getpid(), got, KCMP_FILE, par->mine, par->fd) == 0;
		}
		free(kids);
		if (got)
			return got;
		sched_yield();
	} while (mono_ns() - t0 < FIND_NS);
	return 0;
}

void served_fork(void *arg, int parent_ufd, int child_ufd)
{
	struct served *s = arg;
	struct served_proc sp = { .ufd = child_ufd, .fd = -1, .parent = -1 };
	bool holds = false;

	for (size_t i = 0; i < s->n && sp.parent < 0; i++)
		if (s->p[i].ufd == parent_ufd)
			sp.parent = (ssize_t)i;
	sp.mine = fcntl(child_ufd, F_DUPFD_CLOEXEC, 3);
	if (sp.parent >= 0 && s->p[sp.parent].pid > 0)
		sp.pid = find_child(s, &s->p[sp.parent], &holds);
	sp.start = sp.pid ? pager_start_of(sp.pid) : 0;
	if (s->finishing) {
		/* all in: the child's memory is its parent's, all in too; it
		 * needs no copy, only to lose the one it inherited */
		s->late_forks++;
		pr_debug("pid %d, forked by %d while letting go", (int)sp.pid,
			 sp.parent >= 0 ? (int)s->p[sp.parent].pid : 0);
	} else if (sp.pid && holds && sp.mine >= 0) {
		int r = proc_seize_start(sp.pid, &sp.ctl);

		if (r)
			pr_err("pid %d, forked by %d while paging in: seize it to give it its "
			       "copy of its userfaultfd: %s", (int)sp.pid,
			       (int)s->p[sp.parent].pid, strerror(-r));
		sp.since_ns = mono_ns();
	} else if (!sp.pid) {
		pr_warn("a child of pid %d, forked while paging in, was not found: it has no "
			"copy of its userfaultfd", sp.parent >= 0 ? (int)s->p[sp.parent].pid : 0);
	}
	if (add(s, &sp)) {
		proc_release(sp.ctl);
		if (sp.mine >= 0)
			close(sp.mine);
	}
}

bool served_busy(const struct served *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->p[i].ctl)
			return true;
	return false;
}

static void state_write(struct served *s)
{
	struct pager_rec *rec = calloc(s->n + 1, sizeof(*rec));
	size_t n = 0;
	int r;

	if (!s->j->dir || !rec) {
		free(rec);
		return;
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->p[i].fd >= 0 && s->p[i].pid > 0)
			rec[n++] = (struct pager_rec){ s->p[i].pid, s->p[i].start, s->p[i].fd };
	r = n ? pager_state_write(s->j->dir, s->j->name, s->j->snap, rec, n) : 0;
	if (r)
		pr_err("%s: state file: %s", s->j->name, strerror(-r));
	free(rec);
	s->dirty = false;
}

static void give(struct served *s, struct served_proc *sp)
{
	int r = proc_seize_poll(sp->ctl), fd = -1;

	if (r == -EAGAIN && mono_ns() - sp->since_ns < STOP_NS)
		return;
	if (!r)
		r = pager_give_copy(sp->ctl, sp->mine, &fd);
	(void)proc_release(sp->ctl);
	sp->ctl = NULL;
	if (r) {
		if (r != -ESRCH && r != -ENOENT)	/* it exited meanwhile */
			pr_err("pid %d, forked while paging in: giving it its copy of its "
			       "userfaultfd: %s", (int)sp->pid, strerror(-r));
		return;
	}
	pr_debug("pid %d, forked while paging in, holds its copy at fd %d", (int)sp->pid, fd);
	sp->fd = fd;
	s->dirty = true;
}

void served_step(struct served *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->p[i].ctl)
			give(s, &s->p[i]);
	if (s->dirty)
		state_write(s);
}

void served_finish(struct served *s, const struct served_pump *pump)
{
	pid_t *pids = calloc(s->n + 1, sizeof(*pids));
	int *ufds = calloc(s->n + 1, sizeof(*ufds));

	s->finishing = true;
	for (size_t i = 0; i < s->n; i++) {
		(void)proc_release(s->p[i].ctl);	/* nothing waits on us now */
		s->p[i].ctl = NULL;
	}
	if (pids && ufds) {
		for (size_t i = 0; i < s->n; i++) {
			pids[i] = s->p[i].mine >= 0 ? s->p[i].pid : 0;
			ufds[i] = s->p[i].mine;
		}
		pager_close_copies(pids, ufds, s->n, pump);
	}
	free(pids);
	free(ufds);
	for (size_t i = 0; i < s->n; i++) {
		if (s->p[i].mine >= 0)
			close(s->p[i].mine);
		s->p[i].mine = -1;
	}
}

void served_free(struct served *s)
{
	for (size_t i = 0; i < s->n; i++) {
		(void)proc_release(s->p[i].ctl);
		if (s->p[i].mine >= 0)
			close(s->p[i].mine);
	}
	free(s->p);
	memset(s, 0, sizeof(*s));
}
