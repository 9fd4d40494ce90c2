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

/* workers: 0 for the default. */
static fltport_server *start_with(const char **name, fltport_message_fn fn, unsigned workers)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = fn,
		.max_connections = 4,
		.max_message = 1u << 20,
		.workers = workers,
	};
	fltport_server *srv;

	tu_private_dir();
	*name = tu_port_name("hostile");
	atomic_store(&nconnect, 0);
	atomic_store(&ndisconnect, 0);
	cr_assert_eq(fltport_server_create(*name, &cfg, &srv), 0);
	return srv;
}

static fltport_server *start(const char **name)
{
	return start_with(name, on_message, 0);
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

/* A REQUEST announcing a payload fd (flags) of FP_INLINE_MAX + 1 bytes, and
 * a pipe holding `fill` bytes in its place. */
static void drop_with_pipe(uint32_t flags, const char *fill)
{
	struct fp_hdr h = rw_hdr(FP_T_REQUEST);
	int p[2];

	cr_assert_eq(pipe(p), 0);
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
	drop_with_pipe(FP_F_MEMFD, "");
}

/* A payload pipe must hold exactly the announced bytes. */
Test(hostile, short_payload_pipe_drops_the_peer, .timeout = 60)
{
	drop_with_pipe(FP_F_PIPE, "short");
}

Test(hostile, pipe_and_memfd_flags_together_drop_the_peer, .timeout = 60)
{
	drop_with_pipe(FP_F_PIPE | FP_F_MEMFD, "");
}

/* A memfd (a regular file) where a pipe is announced. */
Test(hostile, file_as_payload_pipe_drops_the_peer, .timeout = 60)
{
	struct fp_hdr h = rw_hdr(FP_T_REQUEST);
	int fd = memfd_create("not-a-pipe", MFD_CLOEXEC);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, FP_INLINE_MAX + 1), 0);
	h.len = FP_INLINE_MAX + 1;
	h.flags = FP_F_PIPE;
	drop_case(h, 0, &fd, 1);
	close(fd);
}

static _Atomic uint32_t seen_sum, seen_len;

static uint32_t on_message_sum(void *cookie, const struct fltport_request *req, void *out,
			       size_t cap, size_t *out_len)
{
	const uint8_t *in = req->in;
	uint32_t sum = 0;

	for (size_t i = 0; i < req->in_len; i++)
		sum = sum * 31u + in[i];
	atomic_store(&seen_len, (uint32_t)req->in_len);
	atomic_store(&seen_sum, sum);
	return 9;
}

/* A request whose input comes in a pipe (libfltport sends a memfd there,
 * another sender may not): the callback gets exactly the bytes, with the
 * peer still holding the pipe's write end. */
Test(hostile, request_input_in_a_pipe_reaches_the_callback, .timeout = 60)
{
	const size_t len = FP_INLINE_MAX + 4096;
	uint8_t *in = malloc(len);
	uint32_t sum = 0;
	const char *name;
	fltport_server *srv;
	struct fp_page *pg;
	size_t pgsz;
	struct fp_hdr h = rw_hdr(FP_T_REQUEST), r;
	int p[2], fd, fds[8];
	unsigned nfds;

	cr_assert_not_null(in);
	for (size_t i = 0; i < len; i++) {
		in[i] = (uint8_t)(i * 7 + i / 251);
		sum = sum * 31u + in[i];
	}
	srv = start_with(&name, on_message_sum, 0);
	fd = raw_connect(name, &pg, &pgsz);
	cr_assert_eq(pipe(p), 0);
	cr_assert_geq(fcntl(p[1], F_SETPIPE_SZ, (int)len), (int)len);
	cr_assert_eq(write(p[1], in, len), (ssize_t)len);
	h.id = 1;
	h.len = (uint32_t)len;
	h.flags = FP_F_PIPE;
	cr_assert_eq(rw_send(fd, &h, NULL, 0, &p[0], 1), 0);
	cr_assert_eq(rw_recv(fd, &r, fds, 8, &nfds, 10000), 0);
	cr_assert_eq(r.type, FP_T_RESPONSE);
	cr_assert_eq(r.id, 1);
	cr_assert_eq(r.err, 0);
	cr_assert_eq(r.status, 9);
	cr_assert_eq(atomic_load(&seen_len), len);
	cr_assert_eq(atomic_load(&seen_sum), sum, "the callback saw other bytes than were sent");
	cr_assert_eq(atomic_load(&ndisconnect), 0);
	close(p[0]);
	close(p[1]);
	munmap(pg, pgsz);
	close(fd);
	fltport_server_destroy(srv);
	free(in);
}

