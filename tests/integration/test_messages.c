/*
 * Message semantics between two processes.  This process is the filter
 * (fltport_server_create, fltport_send, the message callback); the helper
 * fp_msg_peer is the service (connect, get, reply, request), driven line by
 * line through a command pipe and reporting what it got.
 *
 * Proves: replies with status and exact bytes, reply truncation
 * (-EOVERFLOW on both sides), no-reply sends completing on take, one
 * deadline for delivery and reply (an expired message is never delivered,
 * also to a frozen service), poll sends, -EMSGSIZE keeping the message,
 * payloads of every size class queued together and taken in any order,
 * fd passing both ways (O_CLOEXEC), 1 MiB payloads both ways and the size
 * limit, many readers on one connection, async get cancellation, and the
 * connection's pollable fd.
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <fltport/port.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS ((int64_t)1000000)
#define SEC (1000 * MS)
#define LINE_WAIT_MS 15000
#define MIB ((size_t)1 << 20)

/* ---- payload helpers (the pattern is copied in fp_msg_peer.c) -------- */

static unsigned char *pattern(size_t len, unsigned seed)
{
	unsigned char *p = malloc(len ? len : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = tu_pattern_byte(i, seed);
	return p;
}

static const char *hexs(const void *p, size_t n)
{
	const unsigned char *b = p;
	char *out = tu_scratch();

	for (size_t i = 0; i < n && i < 1000; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * (n < 1000 ? n : 1000)] = '\0';
	return out;
}

/* A <data> argument for the helper: "x" and the bytes in hex. */
static const char *xarg(const void *p, size_t n)
{
	char *out = tu_scratch();

	out[0] = 'x';
	strcpy(out + 1, hexs(p, n));
	return out;
}

static const char *sums(const void *p, size_t n)
{
	char *out = tu_scratch();

	sprintf(out, "%016" PRIx64, tu_fnv1a64(p, n));
	return out;
}

/* ---- the filter side ----------------------------------------------- */

static struct {
	pthread_mutex_t lock;
	fltport_client *clients[8];
	int nconn, ndisc;
	int nreq;
	size_t in_len;
	uint64_t in_sum;
	unsigned nfds;
	int fd_num[FLTPORT_MAX_FDS];
	int fd_cloexec[FLTPORT_MAX_FDS];
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int on_connect(fltport_client *client, void *server_cookie, const void *ctx, size_t ctx_len,
		      const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	int rc = 1;

	pthread_mutex_lock(&g.lock);
	if (g.nconn < 8) {
		g.clients[g.nconn] = client;
		*conn_cookie = client;
		g.nconn++;
		rc = 0;
	}
	pthread_mutex_unlock(&g.lock);
	return rc;
}

static void on_disconnect(void *conn_cookie)
{
	fltport_client_close(conn_cookie);
	pthread_mutex_lock(&g.lock);
	g.ndisc++;
	pthread_mutex_unlock(&g.lock);
}

/* A request with two fds: read the first (a memfd) into the output, write
 * into the second (a pipe), close both. */
static uint32_t fd_request(const struct fltport_request *req, void *out, size_t out_cap,
			   size_t *out_len)
{
	ssize_t r = pread(req->fds[0], out, out_cap, 0);

	*out_len = r > 0 ? (size_t)r : 0;
	if (write(req->fds[1], "via pipe", 8) != 8)
		*out_len = 0;
	close(req->fds[0]);
	close(req->fds[1]);
	return 0x5EED0001u;
}

/* Records what arrived; answers with the pattern (seed 4) filling out_cap. */
static uint32_t on_message(void *conn_cookie, const struct fltport_request *req, void *out,
			   size_t out_cap, size_t *out_len)
{
	pthread_mutex_lock(&g.lock);
	g.nreq++;
	g.in_len = req->in_len;
	g.in_sum = tu_fnv1a64(req->in, req->in_len);
	g.nfds = req->nfds;
	for (unsigned i = 0; i < req->nfds && i < FLTPORT_MAX_FDS; i++) {
		int fl = fcntl(req->fds[i], F_GETFD);

		g.fd_num[i] = req->fds[i];
		g.fd_cloexec[i] = fl >= 0 && (fl & FD_CLOEXEC);
	}
	pthread_mutex_unlock(&g.lock);
	if (req->nfds == 2)
		return fd_request(req, out, out_cap, out_len);
	for (unsigned i = 0; i < req->nfds; i++)
		close(req->fds[i]);
	for (size_t i = 0; i < out_cap; i++)
		((unsigned char *)out)[i] = tu_pattern_byte(i, 4);
	*out_len = out_cap;
	return 0x600D0000u;
}

static int nconn(void)
{
	int n;

	pthread_mutex_lock(&g.lock);
	n = g.nconn;
	pthread_mutex_unlock(&g.lock);
	return n;
}

static bool one_disconnect(void *arg)
{
	bool r;

	pthread_mutex_lock(&g.lock);
	r = g.ndisc >= 1;
	pthread_mutex_unlock(&g.lock);
	return r;
}

/* ---- the fixture: a server and one helper connected to it ------------ */

struct fx {
	fltport_server *srv;
	fltport_client *client;
	struct tu_proc peer;
	int cmd; /* write end of the helper's command pipe */
	char line[4096];
};

static void fx_expect(struct fx *f, const char *prefix)
{
	cr_assert(tu_expect(&f->peer, prefix, f->line, sizeof(f->line), LINE_WAIT_MS),
		  "no '%s' line from fp_msg_peer (last read: '%s')", prefix, f->line);
}

static void fx_cmd(struct fx *f, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	cr_assert(n > 0 && n < (int)sizeof(buf) - 1);
	buf[n++] = '\n';
	cr_assert_eq(write(f->cmd, buf, (size_t)n), n, "command pipe: %s", strerror(errno));
}

static unsigned fx_slots; /* 0: the default */

static void fx_start(struct fx *f, size_t max_message)
{
	struct fltport_server_config cfg = {
		.slots = fx_slots,
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message,
		.max_connections = 4,
		.access = { .mode = FLTPORT_ACCESS_EVERYONE },
		.max_message = max_message,
	};
	const char *name;
	char fdarg[16];
	int p[2];

	signal(SIGPIPE, SIG_IGN);
	memset(f, 0, sizeof(*f));
	tu_private_dir();
	name = tu_port_name("msg");
	cr_assert_eq(fltport_server_create(name, &cfg, &f->srv), 0);
	/* The read end goes to the helper; our write end stays CLOEXEC. */
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(fcntl(p[0], F_SETFD, 0), 0);
	snprintf(fdarg, sizeof(fdarg), "%d", p[0]);
	f->peer = tu_spawn("fp_msg_peer", (const char *const[]){ name, fdarg, NULL });
	close(p[0]);
	f->cmd = p[1];
	fx_expect(f, "CONNECTED");
	cr_assert_eq(tu_field_num(f->line, "rc"), 0, "connect: %s", f->line);
	cr_assert_eq(nconn(), 1);
	f->client = g.clients[0];
}

static void fx_finish(struct fx *f)
{
	fx_cmd(f, "QUIT");
	fx_expect(f, "BYE");
	cr_assert_eq(tu_wait(&f->peer, 10000), 0);
	close(f->cmd);
	fltport_server_destroy(f->srv);
	cr_assert_eq(g.ndisc, g.nconn, "every accepted connection saw one disconnect");
}

/* Ask the helper for one message; the reply line is left in f->line. */
static void fx_get(struct fx *f, size_t cap, int ms)
{
	fx_cmd(f, "GET %zu %d", cap, ms);
	fx_expect(f, "GOT ");
}

static void fx_reply(struct fx *f, const char *id, uint32_t status, const char *data, int want_rc)
{
	fx_cmd(f, "REPLY %s 0x%08" PRIx32 " %s", id, status, data);
	fx_expect(f, "REPLIED ");
	cr_assert_eq(tu_field_num(f->line, "rc"), want_rc, "reply: %s", f->line);
}

/* The helper got exactly this message. */
static void assert_got(struct fx *f, const void *payload, size_t len, int wants_reply,
		       size_t reply_cap)
{
	cr_assert_eq(tu_field_num(f->line, "rc"), 0, "get: %s", f->line);
	cr_assert_eq((size_t)tu_field_num(f->line, "len"), len, "get: %s", f->line);
	cr_assert_str_eq(tu_field(f->line, "sum"), sums(payload, len));
	if (len <= 64)
		cr_assert_str_eq(tu_field(f->line, "data"), hexs(payload, len));
	cr_assert_eq(tu_field_num(f->line, "wr"), wants_reply, "get: %s", f->line);
	cr_assert_eq((size_t)tu_field_num(f->line, "rcap"), reply_cap, "get: %s", f->line);
}

/* ---- sends from another thread ---------------------------------------- */

struct send_op {
	fltport_client *client;
	const void *msg;
	size_t len;
	const int *fds;
	unsigned nfds;
	void *reply; /* NULL: no reply wanted */
	size_t reply_len;
	uint32_t status;
	int64_t timeout_ns;
	int rc;
	atomic_bool done;
	pthread_t th;
};

static void *send_main(void *arg)
{
	struct send_op *op = arg;

	op->rc = fltport_send(op->client, op->msg, op->len, op->fds, op->nfds, op->reply,
			      op->reply ? &op->reply_len : NULL, &op->status, op->timeout_ns);
	atomic_store(&op->done, true);
	return NULL;
}

static void send_start(struct fx *f, struct send_op *op)
{
	op->client = f->client;
	atomic_store(&op->done, false);
	cr_assert_eq(pthread_create(&op->th, NULL, send_main, op), 0);
}

static bool send_done(void *arg)
{
	return atomic_load(&((struct send_op *)arg)->done);
}

static int send_join(struct send_op *op)
{
	cr_assert(tu_wait_until(send_done, op, 20000), "fltport_send did not return");
	pthread_join(op->th, NULL);
	return op->rc;
}

static int send_now(struct fx *f, const char *msg, void *reply, size_t *reply_len,
		    int64_t timeout_ns)
{
	return fltport_send(f->client, msg, strlen(msg), NULL, 0, reply, reply_len, NULL,
			    timeout_ns);
}

/* ---- 1. send with reply ------------------------------------------------ */

Test(messages, send_with_reply, .timeout = 60)
{
	static const char msg[] = "hello service", rep[] = "reply-data";
	unsigned char reply[100];
	struct send_op op = { .msg = msg,
			      .len = strlen(msg),
			      .reply = reply,
			      .reply_len = sizeof(reply),
			      .timeout_ns = 10 * SEC };
	struct send_op op0 = { .msg = "cap0",
			       .len = 4,
			       .reply = reply,
			       .reply_len = 0,
			       .status = 1,
			       .timeout_ns = 10 * SEC };
	struct fx f;
	uint64_t id1;

	fx_start(&f, 0);
	send_start(&f, &op);
	fx_get(&f, 4096, 10000);
	assert_got(&f, msg, strlen(msg), 1, sizeof(reply));
	cr_assert_eq(tu_field_num(f.line, "nfds"), 0);
	id1 = (uint64_t)tu_field_num(f.line, "id");
	fx_reply(&f, "last", 0xABCD0001u, xarg(rep, strlen(rep)), 0);
	cr_assert_eq(send_join(&op), 0);
	cr_assert_eq(op.reply_len, strlen(rep));
	cr_assert_arr_eq(reply, rep, strlen(rep));
	cr_assert_eq(op.status, 0xABCD0001u);

	/* A reply buffer of capacity 0: a reply is still wanted. */
	send_start(&f, &op0);
	fx_get(&f, 4096, 10000);
	assert_got(&f, "cap0", 4, 1, 0);
	cr_assert_neq((uint64_t)tu_field_num(f.line, "id"), id1, "two messages, two ids");
	fx_reply(&f, "last", 7, "-", 0);
	cr_assert_eq(send_join(&op0), 0);
	cr_assert_eq(op0.reply_len, 0);
	cr_assert_eq(op0.status, 7);
	fx_finish(&f);
}

/* ---- 2. reply larger than the capacity ---------------------------------- */

Test(messages, reply_overflow, .timeout = 60)
{
	static const unsigned char rep[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	unsigned char reply[8] = { 0 };
	struct send_op op = {
		.msg = "small", .len = 5, .reply = reply, .reply_len = 4, .timeout_ns = 10 * SEC
	};
	struct fx f;

	fx_start(&f, 0);
	send_start(&f, &op);
	fx_get(&f, 4096, 10000);
	assert_got(&f, "small", 5, 1, 4);
	fx_reply(&f, "last", 0x1234, xarg(rep, sizeof(rep)), -EOVERFLOW);
	cr_assert_eq(send_join(&op), -EOVERFLOW);
	cr_assert_eq(op.reply_len, 4);
	cr_assert_arr_eq(reply, rep, 4);
	cr_assert_eq(reply[4], 0, "nothing past the capacity is written");
	cr_assert_eq(op.status, 0x1234);
	fx_finish(&f);
}

/* ---- 3. a send without reply completes when a reader takes it ----------- */

Test(messages, no_reply_completes_on_take, .timeout = 60)
{
	struct send_op op = { .msg = "take me", .len = 7, .timeout_ns = 10 * SEC };
	struct fx f;

	fx_start(&f, 0);
	/* The helper is idle on its command pipe: nobody reads the port. */
	send_start(&f, &op);
	/* Negative check: give the send a chance to return too early. */
	tu_sleep_ms(300);
	cr_assert(!atomic_load(&op.done), "send returned before any reader took it");
	fx_get(&f, 4096, 10000);
	assert_got(&f, "take me", 7, 0, 0);
	cr_assert_eq(send_join(&op), 0);
	fx_reply(&f, "last", 0, "xaa", -ENOENT);
	fx_finish(&f);
}

/* ---- 4. a message whose deadline expires is never delivered ------------- */

static void assert_expires(struct fx *f, const char *msg, bool with_reply)
{
	unsigned char reply[16];
	size_t rlen = sizeof(reply);
	int64_t t0 = tu_now_ns(), took;
	int rc = send_now(f, msg, with_reply ? reply : NULL, with_reply ? &rlen : NULL, 200 * MS);

	took = tu_now_ns() - t0;
	cr_assert_eq(rc, -ETIMEDOUT, "send '%s': %d", msg, rc);
	cr_assert(took >= 150 * MS && took < 10 * SEC, "200 ms deadline took %" PRId64 " ns", took);
}

/* A fresh message is delivered, and is the one the helper gets. */
static void assert_fresh_delivered(struct fx *f)
{
	struct send_op op = { .msg = "fresh", .len = 5, .timeout_ns = 10 * SEC };

	send_start(f, &op);
	fx_get(f, 4096, 10000);
	assert_got(f, "fresh", 5, 0, 0);
	cr_assert_eq(send_join(&op), 0);
}

Test(messages, expired_never_delivered, .timeout = 60)
{
	struct fx f;

	fx_start(&f, 0);
	assert_expires(&f, "expired-1", false);
	assert_expires(&f, "expired-2", true);
	fx_get(&f, 4096, 1000);
	cr_assert_eq(tu_field_num(f.line, "rc"), -ETIMEDOUT, "an expired message was delivered: %s",
		     f.line);
	assert_fresh_delivered(&f);
	fx_get(&f, 4096, 0);
	cr_assert_eq(tu_field_num(f.line, "rc"), -ETIMEDOUT, "%s", f.line);
	fx_finish(&f);
}

/*
 * A service that does not read while many messages expire keeps its
 * connection: expired messages queued at the user side do not count
 * against the bound of one queued message per slot (regression: the user
 * side dropped the connection once more messages than slots had arrived).
 */
Test(messages, slow_reader_survives_many_expired, .timeout = 60)
{
	struct fx f;

	fx_slots = 8;
	fx_start(&f, 0);
	for (int i = 0; i < 64; i++)
		cr_assert_eq(send_now(&f, "expires", NULL, NULL, 1 * MS), -ETIMEDOUT, "send %d", i);
	fx_get(&f, 4096, 1000);
	cr_assert_eq(tu_field_num(f.line, "rc"), -ETIMEDOUT, "%s", f.line);
	assert_fresh_delivered(&f);
	pthread_mutex_lock(&g.lock);
	cr_assert_eq(g.ndisc, 0, "the connection must survive");
	pthread_mutex_unlock(&g.lock);
	fx_finish(&f);
}

static bool peer_stopped(void *arg)
{
	char path[64], buf[512], *p;
	FILE *fp;
	bool r = false;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)*(pid_t *)arg);
	fp = fopen(path, "r");
	if (!fp)
		return false;
	if (fgets(buf, sizeof(buf), fp) && (p = strrchr(buf, ')')))
		r = p[1] == ' ' && (p[2] == 'T' || p[2] == 't');
	fclose(fp);
	return r;
}

/* The helper is frozen (SIGSTOP) in fltport_get while the deadlines pass. */
Test(messages, expired_while_service_stopped, .timeout = 60)
{
	struct fx f;

	fx_start(&f, 0);
	fx_cmd(&f, "WAITGET 4096 3000");
	fx_expect(&f, "WAITING");
	cr_assert_eq(kill(f.peer.pid, SIGSTOP), 0);
	cr_assert(tu_wait_until(peer_stopped, &f.peer.pid, 10000), "helper did not stop");
	assert_expires(&f, "frozen-1", false);
	assert_expires(&f, "frozen-2", true);
	cr_assert_eq(kill(f.peer.pid, SIGCONT), 0);
	fx_expect(&f, "GOT ");
	cr_assert_eq(tu_field_num(f.line, "rc"), -ETIMEDOUT, "an expired message was delivered: %s",
		     f.line);
	fx_get(&f, 4096, 1000);
	cr_assert_eq(tu_field_num(f.line, "rc"), -ETIMEDOUT, "an expired message was delivered: %s",
		     f.line);
	assert_fresh_delivered(&f);
	fx_finish(&f);
}

/* ---- 5. the deadline expires before the reply --------------------------- */

Test(messages, expired_before_reply, .timeout = 60)
{
	unsigned char reply[16];
	struct send_op op = { .msg = "answer once",
			      .len = 11,
			      .reply = reply,
			      .reply_len = sizeof(reply),
			      .timeout_ns = 10 * SEC };
	struct fx f;
	bool got = false;

	fx_start(&f, 0);
	/* The reader is waiting, but "blocked" cannot be seen from outside:
	 * if an attempt expires before the reader takes it, it is simply not
	 * delivered, and we try again. */
	for (int attempt = 0; attempt < 5 && !got; attempt++) {
		fx_cmd(&f, "WAITGET 4096 2000");
		fx_expect(&f, "WAITING");
		assert_expires(&f, "late", true);
		fx_expect(&f, "GOT ");
		got = tu_field_num(f.line, "rc") == 0;
		if (got)
			assert_got(&f, "late", 4, 1, sizeof(reply));
		else
			cr_assert_eq(tu_field_num(f.line, "rc"), -ETIMEDOUT, "%s", f.line);
	}
	cr_assert(got, "the waiting reader never got a message in time");
	fx_reply(&f, "last", 1, "x01", -ENOENT);

	/* Answered once: the second reply finds no waiter. */
	send_start(&f, &op);
	fx_get(&f, 4096, 10000);
	assert_got(&f, "answer once", 11, 1, sizeof(reply));
	fx_reply(&f, "last", 2, "xbb", 0);
	cr_assert_eq(send_join(&op), 0);
	cr_assert_eq(op.reply_len, 1);
	cr_assert_eq(reply[0], 0xbb);
	cr_assert_eq(op.status, 2);
	fx_reply(&f, "last", 3, "xcc", -ENOENT);

	/* An id that was never sent. */
	fx_reply(&f, "0x7fffabcd1234", 0, "xdd", -ENOENT);
	fx_finish(&f);
}

/* ---- 6. poll sends ---------------------------------------------------- */

Test(messages, poll_without_reader, .timeout = 60)
{
	unsigned char reply[16];
	size_t rlen = sizeof(reply);
	struct fx f;

	fx_start(&f, 0);
	cr_assert_eq(send_now(&f, "nobody-1", NULL, NULL, FLTPORT_POLL), -ETIMEDOUT);
	cr_assert_eq(send_now(&f, "nobody-2", reply, &rlen, FLTPORT_POLL), -ETIMEDOUT);
	fx_get(&f, 4096, 1000);
	cr_assert_eq(tu_field_num(f.line, "rc"), -ETIMEDOUT,
		     "a poll send without reader was delivered: %s", f.line);
	fx_finish(&f);
}

Test(messages, poll_with_waiting_reader, .timeout = 60)
{
	int64_t end = tu_now_ms() + 10000;
	char msg[32];
	int rc, attempt = 0;
	struct fx f;

	fx_start(&f, 0);
	fx_cmd(&f, "WAITGET 4096 20000");
	fx_expect(&f, "WAITING");
	/* Until the reader is blocked, a poll legitimately times out (and
	 * that message is never delivered). */
	do {
		snprintf(msg, sizeof(msg), "poll-%d", ++attempt);
		rc = send_now(&f, msg, NULL, NULL, FLTPORT_POLL);
		if (rc == 0)
			break;
		cr_assert_eq(rc, -ETIMEDOUT);
		tu_sleep_ms(2);
	} while (tu_now_ms() < end);
	cr_assert_eq(rc, 0, "no poll send reached the waiting reader");
	fx_expect(&f, "GOT ");
	assert_got(&f, msg, strlen(msg), 0, 0);
	fx_get(&f, 4096, 1000);
	cr_assert_eq(tu_field_num(f.line, "rc"), -ETIMEDOUT, "a timed-out poll was delivered: %s",
		     f.line);
	fx_finish(&f);
}

Test(messages, poll_with_reply_buffer, .timeout = 60)
{
	int64_t end = tu_now_ms() + 10000;
	unsigned char reply[16];
	bool got = false;
	struct fx f;

	fx_start(&f, 0);
	fx_cmd(&f, "WAITGET 4096 20000");
	fx_expect(&f, "WAITING");
	/* Each attempt returns -ETIMEDOUT at once, delivered or not; the
	 * helper's line tells.  The 200 ms read only gives the line time to
	 * come; a missed one is read after the next attempt, which then finds
	 * no waiting reader. */
	while (!got && tu_now_ms() < end) {
		size_t rlen = sizeof(reply);

		cr_assert_eq(send_now(&f, "poll-reply", reply, &rlen, FLTPORT_POLL), -ETIMEDOUT);
		got = tu_read_line(&f.peer, f.line, sizeof(f.line), 200);
	}
	cr_assert(got, "no poll send reached the waiting reader");
	cr_assert(strncmp(f.line, "GOT ", 4) == 0, "%s", f.line);
	assert_got(&f, "poll-reply", 10, 1, sizeof(reply));
	fx_reply(&f, "last", 0, "x01", -ENOENT);
	fx_get(&f, 4096, 1000);
	cr_assert_eq(tu_field_num(f.line, "rc"), -ETIMEDOUT, "a second poll was delivered: %s",
		     f.line);
	fx_finish(&f);
}

/* ---- 7. a buffer too small keeps the message ---------------------------- */

static void small_buffer_round(struct fx *f, const char *get, const char *got)
{
	static const char msg[] = "forty bytes of payload, give or take....";
	unsigned char reply[4];
	struct send_op op = { .msg = msg,
			      .len = strlen(msg),
			      .reply = reply,
			      .reply_len = sizeof(reply),
			      .timeout_ns = 10 * SEC };

	send_start(f, &op);
	fx_cmd(f, "%s 10 10000", get);
	fx_expect(f, got);
	cr_assert_eq(tu_field_num(f->line, "rc"), -EMSGSIZE, "%s", f->line);
	cr_assert_eq((size_t)tu_field_num(f->line, "len"), strlen(msg), "%s", f->line);
	fx_cmd(f, "%s 4096 10000", get);
	fx_expect(f, got);
	assert_got(f, msg, strlen(msg), 1, sizeof(reply));
	fx_reply(f, "last", 9, "x99", 0);
	cr_assert_eq(send_join(&op), 0);
	cr_assert_eq(op.reply_len, 1);
	cr_assert_eq(reply[0], 0x99);
	cr_assert_eq(op.status, 9);
	fx_get(f, 4096, 0);
	cr_assert_eq(tu_field_num(f->line, "rc"), -ETIMEDOUT, "%s", f->line);
}

Test(messages, small_buffer_keeps_message, .timeout = 60)
{
	struct fx f;

	fx_start(&f, 0);
	small_buffer_round(&f, "GET", "GOT ");
	small_buffer_round(&f, "AGET", "AGOT ");
	fx_finish(&f);
}

/* Messages of every size class queued at once and taken in any order, three
 * rounds: the user side reuses its queue nodes and their payload buffers
 * (inline in the node, the node's buffer, grown or not, one of the
 * message's own above that, a memfd), and every payload must still arrive
 * exactly. */
Test(messages, queued_sizes_reuse_buffers, .timeout = 60)
{
	static const size_t sizes[] = { 1, 256, 257, 4096, 4097, 12288, 16384, 16385, 40000 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	struct fx f;

	fx_start(&f, 0);
	for (unsigned round = 0; round < 3; round++) {
		struct send_op op[N];
		unsigned char *msg[N], reply[N][4];
		bool seen[N] = { false };

		memset(op, 0, sizeof(op));
		for (unsigned i = 0; i < N; i++) {
			/* Later rounds send in another order: nodes that
			 * held one size get another. */
			unsigned k = (i + round * 4) % N;

			msg[k] = pattern(sizes[k], 100 * round + k);
			op[k] = (struct send_op){ .msg = msg[k],
						  .len = sizes[k],
						  .reply = reply[k],
						  .reply_len = sizeof(reply[k]),
						  .timeout_ns = 20 * SEC };
			send_start(&f, &op[k]);
		}
		for (unsigned n = 0; n < N; n++) {
			unsigned k;
			size_t len;

			fx_get(&f, 65536, 10000);
			cr_assert_eq(tu_field_num(f.line, "rc"), 0, "%s", f.line);
			len = (size_t)tu_field_num(f.line, "len");
			for (k = 0; k < N && sizes[k] != len; k++)
				;
			cr_assert_lt(k, N, "a message of %zu bytes was never sent", len);
			cr_assert_not(seen[k], "the %zu-byte message came twice", len);
			seen[k] = true;
			assert_got(&f, msg[k], sizes[k], 1, sizeof(reply[k]));
			fx_reply(&f, "last", k, "x5a", 0);
		}
		for (unsigned k = 0; k < N; k++) {
			cr_assert_eq(send_join(&op[k]), 0, "size %zu", sizes[k]);
			cr_assert_eq(op[k].status, k);
			cr_assert_eq(op[k].reply_len, 1);
			cr_assert_eq(reply[k][0], 0x5a);
			free(msg[k]);
		}
	}
	fx_finish(&f);
}

/* ---- 8. fd passing ----------------------------------------------------- */

static int temp_fd(const char *dir, const char *content)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/file-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	cr_assert_eq(unlink(path), 0, "the helper must read through the fd, not the path");
	return fd;
}

/* One "<number>/<cloexec>/<hex>" entry of a GOT line's fds field. */
static void fd_entry(const char *fds, int i, int *num, int *cloexec, char *hex)
{
	const char *p = fds;

	for (; i > 0 && p; i--) {
		p = strchr(p, ';');
		p = p ? p + 1 : NULL;
	}
	cr_assert_not_null(p, "fds=%s", fds);
	cr_assert_eq(sscanf(p, "%d/%d/%[0-9a-f]", num, cloexec, hex), 3, "fds=%s", fds);
}

Test(messages, fds_to_service, .timeout = 60)
{
	const char *dir = NULL;
	unsigned char reply[64];
	int fds[2], nine[FLTPORT_MAX_FDS + 1], n[2], ce[2];
	char h[2][256];
	struct send_op op = { .msg = "with fds",
			      .len = 8,
			      .fds = fds,
			      .nfds = 2,
			      .reply = reply,
			      .reply_len = sizeof(reply),
			      .timeout_ns = 10 * SEC };
	struct fx f;

	fx_start(&f, 0);
	dir = getenv("FLTPORT_DIR");
	fds[0] = temp_fd(dir, "hello fd");
	fds[1] = temp_fd(dir, "second fd");
	send_start(&f, &op);
	fx_get(&f, 4096, 10000);
	assert_got(&f, "with fds", 8, 1, sizeof(reply));
	cr_assert_eq(tu_field_num(f.line, "nfds"), 2, "%s", f.line);
	for (int i = 0; i < 2; i++) {
		fd_entry(tu_field(f.line, "fds"), i, &n[i], &ce[i], h[i]);
		cr_assert(n[i] > 2, "received fd %d", n[i]);
		cr_assert_eq(ce[i], 1, "received fd %d is not O_CLOEXEC", n[i]);
	}
	cr_assert_neq(n[0], n[1], "two received fds share a number");
	cr_assert_str_eq(h[0], hexs("hello fd", 8));
	cr_assert_str_eq(h[1], hexs("second fd", 9));
	fx_reply(&f, "last", 0, "@fd", 0);
	cr_assert_eq(send_join(&op), 0);
	cr_assert_eq(op.reply_len, 8);
	cr_assert_arr_eq(reply, "hello fd", 8);

	for (unsigned i = 0; i < FLTPORT_MAX_FDS + 1; i++)
		nine[i] = fds[0];
	cr_assert_eq(fltport_send(f.client, "x", 1, nine, FLTPORT_MAX_FDS + 1, NULL, NULL, NULL,
				  10 * SEC),
		     -EINVAL);
	fx_get(&f, 4096, 500);
	cr_assert_eq(tu_field_num(f.line, "rc"), -ETIMEDOUT, "%s", f.line);
	close(fds[0]);
	close(fds[1]);
	fx_finish(&f);
}

Test(messages, fds_to_filter, .timeout = 60)
{
	struct fx f;

	fx_start(&f, 0);
	fx_cmd(&f, "REQ %s 64 memfd", xarg("fd request", 10));
	fx_expect(&f, "REQ ");
	cr_assert_eq(tu_field_num(f.line, "rc"), 0, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "status"), 0x5EED0001, "%s", f.line);
	cr_assert_str_eq(tu_field(f.line, "data"), hexs("from helper", 11),
			 "read through the memfd");
	cr_assert_str_eq(tu_field(f.line, "pipe"), hexs("via pipe", 8), "written through the pipe");
	pthread_mutex_lock(&g.lock);
	cr_assert_eq(g.nreq, 1);
	cr_assert_eq(g.in_len, 10);
	cr_assert_eq(g.nfds, 2);
	cr_assert_neq(g.fd_num[0], g.fd_num[1]);
	cr_assert(g.fd_num[0] > 2 && g.fd_num[1] > 2);
	cr_assert_eq(g.fd_cloexec[0], 1, "received fd is not O_CLOEXEC");
	cr_assert_eq(g.fd_cloexec[1], 1, "received fd is not O_CLOEXEC");
	pthread_mutex_unlock(&g.lock);

	fx_cmd(&f, "REQ x00 0 nine");
	fx_expect(&f, "REQ ");
	cr_assert_eq(tu_field_num(f.line, "rc"), -EINVAL, "%s", f.line);
	pthread_mutex_lock(&g.lock);
	cr_assert_eq(g.nreq, 1, "a request with too many fds reached the callback");
	pthread_mutex_unlock(&g.lock);
	fx_finish(&f);
}

/* ---- 9. 1 MiB payloads, and the size limit ----------------------------- */

/* n-byte payloads in each direction: a message with an n-byte reply, and a
 * request with an n-byte response. */
static void both_ways(size_t n)
{
	unsigned char *msg = pattern(n, 1), *want = pattern(n, 2), *reply = malloc(n);
	unsigned char *in = pattern(n, 3), *out = pattern(n, 4);
	struct send_op op = {
		.msg = msg, .len = n, .reply = reply, .reply_len = n, .timeout_ns = 20 * SEC
	};
	char arg[64];
	struct fx f;

	fx_start(&f, n);
	cr_assert_eq((size_t)tu_field_num(f.line, "max"), n, "%s", f.line);
	send_start(&f, &op);
	fx_get(&f, n, 20000);
	assert_got(&f, msg, n, 1, n);
	snprintf(arg, sizeof(arg), "p%zu:2", n);
	fx_reply(&f, "last", 0x77, arg, 0);
	cr_assert_eq(send_join(&op), 0);
	cr_assert_eq(op.reply_len, n);
	cr_assert_eq(op.status, 0x77);
	cr_assert(memcmp(reply, want, n) == 0, "%zu-byte reply differs", n);

	fx_cmd(&f, "REQ p%zu:3 %zu none", n, n);
	fx_expect(&f, "REQ ");
	cr_assert_eq(tu_field_num(f.line, "rc"), 0, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "status"), 0x600D0000, "%s", f.line);
	cr_assert_eq((size_t)tu_field_num(f.line, "outlen"), n, "%s", f.line);
	cr_assert_str_eq(tu_field(f.line, "sum"), sums(out, n), "%zu-byte response differs", n);
	pthread_mutex_lock(&g.lock);
	cr_assert_eq(g.in_len, n);
	cr_assert_eq(g.in_sum, tu_fnv1a64(in, n), "%zu-byte request differs", n);
	pthread_mutex_unlock(&g.lock);
	free(msg);
	free(want);
	free(reply);
	free(in);
	free(out);
	fx_finish(&f);
}

