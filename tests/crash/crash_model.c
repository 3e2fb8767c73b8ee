/* The crash tests' model of committed state: see crash_model.h. */
#include "crash_model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 16;
	void *q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	q = realloc(*p, n * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

int model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->vers = calloc(1, sizeof(*m->vers));
	if (!m->vers)
		return -ENOMEM;
	m->nvers = 1;	/* the empty store */
	return 0;
}

static void snap_free(struct m_snap *sn)
{
	if (!sn)
		return;
	free(sn->pg);
	free(sn->rec);
	free(sn);
}

void model_free(struct model *m)
{
	for (size_t i = 0; i < m->nsnaps; i++)
		snap_free(m->snaps[i]);
	for (size_t i = 0; i < m->nvers; i++)
		free(m->vers[i].ids);
	free(m->snaps);
	free(m->vers);
	free(m->evs);
	memset(m, 0, sizeof(*m));
}

struct m_snap *model_snap(const struct model *m, uint32_t id)
{
	return id < m->nsnaps ? m->snaps[id] : NULL;
}

int model_snap_new(struct model *m, const char *obj, const struct m_snap *base)
{
	struct m_snap *sn = calloc(1, sizeof(*sn));
	size_t cap = m->nsnaps;

	if (!sn)
		return -ENOMEM;
	snprintf(sn->obj, sizeof(sn->obj), "%s", obj);
	if (base) {
		sn->cappg = sn->npg = base->npg;
		sn->caprec = sn->nrec = base->nrec;
		sn->pg = malloc((base->npg + 1) * sizeof(*sn->pg));
		sn->rec = malloc((base->nrec + 1) * sizeof(*sn->rec));
		if (!sn->pg || !sn->rec) {
			snap_free(sn);
			return -ENOMEM;
		}
		memcpy(sn->pg, base->pg, base->npg * sizeof(*sn->pg));
		memcpy(sn->rec, base->rec, base->nrec * sizeof(*sn->rec));
	}
	if (grow((void **)&m->snaps, &cap, m->nsnaps + 1, sizeof(*m->snaps))) {
		snap_free(sn);
		return -ENOMEM;
	}
	/* capacity taken as the count: a realloc per snapshot, the model is small */
	m->snaps[m->nsnaps] = sn;
	return (int)m->nsnaps++;
}

