/* TEST-ONLY image builder for the restore tests, written before src/dump
 * existed on this branch: captures one process with src/proc primitives
 * into a snapshot following src/image/image.proto, so melt can be tested
 * on its own. It is not the engine's dump (src/dump/): no fds (the record
 * is empty), no incremental snapshots, no refusals. */
#ifndef CRYO_TESTS_RESTORE_CAPTURE_H
#define CRYO_TESTS_RESTORE_CAPTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

/* Capture pid as snapshot of object name; kill it afterwards if kill_it
 * (it stays traced until dead, then is released). *snap_no if not NULL. */
int rtest_capture(struct store *s, const char *name, pid_t pid, bool kill_it, uint64_t *snap_no);

#endif