/* Payloads that ride in the payload area (message, response), a pipe
 * (reply) or a memfd (request). */
Test(messages, one_mib_both_ways, .timeout = 60)
{
	both_ways(MIB);
}

/* Above pipe-max-size (1 MiB by default): a pipe for a process with
 * CAP_SYS_RESOURCE, a memfd after the refused F_SETPIPE_SZ otherwise. */
Test(messages, four_mib_both_ways, .timeout = 60)
{
	both_ways(4 * MIB);
}

/* Above what a payload pipe may hold (16 MiB; less for a process without
 * CAP_SYS_RESOURCE): every payload in a memfd. */
Test(messages, seventeen_mib_both_ways, .timeout = 120)
{
	both_ways(17 * MIB);
}

/* Mappings of payload areas in this process (the filter side's). */
static int area_maps(void)
{
	char line[512];
	int n = 0;
	FILE *m = fopen("/proc/self/maps", "r");

	cr_assert(m);
	while (fgets(line, sizeof(line), m))
		if (strstr(line, "fltport-area"))
			n++;
	fclose(m);
	return n;
}

/* Filter → user payloads above the inline size go through one payload area
 * per connection, made once and reused; one sent while the user side still
 * holds the area (a message queued, not yet taken) goes in a pipe.  Every
 * payload arrives intact. */
