/* What the processes of a melt share, made once before any of them.
 *
 * Files whose contents the snapshot holds -- shared anonymous memory
 * (MAP_SHARED|MAP_ANONYMOUS, /dev/zero), memfds, deleted files -- are
 * made by cryo itself, one per content space, and filled once. Their fds
 * are moved above every fd number of the image; the processes, forked
 * from cryo, inherit them there and keep them through their own fd set-up
 * (rst_shared_close_below), so that:
 *   - an fd kind whose file is one of them reopens it (fd_object_fd)
 *     instead of making another;
 *   - mm.c maps it at each of its mappings, in each process, with the
 *     mapping's offset, then closes the inherited fds in the process.
 * So two processes, or two mappings of one process, that shared memory
 * share it again, and the memory a memfd's fd writes is the memory its
 * mappings show.
 *
 * System V segments live in the IPC namespace, not in a process: a freeze
 * ends the processes and leaves the segment (unless it was removed). At
 * melt a segment is
 *   - the same one, still there (key, size, creator and ctime as at the
 *     snapshot, attached by nobody): kept, its contents put back to the
 *     snapshot's (a snapshot taken before a kill -9 is older than the
 *     segment's contents);
 *   - gone: made again with its id (/proc/sys/kernel/shm_next_id), key,
 *     size, mode and owner, filled;
 *   - anything else is a clear error: its id or its key is another
 *     segment's, or someone outside the group attaches it.
 * Each process attaches it where it was (mm.c); one removed while
 * attached (IPC_RMID) is removed again once all have attached it. */
#define LOG_PREFIX "restore: "
#include "restore/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/vec.h"

#define OBJ_SIZE_MAX	(1ull << 48)	/* what one content space reaches */
#define NATTCH_WAIT_MS	3000		/* processes of the group still exiting */
#define SHM_NEXT_ID	"/proc/sys/kernel/shm_next_id"

enum obj_kind { OBJ_SHMEM, OBJ_MEMFD, OBJ_FILE };

/* One object as a mapping or an fd of the image describes it. */
struct obj_want {
	uint32_t space;
	uint64_t size;
	enum obj_kind kind;
	const char *name;		/* memfd: its name; file: where it lived */
	uint32_t mode;
	bool has_seals;
	uint32_t seals;
};

static uint64_t page_up(uint64_t n)
{
	return (n + RST_PAGE - 1) & ~(RST_PAGE - 1);
}

/* ---- files ---- */

/* A shmem file like the one MAP_SHARED|MAP_ANONYMOUS makes (its maps line
 * reads /dev/zero (deleted) again): mapped here only to open it. */
static int make_shmem(uint64_t size)
{
	char path[80];
	void *p;
	int fd;

	if (!size)
		return -EINVAL;
	p = mmap(NULL, page_up(size), PROT_NONE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)p,
		 (unsigned long)p + (unsigned long)page_up(size));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	munmap(p, page_up(size));
	return fd;
}

