/* cryo: the command. main() only sets up the context and hands argv to the
 * dispatcher; every command lives in a table, never in a switch. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

/* Every top-level command and family. Adding one: a line here and its
 * file (cmd_<name>.c) defining `const struct cli_cmd cli_cmd_<name>`. */
static const struct cli_cmd *const commands[] = {
	&cli_cmd_run,
	&cli_cmd_attach,
	&cli_cmd_adopt,
	&cli_cmd_snap,
	&cli_cmd_freeze,
	&cli_cmd_history,
	&cli_cmd_inspect,
	&cli_cmd_store,
	&cli_cmd_melt,
	&cli_cmd_ps,
	&cli_cmd_recover,
	&cli_cmd_hibernate,
	&cli_cmd_resume,
	&cli_cmd_rm,
	&cli_cmd_daemon,
	&cli_cmd_help,
	&cli_cmd_version,
	NULL,
};

static const char top_usage[] =
	"Usage: cryo [--help] [--version] COMMAND [ARGS...]\n"
	"\n"
	"cryo makes Linux processes persistent: their snapshots live in a\n"
	"log-structured store under $CRYO_HOME (default /var/lib/cryo).\n";

/* The root of the tree: a family whose subcommands are the commands. */
static int run_top(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	opterr = 0;
	optind = 0;
	/* '+': stop at the command name; its options are its own. */
	while ((ch = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			cli_print_help(self, stdout);
			return CLI_OK;
		case 'V':
			return cli_cmd_version.run(c, &cli_cmd_version, 1, argv);
		default:
			return cli_usage(c, NULL, "unknown option '%s'", argv[optind - 1]);
		}
	}
	/* cli_dispatch wants argv[0] = the family, argv[1] = the command. */
	return cli_dispatch(c, self, argc - optind + 1, argv + optind - 1);
}

static const struct cli_cmd top = {
	.name = NULL,
	.run = run_top,
	.summary = "persistent processes",
	.usage = top_usage,
	.sub = commands,
};

int main(int argc, char **argv)
{
	struct cli c = {
		.prog = "cryo",
		.root = &top,
		.err_fd = 2,
		.cap_fd = -1,
	};
	int rc;

	rc = top.run(&c, &top, argc, argv);
	cli_log_release(&c, rc == CLI_OK);
	if (fflush(stdout) || ferror(stdout)) {
		/* A full disk or closed pipe under `cryo ... > file`. */
		if (rc == CLI_OK)
			rc = cli_fail(&c, "writing output: %s", strerror(errno));
	}
	return rc;
}
