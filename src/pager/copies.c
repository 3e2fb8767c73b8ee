/* The processes' own copies of their userfaultfds (serve.h: never wrong
 * memory): given to a child forked while paging in, closed in every
 * process of the group once all is in. */
#define LOG_PREFIX "pager: "
#include "pager/serve_int.h"
#include "common/log.h"
#include "common/vec.h"
#include "proc/fds.h"
#include "proc/inject.h"
#include "proc/mem.h"
#include "proc/status.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KCMP_FILE	0
#define SEIZE_TRIES	500	/* x 20 ms: a snapshot or the melt may hold the process */
#define STOP_POLL_US	500
#define STOP_TRIES	20000	/* x STOP_POLL_US: its threads stop within this */
#define CLOSE_PASSES	4	/* looks for children forked while closing */

/* Where things go in injection's scratch page while a copy is handed over. */
enum {
	AT_PAIR = 0,		/* int[2] from socketpair */
	AT_MSG = 64,		/* struct msghdr */
	AT_IOV = 128,		/* struct iovec */
	AT_BYTE = 160,		/* the one byte sent with the fd */
	AT_CMSG = 192,		/* CMSG_SPACE(sizeof(int)) */
};

static int remote(struct proc_ctl *ctl, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
		  uint64_t a3, int64_t *res)
{
	const uint64_t a[6] = { a0, a1, a2, a3, 0, 0 };

	return proc_remote_call(ctl, nr, a, res);
}

static int send_fd(int sock, int fd)
{
	char byte = 'u';
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	memset(&u, 0, sizeof(u));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

/* recvmsg in the process, on its end of the pair, into the scratch page;
 * *fd: the descriptor it received. */
static int remote_recv_fd(struct proc_ctl *ctl, uint64_t d, int sock, int *fd)
{
	struct iovec iov = { (void *)(uintptr_t)(d + AT_BYTE), 1 };
	struct msghdr m = { .msg_iov = (void *)(uintptr_t)(d + AT_IOV), .msg_iovlen = 1,
			    .msg_control = (void *)(uintptr_t)(d + AT_CMSG),
			    .msg_controllen = CMSG_SPACE(sizeof(int)) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	int64_t got;
	int ret;

	ret = proc_mem_write(ctl->pid, d + AT_MSG, &m, sizeof(m), NULL);
	if (!ret)
		ret = proc_mem_write(ctl->pid, d + AT_IOV, &iov, sizeof(iov), NULL);
	if (!ret)
		ret = remote(ctl, SYS_recvmsg, (uint64_t)sock, d + AT_MSG,
			     MSG_DONTWAIT | MSG_CMSG_CLOEXEC, 0, &got);
	if (!ret)
		ret = proc_mem_read(ctl->pid, d + AT_CMSG, u.buf, sizeof(u.buf), NULL);
	if (ret)
		return ret;
	if (u.h.cmsg_level != SOL_SOCKET || u.h.cmsg_type != SCM_RIGHTS ||
	    u.h.cmsg_len != CMSG_LEN(sizeof(int)))
		return -EPROTO;
	memcpy(fd, CMSG_DATA(&u.h), sizeof(int));
	return 0;
}

/* A unix datagram pair made inside the process (no memory of its own
 * touched: the scratch page is injection's), our end taken with
 * pidfd_getfd, the uffd sent over it and received there. */
int pager_give_copy(struct proc_ctl *ctl, int uffd, int *fd)
{
	int pair[2] = { -1, -1 }, mine = -1, got = -1, ret;
	int64_t hi = -1;
	uint64_t d;

	ret = proc_inject_scratch_data(ctl, &d);
	if (!ret)
		ret = remote(ctl, SYS_socketpair, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0,
			     d + AT_PAIR, NULL);
	if (!ret)
		ret = proc_mem_read(ctl->pid, d + AT_PAIR, pair, sizeof(pair), NULL);
	if (ret)
		return ret;
	mine = (int)syscall(SYS_pidfd_getfd, ctl->pidfd, pair[1], 0);
	ret = mine < 0 ? -errno : send_fd(mine, uffd);
	if (!ret)
		ret = remote_recv_fd(ctl, d, pair[0], &got);
	if (!ret)
		ret = remote(ctl, SYS_fcntl, (uint64_t)got, F_DUPFD_CLOEXEC, PAGER_COPY_FD_MIN, 0,
			     &hi);
	if (mine >= 0)
		close(mine);
	(void)proc_remote_close(ctl, pair[0]);
	(void)proc_remote_close(ctl, pair[1]);
	if (got >= 0 && (ret || hi != got))
		(void)proc_remote_close(ctl, got);
	if (!ret && syscall(SYS_kcmp, getpid(), ctl->pid, KCMP_FILE, uffd, (int)hi) != 0)
		ret = -EBADF;	/* not ours after all: never leave it there */
	if (ret) {
		if (hi >= 0)
			(void)proc_remote_close(ctl, (int)hi);
		return ret;
	}
	*fd = (int)hi;
	return 0;
}

/* ---- once all is in ---- */

/* A registered mapping can grow in place (mremap, a realloc of a large
 * block): the part it grew by is registered too, though not in the
 * pager's ranges (its faults were zero-filled, rightly). Unregister
 * whatever is still registered with pid's uffd before the copies go, or
 * those faults would wait forever while anyone still holds it. */
static void unregister_rest(int uffd, pid_t pid)
{
	char path[64], line[512];
	unsigned long long s = 0, e = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' '))
			continue;
		if (!strncmp(line, "VmFlags:", 8) && strstr(line, " um")) {
			struct uffdio_range rg = { .start = s, .len = e - s };
			if (ioctl(uffd, UFFDIO_UNREGISTER, &rg) && errno != EINVAL)
				pr_err("unregister %#llx-%#llx of pid %d: %s", s, e, (int)pid,
				       strerror(errno));
		}
	}
	fclose(f);
}

