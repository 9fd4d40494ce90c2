/*
 * A hostile or broken user-side peer cannot hurt the filter side: every
 * malformed frame, oversized length, unannounced fd or scribbled state-page
 * word drops that one connection (its disconnect callback runs exactly
 * once), and the server keeps serving others.  The peer here is a raw
 * SOCK_SEQPACKET client speaking the wire format by hand (docs/PROTOCOL.md).
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/frame.h"
#include "core/shared.h"
#include "fltport/port.h"
#include "rawwire.h"
#include "testutil.h"

#define MS ((int64_t)1000000)

static atomic_int nconnect, ndisconnect;
static fltport_client *_Atomic last_client;

static int on_connect(fltport_client *c, void *sc, const void *ctx, size_t len,
		      const struct fltport_peer *peer, void **cookie, uint32_t *status)
{
	*cookie = c;
	atomic_store(&last_client, c);
	atomic_fetch_add(&nconnect, 1);
	return 0;
}

static void on_disconnect(void *cookie)
{
	atomic_fetch_add(&ndisconnect, 1);
	fltport_client_close(cookie);
}

static uint32_t on_message(void *cookie, const struct fltport_request *req, void *out, size_t cap,
			   size_t *out_len)
{
	for (unsigned i = 0; i < req->nfds; i++)
		close(req->fds[i]);
	return 7;
}

static fltport_server *start(const char **name)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message,
		.max_connections = 4,
		.max_message = 1u << 20,
	};
	fltport_server *srv;

	tu_private_dir();
	*name = tu_port_name("hostile");
	atomic_store(&nconnect, 0);
	atomic_store(&ndisconnect, 0);
	cr_assert_eq(fltport_server_create(*name, &cfg, &srv), 0);
	return srv;
}

/* A raw client through the handshake: its socket, and the state page. */
static int raw_connect(const char *name, struct fp_page **page, size_t *page_size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fp_hdr h = rw_hdr(FP_T_CONNECT), r;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), fds[8];
	unsigned nfds;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", fltport_dir(), name);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(rw_send(fd, &h, NULL, 0, NULL, 0), 0);
	cr_assert_eq(rw_recv(fd, &r, fds, 8, &nfds, 10000), 0);
	cr_assert_eq(r.type, FP_T_CONNECT_RESULT);
	cr_assert_eq(r.err, 0);
	cr_assert_eq(nfds, 1);
	*page_size = 8192;
	*page = mmap(NULL, *page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	cr_assert_neq(*page, MAP_FAILED);
	close(fds[0]);
	return fd;
}

static bool one_disconnect(void *arg)
{
	return atomic_load(&ndisconnect) >= 1;
}

/* The connection was dropped: EOF at the raw client, one disconnect. */
static void assert_dropped(int fd)
{
	struct fp_hdr h;
	int fds[8];
	unsigned nfds;

	cr_assert_eq(rw_recv(fd, &h, fds, 8, &nfds, 10000), -ENOTCONN);
	cr_assert(tu_wait_until(one_disconnect, NULL, 10000));
	/* Negative check: give a second (wrong) callback a moment to happen. */
	tu_sleep_ms(100);
	cr_assert_eq(atomic_load(&ndisconnect), 1);
}

/* Another client is still served after one was dropped. */
static void assert_still_serving(const char *name)
{
	fltport_conn *c;
	uint32_t status = 0;

	cr_assert_eq(fltport_connect(name, NULL, 0, 0, 10000 * MS, &c, NULL), 0);
	cr_assert_eq(fltport_request(c, "x", 1, NULL, 0, NULL, 0, NULL, &status, 10000 * MS), 0);
	cr_assert_eq(status, 7);
	fltport_close(c);
}

static void drop_case(struct fp_hdr h, size_t extra, const int *fds, unsigned nfds)
{
	const char *name;
	fltport_server *srv = start(&name);
	struct fp_page *pg;
	size_t pgsz;
	int fd = raw_connect(name, &pg, &pgsz);
	uint8_t zeros[256] = { 0 };

	cr_assert_eq(rw_send(fd, &h, zeros, extra, fds, nfds), 0);
	assert_dropped(fd);
	assert_still_serving(name);
	munmap(pg, pgsz);
	close(fd);
	fltport_server_destroy(srv);
}

