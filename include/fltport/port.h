/*
 * fltport/port.h — the native API of libfltport: both sides of a
 * Windows-style filter communication port, on Linux.
 *
 *   filter side (the privileged process, "kernel side" on Windows)
 *     fltport_server_create()   named server port + connect/disconnect/message callbacks
 *     fltport_send()            message to one client port, optional reply, one deadline
 *     fltport_client_close()    end one connection (FltCloseClientPort)
 *     fltport_server_close()    stop accepting; existing connections live on
 *     fltport_server_destroy()  end every connection, wait for callbacks, free
 *
 *   user side (any process)
 *     fltport_connect()         connect by name, with context bytes
 *     fltport_request()         request/response to the message callback (FilterSendMessage)
 *     fltport_get()             next message, blocking with a deadline or polling (FilterGetMessage)
 *     fltport_get_async()       next message, completion by callback (overlapped reads)
 *     fltport_run_completions() run those completions on this thread (a completion port's wait)
 *     fltport_reply()           reply by message id (FilterReplyMessage)
 *     fltport_close()           end the connection (CloseHandle)
 *
 * Conventions (every function):
 *   - Thread-safe unless it says otherwise: any function may be called from
 *     any thread, concurrently with any other on the same object, except
 *     that an object must not be used once the call that frees it
 *     (fltport_server_destroy, fltport_client_close, fltport_close) has
 *     begun.
 *   - Returns 0 or a negative errno.  Out-parameters are written only on
 *     success, except where a function says otherwise.
 *   - Application statuses (a connect rejection, a message callback's result,
 *     a reply's status) are opaque 32-bit values carried unchanged.  The
 *     Windows layer puts NTSTATUS values there.
 *   - Deadlines are relative nanoseconds: FLTPORT_INFINITE (-1) waits
 *     forever, 0 polls, > 0 waits at most that long.  Every blocking call
 *     also returns early when its connection ends or is closed.
 *   - Buffers passed in are borrowed for the duration of the call only.
 *     File descriptors passed in are borrowed (the library sends copies);
 *     file descriptors handed out are owned by the receiver, who must close
 *     them.  Every fd the library creates is O_CLOEXEC.
 *   - EINTR never escapes: interrupted waits restart with the remaining
 *     deadline.  SIGPIPE is never raised (MSG_NOSIGNAL).
 *   - The library never prints, except one-line diagnostics on stderr when
 *     the environment variable FLTPORT_DEBUG=1 is set.  Those never block
 *     a caller or a library thread: lines wait in a bounded buffer (128) for
 *     a thread of their own, started on the first line, that writes them;
 *     when the buffer is full a line is dropped and counted (see
 *     fltport_debug_dropped()), so stderr on a stuck pipe loses lines and
 *     delays nothing.  At exit, queued lines get a bounded time (250 ms) to
 *     be written.
 *   - Errors that are a local shortage (-EMFILE, -ENFILE, -ENOMEM, -ENOBUFS)
 *     are reported as such, never as a disconnect; the call can be retried.
 *   - fork(): a child forked without exec holds no fd of the library that
 *     keeps a connection, port or state page alive (a pthread_atfork handler
 *     makes them inert in the child), so the peer of a process that forks a
 *     worker and dies sees the disconnect at once.  In the child every
 *     object inherited from the parent is dead: calls fail with -ENOTCONN
 *     (fltport_conn_ended() is true), fltport_close() only frees the child's
 *     copy, fltport_server_close/destroy() and fltport_client_close() do
 *     nothing (the parent still owns the port's name), and pending async
 *     gets never complete there.  Objects the child makes itself work.
 *
 * Port names map to Unix sockets in $FLTPORT_DIR (default /run/fltport),
 * which must be an absolute path (see fltport_dir()).
 */
#ifndef FLTPORT_PORT_H
#define FLTPORT_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FLTPORT_API __attribute__((visibility("default")))
#else
#define FLTPORT_API
#endif

/* Deadlines, in relative nanoseconds. */
#define FLTPORT_INFINITE ((int64_t)-1)
#define FLTPORT_POLL ((int64_t)0)

