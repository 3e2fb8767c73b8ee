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

static int add_range(struct proc_dirty *d, uint64_t start, uint64_t end)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->r[i].start < end && start < d->r[i].end) {
			/* Overlap: widen the known one. */
			if (start < d->r[i].start)
				d->r[i].start = start;
			if (end > d->r[i].end)
				d->r[i].end = end;
			return 0;
		}

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		struct proc_range *nr = realloc(d->r, cap * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		d->r = nr;
		d->cap = cap;
	}
	for (i = d->n; i > 0 && d->r[i - 1].start > start; i--)
		d->r[i] = d->r[i - 1];
	d->r[i].start = start;
	d->r[i].end = end;
	d->n++;
	return 0;
}

static int scan_one(struct proc_dirty *d, uint64_t start, uint64_t end,
		    struct page_region *vec, struct proc_range **runs, size_t *n, size_t *cap);

/* Write-protect the populated pages of a freshly registered range (a scan
 * whose answer is dropped), not the whole range with UFFDIO_WRITEPROTECT:
 * with WP_UNPOPULATED that plants a marker in every empty PTE, i.e. page
 * tables for the whole range -- 40 GiB for ASan's 20 TiB shadow. Empty
 * PTEs need no marker: a first write faults in a page without the WP bit,
 * which the next scan reports as written. */
static int protect_populated(struct proc_dirty *d, uint64_t start, uint64_t end)
{
	struct page_region *vec = malloc(2 * SCAN_VEC * sizeof(*vec));
	struct proc_range *runs = NULL;
	size_t n = 0, cap = 0;
	int ret;

	if (!vec)
		return -ENOMEM;
	ret = scan_one(d, start, end, vec, &runs, &n, &cap);
	free(runs);
	free(vec);
	return ret;
}

/* quiet: the caller decides whether a failure is one (a racing unmap). */
static int register_range(struct proc_dirty *d, uint64_t start, uint64_t end, int quiet)
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
	ret = add_range(d, start, end);
	if (ret) {
		struct uffdio_range rg = reg.range;
		(void)ioctl(d->uffd, UFFDIO_UNREGISTER, &rg);
	}
	return ret;
}

int proc_dirty_register(struct proc_dirty *d, uint64_t start, uint64_t end)
{
	return register_range(d, start, end, 0);
}

/* Which mappings are worth tracking: writable memory whose content is the
 * process's own. Kernel special mappings ([vvar], [vsyscall], ...) and
 * device/PFN maps cannot be registered. */
static bool trackable(const struct proc_vma *v)
{
	if (!(v->prot & PROC_PROT_WRITE))
		return false;
	/* Shared memory is saved whole (it is not the process's alone), and
	 * here a write-protected shared page took a fault on every write,
	 * not only the first: 98% slower (bench_track). */
	if (v->shared)
		return false;
	if (v->special && strcmp(v->path, "[heap]") && strcmp(v->path, "[stack]"))
		return false;
	if (v->has_smaps && (v->vmflags & (PROC_VMF_IO | PROC_VMF_PFNMAP)))
		return false;
	return true;
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
			ret = register_range(d, v->start, v->end, flags & PROC_DIRTY_RUNNING);
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
		ret = add_range(d, v->start, v->end);
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

static int append_run(struct proc_range **runs, size_t *n, size_t *cap,
		      uint64_t start, uint64_t end)
{
	if (*n && (*runs)[*n - 1].end == start) {
		(*runs)[*n - 1].end = end;
		return 0;
	}
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct proc_range *nr = realloc(*runs, nc * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		*runs = nr;
		*cap = nc;
	}
	(*runs)[*n].start = start;
	(*runs)[*n].end = end;
	(*n)++;
	return 0;
}

static long pm_scan(struct proc_dirty *d, uint64_t flags, uint64_t start, uint64_t end,
		    uint64_t anyof, struct page_region *vec, uint64_t *walk_end)
{
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.flags = flags | PM_SCAN_CHECK_WPASYNC,
		.start = start,
		.end = end,
		.vec = (uint64_t)(uintptr_t)vec,
		.vec_len = SCAN_VEC,
		.category_mask = PAGE_IS_WRITTEN,
		.category_anyof_mask = anyof,
		.return_mask = PAGE_IS_WRITTEN,
	};
	long r = ioctl(d->pagemap_fd, PAGEMAP_SCAN, &a);

	if (r < 0) {
		r = -errno;
		if (r == -EPERM)
			return r;	/* not WP-registered: the caller's case */
		pr_err("%d: PAGEMAP_SCAN %#llx-%#llx: %s", (int)d->pid,
		       (unsigned long long)start, (unsigned long long)end, strerror((int)-r));
		return r;
	}
	if (a.walk_end <= start || a.walk_end > end)
		return -EIO;
	*walk_end = a.walk_end;
	return r;
}

/* Written pages of [start, end), re-protected, appended to runs.
 *
 * Two passes, because a WP_MATCHING scan counts a never-populated PTE as
 * written and plants a marker in it: over a sparse mapping that costs page
 * tables for its whole size (64 GiB of holes = 128 MiB). Pass 1, without
 * WP, finds the populated written runs (holes skipped for free); pass 2
 * re-protects exactly those runs and its output is the answer. A page
 * written between the passes outside pass 1's runs keeps no WP bit and is
 * reported by the next scan: nothing is lost. */
static int scan_one(struct proc_dirty *d, uint64_t start, uint64_t end,
		    struct page_region *vec, struct proc_range **runs, size_t *n, size_t *cap)
{
	struct page_region *vec2 = vec + SCAN_VEC;

	while (start < end) {
		uint64_t walk_end, w2;
		long r = pm_scan(d, 0, start, end, PAGE_IS_PRESENT | PAGE_IS_SWAPPED, vec,
				 &walk_end);
		if (r < 0)
			return (int)r;
		for (long i = 0; i < r; i++) {
			uint64_t s = vec[i].start;
			while (s < vec[i].end) {
				long r2 = pm_scan(d, PM_SCAN_WP_MATCHING, s, vec[i].end, 0, vec2, &w2);
				if (r2 < 0)
					return (int)r2;
				for (long k = 0; k < r2; k++) {
					int ret = append_run(runs, n, cap, vec2[k].start, vec2[k].end);
					if (ret)
						return ret;
				}
				s = w2;
			}
		}
		start = walk_end;
	}
	return 0;
}

int proc_dirty_scan(struct proc_dirty *d, uint64_t start, uint64_t end,
		    struct proc_range **runsp, size_t *np)
{
	struct page_region *vec;
	struct proc_range *runs = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	vec = malloc(2 * SCAN_VEC * sizeof(*vec));
	if (!vec)
		return -ENOMEM;
	for (size_t i = 0; i < d->n; i++) {
		uint64_t s = d->r[i].start > start ? d->r[i].start : start;
		uint64_t e = d->r[i].end < end ? d->r[i].end : end;
		size_t n0 = n;

		if (s >= e)
			continue;
		ret = scan_one(d, s, e, vec, &runs, &n, &cap);
		if (ret == -EPERM) {
			/* A mapping replaced by one just like it (same place,
			 * size, rights: smaps cannot tell) is not registered:
			 * register it; all of it counts as written. */
			n = n0;
			ret = register_range(d, s, e, 0);
			if (!ret)
				ret = append_run(&runs, &n, &cap, s, e);
		}
		if (ret)
			break;
	}
	free(vec);
	if (ret) {
		free(runs);
		return ret;
	}
	*runsp = runs;
	*np = n;
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
