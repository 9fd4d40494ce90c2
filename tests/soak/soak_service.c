/*
 * fltport-soak, service role: connects to "soak-f<K>" in epochs.  An epoch
 * opens a few connections and runs, on them, sync getters (random deadlines
 * and, at times, a buffer too small: -EMSGSIZE), async getters (two gets
 * posted each, completions handed to the thread by the callback) and
 * requesters (fltport_request into the filter's message callback).  It ends
 * after a random time, when the filter goes away, or on "stop": every
 * connection is shut down, the threads are joined, the connections closed.
 *
 * Every message is checked (header, checksum, token fds, reply capacity) and
 * counted per filter process; messages that want a reply get the bytes the
 * sender expects.  Every request's response is checked.
 *
 * Lines: READY, STATS (every second), FAIL, RECV (per filter process) and
 * DONE after "stop".
 */
#include "soak.h"

#include "testutil.h"

#include <fltport/port.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CONN 4
#define MAX_WORKERS 16
#define ASYNC_DEPTH 2 /* gets posted at once per async thread */
#define MAX_FILTERS 4096
#define CONNECT_TIMEOUT_NS (5 * 1000000000LL)
#define SMALL_GET_CAP 4096u
#define SETTLE_MS 3000

/* Messages taken from one filter process. */
struct recv_counts {
	pid_t filter_pid;
	atomic_long noreply, reply;
};

struct sconn {
	fltport_conn *conn;
	pid_t filter_pid;
	struct recv_counts *rc;
};

struct epoch {
	struct sconn c[MAX_CONN];
	unsigned n;
	atomic_bool end;
};

enum req_cls { Q_OK, Q_TIMEDOUT, Q_NOTCONN, Q_OTHER, Q_NCLASS };

struct completion {
	unsigned slot;
	int err;
	struct fltport_msg msg;
};

struct worker {
	pthread_t th;
	uint32_t id;
	struct epoch *ep;
	struct sconn *sc;
	struct soak_rng rng;
	unsigned char *buf[ASYNC_DEPTH]; /* getters use buf[0] */
	/* Async: completions queued by the callback. */
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct completion q[ASYNC_DEPTH];
	unsigned qn, posted;
	int tokens[SOAK_TOKENS]; /* requesters */
};

struct slot_ref {
	struct worker *w;
	unsigned slot;
};

static pthread_mutex_t recv_lock = PTHREAD_MUTEX_INITIALIZER;
static struct recv_counts recv_tab[MAX_FILTERS];
static unsigned nrecv;
static atomic_long got_sync, got_async, emsgsize, replies, replies_late, epochs, connects,
	connect_retries, rejects_seen;
static atomic_long req_sent, req[Q_NCLASS];
static atomic_bool stop_send, stop;
static pid_t my_pid;
static unsigned my_instance, my_filter;
static int64_t next_stats;

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "fltport-soak: out of memory\n");
		exit(2);
	}
	return p;
}

static struct recv_counts *recv_slot(pid_t filter_pid)
{
	struct recv_counts *r = NULL;

	pthread_mutex_lock(&recv_lock);
	for (unsigned i = 0; i < nrecv && !r; i++) {
		if (recv_tab[i].filter_pid == filter_pid)
			r = &recv_tab[i];
	}
	if (!r && nrecv < MAX_FILTERS) {
		r = &recv_tab[nrecv++];
		r->filter_pid = filter_pid;
	}
	pthread_mutex_unlock(&recv_lock);
	if (!r) {
		fprintf(stderr, "fltport-soak: too many filter processes\n");
		exit(2);
	}
	return r;
}

/* ------------------------------------------------------------------ */
/* Messages                                                             */
/* ------------------------------------------------------------------ */

static void reply(struct sconn *sc, const struct fltport_msg *m, const struct soak_hdr *h)
{
	bool overflow = h->reply_len > m->reply_cap;
	const void *data = soak_pattern(soak_reply_off(h->seq, h->sender));
	uint32_t st = m->len ? soak_reply_status(h->seq, h->sender) : SOAK_ZERO_STATUS;
	int rc = fltport_reply(sc->conn, m->id, st, data, h->reply_len);

	if (rc == (overflow ? -EOVERFLOW : 0))
		atomic_fetch_add(&replies, 1);
	else if (rc == -ENOENT || rc == -ENOTCONN || rc == -ECANCELED)
		atomic_fetch_add(&replies_late, 1); /* the sender gave up, or the epoch ended */
	else
		soak_fail("fltport_reply (%u bytes, capacity %zu): %d (%s)", h->reply_len,
			  m->reply_cap, rc, fltport_strerror(rc));
}

