/* restore_workload scenarios: process trees: what their processes share,
 * pidfds, a tree faulting on memory still out. */
#include "rw.h"

#include "pattern.h"

/* ---- tree: a process tree with what its processes share ----
 *
 *   root ── A   (root's group; reads pipe p1 from root, writes p2 to B)
 *        ├─ B   (its own process group) ── C (in B's group)
 *        ├─ D   (its own session; pdeath signal SIGUSR1)
 *        ├─ Z1  (a zombie: exited with 7, not waited for)
 *        └─ Z2  (a zombie: killed by SIGTERM)
 *
 * All hold one memfd open file (one offset), inherited from root. Bytes
 * are in flight in p1 and p2 and both ways on a socketpair between root
 * and A at the freeze. After melt each child checks
 * its parent, group, session and what it reads, and exits with 0 or the
 * number of the check that failed; root collects every exit status (which
 * also proves they are its children) and writes the result. */

enum { T_PPID = 10, T_PGID, T_SID, T_P1, T_P2, T_OFF, T_PDEATH, T_C, T_WRITE, T_SOCK };

#define T_MSG1	"in-flight-from-root"
#define T_MSG2	"in-flight-from-a"

static int tree_read(int fd, const char *want)
{
	char buf[64];
	size_t n = strlen(want), got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0)
			return 0;
		got += (size_t)r;
	}
	return !memcmp(buf, want, n);
}

static void tree_ready(const char *who)
{
	char name[32];

	snprintf(name, sizeof(name), "ready-%s", who);
	touch(name, NULL);
}

static int tree_is(pid_t want_ppid, pid_t want_pgid, pid_t want_sid)
{
	if (getppid() != want_ppid)
		return T_PPID;
	if (getpgid(0) != want_pgid)
		return T_PGID;
	if (getsid(0) != want_sid)
		return T_SID;
	return 0;
}

static void tree_wait_ready(const char *const *who, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char name[32];

		snprintf(name, sizeof(name), "ready-%s", who[i]);
		while (!exists(name))
			usleep(2000);
	}
}

void mode_tree(void)
{
	static const char *const kids[] = { "a", "b", "c", "d" };
	pid_t root = getpid(), a, b, d, z1, z2;
	siginfo_t si;
	int p1[2], p2[2], sp[2], mfd = (int)syscall(SYS_memfd_create, "tree-shared", 0);
	int st, bad = 0;
	char why[128] = "";

	if (mfd < 0 || pipe(p1) || pipe(p2) || socketpair(AF_UNIX, SOCK_STREAM, 0, sp))
		result(0, "setup");
	if (write(mfd, "R1", 2) != 2)
		result(0, "memfd write");
	a = fork();
	if (a == 0) {
		int r;

		close(p1[1]);
		close(p2[0]);
		close(sp[0]);
		if (write(p2[1], T_MSG2, strlen(T_MSG2)) < 0 || write(mfd, "A1", 2) != 2 ||
		    send(sp[1], "to-root", 7, 0) != 7)
			_exit(T_WRITE);
		tree_ready("a");
		wait_go();
		if ((r = tree_is(root, root, root)))
			_exit(r);
		if (!tree_read(p1[0], T_MSG1))
			_exit(T_P1);
		/* root wrote "R2" before "next": one offset */
		if (!tree_read(p1[0], "next") || lseek(mfd, 0, SEEK_CUR) != 6)
			_exit(T_OFF);
		/* a socketpair between root and A, queued both ways */
		if (!uc_recv(sp[1], "to-a") || send(sp[1], "a-ok", 4, 0) != 4)
			_exit(T_SOCK);
		_exit(0);
	}
	b = fork();
	if (b == 0) {
		pid_t c, me = getpid();
		int r;

		setpgid(0, 0);
		close(p1[1]);
		close(p2[1]);
		c = fork();
		if (c == 0) {
			tree_ready("c");
			wait_go();
			_exit(tree_is(me, me, root));
		}
		tree_ready("b");
		wait_go();
		if ((r = tree_is(root, getpid(), root)))
			_exit(r);
		if (!tree_read(p2[0], T_MSG2))
			_exit(T_P2);
		if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st))
			_exit(T_C);
		_exit(0);
	}
	d = fork();
	if (d == 0) {
		int sig = 0, r;

		setsid();
		prctl(PR_SET_PDEATHSIG, SIGUSR1);
		tree_ready("d");
		wait_go();
		if ((r = tree_is(root, getpid(), getpid())))
			_exit(r);
		if (prctl(PR_GET_PDEATHSIG, &sig) || sig != SIGUSR1)
			_exit(T_PDEATH);
		_exit(0);
	}
	z1 = fork();
	if (z1 == 0)
		_exit(7);
	z2 = fork();
	if (z2 == 0) {
		signal(SIGTERM, SIG_DFL);
		raise(SIGTERM);
		_exit(1);
	}
	if (waitid(P_PID, (id_t)z1, &si, WEXITED | WNOWAIT) ||
	    waitid(P_PID, (id_t)z2, &si, WEXITED | WNOWAIT))
		result(0, "zombies");
	close(p1[0]);
	close(p2[0]);
	close(p2[1]);
	close(sp[1]);
	if (write(p1[1], T_MSG1, strlen(T_MSG1)) < 0 || send(sp[0], "to-a", 4, 0) != 4)
		result(0, "pipe write");
	tree_wait_ready(kids, 4);
	touch("ready", NULL);
	wait_go();
	if (lseek(mfd, 0, SEEK_CUR) != 4)
		result(0, "shared offset %lld after melt, want 4", (long long)lseek(mfd, 0, SEEK_CUR));
	if (write(mfd, "R2", 2) != 2 || write(p1[1], "next", 4) != 4)
		result(0, "writes after melt");
	if (!tree_read(sp[0], "to-root") || !tree_read(sp[0], "a-ok"))
		result(0, "socketpair to child a after melt");
	for (int i = 0; i < 3; i++) {
		pid_t who = i == 0 ? a : i == 1 ? b : d;

		if (waitpid(who, &st, 0) != who) {
			snprintf(why, sizeof(why), "child %c: not our child after melt", "abd"[i]);
			bad = 1;
		} else if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			snprintf(why, sizeof(why), "child %c: failed check %d", "abd"[i],
				 WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
			bad = 1;
		}
	}
	if (bad)
		result(0, "%s", why);
	if (waitpid(z1, &st, 0) != z1 || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
		result(0, "zombie z1: not ours, or not exited with 7 (status %#x)", st);
	if (waitpid(z2, &st, 0) != z2 || !WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM)
		result(0, "zombie z2: not ours, or not killed by SIGTERM (status %#x)", st);
	result(1, NULL);
}

