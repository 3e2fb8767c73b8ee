/* The crash tests' model of what the store has committed: every snapshot
 * that was ever committed (its pages as vpn -> kind + hash, its records as
 * key -> hash + length), every version of the store's visible set, and the
 * store calls that moved from one version to the next with the write
 * counts at which they started and returned. */
#ifndef CRYO_TESTS_CRASH_MODEL_H
#define CRYO_TESTS_CRASH_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct m_page {
	uint64_t vpn;
	uint64_t hash;		/* csum64 of the 4 KiB, 0 for zero pages */
	int kind;		/* STORE_PAGE_ZERO or STORE_PAGE_DATA */
};

struct m_rec {
	char key[STORE_KEY_MAX + 1];
	uint64_t hash;
	size_t len;
};

struct m_snap {
	char obj[STORE_NAME_MAX + 1];
	uint64_t no;
	struct m_page *pg;	/* by vpn */
	size_t npg, cappg;
	struct m_rec *rec;	/* by key (strcmp) */
	size_t nrec, caprec;
};

/* A visible set: snapshot ids (into model.snaps) in store_list order. */
struct m_ver {
	uint32_t *ids;
	size_t n;
};

/* A store call: writes [s, e) are its own; ver is the version after it. */
struct m_ev {
	uint64_t s, e;
	size_t ver;
	char what[64];
};

struct model {
	struct m_snap **snaps;
	size_t nsnaps;
	struct m_ver *vers;	/* vers[0]: the empty store */
	size_t nvers;
	struct m_ev *evs;
	size_t nevs;
};

int model_init(struct model *m);
void model_free(struct model *m);

/* A new snapshot copied from base (or empty when base is NULL); returns its
 * id, or -ENOMEM. Not part of any version until model_commit. */
int model_snap_new(struct model *m, const char *obj, const struct m_snap *base);
struct m_snap *model_snap(const struct model *m, uint32_t id);
int model_put_page(struct m_snap *sn, uint64_t vpn, int kind, uint64_t hash);
void model_drop_pages(struct m_snap *sn, uint64_t vpn, uint64_t count);
int model_put_rec(struct m_snap *sn, const char *key, uint64_t hash, size_t len);
void model_drop_rec(struct m_snap *sn, const char *key);

/* The newest version and the newest snapshot of obj in it (-1 if none). */
const struct m_ver *model_now(const struct model *m);
int model_newest(const struct model *m, const char *obj);
int model_find(const struct model *m, const struct m_ver *v, const char *obj, uint64_t no);

/* New versions: the current one plus a snapshot, or minus those pred()
 * names. */
int model_add(struct model *m, uint32_t id);
int model_remove(struct model *m, int (*pred)(const struct m_snap *, void *), void *arg);
/* Record a store call that returned success. */
int model_event(struct model *m, uint64_t s, uint64_t e, const char *what);

/* The versions a cut after write k may show (see crash_store.c): *a always,
 * *b too when a call was in flight (else *b == *a). */
void model_allowed(const struct model *m, uint64_t k, size_t *a, size_t *b, const struct m_ev **inflight);

#endif
