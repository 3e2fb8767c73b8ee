#define LOG_PREFIX "proc: "
#include "proc/fds.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "proc/lines.h"
#include "proc/procfs.h"

#define FDINFO_LINE_MAX 8192

void proc_fdinfo_free(struct proc_fdinfo *fi)
{
	if (!fi)
		return;
	for (size_t i = 0; i < fi->nextra; i++) {
		free(fi->extra[i].key);
		free(fi->extra[i].val);
	}
	free(fi->extra);
	fi->extra = NULL;
	fi->nextra = 0;
}

static int one_num(const char *p, unsigned base, uint64_t max, uint64_t *out)
{
	p = lp_skip_ws(p);
	if (lp_u64(&p, base, out) || *out > max)
		return -EINVAL;
	return lp_end(p);
}

static int add_extra(struct proc_fdinfo *fi, size_t *cap, const char *k, const char *v)
{
	struct proc_kv *nk;

	if (fi->nextra == PROC_FDINFO_EXTRA_MAX)
		return -E2BIG;
	if (fi->nextra == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		nk = realloc(fi->extra, *cap * sizeof(*nk));
		if (!nk)
			return -ENOMEM;
		fi->extra = nk;
	}
	nk = &fi->extra[fi->nextra];
	nk->key = strdup(k);
	nk->val = strdup(lp_skip_ws(v));
	if (!nk->key || !nk->val) {
		free(nk->key);
		free(nk->val);
		return -ENOMEM;
	}
	fi->nextra++;
	return 0;
}

int proc_fdinfo_parse(const char *buf, size_t len, struct proc_fdinfo *out)
{
	struct proc_fdinfo fi = { 0 };
	size_t cap = 0;
	struct lines l;
	bool has_pos = false, has_flags = false;
	char *line;
	int r, ret = 0;

	line = malloc(FDINFO_LINE_MAX);
	if (!line)
		return -ENOMEM;
	lines_init(&l, buf, len);
	while ((r = lines_next(&l, line, FDINFO_LINE_MAX)) != 0) {
		char *colon;
		uint64_t v;
		if (r < 0) {
			ret = r;
			goto bad;
		}
		colon = strchr(line, ':');
		if (!colon || colon == line) {
			ret = -EINVAL;
			goto bad;
		}
		*colon = '\0';
		if (!strcmp(line, "pos")) {
			if ((ret = one_num(colon + 1, 10, UINT64_MAX, &fi.pos)))
				goto bad;
			has_pos = true;
		} else if (!strcmp(line, "flags")) {
			if ((ret = one_num(colon + 1, 8, UINT32_MAX, &v)))
				goto bad;
			fi.flags = (uint32_t)v;
			has_flags = true;
		} else if (!strcmp(line, "mnt_id")) {
			if ((ret = one_num(colon + 1, 10, UINT32_MAX, &v)))
				goto bad;
			fi.mnt_id = (uint32_t)v;
			fi.has_mnt_id = true;
		} else if (!strcmp(line, "ino")) {
			if ((ret = one_num(colon + 1, 10, UINT64_MAX, &fi.ino)))
				goto bad;
			fi.has_ino = true;
		} else {
			ret = add_extra(&fi, &cap, line, colon + 1);
			if (ret == -ENOMEM)
				goto out;
			if (ret)
				goto bad;
		}
	}
	if (!has_pos || !has_flags) {
		pr_err("fdinfo: pos or flags missing");
		ret = -EINVAL;
		goto out;
	}
	free(line);
	*out = fi;
	return 0;
bad:
	pr_err("fdinfo: malformed line %u", l.lineno);
out:
	free(line);
	proc_fdinfo_free(&fi);
	return ret;
}

int proc_fdinfo_read(pid_t pid, int fd, struct proc_fdinfo *out)
{
	char rel[64], *buf;
	size_t len;
	int ret;

	snprintf(rel, sizeof(rel), "fdinfo/%d", fd);
	ret = proc_read_file(pid, rel, &buf, &len);
	if (ret)
		return ret;
	ret = proc_fdinfo_parse(buf, len, out);
	free(buf);
	return ret;
}

const char *proc_fdinfo_get(const struct proc_fdinfo *fi, const char *key)
{
	for (size_t i = 0; i < fi->nextra; i++)
		if (!strcmp(fi->extra[i].key, key))
			return fi->extra[i].val;
	return NULL;
}

void proc_fds_free(struct proc_fds *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i].target);
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

static int cmp_fd(const void *a, const void *b)
{
	int x = ((const struct proc_fd *)a)->fd, y = ((const struct proc_fd *)b)->fd;
	return (x > y) - (x < y);
}

int proc_fds_list(pid_t pid, struct proc_fds *out)
{
	struct proc_fds f = { 0 };
	size_t cap = 0;
	char path[64];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((errno = 0, de = readdir(d))) {
		char link[PATH_MAX];
		ssize_t n;
		long fd;

		if (de->d_name[0] == '.')
			continue;
		if (proc_parse_dirent_num(de->d_name, INT_MAX, &fd)) {
			pr_err("%s: unexpected entry '%s'", path, de->d_name);
			ret = -EINVAL;
			goto out;
		}
		n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (n < 0) {
			if (errno == ENOENT)
				continue;   /* closed meanwhile */
			ret = -errno;
			goto out;
		}
		link[n] = '\0';
		if (f.n == cap) {
			struct proc_fd *nv;
			cap = cap ? cap * 2 : 16;
			nv = realloc(f.v, cap * sizeof(*nv));
			if (!nv) {
				ret = -ENOMEM;
				goto out;
			}
			f.v = nv;
		}
		f.v[f.n].fd = (int)fd;
		f.v[f.n].target = strdup(link);
		if (!f.v[f.n].target) {
			ret = -ENOMEM;
			goto out;
		}
		f.n++;
	}
	if (errno)
		ret = -errno;
out:
	closedir(d);
	if (ret) {
		proc_fds_free(&f);
		return ret;
	}
	if (f.n)
		qsort(f.v, f.n, sizeof(*f.v), cmp_fd);
	*out = f;
	return 0;
}
