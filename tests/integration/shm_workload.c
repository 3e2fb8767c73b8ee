/* zdtm-style workload: processes sharing memory every way there is.
 *
 *   shm_workload DIR NPROC ROUNDS KEY     the workload (NPROC 1 or 3)
 *   shm_workload attach SHMID             attach a segment and sleep (an
 *                                         outsider, for the refusal tests)
 *   shm_workload make KEY BYTES           make a segment, print its id
 *
 * The root sets up, before it forks its NPROC-1 children:
 *   anon    16 pages MAP_SHARED|MAP_ANONYMOUS; the root maps the same
 *           object twice more through /proc/self/map_files (whole, and
 *           from page 4): three mappings of one object in one process;
 *           child 2 makes page 8 of its mapping read-only (split)
 *   memfd   8 pages of a memfd, MAP_SHARED; the fd stays open in the root
 *           and child 1, child 2 closes it (a mapping without an fd);
 *           child 1 also maps it MAP_PRIVATE and writes page 5 (its own)
 *   deleted 8 pages of a file, MAP_SHARED, then unlinked and closed; the
 *           root also maps it MAP_PRIVATE and writes page 6 (its own)
 *   file    8 pages of a file, MAP_SHARED (the page cache shares it)
 *   sysv    a System V segment of 8 pages + 100 bytes under KEY, attached
 *           by the root before the fork (inherited) and a second time by
 *           child 1
 *   gone    a System V segment attached before the fork, then IPC_RMID'd
 *           (removed, still attached by all)
 * Page 0 of each region holds slots: slot[round][process]. Pages 1.. hold
 * a pattern that must never change.
 *
 * Round 0 (set-up): each process writes its slot of round 0 in every
 * region and waits until it sees every other's: the memory is one. Then
 * DIR/ready-I. Round N (after DIR/go-N, made by the test once the group
 * was frozen and melted): each process checks the pattern, that the slots
 * of round N-1 are what every process wrote before the freeze, writes
 * its slot of round N and waits (10 s at most) to see every other's --
 * only one object shared by all passes that, not copies -- and checks the
 * rest (the fd and the mapping of the memfd are one file, the private
 * pages are private, segment ids and attach counts as before, the removed
 * segment still removed). It writes DIR/res-N-I: PASS or FAIL: why.
 *
 * While it waits for go-N, DIR/scribble-N makes each process overwrite
 * its slot of round N-1 (after a snapshot, before a kill -9): a melt from
 * the snapshot must bring the old values back, in a segment that stayed
 * in the kernel too. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"
#include "rw.h"

#define PG		4096ul
#define MAXR		16	/* rounds */
#define MAXP		4	/* processes */
#define SYSV_SIZE	(8 * PG + 100)

enum { R_ANON, R_MEMFD, R_DELETED, R_FILE, R_SYSV, R_GONE, NREG };
static const char *const rname[NREG] = { "anon", "memfd", "deleted", "file", "sysv", "gone" };
static const size_t rpages[NREG] = { 16, 8, 8, 8, 9, 4 };
/* after a snapshot, written over before the kill -9 (not the file: it is
 * not the snapshot's to give back) */
static const int scribbled[NREG] = { 1, 1, 1, 0, 1, 1 };

static int nproc, me;
static uint8_t *reg[NREG];
static uint8_t *alias_whole, *alias_from4;	/* the root's extra views of anon */
static uint8_t *memfd_priv, *deleted_priv;	/* private copies (child 1, root) */
static uint8_t *sysv_again;			/* child 1's second attach */
static int memfd_fd = -1, sysv_id, gone_id;
static char why[400];

static void path_of(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", dir, name);
}

