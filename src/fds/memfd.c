/* "memfd": a memfd_create file: its name, seals and contents (pages of a
 * content space). Melt makes a new memfd with the same name, contents and
 * seals, once for the group (fd_ops.content): every fd and mapping of it,
 * in any of its processes, is of that one memfd again. */
#define LOG_PREFIX "fds/memfd: "
#include "fds/fd_priv.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEMFD_PREFIX "/memfd:"
#define DELETED_SUFFIX " (deleted)"

static int memfd_match(const struct fd_probe *p)
{
	return S_ISREG(p->st.st_mode) && !strncmp(p->link, MEMFD_PREFIX, strlen(MEMFD_PREFIX));
}

static char *memfd_name(const char *link)
{
	const char *s = link + strlen(MEMFD_PREFIX);
	size_t n = strlen(s), sl = strlen(DELETED_SUFFIX);

	if (n > sl && !strcmp(s + n - sl, DELETED_SUFFIX))
		n -= sl;
	return strndup(s, n);
}

static int memfd_dump(struct fd_dump_ctx *c, const struct fd_probe *p, Cryo__FdEntry *e)
{
	Cryo__RegFile rf = CRYO__REG_FILE__INIT;
	Cryo__FileId id;
	uint32_t space;
	uint64_t size;
	int seals, r;

	if (p->local < 0) {
		pr_err("pid %d fd %d: %s: no handle on it", (int)p->pid, p->fd, p->link);
		return -ENOTSUP;
	}
	rf.memfd_name = memfd_name(p->link);
	if (!rf.memfd_name)
		return -ENOMEM;
	rf.path = (char *)p->link;
	fd_file_id(&p->st, &id);
	rf.id = &id;
	seals = fcntl(p->local, F_GET_SEALS);
	if (seals >= 0) {
		rf.has_seals = 1;
		rf.seals = (uint32_t)seals;
	}
	r = fd_contents_save(c, p->local, &p->st, &space, &size);
	if (r)
		goto out;
	rf.has_contents_space = rf.has_size = 1;
	rf.contents_space = space;
	rf.size = size;
	r = fd_pack(e, &rf.base);
	if (!r)
		r = fd_set_desc(e, "memfd:%s", rf.memfd_name);
out:
	free(rf.memfd_name);
	return r;
}

/* The payload, with the contents space every use of it needs; NULL
 * (logged) if it does not decode or has none. Freed by the caller. */
static Cryo__RegFile *memfd_payload(const Cryo__FdEntry *e)
{
	Cryo__RegFile *rf = (Cryo__RegFile *)fd_unpack(e, &cryo__reg_file__descriptor);

	if (rf && !rf->has_contents_space) {
		pr_err("fd %u: memfd without saved contents", e->fd);
		cryo__reg_file__free_unpacked(rf, NULL);
		rf = NULL;
	}
	return rf;
}

/* The group's memfd was made before the processes (memfd_content): this
 * fd is that memfd again, with its own access mode. */
static int memfd_restore(struct fd_restore_ctx *c, const Cryo__FdEntry *e)
{
	Cryo__RegFile *rf = memfd_payload(e);
	int r;

	if (!rf)
		return -EBADMSG;
	r = fd_object_place(c, e, rf->contents_space, rf->memfd_name ? rf->memfd_name : "memfd");
	cryo__reg_file__free_unpacked(rf, NULL);
	return r;
}

/* Made once by melt for every fd and mapping of it in the group (F_SEAL_SEAL
 * without allow-sealing at creation is what a memfd made without
 * MFD_ALLOW_SEALING looks like: both come back the same way). */
static int memfd_content(const Cryo__FdEntry *e, struct fd_content *out)
{
	Cryo__RegFile *rf = memfd_payload(e);
	int r = 1;

	if (!rf)
		return -EBADMSG;
	*out = (struct fd_content){ .space = rf->contents_space, .size = rf->size,
				    .has_seals = rf->has_seals, .seals = rf->seals };
	out->memfd_name = strdup(rf->memfd_name ? rf->memfd_name : "");
	if (!out->memfd_name)
		r = -ENOMEM;
	cryo__reg_file__free_unpacked(rf, NULL);
	return r;
}

static void memfd_describe(const Cryo__FdEntry *e, char *buf, size_t n)
{
	Cryo__RegFile *rf = e->has_payload ?
		cryo__reg_file__unpack(NULL, e->payload.len, e->payload.data) : NULL;

	if (!rf) {
		snprintf(buf, n, "memfd (undecodable)");
		return;
	}
	snprintf(buf, n, "memfd %s size %llu seals 0x%x space %u pos %llu%s",
		 rf->memfd_name ? rf->memfd_name : "?", (unsigned long long)rf->size, rf->seals,
		 rf->contents_space, (unsigned long long)e->pos, e->cloexec ? " cloexec" : "");
	cryo__reg_file__free_unpacked(rf, NULL);
}

const struct fd_ops fd_ops_memfd = {
	.name = "memfd",
	.match = memfd_match,
	.dump = memfd_dump,
	.restore = memfd_restore,
	.content = memfd_content,
	.describe = memfd_describe,
};
