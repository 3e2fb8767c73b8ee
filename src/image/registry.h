/* The group registry, until the daemon keeps it: one small text file per
 * group, CRYO_HOME/groups/NAME:
 *
 *   pid 4242
 *   starttime 123456        field 22 of /proc/PID/stat: tells pid reuse
 *   state running           running | frozen | exited
 *   created 1763800000000000000   ns since the epoch
 *   nspid 17                the pid its program sees, when it runs in a pid
 *   nsinit 31400            namespace of its own, and that namespace's init
 *                           (host pid); both lines absent otherwise
 *
 * Written atomically (temp file, fsync, rename, fsync of the directory):
 * a reader sees the old file or the new one, never a mix. A file that
 * does not parse is -EBADMSG, never guessed at.
 *
 * Group life (until the daemon): adopt -> running; snap keeps it running;
 * freeze -> frozen (after the snapshot is durable); melt -> running with
 * the new pid and starttime; a running group whose process is gone (or
 * whose pid now names another process) is reported exited.
 *
 * pid is always the host's: what cryod signals, watches and snapshots. */
#ifndef CRYO_IMAGE_REGISTRY_H
#define CRYO_IMAGE_REGISTRY_H

#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

enum registry_state {
	REGISTRY_RUNNING = 0,
	REGISTRY_FROZEN = 1,
	REGISTRY_EXITED = 2,
};

struct registry_entry {
	char name[STORE_NAME_MAX + 1];
	pid_t pid;
	uint64_t starttime;		/* clock ticks after boot, /proc/PID/stat */
	enum registry_state state;
	uint64_t created_ns;
	pid_t ns_pid;			/* in a pid namespace: the program's pid; else 0 */
	pid_t ns_init;			/* that namespace's init, if cryo's; else 0 */
};

/* home: CRYO_HOME. -ENOENT when the group is not registered; -EINVAL for
 * a name that is not a valid group name ([A-Za-z0-9._-], not "." / ".."). */
int registry_get(const char *home, const char *name, struct registry_entry *e);
/* Create or replace (makes home/groups if missing). */
int registry_put(const char *home, const struct registry_entry *e);
int registry_del(const char *home, const char *name);

/* Every registered group, in no particular order; fn returns nonzero to
 * stop (that value is returned). Files that do not parse are skipped. */
typedef int (*registry_fn)(void *arg, const struct registry_entry *e);
int registry_list(const char *home, registry_fn fn, void *arg);

/* How a group's process ended, as cryod saw it (proc/exits.h):
 * CRYO_HOME/exits/NAME, "pid P", "starttime S", "status W" (W the wait
 * status, -1: ended, how not known). A file apart from the group's, which
 * commands rewrite (freeze, melt): it names its process, so the record of
 * an earlier one is never taken for the current one. */
int registry_exit_put(const char *home, const struct registry_entry *e, int status);
/* 0 and *status when e's process (pid and starttime) has a record;
 * -ENOENT when not. */
int registry_exit_get(const char *home, const struct registry_entry *e, int *status);
/* "exited(N)", "killed(SIG)", or "exited" (status < 0: not known) into
 * buf; returns buf. */
const char *registry_exit_text(int status, char *buf, size_t n);

const char *registry_state_name(enum registry_state s);
int registry_name_ok(const char *name);

/* Start time of pid (field 22 of /proc/PID/stat); -ESRCH if no such
 * process. With registry_get: a group's process is the same one only when
 * pid and starttime both match. */
int registry_pid_starttime(pid_t pid, uint64_t *starttime);

#endif
