/* /proc/PID/status and /proc/PID/stat (also of /proc/PID/task/TID/). */
#ifndef CRYO_PROC_STATUS_H
#define CRYO_PROC_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_STATUS_GROUPS_MAX 1024
#define PROC_NS_LEVELS 33	/* the kernel's MAX_PID_NS_LEVEL (32), and the host's */

struct proc_status {
	char name[64];            /* as printed (kernel-escaped), truncated */
	char state;               /* 'R', 'S', 't', ... */
	uint32_t umask;
	bool has_umask;
	int32_t tgid, pid, ppid, tracer_pid;
	uint32_t uid[4], gid[4];  /* real, effective, saved, fs */
	uint32_t ngroups;
	uint32_t groups[PROC_STATUS_GROUPS_MAX];
	uint32_t threads;
	uint64_t sig_pnd, shd_pnd, sig_blk, sig_ign, sig_cgt;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int32_t no_new_privs;     /* -1 when the line is absent */
	int32_t seccomp;          /* 0 off, 1 strict, 2 filter; -1 absent */
	int32_t seccomp_filters;  /* -1 absent */
	/* NSpid, NSpgid, NSsid: the ids as each pid namespace sees them,
	 * from /proc's own (index 0) down to the process's (ns_levels - 1);
	 * 0 where the group or session is not visible. 0 levels: no such
	 * lines (a kernel before 4.1). */
	uint32_t ns_levels;
	int32_t ns_pid[PROC_NS_LEVELS], ns_pgid[PROC_NS_LEVELS], ns_sid[PROC_NS_LEVELS];
	uint32_t seen;            /* PROC_STATUS_HAVE_* of lines found */
};

#define PROC_STATUS_HAVE_IDS     (1u << 0)  /* Tgid, Pid, PPid */
#define PROC_STATUS_HAVE_CREDS   (1u << 1)  /* Uid, Gid */
#define PROC_STATUS_HAVE_SIGS    (1u << 2)  /* SigPnd ShdPnd SigBlk SigIgn SigCgt */
#define PROC_STATUS_HAVE_CAPS    (1u << 3)  /* CapInh CapPrm CapEff CapBnd */
#define PROC_STATUS_HAVE_THREADS (1u << 4)
#define PROC_STATUS_HAVE_ALL     0x1fu

/* Parse a status text. Lines this build does not know are skipped; a line
 * without "Key:" or a known key with a bad value is -EINVAL. Missing
 * required lines (any PROC_STATUS_HAVE_ALL bit) is -ENODATA. */
int proc_status_parse(const char *buf, size_t len, struct proc_status *st);
/* tid 0: /proc/PID/status, else /proc/PID/task/TID/status. */
int proc_status_read(pid_t pid, pid_t tid, struct proc_status *st);

/* Fields of /proc/PID/stat, numbered as in proc(5): 1 pid, 2 comm, 3 state. */
enum proc_stat_field {
	PROC_STAT_PPID = 4, PROC_STAT_PGRP = 5, PROC_STAT_SESSION = 6,
	PROC_STAT_TTY_NR = 7, PROC_STAT_TPGID = 8, PROC_STAT_FLAGS = 9, PROC_STAT_PRIORITY = 18,
	PROC_STAT_NICE = 19, PROC_STAT_NUM_THREADS = 20,
	PROC_STAT_STARTTIME = 22, PROC_STAT_VSIZE = 23, PROC_STAT_RSS = 24,
	PROC_STAT_START_CODE = 26, PROC_STAT_END_CODE = 27,
	PROC_STAT_START_STACK = 28, PROC_STAT_EXIT_SIGNAL = 38,
	PROC_STAT_PROCESSOR = 39, PROC_STAT_RT_PRIORITY = 40,
	PROC_STAT_POLICY = 41, PROC_STAT_START_DATA = 45,
	PROC_STAT_END_DATA = 46, PROC_STAT_START_BRK = 47,
	PROC_STAT_ARG_START = 48, PROC_STAT_ARG_END = 49,
	PROC_STAT_ENV_START = 50, PROC_STAT_ENV_END = 51,
	PROC_STAT_EXIT_CODE = 52,
	PROC_STAT_NFIELDS = 64,   /* room for fields newer kernels append */
};
#define PROC_STAT_MIN_FIELDS PROC_STAT_ENV_END

struct proc_stat {
	int32_t pid;
	char comm[64];            /* between the first '(' and the last ')' */
	char state;
	unsigned nfields;         /* highest field number present */
	int64_t f[PROC_STAT_NFIELDS + 1]; /* f[n] = field n (n >= 4) */
};

/* Parse a stat line: the comm may hold spaces and parentheses, so the
 * fields start after the LAST ')'. Fewer than PROC_STAT_MIN_FIELDS is
 * -EINVAL. */
int proc_stat_parse(const char *buf, size_t len, struct proc_stat *st);
int proc_stat_read(pid_t pid, pid_t tid, struct proc_stat *st);

#endif
