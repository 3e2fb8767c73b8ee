/* The cryo command: a registry of command families, each in its own file.
 *
 * A command is one struct cli_cmd. A family (`cryo store ...`) is a command
 * whose `sub` names a NULL-terminated table of its subcommands; the same
 * dispatcher (cli_dispatch) walks every level, so adding a command is one
 * line in a table and the file that defines it.
 *
 * Exit codes: CLI_OK (0) success, CLI_FAIL (1) failure with exactly one line
 * "cryo: <reason>" on stderr, CLI_USAGE (2) usage error.
 */
#ifndef CRYO_CLI_CLI_H
#define CRYO_CLI_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/progress.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

#define CLI_HIDDEN	0x1u	/* left out of help listings; still documented */

struct cli;

struct cli_cmd {
	const char *name;
	/* argv[0] is the command's name; getopt_long parses from argv[1]. */
	int (*run)(struct cli *c, const struct cli_cmd *self, int argc, char **argv);
	const char *summary;	/* one line, for listings */
	const char *usage;	/* full help: synopsis, then options */
	const struct cli_cmd *const *sub;	/* a family's subcommands, or NULL */
	unsigned flags;
};

/* What every command gets instead of globals. */
struct cli {
	const char *prog;	/* "cryo" */
	const struct cli_cmd *root;	/* the family of top-level commands */
	int err_fd;		/* the real stderr (cli_log_hold may move fd 2) */
	int cap_fd;		/* captured library log, or -1 */
};

/* Families and top-level commands, one file each. */
extern const struct cli_cmd cli_cmd_store;
extern const struct cli_cmd cli_cmd_melt;
extern const struct cli_cmd cli_cmd_help;
extern const struct cli_cmd cli_cmd_version;
extern const struct cli_cmd cli_cmd_adopt, cli_cmd_snap, cli_cmd_freeze, cli_cmd_history;
extern const struct cli_cmd cli_cmd_inspect;
extern const struct cli_cmd cli_cmd_recover, cli_cmd_ps, cli_cmd_rm, cli_cmd_daemon;
extern const struct cli_cmd cli_cmd_hibernate, cli_cmd_resume;
extern const struct cli_cmd cli_cmd_run, cli_cmd_attach;

/* Melt group name from s (o->snap, o->fds; outputs to outside go to
 * CRYO_HOME/log/NAME.log unless o says otherwise) and record it running in
 * the registry. 0 or -errno (the reason logged). */
struct restore_opts;
struct restore_result;
struct store;
int cli_melt_group(struct store *s, const char *name, struct restore_opts *o,
		   struct restore_result *res);

/* How a melt's result reads: the pid its program sees (the old one), and
 * " in a new pid namespace, host pid N" when it went into one (else ""). */
struct restore_result;
pid_t cli_melted_pid(const struct restore_result *res);
const char *cli_pidns_note(const struct restore_result *res, char *buf, size_t n);

/* Start cryod for CRYO_HOME with its defaults unless one runs (said on
 * stdout when started, unless quiet): CLI_OK or the failure (said). */
int cli_daemon_ensure(struct cli *c, int quiet);

/* Through cryod's control socket (ctl_client.c), for users other than
 * root: `cryo ps`, `cryo snap NAME` and `cryo freeze NAME` on their own
 * groups. */
int cli_ctl_ps(struct cli *c, int json);
int cli_ctl_snap(struct cli *c, const char *name, int weak, int freeze);
int cli_ctl_melt(struct cli *c, const char *name);
int cli_ctl_rm(struct cli *c, const char *name, int force);
/* *fd: a connection to name's terminal holder (term_attach_fd) */
int cli_ctl_attach(struct cli *c, const char *name, int *fd);

/* A family's run: the subcommand of self named by argv[1] (argv[0] is the
 * family's own name) gets argv + 1. Handles `--help` for the family. */
int cli_dispatch(struct cli *c, const struct cli_cmd *self, int argc, char **argv);
/* Find name in a NULL-terminated table, or NULL. */
const struct cli_cmd *cli_find(const struct cli_cmd *const *table, const char *name);
/* Print a command's full help (and its subcommand list) to f. */
void cli_print_help(const struct cli_cmd *cmd, FILE *f);

/* One line "cryo: <reason>" on the real stderr; returns CLI_FAIL. */
int cli_fail(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "cryo: <reason>" and a hint line naming `cryo help CMD`; returns CLI_USAGE. */
int cli_usage(struct cli *c, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A store failure: "cryo: <what>: <reason>", where the reason is the line
 * the store logged for it (if held), else store_strerror(err). */
int cli_fail_store(struct cli *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The store logs its reasons to stderr. While held, those lines are kept
 * aside so a failure comes out as one line naming the reason; on release
 * with ok != 0 they are passed through unchanged (warnings stay visible).
 * When CRYO_LOG is set the user asked for the log: nothing is held. */
void cli_log_hold(struct cli *c);
void cli_log_release(struct cli *c, int ok);

/* Sizes: "8G", "256M", "4096", "1.5T"; K/M/G/T are powers of 1024, an
 * optional trailing "iB"/"B" is accepted. -EINVAL or -ERANGE. */
int cli_parse_size(const char *s, uint64_t *out);
/* Decimal unsigned integer, whole string. */
int cli_parse_u64(const char *s, uint64_t *out);
/* "8.0 GiB", "512 B"; buf of at least 16 bytes. */
const char *cli_human(uint64_t bytes, char *buf, size_t n);
/* "2026-11-22 08:51:01" local time from ns since the epoch. */
const char *cli_time(uint64_t ns, char *buf, size_t n);

/* Where the store lives: opt_path, else $CRYO_HOME/store, else
 * /var/lib/cryo/store. Returns a pointer into buf or opt_path. */
const char *cli_store_path(const char *opt_path, char *buf, size_t n);
const char *cli_home(void);
/* CRYO_HOME/pager (made if missing) into buf, or NULL. */
const char *cli_pager_dir(char *buf, size_t n);
/* Before a snapshot of name: wait (bounded) while a lazy melt's pager
 * still brings its memory in; end it if its pager died (pager/serve.h).
 * -EINPROGRESS if it is still paging after the wait, -EOWNERDEAD if its
 * pager had died and the process was ended. */
#define PAGED_IN_WAIT_MS 120000
int cli_wait_paged_in(const char *name);

/* A progress bar on stderr for an operation that takes seconds (a full
 * snapshot, an eager melt): drawn only on a terminal, not with --json,
 * not before BAR_DELAY_MS have passed, at most every BAR_EVERY_MS;
 * cli_bar_end wipes it. bar->p goes to the library's options. */
#define BAR_DELAY_MS 300
#define BAR_EVERY_MS 100
struct cli_bar {
	struct progress p;
	const char *what;
	int fd;				/* the real stderr */
	uint64_t t0_ns, last_ns;
	bool drawn;
};
void cli_bar_init(struct cli_bar *bar, const struct cli *c, const char *what, int json);
void cli_bar_end(struct cli_bar *bar);

#endif
