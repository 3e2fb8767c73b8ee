/* The fd table: each fd goes to the first kind of fd_kinds[] that matches
 * it; an fd no kind takes refuses the whole snapshot, naming the fd. */
#define LOG_PREFIX "dump: "
#include "dump/dump_int.h"
#include "common/log.h"
#include "proc/fds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* What an fd is, in words, for the refusal message. */
static const char *kind_word(const struct stat *st, const char *link)
{
	if (S_ISSOCK(st->st_mode))
		return "socket";
	if (!strncmp(link, "anon_inode:", 11))
		return "anonymous inode";
	if (S_ISCHR(st->st_mode))
		return "character device";
	if (S_ISBLK(st->st_mode))
		return "block device";
	if (S_ISFIFO(st->st_mode))
		return "fifo";
	if (S_ISDIR(st->st_mode))
		return "directory";
	if (S_ISREG(st->st_mode))
		return "file";
	return "unknown";
}

static int one_fd(struct dump_ctx *d, const struct proc_fd *pf, Cryo__FdEntry *e)
{
	struct proc_fdinfo fi;
	struct fd_probe p = { .pid = d->pid, .fd = pf->fd, .link = pf->target, .local = -1,
			       .group = d->group, .ngroup = d->ngroup,
			       .links = &d->fdc->links };
	const struct fd_ops *k;
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)d->pid, pf->fd);
	if (stat(path, &p.st) < 0) {
		r = -errno;
		pr_err("pid %d fd %d (%s): stat: %s", (int)d->pid, pf->fd, pf->target, strerror(errno));
		return r;
	}
	r = proc_fdinfo_read(d->pid, pf->fd, &fi);
	if (r) {
		pr_err("pid %d fd %d: fdinfo: %s", (int)d->pid, pf->fd, strerror(-r));
		return r;
	}
	p.info = &fi;
	/* Our own handle on the same open file: the kinds match and read
	 * through it (socket family, pipe bytes, memfd contents) without
	 * touching the process. */
	p.local = (int)syscall(SYS_pidfd_getfd, d->ctl->pidfd, pf->fd, 0);
	k = fd_kind_match(&p);
	if (!k) {
		pr_err("cannot capture fd %d (%s: %s): not supported yet", pf->fd,
		       kind_word(&p.st, pf->target), pf->target);
		r = -ENOTSUP;
		goto out;
	}
	cryo__fd_entry__init(e);
	e->fd = (uint32_t)pf->fd;
	e->kind = (char *)k->name;
	e->flags = fi.flags & ~(uint32_t)O_CLOEXEC;
	e->has_cloexec = 1;
	e->cloexec = (fi.flags & O_CLOEXEC) != 0;
	e->has_pos = 1;
	e->pos = fi.pos;
	r = k->dump(d->fdc, &p, e);
	if (!r)
		r = fd_locks_dump(&p, e);
	if (r)
		pr_err("pid %d fd %d (%s): %s: %s", (int)d->pid, pf->fd, pf->target, k->name,
		       r == -ENOTSUP ? "cannot be captured" : strerror(-r));
out:
	if (p.local >= 0)
		close(p.local);
	proc_fdinfo_free(&fi);
	return r;
}

int dump_fds(struct dump_ctx *d, Cryo__FdsEntry *fe)
{
	struct proc_fds fds = { 0 };
	int r = proc_fds_list(d->pid, &fds);

	if (r) {
		pr_err("pid %d: listing fds: %s", (int)d->pid, strerror(-r));
		return r;
	}
	fe->fds = dump_alloc(&d->a, fds.n * sizeof(*fe->fds) + 1);
	if (!fe->fds) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < fds.n; i++) {
		Cryo__FdEntry *e = dump_alloc(&d->a, sizeof(*e));

		if (!e) {
			r = -ENOMEM;
			goto out;
		}
		fe->fds[fe->n_fds++] = e;
		r = one_fd(d, &fds.v[i], e);
		if (r)
			goto out;
	}
out:
	proc_fds_free(&fds);
	return r;
}