/* Limits.  Sizes above these are refused before anything is sent. */
#define FLTPORT_CONTEXT_MAX 0xFFE8u            /* connect context bytes (SPEC §3.1) */
#define FLTPORT_MAX_FDS 8u                     /* file descriptors per message */
#define FLTPORT_NAME_MAX 100u                  /* bytes in a port name, before the directory */
#define FLTPORT_DEFAULT_MAX_MESSAGE (8u << 20) /* default payload cap: 8 MiB */
#define FLTPORT_MIN_MAX_MESSAGE (1u << 20)     /* a port always carries 1 MiB */
#define FLTPORT_DEFAULT_SLOTS 1024u            /* in-flight messages per connection */
#define FLTPORT_MAX_SLOTS 65536u
#define FLTPORT_DEFAULT_WORKERS 4u /* message-callback threads per server */
#define FLTPORT_DEFAULT_DIR "/run/fltport"

/* The library's version (CMakeLists.txt's project version; a test checks
 * that they agree).  FLTPORT_VERSION orders versions: MAJOR*10000 +
 * MINOR*100 + PATCH.  fltport_version() is the version of the library
 * actually loaded, which may be newer than the headers compiled against. */
#define FLTPORT_VERSION_MAJOR 0
#define FLTPORT_VERSION_MINOR 2
#define FLTPORT_VERSION_PATCH 0
#define FLTPORT_VERSION_STRING "0.2.0"
#define FLTPORT_VERSION \
	(FLTPORT_VERSION_MAJOR * 10000 + FLTPORT_VERSION_MINOR * 100 + FLTPORT_VERSION_PATCH)

/* Version of the wire protocol this library speaks (docs/PROTOCOL.md). */
#define FLTPORT_WIRE_VERSION 4u

typedef struct fltport_server fltport_server; /* filter side: a named server port */
typedef struct fltport_client fltport_client; /* filter side: one connection ("client port") */
typedef struct fltport_conn fltport_conn;     /* user side: one connection */

/* Identity of the process at the other end, from the kernel (SO_PEERCRED)
 * at connect time.  pidfd is a pidfd of that process (SO_PEERPIDFD) or -1
 * where the kernel has none; it is owned by the connection and stays open
 * until the connection object is freed — do not close it. */
struct fltport_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int pidfd;
};

/* ------------------------------------------------------------------ */
/* Filter side                                                          */
/* ------------------------------------------------------------------ */

/* Who may connect.  Decided by the connecting process's kernel credentials
 * (SO_PEERCRED, and SO_PEERGROUPS for supplementary groups), not by file
 * modes.  The socket file itself is mode 0666 so that a refused peer gets a
 * clean "denied", not a file-system error. */
enum fltport_access_mode {
	FLTPORT_ACCESS_ROOT = 0, /* uid 0 only (the default) */
	FLTPORT_ACCESS_LIST,     /* uid 0, plus the uids and gids listed */
	FLTPORT_ACCESS_EVERYONE, /* any local process */
};

struct fltport_access {
	enum fltport_access_mode mode;
	const uid_t *uids; /* FLTPORT_ACCESS_LIST: copied at create time */
	size_t nuids;
	const gid_t *gids; /* matched against primary and supplementary groups */
	size_t ngids;
};

/* A request from the user side, as the message callback sees it. */
struct fltport_request {
	fltport_client *client; /* the connection it came on */
	const void *in;         /* input bytes; valid during the callback only */
	size_t in_len;
	int fds[FLTPORT_MAX_FDS]; /* fds sent with the request: owned by the callback
				   * (close them with fltport_close_fds()) */
	unsigned nfds;
};

/*
 * Connect callback.  Runs on the server's control thread (never on a
 * message-callback worker, so slow message callbacks cannot starve it), one
 * connect at a time.  `ctx` is a copy valid during the call only.  Return 0
 * to accept, storing a per-connection cookie in *conn_cookie; return nonzero
 * to reject, storing the application status the client sees in *status
 * (preset to 0).  `client` is the new client port: keep it to send messages;
 * it stays valid until fltport_client_close() (see there).  The callback may
 * call fltport_send() only after it has returned (the client is not
 * connected until then).
 */
