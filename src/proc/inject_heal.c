/* Self-healing syscall injection: a tracer killed at any instant (kill -9
 * of cryod's worker, of `cryo snap`) leaves every thread of the target
 * running on correctly, untraced.
 *
 * Why the plain path (inject.c) cannot: it points a thread at a `syscall`
 * instruction and stops it after it by single-stepping (the vdso's) or
 * with an int3 (our own page). A tracer that dies meanwhile detaches the
 * thread with our registers loaded. It runs on into vdso code with them,
 * or traps on the int3; and single-step outlives the tracer, since
 * __ptrace_unlink() clears syscall tracing but not the trap flag (only
 * PTRACE_DETACH's ptrace_disable() does), so the next instruction or
 * syscall exit raises a SIGTRAP nobody catches.
 *
 * Here the thread is, at every instant, in a state from which it carries
 * on by itself. Its slot, in the spare bytes after the [vdso]'s ELF image
 * (written with FOLL_FORCE: that vdso page becomes the process's own
 * copy, identical but for the slot):
 *
 *     stub:  syscall                  <- rip of the injected call
 *            [undo: close or munmap the result, for calls that make one]
 *     H:     [munmap the data page]   (its owner, once mapped)
 *            rt_sigprocmask(SIG_SETMASK, &r0_mask)
 *            flags, then every register of r0, restart fix-up applied
 *            jmp r0.rip
 *
 * and the stops it goes through are ones a dying tracer leaves without a
 * signal: syscall-entry and -exit stops (with PTRACE_O_TRACESYSGOOD their
 * code is SIGTRAP|0x80, no valid signal, so ptrace_report_syscall()'s
 * send_sig() of it does nothing) and PTRACE_EVENT_STOPs. No int3, no
 * single-step. Signals are blocked in the thread while it is in its slot
 * (SIGKILL and SIGSTOP aside), so none is dequeued and held by us: a
 * tracer that dies loses none.
 *
 * A thread's life (each edge names its function; [w] = inject_window(),
 * where a test kills us):
 *
 *   parked: its own registers and mask, in an event stop
 *     --activate()-->     slot written, rip = H [w], all blocked [w]
 *     --heal_syscall()--> rip = stub [w]; PTRACE_SYSCALL: entry stop [w],
 *                         exit stop [w]: rip = stub + 2, result in rax;
 *                         again from there for the next call
 *     --park()-->         PTRACE_INTERRUPT + PTRACE_CONT: the event stop
 *                         comes before any user instruction runs [w];
 *                         mask [w], then registers back -> parked
 *
 * Registers go back at an event stop, never at the exit stop: the kernel
 * applies an interrupted syscall's restart fix-up (rip -= 2, rax =
 * orig_rax) only on its way out of the signal path, which an exit stop
 * does not take. H applies that fix-up itself, as the kernel does with no
 * handler to run: -ERESTARTSYS/NOINTR/NOHAND run the call again,
 * -ERESTART_RESTARTBLOCK runs restart_syscall (the restart_block is the
 * thread's, and no call we inject touches it). H restores the flags user
 * code reads (CF PF AF ZF SF OF DF), not TF or AC.
 *
 * Thread 0 maps the data page for syscall arguments and keeps its slot
 * until release: its H unmaps the page, so a tracer that dies leaves no
 * page behind (bar the microseconds between the mmap's return and H being
 * rewritten: then one page stays, harmless). Other threads take a second
 * slot in turn: the one before is parked first. */
#define LOG_PREFIX "proc: "
#include "proc/inject_int.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fault.h"
#include "common/log.h"
#include "proc/maps.h"
#include "proc/mem.h"

/* A slot: three stubs, H, our mark. H is at most 239 bytes. */
#define SLOT_LEN	384u
#define SLOT_ALIGN	64u
#define OFF_PLAIN	0u
#define OFF_CLOSE	8u
#define OFF_MUNMAP	40u
#define OFF_H		80u
#define H_MUNMAP	22u		/* H's first bytes: the data page's munmap */
#define OFF_H_REST	(OFF_H + H_MUNMAP)
#define MAGIC_OFF	(SLOT_LEN - 8u)
#define RESUMES_MAX	64

