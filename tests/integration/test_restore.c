/* Melt tests (root): each workload of restore_workload.c is frozen
 * (dump_group, as `cryo freeze` does), then melted several
 * times in a row from the same snapshot; each melt must bring it back with
 * its pid, running on its own (not our child, not traced), and it must
 * report PASS. Real programs: sleep(1), python3 with live state. Failure
 * tests: every restore.* fault point makes melt fail leaving nothing
 * behind, and the next melt works.
 *
 * usage: test_restore WORKLOAD_BINARY [case...] */
#define LOG_PREFIX "test: "
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fault.h"
#include "common/log.h"
#include "proc/status.h"
#include "restore/restore.h"
#include "dump/dump.h"

#define MELTS 3

static const char *workload;
static char base[256];
static struct store *st;
static int failures;

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); \
		       failures++; } while (0)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int wait_file(const char *path, double secs)
{
	double t = now();

	while (access(path, F_OK)) {
		if (now() - t > secs)
			return -1;
		usleep(5000);
	}
	return 0;
}

static int read_text(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = 0;
	return 0;
}

/* alive and not a zombie */
static int alive(pid_t pid)
{
	struct proc_stat s;

	return proc_stat_read(pid, 0, &s) == 0 && s.state != 'Z' && s.state != 'X';
}

static void wait_gone(pid_t pid)
{
	double t = now();

	while (alive(pid) && now() - t < 5)
		usleep(5000);
}

/* Melted: right pid, not ours, not traced. */
static int check_free(pid_t pid)
{
	struct proc_status s;

	if (proc_status_read(pid, 0, &s)) {
		FAIL("pid %d is not there after melt", (int)pid);
		return -1;
	}
	if (s.ppid == getpid() || s.tracer_pid != 0) {
		FAIL("pid %d: ppid %d tracer %d after melt", (int)pid, s.ppid, s.tracer_pid);
		return -1;
	}
	return 0;
}

