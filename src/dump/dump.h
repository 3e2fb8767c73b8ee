/* Capture a group into the store: seize, read, write one snapshot, release
 * (or, for freeze, kill). A failure at any step leaves the process running
 * exactly as before: never stopped, traced, or with an injected fd or
 * mapping. */
#ifndef CRYO_DUMP_DUMP_H
#define CRYO_DUMP_DUMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/progress.h"
#include "store/store.h"

/* Which pages a process wrote since a snapshot, kept between snapshots of
 * it (cryod keeps one per group): userfaultfd write-protect in async mode
 * (dump_track.c). Armed by a snapshot taken with it; the next snapshots
 * with it read only the pages written since, most of them before the
 * process is stopped (pre-copy). Falls back to comparing pages whenever it
 * cannot be trusted. */
struct dump_track;
struct dump_track *dump_track_new(void);	/* NULL on ENOMEM */
void dump_track_free(struct dump_track *t);	/* NULL: nothing */
void dump_track_disarm(struct dump_track *t);
bool dump_track_armed(const struct dump_track *t);

struct dump_opts {
	bool freeze;		/* after the commit, end the process (SIGKILL) */
	/* 0: full; STORE_SNAP_NEWEST: on top of the newest snapshot when it
	 * is of this process, writing only the pages that differ from it */
	uint64_t base;
	/* with base: track writes between snapshots (not owned) */
	struct dump_track *track;
	/* freeze: TCP connections to outside the group are saved by TCP
	 * repair and held still until melt, instead of coming back reset */
	bool tcp_established;
	/* Optional (not owned): a full snapshot's bytes, planned and read */
	struct progress *progress;
};

struct dump_result {
	uint64_t snap_no;
	uint64_t pages;		/* pages written (data and zero) */
	uint64_t unchanged;	/* pages equal to the base's, not written */
	bool incremental;	/* on top of the newest snapshot */
	bool tracked;		/* only written pages were read (dump_track) */
	uint64_t precopied;	/* of them, read before the process was stopped */
	uint64_t bytes;		/* page bytes read from the process */
	uint64_t stopped_ns;	/* time the process was stopped */
	uint64_t total_ns;	/* call to durable */
};

int dump_group(struct store *s, const char *name, pid_t pid, const struct dump_opts *o,
	       struct dump_result *res);

#endif
