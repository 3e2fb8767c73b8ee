#define LOG_PREFIX "cryod: "
#include "daemon/sched.h"
#include "common/log.h"
#include "proc/procfs.h"
#include "proc/status.h"

#include <errno.h>
#include <unistd.h>
#include <stdlib.h>

static bool idle(const struct sched_look *now, const struct sched_look *prev, bool have_prev)
{
	return now->all_asleep && have_prev && prev->cpu_ticks == now->cpu_ticks;
}

enum sched_action sched_decide(const struct sched_policy *p, uint64_t now_ns,
			       uint64_t last_snap_ns, const struct sched_look *now,
			       const struct sched_look *prev, bool have_prev,
			       enum sched_action want)
{
	uint64_t age = last_snap_ns && now_ns > last_snap_ns ? now_ns - last_snap_ns : 0;
	bool never = last_snap_ns == 0;

	if (want == SCHED_FORCE || (!never && age >= p->max_age_ns))
		return SCHED_FORCE;
	if (want != SCHED_WEAK && !never && age < p->interval_ns)
		return SCHED_NONE;
	if (!have_prev)
		return SCHED_NONE;	/* idle needs two looks: the next tick decides */
	return idle(now, prev, have_prev) ? SCHED_WEAK : SCHED_SKIP_BUSY;
}

int sched_look(pid_t pid, struct sched_look *out)
{
	pid_t *tids = NULL;
	size_t n = 0;
	int r = proc_task_list(pid, &tids, &n);

	if (r)
		return r == -ENOENT ? -ESRCH : r;
	out->all_asleep = true;
	out->cpu_ticks = 0;
	for (size_t i = 0; i < n; i++) {
		struct proc_stat st;

		if (proc_stat_read(pid, tids[i], &st))
			continue;	/* a thread that just ended */
		if (st.state == 'R')
			out->all_asleep = false;
		if (st.nfields >= 15)
			out->cpu_ticks += (uint64_t)st.f[14] + (uint64_t)st.f[15];
	}
	free(tids);
	return n ? 0 : -ESRCH;
}

bool sched_idle_now(pid_t pid, unsigned ms)
{
	struct sched_look a, b;

	if (sched_look(pid, &a))
		return false;
	usleep(ms * 1000u);
	return !sched_look(pid, &b) && a.all_asleep && b.all_asleep && a.cpu_ticks == b.cpu_ticks;
}
