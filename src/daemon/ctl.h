/* cryod's control socket: CRYO_HOME/cryod.sock, SOCK_SEQPACKET, mode 0666
 * (every user may ask; what is allowed is decided per request from the
 * peer's credentials, SO_PEERCRED). One CtlRequest (ctl.proto) in, one
 * CtlReply out, per connection.
 *
 * The rule: root may do anything; another user sees and acts only on
 * groups whose process runs with that real uid (or, without a process,
 * whose newest snapshot records that uid as owner), and melts only a
 * snapshot that records that uid as owner and holds no other credentials.
 * A request that does not decode, is too big or names an unknown
 * operation gets an error reply. attach answers with an fd: cryod
 * connects to the group's terminal holder (its socket is root's, 0600)
 * and passes the connection (SCM_RIGHTS). */
#ifndef CRYO_DAEMON_CTL_H
#define CRYO_DAEMON_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/ctl.pb-c.h"

#define CTL_MSG_MAX	(64u << 10)

/* What cryod does for the control socket; each returns 0 or -errno and
 * may set rep->text (a malloc'd string the handler frees). */
struct ctl_ops {
	/* the groups uid may see (all for root), appended to rep */
	int (*ps)(void *arg, uid_t uid, Cryo__CtlReply *rep);
	/* a snapshot of name (freeze: then it ends), if uid may act on it */
	int (*snap)(void *arg, uid_t uid, const char *name, bool weak, bool freeze,
		    Cryo__CtlReply *rep);
	/* melt name from its newest snapshot, if uid may */
	int (*melt)(void *arg, uid_t uid, const char *name, Cryo__CtlReply *rep);
	/* forget name and its snapshots (force: its process runs on) */
	int (*rm)(void *arg, uid_t uid, const char *name, bool force, Cryo__CtlReply *rep);
	/* a connection to name's terminal into *fd, which the caller passes
	 * on and closes */
	int (*attach)(void *arg, uid_t uid, const char *name, Cryo__CtlReply *rep, int *fd);
};

/* May uid act on a group whose process has real uid owner? */
bool ctl_allowed(uid_t uid, uid_t owner);

/* Decode req (len bytes) from uid, act through ops, encode the reply into
 * out (CTL_MSG_MAX bytes); returns its length. *fd: an fd to send with it
 * (the caller closes it), or -1. Never fails: errors are replies. Fuzzed
 * (tests/fuzz/fuzz_ctl.c). */
size_t ctl_handle(const uint8_t *req, size_t len, uid_t uid, const struct ctl_ops *ops,
		  void *arg, uint8_t *out, int *fd);

/* Listen on home/cryod.sock (a stale socket file replaced): fd or -errno. */
int ctl_listen(const char *home);
/* Serve one connection waiting on lfd (bounded: 1 s to send the request). */
void ctl_serve_one(int lfd, const struct ctl_ops *ops, void *arg);

/* Client: send req to home's cryod, *rep the reply (free with
 * cryo__ctl_reply__free_unpacked). -ENOENT: no cryod listens. */
int ctl_call(const char *home, const Cryo__CtlRequest *req, Cryo__CtlReply **rep);
/* The same, and *fd the fd that came with the reply (caller closes), or -1. */
int ctl_call_fd(const char *home, const Cryo__CtlRequest *req, Cryo__CtlReply **rep, int *fd);

#endif
