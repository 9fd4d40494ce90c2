/*
 * fp_stress_service — the user-side (service) process of the stress tests.
 *
 *   fp_stress_service concurrency PORT SVC NCONN NGETTERS NREQUESTERS MINREQ TAGFILE
 *	Open NCONN connections to PORT (context: SVC and the connection index).
 *	NGETTERS threads (spread over the connections) take messages with
 *	fltport_get(), check them, and answer those that want a reply with a
 *	reply derived from the message; NREQUESTERS threads meanwhile call
 *	fltport_request() (at least MINREQ times each) and check that each
 *	response is the transform of their own request.  A STOP message on
 *	every connection ends it: the tags of every message taken are written
 *	to TAGFILE (raw uint64_t), then "DONE ..." is printed.
 *
 *   fp_stress_service expiry PORT NGETTERS REPLY OUTFILE
 *	One connection; NGETTERS threads call fltport_get() with a short
 *	timeout in a loop.  Every round number taken is recorded, with the
 *	result of fltport_reply() when REPLY is 1.  A STOP message ends it: the
 *	records (struct exp_rec) go to OUTFILE, then "DONE ..." is printed.
 *
 * stdout: "READY" once connected with every thread started, then "DONE ...".
 * Failures: one line each on stderr; the exit code is then 1.  The helper
 * ends by itself if the filter disappears (a get returns -ENOTCONN) and, at
 * the latest, when its alarm fires.
 */
#include "../stress/stress_wire.h"
#include "testutil.h"

#include <fltport/port.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVICE_DEADLINE_S 700
#define CONNECT_TIMEOUT_NS (10 * 1000000000LL)
#define REQUEST_TIMEOUT_NS (10 * 1000000000LL)
#define GET_SLICE_NS (200 * 1000000LL)
#define EXP_GET_SLICE_NS (20 * 1000000LL)
#define MAX_CONN 8
#define MAX_THREADS 64

#define SM_BUF_CAP (320u * 1024u)

/* ------------------------------------------------------------------ */

static atomic_long errors;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (atomic_fetch_add(&errors, 1) < 50)
		fprintf(stderr, "fp_stress_service[%d]: FAIL: %s\n", (int)getpid(), line);
}

static long num_arg(const char *s, long lo, long hi)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "fp_stress_service: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "fp_stress_service: out of memory\n");
		exit(2);
	}
	return p;
}