Test(messages, payload_area_is_reused_and_pipes_take_over_while_it_is_held, .timeout = 60)
{
	unsigned char *a = pattern(MIB, 6), *b = pattern(MIB, 7);
	struct send_op opa = { .msg = a, .len = MIB, .timeout_ns = 20 * SEC };
	struct send_op opb = { .msg = b, .len = MIB, .timeout_ns = 20 * SEC };
	char sum_a[64], sum_b[64], first[64];
	struct fx f;

	snprintf(sum_a, sizeof(sum_a), "%s", sums(a, MIB));
	snprintf(sum_b, sizeof(sum_b), "%s", sums(b, MIB));
	fx_start(&f, MIB);
	for (int i = 0; i < 3; i++) {
		send_start(&f, &opa);
		fx_get(&f, MIB, 20000);
		assert_got(&f, a, MIB, 0, 0);
		cr_assert_eq(send_join(&opa), 0);
	}
	cr_assert_eq(area_maps(), 1, "one payload area for the connection, reused");
	/* Two at once, nobody reading yet: the second finds the area held. */
	send_start(&f, &opa);
	send_start(&f, &opb);
	fx_get(&f, MIB, 20000);
	cr_assert_eq(tu_field_num(f.line, "rc"), 0, "get: %s", f.line);
	snprintf(first, sizeof(first), "%s", tu_field(f.line, "sum"));
	cr_assert(!strcmp(first, sum_a) || !strcmp(first, sum_b), "a payload nobody sent");
	fx_get(&f, MIB, 20000);
	cr_assert_eq(tu_field_num(f.line, "rc"), 0, "get: %s", f.line);
	cr_assert_str_eq(tu_field(f.line, "sum"), strcmp(first, sum_a) ? sum_a : sum_b);
	cr_assert_eq(send_join(&opa), 0);
	cr_assert_eq(send_join(&opb), 0);
	cr_assert_eq(area_maps(), 1);
	free(a);
	free(b);
	fx_finish(&f);
}

