/*
 * Seed corpora of the conversation fuzzers, written with the real frame
 * encoder (fp_hdr_encode): valid conversations that the fuzzers mutate.
 *
 *   fuzz_seeds SERVER_DIR CLIENT_DIR WIN_DIR
 *
 * writes a handful of scripts (fuzz_util.h) into each directory; existing
 * files of the same names are replaced, others are left alone.  `make
 * fuzz` runs it before the fuzzers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/frame.h"
#include "core/shared.h"
#include "fltport/port.h"
#include "fuzz_util.h"

struct script {
	uint8_t b[4096];
	size_t len;
};

static void put(struct script *s, const void *p, size_t n)
{
	if (s->len + n > sizeof(s->b)) {
		fprintf(stderr, "fuzz_seeds: script too long\n");
		exit(1);
	}
	memcpy(s->b + s->len, p, n);
	s->len += n;
}

/* One record: op, u16 length, bytes (a and b, concatenated). */
static void rec2(struct script *s, uint8_t op, const void *a, size_t na, const void *b, size_t nb)
{
	uint8_t h[FZ_REC_HDR] = { op, (uint8_t)(na + nb), (uint8_t)((na + nb) >> 8) };

	put(s, h, sizeof(h));
	put(s, a, na);
	put(s, b, nb);
}

static void rec(struct script *s, uint8_t op, const void *p, size_t n)
{
	rec2(s, op, p, n, NULL, 0);
}

/* A frame record: the encoded header and the payload. */
static void frame(struct script *s, uint8_t op, struct fp_hdr h, const void *payload, size_t n)
{
	uint8_t enc[FP_HDR_SIZE];

	h.magic = FP_MAGIC;
	if (!h.version)
		h.version = FLTPORT_WIRE_VERSION;
	if (!(h.flags & (FP_F_MEMFD | FP_F_PIPE)))
		h.len = (uint32_t)n;
	fp_hdr_encode(&h, enc);
	rec2(s, op, enc, sizeof(enc), payload, n);
}

