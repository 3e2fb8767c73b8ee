/* See bench_group.h. */
#include "bench_group.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "dump/dump.h"
#include "pager/serve.h"
#include "restore/restore.h"

void bg_close_fds(int keep)
{
	if (keep > 3)
		syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0u);
	syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u);
}

void bg_reap_all(void)
{
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
}

void bg_kill(pid_t root)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "pkill -KILL -s %d", (int)root);
	if (system(cmd))
		(void)0;
	kill(root, SIGKILL);
	bg_reap_all();
}

int bg_measure(struct store *s, const char *name, pid_t pid, struct bg_figs *f)
{
	struct dump_opts snap = { 0 }, frz = { .freeze = true };
	struct restore_opts ro = { .snap = STORE_SNAP_NEWEST, .lazy = false };
	struct restore_result rr = { 0 };
	struct dump_result r1, r2;
	int r = dump_group(s, name, pid, &snap, &r1);

	if (!r)
		r = dump_group(s, name, pid, &frz, &r2);
	if (r) {
		bg_kill(pid);
		return r;
	}
	bg_reap_all();
	r = restore_group(s, name, &ro, &rr);
	if (r)
		return r;
	f->snap_stopped = r1.stopped_ns / 1e6;
	f->snap_durable = r1.total_ns / 1e6;
	f->freeze_durable = r2.total_ns / 1e6;
	f->melt = rr.total_ns / 1e6;
	bg_kill(rr.pid);
	return 0;
}

int bg_measure_lazy(struct store *s, const char *name, struct bg_figs *f)
{
	struct restore_opts ro = { .snap = STORE_SNAP_NEWEST, .lazy = true };
	struct restore_result rr = { 0 };
	uint64_t t0 = bu_now_ns();
	int r = restore_group(s, name, &ro, &rr);

	if (r)
		return r;
	r = pager_wait(rr.pager_pid, 600000);
	f->lazy_run = rr.total_ns / 1e6;
	f->lazy_in = (bu_now_ns() - t0) / 1e6;
	bg_kill(rr.pid);
	return r;
}
