#define LOG_PREFIX "proc: "
#include "proc/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proc/lines.h"
#include "proc/procfs.h"

#define STATUS_LINE_MAX 8192
#define STAT_LINE_MAX 4096  /* 52 numbers and a 64-byte comm fit easily */

static int parse_u32_list(const char *p, uint32_t *out, unsigned want)
{
	for (unsigned i = 0; i < want; i++) {
		uint64_t v;
		p = lp_skip_ws(p);
		if (lp_u64(&p, 10, &v) || v > UINT32_MAX)
			return -EINVAL;
		out[i] = (uint32_t)v;
	}
	return lp_end(p);
}

static int parse_one(const char *p, unsigned base, uint64_t max, uint64_t *out)
{
	p = lp_skip_ws(p);
	if (lp_u64(&p, base, out) || *out > max)
		return -EINVAL;
	return lp_end(p);
}

static int parse_i32(const char *p, int32_t *out)
{
	uint64_t v;
	int ret = parse_one(p, 10, INT32_MAX, &v);
	if (!ret)
		*out = (int32_t)v;
	return ret;
}

static int parse_groups(const char *p, struct proc_status *st)
{
	st->ngroups = 0;
	for (;;) {
		uint64_t v;
		p = lp_skip_ws(p);
		if (!*p)
			return 0;
		if (st->ngroups == PROC_STATUS_GROUPS_MAX)
			return -E2BIG;
		if (lp_u64(&p, 10, &v) || v > UINT32_MAX)
			return -EINVAL;
		st->groups[st->ngroups++] = (uint32_t)v;
	}
}

/* "NSpid:\t4242\t17": one id per level. Every NS line must have as many
 * levels as NSpid (they name the same namespaces). */
static int parse_ns_list(const char *p, int32_t *out, uint32_t *levels, bool first)
{
	uint32_t n = 0;

	for (;;) {
		uint64_t v;

		p = lp_skip_ws(p);
		if (!*p)
			break;
		if (n == PROC_NS_LEVELS)
			return -E2BIG;
		if (lp_u64(&p, 10, &v) || v > INT32_MAX)
			return -EINVAL;
		out[n++] = (int32_t)v;
	}
	if (!n || (!first && n != *levels))
		return -EINVAL;
	*levels = n;
	return 0;
}

static int status_line(char *key, const char *val, struct proc_status *st)
{
	struct { const char *k; uint64_t *dst; uint32_t have; } hex[] = {
		{ "SigPnd", &st->sig_pnd, PROC_STATUS_HAVE_SIGS },
		{ "ShdPnd", &st->shd_pnd, PROC_STATUS_HAVE_SIGS },
		{ "SigBlk", &st->sig_blk, PROC_STATUS_HAVE_SIGS },
		{ "SigIgn", &st->sig_ign, PROC_STATUS_HAVE_SIGS },
		{ "SigCgt", &st->sig_cgt, PROC_STATUS_HAVE_SIGS },
		{ "CapInh", &st->cap_inh, PROC_STATUS_HAVE_CAPS },
		{ "CapPrm", &st->cap_prm, PROC_STATUS_HAVE_CAPS },
		{ "CapEff", &st->cap_eff, PROC_STATUS_HAVE_CAPS },
		{ "CapBnd", &st->cap_bnd, PROC_STATUS_HAVE_CAPS },
		{ "CapAmb", &st->cap_amb, 0 },
	};
	struct { const char *k; int32_t *dst; uint32_t have; } dec[] = {
		{ "Tgid", &st->tgid, PROC_STATUS_HAVE_IDS },
		{ "Pid", &st->pid, PROC_STATUS_HAVE_IDS },
		{ "PPid", &st->ppid, PROC_STATUS_HAVE_IDS },
		{ "TracerPid", &st->tracer_pid, 0 },
		{ "NoNewPrivs", &st->no_new_privs, 0 },
		{ "Seccomp", &st->seccomp, 0 },
		{ "Seccomp_filters", &st->seccomp_filters, 0 },
	};
	uint64_t v;
	int ret;

	for (size_t i = 0; i < sizeof(hex) / sizeof(hex[0]); i++)
		if (!strcmp(key, hex[i].k)) {
			st->seen |= hex[i].have;
			return parse_one(val, 16, UINT64_MAX, hex[i].dst);
		}
	for (size_t i = 0; i < sizeof(dec) / sizeof(dec[0]); i++)
		if (!strcmp(key, dec[i].k)) {
			st->seen |= dec[i].have;
			return parse_i32(val, dec[i].dst);
		}
	if (!strcmp(key, "Name")) {
		/* The kernel escapes the comm; keep it as printed, bounded. */
		val = lp_skip_ws(val);
		snprintf(st->name, sizeof(st->name), "%s", val);
		return 0;
	}
	if (!strcmp(key, "State")) {
		val = lp_skip_ws(val);
		if (!*val)
			return -EINVAL;
		st->state = *val;
		return 0;
	}
	if (!strcmp(key, "Umask")) {
		ret = parse_one(val, 8, 07777, &v);
		st->umask = (uint32_t)v;
		st->has_umask = !ret;
		return ret;
	}
	if (!strcmp(key, "Uid") || !strcmp(key, "Gid")) {
		st->seen |= PROC_STATUS_HAVE_CREDS;
		return parse_u32_list(val, key[0] == 'U' ? st->uid : st->gid, 4);
	}
	if (!strcmp(key, "Groups"))
		return parse_groups(val, st);
	/* NSpid comes first in the kernel's order (NStgid NSpid NSpgid NSsid). */
	if (!strcmp(key, "NSpid"))
		return parse_ns_list(val, st->ns_pid, &st->ns_levels, !st->ns_levels);
	if (!strcmp(key, "NSpgid"))
		return parse_ns_list(val, st->ns_pgid, &st->ns_levels, !st->ns_levels);
	if (!strcmp(key, "NSsid"))
		return parse_ns_list(val, st->ns_sid, &st->ns_levels, !st->ns_levels);
	if (!strcmp(key, "Threads")) {
		st->seen |= PROC_STATUS_HAVE_THREADS;
		ret = parse_one(val, 10, UINT32_MAX, &v);
		st->threads = (uint32_t)v;
		return ret;
	}
	return 0;
}

