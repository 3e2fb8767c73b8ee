/* Holds what cryo cannot capture yet (argv[1]: "socket" for a socketpair
 * at fd >= 3, "inotify" for an inotify instance watching a directory) and keeps counting in a second
 * thread. A refused snapshot must leave it exactly as it was: running,
 * untraced, its counter advancing, its memory unchanged. */
#include "zdtm.h"

#include <pthread.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/socket.h>
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
	if (!strcmp(argv[1], "socket"))
		zdtm_check(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair");
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
		char c = 0;
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
