#define LOG_PREFIX "proc: "
#include "proc/rlimits.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proc/lines.h"
#include "proc/procfs.h"

/* Row names as fs/proc/base.c prints them, indexed by RLIMIT_*. */
static const char *const rlim_names[PROC_RLIM_COUNT] = {
	[RLIMIT_CPU] = "Max cpu time",
	[RLIMIT_FSIZE] = "Max file size",
	[RLIMIT_DATA] = "Max data size",
	[RLIMIT_STACK] = "Max stack size",
	[RLIMIT_CORE] = "Max core file size",
	[RLIMIT_RSS] = "Max resident set",
	[RLIMIT_NPROC] = "Max processes",
	[RLIMIT_NOFILE] = "Max open files",
	[RLIMIT_MEMLOCK] = "Max locked memory",
	[RLIMIT_AS] = "Max address space",
	[RLIMIT_LOCKS] = "Max file locks",
	[RLIMIT_SIGPENDING] = "Max pending signals",
	[RLIMIT_MSGQUEUE] = "Max msgqueue size",
	[RLIMIT_NICE] = "Max nice priority",
	[RLIMIT_RTPRIO] = "Max realtime priority",
	[RLIMIT_RTTIME] = "Max realtime timeout",
};

static int parse_value(const char **p, rlim_t *out)
{
	uint64_t v;

	*p = lp_skip_ws(*p);
	if (!strncmp(*p, "unlimited", 9)) {
		*p += 9;
		*out = RLIM_INFINITY;
		return 0;
	}
	if (lp_u64(p, 10, &v))
		return -EINVAL;
	*out = (rlim_t)v;
	return 0;
}

static int parse_row(const char *line, struct proc_rlimits *out)
{
	for (int i = 0; i < PROC_RLIM_COUNT; i++) {
		size_t n = strlen(rlim_names[i]);
		const char *p;
		struct rlimit rl;

		if (strncmp(line, rlim_names[i], n) || (line[n] != ' ' && line[n] != '\t'))
			continue;
		p = line + n;
		if (parse_value(&p, &rl.rlim_cur) || lp_blank(&p) ||
		    parse_value(&p, &rl.rlim_max))
			return -EINVAL;
		/* Units column ("seconds", "bytes", ...) or nothing. */
		if (*p && *p != ' ' && *p != '\t')
			return -EINVAL;
		if (rl.rlim_cur != RLIM_INFINITY &&
		    (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max))
			return -EINVAL;
		if (out->seen & (1u << i))
			return -EINVAL;
		out->lim[i] = rl;
		out->seen |= 1u << i;
		return 0;
	}
	/* A limit a newer kernel added: shape must still be "Max ...". */
	if (strncmp(line, "Max ", 4))
		return -EINVAL;
	out->unknown++;
	return 0;
}

int proc_rlimits_parse(const char *buf, size_t len, struct proc_rlimits *out)
{
	char line[512];
	struct lines l;
	int r, ret;

	memset(out, 0, sizeof(*out));
	lines_init(&l, buf, len);
	while ((r = lines_next(&l, line, sizeof(line))) != 0) {
		if (r < 0) {
			ret = r;
			goto bad;
		}
		if (l.lineno == 1) {
			if (strncmp(line, "Limit ", 6)) {
				ret = -EINVAL;
				goto bad;
			}
			continue;
		}
		ret = parse_row(line, out);
		if (ret)
			goto bad;
	}
	if (!out->seen) {
		pr_err("limits: no rows");
		return -EINVAL;
	}
	return 0;
bad:
	pr_err("limits: malformed line %u", l.lineno);
	return ret;
}

int proc_rlimits_read(pid_t pid, struct proc_rlimits *out)
{
	char *buf;
	size_t len;
	int ret = proc_read_file(pid, "limits", &buf, &len);

	if (ret)
		return ret;
	ret = proc_rlimits_parse(buf, len, out);
	free(buf);
	return ret;
}
