/* "inotify": an inotify instance and its watches, re-added by path with
 * the same watch descriptors.
 *
 * Dump: fdinfo has one line per watch: "inotify wd:W ino:I sdev:D mask:M
 * ignored_mask:0 fhandle-bytes:B fhandle-type:T f_handle:H" (hex). The
 * watched inode's path is found from its file handle: open_by_handle_at in
 * each mount of its file system (/proc/self/mountinfo) until one gives a
 * path whose lstat is that very inode. An inode without a path any more
 * (deleted while watched) is kept as a gone watch; one whose file system
 * gives no handle is refused.
 *
 * Melt: a new instance; the kernel gives wds in increasing order, one past
 * the last given (never reusing a number), so the watches are added in wd
 * order and each gap is filled by adding and removing a watch on a scratch
 * memfd. A watch whose path is gone at melt, or holds another inode, gets
 * its wd on a scratch inode too, removed at the end: the program reads
 * IN_IGNORED for it, as after the deletion of what it watched. The
 * IN_IGNORED events of the gap fillers are read away before that.
 *
 * Not kept: events queued and not read at the snapshot (the count is
 * recorded and reported); events of the instant of the melt; the
 * instance's next wd, which comes back as one past the highest live watch
 * (higher ones removed before the snapshot are not counted again). */
#define LOG_PREFIX "fds/inotify: "
#include "fds/fd_priv.h"
#include "common/log.h"
#include "proc/mountinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define HANDLE_MAX	128		/* MAX_HANDLE_SZ */
#define WD_MAX		(1 << 20)	/* gaps to fill at melt, at the most */
#define WATCH_KEY	"inotify wd"
#define USER_MASK	(IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK)

static int inotify_match(const struct fd_probe *p)
{
	return !strcmp(p->link, "anon_inode:inotify");
}

/* One fdinfo watch line, after "inotify wd:". */
struct watch_line {
	int wd;
	uint64_t ino;
	unsigned sdev, mask;
	unsigned hbytes;
	int htype;
	unsigned char handle[HANDLE_MAX];
};

static int parse_handle(const char *s, struct watch_line *w)
{
	int used = 0;

	if (sscanf(s, " fhandle-bytes:%x fhandle-type:%x f_handle:%n", &w->hbytes,
		   (unsigned *)&w->htype, &used) != 2 || !used || w->hbytes == 0 ||
	    w->hbytes > HANDLE_MAX)
		return -EINVAL;
	s += used;
	for (unsigned i = 0; i < w->hbytes; i++) {
		unsigned b;

		if (sscanf(s, "%2x", &b) != 1 || !s[0] || !s[1])
			return -EINVAL;
		w->handle[i] = (unsigned char)b;
		s += 2;
	}
	return *s == '\0' || *s == ' ' ? 0 : -EINVAL;
}

/* 0, or -ENOENT for a line without a file handle, -EINVAL if malformed. */
static int parse_watch(const char *val, struct watch_line *w)
{
	unsigned wd, ign;
	int used = 0;

	memset(w, 0, sizeof(*w));
	if (sscanf(val, "%x ino:%" SCNx64 " sdev:%x mask:%x ignored_mask:%x%n", &wd, &w->ino,
		   &w->sdev, &w->mask, &ign, &used) != 5 || wd == 0 || wd > INT32_MAX)
		return -EINVAL;
	w->wd = (int)wd;
	if (val[used + strspn(val + used, " ")] == '\0')
		return -ENOENT;
	return parse_handle(val + used, w);
}

/* Is path the inode (dev, ino)? */
static int is_inode(const char *path, dev_t dev, uint64_t ino)
{
	struct stat st;

	return lstat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* The path of fd as the kernel names it, if it is still linked. */
static char *fd_path(int fd)
{
	char link[64], buf[4096];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, sizeof(buf) - 1);
	if (n <= 0 || buf[0] != '/')
		return NULL;
	buf[n] = '\0';
	if (n > 10 && !strcmp(buf + n - 10, " (deleted)"))
		return NULL;
	return strdup(buf);
}

/* The watched inode through the mount at point: its path, or NULL; *gone
 * set when the file system says the inode no longer exists. */
static char *path_in_mount(const char *point, struct file_handle *fh, dev_t dev,
			   uint64_t ino, int *gone)
{
	int mfd = open(point, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW), fd;
	char *path = NULL;
	struct stat st;

	if (mfd < 0)
		return NULL;
	fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
	if (fd < 0 && errno == ESTALE)
		*gone = 1;
	close(mfd);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
		if (st.st_nlink == 0)
			*gone = 1;
		else if ((path = fd_path(fd)) && !is_inode(path, dev, ino)) {
			free(path);	/* a mount that does not show it */
			path = NULL;
		}
	}
	close(fd);
	return path;
}

/* Where the watched inode is: 0 with *path (NULL: it has none), or
 * -ENOTSUP (logged) when no mount of its file system shows it. */