#define ERESTARTSYS		512
#define ERESTARTNOINTR		513
#define ERESTARTNOHAND		514
#define ERESTART_RESTARTBLOCK	516

/* Marks a slot as ours (a slot is used only if it is all zeros or ours). */
static const uint8_t slot_magic[8] = { 'c', 'r', 'y', 'o', 'h', 'e', 'a', 'l' };

void inject_window(const char *what)
{
	pr_debug("injection window: %s", what);
	(void)fault_fire(FP_INJECT_CRASH);
	/* 1.5 s in this state: time for a test to kill us here */
	if (fault_fire(FP_INJECT_SLOW))
		usleep(1500000);
}

/* ---- code generation ---- */

struct code {
	uint8_t *b;
	size_t n, cap;
};

static void emit(struct code *c, const void *p, size_t len)
{
	if (c->n + len <= c->cap)
		memcpy(c->b + c->n, p, len);
	c->n += len;		/* overflow is seen by the caller */
}

static void emit1(struct code *c, uint8_t a)
{
	emit(c, &a, 1);
}

static void emit32(struct code *c, uint32_t v)
{
	emit(c, &v, 4);
}

static void emit64(struct code *c, uint64_t v)
{
	emit(c, &v, 8);
}

/* jmp/js rel32 to slot offset to (c->b is the slot's start) */
static void emit_rel32_to(struct code *c, size_t to)
{
	emit32(c, (uint32_t)((int64_t)to - (int64_t)(c->n + 4)));
}

/* movabs $v, reg (reg: the x86 register number, 0 = rax ... 15 = r15) */
static void emit_movabs(struct code *c, unsigned reg, uint64_t v)
{
	emit1(c, reg < 8 ? 0x48 : 0x49);
	emit1(c, (uint8_t)(0xb8 + (reg & 7)));
	emit64(c, v);
}

/* syscall; test %rax,%rax; js to; mov %rax,%rdi; [mov $len,%esi];
 * mov $nr,%eax; syscall; jmp to */
static void emit_undo_stub(struct code *c, long nr, bool with_len, uint64_t len, size_t to)
{
	static const uint8_t sys[2] = { 0x0f, 0x05 }, test[3] = { 0x48, 0x85, 0xc0 },
			     js[2] = { 0x0f, 0x88 }, mov_rdi[3] = { 0x48, 0x89, 0xc7 };

	emit(c, sys, 2);
	emit(c, test, 3);
	emit(c, js, 2);
	emit_rel32_to(c, to);
	emit(c, mov_rdi, 3);
	if (with_len) {
		emit1(c, 0xbe);
		emit32(c, (uint32_t)len);
	}
	emit1(c, 0xb8);
	emit32(c, (uint32_t)nr);
	emit(c, sys, 2);
	emit1(c, 0xe9);
	emit_rel32_to(c, to);
}

/* Where r0 really goes on: the restart fix-up the kernel would apply when
 * the thread leaves its stop with no handler to run. */
static void heal_target(const struct user_regs_struct *r0, uint64_t *rip, uint64_t *rax)
{
	*rip = r0->rip;
	*rax = r0->rax;
	if ((int64_t)r0->orig_rax < 0)
		return;
	switch ((int64_t)r0->rax) {
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
	case -ERESTARTNOHAND:
		*rax = r0->orig_rax;
		*rip -= 2;
		break;
	case -ERESTART_RESTARTBLOCK:
		*rax = SYS_restart_syscall;
		*rip -= 2;
		break;
	}
}

