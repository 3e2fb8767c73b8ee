/* Unit tests: the pager serves this process's own memory from a snapshot
 * (needs userfaultfd with fork events: root or CAP_SYS_PTRACE). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/fault.h"
#include "pager/pager.h"
#include "store/store.h"

#define NPAGES	1024
#define SRC	0x7f1200000000ull	/* where the image had the memory */
#define SPACE	3

struct fx {
	char path[64];
	struct store *s;
	struct store_snap *sn;
	uint8_t *mem;
	struct pager *p;
	pthread_t thr;
	int prefetch, result;
};

/* Image contents: every 5th page zero, every 7th absent, the rest data. */
static int page_kind(uint64_t i)
{
	return i % 7 == 3 ? STORE_PAGE_NONE : i % 5 == 1 ? STORE_PAGE_ZERO : STORE_PAGE_DATA;
}

static void page_fill(uint8_t *p, uint64_t i)
{
	for (size_t k = 0; k < 4096; k += 8) {
		uint64_t v = (i << 20) ^ (k * 0x9E3779B97F4A7C15ull) ^ 0x5555;
		memcpy(p + k, &v, 8);
	}
}

static int page_check(const uint8_t *p, uint64_t i)
{
	uint8_t want[4096];
	if (page_kind(i) == STORE_PAGE_DATA)
		page_fill(want, i);
	else
		memset(want, 0, sizeof(want));
	return memcmp(p, want, sizeof(want)) == 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct store_create_opts co = { .size = 64u << 20, .seg_size = 1u << 20, .codec = CODEC_LZ4 };
	struct store_txn *t;
	uint8_t page[4096];
	uint64_t no;

	snprintf(f->path, sizeof(f->path), "/tmp/cryo-pager-%d", getpid());
	unlink(f->path);
	assert_int_equal(store_create(f->path, &co), 0);
	assert_int_equal(store_open(f->path, NULL, &f->s), 0);
	assert_int_equal(store_txn_begin(f->s, "g", 0, &t), 0);
	for (uint64_t i = 0; i < NPAGES; i++) {
		uint64_t key = STORE_KEY(SPACE, SRC / 4096 + i);
		if (page_kind(i) == STORE_PAGE_DATA) {
			page_fill(page, i);
			assert_int_equal(store_txn_put_page(t, key, page), 0);
		} else if (page_kind(i) == STORE_PAGE_ZERO) {
			assert_int_equal(store_txn_put_zero(t, key), 0);
		}
	}
	/* another space at the same addresses must not leak in */
	memset(page, 0xee, sizeof(page));
	assert_int_equal(store_txn_put_page(t, STORE_KEY(SPACE + 1, SRC / 4096), page), 0);
	assert_int_equal(store_txn_commit(t, &no), 0);
	assert_int_equal(store_snap_open(f->s, "g", no, &f->sn), 0);
	assert_int_equal(pager_new(f->sn, NULL, &f->p), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	pager_free(f->p);
	store_snap_close(f->sn);
	store_close(f->s);
	unlink(f->path);
	if (f->mem)
		munmap(f->mem, NPAGES * 4096);
	free(f);
	return 0;
}

/* As cryod's pager lets go (no process holds a copy here). */
static int let_go(struct pager *p)
{
	int r = pager_unregister(p);

	if (!r)
		r = pager_pump(p);
	pager_close(p);
	return r;
}

static void *run_pager(void *arg)
{
	struct fx *f = arg;
	f->result = pager_run(f->p, 20000, f->prefetch);
	if (!f->result)
		f->result = let_go(f->p);
	return NULL;
}

/* Map fresh memory, register it and hand it to the pager thread. */
static void start(struct fx *f, int prefetch)
{
	int uffd;
	struct pager_range r;

	f->mem = mmap(NULL, NPAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(f->mem != MAP_FAILED);
	assert_int_equal(pager_uffd_create(&uffd), 0);
	assert_int_equal(pager_uffd_register(uffd, (uint64_t)(uintptr_t)f->mem,
					     (uint64_t)(uintptr_t)f->mem + NPAGES * 4096), 0);
	r = (struct pager_range){ (uint64_t)(uintptr_t)f->mem,
				  (uint64_t)(uintptr_t)f->mem + NPAGES * 4096, SRC };
	assert_int_equal(pager_attach(f->p, uffd, SPACE, &r, 1), 0);
	f->prefetch = prefetch;
	assert_int_equal(pthread_create(&f->thr, NULL, run_pager, f), 0);
}

static void finish(struct fx *f)
{
	struct pager_stats st;
	assert_int_equal(pthread_join(f->thr, NULL), 0);
	assert_int_equal(f->result, 0);
	pager_get_stats(f->p, &st);
	assert_int_equal(st.pages_wanted, 0);
}

static void faults_only(void **state)
{
	struct fx *f = *state;
	struct pager_stats st;

	start(f, 0);
	for (uint64_t i = 0; i < NPAGES; i++)
		assert_true(page_check(f->mem + i * 4096, i));
	finish(f);
	pager_get_stats(f->p, &st);
	assert_true(st.faults >= NPAGES * 6 / 7 * 4 / 5);
	assert_int_equal(st.pages_prefetched, 0);
	/* let go: the memory is ordinary now, writes stay */
	f->mem[0] = 42;
	assert_int_equal(f->mem[0], 42);
}

static void prefetch_brings_everything(void **state)
{
	struct fx *f = *state;
	struct pager_stats st;

	start(f, 1);
	finish(f);	/* returns once every stored page is in */
	pager_get_stats(f->p, &st);
	assert_true(st.pages_prefetched > 0);
	for (uint64_t i = 0; i < NPAGES; i++)
		assert_true(page_check(f->mem + i * 4096, i));
}

struct toucher {
	struct fx *f;
	int ok;
};

static void *touch_all(void *arg)
{
	struct toucher *t = arg;
	t->ok = 1;
	for (uint64_t i = 0; i < NPAGES; i++)
		t->ok &= page_check(t->f->mem + i * 4096, i);
	return NULL;
}

static void threads_fault_the_same_pages(void **state)
{
	struct fx *f = *state;
	struct toucher t[4];
	pthread_t th[4];

	start(f, 1);
	for (int i = 0; i < 4; i++) {
		t[i].f = f;
		assert_int_equal(pthread_create(&th[i], NULL, touch_all, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_true(t[i].ok);
	}
	finish(f);
}

static void dontneed_munmap_mremap(void **state)
{
	struct fx *f = *state;
	uint8_t *moved;

	start(f, 0);
	/* pages 100..199 dropped before ever being read: zeros, not the image */
	assert_int_equal(madvise(f->mem + 100 * 4096, 100 * 4096, MADV_DONTNEED), 0);
	/* pages 300..399 unmapped */
	assert_int_equal(munmap(f->mem + 300 * 4096, 100 * 4096), 0);
	/* pages 500..599 moved elsewhere: they keep their contents */
	moved = mremap(f->mem + 500 * 4096, 100 * 4096, 100 * 4096, MREMAP_MAYMOVE);
	assert_true(moved != MAP_FAILED);
	for (uint64_t i = 0; i < NPAGES; i++) {
		uint8_t zero[4096] = { 0 };
		if (i >= 100 && i < 200)
			assert_memory_equal(f->mem + i * 4096, zero, 4096);
		else if (i >= 300 && i < 400)
			continue;
		else if (i >= 500 && i < 600)
			assert_true(page_check(moved + (i - 500) * 4096, i));
		else
			assert_true(page_check(f->mem + i * 4096, i));
	}
	finish(f);
	munmap(moved, 100 * 4096);
	munmap(f->mem, 300 * 4096);
	munmap(f->mem + 400 * 4096, 100 * 4096);
	munmap(f->mem + 600 * 4096, (NPAGES - 600) * 4096);
	f->mem = NULL;
}

/* Events while the prefetch thread copies: a range dropped (DONTNEED)
 * reads zeros whether the prefetch got there before or after the drop,
 * never the snapshot's bytes; a moved range keeps its contents; an
 * unmapped one is not copied anywhere. The memory is large enough that
 * the events fall in the middle of the prefetch. */
#define BIG	8192
#define CHUNK	128
struct big_run {
	struct pager *p;
	int result;
};

static void *run_big(void *arg)
{
	struct big_run *b = arg;
	b->result = pager_run(b->p, 20000, 1);
	if (!b->result)
		b->result = let_go(b->p);
	return NULL;
}

static int big_check(const uint8_t *p, uint64_t i)
{
	uint8_t want[4096];
	page_fill(want, i);
	return memcmp(p, want, sizeof(want)) == 0;
}

static bool resident(const uint8_t *page)
{
	unsigned char v = 0;

	assert_int_equal(mincore((void *)page, 4096, &v), 0);
	return v & 1;
}

static void act_on_chunk(uint8_t *mem, size_t c, uint8_t **moved)
{
	uint8_t *base = mem + c * CHUNK * 4096;

	assert_int_equal(madvise(base + 32 * 4096, 16 * 4096, MADV_DONTNEED), 0);
	assert_int_equal(munmap(base + 96 * 4096, 8 * 4096), 0);
	if (c % 4 == 0) {
		moved[c] = mremap(base + 64 * 4096, 16 * 4096, 16 * 4096, MREMAP_MAYMOVE);
		assert_true(moved[c] != MAP_FAILED);
	}
}

static void events_during_prefetch(void **state)
{
	struct fx *f = *state;
	struct store_snap *sn;
	struct store_txn *t;
	struct pager *p;
	struct pager_range r;
	struct big_run b;
	pthread_t thr;
	uint8_t page[4096], zero[4096] = { 0 };
	uint8_t *moved[BIG / CHUNK] = { NULL };
	uint64_t no;
	int uffd;

	assert_int_equal(store_txn_begin(f->s, "big", 0, &t), 0);
	for (uint64_t i = 0; i < BIG; i++) {
		page_fill(page, i);
		assert_int_equal(store_txn_put_page(t, STORE_KEY(SPACE, SRC / 4096 + i), page), 0);
	}
	assert_int_equal(store_txn_commit(t, &no), 0);
	assert_int_equal(store_snap_open(f->s, "big", no, &sn), 0);
	assert_int_equal(pager_new(sn, NULL, &p), 0);
	uint8_t *mem = mmap(NULL, BIG * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	assert_int_equal(pager_uffd_create(&uffd), 0);
	assert_int_equal(pager_uffd_register(uffd, (uint64_t)(uintptr_t)mem,
					     (uint64_t)(uintptr_t)mem + BIG * 4096), 0);
	r = (struct pager_range){ (uint64_t)(uintptr_t)mem, (uint64_t)(uintptr_t)mem + BIG * 4096, SRC };
	assert_int_equal(pager_attach(p, uffd, SPACE, &r, 1), 0);
	b = (struct big_run){ p, -1 };
	assert_int_equal(pthread_create(&thr, NULL, run_big, &b), 0);
	/* in each chunk: pages 32..47 dropped, 96..103 unmapped; in every
	 * fourth, 64..79 moved away. Each chunk just as the prefetch gets to
	 * it (mincore: its first page is in, the ones after not yet), so the
	 * events and the prefetch's copies of the same pages cross. */
	bool acted[BIG / CHUNK] = { false };
	size_t left = BIG / CHUNK;
	int during = 0;

	for (int spin = 0; left && spin < 2000000; spin++) {
		size_t c = 0;

		while (c < BIG / CHUNK && (acted[c] || !resident(mem + c * CHUNK * 4096)))
			c++;
		if (c == BIG / CHUNK)
			continue;
		act_on_chunk(mem, c, moved);
		acted[c] = true;
		during += !resident(mem + (c * CHUNK + CHUNK - 1) * 4096);
		left--;
	}
	for (size_t c = 0; c < BIG / CHUNK; c++)
		if (!acted[c])
			act_on_chunk(mem, c, moved);	/* the prefetch was faster */
	print_message("%d of %d chunks changed while the prefetch was in them\n", during,
		      BIG / CHUNK);
	assert_int_equal(pthread_join(thr, NULL), 0);
	assert_int_equal(b.result, 0);
	for (uint64_t i = 0; i < BIG; i++) {
		size_t c = i / CHUNK, k = i % CHUNK;

		if (k >= 32 && k < 48)
			assert_memory_equal(mem + i * 4096, zero, 4096);
		else if (k >= 96 && k < 104)
			continue;
		else if (k >= 64 && k < 80 && moved[c])
			assert_true(big_check(moved[c] + (k - 64) * 4096, i));
		else
			assert_true(big_check(mem + i * 4096, i));
	}
	pager_free(p);
	store_snap_close(sn);
	for (size_t c = 0; c < BIG / CHUNK; c++)
		if (moved[c])
			munmap(moved[c], 16 * 4096);
	munmap(mem, BIG * 4096);
}

/* The pager runs in another process, as in cryod: a pager thread in the
 * forking process would deadlock on glibc's malloc locks, which fork()
 * holds while the kernel waits for the pager to read the fork event. */
static int send_fd(int sock, int fd, uint64_t addr)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &addr, sizeof(addr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &mh, 0) == sizeof(addr) ? 0 : -1;
}

static int recv_fd(int sock, uint64_t *addr)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { addr, sizeof(*addr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &mh, 0) != sizeof(*addr) || !(c = CMSG_FIRSTHDR(&mh)))
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static int check_all(const uint8_t *mem)
{
	int ok = 1;

	for (uint64_t i = 0; i < NPAGES; i++)
		ok &= page_check(mem + i * 4096, i);
	return ok;
}

/* In a target: its child exited 0. */
static int child_ok(pid_t child)
{
	int status;

	return waitpid(child, &status, 0) == child && WIFEXITED(status) && !WEXITSTATUS(status);
}

/* In a target: fresh memory registered with a uffd of its own, sent to
 * the pager over sock with its address, then wait for 'g'. NULL on error. */
static uint8_t *target_memory(int sock)
{
	uint8_t *mem = mmap(NULL, NPAGES * 4096, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int uffd;
	char go;

	if (mem == MAP_FAILED || pager_uffd_create(&uffd))
		return NULL;
	if (pager_uffd_register(uffd, (uint64_t)(uintptr_t)mem,
				(uint64_t)(uintptr_t)mem + NPAGES * 4096) ||
	    send_fd(sock, uffd, (uint64_t)(uintptr_t)mem) || read(sock, &go, 1) != 1) {
		close(uffd);
		return NULL;
	}
	close(uffd);	/* the pager's copy keeps it open */
	return mem;
}

/* The target: memory served by the pager of the parent; it reads some,
 * forks, and both it and its child check every page. */
static int target_main(int sock)
{
	uint8_t *mem = target_memory(sock);
	int ok = 1;
	pid_t child;

	if (!mem)
		return 2;
	for (uint64_t i = 0; i < 50; i++)
		ok &= page_check(mem + i * 4096, i);
	child = fork();
	if (child < 0)
		return 3;
	if (!child) {
		ok &= check_all(mem);
		_exit(ok ? 0 : 1);
	}
	ok &= check_all(mem);
	ok &= child_ok(child);
	return ok ? 0 : 1;
}

/* Fork a target running fn, attach the memory it sends to the pager and
 * tell it to go; *sock: our end of its socket. */
static pid_t start_target(struct fx *f, int (*fn)(int), int *sock)
{
	struct pager_range r;
	int sv[2], uffd;
	uint64_t addr;
	pid_t target;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	target = fork();
	assert_true(target >= 0);
	if (!target) {
		close(sv[0]);
		_exit(fn(sv[1]));
	}
	close(sv[1]);
	uffd = recv_fd(sv[0], &addr);
	assert_true(uffd >= 0);
	r = (struct pager_range){ addr, addr + NPAGES * 4096, SRC };
	assert_int_equal(pager_attach(f->p, uffd, SPACE, &r, 1), 0);
	assert_int_equal(write(sv[0], "g", 1), 1);
	*sock = sv[0];
	return target;
}

static void fork_child_is_served(void **state)
{
	struct fx *f = *state;
	struct pager_stats st;
	int sock, status;
	pid_t target;

	target = start_target(f, target_main, &sock);
	assert_int_equal(pager_run(f->p, 30000, 0), 0);
	assert_int_equal(let_go(f->p), 0);
	assert_int_equal(waitpid(target, &status, 0), target);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	pager_get_stats(f->p, &st);
	assert_int_equal(st.processes, 2);	/* the target and its child */
	close(sock);
}

/* A target that forks once all is in, before the pager unregisters
 * anything: its thread waits in the kernel for the fork event to be read
 * (it cannot even stop for ptrace). pager_pump reads it: the fork
 * returns, the child is attached, unregistered, and both check every
 * page. Told 'g' to go, 'f' to fork; answers 'k' once fork returned. */
static int late_target_main(int sock)
{
	uint8_t *mem = target_memory(sock);
	int ok = 1;
	char go;
	pid_t child;

	if (!mem)
		return 2;
	/* the data (a hole or a zero page faults until the unregister) */
	for (uint64_t i = 0; i < NPAGES; i++)
		if (page_kind(i) == STORE_PAGE_DATA)
			ok &= page_check(mem + i * 4096, i);
	if (write(sock, "i", 1) != 1 || read(sock, &go, 1) != 1)
		return 4;
	child = fork();
	if (child < 0)
		return 3;
	if (!child) {
		ok &= check_all(mem);
		mem[0] = 7;	/* ordinary memory now */
		_exit(ok && mem[0] == 7 ? 0 : 1);
	}
	if (write(sock, "k", 1) != 1)
		return 5;
	ok &= child_ok(child);
	ok &= check_all(mem);
	return ok ? 0 : 1;
}

static void fork_while_letting_go(void **state)
{
	struct fx *f = *state;
	struct pager_stats st;
	struct pollfd pfd;
	int sock, status, k;
	pid_t target;
	char c;

	target = start_target(f, late_target_main, &sock);
	assert_int_equal(pager_run(f->p, 30000, 1), 0);
	assert_int_equal(read(sock, &c, 1), 1);	/* it checked every page */
	assert_int_equal(c, 'i');
	assert_int_equal(write(sock, "f", 1), 1);
	pfd = (struct pollfd){ .fd = sock, .events = POLLIN };
	/* nothing read: the fork does not return */
	assert_int_equal(poll(&pfd, 1, 200), 0);
	assert_int_equal(pager_unregister(f->p), 0);
	assert_int_equal(poll(&pfd, 1, 100), 0);
	for (k = 0; k < 1000 && poll(&pfd, 1, 0) == 0; k++) {
		assert_int_equal(pager_pump(f->p), 0);
		usleep(1000);
	}
	assert_true(k < 1000);
	assert_int_equal(read(sock, &c, 1), 1);
	assert_int_equal(c, 'k');
	assert_int_equal(pager_pump(f->p), 0);
	pager_close(f->p);
	assert_int_equal(waitpid(target, &status, 0), target);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	pager_get_stats(f->p, &st);
	assert_int_equal(st.processes, 2);	/* the child was attached */
	assert_int_equal(st.pages_wanted, 0);
	close(sock);
}

/* A target that forks at once, while the prefetch runs; its child
 * checks every page only after the pager let go (told 'c'): a page the
 * pager thinks the child has, and it has not, reads as zeros then. */
static int early_fork_target_main(int sock)
{
	uint8_t *mem = target_memory(sock);
	int ok = 1;
	pid_t child;
	char c;

	if (!mem)
		return 2;
	child = fork();
	if (child < 0)
		return 3;
	if (!child) {
		if (read(sock, &c, 1) != 1)
			_exit(4);
		_exit(check_all(mem) ? 0 : 1);
	}
	ok &= check_all(mem);
	ok &= child_ok(child);
	return ok ? 0 : 1;
}

/* The fork event waits 50 ms between our read and our handling of it
 * (pager.event.slow), while the prefetch copies into the parent: none
 * of those copies may land before the child has its own list. */
static void fork_while_prefetching(void **state)
{
	struct fx *f = *state;
	struct pager_stats st;
	int sock, status;
	pid_t target;

	setenv("CRYO_FAULT", "pager.event.slow", 1);
	fault_reset();
	target = start_target(f, early_fork_target_main, &sock);
	assert_int_equal(pager_run(f->p, 30000, 1), 0);
	assert_int_equal(let_go(f->p), 0);
	unsetenv("CRYO_FAULT");
	fault_reset();
	assert_int_equal(write(sock, "c", 1), 1);
	assert_int_equal(waitpid(target, &status, 0), target);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status))
		fail_msg("the target or its child read wrong memory after the let-go (status %d)",
			 WEXITSTATUS(status));
	pager_get_stats(f->p, &st);
	assert_int_equal(st.processes, 2);
	assert_true(st.pages_prefetched > 0);
	close(sock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(faults_only, setup, teardown),
		cmocka_unit_test_setup_teardown(prefetch_brings_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(threads_fault_the_same_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(dontneed_munmap_mremap, setup, teardown),
		cmocka_unit_test_setup_teardown(events_during_prefetch, setup, teardown),
		cmocka_unit_test_setup_teardown(fork_child_is_served, setup, teardown),
		cmocka_unit_test_setup_teardown(fork_while_letting_go, setup, teardown),
		cmocka_unit_test_setup_teardown(fork_while_prefetching, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