int proc_status_parse(const char *buf, size_t len, struct proc_status *st)
{
	struct lines l;
	char *line;
	int r, ret = 0;

	memset(st, 0, sizeof(*st));
	st->no_new_privs = st->seccomp = st->seccomp_filters = -1;
	line = malloc(STATUS_LINE_MAX);
	if (!line)
		return -ENOMEM;
	lines_init(&l, buf, len);
	while ((r = lines_next(&l, line, STATUS_LINE_MAX)) != 0) {
		char *colon;
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
		ret = status_line(line, colon + 1, st);
		if (ret)
			goto bad;
	}
	free(line);
	if ((st->seen & PROC_STATUS_HAVE_ALL) != PROC_STATUS_HAVE_ALL) {
		pr_err("status: required lines missing (have %#x)", st->seen);
		return -ENODATA;
	}
	return 0;
bad:
	pr_err("status: malformed line %u", l.lineno);
	free(line);
	return ret;
}

static int read_task_file(pid_t pid, pid_t tid, const char *name, char **buf, size_t *len)
{
	char rel[64];
	if (tid)
		snprintf(rel, sizeof(rel), "task/%d/%s", (int)tid, name);
	else
		snprintf(rel, sizeof(rel), "%s", name);
	return proc_read_file(pid, rel, buf, len);
}

int proc_status_read(pid_t pid, pid_t tid, struct proc_status *st)
{
	char *buf;
	size_t len;
	int ret = read_task_file(pid, tid, "status", &buf, &len);

	if (ret)
		return ret;
	ret = proc_status_parse(buf, len, st);
	if (ret)
		pr_err("/proc/%d/status (tid %d): %s", (int)pid, (int)tid, strerror(-ret));
	free(buf);
	return ret;
}

int proc_stat_parse(const char *in, size_t len, struct proc_stat *st)
{
	/* A NUL-terminated copy: the number readers stop at the NUL. */
	char buf[STAT_LINE_MAX];
	const char *open, *close = NULL, *p, *end = buf + len;
	uint64_t pid;
	size_t clen;

	memset(st, 0, sizeof(*st));
	if (len == 0 || len >= sizeof(buf) || memchr(in, '\0', len))
		goto bad;
	memcpy(buf, in, len);
	buf[len] = '\0';
	/* Trailing newline is optional. */
	if (buf[len - 1] == '\n')
		end--;
	if (memchr(buf, '\n', (size_t)(end - buf)))
		goto bad;
	p = buf;
	/* lp_u64 stops at the first non-digit, which is inside [buf, end). */
	if (lp_u64(&p, 10, &pid) || pid > INT32_MAX || p >= end || *p != ' ')
		goto bad;
	open = p + 1;
	if (open >= end || *open != '(')
		goto bad;
	for (const char *q = open + 1; q < end; q++)
		if (*q == ')')
			close = q;
	if (!close)
		goto bad;
	st->pid = (int32_t)pid;
	clen = (size_t)(close - open - 1);
	if (clen >= sizeof(st->comm))
		clen = sizeof(st->comm) - 1;
	memcpy(st->comm, open + 1, clen);
	p = close + 1;
	if (end - p < 3 || p[0] != ' ' || p[2] != ' ')
		goto bad;
	st->state = p[1];
	p += 2;
	st->nfields = 3;
	while (p < end) {
		char num[32];
		const char *q, *s;
		int64_t v;
		if (*p != ' ')
			goto bad;
		p++;
		q = p;
		while (q < end && *q != ' ')
			q++;
		if (q == p || (size_t)(q - p) >= sizeof(num))
			goto bad;
		memcpy(num, p, (size_t)(q - p));
		num[q - p] = '\0';
		s = num;
		/* Most fields are unsigned longs printed with %lu; addresses in
		 * the upper half do not fit int64, keep their bits. */
		if (num[0] == '-') {
			if (lp_s64(&s, &v) || *s)
				goto bad;
		} else {
			uint64_t u;
			if (lp_u64(&s, 10, &u) || *s)
				goto bad;
			v = (int64_t)u;
		}
		if (st->nfields < PROC_STAT_NFIELDS)
			st->f[++st->nfields] = v;
		p = q;
	}
	if (st->nfields < PROC_STAT_MIN_FIELDS)
		goto bad;
	return 0;
bad:
	pr_err("stat: malformed line 1");
	return -EINVAL;
}

int proc_stat_read(pid_t pid, pid_t tid, struct proc_stat *st)
{
	char *buf;
	size_t len;
	int ret = read_task_file(pid, tid, "stat", &buf, &len);

	if (ret)
		return ret;
	ret = proc_stat_parse(buf, len, st);
	free(buf);
	return ret;
}
