/* Internal to src/proc: strict, bounded helpers for /proc text parsers.
 *
 * Every parser walks its buffer line by line through lines_next(), which
 * copies one line into a caller-sized stack buffer (NUL-terminated), so the
 * number readers below can never run past the input. A line longer than the
 * buffer, or one holding a NUL byte, is malformed: /proc never writes those. */
#ifndef CRYO_PROC_LINES_H
#define CRYO_PROC_LINES_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct lines {
	const char *p;
	const char *end;
	unsigned lineno;       /* 1-based number of the line last returned */
};

static inline void lines_init(struct lines *l, const char *buf, size_t len)
{
	l->p = buf;
	l->end = buf + len;
	l->lineno = 0;
}

/* 1: a line is in buf; 0: end of input; -EINVAL: too long or has a NUL. */
static inline int lines_next(struct lines *l, char *buf, size_t cap)
{
	const char *nl;
	size_t n;

	if (l->p >= l->end)
		return 0;
	nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
	n = nl ? (size_t)(nl - l->p) : (size_t)(l->end - l->p);
	l->lineno++;
	if (n >= cap || memchr(l->p, '\0', n)) {
		l->p = nl ? nl + 1 : l->end;
		return -EINVAL;
	}
	memcpy(buf, l->p, n);
	buf[n] = '\0';
	l->p = nl ? nl + 1 : l->end;
	return 1;
}

static inline int lp_digit(char c, unsigned base)
{
	int v;
	if (c >= '0' && c <= '9')
		v = c - '0';
	else if (c >= 'a' && c <= 'f')
		v = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		v = c - 'A' + 10;
	else
		return -1;
	return v < (int)base ? v : -1;
}

/* Unsigned number in base 10 or 16 at *s, at least one digit, no sign, no
 * overflow; advances *s past it. */
static inline int lp_u64(const char **s, unsigned base, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;
	int d, any = 0;

	while ((d = lp_digit(*p, base)) >= 0) {
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			return -EINVAL;
		v = v * base + (uint64_t)d;
		p++;
		any = 1;
	}
	if (!any)
		return -EINVAL;
	*s = p;
	*out = v;
	return 0;
}

/* Signed decimal: an optional '-' then lp_u64. */
static inline int lp_s64(const char **s, int64_t *out)
{
	const char *p = *s;
	uint64_t v;
	int neg = 0;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (lp_u64(&p, 10, &v))
		return -EINVAL;
	if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
		return -EINVAL;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	*s = p;
	return 0;
}

static inline const char *lp_skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Require at least one blank, then skip all of them. */
static inline int lp_blank(const char **s)
{
	if (**s != ' ' && **s != '\t')
		return -EINVAL;
	*s = lp_skip_ws(*s);
	return 0;
}

static inline int lp_end(const char *s)
{
	return *lp_skip_ws(s) == '\0' ? 0 : -EINVAL;
}

#endif