/* H: see the top of the file. */
static void emit_heal(struct code *c, const struct user_regs_struct *r0, uint64_t mask,
		      uint64_t data, uint64_t data_len)
{
	static const uint8_t sys[2] = { 0x0f, 0x05 };
	const uint64_t rf = r0->eflags;
	uint64_t rip, rax;
	size_t lea_at;

	heal_target(r0, &rip, &rax);
	/* H_MUNMAP bytes: the data page's munmap, or a jump over them */
	if (data) {
		emit1(c, 0xb8);			/* mov $SYS_munmap,%eax */
		emit32(c, SYS_munmap);
		emit_movabs(c, 7, data);	/* %rdi */
		emit1(c, 0xbe);			/* mov $len,%esi */
		emit32(c, (uint32_t)data_len);
		emit(c, sys, 2);
	} else {
		emit1(c, 0xeb);			/* jmp .+H_MUNMAP */
		emit1(c, H_MUNMAP - 2);
		c->n += H_MUNMAP - 2;
	}
	emit1(c, 0xb8);				/* mov $SYS_rt_sigprocmask,%eax */
	emit32(c, SYS_rt_sigprocmask);
	emit1(c, 0xbf);				/* mov $SIG_SETMASK,%edi */
	emit32(c, SIG_SETMASK);
	emit1(c, 0x48);				/* lea mask(%rip),%rsi */
	emit1(c, 0x8d);
	emit1(c, 0x35);
	lea_at = c->n;
	emit32(c, 0);
	emit1(c, 0x31);				/* xor %edx,%edx */
	emit1(c, 0xd2);
	emit1(c, 0x41);				/* mov $8,%r10d */
	emit1(c, 0xba);
	emit32(c, 8);
	emit(c, sys, 2);
	/* OF by an add that overflows or an xor that clears it, then SF ZF
	 * AF PF CF from %ah (sahf), then DF: none of these moves touch the
	 * flags set before them. */
	if (rf & 0x800) {
		emit1(c, 0xb0);			/* mov $0x7f,%al */
		emit1(c, 0x7f);
		emit1(c, 0x04);			/* add $1,%al */
		emit1(c, 0x01);
	} else {
		emit1(c, 0x30);			/* xor %al,%al */
		emit1(c, 0xc0);
	}
	emit1(c, 0xb4);				/* mov $flags,%ah */
	emit1(c, (uint8_t)((rf & 0xd5) | 0x02));
	emit1(c, 0x9e);				/* sahf */
	emit1(c, (rf & 0x400) ? 0xfd : 0xfc);	/* std / cld */
	emit_movabs(c, 0, rax);
	emit_movabs(c, 1, r0->rcx);
	emit_movabs(c, 2, r0->rdx);
	emit_movabs(c, 3, r0->rbx);
	emit_movabs(c, 5, r0->rbp);
	emit_movabs(c, 6, r0->rsi);
	emit_movabs(c, 7, r0->rdi);
	emit_movabs(c, 8, r0->r8);
	emit_movabs(c, 9, r0->r9);
	emit_movabs(c, 10, r0->r10);
	emit_movabs(c, 11, r0->r11);
	emit_movabs(c, 12, r0->r12);
	emit_movabs(c, 13, r0->r13);
	emit_movabs(c, 14, r0->r14);
	emit_movabs(c, 15, r0->r15);
	emit_movabs(c, 4, r0->rsp);
	emit1(c, 0xff);				/* jmp *0(%rip) */
	emit1(c, 0x25);
	emit32(c, 0);
	emit64(c, rip);
	/* the mask, read by rt_sigprocmask through the lea above */
	if (lea_at + 4 <= c->cap) {
		uint32_t rel = (uint32_t)(c->n - (lea_at + 4));
		memcpy(c->b + lea_at, &rel, 4);
	}
	emit64(c, mask);
}

