#define LOG_PREFIX "proc: "
#include "proc/timers.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proc/lines.h"
#include "proc/procfs.h"

void proc_timers_free(struct proc_timers *t)
{
	if (!t)
		return;
	free(t->t);
	t->t = NULL;
	t->n = 0;
}

static int parse_int(const char **p, int32_t *out)
{
	int64_t v;
	if (lp_s64(p, &v) || v < INT32_MIN || v > INT32_MAX)
		return -EINVAL;
	*out = (int32_t)v;
	return 0;
}

/* "signal/tid.123", "none/pid.45", "thread/pid.7" */
static int parse_notify(const char *p, struct proc_timer *t)
{
	static const struct { const char *s; int v; } kinds[] = {
		{ "signal/", SIGEV_SIGNAL }, { "none/", SIGEV_NONE },
		{ "thread/", SIGEV_THREAD },
	};
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strncmp(p, kinds[i].s, strlen(kinds[i].s)))
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0]))
		return -EINVAL;
	t->notify = kinds[i].v;
	p += strlen(kinds[i].s);
	if (!strncmp(p, "tid.", 4))
		t->thread_id = 1;
	else if (strncmp(p, "pid.", 4))
		return -EINVAL;
	p += 4;
	if (parse_int(&p, &t->notify_pid))
		return -EINVAL;
	return lp_end(p);
}

static int timer_line(const char *key, const char *p, struct proc_timer *t)
{
	p = lp_skip_ws(p);
	if (!strcmp(key, "signal")) {
		if (parse_int(&p, &t->signo) || *p++ != '/')
			return -EINVAL;
		if (p[0] == '0' && p[1] == 'x')
			p += 2;
		if (lp_u64(&p, 16, &t->sigev_value))
			return -EINVAL;
		return lp_end(p);
	}
	if (!strcmp(key, "notify"))
		return parse_notify(p, t);
	if (!strcmp(key, "ClockID")) {
		if (parse_int(&p, &t->clock_id))
			return -EINVAL;
		return lp_end(p);
	}
	return 0;   /* a key a newer kernel added */
}

int proc_timers_parse(const char *buf, size_t len, struct proc_timers *out)
{
	struct proc_timers ts = { 0 };
	size_t cap = 0;
	char line[256];
	struct lines l;
	int r, ret = 0;

	lines_init(&l, buf, len);
	while ((r = lines_next(&l, line, sizeof(line))) != 0) {
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
		if (!strcmp(line, "ID")) {
			const char *p = lp_skip_ws(colon + 1);
			if (ts.n == PROC_TIMERS_MAX) {
				ret = -E2BIG;
				goto bad;
			}
			if (ts.n == cap) {
				struct proc_timer *nt;
				cap = cap ? cap * 2 : 8;
				nt = realloc(ts.t, cap * sizeof(*nt));
				if (!nt) {
					ret = -ENOMEM;
					goto out;
				}
				ts.t = nt;
			}
			memset(&ts.t[ts.n], 0, sizeof(ts.t[0]));
			if (parse_int(&p, &ts.t[ts.n].id) || lp_end(p)) {
				ret = -EINVAL;
				goto bad;
			}
			ts.n++;
			continue;
		}
		if (!ts.n) {
			ret = -EINVAL;
			goto bad;
		}
		ret = timer_line(line, colon + 1, &ts.t[ts.n - 1]);
		if (ret)
			goto bad;
	}
	*out = ts;
	return 0;
bad:
	pr_err("timers: malformed line %u", l.lineno);
out:
	proc_timers_free(&ts);
	return ret;
}

int proc_timers_read(pid_t pid, struct proc_timers *out)
{
	char *buf;
	size_t len;
	int ret = proc_read_file(pid, "timers", &buf, &len);

	if (ret)
		return ret;
	ret = proc_timers_parse(buf, len, out);
	free(buf);
	return ret;
}
