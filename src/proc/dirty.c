#define LOG_PREFIX "proc: "
#include "proc/dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/csum.h"
#include "common/log.h"
#include "proc/inject.h"
#include "proc/mem.h"

#define SCAN_VEC 512
#define HASH_BATCH 256   /* pages read per process_vm_readv */

static uint64_t page_size(void)
{
	return (uint64_t)sysconf(_SC_PAGESIZE);
}

struct scan_masks {
	uint64_t mask, inverted, anyof, ret;
};

static long pm_scan(int pmfd, pid_t pid, uint64_t flags, uint64_t start, uint64_t end,
		    const struct scan_masks *k, struct page_region *vec, uint64_t *walk_end);

/* A growing list of runs; touching runs merge. */
struct runs {
	struct proc_range *r;
	size_t n, cap;
};

static int append_run(struct runs *l, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	if (l->n && l->r[l->n - 1].end == start) {
		l->r[l->n - 1].end = end;
		return 0;
	}
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct proc_range *nr = realloc(l->r, nc * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		l->r = nr;
		l->cap = nc;
	}
	l->r[l->n].start = start;
	l->r[l->n].end = end;
	l->n++;
	return 0;
}


/* Does PAGEMAP_SCAN's quick written-page walk (category and return mask
 * PAGE_IS_WRITTEN, nothing else) report the pages that have no PTE: one
 * whose page table exists (a page dropped) and one under a page table that
 * does not (never touched, or freed with it)? Kernels with the fix for
 * uffd-wp holes do; then that walk, about half the cost of the general
 * one, also finds every page gone since the last scan. Tried on a mapping
 * of our own (a uffd of ours: user faults only, no privilege). */
static bool scan_reports_holes(void)
{
	const uint64_t huge = 2ull << 20, len = 3 * huge;
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	struct scan_masks k = { .mask = PAGE_IS_WRITTEN, .ret = PAGE_IS_WRITTEN };
	struct page_region vec[4];
	uint64_t b, walk_end = 0;
	bool yes = false;
	uint8_t *m = MAP_FAILED;
	int uffd, pmfd = -1;
	long n;

	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (uffd < 0)
		return false;
	if (ioctl(uffd, UFFDIO_API, &api) || !(api.features & UFFD_FEATURE_WP_ASYNC))
		goto out;
	/* A fresh mapping: no page table under its middle 2 MiB block. */
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (m == MAP_FAILED)
		goto out;
	b = ((uint64_t)(uintptr_t)m + huge - 1) & ~(huge - 1);
	{
		struct uffdio_register reg = {
			.range = { .start = (uint64_t)(uintptr_t)m, .len = len },
			.mode = UFFDIO_REGISTER_MODE_WP,
		};
		uint8_t *t = (uint8_t *)(uintptr_t)(b + huge);

		if (ioctl(uffd, UFFDIO_REGISTER, &reg))
			goto out;
		/* after the block: a page present, the next one dropped */
		t[0] = t[4096] = 1;
		if (madvise(t + 4096, 4096, MADV_DONTNEED))
			goto out;
	}
	pmfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pmfd < 0)
		goto out;
	n = pm_scan(pmfd, getpid(), 0, b, b + huge + 2 * 4096, &k, vec, &walk_end);
	yes = n == 1 && vec[0].start == b && vec[0].end == b + huge + 2 * 4096;
out:
	if (pmfd >= 0)
		close(pmfd);
	if (m != MAP_FAILED)
		munmap(m, len);
	close(uffd);
	return yes;
}

int proc_dirty_open(struct proc_ctl *ctl, struct proc_dirty **out)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct proc_dirty *d;
	char path[64];
	int ret;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->pid = ctl->pid;
	d->uffd = d->pagemap_fd = -1;
	ret = proc_remote_userfaultfd(ctl, O_CLOEXEC | O_NONBLOCK, &d->uffd);
	if (ret)
		goto fail;
	api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
	if (ioctl(d->uffd, UFFDIO_API, &api)) {
		ret = errno == EINVAL ? -ENOTSUP : -errno;
		pr_err("%d: UFFDIO_API with WP_ASYNC: %s", (int)ctl->pid, strerror(errno));
		goto fail;
	}
	d->features = api.features;
	if (!(api.features & UFFD_FEATURE_WP_ASYNC)) {
		ret = -ENOTSUP;
		goto fail;
	}
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)ctl->pid);
	d->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (d->pagemap_fd < 0) {
		ret = -errno;
		pr_err("open %s: %s", path, strerror(-ret));
		goto fail;
	}
	d->holes_reported = scan_reports_holes();
	*out = d;
	return 0;
