/* Every kind of mapping with known contents:
 *   anon     16 pages anonymous private, pages 0-7 written
 *   hidden    4 pages written at page 1, then PROT_NONE
 *   shared    8 pages MAP_SHARED|MAP_ANONYMOUS, pages 0-4 written
 *   fpriv     8 pages of a file, MAP_PRIVATE, all read, pages 2 and 5 written
 *   fshared   4 pages of a file, MAP_SHARED, page 0 written
 *   guard     4 pages PROT_NONE, never touched
 * The image must store exactly the pages that cannot be re-read from a
 * file; the process must find every byte unchanged after the snapshot.
 * argv[1]: a scratch directory. */
#include "zdtm.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096ul

static void put(unsigned char *m, unsigned r, size_t page)
{
	for (size_t o = 0; o < PG; o++)
		m[page * PG + o] = zdtm_pat(r, page, o);
}

static int is(const unsigned char *m, unsigned r, size_t page)
{
	for (size_t o = 0; o < PG; o++)
		if (m[page * PG + o] != zdtm_pat(r, page, o))
			return 0;
	return 1;
}

static unsigned char *file_map(const char *dir, const char *name, unsigned r, size_t pages,
			       int flags)
{
	char path[4096];
	unsigned char *m;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	zdtm_check(fd >= 0 && !ftruncate(fd, (off_t)(pages * PG)), "file %s", name);
	m = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	for (size_t i = 0; i < pages; i++)
		put(m, r, i);
	msync(m, pages * PG, MS_SYNC);
	munmap(m, pages * PG);
	m = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, flags, fd, 0);
	zdtm_check(m != MAP_FAILED, "mmap %s", name);
	close(fd);
	return m;
}

int main(int argc, char **argv)
{
	unsigned char *anon, *hidden, *shared, *fpriv, *fshared, *guard;
	volatile unsigned sum = 0;

	zdtm_check(argc > 1, "usage: mappings DIR");
	zdtm_block_usr2();
	/* A read-only reserve keeps anon, hidden and guard from merging with
	 * their neighbours, so each is one mapping of its own size. */
	unsigned char *res = mmap(NULL, 64 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	zdtm_check(res != MAP_FAILED, "reserve");
	anon = mmap(res + PG, 16 * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	for (size_t i = 0; i < 8; i++)
		put(anon, 4, i);
	hidden = mmap(res + 20 * PG, 4 * PG, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	put(hidden, 5, 1);
	mprotect(hidden, 4 * PG, PROT_NONE);
	shared = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	for (size_t i = 0; i < 5; i++)
		put(shared, 6, i);
	fpriv = file_map(argv[1], "fpriv", 7, 8, MAP_PRIVATE);
	for (size_t i = 0; i < 8; i++)
		sum += fpriv[i * PG];	/* clean file pages: not to be stored */
	(void)sum;
	put(fpriv, 8, 2);
	put(fpriv, 8, 5);
	fshared = file_map(argv[1], "fshared", 9, 4, MAP_SHARED);
	put(fshared, 10, 0);
	guard = mmap(res + 30 * PG, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		     -1, 0);
	zdtm_check(anon != MAP_FAILED && hidden != MAP_FAILED && shared != MAP_FAILED &&
		   guard != MAP_FAILED, "mmap");
	zdtm_say("map anon 0x%lx\nmap hidden 0x%lx\nmap shared 0x%lx\nmap fpriv 0x%lx\n"
		 "map fshared 0x%lx\nmap guard 0x%lx\n", (unsigned long)anon, (unsigned long)hidden,
		 (unsigned long)shared, (unsigned long)fpriv, (unsigned long)fshared,
		 (unsigned long)guard);

	zdtm_ready_wait();

	for (size_t i = 0; i < 8; i++)
		zdtm_check(is(anon, 4, i), "anon page %zu", i);
	for (size_t i = 8; i < 16; i++)
		zdtm_check(anon[i * PG] == 0, "anon page %zu not zero", i);
	mprotect(hidden, 4 * PG, PROT_READ);
	zdtm_check(is(hidden, 5, 1), "hidden page");
	for (size_t i = 0; i < 5; i++)
		zdtm_check(is(shared, 6, i), "shared page %zu", i);
	for (size_t i = 0; i < 8; i++)
		zdtm_check(is(fpriv, (i == 2 || i == 5) ? 8 : 7, i), "fpriv page %zu", i);
	zdtm_check(is(fshared, 10, 0) && is(fshared, 9, 1), "fshared");
	zdtm_pass();
}
