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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const struct fd_ops fd_ops_memfd, fd_ops_dev, fd_ops_pipe, fd_ops_ext, fd_ops_reg,
	fd_ops_dir, fd_ops_eventfd, fd_ops_epoll, fd_ops_inet, fd_ops_unix, fd_ops_tty,
	fd_ops_unixconn, fd_ops_timerfd, fd_ops_signalfd;

/* Match order: the specific before the general (a memfd is also a regular
 * file; a pipe with both ends inside before the pipe to outside). */
const struct fd_ops *const fd_kinds[] = {
	&fd_ops_memfd,
	&fd_ops_dev,
	&fd_ops_pipe,
	&fd_ops_tty,		/* pty slaves, before "ext" takes other terminals */
	&fd_ops_unixconn,	/* unix connections; on fds 0-2 only inside the group */
	&fd_ops_ext,
	&fd_ops_reg,
	&fd_ops_dir,
	&fd_ops_eventfd,
	&fd_ops_timerfd,
	&fd_ops_signalfd,
	&fd_ops_epoll,
	&fd_ops_inet,
	&fd_ops_unix,
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

int fd_file_id_check(const char *path, const Cryo__FileId *id, const struct stat *now)
{
	Cryo__FileId cur;
	const char *what = NULL;

	if (!id)
		return 0;
	fd_file_id(now, &cur);
	if (cur.dev != id->dev || cur.ino != id->ino)
		what = "another file is at its path";
	else if (cur.size != id->size)
		what = "its size differs";
	else if (cur.mtime_ns != id->mtime_ns)
		what = "its modification time differs";
	if (!what)
		return 0;
	pr_err("%s changed since the snapshot (%s)", path, what);
	return -ESTALE;
}

/* ---- file contents as pages ---- */

#define CONTENT_CHUNK	(4u << 20)

static int save_range(struct fd_dump_ctx *c, int fd, uint32_t space, uint64_t from, uint64_t to,
		      uint8_t *buf)
{
	while (from < to) {
		size_t want = to - from > CONTENT_CHUNK ? CONTENT_CHUNK : (size_t)(to - from);
		ssize_t got = pread(fd, buf, want, (off_t)from);

		if (got < 0)
			return -errno;
		if (got == 0)
			break;	/* shrank meanwhile: the rest is past the end */
		/* A short last page is padded with zeros. */
		size_t pages = ((size_t)got + STORE_PAGE_SIZE - 1) / STORE_PAGE_SIZE;
		memset(buf + got, 0, pages * STORE_PAGE_SIZE - (size_t)got);
		for (size_t i = 0; i < pages; i++) {
			int r = store_txn_put_page(c->txn,
				STORE_KEY(space, from / STORE_PAGE_SIZE + i), buf + i * STORE_PAGE_SIZE);
			if (r)
				return r;
		}
		c->content_pages += pages;
		from += (uint64_t)got;
		from = (from + STORE_PAGE_SIZE - 1) & ~(uint64_t)(STORE_PAGE_SIZE - 1);
	}
	return 0;
}

int fd_contents_save(struct fd_dump_ctx *c, int local, const struct stat *st, uint32_t *space,
		     uint64_t *size)
{
	uint64_t end = (uint64_t)st->st_size, off = 0;
	uint32_t sp;
	uint8_t *buf;
	int r = 0;

	for (size_t i = 0; i < c->nsaved; i++) {
		if (c->saved[i].dev == st->st_dev && c->saved[i].ino == st->st_ino) {
			*space = c->saved[i].space;
			*size = c->saved[i].size;
			return 0;
		}
	}
	if (c->next_space < IMAGE_SPACE_FILES)
		c->next_space = IMAGE_SPACE_FILES;
	if (c->next_space > IMAGE_SPACE_MAX) {
		pr_err("pid %d: more saved files than page spaces (%u)", (int)c->pid,
		       IMAGE_SPACE_MAX - IMAGE_SPACE_FILES + 1);
		return -ENOSPC;
	}
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
	buf = malloc(CONTENT_CHUNK + STORE_PAGE_SIZE);
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
			r = save_range(c, local, sp, off, end, buf);
			break;
		}
		h = lseek(local, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > end)
			h = (off_t)end;
		d &= ~(off_t)(STORE_PAGE_SIZE - 1);
		r = save_range(c, local, sp, (uint64_t)d, (uint64_t)h, buf);
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
	c->saved[c->nsaved++] = (struct fd_saved){ .dev = st->st_dev, .ino = st->st_ino,
						   .space = sp, .size = end, .pid = c->pid };
	c->next_space++;
	*space = sp;
	*size = end;
	return 0;
}

pid_t fd_contents_saver(const struct fd_dump_ctx *c, const struct stat *st)
{
	for (size_t i = 0; i < c->nsaved; i++)
		if (c->saved[i].dev == st->st_dev && c->saved[i].ino == st->st_ino)
			return c->saved[i].pid;
	return 0;
}

void fd_dump_ctx_fini(struct fd_dump_ctx *c)
{
	fd_links_free(&c->links);
	free(c->saved);
	c->saved = NULL;
	c->nsaved = c->saved_cap = 0;
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
	for (size_t i = 0; !r && i < n; i++) {
		struct proc_fdinfo fi;

		if (proc_fdinfo_read(f[i].pid, f[i].fd, &fi))
			continue;
		if ((fi.flags & O_ACCMODE) != O_WRONLY) {
			out->nread++;
			/* first in group order, lowest fd: the order of f */
			if (out->first_read < 0) {
				out->first_read = f[i].fd;
				out->first_read_pid = f[i].pid;
			}
		}
		if ((fi.flags & O_ACCMODE) != O_RDONLY)
			out->nwrite++;
		proc_fdinfo_free(&fi);
	}
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
