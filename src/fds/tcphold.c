/* Holds on TCP connections (tcphold.h), through libnftables: the table,
 * its two sets (one per address family, keyed by local address and port,
 * remote address and port) and its drop rules are made by one "create
 * table" batch, which fails as a whole when the table is there already. */
#define LOG_PREFIX "fds/tcphold: "
#include "fds/tcphold.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <string.h>

#define HOLD_TABLE	"inet cryo"

static const char hold_setup[] =
	"create table " HOLD_TABLE "\n"
	"add set " HOLD_TABLE " hold4 { type ipv4_addr . inet_service . ipv4_addr . "
	"inet_service; }\n"
	"add set " HOLD_TABLE " hold6 { type ipv6_addr . inet_service . ipv6_addr . "
	"inet_service; }\n"
	/* before conntrack (-200): a held packet leaves no trace */
	"add chain " HOLD_TABLE " in { type filter hook input priority -400; policy accept; }\n"
	"add chain " HOLD_TABLE " out { type filter hook output priority -400; policy accept; }\n"
	"add rule " HOLD_TABLE " in ip daddr . tcp dport . ip saddr . tcp sport @hold4 drop\n"
	"add rule " HOLD_TABLE " in ip6 daddr . tcp dport . ip6 saddr . tcp sport @hold6 drop\n"
	"add rule " HOLD_TABLE " out ip saddr . tcp sport . ip daddr . tcp dport @hold4 drop\n"
	"add rule " HOLD_TABLE " out ip6 saddr . tcp sport . ip6 daddr . tcp dport @hold6 drop\n";

int tcp_tuple_of(const void *local, size_t llen, const void *peer, size_t plen,
		 struct tcp_tuple *t)
{
	const struct sockaddr *l = local, *p = peer;

	memset(t, 0, sizeof(*t));
	if (llen < sizeof(sa_family_t) || plen < sizeof(sa_family_t) || l->sa_family != p->sa_family)
		return -EINVAL;
	if (l->sa_family == AF_INET && llen >= sizeof(struct sockaddr_in) &&
	    plen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *a = local, *b = peer;

		t->family = AF_INET;
		memcpy(t->laddr, &a->sin_addr, 4);
		memcpy(t->raddr, &b->sin_addr, 4);
		t->lport = ntohs(a->sin_port);
		t->rport = ntohs(b->sin_port);
		return 0;
	}
	if (l->sa_family == AF_INET6 && llen >= sizeof(struct sockaddr_in6) &&
	    plen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *a = local, *b = peer;

		t->lport = ntohs(a->sin6_port);
		t->rport = ntohs(b->sin6_port);
		/* an IPv6 socket talking to an IPv4 peer sends IPv4 packets */
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && IN6_IS_ADDR_V4MAPPED(&b->sin6_addr)) {
			t->family = AF_INET;
			memcpy(t->laddr, &a->sin6_addr.s6_addr[12], 4);
			memcpy(t->raddr, &b->sin6_addr.s6_addr[12], 4);
			return 0;
		}
		t->family = AF_INET6;
		memcpy(t->laddr, &a->sin6_addr, 16);
		memcpy(t->raddr, &b->sin6_addr, 16);
		return 0;
	}
	return -EINVAL;
}

void tcp_tuple_text(const struct tcp_tuple *t, char *buf, size_t n)
{
	char l[INET6_ADDRSTRLEN] = "?", r[INET6_ADDRSTRLEN] = "?";
	int v6 = t->family == AF_INET6;

	inet_ntop(t->family, t->laddr, l, sizeof(l));
	inet_ntop(t->family, t->raddr, r, sizeof(r));
	snprintf(buf, n, "%s%s%s:%u -> %s%s%s:%u", v6 ? "[" : "", l, v6 ? "]" : "",
		 t->lport, v6 ? "[" : "", r, v6 ? "]" : "", t->rport);
}

/* One nft command; its error text (first line) into err. 0 or -1. */
static int run(const char *cmd, char *err, size_t n)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	int r;

	if (!nft) {
		snprintf(err, n, "cannot start libnftables");
		return -1;
	}
	nft_ctx_buffer_output(nft);
	nft_ctx_buffer_error(nft);
	r = nft_run_cmd_from_buffer(nft, cmd);
	if (r && err) {
		const char *e = nft_ctx_get_error_buffer(nft);

		snprintf(err, n, "%s", e && *e ? e : "nftables refused it");
		err[strcspn(err, "\n")] = '\0';
	}
	nft_ctx_free(nft);
	return r ? -1 : 0;
}

/* "hold4 { 127.0.0.1 . 5000 . 127.0.0.1 . 6379 }" */
static void element(const struct tcp_tuple *t, char *buf, size_t n)
{
	char l[INET6_ADDRSTRLEN] = "", r[INET6_ADDRSTRLEN] = "";

	inet_ntop(t->family, t->laddr, l, sizeof(l));
	inet_ntop(t->family, t->raddr, r, sizeof(r));
	snprintf(buf, n, "%s { %s . %u . %s . %u }", t->family == AF_INET6 ? "hold6" : "hold4",
		 l, t->lport, r, t->rport);
}

static int element_cmd(const char *verb, const struct tcp_tuple *t, char *err, size_t n)
{
	char el[160], cmd[224];

	element(t, el, sizeof(el));
	snprintf(cmd, sizeof(cmd), "%s element " HOLD_TABLE " %s\n", verb, el);
	return run(cmd, err, n);
}

int tcp_hold_add(const struct tcp_tuple *t)
{
	char err[256], what[128];

	if (element_cmd("add", t, err, sizeof(err)) == 0)
		return 0;
	/* no table yet (or a half-seen one): make it, then try again */
	(void)run(hold_setup, NULL, 0);
	if (element_cmd("add", t, err, sizeof(err)) == 0)
		return 0;
	tcp_tuple_text(t, what, sizeof(what));
	pr_err("cannot hold connection %s still (nftables table %s): %s", what, HOLD_TABLE, err);
	return -EPERM;
}

int tcp_hold_del(const struct tcp_tuple *t)
{
	char err[256];

	return element_cmd("delete", t, err, sizeof(err)) ? -ENOENT : 0;
}

int tcp_hold_present(const struct tcp_tuple *t)
{
	char err[256];

	return element_cmd("get", t, err, sizeof(err)) ? 0 : 1;
}
