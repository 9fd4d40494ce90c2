/*
 * alloc_count.h — count malloc/calloc/realloc calls in every process of a
 * row, for fltport-bench's mallocs_per_op column (bench/README.md,
 * "Counting allocations").
 *
 * How: fltport-bench itself defines malloc, calloc, realloc and the aligned
 * allocators (alloc_count.c), each counting one call and forwarding to
 * glibc's own (__libc_malloc and friends).  A definition in the executable
 * interposes on the shared libraries' references, so the count covers
 * libfltport.so, glibc's internal allocations (strdup, …), nng and ZeroMQ,
 * linked like a user program.  The counter lives in a shared memfd page:
 * the coordinator creates it, every peer maps the same page, so one counter
 * sums the allocations of all processes of a row.  The timing loop reads it
 * just before its first measured iteration and just after its last one.
 *
 * Sanitizer builds leave the interposer out (their runtime owns malloc):
 * alloc_count_active() is then false and the column reads "n/a".
 *
 * Conventions: 0 or a negative errno; nothing here prints.
 */
#ifndef FLTPORT_BENCH_ALLOC_COUNT_H
#define FLTPORT_BENCH_ALLOC_COUNT_H

#include <stdbool.h>
#include <stdint.h>

/* The environment variable that hands the counter's fd to a peer. */
#define ALLOC_COUNT_ENV "FLTPORT_BENCH_ALLOC_FD"

/* Coordinator: create the shared counter (an O_CLOEXEC memfd, mapped here)
 * and store its fd in *fd for the peers.  Call before any thread starts. */
int alloc_count_share(int *fd);

/* Peer: map the counter whose fd is in $ALLOC_COUNT_ENV, then close that fd.
 * Returns 0 also when the variable is unset (the count stays local). */
int alloc_count_attach(void);

/* Allocation calls counted so far (in every process sharing the counter). */
uint64_t alloc_count(void);

/* True if allocations are counted: the interposer is built in and a test
 * allocation, direct and from inside glibc (strdup), was seen.  Call once,
 * before threads start; later calls return the first answer. */
bool alloc_count_active(void);

#endif
