/* Fault points: named places where a test can make cryo fail.
 *
 * CRYO_FAULT="name[@N][,name[@N]...]" arms a point; it fires on its Nth hit
 * (default 1st) and only then. What firing does depends on the point's kind:
 * an I/O point makes the operation fail with its errno, a crash point kills
 * the process with SIGKILL on the spot (a kill -9 or power cut at that line).
 *
 * Add a point: one line in FAULT_POINTS below; call fault_fire(FP_X) where the
 * failure should happen and treat a negative return as the operation's error.
 */
#ifndef CRYO_COMMON_FAULT_H
#define CRYO_COMMON_FAULT_H

#include <errno.h>

/* X(enum name, string name, errno to inject or 0 for a crash) */
#define FAULT_POINTS(X)                                                   \
	X(FP_STORE_WRITE_EIO,      "store.write.eio",      EIO)           \
	X(FP_STORE_WRITE_ENOSPC,   "store.write.enospc",   ENOSPC)        \
	X(FP_STORE_SYNC_EIO,       "store.sync.eio",       EIO)           \
	X(FP_STORE_READ_EIO,       "store.read.eio",       EIO)           \
	X(FP_STORE_COMMIT_CRASH,   "store.commit.crash",   0)             \
	X(FP_STORE_CKPT_CRASH,     "store.checkpoint.crash", 0)           \
	X(FP_STORE_CLEAN_CRASH,    "store.clean.crash",    0)             \
	X(FP_DUMP_PAGES_EIO,       "dump.pages.eio",       EIO)           \
	X(FP_INJECT_CRASH,         "proc.inject.crash",    0)             \
	X(FP_INJECT_SLOW,          "proc.inject.slow",     EAGAIN)        \
	X(FP_RESTORE_CHILD_FAIL,   "restore.child.fail",   EIO)           \
	X(FP_RESTORE_SEIZE_CRASH,  "restore.seize.crash",  0)             \
	X(FP_RESTORE_MMAP_FAIL,    "restore.mmap.fail",    EIO)           \
	X(FP_RESTORE_PAGES_FAIL,   "restore.pages.fail",   EIO)           \
	X(FP_RESTORE_THREADS_FAIL, "restore.threads.fail", EIO)           \
	X(FP_RESTORE_SIGNALS_FAIL, "restore.signals.fail", EIO)           \
	X(FP_RESTORE_REGS_FAIL,    "restore.regs.fail",    EIO)           \
	X(FP_PAGER_SLOW,           "pager.slow",           EAGAIN)        \
	X(FP_PAGER_LETGO_SLOW,     "pager.letgo.slow",     EAGAIN)        \
	X(FP_PAGER_EVENT_SLOW,     "pager.event.slow",     EAGAIN)

enum fault_point {
#define FAULT_ENUM(e, s, err) e,
	FAULT_POINTS(FAULT_ENUM)
#undef FAULT_ENUM
	FP__COUNT
};

/* 0 when the point is not armed or not due; -errno when it fires as an error.
 * A crash point that fires does not return. */
int fault_fire(enum fault_point fp);

/* Re-read CRYO_FAULT and reset hit counts (tests that change the variable). */
void fault_reset(void);

const char *fault_name(enum fault_point fp);

#endif