static int make_file(struct store_snap *sn, const struct obj_want *w)
{
	int fd, r;

	switch (w->kind) {
	case OBJ_SHMEM:
		fd = make_shmem(w->size);
		break;
	case OBJ_MEMFD:
		fd = memfd_create(w->name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0)
			fd = -errno;
		break;
	default:
		fd = fd_make_unlinked(w->name);
		break;
	}
	if (fd < 0) {
		pr_err("making the object of content space %u (%s%s): %s", w->space,
		       w->kind == OBJ_SHMEM ? "shared memory" : w->kind == OBJ_MEMFD ? "memfd:" :
		       "deleted ", w->kind == OBJ_SHMEM ? "" : w->name, strerror(-fd));
		return fd;
	}
	r = fd_contents_load(sn, w->space, w->size, fd);
	if (!r && w->kind == OBJ_FILE && fchmod(fd, w->mode & 07777))
		r = -errno;
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

static struct fd_object *obj_find(const struct rst_shared *sh, uint32_t space)
{
	for (size_t i = 0; i < sh->nobjs; i++)
		if (sh->objs[i].space == space)
			return &sh->objs[i];
	return NULL;
}

/* The object of w's space: made on first sight, above floor. */
static int obj_add(struct rst_tree *t, const struct obj_want *w, int floor)
{
	struct rst_shared *sh = &t->sh;
	struct fd_object *o = obj_find(sh, w->space);
	int fd, ro, r;

	if (o) {
		if (w->has_seals && !o->has_seals) {
			o->has_seals = true;
			o->seals = w->seals;
		}
		return 0;
	}
	if (w->space < IMAGE_SPACE_FILES || w->space > IMAGE_SPACE_MAX || w->size > OBJ_SIZE_MAX) {
		pr_err("%s: broken image: content space %u of %" PRIu64 " bytes", t->p[0].name,
		       w->space, w->size);
		return -EBADMSG;
	}
	r = vec_reserve((void **)&sh->objs, &sh->cap, sh->nobjs + 1, sizeof(*sh->objs));
	if (r)
		return r;
	fd = make_file(t->p[0].sn, w);
	if (fd < 0)
		return fd;
	ro = fd_reopen(fd, O_RDONLY | O_CLOEXEC);
	fd = fd_move_above(fd, sh->fd_hi >= 0 ? sh->fd_hi + 1 : floor);
	if (ro >= 0 && fd >= 0)
		ro = fd_move_above(ro, fd + 1);
	if (fd < 0 || ro < 0) {
		r = fd < 0 ? fd : ro;
		pr_err("the object of content space %u: placing its fds: %s", w->space, strerror(-r));
		if (fd >= 0)
			close(fd);
		if (ro >= 0)
			close(ro);
		return r;
	}
	if (sh->fd_lo < 0)
		sh->fd_lo = fd;
	sh->fd_hi = ro;
	sh->objs[sh->nobjs++] = (struct fd_object){
		.space = w->space, .fd = fd, .fd_ro = ro,
		.has_seals = w->has_seals && w->kind == OBJ_MEMFD, .seals = w->seals };
	return 0;
}

/* An image without object sizes: the furthest any mapping of it reaches. */
static uint64_t extent(const struct rst_tree *t, uint32_t space)
{
	uint64_t hi = 0;

	for (size_t i = 0; i < t->n; i++)
		for (size_t k = 0; t->p[i].mm && k < t->p[i].mm->n_vmas; k++) {
			const Cryo__VmaEntry *v = t->p[i].mm->vmas[k];
			bool here = (v->has_shmem_space && v->shmem_space == space) ||
				    (v->has_memfd_space && v->memfd_space == space);

			if (here && v->end > v->start && v->pgoff < OBJ_SIZE_MAX &&
			    v->pgoff + (v->end - v->start) > hi)
				hi = v->pgoff + (v->end - v->start);
		}
	return hi;
}

static int from_vma(struct rst_tree *t, const Cryo__VmaEntry *v, int floor)
{
	struct obj_want w = { .has_seals = v->has_seals, .seals = v->seals };

	if (v->kind == CRYO__VMA_KIND__VMA_ANON_SHARED && v->has_shmem_space) {
		w.space = v->shmem_space;
		w.kind = OBJ_SHMEM;
	} else if ((v->kind == CRYO__VMA_KIND__VMA_FILE_PRIVATE ||
		    v->kind == CRYO__VMA_KIND__VMA_FILE_SHARED) && v->has_memfd_space && v->path) {
		w.space = v->memfd_space;
		w.kind = strncmp(v->path, "/memfd:", 7) ? OBJ_FILE : OBJ_MEMFD;
		w.name = w.kind == OBJ_MEMFD ? v->path + 7 : v->path;
		w.mode = v->file && v->file->has_mode ? v->file->mode : 0600;
		w.size = v->file ? v->file->size : 0;
	} else {
		return 0;	/* not made here (map_one says what is wrong, if anything) */
	}
	if (v->has_object_size)
		w.size = v->object_size;
	else if (w.kind == OBJ_SHMEM)
		w.size = extent(t, w.space);
	return obj_add(t, &w, floor);
}

static int from_fd(struct rst_tree *t, const Cryo__FdEntry *e, int floor);

struct nested_arg {
	struct rst_tree *t;
	int floor;
};

static int from_nested(void *arg, const Cryo__FdEntry *n)
{
	struct nested_arg *a = arg;

	return from_fd(a->t, n, a->floor);
}

static int from_fd(struct rst_tree *t, const Cryo__FdEntry *e, int floor)
{
	const struct fd_ops *k = fd_kind_by_name(e->kind);
	struct fd_content c = { 0 };
	struct nested_arg na = { t, floor };
	struct obj_want w;
	int r;

	if (k && k->nested && (r = k->nested(e, from_nested, &na)))
		return r;	/* a memfd in flight is made like one held */
	if (!k || !k->content)
		return 0;
	r = k->content(e, &c);
	if (r == 1) {
		w = (struct obj_want){ .space = c.space, .size = c.size,
				       .kind = c.memfd_name ? OBJ_MEMFD : OBJ_FILE,
				       .name = c.memfd_name ? c.memfd_name : c.path, .mode = c.mode,
				       .has_seals = c.has_seals, .seals = c.seals };
		r = obj_add(t, &w, floor);
	}
	fd_content_fini(&c);
	return r;
}

/* Above every fd number the image gives a process: the objects' fds never
 * meet one of the process's own. */
static int fd_floor(const struct rst_tree *t)
{
	uint32_t hi = 2;

	for (size_t i = 0; i < t->n; i++)
		for (size_t k = 0; t->p[i].fds && k < t->p[i].fds->n_fds; k++)
			if (t->p[i].fds->fds[k]->fd > hi)
				hi = t->p[i].fds->fds[k]->fd;
	return hi < (1u << 20) ? (int)hi + 1 : -1;
}

static int make_files(struct rst_tree *t)
{
	int floor = fd_floor(t), r = 0;

	if (floor < 0) {
		pr_err("%s: broken image: an fd number beyond any limit", t->p[0].name);
		return -EBADMSG;
	}
	for (size_t i = 0; i < t->n && !r; i++) {
		const struct rst *p = &t->p[i];

		for (size_t k = 0; p->fds && k < p->fds->n_fds && !r; k++)
			r = from_fd(t, p->fds->fds[k], floor);
		for (size_t k = 0; p->mm && k < p->mm->n_vmas && !r; k++)
			r = from_vma(t, p->mm->vmas[k], floor);
	}
	return r;
}

/* ---- System V segments ---- */

static int set_next_id(int id)
{
	FILE *f = fopen(SHM_NEXT_ID, "we");
	int r = 0;

	if (!f)
		return -errno;
	if (fprintf(f, "%d\n", id) < 0)
		r = -EIO;
	if (fclose(f) && !r)
		r = -errno;
	return r;
}

static bool same_segment(const Cryo__SysvShm *m, const struct shmid_ds *ds)
{
	return ds->shm_perm.__key == m->key && ds->shm_segsz == m->size &&
	       ds->shm_perm.cuid == m->cuid && ds->shm_perm.cgid == m->cgid &&
	       (int64_t)ds->shm_ctime == m->ctime;
}

/* The segment with m's id is there: 0 if it is m's, free to take; 1 if
 * it went away meanwhile (its last process exited). */
static int sysv_found(const struct rst_tree *t, const Cryo__SysvShm *m, struct shmid_ds *ds)
{
	for (int ms = 0;; ms += 10) {
		if (!same_segment(m, ds)) {
			pr_err("%s: System V shared memory id %u is taken by another segment (key "
			       "%#x, %zu bytes)", t->p[0].name, m->shmid, (unsigned)ds->shm_perm.__key,
			       (size_t)ds->shm_segsz);
			return -EEXIST;
		}
		if (!ds->shm_nattch)
			return 0;
		if (ms >= NATTCH_WAIT_MS) {
			pr_err("%s: System V shared memory %u (key %#x) is attached by %lu "
			       "mapping%s of processes that are not the melted group's (pid %d "
			       "attached or detached last)", t->p[0].name, m->shmid,
			       (unsigned)m->key, (unsigned long)ds->shm_nattch,
			       ds->shm_nattch == 1 ? "" : "s", (int)ds->shm_lpid);
			return -EBUSY;
		}
		usleep(10000);
		if (shmctl((int)m->shmid, IPC_STAT, ds) < 0)
			return 1;
	}
}

static int sysv_create(const struct rst_tree *t, struct rst_sysv *s)
{
	const Cryo__SysvShm *m = s->m;
	struct shmid_ds ds;
	int id, r;

	if (m->key != IPC_PRIVATE && (id = shmget(m->key, 0, 0)) >= 0) {
		pr_err("%s: System V shared memory key %#x is taken by segment %d (it was %u's)",
		       t->p[0].name, (unsigned)m->key, id, m->shmid);
		return -EEXIST;
	}
	r = set_next_id((int)m->shmid);
	if (r) {
		pr_err("%s: System V shared memory %u cannot get its id back: %s: %s", t->p[0].name,
		       m->shmid, SHM_NEXT_ID, strerror(-r));
		return r;
	}
	id = shmget(m->key, m->size, IPC_CREAT | IPC_EXCL | (int)(m->mode & 0777));
	if (id < 0) {
		r = -errno;
		(void)set_next_id(-1);
		pr_err("%s: System V shared memory %u (key %#x, %" PRIu64 " bytes): shmget: %s",
		       t->p[0].name, m->shmid, (unsigned)m->key, m->size, strerror(-r));
		return r;
	}
	if ((uint32_t)id != m->shmid) {
		shmctl(id, IPC_RMID, NULL);
		pr_err("%s: System V shared memory %u came back as %d (another segment was made "
		       "meanwhile?)", t->p[0].name, m->shmid, id);
		return -EADDRINUSE;
	}
	s->made = true;
	if (shmctl(id, IPC_STAT, &ds) < 0)
		return -errno;
	ds.shm_perm.uid = m->uid;
	ds.shm_perm.gid = m->gid;
	ds.shm_perm.mode = m->mode & 0777;
	if (shmctl(id, IPC_SET, &ds) < 0) {
		r = -errno;
		pr_err("%s: System V shared memory %u: owner %u:%u, mode %o: %s", t->p[0].name,
		       m->shmid, m->uid, m->gid, m->mode & 0777, strerror(-r));
		return r;
	}
	return 0;
}

/* Its contents as at the snapshot, through its shmem file (attached here
 * only to open that). A segment kept from before holds newer bytes: all
 * of them go first. */
static int sysv_fill(const struct rst_tree *t, const Cryo__SysvShm *m, bool kept)
{
	char path[80];
	void *p = shmat((int)m->shmid, NULL, 0);
	int fd = -1, r = 0;

	if (p == (void *)-1) {
		r = -errno;
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)p,
		 (unsigned long)p + (unsigned long)page_up(m->size));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		r = -errno;
	shmdt(p);
	if (!r && kept &&
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)m->size))
		r = -errno;
	if (!r)
		r = fd_contents_load(t->p[0].sn, m->space, m->size, fd);