static void save(const char *dir, const char *name, const struct script *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->len, f) != s->len || fclose(f) != 0) {
		fprintf(stderr, "fuzz_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* ---- fuzz_server ---- */

#define S_DGRAM(flags) (FZS_DGRAM | (flags))
#define S_WAIT (FZS_RECV | FZS_F_WAIT)

static void server_connect(struct script *s, const char *ctx)
{
	frame(s, S_DGRAM(0), (struct fp_hdr){ .type = FP_T_CONNECT }, ctx, strlen(ctx));
	rec(s, S_WAIT, NULL, 0);
}

static void server_request(struct script *s, uint64_t id, uint32_t out_cap, const void *in,
			   size_t n, uint8_t attach)
{
	frame(s, S_DGRAM(attach << 2),
	      (struct fp_hdr){ .type = FP_T_REQUEST, .id = id, .arg = out_cap }, in, n);
	rec(s, S_WAIT, NULL, 0);
}

/* A FZS_REQ_SEND request: the server sends a message back from the worker. */
static void server_send_req(struct script *s, uint64_t id, uint8_t flags, uint16_t len,
			    uint16_t cap, uint8_t ticks)
{
	uint8_t in[7] = { FZS_REQ_SEND, flags,
			  (uint8_t)len, (uint8_t)(len >> 8),
			  (uint8_t)cap, (uint8_t)(cap >> 8),
			  ticks };

	frame(s, S_DGRAM(0), (struct fp_hdr){ .type = FP_T_REQUEST, .id = id, .arg = 64 }, in,
	      sizeof(in));
}

/* FZS_F_AREA: a reply written into the page: length, status, flags, data. */
static void server_area(struct script *s, uint32_t len, uint32_t status, uint32_t flags,
			const char *data)
{
	uint8_t b[14 + 64] = { 0 };
	size_t n = strlen(data);

	for (int i = 0; i < 4; i++) {
		b[2 + i] = (uint8_t)(len >> (8 * i));
		b[6 + i] = (uint8_t)(status >> (8 * i));
		b[10 + i] = (uint8_t)(flags >> (8 * i));
	}
	memcpy(b + 14, data, n);
	rec(s, FZS_PAGE | FZS_F_AREA, b, 14 + n);
}

static void server_seeds(const char *dir)
{
	struct script s;
	uint8_t page[6] = { 0 };

	/* Connect, echo, end. */
	s = (struct script){ 0 };
	server_connect(&s, "seed");
	server_request(&s, 1, 64, "echo me", 7, FZ_A_NONE);
	save(dir, "echo", &s);

	/* A request with two pipe ends, one with a 64 KiB + 1 memfd payload. */
	s = (struct script){ 0 };
	server_connect(&s, "fds");
	frame(&s, S_DGRAM(FZ_A_ANNOUNCED << 2),
	      (struct fp_hdr){ .type = FP_T_REQUEST, .id = 2, .arg = 16, .nfds = 2 }, "fd", 2);
	rec(&s, S_WAIT, NULL, 0);
	frame(&s, S_DGRAM(FZ_A_ANNOUNCED << 2),
	      (struct fp_hdr){ .type = FP_T_REQUEST,
			       .id = 3,
			       .arg = 16,
			       .flags = FP_F_MEMFD,
			       .len = FP_INLINE_MAX + 1 },
	      NULL, 0);
	rec(&s, S_WAIT, NULL, 0);
	frame(&s, S_DGRAM(FZ_A_ANNOUNCED << 2),
	      (struct fp_hdr){ .type = FP_T_REQUEST,
			       .id = 4,
			       .arg = 16,
			       .flags = FP_F_PIPE,
			       .len = FP_INLINE_MAX + 1 },
	      NULL, 0);
	rec(&s, S_WAIT, NULL, 0);
	save(dir, "fds-memfd", &s);

	/* The server sends a message wanting a 32-byte reply; the user side
	 * takes it, commits and replies (REPLY with the message's id). */
	s = (struct script){ 0 };
	server_connect(&s, "reply");
	server_send_req(&s, 4, FZS_SEND_REPLY, 16, 32, 7);
	rec(&s, S_WAIT, NULL, 0); /* the MESSAGE */
	frame(&s, S_DGRAM(FZS_F_PATCH_ID | FZS_F_TAKE),
	      (struct fp_hdr){ .type = FP_T_REPLY, .status = 0x1234 }, "the reply", 9);
	rec(&s, S_WAIT, NULL, 0); /* the RESPONSE, with fltport_send's result */
	save(dir, "send-reply", &s);

	/* A message with an fd and no reply (the sender waits for the take:
	 * TAKEN written on the page), then a large one whose reply overflows
	 * the capacity. */
	s = (struct script){ 0 };
	server_connect(&s, "take");
	server_send_req(&s, 5, FZS_SEND_FD, 8, 0, 7);
	rec(&s, S_WAIT, NULL, 0);
	page[2] = FP_S_TAKEN;
	rec(&s, FZS_PAGE | FZS_F_SEQ, page, sizeof(page));
	rec(&s, S_WAIT, NULL, 0);
	server_send_req(&s, 6, FZS_SEND_LARGE | FZS_SEND_REPLY, 1, 4, 7);
	rec(&s, S_WAIT, NULL, 0);
	frame(&s, S_DGRAM(FZS_F_PATCH_ID | FZS_F_TAKE), (struct fp_hdr){ .type = FP_T_REPLY },
	      "longer than four", 16);
	rec(&s, S_WAIT, NULL, 0);
	save(dir, "send-take-overflow", &s);

	/* A poll send with a reader announced on the page. */
	s = (struct script){ 0 };
	server_connect(&s, "poll");
	page[2] = 1;
	rec(&s, FZS_PAGE | FZS_F_READERS, page, sizeof(page));
	server_send_req(&s, 7, FZS_SEND_POLL | FZS_SEND_REPLY, 3, 8, 0);
	rec(&s, S_WAIT, NULL, 0);
	frame(&s, S_DGRAM(FZS_F_PATCH_ID | FZS_F_TAKE), (struct fp_hdr){ .type = FP_T_REPLY },
	      "late", 4);
	rec(&s, S_WAIT, NULL, 0);
	save(dir, "poll-send", &s);

	/* Replies through the page (wire version 2): a valid one; one longer
	 * than the area and the capacity (the sender clamps); one that says a
	 * frame follows (flags without INLINE) and never sends it. */
	s = (struct script){ 0 };
	server_connect(&s, "area");
	server_send_req(&s, 11, FZS_SEND_REPLY, 4, 32, 7);
	rec(&s, S_WAIT, NULL, 0);
	server_area(&s, 9, 0x77, FP_R_INLINE, "the reply");
	rec(&s, S_WAIT, NULL, 0);
	server_send_req(&s, 12, FZS_SEND_REPLY, 4, 8, 7);
	rec(&s, S_WAIT, NULL, 0);
	server_area(&s, 0xFFFFFFFFu, 0, FP_R_INLINE, "more than eight bytes");
	rec(&s, S_WAIT, NULL, 0);
	server_send_req(&s, 13, FZS_SEND_REPLY, 4, 8, 7);
	rec(&s, S_WAIT, NULL, 0);
	server_area(&s, 0, 0, 0, "");
	rec(&s, S_WAIT, NULL, 0);
	save(dir, "area-reply", &s);

	/* A word the protocol cannot produce in the slot of a message. */
	s = (struct script){ 0 };
	server_connect(&s, "garbage");
	server_send_req(&s, 10, 0, 1, 0, 7);
	rec(&s, S_WAIT, NULL, 0);
	page[2] = 0x5F;
	rec(&s, FZS_PAGE | FZS_F_SEQ, page, sizeof(page));
	rec(&s, S_WAIT, NULL, 0);
	save(dir, "page-garbage", &s);

	/* Rejected by the connect callback; another wire version; a close
	 * with a response unread; a disconnect from inside a callback. */
	s = (struct script){ 0 };
	server_connect(&s, "R\x22\x00\x00\xC0");
	save(dir, "rejected", &s);
	s = (struct script){ 0 };
	frame(&s, S_DGRAM(0), (struct fp_hdr){ .type = FP_T_CONNECT, .version = 2 }, NULL, 0);
	rec(&s, FZS_RECV, NULL, 0);
	save(dir, "version", &s);
	s = (struct script){ 0 };
	server_connect(&s, "close");
	server_send_req(&s, 8, FZS_SEND_REPLY, 4, 4, 3);
	rec(&s, FZS_CLOSE, NULL, 0);
	save(dir, "abrupt-close", &s);
	s = (struct script){ 0 };
	server_connect(&s, "");
	server_request(&s, 9, 0, "D", 1, FZ_A_NONE);
	save(dir, "disconnect", &s);
}

/* ---- fuzz_client ---- */

/* The handshake record: answer flags, then [0] raw attach kind | bit 7
 * hang up first at the end, [1..4] err, [5..8] status, [9..24] info,
 * [25] nslots - 1. */
static void client_handshake(struct script *s, uint8_t op, uint8_t end, uint32_t err,
			     const struct fp_connect_info *ci, uint8_t nslots)
{
	uint8_t b[26] = { end, (uint8_t)err, (uint8_t)(err >> 8), 0, 0, 0x22, 0, 0, 0xC0 };

	if (ci)
		fp_connect_info_encode(ci, b + 9);
	b[25] = (uint8_t)(nslots - 1);
	rec(s, op, b, sizeof(b));
}

/* A client call: which, flags (FZC_F_*), u32 a, u32 b, u8 c. */
static void client_call(struct script *s, unsigned which, uint8_t flags, uint32_t a, uint32_t b,
			uint8_t c)
{
	uint8_t d[9] = { (uint8_t)a,         (uint8_t)(a >> 8),  (uint8_t)(a >> 16),
			 (uint8_t)(a >> 24), (uint8_t)b,         (uint8_t)(b >> 8),
			 (uint8_t)(b >> 16), (uint8_t)(b >> 24), c };

	rec(s, (uint8_t)(FZC_CALL | which << 2 | flags), d, sizeof(d));
}

/* A MESSAGE with a fresh id in `slot`, armed in the page. */
static void client_message(struct script *s, uint16_t slot, uint32_t flags, uint32_t cap,
			   const char *payload)
{
	frame(s, (uint8_t)(FZC_FRAME | FZC_F_PATCH_ID | FZC_F_ARM),
	      (struct fp_hdr){ .type = FP_T_MESSAGE, .id = slot, .flags = flags, .arg = cap },
	      payload, strlen(payload));
}

static void client_seeds(const char *dir)
{
	const struct fp_connect_info bad = { .nslots = 0, .max_message = 1u << 20 };
	const uint8_t respond[7] = { 0, 7, 0, 0, 0, 10, 0 }; /* err 0, status 7, 10 bytes */
	struct script s;

	s = (struct script){ 0 };
	client_handshake(&s, 0, 0, 0, NULL, 4);
	save(dir, "connect", &s);

	/* A message wanting a reply: taken by a polling get, replied to. */
	s = (struct script){ 0 };
	client_handshake(&s, 0, 0, 0, NULL, 4);
	client_message(&s, 0, FP_F_WANTS_REPLY, 16, "hello");
	client_call(&s, FZC_GET, 0, 64, 0, 0);
	client_call(&s, FZC_REPLY, 0, 0x1234, 8, 0);
	rec(&s, FZC_SERVE, NULL, 0);
	save(dir, "get-reply", &s);

	/* Readers blocked on two actors first, then messages (one a sender
	 * that sleeps on its slot word); the server hangs up first. */
	s = (struct script){ 0 };
	client_handshake(&s, 0, 0x80, 0, NULL, 2);
	client_call(&s, FZC_GET, FZC_F_ACTOR, 64, 0, 0);
	client_call(&s, FZC_GET, FZC_F_ACTOR | FZC_F_ACTOR2, 64, 0, 0);
	client_message(&s, 0, FP_F_WAKE, 0, "one");
	client_message(&s, 1, FP_F_WANTS_REPLY, 4, "two");
	client_call(&s, FZC_REPLY, FZC_F_ACTOR, 0, 9, 0);
	rec(&s, FZC_SERVE, NULL, 0);
	save(dir, "actor-gets", &s);

	/* A request answered by the fake server. */
	s = (struct script){ 0 };
	client_handshake(&s, 0, 0, 0, NULL, 1);
	client_call(&s, FZC_REQUEST, FZC_F_ACTOR, 5, 32, 2);
	rec(&s, FZC_SERVE | FZC_F_RESPOND, respond, sizeof(respond));
	client_call(&s, FZC_REQUEST, FZC_F_ACTOR | FZC_F_SLOW, 5, 4, 0);
	frame(&s, FZC_FRAME | FZC_F_PATCH_ID, (struct fp_hdr){ .type = FP_T_RESPONSE, .status = 9 },
	      "late", 4);
	save(dir, "request", &s);

	/* Async gets: one too small, one cancelled, then all cancelled. */
	s = (struct script){ 0 };
	client_handshake(&s, 0, 0, 0, NULL, 8);
	client_call(&s, FZC_GET_ASYNC, 0, 8, 0, 0);
	client_message(&s, 3, 0, 0, "sixteen bytes...");
	client_call(&s, FZC_GET, 0, 64, 0, 0);
	client_call(&s, FZC_GET_ASYNC, 0, 64, 0, 1);
	client_call(&s, FZC_GET_ASYNC, 0, 64, 0, 0);
	client_call(&s, FZC_CANCEL_GETS, 0, 0, 0, 0);
	client_call(&s, FZC_QUERY, 0, 0, 0, 0);
	save(dir, "async", &s);

	/* A 64 KiB + 1 payload in a memfd with two fds; a reply too long. */
	s = (struct script){ 0 };
	client_handshake(&s, 0, 0, 0, NULL, 4);
	frame(&s, FZC_FRAME | FZ_A_ANNOUNCED << 2 | FZC_F_PATCH_ID | FZC_F_ARM | FZC_F_FIX_LEN,
	      (struct fp_hdr){ .type = FP_T_MESSAGE,
			       .flags = FP_F_MEMFD | FP_F_WANTS_REPLY,
			       .arg = 16,
			       .nfds = 2 },
	      NULL, 0);
	client_call(&s, FZC_GET, 0, 0xFF000000u | 128 * 1024, 0, 0);
	client_call(&s, FZC_REPLY, 0, 0, 100, 0);
	rec(&s, FZC_SERVE, NULL, 0);
	save(dir, "memfd", &s);

	/* Handshakes that fail: refused with a status, hung up, no page,
	 * impossible info, and a MESSAGE in place of the result. */
	s = (struct script){ 0 };
	client_handshake(&s, FZC_H_ERROR, 0, ECONNREFUSED - 1, NULL, 1);
	save(dir, "refused", &s);
	s = (struct script){ 0 };
	client_handshake(&s, FZC_H_HANG_UP, 0, 0, NULL, 1);
	save(dir, "hang-up", &s);
	s = (struct script){ 0 };
	client_handshake(&s, FZC_H_NO_PAGE, 0, 0, NULL, 1);
	save(dir, "no-page", &s);
	s = (struct script){ 0 };
	client_handshake(&s, FZC_H_RAW_INFO, 0, 0, &bad, 1);
	save(dir, "bad-info", &s);
	s = (struct script){ 0 };
	{
		uint8_t raw[1 + FP_HDR_SIZE] = { 0 };
		struct fp_hdr h = { .magic = FP_MAGIC,
				    .version = FLTPORT_WIRE_VERSION,
				    .type = FP_T_MESSAGE };

		fp_hdr_encode(&h, raw + 1);
		rec(&s, FZC_H_RAW, raw, sizeof(raw));
	}
	save(dir, "raw-result", &s);

	/* After the handshake: a second CONNECT_RESULT (junk for the client). */
	s = (struct script){ 0 };
	client_handshake(&s, 0, 0, 0, NULL, 1);
	client_call(&s, FZC_GET, FZC_F_ACTOR, 64, 0, 0);
	frame(&s, FZC_FRAME, (struct fp_hdr){ .type = FP_T_CONNECT_RESULT, .err = -1 }, NULL, 0);
	save(dir, "junk", &s);
}

/* ---- fuzz_win ---- */

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* FZW_SEND: size classes, flags, raw sizes, MessageNotify's status and
 * the class of its claim (raw sizes below 70000: class bytes above 8). */
static void win_send(struct script *s, uint8_t in_class, uint8_t out_class, uint8_t flags,
		     uint32_t raw, uint32_t status, uint8_t claim)
{
	uint8_t b[20] = { in_class, out_class, flags };

	le32(b + 3, raw);
	le32(b + 7, raw);
	le32(b + 11, status);
	b[15] = claim;
	le32(b + 16, raw);
	rec(s, FZW_SEND, b, sizeof(b));
}

/* FZW_EXCHANGE: flags, get class, message length class/raw, reply capacity
 * class/raw, retry class, then replies as (id class, size class) pairs. */
static void win_exchange(struct script *s, uint8_t flags, uint8_t get_class, uint8_t len_class,
			 uint32_t len, uint8_t cap_class, uint32_t cap, uint8_t retry,
			 const char *replies)
{
	uint8_t b[17 + 18] = { flags, get_class };
	size_t n = 17;

	b[6] = len_class;
	le32(b + 7, len);
	b[11] = cap_class;
	le32(b + 12, cap);
	b[16] = retry;
	for (; replies && replies[0] && replies[1] && n + 6 <= sizeof(b); replies += 2, n += 6) {
		b[n] = (uint8_t)(replies[0] - '0');
		b[n + 1] = (uint8_t)(replies[1] - '0');
		le32(b + n + 2, 5);
	}
	rec(s, FZW_EXCHANGE, b, n);
}

static void win_seeds(const char *dir)
{
	uint8_t b[9] = { 0x04, 0, 0, 0, 0x10 };
	struct script s;

	/* Echo requests: exact, an output one byte short, a failure status
	 * with a claim larger than the buffer, an input above the limit. */
	s = (struct script){ 0 };
	win_send(&s, 9, 4, 0, 100, 0, 0);
	win_send(&s, 9, 3, 0, 100, 0, 1);
	win_send(&s, 9, 9, 0, 7, 0xC0000022u, 0xFF);
	win_send(&s, 8, 0, 2, 0, 0, 2);
	save(dir, "send", &s);

	/* Exchanges (digit pairs: id class, size class of each reply):
	 * exact get, exact reply, the same again, a stale id. */
	s = (struct script){ 0 };
	win_exchange(&s, 1, 4, 1, 40, 9, 100, 4, "040401");
	win_exchange(&s, 1, 4, 1, 40, 9, 100, 4, "1424");
	win_exchange(&s, 0, 4, 9, 300, 9, 0, 4, "04");
	save(dir, "exchange", &s);

	/* A get one byte short retried synchronously; a reply one byte over
	 * the capacity; then sizes below a header, above the limit, huge. */
	s = (struct script){ 0 };
	win_exchange(&s, 1 | 4, 3, 1, 40, 1, 8, 4, "05");
	win_exchange(&s, 1, 4, 1, 40, 9, 100, 4, "21080604");
	save(dir, "exchange-edges", &s);

	/* The get posted first; a 64 KiB + 1 message (memfd) without a reply;
	 * the port's limit with a huge get and capacity; above the limit. */
	s = (struct script){ 0 };
	win_exchange(&s, 2, 4, 3, 0, 0, 0, 4, NULL);
	win_exchange(&s, 1 | 2 | 8, 6, 4, 0, 6, 0, 4, "04");
	win_exchange(&s, 1, 4, 5, 0, 0, 0, 4, NULL);
	save(dir, "exchange-large", &s);

	/* Cancelled gets; made-up handles. */
	s = (struct script){ 0 };
	rec(&s, FZW_CANCEL, (uint8_t[]){ 1, 4 }, 2);
	rec(&s, FZW_CANCEL, (uint8_t[]){ 8, 6 }, 2);
	rec(&s, FZW_HANDLES, b, sizeof(b));
	save(dir, "cancel-handles", &s);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: fuzz_seeds SERVER_DIR CLIENT_DIR WIN_DIR\n");
		return 2;
	}
	server_seeds(argv[1]);
	client_seeds(argv[2]);
	win_seeds(argv[3]);
	return 0;
}