fail:
	proc_dirty_close(d);
	return ret;
}

void proc_dirty_close(struct proc_dirty *d)
{
	if (!d)
		return;
	/* Closing the uffd unregisters every range in the target. */
	if (d->uffd >= 0)
		close(d->uffd);
	if (d->pagemap_fd >= 0)
		close(d->pagemap_fd);
	free(d->r);
	free(d);
}

static int add_range(struct proc_dirty *d, uint64_t start, uint64_t end, bool file)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->r[i].start < end && start < d->r[i].end) {
			/* Overlap: widen the known one. */
			if (start < d->r[i].start)
				d->r[i].start = start;
			if (end > d->r[i].end)
				d->r[i].end = end;
			d->r[i].file |= file;
			return 0;
		}

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		struct proc_dirty_range *nr = realloc(d->r, cap * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		d->r = nr;
		d->cap = cap;
	}
	for (i = d->n; i > 0 && d->r[i - 1].start > start; i--)
		d->r[i] = d->r[i - 1];
	d->r[i].start = start;
	d->r[i].end = end;
	d->r[i].file = file;
	d->n++;
	return 0;
}

static int scan_one(struct proc_dirty *d, uint64_t start, uint64_t end, bool file, bool holes,
		    struct page_region *vec, struct runs *w, struct runs *gone);

/* Write-protect the populated pages of a freshly registered range (a scan
 * whose answer is dropped), not the whole range with UFFDIO_WRITEPROTECT:
 * with WP_UNPOPULATED that plants a marker in every empty PTE, i.e. page
 * tables for the whole range -- 40 GiB for ASan's 20 TiB shadow. Empty
 * PTEs need no marker: a first write faults in a page without the WP bit,
 * which the next scan reports as written. */
static int protect_populated(struct proc_dirty *d, uint64_t start, uint64_t end)
{
	struct page_region *vec = malloc(2 * SCAN_VEC * sizeof(*vec));
	struct runs w = { 0 }, gone = { 0 };
	int ret = -ENOMEM;

	if (vec)
		ret = scan_one(d, start, end, false, false, vec, &w, &gone);
	free(w.r);
	free(gone.r);
	free(vec);
	return ret;
}

/* quiet: the caller decides whether a failure is one (a racing unmap). */
static int register_range(struct proc_dirty *d, uint64_t start, uint64_t end, bool file,
			  int quiet)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = end - start },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	int ret;

	if (end <= start || (start | end) % page_size())
		return -EINVAL;
	if (ioctl(d->uffd, UFFDIO_REGISTER, &reg)) {
		ret = -errno;
		if (quiet)
			return ret;
		pr_err("%d: UFFDIO_REGISTER %#llx-%#llx: %s", (int)d->pid,
		       (unsigned long long)start, (unsigned long long)end, strerror(-ret));
		return ret;
	}
	ret = protect_populated(d, start, end);
	if (ret) {
		struct uffdio_range rg = reg.range;
		pr_err("%d: write-protect %#llx-%#llx: %s", (int)d->pid,
		       (unsigned long long)start, (unsigned long long)end, strerror(-ret));
		(void)ioctl(d->uffd, UFFDIO_UNREGISTER, &rg);
		return ret;
	}
	ret = add_range(d, start, end, file);
	if (ret) {
		struct uffdio_range rg = reg.range;
		(void)ioctl(d->uffd, UFFDIO_UNREGISTER, &rg);
	}
	return ret;
}

int proc_dirty_register(struct proc_dirty *d, uint64_t start, uint64_t end)
{
	return register_range(d, start, end, false, 0);
}

