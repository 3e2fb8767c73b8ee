#define LOG_PREFIX "proc: "
#include "proc/maps.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proc/lines.h"
#include "proc/procfs.h"

#define MAPS_LINE_MAX (PATH_MAX + 256)
#define MAPS_MAX_VMAS (1u << 22) /* far above vm.max_map_count's default */

static const char *const vmflag_names[] = {
#define PROC_VMF_NAME(n, s) s,
	PROC_VMFLAGS(PROC_VMF_NAME)
#undef PROC_VMF_NAME
};

const char *proc_vmflag_name(unsigned bit)
{
	return bit < PROC_VMF_BIT__COUNT ? vmflag_names[bit] : NULL;
}

void proc_maps_free(struct proc_maps *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

/* "start-end perms offset major:minor inode [path]" */
static int parse_header(char *line, struct proc_vma *v)
{
	const char *p = line;
	uint64_t maj, min;
	size_t plen;
	static const char deleted[] = " (deleted)";

	memset(v, 0, sizeof(*v));
	if (lp_u64(&p, 16, &v->start) || *p++ != '-' || lp_u64(&p, 16, &v->end))
		return -EINVAL;
	if (v->end <= v->start || lp_blank(&p))
		return -EINVAL;
	if ((p[0] != 'r' && p[0] != '-') || (p[1] != 'w' && p[1] != '-') ||
	    (p[2] != 'x' && p[2] != '-') || (p[3] != 's' && p[3] != 'p'))
		return -EINVAL;
	v->prot = (p[0] == 'r' ? PROC_PROT_READ : 0) |
		  (p[1] == 'w' ? PROC_PROT_WRITE : 0) |
		  (p[2] == 'x' ? PROC_PROT_EXEC : 0);
	v->shared = p[3] == 's';
	p += 4;
	if (lp_blank(&p) || lp_u64(&p, 16, &v->pgoff) || lp_blank(&p))
		return -EINVAL;
	if (lp_u64(&p, 16, &maj) || *p++ != ':' || lp_u64(&p, 16, &min))
		return -EINVAL;
	if (maj > UINT32_MAX || min > UINT32_MAX)
		return -EINVAL;
	v->dev_major = (uint32_t)maj;
	v->dev_minor = (uint32_t)min;
	if (lp_blank(&p) || lp_u64(&p, 10, &v->inode))
		return -EINVAL;
	if (*p && *p != ' ' && *p != '\t')
		return -EINVAL;
	p = lp_skip_ws(p);
	plen = strlen(p);
	if (plen >= sizeof(deleted) - 1 &&
	    !strcmp(p + plen - (sizeof(deleted) - 1), deleted)) {
		v->deleted = true;
		plen -= sizeof(deleted) - 1;
	}
	v->special = plen >= 2 && p[0] == '[' && p[plen - 1] == ']';
	v->path = strndup(p, plen);
	return v->path ? 0 : -ENOMEM;
}

static int parse_vmflags(const char *p, struct proc_vma *v)
{
	v->vmflags = 0;
	v->vmflags_unknown = 0;
	for (;;) {
		unsigned b;
		p = lp_skip_ws(p);
		if (!*p)
			return 0;
		if (!(p[0] >= 'a' && p[0] <= 'z') || !(p[1] >= 'a' && p[1] <= 'z') ||
		    (p[2] && p[2] != ' ' && p[2] != '\t'))
			return -EINVAL;
		for (b = 0; b < PROC_VMF_BIT__COUNT; b++)
			if (vmflag_names[b][0] == p[0] && vmflag_names[b][1] == p[1])
				break;
		if (b < PROC_VMF_BIT__COUNT)
			v->vmflags |= 1ULL << b;
		else
			v->vmflags_unknown++;
		p += 2;
	}
}

/* "Key:   123 kB" -> 123 */
static int parse_kb(const char *p, uint64_t *out)
{
	p = lp_skip_ws(p);
	if (lp_u64(&p, 10, out))
		return -EINVAL;
	p = lp_skip_ws(p);
	if (strcmp(p, "kB") && *p)
		return -EINVAL;
	return 0;
}

static int parse_attr(char *line, char *colon, struct proc_vma *v)
{
	const char *val = colon + 1;

	*colon = '\0';
	v->has_smaps = true;
	if (!strcmp(line, "VmFlags"))
		return parse_vmflags(val, v);
	if (!strcmp(line, "Rss"))
		return parse_kb(val, &v->rss_kb);
	if (!strcmp(line, "Anonymous"))
		return parse_kb(val, &v->anon_kb);
	if (!strcmp(line, "Swap"))
		return parse_kb(val, &v->swap_kb);
	/* Other keys (and ones newer kernels add) are not needed; only their
	 * shape is checked: a key of letters, digits and '_'. */
	for (const char *k = line; *k; k++)
		if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
		      (*k >= '0' && *k <= '9') || *k == '_'))
			return -EINVAL;
	return *line ? 0 : -EINVAL;
}

