/*
 * The frame codec (src/core/frame.c) is a pure function: these tests feed it
 * encoded headers, every malformed variant we can name, and check it
 * refuses each one with the exact error before anything trusts a field.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/frame.h"
#include "fltport/port.h"

static struct fp_hdr base(uint16_t type)
{
	struct fp_hdr h = {
		.magic = FP_MAGIC,
		.version = FLTPORT_WIRE_VERSION,
		.type = type,
		.id = 0x0123456789abcdefULL,
		.status = 0xC0000022u,
		.arg = 77,
	};
	return h;
}

static int decode(const struct fp_hdr *h, size_t extra, unsigned nfds, struct fp_hdr *out)
{
	uint8_t buf[FP_HDR_SIZE + 64] = { 0 };

	fp_hdr_encode(h, buf);
	return fp_frame_decode(buf, FP_HDR_SIZE + extra, nfds, 1u << 20, out);
}

Test(frame, roundtrip_every_field)
{
	struct fp_hdr h = base(FP_T_MESSAGE), out;

	h.flags = FP_F_WANTS_REPLY | FP_F_WAKE;
	h.len = 5;
	h.nfds = 2;
	h.err = 0;
	cr_assert_eq(decode(&h, 5, 2, &out), 0);
	cr_assert_eq(out.magic, FP_MAGIC);
	cr_assert_eq(out.version, FLTPORT_WIRE_VERSION);
	cr_assert_eq(out.type, FP_T_MESSAGE);
	cr_assert_eq(out.flags, FP_F_WANTS_REPLY | FP_F_WAKE);
	cr_assert_eq(out.status, 0xC0000022u);
	cr_assert_eq(out.id, 0x0123456789abcdefULL);
	cr_assert_eq(out.len, 5);
	cr_assert_eq(out.arg, 77);
	cr_assert_eq(out.nfds, 2);
}

Test(frame, little_endian_on_the_wire)
{
	struct fp_hdr h = base(FP_T_REPLY);
	uint8_t buf[FP_HDR_SIZE];

	fp_hdr_encode(&h, buf);
	cr_assert_eq(memcmp(buf, "FLTP", 4), 0);
	cr_assert_eq(buf[16], 0xef);
	cr_assert_eq(buf[23], 0x01);
}

Test(frame, negative_err_survives)
{
	struct fp_hdr h = base(FP_T_CONNECT_RESULT), out;

	h.err = -EUSERS;
	cr_assert_eq(decode(&h, 0, 0, &out), 0);
	cr_assert_eq(out.err, -EUSERS);
}

Test(frame, bad_magic)
{
	struct fp_hdr h = base(FP_T_REQUEST), out;

	h.magic = 0x12345678;
	cr_assert_eq(decode(&h, 0, 0, &out), -EBADMSG);
}

Test(frame, other_version_is_eproto_with_version_filled)
{
	struct fp_hdr h = base(FP_T_CONNECT), out;

	h.version = FLTPORT_WIRE_VERSION + 1;
	cr_assert_eq(decode(&h, 0, 0, &out), -EPROTO);
	cr_assert_eq(out.version, FLTPORT_WIRE_VERSION + 1);
	cr_assert_eq(out.type, FP_T_CONNECT);
}

Test(frame, short_datagrams)
{
	struct fp_hdr h = base(FP_T_REQUEST), out;
	uint8_t buf[FP_HDR_SIZE];

	fp_hdr_encode(&h, buf);
	cr_assert_eq(fp_frame_decode(buf, 0, 0, 1024, &out), -EBADMSG);
	cr_assert_eq(fp_frame_decode(buf, 7, 0, 1024, &out), -EBADMSG);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE - 1, 0, 1024, &out), -EBADMSG);
}

Test(frame, unknown_type_and_reserved)
{
	struct fp_hdr h = base(0), out;

	cr_assert_eq(decode(&h, 0, 0, &out), -EBADMSG);
	h.type = FP_T_MAX_ + 1;
	cr_assert_eq(decode(&h, 0, 0, &out), -EBADMSG);
	h = base(FP_T_REQUEST);
	h.reserved = 1;
	cr_assert_eq(decode(&h, 0, 0, &out), -EBADMSG);
}

Test(frame, flags_per_type)
{
	struct fp_hdr h = base(FP_T_REQUEST), out;

	h.flags = FP_F_WANTS_REPLY;
	cr_assert_eq(decode(&h, 0, 0, &out), -EBADMSG);
	h = base(FP_T_REPLY);
	h.flags = FP_F_OVERFLOW;
	cr_assert_eq(decode(&h, 0, 0, &out), 0);
	h.flags = 1u << 31;
	cr_assert_eq(decode(&h, 0, 0, &out), -EBADMSG);
}

Test(frame, length_must_match_datagram)
{
	struct fp_hdr h = base(FP_T_REQUEST), out;

	h.len = 10;
	cr_assert_eq(decode(&h, 9, 0, &out), -EBADMSG);
	cr_assert_eq(decode(&h, 11, 0, &out), -EBADMSG);
	cr_assert_eq(decode(&h, 10, 0, &out), 0);
}

Test(frame, length_capped_before_use)
{
	struct fp_hdr h = base(FP_T_REQUEST), out;
	uint8_t buf[FP_HDR_SIZE];

	h.len = (1u << 20) + 1;
	h.flags = FP_F_MEMFD;
	fp_hdr_encode(&h, buf);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 1, 1u << 20, &out), -EBADMSG);
	h.len = 1u << 20;
	fp_hdr_encode(&h, buf);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 1, 1u << 20, &out), 0);
}

/* A payload fd (memfd or pipe) only above the inline size, and counted. */
static void payload_fd_only_above_inline_max(uint32_t flag)
{
	struct fp_hdr h = base(FP_T_MESSAGE), out;
	uint8_t buf[FP_HDR_SIZE];

	h.flags = flag;
	h.len = FP_INLINE_MAX;
	fp_hdr_encode(&h, buf);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 1, 1u << 20, &out), -EBADMSG);
	h.len = FP_INLINE_MAX + 1;
	fp_hdr_encode(&h, buf);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 0, 1u << 20, &out), -EBADMSG);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 1, 1u << 20, &out), 0);
	cr_assert_eq(out.flags, flag);
}

