/* Runs fuzz_proc_parsers' LLVMFuzzerTestOneInput without libFuzzer, so the
 * default test run (any compiler) throws mangled /proc text and netlink
 * replies at every parser of src/proc:
 *
 *   driver_proc [-n RUNS]     RUNS inputs (default 20000, or CRYO_FUZZ_RUNS)
 *                             made from this process's own /proc files and
 *                             a real sock_diag reply, mutated
 *   driver_proc FILE...       each file as one input (libFuzzer crash files)
 *
 * The seeds are read in the parsers' order in fuzz_proc_parsers.c (maps,
 * status, stat, limits, auxv, fdinfo, timers, sockdiag); the first byte of
 * an input picks the parser. */
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "driver_rng.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSEEDS 8
#define SEED_MAX 65536

struct seed {
	uint8_t *b;
	size_t n;
};


static void read_seed(const char *path, struct seed *s)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	s->b = calloc(1, SEED_MAX);
	s->n = 0;
	if (fd < 0 || !s->b)
		goto out;
	while (s->n < SEED_MAX && (n = read(fd, s->b + s->n, SEED_MAX - s->n)) > 0)
		s->n += (size_t)n;
out:
	if (fd >= 0)
		close(fd);
}

/* The kernel's reply to a dump of TCP listeners (this test's own one). */
static void sockdiag_seed(struct seed *s)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = { 0 };
	struct sockaddr_in a = { .sin_family = AF_INET };
	int nl, l;
	ssize_t n;

	s->b = calloc(1, SEED_MAX);
	s->n = 0;
	l = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l >= 0 && (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 3)))
		(void)0;
	nl = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
	if (nl < 0 || !s->b)
		goto out;
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.r.sdiag_family = AF_INET;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = 1u << 10;
	if (send(nl, &req, sizeof(req), 0) == (ssize_t)sizeof(req) &&
	    (n = recv(nl, s->b, SEED_MAX, 0)) > 0)
		s->n = (size_t)n;
out:
	if (nl >= 0)
		close(nl);
	if (l >= 0)
		close(l);
}

/* One input: the parser byte, then seed text with a few mutations. */
static size_t make_input(uint64_t *rs, unsigned which, const struct seed *sd, uint8_t *buf,
			 size_t cap)
{
	static const char interesting[] = "0123456789abcdef :-\n\t/[]()x";
	size_t n = sd->n < cap - 1 ? sd->n : cap - 1;
	unsigned muts = 1 + (unsigned)(rnd(rs) % 8);

	buf[0] = (uint8_t)which;
	memcpy(buf + 1, sd->b, n);
	for (unsigned m = 0; m < muts && n; m++) {
		size_t at = rnd(rs) % n;

		switch (rnd(rs) % 5) {
		case 0: buf[1 + at] ^= (uint8_t)(1u << (rnd(rs) % 8)); break;
		case 1: buf[1 + at] = (uint8_t)interesting[rnd(rs) % (sizeof(interesting) - 1)]; break;
		case 2: buf[1 + at] = (uint8_t)rnd(rs); break;
		case 3: n = at; break;				/* truncate */
		case 4: {					/* repeat a run */
			size_t len = 1 + rnd(rs) % 64;

			if (at + len <= n && n + len < cap - 1) {
				memmove(buf + 1 + at + len, buf + 1 + at, n - at);
				n += len;
			}
			break;
		}
		}
	}
	return n + 1;
}

static int run_file(const char *path)
{
	struct seed s;

	read_seed(path, &s);
	if (!s.b)
		return 1;
	LLVMFuzzerTestOneInput(s.b, s.n);
	free(s.b);
	return 0;
}

/* The fdinfo of a file with a lock of each kind: the seed for fdinfo. */
static const char *fdinfo_with_locks(void)
{
	static char path[64];
	char tmp[] = "/tmp/cryo-fuzz-locks-XXXXXX";
	struct flock px = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 10 };
	struct flock ofd = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 50 };
	int fd = mkstemp(tmp);

	if (fd < 0)
		return "/proc/self/fdinfo/0";
	unlink(tmp);
	(void)fcntl(fd, F_SETLK, &px);
	(void)fcntl(fd, F_OFD_SETLK, &ofd);
	(void)flock(fd, LOCK_SH);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return path;	/* fd stays open: the seed is read later */
}

int main(int argc, char **argv)
{
	const char *const files[NSEEDS] = {
		"/proc/self/maps", "/proc/self/status", "/proc/self/stat", "/proc/self/limits",
		"/proc/self/auxv", fdinfo_with_locks(), "/proc/self/timers", NULL,
	};
	struct seed seeds[NSEEDS];
	unsigned long runs = 20000;
	uint64_t rs = 42;
	uint8_t *buf;
	const char *env = getenv("CRYO_FUZZ_RUNS");

	if (env)
		runs = strtoul(env, NULL, 10);
	if (argc == 3 && !strcmp(argv[1], "-n"))
		runs = strtoul(argv[2], NULL, 10);
	else if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (run_file(argv[i]))
				return 1;
		printf("%d inputs replayed\n", argc - 1);
		return 0;
	}
	for (unsigned i = 0; i < NSEEDS; i++) {
		if (files[i])
			read_seed(files[i], &seeds[i]);
		else
			sockdiag_seed(&seeds[i]);
		if (!seeds[i].b)
			return 1;
	}
	buf = malloc(2 * SEED_MAX);
	if (!buf)
		return 1;
	for (unsigned long r = 0; r < runs; r++) {
		unsigned which = (unsigned)(r % NSEEDS);
		size_t n = make_input(&rs, which, &seeds[which], buf, 2 * SEED_MAX);
		/* an exact-size copy: ASan sees a read past the end */
		uint8_t *in = malloc(n);

		memcpy(in, buf, n);
		LLVMFuzzerTestOneInput(in, n);
		free(in);
	}
	printf("%lu inputs through %d parsers, seeds of %zu..%zu bytes\n", runs, NSEEDS,
	       seeds[NSEEDS - 1].n, seeds[0].n);
	free(buf);
	for (unsigned i = 0; i < NSEEDS; i++)
		free(seeds[i].b);
	return 0;
}
