/*
 * reqrep.c — nng and ZeroMQ REQ/REP for fltport-bench (reqrep.h).
 *
 * Each library sits behind the same small table; a kind that was not built
 * in has none, and reqrep_missing() says why.  The echo threads are
 * detached: the REP process ends by exiting, never by tearing down.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "reqrep.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#ifdef BENCH_HAVE_NNG
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#endif
#ifdef BENCH_HAVE_ZMQ
#include <zmq.h>
#endif

#define URL_MAX 160

struct reqrep_client {
	const struct reqrep_ops *ops;
	unsigned n;
#ifdef BENCH_HAVE_NNG
	nng_socket sock;
	bool sock_open;
	nng_ctx ctx[REQREP_THREADS_MAX]; /* n > 1 */
	nng_aio *aio[REQREP_THREADS_MAX];
#endif
#ifdef BENCH_HAVE_ZMQ
	void *zctx;
	void *zsock[REQREP_THREADS_MAX];
#endif
};

/* One echo thread of the REP side. */
struct echo {
	unsigned char *buf;
	size_t cap;
	void (*on_error)(const char *what, const char *text);
#ifdef BENCH_HAVE_NNG
	nng_socket sock;
	nng_ctx ctx;
	nng_aio *aio; /* NULL: the socket's synchronous calls (one thread) */
#endif
#ifdef BENCH_HAVE_ZMQ
	void *zsock;
#endif
};

struct reqrep_ops {
	int (*open)(struct reqrep_client *c, const char *dir);
	int (*roundtrip)(struct reqrep_client *c, unsigned t, const void *msg, void *reply,
			 size_t len);
	void (*close)(struct reqrep_client *c);
	/* Listen in dir and fill e[0..n-1] (buf, cap and on_error are set). */
	int (*listen)(const char *dir, unsigned n, struct echo *e);
	void *(*echo)(void *arg);
};

static _Thread_local const char *last_error = "";

const char *reqrep_last_error(void)
{
	return last_error;
}

const char *reqrep_name(enum reqrep_kind kind)
{
	return kind == REQREP_NNG ? "nng" : "zmq";
}

int reqrep_path(enum reqrep_kind kind, const char *dir, unsigned index, char *buf, size_t cap)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	int n;

	if (kind == REQREP_NNG)
		n = snprintf(buf, cap, "%s/nng", dir);
	else
		n = snprintf(buf, cap, "%s/zmq-%u", dir, index);
	if (n < 0 || (size_t)n >= cap || (size_t)n >= max)
		return -ENAMETOOLONG;
	return n;
}

int reqrep_paths(const char *dir, char out[][128], unsigned cap)
{
	unsigned k = 0;

	if (cap < REQREP_PATHS_MAX)
		return -EINVAL;
	if (reqrep_path(REQREP_NNG, dir, 0, out[k++], 128) < 0)
		return -ENAMETOOLONG;
	for (unsigned i = 0; i < REQREP_THREADS_MAX; i++)
		if (reqrep_path(REQREP_ZMQ, dir, i, out[k++], 128) < 0)
			return -ENAMETOOLONG;
	return (int)k;
}

#if defined(BENCH_HAVE_NNG) || defined(BENCH_HAVE_ZMQ)
static int url_of(enum reqrep_kind kind, const char *dir, unsigned index, char url[URL_MAX])
{
	char path[128];
	int rc = reqrep_path(kind, dir, index, path, sizeof(path));

	if (rc < 0)
		return rc;
	snprintf(url, URL_MAX, "ipc://%s", path);
	return 0;
}
#endif

/* ------------------------------------------------------------------ */
/* nng                                                                  */
/* ------------------------------------------------------------------ */

#ifdef BENCH_HAVE_NNG

static int rr_nng_fail(int rv)
{
	last_error = nng_strerror(rv);
	switch (rv) {
	case NNG_ETIMEDOUT:
		return -ETIMEDOUT;
	case NNG_ENOMEM:
		return -ENOMEM;
	case NNG_EMSGSIZE:
		return -EMSGSIZE;
	case NNG_ECONNREFUSED:
		return -ECONNREFUSED;
	case NNG_ECLOSED:
	case NNG_ECONNSHUT:
	case NNG_ECONNRESET:
		return -ECONNRESET;
	default:
		return -EIO;
	}
}

