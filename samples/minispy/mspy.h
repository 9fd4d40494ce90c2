/*
 * fltport-minispy internals, and the text helpers fltport-spy shares:
 *
 *   mspy_text.c    UTF-8 paths <-> the wire's 4-byte WCHARs (surrogateescape
 *                  for bytes that are not UTF-8, so a path survives exactly)
 *   mspy_ring.c    the bounded ring of fixed records and the wire encoding
 *   mspy_filter.c  the filter's callbacks: one record per operation
 *   minispy.c      options, the port, signals, main
 */
#ifndef MSPY_H
#define MSPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "minispy_proto.h"

/* ---- text (mspy_text.c) ----------------------------------------------- */

/* The 4-byte units `len` bytes of `s` decode to. */
size_t mspy_utf8_units(const char *s, size_t len);
/* Decode `len` bytes of `s` into `out` (room for mspy_utf8_units() units);
 * returns the units written.  No NUL is added. */
size_t mspy_utf8_decode(const char *s, size_t len, uint32_t *out);
/* The longest prefix of `s` (`len` bytes) of at most `max` bytes that does
 * not cut a UTF-8 sequence in two. */
size_t mspy_utf8_cut(const char *s, size_t len, size_t max);
/* Encode `n` units back to bytes, at most cap - 1 of them, NUL-terminated
 * (a unit that does not fit is left out, never cut).  U+DC80..U+DCFF become
 * the byte they escape; other surrogates and values above U+10FFFF become
 * '?'.  Returns the bytes written. */
size_t mspy_utf8_encode(const uint32_t *in, size_t n, char *out, size_t cap);

/* Operation names ("open", "exec", "read", "write", "close-write", "create",
 * "delete", "rename"; "close_write" is accepted too). */
const char *mspy_op_name(unsigned op);           /* "?" if unknown */
int mspy_op_parse(const char *name, size_t len); /* enum fltport_mspy_op or -1 */
/* A comma-separated list into a bit set (1 << op).  0, or -1 if a name is
 * unknown or the list is empty. */
int mspy_ops_parse(const char *list, unsigned *ops);
#define MSPY_OPS_ALL 0x1FEu /* bits 1..8 */

/* ---- the ring (mspy_ring.c) ------------------------------------------- */

/* Path bytes a record holds: the path and a rename's new path, each with
 * its NUL.  Sized so that any record encodes within FLTPORT_MSPY_RECORD_MAX. */
#define MSPY_NAMES_MAX 960u
#define MSPY_RING_DEFAULT 4096u
#define MSPY_RING_MAX 65536u

/* One recorded operation: fixed size, filled by a callback on its own
 * stack, copied into the ring under the ring's lock (header and the path
 * bytes used; nothing is allocated). */
struct mspy_rec {
	uint32_t seq;      /* set by mspy_ring_put */
	uint32_t dropped;  /* set by mspy_ring_put: lost just before this one */
	uint32_t wire_len; /* set by mspy_rec_finish */
	uint16_t op;       /* enum fltport_mspy_op */
	uint16_t flags;    /* FLTPORT_MSPY_EXT_* */
	int64_t time;      /* FILETIME (100 ns since 1601, UTC) */
	uint64_t dev, ino; /* 0: unknown */
	int32_t pid;
	uint32_t tid;               /* 0: unknown (fanotify names the process) */
	uint32_t uid;               /* FLTPORT_MSPY_UID_UNKNOWN */
	uint16_t path_len, new_len; /* bytes, without the NULs */
	uint16_t path_units, new_units;
	char comm[16];
	char names[MSPY_NAMES_MAX]; /* path NUL [new path NUL] */
};

/* Set the paths (new_path may be NULL; a NULL path records "" with
 * FLTPORT_MSPY_EXT_NO_PATH), cutting them to fit if needed
 * (FLTPORT_MSPY_EXT_TRUNCATED), and compute wire_len. */
void mspy_rec_finish(struct mspy_rec *r, const char *path, const char *new_path);

struct mspy_ring_stats {
	uint64_t recorded; /* operations seen: stored + dropped */
	uint64_t stored;
	uint64_t dropped; /* ring full */
	uint64_t taken;   /* put into replies; whether each reply arrived is not
			   * known (a gap in the sequence shows it did not) */
	uint32_t depth, capacity;
};

/* Allocate a ring of `cap` records (1..MSPY_RING_MAX).  0 or -ENOMEM. */
int mspy_ring_init(unsigned cap);
void mspy_ring_fini(void);
/* Store a finished record, or drop it when the ring is full (counted; the
 * next stored record carries the count).  Never waits on anything but the
 * ring's lock, which nobody holds for longer than one record's copy. */
void mspy_ring_put(struct mspy_rec *r);
/* GetMiniSpyLog: move as many records as fit into `out` (cap bytes) in the
 * wire format; *len = bytes written.  Returns the reply status:
 * FLTPORT_MSPY_STATUS_SUCCESS, _NO_MORE_ENTRIES (empty), _BUFFER_TOO_SMALL
 * (the oldest record does not fit: it stays). */
uint32_t mspy_ring_take(void *out, size_t cap, size_t *len);
void mspy_ring_stats(struct mspy_ring_stats *st);

/* ---- the filter (mspy_filter.c) ----------------------------------------- */

struct fltport_filter_config;
/* Set the callbacks recording the operations in `ops` (1 << op) in `cfg`. */
void mspy_filter_callbacks(struct fltport_filter_config *cfg, unsigned ops);
/* --verbose: print a line per recorded operation. */
extern bool mspy_verbose;

#endif