static void start_thread(pthread_t *th, void *(*fn)(void *), void *arg)
{
	int rc = pthread_create(th, NULL, fn, arg);

	if (rc != 0) {
		fprintf(stderr, "fp_stress_service: pthread_create: %s\n", strerror(rc));
		exit(2);
	}
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		return -1;
	if (len && fwrite(data, 1, len, f) != len) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

/* ------------------------------------------------------------------ */
/* concurrency                                                          */
/* ------------------------------------------------------------------ */

struct svc_conn {
	fltport_conn *conn;
	uint32_t idx;
	atomic_int stops;
};

static struct svc_conn conns[MAX_CONN];
static unsigned nconns;
static uint32_t my_svc;
static atomic_uint stops_seen;
static atomic_bool stop_all;

struct getter {
	pthread_t th;
	struct svc_conn *c;
	uint8_t *buf;
	uint64_t *tags;
	size_t ntags, cap;
	long replies;
};

struct requester {
	pthread_t th;
	struct svc_conn *c;
	uint32_t id;
	long min, done;
};

static void stop_everything(void)
{
	atomic_store(&stop_all, true);
	for (unsigned i = 0; i < nconns; i++)
		fltport_cancel_gets(conns[i].conn);
}

static void record_tag(struct getter *g, uint64_t tag)
{
	if (g->ntags == g->cap) {
		uint64_t *t;

		g->cap = g->cap ? g->cap * 2 : 4096;
		t = realloc(g->tags, g->cap * sizeof(*t));
		if (!t) {
			fprintf(stderr, "fp_stress_service: out of memory\n");
			exit(2);
		}
		g->tags = t;
	}
	g->tags[g->ntags++] = tag;
}

static void on_stop(struct getter *g, const struct fltport_msg *msg)
{
	if (msg->wants_reply)
		fail("conn %u: STOP wants a reply", g->c->idx);
	if (atomic_fetch_add(&g->c->stops, 1) != 0)
		fail("conn %u: second STOP", g->c->idx);
	if (atomic_fetch_add(&stops_seen, 1) + 1 == nconns)
		stop_everything();
}

static void reply_data(struct getter *g, const struct sm_hdr *h, const struct fltport_msg *msg)
{
	size_t len = msg->len;
	struct sm_hdr r = *h;
	int rc;

	if (msg->reply_cap != len) {
		fail("tag %016llx: reply_cap %zu, want %zu", (unsigned long long)h->tag,
		     msg->reply_cap, len);
		return;
	}
	/* The reply: the header with the tag transformed, then the data echoed. */
	r.tag = h->tag ^ SM_REPLY_XOR;
	r.kind = SM_REPLY;
	memcpy(g->buf, &r, sizeof(r));
	rc = fltport_reply(g->c->conn, msg->id, sm_status(h->tag), g->buf, len);
	if (rc != 0)
		fail("tag %016llx: fltport_reply: %d", (unsigned long long)h->tag, rc);
	else
		g->replies++;
}

static void on_data(struct getter *g, const struct sm_hdr *h, const struct fltport_msg *msg)
{
	const uint8_t *data = g->buf + sizeof(*h);

	if (h->svc != my_svc || h->conn != g->c->idx) {
		fail("tag %016llx for svc %u conn %u arrived on svc %u conn %u",
		     (unsigned long long)h->tag, h->svc, h->conn, my_svc, g->c->idx);
		return;
	}
	if (msg->len != sizeof(*h) + h->data_len) {
		fail("tag %016llx: length %zu, header says %zu", (unsigned long long)h->tag,
		     msg->len, sizeof(*h) + h->data_len);
		return;
	}
	for (uint32_t i = 0; i < h->data_len; i++) {
		if (data[i] != sm_byte(h->tag, i)) {
			fail("tag %016llx: data byte %u corrupt", (unsigned long long)h->tag, i);
			return;
		}
	}
	record_tag(g, h->tag);
	if (msg->wants_reply)
		reply_data(g, h, msg);
}

static void on_message(struct getter *g, const struct fltport_msg *msg)
{
	struct sm_hdr h;

	for (unsigned i = 0; i < msg->nfds; i++)
		close(msg->fds[i]);
	if (msg->nfds)
		fail("conn %u: message came with %u fds", g->c->idx, msg->nfds);
	if (msg->len < sizeof(h)) {
		fail("conn %u: short message (%zu bytes)", g->c->idx, msg->len);
		return;
	}
	memcpy(&h, g->buf, sizeof(h));
	if (h.kind == SM_STOP)
		on_stop(g, msg);
	else if (h.kind == SM_DATA)
		on_data(g, &h, msg);
	else
		fail("conn %u: unknown kind %u", g->c->idx, h.kind);
}

static void *getter_main(void *arg)
{
	struct getter *g = arg;
	struct fltport_msg msg;

	for (;;) {
		int rc = fltport_get(g->c->conn, g->buf, SM_BUF_CAP, &msg, GET_SLICE_NS);

		if (rc == 0) {
			on_message(g, &msg);
			continue;
		}
		if (atomic_load(&stop_all) && (rc == -ETIMEDOUT || rc == -ECANCELED))
			break;
		if (rc == -ETIMEDOUT)
			continue;
		if (rc == -ENOTCONN)
			fail("conn %u: connection ended before STOP", g->c->idx);
		else
			fail("conn %u: fltport_get: %d", g->c->idx, rc);
		stop_everything();
		break;
	}
	return NULL;
}

static bool response_ok(const uint8_t *in, const uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (out[i] != (uint8_t)(in[len - 1 - i] ^ 0x5a))
			return false;
	}
	return true;
}

static void *requester_main(void *arg)
{
	struct requester *r = arg;
	size_t cap = sizeof(struct rq_hdr) + 512;
	uint8_t *in = xmalloc(cap), *out = xmalloc(cap);

	while (!atomic_load(&stop_all) || r->done < r->min) {
		struct rq_hdr h = { .svc = my_svc, .conn = r->c->idx, .thread = r->id };
		uint64_t seq = (uint64_t)r->done;
		size_t out_len = 0, len = sizeof(h) + (size_t)(seq * 37u % 500u);
		uint32_t status = 0, want = 2166136261u;
		int rc;

		h.len = (uint32_t)len;
		h.seq = seq;
		memcpy(in, &h, sizeof(h));
		for (size_t i = sizeof(h); i < len; i++)
			in[i] = rq_byte(seq, r->id, (uint32_t)i);
		rc = fltport_request(r->c->conn, in, len, NULL, 0, out, cap, &out_len, &status,
				     REQUEST_TIMEOUT_NS);
		if (rc != 0) {
			fail("requester %u seq %llu: fltport_request: %d", r->id,
			     (unsigned long long)seq, rc);
			break;
		}
		/* Expected: the input reversed, xor 0x5a; status: FNV-1a of the input. */
		for (size_t i = 0; i < len; i++)
			want = (want ^ in[i]) * 16777619u;
		if (out_len != len || status != want) {
			fail("requester %u seq %llu: out_len %zu status %08x, want %zu %08x", r->id,
			     (unsigned long long)seq, out_len, status, len, want);
			break;
		}
		if (!response_ok(in, out, len)) {
			fail("requester %u seq %llu: response is not the transform of our request",
			     r->id, (unsigned long long)seq);
			break;
		}
		r->done++;
	}
	free(in);
	free(out);
	return NULL;
}

