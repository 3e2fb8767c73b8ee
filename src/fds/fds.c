/* The registry of fd kinds, and what the kinds share: placing a made fd at
 * its number, file identity, file contents as pages of a content space. */
#define LOG_PREFIX "fds: "
#include "fds/fd_priv.h"
#include "common/log.h"
#include "common/vec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern const struct fd_ops fd_ops_memfd, fd_ops_dev, fd_ops_pipe, fd_ops_ext, fd_ops_reg,
	fd_ops_dir, fd_ops_eventfd, fd_ops_epoll, fd_ops_inet, fd_ops_unix, fd_ops_tty, fd_ops_ptmx,
	fd_ops_unixconn, fd_ops_timerfd, fd_ops_signalfd, fd_ops_unsupported,
	fd_ops_fifo, fd_ops_inotify, fd_ops_pidfd, fd_ops_tcp;

/* Match order: the specific before the general (a memfd is also a regular
 * file; a pipe with both ends inside before the pipe to outside); last the
 * kind that refuses what none of the others took. */
const struct fd_ops *const fd_kinds[] = {
	&fd_ops_memfd,
	&fd_ops_dev,
	&fd_ops_pipe,
	&fd_ops_fifo,
	&fd_ops_tty,		/* pty slaves, before "ext" takes other terminals */
	&fd_ops_ptmx,		/* pty masters the group holds, likewise */
	&fd_ops_unixconn,	/* unix connections; on fds 0-2 only inside the group */
	&fd_ops_ext,
	&fd_ops_reg,
	&fd_ops_dir,
	&fd_ops_eventfd,
	&fd_ops_timerfd,
	&fd_ops_signalfd,
	&fd_ops_epoll,
	&fd_ops_inotify,
	&fd_ops_pidfd,
	&fd_ops_tcp,		/* TCP connections, before "inet" refuses them */
	&fd_ops_inet,
	&fd_ops_unix,
	&fd_ops_unsupported,	/* takes the rest and refuses it, naming it */
	NULL,
};

const struct fd_ops *fd_kind_by_name(const char *name)
{
	for (const struct fd_ops *const *k = fd_kinds; *k; k++)
		if (!strcmp((*k)->name, name))
			return *k;
	return NULL;
}

const struct fd_ops *fd_kind_match(const struct fd_probe *p)
{
	for (const struct fd_ops *const *k = fd_kinds; *k; k++)
		if ((*k)->match(p) > 0)
			return *k;
	return NULL;
}

/* ---- restore helpers ---- */

int fd_move_above(int fd, int min)
{
	int n = fcntl(fd, F_DUPFD_CLOEXEC, min);
	int err = -errno;

	close(fd);
	return n < 0 ? err : n;
}

int fd_place(int fd, const Cryo__FdEntry *e, int seek)
{
	int target = (int)e->fd, fl;

	if (fd != target) {
		if (dup2(fd, target) < 0) {
			int err = -errno;
			pr_err("fd %d: dup2: %s", target, strerror(errno));
			close(fd);
			return err;
		}
		close(fd);
	}
	if (fcntl(target, F_SETFD, e->cloexec ? FD_CLOEXEC : 0) < 0)
		goto fail;
	fl = fcntl(target, F_GETFL);
	if (fl < 0)
		goto fail;
	fl = (fl & ~FD_SETFL_MASK) | (int)(e->flags & FD_SETFL_MASK & ~(uint32_t)O_DIRECT);
	if (fcntl(target, F_SETFL, fl) < 0)
		goto fail;
	if (seek && e->has_pos && lseek(target, (off_t)e->pos, SEEK_SET) < 0)
		goto fail;
	return 0;
fail:
	fl = -errno;
	pr_err("fd %d: setting flags/offset: %s", target, strerror(errno));
	close(target);
	return fl;
}

int fd_reopen(int fd, int flags)
{
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = open(path, flags);
	return r < 0 ? -errno : r;
}

int fd_pack(Cryo__FdEntry *e, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);

	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	e->has_payload = 1;
	e->payload.data = buf;
	e->payload.len = len;
	return 0;
}

int fd_set_desc(Cryo__FdEntry *e, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	e->desc = s;
	return 0;
}

