/* Internal to src/dump: the context one capture passes around, and the
 * three readers of a stopped process (core, mm, fds). */
#ifndef CRYO_DUMP_DUMP_INT_H
#define CRYO_DUMP_DUMP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "dump/dump.h"
#include "fds/fd.h"
#include "image/image.h"
#include "proc/maps.h"
#include "proc/mem.h"
#include "proc/ptrace.h"

/* Everything the image messages point at is allocated here and freed at
 * once when the capture ends: protobuf-c messages are trees of pointers. */
struct dump_arena {
	struct dump_arena_blk *head;
};
void *dump_alloc(struct dump_arena *a, size_t n);	/* zeroed; NULL on ENOMEM */
char *dump_strdup(struct dump_arena *a, const char *s);
void dump_arena_free(struct dump_arena *a);

/* What the planner decided for one mapping. */
struct dump_vma {
	const struct proc_vma *v;
	Cryo__VmaEntry *e;
	int store_pages;		/* 1: anonymous pages go to the process space */
	int anon_only;			/* private file mapping: only its COW copies */
};

/* Ascending, disjoint runs of page numbers [first, end). */
struct dump_run {
	uint64_t first, end;
};
struct dump_runs {
	struct dump_run *r;
	size_t n, cap;
};
/* Append [first, end); runs must come in address order (-EINVAL if not);
 * touching runs merge. */
int dump_runs_append(struct dump_runs *c, uint64_t first, uint64_t end);
/* Sort and merge runs appended in any order (dump_runs_push). */
int dump_runs_push(struct dump_runs *c, uint64_t first, uint64_t end);
void dump_runs_normalize(struct dump_runs *c);
/* out gets a - b (both normalized); out must be empty or below a. */
int dump_runs_subtract(const struct dump_runs *a, const struct dump_runs *b,
		       struct dump_runs *out);
void dump_runs_free(struct dump_runs *c);

/* Memory read while the process was stopped, not yet in the store. */
struct dump_chunk {
	struct dump_chunk *next;
	uint8_t *buf;			/* DUMP_BATCH bytes, mmap'd */
	size_t n;
	struct proc_mem_range r[];	/* what buf holds, in order */
};

struct dump_ctx {
	struct store_txn *txn;
	const char *name;
	pid_t pid;			/* the host's: what cryo reads and traces */
	/* The group's pid namespace level (proc/pidns.h; 0: the host's) and
	 * the pid the program sees there: what the image records. */
	unsigned ns_level;
	pid_t vpid;
	struct proc_ctl *ctl;
	struct proc_maps maps;		/* smaps, read before any injection */
	struct dump_vma *vmas;
	size_t nvmas;
	uint32_t space;			/* page space of the process */
	struct fd_dump_ctx *fdc;	/* shared by the processes of a capture */
	struct dump_shm *shm;		/* likewise */
	const pid_t *group;		/* every process of the capture, in order */
	size_t ngroup;
	struct dump_arena a;
	uint64_t pages, bytes;		/* for dump_result */
	struct progress *prog;		/* dump_opts.progress (full captures) */
	/* 1: dump_mm_pages keeps what it reads (dump_mm_store writes it
	 * later, after the process runs again); 0: writes as it reads. */
	int defer_pages;
	uint64_t deferred;		/* bytes kept so far */
	struct dump_chunk *chunks, **chunks_tail;
	uint8_t *spare;			/* a read buffer made before the stop */
	/* Incremental (dump_incr.c): the snapshot the transaction starts from,
	 * or NULL for a full one; what this capture covered, in ascending
	 * runs of vpns; a page buffer to compare with. */
	struct store_snap *base;
	struct dump_runs covered;
	uint8_t *cmp;
	uint8_t *cmp_kinds;
	uint64_t unchanged;		/* pages equal to the base's: not written */
	/* Tracked (dump_track.c): only pages the tracker reports written are
	 * read (sel, in vpn runs; sel_at is a cursor moving up with the
	 * addresses read); pre holds the runs put before the stop. */
	struct dump_track *track;	/* dump_opts.track, or NULL */
	int tracked;
	struct dump_runs sel;
	size_t sel_at;
	struct dump_runs pre;
	struct dump_runs pending;	/* seen before the stop, to read at it */
	/* Where the stop's scan told what is resident (registered before,
	 * not new): there, every page is covered but those in gone; no
	 * resident-set walk. known_at is a cursor like sel_at. */
	struct dump_runs known, gone;
	size_t known_at;
	struct dump_runs pre_gone;	/* a file's pages the pre-copy protected */
	struct proc_maps pre_maps;	/* smaps read for the pre-copy */
	uint64_t precopied;		/* pages put before the stop */
	uint64_t mark_ns;		/* dump_mark: when the last step ended */
};

