#define LOG_PREFIX "proc: "
#include "proc/inject.h"
#include "proc/inject_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fault.h"
#include "common/log.h"
#include "proc/maps.h"
#include "proc/mem.h"

#define INJECT_RESUMES_MAX 64
#define SCRATCH_LEN 4096u

/* syscall; int3; then int3 padding */
static const uint8_t scratch_code[8] = { 0x0f, 0x05, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc };

/* Resume t with modified registers until it stops at end (after the
 * syscall), then return rax. step: single-step (vdso gadget) rather than
 * run to the int3 that follows our own gadget. The caller restores regs. */
static int run_gadget(struct proc_thread *t, const struct user_regs_struct *saved,
		      uint64_t gadget, bool step, long nr, const uint64_t a[6], int64_t *out)
{
	struct user_regs_struct r = inject_regs(saved, gadget, nr, a), cur;
	uint64_t end = gadget + (step ? 2 : 3);
	int ret;

	ret = proc_set_regs(t->tid, &r);
	if (ret)
		return ret;
	/* A kill -9 of cryo with the thread's registers set for our call:
	 * ptrace lets the thread go as it is, and it runs on from our gadget
	 * into whatever follows and dies (seen: SIGSEGV). This path is for
	 * processes that die with us anyway (melt) or that have no room for
	 * heal code (inject_heal.c). */
	inject_window("plain: registers set for the call");
	for (int i = 0; i < INJECT_RESUMES_MAX; i++) {
		ret = proc_resume_wait(t, step ? PTRACE_SINGLESTEP : PTRACE_CONT, "for injection");
		if (ret)
			return ret;
		if (t->stop_event == PTRACE_EVENT_STOP)
			continue;      /* group-stop or interrupt: run on */
		if (t->stop_event) {
			pr_err("thread %d: unexpected ptrace event %d", (int)t->tid, t->stop_event);
			return -EIO;
		}
		ret = proc_get_regs(t->tid, &cur);
		if (ret)
			return ret;
		if (t->stop_sig != SIGTRAP) {
			/* A signal for the process: never deliver it to injected
			 * code; hand it back at detach. */
			t->deferred_sigs |= 1ULL << (t->stop_sig - 1);
			if (cur.rip == end) {
				*out = (int64_t)cur.rax;
				return 0;
			}
			continue;
		}
		if (cur.rip == end) {
			*out = (int64_t)cur.rax;
			return 0;
		}
		pr_err("thread %d: SIGTRAP at %#llx, expected %#llx", (int)t->tid,
		       (unsigned long long)cur.rip, (unsigned long long)end);
		return -EIO;
	}
	pr_err("thread %d: injected syscall %ld did not complete", (int)t->tid, nr);
	return -EIO;
}

/* Look for bytes 0f 05 in the [vdso]: any such pair is a syscall
 * instruction when RIP points at it, whatever it belongs to. */
static int find_vdso_gadget(struct proc_ctl *ctl)
{
	struct proc_maps m;
	const struct proc_vma *v;
	uint8_t *buf = NULL;
	size_t len;
	int ret;

	ret = proc_maps_read(ctl->pid, false, &m);
	if (ret)
		return ret;
	v = proc_maps_find_name(&m, "[vdso]");
	if (!v || !(v->prot & PROC_PROT_EXEC)) {
		ret = -ENOENT;
		goto out;
	}
	len = v->end - v->start;
	buf = malloc(len);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	ret = proc_mem_read(ctl->pid, v->start, buf, len, NULL);
	if (ret)
		ret = proc_mem_peek(ctl->t[0].tid, v->start, buf, len);
	if (ret)
		goto out;
	ret = -ENOENT;
	for (size_t i = 0; i + 1 < len; i++)
		if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
			ctl->gadget = v->start + i;
			ctl->gadget_is_scratch = false;
			ret = 0;
			break;
		}
out:
	free(buf);
	proc_maps_free(&m);
	return ret;
}

static int do_inject(struct proc_ctl *ctl, struct proc_thread *t, long nr,
		     const uint64_t a[6], int64_t *out);

/* No vdso gadget: write `syscall; int3` over the bytes at the thread's RIP
 * (put back right after) to mmap our own scratch page, and use that. */
