/* cryo rm NAME: forget a group: its snapshots leave the store and its
 * registry entry goes. A group whose process runs is refused unless
 * --force: the process then keeps running, no longer persistent. Users
 * other than root go through cryod, for their own groups. */
#include "cli/store_cmd.h"
#include "image/registry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int rm_opt(struct store_cmd *sc, void *arg, int ch, const char *optarg)
{
	(void)sc;
	(void)optarg;
	if (ch != 'f')
		return CLI_USAGE;
	*(int *)arg = 1;
	return 0;
}

static int run_rm(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	static const struct option extra[] = {
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	struct registry_entry e;
	struct store_cmd sc;
	struct store *s;
	const char *name;
	uint64_t st;
	int force = 0, rc, err, known;

	rc = store_cmd_parse(&sc, c, self, argc, argv, extra, rm_opt, &force, 1, 1);
	if (rc >= 0)
		return rc;
	strncpy(sc.cmdpath, "rm", sizeof(sc.cmdpath));
	name = sc.pos[0];
	if (!registry_name_ok(name))
		return cli_usage(c, "rm", "rm: bad group name '%s'", name);
	/* the store is root's: others ask cryod, for a group of their own */
	if (geteuid() != 0) {
		if (sc.path_opt)
			return cli_fail(c, "rm %s: only root names a store; others remove their "
				       "own groups through cryod", name);
		return cli_ctl_rm(c, name, force);
	}
	err = registry_get(cli_home(), name, &e);
	if (err && err != -ENOENT)
		return cli_fail(c, "rm %s: reading its registry entry: %s", name, strerror(-err));
	known = !err;
	if (known && e.state == REGISTRY_RUNNING && !force &&
	    registry_pid_starttime(e.pid, &st) == 0 && st == e.starttime)
		return cli_fail(c, "%s runs as pid %d: freeze it first, or rm --force to keep "
			       "it running without snapshots", name, (int)e.pid);
	rc = store_cmd_open(&sc, 1, &s);
	if (rc)
		return rc;
	err = store_object_delete(s, name);
	if (err == -ENOENT && !known) {
		rc = cli_fail(c, "no group named %s", name);
		return store_cmd_close(&sc, s, rc);
	}
	if (err && err != -ENOENT) {
		rc = cli_fail_store(c, err, "rm %s", name);
		return store_cmd_close(&sc, s, rc);
	}
	if (known && (err = registry_del(cli_home(), name)) && err != -ENOENT) {
		rc = cli_fail(c, "rm %s: snapshots deleted, but not its registry entry: %s", name,
			      strerror(-err));
		return store_cmd_close(&sc, s, rc);
	}
	cli_log_release(c, 1);
	printf("removed %s\n", name);
	return store_cmd_close(&sc, s, CLI_OK);
}

const struct cli_cmd cli_cmd_rm = {
	.name = "rm", .run = run_rm,
	.summary = "forget a group and delete its snapshots",
	.usage = "Usage: cryo rm NAME [--force] [--store PATH]\n"
		 "\n"
		 "Delete every snapshot of group NAME and its registry entry. A group whose\n"
		 "process is running is refused unless --force: the process then keeps\n"
		 "running, but is no longer persistent. Users other than root remove\n"
		 "their own groups through cryod.\n"
		 "\n"
		 "Options:\n"
		 "  --force        remove a running group too (its process is not touched)\n"
		 "  --store PATH   the store (default $CRYO_HOME/store)\n"
		 "  --help         show this help\n",
};
