/* Advisory file locks (an fd's property, whatever its kind): fcntl
 * (POSIX) record locks, OFD record locks and flock locks, read from the
 * fd's fdinfo "lock:" lines (the locks taken through that open file, which
 * the kernel lists for each fd of it), and taken again at melt by the
 * process itself, after all its fds are placed (closing any fd of a file
 * drops the process's POSIX locks on it). A lock taken meanwhile by
 * another process fails the melt, named: the program must not run
 * believing it holds a lock it does not (sqlite's transactions, a
 * daemon's pid file). Leases and delegations are refused at snapshot. */
#define LOG_PREFIX "fds/locks: "
#include "fds/fd.h"
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

enum { LOCK_KIND_POSIX = 1, LOCK_KIND_OFD = 2, LOCK_KIND_FLOCK = 3 };

static const char *const kind_word[] = { [LOCK_KIND_POSIX] = "POSIX", [LOCK_KIND_OFD] = "OFDLCK",
					 [LOCK_KIND_FLOCK] = "FLOCK" };

/* One "lock:" value ("1: POSIX  ADVISORY  WRITE 9288 fe:00:1095 5 14"). */
static int parse_lock(const char *v, Cryo__FileLock *l)
{
	char kind[16], adv[16], type[16], end[24];
	unsigned long long start;
	long long pid;
	unsigned id;

	if (sscanf(v, "%u: %15s %15s %15s %lld %*s %llu %23s", &id, kind, adv, type, &pid, &start,
		   end) != 7)
		return -EINVAL;
	cryo__file_lock__init(l);
	for (uint32_t k = LOCK_KIND_POSIX; k <= LOCK_KIND_FLOCK; k++)
		if (!strcmp(kind, kind_word[k]))
			l->kind = k;
	if (!l->kind || strcmp(adv, "ADVISORY"))
		return -ENOTSUP;	/* a lease, a delegation, a mandatory lock */
	if (strcmp(type, "READ") && strcmp(type, "WRITE"))
		return -ENOTSUP;
	l->write = !strcmp(type, "WRITE");
	l->start = start;
	if (strcmp(end, "EOF")) {
		char *x;

		l->end = strtoull(end, &x, 10);
		if (*x || l->end < start)
			return -EINVAL;
		l->has_end = 1;
	}
	return 0;
}

int fd_locks_dump(const struct fd_probe *p, Cryo__FdEntry *e)
{
	size_t n = 0;

	for (size_t i = 0; i < p->info->nextra; i++)
		n += !strcmp(p->info->extra[i].key, "lock");
	if (!n)
		return 0;
	e->locks = calloc(n, sizeof(*e->locks));
	if (!e->locks)
		return -ENOMEM;
	for (size_t i = 0; i < p->info->nextra; i++) {
		Cryo__FileLock *l;
		int r;

		if (strcmp(p->info->extra[i].key, "lock"))
			continue;
		l = malloc(sizeof(*l));
		if (!l)
			return -ENOMEM;
		e->locks[e->n_locks++] = l;
		r = parse_lock(p->info->extra[i].val, l);
		if (r) {
			pr_err("pid %d fd %d: lock \"%s\": %s", (int)p->pid, p->fd,
			       p->info->extra[i].val,
			       r == -ENOTSUP ? "a lease, delegation or mandatory lock cannot be "
					       "saved" : "not understood");
			return r;
		}
	}
	return 0;
}

void fd_locks_free(Cryo__FdEntry *e)
{
	for (size_t i = 0; i < e->n_locks; i++)
		free(e->locks[i]);
	free(e->locks);
	e->locks = NULL;
	e->n_locks = 0;
}

static int take(int fd, const Cryo__FileLock *l)
{
	struct flock fl = { .l_type = l->write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET };

	if (l->kind == LOCK_KIND_FLOCK)
		return flock(fd, (l->write ? LOCK_EX : LOCK_SH) | LOCK_NB) ? -errno : 0;
	if (l->kind != LOCK_KIND_POSIX && l->kind != LOCK_KIND_OFD)
		return -EINVAL;
	if (l->start > INT64_MAX || (l->has_end && l->end >= INT64_MAX))
		return -EINVAL;
	fl.l_start = (off_t)l->start;
	fl.l_len = l->has_end ? (off_t)(l->end - l->start + 1) : 0;
	return fcntl(fd, l->kind == LOCK_KIND_OFD ? F_OFD_SETLK : F_SETLK, &fl) ? -errno : 0;
}

int fd_locks_restore(const Cryo__FdEntry *e, char *why, size_t n)
{
	for (size_t i = 0; i < e->n_locks; i++) {
		const Cryo__FileLock *l = e->locks[i];
		int r = take((int)e->fd, l);
		char end[24] = "EOF";

		if (!r)
			continue;
		if (l->has_end)
			snprintf(end, sizeof(end), "%" PRIu64, l->end);
		snprintf(why, n, "its %s %s lock on bytes %" PRIu64 "-%s: %s",
			 l->kind < 4 && kind_word[l->kind] ? kind_word[l->kind] : "unknown",
			 l->write ? "write" : "read", l->start, end,
			 r == -EAGAIN || r == -EWOULDBLOCK || r == -EACCES ?
				 "another process holds a lock on them now" : strerror(-r));
		return r;
	}
	return 0;
}
