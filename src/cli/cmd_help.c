/* cryo help [COMMAND [SUBCOMMAND]], cryo version. */
#include "cli/cli.h"

#include <getopt.h>
#include <string.h>

static int run_help(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	const struct cli_cmd *cmd = c->root;
	char path[256] = "";

	for (int i = 1; i < argc; i++) {
		const struct cli_cmd *next;

		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			cli_print_help(self, stdout);
			return CLI_OK;
		}
		next = cli_find(cmd->sub, argv[i]);
		if (!next)
			return cli_usage(c, path[0] ? path : NULL, "no help for unknown command '%s%s%s'",
					 path, path[0] ? " " : "", argv[i]);
		if (path[0])
			strncat(path, " ", sizeof(path) - strlen(path) - 1);
		strncat(path, argv[i], sizeof(path) - strlen(path) - 1);
		cmd = next;
	}
	cli_print_help(cmd, stdout);
	return CLI_OK;
}

const struct cli_cmd cli_cmd_help = {
	.name = "help",
	.run = run_help,
	.summary = "show help for cryo or one of its commands",
	.usage = "Usage: cryo help [COMMAND [SUBCOMMAND]]\n"
		 "\n"
		 "Show what a command does and its options.\n",
};

static int run_version(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	if (argc > 1) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			cli_print_help(self, stdout);
			return CLI_OK;
		}
		return cli_usage(c, "version", "version: unexpected argument '%s'", argv[1]);
	}
	printf("cryo %s\n", CRYO_VERSION);
	return CLI_OK;
}

const struct cli_cmd cli_cmd_version = {
	.name = "version",
	.run = run_version,
	.summary = "print the version of cryo",
	.usage = "Usage: cryo version\n"
		 "       cryo --version\n"
		 "\n"
		 "Print the version of cryo.\n",
};
