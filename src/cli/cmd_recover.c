/* cryo recover: after a crash, a power cut or a reboot, melt every group
 * that was running when it went down, each from its newest committed
 * snapshot.
 *
 * "Was running" is the registry's word: state running, but its process is
 * gone (no such pid, or the pid names a process with another start time).
 * Without cryod nothing records why a process ended, so a program that
 * quit on its own is recovered too; `cryo rm NAME` forgets a group. A
 * group that cannot come back is reported, the others are still
 * recovered. Idempotent: a second run finds them running.
 * A group whose pid another process holds now comes back in a new pid
 * namespace, with its old pids there (restore/pidns.c). */
#include "cli/json.h"
#include "cli/store_cmd.h"
#include "image/registry.h"
#include "restore/restore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct recover {
	struct store *s;
	struct json *j;
	unsigned melted, running, frozen, failed;
};

/* Is e's process still the one the registry names? */
static int alive(const struct registry_entry *e)
{
	uint64_t st;

	return registry_pid_starttime(e->pid, &st) == 0 && st == e->starttime;
}

static void report(struct recover *rc, const char *name, const char *what, pid_t pid,
		   const struct restore_result *res, double ms, int err)
{
	char note[64];

	if (rc->j) {
		json_obj_begin(rc->j);
		json_kv_str(rc->j, "name", name);
		json_kv_str(rc->j, "result", what);
		json_key(rc->j, "pid");
		json_i64(rc->j, pid);
		if (!strcmp(what, "melted")) {
			json_key(rc->j, "ns_pid");
			if (res->ns_pid)
				json_i64(rc->j, res->ns_pid);
			else
				json_null(rc->j);
			json_key(rc->j, "ms");
			json_f64(rc->j, ms);
		}
		if (err)
			json_kv_str(rc->j, "error", strerror(-err));
		json_obj_end(rc->j);
		return;
	}
	if (!strcmp(what, "melted"))
		printf("recovered %s: pid %d runs again%s (%.1f ms)\n", name,
		       (int)cli_melted_pid(res), cli_pidns_note(res, note, sizeof(note)), ms);
	else if (!strcmp(what, "running"))
		printf("%s: still running as pid %d\n", name, (int)pid);
	else if (!strcmp(what, "failed"))
		printf("%s: not recovered (pid %d): %s\n", name, (int)pid, strerror(-err));
}

static int recover_one(void *arg, const struct registry_entry *e)
{
	struct recover *rc = arg;
	struct restore_opts o = { .snap = STORE_SNAP_NEWEST, .lazy = true };
	struct restore_result res = { 0 };
	int err;

	if (e->state == REGISTRY_FROZEN) {
		rc->frozen++;	/* frozen on purpose: melt brings it back */
		return 0;
	}
	if (e->state == REGISTRY_RUNNING && alive(e)) {
		rc->running++;
		report(rc, e->name, "running", e->pid, &res, 0, 0);
		return 0;
	}
	fflush(stdout);
	err = cli_melt_group(rc->s, e->name, &o, &res);
	if (err) {
		rc->failed++;
		report(rc, e->name, "failed", e->pid, &res, 0, err);
		return 0;
	}
	rc->melted++;
	report(rc, e->name, "melted", res.pid, &res, (double)res.total_ns / 1e6, 0);
	return 0;
}

static int run_recover(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	struct recover r = { 0 };
	struct store_cmd sc;
	struct json j;
	int rc, err;

	rc = store_cmd_parse(&sc, c, self, argc, argv, NULL, NULL, NULL, 0, 0);
	if (rc >= 0)
		return rc;
	strncpy(sc.cmdpath, "recover", sizeof(sc.cmdpath));
	rc = store_cmd_open(&sc, 0, &r.s);
	if (rc)
		return rc;
	/* Each group's failure is reported on its own line; the library's
	 * reasons are not held back for a single one. */
	cli_log_release(c, 1);
	if (sc.json) {
		json_init(&j, stdout);
		r.j = &j;
		json_arr_begin(&j);
	}
	err = registry_list(cli_home(), recover_one, &r);
	if (sc.json) {
		json_arr_end(&j);
		json_end(&j);
	} else {
		printf("recovered %u group%s; %u still running, %u frozen, %u failed\n", r.melted,
		       r.melted == 1 ? "" : "s", r.running, r.frozen, r.failed);
	}
	if (err && err != -ENOENT)
		rc = cli_fail(c, "recover: reading the group registry: %s", strerror(-err));
	else if (r.failed)
		rc = cli_fail(c, "recover: %u group%s could not be melted", r.failed,
			      r.failed == 1 ? "" : "s");
	else
		rc = CLI_OK;
	return store_cmd_close(&sc, r.s, rc);
}

const struct cli_cmd cli_cmd_recover = {
	.name = "recover", .run = run_recover,
	.summary = "melt every group that was running before a crash",
	.usage = "Usage: cryo recover [--store PATH] [--json]\n"
		 "\n"
		 "After a crash, a power cut or a reboot: melt every group the registry\n"
		 "says was running and whose process is gone, each from its newest\n"
		 "committed snapshot, with its old pid. Groups still running and frozen\n"
		 "groups are left alone; running it twice does nothing more. Exits 1 if\n"
		 "any group could not be melted (each is reported with its reason).\n"
		 "\n"
		 "Options:\n"
		 "  --store PATH   the store (default $CRYO_HOME/store)\n"
		 "  --json         one JSON object per group\n"
		 "  --help         show this help\n",
};
