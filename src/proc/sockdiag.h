/* The kernel's socket diagnostics (NETLINK_SOCK_DIAG): what getsockopt
 * does not tell about a socket, found by its inode. */
#ifndef CRYO_PROC_SOCKDIAG_H
#define CRYO_PROC_SOCKDIAG_H

#include <stddef.h>
#include <stdint.h>

/* The backlog a listening socket was given (listen()'s argument, capped by
 * somaxconn): family AF_INET/AF_INET6 (protocol IPPROTO_TCP) or AF_UNIX
 * (protocol 0). -ENOENT when no listening socket has that inode in
 * cryo's network namespace. */
int proc_sock_backlog(int family, int protocol, uint64_t ino, uint32_t *backlog);

/* Walk one netlink dump reply in buf[0..len) (untrusted: every length is
 * checked) for the listener with inode ino; 1 found, 0 not in this part,
 * 2 the dump is done, -errno on an error message or a malformed reply.
 * Exposed for the fuzz target. */
int proc_sockdiag_scan(const void *buf, size_t len, int family, uint64_t ino,
		       uint32_t *backlog);

/* What unix_diag tells of one unix socket: its peer's inode (0: none, or
 * the peer is gone), its shutdown bits (1 receive, 2 send) and state. */
struct proc_unix_info {
	uint64_t peer_ino;
	uint32_t shutdown;
	uint32_t state;
};
int proc_unix_info(uint64_t ino, struct proc_unix_info *out);

/* Parse the reply to that request in buf[0..len) (untrusted): 1 found
 * (out filled), 0 not in this part, 2 done, -errno on an error message or
 * a malformed reply. Exposed for the fuzz target. */
int proc_unix_info_scan(const void *buf, size_t len, uint64_t ino, struct proc_unix_info *out);

/* The inode of the TCP socket whose local end is src:sport and remote end
 * dst:dport (addresses in network order, 4 or 16 bytes by family; ports
 * in host order), in cryo's network namespace: 0 with *ino 0 for a socket
 * no file holds (one in a listener's accept queue), -ENOENT if there is
 * none. */
int proc_inet_sock_ino(int family, const uint8_t *src, uint16_t sport, const uint8_t *dst,
		       uint16_t dport, uint64_t *ino);

/* Parse the reply to that request in buf[0..len) (untrusted): 1 found,
 * 0 not in this part, 2 done, -errno on an error message or a malformed
 * reply. Exposed for the fuzz target. */
int proc_inet_ino_scan(const void *buf, size_t len, uint64_t *ino);

#endif
