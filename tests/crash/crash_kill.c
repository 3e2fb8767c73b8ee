/* kill -9 test of the store on a real file: the crash fault points
 * (store.commit.crash, store.checkpoint.crash, store.clean.crash) SIGKILL a
 * child in the middle of a commit, a checkpoint or a cleaning pass. The
 * child reports every call that returned on a pipe; the parent reopens the
 * file and checks: fsck clean, every snapshot whose commit returned is there
 * with its pages, none whose delete returned is, and at most the one call
 * in flight differs (I3, I4, I5, I8).
 *
 * Prints "kill states checked: N, failed: M"; exits 1 when M > 0. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/csum.h"
#include "common/fault.h"
#include "store/store.h"

#define SEG_SIZE	(256u * 1024u)
#define DEV_SIZE	(64u * 1024u + 16u * SEG_SIZE)
#define PAGES		24
#define ROUNDS		10
#define NOBJ		3
#define MAXSNAP		64

static const char *const objs[NOBJ] = { "one", "two", "three" };

static void gen(uint8_t *p, unsigned obj, uint64_t no, uint64_t vpn)
{
	uint64_t s = (obj + 1) * 1000003ull + no * 7919ull + vpn;

	for (size_t i = 0; i < STORE_PAGE_SIZE; i += 8) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		/* half the page random, half text-like: both codec paths */
		uint64_t v = i < STORE_PAGE_SIZE / 2 ? s : 0x20676f6c206f7972ull;
		memcpy(p + i, &v, 8);
	}
}

static void say(int fd, char what, unsigned obj, uint64_t no)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%c %u %" PRIu64 "\n", what, obj, no);

	if (write(fd, line, (size_t)n) != n)
		_exit(3);
}

/* The child: a workload on path; every call that returned is reported. */
static int child(const char *path, int fd)
{
	struct store_open_opts oo = { .cache_bytes = 1u << 20 };
	uint64_t nos[NOBJ][MAXSNAP];
	unsigned nn[NOBJ] = { 0 };
	uint8_t page[STORE_PAGE_SIZE];
	struct store *s;
	int r = store_open(path, &oo, &s);

	if (r)
		return 2;
	for (unsigned round = 0; round < ROUNDS; round++) {
		for (unsigned o = 0; o < NOBJ; o++) {
			struct store_txn *t;
			uint64_t no = 0, next = nn[o] ? nos[o][nn[o] - 1] + 1 : 1;

			if (store_txn_begin(s, objs[o], 0, &t))
				return 2;
			for (uint64_t v = 0; v < PAGES; v++) {
				gen(page, o, next, v);
				if (store_txn_put_page(t, v, page)) {
					store_txn_abort(t);
					return 2;
				}
			}
			if (store_txn_commit(t, &no) || no != next)
				return 2;
			nos[o][nn[o]++] = no;
			say(fd, 'C', o, no);
		}
		if (round % 3 == 2) {
			unsigned o = round % NOBJ;

			if (store_snap_delete(s, objs[o], nos[o][0]))
				return 2;
			say(fd, 'D', o, nos[o][0]);
			memmove(nos[o], nos[o] + 1, --nn[o] * sizeof(nos[o][0]));
		}
		if (round % 4 == 3) {
			struct store_clean_report cr;
			if (store_clean(s, 0, &cr))
				return 2;
			say(fd, 'K', 0, 0);
		}
		if (round % 5 == 4) {
			if (store_checkpoint(s))
				return 2;
			say(fd, 'P', 0, 0);
		}
	}
	return store_close(s) ? 2 : 0;
}

struct seen {
	int state[NOBJ][MAXSNAP * 2];	/* 0 never, 1 committed, 2 deleted */
	uint64_t calls;
};

