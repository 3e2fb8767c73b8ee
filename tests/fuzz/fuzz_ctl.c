/* libFuzzer target: cryod's control-socket request handler (daemon/ctl.c).
 *
 * The first byte picks the peer (root or a user), the rest is the
 * datagram. ctl_handle must never crash and must always answer with a
 * reply that decodes. (Who may act on which group is decided in cryod's
 * operations and tested with two real users: test_ctl.sh.) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/ctl.h"

static int stub_ps(void *arg, uid_t uid, Cryo__CtlReply *rep)
{
	(void)arg;
	(void)uid;
	(void)rep;
	return 0;
}

static int stub_snap(void *arg, uid_t uid, const char *name, bool weak, bool freeze,
		     Cryo__CtlReply *rep)
{
	(void)arg;
	(void)weak;
	(void)freeze;
	(void)uid;
	if (!name[0])
		abort();	/* ctl_handle answers an empty name itself */
	return asprintf(&rep->text, "%s", name) < 0 ? -12 : 0;
}

static int stub_melt(void *arg, uid_t uid, const char *name, Cryo__CtlReply *rep)
{
	(void)arg;
	(void)uid;
	if (!name[0])
		abort();
	return asprintf(&rep->text, "%s", name) < 0 ? -12 : 0;
}

static int stub_rm(void *arg, uid_t uid, const char *name, bool force, Cryo__CtlReply *rep)
{
	(void)force;
	return stub_melt(arg, uid, name, rep);
}

/* an fd like the holder connection cryod passes */
static int stub_attach(void *arg, uid_t uid, const char *name, Cryo__CtlReply *rep, int *fd)
{
	int r = stub_melt(arg, uid, name, rep);

	*fd = dup(2);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[CTL_MSG_MAX];
	static const struct ctl_ops ops = { .ps = stub_ps, .snap = stub_snap, .melt = stub_melt,
					    .rm = stub_rm, .attach = stub_attach };
	Cryo__CtlReply *rep;
	uint8_t *copy;
	size_t n;
	int fd;

	if (!size)
		return 0;
	copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	n = ctl_handle(copy, size - 1, data[0] & 1 ? 1000 : 0, &ops, NULL, out, &fd);
	rep = cryo__ctl_reply__unpack(NULL, n, out);
	if (!rep)
		abort();	/* every request gets a reply that decodes */
	if ((fd >= 0) != (rep->has_fd && rep->fd))
		abort();	/* the reply says whether an fd comes with it */
	if (fd >= 0)
		close(fd);
	cryo__ctl_reply__free_unpacked(rep, NULL);
	free(copy);
	return 0;
}
