/* Shared pieces of the cryo command: error lines, holding the store's log
 * lines, sizes, times and the store's path. */
#include "cli/cli.h"
#include "common/clock.h"
#include "pager/serve.h"
#include "restore/restore.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_PREFIX "cryo "	/* what common/log.c puts first */

static void vline(struct cli *c, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	/* One line, whatever the arguments held. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	dprintf(c->err_fd, "%s: %s\n", c->prog, line);
}

int cli_fail(struct cli *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(c, fmt, ap);
	va_end(ap);
	return CLI_FAIL;
}

int cli_usage(struct cli *c, const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(c, fmt, ap);
	va_end(ap);
	dprintf(c->err_fd, "Try '%s help%s%s'.\n", c->prog, cmd ? " " : "", cmd ? cmd : "");
	return CLI_USAGE;
}

/* The first error line the store logged while held (its own words for what
 * went wrong), without the "cryo error: " prefix; NULL if none. */
static const char *held_reason(struct cli *c, char *buf, size_t n)
{
	static const char tag[] = LOG_LINE_PREFIX "error: ";
	ssize_t got;
	char *line, *end;

	if (c->cap_fd < 0 || n < 2)
		return NULL;
	got = pread(c->cap_fd, buf, n - 1, 0);
	if (got <= 0)
		return NULL;
	buf[got] = 0;
	for (line = buf; line && *line; line = end ? end + 1 : NULL) {
		end = strchr(line, '\n');
		if (end)
			*end = 0;
		if (!strncmp(line, tag, sizeof(tag) - 1))
			return line + sizeof(tag) - 1;
	}
	return NULL;
}

int cli_fail_store(struct cli *c, int err, const char *fmt, ...)
{
	char what[512], held[4096];
	const char *why;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	why = held_reason(c, held, sizeof(held));
	if (why)
		return cli_fail(c, "%s: %s", what, why);
	return cli_fail(c, "%s: %s", what, store_strerror(err));
}

void cli_log_hold(struct cli *c)
{
	int mem, saved;

	if (c->cap_fd >= 0 || getenv("CRYO_LOG"))
		return;
	mem = memfd_create("cryo-log", MFD_CLOEXEC);
	if (mem < 0)
		return;		/* then the log simply goes to stderr */
	fflush(stderr);
	saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (saved < 0 || dup2(mem, 2) < 0) {
		if (saved >= 0)
			close(saved);
		close(mem);
		return;
	}
	c->err_fd = saved;
	c->cap_fd = mem;
}

void cli_log_release(struct cli *c, int ok)
{
	char buf[4096];
	off_t off = 0;
	ssize_t n;

	if (c->cap_fd < 0)
		return;
	fflush(stderr);
	dup2(c->err_fd, 2);
	close(c->err_fd);
	c->err_fd = 2;
	/* On success, warnings the store logged are still worth seeing; on
	 * failure the reason was folded into the one error line. */
	while (ok && (n = pread(c->cap_fd, buf, sizeof(buf), off)) > 0) {
		if (write(2, buf, (size_t)n) != n)
			break;
		off += n;
	}
	close(c->cap_fd);
	c->cap_fd = -1;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -errno;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGTP";
	unsigned shift = 0;
	long double v;
	const char *u;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtold(s, &end);
	if (errno || end == s || v != v || v < 0)
		return -EINVAL;
	if (*end) {
		u = strchr(units, *end >= 'a' ? *end - 32 : *end);
		if (!u || !*u)
			return -EINVAL;
		shift = 10u * (unsigned)(u - units + 1);
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B") || !strcmp(end, "ib"))
			end += strlen(end);
	}
	if (*end)
		return -EINVAL;
	v *= (long double)(1ull << shift);
	if (v >= 18446744073709551615.0L)
		return -ERANGE;
	*out = (uint64_t)v;
	return 0;
}

const char *cli_human(uint64_t bytes, char *buf, size_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	unsigned i = 0;

	if (bytes < 1024) {
		snprintf(buf, n, "%" PRIu64 " B", bytes);
		return buf;
	}
	while (v >= 1024 && i < sizeof(units) / sizeof(units[0]) - 1) {
		v /= 1024;
		i++;
	}
	snprintf(buf, n, "%.1f %s", v, units[i]);
	return buf;
}

const char *cli_time(uint64_t ns, char *buf, size_t n)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, n, "%" PRIu64, ns);
	return buf;
}

