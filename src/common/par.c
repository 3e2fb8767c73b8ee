#include "common/par.h"

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

unsigned par_threads(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	return cpus < 1 ? 1 : cpus > PAR_MAX_THREADS ? PAR_MAX_THREADS : (unsigned)cpus;
}

struct part {
	par_fn fn;
	void *arg;
	size_t first, end;
};

static void *run_part(void *p)
{
	struct part *pt = p;

	pt->fn(pt->arg, pt->first, pt->end);
	return NULL;
}

void par_for(size_t n, unsigned threads, size_t min_per, par_fn fn, void *arg)
{
	pthread_t tid[PAR_MAX_THREADS];
	struct part pt[PAR_MAX_THREADS];
	bool started[PAR_MAX_THREADS] = { false };
	unsigned t = threads < 1 ? 1 : threads > PAR_MAX_THREADS ? PAR_MAX_THREADS : threads;
	size_t per;

	if (min_per && n / min_per < t)
		t = n / min_per ? (unsigned)(n / min_per) : 1;
	per = (n + t - 1) / t;
	for (unsigned i = 0; i < t; i++) {
		size_t first = i * per, end = first + per > n ? n : first + per;

		pt[i] = (struct part){ fn, arg, first > n ? n : first, end };
		if (i + 1 < t)
			started[i] = pthread_create(&tid[i], NULL, run_part, &pt[i]) == 0;
	}
	run_part(&pt[t - 1]);
	for (unsigned i = 0; i + 1 < t; i++) {
		if (started[i])
			pthread_join(tid[i], NULL);
		else
			run_part(&pt[i]);
	}
}
