/* The address space, rebuilt by syscall injection from a scratch page that
 * sits in a hole of both the child's and the target's layouts. */
#define LOG_PREFIX "restore: "
#include "restore/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fault.h"
#include "common/log.h"
#include "proc/inject.h"
#include "proc/maps.h"
#include "proc/mem.h"

#define HOLE_FIRST	0x10000000ull		/* above where small executables sit */
#define HOLE_LIMIT	0x7ff000000000ull
#define AUXV_MAX_BYTES	1024

/* clone3 gadget (see task.c): the caller gets rax back at an int3; the new
 * thread (rax == 0) waits in pause() until it is seized. */
static const uint8_t clone_gadget[] = {
	0x0f, 0x05,			/* syscall */
	0x48, 0x85, 0xc0,		/* test rax, rax */
	0x75, 0x09,			/* jnz int3 */
	0xb8, 0x22, 0x00, 0x00, 0x00,	/* L: mov eax, SYS_pause */
	0x0f, 0x05,			/* syscall */
	0xeb, 0xf7,			/* jmp L */
	0xcc,				/* int3 */
};

struct rng {
	uint64_t s, e;
};

struct rngs {
	struct rng *v;
	size_t n, cap;
};

static int rngs_add(struct rngs *rs, uint64_t s, uint64_t e)
{
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		struct rng *nv = realloc(rs->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		rs->v = nv;
		rs->cap = cap;
	}
	rs->v[rs->n].s = s;
	rs->v[rs->n++].e = e;
	return 0;
}

/* The lowest address from HOLE_FIRST where len bytes touch none of rs. */
static int find_hole(const struct rngs *rs, uint64_t len, uint64_t *out)
{
	uint64_t a = HOLE_FIRST;

	while (a + len <= HOLE_LIMIT) {
		bool moved = false;

		for (size_t i = 0; i < rs->n; i++)
			if (rs->v[i].s < a + len && a < rs->v[i].e) {
				a = (rs->v[i].e + RST_PAGE - 1) & ~(RST_PAGE - 1);
				moved = true;
			}
		if (!moved) {
			*out = a;
			return 0;
		}
	}
	pr_err("no hole of %llu bytes in the address space", (unsigned long long)len);
	return -ENOMEM;
}

int rst_call(struct rst *r, size_t idx, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
	     uint64_t a3, uint64_t a4, uint64_t a5, int64_t *res)
{
	const uint64_t a[6] = { a0, a1, a2, a3, a4, a5 };

	return proc_inject_syscall_thread(r->ctl, idx, nr, a, res);
}

int rst_put_data(struct rst *r, const void *buf, size_t len, uint64_t *addr)
{
	int ret;

	if (len > RST_PAGE)
		return -E2BIG;
	ret = proc_mem_write(r->hpid, r->scratch + RST_PAGE, buf, len, NULL);
	if (ret)
		pr_err("write scratch data in %d: %s", (int)r->pid, strerror(-ret));
	*addr = r->scratch + RST_PAGE;
	return ret;
}

/* A call whose -errno is the answer: 0 or -errno either way. */
static int call_err(struct rst *r, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
		    uint64_t a3, uint64_t a4, uint64_t a5, int64_t *res)
{
	int64_t v;
	int ret = rst_call(r, 0, nr, a0, a1, a2, a3, a4, a5, &v);

	if (ret)
		return ret;
	if (res)
		*res = v;
	return v < 0 && v > -4096 ? (int)v : 0;
}

static bool is_vsyscall(const char *name)
{
	return name && !strcmp(name, "[vsyscall]");
}

/* A kernel-made mapping ([vdso], [vvar], ...), as opposed to memory with a
 * bracketed name ([heap], [stack], [anon:NAME]) that is ordinary memory. */
static bool kernel_special(const struct proc_vma *v)
{
	return v->special && strcmp(v->path, "[heap]") && strcmp(v->path, "[stack]") &&
	       strncmp(v->path, "[anon:", 6) && strncmp(v->path, "[anon_shmem:", 12);
}

