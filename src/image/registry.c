#define LOG_PREFIX "registry: "
#include "image/registry.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REG_FILE_MAX	1024

static const char *const state_names[] = { "running", "frozen", "exited" };

const char *registry_state_name(enum registry_state s)
{
	return (unsigned)s < 3 ? state_names[s] : "unknown";
}

int registry_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > STORE_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int group_dir(const char *home, char *buf, size_t n)
{
	if ((size_t)snprintf(buf, n, "%s/groups", home) >= n)
		return -ENAMETOOLONG;
	return 0;
}

static int parse(const char *buf, struct registry_entry *e)
{
	char key[32], val[64];
	unsigned have = 0;
	const char *p = buf;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[128], *end;
		unsigned long long v = 0;

		if (len >= sizeof(line))
			return -EBADMSG;
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (nl ? 1 : 0);
		if (!len)
			continue;
		if (sscanf(line, "%31s %63s", key, val) != 2)
			return -EBADMSG;
		if (!strcmp(key, "state")) {
			unsigned i;
			for (i = 0; i < 3 && strcmp(val, state_names[i]); i++)
				;
			if (i == 3)
				return -EBADMSG;
			e->state = (enum registry_state)i;
			have |= 4;
			continue;
		}
		errno = 0;
		v = strtoull(val, &end, 10);
		if (errno || *end || val[0] == '-')
			return -EBADMSG;
		if (!strcmp(key, "pid")) {
			if (!v || v > INT_MAX)
				return -EBADMSG;
			e->pid = (pid_t)v;
			have |= 1;
		} else if (!strcmp(key, "starttime")) {
			e->starttime = v;
			have |= 2;
		} else if (!strcmp(key, "created")) {
			e->created_ns = v;
			have |= 8;
		} else if (!strcmp(key, "nspid") || !strcmp(key, "nsinit")) {
			if (v > INT_MAX)
				return -EBADMSG;
			*(key[2] == 'p' ? &e->ns_pid : &e->ns_init) = (pid_t)v;
		}	/* unknown keys: written by a newer cryo, skipped */
	}
	return have == 15 ? 0 : -EBADMSG;
}

int registry_get(const char *home, const char *name, struct registry_entry *e)
{
	char dir[PATH_MAX], path[PATH_MAX + 80], buf[REG_FILE_MAX + 1];
	ssize_t n;
	int fd, r;

	if (!registry_name_ok(name))
		return -EINVAL;
	r = group_dir(home, dir, sizeof(dir));
	if (r)
		return r;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, REG_FILE_MAX);
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r)
		return r;
	buf[n] = '\0';
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	if (memchr(buf, '\0', (size_t)n) || parse(buf, e)) {
		pr_err("%s: not a group record", path);
		return -EBADMSG;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int registry_put(const char *home, const struct registry_entry *e)
{
	char dir[PATH_MAX], path[PATH_MAX + 80], tmp[PATH_MAX + 96], buf[256];
	int fd, len, r;
	size_t at;

	if (!registry_name_ok(e->name))
		return -EINVAL;
	r = group_dir(home, dir, sizeof(dir));
	if (r)
		return r;
	if (mkdir(home, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s", dir, e->name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%d", dir, e->name, (int)getpid());
	len = snprintf(buf, sizeof(buf), "pid %d\nstarttime %" PRIu64 "\nstate %s\ncreated %" PRIu64 "\n",
		       (int)e->pid, e->starttime, registry_state_name(e->state), e->created_ns);
	at = (size_t)len;
	if (e->ns_pid > 0)
		at += (size_t)snprintf(buf + at, sizeof(buf) - at, "nspid %d\n", (int)e->ns_pid);
	if (e->ns_init > 0)
		at += (size_t)snprintf(buf + at, sizeof(buf) - at, "nsinit %d\n", (int)e->ns_init);
	len = (int)at;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* Rename only a complete, durable file: a crash leaves the old record
	 * or the new one, and the directory fsync makes the rename last. */
	if (write(fd, buf, (size_t)len) != len || fsync(fd) < 0) {
		r = errno ? -errno : -EIO;
		close(fd);
		unlink(tmp);
		return r;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		return r;
	}
	return fsync_dir(dir);
}

int registry_del(const char *home, const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX + 80];
	int r;

	if (!registry_name_ok(name))
		return -EINVAL;
	r = group_dir(home, dir, sizeof(dir));
	if (r)
		return r;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (unlink(path) < 0)
		return -errno;
	return fsync_dir(dir);
}

int registry_list(const char *home, registry_fn fn, void *arg)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int r = group_dir(home, dir, sizeof(dir));

	if (r)
		return r;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		struct registry_entry e;

		if (!registry_name_ok(de->d_name) || de->d_name[0] == '.')
			continue;
		if (registry_get(home, de->d_name, &e))
			continue;
		r = fn(arg, &e);
		if (r)
			break;
	}
	closedir(d);
	return r;
}

int registry_pid_starttime(pid_t pid, uint64_t *starttime)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	/* The comm may hold spaces and ')': fields start after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -EBADMSG;
	p++;
	/* A zombie has ended: it only waits for its parent (or pid 1, which
	 * here takes up to 2 s) to collect it. */
	if (p[0] == ' ' && (p[1] == 'Z' || p[1] == 'X'))
		return -ESRCH;
	for (field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EBADMSG;
	}
	*starttime = strtoull(p + 1, NULL, 10);
	return 0;
}
