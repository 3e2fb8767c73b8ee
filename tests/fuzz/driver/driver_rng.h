/* The replay drivers' pseudo-random numbers (splitmix64): deterministic,
 * so a failing run is the same run again. */
#ifndef CRYO_FUZZ_DRIVER_RNG_H
#define CRYO_FUZZ_DRIVER_RNG_H

#include <stdint.h>

static inline uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif
