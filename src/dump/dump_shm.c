/* System V shared memory (shmget/shmat) in a capture.
 *
 * A segment lives in the IPC namespace, not in a process: a freeze ends
 * the processes and the segment stays (unless IPC_RMID was asked), a
 * reboot loses it. The snapshot keeps what IPC_STAT says of it (key, id,
 * size, mode, owner, creator, ctime, removed) and its contents once, in
 * a page space of its own; each mapping names it by shmid and keeps its
 * address, so melt attaches it where it was (restore/shared.c).
 *
 * What is refused, never half saved: a segment of another IPC namespace
 * (cryo reads and remakes segments in its own), a segment attached only
 * in part (a munmap'd piece: shmat cannot make that again), and a segment
 * that processes outside the group attach too (shm_nattch counts every
 * mapping of it; melt could not give it back to both). */
#define LOG_PREFIX "dump: "
#include "dump/dump_int.h"
#include "common/log.h"
#include "common/vec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/stat.h>

#define PAGE 4096ull

static int same_ipc_ns(pid_t pid)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", (int)pid);
	if (stat(path, &a) || stat("/proc/self/ns/ipc", &b))
		return -errno;
	return a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static int is_sysv(const struct proc_vma *v, uint64_t shmid)
{
	return v->shared && v->deleted && v->inode == shmid && !strncmp(v->path, "/SYSV", 5);
}

/* A mapping with pgoff 0 starts an attach: it and the mappings right after
 * it (split by mprotect) must cover the whole segment; one with another
 * pgoff must continue the mapping before it. */
static int whole_attach(const struct dump_ctx *d, const struct proc_vma *v, uint64_t size)
{
	size_t i = (size_t)(v - d->maps.v);
	uint64_t want = (size + PAGE - 1) & ~(PAGE - 1), at;

	if (v->pgoff) {
		const struct proc_vma *p = i ? &d->maps.v[i - 1] : NULL;

		return p && is_sysv(p, v->inode) && p->end == v->start &&
		       p->pgoff + (p->end - p->start) == v->pgoff;
	}
	at = v->end - v->start;
	for (size_t k = i + 1; k < d->maps.n && at < want; k++) {
		const struct proc_vma *n = &d->maps.v[k];

		if (!is_sysv(n, v->inode) || n->start != d->maps.v[k - 1].end || n->pgoff != at)
			break;
		at += n->end - n->start;
	}
	return at == want;
}

static int refuse(const struct dump_ctx *d, const struct proc_vma *v, uint64_t shmid,
		  const char *why)
{
	pr_err("cannot capture pid %d: System V shared memory %" PRIu64 " at %" PRIx64 "-%" PRIx64
	       ": %s", (int)d->pid, shmid, v->start, v->end, why);
	return -ENOTSUP;
}

/* The segment's entry in d->shm, made from IPC_STAT on first sight. */
static int segment(struct dump_ctx *d, const struct proc_vma *v, Cryo__VmaEntry *e, size_t *at)
{
	struct dump_shm *s = d->shm;
	struct shmid_ds ds;
	Cryo__SysvShm *m;
	uint32_t space;
	int r;

	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].m.shmid == v->inode) {
			*at = i;
			return dump_save_object(d, v, DUMP_TAG_SYSV, &space, e);
		}
	r = same_ipc_ns(d->pid);
	if (r <= 0)
		return r < 0 ? r : refuse(d, v, v->inode, "in another IPC namespace than cryo's");
	if (shmctl((int)v->inode, IPC_STAT, &ds) < 0) {
		r = -errno;
		pr_err("pid %d: System V shared memory %" PRIu64 ": IPC_STAT: %s", (int)d->pid,
		       v->inode, strerror(errno));
		return r;
	}
	r = dump_save_object(d, v, DUMP_TAG_SYSV, &space, e);
	if (!r)
		r = vec_reserve((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v));
	if (r)
		return r;
	m = &s->v[s->n].m;
	cryo__sysv_shm__init(m);
	m->shmid = (uint32_t)v->inode;
	m->key = ds.shm_perm.__key;
	m->size = ds.shm_segsz;
	m->mode = ds.shm_perm.mode & 0777;
	m->uid = ds.shm_perm.uid;
	m->gid = ds.shm_perm.gid;
	m->cuid = ds.shm_perm.cuid;
	m->cgid = ds.shm_perm.cgid;
	m->ctime = ds.shm_ctime;
	m->has_removed = m->has_locked = 1;
	m->removed = (ds.shm_perm.mode & SHM_DEST) != 0;
	m->locked = (ds.shm_perm.mode & SHM_LOCKED) != 0;
	m->space = space;
	/* every mapping, ours and anyone's: what is left once the capture's
	 * are counted is someone else's (dump_shm_check) */
	s->v[s->n].others = (int64_t)ds.shm_nattch;
	*at = s->n++;
	return 0;
}

int dump_shm_plan(struct dump_ctx *d, const struct proc_vma *v, Cryo__VmaEntry *e)
{
	size_t at;
	int r;

	if (!d->shm)
		return refuse(d, v, v->inode, "not supported by this capture");
	r = segment(d, v, e, &at);
	if (r)
		return r;
	if (!whole_attach(d, v, d->shm->v[at].m.size))
		return refuse(d, v, v->inode, "only part of the segment is attached (a piece was "
			      "unmapped); shmat cannot make that again");
	d->shm->v[at].others--;
	e->has_pgoff = e->has_shmem_space = e->has_sysv_shmid = 1;
	e->pgoff = v->pgoff;
	e->shmem_space = d->shm->v[at].m.space;
	e->sysv_shmid = (uint32_t)v->inode;
	return 0;
}

int dump_shm_check(const struct dump_shm *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++) {
		const Cryo__SysvShm *m = &s->v[i].m;
		int64_t n = s->v[i].others;

		if (n > 0) {
			pr_err("group %s: System V shared memory %u (key %#x) is also attached by "
			       "processes outside the group (%lld mapping%s not the group's): melt "
			       "could not give it back to both", name, m->shmid, (unsigned)m->key,
			       (long long)n, n == 1 ? "" : "s");
			return -ENOTSUP;
		}
	}
	return 0;
}

int dump_shm_group(struct dump_shm *s, Cryo__GroupEntry *g)
{
	if (!s->n)
		return 0;
	free(s->pv);
	s->pv = malloc(s->n * sizeof(*s->pv));
	if (!s->pv)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		s->pv[i] = &s->v[i].m;
	g->n_sysv_shm = s->n;
	g->sysv_shm = s->pv;
	return 0;
}

void dump_shm_free(struct dump_shm *s)
{
	free(s->v);
	free(s->pv);
	*s = (struct dump_shm){ 0 };
}
