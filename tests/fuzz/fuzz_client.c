/*
 * libFuzzer target: a user-side connection fed a server's datagrams and fds
 * (issue 8).
 *
 * The server is fake: a listening SOCK_SEQPACKET socket in a private
 * FLTPORT_DIR, and this thread on the accepted end.  Each input is a
 * script (fuzz_util.h, FZC_*):
 *
 *   1. The first record is the handshake.  An actor thread calls
 *      fltport_connect(); the fake server accepts, reads the CONNECT and
 *      answers as the record says: a valid CONNECT_RESULT with a state page
 *      memfd, or one with mangled info, no page, an unsealed or short page,
 *      an extra fd, an error, raw bytes, or no answer at all.
 *      Record bytes: [0] attach kind of a raw answer (bits 0..2), bit 7: at
 *      the end the server hangs up first; [1..4] err; [5..8] status;
 *      [9..24] raw info; [25] nslots - 1 (bits 0..2).
 *   2. The other records are steps: frames to the client (MESSAGE with an
 *      id armed in the state page, RESPONSE to the last request read,
 *      junk, with fds attached), calls of the user-side API on this thread
 *      (never blocking) or on two actor threads (blocking, forever or 1 ms),
 *      reads of what the client sent (answering requests), and writes to
 *      the state page.
 *   3. The end: the server hangs up or the user side calls fltport_shutdown()
 *      first, every actor must return, fltport_close() must return, every
 *      posted async get must have completed exactly once, and the process
 *      has as many fds open as when the input started.
 *
 * Every result is checked against port.h: error codes in the documented
 * set, lengths within the buffers (all buffers are exact-size heap blocks,
 * so ASan sees any write past them), fds handed out open, frames the client
 * sends well-formed and within the sender's capacity.
 *
 * Build and run: `make fuzz-client` (docs/TESTING.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/frame.h"
#include "core/names.h"
#include "core/shared.h"
#include "fltport/port.h"
#include "fuzz_util.h"

#define PORT "fz-client"
#define MAX_MESSAGE FLTPORT_MIN_MAX_MESSAGE
#define BUF_MAX (2u << 20) /* buffers of calls: up to 2 MiB (above max_message) */
#define NACTORS 2
#define SLOW_NS 1000000LL    /* FZC_F_SLOW: 1 ms */
#define QUEUE 8              /* jobs an actor holds */
#define TAKE_IN_MS 5         /* how long a step waits for the client to take in a frame */
#define MSG_IDS FZ_MAX_STEPS /* MESSAGE frames remembered: every one of an input */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum job_kind { J_CALL, J_CONNECT };

struct job {
	enum job_kind kind;
	unsigned which; /* enum fz_client_call */
	int64_t timeout;
	uint32_t a, b;
	uint64_t id;
	uint8_t c;
};

struct actor {
	pthread_t th;
	struct job jobs[QUEUE]; /* under lock: jobs[head..tail) to run, head running */
	unsigned head, tail;
	bool quit;
};

/* ---- state shared with the actors and async callbacks (under lock) ---- */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct actor actors[NACTORS];
static fltport_conn *conn;
static int connect_rc;
static uint64_t last_taken, last_token;
static atomic_uint async_posted, async_done;
static atomic_uint taken_count; /* messages handed to a reader (note_taken) */

static int lfd = -1;
static uint8_t rxbuf[FZ_DGRAM_MAX];
static uint8_t txbuf[FZ_DGRAM_MAX];

/* ---- the calls ---- */

struct fake;
static void check_area(struct fake *f, uint64_t id, const uint8_t *data, size_t len);

/* A buffer size from a u32: top byte 0xFF, up to BUF_MAX (past the port's
 * limit); 0xFE, around the inline limit (the memfd path); anything else,
 * below 4 KiB.  Megabytes are thus rare among mutations, which keeps
 * executions fast. */
static size_t size_of(uint32_t v)
{
	if (v >> 24 == 0xFF)
		return (v & 0xFFFFFFu) % (BUF_MAX + 1);
	if (v >> 24 == 0xFE)
		return FP_INLINE_MAX - 128 + (v & 0xFFu);
	return v & 0xFFFu;
}

static void note_taken(const struct fltport_msg *m, size_t cap, const char *who)
{
	if (m->len > cap || m->nfds > FLTPORT_MAX_FDS || (!m->wants_reply && m->reply_cap))
		fz_fail("%s: len %zu in a %zu-byte buffer, %u fds, wants_reply %d reply_cap %zu",
			who, m->len, cap, m->nfds, m->wants_reply, m->reply_cap);
	for (unsigned i = 0; i < m->nfds; i++)
		if (close(m->fds[i]) != 0)
			fz_fail("%s: fd %d handed out is not open", who, m->fds[i]);
	pthread_mutex_lock(&lock);
	last_taken = m->id;
	pthread_mutex_unlock(&lock);
	atomic_fetch_add(&taken_count, 1);
}