static int setup_scratch(struct rst *r, const struct proc_maps *cm)
{
	struct rngs rs = { 0 };
	uint64_t hint, out;
	int ret = 0;

	for (size_t i = 0; i < cm->n && !ret; i++)
		ret = rngs_add(&rs, cm->v[i].start, cm->v[i].end);
	for (size_t i = 0; i < r->mm->n_vmas && !ret; i++)
		ret = rngs_add(&rs, r->mm->vmas[i]->start, r->mm->vmas[i]->end);
	if (!ret)
		ret = find_hole(&rs, RST_SCRATCH_LEN, &hint);
	free(rs.v);
	if (ret)
		return ret;
	ret = proc_inject_make_scratch(r->ctl, hint);
	if (ret)
		return ret;
	if (r->ctl->scratch_code != hint) {
		pr_err("scratch page landed at %#llx, not in the hole at %#llx",
		       (unsigned long long)r->ctl->scratch_code, (unsigned long long)hint);
		return -EADDRINUSE;
	}
	ret = proc_remote_mmap(r->ctl, hint + RST_PAGE, RST_PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0, &out);
	if (ret) {
		pr_err("scratch data page at %#llx: %s", (unsigned long long)hint + RST_PAGE,
		       strerror(-ret));
		return ret;
	}
	/* proc_release() unmaps it with the code page. */
	r->ctl->scratch_data = hint + RST_PAGE;
	r->ctl->scratch_data_len = RST_PAGE;
	r->scratch = hint;
	return proc_mem_poke(r->ctl->t[0].tid, hint + RST_CLONE_GADGET_OFF, clone_gadget,
			     sizeof(clone_gadget));
}

/* glibc registered rseq in the child; its area is about to be unmapped and
 * the kernel would fault on it at the next return to user space. */
static int unregister_rseq(struct rst *r)
{
	struct proc_rseq rs;
	int ret = proc_get_rseq(r->hpid, &rs);

	if (ret == -ENOENT || (!ret && !rs.rseq_abi_pointer))
		return 0;
	if (ret)
		return ret;
	ret = call_err(r, SYS_rseq, rs.rseq_abi_pointer, rs.rseq_abi_size, 1 /* UNREGISTER */,
		       rs.signature, 0, 0, NULL);
	if (ret)
		pr_err("unregister the child's rseq: %s", strerror(-ret));
	return ret;
}

static int unmap_child(struct rst *r, const struct proc_maps *cm)
{
	uint64_t s0 = r->scratch, e0 = r->scratch + RST_SCRATCH_LEN;

	for (size_t i = 0; i < cm->n; i++) {
		const struct proc_vma *v = &cm->v[i];
		struct rng parts[2] = { { v->start, v->end < s0 ? v->end : s0 },
					{ v->start > e0 ? v->start : e0, v->end } };

		if (kernel_special(v))
			continue;
		for (int k = 0; k < 2; k++) {
			int ret;
			if (parts[k].s >= parts[k].e)
				continue;
			ret = proc_remote_munmap(r->ctl, parts[k].s, parts[k].e - parts[k].s);
			if (ret) {
				pr_err("unmap child memory %#llx-%#llx: %s",
				       (unsigned long long)parts[k].s,
				       (unsigned long long)parts[k].e, strerror(-ret));
				return ret;
			}
		}
	}
	return 0;
}

static int mremap_to(struct rst *r, uint64_t from, uint64_t len, uint64_t to, const char *name)
{
	int ret;

	if (from == to)
		return 0;
	ret = call_err(r, SYS_mremap, from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to, 0, NULL);
	if (ret)
		pr_err("move %s from %#llx to %#llx: %s", name, (unsigned long long)from,
		       (unsigned long long)to, strerror(-ret));
	return ret;
}

/* [vdso], [vvar], [vvar_vclock], ...: whatever this kernel maps, by name;
 * the snapshot must have the same set with the same sizes. Two moves (via
 * a hole) so that no move lands on one not yet moved. */
