/* Eager fill: the stored pages of a process written into it, before it
 * runs. The store's reads (index walk, pread, checksum, decompress) and
 * the writes into the target (process_vm_writev: a page fault per page in
 * the target) each take about half the time of a melt, so they run side
 * by side: a reader thread fills the next batches while the calling
 * thread writes the last one (a melt of 1 GiB read 420 ms and wrote
 * 380 ms, one after the other, before this).
 *
 *   reader:  batch k ──▶ slot k % SLOTS full ──▶ ...   (waits for a free slot)
 *   writer:  slot k % SLOTS full ──▶ write_runs ──▶ slot free ──▶ ...
 *
 * Only the reader touches the store while the pipe runs, only the writer
 * the target; a failure on either side stops both, and the first error
 * is returned. */
#define LOG_PREFIX "restore: "
#include "restore/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/fault.h"
#include "common/log.h"
#include "proc/mem.h"

#define SLOTS	3

/* Write the runs of buf worth writing (kinds: data, and zero pages when
 * write_zero) to the target at addr, in one process_vm_writev per run. */
static int write_runs(struct rst *r, uint64_t addr, const uint8_t *buf, const uint8_t *kinds,
		      size_t n, bool write_zero)
{
	for (size_t i = 0; i < n;) {
		size_t k = 0;
		int ret;

		while (i + k < n && (kinds[i + k] == STORE_PAGE_DATA ||
				     (write_zero && kinds[i + k] == STORE_PAGE_ZERO)))
			k++;
		if (!k) {
			i++;
			continue;
		}
		ret = fault_fire(FP_RESTORE_PAGES_FAIL);
		if (!ret)
			ret = proc_mem_write(r->hpid, addr + i * RST_PAGE, buf + i * RST_PAGE,
					     k * RST_PAGE, NULL);
		if (ret) {
			pr_err("write %zu pages at %#llx: %s", k,
			       (unsigned long long)(addr + i * RST_PAGE), strerror(-ret));
			return ret;
		}
		r->pages_written += k;
		i += k;
	}
	return 0;
}

/* Shared kinds have their contents in their object, made once. */
static bool filled_here(const Cryo__VmaEntry *v)
{
	return v->kind != CRYO__VMA_KIND__VMA_SPECIAL && v->kind != CRYO__VMA_KIND__VMA_FILE_SHARED &&
	       v->kind != CRYO__VMA_KIND__VMA_ANON_SHARED && v->kind != CRYO__VMA_KIND__VMA_SYSV_SHM;
}

/* Anonymous memory starts as zeros, so its zero pages are skipped; a zero
 * page over a file is not the file's data and is written. */
static bool writes_zero(const Cryo__VmaEntry *v)
{
	return v->kind == CRYO__VMA_KIND__VMA_FILE_PRIVATE;
}

static int read_batch(struct rst *r, const Cryo__VmaEntry *v, uint64_t off, size_t n,
		      uint8_t *buf, uint8_t *kinds)
{
	int ret = store_snap_read_pages(r->sn, STORE_KEY(r->space, (v->start >> 12) + off), n, buf,
					kinds);

	if (ret < 0)
		pr_err("pages %#llx+%zu of %s: %s", (unsigned long long)(v->start + off * RST_PAGE),
		       n, r->name, store_strerror(ret));
	return ret < 0 ? ret : 0;
}

int rst_fill_vma(struct rst *r, const Cryo__VmaEntry *v, uint8_t *buf, uint8_t *kinds)
{
	const uint64_t npages = (v->end - v->start) >> 12;

	if (!filled_here(v))
		return 0;
	for (uint64_t off = 0; off < npages;) {
		size_t n = npages - off < RST_FILL_BATCH ? (size_t)(npages - off) : RST_FILL_BATCH;
		uint64_t t0 = rst_now_ns(), t1;
		int ret = read_batch(r, v, off, n, buf, kinds);

		t1 = rst_now_ns();
		r->read_ns += t1 - t0;
		if (!ret)
			ret = write_runs(r, v->start + off * RST_PAGE, buf, kinds, n, writes_zero(v));
		r->write_ns += rst_now_ns() - t1;
		if (ret)
			return ret;
		off += n;
	}
	return 0;
}

