/* Kernel ABI definitions missing from Debian 12's 6.1 headers.
 *
 * Only what cryo uses; each guarded so newer linux/ uapi headers win. Values are
 * kernel ABI (include/uapi/linux/fs.h and userfaultfd.h of 6.7+) and cannot
 * change. Include this after <linux/fs.h> and <linux/userfaultfd.h>. */
#ifndef CRYO_COMMON_COMPAT_H
#define CRYO_COMMON_COMPAT_H

#include <stdint.h>
#include <linux/ioctl.h>
#include <linux/types.h>

/* --- PAGEMAP_SCAN ioctl on /proc/PID/pagemap (6.7+) --- */
#ifndef PAGEMAP_SCAN
/* One run of pages sharing the same reported categories. */
struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

struct pm_scan_arg {
	__u64 size;               /* sizeof(struct pm_scan_arg) */
	__u64 flags;              /* PM_SCAN_* */
	__u64 start;              /* range to walk, page aligned */
	__u64 end;
	__u64 walk_end;           /* out: where the walk stopped */
	__u64 vec;                /* out: struct page_region array */
	__u64 vec_len;
	__u64 max_pages;          /* 0 = no limit */
	__u64 category_inverted;
	__u64 category_mask;      /* all of these must match */
	__u64 category_anyof_mask;
	__u64 return_mask;        /* categories reported in vec */
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

#ifndef PAGE_IS_WPALLOWED
#define PAGE_IS_WPALLOWED  (1ULL << 0)
#endif
#ifndef PAGE_IS_WRITTEN
#define PAGE_IS_WRITTEN    (1ULL << 1)
#endif
#ifndef PAGE_IS_FILE
#define PAGE_IS_FILE       (1ULL << 2)
#endif
#ifndef PAGE_IS_PRESENT
#define PAGE_IS_PRESENT    (1ULL << 3)
#endif
#ifndef PAGE_IS_SWAPPED
#define PAGE_IS_SWAPPED    (1ULL << 4)
#endif
#ifndef PAGE_IS_PFNZERO
#define PAGE_IS_PFNZERO    (1ULL << 5)
#endif
#ifndef PAGE_IS_HUGE
#define PAGE_IS_HUGE       (1ULL << 6)
#endif
#ifndef PAGE_IS_SOFT_DIRTY
#define PAGE_IS_SOFT_DIRTY (1ULL << 7)
#endif

#ifndef PM_SCAN_WP_MATCHING
#define PM_SCAN_WP_MATCHING   (1ULL << 0) /* write-protect what matched */
#endif
#ifndef PM_SCAN_CHECK_WPASYNC
#define PM_SCAN_CHECK_WPASYNC (1ULL << 1) /* fail unless uffd WP-async */
#endif

/* --- userfaultfd features newer than 6.1 --- */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON         (1ULL << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC       (1ULL << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE           (1ULL << 16)
#endif

/* --- pidfd (6.9+) --- */
#ifndef PIDFD_THREAD
#define PIDFD_THREAD 00000200	/* O_EXCL */
#endif

#endif
