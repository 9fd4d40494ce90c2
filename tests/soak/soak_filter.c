/*
 * fltport-soak, filter role: a server port "soak-f<K>" and a pool of sender
 * threads sending to random connections with random sizes, deadlines,
 * reply capacities and token fds; its message callback answers the
 * services' requests.
 *
 * Every send is counted once as sent before the call and once in the class
 * of its result: delivered (0), expired (-ETIMEDOUT), disconnected
 * (-ENOTCONN), overflow (-EOVERFLOW where the message asked the service to
 * answer with more than the capacity, on purpose) or other (anything else:
 * a failure).  Counts are kept per sender and per service instance.
 *
 * Lines: READY, STATS (every second), FAIL, HANG, SENDER, PAIR, SENT-DONE
 * (after "stop-send"), DONE (after "stop", once every connection is gone).
 */
#include "soak.h"

#include "testutil.h"

#include <fltport/port.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 48
#define CONN_SLOTS 128 /* a slot is free only once no sender holds it: more than MAX_CONNECTIONS */
#define MAX_PAIRS 8192 /* service instances over a run */
#define MAX_SENDERS 32
#define HANG_REPORT_MS 30000 /* a sender still in one send after stop-send this long: report */
#define SETTLE_MS 3000       /* resources back at their baseline within this after the last close */

enum cls { C_DELIVERED, C_EXPIRED, C_DISCONNECTED, C_OVERFLOW, C_OTHER, C_NCLASS };

struct counts {
	atomic_long sent;
	atomic_long c[C_NCLASS];
};

/* What was sent to one service instance: [0] without reply, [1] with. */
struct pair {
	uint32_t instance;
	pid_t pid;
	struct counts k[2];
};

struct conn {
	fltport_client *client;
	struct pair *pair;
	int refs;    /* the table's (until the disconnect callback) + senders'; under lock */
	bool active; /* connected: senders may pick it */
	bool used;
};

struct sender {
	pthread_t th;
	uint32_t id;
	struct soak_rng rng;
	uint64_t seq;
	unsigned char *msg, *reply;
	int tokens[SOAK_TOKENS];
	struct counts k;
	/* For a hang report: what the current send is. */
	atomic_llong busy_since_ms; /* 0: not in a send */
	atomic_llong busy_deadline_ns;
	atomic_uint busy_len, busy_svc;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn conns[CONN_SLOTS];
static struct pair pairs[MAX_PAIRS];
static unsigned npairs;
static atomic_int nlive;
static atomic_long requests_ok, requests_bad, connects, rejects, disconnects;
static atomic_bool stop_send, stop;
static pid_t my_pid;
static struct sender senders[MAX_SENDERS];
static unsigned nsenders;

/* ------------------------------------------------------------------ */
/* Connections                                                          */
/* ------------------------------------------------------------------ */

/* Under lock. */
static struct pair *find_pair(uint32_t instance, pid_t pid)
{
	for (unsigned i = 0; i < npairs; i++) {
		if (pairs[i].instance == instance)
			return &pairs[i];
	}
	if (npairs == MAX_PAIRS)
		return NULL;
	pairs[npairs].instance = instance;
	pairs[npairs].pid = pid;
	return &pairs[npairs++];
}

/* Drop one reference; the last one closes the client port. */
static void conn_put(struct conn *c)
{
	fltport_client *last = NULL;

	pthread_mutex_lock(&lock);
	if (--c->refs == 0) {
		last = c->client;
		c->used = false;
	}
	pthread_mutex_unlock(&lock);
	if (last) {
		fltport_client_close(last);
		atomic_fetch_sub(&nlive, 1);
	}
}

/* A random connected connection, with a reference, or NULL. */
static struct conn *conn_pick(struct soak_rng *r)
{
	unsigned start = (unsigned)soak_range(r, 0, CONN_SLOTS - 1);
	struct conn *c = NULL;

	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < CONN_SLOTS && !c; i++) {
		struct conn *t = &conns[(start + i) % CONN_SLOTS];

		if (t->active) {
			t->refs++;
			c = t;
		}
	}
	pthread_mutex_unlock(&lock);
	return c;
}

static int on_connect(fltport_client *client, void *server_cookie, const void *ctx, size_t ctx_len,
		      const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	struct soak_ctx x;
	struct conn *c = NULL;

	if (ctx_len != sizeof(x)) {
		soak_fail("connect: context of %zu bytes", ctx_len);
		*status = 0xbad1;
		return 1;
	}
	memcpy(&x, ctx, sizeof(x));
	if (x.magic != SOAK_CTX_MAGIC || x.pid != peer->pid) {
		soak_fail("connect: bad context (magic %08x, pid %d, peer pid %d)", x.magic, x.pid,
			  (int)peer->pid);
		*status = 0xbad2;
		return 1;
	}
	if (x.flags & SOAK_CTX_REJECT) {
		atomic_fetch_add(&rejects, 1);
		*status = SOAK_REJECT_STATUS;
		return 1;
	}
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < CONN_SLOTS && !c; i++) {
		if (!conns[i].used)
			c = &conns[i];
	}
	if (c) {
		c->pair = find_pair(x.instance, peer->pid);
		if (c->pair) {
			c->client = client;
			c->refs = 1;
			c->used = c->active = true;
		}
	}
	pthread_mutex_unlock(&lock);
	if (!c || !c->pair) {
		soak_fail("connect: no free connection slot or pair");
		*status = 0xbad3;
		return 1;
	}
	atomic_fetch_add(&nlive, 1);
	atomic_fetch_add(&connects, 1);
	*conn_cookie = c;
	return 0;
}

static void on_disconnect(void *conn_cookie)
{
	struct conn *c = conn_cookie;

	pthread_mutex_lock(&lock);
	c->active = false;
	pthread_mutex_unlock(&lock);
	atomic_fetch_add(&disconnects, 1);
	conn_put(c);
}

/* A service's request: check it, answer with the expected bytes. */
static uint32_t on_message(void *conn_cookie, const struct fltport_request *req, void *out,
			   size_t out_cap, size_t *out_len)
{
	struct conn *c = conn_cookie;
	struct soak_hdr h;
	const char *why = soak_check(req->in, req->in_len, &h);
	size_t n;

	if (!why && req->nfds != h.nfds)
		why = "fd count differs from the header's";
	if (!why && req->in_len && h.reply_cap != out_cap)
		why = "out_cap differs from the header's";
	for (unsigned i = 0; i < req->nfds; i++) {
		if (!why)
			why = soak_token_check(req->fds[i], c->pair->pid, h.sender, i);
		close(req->fds[i]);
	}
	if (why) {
		soak_fail("request of %zu bytes from service instance %u: %s", req->in_len,
			  c->pair->instance, why);
		atomic_fetch_add(&requests_bad, 1);
		return 0xbadbad;
	}
	atomic_fetch_add(&requests_ok, 1);
	if (req->in_len == 0)
		return SOAK_ZERO_STATUS;
	n = h.reply_len < out_cap ? h.reply_len : out_cap;
	if (n)
		memcpy(out, soak_pattern(soak_reply_off(h.seq, h.sender)), n);
	*out_len = n;
	return soak_reply_status(h.seq, h.sender);
}

/* ------------------------------------------------------------------ */
/* Senders                                                              */
/* ------------------------------------------------------------------ */

/* What one send asks for. */
struct plan {
	uint64_t seq;
	uint32_t len, cap, reply_len;
	unsigned nfds;
	bool want_reply, overflow;
	int64_t deadline;
};

static void make_plan(struct sender *s, struct plan *p)
{
	struct soak_rng *r = &s->rng;

	memset(p, 0, sizeof(*p));
	p->seq = s->seq++;
	p->len = soak_random_len(r);
	p->want_reply = soak_pct(r, 50);
	p->deadline = soak_random_deadline(r);
	if (p->want_reply) {
		p->cap = soak_pct(r, 10) ? 0 : soak_random_len(r);
		if (p->len && soak_pct(r, 5)) {
			p->overflow = true; /* the service answers with more than the capacity */
			p->reply_len = p->cap + (uint32_t)soak_range(r, 1, 1000);
		} else if (p->len) {
			p->reply_len = (uint32_t)soak_range(r, 0, p->cap);
		}
	}
	if (p->len && soak_pct(r, 15))
		p->nfds = (unsigned)soak_range(r, 1, 3);
}

