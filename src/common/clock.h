/* Clocks in nanoseconds: wall time for what is recorded (commit times,
 * segment ages), monotonic time for what is measured (latencies). */
#ifndef CRYO_COMMON_CLOCK_H
#define CRYO_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t wall_ns(void) { return clock_ns(CLOCK_REALTIME); }
static inline uint64_t mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

#endif
