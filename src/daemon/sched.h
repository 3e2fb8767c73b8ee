/* cryod's scheduling policy (the paper's section 4): when to take a weak
 * or a force snapshot of a group. Pure functions over what the daemon
 * observed, so the policy is tested without processes or clocks.
 *
 * A group is due when its last snapshot is older than its interval. A due
 * group gets a WEAK snapshot: taken only if it is idle, else skipped and
 * counted (tried again at the next tick). When the last snapshot is older
 * than max_age, the snapshot is FORCE: taken whatever the group does.
 * SIGUSR1 makes every group due for a weak snapshot now, SIGUSR2 for a
 * force one.
 *
 * Idle: every thread is asleep (state S, D, T, t, or I in
 * /proc/PID/task/TID/stat) and the process used no CPU time (utime +
 * stime of its threads) since the previous look, one tick ago. A thread
 * that is running, or ran in between, makes the group busy. Without a
 * previous look (a group just seen) nothing is decided yet, except force. */
#ifndef CRYO_DAEMON_SCHED_H
#define CRYO_DAEMON_SCHED_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sched_policy {
	uint64_t interval_ns;		/* a snapshot at least this often */
	uint64_t max_age_ns;		/* beyond this, force */
};

struct sched_look {
	bool all_asleep;		/* no thread runnable */
	uint64_t cpu_ticks;		/* utime + stime of all threads */
};

enum sched_action { SCHED_NONE, SCHED_WEAK, SCHED_FORCE, SCHED_SKIP_BUSY };

/* What to do now. last_snap_ns: time of the newest snapshot (0: none);
 * prev: the previous look (have_prev false on the first); want: a signal
 * asked for SCHED_WEAK or SCHED_FORCE now (else SCHED_NONE). */
enum sched_action sched_decide(const struct sched_policy *p, uint64_t now_ns,
			       uint64_t last_snap_ns, const struct sched_look *now,
			       const struct sched_look *prev, bool have_prev,
			       enum sched_action want);

/* Look at pid's threads: -ESRCH when it is gone. */
int sched_look(pid_t pid, struct sched_look *out);
/* Idle right now: every thread asleep at two looks ms apart, no CPU used
 * between them (a weak snapshot asked for by hand). */
bool sched_idle_now(pid_t pid, unsigned ms);

#endif
