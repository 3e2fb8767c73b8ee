/* Runs fuzz_ctl's LLVMFuzzerTestOneInput without libFuzzer, so the default
 * test run throws mangled control-socket requests at cryod's handler:
 * valid requests packed with protobuf-c, then bytes flipped, cut, grown.
 *
 *   driver_ctl [-n RUNS]   RUNS inputs (default 20000, or CRYO_FUZZ_RUNS)
 *   driver_ctl FILE...     each file as one input */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ctl.h"

#include "driver_rng.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static size_t seed(unsigned k, uint8_t *buf)
{
	static const char *const ops[] = { "ps", "snap", "freeze", "nope" };
	static const char *const names[] = { "root-a", "mine", "", "x/y" };
	Cryo__CtlRequest r = CRYO__CTL_REQUEST__INIT;

	buf[0] = (uint8_t)(k >> 5);	/* peer: root or a user */
	r.op = (char *)ops[k % 4];
	if (k & 2)
		r.name = (char *)names[(k >> 2) % 4];
	r.has_weak = k & 4;
	r.weak = k & 8;
	return 1 + cryo__ctl_request__pack(&r, buf + 1);
}

static int run_file(const char *path)
{
	static uint8_t buf[CTL_MSG_MAX + 16];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return 1;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t buf[512];
	unsigned long runs = getenv("CRYO_FUZZ_RUNS") ? strtoul(getenv("CRYO_FUZZ_RUNS"), NULL, 10)
						      : 20000;
	uint64_t s = 42;

	if (argc > 1 && strcmp(argv[1], "-n")) {
		for (int i = 1; i < argc; i++)
			if (run_file(argv[i]))
				return 1;
		return 0;
	}
	if (argc > 2)
		runs = strtoul(argv[2], NULL, 10);
	for (unsigned long i = 0; i < runs; i++) {
		size_t n = seed((unsigned)rnd(&s), buf);
		unsigned edits = (unsigned)(rnd(&s) % 6);

		for (unsigned e = 0; e < edits; e++) {
			uint64_t x = rnd(&s);

			switch (x % 3) {
			case 0:	/* flip a byte */
				buf[1 + (x >> 8) % (n > 1 ? n - 1 : 1)] ^= (uint8_t)(x >> 32);
				break;
			case 1:	/* cut */
				n = 1 + (x >> 8) % n;
				break;
			default:	/* grow with noise */
				while (n < sizeof(buf) && (x >>= 7))
					buf[n++] = (uint8_t)x;
			}
		}
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("driver_ctl: %lu inputs, no crash\n", runs);
	return 0;
}