Test(frame, memfd_only_above_inline_max)
{
	payload_fd_only_above_inline_max(FP_F_MEMFD);
}

Test(frame, pipe_only_filter_to_user_above_inline_max_never_with_memfd)
{
	struct fp_hdr h = base(FP_T_MESSAGE), out;
	uint8_t buf[FP_HDR_SIZE];

	payload_fd_only_above_inline_max(FP_F_PIPE);
	/* Filter → user only: a filter side never touches a client's pipe. */
	h.flags = FP_F_PIPE;
	h.len = FP_INLINE_MAX + 1;
	h.type = FP_T_RESPONSE;
	fp_hdr_encode(&h, buf);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 1, 1u << 20, &out), 0);
	h.type = FP_T_REQUEST;
	fp_hdr_encode(&h, buf);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 1, 1u << 20, &out), -EBADMSG);
	h.type = FP_T_REPLY;
	fp_hdr_encode(&h, buf);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 1, 1u << 20, &out), -EBADMSG);
	h.type = FP_T_MESSAGE;
	h.flags = FP_F_PIPE | FP_F_MEMFD;
	h.len = FP_INLINE_MAX + 1;
	fp_hdr_encode(&h, buf);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 1, 1u << 20, &out), -EBADMSG);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 2, 1u << 20, &out), -EBADMSG);
}

/* A payload in the area: filter → user only, above the inline size, one
 * kind of payload place; the area's memfd rides along only with AREA_NEW. */
Test(frame, area_only_filter_to_user_above_inline_max_with_its_fd_when_new)
{
	static const uint16_t types[] = { FP_T_MESSAGE, FP_T_RESPONSE, FP_T_REQUEST, FP_T_REPLY };
	struct fp_hdr h, out;
	uint8_t buf[FP_HDR_SIZE];

	payload_fd_only_above_inline_max(FP_F_AREA | FP_F_AREA_NEW);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		int want = types[i] == FP_T_MESSAGE || types[i] == FP_T_RESPONSE ? 0 : -EBADMSG;

		h = base(types[i]);
		h.flags = FP_F_AREA;
		h.len = FP_INLINE_MAX + 1;
		fp_hdr_encode(&h, buf);
		cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 0, 1u << 20, &out), want, "type %u",
			     types[i]);
		cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 1, 1u << 20, &out), -EBADMSG,
			     "type %u: an fd without AREA_NEW", types[i]);
	}
	h = base(FP_T_MESSAGE);
	h.len = FP_INLINE_MAX;
	h.flags = FP_F_AREA;
	fp_hdr_encode(&h, buf);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 0, 1u << 20, &out), -EBADMSG);
	h.len = FP_INLINE_MAX + 1;
	h.flags = FP_F_AREA_NEW; /* without AREA */
	fp_hdr_encode(&h, buf);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 1, 1u << 20, &out), -EBADMSG);
	for (uint32_t other = FP_F_MEMFD; other; other = other == FP_F_MEMFD ? FP_F_PIPE : 0) {
		h.flags = FP_F_AREA | other;
		fp_hdr_encode(&h, buf);
		cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 0, 1u << 20, &out), -EBADMSG);
		cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE, 1, 1u << 20, &out), -EBADMSG);
	}
	h.flags = FP_F_AREA; /* a body: the payload is elsewhere */
	fp_hdr_encode(&h, buf);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE + 1, 0, 1u << 20, &out), -EBADMSG);
}

