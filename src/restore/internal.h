/* Internal to src/restore: the state of one melt, shared by its steps.
 *
 * Steps, in order (docs/DESIGN-restore.md):
 *   make.c   fork a helper that clone3()s the root with its old pid; the
 *            root makes the open files processes share, forks the others
 *            (each with its pid, under its parent); each sets up, in plain
 *            C, what it can for itself (session, process group, fds, cwd,
 *            umask, rlimits), reports, and waits to be seized.
 *   mm.c     by syscall injection: scratch page in a hole of the target's
 *            layout, unmap the child's memory, move the special mappings,
 *            map and fill the target's, PR_SET_MM_MAP.
 *   task.c   threads (clone3 with their tids), per-thread and process-wide
 *            state, creds last, pending signals, registers, detach.
 *   pidns.c  when a pid is taken: a new pid namespace, its init, and the
 *            host pids of the processes made in it.
 *
 * Two pids per process: pid is the image's, the one the program sees
 * (set_tid, syscalls injected into it); hpid the one cryo sees it by on
 * the host (ptrace, /proc, kill). They differ only in a new namespace. */
#ifndef CRYO_RESTORE_INTERNAL_H
#define CRYO_RESTORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "image/image.h"
#include "pager/pager.h"
#include "proc/ptrace.h"
#include "restore/restore.h"

#define RST_PAGE 4096ull

/* Layout of our two scratch pages in the target: code, then data. */
#define RST_SCRATCH_LEN		(2 * RST_PAGE)
#define RST_CLONE_GADGET_OFF	16	/* clone3 gadget in the code page */

/* What the processes of a melt share (shared.c): files whose contents the
 * snapshot holds (shared anonymous memory, memfds, deleted files), made
 * once by cryo before the processes, which inherit their fds at
 * [fd_lo, fd_hi]; and System V segments, made (or found) once in cryo's
 * IPC namespace. Every fd and mapping of one is of that one object. */
struct rst_sysv {
	const Cryo__SysvShm *m;		/* the group record's */
	bool made;			/* created by this melt: removed if it fails */
};

struct rst_shared {
	struct fd_object *objs;
	size_t nobjs, cap;
	int fd_lo, fd_hi;		/* -1: none */
	struct rst_sysv *sysv;
	size_t nsysv;
};

struct rst {
	struct store *store;
	struct store_snap *sn;
	const struct restore_opts *o;
	const char *name;
	pid_t pid;			/* the program's (the image's) */
	pid_t hpid;			/* the host's; 0 for a zombie in a namespace */
	bool ns;			/* in a new pid namespace (pidns.c) */
	uint32_t space;			/* page space of the process */
	Cryo__ProcessEntry *pe;
	Cryo__MmEntry *mm;
	Cryo__FdsEntry *fds;		/* may be NULL: no fd record */
	const struct rst_shared *sh;	/* the melt's, in its rst_tree */
	struct proc_ctl *ctl;		/* seized target, or NULL */
	uint64_t scratch;		/* code page; data page follows */
	uint64_t pages_written;
	uint64_t read_ns, write_ns;	/* page filling: store reads, writes */
	/* lazy melt (lazy.c) */
	int uffd;			/* ours, until the pager takes it; else -1 */
	int lazy_target_fd;		/* the process's own copy */
	struct pager_range *lazy_rg;	/* registered, for the pager (ours) */
	size_t lazy_n;
	bool lazy;			/* o->lazy */
	/* a zombie: made only to exit again with its status; pe is ours
	 * (pid, ppid, pgid, sid, exit_signal), no mm or fds */
	bool zombie;
	int exit_status;
	/* its end of the report pipe, which it waits on until seized (a
	 * cryo that dies first closes the other end: it ends then); closed
	 * by injection once seized; -1 none */
	int report_fd;
};

/* Where one fd of one process comes from at melt (make.c). */
struct rst_fdplan {
	int slot;			/* made by the root: its slot, else -1 */
	int dup_of;			/* same open file as this earlier entry, else -1 */
	bool finish;			/* the kind's finish runs here */
};