static void rr_nng_client_close(struct reqrep_client *c)
{
	for (unsigned i = 0; i < REQREP_THREADS_MAX; i++)
		if (c->aio[i])
			nng_aio_free(c->aio[i]);
	if (c->sock_open)
		nng_close(c->sock); /* closes the contexts too */
}

/* One context and aio per requester (n > 1). */
static int rr_nng_open_contexts(struct reqrep_client *c)
{
	for (unsigned i = 0; i < c->n; i++) {
		int rv = nng_ctx_open(&c->ctx[i], c->sock);

		if (!rv)
			rv = nng_aio_alloc(&c->aio[i], NULL, NULL);
		if (rv)
			return rr_nng_fail(rv);
		nng_aio_set_timeout(c->aio[i], REQREP_TIMEOUT_MS);
	}
	return 0;
}

static int rr_nng_client_open(struct reqrep_client *c, const char *dir)
{
	char url[URL_MAX];
	int rv, rc = url_of(REQREP_NNG, dir, 0, url);

	if (rc)
		return rc;
	rv = nng_req0_open(&c->sock);
	if (rv)
		return rr_nng_fail(rv);
	c->sock_open = true;
	rv = nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, REQREP_TIMEOUT_MS);
	if (!rv)
		rv = nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, REQREP_TIMEOUT_MS);
	if (rv)
		return rr_nng_fail(rv);
	if (c->n > 1 && (rc = rr_nng_open_contexts(c)))
		return rc;
	rv = nng_dial(c->sock, url, NULL, 0);
	return rv ? rr_nng_fail(rv) : 0;
}

/* Through a context: the message travels as an nng_msg. */
static int rr_nng_ctx_roundtrip(struct reqrep_client *c, unsigned t, const void *msg, void *reply,
				size_t len)
{
	nng_aio *aio = c->aio[t];
	nng_msg *m;
	int rv = nng_msg_alloc(&m, 0);

	if (!rv && (rv = nng_msg_append(m, msg, len)))
		nng_msg_free(m);
	if (rv)
		return rr_nng_fail(rv);
	nng_aio_set_msg(aio, m);
	nng_ctx_send(c->ctx[t], aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio))) {
		nng_msg_free(m); /* not sent: still ours */
		return rr_nng_fail(rv);
	}
	nng_ctx_recv(c->ctx[t], aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)))
		return rr_nng_fail(rv);
	m = nng_aio_get_msg(aio);
	rv = nng_msg_len(m) == len ? 0 : -EIO;
	if (!rv)
		memcpy(reply, nng_msg_body(m), len);
	nng_msg_free(m);
	return rv;
}

static int rr_nng_roundtrip(struct reqrep_client *c, unsigned t, const void *msg, void *reply,
			    size_t len)
{
	size_t got = len;
	int rv;

	if (c->n > 1)
		return rr_nng_ctx_roundtrip(c, t, msg, reply, len);
	rv = nng_send(c->sock, (void *)msg, len, 0);
	if (!rv)
		rv = nng_recv(c->sock, reply, &got, 0);
	if (rv)
		return rr_nng_fail(rv);
	return got == len ? 0 : -EIO;
}

static int rr_nng_listen_rep(const char *dir, unsigned n, struct echo *e)
{
	char url[URL_MAX];
	nng_socket sock;
	int rv, rc = url_of(REQREP_NNG, dir, 0, url);

	if (rc)
		return rc;
	rv = nng_rep0_open(&sock);
	if (!rv)
		rv = nng_listen(sock, url, NULL, 0);
	for (unsigned i = 0; !rv && i < n; i++) {
		e[i].sock = sock;
		e[i].aio = NULL;
		if (n > 1 && !(rv = nng_ctx_open(&e[i].ctx, sock)))
			rv = nng_aio_alloc(&e[i].aio, NULL, NULL);
	}
	return rv ? rr_nng_fail(rv) : 0;
}

