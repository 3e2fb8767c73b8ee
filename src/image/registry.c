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
#include <sys/wait.h>
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

/* dir/name := buf, atomically: a crash leaves the old file or the new one
 * (renamed only complete and durable; the directory fsync makes the
 * rename last). Makes home and dir if missing. */
static int write_atomic(const char *home, const char *dir, const char *name, const char *buf,
			size_t len)
{
	char path[PATH_MAX + 80], tmp[PATH_MAX + 96];
	int fd, r;

	if (mkdir(home, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%d", dir, name, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, len) != (ssize_t)len || fsync(fd) < 0) {
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

int registry_put(const char *home, const struct registry_entry *e)
{
	char dir[PATH_MAX], buf[256];
	size_t at;
	int len, r;

	if (!registry_name_ok(e->name))
		return -EINVAL;
	r = group_dir(home, dir, sizeof(dir));
	if (r)
		return r;
	len = snprintf(buf, sizeof(buf), "pid %d\nstarttime %" PRIu64 "\nstate %s\ncreated %" PRIu64 "\n",
		       (int)e->pid, e->starttime, registry_state_name(e->state), e->created_ns);
	at = (size_t)len;
	if (e->ns_pid > 0)
		at += (size_t)snprintf(buf + at, sizeof(buf) - at, "nspid %d\n", (int)e->ns_pid);
	if (e->ns_init > 0)
		at += (size_t)snprintf(buf + at, sizeof(buf) - at, "nsinit %d\n", (int)e->ns_init);
	return write_atomic(home, dir, e->name, buf, at);
}

static int exits_dir(const char *home, char *buf, size_t n)
{
	if ((size_t)snprintf(buf, n, "%s/exits", home) >= n)
		return -ENAMETOOLONG;
	return 0;
}

int registry_exit_put(const char *home, const struct registry_entry *e, int status)
{
	char dir[PATH_MAX], buf[128];
	int len, r;

	if (!registry_name_ok(e->name))
		return -EINVAL;
	r = exits_dir(home, dir, sizeof(dir));
	if (r)
		return r;
	len = snprintf(buf, sizeof(buf), "pid %d\nstarttime %" PRIu64 "\nstatus %d\n",
		       (int)e->pid, e->starttime, status);
	return write_atomic(home, dir, e->name, buf, (size_t)len);
}

int registry_exit_get(const char *home, const struct registry_entry *e, int *status)
{
	char dir[PATH_MAX], path[PATH_MAX + 80], buf[256];
	unsigned long long start;
	ssize_t n;
	int fd, pid, st, r = exits_dir(home, dir, sizeof(dir));

	if (r)
		return r;
	if (!registry_name_ok(e->name))
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s", dir, e->name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ENOENT;
	buf[n] = '\0';
	if (sscanf(buf, "pid %d\nstarttime %llu\nstatus %d", &pid, &start, &st) != 3)
		return -EBADMSG;
	/* a record of an earlier process of the group is not this one's */
	if (pid != e->pid || start != e->starttime)
		return -ENOENT;
	*status = st;
	return 0;
}

const char *registry_exit_text(int status, char *buf, size_t n)
{
	if (status < 0)
		snprintf(buf, n, "exited");
	else if (WIFEXITED(status))
		snprintf(buf, n, "exited(%d)", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "killed(%d)", WTERMSIG(status));
	else
		snprintf(buf, n, "exited");
	return buf;
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
	r = fsync_dir(dir);
	/* and how its process ended, if that was seen */
	if (!exits_dir(home, dir, sizeof(dir))) {
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		(void)unlink(path);
	}
	return r;
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