Test(messages, above_max_message, .timeout = 60)
{
	unsigned char *big = pattern(MIB + 1, 5);
	struct fx f;

	fx_start(&f, MIB);
	cr_assert_eq(fltport_send(f.client, big, MIB + 1, NULL, 0, NULL, NULL, NULL, 10 * SEC),
		     -EMSGSIZE);
	fx_get(&f, 2 * MIB, 1000);
	cr_assert_eq(tu_field_num(f.line, "rc"), -ETIMEDOUT, "an oversized message was sent: %s",
		     f.line);

	fx_cmd(&f, "REQ p1048577:5 0 none");
	fx_expect(&f, "REQ ");
	cr_assert_eq(tu_field_num(f.line, "rc"), -EMSGSIZE, "%s", f.line);
	pthread_mutex_lock(&g.lock);
	cr_assert_eq(g.nreq, 0, "an oversized request reached the callback");
	pthread_mutex_unlock(&g.lock);
	free(big);
	fx_finish(&f);
}

/* ---- 10. many threads on one connection ------------------------------- */

#define ECHO_SENDERS 4
#define ECHO_EACH 200

struct echo_sender {
	fltport_client *client;
	int index;
	int ok, bad;
	pthread_t th;
};

static void *echo_sender_main(void *arg)
{
	struct echo_sender *s = arg;

	for (int i = 0; i < ECHO_EACH; i++) {
		uint32_t seq = (uint32_t)(s->index * ECHO_EACH + i), status = 0;
		size_t len = 4 + seq % 97, rlen = 256;
		unsigned char *msg = pattern(len, seq), reply[256];
		int rc;

		memcpy(msg, &seq, sizeof(seq));
		rc = fltport_send(s->client, msg, len, NULL, 0, reply, &rlen, &status, 20 * SEC);
		if (rc == 0 && rlen == len && status == len && memcmp(reply, msg, len) == 0)
			s->ok++;
		else
			s->bad++;
		free(msg);
	}
	return NULL;
}