static void read_reports(int fd, struct seen *sn)
{
	char buf[8192];
	size_t have = 0;
	ssize_t n;

	while ((n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		char *line = buf, *nl;

		have += (size_t)n;
		buf[have] = 0;
		while ((nl = strchr(line, '\n'))) {
			char what;
			unsigned o;
			uint64_t no;

			*nl = 0;
			if (sscanf(line, "%c %u %" SCNu64, &what, &o, &no) == 3) {
				sn->calls++;
				if (o < NOBJ && no < MAXSNAP * 2 && what != 'K' && what != 'P')
					sn->state[o][no] = what == 'C' ? 1 : 2;
			}
			line = nl + 1;
		}
		have = (size_t)(buf + have - line);
		memmove(buf, line, have);
	}
}

struct found {
	unsigned obj;
	uint64_t no;
};

struct list {
	struct found f[NOBJ * MAXSNAP * 2];
	size_t n;
	int bad;
};

static int list_cb(void *arg, const struct store_snap_info *info)
{
	struct list *l = arg;
	unsigned o;

	for (o = 0; o < NOBJ && strcmp(objs[o], info->object); o++)
		;
	if (o == NOBJ || l->n == sizeof(l->f) / sizeof(l->f[0])) {
		l->bad = 1;
		return 0;
	}
	l->f[l->n++] = (struct found){ o, info->no };
	return 0;
}

/* Check the store at path against what the child reported. */
static int verify(const char *path, const struct seen *sn, char *why, size_t len)
{
	struct store_open_opts oo = { .read_only = 1, .cache_bytes = 1u << 20 };
	struct store_fsck_report fr = { 0 };
	struct list *l = calloc(1, sizeof(*l));
	uint8_t page[STORE_PAGE_SIZE], want[STORE_PAGE_SIZE];
	int surprises = 0, r, fail = 1;
	struct store *s = NULL;

	if (!l)
		return snprintf(why, len, "no memory"), 1;
	r = store_open(path, &oo, &s);
	if (r) {
		snprintf(why, len, "open = %d (%s)", r, store_strerror(r));
		goto out;
	}
	r = store_fsck(s, &fr, NULL, NULL);
	if (r || fr.problems) {
		snprintf(why, len, "fsck = %d, %" PRIu64 " problems", r, fr.problems);
		goto out;
	}
	store_list(s, list_cb, l);
	if (l->bad) {
		snprintf(why, len, "an object nobody made");
		goto out;
	}
	for (unsigned o = 0; o < NOBJ; o++)
		for (uint64_t no = 1; no < MAXSNAP * 2; no++) {
			int present = 0;

			for (size_t i = 0; i < l->n; i++)
				present |= l->f[i].obj == o && l->f[i].no == no;
			if (sn->state[o][no] == 1 && !present) {
				snprintf(why, len, "%s#%" PRIu64 " committed, then missing", objs[o], no);
				goto out;
			}
			/* the call in flight may or may not have landed: one surprise */
			if ((sn->state[o][no] == 2 && present) || (sn->state[o][no] == 0 && present))
				surprises++;
		}
	if (surprises > 1) {
		snprintf(why, len, "%d snapshots differ from what returned (one call was in flight)",
			 surprises);
		goto out;
	}
	for (size_t i = 0; i < l->n; i++) {
		struct store_snap *ss;

		if (store_snap_open(s, objs[l->f[i].obj], l->f[i].no, &ss)) {
			snprintf(why, len, "%s#%" PRIu64 " listed, does not open", objs[l->f[i].obj],
				 l->f[i].no);
			goto out;
		}
		for (uint64_t v = 0; v < PAGES; v++) {
			gen(want, l->f[i].obj, l->f[i].no, v);
			if (store_snap_read_page(ss, v, page) != STORE_PAGE_DATA ||
			    memcmp(page, want, sizeof(page))) {
				snprintf(why, len, "%s#%" PRIu64 " page %" PRIu64 " differs",
					 objs[l->f[i].obj], l->f[i].no, v);
				store_snap_close(ss);
				goto out;
			}
		}
		store_snap_close(ss);
	}
	fail = 0;
out:
	store_close(s);
	free(l);
	return fail;
}

/* One run with point armed at hit n. 1 when the child finished without
 * the point firing (n is past the workload), 0 when a kill was checked. */
static int one(const char *dir, const char *point, unsigned n, uint64_t *states, uint64_t *failed)
{
	struct store_create_opts co = { .size = DEV_SIZE, .seg_size = SEG_SIZE, .codec = CODEC_LZ4 };
	struct seen *sn = calloc(1, sizeof(*sn));
	char path[4096], arm[64], why[256] = "";
	int fds[2], status = 0, done = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/store-%s-%u", dir, point, n);
	unlink(path);
	if (!sn || store_create(path, &co) || pipe(fds)) {
		printf("FAIL %s@%u: cannot set up\n", point, n);
		(*failed)++;
		free(sn);
		return 1;
	}
	snprintf(arm, sizeof(arm), "%s@%u", point, n);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		setenv("CRYO_FAULT", arm, 1);
		fault_reset();
		_exit(child(path, fds[1]));
	}
	close(fds[1]);
	read_reports(fds[0], sn);
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		done = 1;	/* the point never fired: nothing was killed */
	} else if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
		snprintf(why, sizeof(why), "the child failed (status %#x) instead of being killed",
			 status);
	} else {
		(*states)++;
		verify(path, sn, why, sizeof(why));
	}
	if (why[0]) {
		(*failed)++;
		printf("FAIL %s@%u (after %" PRIu64 " calls returned): %s\n", point, n, sn->calls, why);
	}
	unlink(path);
	free(sn);
	return done;
}

int main(void)
{
	static const char *const points[] = {
		"store.commit.crash", "store.checkpoint.crash", "store.clean.crash",
	};
	char dir[] = "/tmp/cryo-kill-XXXXXX";
	uint64_t states = 0, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	setenv("CRYO_LOG", "quiet", 0);
	unsetenv("CRYO_FAULT");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	for (size_t p = 0; p < sizeof(points) / sizeof(points[0]); p++) {
		uint64_t before = states;
		unsigned n;

		for (n = 1; n < 200; n++)
			if (one(dir, points[p], n, &states, &failed))
				break;
		printf("%s: %" PRIu64 " kills checked\n", points[p], states - before);
		if (states == before) {
			printf("FAIL %s never fired\n", points[p]);
			failed++;
		}
	}
	rmdir(dir);
	printf("kill states checked: %" PRIu64 ", failed: %" PRIu64 "\n", states, failed);
	return failed ? 1 : 0;
}
