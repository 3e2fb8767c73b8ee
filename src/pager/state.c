/* The state file of a pager at work (serve.h), and what cryod and cryo
 * make of it: whether the pager runs, and ending a group whose pager died. */
#define LOG_PREFIX "pager: "
#include "pager/serve_int.h"
#include "common/log.h"
#include "common/vec.h"
#include "proc/procfs.h"
#include "proc/status.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STATE_MAX	(1u << 20)	/* a state file is a line per process */
#define GROUP_MAX	65536		/* processes a dead pager's group is searched for */

void pager_state_path(char *buf, size_t n, const char *dir, const char *name, const char *ext)
{
	snprintf(buf, n, "%s/%s.%s", dir, name, ext);
}

uint64_t pager_start_of(pid_t pid)
{
	struct proc_stat st;

	if (pid <= 0 || proc_stat_read(pid, 0, &st) || st.state == 'Z' || st.state == 'X' ||
	    st.nfields < PROC_STAT_STARTTIME)
		return 0;
	return (uint64_t)st.f[PROC_STAT_STARTTIME];
}

int pager_write_atomic(const char *path, const void *buf, size_t len)
{
	char tmp[PATH_MAX + 8];
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, len) != (ssize_t)len)
		r = -EIO;
	if (close(fd) && !r)
		r = -errno;
	if (!r && rename(tmp, path))
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

int pager_state_write(const char *dir, const char *name, uint64_t snap, const struct pager_rec *rec,
		      size_t n)
{
	char path[PATH_MAX];
	size_t cap = 128 + n * 64, len;
	char *buf = malloc(cap);
	int r;

	if (!buf)
		return -ENOMEM;
	len = (size_t)snprintf(buf, cap,
			       "pager %d %" PRIu64 " target %d %" PRIu64 " fd %d snap %" PRIu64 "\n",
			       (int)getpid(), pager_start_of(getpid()), (int)rec[0].pid, rec[0].start,
			       rec[0].fd, snap);
	for (size_t i = 1; i < n && len < cap; i++)
		len += (size_t)snprintf(buf + len, cap - len, "proc %d %" PRIu64 " fd %d\n",
					(int)rec[i].pid, rec[i].start, rec[i].fd);
	pager_state_path(path, sizeof(path), dir, name, "state");
	r = len < cap ? pager_write_atomic(path, buf, len) : -EOVERFLOW;
	free(buf);
	return r;
}

