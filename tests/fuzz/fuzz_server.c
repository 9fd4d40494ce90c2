/*
 * libFuzzer target: a real server port fed a user side's datagrams and fds,
 * handshake included (issue 8).
 *
 * One server port lives for the whole run, in a private FLTPORT_DIR, with
 * small limits so that their edges are reachable: 2 slots, 3 workers,
 * max_message 1 MiB.  Each input is a script (fuzz_util.h, FZS_*) played on
 * a fresh raw SOCK_SEQPACKET connection: datagrams with fds attached
 * (sealed or unsealed memfds of chosen sizes, pipe ends, floods), writes
 * to the state page the server shares, reads of what it sends.  The input
 * ends only when the server has let go of the connection: the user side
 * half-closes and reads to the end of the stream, every accepted
 * connection has had its disconnect callback, and the process has as many
 * fds open as when the input started.  Anything else within 10 s is a
 * failure (abort), as is a malformed frame from the server, a wrong
 * connect result, or a fltport_send() result outside its contract.
 *
 * The message callback echoes, or (FZS_REQ_SEND) sends a message back to
 * the same client with fltport_send() from the worker — with or without a
 * reply buffer, polling or with a deadline of at most 1 ms — so that
 * messages, the slot words and replies are driven by the input too.
 *
 * Build and run: `make fuzz-server` (docs/TESTING.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/frame.h"
#include "core/names.h"
#include "core/shared.h"
#include "fltport/port.h"
#include "fuzz_util.h"

#define PORT "fz-server"
#define SLOTS 2u
#define MAX_MESSAGE (1u << 20)
#define SEND_MAX (FP_INLINE_MAX + 1u + 0xFFFFu)
#define SLOW_WAIT_MS 2 /* how long RECV waits once an answer may rightly be slow */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fltport_server *srv;
static atomic_uint naccept, ndisconnect;
static int send_fd = -1;          /* the fd FZS_SEND_FD attaches (borrowed by the library) */
static uint8_t payload[SEND_MAX]; /* what FZS_REQ_SEND sends */
static uint8_t rxbuf[FZ_DGRAM_MAX];
static uint8_t txbuf[FZ_DGRAM_MAX];

/* ---- the server's callbacks ---- */

static int on_connect(fltport_client *client, void *server_cookie, const void *ctx, size_t ctx_len,
		      const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	const uint8_t *c = ctx;

	if (!client || peer->pid != getpid() || peer->uid != getuid())
		fz_fail("connect callback: client %p, peer pid %d uid %u", (void *)client,
			(int)peer->pid, (unsigned)peer->uid);
	if (ctx_len >= 1 && c[0] == FZS_REJECT) {
		*status = ctx_len >= 5 ? (uint32_t)c[1] | (uint32_t)c[2] << 8 |
						 (uint32_t)c[3] << 16 | (uint32_t)c[4] << 24
				       : 0xC0000022u;
		return -1;
	}
	*conn_cookie = client;
	atomic_fetch_add(&naccept, 1);
	return 0;
}

static void on_disconnect(void *conn_cookie)
{
	fltport_client_close(conn_cookie);
	atomic_fetch_add(&ndisconnect, 1);
}

static unsigned arg8(const struct fltport_request *req, size_t off)
{
	return off < req->in_len ? ((const uint8_t *)req->in)[off] : 0;
}

