/* "signalfd": the mask of signals it reads, from fdinfo ("sigmask", hex).
 * Melt makes a signalfd with that mask; the signals themselves are the
 * process's pending signals, which melt queues again (src/restore). */
#define LOG_PREFIX "fds/signalfd: "
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static int signalfd_match(const struct fd_probe *p)
{
	return !strcmp(p->link, "anon_inode:[signalfd]");
}

static int signalfd_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__SignalFd s = CRYO__SIGNAL_FD__INIT;
	const char *m = proc_fdinfo_get(p->info, "sigmask");
	char *end;
	int r;

	(void)c;
	errno = 0;
	s.sigmask = m ? strtoull(m, &end, 16) : 0;
	if (!m || !*m || errno || *end) {
		pr_err("pid %d fd %d: signalfd without a readable mask", p->pid, p->fd);
		return -ENOTSUP;
	}
	r = fd_pack(e, &s.base);
	if (!r)
		r = fd_set_desc(e, "signalfd mask %#" PRIx64, s.sigmask);
	return r;
}

static int signalfd_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__SignalFd *s = (Cryo__SignalFd *)fd_unpack(e, &cryo__signal_fd__descriptor);
	sigset_t set;
	int fd, r;

	(void)c;
	if (!s)
		return -EBADMSG;
	sigemptyset(&set);
	for (int sig = 1; sig <= 64 && sig < NSIG; sig++)
		if (s->sigmask & (1ull << (sig - 1)))
			sigaddset(&set, sig);
	fd = signalfd(-1, &set, SFD_CLOEXEC);
	r = fd < 0 ? -errno : fd_place(fd, e, 0);
	cryo__signal_fd__free_unpacked(s, NULL);
	return r;
}

static void signalfd_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s", e->desc ? e->desc : "signalfd", e->cloexec ? " cloexec" : "");
}

const struct fd_ops fd_ops_signalfd = {
	.name = "signalfd",
	.match = signalfd_match,
	.dump = signalfd_dump,
	.restore = signalfd_restore,
	.describe = signalfd_describe,
};
