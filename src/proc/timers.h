/* /proc/PID/timers: the POSIX timers of a process (timer_create). Their
 * current value needs timer_gettime inside the target (inject.h). */
#ifndef CRYO_PROC_TIMERS_H
#define CRYO_PROC_TIMERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_TIMERS_MAX 4096

struct proc_timer {
	int32_t id;
	int32_t signo;
	uint64_t sigev_value;     /* the sival_ptr / sival_int bits */
	int32_t notify;           /* SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD */
	int32_t thread_id;        /* 1: SIGEV_THREAD_ID was set ("tid") */
	int32_t notify_pid;       /* the pid or tid after the dot */
	int32_t clock_id;
};

struct proc_timers {
	size_t n;
	struct proc_timer *t;     /* owned: proc_timers_free() */
};

int proc_timers_parse(const char *buf, size_t len, struct proc_timers *out);
int proc_timers_read(pid_t pid, struct proc_timers *out);
void proc_timers_free(struct proc_timers *t);

#endif