ProtobufCMessage *fd_unpack(const Cryo__FdEntry *e, const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *m = NULL;

	if (e->has_payload)
		m = protobuf_c_message_unpack(desc, NULL, e->payload.len, e->payload.data);
	if (!m)
		pr_err("fd %u (%s): payload does not decode as %s", e->fd, e->kind, desc->name);
	return m;
}

struct fd_shared *fd_shared_get(struct fd_restore_ctx *c, uint64_t id)
{
	for (size_t i = 0; i < c->nshared; i++)
		if (c->shared[i].id == id)
			return &c->shared[i];
	if (c->nshared == c->shared_cap) {
		size_t cap = c->shared_cap ? c->shared_cap * 2 : 8;
		struct fd_shared *n = realloc(c->shared, cap * sizeof(*n));

		if (!n)
			return NULL;
		c->shared = n;
		c->shared_cap = cap;
	}
	c->shared[c->nshared] = (struct fd_shared){ .id = id, .fd = { -1, -1 } };
	return &c->shared[c->nshared++];
}

void fd_shared_forget(struct fd_restore_ctx *c, int fd)
{
	for (size_t i = 0; i < c->nshared; i++)
		for (int k = 0; k < 2; k++)
			if (c->shared[i].fd[k] == fd)
				c->shared[i].fd[k] = -1;
}

void fd_restore_ctx_fini(struct fd_restore_ctx *c)
{
	/* Kinds replace a scratch fd by the placed fd number once placed;
	 * what is left above max_fd is scratch. */
	for (size_t i = 0; i < c->nshared; i++)
		for (int k = 0; k < 2; k++)
			if (c->shared[i].fd[k] > c->max_fd)
				close(c->shared[i].fd[k]);
	free(c->shared);
	c->shared = NULL;
	c->nshared = c->shared_cap = 0;
}

/* ---- identity ---- */

void fd_file_id(const struct stat *st, Cryo__FileId *id)
{
	cryo__file_id__init(id);
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = (uint64_t)st->st_size;
	id->mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
	id->has_mode = 1;
	id->mode = st->st_mode;
}

int fd_file_id_check(const char *path, const Cryo__FileId *id, const struct stat *now,
		     bool appended_ok)
{
	Cryo__FileId cur;
	const char *what = NULL;

	if (!id)
		return 0;
	fd_file_id(now, &cur);
	if (cur.dev != id->dev || cur.ino != id->ino)
		what = "another file is at its path";
	else if (appended_ok && cur.size >= id->size)
		return 0;
	else if (cur.size != id->size)
		what = appended_ok ? "it is shorter" : "its size differs";
	else if (cur.mtime_ns != id->mtime_ns)
		what = "its modification time differs";
	if (!what)
		return 0;
	pr_err("%s changed since the snapshot (%s)", path, what);
	return -ESTALE;
}

/* ---- file contents as pages ---- */

#define CONTENT_CHUNK	(4u << 20)
#define CONTENT_DEFER_MAX	(256ull << 20)	/* bytes kept for after the stop */

/* Contents read, not yet in the store (fd_dump_ctx.defer). */
struct fd_chunk {
	struct fd_chunk *next;
	uint32_t space;
	uint64_t first;			/* its first page in the space */
	size_t pages;
	uint8_t data[];			/* CONTENT_CHUNK and a page */
};

static struct fd_chunk *chunk_new(void)
{
	return malloc(sizeof(struct fd_chunk) + CONTENT_CHUNK + STORE_PAGE_SIZE);
}

static int chunk_put(struct fd_dump_ctx *c, const struct fd_chunk *k)
{
	for (size_t i = 0; i < k->pages; i++) {
		int r = store_txn_put_page(c->txn, STORE_KEY(k->space, k->first + i),
					   k->data + i * STORE_PAGE_SIZE);
		if (r)
			return r;
	}
	c->content_pages += k->pages;
	return 0;
}

/* Past the budget, memory to keep costs more than writing: the rest is
 * written while stopped. */
static int chunk_done(struct fd_dump_ctx *c, struct fd_chunk **cur)
{
	struct fd_chunk *k = *cur;

	if (!c->defer || c->deferred >= CONTENT_DEFER_MAX)
		return chunk_put(c, k);
	*cur = chunk_new();
	if (!*cur) {
		*cur = k;
		return -ENOMEM;
	}
	k->next = NULL;
	if (c->chunks_last)
		c->chunks_last->next = k;
	else
		c->chunks = k;
	c->chunks_last = k;
	c->deferred += k->pages * STORE_PAGE_SIZE;
	return 0;
}

