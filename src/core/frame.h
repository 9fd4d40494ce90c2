/*
 * Wire frames (docs/PROTOCOL.md).  One frame = one SOCK_SEQPACKET datagram:
 * a fixed 40-byte header, then the payload inline — or, for payloads above
 * FP_INLINE_MAX, an empty body and the payload in the first passed fd: a
 * sealed memfd (FP_F_MEMFD), or a pipe holding exactly the payload with its
 * write end closed (FP_F_PIPE).  Filter → user, the payload may instead sit
 * in the connection's payload area (FP_F_AREA; its memfd rides along, first,
 * the first time: FP_F_AREA_NEW).  User fds follow.
 *
 * This module is pure: encode and decode touch only the buffers given.
 * fp_frame_decode() validates every field against the named limits before
 * anything else looks at a frame.
 */
#ifndef FP_FRAME_H
#define FP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FP_MAGIC 0x50544C46u /* "FLTP" little-endian */
#define FP_HDR_SIZE 40u
#define FP_INLINE_MAX \
	(64u *        \
	 1024u) /* larger payloads ride in a memfd; a connect context (≤ 0xFFE8) always fits */
#define FP_FRAME_MAX (FP_HDR_SIZE + FP_INLINE_MAX)
#define FP_PAYLOAD_HARD_MAX (1u << 30) /* no configuration goes above this */

enum fp_type {
	FP_T_CONNECT = 1,        /* user → filter: wire version, context */
	FP_T_CONNECT_RESULT = 2, /* filter → user: err, status; page memfd on success */
	FP_T_REQUEST = 3,        /* user → filter: input for the message callback */
	FP_T_RESPONSE = 4,       /* filter → user: callback output, status, err */
	FP_T_MESSAGE = 5,        /* filter → user: a message (fltport_send) */
	FP_T_REPLY = 6,          /* user → filter: reply to a message */
	FP_T_MAX_ = 6,
};

enum fp_flags {
	FP_F_MEMFD = 1u << 0,       /* payload in a sealed memfd (first fd) */
	FP_F_WANTS_REPLY = 1u << 1, /* MESSAGE: the sender waits for a reply */
	FP_F_NOWAIT = 1u << 2,      /* MESSAGE: poll send; nobody will wait for the reply */
	FP_F_WAKE = 1u << 3, /* MESSAGE: sender sleeps on the slot word: FUTEX_WAKE after take */
	FP_F_OVERFLOW = 1u << 4, /* REPLY: truncated to the sender's capacity */
	FP_F_PIPE = 1u << 5,     /* MESSAGE, RESPONSE: payload in a pipe (first fd), read once */
	FP_F_AREA = 1u << 6,     /* MESSAGE, RESPONSE: payload in the payload area */
	FP_F_AREA_NEW = 1u << 7, /* with AREA: the area's memfd is the first fd */
	FP_F_ALL_ = (1u << 8) - 1,
};

struct fp_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t flags;
	uint32_t status; /* application status, opaque */
	uint64_t id;     /* message id / request id */
	uint32_t len;    /* payload bytes (inline or in the memfd) */
	uint32_t arg;    /* MESSAGE: reply capacity; REQUEST: output capacity */
	int32_t err;     /* CONNECT_RESULT / RESPONSE: 0 or a negative errno */
	uint16_t nfds;   /* user fds attached (memfd not counted) */
	uint16_t reserved;
};

/* CONNECT's arg: the transport the user side asks for; CONNECT_RESULT's
 * arg: the one granted.  FP_TRANSPORT_SHM's result carries three more fds
 * after the state page: the ring memfd and the two doorbells
 * (transport/ring.h). */
#define FP_TRANSPORT_SOCKET 0u
#define FP_TRANSPORT_SHM 1u

/* CONNECT's id (unused by CONNECT otherwise, and ignored by servers that
 * predate it): what the user side can take.  FP_CAP_AREA: payloads in a
 * payload area (transport.h, struct fp_area). */
#define FP_CAP_AREA 1u

/* The payload area: a memfd the filter side makes (sealed against shrinking
 * and growing), FP_AREA_DATA bytes of header — a 32-bit busy word at 0: 1
 * from the filter side before the frame, 0 from the user side once it has
 * copied the payload out or dropped the frame — then the payload. */
#define FP_AREA_DATA 64u

/* CONNECT_RESULT payload on success. */
struct fp_connect_info {
	uint32_t nslots;
	uint32_t max_message;
	uint32_t page_size; /* bytes of the state page */
	uint32_t reserved;
};
#define FP_CONNECT_INFO_SIZE 16u

void fp_hdr_encode(const struct fp_hdr *h, uint8_t out[FP_HDR_SIZE]);

/*
 * Decode and validate the header of a datagram of `dgram_len` bytes that
 * arrived with `nfds_rx` fds.  `max_payload` bounds len.  Returns 0,
 * -EBADMSG (malformed: bad magic, type, flags, lengths, fd count), or
 * -EPROTO (well-formed magic but another wire version: *h is still filled
 * with magic/version/type so the caller can answer).
 *
 * nfds_rx FP_NFDS_LOST: the datagram came with fewer fds than it was sent
 * with (the receiver could not take them all: MSG_CTRUNC); everything but
 * the fd count is checked, and a frame that declares no fd is -EBADMSG.
 */
#define FP_NFDS_LOST (~0u)
int fp_frame_decode(const uint8_t *buf, size_t dgram_len, unsigned nfds_rx, uint32_t max_payload,
		    struct fp_hdr *h);

void fp_connect_info_encode(const struct fp_connect_info *ci, uint8_t out[FP_CONNECT_INFO_SIZE]);
void fp_connect_info_decode(const uint8_t in[FP_CONNECT_INFO_SIZE], struct fp_connect_info *ci);

#endif
