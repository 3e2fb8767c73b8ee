/* "eventfd": the counter and the semaphore flag come from fdinfo
 * ("eventfd-count" in hex, "eventfd-semaphore"); melt makes a new eventfd
 * and writes the count back. A kernel whose fdinfo does not say whether
 * the eventfd is a semaphore is refused: guessing would change how reads
 * drain it. */
#define LOG_PREFIX "fds/eventfd: "
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int eventfd_match(const struct fd_probe *p)
{
	return !strcmp(p->link, "anon_inode:[eventfd]");
}

/* A whole unsigned number in base, or -EINVAL. */
static int parse_u64(const char *s, int base, uint64_t *out)
{
	char *end;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, base);
	if (errno || end == s || *end)
		return -EINVAL;
	return 0;
}

static int eventfd_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__EventFd ev = CRYO__EVENT_FD__INIT;
	uint64_t sem;
	int r;

	(void)c;
	if (parse_u64(proc_fdinfo_get(p->info, "eventfd-count"), 16, &ev.count)) {
		pr_err("pid %d fd %d: eventfd without a readable count", p->pid, p->fd);
		return -ENOTSUP;
	}
	if (parse_u64(proc_fdinfo_get(p->info, "eventfd-semaphore"), 10, &sem)) {
		pr_err("pid %d fd %d: this kernel does not say whether the eventfd is a semaphore",
		       p->pid, p->fd);
		return -ENOTSUP;
	}
	ev.has_semaphore = true;
	ev.semaphore = sem != 0;
	r = fd_pack(e, &ev.base);
	if (!r)
		r = fd_set_desc(e, "eventfd count %" PRIu64 "%s", ev.count,
				ev.semaphore ? " semaphore" : "");
	return r;
}

static int eventfd_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__EventFd *ev = (Cryo__EventFd *)fd_unpack(e, &cryo__event_fd__descriptor);
	int fd, r;

	(void)c;
	if (!ev)
		return -EBADMSG;
	/* The largest count an eventfd holds is 2^64-2; a write of more blocks. */
	if (ev->count == UINT64_MAX) {
		r = -EINVAL;
		goto out;
	}
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | (ev->semaphore ? EFD_SEMAPHORE : 0));
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (ev->count && write(fd, &ev->count, sizeof(ev->count)) != sizeof(ev->count)) {
		r = -errno;
		pr_err("eventfd: writing the count back: %s", strerror(errno));
		close(fd);
		goto out;
	}
	r = fd_place(fd, e, 0);
out:
	cryo__event_fd__free_unpacked(ev, NULL);
	return r;
}

static void eventfd_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	snprintf(buf, n, "%s flags 0%o%s", e->desc ? e->desc : "eventfd", e->flags,
		 e->cloexec ? " cloexec" : "");
}

const struct fd_ops fd_ops_eventfd = {
	.name = "eventfd",
	.match = eventfd_match,
	.dump = eventfd_dump,
	.restore = eventfd_restore,
	.describe = eventfd_describe,
};