static int connect_all(const char *port)
{
	for (unsigned i = 0; i < nconns; i++) {
		uint32_t ctx[2] = { my_svc, i };
		uint32_t status = 0;
		int rc = fltport_connect(port, ctx, sizeof(ctx), 0, CONNECT_TIMEOUT_NS,
					 &conns[i].conn, &status);

		if (rc != 0) {
			fprintf(stderr, "fp_stress_service: connect %u: %d (status %08x)\n", i, rc,
				status);
			while (i--)
				fltport_close(conns[i].conn);
			return -1;
		}
		conns[i].idx = i;
	}
	return 0;
}

static int write_tags(const char *path, struct getter *g, unsigned n, size_t *total)
{
	uint64_t *all;
	size_t k = 0;
	int rc;

	*total = 0;
	for (unsigned i = 0; i < n; i++)
		*total += g[i].ntags;
	all = xmalloc(*total * sizeof(*all) + 1);
	for (unsigned i = 0; i < n; i++) {
		if (g[i].ntags)
			memcpy(all + k, g[i].tags, g[i].ntags * sizeof(*all));
		k += g[i].ntags;
	}
	rc = write_file(path, all, *total * sizeof(*all));
	free(all);
	return rc;
}

static int run_concurrency(int argc, char **argv)
{
	static struct getter g[MAX_THREADS];
	static struct requester r[MAX_THREADS];
	unsigned ng, nr;
	long replies = 0, requests = 0;
	size_t got;

	if (argc != 9) {
		fprintf(stderr, "usage: fp_stress_service concurrency PORT SVC NCONN NGETTERS "
				"NREQUESTERS MINREQ TAGFILE\n");
		return 2;
	}
	my_svc = (uint32_t)num_arg(argv[3], 0, 1000);
	nconns = (unsigned)num_arg(argv[4], 1, MAX_CONN);
	ng = (unsigned)num_arg(argv[5], 1, MAX_THREADS);
	nr = (unsigned)num_arg(argv[6], 0, MAX_THREADS);
	if (connect_all(argv[2]) != 0)
		return 1;

	for (unsigned i = 0; i < ng; i++) {
		g[i].c = &conns[i % nconns];
		g[i].buf = xmalloc(SM_BUF_CAP);
		start_thread(&g[i].th, getter_main, &g[i]);
	}
	for (unsigned i = 0; i < nr; i++) {
		r[i].c = &conns[i % nconns];
		r[i].id = i;
		r[i].min = num_arg(argv[7], 0, 100000000);
		start_thread(&r[i].th, requester_main, &r[i]);
	}
	tu_say("READY");

	for (unsigned i = 0; i < ng; i++) {
		pthread_join(g[i].th, NULL);
		replies += g[i].replies;
	}
	for (unsigned i = 0; i < nr; i++) {
		pthread_join(r[i].th, NULL);
		requests += r[i].done;
	}
	if (write_tags(argv[8], g, ng, &got) != 0)
		fail("cannot write %s", argv[8]);
	tu_say("DONE svc=%u got=%zu replies=%ld requests=%ld errors=%ld", my_svc, got, replies,
	       requests, atomic_load(&errors));

	for (unsigned i = 0; i < nconns; i++)
		fltport_close(conns[i].conn);
	for (unsigned i = 0; i < ng; i++) {
		free(g[i].buf);
		free(g[i].tags);
	}
	return atomic_load(&errors) ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* expiry                                                               */
/* ------------------------------------------------------------------ */

static fltport_conn *exp_conn;
static bool exp_reply;

struct exp_getter {
	pthread_t th;
	struct exp_rec *recs;
	size_t n, cap;
	long enoent;
};

static void exp_record(struct exp_getter *g, uint64_t round, int rc)
{
	if (g->n == g->cap) {
		struct exp_rec *t;

		g->cap = g->cap ? g->cap * 2 : 4096;
		t = realloc(g->recs, g->cap * sizeof(*t));
		if (!t) {
			fprintf(stderr, "fp_stress_service: out of memory\n");
			exit(2);
		}
		g->recs = t;
	}
	g->recs[g->n].round = round;
	g->recs[g->n].reply_rc = rc;
	g->n++;
}

static void exp_on_message(struct exp_getter *g, const struct exp_msg *m,
			   const struct fltport_msg *msg)
{
	int rc = 0;

	if (msg->len != sizeof(*m) || m->check != (m->round ^ EXP_MAGIC)) {
		fail("malformed message (%zu bytes)", msg->len);
		return;
	}
	if (m->round == EXP_STOP) {
		atomic_store(&stop_all, true);
		fltport_cancel_gets(exp_conn);
		return;
	}
	if (msg->wants_reply != exp_reply)
		fail("round %llu: wants_reply %d", (unsigned long long)m->round, msg->wants_reply);
	if (msg->wants_reply) {
		rc = fltport_reply(exp_conn, msg->id, 0, &m->round, sizeof(m->round));
		if (rc == -ENOENT)
			g->enoent++;
		else if (rc != 0)
			fail("round %llu: fltport_reply: %d", (unsigned long long)m->round, rc);
	}
	exp_record(g, m->round, rc);
}

static void *exp_getter_main(void *arg)
{
	struct exp_getter *g = arg;
	struct fltport_msg msg;
	struct exp_msg m;

	for (;;) {
		int rc = fltport_get(exp_conn, &m, sizeof(m), &msg, EXP_GET_SLICE_NS);

		if (rc == 0) {
			for (unsigned i = 0; i < msg.nfds; i++)
				close(msg.fds[i]);
			exp_on_message(g, &m, &msg);
			continue;
		}
		if (atomic_load(&stop_all) && (rc == -ETIMEDOUT || rc == -ECANCELED))
			break;
		if (rc == -ETIMEDOUT)
			continue;
		if (rc == -ENOTCONN)
			fail("connection ended before STOP");
		else
			fail("fltport_get: %d", rc);
		atomic_store(&stop_all, true);
		fltport_cancel_gets(exp_conn);
		break;
	}
	return NULL;
}

static int run_expiry(int argc, char **argv)
{
	static struct exp_getter g[MAX_THREADS];
	struct exp_rec *all;
	size_t total = 0, k = 0;
	long enoent = 0;
	unsigned ng;
	int rc;

	if (argc != 6) {
		fprintf(stderr, "usage: fp_stress_service expiry PORT NGETTERS REPLY OUTFILE\n");
		return 2;
	}
	ng = (unsigned)num_arg(argv[3], 1, MAX_THREADS);
	exp_reply = num_arg(argv[4], 0, 1) == 1;
	rc = fltport_connect(argv[2], NULL, 0, 0, CONNECT_TIMEOUT_NS, &exp_conn, NULL);
	if (rc != 0) {
		fprintf(stderr, "fp_stress_service: connect: %d\n", rc);
		return 1;
	}
	for (unsigned i = 0; i < ng; i++)
		start_thread(&g[i].th, exp_getter_main, &g[i]);
	tu_say("READY");

	for (unsigned i = 0; i < ng; i++) {
		pthread_join(g[i].th, NULL);
		total += g[i].n;
		enoent += g[i].enoent;
	}
	all = xmalloc(total * sizeof(*all) + 1);
	for (unsigned i = 0; i < ng; i++) {
		if (g[i].n)
			memcpy(all + k, g[i].recs, g[i].n * sizeof(*all));
		k += g[i].n;
		free(g[i].recs);
	}
	if (write_file(argv[5], all, total * sizeof(*all)) != 0)
		fail("cannot write %s", argv[5]);
	free(all);
	tu_say("DONE got=%zu enoent=%ld errors=%ld", total, enoent, atomic_load(&errors));
	fltport_close(exp_conn);
	return atomic_load(&errors) ? 1 : 0;
}

int main(int argc, char **argv)
{
	/* Last resort if the filter hangs without disconnecting: SIGALRM kills us. */
	alarm(SERVICE_DEADLINE_S);
	if (argc >= 2 && strcmp(argv[1], "concurrency") == 0)
		return run_concurrency(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "expiry") == 0)
		return run_expiry(argc, argv);
	fprintf(stderr, "usage: fp_stress_service concurrency|expiry ...\n");
	return 2;
}