Test(hostile, bad_magic_drops_the_peer, .timeout = 60)
{
	struct fp_hdr h = rw_hdr(FP_T_REQUEST);

	h.magic = 0xdeadbeef;
	drop_case(h, 0, NULL, 0);
}

Test(hostile, length_above_the_limit_drops_the_peer, .timeout = 60)
{
	struct fp_hdr h = rw_hdr(FP_T_REQUEST);

	/* Claims 2 MiB on a 1 MiB port: refused before anything is allocated. */
	h.len = 2u << 20;
	h.flags = FP_F_MEMFD;
	drop_case(h, 0, NULL, 0);
}

Test(hostile, length_not_matching_the_datagram_drops_the_peer, .timeout = 60)
{
	struct fp_hdr h = rw_hdr(FP_T_REQUEST);

	h.len = 100;
	drop_case(h, 10, NULL, 0);
}

Test(hostile, unannounced_fd_drops_the_peer, .timeout = 60)
{
	struct fp_hdr h = rw_hdr(FP_T_REQUEST);
	int p[2];

	cr_assert_eq(pipe(p), 0);
	drop_case(h, 0, p, 1); /* nfds says 0 */
	close(p[0]);
	close(p[1]);
}

/* A frame of `type` announcing a payload fd (flags) of FP_INLINE_MAX + 1
 * bytes, and a pipe holding `fill` bytes in its place. */
static void drop_with_pipe(uint16_t type, uint32_t flags, const char *fill)
{
	struct fp_hdr h = rw_hdr(type);
	int p[2];

	cr_assert_eq(pipe(p), 0);
	cr_assert_geq(fcntl(p[1], F_SETPIPE_SZ, (int)(2 * FP_INLINE_MAX)),
		      (int)(2 * FP_INLINE_MAX));
	cr_assert_eq(write(p[1], fill, strlen(fill)), (ssize_t)strlen(fill));
	h.len = FP_INLINE_MAX + 1;
	h.flags = flags;
	drop_case(h, 0, p, 1);
	close(p[0]);
	close(p[1]);
}

/* A pipe where a sealed memfd of the announced size must be. */
Test(hostile, fake_memfd_drops_the_peer, .timeout = 60)
{
	drop_with_pipe(FP_T_REQUEST, FP_F_MEMFD, "");
}

/*
 * The filter side never touches a pipe a client made: whoever holds a
 * pipe's end can hold the pipe's lock as long as it likes (a splice() from
 * an empty socket into it sleeps with the lock held), and a read, a
 * FIONREAD, even a reopen would then sleep uninterruptibly — a review
 * reproduced it on a worker and on the I/O thread holding io_lock.  So a
 * REQUEST or a REPLY with a pipe payload is malformed, however well the
 * pipe is filled.
 */
Test(hostile, pipe_payload_in_a_request_drops_the_peer, .timeout = 60)
{
	static char full[FP_INLINE_MAX + 2];

	memset(full, 'x', FP_INLINE_MAX + 1);
	drop_with_pipe(FP_T_REQUEST, FP_F_PIPE, full);
}

Test(hostile, pipe_payload_in_a_reply_drops_the_peer, .timeout = 60)
{
	static char full[FP_INLINE_MAX + 2];

	memset(full, 'x', FP_INLINE_MAX + 1);
	drop_with_pipe(FP_T_REPLY, FP_F_PIPE, full);
}

Test(hostile, pipe_and_memfd_flags_together_drop_the_peer, .timeout = 60)
{
	drop_with_pipe(FP_T_REQUEST, FP_F_PIPE | FP_F_MEMFD, "");
}

struct splicer {
	int from, to;
	_Atomic int tid;
};

static void *splice_main(void *arg)
{
	struct splicer *sp = arg;

	atomic_store(&sp->tid, (int)syscall(SYS_gettid));
	(void)splice(sp->from, NULL, sp->to, NULL, 4096, 0);
	return NULL;
}

static bool in_splice(void *arg)
{
	struct splicer *sp = arg;
	int tid = atomic_load(&sp->tid);

	return tid > 0 && tu_task_syscall(tid) == SYS_splice;
}

