/* argv[1] MiB of anonymous memory, every page written with a pattern;
 * used by the mid-snapshot kill and fault tests. Checks the pattern on
 * SIGUSR2. */
#include "zdtm.h"

#include <stdint.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64, len = mib << 20;
	uint64_t *m;

	zdtm_block_usr2();
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	zdtm_check(m != MAP_FAILED, "mmap %zu MiB", mib);
	for (size_t i = 0; i < len / 8; i++)
		m[i] = i * 0x9E3779B97F4A7C15ull;
	zdtm_say("map big 0x%lx %zu\n", (unsigned long)m, mib);
	zdtm_ready_wait();
	for (size_t i = 0; i < len / 8; i++)
		zdtm_check(m[i] == i * 0x9E3779B97F4A7C15ull, "word %zu changed", i);
	zdtm_pass();
}