/* The reply (or its first `want` bytes) and its status. */
static void check_reply(struct sender *s, const struct plan *p, size_t got, size_t want,
			uint32_t st)
{
	uint32_t want_st = p->len ? soak_reply_status(p->seq, s->id) : SOAK_ZERO_STATUS;
	const char *why = soak_check_reply(s->reply, got, want, p->seq, s->id);

	if (!why && st != want_st)
		why = "reply status";
	if (why)
		soak_fail("sender %u seq %llu (len %u cap %u reply %u): %s", s->id,
			  (unsigned long long)p->seq, p->len, p->cap, p->reply_len, why);
}

static enum cls classify(struct sender *s, const struct plan *p, int rc, size_t rl, uint32_t st)
{
	switch (rc) {
	case 0:
		if (p->overflow) {
			soak_fail(
				"sender %u seq %llu: 0, but the reply (%u) exceeds the capacity %u",
				s->id, (unsigned long long)p->seq, p->reply_len, p->cap);
			return C_OTHER;
		}
		if (p->want_reply)
			check_reply(s, p, rl, p->reply_len, st);
		return C_DELIVERED;
	case -EOVERFLOW:
		if (!p->overflow) {
			soak_fail("sender %u seq %llu: -EOVERFLOW, reply %u within capacity %u",
				  s->id, (unsigned long long)p->seq, p->reply_len, p->cap);
			return C_OTHER;
		}
		check_reply(s, p, rl, p->cap, st);
		return C_OVERFLOW;
	case -ETIMEDOUT:
		return C_EXPIRED;
	case -ENOTCONN:
		return C_DISCONNECTED;
	default:
		soak_fail("sender %u seq %llu: fltport_send: %d (%s)", s->id,
			  (unsigned long long)p->seq, rc, fltport_strerror(rc));
		return C_OTHER;
	}
}

static void send_one(struct sender *s, struct conn *c)
{
	struct plan p;
	size_t rl;
	uint32_t st = 0;
	enum cls k;
	int rc;

	make_plan(s, &p);
	soak_build(s->msg, p.len, s->id, p.seq, p.reply_len, p.cap, p.nfds);
	rl = p.cap;
	atomic_store(&s->busy_deadline_ns, p.deadline);
	atomic_store(&s->busy_len, p.len);
	atomic_store(&s->busy_svc, c->pair->instance);
	atomic_store(&s->busy_since_ms, tu_now_ms());
	atomic_fetch_add(&s->k.sent, 1);
	atomic_fetch_add(&c->pair->k[p.want_reply].sent, 1);
	rc = fltport_send(c->client, s->msg, p.len, p.nfds ? s->tokens : NULL, p.nfds,
			  p.want_reply ? s->reply : NULL, p.want_reply ? &rl : NULL,
			  p.want_reply ? &st : NULL, p.deadline);
	atomic_store(&s->busy_since_ms, 0);
	k = classify(s, &p, rc, rl, st);
	atomic_fetch_add(&s->k.c[k], 1);
	atomic_fetch_add(&c->pair->k[p.want_reply].c[k], 1);
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;

	while (!atomic_load(&stop_send)) {
		struct conn *c = conn_pick(&s->rng);

		if (!c) {
			tu_sleep_ms(2);
			continue;
		}
		send_one(s, c);
		conn_put(c);
	}
	return NULL;
}

static void start_senders(uint64_t seed, unsigned instance)
{
	for (unsigned i = 0; i < nsenders; i++) {
		struct sender *s = &senders[i];

		s->id = i;
		soak_rng_seed(&s->rng, seed, 1, instance, i);
		s->msg = malloc(SOAK_MAX_MSG);
		s->reply = malloc(SOAK_BUF_CAP);
		if (!s->msg || !s->reply) {
			fprintf(stderr, "fltport-soak: out of memory\n");
			exit(2);
		}
		for (unsigned k = 0; k < SOAK_TOKENS; k++) {
			s->tokens[k] = soak_token_make(my_pid, i, k);
			if (s->tokens[k] < 0) {
				fprintf(stderr, "fltport-soak: memfd_create failed\n");
				exit(2);
			}
		}
		if (pthread_create(&s->th, NULL, sender_main, s) != 0) {
			fprintf(stderr, "fltport-soak: pthread_create failed\n");
			exit(2);
		}
	}
}