typedef int (*fltport_connect_fn)(fltport_client *client, void *server_cookie, const void *ctx,
				  size_t ctx_len, const struct fltport_peer *peer,
				  void **conn_cookie, uint32_t *status);

/*
 * Disconnect callback.  Runs exactly once per accepted connection, whatever
 * ended it (the user closed or died, fltport_client_close(), or
 * fltport_server_destroy()), on the control thread, after every message
 * callback of that connection has returned.  It may call
 * fltport_client_close() on that connection (the usual pattern).  The
 * connection's max-connections slot is freed after it returns.
 */
typedef void (*fltport_disconnect_fn)(void *conn_cookie);

/*
 * Message callback (a request from the user side).  Runs on one of the
 * server's worker threads; calls may run concurrently, also for one
 * connection.  `out` has room for `out_cap` bytes (the caller's output
 * capacity; NULL when 0); store the bytes written in *out_len (preset to 0,
 * must not exceed out_cap).  The return value is the application status the
 * caller receives.  The callback may call fltport_send() and
 * fltport_client_close().
 */
typedef uint32_t (*fltport_message_fn)(void *conn_cookie, const struct fltport_request *req,
				       void *out, size_t out_cap, size_t *out_len);

struct fltport_server_config {
	void *cookie;                        /* handed to on_connect unchanged */
	fltport_connect_fn on_connect;       /* required */
	fltport_disconnect_fn on_disconnect; /* required */
	fltport_message_fn on_message;       /* optional: NULL → requests fail with -EOPNOTSUPP */
	int max_connections;                 /* > 0 */
	struct fltport_access access;        /* zeroed → root only */
	unsigned workers;                    /* 0 → FLTPORT_DEFAULT_WORKERS */
	unsigned slots;     /* 0 → FLTPORT_DEFAULT_SLOTS; ≤ FLTPORT_MAX_SLOTS */
	size_t max_message; /* 0 → FLTPORT_DEFAULT_MAX_MESSAGE; ≥ FLTPORT_MIN_MAX_MESSAGE */
};

/*
 * Create a named server port and start listening.  Starts the server's
 * threads (one control thread and `workers` + 1 pool threads: those not
 * running a message callback wait for the port's I/O, and the one that
 * reads a request runs its callback; at most `workers` callbacks at once).
 * Blocks only briefly on the file system.  The port directory is created
 * (mode 0755) if missing.  A socket file left by a dead server is replaced.
 *
 * Errors: -EINVAL (bad config: missing callback, max_connections <= 0, bad
 * slots/max_message), -EINVAL or -ENAMETOOLONG (bad name: see
 * fltport_name_valid()), -EADDRINUSE (a live server has this name),
 * -ENOMEM, -EACCES or another errno from the file system or socket calls.
 */
FLTPORT_API int fltport_server_create(const char *name, const struct fltport_server_config *cfg,
				      fltport_server **out);

/*
 * Stop accepting connections and remove the name (FltCloseCommunicationPort).
 * Existing connections live on, their callbacks keep running.  Non-blocking.
 * Idempotent.  The server object stays valid until fltport_server_destroy().
 */
FLTPORT_API void fltport_server_close(fltport_server *srv);

/*
 * Close the port if open, end every connection (each disconnect callback
 * runs exactly once), wait for every running callback, stop the threads and
 * free everything, including client ports not yet closed by the user.
 * Blocks until that is done; must not be called from a callback of this
 * server.  Pending fltport_send() calls return -ENOTCONN first.
 */
FLTPORT_API void fltport_server_destroy(fltport_server *srv);

