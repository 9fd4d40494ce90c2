/*
 * The wire format by hand (docs/PROTOCOL.md), for tests that play a peer
 * the library would never be: fake servers, hostile clients.
 */
#ifndef FP_RAWWIRE_H
#define FP_RAWWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/frame.h"

#define RW_MAX_FDS 16u /* fds rw_sendv sends at most: more than any frame carries */

/* Send one datagram of `iovcnt` pieces with `nfds` fds (at most RW_MAX_FDS)
 * by SCM_RIGHTS; `flags` go to sendmsg() with MSG_NOSIGNAL.  0 or -errno.
 * The bytes need not be a frame: fuzzers send anything. */
int rw_sendv(int fd, const struct iovec *iov, int iovcnt, const int *fds, unsigned nfds, int flags);

/* The SCM_RIGHTS fds of a received message: the first `maxfds` go to fds[]
 * (NULL: none kept), the others are closed.  Returns how many there were. */
unsigned rw_take_fds(struct msghdr *mh, int *fds, unsigned maxfds);

/* A header of `type` with magic and wire version set, the rest zero. */
struct fp_hdr rw_hdr(uint16_t type);

/* Send one frame: header, inline payload, fds by SCM_RIGHTS (at most 8).
 * 0 or -errno. */
int rw_send(int fd, const struct fp_hdr *h, const void *payload, size_t len, const int *fds,
	    unsigned nfds);

/* Receive one frame within timeout_ms and decode its header (without
 * checking the fd count against it).  Its fds go to fds[] (up to maxfds;
 * NULL: all closed), their number to *nfds (may be NULL).  0, -ETIMEDOUT,
 * -ENOTCONN (EOF), -EBADMSG, or -errno. */
int rw_recv(int fd, struct fp_hdr *h, int *fds, unsigned maxfds, unsigned *nfds, int timeout_ms);

#endif
