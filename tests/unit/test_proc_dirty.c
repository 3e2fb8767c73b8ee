/* Unit tests: src/proc/dirty and src/proc/mem — pagemap, bulk memory
 * access, uffd-WP + PAGEMAP_SCAN dirty tracking and the page-hash fallback,
 * on a child this test forks and tells which pages to write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/userfaultfd.h>

#include "common/compat.h"
#include "proc/dirty.h"
#include "proc/inject.h"
#include "proc/maps.h"
#include "proc/mem.h"
#include "proc/ptrace.h"

#define PG 4096ull
#define NMAPS 3
static const size_t map_pages[NMAPS] = { 64, 32, 16 };
static uint8_t *maps[NMAPS + 1];  /* [3]: created later on request */
#define NEW_PAGES 8

enum { OP_WRITE, OP_NEW_MAP, OP_REMAP, OP_DROP, OP_READ, OP_FILE_MAP, OP_EXIT };
#define FILE_PAGES 16
static int file_fd = -1;	/* FILE_PAGES pages, opened before the fork */
struct cmd {
	int op, map;
	uint32_t page;
	uint64_t val;
};

struct child {
	pid_t pid;
	int cmd, ack;
};

static void child_main(int in, int out)
{
	struct cmd c;

	/* 0: private anon, half touched; 1: private anon, never touched;
	 * 2: shared anon. */
	maps[0] = mmap(NULL, map_pages[0] * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	maps[1] = mmap(NULL, map_pages[1] * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	maps[2] = mmap(NULL, map_pages[2] * PG, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (maps[0] == MAP_FAILED || maps[1] == MAP_FAILED || maps[2] == MAP_FAILED)
		_exit(3);
	for (size_t i = 0; i < map_pages[0]; i += 2)
		maps[0][i * PG] = (uint8_t)i;
	/* A huge sparse mapping (like ASan's shadow): registering it must
	 * not cost page tables for its whole size. */
	if (mmap(NULL, 1ull << 40, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED)
		_exit(3);
	if (write(out, "r", 1) != 1)
		_exit(2);
	while (read(in, &c, sizeof(c)) == sizeof(c)) {
		uint64_t reply = 0;
		if (c.op == OP_EXIT)
			break;
		if (c.op == OP_WRITE) {
			memcpy(maps[c.map] + c.page * PG + 8, &c.val, 8);
		} else if (c.op == OP_NEW_MAP) {
			maps[3] = mmap(NULL, NEW_PAGES * PG, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			reply = (uint64_t)(uintptr_t)maps[3];
		} else if (c.op == OP_DROP) {
			if (madvise(maps[c.map] + c.page * PG, PG, MADV_DONTNEED))
				_exit(6);
		} else if (c.op == OP_READ) {
			reply = *(volatile uint8_t *)(maps[c.map] + c.page * PG);
		} else if (c.op == OP_FILE_MAP) {
			/* a private writable file mapping, like a library's data */
			maps[3] = mmap(NULL, FILE_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE,
				       file_fd, 0);
			reply = (uint64_t)(uintptr_t)maps[3];
		} else if (c.op == OP_REMAP) {
			/* Same address, fresh mapping: loses the registration. */
			if (munmap(maps[3], NEW_PAGES * PG) ||
			    mmap(maps[3], NEW_PAGES * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != maps[3])
				_exit(5);
			reply = (uint64_t)(uintptr_t)maps[3];
		}
		if (write(out, &reply, sizeof(reply)) != sizeof(reply))
			_exit(2);
	}
	_exit(0);
}

static struct child start(void)
{
	int a[2], b[2];
	struct child c;
	char r;

	assert_int_equal(pipe2(a, O_CLOEXEC), 0);
	assert_int_equal(pipe2(b, O_CLOEXEC), 0);
	c.pid = fork();
	assert_true(c.pid >= 0);
	if (c.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(a[1]);
		close(b[0]);
		child_main(a[0], b[1]);
	}
	close(a[0]);
	close(b[1]);
	c.cmd = a[1];
	c.ack = b[0];
	assert_int_equal(read(c.ack, &r, 1), 1);
	return c;
}

static uint64_t send(struct child *c, int op, int map, uint32_t page, uint64_t val)
{
	struct cmd m = { op, map, page, val };
	uint64_t reply;
	assert_int_equal(write(c->cmd, &m, sizeof(m)), sizeof(m));
	assert_int_equal(read(c->ack, &reply, sizeof(reply)), sizeof(reply));
	return reply;
}

static void finish(struct child *c)
{
	int st;
	struct cmd m = { OP_EXIT, 0, 0, 0 };
	assert_int_equal(write(c->cmd, &m, sizeof(m)), sizeof(m));
	assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(c->cmd);
	close(c->ack);
}

static void child_maps(struct child *c, uint64_t *addr)
{
	assert_int_equal(proc_mem_read(c->pid, (uint64_t)(uintptr_t)maps, addr,
				       (NMAPS + 1) * sizeof(uint64_t), NULL), 0);
}

/* ---- mem + pagemap ---- */

static void pagemap_and_bulk_memory(void **state)
{
	struct child c = start();
	uint64_t addr[NMAPS + 1], pm[64];
	uint8_t *buf;
	struct proc_mem_range rr[32];
	size_t done;
	(void)state;

	child_maps(&c, addr);
	/* Even pages of map 0 were written: present and exclusive; odd ones
	 * were never touched and must not be read (nor become present). */
	assert_int_equal(proc_pagemap_read(c.pid, addr[0], 64, pm), 0);
	for (int i = 0; i < 64; i++) {
		if (i % 2 == 0) {
			assert_true(pm[i] & PROC_PM_PRESENT);
			assert_true(pm[i] & PROC_PM_EXCLUSIVE);
			assert_false(pm[i] & PROC_PM_FILE_SHARED);
		} else {
			assert_false(proc_pm_populated(pm[i]));
		}
	}
	send(&c, OP_WRITE, 2, 3, 77);
	assert_int_equal(proc_pagemap_read(c.pid, addr[2], 16, pm), 0);
	assert_true(pm[3] & PROC_PM_PRESENT);
	assert_true(pm[3] & PROC_PM_FILE_SHARED);  /* shared anon counts as shmem */
	assert_false(proc_pm_populated(pm[4]));

	/* Gather the populated pages of map 0 in one batched call. */
	buf = malloc(64 * PG);
	assert_non_null(buf);
	for (int i = 0; i < 32; i++) {
		rr[i].addr = addr[0] + (uint64_t)i * 2 * PG;
		rr[i].len = PG;
	}
	assert_int_equal(proc_mem_readv(c.pid, rr, 32, buf), 0);
	for (int i = 0; i < 32; i++)
		assert_int_equal(buf[i * PG], (uint8_t)(i * 2));
	assert_int_equal(proc_pagemap_read(c.pid, addr[0], 64, pm), 0);
	for (int i = 1; i < 64; i += 2)
		assert_false(proc_pm_populated(pm[i]));

	/* Write a large range and read it back in one go (split into chunks). */
	for (size_t i = 0; i < 64 * PG; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(proc_mem_write(c.pid, addr[0], buf, 64 * PG, NULL), 0);
	memset(buf, 0, 64 * PG);
	assert_int_equal(proc_mem_read(c.pid, addr[0], buf, 64 * PG, &done), 0);
	assert_int_equal(done, 64 * PG);
	for (size_t i = 0; i < 64 * PG; i++)
		if (buf[i] != (uint8_t)(i * 7 + 3))
			fail_msg("byte %zu differs", i);
	/* Past the end of a mapping: stops there with -EFAULT and says where,
	 * unless the next page happens to be mapped. */
	{
		struct proc_maps m;
		const struct proc_vma *v;
		assert_int_equal(proc_maps_read(c.pid, false, &m), 0);
		v = proc_maps_find(&m, addr[1]);
		assert_non_null(v);
		if (!proc_maps_find(&m, v->end)) {
			assert_int_equal(proc_mem_read(c.pid, v->end - PG, buf, 2 * PG, &done),
					 -EFAULT);
			assert_int_equal(done, PG);
		}
		proc_maps_free(&m);
	}
	free(buf);
	finish(&c);
}

/* ---- uffd-WP + PAGEMAP_SCAN ---- */

struct pg {
	int map;
	uint32_t page;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* The scan's runs must cover exactly the pages in want (addresses). */
static void expect_exactly(struct proc_dirty *d, uint64_t lo, uint64_t hi,
			   uint64_t *want, size_t nwant)
{
	struct proc_range *runs;
	size_t n, got = 0;

	assert_int_equal(proc_dirty_scan(d, lo, hi, &runs, &n), 0);
	qsort(want, nwant, sizeof(*want), cmp_u64);
	for (size_t i = 0; i < n; i++)
		for (uint64_t a = runs[i].start; a < runs[i].end; a += PG) {
			if (got >= nwant || want[got] != a)
				fail_msg("scan reported %#llx, not written",
					 (unsigned long long)a);
			got++;
		}
	if (got != nwant)
		fail_msg("scan reported %zu pages, %zu were written", got, nwant);
	free(runs);
}

static void write_set(struct child *c, const uint64_t *addr, const struct pg *s, size_t n,
		      uint64_t *want)
{
	for (size_t i = 0; i < n; i++) {
		send(c, OP_WRITE, s[i].map, s[i].page, 1000 + i);
		want[i] = addr[s[i].map] + s[i].page * PG;
	}
}

static long vm_pte_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPTE: %ld kB", &kb) == 1)
			break;
	fclose(f);
	assert_true(kb >= 0);
	return kb;
}

static void dirty_tracking_exact(void **state)
{
	struct child c = start();
	struct proc_ctl *ctl;
	struct proc_dirty *d;
	uint64_t addr[NMAPS + 1], want[32], lo = UINT64_MAX, hi = 0;
	static const struct pg s1[] = {
		{ 0, 0 }, { 0, 1 }, { 0, 2 }, { 0, 63 }, { 0, 30 },   /* touched + untouched */
		{ 1, 0 }, { 1, 31 }, { 1, 7 },                        /* never populated */
		{ 2, 5 }, { 2, 6 },                                    /* shared anon */
	};
	static const struct pg s2[] = { { 0, 1 }, { 0, 40 }, { 1, 8 }, { 2, 15 } };
	(void)state;

	child_maps(&c, addr);
	for (int i = 0; i < NMAPS; i++) {
		lo = addr[i] < lo ? addr[i] : lo;
		hi = addr[i] + map_pages[i] * PG > hi ? addr[i] + map_pages[i] * PG : hi;
	}
	assert_int_equal(proc_seize(c.pid, &ctl), 0);
	assert_int_equal(proc_dirty_open(ctl, &d), 0);
	/* The tracker works with the target running: release it now. */
	assert_int_equal(proc_release(ctl), 0);
	assert_true(d->features & UFFD_FEATURE_WP_ASYNC);
	for (int i = 0; i < NMAPS; i++)
		assert_int_equal(proc_dirty_register(d, addr[i], addr[i] + map_pages[i] * PG), 0);

	/* Nothing written since protection. */
	expect_exactly(d, 0, UINT64_MAX, want, 0);
	write_set(&c, addr, s1, 10, want);
	expect_exactly(d, lo, hi, want, 10);
	/* The scan re-protected them: a second scan is empty. */
	expect_exactly(d, 0, UINT64_MAX, want, 0);
	write_set(&c, addr, s2, 4, want);
	expect_exactly(d, 0, UINT64_MAX, want, 4);
	/* A page written twice between scans counts once. */
	send(&c, OP_WRITE, 0, 9, 1);
	send(&c, OP_WRITE, 0, 9, 2);
	want[0] = addr[0] + 9 * PG;
	expect_exactly(d, 0, UINT64_MAX, want, 1);

	/* A mapping created after registration: found by re-reading maps. */
	{
		uint64_t naddr = send(&c, OP_NEW_MAP, 0, 0, 0);
		struct proc_maps m;
		struct proc_range *added;
		size_t nadded;
		bool found = false;

		assert_true(naddr != 0 && naddr != (uint64_t)-1);
		child_maps(&c, addr);
		assert_int_equal(addr[3], naddr);
		assert_int_equal(proc_maps_read(c.pid, true, &m), 0);
		assert_int_equal(proc_dirty_register_maps(d, &m, &added, &nadded, 0), 0);
		for (size_t i = 0; i < nadded; i++)
			if (added[i].start <= naddr && naddr < added[i].end)
				found = true;
		/* Our three ranges were registered already: not added again
		 * (unless the kernel merged the new one into a neighbour). */
		for (size_t i = 0; i < nadded; i++)
			for (int k = 0; k < NMAPS; k++)
				if (added[i].start == addr[k])
					fail_msg("map %d registered twice", k);
		assert_true(found);
		free(added);
		proc_maps_free(&m);
		assert_true(vm_pte_kb(c.pid) < 16384);
		send(&c, OP_WRITE, 3, 2, 5);
		send(&c, OP_WRITE, 3, 7, 5);
		send(&c, OP_WRITE, 0, 11, 5);
		/* register_maps also took the child's other writable
		 * mappings (stack, libc data, ...), which it writes on its
		 * own: look at ours only. */
		want[0] = naddr + 2 * PG;
		want[1] = naddr + 7 * PG;
		expect_exactly(d, naddr, naddr + NEW_PAGES * PG, want, 2);
		want[0] = addr[0] + 11 * PG;
		expect_exactly(d, lo, hi, want, 1);

		/* Unmapped and mapped again at the same place: smaps shows it
		 * without "uw", so it is registered again and reported. */
		assert_int_equal(send(&c, OP_REMAP, 0, 0, 0), naddr);
		assert_int_equal(proc_maps_read(c.pid, true, &m), 0);
		assert_int_equal(proc_dirty_register_maps(d, &m, &added, &nadded, 0), 0);
		found = false;
		for (size_t i = 0; i < nadded; i++)
			if (added[i].start <= naddr && naddr < added[i].end)
				found = true;
		assert_true(found);
		free(added);
		proc_maps_free(&m);
		send(&c, OP_WRITE, 3, 5, 9);
		want[0] = naddr + 5 * PG;
		expect_exactly(d, naddr, naddr + NEW_PAGES * PG, want, 1);
		/* A rescan of smaps with nothing new adds nothing of ours. */
		assert_int_equal(proc_maps_read(c.pid, true, &m), 0);
		assert_int_equal(proc_dirty_register_maps(d, &m, &added, &nadded, 0), 0);
		for (size_t i = 0; i < nadded; i++)
			if (added[i].start <= naddr && naddr < added[i].end)
				fail_msg("unchanged mapping registered again");
		free(added);
		proc_maps_free(&m);
	}
	proc_dirty_close(d);
	finish(&c);
}

/* The runs of f's list (written or gone) must be exactly the pages of
 * [lo, lo + n pages) whose bit is set in want. */
static void expect_runs(const char *what, const struct proc_range *r, size_t nr, uint64_t lo,
			const bool *want, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t a = lo + i * PG;
		bool in;

		while (k < nr && r[k].end <= a)
			k++;
		in = k < nr && r[k].start <= a;
		if (in != want[i])
			fail_msg("%s: page %zu %s", what, i, in ? "reported" : "not reported");
	}
}

static void scan_found(struct proc_dirty *d, uint64_t lo, size_t n, const bool *w,
		       const bool *gone)
{
	struct proc_dirty_found f;

	assert_int_equal(proc_dirty_scan_found(d, lo, lo + n * PG, PROC_DIRTY_GONE, &f), 0);
	expect_runs("written", f.written, f.nwritten, lo, w, n);
	expect_runs("gone", f.gone, f.ngone, lo, gone, n);
	assert_int_equal(f.nfresh, 0);
	proc_dirty_found_free(&f);
}

/* What a stopped process's scan says is gone: never populated, dropped,
 * a file's page not copied; both ways of finding holes (the quick walk
 * where the kernel reports them, the general one everywhere). */
static void dirty_found_gone(void **state)
{
	(void)state;
	for (int quick = 0; quick < 2; quick++) {
		struct child c = start();
		struct proc_ctl *ctl;
		struct proc_dirty *d;
		uint64_t addr[NMAPS + 1], fa;
		bool w[64], g[64], fw[FILE_PAGES], fg[FILE_PAGES];

		child_maps(&c, addr);
		fa = send(&c, OP_FILE_MAP, 0, 0, 0);
		assert_true(fa != 0 && fa != (uint64_t)-1);
		assert_int_equal(proc_seize(c.pid, &ctl), 0);
		assert_int_equal(proc_dirty_open(ctl, &d), 0);
		assert_int_equal(proc_release(ctl), 0);
		if (quick && !d->holes_reported) {
			print_message("this kernel's quick scan misses holes: general walk only\n");
			proc_dirty_close(d);
			finish(&c);
			break;
		}
		d->holes_reported = quick;
		/* as the dump does it: every private mapping, the file's as a
		 * file range */
		{
			struct proc_maps m;
			bool seen = false;

			assert_int_equal(proc_maps_read(c.pid, true, &m), 0);
			assert_int_equal(proc_dirty_register_maps(d, &m, NULL, NULL, 0), 0);
			proc_maps_free(&m);
			for (size_t i = 0; i < d->n; i++)
				if (d->r[i].start == fa) {
					assert_true(d->r[i].file);
					seen = true;
				} else if (d->r[i].start == addr[0]) {
					assert_false(d->r[i].file);
				}
			assert_true(seen);
		}

		/* map 0: even pages populated, odd never; the file: nothing */
		for (int i = 0; i < 64; i++) {
			w[i] = false;
			g[i] = i % 2;
		}
		for (int i = 0; i < FILE_PAGES; i++) {
			fw[i] = false;
			fg[i] = true;
		}
		scan_found(d, addr[0], 64, w, g);
		scan_found(d, fa, FILE_PAGES, fw, fg);

		send(&c, OP_WRITE, 0, 1, 7);	/* a hole filled */
		send(&c, OP_WRITE, 0, 2, 7);	/* a page written */
		send(&c, OP_DROP, 0, 4, 0);	/* a page dropped */
		send(&c, OP_DROP, 0, 6, 0);	/* written, then dropped */
		send(&c, OP_READ, 3, 2, 0);	/* the file's page, read in */
		send(&c, OP_READ, 3, 7, 0);	/* the same, written later */
		send(&c, OP_WRITE, 3, 5, 7);	/* copied: the process's own */
		w[1] = w[2] = true;
		g[1] = false;
		g[4] = g[6] = true;
		fw[5] = true;
		fg[5] = false;
		scan_found(d, addr[0], 64, w, g);
		scan_found(d, fa, FILE_PAGES, fw, fg);
		/* protected again; holes stay gone; the file's pages met were
		 * protected too: not reported again, still not written */
		w[1] = w[2] = fw[5] = false;
		fg[2] = fg[7] = false;
		scan_found(d, addr[0], 64, w, g);
		scan_found(d, fa, FILE_PAGES, fw, fg);
		send(&c, OP_READ, 3, 2, 0);
		scan_found(d, fa, FILE_PAGES, fw, fg);
		/* a file's page protected, then written: copied, reported */
		send(&c, OP_WRITE, 3, 7, 9);
		fw[7] = true;
		scan_found(d, fa, FILE_PAGES, fw, fg);
		proc_dirty_close(d);
		finish(&c);
	}
}

static void dirty_target_keeps_no_uffd(void **state)
{
	struct child c = start();
	struct proc_ctl *ctl;
	struct proc_dirty *d;
	char path[64], link[64];
	int found = 0;
	(void)state;

	assert_int_equal(proc_seize(c.pid, &ctl), 0);
	assert_int_equal(proc_dirty_open(ctl, &d), 0);
	assert_int_equal(proc_release(ctl), 0);
	for (int fd = 0; fd < 64; fd++) {
		ssize_t n;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)c.pid, fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strstr(link, "userfaultfd"))
			found++;
	}
	assert_int_equal(found, 0);
	proc_dirty_close(d);
	finish(&c);
}

/* ---- hash fallback ---- */

static void hash_fallback(void **state)
{
	struct child c = start();
	uint64_t addr[NMAPS + 1], h0[64], h1[64], pm[64];
	size_t idx[64], n;
	(void)state;

	child_maps(&c, addr);
	assert_int_equal(proc_hash_pages(c.pid, addr[0], 64, h0), 0);
	for (int i = 0; i < 64; i++)
		assert_true(i % 2 ? h0[i] == 0 : h0[i] != 0);
	send(&c, OP_WRITE, 0, 4, 0x1111);    /* touched page changes */
	send(&c, OP_WRITE, 0, 5, 0x2222);    /* untouched page appears */
	send(&c, OP_WRITE, 0, 6, 0);         /* same bytes written: unseen */
	assert_int_equal(proc_hash_pages(c.pid, addr[0], 64, h1), 0);
	n = proc_hash_changed(h0, h1, 64, idx);
	assert_int_equal(n, 2);
	assert_int_equal(idx[0], 4);
	assert_int_equal(idx[1], 5);
	/* Hashing did not populate untouched pages. */
	assert_int_equal(proc_pagemap_read(c.pid, addr[0], 64, pm), 0);
	for (int i = 7; i < 64; i += 2)
		assert_false(proc_pm_populated(pm[i]));
	finish(&c);
}

int main(void)
{
	char path[] = "/tmp/cryo-test-dirty.XXXXXX";
	uint8_t page[PG];
	int rc;

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pagemap_and_bulk_memory),
		cmocka_unit_test(dirty_tracking_exact),
		cmocka_unit_test(dirty_found_gone),
		cmocka_unit_test(dirty_target_keeps_no_uffd),
		cmocka_unit_test(hash_fallback),
	};
	file_fd = mkstemp(path);
	if (file_fd < 0)
		return 1;
	unlink(path);
	for (int i = 0; i < FILE_PAGES; i++) {
		memset(page, 0x40 + i, sizeof(page));
		if (write(file_fd, page, sizeof(page)) != (ssize_t)sizeof(page))
			return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	close(file_fd);
	return rc;
}
