/* The workload of test_killsweep.sh: a process that checks itself after
 * every kill -9 of whatever was snapshotting or melting it.
 *
 *   sweep_workload RESULT
 *
 * Threads: main blocks in read() on a pipe of its own (a restarted read
 * must return the bytes whole, never EINTR); a sleeper loops in
 * nanosleep() (never short, never EINTR); a spinner runs a loop whose
 * flags and registers are checked between the instruction that sets them
 * and the one that uses them; a controller takes SIGUSR1 (check) and
 * SIGINT (final check, then exit) with sigwaitinfo and writes the
 * command into the pipe. Blocked in every thread: SIGUSR2 (raised once at
 * the start, thread-directed) and SIGRTMIN+1 (queued twice with values 7
 * and 8): both must stay queued. 4 MiB of memory hold a pattern.
 *
 * Each check writes "PASS k eintr=N" or "FAIL k: reason" (k counts the
 * checks, N the nanosleeps that returned EINTR)
 * to RESULT (a new file each time, renamed into place: a file the
 * process keeps open and appends to would not match its snapshot). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "regspin.h"

#define MEM (4u << 20)
#define SLEEP_MS 20

static volatile int stop;
static volatile unsigned long sleeps, sleep_bad, spins, spin_bad;
static unsigned char *mem;
static int pfd[2];
static const char *result;
static sigset_t blocked;

static unsigned long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

/* A melt returns EINTR from an interrupted nanosleep (its restart_block
 * is kernel state, docs/DESIGN-restore.md): counted apart, and the rest
 * slept, as sleep(3) does. A snapshot must never cause one. */
static volatile unsigned long eintrs;

static void *sleeper(void *arg)
{
	(void)arg;
	while (!stop) {
		struct timespec ts = { 0, SLEEP_MS * 1000000L };
		unsigned long long t0 = now_ms();
		int r;

		while ((r = nanosleep(&ts, &ts)) && errno == EINTR)
			eintrs++;
		if (r || now_ms() - t0 < SLEEP_MS)
			sleep_bad++;
		sleeps++;
	}
	return NULL;
}

/* A flag or register put back wrong takes the "bad" exit. */
static void *spinner(void *arg)
{
	(void)arg;
	while (!stop) {
		if (regspin())
			spin_bad++;
		spins++;
	}
	return NULL;
}

/* SIGUSR1: "check", SIGINT: "final", into the pipe main reads. */
static void *controller(void *arg)
{
	sigset_t want;
	int sig;

	(void)arg;
	sigemptyset(&want);
	sigaddset(&want, SIGUSR1);
	sigaddset(&want, SIGINT);
	for (;;) {
		if (sigwait(&want, &sig))
			continue;
		if (write(pfd[1], sig == SIGINT ? "final" : "check", 5) != 5)
			_exit(3);
	}
	return NULL;
}

static unsigned char pat(size_t i)
{
	return (unsigned char)(i * 7 + i / 4096 + 1);
}

static void report(unsigned k, const char *why)
{
	char tmp[4096], msg[256];
	int fd, n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", result);
	n = why ? snprintf(msg, sizeof(msg), "FAIL %u: %s\n", k, why) :
		  snprintf(msg, sizeof(msg), "PASS %u eintr=%lu\n", k, eintrs);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, msg, (size_t)n) != n || close(fd) || rename(tmp, result))
		_exit(4);
}

/* The queued signals, taken (final) or only looked at (check). */
static const char *signals_queued(int take)
{
	struct timespec zero = { 0, 0 };
	siginfo_t si;
	sigset_t pend, one;

	if (sigpending(&pend))
		return "sigpending failed";
	if (!sigismember(&pend, SIGUSR2) || !sigismember(&pend, SIGRTMIN + 1))
		return "a queued signal is gone";
	if (!take)
		return NULL;
	sigemptyset(&one);
	sigaddset(&one, SIGRTMIN + 1);
	for (int v = 7; v <= 8; v++)
		if (sigtimedwait(&one, &si, &zero) != SIGRTMIN + 1 || si.si_value.sival_int != v)
			return "SIGRTMIN+1 lost its values or their order";
	if (sigtimedwait(&one, &si, &zero) >= 0)
		return "SIGRTMIN+1 queued once too often";
	sigemptyset(&one);
	sigaddset(&one, SIGUSR2);
	if (sigtimedwait(&one, &si, &zero) != SIGUSR2)
		return "SIGUSR2 lost";
	return NULL;
}

static const char *check(const char *cmd, ssize_t r, int err)
{
	static char why[128];
	sigset_t cur;

	if (r != 5) {
		snprintf(why, sizeof(why), "read returned %zd (errno %d)", r, err);
		return why;
	}
	if (strncmp(cmd, "check", 5) && strncmp(cmd, "final", 5))
		return "read returned other bytes";
	for (size_t i = 0; i < MEM; i += 511)
		if (mem[i] != pat(i))
			return "memory changed";
	if (sleep_bad)
		return "a nanosleep was cut short or failed";
	if (spin_bad)
		return "the spinner saw a flag or register change";
	if (!sleeps || !spins)
		return "a thread does not run";
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&cur, s) != sigismember(&blocked, s))
			return "the signal mask changed";
	return signals_queued(!strncmp(cmd, "final", 5));
}

int main(int argc, char **argv)
{
	pthread_t th[3];
	union sigval v;
	unsigned k = 0;

	if (argc != 2)
		return 2;
	result = argv[1];
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGUSR1);
	sigaddset(&blocked, SIGINT);
	sigaddset(&blocked, SIGUSR2);
	sigaddset(&blocked, SIGRTMIN + 1);
	pthread_sigmask(SIG_SETMASK, &blocked, NULL);
	raise(SIGUSR2);
	v.sival_int = 7;
	sigqueue(getpid(), SIGRTMIN + 1, v);
	v.sival_int = 8;
	sigqueue(getpid(), SIGRTMIN + 1, v);
	mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || pipe2(pfd, O_CLOEXEC))
		return 2;
	for (size_t i = 0; i < MEM; i++)
		mem[i] = pat(i);
	if (pthread_create(&th[0], NULL, sleeper, NULL) ||
	    pthread_create(&th[1], NULL, spinner, NULL) ||
	    pthread_create(&th[2], NULL, controller, NULL))
		return 2;
	report(k, NULL);	/* ready */
	for (;;) {
		char cmd[8] = { 0 };
		ssize_t r = read(pfd[0], cmd, 5);
		const char *why = check(cmd, r, r < 0 ? errno : 0);

		report(++k, why);
		if (why || !strncmp(cmd, "final", 5))
			return why ? 1 : 0;
	}
}