static atomic_bool gate_entered, gate_open;

static bool gate_is_open(void *arg)
{
	return atomic_load(&gate_open);
}

static bool gate_was_entered(void *arg)
{
	return atomic_load(&gate_entered);
}

/* Small requests wait at the gate; a large one checks nothing. */
static uint32_t on_message_gate(void *cookie, const struct fltport_request *req, void *out,
				size_t cap, size_t *out_len)
{
	if (req->in_len <= 16) {
		atomic_store(&gate_entered, true);
		tu_wait_until(gate_is_open, NULL, 30000);
	}
	return 9;
}

/* Whether this process holds an fd of the pipe with inode *arg other than
 * the test's own two (the server received it). */
static bool server_holds_pipe(void *arg)
{
	const struct {
		ino_t ino;
		int mine[2];
	} *w = arg;
	char want[64], link[64], got[64];
	int n = 0;

	snprintf(want, sizeof(want), "pipe:[%lu]", (unsigned long)w->ino);
	for (int fd = 0; fd < 1024; fd++) {
		ssize_t k;

		if (fd == w->mine[0] || fd == w->mine[1])
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		k = readlink(link, got, sizeof(got) - 1);
		if (k > 0) {
			got[k] = '\0';
			n += strcmp(got, want) == 0;
		}
	}
	return n > 0;
}

/* The sender keeps the payload pipe's ends, and empties it after the
 * filter checked it (while the request waits for a worker) with the pipe
 * left blocking: the request is answered with an error, never by a thread
 * stuck in read(), and the connection goes on being served. */
Test(hostile, payload_pipe_emptied_by_its_sender_blocks_no_thread, .timeout = 60)
{
	const size_t len = FP_INLINE_MAX + 4096;
	uint8_t *in = calloc(1, len);
	struct {
		ino_t ino;
		int mine[2];
	} w;
	const char *name;
	fltport_server *srv;
	struct fp_page *pg;
	size_t pgsz, got = 0;
	struct fp_hdr h = rw_hdr(FP_T_REQUEST), r;
	struct stat st;
	int p[2], fd, fds[8];
	unsigned nfds;
	bool seen[4] = { false };

	cr_assert_not_null(in);
	atomic_store(&gate_entered, false);
	atomic_store(&gate_open, false);
	srv = start_with(&name, on_message_gate, 1); /* request 2 waits for it */
	fd = raw_connect(name, &pg, &pgsz);
	h.id = 1;
	h.len = 4;
	cr_assert_eq(rw_send(fd, &h, "gate", 4, NULL, 0), 0);
	cr_assert(tu_wait_until(gate_was_entered, NULL, 10000));
	cr_assert_eq(pipe(p), 0); /* blocking */
	cr_assert_geq(fcntl(p[1], F_SETPIPE_SZ, (int)len), (int)len);
	cr_assert_eq(write(p[1], in, len), (ssize_t)len);
	cr_assert_eq(fstat(p[0], &st), 0);
	w.ino = st.st_ino;
	w.mine[0] = p[0];
	w.mine[1] = p[1];
	h = rw_hdr(FP_T_REQUEST);
	h.id = 2;
	h.len = (uint32_t)len;
	h.flags = FP_F_PIPE;
	cr_assert_eq(rw_send(fd, &h, NULL, 0, &p[0], 1), 0);
	cr_assert(tu_wait_until(server_holds_pipe, &w, 10000), "the filter never took the pipe");
	while (got < len) {
		ssize_t n = read(p[0], in, len - got);

		cr_assert_gt(n, 0);
		got += (size_t)n;
	}
	atomic_store(&gate_open, true);
	h = rw_hdr(FP_T_REQUEST);
	h.id = 3;
	h.len = 1;
	cr_assert_eq(rw_send(fd, &h, "x", 1, NULL, 0), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(rw_recv(fd, &r, fds, 8, &nfds, 10000), 0, "response %d of 3", i + 1);
		cr_assert_eq(r.type, FP_T_RESPONSE);
		cr_assert(r.id >= 1 && r.id <= 3 && !seen[r.id]);
		seen[r.id] = true;
		if (r.id == 2)
			cr_assert_eq(r.err, -EIO, "an emptied pipe's request: err %d", r.err);
		else
			cr_assert(r.err == 0 && r.status == 9, "request %llu: err %d status %u",
				  (unsigned long long)r.id, r.err, r.status);
	}
	cr_assert_eq(atomic_load(&ndisconnect), 0);
	close(p[0]);
	close(p[1]);
	munmap(pg, pgsz);
	close(fd);
	fltport_server_destroy(srv);
	free(in);
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
