/* The address space: which mappings exist and what of their memory the
 * snapshot must hold.
 *
 * Only memory that cannot be re-read from a file is stored:
 *   anonymous private (heap, stack, named anon)  populated pages (pagemap
 *                                                present or swapped)
 *   private file mapping                         only pages that are
 *                                                anonymous copies now
 *                                                (present and not
 *                                                file/shared, or swapped)
 *   shared anonymous                             the shmem object, once,
 *                                                into its own space
 *   memfd / deleted file, mapped                 the file, once, into its
 *                                                own space
 *   System V shared memory (shmat)               the segment, once, into
 *                                                its own space, and what
 *                                                it is (dump_shm.c)
 *   shared file mapping                          nothing: the file has it
 *   special ([vdso], [vvar], ...)                nothing: name and range
 * Memory is read in batches of up to DUMP_BATCH bytes (process_vm_readv;
 * /proc/PID/mem for mappings the process cannot read itself). */
#define LOG_PREFIX "dump: "
#include "dump/dump_int.h"
#include "common/log.h"
#include "proc/auxv.h"
#include "proc/mem.h"
#include "proc/status.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/compat.h"	/* after <linux/fs.h> */

#define PAGE		4096ull
#define DUMP_BATCH	(8u << 20)	/* bytes read per batch */
#define PM_CHUNK	2048u		/* pagemap entries per read (8 MiB) */
#define DUMP_DEFER_MAX	(256ull << 20)	/* memory kept for after the stop */

static int refuse(const struct dump_ctx *d, const struct proc_vma *v, const char *why)
{
	pr_err("cannot capture pid %d: mapping %" PRIx64 "-%" PRIx64 " %s: %s", (int)d->pid,
	       v->start, v->end, v->path[0] ? v->path : "(anonymous)", why);
	return -ENOTSUP;
}

static int starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* Open the file behind a mapping (map_files: works for deleted files too). */
static int open_map_file(const struct dump_ctx *d, const struct proc_vma *v, struct stat *st)
{
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)d->pid,
		 v->start, v->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Save the object behind a mapping once (shared anonymous memory, a memfd,
 * a deleted file): its size and, for a memfd, its seals go with every
 * mapping of it, so that melt makes it once for all of them, in whichever
 * process. */
int dump_save_object(struct dump_ctx *d, const struct proc_vma *v, uint32_t tag, uint32_t *space,
		     Cryo__VmaEntry *e)
{
	struct stat st;
	uint64_t size;
	int fd = open_map_file(d, v, &st), seals, r;

	if (fd < 0) {
		pr_err("pid %d: opening the object of mapping %" PRIx64 ": %s", (int)d->pid,
		       v->start, strerror(-fd));
		return fd;
	}
	r = fd_contents_save_tag(d->fdc, fd, &st, tag, space, &size);
	/* other shmem files say F_SEAL_SEAL too: only a memfd's are its own */
	seals = starts(v->path, "/memfd:") ? fcntl(fd, F_GET_SEALS) : -1;
	close(fd);
	if (r)
		return r;
	e->has_object_size = 1;
	e->object_size = size;
	if (seals > 0) {
		e->has_seals = 1;
		e->seals = (uint32_t)seals;
	}
	return 0;
}