/* Echo through a context: the request's message goes back as the reply. */
static int rr_nng_echo_ctx_once(struct echo *e)
{
	nng_msg *m;
	int rv;

	nng_ctx_recv(e->ctx, e->aio);
	nng_aio_wait(e->aio);
	if ((rv = nng_aio_result(e->aio)))
		return rv;
	m = nng_aio_get_msg(e->aio);
	nng_aio_set_msg(e->aio, m);
	nng_ctx_send(e->ctx, e->aio);
	nng_aio_wait(e->aio);
	if ((rv = nng_aio_result(e->aio)))
		nng_msg_free(m);
	return rv;
}

static int rr_nng_echo_once(struct echo *e)
{
	size_t got = e->cap;
	int rv;

	if (e->aio)
		return rr_nng_echo_ctx_once(e);
	rv = nng_recv(e->sock, e->buf, &got, 0);
	return rv ? rv : nng_send(e->sock, e->buf, got, 0);
}

static void *rr_nng_echo(void *arg)
{
	struct echo *e = arg;
	int rv;

	while (!(rv = rr_nng_echo_once(e)))
		;
	e->on_error("nng echo", nng_strerror(rv));
	return NULL;
}

static const struct reqrep_ops rr_nng_ops = {
	.open = rr_nng_client_open,
	.roundtrip = rr_nng_roundtrip,
	.close = rr_nng_client_close,
	.listen = rr_nng_listen_rep,
	.echo = rr_nng_echo,
};

#endif /* BENCH_HAVE_NNG */

/* ------------------------------------------------------------------ */
/* ZeroMQ                                                               */
/* ------------------------------------------------------------------ */

#ifdef BENCH_HAVE_ZMQ

static int rr_zmq_fail(void)
{
	int err = zmq_errno();

	last_error = zmq_strerror(err);
	return err == EAGAIN ? -ETIMEDOUT : -err;
}

/* A socket of `type` with bounded sends and receives and no linger. */
static void *rr_zmq_sock(void *zctx, int type)
{
	int ms = REQREP_TIMEOUT_MS, zero = 0;
	void *s = zmq_socket(zctx, type);

	if (s && (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) ||
		  zmq_setsockopt(s, ZMQ_RCVTIMEO, &ms, sizeof(ms)) ||
		  zmq_setsockopt(s, ZMQ_SNDTIMEO, &ms, sizeof(ms)))) {
		zmq_close(s);
		return NULL;
	}
	return s;
}

static void rr_zmq_client_close(struct reqrep_client *c)
{
	for (unsigned i = 0; i < REQREP_THREADS_MAX; i++)
		if (c->zsock[i])
			zmq_close(c->zsock[i]);
	if (c->zctx)
		zmq_ctx_term(c->zctx);
}

static int rr_zmq_client_open(struct reqrep_client *c, const char *dir)
{
	c->zctx = zmq_ctx_new();
	if (!c->zctx)
		return rr_zmq_fail();
	for (unsigned i = 0; i < c->n; i++) {
		char url[URL_MAX];
		int rc = url_of(REQREP_ZMQ, dir, i, url);

		if (rc)
			return rc;
		c->zsock[i] = rr_zmq_sock(c->zctx, ZMQ_REQ);
		if (!c->zsock[i] || zmq_connect(c->zsock[i], url))
			return rr_zmq_fail();
	}
	return 0;
}

static int rr_zmq_roundtrip(struct reqrep_client *c, unsigned t, const void *msg, void *reply,
			    size_t len)
{
	void *s = c->zsock[t];
	int n;

	if (zmq_send(s, msg, len, 0) != (int)len)
		return rr_zmq_fail();
	n = zmq_recv(s, reply, len, 0);
	if (n < 0)
		return rr_zmq_fail();
	return (size_t)n == len ? 0 : -EIO;
}

