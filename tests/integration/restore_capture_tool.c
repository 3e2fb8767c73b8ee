/* TEST-ONLY: `restore_capture_tool STORE NAME PID [kill]`: capture PID into
 * STORE as a snapshot of NAME with the test-only builder (restore_capture.c),
 * for the shell tests of `cryo melt` until `cryo freeze` exists here. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "restore_capture.h"

int main(int argc, char **argv)
{
	struct store *s;
	uint64_t no = 0;
	int ret;

	if (argc < 4)
		return 2;
	ret = store_open(argv[1], NULL, &s);
	if (ret) {
		fprintf(stderr, "open %s: %s\n", argv[1], store_strerror(ret));
		return 1;
	}
	ret = rtest_capture(s, argv[2], atoi(argv[3]), argc > 4 && !strcmp(argv[4], "kill"), &no);
	store_close(s);
	if (ret) {
		fprintf(stderr, "capture %s: %s\n", argv[3], strerror(-ret));
		return 1;
	}
	printf("%llu\n", (unsigned long long)no);
	return 0;
}