struct aget {
	uint8_t *buf;
	size_t cap;
};

static void async_cb(void *arg, int err, void *buf, const struct fltport_msg *msg)
{
	struct aget *g = arg;

	if (err != 0 && err != -EMSGSIZE && err != -ENOTCONN && err != -ECANCELED)
		fz_fail("async get: %d (%s)", err, fltport_strerror(err));
	if ((err == 0 || err == -EMSGSIZE) != (msg != NULL) || buf != g->buf)
		fz_fail("async get: err %d with msg %p, buf %p for %p", err, (void *)msg, buf,
			(void *)g->buf);
	fz_trace("async get done: %d", err);
	if (err == 0)
		note_taken(msg, g->cap, "async get");
	if (err == -EMSGSIZE && msg->len <= g->cap)
		fz_fail("async get: -EMSGSIZE for %zu bytes in %zu", msg->len, g->cap);
	fz_free(g->buf, g->cap);
	free(g);
	atomic_fetch_add(&async_done, 1);
}

static void call_get(fltport_conn *c, const struct job *j)
{
	size_t cap = size_of(j->a);
	uint8_t *buf = fz_alloc(cap, false);
	struct fltport_msg m;
	int rc = fltport_get(c, buf, cap, &m, j->timeout);

	fz_trace("fltport_get(cap %zu, %lld ns): %d, len %zu id %llx", cap, (long long)j->timeout,
		 rc, rc == 0 || rc == -EMSGSIZE ? m.len : 0,
		 rc == 0 ? (unsigned long long)m.id : 0ull);
	if (rc == 0)
		note_taken(&m, cap, "fltport_get");
	else if (rc == -EMSGSIZE && m.len <= cap)
		fz_fail("fltport_get: -EMSGSIZE for %zu bytes in %zu", m.len, cap);
	else if (rc != -EMSGSIZE && rc != -ETIMEDOUT && rc != -ENOTCONN && rc != -ECANCELED)
		fz_fail("fltport_get: %d (%s)", rc, fltport_strerror(rc));
	fz_free(buf, cap);
}

static void call_get_async(fltport_conn *c, const struct job *j)
{
	struct aget *g = malloc(sizeof(*g));
	const size_t cap = size_of(j->a);
	uint64_t token = 0;
	int rc;

	g->cap = cap;
	g->buf = fz_alloc(cap, false);
	/* Counted first, and g not touched after the call: the callback (which
	 * frees g) may run before fltport_get_async returns. */
	atomic_fetch_add(&async_posted, 1);
	rc = fltport_get_async(c, g->buf, cap, async_cb, g, &token);
	fz_trace("fltport_get_async(cap %zu): %d", cap, rc);
	if (rc < 0) {
		atomic_fetch_sub(&async_posted, 1);
		if (rc != -ENOTCONN && rc != -ECANCELED)
			fz_fail("fltport_get_async: %d (%s)", rc, fltport_strerror(rc));
		fz_free(g->buf, cap);
		free(g);
		return;
	}
	pthread_mutex_lock(&lock);
	last_token = token;
	pthread_mutex_unlock(&lock);
	if ((j->c & 1) && (rc = fltport_cancel_get(c, token)) != 0 && rc != -ENOENT)
		fz_fail("fltport_cancel_get: %d", rc);
}

/* A reply; on the fuzz thread (f set) a small one is then checked in the
 * page. */
static void call_reply(fltport_conn *c, const struct job *j, uint64_t id, struct fake *f)
{
	size_t len = size_of(j->b);
	uint8_t *data = fz_alloc(len, false);
	int rc;

	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 7 + 1);
	rc = fltport_reply(c, id, j->a, data, len);

	fz_trace("fltport_reply(%llx, %zu bytes): %d", (unsigned long long)id, len, rc);
	if (rc != 0 && rc != -ENOENT && rc != -EOVERFLOW && rc != -EMSGSIZE && rc != -ENOTCONN)
		fz_fail("fltport_reply: %d (%s)", rc, fltport_strerror(rc));
	if ((rc == -EMSGSIZE) != (len > fltport_conn_max_message(c)))
		fz_fail("fltport_reply: %d for %zu bytes, max_message %zu", rc, len,
			fltport_conn_max_message(c));
	if (f && (rc == 0 || rc == -EOVERFLOW))
		check_area(f, id, data, len);
	fz_free(data, len);
}

