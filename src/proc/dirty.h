/* Which pages of a running process were written since the last look.
 *
 * Primary: userfaultfd write-protect in async mode + PAGEMAP_SCAN (6.7+).
 *   proc_dirty_open()       create a uffd INSIDE the target (a uffd acts on
 *                           the mm that created it) by injection, take it
 *                           with pidfd_getfd, close the target's copy;
 *                           UFFDIO_API with WP_ASYNC (+ WP_UNPOPULATED).
 *   proc_dirty_register()   UFFDIO_REGISTER_MODE_WP + write-protect a range.
 *                           Works from outside while the target runs.
 *   proc_dirty_scan()       PAGEMAP_SCAN, PM_SCAN_WP_MATCHING |
 *                           PM_SCAN_CHECK_WPASYNC, category PAGE_IS_WRITTEN:
 *                           the pages written since the previous scan (or
 *                           registration), write-protected again atomically.
 * Writes need no help from us: in async mode the kernel just clears the
 * protection on the first write, which is what the scan reports.
 *
 * New mappings: a mapping created after registration is not tracked. The
 * caller re-reads /proc/PID/smaps before each scan and calls
 * proc_dirty_register_maps(), which registers every private mapping whose
 * VmFlags lack "uw" (VM_UFFD_WP) and reports it: all pages of a newly
 * registered range count as written, since nothing of them was captured
 * yet. Because the flag lives on the VMA, a range unmapped and mapped
 * again at the same address shows up as new too, and kernel merges or
 * splits of registered VMAs do not confuse the bookkeeping.
 *
 * Fallback where the kernel lacks this: per-page XXH3 hashes compared
 * between two looks (proc_hash_pages / proc_hash_changed). */
#ifndef CRYO_PROC_DIRTY_H
#define CRYO_PROC_DIRTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc/maps.h"
#include "proc/ptrace.h"

struct proc_range {
	uint64_t start, end;
};

/* A registered range. file: a private mapping of a file, whose pages are
 * the file's until the process writes them (copies): a page of the file is
 * not the process's memory, and is reported gone, not written (asking
 * which pages are the file's costs a struct page lookup a page: only in
 * file ranges, only for what a scan finds unprotected). */
struct proc_dirty_range {
	uint64_t start, end;
	bool file;
};

struct proc_dirty {
	pid_t pid;
	int uffd;                 /* ours, taken from the target */
	int pagemap_fd;           /* /proc/PID/pagemap for PAGEMAP_SCAN */
	uint64_t features;        /* UFFD features the API granted */
	bool holes_reported;      /* the quick scan reports every page without a PTE */
	size_t n, cap;
	struct proc_dirty_range *r; /* registered ranges, sorted */
};

/* Needs a seized ctl (for the injection); the tracker outlives it. -ENOTSUP
 * when the kernel has no WP-async userfaultfd or PAGEMAP_SCAN. */
int proc_dirty_open(struct proc_ctl *ctl, struct proc_dirty **out);
void proc_dirty_close(struct proc_dirty *d);

/* Register [start, end) (not a file range: every written page counts). */
int proc_dirty_register(struct proc_dirty *d, uint64_t start, uint64_t end);
/* m must come from smaps. Register each private mapping of m that is the
 * process's memory (not a kernel special one; any protection: it may be
 * made writable later) whose VmFlags lack "uw" (not WP-registered), and
 * make the tracked set
 * exactly the registered mappings of m. *added (may be NULL) gets the newly
 * registered ranges, malloc'd, caller frees: all their pages count as
 * written (never captured yet). */
int proc_dirty_register_maps(struct proc_dirty *d, const struct proc_maps *m,
			     struct proc_range **added, size_t *nadded, unsigned flags);
/* flags: the process runs, m may be stale: a mapping gone or changed by
 * the time it is registered is skipped, not an error (it is new at the
 * next call, on fresh smaps). */
#define PROC_DIRTY_RUNNING 1u

/* Written pages in [start, end) of the registered ranges since the last
 * scan, as runs [start, end); re-protects them. A range found not
 * registered (its mapping was replaced by one smaps cannot tell from it)
 * is registered and reported whole. *runs malloc'd, caller frees. */
int proc_dirty_scan(struct proc_dirty *d, uint64_t start, uint64_t end,
		    struct proc_range **runs, size_t *n);

/* What one scan found in [start, end) of the registered ranges, each list
 * ascending, malloc'd (proc_dirty_found_free):
 *   written  populated pages written since the last scan, protected again
 *   gone     pages that hold none of the process's own memory: in a file
 *            range, a page of the file (not copied) that came in since the
 *            last scan, protected now like a written one, so no later scan
 *            reports it again until it is written; with PROC_DIRTY_GONE
 *            also every page without a PTE (never populated, dropped, page
 *            table freed). For a stopped process: exact at that instant.
 *   fresh    ranges found not registered (mapped anew where an identical
 *            mapping was): registered now, all of their pages are new;
 *            they are in neither list.
 * A page in none of the lists is as it was at the last scan: populated
 * (present or swapped) and not written, or the file's page it was then. */
struct proc_dirty_found {
	struct proc_range *written, *gone, *fresh;
	size_t nwritten, ngone, nfresh;
};
#define PROC_DIRTY_GONE    2u
int proc_dirty_scan_found(struct proc_dirty *d, uint64_t start, uint64_t end, unsigned flags,
			  struct proc_dirty_found *f);
void proc_dirty_found_free(struct proc_dirty_found *f);

/* Fallback: hash each page of [start, start + npages pages). A page that
 * is neither present nor swapped (pagemap) is not read and hashes to 0. */
int proc_hash_pages(pid_t pid, uint64_t start, size_t npages, uint64_t *hashes);
/* Indexes i where old[i] != cur[i], into idx (room for n); returns count. */
size_t proc_hash_changed(const uint64_t *old, const uint64_t *cur, size_t n, size_t *idx);

#endif
