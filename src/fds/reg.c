/* "reg": a regular file, by path, flags and offset. A file that is
 * deleted but still open has no path to come back by: its bytes are saved
 * as pages of a content space and melt makes an unlinked file of them. */
#define LOG_PREFIX "fds/reg: "
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DELETED_SUFFIX " (deleted)"

static int reg_match(const struct fd_probe *p)
{
	/* a message queue's "/name" is no path: "unsupported" names it */
	return S_ISREG(p->st.st_mode) && p->link[0] == '/' && !fd_pseudo_file(p);
}

/* The path without the " (deleted)" the kernel appends. */
static char *link_path(const char *link, int deleted)
{
	size_t n = strlen(link), sl = strlen(DELETED_SUFFIX);

	if (deleted && n > sl && !strcmp(link + n - sl, DELETED_SUFFIX))
		n -= sl;
	return strndup(link, n);
}

static int reg_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__RegFile rf = CRYO__REG_FILE__INIT;
	Cryo__FileId id;
	int deleted = p->st.st_nlink == 0, r;

	rf.path = link_path(p->link, deleted);
	if (!rf.path)
		return -ENOMEM;
	fd_file_id(&p->st, &id);
	rf.id = &id;
	if (deleted) {
		uint32_t space;
		uint64_t size;

		if (p->local < 0) {
			pr_err("pid %d fd %d: deleted file %s: no handle on it", (int)p->pid, p->fd,
			       rf.path);
			r = -ENOTSUP;
			goto out;
		}
		r = fd_contents_save(c, p->local, &p->st, &space, &size);
		if (r)
			goto out;
		rf.has_deleted = rf.deleted = 1;
		rf.has_contents_space = 1;
		rf.contents_space = space;
		rf.has_size = 1;
		rf.size = size;
	}
	r = fd_pack(e, &rf.base);
	if (!r)
		r = fd_set_desc(e, "%s%s", rf.path, deleted ? " (deleted)" : "");
out:
	free(rf.path);
	return r;
}

/* A deleted file was made before the processes (reg_content): this fd is
 * that file again, with its own access mode. */
static int restore_deleted(struct fd_restore_ctx *c, const Cryo__FdEntry *e,
			   const Cryo__RegFile *rf)
{
	if (!rf->has_contents_space) {
		pr_err("fd %u: deleted file %s without saved contents", e->fd, rf->path);
		return -EBADMSG;
	}
	return fd_object_place(c, e, rf->contents_space, rf->path);
}

static int reg_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__RegFile *rf = (Cryo__RegFile *)fd_unpack(e, &cryo__reg_file__descriptor);
	struct stat st;
	int fd, r;

	if (!rf)
		return -EBADMSG;
	if (rf->has_deleted && rf->deleted) {
		r = restore_deleted(c, e, rf);
		goto out;
	}
	fd = open(rf->path, fd_open_flags(e));
	if (fd < 0) {
		r = -errno;
		pr_err("%s: cannot open: %s", rf->path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		goto out;
	}
	/* A log opened O_APPEND for writing only: growth is not a change
	 * the process can notice (it writes at the end, never reads it) */
	r = fd_file_id_check(rf->path, rf->id, &st,
			     (e->flags & O_APPEND) && (e->flags & O_ACCMODE) == O_WRONLY);
	if (r) {
		close(fd);
		goto out;
	}
	r = fd_place(fd, e, 1);
out:
	cryo__reg_file__free_unpacked(rf, NULL);
	return r;
}

static int reg_content(const Cryo__FdEntry *e, struct fd_content *out)
{
	Cryo__RegFile *rf = (Cryo__RegFile *)fd_unpack(e, &cryo__reg_file__descriptor);
	int r = 0;

	if (!rf)
		return -EBADMSG;
	if (!rf->has_deleted || !rf->deleted)
		goto out;	/* comes back by its path */
	if (!rf->has_contents_space) {
		pr_err("fd %u: deleted file %s without saved contents", e->fd, rf->path);
		r = -EBADMSG;
		goto out;
	}
	*out = (struct fd_content){ .space = rf->contents_space, .size = rf->size,
				    .mode = rf->id && rf->id->has_mode ? rf->id->mode & 07777 : 0600 };
	out->path = strdup(rf->path);
	r = out->path ? 1 : -ENOMEM;
out:
	cryo__reg_file__free_unpacked(rf, NULL);
	return r;
}

static void reg_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	Cryo__RegFile *rf = e->has_payload ?
		cryo__reg_file__unpack(NULL, e->payload.len, e->payload.data) : NULL;

	if (!rf) {
		snprintf(buf, n, "file (undecodable)");
		return;
	}
	char del[64] = "";

	if (rf->deleted)
		snprintf(del, sizeof(del), " (deleted, %llu bytes saved in space %u)",
			 (unsigned long long)rf->size, rf->contents_space);
	snprintf(buf, n, "file %s%s flags 0%o pos %llu%s", rf->path, del, e->flags,
		 (unsigned long long)e->pos, e->cloexec ? " cloexec" : "");
	cryo__reg_file__free_unpacked(rf, NULL);
}

const struct fd_ops fd_ops_reg = {
	.name = "reg",
	.match = reg_match,
	.dump = reg_dump,
	.restore = reg_restore,
	.content = reg_content,
	.describe = reg_describe,
};
