/* /proc/PID/maps and /proc/PID/smaps: the target's address space.
 *
 * One parser serves both files: smaps is maps with "Key: value" lines after
 * each mapping, of which we keep Rss, Anonymous, Swap and VmFlags. Special
 * mappings ([heap], [stack], [vdso], [vvar], [vvar_vclock], [vsyscall], and
 * whatever a newer kernel adds) keep their bracketed name as given: callers
 * must never assume the list. */
#ifndef CRYO_PROC_MAPS_H
#define CRYO_PROC_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* smaps VmFlags, two letters each (fs/proc/task_mmu.c show_smap_vma_flags). */
#define PROC_VMFLAGS(X) \
	X(RD, "rd") X(WR, "wr") X(EX, "ex") X(SH, "sh") X(MR, "mr") \
	X(MW, "mw") X(ME, "me") X(MS, "ms") X(GD, "gd") X(PF, "pf") \
	X(LO, "lo") X(IO, "io") X(SR, "sr") X(RR, "rr") X(DC, "dc") \
	X(DE, "de") X(AC, "ac") X(NR, "nr") X(HT, "ht") X(SF, "sf") \
	X(AR, "ar") X(WF, "wf") X(DD, "dd") X(SD, "sd") X(MM, "mm") \
	X(HG, "hg") X(NH, "nh") X(MG, "mg") X(UM, "um") X(UW, "uw") \
	X(UI, "ui") X(SS, "ss") X(SL, "sl") X(LF, "lf") X(BT, "bt") \
	X(MT, "mt") X(GU, "gu") X(DW, "dw")

enum proc_vmflag_bit {
#define PROC_VMF_ENUM(n, s) PROC_VMF_BIT_##n,
	PROC_VMFLAGS(PROC_VMF_ENUM)
#undef PROC_VMF_ENUM
	PROC_VMF_BIT__COUNT
};
#define PROC_VMF(n) (1ULL << PROC_VMF_BIT_##n)
/* Named aliases for the ones the engine acts on. */
#define PROC_VMF_DONTFORK   PROC_VMF(DC)
#define PROC_VMF_WIPEONFORK PROC_VMF(WF)
#define PROC_VMF_DONTDUMP   PROC_VMF(DD)
#define PROC_VMF_HUGEPAGE   PROC_VMF(HG)
#define PROC_VMF_NOHUGEPAGE PROC_VMF(NH)
#define PROC_VMF_GROWSDOWN  PROC_VMF(GD)
#define PROC_VMF_LOCKED     PROC_VMF(LO)
#define PROC_VMF_IO         PROC_VMF(IO)
#define PROC_VMF_PFNMAP     PROC_VMF(PF)

#define PROC_PROT_READ  1u
#define PROC_PROT_WRITE 2u
#define PROC_PROT_EXEC  4u

struct proc_vma {
	uint64_t start, end;     /* [start, end) */
	uint64_t pgoff;          /* file offset in bytes */
	uint64_t inode;
	uint32_t dev_major, dev_minor;
	uint32_t prot;           /* PROC_PROT_* */
	bool shared;             /* 's' rather than 'p' */
	bool deleted;            /* path ended in " (deleted)", stripped */
	bool special;            /* path is a bracketed kernel name */
	char *path;              /* owned; "" for anonymous; "[vdso]" etc. kept */
	/* smaps only (has_smaps): */
	bool has_smaps;
	uint64_t vmflags;        /* PROC_VMF_* bits */
	uint32_t vmflags_unknown;/* count of letters this build does not know */
	uint64_t rss_kb, anon_kb, swap_kb;
};

struct proc_maps {
	size_t n;
	struct proc_vma *v;      /* owned, sorted as the kernel printed them */
};

/* Parse a maps or smaps text. On -EINVAL, logs the bad line number. The
 * result is owned by the caller: proc_maps_free(). */
int proc_maps_parse(const char *buf, size_t len, struct proc_maps *out);
/* Read /proc/PID/maps (smaps=false) or /proc/PID/smaps (smaps=true). */
int proc_maps_read(pid_t pid, bool smaps, struct proc_maps *out);
void proc_maps_free(struct proc_maps *m);

/* The mapping holding addr, or NULL. */
const struct proc_vma *proc_maps_find(const struct proc_maps *m, uint64_t addr);
/* The first mapping whose bracketed name equals name ("[vdso]"), or NULL. */
const struct proc_vma *proc_maps_find_name(const struct proc_maps *m, const char *name);
/* Letters of a VmFlags bit, e.g. "dd"; NULL if out of range. */
const char *proc_vmflag_name(unsigned bit);

#endif