static void pump_once(const struct served_pump *pump)
{
	int r = pump ? pump->fn(pump->arg) : 0;

	if (r)
		pr_err("reading the userfaultfds while letting go: %s", strerror(-r));
}

/* Seize pid once no one else traces it (the melt still finishing, a
 * snapshot) and wait for it to stop, pumping meanwhile: a thread of it
 * that forked before the unregister stops only once its fork event is
 * read. -ESRCH if it is gone meanwhile. */
static int seize_when_free(pid_t pid, struct proc_ctl **ctl, const struct served_pump *pump)
{
	int r = -EBUSY;

	for (int i = 0; i < SEIZE_TRIES && r == -EBUSY; i++) {
		struct proc_status st;

		if (proc_status_read(pid, 0, &st) || !pager_start_of(pid))
			return -ESRCH;	/* gone, or a zombie */
		if (st.tracer_pid) {
			pump_once(pump);
			usleep(20000);
			continue;
		}
		r = proc_seize_start(pid, ctl);
		if (r == -EPERM || r == -EBUSY)
			r = -EBUSY;
	}
	for (int i = 0; !r; i++) {
		r = proc_seize_poll(*ctl);
		if (r != -EAGAIN || i == STOP_TRIES)
			break;
		pump_once(pump);
		usleep(STOP_POLL_US);
		r = 0;
	}
	if (r && *ctl) {
		(void)proc_release(*ctl);
		*ctl = NULL;
	}
	return r == -EAGAIN ? -ETIMEDOUT : r;
}

/* The fds of pid that are one of ours[]: their numbers in *fds. */
static int our_fds_in(pid_t pid, const int *ours, size_t nours, int **fds, size_t *n)
{
	struct proc_fds all = { 0 };
	size_t cap = 0;
	int r = proc_fds_list(pid, &all);

	*n = 0;
	for (size_t i = 0; !r && i < all.n; i++) {
		if (strcmp(all.v[i].target, "anon_inode:[userfaultfd]"))
			continue;
		for (size_t k = 0; k < nours; k++)
			if (ours[k] >= 0 &&
			    syscall(SYS_kcmp, getpid(), pid, KCMP_FILE, ours[k], all.v[i].fd) == 0) {
				r = vec_reserve((void **)fds, &cap, *n + 1, sizeof(**fds));
				if (!r)
					(*fds)[(*n)++] = all.v[i].fd;
				break;
			}
	}
	proc_fds_free(&all);
	return r;
}

static void close_in(pid_t pid, const int *ours, size_t nours, const struct served_pump *pump)
{
	struct proc_ctl *ctl = NULL;
	int *fds = NULL, r;
	size_t n = 0;

	r = our_fds_in(pid, ours, nours, &fds, &n);
	if (!r && n)
		r = seize_when_free(pid, &ctl, pump);
	/* listed while it ran: check each again now that it is stopped */
	for (size_t i = 0; !r && i < n; i++) {
		bool still = false;

		for (size_t k = 0; k < nours && !still; k++)
			still = ours[k] >= 0 &&
				syscall(SYS_kcmp, getpid(), pid, KCMP_FILE, ours[k], fds[i]) == 0;
		if (still)
			r = proc_remote_close(ctl, fds[i]);
	}
	if (ctl) {
		int r2 = proc_release(ctl);
		r = r ? r : r2;
	}
	if (r && r != -ESRCH && r != -ENOENT)	/* ENOENT: gone before we looked */
		pr_err("closing pid %d's copies of its userfaultfd: %s", (int)pid, strerror(-r));
	free(fds);
}

void pager_close_copies(const pid_t *pids, const int *uffds, size_t n,
			const struct served_pump *pump)
{
	pid_t *all = NULL;
	size_t nall = 0, cap = 0, done = 0;

	for (size_t i = 0; i < n; i++)
		if (pids[i] > 0 && uffds[i] >= 0)
			unregister_rest(uffds[i], pids[i]);
	pump_once(pump);
	for (size_t i = 0; i < n; i++)
		if (pids[i] > 0 && !vec_reserve((void **)&all, &cap, nall + 1, sizeof(*all)))
			all[nall++] = pids[i];
	/* and every process under them: a child inherits its parent's copy;
	 * again after each pass, for children forked while it ran (a fork
	 * after the unregister: plain memory, the copy inherited only) */
	for (int pass = 0; pass < CLOSE_PASSES; pass++) {
		pager_add_descendants(&all, &nall, &cap);
		if (done == nall)
			break;
		for (; done < nall; done++)
			close_in(all[done], uffds, n, pump);
	}
	free(all);
}
