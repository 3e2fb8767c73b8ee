#include "store/batch.h"
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS	4

struct page_batch {
	uint8_t *in;			/* BATCH_PAGES pages */
	uint8_t *out;			/* BATCH_PAGES slots of codec_bound(page) */
	size_t slot;
	uint64_t key[BATCH_PAGES];
	bool zero[BATCH_PAGES];
	uint32_t len[BATCH_PAGES];
	uint8_t used[BATCH_PAGES];
	size_t n;
	unsigned threads;
};

struct slice {
	struct page_batch *b;
	enum codec codec;
	size_t first, end;
};

int batch_new(struct page_batch **out)
{
	struct page_batch *b = calloc(1, sizeof(*b));
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (!b)
		return -ENOMEM;
	b->slot = codec_bound(STORE_PAGE_SIZE);
	b->in = malloc((size_t)BATCH_PAGES * STORE_PAGE_SIZE);
	b->out = malloc((size_t)BATCH_PAGES * b->slot);
	b->threads = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (unsigned)cpus;
	if (!b->in || !b->out) {
		batch_free(b);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

void batch_free(struct page_batch *b)
{
	if (!b)
		return;
	free(b->in);
	free(b->out);
	free(b);
}

bool batch_full(const struct page_batch *b)
{
	return b->n == BATCH_PAGES;
}

bool batch_empty(const struct page_batch *b)
{
	return b->n == 0;
}

void batch_add(struct page_batch *b, uint64_t key, const void *page)
{
	b->key[b->n] = key;
	b->zero[b->n] = page == NULL;
	if (page)
		memcpy(b->in + b->n * STORE_PAGE_SIZE, page, STORE_PAGE_SIZE);
	b->n++;
}

static void *compress_slice(void *arg)
{
	struct slice *sl = arg;
	struct page_batch *b = sl->b;

	for (size_t i = sl->first; i < sl->end; i++) {
		enum codec used;
		if (b->zero[i])
			continue;
		b->len[i] = (uint32_t)codec_compress(sl->codec, b->in + i * STORE_PAGE_SIZE,
						     STORE_PAGE_SIZE, b->out + i * b->slot, b->slot,
						     &used);
		b->used[i] = (uint8_t)used;
	}
	return NULL;
}

/* Split the batch over the cores; the calling thread takes the last part.
 * A thread that cannot be started leaves its part to the caller. */
static void compress_all(struct page_batch *b, enum codec c)
{
	pthread_t tid[MAX_THREADS];
	struct slice sl[MAX_THREADS];
	bool started[MAX_THREADS] = { false };
	unsigned t = b->n >= 64 ? b->threads : 1;
	size_t per = (b->n + t - 1) / t;

	for (unsigned i = 0; i < t; i++) {
		size_t first = i * per, end = first + per > b->n ? b->n : first + per;
		sl[i] = (struct slice){ b, c, first, end < first ? first : end };
		if (i + 1 < t)
			started[i] = pthread_create(&tid[i], NULL, compress_slice, &sl[i]) == 0;
	}
	compress_slice(&sl[t - 1]);
	for (unsigned i = 0; i + 1 < t; i++) {
		if (started[i])
			pthread_join(tid[i], NULL);
		else
			compress_slice(&sl[i]);
	}
}

int batch_flush(struct page_batch *b, enum codec c, batch_fn fn, void *arg)
{
	int r = 0;

	if (!b->n)
		return 0;
	compress_all(b, c);
	for (size_t i = 0; i < b->n && !r; i++)
		r = fn(arg, b->key[i], b->zero[i], b->zero[i] ? CODEC_RAW : b->used[i],
		       b->out + i * b->slot, b->zero[i] ? 0 : b->len[i]);
	b->n = 0;
	return r;
}
