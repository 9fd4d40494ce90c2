/*
 * What the conversation fuzzers (fuzz_server.c, fuzz_client.c, fuzz_win.c)
 * and their seed writer (fuzz_seeds.c) share.
 *
 * Input format of every one of them: a script, a sequence of records
 *
 *     u8 op | u16 len (little-endian) | len bytes
 *
 * cut short at the end of the input (a record whose bytes run out gets
 * what is left).  The low two bits of `op` are the kind of step; the six
 * others are its flags.  What kinds and flags mean is each target's and is
 * listed below, so that the seed writer builds exactly what the targets
 * read.
 *
 * Bytes of a record are read with fz_u8/fz_u16/fz_u32/fz_u64: past the end
 * of the record they read as 0, so every record means something.
 *
 * Nothing here is thread-safe unless it says so: the fuzz thread calls it.
 */
#ifndef FZ_FUZZ_UTIL_H
#define FZ_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FZ_REC_HDR 3u /* op + u16 len */
/* Records played per input: a whole conversation.  The rest is ignored, so
 * that no input takes long (each step can wait for several thread hand-offs). */
#define FZ_MAX_STEPS 16u
#define FZ_MAX_FDS 12u          /* fds one datagram may carry here (a frame: at most 10) */
#define FZ_MEMFD_MAX (4u << 20) /* memfds made for datagrams are cut to this size */
#define FZ_DGRAM_MAX (64u * 1024u + 64u)
#define FZ_WAIT_MS 10000 /* the longest a harness waits for an event it is owed */

/* ---- step kinds and flags ---- */
#define FZ_KIND(op) ((op)&3u)

/* fd attachments of a datagram: bits 2..4 of op, for both socket targets. */
#define FZ_ATTACH(op) (((op) >> 2) & 7u)
enum fz_attach {
	FZ_A_NONE = 0,
	FZ_A_ANNOUNCED,   /* what the header announces: payload memfd if MEMFD, nfds pipe ends */
	FZ_A_MEMFD_LONG,  /* a sealed memfd one byte longer than len */
	FZ_A_MEMFD_OPEN,  /* a memfd of len bytes, not sealed */
	FZ_A_PIPE,        /* one pipe read end */
	FZ_A_MEMFD_PIPE,  /* a sealed memfd of len bytes, then one pipe read end */
	FZ_A_FLOOD,       /* FZ_MAX_FDS fds: more than any frame carries */
	FZ_A_ANNOUNCED_1, /* the announced fds and one more */
};

/* fuzz_server.c: the raw user side of one connection. */
enum fz_server_kind {
	FZS_DGRAM = 0, /* send the bytes as one datagram */
	FZS_PAGE = 1,  /* write the shared state page: u16 slot, u32 value */
	FZS_RECV = 2,  /* read what the server sent */
	FZS_CLOSE = 3, /* close the socket at once, unread frames and all; ends the script */
};
#define FZS_F_PATCH_ID 0x20u /* DGRAM: id := the last MESSAGE's id */
#define FZS_F_TAKE 0x40u     /* DGRAM: win that message's slot word first, as a reader does */
#define FZS_F_FIX_LEN 0x80u  /* DGRAM: len := bytes after the header (or the memfd's size) */
#define FZS_F_READERS 0x04u  /* PAGE: write the readers word instead of a slot */
#define FZS_F_SEQ 0x08u      /* PAGE: value := the last message's sequence and state (value & 15) */
#define FZS_F_AREA 0x10u     /* PAGE: reply in the page: u32 len, u32 status, u32 flags, data */
#define FZS_F_WAIT 0x04u     /* RECV: first wait for the next frame, if the server owes one */

/* Request payloads the fuzz server's message callback acts on (byte 0). */
#define FZS_REQ_SEND 'S'       /* fltport_send() back: u8 flags, u16 len, u16 cap, u8 ticks */
#define FZS_REQ_DISCONNECT 'D' /* fltport_client_disconnect() from inside the callback */
#define FZS_SEND_REPLY 0x01u   /* flags: with a reply buffer of `cap` bytes */
#define FZS_SEND_FD 0x02u      /* flags: one fd attached */
#define FZS_SEND_LARGE 0x04u   /* flags: 64 KiB + 1 more bytes (the memfd path) */
#define FZS_SEND_POLL 0x08u    /* flags: FLTPORT_POLL; else (1 + ticks % 8) * 125 us */
#define FZS_REJECT 'R'         /* connect context byte 0: reject, status = next u32 */