static void call_request(fltport_conn *c, const struct job *j)
{
	size_t in_len = size_of(j->a), cap = size_of(j->b), out_len = SIZE_MAX;
	uint8_t *in = fz_alloc(in_len, true), *out = fz_alloc(cap, false);
	unsigned nfds = j->c % (FLTPORT_MAX_FDS + 1);
	int fds[FLTPORT_MAX_FDS], p[2] = { -1, -1 };
	uint32_t status;
	int rc;

	if (nfds && pipe2(p, O_CLOEXEC) != 0)
		nfds = 0;
	for (unsigned i = 0; i < nfds; i++)
		fds[i] = p[0];
	rc = fltport_request(c, in, in_len, fds, nfds, out, cap, &out_len, &status, j->timeout);
	fz_trace("fltport_request(%zu in, %zu out, %u fds): %d", in_len, cap, nfds, rc);
	/* The fake server chooses the error of a RESPONSE: any negative value. */
	if (rc > 0 || (rc == 0 && out_len > cap))
		fz_fail("fltport_request: %d, out_len %zu of %zu", rc, out_len, cap);
	fz_close_fds(p, 2);
	fz_free(in, in_len);
	fz_free(out, cap);
}

static void call_query(fltport_conn *c)
{
	struct fltport_peer peer;

	fltport_conn_peer(c, &peer);
	if (fltport_conn_fd(c) < 0 || fltport_conn_max_message(c) != MAX_MESSAGE ||
	    peer.pid != getpid())
		fz_fail("conn accessors: fd %d max_message %zu peer pid %d", fltport_conn_fd(c),
			fltport_conn_max_message(c), (int)peer.pid);
	(void)fltport_conn_ended(c);
}

/* One call; f is the fake server when on the fuzz thread, else NULL. */
static void run_call(const struct job *j, struct fake *f)
{
	fltport_conn *c;
	uint64_t id, token;
	int rc;

	pthread_mutex_lock(&lock);
	c = conn;
	id = last_taken;
	token = last_token;
	pthread_mutex_unlock(&lock);
	switch (j->which) {
	case FZC_GET:
		call_get(c, j);
		break;
	case FZC_GET_ASYNC:
		call_get_async(c, j);
		break;
	case FZC_REPLY:
		call_reply(c, j, id, f);
		break;
	case FZC_REPLY_ID:
		call_reply(c, j, j->id, f);
		break;
	case FZC_REQUEST:
		call_request(c, j);
		break;
	case FZC_CANCEL_GETS:
		if (fltport_cancel_gets(c) < 0)
			fz_fail("fltport_cancel_gets < 0");
		break;
	case FZC_CANCEL_GET:
		rc = fltport_cancel_get(c, (j->c & 1) ? j->id : token);
		if (rc != 0 && rc != -ENOENT)
			fz_fail("fltport_cancel_get: %d", rc);
		break;
	default:
		call_query(c);
		break;
	}
}

/* ---- actors ---- */

/* An actor runs its jobs in order.  A job posted behind a call that blocks
 * waits for it: until what it waits for comes, or until the end of the
 * input, when the connection's shutdown ends every call. */
static void *actor_main(void *arg)
{
	struct actor *a = arg;

	pthread_mutex_lock(&lock);
	for (;;) {
		struct job j;

		while (a->head == a->tail && !a->quit)
			pthread_cond_wait(&cond, &lock);
		if (a->quit)
			break;
		j = a->jobs[a->head % QUEUE];
		pthread_mutex_unlock(&lock);
		if (j.kind == J_CONNECT) {
			fltport_conn *c = NULL;
			uint32_t status = 0;
			int rc = fltport_connect(PORT, "fuzz", 4, 0, 2000000000LL, &c, &status);

			pthread_mutex_lock(&lock);
			connect_rc = rc;
			conn = rc == 0 ? c : NULL;
			pthread_mutex_unlock(&lock);
		} else {
			run_call(&j, NULL);
		}
		pthread_mutex_lock(&lock);
		a->head++;
		pthread_cond_broadcast(&cond);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

static bool actor_idle(const struct actor *a)
{
	return a->head == a->tail;
}

/* Queue a job; false (dropped) if the queue is full.  *started: the actor
 * was idle, so this job is the one it runs next. */
static bool actor_post(struct actor *a, const struct job *j, bool *started)
{
	bool ok;

	pthread_mutex_lock(&lock);
	*started = actor_idle(a);
	ok = a->tail - a->head < QUEUE;
	if (ok) {
		a->jobs[a->tail++ % QUEUE] = *j;
		pthread_cond_broadcast(&cond);
	}
	pthread_mutex_unlock(&lock);
	return ok;
}

/* Wait until every actor has run every job, failing after FZ_WAIT_MS. */
static void actors_wait_idle(const char *what)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += FZ_WAIT_MS / 1000;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < NACTORS; i++)
		while (!actor_idle(&actors[i]))
			if (pthread_cond_timedwait(&cond, &lock, &ts) == ETIMEDOUT)
				fz_fail("%s: actor %d still in a call after %d ms", what, i,
					FZ_WAIT_MS);
	pthread_mutex_unlock(&lock);
}