static int plan_file(struct dump_ctx *d, struct dump_vma *dv)
{
	const struct proc_vma *v = dv->v;
	Cryo__VmaEntry *e = dv->e;
	struct stat st;
	int fd, r;

	e->kind = v->shared ? CRYO__VMA_KIND__VMA_FILE_SHARED : CRYO__VMA_KIND__VMA_FILE_PRIVATE;
	e->has_pgoff = 1;
	e->pgoff = v->pgoff;
	dv->store_pages = !v->shared;
	dv->anon_only = 1;
	if (v->path[0] != '/')
		return refuse(d, v, "not a file cryo knows how to map back");
	if (starts(v->path, "/SYSV") && v->deleted) {
		if (!v->shared)
			return refuse(d, v, "a private mapping of System V shared memory");
		e->kind = CRYO__VMA_KIND__VMA_SYSV_SHM;
		dv->store_pages = 0;
		return dump_shm_plan(d, v, e);
	}
	fd = open_map_file(d, v, &st);
	if (fd < 0) {
		pr_err("pid %d: mapping %" PRIx64 " %s: %s", (int)d->pid, v->start, v->path,
		       strerror(-fd));
		return fd;
	}
	close(fd);
	if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
		return refuse(d, v, "a mapping of a device");
	if (!S_ISREG(st.st_mode))
		return refuse(d, v, "not a regular file");
	e->file = dump_alloc(&d->a, sizeof(*e->file));
	if (!e->file)
		return -ENOMEM;
	fd_file_id(&st, e->file);
	if (v->deleted || st.st_nlink == 0 || starts(v->path, "/memfd:")) {
		/* No path to map back from: keep the file's bytes. */
		e->has_deleted = 1;
		e->deleted = v->deleted || st.st_nlink == 0;
		r = dump_save_object(d, v, 0, &e->memfd_space, e);
		if (r)
			return r;
		e->has_memfd_space = 1;
	}
	return 0;
}

static int plan_one(struct dump_ctx *d, struct dump_vma *dv)
{
	const struct proc_vma *v = dv->v;
	Cryo__VmaEntry *e = dv->e;

	cryo__vma_entry__init(e);
	e->start = v->start;
	e->end = v->end;
	e->prot = v->prot;
	e->path = dump_strdup(&d->a, v->path);
	if (!e->path)
		return -ENOMEM;
	if (v->has_smaps) {
		e->has_vmflags = 1;
		e->vmflags = v->vmflags;
		if (v->vmflags & PROC_VMF(HT))
			return refuse(d, v, "a hugetlbfs mapping is not supported yet");
		/* The kernel's own special mappings ([vvar] is PFN memory) are
		 * remade by the kernel, not read: only others are refused. */
		if ((v->vmflags & (PROC_VMF_IO | PROC_VMF_PFNMAP)) && !v->special)
			return refuse(d, v, "a device mapping (I/O or PFN memory)");
	}
	if (v->special) {
		if (!strcmp(v->path, "[heap]")) {
			e->kind = CRYO__VMA_KIND__VMA_HEAP;
			dv->store_pages = 1;
		} else if (!strcmp(v->path, "[stack]")) {
			e->kind = CRYO__VMA_KIND__VMA_STACK;
			dv->store_pages = 1;
		} else if (starts(v->path, "[anon:") && !v->shared) {
			e->kind = CRYO__VMA_KIND__VMA_ANON_PRIVATE;
			dv->store_pages = 1;
		} else if (starts(v->path, "[anon_shmem:") || (starts(v->path, "[anon:") && v->shared)) {
			e->kind = CRYO__VMA_KIND__VMA_ANON_SHARED;
			e->has_shmem_space = 1;
			return dump_save_object(d, v, 0, &e->shmem_space, e);
		} else {
			/* [vdso], [vvar], [vvar_vclock], [vsyscall], [uprobes], ...:
			 * the kernel makes them; their name and place are kept. */
			e->kind = CRYO__VMA_KIND__VMA_SPECIAL;
		}
		return 0;
	}
	if (!v->path[0] && !v->shared) {
		e->kind = CRYO__VMA_KIND__VMA_ANON_PRIVATE;
		dv->store_pages = 1;
		return 0;
	}
	if (!v->path[0] || (v->shared && !strcmp(v->path, "/dev/zero") && v->deleted)) {
		/* MAP_SHARED|MAP_ANONYMOUS: a shmem object named /dev/zero. */
		e->kind = CRYO__VMA_KIND__VMA_ANON_SHARED;
		e->has_pgoff = 1;
		e->pgoff = v->pgoff;
		e->has_shmem_space = 1;
		return dump_save_object(d, v, 0, &e->shmem_space, e);
	}
	return plan_file(d, dv);
}