out:
	if (fd >= 0)
		close(fd);
	if (r)
		pr_err("%s: System V shared memory %u: writing its contents: %s", t->p[0].name,
		       m->shmid, strerror(-r));
	return r;
}

static int sysv_one(const struct rst_tree *t, struct rst_sysv *s)
{
	const Cryo__SysvShm *m = s->m;
	struct shmid_ds ds;
	int r = 1;

	if (shmctl((int)m->shmid, IPC_STAT, &ds) == 0)
		r = sysv_found(t, m, &ds);
	else if (errno != EINVAL && errno != EIDRM) {
		r = -errno;
		pr_err("%s: System V shared memory %u: IPC_STAT: %s", t->p[0].name, m->shmid,
		       strerror(errno));
	}
	if (r == 1)
		r = sysv_create(t, s);
	if (!r)
		r = sysv_fill(t, m, !s->made);
	if (!r && m->locked && shmctl((int)m->shmid, SHM_LOCK, NULL) < 0)
		pr_warn("%s: System V shared memory %u: SHM_LOCK: %s", t->p[0].name, m->shmid,
			strerror(errno));
	return r;
}

static int sysv_check(const struct rst_tree *t, const Cryo__SysvShm *m, size_t i)
{
	const Cryo__GroupEntry *g = t->g;

	for (size_t k = 0; k < i; k++)
		if (g->sysv_shm[k]->shmid == m->shmid)
			goto bad;
	if (m->shmid > INT32_MAX || !m->size || m->size > OBJ_SIZE_MAX ||
	    m->space < IMAGE_SPACE_FILES || m->space > IMAGE_SPACE_MAX)
		goto bad;
	return 0;
bad:
	pr_err("%s: broken image: System V shared memory entry %zu (id %u, %" PRIu64 " bytes, "
	       "space %u)", t->p[0].name, i, m->shmid, m->size, m->space);
	return -EBADMSG;
}