static pid_t spawn(char *const argv[])
{
	pid_t p = fork();

	if (p == 0) {
		int fd = open("/dev/null", O_RDWR);
		setsid();
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	return p;
}

/* cryo freeze: snapshot, then end the process. */
static int freeze(const char *name, pid_t pid)
{
	struct dump_opts o = { .freeze = true };
	struct dump_result r;
	int ret = dump_group(st, name, pid, &o, &r);

	if (ret)
		FAIL("%s: freeze pid %d: %s", name, (int)pid, strerror(-ret));
	return ret;
}

static int melt(const char *name, pid_t pid)
{
	struct restore_opts o = { .snap = STORE_SNAP_NEWEST };
	struct restore_result r = { 0 };
	int ret = restore_group(st, name, &o, &r);

	if (ret) {
		FAIL("%s: melt: %s", name, strerror(-ret));
		return ret;
	}
	if (r.pid != pid) {
		FAIL("%s: melted as pid %d, not %d", name, (int)r.pid, (int)pid);
		return -1;
	}
	printf("  %s: melted pid %d in %.1f ms\n", name, (int)pid, (double)r.total_ns / 1e6);
	return check_free(pid);
}

/* A zdtm-style workload: capture, kill, melt MELTS times. */
static void run_workload(const char *mode)
{
	char dir[512], path[600], res[256];
	char *argv[] = { (char *)workload, (char *)mode, dir, NULL };
	pid_t pid;
	int st_;

	snprintf(dir, sizeof(dir), "%s/%s", base, mode);
	mkdir(dir, 0755);
	pid = spawn(argv);
	snprintf(path, sizeof(path), "%s/ready", dir);
	if (wait_file(path, 10)) {
		FAIL("%s: workload never got ready", mode);
		kill(pid, SIGKILL);
		waitpid(pid, &st_, 0);
		return;
	}
	usleep(100000);
	if (freeze(mode, pid)) {
		FAIL("%s: capture", mode);
		kill(pid, SIGKILL);
		waitpid(pid, &st_, 0);
		return;
	}
	waitpid(pid, &st_, 0);
	snprintf(path, sizeof(path), "%s/go", dir);
	close(open(path, O_CREAT | O_WRONLY, 0644));
	/* "files" writes to a file it had open: a second melt must then refuse
	 * ("changed since the snapshot"), which is checked instead. */
	for (int i = 0; i < (strcmp(mode, "files") ? MELTS : 1); i++) {
		snprintf(path, sizeof(path), "%s/result", dir);
		unlink(path);
		if (melt(mode, pid))
			return;
		if (wait_file(path, 10) || usleep(20000) || read_text(path, res, sizeof(res))) {
			FAIL("%s: melt %d: no result", mode, i + 1);
			kill(pid, SIGKILL);
			wait_gone(pid);
			return;
		}
		if (strncmp(res, "PASS", 4)) {
			FAIL("%s: melt %d: %s", mode, i + 1, res);
			return;
		}
		printf("  %s: melt %d PASS\n", mode, i + 1);
		wait_gone(pid);
	}
	if (!strcmp(mode, "files")) {
		struct restore_opts o = { .snap = STORE_SNAP_NEWEST };
		struct restore_result r;

		if (restore_group(st, mode, &o, &r) == 0) {
			FAIL("files: melt over a changed file succeeded");
			kill(pid, SIGKILL);
		} else if (alive(pid)) {
			FAIL("files: a refused melt left pid %d", (int)pid);
		} else {
			printf("  files: second melt refused (file changed) PASS\n");
		}
	}
}

/* sleep(1): melted, still sleeping, then ends on its own time. */
static void run_sleep(void)
{
	char *argv[] = { "sleep", "2", NULL };
	pid_t pid = spawn(argv);
	int s;
	double t;

	usleep(300000);
	if (freeze("sleep1", pid)) {
		FAIL("sleep: capture");
		return;
	}
	waitpid(pid, &s, 0);
	for (int i = 0; i < 2; i++) {
		if (melt("sleep1", pid))
			return;
		t = now();
		usleep(200000);
		if (!alive(pid)) {
			FAIL("sleep: died right after melt");
			return;
		}
		wait_gone(pid);
		if (now() - t < 1.0 || alive(pid)) {
			FAIL("sleep: ended after %.2f s, expected the ~1.7 s left", now() - t);
			return;
		}
		printf("  sleep: melt %d slept the rest (%.2f s) PASS\n", i + 1, now() - t);
	}
}

/* python3 with live state: a dict and a counter; after melt it goes on
 * counting from where it was and writes its state to a file. */
static void run_python(void)
{
	char dir[512], out[600], code[2048], a[256], b[256];
	char *argv[] = { "python3", "-c", code, NULL };
	pid_t pid;
	int s;

	snprintf(dir, sizeof(dir), "%s/python", base);
	mkdir(dir, 0755);
	snprintf(out, sizeof(out), "%s/state", dir);
	snprintf(code, sizeof(code),
		 "import time\n"
		 "d = {i: str(i) * 3 for i in range(10000)}\n"
		 "n = 0\n"
		 "while True:\n"
		 "    n += 1\n"
		 "    with open('%s.tmp', 'w') as f: f.write('%%d %%d %%s' %% (n, len(d), d[4242]))\n"
		 "    import os; os.rename('%s.tmp', '%s')\n"
		 "    time.sleep(0.05)\n", out, out, out);
	pid = spawn(argv);
	if (wait_file(out, 10)) {
		FAIL("python: never started");
		kill(pid, SIGKILL);
		waitpid(pid, &s, 0);
		return;
	}
	usleep(300000);
	if (freeze("python", pid)) {
		FAIL("python: capture");
		kill(pid, SIGKILL);
		waitpid(pid, &s, 0);
		return;
	}
	waitpid(pid, &s, 0);
	read_text(out, a, sizeof(a));
	/* freeze the melted process again each time: successive snapshots */
	for (int i = 0; i < 3; i++) {
		if (melt("python", pid))
			return;
		usleep(500000);
		read_text(out, b, sizeof(b));
		if (!alive(pid) || atoi(b) <= atoi(a) || !strstr(b, "10000 424242424242")) {
			FAIL("python: state before \"%s\", after melt \"%s\"", a, b);
			kill(pid, SIGKILL);
			return;
		}
		printf("  python: melt %d: \"%s\" -> \"%s\" PASS\n", i + 1, a, b);
		if (freeze("python", pid)) {
			kill(pid, SIGKILL);
			return;
		}
		wait_gone(pid);
		read_text(out, a, sizeof(a));
	}
}

/* ---- incremental snapshots, byte for byte ---- */

struct keys {
	uint64_t *k;
	uint8_t *kind;
	size_t n, cap;
};

static int key_add(void *arg, uint64_t key, enum store_page_kind kind)
{
	struct keys *ks = arg;

	if (ks->n == ks->cap) {
		ks->cap = ks->cap ? ks->cap * 2 : 1024;
		ks->k = realloc(ks->k, ks->cap * sizeof(*ks->k));
		ks->kind = realloc(ks->kind, ks->cap);
		if (!ks->k || !ks->kind)
			return -ENOMEM;
	}
	ks->k[ks->n] = key;
	ks->kind[ks->n++] = (uint8_t)kind;
	return 0;
}

/* The same pages, the same kinds, the same bytes: returns pages compared,
 * or -1 (FAIL reported). */
static long same_pages(const char *a, const char *b)
{
	struct store_snap *sa = NULL, *sb = NULL;
	struct keys ka = { 0 }, kb = { 0 };
	uint8_t pa[4096], pb[4096];
	long n = -1;

	if (store_snap_open(st, a, STORE_SNAP_NEWEST, &sa) ||
	    store_snap_open(st, b, STORE_SNAP_NEWEST, &sb) ||
	    store_snap_walk(sa, 0, STORE_VPN_MAX, key_add, &ka) ||
	    store_snap_walk(sb, 0, STORE_VPN_MAX, key_add, &kb)) {
		FAIL("incr: reading the snapshots of %s and %s", a, b);
		goto out;
	}
	if (ka.n != kb.n) {
		FAIL("incr: %s holds %zu pages, the full capture %zu", a, ka.n, kb.n);
		goto out;
	}
	for (size_t i = 0; i < ka.n; i++) {
		if (ka.k[i] != kb.k[i] || ka.kind[i] != kb.kind[i]) {
			FAIL("incr: page %zu: key %#llx kind %d vs key %#llx kind %d", i,
			     (unsigned long long)ka.k[i], ka.kind[i], (unsigned long long)kb.k[i],
			     kb.kind[i]);
			goto out;
		}
		if (store_snap_read_page(sa, ka.k[i], pa) < 0 ||
		    store_snap_read_page(sb, kb.k[i], pb) < 0 || memcmp(pa, pb, sizeof(pa))) {
			FAIL("incr: page %#llx differs from the full capture",
			     (unsigned long long)ka.k[i]);
			goto out;
		}
	}
	n = (long)ka.n;
out:
	store_snap_close(sa);
	store_snap_close(sb);
	free(ka.k);
	free(ka.kind);
	free(kb.k);
	free(kb.kind);
	return n;
}

/* A chain of incremental snapshots of a process whose memory changes
 * (writes, munmap, a new mapping, MADV_DONTNEED, mremap) is compared, at
 * each step, page for page with a full capture of the same instant (a
 * separate object); then the process is frozen incrementally, melted from
 * that snapshot, and checks its memory. */
static void run_incr(void)
{
	char dir[512], path[600], res[256];
	char *argv[] = { (char *)workload, "incr", dir, NULL };
	struct dump_opts incr = { .base = STORE_SNAP_NEWEST }, full = { 0 };
	struct dump_result ri, rf;
	pid_t pid;
	int s;

	snprintf(dir, sizeof(dir), "%s/incr", base);
	mkdir(dir, 0755);
	pid = spawn(argv);
	snprintf(path, sizeof(path), "%s/ready", dir);
	if (wait_file(path, 10) || dump_group(st, "incr", pid, &full, &rf)) {
		FAIL("incr: setup");
		goto kill;
	}
	for (int r = 1; r <= 4; r++) {
		long n;

		kill(pid, SIGUSR1);
		snprintf(path, sizeof(path), "%s/done%d", dir, r);
		if (wait_file(path, 10)) {
			FAIL("incr: round %d never done", r);
			goto kill;
		}
		if (dump_group(st, "incr", pid, &incr, &ri) || dump_group(st, "incr-full", pid, &full, &rf)) {
			FAIL("incr: round %d: snapshots", r);
			goto kill;
		}
		if (!ri.incremental || ri.pages >= rf.pages || !ri.unchanged) {
			FAIL("incr: round %d: incremental %d wrote %llu pages (%llu unchanged), full %llu",
			     r, ri.incremental, (unsigned long long)ri.pages,
			     (unsigned long long)ri.unchanged, (unsigned long long)rf.pages);
			goto kill;
		}
		n = same_pages("incr", "incr-full");
		if (n < 0)
			goto kill;
		printf("  incr: round %d: %llu pages written, %llu unchanged; %ld pages equal to a "
		       "full capture PASS\n", r, (unsigned long long)ri.pages,
		       (unsigned long long)ri.unchanged, n);
	}
	incr.freeze = true;
	if (dump_group(st, "incr", pid, &incr, &ri) || !ri.incremental) {
		FAIL("incr: incremental freeze");
		goto kill;
	}
	waitpid(pid, &s, 0);
	if (melt("incr", pid))
		return;
	kill(pid, SIGUSR1);	/* check your memory */
	snprintf(path, sizeof(path), "%s/result", dir);
	if (wait_file(path, 10) || usleep(20000) || read_text(path, res, sizeof(res)) ||
	    strncmp(res, "PASS", 4))
		FAIL("incr: melt from an incremental snapshot: %s", res);
	else
		printf("  incr: melted from an incremental snapshot, memory checked PASS\n");
	wait_gone(pid);
	return;
kill:
	kill(pid, SIGKILL);
	waitpid(pid, &s, 0);
}

/* Each fault point: melt fails, nothing is left, the image is the same,
 * and the next melt works. Uses the "threads" snapshot (every step runs). */
static void run_faults(void)
{
	static const char *points[] = { "restore.child.fail", "restore.mmap.fail",
					 "restore.pages.fail", "restore.threads.fail",
					 "restore.signals.fail", "restore.regs.fail" };
	struct restore_opts o = { .snap = STORE_SNAP_NEWEST };
	struct restore_result r;
	struct store_snap *sn;
	struct store_snap_info before, after;
	char dir[512], path[600], res[64];
	char *argv[] = { (char *)workload, "threads", dir, NULL };
	pid_t pid;
	int s;

	snprintf(dir, sizeof(dir), "%s/faults", base);
	mkdir(dir, 0755);
	pid = spawn(argv);
	snprintf(path, sizeof(path), "%s/ready", dir);
	if (wait_file(path, 10) || freeze("faults", pid)) {
		FAIL("faults: setup");
		kill(pid, SIGKILL);
		waitpid(pid, &s, 0);
		return;
	}
	waitpid(pid, &s, 0);
	if (store_snap_open(st, "faults", STORE_SNAP_NEWEST, &sn) == 0) {
		store_snap_info(sn, &before);
		store_snap_close(sn);
	}
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		setenv("CRYO_FAULT", points[i], 1);
		fault_reset();
		if (restore_group(st, "faults", &o, &r) == 0) {
			FAIL("%s: melt did not fail", points[i]);
			kill(pid, SIGKILL);
		}
		unsetenv("CRYO_FAULT");
		fault_reset();
		if (alive(pid))
			FAIL("%s: pid %d left alive after a failed melt", points[i], (int)pid);
		if (waitpid(-1, &s, WNOHANG) > 0)
			FAIL("%s: a child of ours was left to reap", points[i]);
		if (store_snap_open(st, "faults", STORE_SNAP_NEWEST, &sn) == 0) {
			store_snap_info(sn, &after);
			store_snap_close(sn);
			if (after.no != before.no || after.pages != before.pages ||
			    after.records != before.records)
				FAIL("%s: the image changed", points[i]);
		}
		printf("  %s: melt failed cleanly\n", points[i]);
	}
	snprintf(path, sizeof(path), "%s/go", dir);
	close(open(path, O_CREAT | O_WRONLY, 0644));
	snprintf(path, sizeof(path), "%s/result", dir);
	if (melt("faults", pid))
		return;
	res[0] = 0;
	if (wait_file(path, 10) || usleep(20000) || read_text(path, res, sizeof(res)) || strncmp(res, "PASS", 4))
		FAIL("faults: the melt after the failures did not PASS: %s", res);
	else
		printf("  faults: next melt PASS\n");
	wait_gone(pid);
}

