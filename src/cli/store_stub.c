/* TEMPORARY: stands in for the store until src/store/txn.c and friends are
 * on main, so the command skeleton builds and its usage paths can be
 * tested. Every call fails with ENOSYS. src/cli/meson.build drops this file
 * as soon as src/store/txn.c exists. */
#include "store/store.h"

#include <errno.h>
#include <string.h>

int store_create(const char *path, const struct store_create_opts *o) { (void)path; (void)o; return -ENOSYS; }
int store_open(const char *path, const struct store_open_opts *o, struct store **out) { (void)path; (void)o; (void)out; return -ENOSYS; }
int store_close(struct store *s) { (void)s; return 0; }
int store_checkpoint(struct store *s) { (void)s; return -ENOSYS; }
int store_txn_begin(struct store *s, const char *object, uint64_t base, struct store_txn **out) { (void)s; (void)object; (void)base; (void)out; return -ENOSYS; }
int store_txn_put_page(struct store_txn *t, uint64_t vpn, const void *page) { (void)t; (void)vpn; (void)page; return -ENOSYS; }
int store_txn_drop_pages(struct store_txn *t, uint64_t vpn, uint64_t count) { (void)t; (void)vpn; (void)count; return -ENOSYS; }
int store_txn_put_record(struct store_txn *t, const char *key, const void *data, size_t len) { (void)t; (void)key; (void)data; (void)len; return -ENOSYS; }
int store_txn_commit(struct store_txn *t, uint64_t *snap_no) { (void)t; (void)snap_no; return -ENOSYS; }
void store_txn_abort(struct store_txn *t) { (void)t; }
int store_snap_open(struct store *s, const char *object, uint64_t snap, struct store_snap **out) { (void)s; (void)object; (void)snap; (void)out; return -ENOSYS; }
void store_snap_close(struct store_snap *sn) { (void)sn; }
int store_snap_read_page(struct store_snap *sn, uint64_t vpn, void *buf) { (void)sn; (void)vpn; (void)buf; return -ENOSYS; }
int store_snap_read_record(struct store_snap *sn, const char *key, void **data, size_t *len) { (void)sn; (void)key; (void)data; (void)len; return -ENOSYS; }
void store_snap_info(const struct store_snap *sn, struct store_snap_info *info) { (void)sn; memset(info, 0, sizeof(*info)); }
int store_list(struct store *s, store_list_fn fn, void *arg) { (void)s; (void)fn; (void)arg; return -ENOSYS; }
int store_list_object(struct store *s, const char *object, store_list_fn fn, void *arg) { (void)s; (void)object; (void)fn; (void)arg; return -ENOSYS; }
int store_stat(struct store *s, struct store_stat *st) { (void)s; (void)st; return -ENOSYS; }
int store_fsck(struct store *s, struct store_fsck_report *r, store_say_fn say, void *arg) { (void)s; (void)r; (void)say; (void)arg; return -ENOSYS; }
int store_clean(struct store *s, uint64_t want_free, struct store_clean_report *r) { (void)s; (void)want_free; (void)r; return -ENOSYS; }
const char *store_strerror(int err) { return strerror(err < 0 ? -err : err); }
