/* Melt tests (root): each workload of restore_workload.c is frozen
 * (dump_group, as `cryo freeze` does), then melted several times in a row
 * from the same snapshot, lazily and eagerly (trees too); each melt must
 * bring it back with its pid, running on its own (not our child, not
 * traced), and it must report PASS. Real programs: sleep(1), python3 with
 * live state. Failure tests: every restore.* fault point makes a melt,
 * eager or lazy, of a process and of a tree fail leaving nothing behind
 * (no process, no pager), and the next melt works.
 *
 * usage: test_restore WORKLOAD_BINARY [case...] */
#define LOG_PREFIX "test: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
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
#include "pager/serve.h"
#include "restore/restore.h"
#include "dump/dump.h"
#include "image/image.h"
#include "pattern.h"

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

/* The pager of the last lazy melt: it must have ended (every page in, or
 * its process gone) before the test goes on. */
static pid_t last_pager;

/* Melted: right pid, not ours, not traced (but by its pager, for the
 * moment it takes to close the process's copy of the uffd once all is in). */
static int check_free(pid_t pid)
{
	struct proc_status s;

	if (proc_status_read(pid, 0, &s)) {
		FAIL("pid %d is not there after melt", (int)pid);
		return -1;
	}
	if (s.ppid == getpid() || (s.tracer_pid != 0 && s.tracer_pid != last_pager)) {
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

static int pager_done(const char *name);

/* cryo freeze: snapshot, then end the process. */
static int freeze(const char *name, pid_t pid)
{
	struct dump_opts o = { .freeze = true };
	struct dump_result r;
	int ret = pager_done(name) ? -EINPROGRESS : dump_group(st, name, pid, &o, &r);

	if (ret)
		FAIL("%s: freeze pid %d: %s", name, (int)pid, strerror(-ret));
	return ret;
}

static int pager_done(const char *name)
{
	int ret = last_pager > 0 ? pager_wait(last_pager, 30000) : 0;

	if (ret)
		FAIL("%s: pager %d still runs after 30 s: %s", name, (int)last_pager, strerror(-ret));
	last_pager = 0;
	return ret;
}

/* cryo melt: lazy (a pager brings memory in) or eager. */
static int melt_as(const char *name, pid_t pid, bool lazy)
{
	struct restore_opts o = { .snap = STORE_SNAP_NEWEST, .lazy = lazy };
	struct restore_result r = { 0 };
	char log[400];
	int ret;

	snprintf(log, sizeof(log), "%s/pager.log", base);
	o.pager_log = log;
	if (pager_done(name))
		return -1;
	ret = restore_group(st, name, &o, &r);
	if (ret) {
		FAIL("%s: melt: %s", name, strerror(-ret));
		return ret;
	}
	last_pager = r.pager_pid;
	if (r.pid != pid) {
		FAIL("%s: melted as pid %d, not %d", name, (int)r.pid, (int)pid);
		return -1;
	}
	if (lazy != (r.pager_pid > 0)) {
		FAIL("%s: %s melt %s a pager", name, lazy ? "lazy" : "eager",
		     lazy ? "without" : "with");
		return -1;
	}
	printf("  %s: melted pid %d %s in %.1f ms\n", name, (int)pid, lazy ? "lazily" : "eagerly",
	       (double)r.total_ns / 1e6);
	return check_free(pid);
}

static int melt(const char *name, pid_t pid)
{
	return melt_as(name, pid, true);
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
	/* "files" changes a file it had open: a second melt must then refuse
	 * ("changed since the snapshot"), which is checked instead. (Its write
	 * to the file it only appends to is not such a change.) */
	for (int i = 0; i < (strcmp(mode, "files") ? MELTS : 1); i++) {
		snprintf(path, sizeof(path), "%s/result", dir);
		unlink(path);
		/* "pidfd": the previous melt's word to its child to exit */
		snprintf(path, sizeof(path), "%s/exit-k", dir);
		unlink(path);
		/* lazy, eager, lazy */
		snprintf(path, sizeof(path), "%s/lazy", dir);
		if (i % 2 == 0)
			close(open(path, O_CREAT | O_WRONLY, 0644));
		else
			unlink(path);
		/* "fifo": a FIFO whose path is gone at melt is made again;
		 * "inotify": a watched directory gone at melt is IN_IGNORED */
		snprintf(path, sizeof(path), "%s/gone.fifo", dir);
		if (!strcmp(mode, "fifo"))
			unlink(path);
		snprintf(path, sizeof(path), "%s/gone", dir);
		if (!strcmp(mode, "inotify"))
			rmdir(path);
		snprintf(path, sizeof(path), "%s/result", dir);
		if (melt_as(mode, pid, i % 2 == 0))
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
		int fd;

		snprintf(path, sizeof(path), "%s/data", dir);
		fd = open(path, O_WRONLY | O_APPEND);
		if (fd < 0 || write(fd, "more", 4) != 4)
			FAIL("files: cannot change %s", path);
		if (fd >= 0)
			close(fd);
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
		if (melt_as("sleep1", pid, i == 0))	/* lazy, then eager */
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
		if (melt_as("python", pid, i != 1))	/* lazy, eager, lazy */
			return;
		/* it counts on (lazily melted: once its pages come in) */
		for (int k = 0; k < 100; k++) {
			usleep(100000);
			read_text(out, b, sizeof(b));
			if (atoi(b) > atoi(a) + 1)
				break;
		}
		if (!alive(pid) || atoi(b) <= atoi(a) || !strstr(b, "10000 424242424242")) {
			char wpath[64], wchan[64] = "";
			snprintf(wpath, sizeof(wpath), "/proc/%d/wchan", (int)pid);
			read_text(wpath, wchan, sizeof(wchan));
			FAIL("python: state before \"%s\", after melt \"%s\" (alive %d, in %s)", a, b,
			     alive(pid), wchan);
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

/* The workload's verdict in dir/result after it checked itself: 0 if PASS
 * (res gets the text either way). */
static int workload_passed(const char *dir, char *res, size_t n)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/result", dir);
	res[0] = '\0';
	/* a moment for the whole line once the file exists */
	if (wait_file(path, 10) || usleep(20000) || read_text(path, res, n))
		return -1;
	return strncmp(res, "PASS", 4) ? -1 : 0;
}

/* After a freeze of pid (our child): reap it, melt name lazily, tell the
 * workload to check itself (SIGUSR1) and report its verdict as what; then
 * the same from the same snapshot, melted eagerly. */
static void melt_and_check(const char *name, pid_t pid, const char *dir, const char *what)
{
	char res[256], path[600];
	int s;

	waitpid(pid, &s, 0);
	for (int lazy = 1; lazy >= 0; lazy--) {
		snprintf(path, sizeof(path), "%s/result", dir);
		unlink(path);
		if (melt_as(name, pid, lazy))
			return;
		kill(pid, SIGUSR1);
		if (workload_passed(dir, res, sizeof(res)))
			FAIL("%s: %s melt: %s: %s", name, lazy ? "lazy" : "eager", what, res);
		else
			printf("  %s: %s melt: %s PASS\n", name, lazy ? "lazy" : "eager", what);
		wait_gone(pid);
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
/* Which mapping of pid holds addr: for a failure's message. */
static void say_mapping(pid_t pid, uint64_t addr)
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;

		if (sscanf(line, "%llx-%llx", &lo, &hi) == 2 && lo <= addr && addr < hi)
			printf("    in mapping %s", line);
	}
	if (f)
		fclose(f);
}

static long same_pages(const char *a, const char *b, pid_t pid)
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
			size_t off = 0;

			while (off < sizeof(pa) && pa[off] == pb[off])
				off++;
			FAIL("%s: page %#llx differs from the full capture at byte %zu", a,
			     (unsigned long long)ka.k[i], off);
			say_mapping(pid, (ka.k[i] & ((1ull << STORE_VPN_BITS) - 1)) * 4096);
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
 * that snapshot, and checks its memory. name "incr": by comparison with
 * the base; "track": from tracked writes (userfaultfd-WP), with pre-copy. */
static void run_incr(const char *name)
{
	char dir[512], path[600], fullname[64];
	char *argv[] = { (char *)workload, "incr", dir, NULL };
	int tracked = !strcmp(name, "track");
	struct dump_opts incr = { .base = STORE_SNAP_NEWEST }, full = { 0 };
	struct dump_result ri, rf;
	pid_t pid;
	int s;

	snprintf(dir, sizeof(dir), "%s/%s", base, name);
	snprintf(fullname, sizeof(fullname), "%s-full", name);
	mkdir(dir, 0755);
	if (tracked && !(incr.track = dump_track_new())) {
		FAIL("%s: no memory", name);
		return;
	}
	pid = spawn(argv);
	snprintf(path, sizeof(path), "%s/ready", dir);
	/* the first snapshot (full) arms the tracker */
	if (wait_file(path, 10) || dump_group(st, name, pid, tracked ? &incr : &full, &rf) ||
	    (tracked && !dump_track_armed(incr.track))) {
		FAIL("%s: setup", name);
		goto kill;
	}
	for (int r = 1; r <= 4; r++) {
		long n;

		kill(pid, SIGUSR1);
		snprintf(path, sizeof(path), "%s/done%d", dir, r);
		if (wait_file(path, 10)) {
			FAIL("%s: round %d never done", name, r);
			goto kill;
		}
		if (dump_group(st, name, pid, &incr, &ri) ||
		    dump_group(st, fullname, pid, &full, &rf)) {
			FAIL("%s: round %d: snapshots", name, r);
			goto kill;
		}
		if (!ri.incremental || ri.pages >= rf.pages || ri.tracked != tracked ||
		    (tracked ? !ri.precopied : !ri.unchanged)) {
			FAIL("%s: round %d: incremental %d tracked %d wrote %llu pages (%llu "
			     "unchanged, %llu pre-copied), full %llu", name, r, ri.incremental,
			     ri.tracked, (unsigned long long)ri.pages,
			     (unsigned long long)ri.unchanged, (unsigned long long)ri.precopied,
			     (unsigned long long)rf.pages);
			goto kill;
		}
		n = same_pages(name, fullname, pid);
		if (n < 0)
			goto kill;
		printf("  %s: round %d: %llu pages written (%llu pre-copied), %llu unchanged; %ld "
		       "pages equal to a full capture PASS\n", name, r, (unsigned long long)ri.pages,
		       (unsigned long long)ri.precopied, (unsigned long long)ri.unchanged, n);
	}
	incr.freeze = true;
	if (dump_group(st, name, pid, &incr, &ri) || !ri.incremental || ri.tracked != tracked) {
		FAIL("%s: incremental freeze", name);
		goto kill;
	}
	melt_and_check(name, pid, dir, "melted from an incremental snapshot, memory checked");
	goto out;
kill:
	kill(pid, SIGKILL);
	waitpid(pid, &s, 0);
out:
	dump_track_free(incr.track);
}

/* Processes other than us running our program: a pager is one (forked
 * from us, never exec'd). */
static int our_others(void)
{
	char self[512], path[64], exe[512];
	DIR *d = opendir("/proc");
	struct dirent *de;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int count = 0;

	if (!d || n <= 0) {
		if (d)
			closedir(d);
		return 0;
	}
	self[n] = 0;
	while ((de = readdir(d))) {
		int pid = atoi(de->d_name);

		if (pid <= 0 || pid == getpid() || !alive(pid))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/exe", pid);
		n = readlink(path, exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = 0;
			count += !strcmp(exe, self);
		}
	}
	closedir(d);
	return count;
}

/* One fault point on a melt of name (pid): it fails, nothing is left (a
 * lazy melt's pager ends too), the image is the same. */
static void fault_round(const char *name, const pid_t *pids, size_t npids, const char *point,
			bool lazy, const struct store_snap_info *before)
{
	pid_t pid = pids[0];
	struct restore_opts o = { .snap = STORE_SNAP_NEWEST, .lazy = lazy };
	struct restore_result r;
	struct store_snap_info after;
	struct store_snap *sn;
	double t;
	int s;

	setenv("CRYO_FAULT", point, 1);
	fault_reset();
	if (restore_group(st, name, &o, &r) == 0) {
		FAIL("%s: %s melt did not fail", point, lazy ? "lazy" : "eager");
		kill(pid, SIGKILL);
	}
	unsetenv("CRYO_FAULT");
	fault_reset();
	for (size_t i = 0; i < npids; i++)
		if (alive(pids[i]))
			FAIL("%s: pid %d left alive after a failed melt", point, (int)pids[i]);
	if (waitpid(-1, &s, WNOHANG) > 0)
		FAIL("%s: a child of ours was left to reap", point);
	for (t = now(); our_others() && now() - t < 10;)
		usleep(10000);
	if (our_others())
		FAIL("%s: a failed lazy melt left its pager running", point);
	if (store_snap_open(st, name, STORE_SNAP_NEWEST, &sn) == 0) {
		store_snap_info(sn, &after);
		store_snap_close(sn);
		if (after.no != before->no || after.pages != before->pages ||
		    after.records != before->records)
			FAIL("%s: the image changed", point);
	}
	printf("  %s: %s melt of %s (%zu processes) failed cleanly\n", point,
	       lazy ? "lazy" : "eager", name, npids);
}

/* Each fault point, eager and lazy: melt fails, nothing is left, the image
 * is the same, and the next melt works. The "threads" snapshot (every
 * step runs), then a tree's (no extra threads: no threads point). */
static void run_faults_of(const char *mode, const char *const *points, size_t npoints)
{
	char name[64], dir[512], path[600], res[64];
	char *argv[] = { (char *)workload, (char *)mode, dir, NULL };
	struct store_snap_info before = { 0 };
	Cryo__GroupEntry *g = NULL;
	struct store_snap *sn;
	pid_t pid, pids[64] = { 0 };
	size_t npids = 0;
	int s;

	snprintf(name, sizeof(name), "faults-%s", mode);
	snprintf(dir, sizeof(dir), "%s/%s", base, name);
	mkdir(dir, 0755);
	pid = spawn(argv);
	snprintf(path, sizeof(path), "%s/ready", dir);
	if (wait_file(path, 20) || freeze(name, pid)) {
		FAIL("%s: setup", name);
		kill(pid, SIGKILL);
		waitpid(pid, &s, 0);
		return;
	}
	waitpid(pid, &s, 0);
	if (store_snap_open(st, name, STORE_SNAP_NEWEST, &sn) == 0) {
		store_snap_info(sn, &before);
		/* every process of the tree must be gone after a failure */
		if (image_get_group(sn, &g) == 0)
			for (size_t i = 0; i < g->n_procs && npids < 64; i++)
				pids[npids++] = (pid_t)g->procs[i]->pid;
		image_free((ProtobufCMessage *)g);
		store_snap_close(sn);
	}
	if (!npids || pids[0] != pid) {
		FAIL("%s: the snapshot's processes", name);
		return;
	}
	for (size_t i = 0; i < npoints; i++)
		for (int lazy = 0; lazy < 2; lazy++)
			fault_round(name, pids, npids, points[i], lazy, &before);
	snprintf(path, sizeof(path), "%s/go", dir);
	close(open(path, O_CREAT | O_WRONLY, 0644));
	if (melt(name, pid))
		return;
	if (workload_passed(dir, res, sizeof(res)))
		FAIL("%s: the melt after the failures did not PASS: %s", name, res);
	else
		printf("  %s: next melt PASS\n", name);
	wait_gone(pid);
}

static void run_faults(void)
{
	static const char *const points[] = { "restore.child.fail", "restore.mmap.fail",
					       "restore.pages.fail", "restore.threads.fail",
					       "restore.signals.fail", "restore.regs.fail" };

	/* a tree's processes have no extra threads */
	static const char *const tree_points[] = { "restore.child.fail", "restore.mmap.fail",
						    "restore.pages.fail", "restore.signals.fail",
						    "restore.regs.fail" };

	run_faults_of("threads", points, sizeof(points) / sizeof(points[0]));
	/* a tree: its pager starts between the processes' memory and the
	 * rest of their restore */
	run_faults_of("lazytree", tree_points, sizeof(tree_points) / sizeof(tree_points[0]));
}

/* A value of the newest snapshot of name at addr (space 1); -1 if absent. */
static int snap_u32(struct store_snap *sn, uint64_t addr, uint32_t *v)
{
	uint8_t page[4096];
	int k = store_snap_read_page(sn, STORE_KEY(1, addr / 4096), page);

	if (k == STORE_PAGE_NONE || k < 0)
		return -1;
	memcpy(v, page + addr % 4096, 4);
	return 0;
}

/* Is the newest snapshot of churn one instant of the workload: every page
 * of A what its generation (read from the same snapshot) says? */
static int churn_consistent(const char *layout)
{
	unsigned long long g, lo, hi, a;
	unsigned n;
	uint32_t flo, fhi;
	uint8_t page[4096];
	struct store_snap *sn;
	int bad = -1;

	if (sscanf(layout, "%llx %llx %llx %llx %u", &g, &lo, &hi, &a, &n) != 5 ||
	    store_snap_open(st, "churn", STORE_SNAP_NEWEST, &sn))
		return -1;
	if (snap_u32(sn, lo, &flo) || snap_u32(sn, hi, &fhi))
		goto out;
	for (unsigned i = 0; i < n; i++) {
		uint32_t gi;
		int k;

		if (i >= flo && i < fhi)
			continue;	/* in flight at the instant */
		if (snap_u32(sn, g + 4ull * i, &gi))
			goto out;
		k = store_snap_read_page(sn, STORE_KEY(1, a / 4096 + i), page);
		if (k < 0)
			goto out;
		if (k == STORE_PAGE_NONE)
			memset(page, 0, sizeof(page));
		if (!incr_page_ok(page, i, gi)) {
			FAIL("churn: page %u of A in the snapshot is not its generation %u", i, gi);
			goto out;
		}
	}
	bad = 0;
out:
	store_snap_close(sn);
	return bad;
}

/* Tracked snapshots of a process that never stops writing (churn): each
 * one is pre-copied while it writes, then completed stopped; the process
 * is frozen the same way, melted, and checks that its memory is that of
 * one instant. */
static void run_churn(void)
{
	char dir[512], path[600], layout[200];
	char *argv[] = { (char *)workload, "churn", dir, NULL };
	struct dump_opts o = { .base = STORE_SNAP_NEWEST };
	struct dump_result r;
	pid_t pid;
	int s;

	snprintf(dir, sizeof(dir), "%s/churn", base);
	mkdir(dir, 0755);
	if (!(o.track = dump_track_new())) {
		FAIL("churn: no memory");
		return;
	}
	pid = spawn(argv);
	snprintf(path, sizeof(path), "%s/ready", dir);
	if (wait_file(path, 10))
		goto setup_failed;
	snprintf(path, sizeof(path), "%s/layout", dir);
	if (read_text(path, layout, sizeof(layout)) ||
	    dump_group(st, "churn", pid, &o, &r) || !dump_track_armed(o.track)) {
setup_failed:
		FAIL("churn: setup");
		goto kill;
	}
	for (int k = 1; k <= 8; k++) {
		usleep(30000);
		if (k == 8)
			o.freeze = true;
		if (dump_group(st, "churn", pid, &o, &r) || !r.tracked) {
			FAIL("churn: snapshot %d (tracked %d)", k, r.tracked);
			goto kill;
		}
		if (churn_consistent(layout)) {
			FAIL("churn: snapshot %d is not one instant", k);
			goto kill;
		}
		printf("  churn: %s %d: %llu pages written, %llu of them before the stop; "
		       "stopped %.2f ms; every page its generation PASS\n", k == 8 ? "freeze" : "snapshot", k,
		       (unsigned long long)r.pages, (unsigned long long)r.precopied,
		       r.stopped_ns / 1e6);
	}
	/* it stops writing and checks its memory */
	melt_and_check("churn", pid, dir, "melted, memory of one instant");
	goto out;
kill:
	kill(pid, SIGKILL);
	waitpid(pid, &s, 0);
out:
	dump_track_free(o.track);
}

/* ---- lazy melt: pages used every way before they came in ---- */

static int lazy_melt_slow(const char *name, pid_t pid)
{
	int ret;

	setenv("CRYO_FAULT", "pager.slow", 1);
	fault_reset();
	ret = melt_as(name, pid, true);
	unsetenv("CRYO_FAULT");
	fault_reset();
	return ret;
}

/* A lazy melt with a slowed pager, a snapshot tried while pages are out
 * (refused), the workload's checks; then an eager melt and its checks. */
static void run_lazily(const char *mode)
{
	char dir[512], path[600], res[256];
	char *argv[] = { (char *)workload, (char *)mode, dir, NULL };
	struct dump_opts so = { 0 };
	struct dump_result dr;
	pid_t pid;
	int s, ret;

	snprintf(dir, sizeof(dir), "%s/%s", base, mode);
	mkdir(dir, 0755);
	pid = spawn(argv);
	snprintf(path, sizeof(path), "%s/ready", dir);
	if (wait_file(path, 20) || freeze(mode, pid)) {
		FAIL("%s: setup", mode);
		kill(pid, SIGKILL);
		waitpid(pid, &s, 0);
		return;
	}
	waitpid(pid, &s, 0);
	for (int i = 0; i < 2; i++) {
		bool lazy = i == 0;

		snprintf(path, sizeof(path), "%s/lazy", dir);
		if (lazy)
			close(open(path, O_CREAT | O_WRONLY, 0644));
		else
			unlink(path);
		snprintf(path, sizeof(path), "%s/go", dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/result", dir);
		unlink(path);
		if (lazy ? lazy_melt_slow(mode, pid) : melt_as(mode, pid, false))
			return;
		if (lazy) {
			/* memory still out: a snapshot now would lose it */
			ret = dump_group(st, mode, pid, &so, &dr);
			if (ret != -EINPROGRESS)
				FAIL("%s: snapshot while paging in: %s, not EINPROGRESS", mode,
				     strerror(-ret));
			else
				printf("  %s: snapshot while paging in refused (EINPROGRESS) "
				       "PASS\n", mode);
		}
		snprintf(path, sizeof(path), "%s/go", dir);
		close(open(path, O_CREAT | O_WRONLY, 0644));
		if (workload_passed(dir, res, sizeof(res)))
			FAIL("%s: %s melt: %s", mode, lazy ? "lazy" : "eager", res);
		else
			printf("  %s: %s melt: %s", mode, lazy ? "lazy" : "eager", res);
		wait_gone(pid);
		if (pager_done(mode))
			return;
	}
}

static void run_lazyops(void)
{
	run_lazily("lazyops");
}

static void run_lazytree(void)
{
	run_lazily("lazytree");
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

static void run_incr_compared(void)
{
	run_incr("incr");
}

static void run_incr_tracked(void)
{
	run_incr("track");
}

/* Scenarios other than the workload modes: name (for the command line),
 * title, test. */
static const struct scenario {
	const char *name, *title;
	void (*run)(void);
} scenarios[] = {
	{ "sleep1", "sleep(1)", run_sleep },
	{ "python", "python3", run_python },
	{ "incr", "incremental", run_incr_compared },
	{ "churn", "tracked snapshots of a process that keeps writing", run_churn },
	{ "track", "incremental, tracked writes", run_incr_tracked },
	{ "faults", "faults", run_faults },
	{ "lazyops", "lazy melt: threads, fork, DONTNEED, mremap, munmap before pages came in",
	  run_lazyops },
	{ "lazytree", "lazy melt of a tree: every process faults at once, a fork while paging in",
	  run_lazytree },
};

int main(int argc, char **argv)
{
	static const char *modes[] = { "mem", "regs", "threads", "signals", "itimer", "sleepwl",
				       "files", "locks", "read", "sockets", "unixconn", "fdkinds", "fifo",
				       "inotify", "scmrights", "tree", "pidfd" };
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
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (selected(argc, argv, scenarios[i].name)) {
			printf("%s\n", scenarios[i].title);
			scenarios[i].run();
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