/* Report senders still inside one send long after stop-send (the
 * orchestrator then attaches gdb); keeps waiting: a hang is its call. */
static void join_senders(void)
{
	int64_t t0 = tu_now_ms();
	bool reported = false;

	for (unsigned i = 0; i < nsenders; i++) {
		struct sender *s = &senders[i];

		for (;;) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			if (pthread_timedjoin_np(s->th, NULL, &ts) == 0)
				break;
			if (!reported && tu_now_ms() - t0 > HANG_REPORT_MS) {
				reported = true;
				for (unsigned j = 0; j < nsenders; j++) {
					long long since = atomic_load(&senders[j].busy_since_ms);

					if (since)
						soak_say("HANG sender=%u in fltport_send for %lld "
							 "ms "
							 "deadline_ns=%lld len=%u svc=%u",
							 j, tu_now_ms() - since,
							 atomic_load(&senders[j].busy_deadline_ns),
							 atomic_load(&senders[j].busy_len),
							 atomic_load(&senders[j].busy_svc));
				}
			}
		}
		free(s->msg);
		free(s->reply);
		for (unsigned k = 0; k < SOAK_TOKENS; k++)
			close(s->tokens[k]);
	}
}

/* ------------------------------------------------------------------ */
/* Reports                                                              */
/* ------------------------------------------------------------------ */

static void sum_counts(struct counts *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < nsenders; i++) {
		atomic_fetch_add(&t->sent, atomic_load(&senders[i].k.sent));
		for (int k = 0; k < C_NCLASS; k++)
			atomic_fetch_add(&t->c[k], atomic_load(&senders[i].k.c[k]));
	}
}

/* "<prefix>sent=.. delivered=.. expired=.. disconnected=.. overflow=.. other=.." */
static const char *fmt_counts(char *buf, size_t n, const char *prefix, const struct counts *k)
{
	static const char *const names[C_NCLASS] = { "delivered", "expired", "disconnected",
						     "overflow", "other" };
	size_t used = (size_t)snprintf(buf, n, "%ssent=%ld", prefix, atomic_load(&k->sent));

	for (int i = 0; i < C_NCLASS && used < n; i++)
		used += (size_t)snprintf(buf + used, n - used, " %s%s=%ld", prefix, names[i],
					 atomic_load(&k->c[i]));
	return buf;
}

static void report_stats(void)
{
	struct counts t;
	char b[256];

	sum_counts(&t);
	soak_say("STATS %s requests=%ld connects=%ld rejects=%ld errors=%ld",
		 fmt_counts(b, sizeof(b), "", &t), atomic_load(&requests_ok),
		 atomic_load(&connects), atomic_load(&rejects), atomic_load(&soak_errors));
}

static void report_senders(void)
{
	char a[256], b[256];

	for (unsigned i = 0; i < nsenders; i++)
		soak_say("SENDER id=%u %s", i, fmt_counts(a, sizeof(a), "", &senders[i].k));
	/* Per service instance, without reply (nr_) and with (r_). */
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < npairs; i++) {
		struct pair *p = &pairs[i];

		soak_say("PAIR svc=%u pid=%d %s %s", p->instance, (int)p->pid,
			 fmt_counts(a, sizeof(a), "nr_", &p->k[0]),
			 fmt_counts(b, sizeof(b), "r_", &p->k[1]));
	}
	pthread_mutex_unlock(&lock);
	report_stats();
	soak_say("SENT-DONE senders=%u errors=%ld", nsenders, atomic_load(&soak_errors));
}

/* Sleep until *flag, reporting STATS every second. */
static void idle_until(atomic_bool *flag)
{
	int64_t next = tu_now_ms() + 1000;

	while (!atomic_load(flag)) {
		tu_sleep_ms(50);
		if (tu_now_ms() >= next) {
			report_stats();
			next += 1000;
		}
	}
}