/* The processes of a melt, p[0] the root, parents before children. */
struct rst_tree {
	struct rst *p;
	size_t n;
	struct rst_fdplan **fp;		/* fp[process][entry] */
	/* open files the root makes before it forks: the entry each comes
	 * from, and its fd number (set in the root, inherited by all) */
	size_t *slot_proc, *slot_idx, nslots;
	int *slot_fd;
	const Cryo__GroupEntry *g;
	struct rst_shared sh;
	/* in a new pid namespace (pidns.c): its init's host pid */
	bool pidns;
	pid_t init_hpid;
	pid_t pager_pid;		/* lazy: the group's pager (lazy.c) */
	/* cryo's end of the report pipe, open until every process is seized
	 * (after that PTRACE_O_EXITKILL ends them if cryo dies); -1 none */
	int report_rd;
};

uint64_t rst_now_ns(void);

/* make.c: create the processes with their pids, set up in plain C;
 * returns once all wait to be seized (t->report_rd open: the caller
 * closes it once they are). On failure nothing is left. */
int rst_make_tree(struct rst_tree *t);
void rst_tree_free(struct rst_tree *t);
/* make.c, for pidns.c: a report line from inside a new process; the
 * root's set-up (it forks the others). */
void rst_say(int sfd, char kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
__attribute__((noreturn)) void rst_root_main(struct rst_tree *t, int sfd);

/* pidns.c */
/* Whether the tree goes into a new pid namespace (o->pidns; a pid or tid
 * in use): 0 with t->pidns set, or the error for a pid in use. */
int rst_pidns_decide(struct rst_tree *t, enum restore_pidns mode);
/* Make the namespace, its init and the root in it (which makes the
 * others); sp[0] is the reports' read end. */
int rst_pidns_spawn(struct rst_tree *t, int sp[2]);
/* After every process reported ready: their host pids (hpid). */
int rst_pidns_map(struct rst_tree *t);
/* The host tid of thread tid (the program's) of r, once clone3 made it. */
int rst_pidns_tid(const struct rst *r, pid_t tid, pid_t *htid);
/* A failed melt: SIGKILL the init, which ends every process in the
 * namespace; wait (bounded) until it is gone. */
void rst_pidns_kill(struct rst_tree *t);

/* shared.c */
/* Make every shared object and segment of t (cryo, before the processes;
 * the pids are free by then). On failure what it made is undone. */
int rst_shared_make(struct rst_tree *t);
/* In a new process: close fds [0, below) except the shared objects'. */
void rst_shared_close_below(const struct rst_shared *sh, int below);
const struct fd_object *rst_shared_obj(const struct rst_shared *sh, uint32_t space);
const Cryo__SysvShm *rst_shared_sysv(const struct rst_shared *sh, uint32_t shmid);
/* Every process has mapped and attached what it had: seals, and
 * IPC_RMID of segments that were removed while attached. */
int rst_shared_finish(struct rst_tree *t);
/* The melt failed (its processes are gone): remove the segments it made. */
void rst_shared_undo(struct rst_tree *t);
void rst_shared_free(struct rst_shared *sh);

/* mm.c */
int rst_mm(struct rst *r);

/* fill.c: an eager melt's pages, RST_FILL_BATCH at a time; rst_fill_all
 * reads the store in a second thread while this one writes. */
#define RST_FILL_BATCH	2048
int rst_fill_vma(struct rst *r, const Cryo__VmaEntry *v, uint8_t *buf, uint8_t *kinds);
int rst_fill_all(struct rst *r);
/* The bytes rst_fill_all covers (its progress' share). */
uint64_t rst_fill_bytes(const struct rst *r);

/* lazy.c: see its header comment for the order. */
bool rst_lazy_vma(const struct rst *r, const Cryo__VmaEntry *v);
int rst_lazy_begin(struct rst *r);
int rst_lazy_fill(struct rst *r, const Cryo__VmaEntry *v, uint8_t *buf);
int rst_lazy_register(struct rst *r);
int rst_lazy_spawn(struct rst_tree *t);

/* task.c */
int rst_threads(struct rst *r);
int rst_process_state(struct rst *r);
int rst_finish(struct rst *r);

/* Inject syscall nr on thread idx of r->ctl; *res is the raw result. A
 * negative return: injection failed; a negative *res: the call failed. */
int rst_call(struct rst *r, size_t idx, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
	     uint64_t a3, uint64_t a4, uint64_t a5, int64_t *res);
/* Copy len bytes into the scratch data page (at most a page) and return
 * its address in the target. */
int rst_put_data(struct rst *r, const void *buf, size_t len, uint64_t *addr);

#endif
