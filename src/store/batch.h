/* A batch of pages waiting to be compressed: a transaction collects pages
 * here and compresses a whole batch on every core at once, then appends
 * them to the log in the order they were put (later puts of a key win). */
#ifndef CRYO_STORE_BATCH_H
#define CRYO_STORE_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/codec.h"

#define BATCH_PAGES	512	/* 2 MiB of input per batch */

struct page_batch;

/* The page as the log will store it; data valid during the callback. */
typedef int (*batch_fn)(void *arg, uint64_t key, bool zero, enum codec used,
			const void *data, uint32_t len);

int batch_new(struct page_batch **out);
void batch_free(struct page_batch *b);
bool batch_full(const struct page_batch *b);
bool batch_empty(const struct page_batch *b);
/* page NULL: a zero page (nothing to compress). */
void batch_add(struct page_batch *b, uint64_t key, const void *page);
/* Compress what is pending with codec c, then call fn for each page in
 * order; the batch is empty afterwards, also on error. */
int batch_flush(struct page_batch *b, enum codec c, batch_fn fn, void *arg);

#endif