static int fill_mm_fields(struct dump_ctx *d, Cryo__MmEntry *mm)
{
	struct proc_stat st;
	struct proc_auxv av;
	struct stat est;
	char path[64], exe[4096];
	ssize_t n;
	int r;

	r = proc_stat_read(d->pid, 0, &st);
	if (r)
		return r;
#define F(field, idx) do { mm->has_##field = 1; mm->field = (uint64_t)st.f[idx]; } while (0)
	F(start_code, PROC_STAT_START_CODE);
	F(end_code, PROC_STAT_END_CODE);
	F(start_stack, PROC_STAT_START_STACK);
	F(start_data, PROC_STAT_START_DATA);
	F(end_data, PROC_STAT_END_DATA);
	F(start_brk, PROC_STAT_START_BRK);
	F(arg_start, PROC_STAT_ARG_START);
	F(arg_end, PROC_STAT_ARG_END);
	F(env_start, PROC_STAT_ENV_START);
	F(env_end, PROC_STAT_ENV_END);
#undef F
	/* The current brk is not in stat: the end of [heap] (page-aligned),
	 * else start_brk; dump_core replaces it by brk(0) from inside. */
	mm->has_brk = 1;
	mm->brk = mm->start_brk;
	for (size_t i = 0; i < d->maps.n; i++)
		if (!strcmp(d->maps.v[i].path, "[heap]"))
			mm->brk = d->maps.v[i].end;
	r = proc_auxv_read(d->pid, &av);
	if (r)
		return r;
	mm->auxv = dump_alloc(&d->a, av.n * 2 * sizeof(uint64_t));
	if (!mm->auxv && av.n)
		return -ENOMEM;
	for (size_t i = 0; i < av.n; i++) {
		mm->auxv[2 * i] = av.type[i];
		mm->auxv[2 * i + 1] = av.val[i];
	}
	mm->n_auxv = av.n * 2;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)d->pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		mm->exe_path = dump_strdup(&d->a, exe);
		if (!stat(path, &est)) {
			mm->exe_id = dump_alloc(&d->a, sizeof(*mm->exe_id));
			if (!mm->exe_id)
				return -ENOMEM;
			fd_file_id(&est, mm->exe_id);
		}
	}
	return 0;
}

int dump_mm_plan(struct dump_ctx *d, Cryo__MmEntry *mm)
{
	int r;

	d->nvmas = d->maps.n;
	d->vmas = dump_alloc(&d->a, d->nvmas * sizeof(*d->vmas) + 1);
	mm->vmas = dump_alloc(&d->a, d->nvmas * sizeof(*mm->vmas) + 1);
	if (!d->vmas || !mm->vmas)
		return -ENOMEM;
	for (size_t i = 0; i < d->nvmas; i++) {
		d->vmas[i].v = &d->maps.v[i];
		d->vmas[i].e = dump_alloc(&d->a, sizeof(Cryo__VmaEntry));
		if (!d->vmas[i].e)
			return -ENOMEM;
		r = plan_one(d, &d->vmas[i]);
		if (r)
			return r;
		mm->vmas[i] = d->vmas[i].e;
	}
	mm->n_vmas = d->nvmas;
	return fill_mm_fields(d, mm);
}

/* ---- pages ---- */

struct batch {
	struct proc_mem_range r[1024];
	size_t n;
	size_t bytes;
	uint8_t *buf;
	int readable;		/* 0: read through /proc/PID/mem */
	int memfd;		/* /proc/PID/mem, opened on first need */
};

