#include "store/batch.h"
#include "store/store.h"
#include "common/par.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

struct compress_job {
	struct page_batch *b;
	enum codec codec;
};

int batch_new(struct page_batch **out)
{
	struct page_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->slot = codec_bound(STORE_PAGE_SIZE);
	b->in = malloc((size_t)BATCH_PAGES * STORE_PAGE_SIZE);
	b->out = malloc((size_t)BATCH_PAGES * b->slot);
	b->threads = par_threads();
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

static void compress_part(void *arg, size_t first, size_t end)
{
	struct compress_job *j = arg;
	struct page_batch *b = j->b;

	for (size_t i = first; i < end; i++) {
		enum codec used;
		if (b->zero[i])
			continue;
		b->len[i] = (uint32_t)codec_compress(j->codec, b->in + i * STORE_PAGE_SIZE,
						     STORE_PAGE_SIZE, b->out + i * b->slot, b->slot,
						     &used);
		b->used[i] = (uint8_t)used;
	}
}

/* Split the batch over the cores (small batches are not worth a thread). */
static void compress_all(struct page_batch *b, enum codec c)
{
	struct compress_job j = { b, c };

	par_for(b->n, b->n >= 64 ? b->threads : 1, 1, compress_part, &j);
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