/* Index of the first page with vpn >= v. */
static size_t pg_lower(const struct m_snap *sn, uint64_t v)
{
	size_t lo = 0, hi = sn->npg;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (sn->pg[mid].vpn < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int model_put_page(struct m_snap *sn, uint64_t vpn, int kind, uint64_t hash)
{
	size_t i = pg_lower(sn, vpn);

	if (i < sn->npg && sn->pg[i].vpn == vpn) {
		sn->pg[i].kind = kind;
		sn->pg[i].hash = hash;
		return 0;
	}
	if (grow((void **)&sn->pg, &sn->cappg, sn->npg + 1, sizeof(*sn->pg)))
		return -ENOMEM;
	memmove(&sn->pg[i + 1], &sn->pg[i], (sn->npg - i) * sizeof(*sn->pg));
	sn->pg[i] = (struct m_page){ .vpn = vpn, .hash = hash, .kind = kind };
	sn->npg++;
	return 0;
}

void model_drop_pages(struct m_snap *sn, uint64_t vpn, uint64_t count)
{
	size_t a = pg_lower(sn, vpn), b = pg_lower(sn, vpn + count);

	memmove(&sn->pg[a], &sn->pg[b], (sn->npg - b) * sizeof(*sn->pg));
	sn->npg -= b - a;
}

static size_t rec_lower(const struct m_snap *sn, const char *key)
{
	size_t i = 0;

	while (i < sn->nrec && strcmp(sn->rec[i].key, key) < 0)
		i++;
	return i;
}

int model_put_rec(struct m_snap *sn, const char *key, uint64_t hash, size_t len)
{
	size_t i = rec_lower(sn, key);

	if (i < sn->nrec && !strcmp(sn->rec[i].key, key)) {
		sn->rec[i].hash = hash;
		sn->rec[i].len = len;
		return 0;
	}
	if (grow((void **)&sn->rec, &sn->caprec, sn->nrec + 1, sizeof(*sn->rec)))
		return -ENOMEM;
	memmove(&sn->rec[i + 1], &sn->rec[i], (sn->nrec - i) * sizeof(*sn->rec));
	memset(&sn->rec[i], 0, sizeof(sn->rec[i]));
	snprintf(sn->rec[i].key, sizeof(sn->rec[i].key), "%s", key);
	sn->rec[i].hash = hash;
	sn->rec[i].len = len;
	sn->nrec++;
	return 0;
}

void model_drop_rec(struct m_snap *sn, const char *key)
{
	size_t i = rec_lower(sn, key);

	if (i < sn->nrec && !strcmp(sn->rec[i].key, key)) {
		memmove(&sn->rec[i], &sn->rec[i + 1], (sn->nrec - i - 1) * sizeof(*sn->rec));
		sn->nrec--;
	}
}

const struct m_ver *model_now(const struct model *m)
{
	return &m->vers[m->nvers - 1];
}

int model_find(const struct model *m, const struct m_ver *v, const char *obj, uint64_t no)
{
	for (size_t i = 0; i < v->n; i++) {
		const struct m_snap *sn = m->snaps[v->ids[i]];
		if (!strcmp(sn->obj, obj) && sn->no == no)
			return (int)v->ids[i];
	}
	return -1;
}

int model_newest(const struct model *m, const char *obj)
{
	const struct m_ver *v = model_now(m);
	int best = -1;

	for (size_t i = 0; i < v->n; i++) {
		const struct m_snap *sn = m->snaps[v->ids[i]];
		if (!strcmp(sn->obj, obj) && (best < 0 || sn->no > m->snaps[best]->no))
			best = (int)v->ids[i];
	}
	return best;
}

static int ver_push(struct model *m, uint32_t *ids, size_t n)
{
	size_t cap = m->nvers;
	if (grow((void **)&m->vers, &cap, m->nvers + 1, sizeof(*m->vers)))
		return -ENOMEM;
	m->vers[m->nvers].ids = ids;
	m->vers[m->nvers].n = n;
	m->nvers++;
	return 0;
}

/* store_list order: object name, then number. */
static int before(const struct m_snap *a, const struct m_snap *b)
{
	int c = strcmp(a->obj, b->obj);
	return c < 0 || (c == 0 && a->no < b->no);
}

int model_add(struct model *m, uint32_t id)
{
	const struct m_ver *v = model_now(m);
	uint32_t *ids = malloc((v->n + 1) * sizeof(*ids));
	size_t i = 0, j = 0;

	if (!ids)
		return -ENOMEM;
	while (i < v->n && before(m->snaps[v->ids[i]], m->snaps[id]))
		ids[j++] = v->ids[i++];
	ids[j++] = id;
	while (i < v->n)
		ids[j++] = v->ids[i++];
	if (ver_push(m, ids, j)) {
		free(ids);
		return -ENOMEM;
	}
	return 0;
}

int model_remove(struct model *m, int (*pred)(const struct m_snap *, void *), void *arg)
{
	const struct m_ver *v = model_now(m);
	uint32_t *ids = malloc((v->n + 1) * sizeof(*ids));
	size_t j = 0;

	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < v->n; i++)
		if (!pred(m->snaps[v->ids[i]], arg))
			ids[j++] = v->ids[i];
	if (ver_push(m, ids, j)) {
		free(ids);
		return -ENOMEM;
	}
	return 0;
}

int model_event(struct model *m, uint64_t s, uint64_t e, const char *what)
{
	size_t cap = m->nevs;

	if (grow((void **)&m->evs, &cap, m->nevs + 1, sizeof(*m->evs)))
		return -ENOMEM;
	m->evs[m->nevs].s = s;
	m->evs[m->nevs].e = e;
	m->evs[m->nevs].ver = m->nvers - 1;
	snprintf(m->evs[m->nevs].what, sizeof(m->evs[m->nevs].what), "%s", what);
	m->nevs++;
	return 0;
}

/* A cut after write k-1: a call whose writes all came before the cut and
 * whose return followed them (e < k) has returned; one with s < k <= e was
 * in flight; one with s >= k had not started. */
void model_allowed(const struct model *m, uint64_t k, size_t *a, size_t *b, const struct m_ev **inflight)
{
	size_t j = 0;

	while (j < m->nevs && m->evs[j].e < k)
		j++;
	*a = j ? m->evs[j - 1].ver : 0;
	*b = *a;
	*inflight = NULL;
	if (j < m->nevs && m->evs[j].s < k) {
		*b = m->evs[j].ver;
		*inflight = &m->evs[j];
	}
}
