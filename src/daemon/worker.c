/* cryod's worker (worker.h). */
#define LOG_PREFIX "cryod-worker: "
#include "daemon/worker.h"
#include "common/log.h"
#include "store/store.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct job {
	char op;			/* 's' snapshot, 'z' freeze, 'f' forget */
	char name[STORE_NAME_MAX + 1];
	int32_t pid;
};

struct reply {
	int32_t err;
	int32_t armed;			/* its tracker is armed after the job */
	struct dump_result res;
};

/* The worker's own table: a tracker per group it snapshots. */
struct kept {
	char name[STORE_NAME_MAX + 1];
	struct dump_track *track;
};

struct worker_state {
	const char *store_path;
	unsigned keep;
	struct kept *k;
	size_t n, cap;
};

static struct dump_track *track_of(struct worker_state *ws, const char *name)
{
	for (size_t i = 0; i < ws->n; i++)
		if (!strcmp(ws->k[i].name, name))
			return ws->k[i].track;
	if (ws->n == ws->cap) {
		size_t cap = ws->cap ? ws->cap * 2 : 16;
		struct kept *k = realloc(ws->k, cap * sizeof(*k));

		if (!k)
			return NULL;
		ws->k = k;
		ws->cap = cap;
	}
	snprintf(ws->k[ws->n].name, sizeof(ws->k[0].name), "%s", name);
	ws->k[ws->n].track = dump_track_new();	/* NULL: pages are compared */
	return ws->k[ws->n++].track;
}

static void forget(struct worker_state *ws, const char *name)
{
	for (size_t i = 0; i < ws->n; i++)
		if (!strcmp(ws->k[i].name, name)) {
			dump_track_free(ws->k[i].track);
			ws->k[i] = ws->k[--ws->n];
			return;
		}
}

static int do_snapshot(struct worker_state *ws, const struct job *j, struct dump_result *res)
{
	struct dump_opts o = { .base = STORE_SNAP_NEWEST, .track = track_of(ws, j->name),
			       .freeze = j->op == 'z' };
	struct store *s;
	int r = store_open(ws->store_path, NULL, &s), rc;

	if (r)
		return r;
	r = dump_group(s, j->name, (pid_t)j->pid, &o, res);
	if (!r && ws->keep)
		(void)store_retain(s, j->name, ws->keep);
	rc = store_close(s);
	return r ? r : rc;
}

static __attribute__((noreturn)) void worker_main(int fd, const char *store_path, unsigned keep)
{
	struct worker_state ws = { .store_path = store_path, .keep = keep };
	static const int ignored[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE };
	sigset_t none;
	struct job j;

	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		signal(ignored[i], SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	(void)prctl(PR_SET_NAME, "cryod-worker");
	for (;;) {
		struct reply rep = { 0 };
		ssize_t n = recv(fd, &j, sizeof(j), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(j))
			break;		/* cryod is gone: the job at hand is done */
		j.name[sizeof(j.name) - 1] = '\0';
		if (j.op == 'f') {
			forget(&ws, j.name);
			continue;
		}
		rep.err = do_snapshot(&ws, &j, &rep.res);
		rep.armed = dump_track_armed(track_of(&ws, j.name));
		if (send(fd, &rep, sizeof(rep), MSG_NOSIGNAL) != (ssize_t)sizeof(rep))
			break;
	}
	for (size_t i = 0; i < ws.n; i++)
		dump_track_free(ws.k[i].track);
	free(ws.k);
	_exit(0);
}

int worker_start(struct worker *w, const char *store_path, unsigned keep)
{
	int sp[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp))
		return -errno;
	pid = fork();
	if (pid < 0) {
		int r = -errno;

		close(sp[0]);
		close(sp[1]);
		return r;
	}
	if (pid == 0) {
		/* only its socket and stdio: cryod's lock must go with cryod */
		if (dup2(sp[1], 3) < 0)
			_exit(1);
		(void)syscall(SYS_close_range, 4u, ~0u, 0u);
		worker_main(3, store_path, keep);
	}
	close(sp[1]);
	w->pid = pid;
	w->fd = sp[0];
	return 0;
}

static void reap(struct worker *w)
{
	int st;

	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->pid > 0)
		while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR)
			;
	w->pid = 0;
}

int worker_snapshot(struct worker *w, const char *name, pid_t pid, bool freeze,
		    struct dump_result *res, bool *armed)
{
	struct job j = { .op = freeze ? 'z' : 's', .pid = (int32_t)pid };
	struct reply rep;
	ssize_t n;

	if (w->fd < 0)
		return -EPIPE;
	snprintf(j.name, sizeof(j.name), "%s", name);
	if (send(w->fd, &j, sizeof(j), MSG_NOSIGNAL) != (ssize_t)sizeof(j)) {
		reap(w);
		return -EPIPE;
	}
	do
		n = recv(w->fd, &rep, sizeof(rep), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(rep)) {
		pr_err("the worker died during a snapshot of %s", name);
		reap(w);
		return -EPIPE;
	}
	if (!rep.err && res)
		*res = rep.res;
	if (armed)
		*armed = rep.armed != 0;
	return rep.err;
}

void worker_forget(struct worker *w, const char *name)
{
	struct job j = { .op = 'f' };

	if (w->fd < 0)
		return;
	snprintf(j.name, sizeof(j.name), "%s", name);
	(void)send(w->fd, &j, sizeof(j), MSG_NOSIGNAL);
}

void worker_stop(struct worker *w)
{
	reap(w);
}
