/* Unit tests: src/proc parsers of /proc text, on real processes this test
 * forks (whose state it sets up and therefore knows) and on malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc/auxv.h"
#include "proc/fds.h"
#include "proc/maps.h"
#include "proc/mountinfo.h"
#include "proc/mem.h"
#include "proc/procfs.h"
#include "proc/rlimits.h"
#include "proc/status.h"
#include "proc/timers.h"

/* A child that runs setup(), says "ready" on a pipe, and waits until the
 * parent closes its end; then exits 0. */
struct child {
	pid_t pid;
	int hold;       /* parent's write end: close to let the child exit */
};

static struct child start_child(void (*setup)(void))
{
	int ready[2], hold[2];
	struct child c;
	char b;

	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
	c.pid = fork();
	assert_true(c.pid >= 0);
	if (c.pid == 0) {
		close(ready[0]);
		close(hold[1]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setup)
			setup();
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		while (read(hold[0], &b, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	assert_int_equal(read(ready[0], &b, 1), 1);
	close(ready[0]);
	c.hold = hold[1];
	return c;
}

static void stop_child(struct child *c)
{
	int st;
	close(c->hold);
	assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- maps / smaps ---- */

static void *g_anon, *g_file, *g_madv[4];
static char g_delpath[64];

static void setup_maps(void)
{
	int fd;
	g_anon = mmap(NULL, 5 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	snprintf(g_delpath, sizeof(g_delpath), "/tmp/cryo-maps-%d", (int)getpid());
	fd = open(g_delpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 3 * 4096))
		_exit(3);
	g_file = mmap(NULL, 2 * 4096, PROT_READ, MAP_SHARED, fd, 4096);
	close(fd);
	unlink(g_delpath);
	for (int i = 0; i < 4; i++)
		g_madv[i] = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (madvise(g_madv[0], 4 * 4096, MADV_DONTDUMP) ||
	    madvise(g_madv[1], 4 * 4096, MADV_DONTFORK) ||
	    madvise(g_madv[2], 4 * 4096, MADV_WIPEONFORK) ||
	    madvise(g_madv[3], 4 * 4096, MADV_HUGEPAGE))
		_exit(4);
}

static void maps_of_child(void **state)
{
	struct child c;
	struct proc_maps m;
	const struct proc_vma *v;
	(void)state;

	/* Globals are set in the child before fork returns in the parent?
	 * No: the child sets them after fork, so compute the same addresses
	 * here by reading them back through the child's memory. */
	c = start_child(setup_maps);
	{
		void *addrs[6];
		size_t done;
		/* &g_anon is the same address in the child (fork). */
		assert_int_equal(proc_mem_read(c.pid, (uint64_t)(uintptr_t)&g_anon, &addrs[0],
					       sizeof(void *), &done), 0);
		assert_int_equal(proc_mem_read(c.pid, (uint64_t)(uintptr_t)&g_file, &addrs[1],
					       sizeof(void *), &done), 0);
		assert_int_equal(proc_mem_read(c.pid, (uint64_t)(uintptr_t)g_madv, &addrs[2],
					       4 * sizeof(void *), &done), 0);
		assert_int_equal(proc_maps_read(c.pid, true, &m), 0);
		assert_true(m.n > 5);

		v = proc_maps_find(&m, (uint64_t)(uintptr_t)addrs[0]);
		assert_non_null(v);
		assert_int_equal(v->start, (uint64_t)(uintptr_t)addrs[0]);
		assert_int_equal(v->end - v->start, 5 * 4096);
		assert_int_equal(v->prot, PROC_PROT_READ | PROC_PROT_WRITE);
		assert_false(v->shared);
		assert_string_equal(v->path, "");
		assert_true(v->has_smaps);
		assert_true(v->vmflags & PROC_VMF(RD));
		assert_true(v->vmflags & PROC_VMF(WR));

		v = proc_maps_find(&m, (uint64_t)(uintptr_t)addrs[1]);
		assert_non_null(v);
		assert_true(v->shared);
		assert_int_equal(v->prot, PROC_PROT_READ);
		assert_int_equal(v->pgoff, 4096);
		assert_true(v->deleted);
		assert_false(v->special);
		assert_string_equal(v->path, g_delpath[0] ? g_delpath : v->path);
		assert_true(v->inode != 0);

		v = proc_maps_find(&m, (uint64_t)(uintptr_t)addrs[2]);
		assert_non_null(v);
		assert_true(v->vmflags & PROC_VMF_DONTDUMP);
		v = proc_maps_find(&m, (uint64_t)(uintptr_t)addrs[3]);
		assert_non_null(v);
		assert_true(v->vmflags & PROC_VMF_DONTFORK);
		v = proc_maps_find(&m, (uint64_t)(uintptr_t)addrs[4]);
		assert_non_null(v);
		assert_true(v->vmflags & PROC_VMF_WIPEONFORK);
		v = proc_maps_find(&m, (uint64_t)(uintptr_t)addrs[5]);
		assert_non_null(v);
		assert_true(v->vmflags & PROC_VMF_HUGEPAGE);
		assert_false(v->vmflags & PROC_VMF_DONTDUMP);

		v = proc_maps_find_name(&m, "[stack]");
		assert_non_null(v);
		assert_true(v->special);
		assert_true(v->vmflags & PROC_VMF_GROWSDOWN);
		assert_non_null(proc_maps_find_name(&m, "[vdso]"));
		proc_maps_free(&m);
	}
	stop_child(&c);
}

static void maps_path_is_the_file(void **state)
{
	/* The deleted path: the child named its file after its own pid. */
	struct child c = start_child(setup_maps);
	struct proc_maps m;
	char want[64];
	bool found = false;
	(void)state;

	snprintf(want, sizeof(want), "/tmp/cryo-maps-%d", (int)c.pid);
	assert_int_equal(proc_maps_read(c.pid, false, &m), 0);
	for (size_t i = 0; i < m.n; i++)
		if (!strcmp(m.v[i].path, want)) {
			assert_true(m.v[i].deleted);
			assert_false(m.v[i].has_smaps);
			found = true;
		}
	assert_true(found);
	proc_maps_free(&m);
	stop_child(&c);
}

static void maps_synthetic(void **state)
{
	static const char text[] =
		"00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/with space (x)\n"
		"7ffd1000-7ffd3000 r--p 00000000 00:00 0                  [vvar]\n"
		"7ffd3000-7ffd4000 r--p 00000000 00:00 0                  [vvar_vclock]\n"
		"7ffd4000-7ffd6000 r-xp 00000000 00:00 0                  [vdso]\n"
		"7ffd6000-7ffd7000 rw-s 00000000 00:01 77                 /memfd:x (deleted)\n"
		"7ffd8000-7ffd9000 ---p 00000000 00:00 0                  [brand_new_thing]\n"
		"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]\n";
	struct proc_maps m;
	(void)state;

	assert_int_equal(proc_maps_parse(text, sizeof(text) - 1, &m), 0);
	assert_int_equal(m.n, 7);
	assert_string_equal(m.v[0].path, "/usr/bin/with space (x)");
	assert_int_equal(m.v[0].dev_major, 8);
	assert_int_equal(m.v[0].dev_minor, 2);
	assert_int_equal(m.v[0].inode, 173521);
	assert_true(m.v[2].special);
	assert_string_equal(m.v[2].path, "[vvar_vclock]");
	assert_true(m.v[4].deleted && m.v[4].shared);
	assert_string_equal(m.v[4].path, "/memfd:x");
	assert_string_equal(m.v[5].path, "[brand_new_thing]");
	assert_int_equal(m.v[5].prot, 0);
	assert_int_equal(m.v[6].start, 0xffffffffff600000ull);
	assert_ptr_equal(proc_maps_find_name(&m, "[vvar_vclock]"), &m.v[2]);
	proc_maps_free(&m);
}

static void maps_malformed(void **state)
{
	static const char *bad[] = {
		"00400000-00452000 r-xq 00000000 08:02 1 /x\n",       /* perms */
		"00400000 r-xp 00000000 08:02 1 /x\n",                /* no end */
		"00452000-00400000 r-xp 00000000 08:02 1 /x\n",       /* end < start */
		"00400000-00452000 r-xp 00000000 0802 1 /x\n",        /* dev */
		"00400000-00452000 r-xp 00000000 08:02 x /x\n",       /* inode */
		"00400000-00452000 r-xp 00000000 08:02 1/x\n",        /* glued path */
		"Rss: 4 kB\n",                                        /* attr first */
		"00400000-00452000 r-xp 00000000 08:02 1 /x\nVmFlags: rd w\n",
		"00400000-00452000 r-xp 00000000 08:02 1 /x\nRss: lots kB\n",
		"00400000-00452000 r-xp 00000000 08:02 1 /x\n00401000-00402000 r-xp 0 0:0 0\n",
		"1ffffffffffffffff-2 r-xp 0 0:0 0\n",                /* overflow */
	};
	struct proc_maps m;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = proc_maps_parse(bad[i], strlen(bad[i]), &m);
		if (r != -EINVAL)
			fail_msg("case %zu: got %d", i, r);
	}
	/* A NUL inside a line. */
	assert_int_equal(proc_maps_parse("0-1000 r-xp 0 0:0 0 a\0b\n", 24, &m), -EINVAL);
	/* Empty input is an empty map. */
	assert_int_equal(proc_maps_parse("", 0, &m), 0);
	assert_int_equal(m.n, 0);
	proc_maps_free(&m);
}

/* ---- status / stat ---- */

static void handler(int sig)
{
	(void)sig;
}

static void setup_status(void)
{
	sigset_t s;
	struct sigaction sa = { .sa_handler = handler };

	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGRTMIN + 2);
	sigprocmask(SIG_BLOCK, &s, NULL);
	signal(SIGUSR2, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	raise(SIGUSR1);                      /* stays pending: blocked */
	prctl(PR_SET_NAME, "a) b (c");
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	umask(027);
}

static uint64_t bit(int sig)
{
	return 1ULL << (sig - 1);
}

static void status_of_child(void **state)
{
	struct child c = start_child(setup_status);
	struct proc_status st;
	(void)state;

	assert_int_equal(proc_status_read(c.pid, 0, &st), 0);
	assert_int_equal(st.pid, c.pid);
	assert_int_equal(st.tgid, c.pid);
	assert_int_equal(st.ppid, getpid());
	assert_int_equal(st.uid[0], getuid());
	assert_int_equal(st.uid[1], geteuid());
	assert_int_equal(st.gid[0], getgid());
	assert_int_equal(st.threads, 1);
	assert_int_equal(st.sig_blk, bit(SIGUSR1) | bit(SIGRTMIN + 2));
	assert_true(st.sig_ign & bit(SIGUSR2));
	assert_true(st.sig_cgt & bit(SIGTERM));
	assert_false(st.sig_cgt & bit(SIGUSR2));
	/* raise() targets the thread: per-thread pending, not shared. */
	assert_int_equal(st.sig_pnd, bit(SIGUSR1));
	assert_int_equal(st.shd_pnd, 0);
	assert_int_equal(st.no_new_privs, 1);
	assert_int_equal(st.seccomp, 0);
	assert_true(st.has_umask);
	assert_int_equal(st.umask, 027);
	assert_true(st.cap_bnd != 0);
	/* Same file through the task directory. */
	assert_int_equal(proc_status_read(c.pid, c.pid, &st), 0);
	assert_int_equal(st.pid, c.pid);
	stop_child(&c);
}

static void stat_of_child(void **state)
{
	struct child c = start_child(setup_status);
	struct proc_stat st;
	char cmdline[4096], *own;
	size_t ownlen;
	uint64_t code = (uint64_t)(uintptr_t)&stat_of_child;
	(void)state;

	assert_int_equal(proc_stat_read(c.pid, 0, &st), 0);
	assert_int_equal(st.pid, c.pid);
	assert_string_equal(st.comm, "a) b (c");
	assert_true(st.state == 'S' || st.state == 'R');
	assert_int_equal(st.f[PROC_STAT_PPID], getpid());
	assert_int_equal(st.f[PROC_STAT_NUM_THREADS], 1);
	assert_true((uint64_t)st.f[PROC_STAT_START_CODE] <= code);
	assert_true(code < (uint64_t)st.f[PROC_STAT_END_CODE]);
	assert_true(st.f[PROC_STAT_START_DATA] < st.f[PROC_STAT_END_DATA]);
	assert_true(st.f[PROC_STAT_START_BRK] > 0);
	assert_true(st.f[PROC_STAT_ARG_START] < st.f[PROC_STAT_ARG_END]);
	assert_true(st.f[PROC_STAT_ENV_START] < st.f[PROC_STAT_ENV_END]);
	/* arg_start..arg_end in the child holds our own command line. */
	assert_int_equal(proc_read_file(0, "cmdline", &own, &ownlen), 0);
	assert_int_equal((size_t)(st.f[PROC_STAT_ARG_END] - st.f[PROC_STAT_ARG_START]), ownlen);
	assert_true(ownlen <= sizeof(cmdline));
	assert_int_equal(proc_mem_read(c.pid, (uint64_t)st.f[PROC_STAT_ARG_START], cmdline,
				       ownlen, NULL), 0);
	assert_memory_equal(cmdline, own, ownlen);
	free(own);
	stop_child(&c);
}

/* NSpid, NSpgid, NSsid: one id per pid namespace level, the same number
 * of levels on each line. Our own status with its NS lines replaced. */
static void status_ns_lines(void **state)
{
	static const char ns2[] = "NSpid:\t4242\t17\nNSpgid:\t4200\t1\nNSsid:\t4200\t1\n";
	static const char bad[] = "NSpid:\t4242\t17\nNSpgid:\t4200\n";
	struct proc_status st;
	char *own, *text, *p;
	size_t len, n = 0;
	(void)state;

	assert_int_equal(proc_read_file(0, "status", &own, &len), 0);
	assert_int_equal(proc_status_parse(own, len, &st), 0);
	assert_true(st.ns_levels >= 1);
	assert_int_equal(st.ns_pid[st.ns_levels - 1], getpid());
	assert_int_equal(st.ns_sid[st.ns_levels - 1], getsid(0));
	text = malloc(len + sizeof(ns2) + sizeof(bad));
	assert_non_null(text);
	for (p = own; *p;) {
		size_t l = strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n');

		if (strncmp(p, "NS", 2)) {
			memcpy(text + n, p, l);
			n += l;
		}
		p += l;
	}
	memcpy(text + n, ns2, sizeof(ns2) - 1);
	assert_int_equal(proc_status_parse(text, n + sizeof(ns2) - 1, &st), 0);
	assert_int_equal(st.ns_levels, 2);
	assert_int_equal(st.ns_pid[0], 4242);
	assert_int_equal(st.ns_pid[1], 17);
	assert_int_equal(st.ns_pgid[1], 1);
	assert_int_equal(st.ns_sid[0], 4200);
	memcpy(text + n, bad, sizeof(bad) - 1);
	assert_int_equal(proc_status_parse(text, n + sizeof(bad) - 1, &st), -EINVAL);
	free(text);
	free(own);
}

static void status_stat_malformed(void **state)
{
	struct proc_status ss;
	struct proc_stat st;
	static const char good_tail[] = " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23"
		" 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49";
	char buf[512];
	(void)state;

	assert_int_equal(proc_status_parse("Name:\tx\nno colon here\n", 22, &ss), -EINVAL);
	assert_int_equal(proc_status_parse("Pid:\t-3\n", 8, &ss), -EINVAL);
	assert_int_equal(proc_status_parse("SigBlk:\tzz\n", 11, &ss), -EINVAL);
	assert_int_equal(proc_status_parse("Uid:\t0 0 0\n", 11, &ss), -EINVAL);
	assert_int_equal(proc_status_parse("Name:\tx\n", 8, &ss), -ENODATA);

	snprintf(buf, sizeof(buf), "12 (a) (b) c)%s\n", good_tail);
	assert_int_equal(proc_stat_parse(buf, strlen(buf), &st), 0);
	assert_string_equal(st.comm, "a) (b) c");
	/* good_tail puts n - 3 in field n. */
	assert_int_equal(st.nfields, 52);
	assert_int_equal(st.f[PROC_STAT_ENV_END], 48);
	assert_int_equal(st.f[PROC_STAT_EXIT_CODE], 49);
	assert_int_equal(st.f[PROC_STAT_PPID], 1);
	snprintf(buf, sizeof(buf), "12 (a%s\n", good_tail);          /* no ')' */
	assert_int_equal(proc_stat_parse(buf, strlen(buf), &st), -EINVAL);
	snprintf(buf, sizeof(buf), "12 (a) S 1 2 3\n");               /* too few */
	assert_int_equal(proc_stat_parse(buf, strlen(buf), &st), -EINVAL);
	snprintf(buf, sizeof(buf), "12 (a)%s x\n", good_tail);        /* not a number */
	assert_int_equal(proc_stat_parse(buf, strlen(buf), &st), -EINVAL);
	snprintf(buf, sizeof(buf), "12 (a)%s  1\n", good_tail);       /* two blanks */
	assert_int_equal(proc_stat_parse(buf, strlen(buf), &st), -EINVAL);
	assert_int_equal(proc_stat_parse("", 0, &st), -EINVAL);
	/* Found by the fuzzer: digits up to the very end of an unterminated
	 * buffer were read past it (ASan build catches a regression). */
	{
		char *exact = malloc(3);
		assert_non_null(exact);
		memcpy(exact, "\t16", 3);
		assert_int_equal(proc_stat_parse(exact, 3, &st), -EINVAL);
		memcpy(exact, "123", 3);
		assert_int_equal(proc_stat_parse(exact, 3, &st), -EINVAL);
		free(exact);
	}
}

/* ---- limits ---- */

static void setup_limits(void)
{
	struct rlimit nofile = { 123, 456 }, core = { RLIM_INFINITY, RLIM_INFINITY };
	struct rlimit stack = { 1 << 20, 1 << 22 };
	if (setrlimit(RLIMIT_NOFILE, &nofile) || setrlimit(RLIMIT_STACK, &stack))
		_exit(5);
	(void)setrlimit(RLIMIT_CORE, &core);  /* may be refused: checked below */
}

static void limits_of_child(void **state)
{
	struct child c = start_child(setup_limits);
	struct proc_rlimits rl;
	struct rlimit core;
	(void)state;

	assert_int_equal(proc_rlimits_read(c.pid, &rl), 0);
	assert_int_equal(rl.seen, (1u << PROC_RLIM_COUNT) - 1);
	assert_int_equal(rl.unknown, 0);
	assert_int_equal(rl.lim[RLIMIT_NOFILE].rlim_cur, 123);
	assert_int_equal(rl.lim[RLIMIT_NOFILE].rlim_max, 456);
	assert_int_equal(rl.lim[RLIMIT_STACK].rlim_cur, 1 << 20);
	assert_int_equal(rl.lim[RLIMIT_STACK].rlim_max, 1 << 22);
	/* The child inherited ours if raising the core limit was refused. */
	assert_int_equal(prlimit(c.pid, RLIMIT_CORE, NULL, &core), 0);
	assert_true(rl.lim[RLIMIT_CORE].rlim_cur == core.rlim_cur);
	stop_child(&c);

	assert_int_equal(proc_rlimits_parse("Limit x\nMax open files  12 x\n", 29, &rl), -EINVAL);
	assert_int_equal(proc_rlimits_parse("Limit x\nMin open files 1 2\n", 27, &rl), -EINVAL);
	assert_int_equal(proc_rlimits_parse("Limit x\nMax open files 9 2\n", 27, &rl), -EINVAL);
	assert_int_equal(proc_rlimits_parse("Limit x\nMax new thing 1 2\n", 26, &rl), -EINVAL);
	assert_int_equal(proc_rlimits_parse("Limit x\nMax open files 7 8\nMax new thing 1 2\n",
					    45, &rl), 0);
	assert_int_equal(rl.lim[RLIMIT_NOFILE].rlim_max, 8);
	assert_int_equal(rl.unknown, 1);
}

/* ---- auxv ---- */

static void auxv_self(void **state)
{
	struct proc_auxv a;
	uint64_t v;
	uint64_t raw[6] = { AT_PAGESZ, 4096, AT_UID, 0, 0, 0 };
	(void)state;

	assert_int_equal(proc_auxv_read(getpid(), &a), 0);
	assert_int_equal(proc_auxv_get(&a, AT_PAGESZ, &v), 0);
	assert_int_equal(v, getauxval(AT_PAGESZ));
	assert_int_equal(proc_auxv_get(&a, AT_ENTRY, &v), 0);
	assert_int_equal(v, getauxval(AT_ENTRY));
	assert_int_equal(proc_auxv_get(&a, AT_SYSINFO_EHDR, &v), 0);
	assert_int_equal(v, getauxval(AT_SYSINFO_EHDR));

	assert_int_equal(proc_auxv_parse(raw, sizeof(raw), &a), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(proc_auxv_parse(raw, 40, &a), -EINVAL);   /* not 16-aligned */
	assert_int_equal(proc_auxv_parse(raw, 32, &a), -EINVAL);   /* no AT_NULL */
}

/* ---- task list ---- */

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void setup_threads(void)
{
	pthread_t t;
	for (int i = 0; i < 3; i++)
		if (pthread_create(&t, NULL, sleeper, NULL))
			_exit(6);
}

static void tasks_of_child(void **state)
{
	struct child c = start_child(setup_threads);
	pid_t *tids;
	size_t n;
	(void)state;

	assert_int_equal(proc_task_list(c.pid, &tids, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(tids[0], c.pid);
	for (size_t i = 1; i < n; i++)
		assert_true(tids[i] > tids[i - 1]);
	free(tids);
	assert_int_equal(proc_task_list(-5, &tids, &n), -ENOENT);
	stop_child(&c);
}

/* ---- fds / fdinfo ---- */

static void setup_fds(void)
{
	int fd = open("/etc/hostname", O_RDONLY);
	int fd2 = open("/dev/null", O_WRONLY | O_APPEND);
	int efd = eventfd(42, EFD_NONBLOCK);
	if (fd < 0 || fd2 < 0 || efd < 0)
		_exit(7);
	if (dup2(fd, 100) != 100 || dup2(efd, 101) != 101 || dup2(fd2, 102) != 102)
		_exit(7);
	if (lseek(100, 3, SEEK_SET) != 3)
		_exit(7);
}

static void fds_of_child(void **state)
{
	struct child c = start_child(setup_fds);
	struct proc_fds f;
	struct proc_fdinfo fi;
	bool seen100 = false;
	(void)state;

	assert_int_equal(proc_fds_list(c.pid, &f), 0);
	for (size_t i = 0; i < f.n; i++) {
		if (i)
			assert_true(f.v[i].fd > f.v[i - 1].fd);
		if (f.v[i].fd == 100) {
			assert_string_equal(f.v[i].target, "/etc/hostname");
			seen100 = true;
		}
		if (f.v[i].fd == 101)
			assert_string_equal(f.v[i].target, "anon_inode:[eventfd]");
	}
	assert_true(seen100);
	proc_fds_free(&f);

	assert_int_equal(proc_fdinfo_read(c.pid, 100, &fi), 0);
	assert_int_equal(fi.pos, 3);
	assert_int_equal(fi.flags & O_ACCMODE, O_RDONLY);
	assert_true(fi.has_mnt_id && fi.has_ino);
	proc_fdinfo_free(&fi);
	assert_int_equal(proc_fdinfo_read(c.pid, 102, &fi), 0);
	assert_true(fi.flags & O_APPEND);
	assert_int_equal(fi.flags & O_ACCMODE, O_WRONLY);
	proc_fdinfo_free(&fi);
	assert_int_equal(proc_fdinfo_read(c.pid, 101, &fi), 0);
	assert_non_null(proc_fdinfo_get(&fi, "eventfd-count"));
	assert_int_equal(strtoull(proc_fdinfo_get(&fi, "eventfd-count"), NULL, 16), 42);
	assert_true(fi.flags & O_NONBLOCK);
	proc_fdinfo_free(&fi);
	stop_child(&c);

	assert_int_equal(proc_fdinfo_parse("flags:\t02\n", 10, &fi), -EINVAL);  /* no pos */
	assert_int_equal(proc_fdinfo_parse("pos:\t1\nflags:\t09\n", 17, &fi), -EINVAL);
	assert_int_equal(proc_fdinfo_parse("pos:\t1\nflags:\t0\nodd line\n", 25, &fi), -EINVAL);
}

/* ---- timers ---- */

static void setup_timers(void)
{
	struct sigevent a = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
	struct sigevent b = { .sigev_notify = SIGEV_NONE };
	timer_t ta, tb;

	signal(SIGUSR1, SIG_IGN);
	a.sigev_value.sival_ptr = (void *)0x1234;
	if (timer_create(CLOCK_MONOTONIC, &a, &ta) || timer_create(CLOCK_REALTIME, &b, &tb))
		_exit(8);
}

static void timers_of_child(void **state)
{
	struct child c = start_child(setup_timers);
	struct proc_timers t;
	(void)state;

	assert_int_equal(proc_timers_read(c.pid, &t), 0);
	assert_int_equal(t.n, 2);
	for (size_t i = 0; i < t.n; i++) {
		if (t.t[i].notify == SIGEV_SIGNAL) {
			assert_int_equal(t.t[i].signo, SIGUSR1);
			assert_int_equal(t.t[i].sigev_value, 0x1234);
			assert_int_equal(t.t[i].clock_id, CLOCK_MONOTONIC);
			assert_int_equal(t.t[i].notify_pid, c.pid);
		} else {
			assert_int_equal(t.t[i].notify, SIGEV_NONE);
			assert_int_equal(t.t[i].clock_id, CLOCK_REALTIME);
		}
	}
	assert_true(t.t[0].notify != t.t[1].notify);
	proc_timers_free(&t);
	stop_child(&c);

	assert_int_equal(proc_timers_parse("signal: 1/0\n", 12, &t), -EINVAL);  /* before ID */
	assert_int_equal(proc_timers_parse("ID: 0\nnotify: smoke/pid.1\n", 27, &t), -EINVAL);
	assert_int_equal(proc_timers_parse("ID: 0\nsignal: 14/zz\n", 20, &t), -EINVAL);
	assert_int_equal(proc_timers_parse("ID: 0\nnotify: signal/tid.77\n", 28, &t), 0);
	assert_int_equal(t.t[0].thread_id, 1);
	assert_int_equal(t.t[0].notify_pid, 77);
	proc_timers_free(&t);
}

static void long_line_rejected(void **state)
{
	size_t n = 20000;
	char *buf = malloc(n);
	struct proc_maps m;
	struct proc_status ss;
	struct proc_fdinfo fi;
	(void)state;

	assert_non_null(buf);
	memset(buf, 'a', n);
	memcpy(buf, "Name:", 5);
	assert_int_equal(proc_maps_parse(buf, n, &m), -EINVAL);
	assert_int_equal(proc_status_parse(buf, n, &ss), -EINVAL);
	assert_int_equal(proc_fdinfo_parse(buf, n, &fi), -EINVAL);
	free(buf);
}

/* mountinfo: the mounts of one device, whole ones first, escapes undone. */
static void mountinfo_synthetic(void **state)
{
	static const char text[] =
		"22 27 0:21 / /proc rw,relatime - proc proc rw\n"
		"40 27 254:0 /srv/sub /mnt/b\\040ind rw shared:1 - ext4 /dev/vda rw\n"
		"27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
		"41 27 254:1 / /other rw - ext4 /dev/vdb rw\n";
	struct proc_mounts m;
	(void)state;

	assert_int_equal(proc_mountinfo_parse(text, strlen(text), 254, 0, &m), 0);
	assert_int_equal(m.n, 2);
	assert_string_equal(m.v[0].point, "/");
	assert_string_equal(m.v[0].root, "/");
	assert_string_equal(m.v[1].point, "/mnt/b ind");
	assert_string_equal(m.v[1].root, "/srv/sub");
	proc_mounts_free(&m);
	assert_int_equal(proc_mountinfo_parse(text, strlen(text), 9, 9, &m), 0);
	assert_int_equal(m.n, 0);
	proc_mounts_free(&m);
	proc_mounts_free(NULL);
}

static void mountinfo_malformed(void **state)
{
	static const char *const bad[] = {
		"27 1 254:0 / / rw\n",			/* no " - " separator */
		"27 1 254 / / rw - ext4 x rw\n",	/* no minor */
		"27 1 254:0 /\\04 / rw - ext4 x rw\n",	/* short escape */
		"27 1 254:0 /\\400 / rw - ext4 x rw\n",	/* escape past a byte */
		"27 1 254:0\n",				/* no root, no point */
		"x 1 254:0 / / rw - ext4 x rw\n",
	};
	struct proc_mounts m;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(proc_mountinfo_parse(bad[i], strlen(bad[i]), 254, 0, &m), -EINVAL);
}

/* This process's own root file system is among its mounts. */
static void mountinfo_self(void **state)
{
	struct proc_mounts m;
	struct stat st;
	int found = 0;
	(void)state;

	assert_int_equal(stat("/", &st), 0);
	assert_int_equal(proc_mounts_of_dev(0, major(st.st_dev), minor(st.st_dev), &m), 0);
	for (size_t i = 0; i < m.n; i++)
		found |= !strcmp(m.v[i].point, "/");
	assert_true(found);
	proc_mounts_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(maps_of_child),
		cmocka_unit_test(maps_path_is_the_file),
		cmocka_unit_test(maps_synthetic),
		cmocka_unit_test(maps_malformed),
		cmocka_unit_test(mountinfo_synthetic),
		cmocka_unit_test(mountinfo_malformed),
		cmocka_unit_test(mountinfo_self),
		cmocka_unit_test(status_of_child),
		cmocka_unit_test(stat_of_child),
		cmocka_unit_test(status_stat_malformed),
		cmocka_unit_test(status_ns_lines),
		cmocka_unit_test(limits_of_child),
		cmocka_unit_test(auxv_self),
		cmocka_unit_test(tasks_of_child),
		cmocka_unit_test(fds_of_child),
		cmocka_unit_test(timers_of_child),
		cmocka_unit_test(long_line_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
