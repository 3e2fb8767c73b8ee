#define LOG_PREFIX "proc: "
#include "proc/auxv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proc/procfs.h"

int proc_auxv_parse(const void *buf, size_t len, struct proc_auxv *out)
{
	const uint8_t *p = buf;

	memset(out, 0, sizeof(*out));
	if (len % 16) {
		pr_err("auxv: length %zu not a multiple of 16", len);
		return -EINVAL;
	}
	for (size_t i = 0; i < len / 16; i++) {
		uint64_t t, v;
		memcpy(&t, p + i * 16, 8);
		memcpy(&v, p + i * 16 + 8, 8);
		if (t == 0)      /* AT_NULL */
			return 0;
		if (out->n == PROC_AUXV_MAX) {
			pr_err("auxv: more than %d entries", PROC_AUXV_MAX);
			return -E2BIG;
		}
		out->type[out->n] = t;
		out->val[out->n] = v;
		out->n++;
	}
	pr_err("auxv: no AT_NULL terminator");
	return -EINVAL;
}

int proc_auxv_read(pid_t pid, struct proc_auxv *out)
{
	char *buf;
	size_t len;
	int ret = proc_read_file(pid, "auxv", &buf, &len);

	if (ret)
		return ret;
	ret = proc_auxv_parse(buf, len, out);
	free(buf);
	return ret;
}

int proc_auxv_get(const struct proc_auxv *a, uint64_t type, uint64_t *val)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->type[i] == type) {
			*val = a->val[i];
			return 0;
		}
	return -ENOENT;
}