/* ---- pidfd: pidfds, and FIFOs between two processes ----
 * The root holds pidfds to its child k (non-blocking), to itself, to the
 * test (outside the group), to a child it reaped, and to a zombie child
 * z (exited with 7); k holds one to the root. FIFOs between root and k
 * have bytes in flight both ways. After melt: the pidfds of the group
 * name the same pids (poll, pidfd_send_signal, fdinfo); the outside and
 * the reaped one read as exited (readable, ESRCH, ECHILD); waitid on the
 * zombie's gives its 7, on k's gives the 42 k exits with once its own
 * checks passed. */

#define PF_TO_K		"to the child"
#define PF_TO_ROOT	"to the root"

enum { PF_OK = 42, PF_ROOT_GONE = 10, PF_FIFO, PF_WRITE };

static int pf_open(pid_t pid, unsigned flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

static int pf_signal(int fd)
{
	return (int)syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0);
}

/* fdinfo's Pid of a pidfd, or 0. */
long pf_pid(int fd)
{
	char path[64], line[128];
	long pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Pid:", 4))
			pid = strtol(line + 4, NULL, 10);
	if (f)
		fclose(f);
	return pid;
}

static int pf_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Exited and not ours: readable, no signal reaches it, no wait for it. */
static int pf_exited(int fd)
{
	siginfo_t si;

	return pf_readable(fd) && pf_signal(fd) == -1 && errno == ESRCH &&
	       waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) == -1 && errno == ECHILD;
}

/* k: pidfds to the root and to its younger sibling l (made after k at
 * melt: k's pidfd waits for it). */
static void pf_child(pid_t root, int to_k, int to_root, int l_pipe)
{
	int pr = pf_open(root, 0), pl;
	pid_t l = 0;

	if (read(l_pipe, &l, sizeof(l)) != sizeof(l) || (pl = pf_open(l, 0)) < 0 || pr < 0 ||
	    write(to_root, PF_TO_ROOT, strlen(PF_TO_ROOT)) < 0)
		_exit(PF_WRITE);
	close(l_pipe);
	tree_ready("k");
	wait_go();
	if (pf_pid(pr) != root || pf_signal(pr) || pf_pid(pl) != l || pf_signal(pl))
		_exit(PF_ROOT_GONE);
	if (!ff_reads(to_k, PF_TO_K, strlen(PF_TO_K)))
		_exit(PF_FIFO);
	while (!exists("exit-k"))
		usleep(2000);
	_exit(PF_OK);
}

