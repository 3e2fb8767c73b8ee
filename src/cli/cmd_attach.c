/* cryo attach NAME: the caller's terminal on the group's (src/term). */
#include "cli/cli.h"
#include "image/registry.h"
#include "term/term.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int run_attach(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name;
	int ch, r;

	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (ch == 'h') {
			cli_print_help(self, stdout);
			return CLI_OK;
		}
		return cli_usage(c, "attach", "attach: unknown option '%s'", argv[optind - 1]);
	}
	if (argc - optind != 1)
		return cli_usage(c, "attach", "attach: one group name, please");
	name = argv[optind];
	if (!registry_name_ok(name))
		return cli_usage(c, "attach", "attach: '%s' is not a valid group name", name);
	if (geteuid() != 0) {
		/* the holder's socket is root's: cryod connects for its owner */
		int fd, rc = cli_ctl_attach(c, name, &fd);

		if (rc)
			return rc;
		r = term_attach_fd(fd, STDIN_FILENO, STDOUT_FILENO);
	} else {
		r = term_attach(cli_home(), name, STDIN_FILENO, STDOUT_FILENO);
	}
	if (r == -ENOENT)
		return cli_fail(c, "attach: group %s has no terminal (only 'cryo run' groups, and "
				"melted groups that had one, do)", name);
	if (r < 0)
		return cli_fail(c, "attach %s: %s", name, strerror(-r));
	fprintf(stderr, "\r\n[%s %s]\r\n", r ? "terminal of" : "detached from", name);
	if (r)
		fprintf(stderr, "[the process of %s has ended or was frozen]\r\n", name);
	return CLI_OK;
}

const struct cli_cmd cli_cmd_attach = {
	.name = "attach",
	.run = run_attach,
	.summary = "give your terminal to a group's (detach with Ctrl-\\)",
	.usage = "Usage: cryo attach NAME\n"
		 "\n"
		 "Connects your terminal to the terminal of group NAME (made by 'cryo\n"
		 "run', or by a melt of a process that had one): what the program wrote\n"
		 "while nobody was attached is shown first (the last 64 KiB), keys go to\n"
		 "it, window size changes follow. Ctrl-\\ detaches; the program runs on.\n"
		 "Users other than root attach to their own groups through cryod.\n",
};
