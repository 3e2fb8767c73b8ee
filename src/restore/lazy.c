/* Lazy melt: the private anonymous memory of every process of the group
 * is not written before it runs; it is registered with a userfaultfd made
 * inside each process and one pager process (src/pager/serve.c) for the
 * group brings each page in on its first touch, and the rest in the
 * background.
 *
 * Order matters. In each process (rst_mm): map every mapping; make the
 * uffd; write what must be there eagerly (everything that is not lazy,
 * and the pages under each thread's stack pointer) -- before registering,
 * since a write into a registered missing page would wait for a pager;
 * register. Then, once every process is that far, start the pager
 * (rst_lazy_spawn); only then the rest of the restore of each, whose
 * injected syscalls may touch lazy memory (rseq's cpu id, for one) and
 * are served like any fault. */
#define LOG_PREFIX "restore: "
#include "restore/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <unistd.h>

#include "common/log.h"
#include "pager/serve.h"
#include "proc/mem.h"

/* The process's copy of its uffd goes this high (serve.h says why), where
 * the pager puts a forked child's too. */
#define LAZY_FD_MIN	PAGER_COPY_FD_MIN

bool rst_lazy_vma(const struct rst *r, const Cryo__VmaEntry *v)
{
	if (!r->lazy || !v->prot)
		return false;
	return v->kind == CRYO__VMA_KIND__VMA_ANON_PRIVATE ||
	       v->kind == CRYO__VMA_KIND__VMA_HEAP || v->kind == CRYO__VMA_KIND__VMA_STACK;
}

/* A userfaultfd made by the process itself (a uffd serves the mm that made
 * it), kept there at a high fd, and our copy of it. */
int rst_lazy_begin(struct rst *r)
{
	int64_t fd, hi, res;
	int ret;

	ret = rst_call(r, 0, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0, &fd);
	if (ret || fd < 0) {
		pr_err("%s: userfaultfd in pid %d: %s", r->name, (int)r->pid,
		       strerror(ret ? -ret : (int)-fd));
		return ret ? ret : (int)fd;
	}
	ret = rst_call(r, 0, SYS_fcntl, (uint64_t)fd, F_DUPFD_CLOEXEC, LAZY_FD_MIN, 0, 0, 0, &hi);
	if (!ret && hi >= 0) {
		(void)rst_call(r, 0, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &res);
		fd = hi;	/* else a low limit on fds: keep the first one */
	}
	r->lazy_target_fd = (int)fd;
	r->uffd = (int)syscall(SYS_pidfd_getfd, r->ctl->pidfd, (int)fd, 0);
	if (r->uffd < 0) {
		ret = -errno;
		pr_err("%s: pidfd_getfd uffd of pid %d: %s", r->name, (int)r->pid, strerror(-ret));
		return ret;
	}
	ret = pager_uffd_api(r->uffd);
	if (ret)
		pr_err("%s: userfaultfd features: %s", r->name, strerror(-ret));
	return ret;
}

static bool thread_sp(const Cryo__ThreadEntry *te, uint64_t *sp)
{
	struct user_regs_struct regs;

	if (te->regs.len != sizeof(regs))
		return false;
	memcpy(&regs, te->regs.data, sizeof(regs));
	*sp = regs.rsp;
	return true;
}

/* The eager part of a lazy mapping: the page under each thread's stack
 * pointer and the one below it (the red zone, a signal frame), so the
 * first instructions run without waiting for the pager. */
int rst_lazy_fill(struct rst *r, const Cryo__VmaEntry *v, uint8_t *buf)
{
	for (size_t i = 0; i < r->pe->n_threads; i++) {
		uint64_t sp;

		if (!thread_sp(r->pe->threads[i], &sp))
			continue;
		for (uint64_t page = (sp & ~(RST_PAGE - 1)) - RST_PAGE;
		     page <= (sp & ~(RST_PAGE - 1)); page += RST_PAGE) {
			int kind;

			if (page < v->start || page >= v->end)
				continue;
			kind = store_snap_read_page(r->sn, STORE_KEY(r->space, page / RST_PAGE), buf);
			if (kind < 0)
				return kind;
			if (kind != STORE_PAGE_DATA)
				continue;
			int ret = proc_mem_write(r->hpid, page, buf, RST_PAGE, NULL);
			if (ret) {
				pr_err("%s: write stack page %#llx: %s", r->name,
				       (unsigned long long)page, strerror(-ret));
				return ret;
			}
			r->pages_written++;
		}
	}
	return 0;
}

/* Register every lazy mapping of the process; the ranges are kept for
 * its pager. */
int rst_lazy_register(struct rst *r)
{
	int ret = 0;

	r->lazy_rg = calloc(r->mm->n_vmas + 1, sizeof(*r->lazy_rg));
	if (!r->lazy_rg)
		return -ENOMEM;
	r->lazy_n = 0;
	for (size_t i = 0; i < r->mm->n_vmas && !ret; i++) {
		const Cryo__VmaEntry *v = r->mm->vmas[i];

		if (!rst_lazy_vma(r, v))
			continue;
		ret = pager_uffd_register(r->uffd, v->start, v->end);
		if (ret)
			pr_err("%s: register %#llx-%#llx of pid %d for paging: %s", r->name,
			       (unsigned long long)v->start, (unsigned long long)v->end,
			       (int)r->pid, strerror(-ret));
		r->lazy_rg[r->lazy_n++] = (struct pager_range){ v->start, v->end, v->start };
	}
	return ret;
}

/* One pager for every process of the group that pages in. */
int rst_lazy_spawn(struct rst_tree *t)
{
	struct pager_target *tg = calloc(t->n + 1, sizeof(*tg));
	struct store_snap_info info;
	size_t n = 0;
	int ret;

	if (!tg)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		const struct rst *r = &t->p[i];

		if (r->uffd < 0)
			continue;	/* a zombie, or eager */
		tg[n++] = (struct pager_target){ .pid = r->hpid, .uffd = r->uffd,
						 .target_fd = r->lazy_target_fd, .space = r->space,
						 .r = r->lazy_rg, .n = r->lazy_n };
	}
	if (!n) {
		free(tg);
		return 0;
	}
	store_snap_info(t->p[0].sn, &info);
	struct pager_job j = {
		.name = t->p[0].name, .sn = t->p[0].sn, .snap = info.no,
		.keep_fd = store_file_fd(t->p[0].store), .t = tg, .nt = n,
		.dir = t->p[0].o->pager_dir, .log_path = t->p[0].o->pager_log,
	};
	ret = pager_spawn(&j, &t->pager_pid);
	if (ret)
		pr_err("%s: start its pager: %s", t->p[0].name, strerror(-ret));
	free(tg);
	/* the pager has its own copies */
	for (size_t i = 0; i < t->n; i++)
		if (t->p[i].uffd >= 0) {
			close(t->p[i].uffd);
			t->p[i].uffd = -1;
		}
	return ret;
}