/* Each attach in r's mappings: one at offset 0 and those right after it
 * (split by mprotect), together exactly the segment: what shmat makes. */
static int check_attaches(const struct rst_tree *t, const struct rst *r)
{
	const Cryo__MmEntry *mm = r->mm;

	for (size_t i = 0; mm && i < mm->n_vmas; i++) {
		const Cryo__VmaEntry *v = mm->vmas[i];
		const Cryo__SysvShm *m;
		uint64_t at, want;

		if (v->kind != CRYO__VMA_KIND__VMA_SYSV_SHM)
			continue;
		m = v->has_sysv_shmid ? rst_shared_sysv(&t->sh, v->sysv_shmid) : NULL;
		want = m ? page_up(m->size) : 0;
		at = v->end > v->start ? v->end - v->start : want + 1;
		while (m && !v->pgoff && at < want && i + 1 < mm->n_vmas) {
			const Cryo__VmaEntry *n = mm->vmas[i + 1];

			if (n->kind != v->kind || n->sysv_shmid != v->sysv_shmid ||
			    n->start != mm->vmas[i]->end || n->pgoff != at || n->end <= n->start)
				break;
			at += n->end - n->start;
			i++;
		}
		if (!m || v->pgoff || at != want) {
			pr_err("%s: broken image: pid %d: mapping %#llx-%#llx of System V shared "
			       "memory %u is not a whole attach of a segment of the snapshot",
			       r->name, (int)r->pid, (unsigned long long)v->start,
			       (unsigned long long)v->end, v->sysv_shmid);
			return -EBADMSG;
		}
	}
	return 0;
}