static int watch_path(const struct fd_probe *p, const struct watch_line *w, char **path)
{
	struct proc_mounts m = { 0 };
	struct file_handle *fh = malloc(sizeof(*fh) + w->hbytes);
	dev_t dev = makedev(w->sdev >> 20, w->sdev & 0xfffff);
	int gone = 0, r;

	*path = NULL;
	if (!fh)
		return -ENOMEM;
	fh->handle_bytes = w->hbytes;
	fh->handle_type = w->htype;
	memcpy(fh->f_handle, w->handle, w->hbytes);
	r = proc_mounts_of_dev(0, major(dev), minor(dev), &m);
	for (size_t i = 0; !r && i < m.n && !*path && !gone; i++)
		*path = path_in_mount(m.v[i].point, fh, dev, w->ino, &gone);
	proc_mounts_free(&m);
	free(fh);
	if (*path || gone)
		return 0;
	pr_err("pid %d fd %d: inotify watch %d: inode %" PRIu64 " of device %u:%u has no path "
	       "cryo can find%s%s", (int)p->pid, p->fd, w->wd, w->ino, major(dev), minor(dev),
	       r ? ": " : "", r ? strerror(-r) : "");
	return -ENOTSUP;
}

static void watches_free(Cryo__Inotify *in)
{
	for (size_t i = 0; i < in->n_watches; i++) {
		free(in->watches[i]->path);
		free(in->watches[i]);
	}
	free(in->watches);
}

static int one_watch(const struct fd_probe *p, const char *val, Cryo__InotifyWatch **out)
{
	struct watch_line w;
	Cryo__InotifyWatch *iw;
	int r = parse_watch(val, &w);

	if (r) {
		pr_err("pid %d fd %d: inotify watch \"%s\": %s", (int)p->pid, p->fd, val,
		       r == -ENOENT ? "its file system gives no file handle to find its path" :
		       "unreadable");
		return -ENOTSUP;
	}
	iw = malloc(sizeof(*iw));
	if (!iw)
		return -ENOMEM;
	cryo__inotify_watch__init(iw);
	iw->wd = w.wd;
	iw->mask = w.mask;
	iw->has_dev = iw->has_ino = 1;
	iw->dev = makedev(w.sdev >> 20, w.sdev & 0xfffff);
	iw->ino = w.ino;
	r = watch_path(p, &w, &iw->path);
	if (r) {
		free(iw);
		return r;
	}
	*out = iw;
	return 0;
}

static int by_wd(const void *a, const void *b)
{
	const Cryo__InotifyWatch *x = *(Cryo__InotifyWatch *const *)a;
	const Cryo__InotifyWatch *y = *(Cryo__InotifyWatch *const *)b;

	return (x->wd > y->wd) - (x->wd < y->wd);
}

static int inotify_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__Inotify in = CRYO__INOTIFY__INIT;
	size_t n = 0, gone = 0;
	int r = 0, queued = 0;

	(void)c;
	for (size_t i = 0; i < p->info->nextra; i++)
		n += !strcmp(p->info->extra[i].key, WATCH_KEY);
	in.watches = calloc(n ? n : 1, sizeof(*in.watches));
	if (!in.watches)
		return -ENOMEM;
	for (size_t i = 0; i < p->info->nextra && !r; i++) {
		if (strcmp(p->info->extra[i].key, WATCH_KEY))
			continue;
		r = one_watch(p, p->info->extra[i].val, &in.watches[in.n_watches]);
		if (!r)
			gone += !in.watches[in.n_watches++]->path;
	}
	if (r)
		goto out;
	qsort(in.watches, in.n_watches, sizeof(*in.watches), by_wd);
	if (in.n_watches && in.watches[in.n_watches - 1]->wd > WD_MAX) {
		pr_err("pid %d fd %d: inotify watch descriptors up to %d cannot be given back "
		       "(at most %d)", (int)p->pid, p->fd, in.watches[in.n_watches - 1]->wd, WD_MAX);
		r = -ENOTSUP;
		goto out;
	}
	if (p->local >= 0 && ioctl(p->local, FIONREAD, &queued) == 0 && queued > 0) {
		pr_warn("pid %d fd %d: %d bytes of inotify events queued are not saved: a melt "
			"will not deliver them", (int)p->pid, p->fd, queued);
		in.has_lost_bytes = 1;
		in.lost_bytes = (uint32_t)queued;
	}
	r = fd_pack(e, &in.base);
	if (!r)
		r = fd_set_desc(e, "inotify, %zu watch%s (%zu without a path), %d bytes of events "
				"not saved", in.n_watches, in.n_watches == 1 ? "" : "es", gone, queued);
out:
	watches_free(&in);
	return r;
}

/* ---- melt ---- */

/* A scratch inode to hold a wd for a moment: a memfd, watched through
 * its /proc/self/fd link. */
struct scratch {
	int fd, wd;
	char path[64];
};

