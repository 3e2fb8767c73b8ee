/* The zdtm-style workloads of restore_workload (see restore_workload.c):
 * what every scenario file shares. */
#ifndef CRYO_TEST_RW_H
#define CRYO_TEST_RW_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"

/* The test's directory: DIR/ready, DIR/go, DIR/result and the scenario's files. */
extern const char *dir;

/* DIR/name holding text (written under another name and renamed). */
void touch(const char *name, const char *text);
int exists(const char *name);
/* Until the test creates DIR/go, after the freeze and melt. */
void wait_go(void);
/* DIR/result = "PASS" or "FAIL: why", then exit. */
void result(int ok, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
double now(void);
/* len bytes of the pattern of seed; check: 1 if they still are. */
void fill(void *p, size_t len, uint32_t seed);
int check(const void *p, size_t len, uint32_t seed);

/* Helpers one scenario file lends another: one message of exactly want
 * (rw_fds.c); exactly want read, a blocking fd waiting a second at most
 * (rw_fds.c); the pid a pidfd names, from fdinfo, or 0 (rw_tree.c). */
int uc_recv(int fd, const char *want);
int ff_reads(int fd, const char *want, size_t n);
long pf_pid(int fd);

/* The scenarios (one per mode name), each in the file of its concern. */
void mode_mem(void) __attribute__((noreturn));
void mode_regs(void) __attribute__((noreturn));
void mode_threads(void) __attribute__((noreturn));
void mode_signals(void) __attribute__((noreturn));
void mode_itimer(void) __attribute__((noreturn));
void mode_sleep(void) __attribute__((noreturn));
void mode_files(void) __attribute__((noreturn));
void mode_locks(void) __attribute__((noreturn));
void mode_read(void) __attribute__((noreturn));
void mode_sockets(void) __attribute__((noreturn));
void mode_incr(void) __attribute__((noreturn));
void mode_churn(void) __attribute__((noreturn));
void mode_lazyops(void) __attribute__((noreturn));
void mode_fdkinds(void) __attribute__((noreturn));
void mode_unixconn(void) __attribute__((noreturn));
void mode_fifo(void) __attribute__((noreturn));
void mode_inotify(void) __attribute__((noreturn));
void mode_tree(void) __attribute__((noreturn));
void mode_pidfd(void) __attribute__((noreturn));
void mode_scmrights(void) __attribute__((noreturn));
void mode_lazytree(void) __attribute__((noreturn));

#endif
