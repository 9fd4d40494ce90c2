/*
 * Bounded adaptive spinning before a sleep (spin.c).  A waiter that expects
 * its wake-up within microseconds — the other side of a ring or a state
 * page word is running on another CPU — checks for it a little while
 * before it sleeps, which saves both sides a sleep and a wake-up.  The
 * budget adapts: FP_SPIN_MAX_NS at first and after every success (enough
 * to cover the other side's own wake-up, so that two sides that both sleep
 * can reach the state where both spin), halved by every failure down to
 * none after FP_SPIN_FAILS; then one wait in 64 spins the full budget
 * again.  Never on a thread allowed only one CPU: there the other side
 * cannot run while this one spins.
 */
#ifndef FP_SPIN_H
#define FP_SPIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define FP_SPIN_MAX_NS 50000u
#define FP_SPIN_FAILS 5u /* failures in a row that end spinning (50 µs >> 5 ≈ 1.6 µs) */

struct fp_spin {
	_Atomic uint32_t fails; /* failures in a row: the budget is FP_SPIN_MAX_NS >> fails */
	_Atomic uint32_t skip;  /* waits since the last try once spinning ended */
};

/* Spin until ready(arg) is true or the budget is spent.  True if ready. */
bool fp_spin_until(struct fp_spin *s, bool (*ready)(const void *arg), const void *arg);

#endif
