/*
 * stress_concurrency — many threads on several connections at once, both
 * directions (DESIGN "Many threads on one handle"; SPEC §5, §8.7).
 *
 * This process is the filter.  Two fp_stress_service processes open two
 * connections each; on every service 8 threads wait in fltport_get() and
 * 2 threads call fltport_request() into our message callback the whole time.
 * 4 threads here send >= 50,000 messages (default scale) round-robin over
 * the 4 connections, half of them wanting a reply, each carrying a unique
 * 64-bit tag.  Proved:
 *   - every send returns 0 and every reply is the one derived from its own
 *     message (bytes and status);
 *   - every request gets the transform of its own input, and our callback
 *     ran exactly as many times as the services' requests succeeded;
 *   - the services took exactly the set of tags we sent: nothing lost,
 *     nothing duplicated, each on the connection it was sent on;
 *   - the disconnect callback ran exactly once per connection.
 *
 * Prints one line per failure and a summary line; exits 0 on success.
 */
#include "stress_wire.h"
#include "testutil.h"

#include <fltport/port.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NSVC 2
#define CONN_PER_SVC 2
#define NCONN (NSVC * CONN_PER_SVC)
#define GETTERS_PER_SVC 8
#define REQUESTERS_PER_SVC 2
#define NSENDERS 4
#define SEND_TIMEOUT_NS (10 * 1000000000LL)
#define WATCHDOG_S 600

#define SM_LARGE (256u * 1024u + 7u) /* every 1000th message: above one datagram */

/* A bijection of 64-bit values (murmur3's finalizer): distinct in, distinct out. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* ------------------------------------------------------------------ */

static atomic_long failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (atomic_fetch_add(&failures, 1) < 100)
		printf("FAIL: %s\n", line);
	fflush(stdout);
}