/* The whole slot of thread t: stubs, H, mark. */
static int build_slot(const struct proc_ctl *ctl, const struct proc_thread *t, bool owner,
		      uint8_t out[SLOT_LEN])
{
	static const uint8_t sys[2] = { 0x0f, 0x05 };
	struct code c = { out, 0, MAGIC_OFF };

	memset(out, 0, SLOT_LEN);
	emit(&c, sys, 2);		/* PLAIN: syscall; jmp H */
	emit1(&c, 0xe9);
	emit_rel32_to(&c, OFF_H);
	c.n = OFF_CLOSE;
	emit_undo_stub(&c, SYS_close, false, 0, OFF_H);
	if (c.n > OFF_MUNMAP)
		return -E2BIG;
	/* MUNMAP maps the data page: if it undoes that itself, H must not
	 * unmap it again (the second time, maybe, a mapping the program made
	 * meanwhile at the same place). */
	c.n = OFF_MUNMAP;
	emit_undo_stub(&c, SYS_munmap, true, HEAL_DATA_LEN, OFF_H_REST);
	if (c.n > OFF_H)
		return -E2BIG;
	c.n = OFF_H;
	emit_heal(&c, &t->r0, t->r0_mask, owner ? ctl->scratch_data : 0, HEAL_DATA_LEN);
	if (c.n > MAGIC_OFF)
		return -E2BIG;
	memcpy(out + MAGIC_OFF, slot_magic, sizeof(slot_magic));
	return 0;
}

static uint64_t slot_addr(const struct proc_ctl *ctl, int k)
{
	return ctl->heal_base + (uint64_t)k * SLOT_LEN;
}

/* FOLL_FORCE write (the vdso is r-x) through /proc/PID/mem. */
static int poke(struct proc_ctl *ctl, uint64_t addr, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = pwrite(ctl->heal_memfd, buf, len, (off_t)addr);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len)
		return 0;
	n = n < 0 ? -errno : -EIO;
	pr_err("%d: write %zu bytes of heal code at %#llx: %s", (int)ctl->pid, len,
	       (unsigned long long)addr, strerror((int)-n));
	return (int)n;
}

/* ---- finding the slots ---- */

static int grow_end(uint64_t *end, uint64_t off, uint64_t len, size_t size)
{
	if (off > size || len > size - off)
		return -EINVAL;
	if (off + len > *end)
		*end = off + len;
	return 0;
}

/* End of the ELF image at the start of buf (the vdso): headers, segments,
 * sections. What follows is padding the kernel maps with it. The bytes
 * are the target's: bounds are checked. */
static int elf_image_end(const uint8_t *buf, size_t size, uint64_t *end)
{
	Elf64_Ehdr eh;
	int ret;

	if (size < sizeof(eh))
		return -EINVAL;
	memcpy(&eh, buf, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) ||
	    (eh.e_shnum && eh.e_shentsize != sizeof(Elf64_Shdr)))
		return -EINVAL;
	*end = sizeof(eh);
	ret = grow_end(end, eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), size);
	if (!ret)
		ret = grow_end(end, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr), size);
	for (unsigned i = 0; !ret && i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, buf + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		ret = grow_end(end, ph.p_offset, ph.p_filesz > ph.p_memsz ? ph.p_filesz :
			       ph.p_memsz, size);
	}
	for (unsigned i = 0; !ret && i < eh.e_shnum; i++) {
		Elf64_Shdr sh;

		memcpy(&sh, buf + eh.e_shoff + i * sizeof(sh), sizeof(sh));
		if (sh.sh_type != SHT_NOBITS && sh.sh_type != SHT_NULL)
			ret = grow_end(end, sh.sh_offset, sh.sh_size, size);
	}
	return ret;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A slot ours from an earlier run (its tracer died) may still be run by a
 * thread on its way back: such a slot is left alone. */
static void mark_slots_in_use(struct proc_ctl *ctl)
{
	for (size_t i = 0; i < ctl->n; i++) {
		struct user_regs_struct r;

		if (ctl->t[i].gone || proc_get_regs(ctl->t[i].tid, &r))
			continue;
		if (r.rip < ctl->heal_base || r.rip >= ctl->heal_base + ctl->heal_nslots * SLOT_LEN)
			continue;
		ctl->heal_user[(r.rip - ctl->heal_base) / SLOT_LEN] = -2;
		pr_info("%d: thread %d is still in heal code of an earlier snapshot", (int)ctl->pid,
			(int)ctl->t[i].tid);
	}
}

