/* Split a loop of n independent items over a few threads: the calling
 * thread takes the last part; a thread that cannot be started leaves its
 * part to the caller. Every part is done when par_for returns. Callers must
 * not fork while it runs (glibc's malloc locks), which returning ensures. */
#ifndef CRYO_COMMON_PAR_H
#define CRYO_COMMON_PAR_H

#include <stddef.h>

#define PAR_MAX_THREADS 4

typedef void (*par_fn)(void *arg, size_t first, size_t end);

/* How many threads are worth it here: online cores, 1..PAR_MAX_THREADS. */
unsigned par_threads(void);

/* fn(arg, first, end) over [0, n) in up to `threads` parts; below min_per
 * items per thread, fewer threads. */
void par_for(size_t n, unsigned threads, size_t min_per, par_fn fn, void *arg);

#endif