static int save_range(struct fd_dump_ctx *c, int fd, uint32_t space, uint64_t from, uint64_t to,
		      struct fd_chunk **cur)
{
	while (from < to) {
		size_t want = to - from > CONTENT_CHUNK ? CONTENT_CHUNK : (size_t)(to - from);
		ssize_t got = pread(fd, (*cur)->data, want, (off_t)from);
		int r;

		if (got < 0)
			return -errno;
		if (got == 0)
			break;	/* shrank meanwhile: the rest is past the end */
		/* A short last page is padded with zeros. */
		(*cur)->space = space;
		(*cur)->first = from / STORE_PAGE_SIZE;
		(*cur)->pages = ((size_t)got + STORE_PAGE_SIZE - 1) / STORE_PAGE_SIZE;
		memset((*cur)->data + got, 0, (*cur)->pages * STORE_PAGE_SIZE - (size_t)got);
		r = chunk_done(c, cur);
		if (r)
			return r;
		from += (uint64_t)got;
		from = (from + STORE_PAGE_SIZE - 1) & ~(uint64_t)(STORE_PAGE_SIZE - 1);
	}
	return 0;
}

/* 0 if c->next_space is a page space free for contents. */
static int space_free(struct fd_dump_ctx *c)
{
	if (c->next_space < IMAGE_SPACE_FILES)
		c->next_space = IMAGE_SPACE_FILES;
	if (c->next_space > IMAGE_SPACE_MAX) {
		pr_err("pid %d: more saved files than page spaces (%u)", (int)c->pid,
		       IMAGE_SPACE_MAX - IMAGE_SPACE_FILES + 1);
		return -ENOSPC;
	}
	return 0;
}

int fd_bytes_save(struct fd_dump_ctx *c, const void *buf, size_t len, uint32_t *space)
{
	uint8_t *page = malloc(STORE_PAGE_SIZE);
	uint32_t sp;
	int r = space_free(c);

	if (!page)
		return -ENOMEM;
	sp = c->next_space;
	for (size_t off = 0, i = 0; !r && off < len; off += STORE_PAGE_SIZE, i++) {
		size_t n = len - off < STORE_PAGE_SIZE ? len - off : STORE_PAGE_SIZE;

		memcpy(page, (const uint8_t *)buf + off, n);
		memset(page + n, 0, STORE_PAGE_SIZE - n);
		r = store_txn_put_page(c->txn, STORE_KEY(sp, i), page);
		c->content_pages += !r;
	}
	free(page);
	if (r) {
		pr_err("pid %d: saving %zu bytes: %s", (int)c->pid, len, strerror(-r));
		return r;
	}
	c->next_space++;
	*space = sp;
	return 0;
}

int fd_bytes_load(struct store_snap *sn, uint32_t space, uint64_t len, uint8_t **out)
{
	int mfd = memfd_create("cryo-bytes", MFD_CLOEXEC), r;
	uint8_t *buf = NULL;

	*out = NULL;
	if (mfd < 0)
		return -errno;
	r = fd_contents_load(sn, space, len, mfd);
	if (!r && !(buf = malloc(len ? len : 1)))
		r = -ENOMEM;
	if (!r && pread(mfd, buf, len, 0) != (ssize_t)len)
		r = -EIO;
	close(mfd);
	if (r)
		free(buf);
	else
		*out = buf;
	return r;
}

static void chunks_free(struct fd_dump_ctx *c)
{
	while (c->chunks) {
		struct fd_chunk *k = c->chunks;

		c->chunks = k->next;
		free(k);
	}
	c->chunks_last = NULL;
	c->deferred = 0;
}

int fd_contents_flush(struct fd_dump_ctx *c)
{
	int r = 0;

	for (struct fd_chunk *k = c->chunks; k && !r; k = k->next)
		r = chunk_put(c, k);
	chunks_free(c);
	return r;
}

