#include "core/frame.h"

#include <errno.h>
#include <string.h>

#include "fltport/port.h"

/* Explicit little-endian encoding: the format is the same whatever the
 * compiler does with struct layout. */
static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | ((uint32_t)get16(p + 2) << 16);
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

void fp_hdr_encode(const struct fp_hdr *h, uint8_t out[FP_HDR_SIZE])
{
	put32(out + 0, h->magic);
	put16(out + 4, h->version);
	put16(out + 6, h->type);
	put32(out + 8, h->flags);
	put32(out + 12, h->status);
	put64(out + 16, h->id);
	put32(out + 24, h->len);
	put32(out + 28, h->arg);
	put32(out + 32, (uint32_t)h->err);
	put16(out + 36, h->nfds);
	put16(out + 38, h->reserved);
}

static void hdr_decode_raw(const uint8_t *in, struct fp_hdr *h)
{
	h->magic = get32(in + 0);
	h->version = get16(in + 4);
	h->type = get16(in + 6);
	h->flags = get32(in + 8);
	h->status = get32(in + 12);
	h->id = get64(in + 16);
	h->len = get32(in + 24);
	h->arg = get32(in + 28);
	h->err = (int32_t)get32(in + 32);
	h->nfds = get16(in + 36);
	h->reserved = get16(in + 38);
}

/* Which flags each type may carry. */
static uint32_t allowed_flags(uint16_t type)
{
	switch (type) {
	case FP_T_MESSAGE:
		return FP_F_MEMFD | FP_F_PIPE | FP_F_AREA | FP_F_AREA_NEW | FP_F_WANTS_REPLY |
		       FP_F_NOWAIT | FP_F_WAKE;
	case FP_T_REPLY: /* user → filter: never a pipe (sock.c, make_payload_pipe) */
		return FP_F_MEMFD | FP_F_OVERFLOW;
	case FP_T_REQUEST:
		return FP_F_MEMFD;
	case FP_T_RESPONSE:
		return FP_F_MEMFD | FP_F_PIPE | FP_F_AREA | FP_F_AREA_NEW;
	default:
		return 0;
	}
}

/* Which types may carry user fds. */
static int may_carry_fds(uint16_t type)
{
	return type == FP_T_MESSAGE || type == FP_T_REQUEST;
}

int fp_frame_decode(const uint8_t *buf, size_t dgram_len, unsigned nfds_rx, uint32_t max_payload,
		    struct fp_hdr *h)
{
	unsigned expect_fds;

	if (dgram_len < 8)
		return -EBADMSG;
	memset(h, 0, sizeof(*h));
	h->magic = get32(buf);
	h->version = get16(buf + 4);
	h->type = get16(buf + 6);
	if (h->magic != FP_MAGIC)
		return -EBADMSG;
	if (h->version != FLTPORT_WIRE_VERSION)
		return -EPROTO;
	if (dgram_len < FP_HDR_SIZE)
		return -EBADMSG;
	hdr_decode_raw(buf, h);
	if (h->type < FP_T_CONNECT || h->type > FP_T_MAX_ || h->reserved != 0)
		return -EBADMSG;
	if (h->flags & ~allowed_flags(h->type))
		return -EBADMSG;
	if (h->nfds > FLTPORT_MAX_FDS || (h->nfds && !may_carry_fds(h->type)))
		return -EBADMSG;
	if (h->len > max_payload || h->len > FP_PAYLOAD_HARD_MAX)
		return -EBADMSG;
	if (h->type == FP_T_CONNECT && h->len > FLTPORT_CONTEXT_MAX)
		return -EBADMSG;
	if (h->err > 0)
		return -EBADMSG;
	expect_fds = h->nfds;
	if ((h->flags & FP_F_AREA_NEW) && !(h->flags & FP_F_AREA))
		return -EBADMSG;
	if (h->flags & (FP_F_MEMFD | FP_F_PIPE | FP_F_AREA)) {
		/* A payload elsewhere only for payloads that could not go
		 * inline, and one kind of elsewhere. */
		unsigned kinds = !!(h->flags & FP_F_MEMFD) + !!(h->flags & FP_F_PIPE) +
				 !!(h->flags & FP_F_AREA);

		if (kinds != 1)
			return -EBADMSG;
		if (dgram_len != FP_HDR_SIZE || h->len <= FP_INLINE_MAX)
			return -EBADMSG;
		if (!(h->flags & FP_F_AREA) || (h->flags & FP_F_AREA_NEW))
			expect_fds++;
	} else if (dgram_len - FP_HDR_SIZE != h->len) {
		return -EBADMSG;
	}
	/* CONNECT_RESULT carries the state page on success. */
	if (h->type == FP_T_CONNECT_RESULT && h->err == 0)
		expect_fds++;
	if (h->type == FP_T_CONNECT_RESULT && h->err == 0 && h->arg == FP_TRANSPORT_SHM)
		expect_fds += 3; /* the rings' memfd, two doorbells */
	if (nfds_rx == FP_NFDS_LOST ? expect_fds == 0 : nfds_rx != expect_fds)
		return -EBADMSG;
	return 0;
}

void fp_connect_info_encode(const struct fp_connect_info *ci, uint8_t out[FP_CONNECT_INFO_SIZE])
{
	put32(out + 0, ci->nslots);
	put32(out + 4, ci->max_message);
	put32(out + 8, ci->page_size);
	put32(out + 12, ci->reserved);
}

void fp_connect_info_decode(const uint8_t in[FP_CONNECT_INFO_SIZE], struct fp_connect_info *ci)
{
	ci->nslots = get32(in + 0);
	ci->max_message = get32(in + 4);
	ci->page_size = get32(in + 8);
	ci->reserved = get32(in + 12);
}
