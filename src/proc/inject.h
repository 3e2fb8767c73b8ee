/* Run system calls inside a seized target, in the context of one of its
 * threads, and helpers built on that.
 *
 * The first injection finds a `syscall` instruction (bytes 0f 05) in the
 * target's [vdso] and single-steps over it, so nothing in the target is
 * written. If there is no vdso, it writes `syscall; int3` at the thread's
 * RIP (original bytes saved and put back at once) just long enough to mmap
 * a private scratch page, and uses that from then on. proc_release()
 * unmaps every page injection added.
 *
 * A thread stopped inside a syscall (read, nanosleep, ...) has rax =
 * -ERESTART* and orig_rax = the syscall number; the kernel's restart
 * fix-up runs only when the thread leaves the stop. Injection therefore
 * runs with orig_rax = -1 (no fix-up for the injected call), and puts back
 * all registers, orig_rax included, so the interrupted call is restarted
 * exactly as it would have been. See docs/DESIGN-proc.md. */
#ifndef CRYO_PROC_INJECT_H
#define CRYO_PROC_INJECT_H

#include <signal.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#include "proc/ptrace.h"

/* Run syscall nr with args in thread ctl->t[0] (or t[idx]). Returns 0 when
 * the call ran, its raw result in *ret (-errno on failure, as the kernel
 * returns it); a negative return means injection itself failed. All of the
 * thread's registers are restored on every path. */
int proc_inject_syscall(struct proc_ctl *ctl, long nr, const uint64_t args[6], int64_t *ret);
int proc_inject_syscall_thread(struct proc_ctl *ctl, size_t idx, long nr,
			       const uint64_t args[6], int64_t *ret);

/* Make sure the gadget is our own scratch page (needed before unmapping
 * the vdso, e.g. when restoring). hint: preferred address or 0. */
int proc_inject_make_scratch(struct proc_ctl *ctl, uint64_t hint);
/* A page of target memory for syscall arguments; *addr valid until
 * proc_release(). */
int proc_inject_scratch_data(struct proc_ctl *ctl, uint64_t *addr);
/* Remove scratch pages (called by proc_release()). */
int proc_inject_cleanup(struct proc_ctl *ctl);

/* Helpers: return 0 or -errno (the remote syscall's error, or injection's). */
/* Any call, in thread t[0]; *res (may be NULL): its result. */
int proc_remote_call(struct proc_ctl *ctl, long nr, const uint64_t a[6], int64_t *res);
int proc_remote_mmap(struct proc_ctl *ctl, uint64_t addr, uint64_t len, int prot,
		     int flags, int fd, uint64_t off, uint64_t *out);
int proc_remote_munmap(struct proc_ctl *ctl, uint64_t addr, uint64_t len);
int proc_remote_mprotect(struct proc_ctl *ctl, uint64_t addr, uint64_t len, int prot);
int proc_remote_madvise(struct proc_ctl *ctl, uint64_t addr, uint64_t len, int advice);
int proc_remote_close(struct proc_ctl *ctl, int fd);
int proc_remote_sigaltstack(struct proc_ctl *ctl, size_t idx, stack_t *out);
int proc_remote_getitimer(struct proc_ctl *ctl, int which, struct itimerval *out);
int proc_remote_timer_gettime(struct proc_ctl *ctl, int timer_id, struct itimerspec *out);
/* clear_child_tid of thread idx (prctl PR_GET_TID_ADDRESS). */
int proc_remote_get_tid_address(struct proc_ctl *ctl, size_t idx, uint64_t *addr);
/* The per-thread state only injection can read: sigaltstack and
 * clear_child_tid, into st (after proc_thread_capture()). */
int proc_thread_capture_injected(struct proc_ctl *ctl, size_t idx,
				 struct proc_thread_state *st);
/* Create a userfaultfd inside the target, take it into the caller with
 * pidfd_getfd, and close the target's copy. *local: our fd (caller closes).
 * flags: userfaultfd(2) flags; UFFD_USER_MODE_ONLY is added and retried
 * if the plain call is refused. */
int proc_remote_userfaultfd(struct proc_ctl *ctl, int flags, int *local);

#endif