/* Which mappings are worth tracking: private memory, whatever its
 * protection now. A mapping read-only at every snapshot may still be
 * written in between (mprotect to writable, write, back: a JIT's W^X
 * code): registered, its pages keep their WP bit through mprotect and
 * the write is seen; unregistered, it would never be read again. Kernel
 * special mappings ([vvar], [vsyscall], ...) and device/PFN maps cannot
 * be registered; named anonymous memory ([anon:NAME]) is the process's. */
static bool trackable(const struct proc_vma *v)
{
	/* Shared memory is saved whole (it is not the process's alone), and
	 * here a write-protected shared page took a fault on every write,
	 * not only the first: 98% slower (bench_track). */
	if (v->shared)
		return false;
	if (v->special && strcmp(v->path, "[heap]") && strcmp(v->path, "[stack]") &&
	    strncmp(v->path, "[anon:", 6))
		return false;
	if (v->has_smaps && (v->vmflags & (PROC_VMF_IO | PROC_VMF_PFNMAP)))
		return false;
	return true;
}

/* A private mapping of a file: its pages are the file's until copied.
 * Asking which pages are the file's looks up each page's struct page
 * (15 times the cost of the walk here): only where it can be so. */
static bool file_range(const struct proc_vma *v)
{
	return v->inode != 0 && !v->special;
}

int proc_dirty_register_maps(struct proc_dirty *d, const struct proc_maps *m,
			     struct proc_range **addedp, size_t *naddedp, unsigned flags)
{
	struct proc_range *added = NULL;
	size_t nadded = 0;
	int ret = 0;

	/* smaps' "uw" flag (VM_UFFD_WP) is the truth about what is
	 * registered: it survives the kernel merging or splitting VMAs, and
	 * a mapping unmapped and mapped again at the same place loses it. */
	for (size_t i = 0; i < m->n; i++)
		if (!m->v[i].has_smaps) {
			pr_err("%d: register_maps needs smaps (VmFlags)", (int)d->pid);
			return -EINVAL;
		}
	if (addedp) {
		added = calloc(m->n ? m->n : 1, sizeof(*added));
		if (!added)
			return -ENOMEM;
	}
	d->n = 0;
	for (size_t i = 0; i < m->n; i++) {
		const struct proc_vma *v = &m->v[i];

		if (!trackable(v))
			continue;
		if (!(v->vmflags & PROC_VMF(UW))) {
			ret = register_range(d, v->start, v->end, file_range(v),
					     flags & PROC_DIRTY_RUNNING);
			if (ret && (flags & PROC_DIRTY_RUNNING) && (ret == -EINVAL || ret == -ENOMEM ||
								ret == -ENOENT)) {
				ret = 0;
				continue;
			}
			if (ret) {
				if (flags & PROC_DIRTY_RUNNING)
					pr_err("%d: UFFDIO_REGISTER %#llx-%#llx: %s", (int)d->pid,
					       (unsigned long long)v->start,
					       (unsigned long long)v->end, strerror(-ret));
				goto out;
			}
			/* register_range recorded it */
			if (added) {
				added[nadded].start = v->start;
				added[nadded].end = v->end;
			}
			nadded++;
			continue;
		}
		ret = add_range(d, v->start, v->end, file_range(v));
		if (ret)
			goto out;
	}
out:
	if (ret) {
		free(added);
		return ret;
	}
	if (addedp) {
		*addedp = added;
		*naddedp = nadded;
	}
	return 0;
}

static long pm_scan(int pmfd, pid_t pid, uint64_t flags, uint64_t start, uint64_t end,
		    const struct scan_masks *k, struct page_region *vec, uint64_t *walk_end)
{
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.flags = flags | PM_SCAN_CHECK_WPASYNC,
		.start = start,
		.end = end,
		.vec = (uint64_t)(uintptr_t)vec,
		.vec_len = SCAN_VEC,
		.category_mask = k->mask,
		.category_inverted = k->inverted,
		.category_anyof_mask = k->anyof,
		.return_mask = k->ret,
	};
	long r = ioctl(pmfd, PAGEMAP_SCAN, &a);

	if (r < 0) {
		r = -errno;
		if (r == -EPERM)
			return r;	/* not WP-registered: the caller's case */
		pr_err("%d: PAGEMAP_SCAN %#llx-%#llx: %s", (int)pid, (unsigned long long)start,
		       (unsigned long long)end, strerror((int)-r));
		return r;
	}
	if (a.walk_end <= start || a.walk_end > end)
		return -EIO;
	*walk_end = a.walk_end;
	return r;
}

