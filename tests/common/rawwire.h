/*
 * The wire format by hand (docs/PROTOCOL.md), for tests that play a peer
 * the library would never be: fake servers, hostile clients.
 */
#ifndef FP_RAWWIRE_H
#define FP_RAWWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/frame.h"

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