static void at_exit(void)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < NACTORS; i++)
		actors[i].quit = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < NACTORS; i++)
		pthread_join(actors[i].th, NULL);
	close(lfd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_un sa;
	socklen_t salen;

	(void)argc;
	(void)argv;
	fz_private_dir("client", at_exit);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fp_port_addr(PORT, &sa, &salen) != 0 || lfd < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, salen) != 0 || listen(lfd, 8) != 0)
		fz_fail("fake server socket: %s", strerror(errno));
	for (int i = 0; i < NACTORS; i++)
		if (pthread_create(&actors[i].th, NULL, actor_main, &actors[i]) != 0)
			fz_fail("actor thread");
	return 0;
}

/* ---- the fake server ---- */

struct fake {
	int fd; /* the accepted end, or -1 */
	struct fp_page *page;
	size_t page_size;
	uint32_t nslots;   /* the page's slot words we may touch */
	uint32_t pslots;   /* the slots the page was made for */
	bool areas;        /* the reply areas are all mapped */
	uint64_t next_seq; /* of MESSAGE ids we make up */
	uint64_t last_req; /* id of the last REQUEST read */
	struct {
		uint64_t id;
		uint32_t cap;
	} msgs[MSG_IDS]; /* MESSAGE frames sent: their ids and reply capacities */
	unsigned nmsgs;
	bool connected;
	uint32_t max_message;
};

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wait_taken_in(struct fake *f, uint32_t slot, uint32_t word, unsigned taken);

/* A frame from the client: well-formed, a REQUEST or a REPLY, and a reply
 * within the capacity of the message it answers. */
static void on_client_frame(struct fake *f, const struct fz_dgram *d, const struct fz_step *st)
{
	struct fp_hdr h = { 0 };
	int rc = fp_frame_decode(rxbuf, (size_t)d->n, d->nfds, f->max_message, &h);

	fz_trace("<- type %u id %llx len %u arg %u flags %x, %u fds", h.type,
		 (unsigned long long)h.id, h.len, h.arg, h.flags, d->nfds);
	if (d->truncated || rc != 0 || (h.type != FP_T_REQUEST && h.type != FP_T_REPLY))
		fz_fail("the client sent a bad frame (%d): %zd bytes, %u fds, type %u", rc, d->n,
			d->nfds, h.type);
	if (h.type == FP_T_REPLY) {
		bool sent = false;
		uint32_t cap = 0;

		/* The same id may have been sent twice: the larger capacity. */
		for (unsigned i = 0; i < f->nmsgs; i++)
			if (f->msgs[i].id == h.id) {
				sent = true;
				cap = f->msgs[i].cap > cap ? f->msgs[i].cap : cap;
			}
		if (!sent || h.len > cap)
			fz_fail("the client replied %u bytes to message %llx (%s, capacity %u)",
				h.len, (unsigned long long)h.id, sent ? "sent" : "never sent", cap);
	} else {
		f->last_req = h.id;
		if (st && (st->op & FZC_F_RESPOND)) {
			struct fp_hdr r = { .magic = FP_MAGIC,
					    .version = FLTPORT_WIRE_VERSION,
					    .type = FP_T_RESPONSE,
					    .id = h.id,
					    .err = -(int32_t)(fz_u8(st, 0) & 0x7F),
					    .status = fz_u32(st, 1),
					    .len = fz_u16(st, 5) };

			fp_hdr_encode(&r, txbuf);
			memset(txbuf + FP_HDR_SIZE, 0x5A, r.len);
			fz_trace("-> RESPONSE id %llx err %d len %u", (unsigned long long)r.id,
				 r.err, r.len);
			if (fz_send(f->fd, txbuf, FP_HDR_SIZE + r.len, NULL, 0) == 0)
				wait_taken_in(f, 0, 0, 0);
		}
	}
	fz_close_fds((int *)d->fds, d->nfds);
}

