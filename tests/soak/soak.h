/*
 * fltport-soak: one program, three roles (docs/TESTING.md, "Soak").
 *
 *   run      (default) the orchestrator: makes a private FLTPORT_DIR, starts
 *            filters and services with fork+exec of itself, kills and
 *            restarts them at random, stops everything, checks, reports.
 *   filter   a server port "soak-f<K>" and a pool of sender threads.
 *   service  connects to "soak-f<K>" in epochs; sync getters, async gets,
 *            requests to the filter's message callback.
 *
 * Children talk to the orchestrator in lines: their stdout carries reports
 * (one write() per line, so that lines never interleave), their stdin
 * carries commands ("stop-send", "stop"); EOF on stdin means the
 * orchestrator is gone, and the child exits at once.
 *
 * This header is the wire between filter and service (message layout, the
 * expected bytes and statuses) and the small utilities all roles share.
 */
#ifndef FP_SOAK_H
#define FP_SOAK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SOAK_MAX_MSG (1u << 20)             /* largest message, request and reply */
#define SOAK_BUF_CAP (SOAK_MAX_MSG + 4096u) /* receive buffers: room for an overflow reply */
#define SOAK_TOKENS 4u                      /* token fds per sending thread */
#define SOAK_MAGIC 0x4b414f53u
#define SOAK_CTX_MAGIC 0x58544353u
#define SOAK_REJECT_STATUS 0xC0000022u /* the connect callback's answer to SOAK_CTX_REJECT */
#define SOAK_ZERO_STATUS 0x5a5a0000u   /* status of the reply to an empty message */
#define SOAK_PORT_FMT "soak-f%u"

/* Message and request header.  A message is either empty (0 bytes) or
 * this header followed by len - sizeof(header) bytes of the pattern table
 * from offset pattern_off(seq, sender); sum is their FNV-1a 64. */
struct soak_hdr {
	uint32_t magic;
	uint32_t sender;    /* sending thread */
	uint64_t seq;       /* per sending thread */
	uint32_t len;       /* whole message, header included */
	uint32_t reply_len; /* bytes the receiver must answer with */
	uint32_t reply_cap; /* the sender's reply capacity (messages: as msg->reply_cap) */
	uint32_t nfds;      /* token fds carried: tokens 0 .. nfds-1 of the sender */
	uint64_t sum;
};

/* Connect context. */
#define SOAK_CTX_REJECT 1u /* asks the connect callback to refuse */
struct soak_ctx {
	uint32_t magic;
	uint32_t flags;
	uint32_t instance; /* the service's instance number (orchestrator's count) */
	int32_t pid;
};

/* ---- randomness (splitmix64: small, seedable, per thread) ---- */
struct soak_rng {
	uint64_t s;
};
uint64_t soak_mix(uint64_t x);
void soak_rng_seed(struct soak_rng *r, uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
uint64_t soak_next(struct soak_rng *r);
/* Uniform in [lo, hi]. */
uint64_t soak_range(struct soak_rng *r, uint64_t lo, uint64_t hi);
/* True with probability pct/100. */
bool soak_pct(struct soak_rng *r, unsigned pct);

/* ---- payload ---- */
/* The pattern table: SOAK_MAX_MSG + SOAK_PATTERN_OFFS bytes of
 * tu_pattern_byte(i, 0), built once by soak_pattern_init(). */
#define SOAK_PATTERN_OFFS 4096u
void soak_pattern_init(void);
const unsigned char *soak_pattern(size_t off);
size_t soak_pattern_off(uint64_t seq, uint32_t sender);
/* Reply (or response) bytes and status for message `seq` of `sender`. */
size_t soak_reply_off(uint64_t seq, uint32_t sender);
uint32_t soak_reply_status(uint64_t seq, uint32_t sender);

/* A random message length: 0, the bare header, small, around the 64 KiB
 * memfd threshold, large up to SOAK_MAX_MSG. */
uint32_t soak_random_len(struct soak_rng *r);
/* Fill buf (len bytes, 0 or >= header) as a message of `sender`/`seq`. */
void soak_build(unsigned char *buf, uint32_t len, uint32_t sender, uint64_t seq, uint32_t reply_len,
		uint32_t reply_cap, uint32_t nfds);
/* Check a received message: NULL if good (header copied to *h), else why. */
const char *soak_check(const unsigned char *buf, size_t len, struct soak_hdr *h);
/* Check reply bytes: NULL if good, else why. */
const char *soak_check_reply(const unsigned char *got, size_t got_len, size_t want_len,
			     uint64_t seq, uint32_t sender);

/* ---- token fds: memfds whose content names (pid, sender, k) ---- */
int soak_token_make(pid_t pid, uint32_t sender, unsigned k);
/* NULL if fd carries token (pid, sender, k), else why. */
const char *soak_token_check(int fd, pid_t pid, uint32_t sender, unsigned k);

/* A random deadline: poll, short, medium, long, or infinite. */
int64_t soak_random_deadline(struct soak_rng *r);

/* ---- reports and resources ---- */
/* One line on stdout, in one write(). */
void soak_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A failure: counted in soak_errors, reported as a "FAIL ..." line (the
 * first 100). */
void soak_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern atomic_long soak_errors;
/* Open fds of this process. */
int soak_count_fds(void);
/* The open fds of this process, each with the file it refers to, so that a
 * later check can tell "the same fd" from "a new fd that took its number". */
#define SOAK_FDS_MAX 1024
struct soak_fds {
	int n;
	struct {
		int fd;
		dev_t dev;
		ino_t ino;
	} e[SOAK_FDS_MAX];
};
void soak_fds_take(struct soak_fds *s);
/* How many of base's fds are still open, on the same files. */
int soak_fds_kept(const struct soak_fds *base);
/* Heap bytes in use (mallinfo2: arena + mmapped), or -1 when it cannot be
 * measured (ASan replaces malloc: LeakSanitizer checks at exit instead). */
long soak_heap_in_use(void);
/* Before the first thread: one malloc arena, so that mallinfo2 sees it all. */
void soak_heap_setup(void);
/* Watch stdin for commands on a thread of its own: sets *stop_send on
 * "stop-send", *stop on "stop"; _exit(3) on EOF (the orchestrator died). */
void soak_start_control(atomic_bool *stop_send, atomic_bool *stop);

/* Roles. */
int soak_filter_main(int argc, char **argv);
int soak_service_main(int argc, char **argv);
int soak_run_main(int argc, char **argv);

/* Argument parsing shared by the roles: "--name value" pairs. */
const char *soak_arg(int argc, char **argv, const char *name, const char *def);
long long soak_arg_num(int argc, char **argv, const char *name, long long def);

#endif