static atomic_bool gate_open, gate_entered;

static bool gate_is_open(void *arg)
{
	return atomic_load(&gate_open);
}

static bool gate_was_entered(void *arg)
{
	return atomic_load(&gate_entered);
}

/* The first request waits at the gate; every one answers 7. */
static uint32_t on_message_gate(void *cookie, const struct fltport_request *req, void *out,
				size_t cap, size_t *out_len)
{
	if (!atomic_exchange(&gate_entered, true))
		tu_wait_until(gate_is_open, NULL, 30000);
	for (unsigned i = 0; i < req->nfds; i++)
		close(req->fds[i]);
	return 7;
}

struct locked_pipe {
	int p[2], sv[2];
	ino_t ino;
	struct splicer sp;
	pthread_t t;
};

static bool filter_holds(void *arg)
{
	struct locked_pipe *lp = arg;

	return tu_pipe_refs(lp->ino) >= 3; /* our two ends and the filter side's copy */
}

/*
 * The last close of a pipe's end takes the pipe's lock, which whoever holds
 * another end can keep as long as it likes (a splice() from an empty socket
 * into the pipe sleeps with it held).  The filter side closes what a client
 * sent when it drops the client's queued requests: that close must not hold
 * the filter's threads.  Here a client's two queued requests each carry the
 * read end of a pipe whose lock the client then holds; the client's own
 * copies are closed, and the client is dropped.  Each pool thread that
 * releases one of those requests would sleep in close() for good, and then
 * nobody would serve anybody; the filter side must serve the next client.
 */
Test(hostile, closing_a_clients_locked_pipe_holds_no_thread_up, .timeout = 60)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message_gate,
		.max_connections = 4,
		.workers = 1,
	};
	struct locked_pipe lp[2];
	struct fp_hdr h = rw_hdr(FP_T_REQUEST);
	const char *name;
	fltport_server *srv;
	struct fp_page *pg;
	size_t pgsz;
	int fd;

	atomic_store(&gate_open, false);
	atomic_store(&gate_entered, false);
	atomic_store(&ndisconnect, 0);
	tu_private_dir();
	name = tu_port_name("hostile-close");
	cr_assert_eq(fltport_server_create(name, &cfg, &srv), 0);
	fd = raw_connect(name, &pg, &pgsz);
	h.id = 1;
	h.len = 4;
	cr_assert_eq(rw_send(fd, &h, "gate", 4, NULL, 0), 0);
	cr_assert(tu_wait_until(gate_was_entered, NULL, 10000));
	for (int i = 0; i < 2; i++) {
		struct stat st;

		cr_assert_eq(pipe2(lp[i].p, O_CLOEXEC), 0);
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, lp[i].sv), 0);
		cr_assert_eq(fstat(lp[i].p[0], &st), 0);
		lp[i].ino = st.st_ino;
		h = rw_hdr(FP_T_REQUEST);
		h.id = 2 + (uint64_t)i;
		h.len = 1;
		h.nfds = 1;
		cr_assert_eq(rw_send(fd, &h, "p", 1, &lp[i].p[0], 1), 0); /* queued */
		cr_assert(tu_wait_until(filter_holds, &lp[i], 10000), "request %d not queued", i);
		close(lp[i].p[0]); /* the filter side's copy is the last reader now */
		lp[i].sp = (struct splicer){ .from = lp[i].sv[0], .to = lp[i].p[1] };
		cr_assert_eq(pthread_create(&lp[i].t, NULL, splice_main, &lp[i].sp), 0);
		cr_assert(tu_wait_until(in_splice, &lp[i].sp, 10000), "no splice");
	}
	h = rw_hdr(FP_T_REQUEST);
	h.magic = 0xdeadbeef; /* the client is dropped with its queued requests */
	cr_assert_eq(rw_send(fd, &h, NULL, 0, NULL, 0), 0);
	{
		struct fp_hdr r;
		int rfds[8];
		unsigned n;

		/* Dropped at once (the gated request's response cannot come
		 * first: the gate is still closed). */
		cr_assert_eq(rw_recv(fd, &r, rfds, 8, &n, 10000), -ENOTCONN);
	}
	/* The gated request returns; the pool thread that takes the dropped
	 * client's queued requests closes their pipes. */
	atomic_store(&gate_open, true);
	cr_assert(tu_wait_until(one_disconnect, NULL, 10000),
		  "no disconnect: a thread sleeps in close()");
	assert_still_serving(name);
	for (int i = 0; i < 2; i++) { /* let go of the locks */
		cr_assert_eq(write(lp[i].sv[1], "x", 1), 1);
		pthread_join(lp[i].t, NULL);
		close(lp[i].p[1]);
		close(lp[i].sv[0]);
		close(lp[i].sv[1]);
	}
	munmap(pg, pgsz);
	close(fd);
	fltport_server_destroy(srv);
}