/* Pass 2 over a run pass 1 found: re-protect the pages in it that are
 * populated and written, and report them in w, or, in a file range, in
 * gone if they are the file's page (what a private mapping shows until it
 * is copied; protected too, so no later scan looks at it again). With
 * holes, the rest of the run goes to gone too: pages without a PTE. Only
 * populated pages are protected: a WP scan marks an empty PTE too, which
 * costs page tables over holes (64 GiB of them = 128 MiB). */
static int protect_written(struct proc_dirty *d, uint64_t s, uint64_t e, bool file, bool holes,
			   struct page_region *vec, struct runs *w, struct runs *gone)
{
	struct scan_masks k = { .mask = PAGE_IS_WRITTEN,
				.anyof = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
				.ret = PAGE_IS_WRITTEN | (file ? PAGE_IS_FILE : 0) };

	while (s < e) {
		uint64_t walk_end = 0, at = s;
		long r = pm_scan(d->pagemap_fd, d->pid, PM_SCAN_WP_MATCHING, s, e, &k, vec, &walk_end);
		int ret = 0;

		if (r < 0)
			return (int)r;
		for (long i = 0; i < r && !ret; i++) {
			if (holes)
				ret = append_run(gone, at, vec[i].start);
			if (!ret)
				ret = append_run(vec[i].categories & PAGE_IS_FILE ? gone : w,
						 vec[i].start, vec[i].end);
			at = vec[i].end;
		}
		if (!ret && holes)
			ret = append_run(gone, at, walk_end);
		if (ret)
			return ret;
		s = walk_end;
	}
	return 0;
}

/* Written pages of [start, end), re-protected, to w; a file's pages found
 * in a file range to gone; with holes (the process stopped), also every
 * page without a PTE.
 *
 * Pass 1 walks every page table of the range once and returns only what
 * is not write-protected: written pages and pages without a PTE. The quick
 * walk (written, nothing else) does that in about half the time of the
 * general one; it finds holes under missing page tables only on kernels
 * that report them (d->holes_reported), so without that, a scan that wants
 * holes asks the general walk for "written or not present" instead, and
 * reads the holes from its categories. Pass 2 looks only at what pass 1
 * returned. A page written between the passes outside pass 1's runs keeps
 * no WP bit and is reported by the next scan: nothing is lost. */
static int scan_one(struct proc_dirty *d, uint64_t start, uint64_t end, bool file, bool holes,
		    struct page_region *vec, struct runs *w, struct runs *gone)
{
	struct page_region *vec2 = vec + SCAN_VEC;
	bool general = holes && !d->holes_reported;
	struct scan_masks quick = { .mask = PAGE_IS_WRITTEN, .ret = PAGE_IS_WRITTEN },
			  full = { .inverted = PAGE_IS_PRESENT,
				   .anyof = PAGE_IS_PRESENT | PAGE_IS_WRITTEN,
				   .ret = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_WRITTEN };

	while (start < end) {
		uint64_t walk_end = 0;
		long r = pm_scan(d->pagemap_fd, d->pid, 0, start, end, general ? &full : &quick,
				 vec, &walk_end);
		int ret = 0;

		if (r < 0)
			return (int)r;
		for (long i = 0; i < r && !ret; i++) {
			uint64_t c = vec[i].categories;

			if (general && !(c & (PAGE_IS_PRESENT | PAGE_IS_SWAPPED)))
				ret = append_run(gone, vec[i].start, vec[i].end);
			else if (!general || (c & PAGE_IS_WRITTEN))
				ret = protect_written(d, vec[i].start, vec[i].end, file, holes, vec2, w,
						      gone);
			/* else swapped and protected (or a marker): unchanged */
		}
		if (ret)
			return ret;
		start = walk_end;
	}
	return 0;
}

int proc_dirty_scan_found(struct proc_dirty *d, uint64_t start, uint64_t end, unsigned flags,
			  struct proc_dirty_found *f)
{
	struct runs w = { 0 }, gone = { 0 }, fresh = { 0 };
	struct page_region *vec;
	int ret = 0;