static int find_slots(struct proc_ctl *ctl)
{
	struct proc_maps m;
	const struct proc_vma *v;
	uint8_t *buf = NULL;
	uint64_t end, start;
	size_t len, free_slots = 0;
	bool leftovers = false;
	int ret;

	ret = proc_maps_read(ctl->pid, false, &m);
	if (ret)
		return ret;
	v = proc_maps_find_name(&m, "[vdso]");
	if (!v || !(v->prot & PROC_PROT_EXEC) || !(v->prot & PROC_PROT_READ)) {
		ret = -ENOENT;
		goto out;
	}
	len = v->end - v->start;
	buf = malloc(len);
	ret = buf ? proc_mem_read(ctl->pid, v->start, buf, len, NULL) : -ENOMEM;
	if (!ret)
		ret = elf_image_end(buf, len, &end);
	if (ret)
		goto out;
	start = (end + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN;
	ctl->heal_base = v->start + start;
	ctl->heal_nslots = start < len ? (len - start) / SLOT_LEN : 0;
	if (ctl->heal_nslots > PROC_HEAL_SLOTS_MAX)
		ctl->heal_nslots = PROC_HEAL_SLOTS_MAX;
	for (size_t k = 0; k < ctl->heal_nslots; k++) {
		const uint8_t *p = buf + start + k * SLOT_LEN;
		bool ours = !memcmp(p + MAGIC_OFF, slot_magic, sizeof(slot_magic));

		ctl->heal_user[k] = (ours || all_zero(p, SLOT_LEN)) ? -1 : -2;
		leftovers |= ours;
	}
	if (leftovers)
		mark_slots_in_use(ctl);
	for (size_t k = 0; k < ctl->heal_nslots; k++)
		free_slots += ctl->heal_user[k] == -1;
	ret = free_slots >= 2 ? 0 : -ENOSPC;
out:
	free(buf);
	proc_maps_free(&m);
	return ret;
}

int heal_prepare(struct proc_ctl *ctl)
{
	char path[64];
	int ret;

	if (ctl->heal)
		return ctl->heal > 0 ? 0 : -ENOENT;
	ctl->heal = -1;
	ctl->heal_owner = -1;
	for (size_t k = 0; k < PROC_HEAL_SLOTS_MAX; k++) {
		ctl->heal_user[k] = -2;
		ctl->heal_used[k] = false;
	}
	if ((ctl->flags & PROC_SEIZE_MADE) || ctl->avoid_vdso || ctl->gadget_is_scratch)
		return -ENOENT;
	ret = find_slots(ctl);
	if (ret) {
		pr_debug("%d: no room for heal code in the vdso (%s): plain injection",
			 (int)ctl->pid, strerror(-ret));
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)ctl->pid);
	ctl->heal_memfd = open(path, O_RDWR | O_CLOEXEC);
	if (ctl->heal_memfd < 0) {
		pr_warn("open %s: %s: plain injection", path, strerror(errno));
		return -ENOENT;
	}
	ctl->heal = 1;
	return 0;
}

/* ---- a thread's life ---- */

static int set_held(struct proc_ctl *ctl, struct proc_thread *t, uint64_t rip)
{
	struct user_regs_struct r = t->r0;
	int ret;

	r.rip = rip;
	r.orig_rax = (uint64_t)-1;	/* no restart fix-up on H */
	ret = proc_set_regs(t->tid, &r);
	if (!ret)
		t->inj_rip = rip;
	(void)ctl;
	return ret;
}

