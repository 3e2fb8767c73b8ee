/* "timerfd": clock, time left, interval and the expirations not read yet,
 * all from fdinfo. Melt makes a timer on the same clock, arms it with the
 * time that was left (relative: time stops while a group is frozen, as
 * for its itimers) and gives back the unread expirations with
 * TFD_IOC_SET_TICKS. A periodic timer that expired and was not read shows
 * no time left: it is armed one interval out. */
#define LOG_PREFIX "fds/timerfd: "
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define NS 1000000000ull
#ifndef TFD_IOC_SET_TICKS	/* linux/timerfd.h clashes with glibc's fcntl.h */
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

static int timerfd_match(const struct fd_probe *p)
{
	return !strcmp(p->link, "anon_inode:[timerfd]");
}

/* "(sec, nsec)" as fdinfo prints a timespec. */
static int parse_ts(const char *s, uint64_t *ns)
{
	unsigned long long sec, nsec;
	char tail;

	if (!s || sscanf(s, "(%llu, %llu%c", &sec, &nsec, &tail) != 3 || tail != ')' ||
	    nsec >= NS || sec > UINT64_MAX / NS - 1)
		return -EINVAL;
	*ns = sec * NS + nsec;
	return 0;
}

static int parse_num(const char *s, int base, unsigned long long *v)
{
	char *end;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, base);
	return errno || *end ? -EINVAL : 0;
}

static int timerfd_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__TimerFd t = CRYO__TIMER_FD__INIT;
	unsigned long long clk, ticks, fl;
	int r;

	(void)c;
	if (parse_num(proc_fdinfo_get(p->info, "clockid"), 10, &clk) ||
	    parse_num(proc_fdinfo_get(p->info, "ticks"), 10, &ticks) ||
	    parse_num(proc_fdinfo_get(p->info, "settime flags"), 8, &fl) ||
	    parse_ts(proc_fdinfo_get(p->info, "it_value"), &t.value_ns) ||
	    parse_ts(proc_fdinfo_get(p->info, "it_interval"), &t.interval_ns)) {
		pr_err("pid %d fd %d: timerfd state not readable from fdinfo", p->pid, p->fd);
		return -ENOTSUP;
	}
	t.clockid = (int32_t)clk;
	t.has_ticks = t.has_settime_flags = t.has_value_ns = t.has_interval_ns = 1;
	t.ticks = ticks;
	t.settime_flags = (uint32_t)fl;
	r = fd_pack(e, &t.base);
	if (!r)
		r = fd_set_desc(e, "timerfd clock %d, %" PRIu64 " ns left, interval %" PRIu64
				" ns, %" PRIu64 " unread", t.clockid, t.value_ns, t.interval_ns,
				t.ticks);
	return r;
}

static int timerfd_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__TimerFd *t = (Cryo__TimerFd *)fd_unpack(e, &cryo__timer_fd__descriptor);
	struct itimerspec its = { 0 };
	uint64_t value;
	int fd, r = 0;

	(void)c;
	if (!t)
		return -EBADMSG;
	fd = timerfd_create(t->clockid, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	value = t->value_ns;
	if (!value && t->ticks && t->interval_ns)
		value = t->interval_ns;	/* expired, not read: the next one */
	its.it_value.tv_sec = (time_t)(value / NS);
	its.it_value.tv_nsec = (long)(value % NS);
	its.it_interval.tv_sec = (time_t)(t->interval_ns / NS);
	its.it_interval.tv_nsec = (long)(t->interval_ns % NS);
	/* relative, keeping only CANCEL_ON_SET's meaning would need ABSTIME */
	if (timerfd_settime(fd, 0, &its, NULL) < 0) {
		r = -errno;
		pr_err("timerfd: arming: %s", strerror(errno));
		close(fd);
		goto out;
	}
	if (t->ticks && ioctl(fd, TFD_IOC_SET_TICKS, &t->ticks) < 0) {
		r = -errno;
		pr_err("timerfd: %" PRIu64 " unread expirations: %s", t->ticks, strerror(errno));
		close(fd);
		goto out;
	}
	r = fd_place(fd, e, 0);
out:
	cryo__timer_fd__free_unpacked(t, NULL);
	return r;
}

static void timerfd_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s", e->desc ? e->desc : "timerfd", e->cloexec ? " cloexec" : "");
}

const struct fd_ops fd_ops_timerfd = {
	.name = "timerfd",
	.match = timerfd_match,
	.dump = timerfd_dump,
	.restore = timerfd_restore,
	.describe = timerfd_describe,
};