static uint8_t *chunk_buf(void)
{
	/* Aligned to a huge page so that populating it (chunk_populate) costs
	 * a fault per 2 MiB, not one per page: over-allocate by 2 MiB, trim
	 * the rest. Nothing is populated yet: a process with little memory
	 * (64 of them in a tree) must not pay for clearing 8 MiB each. */
	size_t huge = 2u << 20, len = DUMP_BATCH + huge;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	if ((uintptr_t)p + len > a + DUMP_BATCH)
		munmap((void *)(a + DUMP_BATCH), (uintptr_t)p + len - (a + DUMP_BATCH));
	p = (uint8_t *)a;
	(void)madvise(p, DUMP_BATCH, MADV_HUGEPAGE);
	return p;
}

/* Fault in the first bytes of a chunk at once (huge pages) before a read
 * fills them: faulting in small pages one by one while the process is
 * stopped would cost more than the copy. If the kernel cannot, the read
 * faults them in itself. */
static void chunk_populate(uint8_t *p, size_t bytes)
{
	size_t huge = 2u << 20, len = (bytes + huge - 1) & ~(huge - 1);

	(void)madvise(p, len < DUMP_BATCH ? len : DUMP_BATCH, 23 /* MADV_POPULATE_WRITE */);
}

/* Write the pages of the ranges (their bytes in p, in order); on top of a
 * base, only those that differ from it. */
static int put_pages(struct dump_ctx *d, const struct proc_mem_range *rg, size_t n,
		     const uint8_t *p)
{
	uint8_t changed[256];

	for (size_t i = 0; i < n; i++) {
		size_t np = rg[i].len / PAGE;
		int r;

		if (np > sizeof(changed))
			return -EINVAL;		/* add_run keeps ranges to 1 MiB */
		r = dump_incr_changed(d, rg[i].addr, np, p, changed);
		if (r) {
			pr_err("pid %d: comparing with the base snapshot at %" PRIx64 ": %s",
			       (int)d->pid, rg[i].addr, store_strerror(r));
			return r;
		}
		for (size_t k = 0; k < np; k++, p += PAGE) {
			uint64_t a = rg[i].addr + k * PAGE;

			if (!changed[k])
				continue;
			r = store_txn_put_page(d->txn, STORE_KEY(d->space, a / PAGE), p);
			if (r) {
				pr_err("pid %d: storing page %" PRIx64 ": %s", (int)d->pid, a,
				       store_strerror(r));
				return r;
			}
			d->pages++;
		}
	}
	return 0;
}

/* A read buffer: the one made before the stop, else a new one. */
static uint8_t *chunk_take(struct dump_ctx *d)
{
	uint8_t *p = d->spare;

	d->spare = NULL;
	return p ? p : chunk_buf();
}

int dump_mm_prepare(struct dump_ctx *d)
{
	if (!d->spare && (d->spare = chunk_buf()))
		chunk_populate(d->spare, DUMP_BATCH);	/* before the stop, not in it */
	return d->spare ? 0 : -ENOMEM;
}

/* Keep a read batch for dump_mm_store (snap: written once released); the
 * batch gets a new buffer when it needs one. */
static int defer(struct dump_ctx *d, struct batch *b)
{
	struct dump_chunk *c = malloc(sizeof(*c) + b->n * sizeof(c->r[0]));

	if (!c)
		return -ENOMEM;
	c->next = NULL;
	c->n = b->n;
	memcpy(c->r, b->r, b->n * sizeof(c->r[0]));
	c->buf = b->buf;
	*d->chunks_tail = c;
	d->chunks_tail = &c->next;
	b->buf = NULL;		/* the next flush takes a new one, if any */
	return 0;
}