static int create_scratch(struct proc_ctl *ctl, uint64_t hint)
{
	struct proc_thread *t = &ctl->t[0];
	struct user_regs_struct saved;
	uint8_t orig[8];
	uint64_t a[6] = { hint, SCRATCH_LEN, PROT_READ | PROT_EXEC,
			  MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0 };
	int64_t res = -ENOSYS;
	int ret, r2;

	ret = proc_get_regs(t->tid, &saved);
	if (ret)
		return ret;
	if (ctl->gadget) {
		/* Have a gadget already (vdso): use it to map the page. */
		ret = do_inject(ctl, t, SYS_mmap, a, &res);
	} else {
		ret = proc_mem_peek(t->tid, saved.rip, orig, sizeof(orig));
		if (ret) {
			pr_err("read code at rip of %d: %s", (int)t->tid, strerror(-ret));
			return ret;
		}
		ret = proc_mem_poke(t->tid, saved.rip, scratch_code, 3);
		if (ret) {
			pr_err("write gadget at rip of %d: %s", (int)t->tid, strerror(-ret));
			return ret;
		}
		ret = run_gadget(t, &saved, saved.rip, false, SYS_mmap, a, &res);
		r2 = proc_set_regs(t->tid, &saved);
		if (!ret)
			ret = r2;
		r2 = proc_mem_poke(t->tid, saved.rip, orig, sizeof(orig));
		if (r2) {
			pr_err("put back code at %#llx in %d: %s",
			       (unsigned long long)saved.rip, (int)t->tid, strerror(-r2));
			ret = ret ? ret : r2;
		}
	}
	if (ret)
		return ret;
	if (res < 0 && res > -4096) {
		pr_err("mmap scratch page in %d: %s", (int)ctl->pid, strerror((int)-res));
		return (int)res;
	}
	ctl->scratch_code = (uint64_t)res;
	/* The page is r-x: write it with ptrace (FOLL_FORCE). */
	ret = proc_mem_poke(t->tid, ctl->scratch_code, scratch_code, sizeof(scratch_code));
	if (ret) {
		pr_err("fill scratch page in %d: %s", (int)ctl->pid, strerror(-ret));
		return ret;
	}
	ctl->gadget = ctl->scratch_code;
	ctl->gadget_is_scratch = true;
	return 0;
}

static int do_inject(struct proc_ctl *ctl, struct proc_thread *t, long nr,
		     const uint64_t a[6], int64_t *out)
{
	struct user_regs_struct saved;
	int ret, r2;

	if (!t->seized || !t->stopped) {
		pr_err("inject into %d: thread not stopped", (int)t->tid);
		return -ESRCH;
	}
	ret = proc_get_regs(t->tid, &saved);
	if (ret)
		return ret;
	ret = run_gadget(t, &saved, ctl->gadget, !ctl->gadget_is_scratch, nr, a, out);
	if (t->gone)
		return ret ? ret : -ESRCH;
	/* Registers go back on every path, orig_rax included. */
	r2 = proc_set_regs(t->tid, &saved);
	if (r2) {
		pr_err("thread %d: registers NOT restored after injection", (int)t->tid);
		return r2;
	}
	return ret;
}

int proc_inject_syscall_thread(struct proc_ctl *ctl, size_t idx, long nr,
			       const uint64_t args[6], int64_t *out)
{
	int ret;

	if (idx >= ctl->n)
		return -EINVAL;
	if (heal_prepare(ctl) == 0)
		return heal_syscall(ctl, idx, nr, args, HEAL_STUB_PLAIN, out);
	if (!ctl->gadget) {
		ret = ctl->avoid_vdso ? -ENOENT : find_vdso_gadget(ctl);
		if (ret) {
			pr_debug("%d: no vdso gadget (%s), making a scratch page",
				 (int)ctl->pid, strerror(-ret));
			ret = create_scratch(ctl, 0);
			if (ret)
				return ret;
		}
	}
	return do_inject(ctl, &ctl->t[idx], nr, args, out);
}

int proc_inject_syscall(struct proc_ctl *ctl, long nr, const uint64_t args[6], int64_t *out)
{
	return proc_inject_syscall_thread(ctl, 0, nr, args, out);
}

int proc_inject_make_scratch(struct proc_ctl *ctl, uint64_t hint)
{
	int ret;

	if (ctl->gadget_is_scratch)
		return 0;
	if (ctl->heal > 0) {
		pr_err("%d: a scratch page asked for in the middle of heal injection", (int)ctl->pid);
		return -EBUSY;
	}
	ctl->heal = -1;		/* our own page from now on: the plain path */
	if (!ctl->gadget && !ctl->avoid_vdso && find_vdso_gadget(ctl))
		ctl->gadget = 0;
	ret = create_scratch(ctl, hint);
	return ret;
}