/* Read what the client sent: everything queued, or first wait for one
 * frame up to timeout_ms.  True if a frame (or the end) came. */
static bool serve(struct fake *f, const struct fz_step *st, int timeout_ms)
{
	bool got = false;
	struct fz_dgram d;

	while (f->fd >= 0) {
		int rc = fz_recv(f->fd, rxbuf, sizeof(rxbuf), &d, got ? 0 : timeout_ms);

		if (rc < 0)
			fz_fail("recvmsg from the client: %s", strerror(-rc));
		if (rc == 0)
			break;
		got = true;
		if (d.n == 0 && d.nfds == 0)
			break; /* the client ended: nothing more comes */
		on_client_frame(f, &d, st);
	}
	return got;
}

/* Let the client's receive thread take in what was sent, so that the next
 * step sees its effect: the socket's queue drains once it has read the
 * datagram; an armed MESSAGE is then queued (the conn fd turns readable) or
 * taken (its slot word moves on, and the reader records it).  Bounded
 * (TAKE_IN_MS), and never a failure: a frame may also just be dropped. */
static void wait_taken_in(struct fake *f, uint32_t slot, uint32_t word, unsigned taken)
{
	const int64_t end = fz_now_ms() + TAKE_IN_MS;
	struct pollfd p = { .fd = -1, .events = POLLIN };
	int outq = 1, spins = 0;
	fltport_conn *c;

	pthread_mutex_lock(&lock);
	c = conn;
	pthread_mutex_unlock(&lock);
	if (!c)
		return;
	p.fd = fltport_conn_fd(c);
	/* An ended connection reads nothing more. */
	while (fz_now_ms() <= end && !fltport_conn_ended(c)) {
		if (outq > 0 && ioctl(f->fd, SIOCOUTQ, &outq) == 0 && outq > 0) {
			fz_backoff(&spins);
			continue;
		}
		if (!word)
			return;
		if (atomic_load(&f->page->slot[slot]) != word) {
			if (atomic_load(&taken_count) != taken)
				return;
		} else if (poll(&p, 1, 0) != 0) {
			return;
		}
		fz_backoff(&spins);
	}
}

static void step_frame(struct fake *f, const struct fz_step *st)
{
	size_t n = st->len < sizeof(txbuf) ? st->len : sizeof(txbuf);
	uint32_t armed_slot = 0, armed_word = 0;
	const unsigned taken = atomic_load(&taken_count);

	memcpy(txbuf, st->data, n);
	if (n >= FP_HDR_SIZE && txbuf[6] == FP_T_MESSAGE && txbuf[7] == 0 && f->nslots &&
	    (st->op & FZC_F_PATCH_ID)) {
		uint32_t slot = (txbuf[16] | txbuf[17] << 8) % f->nslots;
		uint64_t seq = ++f->next_seq;

		put64(txbuf + 16, fp_msg_id(seq, slot));
		if (st->op & FZC_F_ARM) {
			armed_slot = slot;
			armed_word = fp_word(seq, FP_S_PENDING);
			atomic_store(&f->page->slot[slot], armed_word);
		}
	} else if (n >= FP_HDR_SIZE && txbuf[6] == FP_T_RESPONSE && (st->op & FZC_F_PATCH_ID)) {
		put64(txbuf + 16, f->last_req);
	}
	if (n >= FP_HDR_SIZE && (st->op & FZC_F_FIX_LEN)) {
		if (txbuf[8] & (FP_F_MEMFD | FP_F_PIPE)) {
			n = FP_HDR_SIZE;
			put32(txbuf + 24, (get32(txbuf + 24) & 0xFFFFF) + FP_INLINE_MAX + 1);
		} else {
			put32(txbuf + 24, (uint32_t)(n - FP_HDR_SIZE));
		}
	}
	if (n >= FP_HDR_SIZE && txbuf[6] == FP_T_MESSAGE && f->nmsgs < MSG_IDS) {
		f->msgs[f->nmsgs].id = get32(txbuf + 16) | (uint64_t)get32(txbuf + 20) << 32;
		f->msgs[f->nmsgs].cap = get32(txbuf + 28);
		f->nmsgs++;
	}
	fz_trace("-> %zu bytes, type %u", n, n >= 8 ? txbuf[6] : 0);
	if (fz_send_attached(f->fd, txbuf, n, FZ_ATTACH(st->op)) >= 0)
		wait_taken_in(f, armed_slot, armed_word, taken);
}