static int scratch_open(struct scratch *s)
{
	s->fd = memfd_create("cryo-inotify", MFD_CLOEXEC);
	if (s->fd < 0)
		return -errno;
	snprintf(s->path, sizeof(s->path), "/proc/self/fd/%d", s->fd);
	return 0;
}

/* Read away every event queued (the fd is non-blocking). */
static void drain(int fd)
{
	char buf[16384];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* Add path (or the scratch inode) to get exactly wd. */
static int add_at(int fd, const char *path, uint32_t mask, int wd)
{
	int got = inotify_add_watch(fd, path, mask);

	if (got < 0)
		return -errno;
	if (got != wd) {
		pr_err("watching %s gave wd %d, not %d", path, got, wd);
		return -EEXIST;
	}
	return 0;
}

/* wds next .. upto-1 taken and given back. */
static int fill_gap(int fd, struct scratch *gap, int next, int upto)
{
	int r;

	for (; next < upto; next++) {
		if ((r = add_at(fd, gap->path, IN_ATTRIB, next)))
			return r;
		if (inotify_rm_watch(fd, next) < 0)
			return -errno;
		if (!(next & 1023))
			drain(fd);	/* their IN_IGNORED must not overflow the queue */
	}
	return 0;
}

/* The watch at its wd: by its path if that is still its inode, else on a
 * scratch inode of its own (gone), removed after the drain. */
static int add_watch(int fd, const Cryo__InotifyWatch *w, struct scratch *gone, size_t *ngone)
{
	if (w->path && is_inode(w->path, (dev_t)w->dev, w->ino))
		return add_at(fd, w->path, (w->mask & USER_MASK) | IN_DONT_FOLLOW, w->wd);
	if (w->path)
		pr_warn("inotify wd %d: %s is gone or another file: the program reads IN_IGNORED",
			w->wd, w->path);
	if (scratch_open(&gone[*ngone]))
		return -errno;
	gone[*ngone].wd = w->wd;
	return add_at(fd, gone[(*ngone)++].path, IN_ATTRIB, w->wd);
}

static int add_watches(int fd, const Cryo__Inotify *in)
{
	struct scratch gap = { .fd = -1 }, *gone = calloc(in->n_watches + 1, sizeof(*gone));
	size_t ngone = 0;
	int next = 1, r = gone ? scratch_open(&gap) : -ENOMEM;

	for (size_t i = 0; !r && i < in->n_watches; i++) {
		const Cryo__InotifyWatch *w = in->watches[i];

		if (w->wd < next || w->wd > WD_MAX) {
			pr_err("inotify: watch descriptors out of order (%d after %d)", w->wd, next - 1);
			r = -EBADMSG;
			break;
		}
		r = fill_gap(fd, &gap, next, w->wd);
		if (!r)
			r = add_watch(fd, w, gone, &ngone);
		next = w->wd + 1;
	}
	drain(fd);
	/* now the IN_IGNORED the program is to read */
	for (size_t i = 0; i < ngone; i++) {
		if (!r && inotify_rm_watch(fd, gone[i].wd) < 0)
			r = -errno;
		close(gone[i].fd);
	}
	if (gap.fd >= 0)
		close(gap.fd);
	free(gone);
	return r;
}

static int inotify_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__Inotify *in = (Cryo__Inotify *)fd_unpack(e, &cryo__inotify__descriptor);
	int fd, r;

	(void)c;
	if (!in)
		return -EBADMSG;
	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = add_watches(fd, in);
	if (r) {
		pr_err("fd %u: inotify watches: %s", e->fd, strerror(-r));
		close(fd);
		goto out;
	}
	r = fd_place(fd, e, 0);
out:
	cryo__inotify__free_unpacked(in, NULL);
	return r;
}

static void inotify_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	Cryo__Inotify *in = e->has_payload ?
		cryo__inotify__unpack(NULL, e->payload.len, e->payload.data) : NULL;
	size_t off;

	off = (size_t)snprintf(buf, n, "inotify%s:", e->cloexec ? " cloexec" : "");
	if (!in) {
		snprintf(buf + (off < n ? off : n), off < n ? n - off : 0, " (undecodable)");
		return;
	}
	for (size_t i = 0; i < in->n_watches && off < n; i++)
		off += (size_t)snprintf(buf + off, n - off, " wd %d %s mask 0x%x", in->watches[i]->wd,
					in->watches[i]->path ? in->watches[i]->path : "(gone)",
					in->watches[i]->mask);
	if (in->lost_bytes && off < n)
		snprintf(buf + off, n - off, "; %u bytes of events not saved", in->lost_bytes);
	cryo__inotify__free_unpacked(in, NULL);
}

const struct fd_ops fd_ops_inotify = {
	.name = "inotify",
	.match = inotify_match,
	.dump = inotify_dump,
	.restore = inotify_restore,
	.describe = inotify_describe,
};