Test(frame, fd_counts)
{
	struct fp_hdr h = base(FP_T_MESSAGE), out;

	h.nfds = FLTPORT_MAX_FDS + 1;
	cr_assert_eq(decode(&h, 0, FLTPORT_MAX_FDS + 1, &out), -EBADMSG);
	h.nfds = 1;
	cr_assert_eq(decode(&h, 0, 0, &out), -EBADMSG); /* announced, not sent */
	cr_assert_eq(decode(&h, 0, 2, &out), -EBADMSG); /* sent, not announced */
	h = base(FP_T_RESPONSE);
	h.nfds = 1;
	cr_assert_eq(decode(&h, 0, 1, &out), -EBADMSG); /* responses carry none */
}

Test(frame, connect_result_carries_the_page_on_success_only)
{
	struct fp_hdr h = base(FP_T_CONNECT_RESULT), out;

	h.len = FP_CONNECT_INFO_SIZE;
	cr_assert_eq(decode(&h, FP_CONNECT_INFO_SIZE, 0, &out), -EBADMSG);
	cr_assert_eq(decode(&h, FP_CONNECT_INFO_SIZE, 1, &out), 0);
	h.err = -EACCES;
	h.len = 0;
	cr_assert_eq(decode(&h, 0, 1, &out), -EBADMSG);
	cr_assert_eq(decode(&h, 0, 0, &out), 0);
}

Test(frame, shm_connect_result_carries_the_rings_too)
{
	struct fp_hdr h = base(FP_T_CONNECT_RESULT), out;

	h.len = FP_CONNECT_INFO_SIZE;
	h.arg = FP_TRANSPORT_SHM;
	cr_assert_eq(decode(&h, FP_CONNECT_INFO_SIZE, 1, &out), -EBADMSG);
	cr_assert_eq(decode(&h, FP_CONNECT_INFO_SIZE, 3, &out), -EBADMSG);
	cr_assert_eq(decode(&h, FP_CONNECT_INFO_SIZE, 4, &out), 0); /* page, memfd, 2 bells */
	cr_assert_eq(out.arg, FP_TRANSPORT_SHM);
	h.err = -EUSERS; /* a refusal grants nothing */
	h.len = 0;
	cr_assert_eq(decode(&h, 0, 0, &out), 0);
	cr_assert_eq(decode(&h, 0, 3, &out), -EBADMSG);
}

Test(frame, connect_context_capped)
{
	struct fp_hdr h = base(FP_T_CONNECT), out;
	uint8_t buf[FP_HDR_SIZE];

	h.len = FLTPORT_CONTEXT_MAX + 1;
	fp_hdr_encode(&h, buf);
	cr_assert_eq(fp_frame_decode(buf, FP_HDR_SIZE + h.len, 0, 1u << 20, &out), -EBADMSG);
}

Test(frame, positive_err_refused)
{
	struct fp_hdr h = base(FP_T_RESPONSE), out;

	h.err = 5;
	cr_assert_eq(decode(&h, 0, 0, &out), -EBADMSG);
}

Test(frame, connect_info_roundtrip)
{
	struct fp_connect_info a = { .nslots = 1024, .max_message = 8u << 20, .page_size = 8192 },
			       b;
	uint8_t buf[FP_CONNECT_INFO_SIZE];

	fp_connect_info_encode(&a, buf);
	fp_connect_info_decode(buf, &b);
	cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0);
}
