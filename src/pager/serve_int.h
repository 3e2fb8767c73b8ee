/* Internal to the pager process (serve.c): its state file (state.c) and
 * the processes' own copies of their userfaultfds (copies.c). */
#ifndef CRYO_PAGER_SERVE_INT_H
#define CRYO_PAGER_SERVE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pager/serve.h"
#include "proc/ptrace.h"

/* One line of a state file: a process served and its own copy. */
struct pager_rec {
	pid_t pid;
	uint64_t start;			/* /proc starttime */
	int fd;
};

/* state.c */
void pager_state_path(char *buf, size_t n, const char *dir, const char *name, const char *ext);
/* starttime of pid (field 22 of stat), 0 if it is gone or a zombie. */
uint64_t pager_start_of(pid_t pid);
int pager_write_atomic(const char *path, const void *buf, size_t len);
/* dir/NAME.state: the pager (us), rec[0] the root, then the others. */
int pager_state_write(const char *dir, const char *name, uint64_t snap, const struct pager_rec *rec,
		      size_t n);
/* Append to v (n of cap) every process under those in it, once each. */
void pager_add_descendants(pid_t **v, size_t *n, size_t *cap);

/* procs.c: the processes a pager serves, the group's and those forked
 * while paging in, and their own copies of their uffds. */
struct served_proc {
	pid_t pid;			/* 0: a fork whose child is not found yet */
	uint64_t start;
	int ufd;			/* the pager's fd (pager.c's; forks name it) */
	int mine;			/* our dup of it: it outlives pager.c's */
	int fd;				/* the process's own copy; -1: none (yet) */
	ssize_t parent;			/* a fork: its parent's index; -1: none */
	struct proc_ctl *ctl;		/* a fork seized to get its copy */
	uint64_t since_ns;		/* ... since when */
};

struct served {
	const struct pager_job *j;
	struct served_proc *p;
	size_t n, cap;
	bool dirty;			/* the state file must be written again */
	bool finishing;			/* all in: a fork's child gets no copy */
	size_t late_forks;		/* forks read while finishing */
};

/* Reads the pager's uffds while the pager waits for a process (serve.c):
 * a thread that forked before the unregister cannot stop until its fork
 * event is read. */
struct served_pump {
	int (*fn)(void *arg);
	void *arg;
};

/* The group's processes, with our dups of their uffds (mine[i] for
 * j->t[i], taken by us). */
int served_init(struct served *s, const struct pager_job *j, const int *mine);
/* pager_on_fork callback: arg is the struct served. */
void served_fork(void *arg, int parent_ufd, int child_ufd);
/* A fork's copy is still being given. */
bool served_busy(const struct served *s);
/* Go on with giving copies (never waits for a process). */
void served_step(struct served *s);
/* Every page is in and unregistered: stop giving copies, close every
 * copy in every process of the group (copies.c), close our dups. */
void served_finish(struct served *s, const struct served_pump *pump);
void served_free(struct served *s);

/* copies.c */
/* Give stopped process ctl its own copy of uffd (ours) at PAGER_COPY_FD_MIN
 * or above, close-on-exec, without touching its memory but a scratch page
 * of injection's own (its lazy memory may wait on our faults). *fd: the
 * number in the process. */
int pager_give_copy(struct proc_ctl *ctl, int uffd, int *fd);
/* All is in: unregister what is still registered in each process pids[i]
 * with its uffd uffds[i] (ours; pid 0: a fork never found), then in each of
 * pids[] and every process under them (forked meanwhile too) close every
 * fd that is one of uffds[] (their own copies, and copies a child
 * inherited), pumping while a process is waited for. */
void pager_close_copies(const pid_t *pids, const int *uffds, size_t n,
			const struct served_pump *pump);

#endif