/* Resume t until the exit stop of the syscall it is about to make. */
static int run_to_exit(struct proc_ctl *ctl, struct proc_thread *t, int64_t *rval)
{
	struct __ptrace_syscall_info si;
	uint64_t lo = slot_addr(ctl, t->inj_slot), hi = lo + SLOT_LEN;
	bool entered = false;
	int ret;

	for (int i = 0; i < RESUMES_MAX; i++) {
		t->inj_at_exit = false;
		ret = proc_resume_wait(t, PTRACE_SYSCALL, "into its injected syscall");
		if (ret)
			return ret;
		if (t->stop_event == PTRACE_EVENT_STOP)
			continue;	/* group stop: run on */
		if (t->stop_event) {
			pr_err("thread %d: unexpected ptrace event %d", (int)t->tid, t->stop_event);
			return -EIO;
		}
		if (t->stop_sig != (SIGTRAP | 0x80)) {
			/* only what cannot be blocked gets here (SIGSTOP) */
			t->deferred_sigs |= 1ULL << (t->stop_sig - 1);
			continue;
		}
		if (ptrace(PTRACE_GET_SYSCALL_INFO, t->tid, (void *)sizeof(si), &si) <= 0) {
			ret = -errno;
			pr_err("GET_SYSCALL_INFO %d: %s", (int)t->tid, strerror(-ret));
			return ret ? ret : -EIO;
		}
		if (si.instruction_pointer < lo || si.instruction_pointer > hi) {
			pr_err("thread %d: syscall stop at %#llx, outside its heal slot", (int)t->tid,
			       (unsigned long long)si.instruction_pointer);
			return -EIO;
		}
		if (si.op == PTRACE_SYSCALL_INFO_ENTRY) {
			entered = true;
			inject_window("syscall entry stop");
			continue;
		}
		if (si.op != PTRACE_SYSCALL_INFO_EXIT || !entered) {
			pr_err("thread %d: syscall stop %u, not the one expected", (int)t->tid, si.op);
			return -EIO;
		}
		t->inj_at_exit = true;
		t->inj_rip = si.instruction_pointer;
		*rval = si.exit.rval;
		inject_window("syscall exit stop");
		return 0;
	}
	pr_err("thread %d: injected syscall did not complete", (int)t->tid);
	return -EIO;
}

/* From an exit stop to the event stop just after it, no user instruction
 * run in between (the interrupt is taken on the way out of the kernel). */
static int to_event_stop(struct proc_thread *t)
{
	struct user_regs_struct cur;
	int ret;

	if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0)) {
		ret = -errno;
		pr_err("interrupt %d: %s", (int)t->tid, strerror(-ret));
		return ret;
	}
	inject_window("interrupt asked");
	for (int i = 0; i < RESUMES_MAX; i++) {
		ret = proc_resume_wait(t, PTRACE_CONT, "to its interrupt");
		if (ret)
			return ret;
		if (t->stop_event == PTRACE_EVENT_STOP)
			break;
		if (t->stop_event || t->stop_sig == (SIGTRAP | 0x80)) {
			pr_err("thread %d: stop %d/%#x on its way to the interrupt", (int)t->tid,
			       t->stop_event, t->stop_sig);
			return -EIO;
		}
		t->deferred_sigs |= 1ULL << (t->stop_sig - 1);
	}
	t->inj_at_exit = false;
	ret = proc_get_regs(t->tid, &cur);
	if (ret)
		return ret;
	if (cur.rip != t->inj_rip) {
		/* It ran code after the exit stop: putting r0 back would run
		 * some of the program again. It healed itself; leave it. */
		pr_err("thread %d: at %#llx after its injected syscall, not %#llx", (int)t->tid,
		       (unsigned long long)cur.rip, (unsigned long long)t->inj_rip);
		return -EIO;
	}
	return 0;
}

static void slot_free(struct proc_ctl *ctl, struct proc_thread *t)
{
	if (t->inj_slot >= 0 && t->inj_slot < (int)ctl->heal_nslots)
		ctl->heal_user[t->inj_slot] = -1;
	t->inj_active = false;
	t->inj_slot = -1;
	if (ctl->heal_owner >= 0 && &ctl->t[ctl->heal_owner] == t)
		ctl->heal_owner = -1;
}

