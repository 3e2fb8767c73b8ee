/* restore_group(): read the snapshot's records, make the process, rebuild
 * it, let it go. On any failure the half-made process is killed and the
 * image is left as it was (melt only reads it). */
#define LOG_PREFIX "restore: "
#include "restore/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "proc/status.h"

#define GONE_WAIT_MS 3000

uint64_t rst_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int load(struct rst *r, Cryo__GroupEntry *g)
{
	char key[STORE_KEY_MAX + 1];
	int ret;

	if (g->version > IMAGE_VERSION) {
		pr_err("%s: image version %u is newer than this cryo (%u)", r->name, g->version,
		       IMAGE_VERSION);
		return -EPROTO;
	}
	if (g->n_procs != 1) {
		pr_err("%s: the snapshot holds %zu processes; melting several is not supported yet",
		       r->name, g->n_procs);
		return -ENOTSUP;
	}
	r->pid = (pid_t)g->procs[0]->pid;
	r->space = g->procs[0]->space;
	image_key(key, sizeof(key), r->pid, "core");
	ret = image_get(r->sn, key, &cryo__process_entry__descriptor, (ProtobufCMessage **)&r->pe);
	if (!ret) {
		image_key(key, sizeof(key), r->pid, "mm");
		ret = image_get(r->sn, key, &cryo__mm_entry__descriptor, (ProtobufCMessage **)&r->mm);
	}
	if (!ret) {
		image_key(key, sizeof(key), r->pid, "fds");
		ret = image_get(r->sn, key, &cryo__fds_entry__descriptor,
				(ProtobufCMessage **)&r->fds);
		if (ret == -ENOENT) {
			r->fds = NULL;
			ret = 0;
		}
	}
	if (ret)
		pr_err("%s: record %s: %s", r->name, key, store_strerror(ret));
	return ret;
}

/* Kill the half-made process; collect what ptrace owes us; wait (bounded)
 * until its pid is gone or only a zombie for pid 1 to reap. */
static void discard(struct rst *r)
{
	if (r->pid <= 0)
		return;
	kill(r->pid, SIGKILL);
	if (r->ctl) {
		/* Leader last: its exit is reported only after the others'. */
		for (size_t i = r->ctl->n; i-- > 0;) {
			int st;
			if (!r->ctl->t[i].seized)
				continue;
			while (waitpid(r->ctl->t[i].tid, &st, __WALL) > 0 && !WIFEXITED(st) &&
			       !WIFSIGNALED(st))
				;
		}
		if (r->ctl->pidfd >= 0)
			close(r->ctl->pidfd);
		free(r->ctl->t);
		free(r->ctl);
		r->ctl = NULL;
	}
	for (int ms = 0; ms < GONE_WAIT_MS; ms += 5) {
		struct proc_stat st;
		if (proc_stat_read(r->pid, 0, &st) || st.state == 'Z' || st.state == 'X')
			break;
		usleep(5000);
	}
}

int restore_group(struct store *s, const char *name, const struct restore_opts *o,
		  struct restore_result *res)
{
	struct rst r = { .o = o, .name = name, .store = s, .uffd = -1, .lazy_target_fd = -1 };
	Cryo__GroupEntry *g = NULL;
	uint64_t t0 = rst_now_ns();
	int ret;

	ret = store_snap_open(s, name, o->snap, &r.sn);
	if (ret) {
		pr_err("%s: open snapshot: %s", name, store_strerror(ret));
		return ret;
	}
	ret = image_get_group(r.sn, &g);
	if (ret) {
		pr_err("%s: group record: %s", name, store_strerror(ret));
		goto out;
	}
	ret = load(&r, g);
	if (ret)
		goto out;
	ret = rst_make_process(&r);
	if (ret) {
		r.pid = 0;	/* nothing of ours to kill: it is gone or was never ours */
		goto out;
	}
	ret = proc_seize(r.pid, &r.ctl);
	if (ret) {
		pr_err("%s: seize new process %d: %s", name, (int)r.pid, strerror(-ret));
		goto fail;
	}
	ret = rst_mm(&r);
	if (!ret)
		ret = rst_threads(&r);
	if (!ret)
		ret = rst_process_state(&r);
	if (!ret)
		ret = rst_finish(&r);
	if (ret)
		goto fail;
	ret = proc_release(r.ctl);
	r.ctl = NULL;
	if (ret) {
		pr_err("%s: detach pid %d: %s", name, (int)r.pid, strerror(-ret));
		goto fail;
	}
	res->pid = r.pid;
	res->total_ns = rst_now_ns() - t0;
	res->pager_pid = r.pager_pid;
	pr_info("%s: pid %d runs again (%llu pages written, %.1f ms; reading them %.1f ms, "
		"writing %.1f ms)", name, (int)r.pid, (unsigned long long)r.pages_written,
		(double)res->total_ns / 1e6, (double)r.read_ns / 1e6, (double)r.write_ns / 1e6);
	goto out;
fail:
	pr_err("%s: melt of pid %d failed: %s; the half-made process is killed", name,
	       (int)r.pid, strerror(-ret));
	discard(&r);
	if (r.uffd >= 0)
		close(r.uffd);
out:
	image_free((ProtobufCMessage *)r.fds);
	image_free((ProtobufCMessage *)r.mm);
	image_free((ProtobufCMessage *)r.pe);
	image_free((ProtobufCMessage *)g);
	store_snap_close(r.sn);
	return ret;
}
