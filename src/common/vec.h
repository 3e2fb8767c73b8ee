/* Growing a malloc'd array by doubling: the one pattern every list in
 * cryo uses, written once. */
#ifndef CRYO_COMMON_VEC_H
#define CRYO_COMMON_VEC_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* Make room for at least `need` elements of `elem` bytes in *v (capacity
 * *cap, doubled from 16). 0, or -ENOMEM with *v untouched. */
static inline int vec_reserve(void **v, size_t *cap, size_t need, size_t elem)
{
	size_t nc = *cap ? *cap : 16;
	void *nv;

	if (need <= *cap)
		return 0;
	while (nc < need)
		nc *= 2;
	if (nc > SIZE_MAX / elem)
		return -ENOMEM;
	nv = realloc(*v, nc * elem);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = nc;
	return 0;
}

#endif