static unsigned arg16(const struct fltport_request *req, size_t off)
{
	return arg8(req, off) | arg8(req, off + 1) << 8;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* FZS_REQ_SEND: a message back to the requesting client, from the worker. */
static uint32_t send_back(const struct fltport_request *req, uint8_t *out, size_t cap,
			  size_t *out_len)
{
	const unsigned flags = arg8(req, 1), ticks = arg8(req, 6);
	const bool poll = flags & FZS_SEND_POLL;
	size_t len = arg16(req, 2), rcap = arg16(req, 4), rlen = rcap, n;
	const int64_t timeout = poll ? FLTPORT_POLL : (int64_t)(1 + ticks % 8) * 125000;
	uint8_t *reply = NULL, hdr[8];
	uint32_t rstatus = 0;
	int rc;

	if (flags & FZS_SEND_LARGE)
		len += FP_INLINE_MAX + 1;
	/* Exactly rcap bytes (malloc(0) too): ASan sees any write past them. */
	if ((flags & FZS_SEND_REPLY) && !(reply = malloc(rcap)))
		return 0;
	rc = fltport_send(req->client, payload, len, (flags & FZS_SEND_FD) ? &send_fd : NULL,
			  (flags & FZS_SEND_FD) ? 1 : 0, reply, reply ? &rlen : NULL, &rstatus,
			  timeout);
	if (rc != 0 && rc != -ETIMEDOUT && rc != -ENOTCONN && rc != -EOVERFLOW && rc != -ENOMEM)
		fz_fail("fltport_send: %d (%s)", rc, fltport_strerror(rc));
	if (reply && (rc == 0 || rc == -EOVERFLOW) && rlen > rcap)
		fz_fail("fltport_send: reply of %zu bytes in a %zu-byte buffer", rlen, rcap);
	/* port.h: -EOVERFLOW sets *reply_len to the capacity, also when the
	 * peer flags a shorter reply OVERFLOW (tests/fuzz/crashers/). */
	if (rc == -EOVERFLOW && rlen != rcap)
		fz_fail("fltport_send: -EOVERFLOW with reply_len %zu, not the capacity %zu", rlen,
			rcap);
	if (rc == 0 && poll && reply)
		fz_fail("fltport_send: a poll send with a reply buffer returned 0");
	put32(hdr, (uint32_t)rc);
	put32(hdr + 4, (uint32_t)rlen);
	n = cap < sizeof(hdr) ? cap : sizeof(hdr);
	if (n)
		memcpy(out, hdr, n);
	if (reply && (rc == 0 || rc == -EOVERFLOW) && cap > n) {
		size_t k = rlen < cap - n ? rlen : cap - n;

		memcpy(out + n, reply, k);
		n += k;
	}
	*out_len = n;
	free(reply);
	return rstatus;
}

static uint32_t on_message(void *conn_cookie, const struct fltport_request *req, void *out,
			   size_t cap, size_t *out_len)
{
	size_t n = req->in_len < cap ? req->in_len : cap;

	if (req->client != conn_cookie || req->nfds > FLTPORT_MAX_FDS ||
	    (req->in_len && !req->in) || (cap && !out))
		fz_fail("message callback: client %p/%p, %u fds, in %p/%zu, out %p/%zu",
			(void *)req->client, conn_cookie, req->nfds, req->in, req->in_len, out,
			cap);
	for (unsigned i = 0; i < req->nfds; i++)
		if (close(req->fds[i]) != 0)
			fz_fail("message callback: fd %d of the request is not open", req->fds[i]);
	if (arg8(req, 0) == FZS_REQ_SEND && req->in_len > 0)
		return send_back(req, out, cap, out_len);
	if (arg8(req, 0) == FZS_REQ_DISCONNECT && req->in_len > 0) {
		fltport_client_disconnect(req->client);
		return 0;
	}
	if (n)
		memcpy(out, req->in, n);
	*out_len = n;
	return (uint32_t)req->in_len;
}

static void at_exit(void)
{
	fltport_server_destroy(srv);
	if (atomic_load(&naccept) != atomic_load(&ndisconnect))
		fz_fail("after destroy: %u connections accepted, %u disconnect callbacks",
			atomic_load(&naccept), atomic_load(&ndisconnect));
	close(send_fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message,
		.max_connections = 2,
		.access = { .mode = FLTPORT_ACCESS_EVERYONE },
		.workers = 3,
		.slots = SLOTS,
		.max_message = MAX_MESSAGE,
	};
	int rc;

	(void)argc;
	(void)argv;
	/* The raw peer below speaks the socket transport only: a CONNECT whose
	 * fuzzed `arg` asks for the rings must be refused them (the server's
	 * side of the negotiation), or its later frames would go unread. */
	setenv("FLTPORT_TRANSPORT", "socket", 1);
	fz_private_dir("server", at_exit);
	send_fd = fz_memfd(4096, true);
	rc = fltport_server_create(PORT, &cfg, &srv);
	if (rc < 0 || send_fd < 0)
		fz_fail("fltport_server_create: %d (%s)", rc, fltport_strerror(rc));
	return 0;
}

/* ---- the raw user side of one connection ---- */

struct peer {
	int fd;
	bool eof;
	unsigned owed; /* CONNECT_RESULT / RESPONSE frames the server owes us */
	bool slow;     /* an answer may rightly take a second or two (step_recv) */
	struct fp_page *page;
	size_t page_size;
	bool have_msg;
	uint64_t msg_id;
	uint32_t msg_flags;
};

static void map_page(struct peer *k, const struct fp_hdr *h, const struct fz_dgram *d)
{
	struct fp_connect_info ci;
	void *p;

	if (h->len != FP_CONNECT_INFO_SIZE || d->nfds != 1)
		fz_fail("connect result: %u info bytes, %u fds", h->len, d->nfds);
	fp_connect_info_decode(rxbuf + FP_HDR_SIZE, &ci);
	if (ci.nslots != SLOTS || ci.max_message != MAX_MESSAGE ||
	    ci.page_size != fp_page_size(SLOTS))
		fz_fail("connect result: nslots %u max_message %u page_size %u", ci.nslots,
			ci.max_message, ci.page_size);
	p = mmap(NULL, ci.page_size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fds[0], 0);
	if (p == MAP_FAILED)
		fz_fail("connect result: the state page does not map");
	if (k->page)
		munmap(k->page, k->page_size);
	k->page = p;
	k->page_size = ci.page_size;
	if (k->page->magic != FP_PAGE_MAGIC || k->page->nslots != SLOTS)
		fz_fail("state page: magic %08x nslots %u", k->page->magic, k->page->nslots);
}

/* One datagram from the server: it must be a well-formed frame of a type
 * the filter side sends. */
static void on_frame(struct peer *k, struct fz_dgram *d)
{
	struct fp_hdr h = { 0 };
	int rc;

	if (d->n == 0 && d->nfds == 0) {
		fz_trace("<- end of stream");
		k->eof = true;
		k->owed = 0;
		return;
	}
	rc = fp_frame_decode(rxbuf, (size_t)d->n, d->nfds, MAX_MESSAGE, &h);
	fz_trace("<- type %u id %llx len %u err %d status %x flags %x, %u fds", h.type,
		 (unsigned long long)h.id, h.len, h.err, h.status, h.flags, d->nfds);
	if (d->truncated || rc != 0)
		fz_fail("server sent a malformed frame (%d): %zd bytes, %u fds, type %u", rc, d->n,
			d->nfds, h.type);
	switch (h.type) {
	case FP_T_CONNECT_RESULT:
		if (h.err == 0)
			map_page(k, &h, d);
		k->owed -= k->owed > 0;
		break;
	case FP_T_RESPONSE:
		k->owed -= k->owed > 0;
		break;
	case FP_T_MESSAGE:
		if (fp_id_slot(h.id) >= SLOTS)
			fz_fail("message id %llx names slot %u of %u", (unsigned long long)h.id,
				fp_id_slot(h.id), SLOTS);
		k->have_msg = true;
		k->msg_id = h.id;
		k->msg_flags = h.flags;
		break;
	default:
		fz_fail("server sent a frame of type %u", h.type);
	}
	fz_close_fds(d->fds, d->nfds);
}

/* Read one datagram within timeout_ms; false if none came. */
static bool recv_one(struct peer *k, int timeout_ms)
{
	struct fz_dgram d;
	int rc = fz_recv(k->fd, rxbuf, sizeof(rxbuf), &d, timeout_ms);

	if (rc < 0)
		fz_fail("recvmsg from the server: %s", strerror(-rc));
	if (rc == 0)
		return false;
	on_frame(k, &d);
	return true;
}

static void step_recv(struct peer *k, const struct fz_step *st)
{
	/* The next frame, if the server owes one: the answer, or a MESSAGE
	 * that its worker sends first.  Some answers may rightly come a second
	 * or two late: after a poll send was asked for (a message left untaken
	 * expires after FP_POLL_GRACE_NS), and once this side has written a
	 * slot word or taken a message (a sender that finds REPLIED at its
	 * deadline waits FP_REPLY_GRACE_NS more for the reply).  Then wait a
	 * little and move on: waiting out a grace would slow the run down. */
	if ((st->op & FZS_F_WAIT) && k->owed > 0 && !k->eof &&
	    !recv_one(k, k->slow ? SLOW_WAIT_MS : FZ_WAIT_MS) && !k->slow)
		fz_fail("the server owes %u frame(s) and sent nothing for %d ms", k->owed,
			FZ_WAIT_MS);
	while (!k->eof && recv_one(k, 0))
		;
}

/* What a reader does before it replies: take the message (PENDING → TAKEN,
 * or ABANDONED for a poll send), wake the sender, commit (→ REPLIED). */
static void take_msg(struct peer *k, bool commit)
{
	const uint32_t slot = fp_id_slot(k->msg_id);
	const uint64_t seq = fp_id_seq(k->msg_id);
	const enum fp_slot_state to = (k->msg_flags & FP_F_NOWAIT) ? FP_S_ABANDONED : FP_S_TAKEN;

	if (!k->page || !k->have_msg || slot >= SLOTS)
		return;
	k->slow = true;
	if (fp_slot_cas(k->page, slot, fp_word(seq, FP_S_PENDING), fp_word(seq, to)) &&
	    (k->msg_flags & FP_F_WAKE))
		fp_futex_wake(&k->page->slot[slot]);
	if (commit)
		fp_slot_cas(k->page, slot, fp_word(seq, FP_S_TAKEN), fp_word(seq, FP_S_REPLIED));
}

static void step_dgram(struct peer *k, const struct fz_step *st)
{
	size_t n = st->len < sizeof(txbuf) ? st->len : sizeof(txbuf);
	struct fp_hdr h;
	int nfds;

	memcpy(txbuf, st->data, n);
	if (n >= FP_HDR_SIZE) {
		if ((st->op & FZS_F_PATCH_ID) && k->have_msg)
			for (int i = 0; i < 8; i++)
				txbuf[16 + i] = (uint8_t)(k->msg_id >> (8 * i));
		if ((st->op & FZS_F_FIX_LEN) && (txbuf[8] & (FP_F_MEMFD | FP_F_PIPE))) {
			uint32_t len =
				txbuf[24] | txbuf[25] << 8 | (uint32_t)(txbuf[26] & 15) << 16;

			n = FP_HDR_SIZE; /* a payload-fd frame is the header alone */
			put32(txbuf + 24, len + FP_INLINE_MAX + 1);
		} else if (st->op & FZS_F_FIX_LEN) {
			put32(txbuf + 24, (uint32_t)(n - FP_HDR_SIZE));
		}
		if (st->op & FZS_F_TAKE)
			take_msg(k, txbuf[6] == FP_T_REPLY && txbuf[7] == 0);
	}
	nfds = fz_send_attached(k->fd, txbuf, n, FZ_ATTACH(st->op));
	fz_trace("-> %zu bytes, type %u, %d fds", n, n >= 8 ? txbuf[6] : 0, nfds);
	/* A CONNECT or REQUEST that will decode is owed an answer (or the end
	 * of the connection, if the server drops it for another reason). */
	if (nfds >= 0 && fp_frame_decode(txbuf, n, (unsigned)nfds, MAX_MESSAGE, &h) == 0 &&
	    (h.type == FP_T_CONNECT || h.type == FP_T_REQUEST)) {
		k->owed++;
		if (h.type == FP_T_REQUEST && n >= FP_HDR_SIZE + 2 &&
		    txbuf[FP_HDR_SIZE] == FZS_REQ_SEND && (txbuf[FP_HDR_SIZE + 1] & FZS_SEND_POLL))
			k->slow = true;
	}
}

/* FZS_F_AREA: reply through the page as a reader may (wire version 2+):
 * take the last message, write its slot's reply area (length, status and
 * flags raw from the record, then the data), commit TAKEN → REPLIED, wake
 * the sender. */
static void reply_in_page(struct peer *k, const struct fz_step *st)
{
	const uint32_t slot = fp_id_slot(k->msg_id);
	const uint64_t seq = fp_id_seq(k->msg_id);
	struct fp_reply_area *a;
	size_t n = st->len > 14 ? st->len - 14 : 0;

	if (!k->page || !k->have_msg || slot >= SLOTS)
		return;
	take_msg(k, false);
	a = fp_area(k->page, SLOTS, slot);
	a->len = fz_u32(st, 2);
	a->status = fz_u32(st, 6);
	a->flags = fz_u32(st, 10);
	memcpy(fp_area_data(k->page, SLOTS, slot), st->data + 14,
	       n < FP_SMALL_REPLY ? n : FP_SMALL_REPLY);
	fp_slot_cas(k->page, slot, fp_word(seq, FP_S_TAKEN), fp_word(seq, FP_S_REPLIED));
	fp_futex_wake(&k->page->slot[slot]);
}

static void step_page(struct peer *k, const struct fz_step *st)
{
	uint32_t slot = fz_u16(st, 0) % SLOTS, v = fz_u32(st, 2);

	fz_trace("page op %02x slot %u value %08x", st->op, slot, v);
	if (!k->page)
		return;
	if (st->op & FZS_F_AREA) {
		k->slow = true;
		reply_in_page(k, st);
		return;
	}
	if (st->op & FZS_F_READERS) {
		atomic_store(&k->page->readers, v);
		return;
	}
	k->slow = true;
	if ((st->op & FZS_F_SEQ) && k->have_msg) {
		slot = fp_id_slot(k->msg_id) % SLOTS;
		v = fp_word(fp_id_seq(k->msg_id), (enum fp_slot_state)(v & 15u));
	}
	atomic_store(&k->page->slot[slot], v);
	fp_futex_wake(&k->page->slot[slot]);
}

static int raw_connect(void)
{
	struct sockaddr_un sa;
	socklen_t salen;
	int fd;

	if (fp_port_addr(PORT, &sa, &salen) != 0)
		fz_fail("port address");
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fz_fail("socket: %s", strerror(errno));
	/* libFuzzer's -timeout sends SIGALRM now and then: retry EINTR (a
	 * connect it interrupted may have completed: EISCONN). */
	while (connect(fd, (struct sockaddr *)&sa, salen) != 0 && errno != EISCONN)
		if (errno != EINTR)
			fz_fail("connect to the server port: %s", strerror(errno));
	return fd;
}

/* Before a script that closes abruptly: wait until the server has
 * accepted the connection (its socket is the second fd the input adds), or
 * the input could end before the server even took it and the next one
 * would count its fds.  Nothing the server does can drop a connection
 * before the script sends something. */
static void wait_accepted(int fds_before)
{
	const int64_t end = fz_now_ms() + FZ_WAIT_MS;
	int spins = 0;

	while (fz_count_fds() < fds_before + 2) {
		if (fz_now_ms() > end)
			fz_fail("the server did not accept a connection within %d ms", FZ_WAIT_MS);
		fz_backoff(&spins);
	}
}

/* End the connection from the user side and wait until the server has
 * let go of everything it held for it. */
static void finish(struct peer *k, int fds_before)
{
	const int64_t end = fz_now_ms() + FZ_WAIT_MS;
	int spins = 0;

	if (k->fd >= 0) {
		shutdown(k->fd, SHUT_WR);
		while (!k->eof) {
			int left = (int)(end - fz_now_ms());

			if (left <= 0 || !recv_one(k, left))
				fz_fail("the server did not end the connection within %d ms "
					"of the user side's end",
					FZ_WAIT_MS);
		}
		close(k->fd);
	}
	if (k->page)
		munmap(k->page, k->page_size);
	while (atomic_load(&ndisconnect) != atomic_load(&naccept)) {
		if (fz_now_ms() > end)
			fz_fail("%u connections accepted, %u disconnect callbacks after %d ms",
				atomic_load(&naccept), atomic_load(&ndisconnect), FZ_WAIT_MS);
		fz_backoff(&spins);
	}
	fz_wait_fds(fds_before, "after the connection ended");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const int fds_before = fz_count_fds();
	struct peer k = { .fd = raw_connect() };
	struct fz_script s;
	struct fz_step st;

	fz_script_init(&s, data, size);
	while (fz_next(&s, &st))
		if (FZ_KIND(st.op) == FZS_CLOSE) {
			wait_accepted(fds_before);
			break;
		}
	fz_script_init(&s, data, size);
	while (!k.eof && fz_next(&s, &st)) {
		switch (FZ_KIND(st.op)) {
		case FZS_DGRAM:
			step_dgram(&k, &st);
			break;
		case FZS_PAGE:
			step_page(&k, &st);
			break;
		case FZS_RECV:
			step_recv(&k, &st);
			break;
		default: /* FZS_CLOSE */
			close(k.fd);
			k.fd = -1;
			break;
		}
		if (k.fd < 0)
			break;
	}
	finish(&k, fds_before);
	return 0;
}