/* Kinds malloc their payload and description; the arena does not own them. */
void dump_fds_free(Cryo__FdsEntry *fe)
{
	for (size_t i = 0; i < fe->n_fds; i++) {
		if (!fe->fds[i])
			continue;
		free(fe->fds[i]->payload.data);
		free(fe->fds[i]->desc);
		fd_locks_free(fe->fds[i]);
		fe->fds[i]->payload.data = NULL;
		fe->fds[i]->desc = NULL;
	}
}

/* ---- open file descriptions held by several fds ---- */

struct share_item {
	dev_t dev;
	ino_t ino;
	size_t proc;			/* index in the capture */
	Cryo__FdEntry *e;
};

static int cmp_item(const void *a, const void *b)
{
	const struct share_item *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	if (x->proc != y->proc)
		return x->proc < y->proc ? -1 : 1;
	return (x->e->fd > y->e->fd) - (x->e->fd < y->e->fd);
}

/* kcmp(KCMP_FILE) of two fds: 0 the same open file, -1 / 1 the kernel's
 * order of two different ones, -2 if it cannot tell (an error). */
static int kcmp_file(pid_t p1, int fd1, pid_t p2, int fd2)
{
	long r = syscall(SYS_kcmp, p1, p2, 0 /* KCMP_FILE */, fd1, fd2);

	return r == 0 ? 0 : r == 1 ? -1 : r == 2 ? 1 : -2;
}

struct share_sort {
	const struct dump_ctx *d;
	int failed;
};

/* Orders items of one inode by open file description, as the kernel
 * orders them: the same description ends up adjacent, so a run of n fds
 * costs O(n log n) kcmp calls, not one per pair (a process with 1,000
 * /dev/null fds made 500,000 of them). */
static int cmp_file(const void *a, const void *b, void *arg)
{
	const struct share_item *x = a, *y = b;
	struct share_sort *ss = arg;
	int r = kcmp_file(ss->d[x->proc].pid, (int)x->e->fd, ss->d[y->proc].pid, (int)y->e->fd);

	if (r == -2) {
		ss->failed = 1;
		return cmp_item(a, b);
	}
	return r;
}

/* Items of one inode: fds of one open file description get one id. */
static int share_run(struct dump_ctx *d, struct share_item *it, size_t n, uint32_t *next_id)
{
	struct share_sort ss = { d, 0 };

	qsort_r(it, n, sizeof(*it), cmp_file, &ss);
	for (size_t i = 1; i < n && !ss.failed; i++) {
		if (cmp_file(&it[i - 1], &it[i], &ss))
			continue;
		if (!it[i - 1].e->has_shared) {
			it[i - 1].e->has_shared = 1;
			it[i - 1].e->shared = (*next_id)++;
		}
		it[i].e->has_shared = 1;
		it[i].e->shared = it[i - 1].e->shared;
	}
	if (ss.failed) {
		/* an order built on a failed kcmp could put one file's fds apart */
		pr_err("pid %d fd %u: kcmp: %s", (int)d[it[0].proc].pid, it[0].e->fd,
		       strerror(errno));
		return -EIO;
	}
	return 0;
}

int dump_fds_share(struct dump_ctx *d, Cryo__FdsEntry *fe, size_t n)
{
	struct share_item *it;
	size_t total = 0, k = 0;
	uint32_t next_id = 1;
	int r = 0;

	for (size_t i = 0; i < n; i++)
		total += fe[i].n_fds;
	if (total < 2)
		return 0;
	it = calloc(total, sizeof(*it));
	if (!it)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < fe[i].n_fds; j++) {
			char path[64];
			struct stat st;

			snprintf(path, sizeof(path), "/proc/%d/fd/%u", (int)d[i].pid,
				 fe[i].fds[j]->fd);
			if (stat(path, &st) < 0) {
				r = -errno;
				pr_err("pid %d fd %u: stat: %s", (int)d[i].pid, fe[i].fds[j]->fd,
				       strerror(errno));
				free(it);
				return r;
			}
			it[k++] = (struct share_item){ st.st_dev, st.st_ino, i, fe[i].fds[j] };
		}
	qsort(it, k, sizeof(*it), cmp_item);
	for (size_t a = 0, b; a < k; a = b) {
		for (b = a + 1; b < k && it[b].dev == it[a].dev && it[b].ino == it[a].ino; b++)
			;
		if (b - a > 1 && (r = share_run(d, it + a, b - a, &next_id)))
			break;
	}
	free(it);
	return r;
}