/* CRYO_LOG=debug: how long the step that ends now took (the stop's
 * breakdown, for the stopped-time budget). */
void dump_mark(struct dump_ctx *d, const char *step);
/* System V shared memory segments the processes of a capture attach
 * (dump_shm.c): each once, with how many of the capture's mappings show
 * it (the kernel's shm_nattch counts mappings). */
struct dump_shm {
	struct dump_shm_seg {
		Cryo__SysvShm m;
		int64_t others;		/* shm_nattch less the capture's mappings */
	} *v;
	Cryo__SysvShm **pv;		/* for GroupEntry.sysv_shm */
	size_t n, cap;
};

/* Plan the address space from d->maps: classify every mapping, refuse
 * what cannot be captured (-ENOTSUP, reason logged), save the contents of
 * shared anonymous memory, memfds and deleted files, fill mm. */
int dump_mm_plan(struct dump_ctx *d, Cryo__MmEntry *mm);
/* Before the stop: the first read buffer, so that the stop does not pay
 * for populating it (8 MiB of fresh memory; in a VM whose host took free
 * pages back, that is milliseconds). */
int dump_mm_prepare(struct dump_ctx *d);
/* Save the object behind mapping v (its file through map_files) once per
 * capture, objects of another tag apart; its size and seals into e. */
int dump_save_object(struct dump_ctx *d, const struct proc_vma *v, uint32_t tag, uint32_t *space,
		     Cryo__VmaEntry *e);
#define DUMP_TAG_SYSV	1u

/* A System V segment's mapping v (e->kind set): the segment into d->shm,
 * its contents saved once; e names it. -ENOTSUP when it cannot be
 * captured (another IPC namespace, a partial attach). */
int dump_shm_plan(struct dump_ctx *d, const struct proc_vma *v, Cryo__VmaEntry *e);
/* After every process of the capture is planned: refuse segments that
 * processes outside the capture attach too (melt could not give them
 * back to both). */
int dump_shm_check(const struct dump_shm *s, const char *name);
/* Into the group record (pointers into s, valid until dump_shm_free). */
int dump_shm_group(struct dump_shm *s, Cryo__GroupEntry *g);
void dump_shm_free(struct dump_shm *s);

/* Read the pages the plan chose (the process must be stopped). */
int dump_mm_pages(struct dump_ctx *d);
/* Write what dump_mm_pages kept (defer_pages), and free it. */
int dump_mm_store(struct dump_ctx *d);
void dump_mm_free(struct dump_ctx *d);

/* Incremental snapshots by comparison with the base (dump_incr.c). */
/* Open the newest snapshot of d->name as the base, if it is one of the
 * same process; 0 with d->base NULL when there is none (a full capture). */
int dump_incr_open(struct dump_ctx *d, struct store *s, pid_t pid);
/* After store_txn_begin on the base: drop every page outside the
 * process's space (file contents and shared memory are saved whole). */
int dump_incr_begin(struct dump_ctx *d);
/* A run of pages [addr, addr + len) this capture covers. */
int dump_incr_cover(struct dump_ctx *d, uint64_t addr, uint64_t len);
/* Of the pages at addr..addr+n pages in p, which are not the base's:
 * changed[i] = 1 to write page i. */
int dump_incr_changed(struct dump_ctx *d, uint64_t addr, size_t n, const uint8_t *p,
		      uint8_t *changed);
