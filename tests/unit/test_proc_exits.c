/* Unit tests: src/proc/exits — exit events from the proc connector (a
 * child's exit status and a signal death are seen), and the parser given
 * datagrams cut short or with lengths that lie. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc/exits.h"

struct seen {
	pid_t want[2];
	int status[2];
	int calls;
};

static void on_exit_ev(void *arg, pid_t tgid, pid_t tid, int status)
{
	struct seen *s = arg;

	s->calls++;
	for (int i = 0; i < 2; i++)
		if (tgid == s->want[i] && tid == tgid)
			s->status[i] = status;
}

static void child_exits_are_seen(void **state)
{
	struct seen s = { .status = { -1, -1 } };
	int fd = proc_exits_open(), st;
	(void)state;

	if (fd == -EPERM || fd == -EPROTONOSUPPORT)
		skip();
	assert_true(fd >= 0);
	s.want[0] = fork();
	if (!s.want[0])
		_exit(5);
	s.want[1] = fork();
	if (!s.want[1])
		for (;;)
			pause();
	assert_int_equal(kill(s.want[1], SIGTERM), 0);
	assert_int_equal(waitpid(s.want[0], &st, 0), s.want[0]);
	assert_int_equal(waitpid(s.want[1], &st, 0), s.want[1]);
	for (int i = 0; i < 100 && (s.status[0] < 0 || s.status[1] < 0); i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 50) > 0) {
			int r = proc_exits_drain(fd, on_exit_ev, &s);

			assert_true(r == 0 || r == -ENOBUFS);	/* a busy machine */
		}
	}
	assert_true(WIFEXITED(s.status[0]) && WEXITSTATUS(s.status[0]) == 5);
	assert_true(WIFSIGNALED(s.status[1]) && WTERMSIG(s.status[1]) == SIGTERM);
	close(fd);
}

/* One exit event as the kernel sends it. */
static size_t make_event(uint8_t *buf, pid_t pid, int status)
{
	struct nlmsghdr nl = { 0 };
	struct cn_msg cn = { 0 };
	struct proc_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.what = PROC_EVENT_EXIT;
	ev.event_data.exit.process_pid = pid;
	ev.event_data.exit.process_tgid = pid;
	ev.event_data.exit.exit_code = (uint32_t)status;
	cn.id.idx = CN_IDX_PROC;
	cn.id.val = CN_VAL_PROC;
	cn.len = sizeof(ev);
	nl.nlmsg_len = NLMSG_LENGTH(sizeof(cn) + sizeof(ev));
	nl.nlmsg_type = NLMSG_DONE;
	memcpy(buf, &nl, sizeof(nl));
	memcpy(buf + NLMSG_HDRLEN, &cn, sizeof(cn));
	memcpy(buf + NLMSG_HDRLEN + sizeof(cn), &ev, sizeof(ev));
	return NLMSG_ALIGN(nl.nlmsg_len);
}

static void parser_takes_no_lies(void **state)
{
	uint8_t buf[1024] = { 0 };
	struct seen s = { .want = { 42, 43 }, .status = { -1, -1 } };
	size_t n = make_event(buf, 42, 0x300), m;
	struct nlmsghdr nl;
	(void)state;

	m = n + make_event(buf + n, 43, 9);
	proc_exits_parse(buf, m, on_exit_ev, &s);
	assert_int_equal(s.calls, 2);
	assert_int_equal(s.status[0], 0x300);
	assert_int_equal(s.status[1], 9);
	/* every cut of the first message: nothing read past the end */
	for (size_t cut = 0; cut < n; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);

		memcpy(copy, buf, cut);
		s.calls = 0;
		proc_exits_parse(copy, cut, on_exit_ev, &s);
		assert_int_equal(s.calls, 0);
		free(copy);
	}
	/* a header that claims more than there is, or less than itself */
	memcpy(&nl, buf, sizeof(nl));
	for (uint32_t lie = 0; lie < 4096; lie += 7) {
		nl.nlmsg_len = lie;
		memcpy(buf, &nl, sizeof(nl));
		s.calls = 0;
		proc_exits_parse(buf, n, on_exit_ev, &s);
		assert_true(s.calls <= 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(child_exits_are_seen),
		cmocka_unit_test(parser_takes_no_lies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