/* Check a message taken from sc, count it, answer it if it wants a reply.
 * Closes the fds it came with. */
static void handle_message(struct sconn *sc, const unsigned char *buf, const struct fltport_msg *m)
{
	struct soak_hdr h;
	const char *why = soak_check(buf, m->len, &h);

	if (!why && m->nfds != h.nfds)
		why = "fd count differs from the header's";
	if (!why && m->len && m->wants_reply && m->reply_cap != h.reply_cap)
		why = "reply_cap differs from the header's";
	if (!why && !m->wants_reply && m->reply_cap != 0)
		why = "reply_cap without a reply";
	for (unsigned i = 0; i < m->nfds; i++) {
		if (!why)
			why = soak_token_check(m->fds[i], sc->filter_pid, h.sender, i);
		close(m->fds[i]);
	}
	if (why) {
		soak_fail("message of %zu bytes from filter pid %d (sender %u seq %llu): %s",
			  m->len, (int)sc->filter_pid, h.sender, (unsigned long long)h.seq, why);
		return;
	}
	atomic_fetch_add(m->wants_reply ? &sc->rc->reply : &sc->rc->noreply, 1);
	if (m->wants_reply)
		reply(sc, m, &h);
}

/* ------------------------------------------------------------------ */
/* Sync getters                                                         */
/* ------------------------------------------------------------------ */

static int64_t get_deadline(struct soak_rng *r)
{
	static const int64_t choice[] = { 0, 10 * 1000000LL, 200 * 1000000LL, -1 };

	return choice[soak_range(r, 0, 3)];
}

