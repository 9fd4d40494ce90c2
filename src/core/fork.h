/*
 * Fork safety (docs/DESIGN.md, "Fork").  A child forked without exec must
 * hold no fd that keeps a connection, a port or a state page alive: else a
 * service's forked worker keeps its dead parent's connection open and the
 * filter never sees the disconnect.
 *
 * Every object that owns such fds registers here.  In the child of fork(),
 * a pthread_atfork handler calls each registration's `in_child`, which
 * replaces the object's fds by inert ones (same numbers, so that nothing
 * the child opens later can be reached through a stale number) and must do
 * nothing else: no lock, no allocation.  The child's objects are then dead:
 * every call checks fp_forked() first and fails (-ENOTCONN), or does only
 * local cleanup.
 */
#ifndef FP_FORK_H
#define FP_FORK_H

#include <stdatomic.h>
#include <stdbool.h>

struct fp_forkreg {
	struct fp_forkreg *prev, *next;
	void (*in_child)(struct fp_forkreg *r);
	unsigned gen; /* fork generation the object was made in */
};

/* Register (sets r->gen) / unregister an object.  Any thread. */
void fp_fork_register(struct fp_forkreg *r, void (*in_child)(struct fp_forkreg *r));
void fp_fork_unregister(struct fp_forkreg *r);

extern _Atomic unsigned fp_fork_generation;

/* True in a forked child of the process that made the object. */
static inline bool fp_forked(const struct fp_forkreg *r)
{
	return r->gen != atomic_load_explicit(&fp_fork_generation, memory_order_relaxed);
}

/* In the child only: make fd an inert socket (every I/O fails ENOTCONN). */
void fp_fork_kill_fd(int fd);

#endif
