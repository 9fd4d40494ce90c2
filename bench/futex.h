/*
 * futex.h — fltport-bench's raw-futex baseline: the floor for a
 * cross-process wake-up (bench/README.md, "Baselines").
 *
 * Two processes share a memfd mapping holding one pair area per thread
 * pair.  A round trip: the caller copies its message into the area, sets
 * the area's turn word to REQUEST and FUTEX_WAKEs it; the echo side, in
 * FUTEX_WAIT on that word, copies the message out and a reply of the same
 * length back in, sets REPLY and wakes the caller, who copies the reply
 * out.  No spinning and no "is anyone waiting" flag: every hand-off is one
 * FUTEX_WAKE, and every wait that finds the word unchanged one FUTEX_WAIT
 * (shared futexes: the two processes map the same page).
 *
 * Conventions: 0 or a negative errno; nothing here prints; the memfd is
 * O_CLOEXEC.
 */
#ifndef FLTPORT_BENCH_FUTEX_H
#define FLTPORT_BENCH_FUTEX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define FUTEX_PAIRS_MAX 4u
#define FUTEX_MSG_MAX 4096u

/* One thread pair's part of the mapping, a cache line for the turn word. */
struct futex_pair {
	_Atomic uint32_t turn;
	uint32_t len;
	unsigned char pad[56];
	unsigned char data[FUTEX_MSG_MAX];
};

/* Coordinator: a memfd holding FUTEX_PAIRS_MAX pair areas, mapped here.
 * *fd is the memfd (for the peer), *pairs the mapping. */
int futex_area_create(int *fd, struct futex_pair **pairs);

/* Peer: map the area whose memfd is `fd`. */
int futex_area_map(int fd, struct futex_pair **pairs);

/* Unmap what create or map returned. */
void futex_area_unmap(struct futex_pair *pairs);

/*
 * One round trip on `p`: send `len` bytes of msg (len ≤ FUTEX_MSG_MAX),
 * wait at most timeout_ns for the reply, copy it to reply (len bytes).
 * Returns 0, -ETIMEDOUT, -EMSGSIZE or -EIO (a reply of another length).
 */
int futex_roundtrip(struct futex_pair *p, const void *msg, void *reply, size_t len,
		    int64_t timeout_ns);

/*
 * The echo side of one pair: wait (without a time limit) for a request,
 * copy it into buf (FUTEX_MSG_MAX bytes) and back as the reply; forever.
 * Returns only on error (-errno).  The process ends it by exiting.
 */
int futex_echo(struct futex_pair *p, unsigned char *buf);

#endif