int fd_contents_save(struct fd_dump_ctx *c, int local, const struct stat *st, uint32_t *space,
		     uint64_t *size)
{
	return fd_contents_save_tag(c, local, st, 0, space, size);
}

int fd_contents_save_tag(struct fd_dump_ctx *c, int local, const struct stat *st, uint32_t tag,
			 uint32_t *space, uint64_t *size)
{
	uint64_t end = (uint64_t)st->st_size, off = 0;
	struct fd_chunk *buf;
	uint32_t sp;
	int r = 0;

	for (size_t i = 0; i < c->nsaved; i++) {
		if (c->saved[i].dev == st->st_dev && c->saved[i].ino == st->st_ino &&
		    c->saved[i].tag == tag) {
			*space = c->saved[i].space;
			*size = c->saved[i].size;
			return 0;
		}
	}
	if ((r = space_free(c)))
		return r;
	if (c->nsaved == c->saved_cap) {
		size_t cap = c->saved_cap ? c->saved_cap * 2 : 8;
		struct fd_saved *n = realloc(c->saved, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		c->saved = n;
		c->saved_cap = cap;
	}
	sp = c->next_space;
	/* Our own open file description: seeking the one we were handed
	 * (pidfd_getfd shares it with the process) would move its offset. */
	local = fd_reopen(local, O_RDONLY | O_CLOEXEC);
	if (local < 0) {
		pr_err("pid %d: reopening inode %" PRIu64 " to read it: %s", (int)c->pid,
		       (uint64_t)st->st_ino, strerror(-local));
		return local;
	}
	buf = chunk_new();
	if (!buf) {
		close(local);
		return -ENOMEM;
	}
	/* Walk the data extents; a file system without SEEK_DATA reads all. */
	while (off < end) {
		off_t d = lseek(local, (off_t)off, SEEK_DATA), h;

		if (d < 0) {
			if (errno == ENXIO)
				break;	/* only a hole is left */
			if (errno != EINVAL) {
				r = -errno;
				break;
			}
			r = save_range(c, local, sp, off, end, &buf);
			break;
		}
		h = lseek(local, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > end)
			h = (off_t)end;
		d &= ~(off_t)(STORE_PAGE_SIZE - 1);
		r = save_range(c, local, sp, (uint64_t)d, (uint64_t)h, &buf);
		if (r)
			break;
		off = ((uint64_t)h + STORE_PAGE_SIZE - 1) & ~(uint64_t)(STORE_PAGE_SIZE - 1);
	}
	free(buf);
	close(local);
	if (r) {
		pr_err("pid %d: saving contents of inode %" PRIu64 ": %s", (int)c->pid,
		       (uint64_t)st->st_ino, strerror(-r));
		return r;
	}
	c->saved[c->nsaved++] = (struct fd_saved){ .dev = st->st_dev, .ino = st->st_ino, .tag = tag,
						   .space = sp, .size = end };
	c->next_space++;
	*space = sp;
	*size = end;
	return 0;
}

void fd_dump_ctx_fini(struct fd_dump_ctx *c)
{
	fd_dump_thaw(c);	/* nothing is left in repair mode or held by mistake */
	fd_links_free(&c->links);
	chunks_free(c);
	free(c->saved);
	c->saved = NULL;
	c->nsaved = c->saved_cap = 0;
	for (size_t i = 0; i < c->nflight; i++)
		close(c->flight[i]);
	free(c->flight);
	c->flight = NULL;
	c->nflight = c->flight_cap = 0;
}

struct load_arg {
	struct store_snap *sn;
	uint32_t space;
	uint64_t size;
	int fd;
	uint8_t *buf;
};

static int load_page(void *arg, uint64_t vpn, enum store_page_kind kind)
{
	struct load_arg *a = arg;
	uint64_t off = (vpn - STORE_KEY(a->space, 0)) * STORE_PAGE_SIZE;
	size_t len = STORE_PAGE_SIZE;
	int r;

	if (kind != STORE_PAGE_DATA || off >= a->size)
		return 0;	/* zeros: the file's hole reads as zeros */
	r = store_snap_read_page(a->sn, vpn, a->buf);
	if (r < 0)
		return r;
	if (a->size - off < len)
		len = (size_t)(a->size - off);
	if (pwrite(a->fd, a->buf, len, (off_t)off) != (ssize_t)len)
		return errno ? -errno : -EIO;
	return 0;
}

int fd_contents_load(struct store_snap *sn, uint32_t space, uint64_t size, int fd)
{
	struct load_arg a = { .sn = sn, .space = space, .size = size, .fd = fd };
	int r;

	if (space < IMAGE_SPACE_FILES || space > IMAGE_SPACE_MAX)
		return -EINVAL;
	a.buf = malloc(STORE_PAGE_SIZE);
	if (!a.buf)
		return -ENOMEM;
	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		goto out;
	}
	r = store_snap_walk(sn, STORE_KEY(space, 0), STORE_KEY(space, (1ull << STORE_VPN_BITS) - 1),
			    load_page, &a);
out:
	free(a.buf);
	if (r)
		pr_err("loading contents of space %u: %s", space, strerror(-r));
	return r;
}

