/* Progress of a long operation (a full snapshot, an eager melt), for a
 * caller that shows it (cryo's bar on a terminal). The library adds to
 * total what it plans to move and to done what it moved, in bytes, and
 * calls show after each step; show decides how often to draw. Owned by
 * the caller; a NULL progress or show does nothing. */
#ifndef CRYO_COMMON_PROGRESS_H
#define CRYO_COMMON_PROGRESS_H

#include <stdint.h>

struct progress {
	void (*show)(void *arg, uint64_t done, uint64_t total);
	void *arg;
	uint64_t done, total;
};

static inline void progress_plan(struct progress *p, uint64_t bytes)
{
	if (p)
		p->total += bytes;
}

static inline void progress_add(struct progress *p, uint64_t bytes)
{
	if (!p)
		return;
	p->done += bytes;
	if (p->show)
		p->show(p->arg, p->done, p->total);
}

#endif