/*
 * Send a message to one client port (FltSendMessage).  Thread-safe: any
 * number of threads may send on one client at once, also from callbacks.
 *
 * With reply == NULL no reply is wanted: the call returns 0 once a reader
 * has taken the message.  Otherwise *reply_len is the reply capacity in
 * bytes on input (0 allowed) and the reply length on output; *reply_status
 * (may be NULL) gets the status the replier sent.
 *
 * `timeout_ns` is one deadline for delivery and reply together.  A message
 * whose deadline expires before a reader took it is never delivered.  With
 * FLTPORT_POLL the message is delivered only if a reader is waiting at the
 * call; with a reply buffer the call then returns -ETIMEDOUT at once after
 * delivery, and the reply is refused as "no waiter".
 *
 * `fds` (may be NULL when nfds == 0, at most FLTPORT_MAX_FDS) travel with
 * the message; the caller keeps its own copies.
 *
 * Blocks on: a free in-flight slot, socket space, a reader taking the
 * message, and the reply — all within the one deadline.
 *
 * Returns 0 (delivered; reply received if wanted), -ETIMEDOUT (deadline
 * passed before delivery — not delivered — or before the reply), -ENOTCONN
 * (the connection ended or was closed), -EOVERFLOW (reply larger than the
 * capacity: the first *reply_len bytes are written, *reply_len = capacity
 * and *reply_status are set), -EMSGSIZE (len above the port's max_message,
 * nothing sent), -EINVAL, -ENOMEM / -EMFILE / -ENFILE (no memory or fd for
 * the payload's memfd: nothing delivered).  A poll send never waits: before
 * the connection's connect result is out, no reader can be waiting.
 */
FLTPORT_API int fltport_send(fltport_client *client, const void *msg, size_t len, const int *fds,
			     unsigned nfds, void *reply, size_t *reply_len, uint32_t *reply_status,
			     int64_t timeout_ns);

/*
 * End a connection from the filter side and release the caller's reference
 * (FltCloseClientPort).  Call it exactly once per client port the connect
 * callback accepted — usually from the disconnect callback.  Non-blocking;
 * never runs the disconnect callback itself (the control thread does, if it
 * has not run yet).  Pending sends on it return -ENOTCONN; the user side
 * sees the connection end.  The object is freed once both this call and the
 * disconnect callback have happened.
 */
FLTPORT_API void fltport_client_close(fltport_client *client);

/*
 * End a connection from the filter side without releasing the reference:
 * exactly what fltport_client_close() does to the connection (pending sends
 * return -ENOTCONN, the user side sees the end, the disconnect callback runs
 * once on the control thread), but the client port stays valid until
 * fltport_client_close().  Non-blocking, idempotent, any thread.  (The
 * Windows layer uses it to close a client port that other threads may
 * still be sending on.)
 */
FLTPORT_API void fltport_client_disconnect(fltport_client *client);

/* The peer of a client port (the user-side process).  Never fails on a
 * valid client port, connected or not. */
FLTPORT_API void fltport_client_peer(const fltport_client *client, struct fltport_peer *peer);

/* ------------------------------------------------------------------ */
/* User side                                                            */
/* ------------------------------------------------------------------ */

/* A message from the filter, as fltport_get() hands it out. */
struct fltport_msg {
	uint64_t id;              /* pass to fltport_reply() */
	size_t len;               /* payload bytes written to the buffer */
	bool wants_reply;         /* the sender waits for a reply */
	size_t reply_cap;         /* the sender's reply capacity in bytes (0 if !wants_reply) */
	int fds[FLTPORT_MAX_FDS]; /* owned by the receiver: close them */
	unsigned nfds;
};

/* fltport_connect() flags. */
#define FLTPORT_CONNECT_SHM 0x1u /* ask for the shared-memory transport */

/*
 * Connect to a named server port (FilterConnectCommunicationPort).  `ctx`
 * (ctx_len ≤ FLTPORT_CONTEXT_MAX bytes; NULL iff ctx_len == 0) reaches the
 * connect callback.  `flags`: 0, or FLTPORT_CONNECT_SHM to ask for the
 * shared-memory transport: frames then travel through two rings in shared
 * memory (wake-ups only when a side sleeps: a futex wake, or a doorbell fd; the socket kept for fds,
 * payloads above 4 KiB and the server's end), with every semantic
 * unchanged.  The server grants it unless its process runs with
 * FLTPORT_TRANSPORT=socket; if not granted, the connection uses the
 * socket (fltport_conn_transport() tells).  FLTPORT_TRANSPORT=shm in this
 * process's environment asks for it on every connect, FLTPORT_TRANSPORT=
 * socket on none.  Starts one receive thread for the connection.  Blocks until the server's connect callback has
 * decided, at most `timeout_ns`.
 *
 * The server is authenticated first: with $FLTPORT_DIR unset, the server
 * must run as root and the directory must be root-owned and writable by
 * root only; with $FLTPORT_DIR set, the server must run as root or as the
 * directory's owner.
 *
 * Errors: -ENOENT (no such port, or its server is gone), -EACCES (refused by
 * the port's access policy, or the server is not trusted), -EUSERS
 * (max_connections reached), -ECONNREFUSED (the connect callback rejected
 * the connection: *status, if not NULL, gets its status — written on this
 * error only), -EPROTO (wire version mismatch), -E2BIG (ctx_len above
 * FLTPORT_CONTEXT_MAX), -EINVAL / -ENAMETOOLONG (bad name or $FLTPORT_DIR:
 * see fltport_name_valid(); or bad arguments), -ETIMEDOUT, -ENOMEM,
 * -ECONNRESET (the server died during the handshake).
 */
