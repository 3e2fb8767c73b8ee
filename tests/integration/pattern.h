/* The page contents the workloads write and the test checks in snapshots:
 * shared so both sides agree. */
#ifndef CRYO_TESTS_PATTERN_H
#define CRYO_TESTS_PATTERN_H

#include <stdint.h>
#include <string.h>

#define INCR_ZERO 0xffffffffu	/* generation of a page dropped (reads zero) */

static inline uint32_t pat(uint64_t i, uint32_t seed)
{
	return (uint32_t)(i * 2654435761u) ^ seed;
}

/* Page number i of a workload's array at generation g. */
static inline void incr_page(uint8_t *p, uint32_t i, uint32_t g)
{
	for (size_t k = 0; k < 4096; k += 4) {
		uint32_t v = pat(i * 1024 + k / 4, g * 977 + 5);
		memcpy(p + k, &v, 4);
	}
}

static inline int incr_page_ok(const uint8_t *p, uint32_t i, uint32_t g)
{
	uint8_t want[4096];

	if (g == INCR_ZERO)
		memset(want, 0, sizeof(want));
	else
		incr_page(want, i, g);
	return !memcmp(p, want, sizeof(want));
}

#endif
