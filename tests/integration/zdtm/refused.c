/* Holds what cryo cannot capture yet (argv[1]: "socket" for a socketpair
 * at fd >= 3 with a message carrying an fd queued on it (read back intact
 * after the refusal: peeking took nothing), "inotify" for an inotify instance watching a directory) and keeps counting in a second
 * thread. A refused snapshot must leave it exactly as it was: running,
 * untraced, its counter advancing, its memory unchanged. */
#include "zdtm.h"

#include <pthread.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <string.h>
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

int main(int argc, char **argv)
{
	pthread_t t;
	uint64_t before;
	int sv[2] = { -1, -1 }, efd = -1;
	char dir[] = "/tmp/cryo-refused.XXXXXX", path[64];

	zdtm_check(argc > 1, "usage: refused socket|inotify");
	zdtm_block_usr2();
	if (!strcmp(argv[1], "socket")) {
		int nul = open("/dev/null", O_RDONLY);
		char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec iov = { "fd", 2 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
				     .msg_controllen = sizeof(ctl) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &nul, sizeof(int));
		zdtm_check(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv) && nul >= 0 &&
			   sendmsg(sv[1], &mh, 0) == 2, "socketpair with an fd in flight");
		close(nul);
	}
	else
		zdtm_check(mkdtemp(dir) && (efd = inotify_init1(IN_NONBLOCK)) >= 0 &&
			   inotify_add_watch(efd, dir, IN_CREATE) >= 0, "inotify");
	pthread_create(&t, NULL, counter, NULL);
	zdtm_say("fd %d\n", sv[0] >= 0 ? sv[0] : efd);
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

		zdtm_check(recvmsg(sv[0], &mh, MSG_DONTWAIT) == 2 && !memcmp(got, "fd", 2) &&
			   (cm = CMSG_FIRSTHDR(&mh)) && cm->cmsg_type == SCM_RIGHTS,
			   "the queued message or its fd was lost");
		zdtm_check(write(sv[0], "x", 1) == 1 && read(sv[1], &c, 1) == 1 && c == 'x',
			   "socketpair broken");
	} else {
		char ev[512];
		snprintf(path, sizeof(path), "%s/new", dir);
		close(open(path, O_CREAT | O_WRONLY, 0600));
		zdtm_check(read(efd, ev, sizeof(ev)) > 0, "inotify watch lost");
		unlink(path);
		rmdir(dir);
	}
	zdtm_pass();
}
