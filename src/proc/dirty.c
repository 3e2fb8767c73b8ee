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

int proc_dirty_register(struct proc_dirty *d, uint64_t start, uint64_t end)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = end - start },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = { .start = start, .len = end - start },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	int ret;

	if (end <= start || (start | end) % page_size())
		return -EINVAL;
	if (ioctl(d->uffd, UFFDIO_REGISTER, &reg)) {
		ret = -errno;
		pr_err("%d: UFFDIO_REGISTER %#llx-%#llx: %s", (int)d->pid,
		       (unsigned long long)start, (unsigned long long)end, strerror(-ret));
		return ret;
	}
	/* With WP_UNPOPULATED this also marks pages never touched, so their
	 * first write is seen. */
	if (ioctl(d->uffd, UFFDIO_WRITEPROTECT, &wp)) {
		struct uffdio_range rg = reg.range;
		ret = -errno;
		pr_err("%d: UFFDIO_WRITEPROTECT %#llx-%#llx: %s", (int)d->pid,
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

/* Which mappings are worth tracking: writable memory whose content is the
 * process's own. Kernel special mappings ([vvar], [vsyscall], ...) and
 * device/PFN maps cannot be registered. */
static bool trackable(const struct proc_vma *v)
{
	if (!(v->prot & PROC_PROT_WRITE))
		return false;
	if (v->special && strcmp(v->path, "[heap]") && strcmp(v->path, "[stack]"))
		return false;
	if (v->has_smaps && (v->vmflags & (PROC_VMF_IO | PROC_VMF_PFNMAP)))
		return false;
	return true;
}

int proc_dirty_register_maps(struct proc_dirty *d, const struct proc_maps *m,
			     struct proc_range **addedp, size_t *naddedp)
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
			ret = proc_dirty_register(d, v->start, v->end);
			if (ret)
				goto out;
			/* proc_dirty_register recorded it */
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

static int scan_one(struct proc_dirty *d, uint64_t start, uint64_t end,
		    struct page_region *vec, struct proc_range **runs, size_t *n, size_t *cap)
{
	while (start < end) {
		struct pm_scan_arg a = {
			.size = sizeof(a),
			.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			.start = start,
			.end = end,
			.vec = (uint64_t)(uintptr_t)vec,
			.vec_len = SCAN_VEC,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long r = ioctl(d->pagemap_fd, PAGEMAP_SCAN, &a);
		if (r < 0) {
			int ret = -errno;
			pr_err("%d: PAGEMAP_SCAN %#llx-%#llx: %s", (int)d->pid,
			       (unsigned long long)start, (unsigned long long)end,
			       strerror(-ret));
			return ret;
		}
		for (long i = 0; i < r; i++) {
			int ret = append_run(runs, n, cap, vec[i].start, vec[i].end);
			if (ret)
				return ret;
		}
		if (a.walk_end <= start || a.walk_end > end)
			return -EIO;
		start = a.walk_end;
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

	vec = malloc(SCAN_VEC * sizeof(*vec));
	if (!vec)
		return -ENOMEM;
	for (size_t i = 0; i < d->n; i++) {
		uint64_t s = d->r[i].start > start ? d->r[i].start : start;
		uint64_t e = d->r[i].end < end ? d->r[i].end : end;
		if (s >= e)
			continue;
		ret = scan_one(d, s, e, vec, &runs, &n, &cap);
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
