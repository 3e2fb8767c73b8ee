/* Holds what cryo cannot capture (argv[1], one of):
 *   socket      a socketpair at fd >= 3 with a message queued on it that
 *               carries a netlink socket (read back intact after the
 *               refusal: peeking took nothing)
 *   flightheld  the same with an eventfd in flight that the process also
 *               holds (melt would make two)
 *   io_uring, fanotify, userfaultfd, perf_event, bpf (a map), netlink,
 *   packet, mqueue (a POSIX message queue)
 *   pidfd       a pidfd to a child that a second child shares (inherited)
 *   eventfd     nothing refused: an eventfd (for tests refusing for other
 *               reasons, e.g. a tracer)
 * and keeps counting in a second thread. A refused snapshot must leave it
 * exactly as it was: running, untraced, its counter advancing, its memory
 * unchanged, its fd still working. */
#include "zdtm.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/io_uring.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <mqueue.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile uint64_t count;

static void *counter(void *arg)
{
	(void)arg;
	for (;;) {
		count++;
		usleep(100);
	}
	return NULL;
}

/* A socketpair; a message carrying fd is queued on sv[0]; fd is closed
 * unless keep. */
static void queue_fd(int sv[2], int fd, int keep)
{
	char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { "fd", 2 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	zdtm_check(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv) && fd >= 0 &&
		   sendmsg(sv[1], &mh, 0) == 2, "socketpair with an fd in flight");
	if (!keep)
		close(fd);
}

static int make_bpf_map(void)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = 4;
	a.max_entries = 1;
	return (int)syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a));
}

static int make_perf_event(void)
{
	struct perf_event_attr a = { .type = PERF_TYPE_SOFTWARE, .size = sizeof(a),
				     .config = PERF_COUNT_SW_TASK_CLOCK };

	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

static int make_io_uring(void)
{
	struct io_uring_params pr;

	memset(&pr, 0, sizeof(pr));
	return (int)syscall(SYS_io_uring_setup, 4, &pr);
}

/* A child that waits to die with its parent. */
static pid_t idle_child(void)
{
	pid_t c = fork();

	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	return c;
}

static int shared_pidfd(void)
{
	int fd = (int)syscall(SYS_pidfd_open, idle_child(), 0);

	idle_child();	/* inherits fd */
	return fd;
}

static int make(const char *kind)
{
	if (!strcmp(kind, "io_uring"))
		return make_io_uring();
	if (!strcmp(kind, "fanotify"))
		return fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
	if (!strcmp(kind, "userfaultfd"))
		return (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	if (!strcmp(kind, "perf_event"))
		return make_perf_event();
	if (!strcmp(kind, "bpf"))
		return make_bpf_map();
	if (!strcmp(kind, "netlink"))
		return socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (!strcmp(kind, "packet"))
		return socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (!strcmp(kind, "mqueue")) {
		char name[64];
		int q;

		snprintf(name, sizeof(name), "/cryo-refused-%d", (int)getpid());
		q = (int)mq_open(name, O_CREAT | O_RDWR, 0600, NULL);
		mq_unlink(name);
		return q;
	}
	if (!strcmp(kind, "pidfd"))
		return shared_pidfd();
	if (!strcmp(kind, "eventfd"))
		return eventfd(0, 0);
	zdtm_fail("unknown kind %s", kind);
}

int main(int argc, char **argv)
{
	pthread_t t;
	uint64_t before;
	int sv[2] = { -1, -1 }, fd = -1;

	zdtm_check(argc > 1, "usage: refused socket|io_uring|fanotify|userfaultfd|perf_event|"
		   "bpf|netlink|packet|mqueue|pidfd|flightheld|eventfd");
	zdtm_block_usr2();
	if (!strcmp(argv[1], "socket"))
		queue_fd(sv, socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), 0);
	else if (!strcmp(argv[1], "flightheld"))
		queue_fd(sv, eventfd(3, 0), 1);
	else
		zdtm_check((fd = make(argv[1])) >= 0, "making the %s", argv[1]);
	pthread_create(&t, NULL, counter, NULL);
	zdtm_say("fd %d\n", sv[0] >= 0 ? sv[0] : fd);
	zdtm_ready_wait();
	before = count;
	usleep(20000);
	zdtm_check(count > before, "counter stopped");
	if (sv[0] >= 0) {
		char c = 0, got[2], ctl[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { got, 2 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
				     .msg_controllen = sizeof(ctl) };
		struct cmsghdr *cm;
		int got_fd = -1, dom = 0;
		socklen_t len = sizeof(dom);

		zdtm_check(recvmsg(sv[0], &mh, MSG_DONTWAIT) == 2 && !memcmp(got, "fd", 2) &&
			   (cm = CMSG_FIRSTHDR(&mh)) && cm->cmsg_type == SCM_RIGHTS,
			   "the queued message or its fd was lost");
		memcpy(&got_fd, CMSG_DATA(cm), sizeof(int));
		zdtm_check(!strcmp(argv[1], "flightheld") ||
			   (!getsockopt(got_fd, SOL_SOCKET, SO_DOMAIN, &dom, &len) &&
			    dom == AF_NETLINK), "the fd in flight is not the netlink socket");
		zdtm_check(write(sv[0], "x", 1) == 1 && read(sv[1], &c, 1) == 1 && c == 'x',
			   "socketpair broken");
	} else {
		zdtm_check(fcntl(fd, F_GETFD) >= 0, "the %s fd is gone", argv[1]);
	}
	zdtm_pass();
}