const char *cli_home(void)
{
	const char *h = getenv("CRYO_HOME");
	return h && *h ? h : "/var/lib/cryo";
}

const char *cli_pager_dir(char *buf, size_t n)
{
	snprintf(buf, n, "%s/pager", cli_home());
	if (mkdir(buf, 0700) && errno != EEXIST)
		return NULL;
	return buf;
}

int cli_wait_paged_in(const char *name)
{
	char dir[PATH_MAX];
	struct pager_state st;
	int err;

	if (!cli_pager_dir(dir, sizeof(dir)))
		return 0;
	switch (pager_health(dir, name, &st)) {
	case PAGER_WORKING:
		if (isatty(2))
			fprintf(stderr, "cryo: %s is still paging in from its snapshot "
				"(pager pid %d); waiting\n", name, (int)st.pager);
		err = pager_wait(st.pager, PAGED_IN_WAIT_MS);
		if (err == -ETIMEDOUT)
			return -EINPROGRESS;
		return err;
	case PAGER_DEAD:
		(void)pager_check_dead(dir, name);
		return -EOWNERDEAD;
	case PAGER_STALE:
		(void)pager_check_dead(dir, name);
		return 0;
	case PAGER_NONE:
		break;
	}
	return 0;
}

const char *cli_store_path(const char *opt_path, char *buf, size_t n)
{
	if (opt_path)
		return opt_path;
	snprintf(buf, n, "%s/store", cli_home());
	return buf;
}

pid_t cli_melted_pid(const struct restore_result *res)
{
	return res->ns_pid ? res->ns_pid : res->pid;
}

const char *cli_pidns_note(const struct restore_result *res, char *buf, size_t n)
{
	if (!res->ns_pid)
		return "";
	snprintf(buf, n, " in a new pid namespace, host pid %d", (int)res->pid);
	return buf;
}

static void bar_draw(void *arg, uint64_t done, uint64_t total)
{
	struct cli_bar *bar = arg;
	uint64_t now = mono_ns();
	char d[16], t[16], cells[31];
	unsigned pct, fill;

	if (now - bar->t0_ns < BAR_DELAY_MS * 1000000ull ||
	    now - bar->last_ns < BAR_EVERY_MS * 1000000ull || !total)
		return;
	bar->last_ns = now;
	if (done > total)
		done = total;
	pct = (unsigned)(done * 100 / total);
	fill = (unsigned)(done * 30 / total);
	memset(cells, '#', fill);
	memset(cells + fill, '.', 30 - fill);
	cells[30] = '\0';
	dprintf(bar->fd, "\r%s [%s] %3u%%  %s of %s\033[K", bar->what, cells, pct,
		cli_human(done, d, sizeof(d)), cli_human(total, t, sizeof(t)));
	bar->drawn = true;
}

void cli_bar_init(struct cli_bar *bar, const struct cli *c, const char *what, int json)
{
	memset(bar, 0, sizeof(*bar));
	bar->what = what;
	bar->fd = c->err_fd;
	bar->t0_ns = mono_ns();
	if (!json && isatty(bar->fd)) {
		bar->p.show = bar_draw;
		bar->p.arg = bar;
	}
}

void cli_bar_end(struct cli_bar *bar)
{
	if (bar->drawn)
		dprintf(bar->fd, "\r\033[K");
	bar->drawn = false;
}
