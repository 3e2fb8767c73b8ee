/* The page index: a copy-on-write radix tree from virtual page number to
 * stored page, five levels of 256 entries (format.h). A snapshot is an
 * immutable root; a transaction copies only the nodes on the paths it
 * changes, so k changed pages write O(k) nodes. */
#define LOG_PREFIX "store: "
#include "store/internal.h"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static unsigned idx_at(uint64_t vpn, unsigned level)
{
	return (unsigned)(vpn >> (8 * level)) & 0xff;
}

static uint64_t span_of(unsigned level)
{
	return 1ull << (8 * level);	/* pages under one entry of a node at level */
}

/* ---- node cache ---- */

int cache_init(struct node_cache *c, uint64_t bytes)
{
	c->nslots = bytes / sizeof(struct cache_slot);
	if (c->nslots < 64)
		c->nslots = 64;
	c->slots = calloc(c->nslots, sizeof(*c->slots));
	c->hits = c->misses = 0;
	return c->slots ? 0 : -ENOMEM;
}

void cache_free(struct node_cache *c)
{
	free(c->slots);
	c->slots = NULL;
}

void cache_drop_all(struct store *s)
{
	for (size_t i = 0; i < s->cache.nslots; i++)
		s->cache.slots[i].addr = 0;
}

/* The decoded node an entry names. The pointer is good until the next
 * node_get (another node may take the slot): callers copy what they keep. */
int node_get(struct store *s, const struct fmt_entry *e, const struct fmt_entry **out)
{
	uint64_t addr = fmt_entry_addr(e);
	struct cache_slot *sl = &s->cache.slots[(addr / 16 * 0x9E3779B97F4A7C15ull >> 20) % s->cache.nslots];
	int r;

	if (fmt_entry_kind(e) != FMT_KIND_NODE)
		return -EBADMSG;
	/* the checksum is part of the key: a reused address cannot hit */
	if (sl->addr == addr && sl->csum == e->csum) {
		s->cache.hits++;
		*out = sl->e;
		return 0;
	}
	s->cache.misses++;
	sl->addr = 0;
	r = item_read(s, e, FMT_BLOCK, sl->e);
	if (r)
		return r;
	sl->addr = addr;
	sl->csum = e->csum;
	*out = sl->e;
	return 0;
}

/* ---- reading ---- */

int pt_lookup(struct store *s, const struct fmt_entry *root, uint64_t vpn, struct fmt_entry *out)
{
	struct fmt_entry e = *root;

	if (vpn > STORE_VPN_MAX)
		return -EINVAL;
	for (int level = FMT_LEVELS - 1; level >= 0; level--) {
		const struct fmt_entry *node;
		unsigned k = fmt_entry_kind(&e);
		int r;

		if (k == FMT_KIND_NONE) {
			*out = e;
			return 0;
		}
		r = node_get(s, &e, &node);
		if (r)
			return r;
		e = node[idx_at(vpn, (unsigned)level)];
		k = fmt_entry_kind(&e);
		if (level > 0 ? (k != FMT_KIND_NONE && k != FMT_KIND_NODE)
			      : (k != FMT_KIND_NONE && k != FMT_KIND_ZERO && k != FMT_KIND_PAGE))
			return -EBADMSG;
	}
	*out = e;
	return 0;
}

static int walk_node(struct store *s, const struct fmt_entry *e, unsigned level, uint64_t base,
		     uint64_t first, uint64_t last, pt_leaf_fn fn, void *arg)
{
	struct fmt_entry node[FMT_FANOUT];
	const struct fmt_entry *cached;
	int r = node_get(s, e, &cached);

	if (r)
		return r;
	memcpy(node, cached, sizeof(node));
	for (unsigned i = 0; i < FMT_FANOUT; i++) {
		uint64_t lo = base + i * span_of(level), hi = lo + span_of(level) - 1;
		unsigned k = fmt_entry_kind(&node[i]);

		if (hi < first || lo > last || k == FMT_KIND_NONE)
			continue;
		if (level == 0) {
			if (k != FMT_KIND_ZERO && k != FMT_KIND_PAGE)
				return -EBADMSG;
			r = fn(arg, lo, &node[i]);
		} else {
			if (k != FMT_KIND_NODE)
				return -EBADMSG;
			r = walk_node(s, &node[i], level - 1, lo, first, last, fn, arg);
		}
		if (r)
			return r;
	}
	return 0;
}