static int make_sysv(struct rst_tree *t)
{
	size_t n = t->g ? t->g->n_sysv_shm : 0;
	int r = 0;

	t->sh.sysv = calloc(n + 1, sizeof(*t->sh.sysv));
	if (!t->sh.sysv)
		return -ENOMEM;
	for (size_t i = 0; i < n && !r; i++) {
		t->sh.sysv[i].m = t->g->sysv_shm[i];
		t->sh.nsysv++;
		r = sysv_check(t, t->sh.sysv[i].m, i);
	}
	for (size_t i = 0; i < t->n && !r; i++)
		r = check_attaches(t, &t->p[i]);
	for (size_t i = 0; i < t->sh.nsysv && !r; i++)
		r = sysv_one(t, &t->sh.sysv[i]);
	return r;
}

/* ---- the steps ---- */

int rst_shared_make(struct rst_tree *t)
{
	int r;

	t->sh.fd_lo = t->sh.fd_hi = -1;
	for (size_t i = 0; i < t->n; i++)
		t->p[i].sh = &t->sh;
	r = make_sysv(t);
	if (!r)
		r = make_files(t);
	if (r)
		rst_shared_undo(t);
	return r;
}

void rst_shared_close_below(const struct rst_shared *sh, int below)
{
	int from = 0;

	if (sh->fd_lo >= 0 && sh->fd_lo < below) {
		if (sh->fd_lo > 0)
			syscall(SYS_close_range, 0u, (unsigned)sh->fd_lo - 1, 0u);
		from = sh->fd_hi + 1;
	}
	if (from < below)
		syscall(SYS_close_range, (unsigned)from, (unsigned)below - 1, 0u);
}

const struct fd_object *rst_shared_obj(const struct rst_shared *sh, uint32_t space)
{
	return obj_find(sh, space);
}

const Cryo__SysvShm *rst_shared_sysv(const struct rst_shared *sh, uint32_t shmid)
{
	for (size_t i = 0; i < sh->nsysv; i++)
		if (sh->sysv[i].m->shmid == shmid)
			return sh->sysv[i].m;
	return NULL;
}

int rst_shared_finish(struct rst_tree *t)
{
	const struct rst_shared *sh = &t->sh;

	/* Seals last: F_SEAL_FUTURE_WRITE would have refused the mappings. */
	for (size_t i = 0; i < sh->nobjs; i++) {
		const struct fd_object *o = &sh->objs[i];

		if (o->has_seals && o->seals && fcntl(o->fd, F_ADD_SEALS, (int)o->seals) < 0) {
			int r = -errno;

			pr_err("%s: memfd of content space %u: seals %#x: %s", t->p[0].name,
			       o->space, o->seals, strerror(errno));
			return r;
		}
	}
	for (size_t i = 0; i < sh->nsysv; i++) {
		const Cryo__SysvShm *m = sh->sysv[i].m;

		if (m->removed && shmctl((int)m->shmid, IPC_RMID, NULL) < 0) {
			int r = -errno;

			pr_err("%s: System V shared memory %u: IPC_RMID: %s", t->p[0].name,
			       m->shmid, strerror(errno));
			return r;
		}
	}
	return 0;
}

void rst_shared_undo(struct rst_tree *t)
{
	for (size_t i = 0; i < t->sh.nsysv; i++)
		if (t->sh.sysv[i].made) {
			shmctl((int)t->sh.sysv[i].m->shmid, IPC_RMID, NULL);
			t->sh.sysv[i].made = false;
		}
}

void rst_shared_free(struct rst_shared *sh)
{
	for (size_t i = 0; i < sh->nobjs; i++) {
		close(sh->objs[i].fd);
		close(sh->objs[i].fd_ro);
	}
	free(sh->objs);
	free(sh->sysv);
	*sh = (struct rst_shared){ .fd_lo = -1, .fd_hi = -1 };
}