FLTPORT_API int fltport_connect(const char *name, const void *ctx, size_t ctx_len, unsigned flags,
				int64_t timeout_ns, fltport_conn **out, uint32_t *status);

/*
 * Request/response to the server's message callback (FilterSendMessage).
 * Thread-safe: any number of threads may call at once; each gets its own
 * response.  `out` (may be NULL when out_cap == 0) receives at most out_cap
 * bytes; *out_len (may be NULL) the bytes the callback wrote; *status (may
 * be NULL) the callback's status.  `fds` travel to the callback.
 *
 * Returns 0 (the callback ran), -EOPNOTSUPP (the port has no message
 * callback), -ENOTCONN (disconnected, or closed), -ETIMEDOUT, -EMSGSIZE
 * (in_len above the port's limit: nothing sent), -EINVAL, -ENOMEM, -EMFILE
 * (no fd here for the payload's memfd, or the server refused the request
 * because this connection's queued requests already hold 64 fds — the
 * callback did not run; retry later).
 */
FLTPORT_API int fltport_request(fltport_conn *conn, const void *in, size_t in_len, const int *fds,
				unsigned nfds, void *out, size_t out_cap, size_t *out_len,
				uint32_t *status, int64_t timeout_ns);

/*
 * Take the next message (FilterGetMessage).  Thread-safe: any number of
 * threads may wait at once; each message goes to exactly one of them,
 * waiting readers served first come, first served.  Blocks at most
 * `timeout_ns` (FLTPORT_POLL: never).
 *
 * Returns 0 (payload in buf, *msg filled), -ETIMEDOUT (nothing arrived),
 * -EMSGSIZE (the next message is larger than `cap`: msg->len is set to the
 * size needed — the one exception to the out-parameter rule — and the
 * message stays queued for the next get), -ENOTCONN (the server ended the
 * connection or died), -ECANCELED (fltport_close() or fltport_cancel_gets()
 * on this connection), -EINVAL.
 */
FLTPORT_API int fltport_get(fltport_conn *conn, void *buf, size_t cap, struct fltport_msg *msg,
			    int64_t timeout_ns);

/*
 * Completion of an asynchronous get.  `err` is 0 (buf holds the payload,
 * *msg is filled), -EMSGSIZE (msg->len = size needed; the message stays
 * queued), -ENOTCONN or -ECANCELED, as for fltport_get().  `msg` is valid
 * during the callback only; the fds in it become the callback's.  Runs on
 * the connection's receive thread, or on the thread that called
 * fltport_get_async() / fltport_cancel_get[s]() / fltport_close(); it must
 * not block for long, and must not call fltport_close() on this connection.
 */
typedef void (*fltport_get_fn)(void *arg, int err, void *buf, const struct fltport_msg *msg);

/*
 * Post an asynchronous get: `buf` (cap bytes) must stay valid until the
 * callback has run.  Posted gets are served in order with blocking gets and
 * count as waiting readers.  If a message is already queued, the callback
 * runs before this function returns.  *token (may be NULL) identifies the
 * get for fltport_cancel_get().  Returns 0 or -ENOTCONN / -ECANCELED (the
 * callback is then not called), -EINVAL, -ENOMEM.
 */
FLTPORT_API int fltport_get_async(fltport_conn *conn, void *buf, size_t cap, fltport_get_fn fn,
				  void *arg, uint64_t *token);

