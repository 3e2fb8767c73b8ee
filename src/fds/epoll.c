/* "epoll": an epoll instance and what it watches. fdinfo lists one
 * "tfd: N events: X data: D pos: P ino: I sdev: S" line per target; each
 * target must still be the process's fd N (same inode), or the snapshot
 * is refused: a target registered under an fd number the process has
 * since closed (a dup'ed file) could not be registered again.
 *
 * Melt makes an empty instance with the other fds, and adds the targets
 * in finish(), once every fd is at its own number: the kernel keys a
 * registration by (file, fd number), and the program will later name it
 * by that number in EPOLL_CTL_MOD/DEL. Readiness is not saved: level-
 * triggered targets report again by themselves; an edge that fired and was
 * not yet collected before the snapshot is not replayed. */
#define LOG_PREFIX "fds/epoll: "
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int epoll_match(const struct fd_probe *p)
{
	return !strcmp(p->link, "anon_inode:[eventpoll]");
}

struct tfd_line {
	unsigned fd, events, sdev;
	uint64_t data, ino;
};

static int parse_tfd(const char *val, struct tfd_line *t)
{
	unsigned pos;
	int used = 0;

	if (sscanf(val, "%u events: %x data: %" SCNx64 " pos:%u ino:%" SCNx64 " sdev:%x%n",
		   &t->fd, &t->events, &t->data, &pos, &t->ino, &t->sdev, &used) != 6)
		return -EINVAL;
	return val[used] == '\0' || val[used] == ' ' ? 0 : -EINVAL;
}

/* Is fd N of pid the file fdinfo named (inode and device)? The kernel
 * prints its own dev_t encoding: major in the top 12 bits of 32. */
static int same_file(pid_t pid, const struct tfd_line *t)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/fd/%u", (int)pid, t->fd);
	if (stat(path, &st) < 0)
		return 0;
	return st.st_ino == t->ino && major(st.st_dev) == (t->sdev >> 20) &&
	       minor(st.st_dev) == (t->sdev & 0xfffff);
}

static void targets_free(Cryo__Epoll *ep)
{
	for (size_t i = 0; i < ep->n_targets; i++)
		free(ep->targets[i]);
	free(ep->targets);
}

static int epoll_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__Epoll ep = CRYO__EPOLL__INIT;
	size_t n = 0;
	int r = 0;

	(void)c;
	for (size_t i = 0; i < p->info->nextra; i++)
		n += !strcmp(p->info->extra[i].key, "tfd");
	ep.targets = calloc(n ? n : 1, sizeof(*ep.targets));
	if (!ep.targets)
		return -ENOMEM;
	for (size_t i = 0; i < p->info->nextra; i++) {
		struct tfd_line t;
		Cryo__EpollTarget *et;

		if (strcmp(p->info->extra[i].key, "tfd"))
			continue;
		if (parse_tfd(p->info->extra[i].val, &t)) {
			pr_err("pid %d fd %d: unreadable epoll target \"%s\"", p->pid, p->fd,
			       p->info->extra[i].val);
			r = -EINVAL;
			goto out;
		}
		if (!same_file(p->pid, &t)) {
			pr_err("pid %d fd %d: epoll watches a file under fd %u, which is no longer "
			       "that file (closed or replaced after epoll_ctl)", p->pid, p->fd, t.fd);
			r = -ENOTSUP;
			goto out;
		}
		et = malloc(sizeof(*et));
		if (!et) {
			r = -ENOMEM;
			goto out;
		}
		cryo__epoll_target__init(et);
		et->fd = t.fd;
		et->events = t.events;
		et->data = t.data;
		ep.targets[ep.n_targets++] = et;
	}
	r = fd_pack(e, &ep.base);
	if (!r)
		r = fd_set_desc(e, "epoll, %zu target%s", ep.n_targets,
				ep.n_targets == 1 ? "" : "s");
out:
	targets_free(&ep);
	return r;
}

static int epoll_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	int fd;

	(void)c;
	fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0)
		return -errno;
	return fd_place(fd, e, 0);
}

static int epoll_finish(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__Epoll *ep = (Cryo__Epoll *)fd_unpack(e, &cryo__epoll__descriptor);
	int r = 0;

	(void)c;
	if (!ep)
		return -EBADMSG;
	for (size_t i = 0; i < ep->n_targets; i++) {
		const Cryo__EpollTarget *t = ep->targets[i];
		struct epoll_event ev = { .events = t->events, .data.u64 = t->data };

		if (epoll_ctl((int)e->fd, EPOLL_CTL_ADD, (int)t->fd, &ev) < 0) {
			r = -errno;
			pr_err("epoll fd %u: watching fd %u again: %s", e->fd, t->fd,
			       strerror(errno));
			break;
		}
	}
	cryo__epoll__free_unpacked(ep, NULL);
	return r;
}

static void epoll_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	Cryo__Epoll *ep = e->has_payload ?
		cryo__epoll__unpack(NULL, e->payload.len, e->payload.data) : NULL;
	size_t off;

	off = (size_t)snprintf(buf, n, "epoll%s:", e->cloexec ? " cloexec" : "");
	if (!ep) {
		snprintf(buf + (off < n ? off : n), off < n ? n - off : 0, " (undecodable)");
		return;
	}
	for (size_t i = 0; i < ep->n_targets && off < n; i++)
		off += (size_t)snprintf(buf + off, n - off, " fd %u events 0x%x data 0x%" PRIx64,
					ep->targets[i]->fd, ep->targets[i]->events,
					ep->targets[i]->data);
	cryo__epoll__free_unpacked(ep, NULL);
}

const struct fd_ops fd_ops_epoll = {
	.name = "epoll",
	.match = epoll_match,
	.dump = epoll_dump,
	.restore = epoll_restore,
	.finish = epoll_finish,
	.describe = epoll_describe,
};
