/* zdtm-style workloads for the melt tests: `restore_workload MODE DIR`.
 * Each sets up its state, creates DIR/ready, waits for DIR/go (created by
 * the test after the freeze and melt), checks its state and writes "PASS"
 * or "FAIL: why" to DIR/result, then exits. It opens files only by path,
 * so it needs no fd of its own across the melt. */
#include "rw.h"

static const struct { const char *name; void (*run)(void); } modes[] = {
	{ "mem", mode_mem },
	{ "regs", mode_regs },
	{ "threads", mode_threads },
	{ "signals", mode_signals },
	{ "itimer", mode_itimer },
	{ "sleep", mode_sleep },
	{ "files", mode_files },
	{ "locks", mode_locks },
	{ "read", mode_read },
	{ "sockets", mode_sockets },
	{ "incr", mode_incr },
	{ "churn", mode_churn },
	{ "lazyops", mode_lazyops },
	{ "fdkinds", mode_fdkinds },
	{ "unixconn", mode_unixconn },
	{ "fifo", mode_fifo },
	{ "inotify", mode_inotify },
	{ "tree", mode_tree },
	{ "pidfd", mode_pidfd },
	{ "scmrights", mode_scmrights },
	{ "lazytree", mode_lazytree },
};

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	dir = argv[2];
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(argv[1], modes[i].name))
			modes[i].run();
	return 2;
}
