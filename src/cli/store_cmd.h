/* Shared by the `cryo store` command files: option parsing and opening. */
#ifndef CRYO_CLI_STORE_CMD_H
#define CRYO_CLI_STORE_CMD_H

#include <getopt.h>
#include <limits.h>

#include "cli/cli.h"
#include "store/store.h"

#define STORE_CMD_OPTS_MAX	16
#define STORE_CMD_POS_MAX	4

/* One run of a store subcommand: what its options said. */
struct store_cmd {
	struct cli *c;
	const struct cli_cmd *self;
	char cmdpath[64];		/* "store init", for usage hints */
	const char *path;		/* the store */
	char path_buf[PATH_MAX];
	const char *path_opt;		/* --store */
	int json;			/* --json */
	int npos;			/* positional arguments, in order */
	const char *pos[STORE_CMD_POS_MAX];
};

/* A subcommand's own options: handle ch (with optarg); return 0, or
 * CLI_USAGE after cli_usage() for a bad value. */
typedef int (*store_opt_fn)(struct store_cmd *sc, void *arg, int ch, const char *optarg);

/* Parse argv with the common options (--store, --json, --help) plus extra
 * (NULL-terminated; shortopts for them, "" if none). Returns -1 to go on
 * with the command, otherwise the exit code (help printed, usage error).
 * min_pos/max_pos bound the positional arguments. */
int store_cmd_parse(struct store_cmd *sc, struct cli *c, const struct cli_cmd *self,
		    int argc, char **argv, const struct option *extra,
		    store_opt_fn on_opt, void *arg, int min_pos, int max_pos);

/* Open the store (read-only unless rw); on failure prints the one line and
 * returns CLI_FAIL. */
int store_cmd_open(struct store_cmd *sc, int rw, struct store **out);
/* Close, reporting a failed final checkpoint as the command's failure. */
int store_cmd_close(struct store_cmd *sc, struct store *s, int rc);

/* "newest"/"latest" or a number. */
int store_cmd_parse_snap(const char *s, uint64_t *out);

extern const struct cli_cmd store_cmd_demo_write;
extern const struct cli_cmd store_cmd_cat;

#endif