/* The fifo at dir/name, both ends open (non-blocking opens do not wait). */
static void pf_fifo(const char *name, int *r, int *w)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
	if (mkfifo(p, 0600) || (*r = open(p, O_RDONLY | O_NONBLOCK)) < 0 ||
	    (*w = open(p, O_WRONLY | O_NONBLOCK)) < 0)
		result(0, "fifo %s", name);
}

void mode_pidfd(void)
{
	static const char *const kids[] = { "k", "l" };
	int tk_r, tk_w, tr_r, tr_w, pk, ps, po, pe, pz, st, lp[2];
	pid_t root = getpid(), k, l, e, z;
	siginfo_t si;

	pf_fifo("to-k.fifo", &tk_r, &tk_w);
	pf_fifo("to-root.fifo", &tr_r, &tr_w);
	if (pipe(lp))
		result(0, "pipe");
	k = fork();
	if (k == 0) {
		close(tk_w);
		close(tr_r);
		close(lp[1]);
		pf_child(root, tk_r, tr_w, lp[0]);
	}
	close(tk_r);
	close(tr_w);
	close(lp[0]);
	l = fork();
	if (l == 0) {
		tree_ready("l");
		wait_go();
		while (!exists("exit-k"))
			usleep(2000);
		_exit(0);
	}
	if (write(lp[1], &l, sizeof(l)) != sizeof(l))
		result(0, "pipe write");
	close(lp[1]);
	e = fork();
	if (e == 0)
		_exit(0);
	z = fork();
	if (z == 0)
		_exit(7);
	pk = pf_open(k, O_NONBLOCK);	/* PIDFD_NONBLOCK */
	ps = pf_open(root, 0);
	po = pf_open(getppid(), 0);
	pe = pf_open(e, 0);
	pz = pf_open(z, 0);
	if (pk < 0 || ps < 0 || po < 0 || pe < 0 || pz < 0 || waitpid(e, &st, 0) != e ||
	    waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT) ||
	    write(tk_w, PF_TO_K, strlen(PF_TO_K)) < 0)
		result(0, "setup pidfds");
	tree_wait_ready(kids, 2);
	touch("ready", NULL);
	wait_go();

	if (pf_pid(ps) != root || pf_signal(ps))
		result(0, "pidfd to itself: Pid %ld", pf_pid(ps));
	if (pf_pid(pk) != k || pf_signal(pk) || pf_readable(pk) || !(fcntl(pk, F_GETFL) & O_NONBLOCK))
		result(0, "pidfd to the child: Pid %ld, readable %d", pf_pid(pk), pf_readable(pk));
	if (!pf_exited(po))
		result(0, "pidfd to a process outside the group: not exited after melt");
	if (!pf_exited(pe))
		result(0, "pidfd to a reaped child: not exited after melt");
	if (waitid(P_PIDFD, (id_t)pz, &si, WEXITED) || si.si_pid != z || si.si_status != 7)
		result(0, "waitid on the zombie's pidfd: pid %d status %d", (int)si.si_pid,
		       si.si_status);
	if (!ff_reads(tr_r, PF_TO_ROOT, strlen(PF_TO_ROOT)))
		result(0, "fifo from the child: bytes in flight lost");
	touch("exit-k", NULL);
	{
		struct pollfd p = { .fd = pk, .events = POLLIN };

		if (poll(&p, 1, 5000) != 1 || waitid(P_PIDFD, (id_t)pk, &si, WEXITED) ||
		    si.si_pid != k || si.si_code != CLD_EXITED || si.si_status != PF_OK)
			result(0, "the child through its pidfd: exited %d (%d = its check failed)",
			       si.si_status, si.si_status);
	}
	if (waitpid(l, &st, 0) != l || !WIFEXITED(st) || WEXITSTATUS(st))
		result(0, "child l: status %#x", st);
	result(1, NULL);
}


