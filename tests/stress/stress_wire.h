/*
 * The message formats the stress tests and their service
 * (tests/helpers/fp_stress_service.c) exchange: one definition for both
 * processes, so that they cannot drift apart.
 */
#ifndef FP_STRESS_WIRE_H
#define FP_STRESS_WIRE_H

#include <stdint.h>

/* ---- stress_concurrency ---- */
#define SM_DATA 1u
#define SM_STOP 2u
#define SM_REPLY 3u
#define SM_REPLY_XOR 0x5eb1a5edc0ffee00ULL

/* A message from the filter: this header, then data_len bytes of sm_byte(). */
struct sm_hdr {
	uint64_t tag;
	uint32_t svc;
	uint32_t conn;
	uint32_t kind;
	uint32_t data_len;
};

/* A request from a service: this header, then len bytes of rq_byte(). */
struct rq_hdr {
	uint32_t svc;
	uint32_t conn;
	uint32_t thread;
	uint32_t len;
	uint64_t seq;
};

static inline uint8_t sm_byte(uint64_t tag, uint32_t i)
{
	return (uint8_t)((tag >> ((i & 7u) * 8u)) ^ (i * 13u));
}

static inline uint32_t sm_status(uint64_t tag)
{
	return (uint32_t)(tag >> 17) ^ 0x13572468u;
}

static inline uint8_t rq_byte(uint64_t seq, uint32_t thread, uint32_t i)
{
	return (uint8_t)(seq + thread * 31u + i * 7u);
}

/* ---- stress_expiry_race ---- */
#define EXP_STOP UINT64_MAX
#define EXP_MAGIC 0xe1e1d00dfeedbeefULL

struct exp_msg {
	uint64_t round;
	uint64_t check; /* round ^ EXP_MAGIC */
};

/* What the service records per message it took. */
struct exp_rec {
	uint64_t round;
	int64_t reply_rc; /* result of fltport_reply(), 0 when no reply was wanted */
};

#endif
