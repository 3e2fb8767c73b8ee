/* libFuzzer target: every /proc text parser of src/proc.
 *
 * The first byte picks the parser, the rest is the file's text. The input
 * is copied into a buffer of exactly its size so ASan sees any read past
 * the end. fdinfo's lock lines go on through fds/locks.c. Parsers must
 * return 0 or -errno, never crash, and a successful
 * parse must satisfy the invariants checked below. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fds/fd.h"
#include "proc/auxv.h"
#include "proc/fds.h"
#include "proc/maps.h"
#include "proc/mountinfo.h"
#include "proc/rlimits.h"
#include "proc/sockdiag.h"
#include "proc/status.h"
#include "proc/timers.h"

enum { FZ_MAPS, FZ_STATUS, FZ_STAT, FZ_LIMITS, FZ_AUXV, FZ_FDINFO, FZ_TIMERS, FZ_SOCKDIAG,
       FZ_MOUNTINFO, FZ__COUNT };

static void check_maps(const struct proc_maps *m)
{
	for (size_t i = 0; i < m->n; i++) {
		if (m->v[i].start >= m->v[i].end || !m->v[i].path)
			abort();
		if (i && m->v[i].start < m->v[i - 1].end)
			abort();
	}
}

/* The locks an fdinfo's "lock:" lines give (fds/locks.c): each of a
 * known kind, never ending before it starts. */
static void check_locks(const struct proc_fdinfo *fi)
{
	struct fd_probe p = { .pid = 1, .fd = 3, .local = -1, .info = fi };
	Cryo__FdEntry e = CRYO__FD_ENTRY__INIT;

	if (!fd_locks_dump(&p, &e))
		for (size_t i = 0; i < e.n_locks; i++)
			if (e.locks[i]->kind < 1 || e.locks[i]->kind > 3 ||
			    (e.locks[i]->has_end && e.locks[i]->end < e.locks[i]->start))
				abort();
	fd_locks_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf;
	size_t len;
	int which, r = 0;

	if (size < 1)
		return 0;
	which = data[0] % FZ__COUNT;
	len = size - 1;
	buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, len);

	switch (which) {
	case FZ_MAPS: {
		struct proc_maps m;
		r = proc_maps_parse(buf, len, &m);
		if (!r) {
			check_maps(&m);
			proc_maps_free(&m);
		}
		break;
	}
	case FZ_STATUS: {
		struct proc_status *st = malloc(sizeof(*st));
		if (st) {
			r = proc_status_parse(buf, len, st);
			if (!r && st->ngroups > PROC_STATUS_GROUPS_MAX)
				abort();
			free(st);
		}
		break;
	}
	case FZ_STAT: {
		struct proc_stat st;
		r = proc_stat_parse(buf, len, &st);
		if (!r && (st.nfields < PROC_STAT_MIN_FIELDS || st.nfields > PROC_STAT_NFIELDS))
			abort();
		break;
	}
	case FZ_LIMITS: {
		struct proc_rlimits rl;
		r = proc_rlimits_parse(buf, len, &rl);
		break;
	}
	case FZ_AUXV: {
		struct proc_auxv a;
		r = proc_auxv_parse(buf, len, &a);
		if (!r && a.n > PROC_AUXV_MAX)
			abort();
		break;
	}
	case FZ_FDINFO: {
		struct proc_fdinfo fi;
		r = proc_fdinfo_parse(buf, len, &fi);
		if (!r) {
			check_locks(&fi);
			proc_fdinfo_free(&fi);
		}
		break;
	}
	case FZ_TIMERS: {
		struct proc_timers t;
		r = proc_timers_parse(buf, len, &t);
		if (!r)
			proc_timers_free(&t);
		break;
	}
	case FZ_SOCKDIAG: {
		/* A netlink reply: the kernel's, or anything. Any error is
		 * fine; reading past the buffer is not. */
		uint32_t backlog;
		int fam = len && (buf[0] & 1) ? 1 /* AF_UNIX */ : 2 /* AF_INET */;
		struct proc_unix_info ui;
		r = proc_sockdiag_scan(buf, len, fam, 12345, &backlog);
		uint64_t ino;
		if (proc_unix_info_scan(buf, len, 12345, &ui) < 0)
			r = -1;
		if (proc_inet_ino_scan(buf, len, &ino) < 0)
			r = -1;
		r = r < 0 ? -EINVAL : 0;
		break;
	}
	case FZ_MOUNTINFO: {
		/* the root file system of this machine's mountinfo, and any */
		struct proc_mounts m;
		r = proc_mountinfo_parse(buf, len, 254, 0, &m);
		for (size_t i = 0; !r && i < m.n; i++)
			if (!m.v[i].point || !m.v[i].root || (i && !strcmp(m.v[i].root, "/") &&
							      strcmp(m.v[i - 1].root, "/")))
				abort();	/* whole mounts come first */
		if (!r)
			proc_mounts_free(&m);
		break;
	}
	}
	/* Only these errors are allowed for bad input. */
	if (r && r != -EINVAL && r != -E2BIG && r != -ENODATA && r != -ENOMEM)
		abort();
	free(buf);
	return 0;
}