/* Back to its own mask, then its own registers: in that order, since a
 * thread let go between the two runs H, which sets both. */
static int park(struct proc_ctl *ctl, struct proc_thread *t)
{
	int ret = 0;

	if (!t->inj_active)
		return 0;
	if (t->gone) {
		slot_free(ctl, t);
		return -ESRCH;
	}
	if (t->inj_at_exit)
		ret = to_event_stop(t);
	if (t->gone) {
		slot_free(ctl, t);
		return -ESRCH;
	}
	if (ret)
		return ret;
	inject_window("at the event stop");
	ret = proc_set_sigmask(t->tid, t->r0_mask);
	if (ret)
		return ret;
	inject_window("mask back");
	ret = proc_set_regs(t->tid, &t->r0);
	if (ret) {
		pr_err("thread %d: registers NOT restored after injection", (int)t->tid);
		return ret;
	}
	slot_free(ctl, t);
	return 0;
}

static int activate(struct proc_ctl *ctl, size_t idx)
{
	struct proc_thread *t = &ctl->t[idx];
	uint8_t code[SLOT_LEN];
	int k = -1, ret;

	if (t->inj_active)
		return 0;
	if (!t->seized || !t->stopped) {
		pr_err("inject into %d: thread not stopped", (int)t->tid);
		return -ESRCH;
	}
	/* one slot for thread 0 (owner of the data page), one for the others */
	for (size_t j = 0; j < ctl->n; j++)
		if (j != idx && ctl->t[j].inj_active && (int)j != ctl->heal_owner &&
		    (ret = park(ctl, &ctl->t[j])) && ret != -ESRCH)
			return ret;
	for (size_t s = 0; s < ctl->heal_nslots && k < 0; s++)
		if (ctl->heal_user[s] == -1)
			k = (int)s;
	if (k < 0)
		return -EBUSY;
	if ((ret = proc_get_regs(t->tid, &t->r0)) || (ret = proc_get_sigmask(t->tid, &t->r0_mask)))
		return ret;
	t->inj_slot = k;
	ret = build_slot(ctl, t, false, code);
	if (!ret)
		ret = poke(ctl, slot_addr(ctl, k), code, SLOT_LEN);
	if (ret)
		return ret;
	ctl->heal_user[k] = (int)idx;
	ctl->heal_used[k] = true;
	ret = set_held(ctl, t, slot_addr(ctl, k) + OFF_H);
	if (ret)
		return ret;
	t->inj_active = true;
	t->inj_at_exit = false;
	inject_window("held in the slot");
	ret = proc_set_sigmask(t->tid, ~0ULL);	/* SIGKILL, SIGSTOP stay */
	inject_window("signals blocked");
	return ret;
}

static uint64_t stub_off(enum heal_stub stub)
{
	return stub == HEAL_STUB_CLOSE ? OFF_CLOSE : stub == HEAL_STUB_MUNMAP ? OFF_MUNMAP :
									    OFF_PLAIN;
}

int heal_syscall(struct proc_ctl *ctl, size_t idx, long nr, const uint64_t a[6],
		 enum heal_stub stub, int64_t *out)
{
	struct proc_thread *t = &ctl->t[idx];
	struct user_regs_struct r;
	int64_t rv = 0;
	int ret = activate(ctl, idx);

	if (ret)
		return ret;
	r = inject_regs(&t->r0, slot_addr(ctl, t->inj_slot) + stub_off(stub), nr, a);
	/* A call a signal interrupted (none of ours blocks, but) runs again. */
	for (int tries = 0; tries < 8; tries++) {
		ret = proc_set_regs(t->tid, &r);
		if (ret)
			return ret;
		t->inj_rip = r.rip;
		inject_window("registers set for the call");
		ret = run_to_exit(ctl, t, &rv);
		if (ret || rv < -ERESTART_RESTARTBLOCK || rv > -ERESTARTSYS)
			break;
	}
	if (!ret)
		*out = rv;
	return ret;
}

