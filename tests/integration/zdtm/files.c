/* File descriptors of every kind cryo captures: a file at an offset, an
 * O_APPEND file, a deleted-but-open file, a sealed memfd, a pipe with
 * bytes in it (both ends here), a directory, /dev/zero and /dev/urandom.
 * After the snapshot every offset, flag and byte must be as it was: in
 * particular the snapshot must not have taken the bytes out of the pipe.
 * argv[1]: a scratch directory. */
#include "zdtm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PIPE_MSG "pipe-bytes-in-flight"

static void fill(int fd, unsigned r, size_t len)
{
	char *b = malloc(len);

	for (size_t i = 0; i < len; i++)
		b[i] = (char)zdtm_pat(r, i / 4096, i);
	zdtm_check(write(fd, b, len) == (ssize_t)len, "write");
	free(b);
}

static int same(int fd, unsigned r, size_t len)
{
	char *b = malloc(len);
	int ok = pread(fd, b, len, 0) == (ssize_t)len;

	for (size_t i = 0; ok && i < len; i++)
		ok = b[i] == (char)zdtm_pat(r, i / 4096, i);
	free(b);
	return ok;
}

int main(int argc, char **argv)
{
	char path[4096], buf[64];
	int a, b, del, mfd, p[2], dir, zero, ur, fl;

	zdtm_check(argc > 1, "usage: files DIR");
	zdtm_block_usr2();
	snprintf(path, sizeof(path), "%s/a", argv[1]);
	a = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	fill(a, 1, 5000);
	lseek(a, 1234, SEEK_SET);
	snprintf(path, sizeof(path), "%s/b", argv[1]);
	b = open(path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	zdtm_check(write(b, "hello", 5) == 5, "write b");
	snprintf(path, sizeof(path), "%s/deleted", argv[1]);
	del = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fill(del, 2, 10000);
	lseek(del, 777, SEEK_SET);
	unlink(path);
	mfd = memfd_create("zdtm-memfd", MFD_ALLOW_SEALING);
	fill(mfd, 3, 9000);
	zdtm_check(!fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), "seal");
	lseek(mfd, 4321, SEEK_SET);
	zdtm_check(!pipe(p), "pipe");
	zdtm_check(write(p[1], PIPE_MSG, strlen(PIPE_MSG)) == (ssize_t)strlen(PIPE_MSG), "pipe write");
	dir = open(argv[1], O_RDONLY | O_DIRECTORY);
	zero = open("/dev/zero", O_RDONLY);
	ur = open("/dev/urandom", O_RDONLY | O_NONBLOCK);
	zdtm_say("fd a %d\nfd b %d\nfd deleted %d\nfd memfd %d\nfd pipe_r %d\nfd pipe_w %d\n"
		 "fd dir %d\nfd zero %d\nfd urandom %d\n", a, b, del, mfd, p[0], p[1], dir, zero, ur);

	zdtm_ready_wait();

	zdtm_check(lseek(a, 0, SEEK_CUR) == 1234, "offset of a");
	zdtm_check(same(a, 1, 5000), "contents of a");
	zdtm_check(lseek(b, 0, SEEK_CUR) == 5, "offset of b");
	fl = fcntl(b, F_GETFL);
	zdtm_check((fl & O_APPEND) && (fl & O_ACCMODE) == O_WRONLY, "flags of b");
	zdtm_check(fcntl(b, F_GETFD) == FD_CLOEXEC, "cloexec of b");
	zdtm_check(lseek(del, 0, SEEK_CUR) == 777 && same(del, 2, 10000), "deleted file");
	zdtm_check(lseek(mfd, 0, SEEK_CUR) == 4321 && same(mfd, 3, 9000), "memfd");
	zdtm_check(fcntl(mfd, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW), "memfd seals");
	memset(buf, 0, sizeof(buf));
	zdtm_check(read(p[0], buf, sizeof(buf)) == (ssize_t)strlen(PIPE_MSG) && !strcmp(buf, PIPE_MSG),
		   "pipe bytes lost or changed: '%s'", buf);
	zdtm_check(fcntl(dir, F_GETFD) == 0 && fcntl(zero, F_GETFD) == 0, "dir/zero fds");
	zdtm_check(fcntl(ur, F_GETFL) & O_NONBLOCK, "urandom flags");
	zdtm_pass();
}