static void step_page(struct fake *f, const struct fz_step *st)
{
	uint32_t v = fz_u32(st, 2);

	if (!f->page || !f->nslots)
		return;
	if (st->op & FZC_F_READERS) {
		atomic_store(&f->page->readers, v);
	} else {
		atomic_store(&f->page->slot[fz_u16(st, 0) % f->nslots], v);
		fp_futex_wake(&f->page->slot[fz_u16(st, 0) % f->nslots]);
	}
}

/* Post a call to an actor.  If it starts at once, wait until it is inside
 * it: a get counted as a waiting reader on the page, a request's frame
 * arrived, or the call returned.  The reader count can also move for other
 * reasons: a short bounded wait, then on. */
static void step_actor_call(struct fake *f, const struct job *j, struct actor *a)
{
	const uint32_t readers = f->page ? atomic_load(&f->page->readers) : 0;
	const int64_t end = fz_now_ms() + (j->which == FZC_REQUEST ? FZ_WAIT_MS : 2);
	unsigned seq;
	bool started;
	int spins = 0;

	pthread_mutex_lock(&lock);
	seq = a->tail;
	pthread_mutex_unlock(&lock);
	if (!actor_post(a, j, &started) || !started)
		return;
	for (;;) {
		bool idle;

		pthread_mutex_lock(&lock);
		idle = a->head > seq;
		pthread_mutex_unlock(&lock);
		if (idle || fz_now_ms() > end)
			break;
		if (j->which == FZC_REQUEST) {
			if (serve(f, NULL, 1))
				break;
		} else if (j->which != FZC_GET ||
			   (f->page && atomic_load(&f->page->readers) > readers)) {
			break;
		} else {
			fz_backoff(&spins);
		}
	}
}

static void step_call(struct fake *f, const struct fz_step *st)
{
	struct job j = { .kind = J_CALL,
			 .which = FZC_CALL_WHICH(st->op),
			 .a = fz_u32(st, 0),
			 .b = fz_u32(st, 4),
			 .id = fz_u64(st, 0),
			 .c = fz_u8(st, 8) };

	fz_trace("call %u%s a %u b %u c %u", j.which, (st->op & FZC_F_ACTOR) ? " (actor)" : "", j.a,
		 j.b, j.c);
	if (st->op & FZC_F_ACTOR) {
		j.timeout = (st->op & FZC_F_SLOW) ? SLOW_NS : FLTPORT_INFINITE;
		step_actor_call(f, &j, &actors[(st->op & FZC_F_ACTOR2) ? 1 : 0]);
		return;
	}
	/* On this thread nothing may block: gets poll, a request has a zero
	 * deadline, and what the client sends is read first so that its
	 * socket has room. */
	j.timeout = FLTPORT_POLL;
	serve(f, NULL, 0);
	run_call(&j, f);
}

/* After a reply made on the fuzz thread: a small one (wire version 2) must
 * be in the page: the word REPLIED, the area holding the bytes cut to the
 * message's capacity, flagged INLINE, and OVERFLOW exactly if cut.  Not
 * checked when the id was sent twice with different capacities. */
static void check_area(struct fake *f, uint64_t id, const uint8_t *data, size_t len)
{
	const uint32_t slot = fp_id_slot(id);
	const struct fp_reply_area *a;
	uint32_t w, want_flags;
	int64_t cap = -1;
	size_t n;

	for (unsigned i = 0; i < f->nmsgs; i++)
		if (f->msgs[i].id == id) {
			if (cap >= 0 && cap != f->msgs[i].cap)
				return;
			cap = f->msgs[i].cap;
		}
	if (cap < 0 || !f->areas || slot >= f->nslots)
		return;
	n = len < (size_t)cap ? len : (size_t)cap;
	if (n > FP_SMALL_REPLY)
		return; /* a REPLY frame carries it: on_client_frame() */
	a = fp_area(f->page, f->pslots, slot);
	w = atomic_load(&f->page->slot[slot]);
	want_flags = FP_R_INLINE | (len > (size_t)cap ? FP_R_OVERFLOW : 0);
	fz_trace("reply %llx in the page: word %08x len %u flags %x", (unsigned long long)id, w,
		 a->len, a->flags);
	if (w != fp_word(fp_id_seq(id), FP_S_REPLIED) || a->len != n || a->flags != want_flags ||
	    (n && memcmp(fp_area_data(f->page, f->pslots, slot), data, n) != 0))
		fz_fail("reply %llx in the page: word %08x, len %u flags %x (want %zu, %x)%s",
			(unsigned long long)id, w, a->len, a->flags, n, want_flags,
			n && memcmp(fp_area_data(f->page, f->pslots, slot), data, n)
				? ", other bytes"
				: "");
}