static int selected(int argc, char **argv, const char *name)
{
	if (argc <= 2)
		return 1;
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], name))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	static const char *modes[] = { "mem", "regs", "threads", "signals", "itimer", "sleepwl",
				       "files", "read", "sockets" };
	struct store_create_opts co = { .size = 2ull << 30 };
	char spath[300];

	if (argc < 2) {
		fprintf(stderr, "usage: %s WORKLOAD [case...]\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		printf("SKIP: needs root\n");
		return 77;
	}
	workload = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(base, sizeof(base), "/tmp/cryo-test-restore.XXXXXX");
	if (!mkdtemp(base))
		return 1;
	snprintf(spath, sizeof(spath), "%s/store", base);
	if (store_create(spath, &co) || store_open(spath, NULL, &st)) {
		fprintf(stderr, "cannot make a store in %s\n", spath);
		return 1;
	}
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		const char *m = strcmp(modes[i], "sleepwl") ? modes[i] : "sleep";
		if (selected(argc, argv, modes[i])) {
			printf("workload %s\n", m);
			run_workload(m);
		}
	}
	if (selected(argc, argv, "sleep1")) {
		printf("sleep(1)\n");
		run_sleep();
	}
	if (selected(argc, argv, "python")) {
		printf("python3\n");
		run_python();
	}
	if (selected(argc, argv, "incr")) {
		printf("incremental\n");
		run_incr();
	}
	if (selected(argc, argv, "faults")) {
		printf("faults\n");
		run_faults();
	}
	store_close(st);
	if (!failures) {
		char cmd[400];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
		if (system(cmd))
			(void)0;
	}
	printf("%s (%d failures)\n", failures ? "FAIL" : "PASS", failures);
	return failures ? 1 : 0;
}