/* The whole file, NUL-terminated; caller frees. */
static int state_load(const char *dir, const char *name, char **out)
{
	char path[PATH_MAX];
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	int fd, r = 0;

	if (!buf)
		return -ENOMEM;
	pager_state_path(path, sizeof(path), dir, name, "state");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	for (;;) {
		ssize_t n;

		if (len + 1 == cap && (cap >= STATE_MAX || vec_reserve((void **)&buf, &cap,
								    cap * 2, 1))) {
			r = cap >= STATE_MAX ? -EFBIG : -ENOMEM;
			break;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (!r && !len)
		r = -EBADMSG;
	if (r) {
		free(buf);
		return r;
	}
	buf[len] = 0;
	*out = buf;
	return 0;
}

static int parse_first(const char *buf, struct pager_state *st)
{
	memset(st, 0, sizeof(*st));
	if (sscanf(buf, "pager %d %" SCNu64 " target %d %" SCNu64 " fd %d snap %" SCNu64,
		   &st->pager, &st->pager_start, &st->target, &st->target_start, &st->fd,
		   &st->snap) != 6 || st->pager <= 0 || st->target <= 0 || st->fd < 0)
		return -EBADMSG;
	return 0;
}

/* Every process of the file: the root, then each "proc" line. A line
 * that does not parse is skipped (it names no process we could check). */
static int parse_recs(const char *buf, const struct pager_state *st, struct pager_rec **out,
		      size_t *n)
{
	struct pager_rec *v = NULL;
	size_t cap = 0, k = 0;

	if (vec_reserve((void **)&v, &cap, 1, sizeof(*v)))
		return -ENOMEM;
	v[k++] = (struct pager_rec){ st->target, st->target_start, st->fd };
	for (const char *l = strchr(buf, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
		struct pager_rec r;

		if (sscanf(l + 1, "proc %d %" SCNu64 " fd %d", &r.pid, &r.start, &r.fd) != 3 ||
		    r.pid <= 0)
			continue;
		if (vec_reserve((void **)&v, &cap, k + 1, sizeof(*v))) {
			free(v);
			return -ENOMEM;
		}
		v[k++] = r;
	}
	*out = v;
	*n = k;
	return 0;
}

/* The first line and, if recs, every process listed (caller frees). */
static int state_get(const char *dir, const char *name, struct pager_state *st,
		     struct pager_rec **recs, size_t *n)
{
	char *buf;
	int r = state_load(dir, name, &buf);

	if (r)
		return r;
	r = parse_first(buf, st);
	if (!r && recs)
		r = parse_recs(buf, st, recs, n);
	free(buf);
	return r;
}

int pager_state_read(const char *dir, const char *name, struct pager_state *st)
{
	return state_get(dir, name, st, NULL, NULL);
}

static bool rec_alive(const struct pager_rec *r)
{
	return r->start && pager_start_of(r->pid) == r->start;
}

enum pager_health pager_health(const char *dir, const char *name, struct pager_state *st)
{
	struct pager_state dummy;
	struct pager_rec *recs;
	bool alive = false;
	size_t n;

	if (!st)
		st = &dummy;
	if (state_get(dir, name, st, &recs, &n))
		return PAGER_NONE;
	for (size_t i = 0; i < n && !alive; i++)
		alive = rec_alive(&recs[i]);
	free(recs);
	if (!alive)
		return PAGER_STALE;
	if (pager_start_of(st->pager) == st->pager_start)
		return PAGER_WORKING;
	return PAGER_DEAD;
}

static int add_pid(pid_t **v, size_t *n, size_t *cap, pid_t pid)
{
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i] == pid)
			return 0;
	if (*n >= GROUP_MAX || vec_reserve((void **)v, cap, *n + 1, sizeof(**v)))
		return -ENOMEM;
	(*v)[(*n)++] = pid;
	return 0;
}

void pager_add_descendants(pid_t **v, size_t *n, size_t *cap)
{
	for (size_t i = 0; i < *n; i++) {
		pid_t *kids = NULL;
		size_t nk = 0;

		if (proc_children((*v)[i], &kids, &nk))
			continue;
		for (size_t k = 0; k < nk; k++)
			(void)add_pid(v, n, cap, kids[k]);
		free(kids);
	}
}

/* SIGKILL through a pidfd, so the signal reaches the process checked
 * (want_start: its starttime; 0: found a moment ago as a child). */
static void kill_one(pid_t pid, uint64_t want_start)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (pfd < 0)
		return;
	if (!want_start || pager_start_of(pid) == want_start)
		syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
	close(pfd);
}

/* The group of a dead pager: every process listed that still lives (its
 * pid not reused) and every process under one of them (children it forked
 * while paging in, whether or not they hold their copy yet). A process
 * with SIGKILL pending never runs another instruction of its own, so the
 * order does not matter: none of them reads the memory still out. */
static size_t kill_group(const struct pager_rec *recs, size_t n)
{
	pid_t *all = NULL;
	size_t nall = 0, cap = 0, listed;

	for (size_t i = 0; i < n; i++)
		if (rec_alive(&recs[i])) {
			kill_one(recs[i].pid, recs[i].start);
			(void)add_pid(&all, &nall, &cap, recs[i].pid);
		}
	listed = nall;
	pager_add_descendants(&all, &nall, &cap);
	for (size_t i = listed; i < nall; i++)
		kill_one(all[i], 0);
	free(all);
	return nall;
}

enum pager_health pager_check_dead(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct pager_state st;
	enum pager_health h = pager_health(dir, name, &st);

	pager_state_path(path, sizeof(path), dir, name, "state");
	if (h == PAGER_DEAD) {
		/* Their faults would wait forever, and no new pager can know
		 * what the dead one had read (serve.h): end them. */
		struct pager_rec *recs = NULL;
		size_t n = 0, killed = 0;

		if (!state_get(dir, name, &st, &recs, &n))
			killed = kill_group(recs, n);
		free(recs);
		pr_err("%s: its pager (pid %d) died while pid %d was still paging in from "
		       "snapshot %" PRIu64 "; %s%d%s killed so %s on missing memory. "
		       "'cryo melt %s' (or recover) brings it back from its snapshot",
		       name, (int)st.pager, (int)st.target, st.snap,
		       killed > 1 ? "the group of pid " : "pid ", (int)st.target,
		       killed > 1 ? " (every process under it) was" : " was",
		       killed > 1 ? "none of them runs" : "it never runs", name);
	}
	if (h == PAGER_DEAD || h == PAGER_STALE)
		unlink(path);
	return h;
}