/* After every page is put: drop the base's pages this capture did not
 * cover (unmapped, DONTNEED'd, no longer resident). */
int dump_incr_finish(struct dump_ctx *d);
void dump_incr_free(struct dump_ctx *d);

/* Tracked snapshots (dump_track.c). */
/* Whether t can serve a snapshot on top of d->base (T1); a tracker that
 * cannot is disarmed. */
int dump_track_usable(struct dump_ctx *d);
/* While the process runs: register new mappings, scan, read and put the
 * written pages (pre-copy). */
int dump_track_precopy(struct dump_ctx *d);
/* Stopped: d->maps from /proc/PID/maps plus the pre-copy's smaps flags
 * when no mapping changed since (no page-table walk); -EAGAIN: read smaps. */
int dump_track_maps(struct dump_ctx *d);
/* Stopped, after smaps: register new mappings, scan; d->sel = what to read. */
int dump_track_select(struct dump_ctx *d);
/* Stopped, after the pages are read: arm d->track for the next snapshot. */
int dump_track_arm(struct dump_ctx *d);
/* The snapshot committed as snap_no: the tracker's scans now belong to it. */
void dump_track_committed(struct dump_ctx *d, uint64_t snap_no);
void dump_track_disarm(struct dump_track *t);
/* Tracked: is page vpn one to read (cursor moves up, see sel_at)? */
int dump_track_selected(struct dump_ctx *d, uint64_t vpn);
/* Tracked: drop pre-copied pages no longer covered at the stop (T3). */
int dump_track_finish(struct dump_ctx *d);
void dump_track_ctx_free(struct dump_ctx *d);

/* The fd table; -ENOTSUP naming the first fd no kind can capture. */
int dump_fds(struct dump_ctx *d, Cryo__FdsEntry *fe);
/* Mark the entries that are one open file description (FdEntry.shared),
 * across the n processes of a capture (all stopped). */
int dump_fds_share(struct dump_ctx *d, Cryo__FdsEntry *fe, size_t n);
/* Free what the kinds malloc'd in fe (payloads, descriptions). */
void dump_fds_free(Cryo__FdsEntry *fe);

/* Process and thread state, partly by injected syscalls. */
int dump_core(struct dump_ctx *d, Cryo__ProcessEntry *pe);

/* dump.c, shared with dump_tree.c */
int dump_check_target(pid_t pid);
/* d->ns_level and d->vpid of d->pid. want_level < 0: the process's own
 * level is the group's (the root); else it must be want_level (a process
 * in a pid namespace of its own under the group's is -ENOTSUP). */
int dump_ns_setup(struct dump_ctx *d, int want_level);
/* Host pid (tid 0) or host tid of thread tid of pid as the group's
 * programs see it: itself at level 0; 0 when not visible there. */
pid_t dump_ns_vpid(const struct dump_ctx *d, pid_t pid, pid_t tid);
int dump_check_paged_in(pid_t pid);
/* Everything read from one stopped process. */
int dump_capture(struct dump_ctx *d, Cryo__ProcessEntry *pe, Cryo__MmEntry *mm,
		 Cryo__FdsEntry *fe);
int dump_put_records(struct dump_ctx *d, Cryo__ProcessEntry *pe, Cryo__MmEntry *mm,
		     Cryo__FdsEntry *fe);
/* The group record naming the n processes of d (d[0] is the root), then
 * the zombies. */
int dump_put_group(struct dump_ctx *d, size_t n, Cryo__ProcRef *zombies, size_t nzombies,
		   const struct dump_opts *o, uint64_t time_ns, uint64_t stopped_ns);
/* Freeze: SIGKILL the stopped process and collect its threads. */
void dump_end_process(struct dump_ctx *d);
void dump_ctx_free(struct dump_ctx *d, Cryo__FdsEntry *fe);

/* dump_tree.c: a process with children, all of its tree in one snapshot
 * (always a full one), zombies included. -EAGAIN: a process of the tree
 * went away while it was listed; try again shortly. */
int dump_tree(struct store *s, const char *name, pid_t root, const struct dump_opts *o,
	      struct dump_result *res);

#endif