static int call(struct proc_ctl *ctl, size_t idx, long nr, uint64_t a0, uint64_t a1,
		uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, int64_t *res)
{
	uint64_t a[6] = { a0, a1, a2, a3, a4, a5 };
	int64_t r;
	int ret = proc_inject_syscall_thread(ctl, idx, nr, a, &r);

	if (ret)
		return ret;
	if (res)
		*res = r;
	return (r < 0 && r > -4096) ? (int)r : 0;
}

int proc_remote_call(struct proc_ctl *ctl, long nr, const uint64_t a[6], int64_t *res)
{
	return call(ctl, 0, nr, a[0], a[1], a[2], a[3], a[4], a[5], res);
}

int proc_inject_scratch_data(struct proc_ctl *ctl, uint64_t *addr)
{
	int64_t r;
	int ret;

	if (!ctl->scratch_data && heal_prepare(ctl) == 0) {
		ret = heal_map_data(ctl, addr);
		if (ret)
			pr_err("mmap data page in %d: %s", (int)ctl->pid, strerror(-ret));
		return ret;
	}
	if (!ctl->scratch_data) {
		ret = call(ctl, 0, SYS_mmap, 0, SCRATCH_LEN, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &r);
		if (ret) {
			pr_err("mmap data page in %d: %s", (int)ctl->pid, strerror(-ret));
			return ret;
		}
		ctl->scratch_data = (uint64_t)r;
		ctl->scratch_data_len = SCRATCH_LEN;
	}
	*addr = ctl->scratch_data;
	return 0;
}

int proc_inject_cleanup(struct proc_ctl *ctl)
{
	size_t idx;
	int ret = 0, r;

	if (ctl->heal > 0)
		return heal_cleanup(ctl);
	if (!ctl->scratch_data && !ctl->scratch_code)
		return 0;
	for (idx = 0; idx < ctl->n; idx++)
		if (ctl->t[idx].seized && ctl->t[idx].stopped)
			break;
	if (idx == ctl->n) {
		pr_err("%d: no stopped thread to remove scratch pages with", (int)ctl->pid);
		return -ESRCH;
	}
	if (ctl->scratch_data) {
		r = call(ctl, idx, SYS_munmap, ctl->scratch_data, ctl->scratch_data_len,
			 0, 0, 0, 0, NULL);
		if (r) {
			pr_err("%d: unmap scratch data page: %s", (int)ctl->pid, strerror(-r));
			ret = r;
		} else {
			ctl->scratch_data = 0;
		}
	}
	if (ctl->scratch_code) {
		/* The gadget unmaps its own page: the syscall runs, returns to
		 * the int3 which is gone... so use the vdso, or step instead:
		 * single-stepping traps right after the syscall instruction,
		 * before the next instruction is fetched. */
		ctl->gadget_is_scratch = false;
		r = call(ctl, idx, SYS_munmap, ctl->scratch_code, SCRATCH_LEN, 0, 0, 0, 0, NULL);
		if (r) {
			pr_err("%d: unmap scratch code page: %s", (int)ctl->pid, strerror(-r));
			ret = ret ? ret : r;
			ctl->gadget_is_scratch = true;
		} else {
			ctl->scratch_code = 0;
			ctl->gadget = 0;
		}
	}
	return ret;
}

int proc_remote_mmap(struct proc_ctl *ctl, uint64_t addr, uint64_t len, int prot,
		     int flags, int fd, uint64_t off, uint64_t *out)
{
	int64_t r;
	int ret = call(ctl, 0, SYS_mmap, addr, len, (uint64_t)prot, (uint64_t)flags,
		       (uint64_t)(int64_t)fd, off, &r);
	if (!ret)
		*out = (uint64_t)r;
	return ret;
}

int proc_remote_munmap(struct proc_ctl *ctl, uint64_t addr, uint64_t len)
{
	return call(ctl, 0, SYS_munmap, addr, len, 0, 0, 0, 0, NULL);
}

int proc_remote_mprotect(struct proc_ctl *ctl, uint64_t addr, uint64_t len, int prot)
{
	return call(ctl, 0, SYS_mprotect, addr, len, (uint64_t)prot, 0, 0, 0, NULL);
}

int proc_remote_madvise(struct proc_ctl *ctl, uint64_t addr, uint64_t len, int advice)
{
	return call(ctl, 0, SYS_madvise, addr, len, (uint64_t)advice, 0, 0, 0, NULL);
}

int proc_remote_close(struct proc_ctl *ctl, int fd)
{
	return call(ctl, 0, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, NULL);
}

/* Run a call that writes len bytes of output to a scratch address, then
 * copy them out. argi: which argument gets the scratch address. */