/*
 * Run posted gets' completions on the calling thread: the waiter of an I/O
 * completion port (the Windows layer's GetQueuedCompletionStatus for
 * FilterGetMessage's overlapped reads uses it), or a service's worker
 * threads.  While it waits, this thread reads the connection itself, and
 * the callbacks of the gets it completes run here before it returns: a
 * message costs one wake-up, with no hand-over through the receive thread.
 * Several threads may wait at once: on the socket transport each message
 * wakes one of them, which reads it; on the rings one reads and the others
 * wait for it to pass the reading on.  Blocks at most `timeout_ns`
 * (FLTPORT_POLL: never).
 *
 * Returns the number of callbacks run (> 0); 0 when
 * fltport_wake_completions() woke it; -EAGAIN (no get is posted: nothing to
 * wait for), -ETIMEDOUT, -ENOTCONN (the connection ended; the posted gets
 * completed with it), -ECANCELED (fltport_close() / fltport_shutdown()),
 * -EDEADLK (called from a callback it runs, for this connection), -EINVAL.
 * The callbacks must not call fltport_close() on this connection.
 * Between calls, a message for a posted get waits up to 20 ms for a thread
 * to come back before the receive thread reads it.
 */
FLTPORT_API int fltport_run_completions(fltport_conn *conn, int64_t timeout_ns);

/* Wake every thread in fltport_run_completions() on this connection (they
 * return 0), or, with none inside, the next one to enter.  Non-blocking. */
FLTPORT_API void fltport_wake_completions(fltport_conn *conn);

/* Cancel one posted get: its callback runs with -ECANCELED on the calling
 * thread before this returns.  Non-blocking otherwise.  Returns 0, or
 * -ENOENT if it is no longer pending (already completed or cancelled). */
FLTPORT_API int fltport_cancel_get(fltport_conn *conn, uint64_t token);

/* Cancel every posted get (callbacks run on the calling thread) and wake
 * every blocked fltport_get() with -ECANCELED (on the socket transport, a
 * get asleep in recvmsg() returns within 100 ms: docs/PORTING.md).
 * Non-blocking otherwise.  Returns how many were cancelled (≥ 0). */
FLTPORT_API int fltport_cancel_gets(fltport_conn *conn);

/*
 * Reply to a message by id (FilterReplyMessage).  Thread-safe.  Blocks only
 * while the socket is full.  Returns 0, -ENOENT (no sender waits for this
 * message id: the message wanted no reply, its sender gave up, it was
 * already answered, or the id is unknown — here -ENOENT never means "no
 * such port", as it does for fltport_connect()), -EOVERFLOW (`len` exceeds
 * the sender's capacity: the first reply_cap bytes were delivered and the
 * sender sees -EOVERFLOW), -EMSGSIZE (above the port's limit: nothing
 * sent), -ENOTCONN, -EINVAL, -EMFILE / -ENFILE / -ENOMEM (the reply could
 * not be sent, e.g. no fd for a large reply's memfd: nothing was delivered
 * and the message is still answerable — retry, unless the sender's deadline
 * passes meanwhile).
 */
FLTPORT_API int fltport_reply(fltport_conn *conn, uint64_t id, uint32_t status, const void *data,
			      size_t len);

/*
 * A pollable fd: readable while a message is queued (a fltport_get() with
 * FLTPORT_POLL will not return -ETIMEDOUT) or the connection has ended.
 * Owned by the connection: do not close or read it.  From the first call
 * on, the connection's receive thread reads messages as they arrive (else
 * a thread blocked in fltport_get() reads them itself, without the extra
 * hand-over between threads).
 */
FLTPORT_API int fltport_conn_fd(const fltport_conn *conn);

/* The peer of a connection (the server process). */
FLTPORT_API void fltport_conn_peer(const fltport_conn *conn, struct fltport_peer *peer);

/* True once the connection has ended (server closed it, died, or
 * fltport_close() was called). */
FLTPORT_API bool fltport_conn_ended(const fltport_conn *conn);

/* The transport the connection uses: "socket" or "shm". */
FLTPORT_API const char *fltport_conn_transport(const fltport_conn *conn);

/* The largest payload this connection carries (the server's max_message). */
FLTPORT_API size_t fltport_conn_max_message(const fltport_conn *conn);