static int flush(struct dump_ctx *d, struct batch *b)
{
	uint8_t *p;
	int r = 0;

	if (!b->n)
		return 0;
	if (!b->buf && !(b->buf = chunk_take(d)))
		return -ENOMEM;
	chunk_populate(b->buf, b->bytes);
	p = b->buf;
	if (b->readable) {
		r = proc_mem_readv(d->pid, b->r, b->n, b->buf);
	} else {
		for (size_t i = 0; i < b->n && !r; i++) {
			ssize_t got = pread(b->memfd, p, b->r[i].len, (off_t)b->r[i].addr);

			if (got != (ssize_t)b->r[i].len)
				r = got < 0 ? -errno : -EFAULT;
			p += b->r[i].len;
		}
	}
	if (r) {
		pr_err("pid %d: reading memory at %" PRIx64 ": %s", (int)d->pid, b->r[0].addr,
		       strerror(-r));
		return r;
	}
	for (size_t i = 0; i < b->n; i++)
		d->bytes += b->r[i].len;
	if (!d->base)
		progress_add(d->prog, b->bytes);
	/* Past the budget, fresh memory costs more than writing (first-touch
	 * page clearing): the rest is written while stopped. */
	if (d->defer_pages && d->deferred < DUMP_DEFER_MAX) {
		d->deferred += b->bytes;
		r = defer(d, b);
	} else {
		r = put_pages(d, b->r, b->n, b->buf);
	}
	if (r)
		return r;
	b->n = 0;
	b->bytes = 0;
	return 0;
}

int dump_mm_store(struct dump_ctx *d)
{
	int r = 0;

	while (d->chunks) {
		struct dump_chunk *c = d->chunks;

		if (!r)
			r = put_pages(d, c->r, c->n, c->buf);
		d->chunks = c->next;
		munmap(c->buf, DUMP_BATCH);
		free(c);
	}
	d->chunks_tail = &d->chunks;
	return r;
}

void dump_mm_free(struct dump_ctx *d)
{
	if (d->spare)
		munmap(d->spare, DUMP_BATCH);
	d->spare = NULL;
	d->defer_pages = 0;
	while (d->chunks) {
		struct dump_chunk *c = d->chunks;

		d->chunks = c->next;
		munmap(c->buf, DUMP_BATCH);
		free(c);
	}
	d->chunks_tail = &d->chunks;
}

static int add_read(struct dump_ctx *d, struct batch *b, uint64_t addr, uint64_t len)
{
	int r;

	while (len) {
		uint64_t room = DUMP_BATCH - b->bytes, take = len < room ? len : room;

		if (b->n && b->r[b->n - 1].addr + b->r[b->n - 1].len == addr &&
		    b->r[b->n - 1].len + take <= (1u << 20)) {
			b->r[b->n - 1].len += take;
		} else {
			if (take > (1u << 20))
				take = 1u << 20;	/* proc_mem_readv's per-range bound */
			b->r[b->n].addr = addr;
			b->r[b->n].len = take;
			b->n++;
		}
		b->bytes += take;
		addr += take;
		len -= take;
		if (b->bytes >= DUMP_BATCH || b->n == sizeof(b->r) / sizeof(b->r[0])) {
			r = flush(d, b);
			if (r)
				return r;
		}
	}
	return 0;
}

/* Tracked: read the selected pages of vpns [a, end). */
static int read_selected(struct dump_ctx *d, struct batch *b, uint64_t a, uint64_t end)
{
	(void)dump_track_selected(d, a);	/* cursor: first run ending after a */
	for (size_t i = d->sel_at; i < d->sel.n && d->sel.r[i].first < end; i++) {
		uint64_t s = d->sel.r[i].first > a ? d->sel.r[i].first : a;
		uint64_t e = d->sel.r[i].end < end ? d->sel.r[i].end : end;
		int r = add_read(d, b, s * PAGE, (e - s) * PAGE);

		if (r)
			return r;
	}
	return 0;
}

/* Resident pages [addr, addr + len): covered by this capture; read all of
 * them, or, tracked, those the tracker selected. */
static int add_run(struct dump_ctx *d, struct batch *b, uint64_t addr, uint64_t len)
{
	int r = dump_incr_cover(d, addr, len);

	if (r || !d->tracked)
		return r ? r : add_read(d, b, addr, len);
	return read_selected(d, b, addr / PAGE, (addr + len) / PAGE);
}

/* Tracked, vpns [a, end) where the stop's scan told what is resident: all
 * covered but what is gone; what was written is selected. No walk. */
