/* Internal to src/fds: holding a TCP connection still while no socket
 * of it exists (between freeze and melt) or while its state is read.
 *
 * A hold is an element of a set of nftables table "inet cryo" (made on
 * first use, by one atomic batch): rules at the input and output hooks
 * drop every packet of a held connection's 4-tuple, either way. The
 * peer's retransmissions are then met by silence instead of the reset a
 * port without a socket sends back, and nothing leaves either. A hold
 * outlives cryo (it is kernel state) and not a reboot. */
#ifndef CRYO_FDS_TCPHOLD_H
#define CRYO_FDS_TCPHOLD_H

#include <stdint.h>
#include <sys/socket.h>

struct tcp_tuple {
	int family;			/* AF_INET (also for v4-mapped IPv6) or AF_INET6 */
	uint8_t laddr[16], raddr[16];	/* network order; 4 bytes for AF_INET */
	uint16_t lport, rport;		/* host order */
};

/* The tuple of a connection from its two socket addresses (as
 * getsockname/getpeername give them); -EINVAL if they are not inet. */
int tcp_tuple_of(const void *local, size_t llen, const void *peer, size_t plen,
		 struct tcp_tuple *t);
/* "127.0.0.1:5000 -> 127.0.0.1:6379" */
void tcp_tuple_text(const struct tcp_tuple *t, char *buf, size_t n);

/* Add (idempotent), remove (-ENOENT if it was not held), and test (1 held,
 * 0 not, -errno) the hold of a connection. Each logs what failed. */
int tcp_hold_add(const struct tcp_tuple *t);
int tcp_hold_del(const struct tcp_tuple *t);
int tcp_hold_present(const struct tcp_tuple *t);

#endif