Test(messages, many_threads_one_connection, .timeout = 60)
{
	struct echo_sender s[ECHO_SENDERS];
	int ok = 0, bad = 0;
	struct fx f;

	fx_start(&f, 0);
	fx_cmd(&f, "ECHO 8 %d", ECHO_SENDERS * ECHO_EACH);
	fx_expect(&f, "ECHOREADY");
	for (int i = 0; i < ECHO_SENDERS; i++) {
		s[i] = (struct echo_sender){ .client = f.client, .index = i };
		cr_assert_eq(pthread_create(&s[i].th, NULL, echo_sender_main, &s[i]), 0);
	}
	for (int i = 0; i < ECHO_SENDERS; i++) {
		pthread_join(s[i].th, NULL);
		ok += s[i].ok;
		bad += s[i].bad;
	}
	cr_assert_eq(ok, ECHO_SENDERS * ECHO_EACH, "%d replies did not match their message", bad);
	fx_expect(&f, "ECHODONE");
	cr_assert_eq(tu_field_num(f.line, "taken"), ECHO_SENDERS * ECHO_EACH, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "dups"), 0, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "missing"), 0, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "bad"), 0, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "errors"), 0, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "replyfail"), 0, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "ids"), ECHO_SENDERS * ECHO_EACH,
		     "message ids repeat: %s", f.line);
	fx_finish(&f);
}