/* ---- the handshake ---- */

/* The connection fltport_connect() makes: wait for it, or for the call to
 * return without having connected (then it says why).  EINTR is retried:
 * libFuzzer's -timeout sends SIGALRM now and then, and poll() is never
 * restarted. */
static int accept_client(void)
{
	const int64_t end = fz_now_ms() + FZ_WAIT_MS;
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	int fd, r, rc;
	bool idle;

	while ((r = poll(&p, 1, 1)) <= 0) {
		if (r < 0 && errno != EINTR)
			fz_fail("poll on the listening socket: %s", strerror(errno));
		pthread_mutex_lock(&lock);
		idle = actor_idle(&actors[0]);
		rc = connect_rc;
		pthread_mutex_unlock(&lock);
		if (idle && poll(&p, 1, 0) == 0)
			fz_fail("fltport_connect returned %d (%s) without connecting; %d fds open",
				rc, fltport_strerror(rc), fz_count_fds());
		if (fz_now_ms() > end)
			fz_fail("fltport_connect did not connect within %d ms", FZ_WAIT_MS);
	}
	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		if (errno != EINTR)
			fz_fail("accept4: %s; %d fds open", strerror(errno), fz_count_fds());
	return fd;
}

static void read_connect(struct fake *f)
{
	struct fz_dgram d;
	struct fp_hdr h;

	if (fz_recv(f->fd, rxbuf, sizeof(rxbuf), &d, FZ_WAIT_MS) != 1)
		fz_fail("no CONNECT within %d ms", FZ_WAIT_MS);
	if (fp_frame_decode(rxbuf, (size_t)d.n, d.nfds, FLTPORT_CONTEXT_MAX, &h) != 0 ||
	    h.type != FP_T_CONNECT || h.len != 4 || memcmp(rxbuf + FP_HDR_SIZE, "fuzz", 4) != 0)
		fz_fail("a bad CONNECT: %zd bytes, type %u, len %u", d.n, h.type, h.len);
}

/* The state page: `nslots` words, optionally sealed, shortened by `cut`
 * bytes; mapped for the fake server's own writes. */
