/* The checker: every kept snapshot read down to each item's checksum, and
 * the invariants that tie the tables to the segments (I1, I7). */
#define LOG_PREFIX "store: "
#include "store/internal.h"
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fsck {
	struct store *s;
	struct store_fsck_report *rep;
	store_say_fn say;
	void *arg;
	const char *obj;
	uint64_t no;
	uint8_t *page;
	uint64_t seen_pages, seen_zero;
};

static void problem(struct fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct fsck *f, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n = 0;

	if (f->obj)
		n = snprintf(line, sizeof(line), "%s/%llu: ", f->obj, (unsigned long long)f->no);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	f->rep->problems++;
	if (f->say)
		f->say(f->arg, line);
}

static bool seg_live_ok(struct fsck *f, const struct fmt_entry *e, const char *what, uint64_t vpn)
{
	struct store *s = f->s;
	uint64_t a = fmt_entry_addr(e), end = s->sb.seg_start + s->sb.seg_count * s->sb.seg_size;

	if (a < s->sb.seg_start || a >= end) {
		problem(f, "%s at vpn %#llx points outside the segments", what, (unsigned long long)vpn);
		return false;
	}
	if (s->segs[seg_of(s, a)].state != SEG_USED) {
		problem(f, "%s at vpn %#llx lies in segment %llu, which is not in use (I1)", what,
			(unsigned long long)vpn, (unsigned long long)seg_of(s, a));
		return false;
	}
	return true;
}

static int check_page(void *arg, uint64_t vpn, enum store_page_kind kind)
{
	struct fsck *f = arg;
	(void)vpn;
	f->seen_pages++;
	f->seen_zero += kind == STORE_PAGE_ZERO;
	return 0;
}

/* Items are read once even when snapshots share them. */
static int check_item(void *arg, const struct fmt_entry *e, unsigned level, uint64_t vpn)
{
	struct fsck *f = arg;
	bool node = fmt_entry_kind(e) == FMT_KIND_NODE;
	int r;

	if (!seg_live_ok(f, e, node ? "index node" : "page", vpn))
		return 1;
	if (node) {
		const struct fmt_entry *n;
		r = node_get(f->s, e, &n);
	} else {
		r = item_read(f->s, e, STORE_PAGE_SIZE, f->page);
	}
	f->rep->items++;
	f->rep->bytes += e->len;
	if (r) {
		problem(f, "%s (level %u) at vpn %#llx: %s", node ? "index node" : "page", level,
			(unsigned long long)vpn, store_strerror(r));
		return 1;	/* do not descend into what cannot be read */
	}
	return 0;
}

static void check_records(struct fsck *f, const struct fmt_snap *d)
{
	struct fmt_rec *recs;
	int r;

	if (!d->nrec)
		return;
	if (!seg_live_ok(f, &d->rectab, "record table", 0))
		return;
	r = rectab_load(f->s, d, &recs);
	if (r) {
		problem(f, "record table: %s", store_strerror(r));
		return;
	}
	for (uint32_t i = 0; i < d->nrec; i++) {
		void *buf;
		if (!recs[i].raw || !seg_live_ok(f, &recs[i].ent, "record", 0))
			continue;
		buf = malloc(recs[i].raw);
		if (!buf)
			break;
		r = item_read(f->s, &recs[i].ent, recs[i].raw, buf);
		free(buf);
		f->rep->items++;
		f->rep->bytes += recs[i].ent.len;
		if (r)
			problem(f, "record %s: %s", recs[i].key, store_strerror(r));
	}
	free(recs);
}

static void check_snap(struct fsck *f, const struct obj_mem *o, const struct fmt_snap *d, uint64_t prev_no)
{
	int r;

	f->obj = o->name;
	f->no = d->no;
	f->rep->snapshots++;
	if (d->no <= prev_no || d->no >= o->next_no || d->parent >= d->no)
		problem(f, "snapshot numbering is inconsistent");
	if (fmt_entry_kind(&d->root) == FMT_KIND_NODE && seg_live_ok(f, &d->root, "index root", 0)) {
		r = pt_visit(f->s, &d->root, check_item, f);
		if (r < 0)
			problem(f, "index: %s", store_strerror(r));
	}
	f->seen_pages = f->seen_zero = 0;
	r = pt_walk(f->s, &d->root, 0, STORE_VPN_MAX, check_page, f);
	if (!r && (f->seen_pages != d->pages || f->seen_zero != d->zero_pages))
		problem(f, "holds %llu pages (%llu zero), its record says %llu (%llu)",
			(unsigned long long)f->seen_pages, (unsigned long long)f->seen_zero,
			(unsigned long long)d->pages, (unsigned long long)d->zero_pages);
	check_records(f, d);
	f->obj = NULL;
}

int store_fsck(struct store *s, struct store_fsck_report *rep, store_say_fn say, void *arg)
{
	struct store_fsck_report local;
	struct fsck f = { .s = s, .rep = rep ? rep : &local, .say = say, .arg = arg };

	memset(f.rep, 0, sizeof(*f.rep));
	f.page = malloc(STORE_PAGE_SIZE);
	if (!f.page)
		return -ENOMEM;
	if (s->slot.state_addr &&
	    s->segs[seg_of(s, s->slot.state_addr)].state != SEG_USED)
		problem(&f, "the checkpoint's state lies in a segment not in use (I1)");
	if (s->segs[seg_of(s, s->head)].state != SEG_USED)
		problem(&f, "the log head lies in a segment not in use");
	for (size_t i = 0; i < s->nobj; i++) {
		const struct obj_mem *o = s->objs[i];
		if (i && strcmp(s->objs[i - 1]->name, o->name) >= 0)
			problem(&f, "object table out of order at %s", o->name);
		for (size_t k = 0; k < o->nsnaps; k++)
			check_snap(&f, o, &o->snaps[k], k ? o->snaps[k - 1].no : 0);
	}
	free(f.page);
	return f.rep->problems ? -EUCLEAN : 0;
}
