/*
 * The shared state page: one per connection, a sealed memfd created by the
 * filter side and mapped by both.  It decides, with one compare-and-swap
 * per message and no frame, whether a message was taken by a reader or
 * expired (SPEC §8.12), and publishes how many readers wait (§8.17).
 *
 * Slot word: bits 4..31 hold the low 28 bits of the message's sequence
 * number, bits 0..3 its state.  Message id = (sequence << 16) | slot.
 *
 *   PENDING ──reader CAS──► TAKEN ──replier CAS──► REPLIED
 *      │   └─reader CAS (poll send with reply)──► ABANDONED
 *      └──sender CAS at deadline / disconnect──► EXPIRED
 *   TAKEN ──sender CAS at deadline──► ABANDONED
 *
 * The filter side treats every word as untrusted input: it only
 * compare-and-swaps its own expected values, and a word it does not
 * recognise means that peer's message is lost.
 *
 * Small replies ride in the page too (wire version 2; this layout since
 * version 3): after the slot words, page-aligned, one 16-byte reply header
 * per slot, then, page-aligned, one 4 KiB data area per slot, so a reply
 * of up to 4096 bytes fits.  The replier writes the data and the header
 * (length, status, flags) and then moves the word TAKEN →
 * REPLIED and wakes the sender's futex: no frame, no thread of the filter
 * in between.  A reply that does not fit goes as a REPLY frame; its area
 * says so (flags without FP_R_INLINE).  The sender reads the area only
 * after it saw REPLIED for its own sequence number (acquire), clamps every
 * length it finds there, and copies once.  Areas are touched only when
 * used, so a connection's resident memory stays small.
 */
#ifndef FP_SHARED_H
#define FP_SHARED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FP_PAGE_MAGIC 0x45474150u /* "PAGE" */
#define FP_PAGE_HDR 64u

enum fp_slot_state {
	FP_S_FREE = 0,
	FP_S_PENDING = 1,
	FP_S_TAKEN = 2,
	FP_S_EXPIRED = 3,
	FP_S_ABANDONED = 4,
	FP_S_REPLIED = 5,
};

struct fp_page {
	uint32_t magic;
	uint32_t nslots;
	_Atomic uint32_t readers; /* readers waiting in get (client writes) */
	uint32_t pad[(FP_PAGE_HDR - 12) / 4];
	_Atomic uint32_t slot[]; /* nslots words */
};

_Static_assert(sizeof(struct fp_page) == FP_PAGE_HDR, "page header size");

static inline uint32_t fp_word(uint64_t seq, enum fp_slot_state st)
{
	return (uint32_t)((seq & 0x0FFFFFFFu) << 4) | (uint32_t)st;
}

static inline unsigned fp_word_state(uint32_t w)
{
	return w & 0xFu;
}

static inline uint64_t fp_msg_id(uint64_t seq, uint32_t slot)
{
	return (seq << 16) | slot;
}

static inline uint32_t fp_id_slot(uint64_t id)
{
	return (uint32_t)(id & 0xFFFFu);
}

static inline uint64_t fp_id_seq(uint64_t id)
{
	return id >> 16;
}

#define FP_AREA_SIZE 4096u /* reply bytes a slot's data area holds */
#define FP_AREA_HDR 16u
#define FP_SMALL_REPLY FP_AREA_SIZE /* reply bytes that ride in the page */

enum fp_reply_flags {
	FP_R_INLINE = 1u << 0,   /* the reply is in this area (else: a REPLY frame) */
	FP_R_OVERFLOW = 1u << 1, /* truncated to the sender's capacity */
};

/* One slot's reply header; written by the replier before REPLIED.  The
 * data it describes is the slot's data area (fp_area_data). */
struct fp_reply_area {
	uint32_t len;    /* bytes in the data area (≤ FP_SMALL_REPLY; the sender clamps) */
	uint32_t status; /* the reply's status */
	uint32_t flags;  /* FP_R_* */
	uint32_t reserved;
};

_Static_assert(sizeof(struct fp_reply_area) == FP_AREA_HDR, "reply header size");

static inline size_t fp_align4096(size_t n)
{
	return (n + 4095u) & ~(size_t)4095u;
}

/* Bytes of the slot words (header included), page-aligned: the reply
 * headers start there, then (page-aligned) the data areas. */
static inline size_t fp_page_words(uint32_t nslots)
{
	return fp_align4096(FP_PAGE_HDR + (size_t)nslots * 4u);
}

static inline size_t fp_page_hdrs(uint32_t nslots)
{
	return fp_align4096((size_t)nslots * FP_AREA_HDR);
}

static inline size_t fp_page_size(uint32_t nslots)
{
	return fp_page_words(nslots) + fp_page_hdrs(nslots) + (size_t)nslots * FP_AREA_SIZE;
}

static inline struct fp_reply_area *fp_area(struct fp_page *pg, uint32_t nslots, uint32_t slot)
{
	return (struct fp_reply_area *)((uint8_t *)pg + fp_page_words(nslots) +
					(size_t)slot * FP_AREA_HDR);
}

static inline uint8_t *fp_area_data(struct fp_page *pg, uint32_t nslots, uint32_t slot)
{
	return (uint8_t *)pg + fp_page_words(nslots) + fp_page_hdrs(nslots) +
	       (size_t)slot * FP_AREA_SIZE;
}

/* Compare-and-swap one slot word: true if it held `from` and now holds `to`. */
static inline bool fp_slot_cas(struct fp_page *pg, uint32_t slot, uint32_t from, uint32_t to)
{
	return atomic_compare_exchange_strong_explicit(&pg->slot[slot], &from, to,
						       memory_order_acq_rel, memory_order_acquire);
}

/* Shared (cross-process) futex on a word of the page. */
int fp_futex_wait(_Atomic uint32_t *w, uint32_t expect, int64_t deadline);
void fp_futex_wake(_Atomic uint32_t *w);
/* One waiter at most (a word the peer may park threads on). */
void fp_futex_wake_one(_Atomic uint32_t *w);

/* The same on a word of this process only (FUTEX_PRIVATE_FLAG): a thread
 * blocked in the library, woken by another after it dropped the lock. */
int fp_futex_wait_private(_Atomic uint32_t *w, uint32_t expect, int64_t deadline);
void fp_futex_wake_private(_Atomic uint32_t *w);

#endif