static void on_alarm(int sig)
{
	static const char msg[] = "stress_concurrency: TIMEOUT\n";

	(void)sig;
	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

/* ------------------------------------------------------------------ */
/* Filter side: callbacks                                               */
/* ------------------------------------------------------------------ */

struct conn_rec {
	fltport_client *client; /* set under lock by on_connect */
	unsigned svc, idx;
	pid_t pid;
	bool used;
	atomic_long requests;
	atomic_int disconnects;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn_rec recs[NCONN];
static atomic_int disconnects;

static int on_connect(fltport_client *client, void *server_cookie, const void *ctx, size_t ctx_len,
		      const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	uint32_t id[2];
	struct conn_rec *r;
	int rc = 0;

	if (ctx_len != sizeof(id)) {
		fail("on_connect: context of %zu bytes", ctx_len);
		*status = 0xbad1;
		return 1;
	}
	memcpy(id, ctx, sizeof(id));
	if (id[0] >= NSVC || id[1] >= CONN_PER_SVC) {
		fail("on_connect: bad context %u/%u", id[0], id[1]);
		*status = 0xbad2;
		return 1;
	}
	r = &recs[id[0] * CONN_PER_SVC + id[1]];
	pthread_mutex_lock(&lock);
	if (r->used) {
		fail("on_connect: connection %u/%u twice", id[0], id[1]);
		*status = 0xbad3;
		rc = 1;
	} else {
		r->used = true;
		r->client = client;
		r->svc = id[0];
		r->idx = id[1];
		r->pid = peer->pid;
		*conn_cookie = r;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

static void on_disconnect(void *conn_cookie)
{
	struct conn_rec *r = conn_cookie;

	if (atomic_fetch_add(&r->disconnects, 1) != 0)
		fail("on_disconnect: connection %u/%u twice", r->svc, r->idx);
	fltport_client_close(r->client);
	atomic_fetch_add(&disconnects, 1);
}

static bool request_ok(const struct conn_rec *r, const uint8_t *in, size_t len)
{
	struct rq_hdr h;

	if (len < sizeof(h))
		return false;
	memcpy(&h, in, sizeof(h));
	if (h.svc != r->svc || h.conn != r->idx || h.len != len)
		return false;
	for (size_t i = sizeof(h); i < len; i++) {
		if (in[i] != rq_byte(h.seq, h.thread, (uint32_t)i))
			return false;
	}
	return true;
}

/* Answers with the input reversed and xor 0x5a; status: FNV-1a of the input. */
static uint32_t on_message(void *conn_cookie, const struct fltport_request *req, void *out,
			   size_t out_cap, size_t *out_len)
{
	struct conn_rec *r = conn_cookie;
	const uint8_t *in = req->in;
	uint8_t *o = out;
	uint32_t h = 2166136261u;

	for (unsigned i = 0; i < req->nfds; i++)
		close(req->fds[i]);
	if (req->nfds)
		fail("on_message: request came with %u fds", req->nfds);
	if (!request_ok(r, in, req->in_len))
		fail("on_message: request of %zu bytes on %u/%u is corrupt or misrouted",
		     req->in_len, r->svc, r->idx);
	atomic_fetch_add(&r->requests, 1);
	if (out_cap < req->in_len) {
		fail("on_message: out_cap %zu < in_len %zu", out_cap, req->in_len);
		return 0xbad4;
	}
	for (size_t i = 0; i < req->in_len; i++) {
		o[i] = in[req->in_len - 1 - i] ^ 0x5a;
		h = (h ^ in[i]) * 16777619u;
	}
	*out_len = req->in_len;
	return h;
}

/* ------------------------------------------------------------------ */
/* Senders                                                              */
/* ------------------------------------------------------------------ */

static uint64_t seed;
static long total_msgs;
static long per_sender;
static uint64_t *sent_tags; /* index i: written by the sender owning i */
static fltport_client *clients[NCONN];

struct sender {
	pthread_t th;
	unsigned id;
	long with_reply;
	uint8_t *msg, *reply, *want;
};

static uint64_t tag_of(long i)
{
	return mix64((uint64_t)i ^ seed);
}

static uint32_t data_len_of(long i)
{
	if (i % 1000 == 999)
		return SM_LARGE;
	return (uint32_t)(mix64((uint64_t)i * 3 + 1) % 512u);
}

static size_t build(uint8_t *buf, uint64_t tag, unsigned conn, uint32_t kind, uint32_t data_len)
{
	struct sm_hdr h = { .tag = tag,
			    .svc = conn / CONN_PER_SVC,
			    .conn = conn % CONN_PER_SVC,
			    .kind = kind,
			    .data_len = data_len };

	memcpy(buf, &h, sizeof(h));
	for (uint32_t k = 0; k < data_len; k++)
		buf[sizeof(h) + k] = sm_byte(tag, k);
	return sizeof(h) + data_len;
}

static void send_with_reply(struct sender *s, long i, unsigned conn, uint64_t tag, size_t len)
{
	struct sm_hdr h;
	size_t rl = len;
	uint32_t st = 0;
	int rc;

	rc = fltport_send(clients[conn], s->msg, len, NULL, 0, s->reply, &rl, &st, SEND_TIMEOUT_NS);
	if (rc != 0) {
		fail("msg %ld (conn %u, reply): fltport_send: %d", i, conn, rc);
		return;
	}
	memcpy(s->want, s->msg, len);
	memcpy(&h, s->want, sizeof(h));
	h.tag ^= SM_REPLY_XOR;
	h.kind = SM_REPLY;
	memcpy(s->want, &h, sizeof(h));
	if (rl != len || memcmp(s->reply, s->want, len) != 0)
		fail("msg %ld (conn %u): reply of %zu bytes is not derived from it (want %zu)", i,
		     conn, rl, len);
	else if (st != sm_status(tag))
		fail("msg %ld (conn %u): reply status %08x, want %08x", i, conn, st,
		     sm_status(tag));
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;

	for (long k = 0; k < per_sender; k++) {
		long i = (long)s->id * per_sender + k;
		unsigned conn = (unsigned)(i % NCONN);
		bool want_reply = (i / NCONN) % 2 == 1;
		uint64_t tag = tag_of(i);
		size_t len = build(s->msg, tag, conn, SM_DATA, data_len_of(i));
		int rc;

		sent_tags[i] = tag;
		if (want_reply) {
			s->with_reply++;
			send_with_reply(s, i, conn, tag, len);
			continue;
		}
		rc = fltport_send(clients[conn], s->msg, len, NULL, 0, NULL, NULL, NULL,
				  SEND_TIMEOUT_NS);
		if (rc != 0)
			fail("msg %ld (conn %u, no reply): fltport_send: %d", i, conn, rc);
	}
	return NULL;
}

static long run_senders(void)
{
	static struct sender s[NSENDERS];
	size_t cap = sizeof(struct sm_hdr) + SM_LARGE;
	long with_reply = 0;

	for (unsigned t = 0; t < NSENDERS; t++) {
		s[t].id = t;
		s[t].msg = malloc(cap);
		s[t].reply = malloc(cap);
		s[t].want = malloc(cap);
		if (!s[t].msg || !s[t].reply || !s[t].want) {
			fail("out of memory");
			exit(1);
		}
		if (pthread_create(&s[t].th, NULL, sender_main, &s[t]) != 0) {
			fail("pthread_create");
			exit(1);
		}
	}
	for (unsigned t = 0; t < NSENDERS; t++) {
		pthread_join(s[t].th, NULL);
		with_reply += s[t].with_reply;
		free(s[t].msg);
		free(s[t].reply);
		free(s[t].want);
	}
	return with_reply;
}

/* ------------------------------------------------------------------ */
/* Checks                                                               */
/* ------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Append the tags in `path` to *all (grown); returns how many, or -1. */
static long read_tags(const char *path, uint64_t **all, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint64_t *p;
	long size, count;

	if (!f) {
		fail("cannot open %s", path);
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || size % 8 != 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fail("%s: not a tag file", path);
		fclose(f);
		return -1;
	}
	count = size / 8;
	p = realloc(*all, (*n + (size_t)count + 1) * sizeof(*p));
	if (!p || fread(p + *n, sizeof(*p), (size_t)count, f) != (size_t)count) {
		fail("%s: cannot read %ld tags", path, count);
		if (p)
			*all = p;
		fclose(f);
		return -1;
	}
	*all = p;
	*n += (size_t)count;
	fclose(f);
	return count;
}

/* The set of tags received equals the set sent: same size, sorted equal. */
static void compare_tags(uint64_t *got, size_t ngot)
{
	size_t i = 0, j = 0;
	long missing = 0, extra = 0, dups = 0;

	qsort(sent_tags, (size_t)total_msgs, sizeof(*sent_tags), cmp_u64);
	qsort(got, ngot, sizeof(*got), cmp_u64);
	for (size_t k = 1; k < ngot; k++) {
		if (got[k] == got[k - 1] && dups++ < 5)
			fail("tag %016llx received more than once", (unsigned long long)got[k]);
	}
	while (i < (size_t)total_msgs || j < ngot) {
		if (j > 0 && j < ngot && got[j] == got[j - 1]) {
			j++; /* a duplicate, counted above */
		} else if (j >= ngot || (i < (size_t)total_msgs && sent_tags[i] < got[j])) {
			if (missing++ < 5)
				fail("tag %016llx sent but never received",
				     (unsigned long long)sent_tags[i]);
			i++;
		} else if (i >= (size_t)total_msgs || got[j] < sent_tags[i]) {
			if (extra++ < 5)
				fail("tag %016llx received but never sent",
				     (unsigned long long)got[j]);
			j++;
		} else {
			i++;
			j++;
		}
	}
	if (missing || extra || dups || ngot != (size_t)total_msgs)
		fail("tags: sent %ld, received %zu: %ld missing, %ld unknown, %ld duplicated",
		     total_msgs, ngot, missing, extra, dups);
}

static bool all_disconnected(void *arg)
{
	(void)arg;
	return atomic_load(&disconnects) >= NCONN;
}

/* ------------------------------------------------------------------ */

struct service {
	struct tu_proc p;
	char tagfile[128];
	long got, replies, requests, errors;
};

static void spawn_services(struct service *sv, const char *dir, const char *port, long minreq)
{
	char svc[16], nconn[16], ng[16], nr[16], mr[32];

	snprintf(nconn, sizeof(nconn), "%d", CONN_PER_SVC);
	snprintf(ng, sizeof(ng), "%d", GETTERS_PER_SVC);
	snprintf(nr, sizeof(nr), "%d", REQUESTERS_PER_SVC);
	snprintf(mr, sizeof(mr), "%ld", minreq);
	for (unsigned k = 0; k < NSVC; k++) {
		snprintf(svc, sizeof(svc), "%u", k);
		snprintf(sv[k].tagfile, sizeof(sv[k].tagfile), "%s/tags-%u", dir, k);
		const char *args[] = { "concurrency", port, svc, nconn, ng, nr, mr,
				       sv[k].tagfile, NULL };
		sv[k].p = tu_spawn("fp_stress_service", args);
	}
}

static bool services_ready(struct service *sv)
{
	char line[256];

	for (unsigned k = 0; k < NSVC; k++) {
		if (!tu_expect(&sv[k].p, "READY", line, sizeof(line), 30000)) {
			fail("service %u: no READY line", k);
			return false;
		}
	}
	pthread_mutex_lock(&lock);
	for (unsigned c = 0; c < NCONN; c++) {
		clients[c] = recs[c].client;
		if (!recs[c].used || recs[c].pid != sv[c / CONN_PER_SVC].p.pid)
			fail("connection %u/%u: not made by service %u", c / CONN_PER_SVC,
			     c % CONN_PER_SVC, c / CONN_PER_SVC);
	}
	pthread_mutex_unlock(&lock);
	return atomic_load(&failures) == 0;
}

static void send_stops(void)
{
	uint8_t buf[sizeof(struct sm_hdr)];

	for (unsigned c = 0; c < NCONN; c++) {
		size_t len = build(buf, 0, c, SM_STOP, 0);
		int rc = fltport_send(clients[c], buf, len, NULL, 0, NULL, NULL, NULL,
				      SEND_TIMEOUT_NS);

		if (rc != 0)
			fail("STOP on connection %u: fltport_send: %d", c, rc);
	}
}

static void finish_services(struct service *sv)
{
	char line[256];

	for (unsigned k = 0; k < NSVC; k++) {
		unsigned id;
		int code;

		if (!tu_expect(&sv[k].p, "DONE", line, sizeof(line), 120000)) {
			fail("service %u: no DONE line", k);
			tu_kill(&sv[k].p, SIGKILL);
			continue;
		}
		if (sscanf(line, "DONE svc=%u got=%ld replies=%ld requests=%ld errors=%ld", &id,
			   &sv[k].got, &sv[k].replies, &sv[k].requests, &sv[k].errors) != 5 ||
		    id != k)
			fail("service %u: bad line '%s'", k, line);
		code = tu_wait(&sv[k].p, 30000);
		if (code != 0)
			fail("service %u: exit code %d, want 0", k, code);
	}
}

static void check_counts(struct service *sv, long with_reply, long minreq)
{
	long replies = 0;

	for (unsigned k = 0; k < NSVC; k++) {
		long cb = 0;

		for (unsigned c = 0; c < CONN_PER_SVC; c++)
			cb += atomic_load(&recs[k * CONN_PER_SVC + c].requests);
		if (cb != sv[k].requests)
			fail("service %u: %ld requests succeeded, our callback ran %ld times", k,
			     sv[k].requests, cb);
		if (sv[k].requests < minreq * REQUESTERS_PER_SVC)
			fail("service %u: %ld requests, want >= %ld", k, sv[k].requests,
			     minreq * REQUESTERS_PER_SVC);
		if (sv[k].errors != 0)
			fail("service %u: reported %ld errors", k, sv[k].errors);
		replies += sv[k].replies;
	}
	if (replies != with_reply)
		fail("services replied %ld times; %ld messages wanted a reply", replies,
		     with_reply);
	for (unsigned c = 0; c < NCONN; c++) {
		if (atomic_load(&recs[c].disconnects) != 1)
			fail("connection %u: %d disconnect callbacks, want 1", c,
			     atomic_load(&recs[c].disconnects));
	}
	if (atomic_load(&disconnects) != NCONN)
		fail("%d disconnect callbacks, want %d", atomic_load(&disconnects), NCONN);
}

static void check_tags(struct service *sv)
{
	uint64_t *got = NULL;
	size_t ngot = 0;

	for (unsigned k = 0; k < NSVC; k++) {
		long n = read_tags(sv[k].tagfile, &got, &ngot);

		if (n >= 0 && n != sv[k].got)
			fail("service %u: DONE says got=%ld, tag file has %ld", k, sv[k].got, n);
		unlink(sv[k].tagfile);
	}
	compare_tags(got, ngot);
	free(got);
}

int main(void)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message,
		.max_connections = NCONN,
	};
	struct service sv[NSVC] = { 0 };
	fltport_server *srv = NULL;
	const char *dir, *port;
	uid_t me = geteuid();
	long with_reply = 0, minreq;
	int rc;

	signal(SIGALRM, on_alarm);
	alarm(WATCHDOG_S);
	setvbuf(stdout, NULL, _IOLBF, 0);
	dir = tu_private_dir();
	port = tu_port_name("stress-conc");
	/* The default policy (root only) when root; else admit our own uid. */
	if (me != 0) {
		cfg.access.mode = FLTPORT_ACCESS_LIST;
		cfg.access.uids = &me;
		cfg.access.nuids = 1;
	}
	total_msgs = tu_scaled(50000, 400);
	per_sender = (total_msgs + NSENDERS * NCONN * 2 - 1) / (NSENDERS * NCONN * 2) * NCONN * 2;
	total_msgs = per_sender * NSENDERS;
	minreq = tu_scaled(200, 20);
	seed = (uint64_t)tu_now_ns() ^ ((uint64_t)getpid() << 32);
	sent_tags = calloc((size_t)total_msgs, sizeof(*sent_tags));
	if (!sent_tags)
		return 1;

	rc = fltport_server_create(port, &cfg, &srv);
	if (rc != 0) {
		printf("FAIL: fltport_server_create: %d\nstress_concurrency: FAILED\n", rc);
		free(sent_tags);
		return 1;
	}
	spawn_services(sv, dir, port, minreq);
	if (services_ready(sv)) {
		with_reply = run_senders();
		send_stops();
		finish_services(sv);
		if (!tu_wait_until(all_disconnected, NULL, 10000))
			fail("only %d of %d disconnect callbacks ran", atomic_load(&disconnects),
			     NCONN);
		fltport_server_destroy(srv);
		check_counts(sv, with_reply, minreq);
		check_tags(sv);
	} else {
		for (unsigned k = 0; k < NSVC; k++)
			tu_kill(&sv[k].p, SIGKILL);
		fltport_server_destroy(srv);
		for (unsigned k = 0; k < NSVC; k++)
			unlink(sv[k].tagfile);
	}
	free(sent_tags);
	rmdir(dir);

	if (atomic_load(&failures)) {
		printf("stress_concurrency: FAILED (%ld failures)\n", atomic_load(&failures));
		return 1;
	}
	printf("stress_concurrency: OK: %ld messages (%ld with reply) over %d connections, "
	       "%ld + %ld requests, %d disconnects\n",
	       total_msgs, with_reply, NCONN, sv[0].requests, sv[1].requests,
	       atomic_load(&disconnects));
	return 0;
}