static int bad(const char *fmt, ...)
{
	va_list ap;

	if (!why[0]) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static volatile uint32_t *slot(uint8_t *base, int round, int p)
{
	return (volatile uint32_t *)(base + (size_t)round * 64 + (size_t)p * 4);
}

static uint32_t marker(int round, int p)
{
	return 0x5e000000u | (uint32_t)round << 8 | (uint32_t)p;
}

/* Pattern bytes of page i of region r (pages 1..; a short last page for
 * sysv). */
static size_t pat_len(int r, size_t i)
{
	return r == R_SYSV && i == rpages[r] - 1 ? SYSV_SIZE % PG : PG;
}

static void put_pattern(uint8_t *m, int r)
{
	for (size_t i = 1; i < rpages[r]; i++)
		for (size_t w = 0; w < pat_len(r, i) / 4; w++)
			((uint32_t *)(m + i * PG))[w] = pat(i * 1024 + w, (uint32_t)r + 100);
}

static int pattern_ok(const uint8_t *m, int r, size_t skip_page)
{
	for (size_t i = 1; i < rpages[r]; i++) {
		if (i == skip_page)
			continue;
		for (size_t w = 0; w < pat_len(r, i) / 4; w++)
			if (((const uint32_t *)(m + i * PG))[w] != pat(i * 1024 + w, (uint32_t)r + 100))
				return bad("%s: pattern page %zu word %zu changed", rname[r], i, w);
	}
	return 0;
}

/* ---- set-up ---- */

static uint8_t *map_file(const char *name, size_t pages, int flags, int *keep_fd)
{
	char p[4096];
	int fd;
	uint8_t *m;

	path_of(p, sizeof(p), name);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)(pages * PG)))
		return NULL;
	m = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (keep_fd)
		*keep_fd = fd;
	else
		close(fd);
	return m == MAP_FAILED ? NULL : m;
}

static uint8_t *map_again(const uint8_t *m, size_t len, size_t map_len, off_t off, int flags)
{
	char p[128];
	uint8_t *a;
	int fd;

	snprintf(p, sizeof(p), "/proc/self/map_files/%lx-%lx", (unsigned long)m,
		 (unsigned long)(m + len));
	fd = open(p, O_RDWR);
	if (fd < 0)
		return NULL;
	a = mmap(NULL, map_len, PROT_READ | PROT_WRITE, flags, fd, off);
	close(fd);
	return a == MAP_FAILED ? NULL : a;
}