int proc_maps_parse(const char *buf, size_t len, struct proc_maps *out)
{
	struct proc_maps m = { 0 };
	size_t cap = 0;
	struct lines l;
	char *line;
	int r, ret = 0;

	line = malloc(MAPS_LINE_MAX);
	if (!line)
		return -ENOMEM;
	lines_init(&l, buf, len);
	while ((r = lines_next(&l, line, MAPS_LINE_MAX)) != 0) {
		char *sp, *colon;
		if (r < 0) {
			ret = r;
			goto bad;
		}
		sp = strpbrk(line, " \t");
		colon = strchr(line, ':');
		if (colon && (!sp || colon < sp)) {
			/* An attribute line belongs to the mapping before it.
			 * A header has its first ':' in the dev field, after
			 * the first blank. */
			if (!m.n) {
				ret = -EINVAL;
				goto bad;
			}
			ret = parse_attr(line, colon, &m.v[m.n - 1]);
			if (ret)
				goto bad;
			continue;
		}
		if (m.n == MAPS_MAX_VMAS) {
			ret = -E2BIG;
			goto bad;
		}
		if (m.n == cap) {
			struct proc_vma *nv;
			cap = cap ? cap * 2 : 64;
			nv = realloc(m.v, cap * sizeof(*nv));
			if (!nv) {
				ret = -ENOMEM;
				goto out;
			}
			m.v = nv;
		}
		ret = parse_header(line, &m.v[m.n]);
		if (ret == -ENOMEM)
			goto out;
		if (ret)
			goto bad;
		if (m.n && m.v[m.n].start < m.v[m.n - 1].end) {
			free(m.v[m.n].path);
			ret = -EINVAL;
			goto bad;
		}
		m.n++;
	}
	free(line);
	*out = m;
	return 0;
bad:
	pr_err("maps: malformed line %u", l.lineno);
out:
	free(line);
	proc_maps_free(&m);
	return ret;
}

int proc_maps_read(pid_t pid, bool smaps, struct proc_maps *out)
{
	char *buf;
	size_t len;
	int ret = proc_read_file(pid, smaps ? "smaps" : "maps", &buf, &len);

	if (ret) {
		pr_err("read /proc/%d/%s: %s", (int)pid, smaps ? "smaps" : "maps",
		       strerror(-ret));
		return ret;
	}
	ret = proc_maps_parse(buf, len, out);
	if (ret)
		pr_err("/proc/%d/%s: cannot parse: %s", (int)pid,
		       smaps ? "smaps" : "maps", strerror(-ret));
	free(buf);
	return ret;
}

const struct proc_vma *proc_maps_find(const struct proc_maps *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (addr < m->v[mid].start)
			hi = mid;
		else if (addr >= m->v[mid].end)
			lo = mid + 1;
		else
			return &m->v[mid];
	}
	return NULL;
}

const struct proc_vma *proc_maps_find_name(const struct proc_maps *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].special && !strcmp(m->v[i].path, name))
			return &m->v[i];
	return NULL;
}
