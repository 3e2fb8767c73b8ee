/* The pager: serves page faults of melted processes from a snapshot in the
 * store (userfaultfd MISSING mode), and prefetches the rest until every
 * stored page is in; then the caller lets the process go
 * (pager_unregister, pager_pump, pager_close).
 *
 * Each process is attached with its userfaultfd (registered MISSING on the
 * ranges given) and the page space of its memory in the snapshot. The pager
 * follows what the process does meanwhile: madvise(DONTNEED) and munmap
 * of ranges not paged in yet (their stored pages are no longer wanted),
 * mremap (pages follow the range), fork (the child gets its own uffd from
 * the kernel and is served too).
 *
 * Never wrong memory: a page is either copied from the snapshot or, where
 * the snapshot holds zeros or the process dropped the range, zero-filled.
 * If the pager stops, faults wait (the uffd stays open in whoever else holds
 * it) until a pager serves them again.
 *
 * The pager must not run in a process that forks while attached memory of
 * its own is registered: fork() holds glibc's malloc locks while the kernel
 * waits for the fork event to be read, and the pager allocates to read it.
 * It belongs in cryod, beside the processes it serves.
 *
 * pager_run is called from one thread at a time; while it prefetches it
 * runs two threads of its own (reader, copier) and ends them before it
 * returns. The store handle is shared with its owner: every call that
 * walks its index is made under *store_lock (may be NULL); page data is
 * read (store_plan_fetch: preads of the store's file) without it, beside
 * the owner's calls. */
#ifndef CRYO_PAGER_PAGER_H
#define CRYO_PAGER_PAGER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

struct pager;

/* A range of a process's memory whose contents are in the snapshot:
 * [start, end) holds what the image had at src. */
struct pager_range {
	uint64_t start, end;
	uint64_t src;
};

struct pager_stats {
	uint64_t faults;		/* faults served */
	uint64_t zero_faults;		/* of them, zero-filled */
	uint64_t pages_copied;		/* by faults and prefetch */
	uint64_t pages_prefetched;
	uint64_t pages_wanted;		/* stored pages not yet in */
	uint64_t fault_ns_p50, fault_ns_p99;	/* read to wake, per fault */
	uint64_t events;		/* fork, remap, remove, unmap */
	uint64_t processes;		/* attached, forks included */
};

/* sn stays owned by the caller and open while the pager lives. */
int pager_new(struct store_snap *sn, pthread_mutex_t *store_lock, struct pager **out);
void pager_free(struct pager *p);

/* Create a userfaultfd for the calling process's memory with the features
 * the pager needs (fork, remap, remove, unmap events). For a process of
 * another mm, the caller creates it inside that process and calls
 * pager_uffd_api() on the fd it took with pidfd_getfd. */
int pager_uffd_create(int *uffd);
int pager_uffd_api(int uffd);
/* Register [start, end) for MISSING faults. */
int pager_uffd_register(int uffd, uint64_t start, uint64_t end);

/* Serve this uffd (the pager owns it from now on, also on failure). space:
 * the page space of the process in the snapshot. ranges: as registered. */
int pager_attach(struct pager *p, int uffd, uint32_t space, const struct pager_range *r, size_t n);

/* Told from within pager_run each time a process served forks, once the
 * child's uffd is attached: parent_uffd is the uffd the event came on (one
 * given to pager_attach, or an earlier child's), child_uffd the child's.
 * Both stay owned by the pager (valid until it lets go or pager_free); the
 * callee may dup them. The child's pid is not known yet: the kernel sends
 * the event before the child has one. */
typedef void (*pager_fork_fn)(void *arg, int parent_uffd, int child_uffd);
void pager_on_fork(struct pager *p, pager_fork_fn fn, void *arg);

/* Pages the pager should bring in first (image vpns of space), e.g. the
 * order the process touched them after its previous melt. Not while
 * pager_run runs. */
int pager_hint(struct pager *p, uint32_t space, const uint64_t *vpns, size_t n);

/* Serve faults and prefetch until every stored page of every attached
 * process is in (0), or timeout_ms passes (-ETIMEDOUT; -1 waits forever),
 * or an error. Call again to go on. prefetch 0 serves faults only. */
int pager_run(struct pager *p, int timeout_ms, int prefetch);

/* Letting go, once pager_run returned 0. The uffds stay open and must
 * still be read until they are closed (pager_close): a thread that forked
 * before the unregister waits in the kernel for its fork event to be
 * read, and cannot even stop for ptrace until it is.
 *
 * pager_unregister: unregister every range of every process.
 * pager_pump: read what is waiting (never blocks for long): a fork's
 *   child is attached as usual (pager_on_fork's callback is told) and
 *   unregistered in turn. Call it while waiting for anything a process
 *   must do, and once more before pager_close.
 * pager_close: close every uffd (pager_free does too). What the
 *   processes still wait on then (an event read by no one) ends when the
 *   last copy of its uffd is closed. */
int pager_unregister(struct pager *p);
int pager_pump(struct pager *p);
void pager_close(struct pager *p);

/* The first pages faulted, in order (image vpns of the first space
 * attached): what to hint next time. Valid until pager_free. */
const uint64_t *pager_touched(const struct pager *p, size_t *n);

void pager_get_stats(const struct pager *p, struct pager_stats *st);

#endif