static void *getter_main(void *arg)
{
	struct worker *w = arg;
	struct fltport_msg msg;

	while (!atomic_load(&w->ep->end)) {
		size_t cap = soak_pct(&w->rng, 10) ? SMALL_GET_CAP : SOAK_BUF_CAP;
		int rc = fltport_get(w->sc->conn, w->buf[0], cap, &msg, get_deadline(&w->rng));

		if (rc == 0) {
			atomic_fetch_add(&got_sync, 1);
			handle_message(w->sc, w->buf[0], &msg);
		} else if (rc == -EMSGSIZE) {
			atomic_fetch_add(&emsgsize, 1);
			if (msg.len <= cap)
				soak_fail("-EMSGSIZE for %zu bytes with a %zu-byte buffer", msg.len,
					  cap);
		} else if (rc == -ECANCELED || rc == -ENOTCONN) {
			break; /* the epoch ended, or the filter went away */
		} else if (rc != -ETIMEDOUT) {
			soak_fail("fltport_get: %d (%s)", rc, fltport_strerror(rc));
			break;
		}
	}
	atomic_store(&w->ep->end, true);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Async getters                                                        */
/* ------------------------------------------------------------------ */

/* Completion callback: hand the result to the worker thread. */
static void on_get_done(void *arg, int err, void *buf, const struct fltport_msg *msg)
{
	struct slot_ref *ref = arg;
	struct worker *w = ref->w;
	struct completion *c;

	(void)buf;
	pthread_mutex_lock(&w->qlock);
	c = &w->q[w->qn++];
	c->slot = ref->slot;
	c->err = err;
	if (err == 0 || err == -EMSGSIZE)
		c->msg = *msg;
	else
		memset(&c->msg, 0, sizeof(c->msg));
	pthread_cond_signal(&w->qcond);
	pthread_mutex_unlock(&w->qlock);
}

static void post(struct worker *w, struct slot_ref *ref)
{
	int rc;

	if (atomic_load(&w->ep->end))
		return;
	pthread_mutex_lock(&w->qlock);
	w->posted++;
	pthread_mutex_unlock(&w->qlock);
	rc = fltport_get_async(w->sc->conn, w->buf[ref->slot], SOAK_BUF_CAP, on_get_done, ref,
			       NULL);
	if (rc != 0) {
		pthread_mutex_lock(&w->qlock);
		w->posted--;
		pthread_mutex_unlock(&w->qlock);
		if (rc != -ENOTCONN && rc != -ECANCELED)
			soak_fail("fltport_get_async: %d (%s)", rc, fltport_strerror(rc));
		atomic_store(&w->ep->end, true);
	}
}

static void *async_main(void *arg)
{
	struct worker *w = arg;
	struct slot_ref refs[ASYNC_DEPTH];

	for (unsigned i = 0; i < ASYNC_DEPTH; i++) {
		refs[i] = (struct slot_ref){ w, i };
		post(w, &refs[i]);
	}
	for (;;) {
		struct completion c;

		pthread_mutex_lock(&w->qlock);
		while (w->qn == 0 && w->posted > 0)
			pthread_cond_wait(&w->qcond, &w->qlock);
		if (w->qn == 0) {
			pthread_mutex_unlock(&w->qlock);
			break; /* nothing posted, nothing queued: the epoch is over */
		}
		c = w->q[0];
		memmove(&w->q[0], &w->q[1], --w->qn * sizeof(w->q[0]));
		w->posted--;
		pthread_mutex_unlock(&w->qlock);

		if (c.err == 0) {
			atomic_fetch_add(&got_async, 1);
			handle_message(w->sc, w->buf[c.slot], &c.msg);
		} else if (c.err != -ECANCELED && c.err != -ENOTCONN) {
			soak_fail("async get: %d (%s)", c.err, fltport_strerror(c.err));
		}
		if (c.err != 0)
			atomic_store(&w->ep->end, true);
		post(w, &refs[c.slot]);
	}
	atomic_store(&w->ep->end, true);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Requesters                                                           */
/* ------------------------------------------------------------------ */

static void check_response(struct worker *w, const struct soak_hdr *h, uint32_t len,
			   uint32_t out_cap, size_t out_len, uint32_t st)
{
	size_t want = h->reply_len < out_cap ? h->reply_len : out_cap;
	const char *why = NULL;

	if (len == 0)
		why = out_len != 0 || st != SOAK_ZERO_STATUS ? "response to an empty request"
							     : NULL;
	else
		why = soak_check_reply(w->buf[1], out_len, want, h->seq, h->sender);
	if (!why && len && st != soak_reply_status(h->seq, h->sender))
		why = "response status";
	if (why)
		soak_fail("request %u/%llu (%u bytes, response %u, capacity %u): %s", w->id,
			  (unsigned long long)h->seq, len, h->reply_len, out_cap, why);
}

static void request_one(struct worker *w, uint64_t seq)
{
	struct soak_rng *r = &w->rng;
	uint32_t len = soak_random_len(r);
	uint32_t reply_len = (uint32_t)soak_range(r, 0, 65536);
	uint32_t out_cap = soak_pct(r, 10) ? (uint32_t)soak_range(r, 0, reply_len)
					   : reply_len + (uint32_t)soak_range(r, 0, 100);
	unsigned nfds = len && soak_pct(r, 10) ? (unsigned)soak_range(r, 1, 3) : 0;
	struct soak_hdr h = { .seq = seq, .sender = w->id, .reply_len = reply_len };
	size_t out_len = 0;
	uint32_t st = 0;
	enum req_cls k;
	int rc;

	soak_build(w->buf[0], len, w->id, seq, reply_len, out_cap, nfds);
	atomic_fetch_add(&req_sent, 1);
	rc = fltport_request(w->sc->conn, w->buf[0], len, nfds ? w->tokens : NULL, nfds, w->buf[1],
			     out_cap, &out_len, &st, soak_random_deadline(r));
	if (rc == 0) {
		check_response(w, &h, len, out_cap, out_len, st);
		k = Q_OK;
	} else if (rc == -ETIMEDOUT) {
		k = Q_TIMEDOUT;
	} else if (rc == -ENOTCONN) {
		k = Q_NOTCONN;
		atomic_store(&w->ep->end, true);
	} else {
		soak_fail("fltport_request (%u bytes): %d (%s)", len, rc, fltport_strerror(rc));
		k = Q_OTHER;
		atomic_store(&w->ep->end, true);
	}
	atomic_fetch_add(&req[k], 1);
}

static void *requester_main(void *arg)
{
	struct worker *w = arg;

	for (unsigned k = 0; k < SOAK_TOKENS; k++) {
		w->tokens[k] = soak_token_make(my_pid, w->id, k);
		if (w->tokens[k] < 0)
			soak_fail("memfd_create: %s", strerror(errno));
	}
	for (uint64_t seq = 0; !atomic_load(&w->ep->end); seq++)
		request_one(w, seq);
	for (unsigned k = 0; k < SOAK_TOKENS; k++) {
		if (w->tokens[k] >= 0)
			close(w->tokens[k]);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Epochs                                                               */
/* ------------------------------------------------------------------ */

static void report_stats(void)
{
	soak_say("STATS got_sync=%ld got_async=%ld emsgsize=%ld replies=%ld replies_late=%ld "
		 "req_sent=%ld req_ok=%ld req_timedout=%ld req_notconn=%ld req_other=%ld "
		 "epochs=%ld connects=%ld connect_retries=%ld rejects=%ld errors=%ld",
		 atomic_load(&got_sync), atomic_load(&got_async), atomic_load(&emsgsize),
		 atomic_load(&replies), atomic_load(&replies_late), atomic_load(&req_sent),
		 atomic_load(&req[Q_OK]), atomic_load(&req[Q_TIMEDOUT]),
		 atomic_load(&req[Q_NOTCONN]), atomic_load(&req[Q_OTHER]), atomic_load(&epochs),
		 atomic_load(&connects), atomic_load(&connect_retries), atomic_load(&rejects_seen),
		 atomic_load(&soak_errors));
}

static void tick(int ms)
{
	tu_sleep_ms(ms);
	if (tu_now_ms() >= next_stats) {
		report_stats();
		next_stats = tu_now_ms() + 1000;
	}
}

/* Ask the filter to refuse us: proves the rejection path. */
static void connect_rejected(const char *name, struct soak_ctx *ctx)
{
	uint32_t status = 0;
	fltport_conn *conn;
	int rc;

	ctx->flags = SOAK_CTX_REJECT;
	rc = fltport_connect(name, ctx, sizeof(*ctx), 0, CONNECT_TIMEOUT_NS, &conn, &status);
	ctx->flags = 0;
	if (rc == 0) {
		soak_fail("connect asking to be refused: accepted");
		fltport_close(conn);
	} else if (rc == -ECONNREFUSED) {
		if (status != SOAK_REJECT_STATUS)
			soak_fail("refused with status %08x, want %08x", status,
				  SOAK_REJECT_STATUS);
		atomic_fetch_add(&rejects_seen, 1);
	}
}

/* Connect, retrying while the filter is away.  NULL on stop. */
static fltport_conn *connect_one(struct soak_rng *r)
{
	struct soak_ctx ctx = { .magic = SOAK_CTX_MAGIC, .instance = my_instance, .pid = my_pid };
	char name[64];

	snprintf(name, sizeof(name), SOAK_PORT_FMT, my_filter);
	while (!atomic_load(&stop)) {
		fltport_conn *conn;
		int rc;

		if (soak_pct(r, 2))
			connect_rejected(name, &ctx);
		rc = fltport_connect(name, &ctx, sizeof(ctx), 0, CONNECT_TIMEOUT_NS, &conn, NULL);
		if (rc == 0) {
			atomic_fetch_add(&connects, 1);
			return conn;
		}
		/* The filter is dead, restarting or full: wait and retry. */
		if (rc != -ENOENT && rc != -ECONNRESET && rc != -ETIMEDOUT && rc != -EUSERS)
			soak_fail("fltport_connect: %d (%s)", rc, fltport_strerror(rc));
		atomic_fetch_add(&connect_retries, 1);
		tick((int)soak_range(r, 10, 200));
	}
	return NULL;
}

static void start_worker(struct worker *w, void *(*fn)(void *))
{
	for (unsigned i = 0; i < ASYNC_DEPTH; i++)
		w->buf[i] = xmalloc(SOAK_BUF_CAP);
	pthread_mutex_init(&w->qlock, NULL);
	pthread_cond_init(&w->qcond, NULL);
	if (pthread_create(&w->th, NULL, fn, w) != 0) {
		fprintf(stderr, "fltport-soak: pthread_create failed\n");
		exit(2);
	}
}

static void finish_worker(struct worker *w)
{
	pthread_join(w->th, NULL);
	for (unsigned i = 0; i < ASYNC_DEPTH; i++)
		free(w->buf[i]);
	pthread_mutex_destroy(&w->qlock);
	pthread_cond_destroy(&w->qcond);
}

struct shape {
	unsigned conns, getters, asyncs, requesters;
};

static void run_epoch(struct soak_rng *r, const struct shape *sh, uint64_t seed)
{
	static struct worker w[MAX_WORKERS];
	struct epoch ep = { .n = 0 };
	unsigned nw = 0;
	int64_t end_ms;

	for (; ep.n < sh->conns; ep.n++) {
		struct fltport_peer peer;
		struct sconn *sc = &ep.c[ep.n];

		sc->conn = connect_one(r);
		if (!sc->conn)
			break;
		fltport_conn_peer(sc->conn, &peer);
		sc->filter_pid = peer.pid;
		sc->rc = recv_slot(peer.pid);
	}
	if (ep.n == sh->conns) {
		unsigned total = sh->getters + sh->asyncs + sh->requesters;

		memset(w, 0, sizeof(w));
		for (; nw < total && nw < MAX_WORKERS; nw++) {
			w[nw].id = nw;
			w[nw].ep = &ep;
			w[nw].sc = &ep.c[nw % ep.n];
			soak_rng_seed(&w[nw].rng, seed, 2, (uint64_t)atomic_load(&epochs), nw);
			start_worker(&w[nw], nw < sh->getters                ? getter_main
					     : nw < sh->getters + sh->asyncs ? async_main
									     : requester_main);
		}
		end_ms = tu_now_ms() + (int64_t)soak_range(r, 1000, 10000);
		while (!atomic_load(&ep.end) && !atomic_load(&stop) && tu_now_ms() < end_ms)
			tick(20);
	}
	atomic_store(&ep.end, true);
	for (unsigned i = 0; i < ep.n; i++)
		fltport_shutdown(ep.c[i].conn);
	for (unsigned i = 0; i < nw; i++)
		finish_worker(&w[i]);
	for (unsigned i = 0; i < ep.n; i++)
		fltport_close(ep.c[i].conn);
	atomic_fetch_add(&epochs, 1);
}

static void report_done(int fds0, long heap0)
{
	int64_t end = tu_now_ms() + SETTLE_MS;
	int fds;
	long heap;

	do {
		fds = soak_count_fds();
		heap = soak_heap_in_use();
		if (fds == fds0)
			break;
		tu_sleep_ms(50);
	} while (tu_now_ms() < end);
	report_stats();
	pthread_mutex_lock(&recv_lock);
	for (unsigned i = 0; i < nrecv; i++)
		soak_say("RECV filter_pid=%d noreply=%ld reply=%ld", (int)recv_tab[i].filter_pid,
			 atomic_load(&recv_tab[i].noreply), atomic_load(&recv_tab[i].reply));
	pthread_mutex_unlock(&recv_lock);
	soak_say("DONE fds_base=%d fds_end=%d heap_base=%ld heap_end=%ld errors=%ld", fds0, fds,
		 heap0, heap, atomic_load(&soak_errors));
}

int soak_service_main(int argc, char **argv)
{
	uint64_t seed = (uint64_t)soak_arg_num(argc, argv, "--seed", 1);
	struct shape sh = {
		.conns = (unsigned)soak_arg_num(argc, argv, "--conns", 2),
		.getters = (unsigned)soak_arg_num(argc, argv, "--getters", 3),
		.asyncs = (unsigned)soak_arg_num(argc, argv, "--async", 1),
		.requesters = (unsigned)soak_arg_num(argc, argv, "--requesters", 2),
	};
	struct soak_rng r;
	int fds0;
	long heap0;

	my_filter = (unsigned)soak_arg_num(argc, argv, "--filter", 0);
	my_instance = (unsigned)soak_arg_num(argc, argv, "--instance", 0);
	if (sh.conns < 1 || sh.conns > MAX_CONN)
		sh.conns = 2;
	soak_rng_seed(&r, seed, 3, my_instance, 0);
	soak_heap_setup();
	soak_pattern_init();
	my_pid = getpid();
	soak_start_control(&stop_send, &stop);
	fds0 = soak_count_fds();
	heap0 = soak_heap_in_use();
	soak_say("READY pid=%d fds=%d heap=%ld", (int)my_pid, fds0, heap0);
	next_stats = tu_now_ms() + 1000;

	while (!atomic_load(&stop))
		run_epoch(&r, &sh, seed ^ my_instance);
	report_done(fds0, heap0);
	return atomic_load(&soak_errors) ? 1 : 0;
}
