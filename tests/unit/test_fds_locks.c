/* Unit tests: src/fds/locks.c — advisory locks read from fdinfo "lock:"
 * lines (each kind, a range, to EOF; leases and garbage refused, as
 * untrusted input) and taken again on an fd (a conflicting lock of
 * another open file description shows each one held). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fds/fd.h"

/* fd_locks_dump of an fdinfo text; e is left for fd_locks_free. */
static int dump_text(const char *text, Cryo__FdEntry *e)
{
	struct proc_fdinfo fi;
	struct fd_probe p = { .pid = 1, .fd = 3, .local = -1 };
	int r = proc_fdinfo_parse(text, strlen(text), &fi);

	if (r)
		return r;
	p.info = &fi;
	cryo__fd_entry__init(e);
	r = fd_locks_dump(&p, e);
	proc_fdinfo_free(&fi);
	return r;
}

static void each_kind_is_read(void **state)
{
	Cryo__FdEntry e;

	(void)state;
	assert_int_equal(dump_text("pos:\t0\nflags:\t02\n"
				   "lock:\t1: POSIX  ADVISORY  WRITE 9288 fe:00:10952722 5 14\n"
				   "lock:\t2: FLOCK  ADVISORY  READ 9288 fe:00:10952722 0 EOF\n"
				   "lock:\t3: OFDLCK ADVISORY  READ -1 fe:00:10952722 50 EOF\n", &e), 0);
	assert_int_equal(e.n_locks, 3);
	assert_int_equal(e.locks[0]->kind, 1);
	assert_true(e.locks[0]->write);
	assert_int_equal(e.locks[0]->start, 5);
	assert_true(e.locks[0]->has_end);
	assert_int_equal(e.locks[0]->end, 14);
	assert_int_equal(e.locks[1]->kind, 3);
	assert_false(e.locks[1]->write);
	assert_false(e.locks[1]->has_end);
	assert_int_equal(e.locks[2]->kind, 2);
	assert_int_equal(e.locks[2]->start, 50);
	fd_locks_free(&e);
	assert_int_equal(dump_text("pos:\t0\nflags:\t02\n", &e), 0);
	assert_int_equal(e.n_locks, 0);
	fd_locks_free(&e);
}

static void bad_lines_are_refused(void **state)
{
	static const char *const bad[] = {
		"lock:\t1: LEASE  ACTIVE    READ 9288 fe:00:1 0 EOF\n",
		"lock:\t1: POSIX  MANDATORY WRITE 9288 fe:00:1 0 EOF\n",
		"lock:\t1: POSIX  ADVISORY  UNLCK 9288 fe:00:1 0 EOF\n",
		"lock:\t1: POSIX  ADVISORY  WRITE 9288 fe:00:1 9 3\n",
		"lock:\t1: POSIX  ADVISORY  WRITE 9288 fe:00:1 0 12x\n",
		"lock:\t1: POSIX  ADVISORY  WRITE\n",
		"lock:\tgarbage\n",
	};
	char text[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		Cryo__FdEntry e;
		int r;

		snprintf(text, sizeof(text), "pos:\t0\nflags:\t02\n%s", bad[i]);
		r = dump_text(text, &e);
		assert_true(r == -EINVAL || r == -ENOTSUP);
		fd_locks_free(&e);
	}
}

/* The type of a lock of another description on [start, start+len), or F_UNLCK. */
static short other_sees(const char *path, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
	close(fd);
	return fl.l_type;
}

static void locks_are_taken_again(void **state)
{
	char path[] = "/tmp/cryo-locks-XXXXXX", why[256];
	Cryo__FileLock w = CRYO__FILE_LOCK__INIT, r = CRYO__FILE_LOCK__INIT, f = CRYO__FILE_LOCK__INIT;
	Cryo__FileLock *all[] = { &w, &r, &f };
	Cryo__FdEntry e = CRYO__FD_ENTRY__INIT;
	int fd = mkstemp(path), probe;

	(void)state;
	assert_true(fd >= 0);
	w.kind = 1, w.write = 1, w.start = 5, w.has_end = 1, w.end = 14;
	r.kind = 2, r.start = 100;
	f.kind = 3, f.write = 1;
	e.fd = (uint32_t)fd;
	e.locks = all;
	e.n_locks = 3;
	assert_int_equal(fd_locks_restore(&e, why, sizeof(why)), 0);
	assert_int_equal(other_sees(path, F_WRLCK, 5, 10), F_WRLCK);
	assert_int_equal(other_sees(path, F_WRLCK, 20, 10), F_UNLCK);
	assert_int_equal(other_sees(path, F_WRLCK, 5000, 1), F_RDLCK);
	probe = open(path, O_RDONLY);
	assert_int_equal(flock(probe, LOCK_EX | LOCK_NB), -1);
	close(probe);
	/* a range no offset can hold is refused, not wrapped */
	w.start = (uint64_t)INT64_MAX + 1;
	w.has_end = 0;
	assert_int_equal(fd_locks_restore(&e, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "POSIX write lock"));
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_kind_is_read),
		cmocka_unit_test(bad_lines_are_refused),
		cmocka_unit_test(locks_are_taken_again),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
