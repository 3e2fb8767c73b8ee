/* Signals, timers and process attributes: a SIGUSR1 handler (SA_SIGINFO |
 * SA_RESTART | SA_ONSTACK, mask SIGINT), SIGPIPE ignored, an alternate
 * signal stack, SIGUSR1 pending for the process and SIGRTMIN+1 for the
 * thread (both blocked), an ITIMER_REAL, a POSIX timer, umask 027, nice 5,
 * pdeath signal SIGHUP, child subreaper. Everything must be in the image
 * and still so in the process after the snapshot. */
#include "zdtm.h"

#include <errno.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void on_usr1(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; }
static void on_alrm(int sig) { (void)sig; }

int main(void)
{
	struct sigaction sa = { 0 }, got;
	struct itimerval it = { .it_interval = { 50, 0 }, .it_value = { 100, 0 } }, itg;
	struct itimerspec ts = { .it_interval = { 10, 0 }, .it_value = { 200, 0 } }, tsg;
	struct sigevent sev = { 0 };
	stack_t ss = { .ss_size = 65536 }, ssg;
	sigset_t blk, pend;
	timer_t tid;
	int v;

	zdtm_block_usr2();
	ss.ss_sp = malloc(ss.ss_size);
	zdtm_check(!sigaltstack(&ss, NULL), "sigaltstack");
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	zdtm_check(!sigaction(SIGUSR1, &sa, NULL), "sigaction");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alrm);
	signal(SIGRTMIN + 2, on_alrm);
	sigemptyset(&blk);
	sigaddset(&blk, SIGUSR1);
	sigaddset(&blk, SIGRTMIN + 1);
	sigprocmask(SIG_BLOCK, &blk, NULL);
	kill(getpid(), SIGUSR1);
	syscall(SYS_tgkill, getpid(), gettid(), SIGRTMIN + 1);
	zdtm_check(!setitimer(ITIMER_REAL, &it, NULL), "setitimer");
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGRTMIN + 2;
	sev.sigev_value.sival_ptr = (void *)0x1234;
	zdtm_check(!timer_create(CLOCK_MONOTONIC, &sev, &tid), "timer_create");
	zdtm_check(!timer_settime(tid, 0, &ts, NULL), "timer_settime");
	umask(027);
	zdtm_check(!setpriority(PRIO_PROCESS, 0, 5), "setpriority");
	prctl(PR_SET_PDEATHSIG, SIGHUP);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	zdtm_say("handler 0x%llx\naltstack 0x%llx %zu\nsigrtmin %d\n",
		 (unsigned long long)(uintptr_t)on_usr1, (unsigned long long)(uintptr_t)ss.ss_sp,
		 ss.ss_size, SIGRTMIN);

	zdtm_ready_wait();

	zdtm_check(!sigaction(SIGUSR1, NULL, &got), "sigaction get");
	zdtm_check(got.sa_sigaction == on_usr1, "SIGUSR1 handler changed");
	zdtm_check((got.sa_flags & (SA_SIGINFO | SA_RESTART | SA_ONSTACK)) ==
		   (SA_SIGINFO | SA_RESTART | SA_ONSTACK), "SIGUSR1 flags changed");
	zdtm_check(sigismember(&got.sa_mask, SIGINT), "SIGUSR1 mask changed");
	zdtm_check(!sigaction(SIGPIPE, NULL, &got) && got.sa_handler == SIG_IGN, "SIGPIPE not ignored");
	sigpending(&pend);
	zdtm_check(sigismember(&pend, SIGUSR1), "SIGUSR1 no longer pending");
	zdtm_check(sigismember(&pend, SIGRTMIN + 1), "SIGRTMIN+1 no longer pending");
	zdtm_check(!sigaltstack(NULL, &ssg) && ssg.ss_sp == ss.ss_sp && ssg.ss_size == ss.ss_size,
		   "alternate stack changed");
	zdtm_check(!getitimer(ITIMER_REAL, &itg) && itg.it_interval.tv_sec == 50 &&
		   itg.it_value.tv_sec > 0 && itg.it_value.tv_sec <= 100, "itimer changed");
	zdtm_check(!timer_gettime(tid, &tsg) && tsg.it_interval.tv_sec == 10 &&
		   tsg.it_value.tv_sec > 0 && tsg.it_value.tv_sec <= 200, "posix timer changed");
	v = (int)umask(0);
	zdtm_check(v == 027, "umask is %o", v);
	errno = 0;
	zdtm_check(getpriority(PRIO_PROCESS, 0) == 5, "nice changed");
	zdtm_check(!prctl(PR_GET_PDEATHSIG, &v) && v == SIGHUP, "pdeath signal changed");
	zdtm_check(!prctl(PR_GET_CHILD_SUBREAPER, &v) && v == 1, "subreaper changed");
	zdtm_pass();
}
