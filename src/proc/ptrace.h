/* Seize, inspect and release every thread of a live process with ptrace.
 *
 * Life of a proc_ctl:
 *
 *   proc_seize()  ->  all threads in a ptrace stop (running code: none)
 *        |              getters / setters below, inject.h, mem.h
 *   proc_release() -> every thread detached, injected scratch pages gone,
 *                     each thread resumes what it was doing (a thread that
 *                     was in group-stop, e.g. after SIGSTOP, stays stopped).
 *
 * proc_release() is also the error path: it never leaves a thread stopped
 * or traced, whatever state a failed step left it in. ptrace binds a tracee
 * to the tracer THREAD: call everything on one ctl from the thread that
 * seized it. */
#ifndef CRYO_PROC_PTRACE_H
#define CRYO_PROC_PTRACE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct proc_thread {
	pid_t tid;
	bool seized;          /* PTRACE_SEIZE succeeded, not yet detached */
	bool stopped;         /* in a ptrace stop we have waited for */
	bool gone;            /* exited while we held it */
	int stop_sig;         /* WSTOPSIG of the last stop */
	int stop_event;       /* PTRACE_EVENT_* of the last stop, 0 for a signal */
	uint64_t deferred_sigs; /* signals (bit n-1 = signal n) that arrived
				 * while injected code ran: handed back at
				 * detach, never delivered to injected code */
	/* Self-healing injection (inject_heal.c). While inj_active the
	 * thread's live registers and signal mask are not its own: r0 and
	 * r0_mask are, and the heal code in its slot puts them back by
	 * itself if the tracer dies. */
	bool inj_active;
	bool inj_at_exit;     /* in a syscall-exit-stop, not an event stop */
	int inj_slot;
	uint64_t inj_rip;     /* where it stands in its slot */
	uint64_t r0_mask;
	struct user_regs_struct r0;
};

/* How many heal slots a ctl may use (each one thread's way back). */
#define PROC_HEAL_SLOTS_MAX 8

struct proc_ctl {
	pid_t pid;
	int pidfd;
	size_t n, cap;
	struct proc_thread *t;      /* t[0] is the first live thread seized */
	/* Injection state (inject.c). */
	bool avoid_vdso;            /* caller's choice: never use a vdso gadget
				     * (e.g. the vdso is about to be replaced) */
	uint64_t gadget;            /* address of a `syscall` instruction */
	bool gadget_is_scratch;     /* gadget is ours: `syscall; int3` */
	uint64_t scratch_code;      /* our RX page in the target, or 0 */
	uint64_t scratch_data;      /* our RW page in the target, or 0 */
	size_t scratch_data_len;
	/* Self-healing injection (inject_heal.c): the slots are in the spare
	 * bytes after the [vdso]'s ELF image. heal: 0 not decided yet, 1 in
	 * use, -1 not possible or not wanted (plain injection above). */
	unsigned flags;             /* PROC_SEIZE_* */
	int heal;
	int heal_memfd;             /* /proc/PID/mem, for FOLL_FORCE writes */
	uint64_t heal_base;         /* first slot */
	size_t heal_nslots;
	int heal_user[PROC_HEAL_SLOTS_MAX]; /* thread index using a slot, -1 */
	bool heal_used[PROC_HEAL_SLOTS_MAX]; /* written by us: zeroed at release */
	int heal_owner;             /* thread whose heal code unmaps
				     * scratch_data, -1 */
};

/* proc_seize_opts() flags. MADE: a process cryo is making (melt): it is
 * to die with its tracer (PTRACE_O_EXITKILL) rather than run on half
 * made, so injection needs no way back (plain injection). */
#define PROC_SEIZE_MADE 1u

/* Seize every thread of pid (threads created meanwhile included: the task
 * list is re-read until no new thread appears) and wait until each is in a
 * ptrace stop. On failure nothing stays traced. *out: free with
 * proc_release(). */