/* fuzz_client.c: the fake server of one connection.  The first record is
 * the handshake (its op: FZC_H_* flags; its bytes: see fuzz_client.c),
 * the others are steps. */
enum fz_client_kind {
	FZC_FRAME = 0, /* send the bytes as one datagram to the client */
	FZC_CALL = 1,  /* a call of the client API: bits 2..4 which, 5 on an actor thread */
	FZC_SERVE = 2, /* read what the client sent */
	FZC_PAGE = 3,  /* write the state page: u16 slot, u32 value */
};
#define FZC_F_PATCH_ID 0x20u /* FRAME: MESSAGE gets a fresh armed id, RESPONSE the last request's */
#define FZC_F_ARM 0x40u      /* FRAME: MESSAGE: write PENDING into the page for its id */
#define FZC_F_FIX_LEN 0x80u  /* FRAME: len := bytes after the header (or the memfd's size) */
#define FZC_CALL_WHICH(op) (((op) >> 2) & 7u)
#define FZC_F_ACTOR 0x20u  /* CALL: on an actor thread (bit 6: which of two) */
#define FZC_F_ACTOR2 0x40u /* CALL: the second actor */
#define FZC_F_SLOW 0x80u /* CALL on an actor: 1 ms deadline (else forever, or 0 for gets inline) */
#define FZC_F_RESPOND 0x04u /* SERVE: answer each REQUEST read with a RESPONSE (record bytes) */
#define FZC_F_READERS 0x04u /* PAGE: write the readers word instead of a slot */
/* Sizes (cap, len, in_len, out_cap) are u32 whose top byte picks the range:
 * 0xFF up to 2 MiB, 0xFE around the 64 KiB inline limit, else below 4 KiB. */
enum fz_client_call {
	FZC_GET = 0,     /* fltport_get: u32 cap */
	FZC_GET_ASYNC,   /* fltport_get_async: u32 cap; u8 bit 0: cancel it at once */
	FZC_REPLY,       /* fltport_reply to the last message taken: u32 status, u32 len */
	FZC_REPLY_ID,    /* fltport_reply to a made-up id: u64 id, u32 len */
	FZC_REQUEST,     /* fltport_request: u32 in_len, u32 out_cap, u8 nfds */
	FZC_CANCEL_GETS, /* fltport_cancel_gets */
	FZC_CANCEL_GET,  /* fltport_cancel_get of the last async get (or a made-up token) */
	FZC_QUERY,       /* fltport_conn_fd / _ended / _max_message / _peer */
};
#define FZC_H_ERROR 0x01u    /* answer with an error result: err = -(u32 & 0xFFF), status */
#define FZC_H_RAW_INFO 0x02u /* the 16 info bytes from the record, not made up to fit */
#define FZC_H_NO_PAGE 0x04u  /* no state page fd */
#define FZC_H_UNSEALED 0x08u /* the page not sealed against shrinking */
#define FZC_H_SHORT 0x10u    /* the page one 4 KiB page too short */
#define FZC_H_EXTRA_FD 0x20u /* one more fd than the result carries */
#define FZC_H_RAW 0x40u      /* send the record's bytes as the result datagram instead */
#define FZC_H_HANG_UP 0x80u  /* close without answering */

/* fuzz_win.c: the Windows layer, one step per record. */
enum fz_win_kind {
	FZW_SEND = 0,     /* FilterSendMessage */
	FZW_EXCHANGE = 1, /* FltSendMessage from the filter, FilterGetMessage, FilterReplyMessage */
	FZW_CANCEL = 2,   /* an overlapped FilterGetMessage cancelled with CancelIoEx */
	FZW_HANDLES = 3,  /* each call with a made-up handle */
};

/* ---- the script ---- */
struct fz_script {
	const uint8_t *p;
	size_t left;
	unsigned steps;
};

