/* What the group benchmarks (bench_tree, bench_shm) measure the same way:
 * a snap, a freeze and an eager melt of a running group, and ending it.
 * The caller is the group's subreaper (PR_SET_CHILD_SUBREAPER), so every
 * process frozen is reaped before the melt (else the melt would wait for
 * pid 1 to reap it). */
#ifndef CRYO_BENCH_GROUP_H
#define CRYO_BENCH_GROUP_H

#include <sys/types.h>

#include "store/store.h"

struct bg_figs {
	double snap_stopped, snap_durable, freeze_durable, melt;	/* ms */
	double lazy_run, lazy_in;	/* ms: lazy melt until it runs, all in */
};

/* Snap the group rooted at pid, freeze it, reap it, melt it eagerly, end
 * it. 0 or -errno; the group is ended either way. */
int bg_measure(struct store *s, const char *name, pid_t pid, struct bg_figs *f);
/* After bg_measure: a lazy melt of the same snapshot, until it runs and
 * until its pager has every page in, then end it. 0 or -errno. */
int bg_measure_lazy(struct store *s, const char *name, struct bg_figs *f);
/* SIGKILL the session root leads (the melted processes left any process
 * group) and reap everything. */
void bg_kill(pid_t root);
void bg_reap_all(void);
/* In a workload just forked: close every fd from 3 up but keep (the
 * store's fd must not be the workload's: it changes under the snapshot,
 * and melt would find the file changed). */
void bg_close_fds(int keep);

#endif
