/* What the scenarios of restore_workload share (rw.h). */
#include "rw.h"

#include "pattern.h"

const char *dir;

/* Written under a temporary name (one per process) and renamed, so the
 * test never reads a file that exists but is still empty (a lazily melted
 * workload may fault between the create and the write). */
void touch(const char *name, const char *text)
{
	char p[4096], tmp[4200];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", p, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	if (text && write(fd, text, strlen(text)) < 0)
		(void)0;
	close(fd);
	if (rename(tmp, p))
		unlink(tmp);
}

int exists(const char *name)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

void wait_go(void)
{
	while (!exists("go"))
		usleep(5000);
}

void result(int ok, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	strcpy(buf, ok ? "PASS\n" : "FAIL: ");
	if (!ok) {
		va_start(ap, fmt);
		vsnprintf(buf + 6, sizeof(buf) - 8, fmt, ap);
		va_end(ap);
		strcat(buf, "\n");
	}
	touch("result", buf);
	exit(ok ? 0 : 1);
}

double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void fill(void *p, size_t len, uint32_t seed)
{
	uint32_t *w = p;
	for (size_t i = 0; i < len / 4; i++)
		w[i] = pat(i, seed);
}

int check(const void *p, size_t len, uint32_t seed)
{
	const uint32_t *w = p;
	for (size_t i = 0; i < len / 4; i++)
		if (w[i] != pat(i, seed))
			return 0;
	return 1;
}