struct fz_step {
	uint8_t op;
	const uint8_t *data;
	size_t len;
};

void fz_script_init(struct fz_script *s, const uint8_t *data, size_t size);
/* The next record; false at the end of the input or after FZ_MAX_STEPS. */
bool fz_next(struct fz_script *s, struct fz_step *st);

uint8_t fz_u8(const struct fz_step *st, size_t off);
uint16_t fz_u16(const struct fz_step *st, size_t off);
uint32_t fz_u32(const struct fz_step *st, size_t off);
uint64_t fz_u64(const struct fz_step *st, size_t off);

/* ---- the process ---- */

/* Make a private port directory /tmp/fltport-fuzz-<tag>-XXXXXX, point
 * FLTPORT_DIR at it (before any port is named), and remove it at exit,
 * after `at_exit` (may be NULL) has run.  Exits the process on failure. */
const char *fz_private_dir(const char *tag, void (*at_exit)(void));

/* A harness check failed: say what, and abort so that libFuzzer saves the
 * input as a crash. */
_Noreturn void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* With FZ_TRACE=1 in the environment: one line on stderr (a replayed
 * input's steps and frames).  Otherwise nothing. */
void fz_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* How many fds the process has open now. */
int fz_count_fds(void);

/* A buffer of exactly `size` bytes (NULL for 0).  Up to FZ_HEAP_MAX from
 * the heap; larger ones mapped apart and ended (8-byte aligned) at a
 * PROT_NONE page, so that an overrun still faults.  ASan shadows heap
 * blocks above 128 KiB at ever-new addresses and never gives that shadow
 * back: fuzzed sizes up to megabytes grew a long run's memory by 200 MB per
 * million executions (docs/TESTING.md).  Free with fz_free(p, size). */
#define FZ_HEAP_MAX (64u * 1024)
void *fz_alloc(size_t size, bool zero);
void fz_free(void *p, size_t size);

/* Wait until the process has `want` fds open again (library threads close
 * theirs asynchronously); fz_fail() after FZ_WAIT_MS. */
void fz_wait_fds(int want, const char *what);

/* One round of a bounded wait for something another thread does: yield
 * the first few times, then nap 20 us (the harness must not take the CPU
 * the library's threads need).  `spins` starts at 0. */
void fz_backoff(int *spins);

/* Monotonic milliseconds. */
int64_t fz_now_ms(void);

/* ---- datagrams ---- */

/* A sealed (or not) memfd of `size` bytes (cut to FZ_MEMFD_MAX), or -1. */
int fz_memfd(uint64_t size, bool seal);

/* A payload area of `size` bytes (capped like a memfd), sealed against
 * size changes as a filter side makes it; -1 on failure. */
int fz_area(uint64_t size);

/* A payload pipe holding `size` zero bytes (capped like a memfd), its write
 * end closed; -1 on failure. */
int fz_payload_pipe(uint64_t size);

/* Send one datagram with the fds of `attach` (enum fz_attach) made for it,
 * then close them.  `dgram` is read for the header's flags, len and nfds.
 * Never blocks for long: a full socket (the peer stopped reading) drops
 * the datagram after a bounded wait.  Returns how many fds went with it,
 * or -1 if nothing was sent. */
int fz_send_attached(int sock, const uint8_t *dgram, size_t len, unsigned attach);

/* Send one datagram with the given fds (borrowed).  0 or -errno. */
int fz_send(int sock, const void *buf, size_t len, const int *fds, unsigned nfds);

struct fz_dgram {
	ssize_t n; /* bytes; 0 with nfds == 0 is the end of the stream */
	int fds[FZ_MAX_FDS];
	unsigned nfds;
	bool truncated; /* MSG_TRUNC or MSG_CTRUNC */
};

/* Receive one datagram within timeout_ms (0: only if one is queued).
 * Returns 1 (got one, or the end of the stream), 0 (none in time), or
 * -errno.  The caller owns the fds in d. */
int fz_recv(int sock, uint8_t *buf, size_t cap, struct fz_dgram *d, int timeout_ms);

void fz_close_fds(int *fds, unsigned n);

#endif
