#define LOG_PREFIX "proc: "
#include "proc/procfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/vec.h"
#include "proc/lines.h"

int proc_read_file(pid_t pid, const char *name, char **bufp, size_t *lenp)
{
	char path[128];
	size_t cap = 16384, len = 0;
	char *buf = NULL, *nb;
	int fd, ret;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	else
		snprintf(path, sizeof(path), "/proc/self/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_debug("open %s: %s", path, strerror(-ret));
		return ret;
	}
	buf = malloc(cap);
	if (!buf) {
		ret = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		ssize_t r;
		if (cap - len < 4097) {
			if (cap >= PROC_FILE_MAX) {
				pr_err("%s: larger than %u bytes", path, PROC_FILE_MAX);
				ret = -EFBIG;
				goto out_free;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				ret = -ENOMEM;
				goto out_free;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			pr_debug("read %s: %s", path, strerror(-ret));
			goto out_free;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	close(fd);
	return 0;
out_free:
	free(buf);
out_close:
	close(fd);
	return ret;
}

int proc_parse_dirent_num(const char *name, long max, long *out)
{
	const char *p = name;
	uint64_t v;

	if (lp_u64(&p, 10, &v) || *p || v > (uint64_t)max)
		return -EINVAL;
	*out = (long)v;
	return 0;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

int proc_task_list(pid_t pid, pid_t **tidsp, size_t *np)
{
	char path[64];
	struct dirent *de;
	pid_t *tids = NULL, *nt;
	size_t n = 0, cap = 0;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((errno = 0, de = readdir(d))) {
		long tid;
		if (de->d_name[0] == '.')
			continue;
		if (proc_parse_dirent_num(de->d_name, INT32_MAX, &tid)) {
			pr_err("%s: unexpected entry '%s'", path, de->d_name);
			ret = -EINVAL;
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			nt = realloc(tids, cap * sizeof(*tids));
			if (!nt) {
				ret = -ENOMEM;
				goto out;
			}
			tids = nt;
		}
		tids[n++] = (pid_t)tid;
	}
	if (errno)
		ret = -errno;
out:
	closedir(d);
	if (ret) {
		free(tids);
		return ret;
	}
	if (n)
		qsort(tids, n, sizeof(*tids), cmp_pid);
	*tidsp = tids;
	*np = n;
	return 0;
}

static int push_pid(pid_t **v, size_t *n, size_t *cap, pid_t p)
{
	int r = vec_reserve((void **)v, cap, *n + 1, sizeof(**v));

	if (!r)
		(*v)[(*n)++] = p;
	return r;
}

int proc_children(pid_t pid, pid_t **kidsp, size_t *np)
{
	pid_t *tids = NULL, *kids = NULL;
	size_t nt = 0, n = 0, cap = 0, w = 0;
	int ret = proc_task_list(pid, &tids, &nt);

	if (ret)
		return ret;
	for (size_t i = 0; i < nt && !ret; i++) {
		char name[64], *buf = NULL, *p, *end;
		size_t len;

		snprintf(name, sizeof(name), "task/%d/children", (int)tids[i]);
		if (proc_read_file(pid, name, &buf, &len))
			continue;	/* the thread is gone: so are its children's links */
		for (p = buf; *p && !ret; p = end) {
			long v;

			while (*p == ' ' || *p == '\n')
				p++;
			if (!*p)
				break;
			errno = 0;
			v = strtol(p, &end, 10);
			if (end == p || errno || v <= 0 || v > INT32_MAX) {
				pr_err("pid %d: unexpected children list", (int)pid);
				ret = -EINVAL;
				break;
			}
			ret = push_pid(&kids, &n, &cap, (pid_t)v);
		}
		free(buf);
	}
	free(tids);
	if (ret) {
		free(kids);
		return ret;
	}
	if (n)
		qsort(kids, n, sizeof(*kids), cmp_pid);
	for (size_t i = 0; i < n; i++)
		if (!w || kids[w - 1] != kids[i])
			kids[w++] = kids[i];
	*kidsp = kids;
	*np = w;
	return 0;
}