static int known_pages(struct dump_ctx *d, struct batch *b, uint64_t a, uint64_t end)
{
	const struct dump_runs *g = &d->gone;
	uint64_t at = a;
	size_t k = 0;
	int r = 0;

	/* gone is small next to the address space: a binary search would
	 * save little; runs come in address order anyway */
	while (k < g->n && g->r[k].end <= a)
		k++;
	for (; k < g->n && g->r[k].first < end && !r; k++) {
		if (g->r[k].first > at)
			r = dump_incr_cover(d, at * PAGE, (g->r[k].first - at) * PAGE);
		if (g->r[k].end > at)
			at = g->r[k].end;
	}
	if (!r && at < end)
		r = dump_incr_cover(d, at * PAGE, (end - at) * PAGE);
	return r ? r : read_selected(d, b, a, end);
}

static int wanted(const struct dump_vma *dv, uint64_t pm)
{
	if (!dv->anon_only)
		return proc_pm_populated(pm);
	/* A private file page is ours only once copied: then it is anonymous
	 * (not file/shared) or, if swapped out, in swap. */
	return (pm & PROC_PM_SWAPPED) || ((pm & PROC_PM_PRESENT) && !(pm & PROC_PM_FILE_SHARED));
}

/* The wanted pages as runs, from the kernel (PAGEMAP_SCAN, 6.7+): a
 * mapping of terabytes with a few pages in it (a sanitizer's shadow) costs
 * what its pages cost, not a pagemap entry per page. -ENOTTY when the
 * kernel has no PAGEMAP_SCAN (the caller walks pagemap instead). */
static int scan_pages(struct dump_ctx *d, struct batch *b, int pmfd, const struct dump_vma *dv,
		      uint64_t a, uint64_t end)
{
	struct page_region vec[256];
	struct pm_scan_arg arg;
	int r;

	while (a < end) {
		long n;

		memset(&arg, 0, sizeof(arg));
		arg.size = sizeof(arg);
		arg.start = a;
		arg.end = end;
		arg.vec = (uint64_t)(uintptr_t)vec;
		arg.vec_len = sizeof(vec) / sizeof(vec[0]);
		arg.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
		if (dv->anon_only) {
			/* private file mapping: only pages that are not the file's */
			arg.category_mask = PAGE_IS_FILE;
			arg.category_inverted = PAGE_IS_FILE;
		}
		/* not PAGE_IS_FILE: asking for it looks up every page's struct
		 * page (twice the cost of the walk), and the masks above use it
		 * only where it matters */
		arg.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO;
		n = ioctl(pmfd, PAGEMAP_SCAN, &arg);
		if (n < 0) {
			if (errno == ENOTTY || errno == EINVAL)
				return -ENOTTY;
			r = -errno;
			pr_err("pid %d: PAGEMAP_SCAN at %" PRIx64 ": %s", (int)d->pid, a, strerror(errno));
			return r;
		}
		for (long i = 0; i < n; i++) {
			/* The shared zero page (read, never written): a hole, not
			 * worth reading. */
			if (vec[i].categories & PAGE_IS_PFNZERO) {
				r = dump_incr_cover(d, vec[i].start, vec[i].end - vec[i].start);
				if (r)
					return r;
				for (uint64_t pa = vec[i].start; pa < vec[i].end; pa += PAGE) {
					if (d->tracked && !dump_track_selected(d, pa / PAGE))
						continue;
					r = store_txn_put_zero(d->txn, STORE_KEY(d->space, pa / PAGE));
					if (r)
						return r;
					d->pages++;
				}
				continue;
			}
			r = add_run(d, b, vec[i].start, vec[i].end - vec[i].start);
			if (r)
				return r;
		}
		if (arg.walk_end <= a)
			break;
		a = arg.walk_end;
	}
	return 0;
}

/* Tracked: the parts of the mapping in d->known need no walk; the rest
 * (new, not registered) is walked for its resident pages. */