int fd_object_fd(const struct fd_restore_ctx *c, uint32_t space)
{
	for (size_t i = 0; i < c->nobjs; i++)
		if (c->objs[i].space == space)
			return c->objs[i].fd;
	return -1;
}

int fd_object_place(const struct fd_restore_ctx *c, const Cryo__FdEntry *e, uint32_t space,
		    const char *what)
{
	int fd = fd_object_fd(c, space);

	if (fd < 0) {
		pr_err("fd %u (%s): its file (content space %u) was not made", e->fd, what, space);
		return -ENOENT;
	}
	fd = fd_reopen(fd, fd_open_flags(e));
	if (fd < 0) {
		pr_err("fd %u: reopening %s: %s", e->fd, what, strerror(-fd));
		return fd;
	}
	return fd_place(fd, e, 1);
}

void fd_content_fini(struct fd_content *c)
{
	free(c->memfd_name);
	free(c->path);
	c->memfd_name = c->path = NULL;
}

int fd_make_unlinked(const char *path)
{
	char *dup = strdup(path);
	int fd;

	if (!dup)
		return -ENOMEM;
	fd = open(dirname(dup), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	free(dup);
	if (fd < 0)
		fd = memfd_create("cryo-deleted", MFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* ---- pipes ---- */

int fd_link_pipe(const char *link, uint64_t *ino)
{
	unsigned long long v;
	char tail;

	if (sscanf(link, "pipe:[%llu%c", &v, &tail) != 2 || tail != ']')
		return 0;
	*ino = v;
	return 1;
}

/* ---- who in the group holds what ---- */

void fd_links_free(struct fd_links *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].link);
	free(l->v);
	*l = (struct fd_links){ 0 };
}

static int cmp_link(const void *a, const void *b)
{
	const struct fd_link *x = a, *y = b;
	int c = strcmp(x->link, y->link);

	if (c)
		return c;
	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

static int links_add_proc(struct fd_links *l, size_t *cap, pid_t pid, uint32_t at)
{
	char dir[64], link[256];
	struct dirent *de;
	int r = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return -errno;
	while (!r && (de = readdir(d))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		ssize_t n;

		if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end)
			continue;
		n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (n < 0)
			continue;	/* closed meanwhile: not held */
		link[n] = '\0';
		if (l->n == *cap && (r = vec_reserve((void **)&l->v, cap, l->n + 1, sizeof(*l->v))))
			break;
		l->v[l->n] = (struct fd_link){ strdup(link), at, (int)fd, pid };
		if (!l->v[l->n].link)
			r = -ENOMEM;
		else
			l->n++;
	}
	closedir(d);
	return r;
}

static int links_make(struct fd_links *l, const struct fd_probe *p)
{
	size_t cap = 0, n = p->ngroup ? p->ngroup : 1;
	int r = 0;

	for (size_t i = 0; i < n && !r; i++)
		r = links_add_proc(l, &cap, p->ngroup ? p->group[i] : p->pid, (uint32_t)i);
	if (r) {
		fd_links_free(l);
		return r;
	}
	qsort(l->v, l->n, sizeof(*l->v), cmp_link);
	l->made = 1;
	return 0;
}

/* The group's fds that link to want: [*first, *first + *n), in group
 * order and by fd. l: the probe's table, or tmp made for this question. */
static int links_find(const struct fd_probe *p, struct fd_links *tmp, const char *want,
		      const struct fd_link **first, size_t *n)
{
	struct fd_links *l = p->links ? p->links : tmp;
	size_t lo = 0, hi;
	int r;

	if (!l->made && (r = links_make(l, p)))
		return r;
	hi = l->n;
	while (lo < hi) {	/* the first entry not below want */
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(l->v[mid].link, want) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = l->v + lo;
	for (*n = 0; lo + *n < l->n && !strcmp(l->v[lo + *n].link, want); (*n)++)
		;
	return 0;
}

/* One more end for out: fd of pid, by its access mode. */
static void count_end(struct fd_pipe_ends *out, pid_t pid, int fd)
{
	struct proc_fdinfo fi;

	if (proc_fdinfo_read(pid, fd, &fi))
		return;
	if ((fi.flags & O_ACCMODE) != O_WRONLY) {
		out->nread++;
		/* first in group order, lowest fd: the order of the table */
		if (out->first_read < 0) {
			out->first_read = fd;
			out->first_read_pid = pid;
		}
	}
	if ((fi.flags & O_ACCMODE) != O_RDONLY)
		out->nwrite++;
	proc_fdinfo_free(&fi);
}

int fd_pipe_scan(const struct fd_probe *p, uint64_t ino, struct fd_pipe_ends *out)
{
	struct fd_links tmp = { 0 };
	const struct fd_link *f;
	char want[64];
	size_t n;
	int r;

	*out = (struct fd_pipe_ends){ .first_read = -1 };
	snprintf(want, sizeof(want), "pipe:[%" PRIu64 "]", ino);
	r = links_find(p, &tmp, want, &f, &n);
	for (size_t i = 0; !r && i < n; i++)
		count_end(out, f[i].pid, f[i].fd);
	fd_links_free(&tmp);
	return r;
}

/* The ends of the FIFO the probe is open on: the group's fds with the
 * same link (its path) that are that very inode (a FIFO made again at the
 * same path is another). */
int fd_fifo_scan(const struct fd_probe *p, struct fd_pipe_ends *out)
{
	struct fd_links tmp = { 0 };
	const struct fd_link *f;
	size_t n;
	int r;

	*out = (struct fd_pipe_ends){ .first_read = -1 };
	r = links_find(p, &tmp, p->link, &f, &n);
	for (size_t i = 0; !r && i < n; i++) {
		char path[64];
		struct stat st;

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)f[i].pid, f[i].fd);
		if (!stat(path, &st) && st.st_dev == p->st.st_dev && st.st_ino == p->st.st_ino)
			count_end(out, f[i].pid, f[i].fd);
	}
	fd_links_free(&tmp);
	return r;
}