/* ---- lazytree: a tree whose processes all fault on memory still out ----
 *
 *   root ── A ── C        each maps its own region after the fork (its
 *        └─ B             own pattern); all inherit "common" and "late"
 *
 * After a lazy melt with a slowed pager (DIR/lazy present), every process
 * checks its own region and common at once (each is still out: mincore),
 * then A forks F, which checks late, which nobody touched since the melt:
 * F's faults come through the userfaultfd the kernel gave it at the fork,
 * of which the pager must have given F its own copy (F waits for it).
 * Each exits with 0 or the number of its failed check; root collects them. */

#define LT_PAGES	2048u
#define LT_LEN		((size_t)LT_PAGES * 4096)

enum { LT_OWN = 20, LT_COMMON, LT_LATE, LT_FORK, LT_OUT, LT_NOCOPY };

/* How many userfaultfds this process holds. */
static int lt_uffds(void)
{
	char path[64], link[64];
	int n = 0;

	for (int fd = 0; fd < 4096; fd++) {
		ssize_t k;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		k = readlink(path, link, sizeof(link) - 1);
		if (k > 0) {
			link[k] = 0;
			n += !strcmp(link, "anon_inode:[userfaultfd]");
		}
	}
	return n;
}

static char *lt_common, *lt_late;

static size_t lt_resident(const void *p)
{
	unsigned char v[LT_PAGES];
	size_t n = 0;

	if (mincore((void *)p, LT_LEN, v))
		return LT_PAGES;
	for (size_t i = 0; i < LT_PAGES; i++)
		n += v[i] & 1;
	return n;
}

static char *lt_map(uint32_t seed)
{
	char *m = mmap(NULL, LT_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		result(0, "mmap");
	fill(m, LT_LEN, seed);
	return m;
}

/* After go: this process's checks; F too for A. 0 or the failed check. */
static int lt_check(const char *own, uint32_t seed, int forks)
{
	int lazy = exists("lazy"), st = 0;
	size_t r_own = lt_resident(own), r_common = lt_resident(lt_common);
	pid_t f;

	if (lazy && (r_own == LT_PAGES || r_common == LT_PAGES))
		return LT_OUT;	/* all in before use: nothing tested */
	if (!check(own, LT_LEN, seed))
		return LT_OWN;
	if (!check(lt_common, LT_LEN, 300))
		return LT_COMMON;
	if (!forks)
		return 0;
	f = fork();
	if (f == 0) {
		double t = now();

		if (lazy && lt_resident(lt_late) == LT_PAGES)
			_exit(LT_OUT);
		/* its parent's copy, inherited, and its own from the pager */
		while (lazy && lt_uffds() < 2)
			if (now() - t > 4)
				_exit(LT_NOCOPY);
			else
				usleep(1000);
		_exit(check(lt_late, LT_LEN, 301) ? 0 : LT_LATE);
	}
	if (f < 0 || waitpid(f, &st, 0) != f || !WIFEXITED(st))
		return LT_FORK;
	return WEXITSTATUS(st);
}

static __attribute__((noreturn)) void lt_child(const char *name, uint32_t seed, int forks,
					       pid_t (*more)(void))
{
	char *own = lt_map(seed);
	pid_t c = more ? more() : 0;
	int r, st;

	tree_ready(name);
	wait_go();
	r = lt_check(own, seed, forks);
	if (!r && c > 0 && (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)))
		r = WIFEXITED(st) ? WEXITSTATUS(st) : LT_FORK;
	_exit(r);
}

static pid_t lt_fork_c(void)
{
	pid_t c = fork();

	if (c == 0)
		lt_child("c", 203, 0, NULL);
	return c;
}

void mode_lazytree(void)
{
	static const char *const kids[] = { "a", "b", "c" };
	char *own;
	pid_t a, b;
	int st, r;

	/* mapped first, highest: the pager prefetches from low addresses up */
	lt_late = lt_map(301);
	lt_common = lt_map(300);
	a = fork();
	if (a == 0)
		lt_child("a", 201, 1, lt_fork_c);
	b = fork();
	if (b == 0)
		lt_child("b", 202, 0, NULL);
	own = lt_map(200);
	tree_wait_ready(kids, 3);
	touch("ready", NULL);
	wait_go();
	r = lt_check(own, 200, 0);
	if (r)
		result(0, "root: check %d failed", r);
	for (int i = 0; i < 2; i++) {
		pid_t who = i ? b : a;

		if (waitpid(who, &st, 0) != who || !WIFEXITED(st) || WEXITSTATUS(st))
			result(0, "child %c: check %d failed (status %#x)", "ab"[i],
			       WIFEXITED(st) ? WEXITSTATUS(st) : -1, st);
	}
	result(1, NULL);
}
