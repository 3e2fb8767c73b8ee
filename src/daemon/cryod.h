/* cryod: the checkpoint daemon, one per CRYO_HOME.
 *
 * It keeps every running group persistent: each tick it looks at each
 * group the registry says is running and takes a weak or force snapshot
 * when sched.h says so (incremental, on top of the newest), then keeps
 * only the newest `keep` snapshots. SIGUSR1 asks for a weak snapshot of
 * every group now, SIGUSR2 for a force one (the paper's two signals);
 * SIGTERM/SIGINT stop it after the job at hand.
 *
 * It opens the store for each job, not for its lifetime: the store's lock
 * (one writer at a time) lets `cryo snap`, `melt` and friends run between
 * its jobs. What it does goes to its log (stderr); what it counts goes to
 * CRYO_HOME/cryod.status, rewritten atomically each tick.
 *
 * The snapshots themselves run in a worker process (worker.h), so that a
 * kill -9 of cryod never lands inside one; the worker keeps each group's
 * write tracker (dump_track.c), armed by its first snapshot: the next ones
 * read only the pages it wrote, most of them before it is stopped. Its
 * control socket (ctl.h) lets users other than root list and snapshot
 * their own groups. */
#ifndef CRYO_DAEMON_CRYOD_H
#define CRYO_DAEMON_CRYOD_H

#include <stdint.h>
#include <sys/types.h>

struct cryod_opts {
	const char *home;		/* CRYO_HOME */
	const char *store_path;		/* home/store unless given */
	uint64_t interval_ns;		/* default 60 s */
	uint64_t max_age_ns;		/* default 10 x interval */
	unsigned keep;			/* snapshots kept per group, default 3 */
	unsigned tick_ms;		/* how often groups are looked at, default 1000 */
	/* Called once cryod holds CRYO_HOME, before its first tick (NULL:
	 * nothing): `cryo daemon run --recover` melts the groups a crash
	 * left behind here, so a second cryod never does. */
	void (*on_start)(void *arg);
	void *arg;
};

/* Run in the foreground until SIGTERM/SIGINT: 0, or -errno when it cannot
 * start (-EALREADY: another cryod holds CRYO_HOME; its pid logged). */
int cryod_run(const struct cryod_opts *o);

/* The pid of the cryod that holds home, or -ESRCH when none does. */
int cryod_pid(const char *home, pid_t *pid);

#endif
