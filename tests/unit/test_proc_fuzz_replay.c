/* Unit test: replays the proc parser fuzz target (tests/fuzz/
 * fuzz_proc_parsers.c) with deterministic mutations of real /proc files,
 * so every gcc build (and the ASan one) exercises the parsers on hostile
 * input without libFuzzer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "proc/procfs.h"

#include "../fuzz/fuzz_proc_parsers.c"

#define MUTATIONS 400
#define REPLAY_MAX (1u << 20)

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* One mutation of seed into out (room REPLAY_MAX): a few of byte flips,
 * interesting-byte stores, deletions, duplications, truncation. */
static size_t mutate(const uint8_t *seed, size_t n, uint8_t *out)
{
	static const uint8_t interesting[] = { '\n', ' ', ':', '-', '(', ')', '[', ']', '0',
					       '9', 'f', 0, 0xff, '\t', 'x' };
	size_t len = n < REPLAY_MAX ? n : REPLAY_MAX;
	int rounds = 1 + (int)(next() % 8);

	memcpy(out, seed, len);
	for (int r = 0; r < rounds && len; r++) {
		size_t pos = next() % len;
		switch (next() % 6) {
		case 0:
			out[pos] ^= (uint8_t)(1u << (next() % 8));
			break;
		case 1:
			out[pos] = interesting[next() % sizeof(interesting)];
			break;
		case 2: {  /* delete a run */
			size_t k = 1 + next() % 16;
			if (pos + k > len)
				k = len - pos;
			memmove(out + pos, out + pos + k, len - pos - k);
			len -= k;
			break;
		}
		case 3: {  /* duplicate a run */
			size_t k = 1 + next() % 32;
			if (pos + k > len)
				k = len - pos;
			if (len + k <= REPLAY_MAX) {
				memmove(out + pos + k, out + pos, len - pos);
				len += k;
			}
			break;
		}
		case 4:
			len = pos;
			break;
		case 5:  /* long run of digits: overflow attempts */
			for (size_t i = pos; i < len && i < pos + 24; i++)
				out[i] = '9';
			break;
		}
	}
	return len;
}

static void replay(int which, const char *seed, size_t n)
{
	uint8_t *in = malloc(REPLAY_MAX + 1);
	assert_non_null(in);
	/* The seed itself, then mutations. */
	in[0] = (uint8_t)which;
	memcpy(in + 1, seed, n);
	assert_int_equal(LLVMFuzzerTestOneInput(in, n + 1), 0);
	for (int i = 0; i < MUTATIONS; i++) {
		size_t len = mutate((const uint8_t *)seed, n, in + 1);
		in[0] = (uint8_t)which;
		assert_int_equal(LLVMFuzzerTestOneInput(in, len + 1), 0);
	}
	free(in);
}

static void replay_file(int which, const char *name)
{
	char *buf;
	size_t len;

	assert_int_equal(proc_read_file(0, name, &buf, &len), 0);
	if (len > 65536)
		len = 65536;   /* keep the run short: smaps of this process */
	replay(which, buf, len);
	free(buf);
}

static void fuzz_maps(void **state)
{
	(void)state;
	replay_file(FZ_MAPS, "maps");
	replay_file(FZ_MAPS, "smaps");
}

static void fuzz_status(void **state)
{
	(void)state;
	replay_file(FZ_STATUS, "status");
}

static void fuzz_stat(void **state)
{
	(void)state;
	replay_file(FZ_STAT, "stat");
}

static void fuzz_limits(void **state)
{
	(void)state;
	replay_file(FZ_LIMITS, "limits");
}

static void fuzz_mountinfo(void **state)
{
	(void)state;
	replay_file(FZ_MOUNTINFO, "mountinfo");
}

static void fuzz_auxv(void **state)
{
	(void)state;
	replay_file(FZ_AUXV, "auxv");
}

static void fuzz_fdinfo(void **state)
{
	char name[32];
	int efd = eventfd(3, 0);
	(void)state;
	assert_true(efd >= 0);
	snprintf(name, sizeof(name), "fdinfo/%d", efd);
	replay_file(FZ_FDINFO, name);
	replay_file(FZ_FDINFO, "fdinfo/0");
	close(efd);
}

static void fuzz_timers(void **state)
{
	static const char seed[] =
		"ID: 0\nsignal: 14/0000000000001234\nnotify: signal/pid.4242\nClockID: 1\n"
		"ID: 1\nsignal: 0/0000000000000000\nnotify: none/pid.4242\nClockID: 0\n"
		"ID: 2\nsignal: 10/00007ffd00000000\nnotify: signal/tid.4243\nClockID: 7\n";
	(void)state;
	replay(FZ_TIMERS, seed, sizeof(seed) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fuzz_maps),
		cmocka_unit_test(fuzz_status),
		cmocka_unit_test(fuzz_stat),
		cmocka_unit_test(fuzz_limits),
		cmocka_unit_test(fuzz_auxv),
		cmocka_unit_test(fuzz_mountinfo),
		cmocka_unit_test(fuzz_fdinfo),
		cmocka_unit_test(fuzz_timers),
	};
	/* Parsers log each rejected line; keep the replay quiet. */
	setenv("CRYO_LOG", "quiet", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