/* ---- 11. async gets and cancellation (in the helper) ------------------- */

Test(messages, async_get_cancel, .timeout = 60)
{
	struct fx f;

	fx_start(&f, 0);
	fx_cmd(&f, "CANCELTEST");
	fx_expect(&f, "POSTED ");
	cr_assert_str_eq(tu_field(f.line, "rc"), "0,0,0", "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "distinct"), 1, "tokens repeat: %s", f.line);
	fx_expect(&f, "CANCEL1 ");
	cr_assert_eq(tu_field_num(f.line, "rc"), 0, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "err"), -ECANCELED, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "calls"), 1, "%s", f.line);
	fx_expect(&f, "CANCEL1AGAIN ");
	cr_assert_eq(tu_field_num(f.line, "rc"), -ENOENT, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "calls"), 1, "%s", f.line);
	fx_expect(&f, "CANCELALL ");
	cr_assert_eq(tu_field_num(f.line, "rc"), 2, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "err1"), -ECANCELED, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "err2"), -ECANCELED, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "calls"), 3, "%s", f.line);
	fx_expect(&f, "CANCELNONE ");
	cr_assert_eq(tu_field_num(f.line, "rc"), 0, "%s", f.line);
	fx_expect(&f, "BLOCKED ");
	cr_assert_eq(tu_field_num(f.line, "rc"), -ECANCELED, "%s", f.line);

	/* Cancelling is not sticky: the connection still delivers. */
	assert_fresh_delivered(&f);

	/* fltport_close with posted gets, on a second connection. */
	fx_cmd(&f, "CLOSETEST");
	fx_expect(&f, "CLOSED ");
	cr_assert_eq(tu_field_num(f.line, "connect"), 0, "%s", f.line);
	cr_assert_str_eq(tu_field(f.line, "posted"), "0,0", "%s", f.line);
	cr_assert_str_eq(tu_field(f.line, "calls"), "1,1", "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "err0"), -ECANCELED, "%s", f.line);
	cr_assert_eq(tu_field_num(f.line, "err1"), -ECANCELED, "%s", f.line);
	cr_assert_eq(nconn(), 2);
	cr_assert(tu_wait_until(one_disconnect, NULL, 10000), "no disconnect for the closed one");
	fx_finish(&f);
}

/* ---- 12. the pollable fd ----------------------------------------------- */

Test(messages, pollable_fd, .timeout = 60)
{
	struct send_op op = { .msg = "ring", .len = 4, .timeout_ns = 10 * SEC };
	struct fx f;

	fx_start(&f, 0);
	/* Negative check: nothing queued, so not readable within 200 ms. */
	fx_cmd(&f, "POLLFD 200");
	fx_expect(&f, "POLLFD ");
	cr_assert_eq(tu_field_num(f.line, "r"), 0, "readable with nothing queued");
	send_start(&f, &op);
	fx_cmd(&f, "POLLFD 10000");
	fx_expect(&f, "POLLFD ");
	cr_assert_eq(tu_field_num(f.line, "r"), 1, "not readable with a message queued");
	fx_get(&f, 4096, 0);
	assert_got(&f, "ring", 4, 0, 0);
	cr_assert_eq(send_join(&op), 0);
	/* Negative check again, once the message was taken. */
	fx_cmd(&f, "POLLFD 200");
	fx_expect(&f, "POLLFD ");
	cr_assert_eq(tu_field_num(f.line, "r"), 0, "still readable after the get took the message");
	fx_finish(&f);
}
