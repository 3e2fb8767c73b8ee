/* /proc/PID/mountinfo, one mount a line:
 *   ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
 * ROOT and POINT escape space, tab, newline and backslash as \ooo. */
#define LOG_PREFIX "proc: "
#include "proc/mountinfo.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proc/lines.h"
#include "proc/procfs.h"

#define MOUNTINFO_LINE_MAX 8192

void proc_mounts_free(struct proc_mounts *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].point);
		free(m->v[i].root);
	}
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

/* The next blank-separated field of *s, unescaped, malloc'd; NULL (with
 * *err set) if there is none or an escape is bad. */
static char *field(const char **s, int *err)
{
	const char *p = lp_skip_ws(*s), *q = p;
	char *out, *o;

	while (*q && *q != ' ' && *q != '\t')
		q++;
	if (q == p) {
		*err = -EINVAL;
		return NULL;
	}
	out = malloc((size_t)(q - p) + 1);
	if (!out) {
		*err = -ENOMEM;
		return NULL;
	}
	for (o = out; p < q; p++) {
		if (*p != '\\') {
			*o++ = *p;
			continue;
		}
		if (q - p < 4 || lp_digit(p[1], 8) < 0 || lp_digit(p[2], 8) < 0 ||
		    lp_digit(p[3], 8) < 0 || p[1] > '3') {
			free(out);
			*err = -EINVAL;
			return NULL;
		}
		*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
		p += 3;
	}
	*o = '\0';
	*s = q;
	return out;
}

/* One line: its device and, when it is maj:min, its root and point. */
static int parse_line(const char *line, unsigned maj, unsigned min, struct proc_mount *m,
		      int *match)
{
	const char *p = line;
	uint64_t id, parent, ma, mi;
	int err = 0;

	*match = 0;
	m->root = m->point = NULL;
	if (lp_u64(&p, 10, &id) || lp_blank(&p) || lp_u64(&p, 10, &parent) || lp_blank(&p) ||
	    lp_u64(&p, 10, &ma) || *p++ != ':' || lp_u64(&p, 10, &mi) || lp_blank(&p))
		return -EINVAL;
	m->root = field(&p, &err);
	if (m->root)
		m->point = field(&p, &err);
	if (!m->root || !m->point || !strstr(p, " - ")) {
		free(m->root);
		free(m->point);
		return err ? err : -EINVAL;
	}
	if (ma != maj || mi != min) {
		free(m->root);
		free(m->point);
		return 0;
	}
	*match = 1;
	return 0;
}

int proc_mountinfo_parse(const char *buf, size_t len, unsigned maj, unsigned min,
			 struct proc_mounts *out)
{
	struct proc_mounts m = { 0 };
	size_t cap = 0;
	struct lines l;
	char *line = malloc(MOUNTINFO_LINE_MAX);
	int r, ret = 0;

	if (!line)
		return -ENOMEM;
	lines_init(&l, buf, len);
	while ((r = lines_next(&l, line, MOUNTINFO_LINE_MAX)) != 0) {
		struct proc_mount one;
		int match;

		if (r < 0 || (ret = parse_line(line, maj, min, &one, &match))) {
			ret = ret ? ret : r;
			break;
		}
		if (!match)
			continue;
		if (m.n == cap) {
			struct proc_mount *nv;

			cap = cap ? cap * 2 : 4;
			nv = realloc(m.v, cap * sizeof(*nv));
			if (!nv) {
				free(one.root);
				free(one.point);
				ret = -ENOMEM;
				break;
			}
			m.v = nv;
		}
		/* a whole file system first: any of its inodes has a path there */
		if (!strcmp(one.root, "/")) {
			memmove(m.v + 1, m.v, m.n * sizeof(*m.v));
			m.v[0] = one;
		} else {
			m.v[m.n] = one;
		}
		m.n++;
	}
	free(line);
	if (ret) {
		proc_mounts_free(&m);
		return ret;
	}
	*out = m;
	return 0;
}

int proc_mounts_of_dev(pid_t pid, unsigned maj, unsigned min, struct proc_mounts *out)
{
	char *buf;
	size_t len;
	int r = proc_read_file(pid, "mountinfo", &buf, &len);

	if (r)
		return r;
	r = proc_mountinfo_parse(buf, len, maj, min, out);
	free(buf);
	return r;
}
