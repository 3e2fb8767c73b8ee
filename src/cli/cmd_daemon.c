/* cryo daemon run|start|stop|status: the checkpoint daemon of this
 * CRYO_HOME (src/daemon/cryod.h). */
#include "cli/cli.h"
#include "daemon/cryod.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

struct daemon_args {
	struct cryod_opts o;
	double interval_s, max_age_s;
	int recover;
};

/* --recover: what `cryo recover` does, once this cryod holds CRYO_HOME. */
static void recover_on_start(void *arg)
{
	struct cli *c = arg;
	char *argv[] = { "recover", NULL };

	if (cli_cmd_recover.run(c, &cli_cmd_recover, 1, argv) != CLI_OK)
		fprintf(stderr, "cryod: recover left groups behind (see above)\n");
	fflush(stdout);
}

static int parse_secs(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno || end == s || *end || *out <= 0 || *out > 1e7 ? -EINVAL : 0;
}

/* The options of run and start (start passes them on to run). */
static int parse_opts(struct cli *c, const char *cmd, int argc, char **argv, struct daemon_args *a)
{
	static const struct option opts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "max-age", required_argument, NULL, 'm' },
		{ "keep", required_argument, NULL, 'k' },
		{ "tick", required_argument, NULL, 't' },
		{ "recover", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int ch;

	memset(a, 0, sizeof(*a));
	a->interval_s = 60;
	a->o.keep = 3;
	a->o.tick_ms = 1000;
	a->o.home = cli_home();
	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (ch) {
		case 'i':
			if (parse_secs(optarg, &a->interval_s))
				return cli_usage(c, cmd, "%s: bad --interval '%s'", cmd, optarg);
			break;
		case 'm':
			if (parse_secs(optarg, &a->max_age_s))
				return cli_usage(c, cmd, "%s: bad --max-age '%s'", cmd, optarg);
			break;
		case 'k':
			if (cli_parse_u64(optarg, &v) || !v || v > 1000000)
				return cli_usage(c, cmd, "%s: bad --keep '%s'", cmd, optarg);
			a->o.keep = (unsigned)v;
			break;
		case 't':
			if (cli_parse_u64(optarg, &v) || v < 10 || v > 60000)
				return cli_usage(c, cmd, "%s: bad --tick '%s' (10..60000 ms)", cmd, optarg);
			a->o.tick_ms = (unsigned)v;
			break;
		case 'r':
			a->recover = 1;
			break;
		case 'h':
			return 'h';
		default:
			return cli_usage(c, cmd, "%s: bad option '%s'", cmd, argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage(c, cmd, "%s: unexpected '%s'", cmd, argv[optind]);
	if (!a->max_age_s)
		a->max_age_s = a->interval_s * 10;
	if (a->max_age_s < a->interval_s)
		return cli_usage(c, cmd, "%s: --max-age must be at least --interval", cmd);
	a->o.interval_ns = (uint64_t)(a->interval_s * 1e9);
	a->o.max_age_ns = (uint64_t)(a->max_age_s * 1e9);
	return 0;
}

static int run_run(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	struct daemon_args a;
	int r = parse_opts(c, "daemon run", argc, argv, &a);

	if (r == 'h') {
		cli_print_help(self, stdout);
		return CLI_OK;
	}
	if (r)
		return r;
	if (mkdir(a.o.home, 0700) && errno != EEXIST)
		return cli_fail(c, "cannot create %s: %s", a.o.home, strerror(errno));
	setenv("CRYO_LOG", "info", 0);		/* a daemon's log says what it did */
	if (a.recover) {
		a.o.on_start = recover_on_start;
		a.o.arg = c;
	}
	r = cryod_run(&a.o);
	if (r == -EALREADY)
		return cli_fail(c, "cryod already runs for %s", a.o.home);
	if (r)
		return cli_fail(c, "cryod: %s", strerror(-r));
	return CLI_OK;
}

/* Start `cryo daemon run ARGS...` (argv[1..argc-1]) detached, logging to
 * CRYO_HOME/log/cryod.log; return once it holds the lock (its pid in *pid). */
static int start_detached(struct cli *c, const char *home, int argc, char **argv, pid_t *pid,
			  char *logpath, size_t loglen)
{
	char exe[PATH_MAX], **args;
	pid_t child;
	ssize_t n;

	snprintf(logpath, loglen, "%s/log", home);
	if ((mkdir(home, 0700) && errno != EEXIST) || (mkdir(logpath, 0700) && errno != EEXIST))
		return cli_fail(c, "cannot create %s: %s", logpath, strerror(errno));
	snprintf(logpath, loglen, "%s/log/cryod.log", home);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return cli_fail(c, "cannot find the cryo binary: %s", strerror(errno));
	exe[n] = '\0';
	args = calloc((size_t)argc + 3, sizeof(*args));
	if (!args)
		return cli_fail(c, "out of memory");
	args[0] = "cryo";
	args[1] = "daemon";
	args[2] = "run";
	for (int i = 1; i < argc; i++)
		args[i + 2] = argv[i];
	fflush(NULL);
	child = fork();
	if (child < 0) {
		free(args);
		return cli_fail(c, "fork: %s", strerror(errno));
	}
	if (child == 0) {
		int in = open("/dev/null", O_RDONLY), log = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (in < 0 || log < 0 || setsid() < 0 || dup2(in, 0) < 0 || dup2(log, 1) < 0 ||
		    dup2(log, 2) < 0)
			_exit(127);
		/* the daemon must not keep a terminal, our pipes or a store open */
		(void)syscall(SYS_close_range, 3u, ~0u, 0u);
		execv(exe, args);
		_exit(127);
	}
	free(args);
	for (int i = 0; i < 500; i++) {
		if (!cryod_pid(home, pid))
			return CLI_OK;
		usleep(10000);
	}
	return cli_fail(c, "cryod did not start; see %s", logpath);
}

static int run_start(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	struct daemon_args a;
	char logpath[PATH_MAX];
	pid_t pid;
	int r = parse_opts(c, "daemon start", argc, argv, &a);

	if (r == 'h') {
		cli_print_help(self, stdout);
		return CLI_OK;
	}
	if (r)
		return r;
	if (!cryod_pid(a.o.home, &pid))
		return cli_fail(c, "cryod already runs for %s as pid %d", a.o.home, (int)pid);
	r = start_detached(c, a.o.home, argc, argv, &pid, logpath, sizeof(logpath));
	if (r == CLI_OK)
		printf("cryod runs for %s as pid %d (log: %s)\n", a.o.home, (int)pid, logpath);
	return r;
}

int cli_daemon_ensure(struct cli *c, int quiet)
{
	char logpath[PATH_MAX], *none[] = { "start", NULL };
	pid_t pid;
	int r;

	if (!cryod_pid(cli_home(), &pid))
		return CLI_OK;
	r = start_detached(c, cli_home(), 1, none, &pid, logpath, sizeof(logpath));
	if (r == CLI_OK && !quiet)
		printf("started cryod for %s as pid %d: it keeps the group persistent "
		       "(log: %s)\n", cli_home(), (int)pid, logpath);
	return r;
}

/* For commands without arguments: CLI_OK after --help, CLI_USAGE for
 * anything else, -1 to go on. */
static int no_args(struct cli *c, const struct cli_cmd *self, int argc, char **argv,
		   const char *cmd)
{
	if (argc > 1 && !strcmp(argv[1], "--help")) {
		cli_print_help(self, stdout);
		return CLI_OK;
	}
	if (argc > 1)
		return cli_usage(c, cmd, "%s: unexpected '%s'", cmd, argv[1]);
	return -1;
}

static int run_stop(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	const char *home = cli_home();
	pid_t pid;
	int rc = no_args(c, self, argc, argv, "daemon stop");

	if (rc >= 0)
		return rc;
	if (cryod_pid(home, &pid))
		return cli_fail(c, "no cryod runs for %s", home);
	if (kill(pid, SIGTERM))
		return cli_fail(c, "cannot stop cryod (pid %d): %s", (int)pid, strerror(errno));
	/* it finishes the job at hand first: a snapshot may take seconds */
	for (int i = 0; i < 6000; i++) {
		if (cryod_pid(home, &pid)) {
			printf("cryod stopped\n");
			return CLI_OK;
		}
		usleep(10000);
	}
	return cli_fail(c, "cryod (pid %d) did not stop within 60 s", (int)pid);
}

static int run_status(struct cli *c, const struct cli_cmd *self, int argc, char **argv)
{
	const char *home = cli_home();
	char path[PATH_MAX], line[512];
	pid_t pid;
	FILE *f;
	int rc = no_args(c, self, argc, argv, "daemon status");

	if (rc >= 0)
		return rc;
	if (cryod_pid(home, &pid)) {
		printf("cryod is not running for %s\n", home);
		return CLI_FAIL;
	}
	printf("cryod runs for %s as pid %d\n", home, (int)pid);
	snprintf(path, sizeof(path), "%s/cryod.status", home);
	f = fopen(path, "r");
	if (!f)
		return CLI_OK;
	/* only what this cryod wrote: its first line names its pid */
	if (fgets(line, sizeof(line), f) && atoi(line + (strncmp(line, "pid ", 4) ? 0 : 4)) == pid) {
		fputs(line, stdout);
		while (fgets(line, sizeof(line), f))
			fputs(line, stdout);
	}
	fclose(f);
	return CLI_OK;
}

static const struct cli_cmd cmd_run = {
	.name = "run", .run = run_run,
	.summary = "run cryod in the foreground",
	.usage = "Usage: cryo daemon run [--interval S] [--max-age S] [--keep K] [--tick MS]\n"
		 "                       [--recover]\n"
		 "\n"
		 "Run the checkpoint daemon of $CRYO_HOME in the foreground (one per\n"
		 "CRYO_HOME), logging to stderr. Every tick it looks at each running group:\n"
		 "one whose newest snapshot is older than --interval gets a weak snapshot,\n"
		 "taken only if every thread is asleep and used no CPU since the last tick\n"
		 "(else skipped and counted); one older than --max-age gets a force\n"
		 "snapshot whatever it does. Snapshots are incremental; the newest --keep\n"
		 "of each group are kept. SIGUSR1: a weak snapshot of every group now;\n"
		 "SIGUSR2: a force one; SIGTERM: stop.\n"
		 "\n"
		 "Options:\n"
		 "  --interval S   seconds between snapshots of a group (default 60)\n"
		 "  --max-age S    force a snapshot past this age (default 10 x interval)\n"
		 "  --keep K       snapshots kept per group (default 3)\n"
		 "  --tick MS      how often groups are looked at (default 1000)\n"
		 "  --recover      first melt every group a crash left behind, as\n"
		 "                 'cryo recover' does (the systemd unit uses it)\n",
};

static const struct cli_cmd cmd_start = {
	.name = "start", .run = run_start,
	.summary = "start cryod in the background",
	.usage = "Usage: cryo daemon start [--interval S] [--max-age S] [--keep K] [--tick MS]\n"
		 "                         [--recover]\n"
		 "\n"
		 "Start `cryo daemon run` detached from the terminal, logging to\n"
		 "$CRYO_HOME/log/cryod.log, and return once it runs. The options are\n"
		 "those of `cryo daemon run`.\n",
};

static const struct cli_cmd cmd_stop = {
	.name = "stop", .run = run_stop,
	.summary = "stop cryod after the job at hand",
	.usage = "Usage: cryo daemon stop\n"
		 "\n"
		 "Ask cryod to stop (SIGTERM) and wait until it has: a snapshot in\n"
		 "progress is finished first.\n",
};

static const struct cli_cmd cmd_status = {
	.name = "status", .run = run_status,
	.summary = "is cryod running, and what has it done",
	.usage = "Usage: cryo daemon status\n"
		 "\n"
		 "Say whether cryod runs for $CRYO_HOME (exit 1 if not) and print its\n"
		 "settings and, per group, the weak and force snapshots it took, the weak\n"
		 "ones it skipped because the group was busy, and its failures.\n",
};

static const struct cli_cmd *const daemon_cmds[] = {
	&cmd_run, &cmd_start, &cmd_stop, &cmd_status, NULL,
};

const struct cli_cmd cli_cmd_daemon = {
	.name = "daemon",
	.run = cli_dispatch,
	.summary = "run, start, stop the checkpoint daemon cryod",
	.usage = "Usage: cryo daemon COMMAND [OPTIONS]\n"
		 "\n"
		 "cryod keeps every running group persistent: periodic weak snapshots,\n"
		 "force snapshots past a maximum age, SIGUSR1/SIGUSR2 for all now.\n",
	.sub = daemon_cmds,
};