static int call_out(struct proc_ctl *ctl, size_t idx, long nr, uint64_t a[6], int argi,
		    void *dst, size_t len)
{
	uint64_t data;
	int ret;

	if (len > SCRATCH_LEN)
		return -EINVAL;
	ret = proc_inject_scratch_data(ctl, &data);
	if (ret)
		return ret;
	a[argi] = data;
	ret = call(ctl, idx, nr, a[0], a[1], a[2], a[3], a[4], a[5], NULL);
	if (ret)
		return ret;
	return proc_mem_read(ctl->pid, data, dst, len, NULL);
}

int proc_remote_sigaltstack(struct proc_ctl *ctl, size_t idx, stack_t *out)
{
	uint64_t a[6] = { 0 };
	return call_out(ctl, idx, SYS_sigaltstack, a, 1, out, sizeof(*out));
}

int proc_remote_getitimer(struct proc_ctl *ctl, int which, struct itimerval *out)
{
	uint64_t a[6] = { (uint64_t)which };
	return call_out(ctl, 0, SYS_getitimer, a, 1, out, sizeof(*out));
}

int proc_remote_timer_gettime(struct proc_ctl *ctl, int timer_id, struct itimerspec *out)
{
	uint64_t a[6] = { (uint64_t)timer_id };
	return call_out(ctl, 0, SYS_timer_gettime, a, 1, out, sizeof(*out));
}

int proc_remote_get_tid_address(struct proc_ctl *ctl, size_t idx, uint64_t *addr)
{
	uint64_t a[6] = { PR_GET_TID_ADDRESS };
	return call_out(ctl, idx, SYS_prctl, a, 1, addr, sizeof(*addr));
}

int proc_thread_capture_injected(struct proc_ctl *ctl, size_t idx,
				 struct proc_thread_state *st)
{
	int ret = proc_remote_sigaltstack(ctl, idx, &st->altstack);

	if (!ret)
		ret = proc_remote_get_tid_address(ctl, idx, &st->clear_child_tid);
	if (ret) {
		pr_err("capture thread %d of %d by injection: %s", (int)ctl->t[idx].tid,
		       (int)ctl->pid, strerror(-ret));
		return ret;
	}
	st->has_injected = true;
	return 0;
}

/* userfaultfd in the target: its fd number in *rfd. The heal path runs
 * it through the CLOSE stub, so a tracer that dies before closing the
 * target's copy leaves the thread to close it. */
static int uffd_call(struct proc_ctl *ctl, bool heal, int flags, int64_t *rfd)
{
	uint64_t a[6] = { (uint64_t)flags };
	int ret;

	for (int i = 0; i < 2; i++) {
		if (heal) {
			ret = heal_syscall(ctl, 0, SYS_userfaultfd, a, HEAL_STUB_CLOSE, rfd);
			if (!ret && *rfd < 0 && *rfd > -4096)
				ret = (int)*rfd;
		} else {
			ret = call(ctl, 0, SYS_userfaultfd, a[0], 0, 0, 0, 0, 0, rfd);
		}
		if (ret != -EPERM)
			break;
		a[0] |= UFFD_USER_MODE_ONLY;	/* unprivileged-uffd sysctl off */
	}
	return ret;
}

/* Close the target's copy: the heal path lets the thread run its CLOSE
 * stub's close, the very one it would run if we died. */
static int uffd_close(struct proc_ctl *ctl, bool heal, int rfd)
{
	int64_t cr;
	int r;

	if (!heal)
		return proc_remote_close(ctl, rfd);
	r = heal_run_undo(ctl, 0, &cr);
	return r ? r : (int)cr;
}

int proc_remote_userfaultfd(struct proc_ctl *ctl, int flags, int *local)
{
	bool heal = heal_prepare(ctl) == 0;
	int64_t rfd;
	int ret, r, fd;

	pr_debug("%d: a userfaultfd made inside it", (int)ctl->pid);
	ret = uffd_call(ctl, heal, flags, &rfd);
	if (ret) {
		pr_err("userfaultfd in %d: %s", (int)ctl->pid, strerror(-ret));
		return ret;
	}
	fd = pidfd_getfd(ctl->pidfd, (int)rfd, 0);
	if (fd < 0) {
		ret = -errno;
		pr_err("pidfd_getfd %d fd %d: %s", (int)ctl->pid, (int)rfd, strerror(-ret));
	}
	/* The target's copy goes whatever happened: it must not keep it. */
	r = uffd_close(ctl, heal, (int)rfd);
	if (r) {
		pr_err("close injected uffd %d in %d: %s", (int)rfd, (int)ctl->pid, strerror(-r));
		if (fd >= 0)
			close(fd);
		return r;
	}
	if (ret)
		return ret;
	*local = fd;
	return 0;
}