uint64_t rst_fill_bytes(const struct rst *r)
{
	uint64_t b = 0;

	for (size_t i = 0; r->mm && i < r->mm->n_vmas; i++)	/* a zombie has none */
		if (filled_here(r->mm->vmas[i]))
			b += r->mm->vmas[i]->end - r->mm->vmas[i]->start;
	return b;
}

/* ---- the pipe ---- */

struct slot {
	uint8_t *buf, *kinds;
	const Cryo__VmaEntry *v;
	uint64_t off;
	size_t n;
	int ret;
	bool full;
};

struct pipe {
	struct rst *r;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct slot s[SLOTS];
	bool stop, done;		/* writer gave up; reader has no more */
	uint64_t read_ns;		/* the reader's, added to r at the end */
};

/* The batch after (*vi, *off) in vma order; false at the end. */
static bool next_batch(const struct rst *r, size_t *vi, uint64_t *off, size_t *n)
{
	for (; *vi < r->mm->n_vmas; (*vi)++, *off = 0) {
		const Cryo__VmaEntry *v = r->mm->vmas[*vi];
		uint64_t npages = (v->end - v->start) >> 12;

		if (!filled_here(v) || *off >= npages)
			continue;
		*n = npages - *off < RST_FILL_BATCH ? (size_t)(npages - *off) : RST_FILL_BATCH;
		return true;
	}
	return false;
}

static void *reader(void *arg)
{
	struct pipe *p = arg;
	size_t vi = 0, n = 0;
	uint64_t off = 0;

	for (size_t k = 0; next_batch(p->r, &vi, &off, &n); k++, off += n) {
		struct slot *s = &p->s[k % SLOTS];
		uint64_t t0;
		bool stop;
		int ret;

		pthread_mutex_lock(&p->mu);
		while (s->full && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		t0 = rst_now_ns();
		ret = read_batch(p->r, p->r->mm->vmas[vi], off, n, s->buf, s->kinds);
		p->read_ns += rst_now_ns() - t0;
		pthread_mutex_lock(&p->mu);
		*s = (struct slot){ s->buf, s->kinds, p->r->mm->vmas[vi], off, n, ret, true };
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		if (ret)
			break;
	}
	pthread_mutex_lock(&p->mu);
	p->done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* The writer's side, in the calling thread. */
static int write_all(struct pipe *p)
{
	for (size_t k = 0;; k++) {
		struct slot *s = &p->s[k % SLOTS];
		uint64_t t0;
		int ret;

		pthread_mutex_lock(&p->mu);
		while (!s->full && !p->done)
			pthread_cond_wait(&p->cv, &p->mu);
		pthread_mutex_unlock(&p->mu);
		if (!s->full)
			return 0;	/* done, and every batch written */
		if (s->ret)
			return s->ret;
		t0 = rst_now_ns();
		ret = write_runs(p->r, s->v->start + s->off * RST_PAGE, s->buf, s->kinds, s->n,
				 writes_zero(s->v));
		p->r->write_ns += rst_now_ns() - t0;
		if (ret)
			return ret;
		progress_add(p->r->o->progress, s->n * RST_PAGE);
		pthread_mutex_lock(&p->mu);
		s->full = false;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
}

int rst_fill_all(struct rst *r)
{
	struct pipe p = { .r = r, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	pthread_t t;
	int ret = 0;

	for (size_t i = 0; i < SLOTS && !ret; i++) {
		p.s[i].buf = malloc(RST_FILL_BATCH * RST_PAGE);
		p.s[i].kinds = malloc(RST_FILL_BATCH);
		if (!p.s[i].buf || !p.s[i].kinds)
			ret = -ENOMEM;
	}
	if (!ret && (ret = -pthread_create(&t, NULL, reader, &p)) == 0) {
		ret = write_all(&p);
		pthread_mutex_lock(&p.mu);
		p.stop = true;
		pthread_cond_broadcast(&p.cv);
		pthread_mutex_unlock(&p.mu);
		pthread_join(t, NULL);
		r->read_ns += p.read_ns;
	}
	for (size_t i = 0; i < SLOTS; i++) {
		free(p.s[i].buf);
		free(p.s[i].kinds);
	}
	return ret;
}