static int move_specials(struct rst *r, const struct proc_maps *cm)
{
	size_t nt = r->mm->n_vmas;
	uint64_t *cur = calloc(nt ? nt : 1, sizeof(*cur));
	struct rngs rs = { 0 };
	uint64_t total = 0, hole = 0, at;
	int ret = 0;

	if (!cur)
		return -ENOMEM;
	for (size_t i = 0; i < cm->n && !ret; i++) {
		const struct proc_vma *v = &cm->v[i];
		bool found = false;

		if (!kernel_special(v) || is_vsyscall(v->path))
			continue;
		for (size_t j = 0; j < nt; j++) {
			const Cryo__VmaEntry *t = r->mm->vmas[j];
			if (t->kind == CRYO__VMA_KIND__VMA_SPECIAL && t->path &&
			    !strcmp(t->path, v->path))
				found = true;
		}
		if (!found) {
			pr_err("special mapping %s of this kernel is not in the snapshot "
			       "(taken on another kernel?)", v->path);
			ret = -ENOTSUP;
		}
	}
	for (size_t j = 0; j < nt && !ret; j++) {
		const Cryo__VmaEntry *t = r->mm->vmas[j];
		const struct proc_vma *v;

		if (t->kind != CRYO__VMA_KIND__VMA_SPECIAL || is_vsyscall(t->path))
			continue;
		v = t->path ? proc_maps_find_name(cm, t->path) : NULL;
		if (!v) {
			pr_err("special mapping %s of the snapshot does not exist on this kernel",
			       t->path ? t->path : "(unnamed)");
			ret = -ENOTSUP;
		} else if (v->end - v->start != t->end - t->start) {
			pr_err("special mapping %s is %llu KiB here, %llu KiB in the snapshot",
			       t->path, (unsigned long long)(v->end - v->start) >> 10,
			       (unsigned long long)(t->end - t->start) >> 10);
			ret = -ENOTSUP;
		} else {
			cur[j] = v->start;
			total += v->end - v->start;
		}
	}
	if (ret || !total)
		goto out;
	for (size_t i = 0; i < cm->n && !ret; i++)
		if (kernel_special(&cm->v[i]))
			ret = rngs_add(&rs, cm->v[i].start, cm->v[i].end);
	if (!ret)
		ret = rngs_add(&rs, r->scratch, r->scratch + RST_SCRATCH_LEN);
	for (size_t j = 0; j < nt && !ret; j++)
		ret = rngs_add(&rs, r->mm->vmas[j]->start, r->mm->vmas[j]->end);
	if (!ret)
		ret = find_hole(&rs, total, &hole);
	at = hole;
	for (size_t j = 0; j < nt && !ret; j++) {
		const Cryo__VmaEntry *t = r->mm->vmas[j];
		if (!cur[j])
			continue;
		ret = mremap_to(r, cur[j], t->end - t->start, at, t->path);
		cur[j] = at;
		at += t->end - t->start;
	}
	for (size_t j = 0; j < nt && !ret; j++) {
		const Cryo__VmaEntry *t = r->mm->vmas[j];
		if (cur[j])
			ret = mremap_to(r, cur[j], t->end - t->start, t->start, t->path);
	}
out:
	free(rs.v);
	free(cur);
	return ret;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* The file must be the one that was mapped. */
static int check_file(const char *path, const Cryo__FileId *id)
{
	struct stat st;

	if (stat(path, &st)) {
		int ret = -errno;
		pr_err("%s: %s (it was mapped at the snapshot)", path, strerror(-ret));
		return ret;
	}
	if (!id)
		return 0;
	if ((uint64_t)st.st_dev != id->dev || (uint64_t)st.st_ino != id->ino ||
	    (uint64_t)st.st_size != id->size ||
	    (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec !=
		    id->mtime_ns) {
		pr_err("%s changed since the snapshot (%s)", base_name(path), path);
		return -ESTALE;
	}
	return 0;
}

/* Open path inside the target; *fd is the target's fd. */
static int remote_open(struct rst *r, const char *path, int flags, int *fd)
{
	uint64_t addr;
	int64_t res;
	size_t len = strlen(path) + 1;
	int ret;

	if (len > RST_PAGE) {
		pr_err("path too long: %.64s...", path);
		return -ENAMETOOLONG;
	}
	ret = rst_put_data(r, path, len, &addr);
	if (ret)
		return ret;
	ret = call_err(r, SYS_openat, (uint64_t)AT_FDCWD, addr, (uint64_t)(flags | O_CLOEXEC), 0,
		       0, 0, &res);
	if (ret) {
		pr_err("open %s in the new process: %s", path, strerror(-ret));
		return ret;
	}
	*fd = (int)res;
	return 0;
}

/* The object made before the processes for content space `space`
 * (shared.c), whose fd the process inherited: its number there. */
static int object_fd(struct rst *r, const Cryo__VmaEntry *v, uint32_t space, bool rw, int *fd)
{
	const struct fd_object *o = r->sh ? rst_shared_obj(r->sh, space) : NULL;

	if (!o) {
		pr_err("mapping %#llx-%#llx (%s): its object (content space %u) was not made",
		       (unsigned long long)v->start, (unsigned long long)v->end,
		       v->path && *v->path ? v->path : "shared memory", space);
		return -EBADMSG;
	}
	*fd = rw ? o->fd : o->fd_ro;
	return 0;
}

/* A shared mapping of a file that was writable through it (VM_MAYWRITE):
 * only then does its object come back writable. */
static bool may_write(const Cryo__VmaEntry *v)
{
	return v->has_vmflags ? (v->vmflags & PROC_VMF(MW)) != 0 : (v->prot & PROT_WRITE) != 0;
}

/* System V shared memory: shmat of the whole segment at the mapping with
 * offset 0; the mappings after it that continue the attach (shared.c
 * checked they are whole) come with it. */
static int map_sysv(struct rst *r, const Cryo__VmaEntry *v)
{
	int64_t res;
	int ret;

	if (v->pgoff)
		return 0;
	ret = fault_fire(FP_RESTORE_MMAP_FAIL);
	if (!ret)
		ret = call_err(r, SYS_shmat, v->sysv_shmid, v->start, may_write(v) ? 0 : SHM_RDONLY,
			       0, 0, 0, &res);
	if (!ret && (uint64_t)res != v->start)
		ret = -EADDRNOTAVAIL;
	if (ret)
		pr_err("attach System V shared memory %u at %#llx: %s", v->sysv_shmid,
		       (unsigned long long)v->start, strerror(-ret));
	return ret;
}

static int map_one(struct rst *r, const Cryo__VmaEntry *v)
{
	uint64_t len = v->end - v->start, out;
	int prot = (int)v->prot, flags = MAP_FIXED, fd = -1, ret;
	bool shared_file = v->kind == CRYO__VMA_KIND__VMA_FILE_SHARED, opened = false;

	if (!shared_file && v->kind != CRYO__VMA_KIND__VMA_ANON_SHARED)
		prot |= PROT_READ | PROT_WRITE;	/* filled first, protected after */
	switch (v->kind) {
	case CRYO__VMA_KIND__VMA_ANON_PRIVATE:
	case CRYO__VMA_KIND__VMA_HEAP:
	case CRYO__VMA_KIND__VMA_STACK:
		flags |= MAP_PRIVATE | MAP_ANONYMOUS;
		if (v->vmflags & PROC_VMF_GROWSDOWN)
			flags |= MAP_GROWSDOWN;
		break;
	case CRYO__VMA_KIND__VMA_ANON_SHARED:
		/* the group's one shmem object, filled already */
		ret = object_fd(r, v, v->has_shmem_space ? v->shmem_space : 0, true, &fd);
		if (ret)
			return ret;
		flags |= MAP_SHARED;
		break;
	case CRYO__VMA_KIND__VMA_SYSV_SHM:
		return map_sysv(r, v);
	case CRYO__VMA_KIND__VMA_FILE_PRIVATE:
	case CRYO__VMA_KIND__VMA_FILE_SHARED:
		flags |= shared_file ? MAP_SHARED : MAP_PRIVATE;
		if (v->has_memfd_space) {
			/* a memfd or a deleted file: the group's one copy of it */
			ret = object_fd(r, v, v->memfd_space, shared_file && may_write(v), &fd);
			if (ret)
				return ret;
			break;
		}
		if (!v->path || (v->has_deleted && v->deleted)) {
			pr_err("mapping %#llx-%#llx of %s: a deleted file without its contents",
			       (unsigned long long)v->start, (unsigned long long)v->end,
			       v->path ? v->path : "(no path)");
			return -EBADMSG;
		}
		ret = check_file(v->path, v->file);
		if (ret)
			return ret;
		ret = remote_open(r, v->path,
				  shared_file && (v->prot & PROT_WRITE) ? O_RDWR : O_RDONLY, &fd);
		if (ret)
			return ret;
		opened = true;
		break;
	default:
		pr_err("mapping %#llx-%#llx: unknown kind %d", (unsigned long long)v->start,
		       (unsigned long long)v->end, (int)v->kind);
		return -ENOTSUP;
	}
	ret = fault_fire(FP_RESTORE_MMAP_FAIL);
	if (!ret)
		ret = proc_remote_mmap(r->ctl, v->start, len, prot, flags, fd,
				       fd >= 0 ? v->pgoff : 0, &out);
	if (!ret && out != v->start)
		ret = -EADDRNOTAVAIL;
	if (ret)
		pr_err("map %#llx-%#llx (%s): %s", (unsigned long long)v->start,
		       (unsigned long long)v->end, v->path && *v->path ? v->path : "anonymous",
		       strerror(-ret));
	if (opened)
		(void)proc_remote_close(r->ctl, fd);
	return ret;
}

/* The shared objects' fds the process inherited: every mapping has its
 * file now. Nothing else of the process is in that range (they sit above
 * all of its own fds). */
static int close_objects(struct rst *r)
{
	int ret;

	if (!r->sh || r->sh->fd_lo < 0)
		return 0;
	ret = call_err(r, SYS_close_range, (uint64_t)r->sh->fd_lo, (uint64_t)r->sh->fd_hi, 0, 0, 0,
		       0, NULL);
	if (ret)
		pr_err("closing the shared objects' fds %d-%d in the new process: %s",
		       r->sh->fd_lo, r->sh->fd_hi, strerror(-ret));
	return ret;
}

/* A lazy melt writes only what must be there before anything runs (its
 * eager kinds whole, the pages under the stacks): little, in order. */
static int fill_lazily(struct rst *r)
{
	uint8_t *buf = malloc(RST_FILL_BATCH * RST_PAGE), *kinds = malloc(RST_FILL_BATCH);
	int ret = buf && kinds ? rst_lazy_begin(r) : -ENOMEM;

	for (size_t i = 0; i < r->mm->n_vmas && !ret; i++) {
		const Cryo__VmaEntry *v = r->mm->vmas[i];

		if (v->kind == CRYO__VMA_KIND__VMA_SPECIAL)
			continue;
		ret = rst_lazy_vma(r, v) ? rst_lazy_fill(r, v, buf) : rst_fill_vma(r, v, buf, kinds);
	}
	free(buf);
	free(kinds);
	return ret ? ret : rst_lazy_register(r);
}

static int finish_one(struct rst *r, const Cryo__VmaEntry *v)
{
	static const struct { uint64_t flag; int advice; } adv[] = {
		{ PROC_VMF_DONTFORK, MADV_DONTFORK },
		{ PROC_VMF_WIPEONFORK, MADV_WIPEONFORK },
		{ PROC_VMF_DONTDUMP, MADV_DONTDUMP },
		{ PROC_VMF_HUGEPAGE, MADV_HUGEPAGE },
		{ PROC_VMF_NOHUGEPAGE, MADV_NOHUGEPAGE },
	};
	uint64_t len = v->end - v->start;
	/* shmat made it read-write (or read-only) without exec: exactly so */
	bool sysv = v->kind == CRYO__VMA_KIND__VMA_SYSV_SHM;
	int ret;

	if ((sysv && v->prot != (PROT_READ | PROT_WRITE)) ||
	    (!sysv && v->kind != CRYO__VMA_KIND__VMA_FILE_SHARED &&
	     v->kind != CRYO__VMA_KIND__VMA_ANON_SHARED &&
	     (v->prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE))) {
		ret = proc_remote_mprotect(r->ctl, v->start, len, (int)v->prot);
		if (ret) {
			pr_err("protect %#llx-%#llx: %s", (unsigned long long)v->start,
			       (unsigned long long)v->end, strerror(-ret));
			return ret;
		}
	}
	for (size_t i = 0; i < sizeof(adv) / sizeof(adv[0]); i++) {
		if (!(v->vmflags & adv[i].flag))
			continue;
		ret = proc_remote_madvise(r->ctl, v->start, len, adv[i].advice);
		if (ret) {
			pr_err("madvise %d on %#llx-%#llx: %s", adv[i].advice,
			       (unsigned long long)v->start, (unsigned long long)v->end,
			       strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int set_mm_map(struct rst *r)
{
	const Cryo__MmEntry *m = r->mm;
	struct {
		struct prctl_mm_map map;
		uint64_t pad[4];
		uint64_t auxv[AUXV_MAX_BYTES / 8];
	} d;
	uint64_t addr;
	int exe = -1, ret;

	memset(&d, 0, sizeof(d));
	if ((m->n_auxv / 2 + 1) * 16 > AUXV_MAX_BYTES) {
		pr_err("auxv of %zu entries is too long", m->n_auxv / 2);
		return -E2BIG;
	}
	for (size_t i = 0; i + 1 < m->n_auxv; i += 2) {
		d.auxv[i] = m->auxv[i];
		d.auxv[i + 1] = m->auxv[i + 1];
	}
	if (m->exe_path) {
		struct stat a, b;

		ret = check_file(m->exe_path, m->exe_id);
		if (ret)
			return ret;
		/* The new process's exe is ours (it was forked from us). When
		 * that is also the snapshot's exe, it is right already, and the
		 * kernel would refuse the change while the file is mapped. */
		if (stat("/proc/self/exe", &a) || stat(m->exe_path, &b) ||
		    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
			ret = remote_open(r, m->exe_path, O_RDONLY, &exe);
			if (ret)
				return ret;
		}
	}
	d.map.start_code = m->start_code;
	d.map.end_code = m->end_code;
	d.map.start_data = m->start_data;
	d.map.end_data = m->end_data;
	d.map.start_brk = m->start_brk;
	d.map.brk = m->brk;
	d.map.start_stack = m->start_stack;
	d.map.arg_start = m->arg_start;
	d.map.arg_end = m->arg_end;
	d.map.env_start = m->env_start;
	d.map.env_end = m->env_end;
	d.map.auxv_size = (uint32_t)((m->n_auxv / 2 + 1) * 16);
	d.map.exe_fd = (uint32_t)exe;
	ret = rst_put_data(r, &d, sizeof(d), &addr);
	if (ret)
		goto out;
	d.map.auxv = (__u64 *)(uintptr_t)(addr + offsetof(typeof(d), auxv));
	ret = rst_put_data(r, &d, sizeof(d), &addr);
	if (ret)
		goto out;
	ret = call_err(r, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, addr, sizeof(d.map), 0, 0, NULL);
	if (ret)
		pr_err("PR_SET_MM_MAP (code %#llx-%#llx, brk %#llx-%#llx, exe %s): %s",
		       (unsigned long long)m->start_code, (unsigned long long)m->end_code,
		       (unsigned long long)m->start_brk, (unsigned long long)m->brk,
		       m->exe_path ? m->exe_path : "-", strerror(-ret));
out:
	if (exe >= 0)
		(void)proc_remote_close(r->ctl, exe);
	return ret;
}

int rst_mm(struct rst *r)
{
	struct proc_maps cm;
	int ret;

	ret = proc_maps_read(r->hpid, false, &cm);
	if (ret) {
		pr_err("read the new process's maps: %s", strerror(-ret));
		return ret;
	}
	ret = setup_scratch(r, &cm);
	if (!ret)
		ret = unregister_rseq(r);
	if (!ret)
		ret = unmap_child(r, &cm);
	if (!ret)
		ret = move_specials(r, &cm);
	proc_maps_free(&cm);
	if (ret)
		return ret;
	for (size_t i = 0; i < r->mm->n_vmas && !ret; i++)
		if (r->mm->vmas[i]->kind != CRYO__VMA_KIND__VMA_SPECIAL)
			ret = map_one(r, r->mm->vmas[i]);
	if (!ret)
		ret = close_objects(r);
	if (ret)
		return ret;
	ret = r->lazy ? fill_lazily(r) : rst_fill_all(r);
	for (size_t i = 0; i < r->mm->n_vmas && !ret; i++)
		if (r->mm->vmas[i]->kind != CRYO__VMA_KIND__VMA_SPECIAL)
			ret = finish_one(r, r->mm->vmas[i]);
	if (!ret)
		ret = set_mm_map(r);
	return ret;
}