	memset(f, 0, sizeof(*f));
	vec = malloc(2 * SCAN_VEC * sizeof(*vec));
	if (!vec)
		return -ENOMEM;
	for (size_t i = 0; i < d->n; i++) {
		uint64_t s = d->r[i].start > start ? d->r[i].start : start;
		uint64_t e = d->r[i].end < end ? d->r[i].end : end;
		size_t nw = w.n, ngone = gone.n;

		if (s >= e)
			continue;
		ret = scan_one(d, s, e, d->r[i].file, flags & PROC_DIRTY_GONE, vec, &w, &gone);
		if (ret == -EPERM) {
			/* A mapping replaced by one just like it (same place,
			 * size, rights: smaps cannot tell) is not registered:
			 * register it; all of it is new. */
			w.n = nw;
			gone.n = ngone;
			ret = register_range(d, s, e, d->r[i].file, 0);
			if (!ret)
				ret = append_run(&fresh, s, e);
		}
		if (ret)
			break;
	}
	free(vec);
	if (ret) {
		free(w.r);
		free(gone.r);
		free(fresh.r);
		return ret;
	}
	f->written = w.r;
	f->nwritten = w.n;
	f->gone = gone.r;
	f->ngone = gone.n;
	f->fresh = fresh.r;
	f->nfresh = fresh.n;
	return 0;
}

void proc_dirty_found_free(struct proc_dirty_found *f)
{
	free(f->written);
	free(f->gone);
	free(f->fresh);
	memset(f, 0, sizeof(*f));
}

int proc_dirty_scan(struct proc_dirty *d, uint64_t start, uint64_t end,
		    struct proc_range **runsp, size_t *np)
{
	struct proc_dirty_found f;
	struct runs all = { 0 };
	size_t i = 0, k = 0;
	int ret = proc_dirty_scan_found(d, start, end, 0, &f);

	if (ret)
		return ret;
	/* both lists ascend: merge them */
	while (!ret && (i < f.nwritten || k < f.nfresh)) {
		if (k == f.nfresh || (i < f.nwritten && f.written[i].start < f.fresh[k].start)) {
			ret = append_run(&all, f.written[i].start, f.written[i].end);
			i++;
		} else {
			ret = append_run(&all, f.fresh[k].start, f.fresh[k].end);
			k++;
		}
	}
	proc_dirty_found_free(&f);
	if (ret) {
		free(all.r);
		return ret;
	}
	*runsp = all.r;
	*np = all.n;
	return 0;
}

int proc_hash_pages(pid_t pid, uint64_t start, size_t npages, uint64_t *hashes)
{
	uint64_t psz = page_size();
	uint64_t *pm;
	uint8_t *buf;
	int ret = 0;

	pm = malloc(HASH_BATCH * sizeof(*pm));
	buf = malloc(HASH_BATCH * psz);
	if (!pm || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t base = 0; base < npages; base += HASH_BATCH) {
		size_t cnt = npages - base < HASH_BATCH ? npages - base : HASH_BATCH;
		struct proc_mem_range rr[HASH_BATCH];
		size_t nr = 0;

		ret = proc_pagemap_read(pid, start + base * psz, cnt, pm);
		if (ret)
			goto out;
		/* Read only populated pages: touching the others would
		 * allocate them in the target. */
		for (size_t i = 0; i < cnt; i++)
			if (proc_pm_populated(pm[i])) {
				rr[nr].addr = start + (base + i) * psz;
				rr[nr].len = psz;
				nr++;
			}
		ret = proc_mem_readv(pid, rr, nr, buf);
		if (ret)
			goto out;
		for (size_t i = 0, k = 0; i < cnt; i++) {
			if (proc_pm_populated(pm[i])) {
				uint64_t h = csum64(buf + k * psz, psz);
				hashes[base + i] = h ? h : 1;  /* 0 means "not populated" */
				k++;
			} else {
				hashes[base + i] = 0;
			}
		}
	}
out:
	free(pm);
	free(buf);
	return ret;
}

size_t proc_hash_changed(const uint64_t *old, const uint64_t *cur, size_t n, size_t *idx)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (old[i] != cur[i])
			idx[k++] = i;
	return k;
}