static int rr_zmq_listen_rep(const char *dir, unsigned n, struct echo *e)
{
	void *zctx = zmq_ctx_new();

	if (!zctx)
		return rr_zmq_fail();
	for (unsigned i = 0; i < n; i++) {
		char url[URL_MAX];
		int rc = url_of(REQREP_ZMQ, dir, i, url);

		if (rc)
			return rc;
		e[i].zsock = zmq_socket(zctx, ZMQ_REP); /* no timeouts: waits for work */
		if (!e[i].zsock || zmq_bind(e[i].zsock, url))
			return rr_zmq_fail();
	}
	return 0;
}

static void *rr_zmq_echo(void *arg)
{
	struct echo *e = arg;

	for (;;) {
		int n = zmq_recv(e->zsock, e->buf, e->cap, 0);

		if (n < 0 || (size_t)n > e->cap || zmq_send(e->zsock, e->buf, (size_t)n, 0) != n)
			break;
	}
	e->on_error("zmq echo", zmq_strerror(zmq_errno()));
	return NULL;
}

static const struct reqrep_ops rr_zmq_ops = {
	.open = rr_zmq_client_open,
	.roundtrip = rr_zmq_roundtrip,
	.close = rr_zmq_client_close,
	.listen = rr_zmq_listen_rep,
	.echo = rr_zmq_echo,
};

#endif /* BENCH_HAVE_ZMQ */

/* ------------------------------------------------------------------ */
/* Dispatch                                                             */
/* ------------------------------------------------------------------ */

static const struct reqrep_ops *ops_of(enum reqrep_kind kind)
{
#ifdef BENCH_HAVE_NNG
	if (kind == REQREP_NNG)
		return &rr_nng_ops;
#endif
#ifdef BENCH_HAVE_ZMQ
	if (kind == REQREP_ZMQ)
		return &rr_zmq_ops;
#endif
	return NULL;
}

const char *reqrep_missing(enum reqrep_kind kind)
{
	if (ops_of(kind))
		return NULL;
	if (kind == REQREP_NNG)
		return "built without nng (CMake found no libnng-dev; scripts/deps.sh --bench "
		       "installs it)";
	return "built without ZeroMQ (CMake found no libzmq3-dev; scripts/deps.sh --bench "
	       "installs it)";
}

int reqrep_client_open(enum reqrep_kind kind, const char *dir, unsigned nthreads,
		       struct reqrep_client **out)
{
	const struct reqrep_ops *ops = ops_of(kind);
	struct reqrep_client *c;
	int rc;

	if (!ops)
		return -ENOSYS;
	if (nthreads < 1 || nthreads > REQREP_THREADS_MAX)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ops = ops;
	c->n = nthreads;
	rc = ops->open(c, dir);
	if (rc) {
		ops->close(c);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int reqrep_roundtrip(struct reqrep_client *c, unsigned thread, const void *msg, void *reply,
		     size_t len)
{
	return c->ops->roundtrip(c, thread, msg, reply, len);
}

void reqrep_client_close(struct reqrep_client *c)
{
	if (!c)
		return;
	c->ops->close(c);
	free(c);
}

int reqrep_serve(enum reqrep_kind kind, const char *dir, unsigned nthreads, size_t cap,
		 void (*on_error)(const char *what, const char *text))
{
	const struct reqrep_ops *ops = ops_of(kind);
	struct echo *e;
	pthread_attr_t attr;
	int rc;

	if (!ops)
		return -ENOSYS;
	if (nthreads < 1 || nthreads > REQREP_THREADS_MAX)
		return -EINVAL;
	e = calloc(nthreads, sizeof(*e)); /* lives until the process exits */
	if (!e)
		return -ENOMEM;
	for (unsigned i = 0; i < nthreads; i++) {
		e[i].cap = cap;
		e[i].on_error = on_error;
		e[i].buf = malloc(cap);
		if (!e[i].buf)
			return -ENOMEM;
	}
	rc = ops->listen(dir, nthreads, e);
	if (rc)
		return rc;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (unsigned i = 0; i < nthreads && !rc; i++) {
		pthread_t tid;

		rc = -pthread_create(&tid, &attr, ops->echo, &e[i]);
	}
	pthread_attr_destroy(&attr);
	return rc;
}
