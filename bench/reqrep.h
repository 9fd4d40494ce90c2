/*
 * reqrep.h — fltport-bench's nng and ZeroMQ baselines: REQ/REP over
 * ipc://, the libraries a user would otherwise pick (bench/README.md,
 * "Baselines").
 *
 * The bench process is the REQ side and times round trips; a peer process
 * is the REP side and echoes every request.  With several threads:
 *   nng   one REQ socket and one REP socket (one ipc connection), one
 *         context (nng_ctx + aio) per thread on each side — nng's own way
 *         to run concurrent requests on a socket;
 *   zmq   one REQ/REP socket pair per thread, each on its own ipc path —
 *         ZeroMQ sockets are single-threaded and REP serves one request at
 *         a time, so that is the REQ/REP way to use four threads.
 * Each is built only where CMake found the library (BENCH_HAVE_NNG,
 * BENCH_HAVE_ZMQ); otherwise reqrep_missing() says why and the rows are
 * skipped.
 *
 * Conventions: 0 or a negative errno (the library's error mapped to the
 * closest errno; reqrep_last_error() has its own text); nothing here prints.
 */
#ifndef FLTPORT_BENCH_REQREP_H
#define FLTPORT_BENCH_REQREP_H

#include <stddef.h>
#include <stdint.h>

#define REQREP_THREADS_MAX 4u
#define REQREP_TIMEOUT_MS 10000 /* every send and receive */

enum reqrep_kind { REQREP_NNG, REQREP_ZMQ };

/* "nng" or "zmq". */
const char *reqrep_name(enum reqrep_kind kind);

/* NULL if this kind was built in, else why it was not. */
const char *reqrep_missing(enum reqrep_kind kind);

/* The ipc socket file of endpoint `index` (0 for nng; 0..n-1 for zmq) in
 * the private directory `dir`.  Returns the length, or -ENAMETOOLONG. */
int reqrep_path(enum reqrep_kind kind, const char *dir, unsigned index, char *buf, size_t cap);

/* Every path reqrep_path() can give for `dir`, for cleaning up. */
#define REQREP_PATHS_MAX (1u + REQREP_THREADS_MAX)
int reqrep_paths(const char *dir, char out[][128], unsigned cap);

struct reqrep_client;

/* REQ side with `nthreads` independent requesters, connected to the REP
 * side serving in `dir` (it must be listening already). */
int reqrep_client_open(enum reqrep_kind kind, const char *dir, unsigned nthreads,
		       struct reqrep_client **out);

/* One round trip for requester `thread`: `len` bytes out, `len` bytes back
 * (another length is -EIO). */
int reqrep_roundtrip(struct reqrep_client *c, unsigned thread, const void *msg, void *reply,
		     size_t len);

void reqrep_client_close(struct reqrep_client *c);

/*
 * REP side: bind/listen in `dir`, then start `nthreads` threads that echo
 * every request (up to `cap` bytes) until the process exits.  Returns once
 * listening.  A thread that fails calls on_error(what, text), which should
 * end the process.
 */
int reqrep_serve(enum reqrep_kind kind, const char *dir, unsigned nthreads, size_t cap,
		 void (*on_error)(const char *what, const char *text));

/* The library's text for the last error of the calling thread's call here. */
const char *reqrep_last_error(void);

#endif