Test(hostile, wrong_direction_frame_drops_the_peer, .timeout = 60)
{
	drop_case(rw_hdr(FP_T_MESSAGE), 0, NULL, 0);
}

struct sender {
	fltport_client *client;
	int rc;
};

static void *send_main(void *arg)
{
	struct sender *s = arg;

	s->rc = fltport_send(s->client, "m", 1, NULL, 0, NULL, NULL, NULL, 10000 * MS);
	return NULL;
}

/* A scribbled state-page word: the pending send fails, the peer is dropped,
 * the filter is unharmed. */
Test(hostile, scribbled_state_page_drops_the_peer, .timeout = 60)
{
	const char *name;
	fltport_server *srv = start(&name);
	struct fp_page *pg;
	size_t pgsz;
	int fd = raw_connect(name, &pg, &pgsz), fds[8];
	struct sender s = { .client = atomic_load(&last_client) };
	struct fp_hdr h;
	unsigned nfds;
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, send_main, &s), 0);
	cr_assert_eq(rw_recv(fd, &h, fds, 8, &nfds, 10000), 0);
	cr_assert_eq(h.type, FP_T_MESSAGE);
	/* State 0xF: no state the protocol has. */
	atomic_store(&pg->slot[fp_id_slot(h.id)], 0xFFFFFFFFu);
	syscall(SYS_futex, &pg->slot[fp_id_slot(h.id)], 1 /* FUTEX_WAKE */, 1, NULL, NULL, 0);
	pthread_join(t, NULL);
	cr_assert_eq(s.rc, -ENOTCONN);
	assert_dropped(fd);
	assert_still_serving(name);
	munmap(pg, pgsz);
	close(fd);
	fltport_server_destroy(srv);
}

/* ---- destroy racing with connections arriving -------------------------- */

struct knocker {
	struct sockaddr_un sa;
	atomic_bool stop;
	atomic_long knocks;
};

static void *knock_main(void *arg)
{
	struct knocker *k = arg;

	while (!atomic_load(&k->stop)) {
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

		if (fd < 0)
			continue;
		if (connect(fd, (struct sockaddr *)&k->sa, sizeof(k->sa)) == 0)
			atomic_fetch_add(&k->knocks, 1);
		close(fd);
	}
	return NULL;
}

/* Regression: a connection accepted while fltport_server_destroy() was
 * starting stayed registered after destroy had stopped waiting for
 * handshakes, and destroy then waited for it forever.  Here raw peers keep
 * connecting and leaving while servers are created and destroyed: every
 * destroy must return (the test's timeout is the bound). */
Test(hostile, destroy_while_connections_arrive, .timeout = 60)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.max_connections = 4,
		.access = { .mode = FLTPORT_ACCESS_EVERYONE },
	};
	struct knocker k = { .sa = { .sun_family = AF_UNIX } };
	const char *name;
	pthread_t t[3];

	tu_private_dir();
	name = tu_port_name("race");
	snprintf(k.sa.sun_path, sizeof(k.sa.sun_path), "%s/%s", fltport_dir(), name);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, knock_main, &k), 0);
	for (int i = 0; i < tu_scaled(1000, 100); i++) {
		fltport_server *srv;

		cr_assert_eq(fltport_server_create(name, &cfg, &srv), 0, "round %d", i);
		fltport_server_destroy(srv);
	}
	atomic_store(&k.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	cr_assert_gt(atomic_load(&k.knocks), 0, "the knocker never got in");
}