int heal_run_undo(struct proc_ctl *ctl, size_t idx, int64_t *out)
{
	struct proc_thread *t = &ctl->t[idx];

	if (!t->inj_active || !t->inj_at_exit)
		return -EINVAL;
	return run_to_exit(ctl, t, out);
}

int heal_map_data(struct proc_ctl *ctl, uint64_t *addr)
{
	uint64_t a[6] = { 0, HEAL_DATA_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  (uint64_t)-1, 0 };
	uint8_t code[SLOT_LEN];
	struct proc_thread *t = &ctl->t[0];
	int64_t res;
	int ret;

	ret = heal_syscall(ctl, 0, SYS_mmap, a, HEAL_STUB_MUNMAP, &res);
	if (ret)
		return ret;
	if (res < 0 && res > -4096)
		return (int)res;	/* its stub skips the undo by itself */
	/* Stopped after the mmap: its stub would unmap the page and go on
	 * past H's munmap. H learns of the page, then the thread is moved
	 * to H: whenever we die, the page goes exactly once. */
	ctl->scratch_data = (uint64_t)res;
	ctl->scratch_data_len = HEAL_DATA_LEN;
	ctl->heal_owner = 0;
	ret = build_slot(ctl, t, true, code);
	if (!ret)
		ret = poke(ctl, slot_addr(ctl, t->inj_slot) + OFF_H, code + OFF_H,
			   MAGIC_OFF - OFF_H);
	if (!ret) {
		inject_window("heal code knows the data page");
		ret = set_held(ctl, t, slot_addr(ctl, t->inj_slot) + OFF_H);
	}
	if (ret) {
		ctl->scratch_data = 0;
		ctl->heal_owner = -1;
		return ret;
	}
	inject_window("held after the mmap");
	*addr = ctl->scratch_data;
	return 0;
}

/* The owner's H unmaps the data page: run that much of it. */
static int unmap_data(struct proc_ctl *ctl, struct proc_thread *t)
{
	int64_t rv;
	int ret = set_held(ctl, t, slot_addr(ctl, t->inj_slot) + OFF_H);

	if (!ret)
		ret = run_to_exit(ctl, t, &rv);
	if (ret)
		return ret;
	if (rv) {
		pr_err("%d: unmap scratch data page: %s", (int)ctl->pid, strerror((int)-rv));
		return (int)rv;
	}
	ctl->scratch_data = 0;
	return 0;
}

int heal_cleanup(struct proc_ctl *ctl)
{
	static const uint8_t zero[SLOT_LEN];
	bool alive = false, left = false;
	int ret = 0, r;

	if (ctl->heal <= 0)
		return 0;
	for (size_t i = 0; i < ctl->n; i++)
		alive |= ctl->t[i].seized && !ctl->t[i].gone;
	if (!alive) {
		ctl->scratch_data = 0;
		ctl->heal_owner = -1;
		return 0;
	}
	for (size_t i = 0; i < ctl->n; i++) {
		struct proc_thread *t = &ctl->t[i];

		if (!t->inj_active)
			continue;
		r = 0;
		if ((int)i == ctl->heal_owner && ctl->scratch_data && !t->gone)
			r = unmap_data(ctl, t);
		if (!r)
			r = park(ctl, t);
		if (r && r != -ESRCH) {
			ret = ret ? ret : r;
			left = true;
		}
	}
	/* A thread left in its slot finds its way back by itself: the
	 * slots stay as they are then. */
	for (size_t k = 0; !left && k < ctl->heal_nslots; k++) {
		if (!ctl->heal_used[k])
			continue;
		inject_window("clearing the slots");
		r = poke(ctl, slot_addr(ctl, (int)k), zero, SLOT_LEN);
		if (!r)
			ctl->heal_used[k] = false;
		ret = ret ? ret : r;
	}
	return ret;
}