static int make_page(struct fake *f, uint32_t nslots, bool seal, size_t cut)
{
	size_t size = fp_page_size(nslots) - cut;
	int fd = memfd_create("fz-page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	void *p;

	if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
		fz_fail("page memfd: %s", strerror(errno));
	if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
		fz_fail("page seals: %s", strerror(errno));
	if (size == 0)
		return fd;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		fz_fail("page mmap: %s", strerror(errno));
	f->page = p;
	f->page_size = size;
	f->page->magic = FP_PAGE_MAGIC;
	f->page->nslots = nslots;
	f->pslots = nslots;
	f->areas = size >= fp_page_size(nslots);
	f->nslots = (uint32_t)((size - FP_PAGE_HDR) / 4u);
	if (f->nslots > nslots)
		f->nslots = nslots;
	return fd;
}

/* The 16 raw info bytes of the handshake record. */
static void raw_info(const struct fz_step *st, struct fp_connect_info *ci)
{
	uint8_t b[FP_CONNECT_INFO_SIZE];

	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = fz_u8(st, 9 + i);
	fp_connect_info_decode(b, ci);
}

/* Answer the CONNECT as the first record says.  Returns whether the
 * answer was a valid success (the client must then connect). */
static bool answer(struct fake *f, const struct fz_step *st)
{
	const uint8_t op = st->op;
	struct fp_connect_info ci = { .nslots = 1u + (fz_u8(st, 25) & 7u),
				      .max_message = MAX_MESSAGE };
	struct fp_hdr h = { .magic = FP_MAGIC,
			    .version = FLTPORT_WIRE_VERSION,
			    .type = FP_T_CONNECT_RESULT,
			    .status = fz_u32(st, 5) };
	int fds[2], nfds = 0;

	if (op & FZC_H_HANG_UP) {
		close(f->fd);
		f->fd = -1;
		return false;
	}
	if (op & FZC_H_RAW) {
		fz_send_attached(f->fd, st->len > 1 ? st->data + 1 : st->data,
				 st->len > 1 ? st->len - 1 : 0, fz_u8(st, 0) & 7u);
		return false;
	}
	if (op & FZC_H_ERROR) {
		h.err = -(int32_t)(1u + fz_u32(st, 1) % 0xFFFu);
	} else {
		ci.page_size = (uint32_t)fp_page_size(ci.nslots);
		if (op & FZC_H_RAW_INFO)
			raw_info(st, &ci);
		h.len = FP_CONNECT_INFO_SIZE;
		fp_connect_info_encode(&ci, txbuf + FP_HDR_SIZE);
		if (!(op & FZC_H_NO_PAGE))
			fds[nfds++] =
				make_page(f, 1u + (fz_u8(st, 25) & 7u), !(op & FZC_H_UNSEALED),
					  (op & FZC_H_SHORT) ? 4096u : 0u);
		if ((op & FZC_H_EXTRA_FD) && (fds[nfds] = fz_memfd(16, true)) >= 0)
			nfds++;
		f->max_message = ci.max_message;
	}
	fp_hdr_encode(&h, txbuf);
	fz_send(f->fd, txbuf, FP_HDR_SIZE + h.len, fds, (unsigned)nfds);
	fz_close_fds(fds, (unsigned)nfds);
	return !(op & (FZC_H_ERROR | FZC_H_NO_PAGE | FZC_H_UNSEALED | FZC_H_SHORT | FZC_H_EXTRA_FD |
		       FZC_H_RAW_INFO));
}

static void wait_connect(struct fake *f, const struct fz_step *st, bool valid)
{
	struct fp_connect_info ci;
	int rc;

	actors_wait_idle("fltport_connect");
	pthread_mutex_lock(&lock);
	rc = connect_rc;
	pthread_mutex_unlock(&lock);
	fz_trace("fltport_connect: %d", rc);
	f->connected = rc == 0;
	if (valid && rc != 0)
		fz_fail("fltport_connect refused a valid result: %d (%s)", rc,
			fltport_strerror(rc));
	if ((st->op & FZC_H_ERROR) && !(st->op & (FZC_H_RAW | FZC_H_HANG_UP)) &&
	    rc != -(int)(1u + fz_u32(st, 1) % 0xFFFu))
		fz_fail("fltport_connect: %d for a result with err %d", rc,
			-(int)(1u + fz_u32(st, 1) % 0xFFFu));
	if (rc == 0 && (st->op & FZC_H_RAW_INFO) && !(st->op & FZC_H_RAW)) {
		raw_info(st, &ci);
		if (ci.nslots == 0 || ci.nslots > FLTPORT_MAX_SLOTS ||
		    ci.page_size != fp_page_size(ci.nslots) || ci.page_size > f->page_size ||
		    ci.max_message < FLTPORT_MIN_MAX_MESSAGE ||
		    ci.max_message > FP_PAYLOAD_HARD_MAX)
			fz_fail("fltport_connect accepted info nslots %u max_message %u "
				"page_size %u (page %zu bytes)",
				ci.nslots, ci.max_message, ci.page_size, f->page_size);
	}
}

/* ---- one input ---- */

static void finish(struct fake *f, bool hang_up_first, int fds_before)
{
	fltport_conn *c;

	pthread_mutex_lock(&lock);
	c = conn;
	pthread_mutex_unlock(&lock);
	if (hang_up_first && f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
	if (c)
		fltport_shutdown(c);
	actors_wait_idle("after the end of the connection");
	if (c)
		fltport_close(c);
	pthread_mutex_lock(&lock);
	conn = NULL;
	last_taken = last_token = 0;
	pthread_mutex_unlock(&lock);
	if (atomic_load(&async_done) != atomic_load(&async_posted))
		fz_fail("%u async gets posted, %u completed after fltport_close",
			atomic_load(&async_posted), atomic_load(&async_done));
	if (f->fd >= 0)
		close(f->fd);
	if (f->page)
		munmap(f->page, f->page_size);
	fz_wait_fds(fds_before, "after fltport_close");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const int fds_before = fz_count_fds();
	struct job j = { .kind = J_CONNECT };
	struct fake f = { .fd = -1, .max_message = MAX_MESSAGE };
	struct fz_step hs = { 0 }, st;
	struct fz_script s;
	bool started, valid;

	fz_script_init(&s, data, size);
	fz_next(&s, &hs);
	actor_post(&actors[0], &j, &started);
	f.fd = accept_client();
	read_connect(&f);
	valid = answer(&f, &hs);
	wait_connect(&f, &hs, valid);
	while (f.connected && fz_next(&s, &st)) {
		switch (FZ_KIND(st.op)) {
		case FZC_FRAME:
			if (f.fd >= 0)
				step_frame(&f, &st);
			break;
		case FZC_CALL:
			step_call(&f, &st);
			break;
		case FZC_SERVE:
			serve(&f, &st, 0);
			break;
		default:
			step_page(&f, &st);
			break;
		}
	}
	finish(&f, fz_u8(&hs, 0) & 0x80, fds_before);
	return 0;
}