int proc_seize(pid_t pid, struct proc_ctl **out);
int proc_seize_opts(pid_t pid, unsigned flags, struct proc_ctl **out);
/* The same without waiting, for a caller that must go on with other work
 * while the threads stop (a pager whose target may be waiting on one of
 * its faults): proc_seize_start() seizes and interrupts every thread;
 * proc_seize_poll() returns -EAGAIN until each is stopped and no thread
 * was added, then 0 (the ctl is then as proc_seize() leaves it), or an
 * error. Either way proc_release() ends it. */
int proc_seize_start(pid_t pid, struct proc_ctl **out);
int proc_seize_poll(struct proc_ctl *ctl);
/* Detach every thread, after removing what injection added. Returns the
 * first error but always finishes; NULL does nothing. */
int proc_release(struct proc_ctl *ctl);

/* Index of tid in ctl->t, or -1. */
int proc_ctl_find(const struct proc_ctl *ctl, pid_t tid);

/* Per-thread state the engine saves and restores. */
struct proc_rseq {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
};

struct proc_thread_state {
	pid_t tid;
	struct user_regs_struct regs;   /* incl. fs_base, gs_base, orig_rax */
	uint8_t *xstate;                /* owned: XSAVE image (NT_X86_XSTATE) */
	size_t xstate_len;
	uint64_t sigmask;
	siginfo_t *pending;             /* owned: per-thread pending signals */
	size_t npending;
	bool has_rseq;
	struct proc_rseq rseq;
	uint64_t robust_list, robust_len;
	char comm[17];
	/* Filled by proc_thread_capture_injected() (inject.h) only. */
	bool has_injected;
	stack_t altstack;
	uint64_t clear_child_tid;
};

/* Capture what can be read from outside: regs, xstate, sigmask, per-thread
 * pending signals, rseq, robust list, comm. sigaltstack and
 * clear_child_tid need injection (inject.h). */
int proc_thread_capture(struct proc_ctl *ctl, size_t idx, struct proc_thread_state *st);
void proc_thread_state_free(struct proc_thread_state *st);

int proc_get_regs(pid_t tid, struct user_regs_struct *regs);
int proc_set_regs(pid_t tid, const struct user_regs_struct *regs);
/* Size of the XSAVE area the kernel exports (CPUID 0xD, checked by probe). */
size_t proc_xstate_size(void);
/* *buf is malloc'd; caller frees. */
int proc_get_xstate(pid_t tid, uint8_t **buf, size_t *len);
int proc_set_xstate(pid_t tid, const uint8_t *buf, size_t len);
int proc_get_sigmask(pid_t tid, uint64_t *mask);
int proc_set_sigmask(pid_t tid, uint64_t mask);
/* Pending signals of one thread (shared=false) or of the whole process
 * (shared=true), without dequeuing them. *out malloc'd; caller frees. */
int proc_peek_siginfo(pid_t tid, bool shared, siginfo_t **out, size_t *n);
/* -ENOENT when the thread has no rseq registered. */
int proc_get_rseq(pid_t tid, struct proc_rseq *rs);
int proc_get_robust_list(pid_t tid, uint64_t *head, uint64_t *len);
int proc_get_comm(pid_t pid, pid_t tid, char comm[17]);

/* Internal to src/proc: wait for the next stop of t; fills t->stop_*.
 * -ESRCH when the thread exited. */
int proc_wait_stop(struct proc_thread *t);
/* A thread we trace, killed: wait until its exit is collected (its parent
 * can reap it only then, while we trace it), letting it on from any stop
 * on the way out (PTRACE_EVENT_EXIT: seizes other than PROC_SEIZE_MADE
 * stop there). */
void proc_collect_exit(pid_t tid);
/* Internal to src/proc: resume t (request: PTRACE_CONT, PTRACE_SYSCALL,
 * PTRACE_SINGLESTEP; no signal) and wait for its next stop. why: for the
 * error message. */
int proc_resume_wait(struct proc_thread *t, int request, const char *why);

#endif
