/* Inside src/proc: the self-healing injection path (inject_heal.c), used
 * by inject.c when it can be. */
#ifndef CRYO_PROC_INJECT_INT_H
#define CRYO_PROC_INJECT_INT_H

#include <stdint.h>

#include "proc/ptrace.h"

/* Which code follows the injected `syscall` in a slot. CLOSE and MUNMAP
 * undo a successful call if the tracer dies before it took or recorded
 * the result: close(result), munmap(result, len). */
enum heal_stub { HEAL_STUB_PLAIN, HEAL_STUB_CLOSE, HEAL_STUB_MUNMAP };

/* The data page's size (MUNMAP's length). */
#define HEAL_DATA_LEN 4096u

/* base's registers set up for syscall nr at rip, with args a. orig_rax
 * = -1: the kernel must not apply an interrupted syscall's restart fix-up
 * (rip -= 2, rax = orig_rax) to our call. */
static inline struct user_regs_struct inject_regs(const struct user_regs_struct *base,
						  uint64_t rip, long nr, const uint64_t a[6])
{
	struct user_regs_struct r = *base;

	r.rip = rip;
	r.rax = (uint64_t)nr;
	r.orig_rax = (uint64_t)-1;
	r.rdi = a[0];
	r.rsi = a[1];
	r.rdx = a[2];
	r.r10 = a[3];
	r.r8 = a[4];
	r.r9 = a[5];
	return r;
}

/* Decide once per ctl whether the heal path can be used (sets ctl->heal).
 * 0: use it; -ENOENT: it cannot (plain injection). */
int heal_prepare(struct proc_ctl *ctl);

/* Run syscall nr in thread idx through its slot; *out its raw result.
 * The thread stays in its slot afterwards (inj_active), stopped after the
 * call, until another thread needs the slot or heal_cleanup(). */
int heal_syscall(struct proc_ctl *ctl, size_t idx, long nr, const uint64_t a[6],
		 enum heal_stub stub, int64_t *out);
/* After a CLOSE stub's call succeeded and the result was taken: let the
 * thread close it itself, as the heal path would. *out: close's result. */
int heal_run_undo(struct proc_ctl *ctl, size_t idx, int64_t *out);
/* The RW page for syscall arguments (ctl->scratch_data), mapped by thread
 * 0, whose heal code unmaps it if the tracer dies. */
int heal_map_data(struct proc_ctl *ctl, uint64_t *addr);
/* Put every thread back on its own registers and mask, unmap the data
 * page, clear the slots. A thread it cannot put back is left in its slot:
 * it puts itself back once detached. */
int heal_cleanup(struct proc_ctl *ctl);

/* A place where a test kills the tracer (proc.inject.crash) or holds it
 * (proc.inject.slow): one hit per state of an injection. */
void inject_window(const char *what);

#endif