int fd_group_pty_master(const struct fd_probe *p, uint32_t index)
{
	static const char *const masters[] = { "/dev/ptmx", "/dev/pts/ptmx" };
	struct fd_links tmp = { 0 };
	int found = 0;

	for (size_t m = 0; m < 2 && !found; m++) {
		const struct fd_link *f;
		size_t n;

		if (links_find(p, &tmp, masters[m], &f, &n))
			break;
		for (size_t i = 0; i < n && !found; i++) {
			struct proc_fdinfo fi;
			const char *v;

			if (proc_fdinfo_read(f[i].pid, f[i].fd, &fi))
				continue;
			v = proc_fdinfo_get(&fi, "tty-index");
			found = v && strtoul(v, NULL, 10) == index;
			proc_fdinfo_free(&fi);
		}
	}
	fd_links_free(&tmp);
	return found;
}

int fd_group_each(const struct fd_probe *p, const char *link,
		  int (*fn)(void *arg, pid_t pid, int fd), void *arg)
{
	struct fd_links tmp = { 0 };
	const struct fd_link *f;
	size_t n = 0;
	int r = links_find(p, &tmp, link, &f, &n);

	for (size_t i = 0; !r && i < n; i++)
		r = fn(arg, f[i].pid, f[i].fd);
	fd_links_free(&tmp);
	return r;
}

int fd_group_holds(const struct fd_probe *p, const char *link)
{
	struct fd_links tmp = { 0 };
	const struct fd_link *f;
	size_t n = 0;

	if (links_find(p, &tmp, link, &f, &n))
		n = 0;
	fd_links_free(&tmp);
	return n > 0;
}
