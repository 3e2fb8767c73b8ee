/* "dir": an open directory, by path, flags and offset. Only its identity
 * (dev/ino) is checked at melt: a directory's size and mtime change with
 * every file made in it, which is no reason to refuse. */
#define LOG_PREFIX "fds/dir: "
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int dir_match(const struct fd_probe *p)
{
	return S_ISDIR(p->st.st_mode) && p->link[0] == '/' && p->st.st_nlink > 0;
}

static int dir_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__RegFile rf = CRYO__REG_FILE__INIT;
	Cryo__FileId id;
	int r;

	(void)c;
	rf.path = (char *)p->link;
	fd_file_id(&p->st, &id);
	rf.id = &id;
	r = fd_pack(e, &rf.base);
	if (!r)
		r = fd_set_desc(e, "%s/", p->link);
	return r;
}

static int dir_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__RegFile *rf = (Cryo__RegFile *)fd_unpack(e, &cryo__reg_file__descriptor);
	struct stat st;
	int fd, r = 0;

	(void)c;
	if (!rf)
		return -EBADMSG;
	fd = open(rf->path, fd_open_flags(e) | O_DIRECTORY);
	if (fd < 0) {
		r = -errno;
		pr_err("%s: cannot open directory: %s", rf->path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (rf->id && (st.st_dev != rf->id->dev || st.st_ino != rf->id->ino)) {
		pr_err("%s changed since the snapshot (another directory is at its path)",
		       rf->path);
		r = -ESTALE;
	}
	if (r) {
		close(fd);
		goto out;
	}
	r = fd_place(fd, e, 1);
out:
	cryo__reg_file__free_unpacked(rf, NULL);
	return r;
}

static void dir_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	Cryo__RegFile *rf = e->has_payload ?
		cryo__reg_file__unpack(NULL, e->payload.len, e->payload.data) : NULL;

	snprintf(buf, n, "directory %s pos %llu%s", rf ? rf->path : "(undecodable)",
		 (unsigned long long)e->pos, e->cloexec ? " cloexec" : "");
	if (rf)
		cryo__reg_file__free_unpacked(rf, NULL);
}

const struct fd_ops fd_ops_dir = {
	.name = "dir",
	.match = dir_match,
	.dump = dir_dump,
	.restore = dir_restore,
	.describe = dir_describe,
};