/*
 * End the connection without freeing it: wakes every thread blocked on it
 * as fltport_close() does (gets and posted gets → -ECANCELED, requests →
 * -ENOTCONN), and every later call fails the same way.  The server sees the
 * disconnect.  Non-blocking apart from running cancelled gets' callbacks;
 * idempotent; any thread.  Call fltport_close() to free.  (The Windows
 * layer's CloseHandle uses it while other threads may still be inside calls
 * on the handle.)
 */
FLTPORT_API void fltport_shutdown(fltport_conn *conn);

/*
 * Close the connection (CloseHandle).  Wakes every thread blocked on it
 * (gets and posted gets → -ECANCELED, requests → -ENOTCONN), waits until
 * they have left the library, then frees it.  The server sees the
 * disconnect.  May be called from an async-get callback of the same
 * connection: on the receive thread the free is left to that thread, which
 * does it on its way out (so a Windows port handle whose last reference
 * goes away in a completion is safe).  Any later use of the pointer is
 * undefined.
 */
FLTPORT_API void fltport_close(fltport_conn *conn);

/* ------------------------------------------------------------------ */
/* Both                                                                 */
/* ------------------------------------------------------------------ */

/*
 * Check a port name: 0 if valid, -EINVAL (empty; contains '/', '\\' after
 * the leading ones, a control character; is "." or ".."; or $FLTPORT_DIR is
 * relative), -ENAMETOOLONG (longer than FLTPORT_NAME_MAX or than fits in a
 * socket path in the port directory; or $FLTPORT_DIR itself leaves no room
 * for any name).  Leading backslashes are stripped, as Windows names start
 * with one.  fltport_server_create() and fltport_connect() check names the
 * same way and return the same errors.  With FLTPORT_DEBUG=1, a refusal
 * for a length or for $FLTPORT_DIR prints one line saying which it is.
 */
FLTPORT_API int fltport_name_valid(const char *name);

/*
 * The port directory in use: $FLTPORT_DIR if set and not empty, else
 * FLTPORT_DEFAULT_DIR; returned as set.  $FLTPORT_DIR must be an absolute
 * path (a relative one would mean a different directory in every working
 * directory): when it is relative every call that takes a port name fails
 * with -EINVAL, and when it is so long that no socket path fits under it
 * (more than 105 bytes), with -ENAMETOOLONG.
 */
FLTPORT_API const char *fltport_dir(void);

/* Text for a negative errno returned by this library.  Where an errno means
 * different things to different calls (-ENOENT: no such port for
 * fltport_connect(), no waiting sender for fltport_reply()), the text names
 * each meaning; the call's comment says which applies. */
FLTPORT_API const char *fltport_strerror(int err);

/* FLTPORT_DEBUG lines this process lost: dropped because the buffer was
 * full (stderr slower than the lines came, or stuck), or refused by stderr
 * (closed, a pipe without reader).  0 without FLTPORT_DEBUG=1.  Never
 * reset; a forked child starts from its parent's count.  Any thread. */
FLTPORT_API uint64_t fltport_debug_dropped(void);

/*
 * Close fds a peer sent (a request's fds in a message callback, a
 * message's fds), without waiting on that peer.  The last close of a pipe
 * end takes the pipe's lock, which whoever holds the other end can keep as
 * long as it likes; a socket's close releases the fds queued in it; a FUSE
 * file's close asks its daemon.  Only a shmem file (memfd, tmpfs) is
 * closed at once; every other kind by the library's closer threads.  A
 * filter side should close a client's
 * fds with this, never with close(): a hostile client could otherwise hold
 * the calling thread in an uninterruptible sleep.  Negative fds are
 * skipped; fds may be NULL when nfds is 0.  Any thread.
 */
FLTPORT_API void fltport_close_fds(const int *fds, unsigned nfds);

/* The loaded library's version: "MAJOR.MINOR.PATCH" (FLTPORT_VERSION_STRING
 * of its build); *number (if not NULL) gets its FLTPORT_VERSION. */
FLTPORT_API const char *fltport_version(unsigned *number);

#ifdef __cplusplus
}
#endif

#endif /* FLTPORT_PORT_H */
