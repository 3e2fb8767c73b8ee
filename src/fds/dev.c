/* "dev": the memory character devices that hold no state (/dev/null,
 * /dev/zero, /dev/full, /dev/random, /dev/urandom), reopened by path; the
 * device number must still be the same. Other devices are refused. */
#define LOG_PREFIX "fds/dev: "
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const struct {
	unsigned minor;
	const char *path;
} known[] = {
	{ 3, "/dev/null" }, { 5, "/dev/zero" }, { 7, "/dev/full" },
	{ 8, "/dev/random" }, { 9, "/dev/urandom" },
};

static const char *known_path(dev_t rdev)
{
	if (major(rdev) != 1)
		return NULL;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (minor(rdev) == known[i].minor)
			return known[i].path;
	return NULL;
}

static int dev_match(const struct fd_probe *p)
{
	return S_ISCHR(p->st.st_mode) && known_path(p->st.st_rdev) != NULL;
}

static int dev_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__DevFile df = CRYO__DEV_FILE__INIT;
	int r;

	(void)c;
	/* The canonical name: the process may have opened it through a link
	 * (/dev/stdin, a chroot) that melt would not find. */
	df.path = (char *)known_path(p->st.st_rdev);
	df.rdev = p->st.st_rdev;
	r = fd_pack(e, &df.base);
	if (!r)
		r = fd_set_desc(e, "%s", df.path);
	return r;
}

static int dev_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__DevFile *df = (Cryo__DevFile *)fd_unpack(e, &cryo__dev_file__descriptor);
	struct stat st;
	int fd, r = 0;

	(void)c;
	if (!df)
		return -EBADMSG;
	fd = open(df->path, fd_open_flags(e));
	if (fd < 0) {
		r = -errno;
		pr_err("%s: cannot open: %s", df->path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != df->rdev) {
		pr_err("%s changed since the snapshot (not device %u:%u)", df->path,
		       major(df->rdev), minor(df->rdev));
		close(fd);
		r = -ESTALE;
		goto out;
	}
	r = fd_place(fd, e, 0);
out:
	cryo__dev_file__free_unpacked(df, NULL);
	return r;
}

static void dev_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	Cryo__DevFile *df = e->has_payload ?
		cryo__dev_file__unpack(NULL, e->payload.len, e->payload.data) : NULL;

	snprintf(buf, n, "device %s flags 0%o%s", df ? df->path : "(undecodable)", e->flags,
		 e->cloexec ? " cloexec" : "");
	if (df)
		cryo__dev_file__free_unpacked(df, NULL);
}

const struct fd_ops fd_ops_dev = {
	.name = "dev",
	.match = dev_match,
	.dump = dev_dump,
	.restore = dev_restore,
	.describe = dev_describe,
};