static int tracked_pages(struct dump_ctx *d, struct batch *b, int pmfd, const struct dump_vma *dv)
{
	const struct dump_runs *kn = &d->known;
	uint64_t a = dv->v->start / PAGE, end = dv->v->end / PAGE;
	int r = 0;

	while (d->known_at < kn->n && kn->r[d->known_at].end <= a)
		d->known_at++;
	for (size_t k = d->known_at; a < end && !r; k++) {
		uint64_t ks = k < kn->n && kn->r[k].first < end ? kn->r[k].first : end;

		if (ks > a)
			r = scan_pages(d, b, pmfd, dv, a * PAGE, ks * PAGE);
		if (!r && ks < end) {
			uint64_t ke = kn->r[k].end < end ? kn->r[k].end : end;

			r = known_pages(d, b, ks > a ? ks : a, ke);
			a = ke;
		} else {
			a = end;
		}
	}
	return r;
}

static int vma_pages(struct dump_ctx *d, struct batch *b, int pmfd, const struct dump_vma *dv,
		     uint64_t *pm)
{
	const struct proc_vma *v = dv->v;
	int readable = (v->prot & PROC_PROT_READ) != 0, r;
	char path[64];

	if (readable != b->readable) {
		r = flush(d, b);
		if (r)
			return r;
		b->readable = readable;
		if (!readable && b->memfd < 0) {
			snprintf(path, sizeof(path), "/proc/%d/mem", (int)d->pid);
			b->memfd = open(path, O_RDONLY | O_CLOEXEC);
			if (b->memfd < 0)
				return -errno;
		}
	}
	/* Nothing resident or swapped: nothing to look at, page by page. */
	if (v->has_smaps && !v->rss_kb && !v->swap_kb)
		return 0;
	if (d->tracked)
		return tracked_pages(d, b, pmfd, dv);
	r = scan_pages(d, b, pmfd, dv, v->start, v->end);
	if (r != -ENOTTY)
		return r;
	for (uint64_t a = v->start; a < v->end;) {
		size_t n = (size_t)((v->end - a) / PAGE);
		uint64_t run = 0, run_len = 0;

		if (n > PM_CHUNK)
			n = PM_CHUNK;
		r = proc_pagemap_read_fd(pmfd, a, n, pm);
		if (r) {
			pr_err("pid %d: pagemap at %" PRIx64 ": %s", (int)d->pid, a, strerror(-r));
			return r;
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t pa = a + i * PAGE;

			if (wanted(dv, pm[i])) {
				if (run_len && run + run_len == pa) {
					run_len += PAGE;
					continue;
				}
				if (run_len && (r = add_run(d, b, run, run_len)))
					return r;
				run = pa;
				run_len = PAGE;
			}
		}
		if (run_len && (r = add_run(d, b, run, run_len)))
			return r;
		a += n * PAGE;
	}
	return 0;
}

int dump_mm_pages(struct dump_ctx *d)
{
	struct batch *b = calloc(1, sizeof(*b));
	uint64_t *pm = malloc(PM_CHUNK * sizeof(*pm));
	char path[64];
	int pmfd = -1, r = -ENOMEM;

	if (!b || !pm)
		goto out;
	b->memfd = -1;
	b->readable = 1;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)d->pid);
	pmfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pmfd < 0) {
		r = -errno;
		pr_err("pid %d: %s: %s", (int)d->pid, path, strerror(errno));
		goto out;
	}
	r = 0;
	for (size_t i = 0; i < d->nvmas && !r; i++)
		if (d->vmas[i].store_pages)
			r = vma_pages(d, b, pmfd, &d->vmas[i], pm);
	if (!r)
		r = flush(d, b);
out:
	if (pmfd >= 0)
		close(pmfd);
	if (b) {
		if (b->memfd >= 0)
			close(b->memfd);
		if (b->buf)
			munmap(b->buf, DUMP_BATCH);
	}
	free(b);
	free(pm);
	return r;
}
