/* Unit tests: cryod's scheduling policy (src/daemon/sched.h), and the
 * idle look at a real sleeping and a real spinning process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/sched.h"

#define S 1000000000ull

static const struct sched_policy pol = { .interval_ns = 60 * S, .max_age_ns = 600 * S };
static const struct sched_look asleep = { .all_asleep = true, .cpu_ticks = 100 };
static const struct sched_look ran = { .all_asleep = true, .cpu_ticks = 101 };
static const struct sched_look running = { .all_asleep = false, .cpu_ticks = 100 };

static void not_due_does_nothing(void **state)
{
	(void)state;
	assert_int_equal(sched_decide(&pol, 1000 * S, 990 * S, &asleep, &asleep, true, SCHED_NONE),
			 SCHED_NONE);
	assert_int_equal(sched_decide(&pol, 1000 * S, 990 * S, &running, &asleep, true, SCHED_NONE),
			 SCHED_NONE);
}

static void due_and_idle_is_weak(void **state)
{
	(void)state;
	assert_int_equal(sched_decide(&pol, 1000 * S, 900 * S, &asleep, &asleep, true, SCHED_NONE),
			 SCHED_WEAK);
	/* never snapshotted: due at once */
	assert_int_equal(sched_decide(&pol, 1000 * S, 0, &asleep, &asleep, true, SCHED_NONE),
			 SCHED_WEAK);
}

static void due_and_busy_is_skipped(void **state)
{
	(void)state;
	/* a thread runs now */
	assert_int_equal(sched_decide(&pol, 1000 * S, 900 * S, &running, &asleep, true, SCHED_NONE),
			 SCHED_SKIP_BUSY);
	/* asleep now, but it used CPU since the last look */
	assert_int_equal(sched_decide(&pol, 1000 * S, 900 * S, &ran, &asleep, true, SCHED_NONE),
			 SCHED_SKIP_BUSY);
	/* no previous look: cannot tell yet */
	assert_int_equal(sched_decide(&pol, 1000 * S, 900 * S, &asleep, &asleep, false, SCHED_NONE),
			 SCHED_NONE);
}

static void too_old_is_forced(void **state)
{
	(void)state;
	assert_int_equal(sched_decide(&pol, 1000 * S, 399 * S, &running, &asleep, true, SCHED_NONE),
			 SCHED_FORCE);
	assert_int_equal(sched_decide(&pol, 1000 * S, 399 * S, &asleep, &asleep, false, SCHED_NONE),
			 SCHED_FORCE);
}

static void signals_ask_now(void **state)
{
	(void)state;
	/* SIGUSR1: weak now, even if not due; still only when idle */
	assert_int_equal(sched_decide(&pol, 1000 * S, 999 * S, &asleep, &asleep, true, SCHED_WEAK),
			 SCHED_WEAK);
	assert_int_equal(sched_decide(&pol, 1000 * S, 999 * S, &running, &asleep, true, SCHED_WEAK),
			 SCHED_SKIP_BUSY);
	/* SIGUSR2: force now, whatever it does */
	assert_int_equal(sched_decide(&pol, 1000 * S, 999 * S, &running, &asleep, true, SCHED_FORCE),
			 SCHED_FORCE);
}

static void look_at_real_processes(void **state)
{
	struct sched_look a, b;
	pid_t sleeper, spinner;
	int st;

	(void)state;
	sleeper = fork();
	if (!sleeper) {
		pause();
		_exit(0);
	}
	spinner = fork();
	if (!spinner)
		for (volatile unsigned long x = 0;; x++)
			;
	usleep(300000);
	assert_int_equal(sched_look(sleeper, &a), 0);
	usleep(100000);
	assert_int_equal(sched_look(sleeper, &b), 0);
	assert_true(a.all_asleep && b.all_asleep && a.cpu_ticks == b.cpu_ticks);
	assert_int_equal(sched_look(spinner, &a), 0);
	usleep(100000);
	assert_int_equal(sched_look(spinner, &b), 0);
	assert_true(b.cpu_ticks > a.cpu_ticks);
	kill(sleeper, SIGKILL);
	kill(spinner, SIGKILL);
	waitpid(sleeper, &st, 0);
	waitpid(spinner, &st, 0);
	assert_int_equal(sched_look(sleeper, &a), -ESRCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(not_due_does_nothing),
		cmocka_unit_test(due_and_idle_is_weak),
		cmocka_unit_test(due_and_busy_is_skipped),
		cmocka_unit_test(too_old_is_forced),
		cmocka_unit_test(signals_ask_now),
		cmocka_unit_test(look_at_real_processes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