int pt_walk_entries(struct store *s, const struct fmt_entry *root, uint64_t first, uint64_t last,
		    pt_leaf_fn fn, void *arg)
{
	if (fmt_entry_kind(root) == FMT_KIND_NONE || first > last)
		return 0;
	return walk_node(s, root, FMT_LEVELS - 1, 0, first, last, fn, arg);
}

struct page_walk {
	store_page_fn fn;
	void *arg;
};

static int page_of_leaf(void *arg, uint64_t vpn, const struct fmt_entry *e)
{
	struct page_walk *w = arg;

	return w->fn(w->arg, vpn,
		     fmt_entry_kind(e) == FMT_KIND_ZERO ? STORE_PAGE_ZERO : STORE_PAGE_DATA);
}

int pt_walk(struct store *s, const struct fmt_entry *root, uint64_t first, uint64_t last,
	    store_page_fn fn, void *arg)
{
	struct page_walk w = { fn, arg };

	return pt_walk_entries(s, root, first, last, page_of_leaf, &w);
}

static int visit_node(struct store *s, const struct fmt_entry *e, unsigned level, uint64_t base,
		      pt_visit_fn fn, void *arg)
{
	struct fmt_entry node[FMT_FANOUT];
	const struct fmt_entry *cached;
	int r = fn(arg, e, level, base);

	if (r)
		return r > 0 ? 0 : r;	/* > 0: seen already, skip below */
	r = node_get(s, e, &cached);
	if (r)
		return r;
	memcpy(node, cached, sizeof(node));
	for (unsigned i = 0; i < FMT_FANOUT; i++) {
		uint64_t lo = base + i * span_of(level);
		unsigned k = fmt_entry_kind(&node[i]);

		if (k == FMT_KIND_NONE || k == FMT_KIND_ZERO)
			continue;
		if (level == 0) {
			if (k != FMT_KIND_PAGE)
				return -EBADMSG;
			r = fn(arg, &node[i], 0, lo);
		} else {
			if (k != FMT_KIND_NODE)
				return -EBADMSG;
			r = visit_node(s, &node[i], level - 1, lo, fn, arg);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int pt_visit(struct store *s, const struct fmt_entry *root, pt_visit_fn fn, void *arg)
{
	if (fmt_entry_kind(root) == FMT_KIND_NONE)
		return 0;
	return visit_node(s, root, FMT_LEVELS - 1, 0, fn, arg);
}

/* ---- the mutable tree of a transaction ---- */

static int node_load(struct store *s, const struct fmt_entry *e, struct pt_node **out)
{
	struct pt_node *n = calloc(1, sizeof(*n));
	int r = 0;

	if (!n)
		return -ENOMEM;
	if (fmt_entry_kind(e) == FMT_KIND_NODE) {
		const struct fmt_entry *cached;
		r = node_get(s, e, &cached);
		if (r) {
			free(n);
			return r;
		}
		memcpy(n->e, cached, sizeof(n->e));
	} else if (fmt_entry_kind(e) != FMT_KIND_NONE) {
		free(n);
		return -EBADMSG;
	}
	*out = n;
	return 0;
}

int pt_load_root(struct store *s, const struct fmt_entry *root, struct pt_node **out)
{
	return node_load(s, root, out);
}

static int child_get(struct store *s, struct pt_node *n, unsigned i, struct pt_node **out)
{
	if (!n->child[i]) {
		int r = node_load(s, &n->e[i], &n->child[i]);
		if (r)
			return r;
	}
	*out = n->child[i];
	return 0;
}

int pt_set(struct store *s, struct pt_node *root, uint64_t vpn, struct fmt_entry e,
	   struct fmt_entry *old)
{
	struct pt_node *n = root;

	if (vpn > STORE_VPN_MAX)
		return -EINVAL;
	for (unsigned level = FMT_LEVELS - 1; level > 0; level--) {
		int r = child_get(s, n, idx_at(vpn, level), &n);
		if (r)
			return r;
	}
	/* mark the path dirty only once the whole path could be loaded */
	struct pt_node *p = root;
	p->dirty = true;
	for (unsigned level = FMT_LEVELS - 1; level > 0; level--) {
		p = p->child[idx_at(vpn, level)];
		p->dirty = true;
	}
	*old = n->e[idx_at(vpn, 0)];
	n->e[idx_at(vpn, 0)] = e;
	return 0;
}

/* Count the data and zero pages under an on-disk entry. */
static int count_cb(void *arg, uint64_t vpn, const struct fmt_entry *e)
{
	uint64_t *c = arg;
	(void)vpn;
	c[0]++;
	c[1] += fmt_entry_kind(e) == FMT_KIND_ZERO;
	return 0;
}

static int drop_node(struct store *s, struct pt_node *n, unsigned level, uint64_t base,
		     uint64_t first, uint64_t last, uint64_t *pages, uint64_t *zeros)
{
	for (unsigned i = 0; i < FMT_FANOUT; i++) {
		uint64_t lo = base + i * span_of(level), hi = lo + span_of(level) - 1;
		unsigned k = fmt_entry_kind(&n->e[i]);
		int r;

		if (hi < first || lo > last || (k == FMT_KIND_NONE && !n->child[i]))
			continue;
		if (level == 0) {
			*pages += 1;
			*zeros += k == FMT_KIND_ZERO;
			n->e[i] = (struct fmt_entry){ 0 };
			n->dirty = true;
			continue;
		}
		if (lo >= first && hi <= last) {
			/* the whole subtree goes: count it, then cut it off */
			uint64_t c[2] = { 0, 0 };
			if (n->child[i]) {
				r = drop_node(s, n->child[i], level - 1, lo, lo, hi, &c[0], &c[1]);
				pt_free(n->child[i]);
				n->child[i] = NULL;
			} else {
				r = walk_node(s, &n->e[i], level - 1, lo, lo, hi, count_cb, c);
			}
			if (r)
				return r;
			*pages += c[0];
			*zeros += c[1];
			n->e[i] = (struct fmt_entry){ 0 };
			n->dirty = true;
			continue;
		}
		struct pt_node *c;
		r = child_get(s, n, i, &c);
		if (r)
			return r;
		r = drop_node(s, c, level - 1, lo, first, last, pages, zeros);
		if (r)
			return r;
		if (c->dirty)
			n->dirty = true;
	}
	return 0;
}

int pt_drop(struct store *s, struct pt_node *root, uint64_t first, uint64_t last,
	    uint64_t *pages, uint64_t *zeros)
{
	if (first > last || last > STORE_VPN_MAX)
		return -EINVAL;
	return drop_node(s, root, FMT_LEVELS - 1, 0, first, last, pages, zeros);
}

static int write_node(struct store *s, struct pt_node *n, unsigned level, uint64_t owner,
		      uint64_t base, struct fmt_entry *out)
{
	bool empty = true;

	for (unsigned i = 0; i < FMT_FANOUT; i++) {
		struct pt_node *c = n->child[i];
		if (c && c->dirty) {
			int r = write_node(s, c, level - 1, owner, base + i * span_of(level), &n->e[i]);
			if (r)
				return r;
			c->dirty = false;
		}
		if (fmt_entry_kind(&n->e[i]) != FMT_KIND_NONE)
			empty = false;
	}
	if (empty) {
		*out = (struct fmt_entry){ 0 };
		return 0;
	}
	return log_add_compressed(s, FMT_KIND_NODE, n->e, FMT_BLOCK, owner, base,
				  (uint8_t)level, out);
}

int pt_write(struct store *s, struct pt_node *root, uint64_t owner, struct fmt_entry *root_out)
{
	return write_node(s, root, FMT_LEVELS - 1, owner, 0, root_out);
}

void pt_free(struct pt_node *n)
{
	if (!n)
		return;
	for (unsigned i = 0; i < FMT_FANOUT; i++)
		pt_free(n->child[i]);
	free(n);
}
