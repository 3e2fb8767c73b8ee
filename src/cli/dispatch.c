/* The one dispatcher: every level of commands goes through cli_dispatch,
 * and help is printed from the same tables. */
#include "cli/cli.h"

#include <string.h>

const struct cli_cmd *cli_find(const struct cli_cmd *const *table, const char *name)
{
	for (; table && *table; table++)
		if (!strcmp((*table)->name, name))
			return *table;
	return NULL;
}

void cli_print_help(const struct cli_cmd *cmd, FILE *f)
{
	const struct cli_cmd *const *t;

	fputs(cmd->usage, f);
	if (!cmd->sub)
		return;
	fputs("\nCommands:\n", f);
	for (t = cmd->sub; *t; t++)
		if (!((*t)->flags & CLI_HIDDEN))
			fprintf(f, "  %-14s %s\n", (*t)->name, (*t)->summary);
	fprintf(f, "\nRun 'cryo %s%sCOMMAND --help' for the options of a command.\n",
		cmd->name ? cmd->name : "", cmd->name ? " " : "");
}

int cli_dispatch(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	const struct cli_cmd *sub;
	const char *fam = self->name;

	if (argc < 2)
		return cli_usage(c, fam, "%s%smissing command", fam ? fam : "", fam ? ": " : "");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		cli_print_help(self, stdout);
		return CLI_OK;
	}
	if (argv[1][0] == '-')
		return cli_usage(c, fam, "%s%sunknown option '%s'", fam ? fam : "",
				 fam ? ": " : "", argv[1]);
	sub = cli_find(self->sub, argv[1]);
	if (!sub)
		return cli_usage(c, fam, "unknown command '%s%s%s'", fam ? fam : "",
				 fam ? " " : "", argv[1]);
	return sub->run(c, sub, argc - 1, argv + 1);
}
