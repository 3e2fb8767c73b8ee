/* zdtm-style workloads: set up state, print "ready" (and "key value"
 * lines the driver checks the image against) on stdout, wait for SIGUSR2,
 * check the state is still what was set up, print PASS or FAIL: reason.
 *
 * SIGUSR2 is blocked before any thread starts and taken with sigwaitinfo,
 * so no handler runs and the wait is an ordinary restartable syscall. */
#ifndef ZDTM_H
#define ZDTM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void zdtm_block_usr2(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	sigprocmask(SIG_BLOCK, &s, NULL);
}

static inline void zdtm_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/* Print ready, then wait for SIGUSR2 (blocked by zdtm_block_usr2). */
static inline void zdtm_ready_wait(void)
{
	sigset_t s;
	int sig;

	zdtm_say("ready\n");
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	while (sigwait(&s, &sig) || sig != SIGUSR2)
		;
}

#define zdtm_fail(...) do { zdtm_say("FAIL: " __VA_ARGS__); zdtm_say("\n"); exit(1); } while (0)
#define zdtm_check(cond, ...) do { if (!(cond)) zdtm_fail(__VA_ARGS__); } while (0)
#define zdtm_pass() do { zdtm_say("PASS\n"); exit(0); } while (0)

/* The byte pattern of page i of region r: every byte says where it is. */
static inline unsigned char zdtm_pat(unsigned r, size_t i, size_t off)
{
	return (unsigned char)(r * 31 + i * 7 + off % 251 + 1);
}

#endif