static int setup(int key)
{
	char p[4096];
	int dfd;

	reg[R_ANON] = mmap(NULL, rpages[R_ANON] * PG, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (reg[R_ANON] == MAP_FAILED)
		return bad("mmap anon");
	memfd_fd = memfd_create("shm-workload", MFD_ALLOW_SEALING);
	if (memfd_fd < 0 || ftruncate(memfd_fd, (off_t)(rpages[R_MEMFD] * PG)))
		return bad("memfd");
	reg[R_MEMFD] = mmap(NULL, rpages[R_MEMFD] * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
			    memfd_fd, 0);
	reg[R_DELETED] = map_file("deleted", rpages[R_DELETED], MAP_SHARED, &dfd);
	reg[R_FILE] = map_file("file", rpages[R_FILE], MAP_SHARED, NULL);
	if (reg[R_MEMFD] == MAP_FAILED || !reg[R_DELETED] || !reg[R_FILE])
		return bad("mmap memfd/deleted/file");
	sysv_id = shmget(key, SYSV_SIZE, IPC_CREAT | IPC_EXCL | 0640);
	gone_id = shmget(IPC_PRIVATE, rpages[R_GONE] * PG, IPC_CREAT | 0600);
	if (sysv_id < 0 || gone_id < 0)
		return bad("shmget: %s", strerror(errno));
	reg[R_SYSV] = shmat(sysv_id, NULL, 0);
	reg[R_GONE] = shmat(gone_id, NULL, 0);
	if (reg[R_SYSV] == (void *)-1 || reg[R_GONE] == (void *)-1)
		return bad("shmat: %s", strerror(errno));
	for (int r = 0; r < NREG; r++)
		put_pattern(reg[r], r);
	/* the deleted file's private copy reads the pattern before it is gone */
	deleted_priv = mmap(NULL, rpages[R_DELETED] * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, dfd, 0);
	close(dfd);
	path_of(p, sizeof(p), "deleted");
	if (deleted_priv == MAP_FAILED || unlink(p))
		return bad("deleted file");
	alias_whole = map_again(reg[R_ANON], rpages[R_ANON] * PG, rpages[R_ANON] * PG, 0, MAP_SHARED);
	alias_from4 = map_again(reg[R_ANON], rpages[R_ANON] * PG, 8 * PG, 4 * PG, MAP_SHARED);
	if (!alias_whole || !alias_from4)
		return bad("aliases of anon");
	snprintf(p, sizeof(p), "%lx %lx %lx %d %d\n", (unsigned long)reg[R_ANON],
		 (unsigned long)reg[R_MEMFD], (unsigned long)reg[R_SYSV], sysv_id, gone_id);
	touch("layout", p);
	return 0;
}

/* What each process does for itself once it exists. */
static int setup_own(void)
{
	if (me == 1) {
		memfd_priv = mmap(NULL, rpages[R_MEMFD] * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE,
				  memfd_fd, 0);
		sysv_again = shmat(sysv_id, NULL, 0);
		if (memfd_priv == MAP_FAILED || sysv_again == (void *)-1)
			return bad("child 1: private memfd / second attach");
		memset(memfd_priv + 5 * PG, 0xa1, PG);
	}
	if (me == 2) {
		close(memfd_fd);
		memfd_fd = -1;
		if (mprotect(reg[R_ANON] + 8 * PG, PG, PROT_READ))
			return bad("child 2: mprotect");
	}
	if (me == 0)
		memset(deleted_priv + 6 * PG, 0xd0, PG);
	return 0;
}

/* ---- the rounds ---- */

static int wait_all(int round)
{
	double t0 = now();

	for (;;) {
		int missing = -1, mr = -1;

		for (int r = 0; r < NREG && missing < 0; r++)
			for (int p = 0; p < nproc; p++)
				if (*slot(reg[r], round, p) != marker(round, p)) {
					missing = p;
					mr = r;
					break;
				}
		if (missing < 0)
			return 0;
		if (now() - t0 > 10)
			return bad("round %d: process %d's write to %s never seen by process %d "
				   "(0x%08x): copies, not one object?", round, missing, rname[mr], me,
				   *slot(reg[mr], round, missing));
		usleep(1000);
	}
}

/* The root's other views of anon and the second attach of sysv show the
 * same bytes as the first mapping. */
static int views_ok(int round)
{
	for (int p = 0; p < nproc; p++) {
		uint32_t want = marker(round, p);

		if (alias_whole && *slot(alias_whole, round, p) != want)
			return bad("anon: the root's second mapping of the object differs");
		if (sysv_again && *slot(sysv_again, round, p) != want)
			return bad("sysv: child 1's second attach differs");
	}
	if (alias_from4 && memcmp(alias_from4, reg[R_ANON] + 4 * PG, 8 * PG))
		return bad("anon: the root's mapping from page 4 differs (offset lost?)");
	if (alias_whole && memcmp(alias_whole, reg[R_ANON], rpages[R_ANON] * PG))
		return bad("anon: the root's second mapping differs");
	return 0;
}

/* Everything but the slots of the rounds to come. */
static int check_rest(void)
{
	char p[4096], buf[PG];
	struct shmid_ds ds;
	int fd;

	if (memfd_fd >= 0 && (pread(memfd_fd, buf, PG, 0) != (ssize_t)PG ||
			      memcmp(buf, reg[R_MEMFD], PG)))
		return bad("memfd: its fd reads other bytes than its mapping (two files?)");
	path_of(p, sizeof(p), "file");
	fd = open(p, O_RDONLY);
	if (fd < 0 || pread(fd, buf, PG, 0) != (ssize_t)PG || memcmp(buf, reg[R_FILE], PG))
		return bad("file: the file reads other bytes than its mapping");
	close(fd);
	if (memfd_priv) {
		for (size_t i = 0; i < PG; i++)
			if (memfd_priv[5 * PG + i] != 0xa1)
				return bad("memfd: child 1's private page 5 lost its bytes");
		if (pattern_ok(memfd_priv, R_MEMFD, 5))
			return bad("memfd: child 1's private mapping: %s", why);
		if (pattern_ok(reg[R_MEMFD], R_MEMFD, 0))
			return -1;	/* its private write leaked into the file */
	}
	if (deleted_priv) {
		for (size_t i = 0; i < PG; i++)
			if (deleted_priv[6 * PG + i] != 0xd0)
				return bad("deleted: the root's private page 6 lost its bytes");
		if (pattern_ok(deleted_priv, R_DELETED, 6))
			return -1;
	}
	if (shmctl(sysv_id, IPC_STAT, &ds))
		return bad("sysv: segment %d: %s", sysv_id, strerror(errno));
	/* one per mapping: the root's, child 1's two, child 2's */
	if ((int)ds.shm_nattch != (nproc == 1 ? 1 : 4))
		return bad("sysv: %lu attaches, want %d (mapped, not attached?)",
			   (unsigned long)ds.shm_nattch, nproc == 1 ? 1 : 4);
	if (ds.shm_segsz != SYSV_SIZE || (ds.shm_perm.mode & 0777) != 0640)
		return bad("sysv: size %zu mode %o", (size_t)ds.shm_segsz, ds.shm_perm.mode);
	if (shmctl(gone_id, IPC_STAT, &ds))
		return bad("gone: segment %d: %s", gone_id, strerror(errno));
	if (!(ds.shm_perm.mode & SHM_DEST))
		return bad("gone: segment %d is no longer marked removed", gone_id);
	return 0;
}

static void scribble(int round)
{
	char name[64];

	for (int r = 0; r < NREG; r++)
		if (scribbled[r])
			*slot(reg[r], round, me) = 0xdeadbeef;
	snprintf(name, sizeof(name), "scribbled-%d-%d", round + 1, me);
	touch(name, NULL);
}

static void wait_go_round(int round)
{
	char go[32], scr[32];
	int done = 0;

	snprintf(go, sizeof(go), "go-%d", round);
	snprintf(scr, sizeof(scr), "scribble-%d", round);
	while (!exists(go)) {
		if (!done && exists(scr)) {
			scribble(round - 1);
			done = 1;
		}
		usleep(2000);
	}
}

static int one_round(int round)
{
	for (int r = 0; r < NREG; r++) {
		if (pattern_ok(reg[r], r, 0))
			return -1;
		for (int p = 0; p < nproc; p++)
			if (*slot(reg[r], round - 1, p) != marker(round - 1, p))
				return bad("%s: process %d's write of round %d reads 0x%08x, not what "
					   "it was before the freeze", rname[r], p, round - 1,
					   *slot(reg[r], round - 1, p));
	}
	if (views_ok(round - 1))
		return -1;
	for (int r = 0; r < NREG; r++)
		*slot(reg[r], round, me) = marker(round, me);
	if (wait_all(round) || views_ok(round))
		return -1;
	return check_rest();
}

static void report(int round, int ok)
{
	char name[32], text[480];

	snprintf(name, sizeof(name), "res-%d-%d", round, me);
	snprintf(text, sizeof(text), ok ? "PASS\n" : "FAIL: process %d: %s\n", me, why);
	touch(name, text);
}

static int run(int rounds)
{
	char name[32];

	if (setup_own())
		return -1;
	for (int r = 0; r < NREG; r++)
		*slot(reg[r], 0, me) = marker(0, me);
	if (wait_all(0) || views_ok(0) || check_rest())
		return -1;
	snprintf(name, sizeof(name), "ready-%d", me);
	touch(name, NULL);
	for (int round = 1; round <= rounds; round++) {
		int ok;

		wait_go_round(round);
		ok = one_round(round) == 0;
		report(round, ok);
		if (!ok)
			return -1;
	}
	/* no one detaches (exits) while another still counts the attaches */
	for (int p = 0; p < nproc; p++) {
		snprintf(name, sizeof(name), "res-%d-%d", rounds, p);
		while (!exists(name))
			usleep(2000);
	}
	return 0;
}

static int attach_and_sleep(int id)
{
	void *p = shmat(id, NULL, SHM_RDONLY);

	if (p == (void *)-1) {
		perror("shmat");
		return 1;
	}
	printf("attached\n");
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	pid_t kids[MAXP];
	int rounds, key, st, failed = 0;

	if (argc == 3 && !strcmp(argv[1], "attach"))
		return attach_and_sleep(atoi(argv[2]));
	if (argc == 4 && !strcmp(argv[1], "make")) {
		int id = shmget((int)strtol(argv[2], NULL, 0), (size_t)atol(argv[3]),
				IPC_CREAT | IPC_EXCL | 0600);

		printf("%d\n", id);
		return id < 0;
	}
	if (argc != 5)
		return 2;
	dir = argv[1];
	nproc = atoi(argv[2]);
	rounds = atoi(argv[3]);
	key = (int)strtol(argv[4], NULL, 0);
	if (nproc < 1 || nproc > 3 || rounds < 1 || rounds >= MAXR)
		return 2;
	if (setup(key)) {
		report(0, 0);
		return 1;
	}
	for (int p = 1; p < nproc; p++) {
		kids[p] = fork();
		if (kids[p] == 0) {
			me = p;
			alias_whole = alias_from4 = NULL;	/* the root's only */
			munmap(deleted_priv, rpages[R_DELETED] * PG);
			deleted_priv = NULL;
			_exit(run(rounds) ? 1 : 0);
		}
	}
	/* removed now: every process has it attached */
	if (shmctl(gone_id, IPC_RMID, NULL))
		return 1;
	failed = run(rounds) != 0;
	for (int p = 1; p < nproc; p++)
		if (waitpid(kids[p], &st, 0) != kids[p] || !WIFEXITED(st) || WEXITSTATUS(st))
			failed = 1;
	shmdt(reg[R_SYSV]);
	return failed;
}