/*
 * The fds at the start: taken right after fltport_server_create, when a
 * service that was already waiting may have connected (or be half-way
 * through the handshake).  Those connections end during the run, so the
 * check at the end is "no fd that was not there at the start": every fd
 * open at the end is one of the start's fds, still on the same file.
 */
static struct soak_fds base_fds;

/* On a mismatch: what every open fd is, for the report (stderr). */
static void dump_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[300], link[256];
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		link[n < 0 ? 0 : n] = '\0';
		fprintf(stderr, "soak filter: fd %s -> %s\n", e->d_name, link);
	}
	if (d)
		closedir(d);
}

static void connections_gone(int *kept, int *fds, long *heap, long heap0, long heap_tol)
{
	int64_t end = tu_now_ms() + 30000;

	while (atomic_load(&nlive) > 0 && tu_now_ms() < end)
		tu_sleep_ms(20);
	if (atomic_load(&nlive) > 0)
		soak_fail("%d connections still open 30 s after stop", atomic_load(&nlive));
	/* Teardown finishes on library threads: allow it a moment. */
	end = tu_now_ms() + SETTLE_MS;
	do {
		*fds = soak_count_fds();
		*kept = soak_fds_kept(&base_fds);
		*heap = soak_heap_in_use();
		if (*fds == *kept && (*heap < 0 || *heap <= heap0 + heap_tol))
			break;
		tu_sleep_ms(50);
	} while (tu_now_ms() < end);
	if (*fds != *kept)
		dump_fds();
}

int soak_filter_main(int argc, char **argv)
{
	unsigned index = (unsigned)soak_arg_num(argc, argv, "--index", 0);
	unsigned instance = (unsigned)soak_arg_num(argc, argv, "--instance", 0);
	uint64_t seed = (uint64_t)soak_arg_num(argc, argv, "--seed", 1);
	long heap_tol = (long)soak_arg_num(argc, argv, "--heap-tolerance", 0);
	uid_t me = geteuid();
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message,
		.max_connections = MAX_CONNECTIONS,
	};
	fltport_server *srv;
	char name[64];
	int rc, fds0, fds1, kept;
	long heap0, heap1;

	nsenders = (unsigned)soak_arg_num(argc, argv, "--senders", 4);
	if (nsenders < 1 || nsenders > MAX_SENDERS)
		nsenders = 4;
	if (me != 0) {
		cfg.access.mode = FLTPORT_ACCESS_LIST;
		cfg.access.uids = &me;
		cfg.access.nuids = 1;
	}
	soak_heap_setup();
	soak_pattern_init();
	my_pid = getpid();
	soak_start_control(&stop_send, &stop);
	snprintf(name, sizeof(name), SOAK_PORT_FMT, index);
	rc = fltport_server_create(name, &cfg, &srv);
	if (rc != 0) {
		soak_fail("fltport_server_create(%s): %d (%s)", name, rc, fltport_strerror(rc));
		return 1;
	}
	soak_fds_take(&base_fds);
	fds0 = base_fds.n;
	heap0 = soak_heap_in_use();
	soak_say("READY pid=%d fds=%d heap=%ld", (int)my_pid, fds0, heap0);

	start_senders(seed, instance);
	idle_until(&stop_send);
	join_senders();
	report_senders();

	idle_until(&stop);
	connections_gone(&kept, &fds1, &heap1, heap0, heap_tol);
	/* fds_base: the start's fds still open; fds_start: all of them. */
	soak_say("DONE fds_base=%d fds_end=%d fds_start=%d heap_base=%ld heap_end=%ld errors=%ld "
		 "requests=%ld requests_bad=%ld connects=%ld rejects=%ld disconnects=%ld",
		 kept, fds1, fds0, heap0, heap1, atomic_load(&soak_errors),
		 atomic_load(&requests_ok), atomic_load(&requests_bad), atomic_load(&connects),
		 atomic_load(&rejects), atomic_load(&disconnects));
	fltport_server_destroy(srv);
	return atomic_load(&soak_errors) ? 1 : 0;
}
