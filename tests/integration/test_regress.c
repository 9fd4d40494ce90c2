/*
 * Regression tests for the port-core defects of issue 8, one (or more) per
 * defect, each named after the bug it guards.  Each was seen failing before
 * its fix.  Both ends run in this process over real sockets, except where a
 * second process is the point (fork); fake peers speak the wire format by
 * hand (docs/PROTOCOL.md).
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/frame.h"
#include "core/shared.h"
#include "fltport/mgmt.h"
#include "fltport/port.h"
#include "rawwire.h"
#include "testutil.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* ---- a server port in this process ---- */

static atomic_int nconnect, ndisconnect, nmessage;
static fltport_client *_Atomic last_client;
static sem_t msg_entered, msg_release; /* --block: the message callback waits */
static atomic_bool block_msgs;
static atomic_int msg_inflight_at_disconnect = -1;
static atomic_int msgs_running;

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
	atomic_store(&msg_inflight_at_disconnect, atomic_load(&msgs_running));
	atomic_fetch_add(&ndisconnect, 1);
	fltport_client_close(cookie);
}

static uint32_t on_message(void *cookie, const struct fltport_request *req, void *out, size_t cap,
			   size_t *out_len)
{
	atomic_fetch_add(&msgs_running, 1);
	atomic_fetch_add(&nmessage, 1);
	for (unsigned i = 0; i < req->nfds; i++)
		close(req->fds[i]);
	if (atomic_load(&block_msgs)) {
		sem_post(&msg_entered);
		sem_wait(&msg_release);
	}
	atomic_fetch_sub(&msgs_running, 1);
	return 7;
}

static fltport_server *start_cfg(const char **name, struct fltport_server_config *cfg)
{
	fltport_server *srv;

	tu_private_dir();
	*name = tu_port_name("regress");
	atomic_store(&nconnect, 0);
	atomic_store(&ndisconnect, 0);
	atomic_store(&nmessage, 0);
	atomic_store(&last_client, NULL);
	sem_init(&msg_entered, 0, 0);
	sem_init(&msg_release, 0, 0);
	cr_assert_eq(fltport_server_create(*name, cfg, &srv), 0);
	return srv;
}

/* The port of most tests; workers 0 means the default. */
static fltport_server *start_workers(const char **name, unsigned workers)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message,
		.max_connections = 8,
		.max_message = 1u << 20,
		.workers = workers,
	};

	return start_cfg(name, &cfg);
}

static fltport_server *start(const char **name)
{
	return start_workers(name, 0);
}

static bool connected(void *arg)
{
	return atomic_load(&nconnect) >= *(int *)arg && atomic_load(&last_client) != NULL;
}

static bool disconnected(void *arg)
{
	return atomic_load(&ndisconnect) >= *(int *)arg;
}

static fltport_conn *connect_ok(const char *name)
{
	fltport_conn *c;
	int rc = fltport_connect(name, NULL, 0, 0, 10 * SEC, &c, NULL);

	cr_assert_eq(rc, 0, "fltport_connect: %s", fltport_strerror(rc));
	return c;
}

static int count_fds(void)
{
	int n = 0;
	char path[64];

	for (int fd = 0; fd < 4096; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (access(path, F_OK) == 0)
			n++;
	}
	return n;
}

/* Use up every fd (soft limit lowered to 256): the next fd-creating call
 * fails with EMFILE until fds_restore(). */
struct fd_hog {
	struct rlimit old;
	int fds[4096];
	int n;
};

static void fds_exhaust(struct fd_hog *hog)
{
	struct rlimit low;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &hog->old), 0);
	low = hog->old;
	low.rlim_cur = 256;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	hog->n = 0;
	while (hog->n < 4096 && (hog->fds[hog->n] = dup(0)) >= 0)
		hog->n++;
}

static void fds_restore(struct fd_hog *hog)
{
	for (int i = 0; i < hog->n; i++)
		close(hog->fds[i]);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &hog->old), 0);
}

static void port_path(const char *name, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", fltport_dir(), name);
}

/* ---- a fake (trusted) server: this process, in our own directory ---- */

struct fake_server {
	int lfd, fd;
	struct fp_page *page;
	size_t page_size;
	uint32_t nslots;
	const char *name;
	fltport_conn *conn;
};

static void *fake_connect_main(void *arg)
{
	struct fake_server *f = arg;
	int rc = fltport_connect(f->name, NULL, 0, 0, 10 * SEC, &f->conn, NULL);

	cr_assert_eq(rc, 0, "connect to the fake server: %s", fltport_strerror(rc));
	return NULL;
}

static void fake_start(struct fake_server *f, uint32_t nslots)
{
	struct sockaddr_un sa;
	struct fp_connect_info ci = { .nslots = nslots, .max_message = 1u << 20 };
	uint8_t info[FP_CONNECT_INFO_SIZE];
	struct fp_hdr h = rw_hdr(FP_T_CONNECT_RESULT), in;
	pthread_t t;
	int pfd;

	tu_private_dir();
	f->name = tu_port_name("fake");
	f->nslots = nslots;
	port_path(f->name, &sa);
	f->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(f->lfd, 4), 0);
	cr_assert_eq(pthread_create(&t, NULL, fake_connect_main, f), 0);
	f->fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(f->fd, 0);
	cr_assert_eq(rw_recv(f->fd, &in, NULL, 0, NULL, 10000), 0);
	f->page_size = fp_page_size(nslots);
	pfd = memfd_create("fake-page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	cr_assert_eq(ftruncate(pfd, (off_t)f->page_size), 0);
	cr_assert_eq(fcntl(pfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	f->page = mmap(NULL, f->page_size, PROT_READ | PROT_WRITE, MAP_SHARED, pfd, 0);
	cr_assert_neq(f->page, MAP_FAILED);
	f->page->magic = FP_PAGE_MAGIC;
	f->page->nslots = nslots;
	ci.page_size = (uint32_t)f->page_size;
	fp_connect_info_encode(&ci, info);
	h.len = FP_CONNECT_INFO_SIZE;
	/* The page fd rides after the (zero) user fds. */
	cr_assert_eq(rw_send(f->fd, &h, info, sizeof(info), &pfd, 1), 0);
	close(pfd);
	pthread_join(t, NULL);
}

static void fake_stop(struct fake_server *f)
{
	fltport_close(f->conn);
	close(f->fd);
	close(f->lfd);
	munmap(f->page, f->page_size);
}

/* A MESSAGE frame from the fake server: the slot word set PENDING first. */
static void fake_message(struct fake_server *f, uint64_t seq, uint32_t slot, const char *payload,
			 const int *fds, unsigned nfds)
{
	struct fp_hdr h = rw_hdr(FP_T_MESSAGE);

	h.id = fp_msg_id(seq, slot);
	h.len = (uint32_t)strlen(payload);
	h.nfds = (uint16_t)nfds;
	atomic_store(&f->page->slot[slot], fp_word(seq, FP_S_PENDING));
	cr_assert_eq(rw_send(f->fd, &h, payload, h.len, fds, nfds), 0);
}

static bool conn_ended(void *arg)
{
	return fltport_conn_ended(arg);
}

/* Defect 1: a server that sends more messages than it has slots made the
 * receive thread free the message (and close its fds) twice. */
Test(regress, queue_overflow_frees_the_message_once, .timeout = 60)
{
	struct fake_server f;
	int p[2], before;

	fake_start(&f, 1);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	before = count_fds();
	fake_message(&f, 1, 0, "first message", p, 1);
	fake_message(&f, 1, 0, "same id again", p, 1); /* queue full: the server lied */
	cr_assert(tu_wait_until(conn_ended, f.conn, 10000), "the lying server was not dropped");
	fake_stop(&f);
	/* Both copies of the pipe fd are closed once each: our own ends are
	 * still open (a double close could have closed one of them). */
	cr_assert_eq(fcntl(p[0], F_GETFD), FD_CLOEXEC);
	cr_assert_eq(fcntl(p[1], F_GETFD), FD_CLOEXEC);
	cr_assert_leq(count_fds(), before);
	close(p[0]);
	close(p[1]);
}

/* A MESSAGE from the fake server whose payload (len bytes) comes in `pfd`
 * (FP_F_PIPE), the slot word set PENDING first. */
static void fake_pipe_message(struct fake_server *f, uint64_t seq, uint32_t slot, uint32_t len,
			      int pfd)
{
	struct fp_hdr h = rw_hdr(FP_T_MESSAGE);

	h.id = fp_msg_id(seq, slot);
	h.len = len;
	h.flags = FP_F_PIPE;
	atomic_store(&f->page->slot[slot], fp_word(seq, FP_S_PENDING));
	cr_assert_eq(rw_send(f->fd, &h, NULL, 0, &pfd, 1), 0);
}

/* A payload pipe must be an anonymous pipe holding exactly the payload: a
 * short one, or a FIFO from a file system (which RWF_NOWAIT does not cover),
 * ends the connection (the review of the pipe payloads). */
Test(regress, bad_payload_pipes_end_the_connection, .timeout = 60)
{
	const uint32_t len = FP_INLINE_MAX + 1;
	static char zeros[FP_INLINE_MAX + 1];
	char fifo[PATH_MAX];

	for (int round = 0; round < 2; round++) {
		struct fake_server f;
		int p[2] = { -1, -1 }, rfd;

		fake_start(&f, 4);
		if (round == 0) {
			cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
			cr_assert_eq(write(p[1], "short", 5), 5);
			rfd = p[0];
		} else {
			snprintf(fifo, sizeof(fifo), "%s/fifo", fltport_dir());
			unlink(fifo);
			cr_assert_eq(mkfifo(fifo, 0600), 0);
			/* A FIFO holding exactly the payload: only its kind is wrong. */
			rfd = open(fifo, O_RDWR | O_CLOEXEC);
			cr_assert_geq(rfd, 0);
			cr_assert_geq(fcntl(rfd, F_SETPIPE_SZ, 2 * (int)len), 2 * (int)len);
			cr_assert_eq(write(rfd, zeros, len), (ssize_t)len);
		}
		fake_pipe_message(&f, 1, 0, len, rfd);
		cr_assert(tu_wait_until(conn_ended, f.conn, 10000), "round %d: not dropped", round);
		fake_stop(&f);
		close(rfd);
		if (p[1] >= 0)
			close(p[1]);
	}
	unlink(fifo);
}

static bool holds_pipe(void *arg)
{
	return tu_pipe_refs(*(const ino_t *)arg) > 2; /* ours are two */
}

/* A payload pipe emptied after it arrived (its sender kept an end) is never
 * delivered with bytes it did not send: the get finds no message, and the
 * message's slot is left PENDING (its sender sees it expire). */
Test(regress, emptied_payload_pipe_is_not_delivered, .timeout = 60)
{
	const uint32_t len = FP_INLINE_MAX + 100;
	struct fake_server f;
	struct fltport_msg m;
	struct stat st;
	char *buf = malloc(len), *junk = malloc(len);
	int p[2], rc;

	cr_assert(buf && junk);
	memset(buf, 0, len);
	fake_start(&f, 4);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_geq(fcntl(p[1], F_SETPIPE_SZ, 2 * (int)len), 2 * (int)len);
	memset(junk, 'j', len);
	cr_assert_eq(write(p[1], junk, len), (ssize_t)len);
	cr_assert_eq(fstat(p[0], &st), 0);
	fake_pipe_message(&f, 1, 0, len, p[0]);
	/* The connection's receive thread queues it (and keeps the pipe). */
	cr_assert(tu_wait_until(holds_pipe, &st.st_ino, 10000), "the message never arrived");
	cr_assert_eq(read(p[0], junk, len), (ssize_t)len); /* emptied behind its back */
	rc = fltport_get(f.conn, buf, len, &m, 300 * MS);
	cr_assert_eq(rc, -ETIMEDOUT, "got %d (%s): a message with bytes nobody sent", rc,
		     fltport_strerror(rc));
	cr_assert_eq(atomic_load(&f.page->slot[0]), fp_word(1, FP_S_PENDING),
		     "the unreadable message was marked taken");
	fake_stop(&f);
	close(p[0]);
	close(p[1]);
	free(buf);
	free(junk);
}

/* ---- the payload area (FP_F_AREA, transport/area.c) ---- */

/* An area memfd of `size` bytes with `seals`, mapped here. */
static int fake_area(size_t size, int seals, uint8_t **map)
{
	int fd = memfd_create("fake-area", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	if (seals)
		cr_assert_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(*map, MAP_FAILED);
	return fd;
}

/* A MESSAGE from the fake server whose len bytes are in its payload area
 * (the area's fd along when afd ≥ 0), the busy word set first. */
static void fake_area_message(struct fake_server *f, uint64_t seq, uint32_t slot, uint32_t len,
			      uint8_t *map, int afd)
{
	struct fp_hdr h = rw_hdr(FP_T_MESSAGE);

	h.id = fp_msg_id(seq, slot);
	h.len = len;
	h.flags = FP_F_AREA | (afd >= 0 ? FP_F_AREA_NEW : 0);
	if (map)
		atomic_store((_Atomic uint32_t *)(void *)map, 1);
	atomic_store(&f->page->slot[slot], fp_word(seq, FP_S_PENDING));
	cr_assert_eq(rw_send(f->fd, &h, NULL, 0, afd >= 0 ? &afd : NULL, afd >= 0 ? 1 : 0), 0);
}

static bool area_released(void *arg)
{
	return atomic_load((_Atomic uint32_t *)arg) == 0;
}

/* The user side reads a payload from the area its filter sent once, for
 * that message and the next ones, and gives the area back (busy word 0)
 * once it has the payload. */
Test(regress, payload_area_messages_are_delivered_and_released, .timeout = 60)
{
	const uint32_t len = FP_INLINE_MAX + 1000;
	const size_t size = FP_AREA_DATA + (1u << 20);
	struct fake_server f;
	struct fltport_msg m;
	char *buf = malloc(len);
	uint8_t *map;
	int afd;

	cr_assert(buf);
	fake_start(&f, 4);
	afd = fake_area(size, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, &map);
	for (uint64_t i = 1; i <= 3; i++) {
		memset(map + FP_AREA_DATA, 'a' + (int)i, len);
		fake_area_message(&f, i, 0, len, map, i == 1 ? afd : -1);
		cr_assert_eq(fltport_get(f.conn, buf, len, &m, 10 * SEC), 0, "message %d", (int)i);
		cr_assert_eq(m.len, len);
		for (uint32_t k = 0; k < len; k++)
			cr_assert_eq(buf[k], 'a' + (int)i, "message %d, byte %u", (int)i, k);
		cr_assert(tu_wait_until(area_released, map, 10000),
			  "message %d: the area was not given back", (int)i);
		atomic_store(&f.page->slot[0], fp_word(i, FP_S_FREE));
	}
	cr_assert(!fltport_conn_ended(f.conn));
	fake_stop(&f);
	munmap(map, size);
	close(afd);
	free(buf);
}

/* An area the user side could not map safely, or none, ends the
 * connection: a payload before any area, an area that could shrink, one
 * too small for the payload, and a second area. */
Test(regress, bad_payload_areas_end_the_connection, .timeout = 60)
{
	const uint32_t len = FP_INLINE_MAX + 1;
	const size_t size = FP_AREA_DATA + (1u << 20);
	const int sealed = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

	for (int round = 0; round < 4; round++) {
		struct fake_server f;
		uint8_t *map = NULL;
		int afd = -1;

		fake_start(&f, 4);
		if (round == 1)
			afd = fake_area(size, F_SEAL_GROW, &map); /* may shrink */
		else if (round == 2)
			afd = fake_area(FP_AREA_DATA + len - 1, sealed, &map);
		else if (round == 3)
			afd = fake_area(size, sealed, &map);
		if (round == 3) { /* a good one first, then another */
			struct fltport_msg m;
			static char buf[FP_INLINE_MAX + 1];

			fake_area_message(&f, 1, 0, len, map, afd);
			cr_assert_eq(fltport_get(f.conn, buf, len, &m, 10 * SEC), 0);
			fake_area_message(&f, 2, 1, len, map, afd);
		} else {
			fake_area_message(&f, 1, 0, len, map, afd);
		}
		cr_assert(tu_wait_until(conn_ended, f.conn, 10000), "round %d: not dropped", round);
		fake_stop(&f);
		if (afd >= 0) {
			munmap(map, round == 2 ? FP_AREA_DATA + len - 1 : size);
			close(afd);
		}
	}
}

/* A 1 MiB message filled with `ch`, sent from a thread of its own. */
struct fill_send {
	fltport_client *cl;
	int ch;
	int rc;
	pthread_t th;
};

static void *fill_send_main(void *arg)
{
	struct fill_send *s = arg;
	char *p = malloc(1u << 20);

	cr_assert(p);
	memset(p, s->ch, 1u << 20);
	s->rc = fltport_send(s->cl, p, 1u << 20, NULL, 0, NULL, NULL, NULL, 20 * SEC);
	free(p);
	return NULL;
}

static bool all_bytes(const char *p, size_t n, char ch)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ch)
			return false;
	return true;
}

/* A forked child's fltport_close() of its copy of a connection touches
 * nothing the parent still uses: a message queued in the parent keeps its
 * payload (in the payload area, which the child's copy must not give back
 * to the filter side), and the child's close returns (it does not wait on
 * a condition variable some parent thread waited on at the fork). */
Test(regress, a_forked_childs_close_leaves_the_parents_queued_payload_intact, .timeout = 60)
{
	const size_t big = 1u << 20;
	const char *name;
	fltport_server *srv = start(&name);
	fltport_conn *c = connect_ok(name);
	struct fill_send a = { .ch = 'A' }, b = { .ch = 'B' };
	struct fltport_msg m;
	char small[16], *buf = malloc(big);
	int one = 1, st = 0;
	pid_t pid;

	cr_assert(buf);
	cr_assert(tu_wait_until(connected, &one, 10000));
	a.cl = b.cl = atomic_load(&last_client);
	cr_assert_eq(pthread_create(&a.th, NULL, fill_send_main, &a), 0);
	/* Too small a buffer: message A stays queued, holding the area. */
	cr_assert_eq(fltport_get(c, small, sizeof(small), &m, 10 * SEC), -EMSGSIZE);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		alarm(20);
		fltport_close(c); /* the child's copy */
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "the child's fltport_close() did not return (status 0x%x)", st);
	cr_assert_eq(pthread_create(&b.th, NULL, fill_send_main, &b), 0);
	cr_assert_eq(fltport_get(c, buf, big, &m, 10 * SEC), 0);
	cr_assert_eq(m.len, big);
	cr_assert(all_bytes(buf, big, 'A'), "message A holds bytes it was not sent with");
	cr_assert_eq(fltport_get(c, buf, big, &m, 10 * SEC), 0);
	cr_assert(all_bytes(buf, big, 'B'));
	pthread_join(a.th, NULL);
	pthread_join(b.th, NULL);
	cr_assert_eq(a.rc, 0);
	cr_assert_eq(b.rc, 0);
	fltport_close(c);
	fltport_server_destroy(srv);
	free(buf);
}

/* Defect 7: a queued message that expired is dropped, not reported as too
 * large for the reader's buffer. */
Test(regress, expired_message_is_not_reported_too_large, .timeout = 60)
{
	const char *name;
	fltport_server *srv = start(&name);
	fltport_conn *c = connect_ok(name);
	struct fltport_msg m;
	char big[512] = { 0 }, small[4];
	int one = 1, rc;

	cr_assert(tu_wait_until(connected, &one, 10000));
	/* Nobody reads: the message expires in the queue. */
	rc = fltport_send(atomic_load(&last_client), big, sizeof(big), NULL, 0, NULL, NULL, NULL,
			  50 * MS);
	cr_assert_eq(rc, -ETIMEDOUT);
	rc = fltport_get(c, small, sizeof(small), &m, FLTPORT_POLL);
	cr_assert_eq(rc, -ETIMEDOUT, "got %d (%s) for an expired message", rc,
		     fltport_strerror(rc));
	fltport_close(c);
	fltport_server_destroy(srv);
}

/* Defect 2: after a poll get found only expired messages, the pollable fd
 * must no longer be readable. */
Test(regress, pollable_fd_clears_after_expired_messages, .timeout = 60)
{
	const char *name;
	fltport_server *srv = start(&name);
	fltport_conn *c = connect_ok(name);
	struct fltport_msg m;
	char buf[64];
	struct pollfd p = { .fd = fltport_conn_fd(c), .events = POLLIN };
	int one = 1;

	cr_assert(tu_wait_until(connected, &one, 10000));
	cr_assert_eq(
		fltport_send(atomic_load(&last_client), "x", 1, NULL, 0, NULL, NULL, NULL, 50 * MS),
		-ETIMEDOUT);
	cr_assert_eq(poll(&p, 1, 10000), 1, "the queued message did not make the fd readable");
	cr_assert_eq(fltport_get(c, buf, sizeof(buf), &m, FLTPORT_POLL), -ETIMEDOUT);
	cr_assert_eq(poll(&p, 1, 0), 0, "fd still readable with nothing to get");
	fltport_close(c);
	fltport_server_destroy(srv);
}

struct req_arg {
	fltport_conn *c;
	int rc;
};

static void *request_main(void *arg)
{
	struct req_arg *a = arg;
	uint32_t st;

	a->rc = fltport_request(a->c, "q", 1, NULL, 0, NULL, 0, NULL, &st, 60 * SEC);
	return NULL;
}

/* Defect 3: a message callback that blocks must not stop other clients
 * from connecting after its own client left; its disconnect callback still
 * runs only after the message callback returned. */
Test(regress, slow_callback_does_not_block_connects, .timeout = 60)
{
	const char *name;
	fltport_server *srv = start(&name);
	fltport_conn *a = connect_ok(name), *b;
	struct req_arg ra = { .c = a };
	pthread_t t;
	int one = 1, rc;

	cr_assert(tu_wait_until(connected, &one, 10000));
	atomic_store(&block_msgs, true);
	cr_assert_eq(pthread_create(&t, NULL, request_main, &ra), 0);
	cr_assert_eq(sem_wait(&msg_entered), 0);
	fltport_shutdown(a); /* A leaves while its callback runs */
	pthread_join(t, NULL);
	fltport_close(a);
	/* B must get in while A's callback is still blocked. */
	rc = fltport_connect(name, NULL, 0, 0, 20 * SEC, &b, NULL);
	cr_assert_eq(rc, 0, "B's connect: %s", fltport_strerror(rc));
	cr_assert_eq(atomic_load(&ndisconnect), 0,
		     "A's disconnect ran before its callback returned");
	atomic_store(&block_msgs, false);
	sem_post(&msg_release);
	cr_assert(tu_wait_until(disconnected, &one, 10000));
	cr_assert_eq(atomic_load(&msg_inflight_at_disconnect), 0);
	fltport_close(b);
	fltport_server_destroy(srv);
}

/* A service thread that gets one message and answers it with a reply too
 * big for the state page: the reply travels as a frame, which only the
 * filter's I/O leader reads. */
struct big_reply_arg {
	fltport_conn *c;
	int rc;
};

static void *big_reply_main(void *arg)
{
	struct big_reply_arg *a = arg;
	static char buf[64], big[8192];
	struct fltport_msg m;

	a->rc = fltport_get(a->c, buf, sizeof(buf), &m, 20 * SEC);
	if (a->rc == 0) {
		memset(big, 'r', sizeof(big));
		a->rc = fltport_reply(a->c, m.id, 5, big, sizeof(big));
	}
	return NULL;
}

static const char *received_port;

/* The port has read at least *arg requests (management plane). */
static bool requests_read(void *arg)
{
	struct fltport_port_info pi;

	return fltport_mgmt_port(received_port, &pi) == 0 &&
	       pi.stats.received >= (uint64_t) * (int *)arg;
}

/* Leader/follower: the thread that reads a request runs its callback only
 * after handing the I/O role to an idle thread.  With one worker (two
 * pool threads) and that callback blocked, the port must still accept,
 * queue the next request instead of running it, and read reply frames. */
Test(regress, blocked_callback_leaves_io_running, .timeout = 90)
{
	const char *name;
	fltport_server *srv = start_workers(&name, 1);
	fltport_conn *a = connect_ok(name), *b;
	struct req_arg ra = { .c = a }, rb;
	struct big_reply_arg br;
	pthread_t ta, tb, tr;
	static char reply[16384];
	size_t rlen = sizeof(reply);
	uint32_t st = 0;
	int one = 1, two = 2, rc;

	cr_assert(tu_wait_until(connected, &one, 10000));
	atomic_store(&block_msgs, true);
	cr_assert_eq(pthread_create(&ta, NULL, request_main, &ra), 0);
	cr_assert_eq(sem_wait(&msg_entered), 0); /* A's callback holds one pool thread */
	b = connect_ok(name);
	cr_assert(tu_wait_until(connected, &two, 10000));
	rb = (struct req_arg){ .c = b };
	cr_assert_eq(pthread_create(&tb, NULL, request_main, &rb), 0);
	/* B's request is read, and must wait for the worker, not take the
	 * last thread: the filter still reads B's reply frame below. */
	received_port = name;
	cr_assert(tu_wait_until(requests_read, &two, 10000), "B's request was never read");
	br = (struct big_reply_arg){ .c = b };
	cr_assert_eq(pthread_create(&tr, NULL, big_reply_main, &br), 0);
	rc = fltport_send(atomic_load(&last_client), "m", 1, NULL, 0, reply, &rlen, &st, 20 * SEC);
	cr_assert_eq(rc, 0, "send to B while A's callback blocks: %s", fltport_strerror(rc));
	cr_assert_eq(rlen, 8192);
	cr_assert_eq(st, 5);
	pthread_join(tr, NULL);
	cr_assert_eq(br.rc, 0, "B's reply: %s", fltport_strerror(br.rc));
	cr_assert_eq(atomic_load(&nmessage), 1, "B's request ran while the only worker was busy");
	atomic_store(&block_msgs, false);
	sem_post(&msg_release);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	cr_assert_eq(ra.rc, 0, "A's request: %s", fltport_strerror(ra.rc));
	cr_assert_eq(rb.rc, 0, "B's request: %s", fltport_strerror(rb.rc));
	cr_assert_eq(atomic_load(&nmessage), 2);
	fltport_close(a);
	fltport_close(b);
	fltport_server_destroy(srv);
}

struct send_arg {
	fltport_client *client;
	char reply[200000];
	size_t len;
	uint32_t status;
	int rc;
};

static void *send_infinite_main(void *arg)
{
	struct send_arg *s = arg;

	s->len = sizeof(s->reply);
	s->rc = fltport_send(s->client, "m", 1, NULL, 0, s->reply, &s->len, &s->status,
			     FLTPORT_INFINITE);
	return NULL;
}

/* Defect 4: a reply whose frame cannot be sent (here: no fd for its
 * memfd) fails with a resource error and leaves the message answerable; a
 * retry reaches the sender, which would otherwise wait forever. */
Test(regress, failed_reply_leaves_the_message_answerable, .timeout = 60)
{
	const char *name;
	fltport_server *srv = start(&name);
	fltport_conn *c = connect_ok(name);
	static struct send_arg s;
	static char data[100 * 1024], buf[64];
	struct fltport_msg m;
	static struct fd_hog hog;
	int one = 1, rc;
	pthread_t t;

	cr_assert(tu_wait_until(connected, &one, 10000));
	s.client = atomic_load(&last_client);
	memset(data, 'r', sizeof(data));
	cr_assert_eq(pthread_create(&t, NULL, send_infinite_main, &s), 0);
	cr_assert_eq(fltport_get(c, buf, sizeof(buf), &m, 10 * SEC), 0);
	/* No fd left: memfd_create() for the 100 KiB reply fails. */
	fds_exhaust(&hog);
	rc = fltport_reply(c, m.id, 5, data, sizeof(data));
	fds_restore(&hog);
	cr_assert(rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM, "reply under EMFILE: %d (%s)",
		  rc, fltport_strerror(rc));
	rc = fltport_reply(c, m.id, 5, data, sizeof(data));
	cr_assert_eq(rc, 0, "retried reply: %d (%s)", rc, fltport_strerror(rc));
	pthread_join(t, NULL);
	cr_assert_eq(s.rc, 0);
	cr_assert_eq(s.len, sizeof(data));
	cr_assert_eq(s.status, 5);
	fltport_close(c);
	fltport_server_destroy(srv);
}

struct dead_send {
	fltport_client *client;
	char reply[64];
	size_t len;
	int rc;
	atomic_bool done;
};

static void *dead_send_main(void *arg)
{
	struct dead_send *d = arg;

	d->len = sizeof(d->reply);
	d->rc = fltport_send(d->client, "m", 1, NULL, 0, d->reply, &d->len, NULL, FLTPORT_INFINITE);
	atomic_store(&d->done, true);
	return NULL;
}

static bool dead_send_done(void *arg)
{
	return atomic_load(&((struct dead_send *)arg)->done);
}

/*
 * A send without timeout whose message was taken, then the client closed
 * without replying: the send must end with -ENOTCONN.  The client's end
 * woke the sender's futex but left the slot word TAKEN, the value the
 * sender compares before it sleeps; a wake between its check of the dead
 * flag and its sleep was lost, and the send slept for good (a review saw
 * FltSendMessage hang so in 4 of 6 runs of one process, 1 in 12 across
 * processes).  Many rounds, to meet the window.
 */
Test(regress, infinite_send_ends_when_the_client_closes_after_taking, .timeout = 240)
{
	const char *name;
	fltport_server *srv = start(&name);
	static struct dead_send d;
	char buf[64];

	for (int i = 0; i < 200; i++) {
		fltport_conn *c = connect_ok(name);
		struct fltport_msg m;
		int n = i + 1;
		pthread_t t;

		cr_assert(tu_wait_until(connected, &n, 10000));
		d.client = atomic_load(&last_client);
		atomic_store(&d.done, false);
		cr_assert_eq(pthread_create(&t, NULL, dead_send_main, &d), 0);
		cr_assert_eq(fltport_get(c, buf, sizeof(buf), &m, 10 * SEC), 0);
		fltport_close(c); /* no reply */
		cr_assert(tu_wait_until(dead_send_done, &d, 10000),
			  "round %d: the send never returned", i);
		pthread_join(t, NULL);
		cr_assert_eq(d.rc, -ENOTCONN, "round %d: %d (%s)", i, d.rc, fltport_strerror(d.rc));
		cr_assert(tu_wait_until(disconnected, &n, 10000));
	}
	fltport_server_destroy(srv);
}

/* Connections closed by the filter side the moment they are accepted, from
 * other threads, while more connect. */
static fltport_client *_Atomic to_kill[64];
static atomic_uint kill_head, kill_tail;

static int on_connect_kill(fltport_client *c, void *sc, const void *ctx, size_t len,
			   const struct fltport_peer *peer, void **cookie, uint32_t *status)
{
	unsigned i = atomic_fetch_add(&kill_head, 1);

	(void)on_connect(c, sc, ctx, len, peer, cookie, status);
	atomic_store(&to_kill[i % 64], c);
	return 0;
}

static void on_disconnect_count(void *cookie)
{
	(void)cookie;
	atomic_fetch_add(&ndisconnect, 1);
}

static atomic_bool killers_stop;

static void *killer_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&killers_stop)) {
		unsigned i = atomic_load(&kill_tail);
		fltport_client *c;

		if (i == atomic_load(&kill_head) || !(c = atomic_load(&to_kill[i % 64])) ||
		    !atomic_compare_exchange_strong(&kill_tail, &i, i + 1))
			continue;
		atomic_store(&to_kill[i % 64], NULL);
		fltport_client_close(c); /* FltCloseClientPort right after ConnectNotify */
	}
	return NULL;
}

static void *connector_main(void *arg)
{
	const char *name = arg;

	for (int i = 0; i < 100; i++) {
		fltport_conn *c;

		if (fltport_connect(name, NULL, 0, 0, 10 * SEC, &c, NULL) == 0)
			fltport_close(c);
	}
	return NULL;
}

static bool all_disconnected(void *arg)
{
	(void)arg;
	return atomic_load(&ndisconnect) == atomic_load(&nconnect);
}

/*
 * A connection killed between the end of its handshake and its arrival in
 * epoll sat on the kill queue and the add queue at once, and both lists
 * were linked through the same field: the second push overwrote the
 * first's link, so one queue lost its tail and the other took in
 * connections that were never on it (an unref too many; TSan saw the use
 * after free in CI, 2026-11-29).  Every accepted connection must get its
 * one disconnect callback, and the server must go on serving.
 */
Test(regress, connections_killed_as_they_arrive_are_each_retired_once, .timeout = 240)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect_kill,
		.on_disconnect = on_disconnect_count,
		.on_message = on_message,
		.max_connections = 64,
	};
	const char *name;
	fltport_server *srv = start_cfg(&name, &cfg);
	pthread_t conn[4], kill[2];

	atomic_store(&kill_head, 0);
	atomic_store(&kill_tail, 0);
	atomic_store(&killers_stop, false);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&kill[i], NULL, killer_main, NULL), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&conn[i], NULL, connector_main, (void *)name), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(conn[i], NULL);
	cr_assert(tu_wait_until(all_disconnected, NULL, 30000),
		  "%d connections accepted, %d disconnect callbacks", atomic_load(&nconnect),
		  atomic_load(&ndisconnect));
	atomic_store(&killers_stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(kill[i], NULL);
	cr_assert_gt(atomic_load(&nconnect), 0);
	{
		fltport_conn *c = connect_ok(name); /* still serving */

		fltport_close(c);
	}
	fltport_server_destroy(srv);
}

/* Defect 5: peers that connect and never send CONNECT must not lock
 * legitimate clients out, and their handshakes end. */
Test(regress, silent_handshakes_neither_block_nor_linger, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	struct sockaddr_un sa;
	int raw[80];
	fltport_conn *c;

	port_path(name, &sa);
	for (int i = 0; i < 80; i++) {
		raw[i] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		cr_assert_eq(connect(raw[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	c = connect_ok(name);
	cr_assert_eq(fltport_request(c, "x", 1, NULL, 0, NULL, 0, NULL, NULL, 10 * SEC), 0);
	fltport_close(c);
	/* Every silent peer is dropped in the end (the handshake deadline). */
	for (int i = 0; i < 80; i++) {
		struct pollfd p = { .fd = raw[i], .events = POLLIN };
		char b;

		cr_assert_eq(poll(&p, 1, 60000), 1, "silent peer %d still connected", i);
		cr_assert_leq(recv(raw[i], &b, 1, MSG_DONTWAIT), 0);
		close(raw[i]);
	}
	fltport_server_destroy(srv);
}

/* Defect 8: a live server that does not accept (frozen, backlog full) must
 * not make fltport_server_create() of the same name block. */
Test(regress, create_does_not_block_on_a_frozen_server, .timeout = 60)
{
	const char *name;
	struct sockaddr_un sa;
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.max_connections = 1,
	};
	fltport_server *srv;
	int lfd, k[64], n = 0;

	tu_private_dir();
	name = tu_port_name("frozen");
	port_path(name, &sa);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(lfd, 0), 0);
	/* Fill the backlog: a blocking connect now waits forever. */
	while (n < 64) {
		k[n] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (connect(k[n], (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			close(k[n]);
			break;
		}
		n++;
	}
	cr_assert_lt(n, 64, "the backlog never filled");
	cr_assert_eq(fltport_server_create(name, &cfg, &srv), -EADDRINUSE);
	for (int i = 0; i < n; i++)
		close(k[i]);
	close(lfd);
}

/* Defect 6: out of fds, the I/O thread must not spin on the listening
 * socket.  CPU time over a second with a connection waiting in the backlog
 * and no fd free stays far below a core. */
Test(regress, out_of_fds_does_not_spin, .timeout = 60)
{
	const char *name;
	fltport_server *srv = start(&name);
	struct sockaddr_un sa;
	static struct fd_hog hog;
	struct rusage r0, r1;
	int k;
	int64_t cpu_us;

	port_path(name, &sa);
	k = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_geq(k, 0);
	fds_exhaust(&hog);
	getrusage(RUSAGE_SELF, &r0);
	cr_assert_eq(connect(k, (struct sockaddr *)&sa, sizeof(sa)), 0);
	tu_sleep_ms(1000);
	getrusage(RUSAGE_SELF, &r1);
	fds_restore(&hog);
	cpu_us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
		  r0.ru_stime.tv_sec) *
			 1000000LL +
		 (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
		  r0.ru_stime.tv_usec);
	cr_assert_lt(cpu_us, 300000, "%lld us of CPU in 1 s while out of fds", (long long)cpu_us);
	close(k);
	/* Once fds are back, connections are accepted again. */
	{
		fltport_conn *c = connect_ok(name);

		fltport_close(c);
	}
	fltport_server_destroy(srv);
}

static uint32_t on_message_fds_kept(void *cookie, const struct fltport_request *req, void *out,
				    size_t cap, size_t *out_len)
{
	if (atomic_load(&block_msgs)) {
		sem_post(&msg_entered);
		sem_wait(&msg_release);
	}
	for (unsigned i = 0; i < req->nfds; i++)
		close(req->fds[i]);
	return 7;
}

struct fdreq_arg {
	fltport_conn *c;
	int fd;
	atomic_int ok, resource, other, last_other;
};

static void *fdreq_main(void *arg)
{
	struct fdreq_arg *a = arg;
	int fds[8];

	for (int i = 0; i < 8; i++)
		fds[i] = a->fd;
	for (int i = 0; i < 40; i++) {
		int rc = fltport_request(a->c, "f", 1, fds, 8, NULL, 0, NULL, NULL, 30 * SEC);

		if (rc == 0)
			atomic_fetch_add(&a->ok, 1);
		else if (rc == -EMFILE)
			atomic_fetch_add(&a->resource, 1);
		else {
			atomic_store(&a->last_other, rc);
			atomic_fetch_add(&a->other, 1);
		}
	}
	return NULL;
}

/* Defect 6: one client cannot park an unbounded number of fds in the
 * filter; over the per-connection cap its requests fail with -EMFILE and
 * it stays connected.  12 threads × 8 fds wait behind a blocked callback:
 * 96 fds, above the cap of 64. */
Test(regress, fds_held_per_connection_are_capped, .timeout = 120)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message_fds_kept,
		.max_connections = 8,
		.workers = 1,
	};
	const char *name;
	fltport_server *srv = start_cfg(&name, &cfg);
	fltport_conn *c = connect_ok(name);
	struct fdreq_arg a = { .c = c };
	pthread_t t[12];
	int before = count_fds(), peak = 0;

	a.fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	atomic_store(&block_msgs, true);
	for (int i = 0; i < 12; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, fdreq_main, &a), 0);
	cr_assert_eq(sem_wait(&msg_entered), 0);
	/* The worker is blocked: requests pile up, with their fds. */
	for (int i = 0; i < 200 && atomic_load(&a.resource) == 0; i++)
		tu_sleep_ms(10);
	peak = count_fds();
	atomic_store(&block_msgs, false);
	sem_post(&msg_release);
	for (int i = 0; i < 12; i++)
		pthread_join(t[i], NULL);
	cr_assert_gt(atomic_load(&a.resource), 0, "no request was refused for its fds");
	cr_assert_eq(atomic_load(&a.other), 0, "%d requests failed otherwise, the last with %s",
		     atomic_load(&a.other), fltport_strerror(atomic_load(&a.last_other)));
	cr_assert_leq(peak - before, 600, "%d fds held for one connection", peak - before);
	cr_assert_eq(fltport_request(c, "x", 1, NULL, 0, NULL, 0, NULL, NULL, 10 * SEC), 0,
		     "the client was dropped");
	close(a.fd);
	fltport_close(c);
	fltport_server_destroy(srv);
}

/* Found by CI (TSan, a loaded machine): a filter process out of fds
 * (RLIMIT_NOFILE) that received a request with fds got it without them
 * (MSG_CTRUNC) and dropped the client as if it had sent a bad frame.  Its
 * own shortage: the request is refused with -EMFILE and the client stays. */
Test(regress, request_whose_fds_do_not_fit_is_refused_not_dropped, .timeout = 60)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message_fds_kept,
		.max_connections = 8,
	};
	const char *name;
	fltport_server *srv = start_cfg(&name, &cfg);
	fltport_conn *c = connect_ok(name);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct fd_hog hog;
	int rc;

	cr_assert_geq(fd, 0);
	cr_assert_eq(fltport_request(c, "f", 1, &fd, 1, NULL, 0, NULL, NULL, 10 * SEC), 0);
	fds_exhaust(&hog);
	rc = fltport_request(c, "f", 1, &fd, 1, NULL, 0, NULL, NULL, 10 * SEC);
	fds_restore(&hog);
	cr_assert_eq(rc, -EMFILE, "a request whose fds did not fit: %d (%s)", rc,
		     fltport_strerror(rc));
	cr_assert_eq(fltport_request(c, "f", 1, &fd, 1, NULL, 0, NULL, NULL, 10 * SEC), 0,
		     "the client was dropped");
	close(fd);
	fltport_close(c);
	fltport_server_destroy(srv);
}

/* Suspected: a poll send to a client port whose connect result is not out
 * yet waited up to a second; it must answer at once (nobody can be
 * waiting yet).  Checked on the ready port too: poll with no reader. */
Test(regress, poll_send_never_waits, .timeout = 60)
{
	const char *name;
	fltport_server *srv = start(&name);
	fltport_conn *c = connect_ok(name);
	int one = 1;
	int64_t t0;

	cr_assert(tu_wait_until(connected, &one, 10000));
	t0 = tu_now_ms();
	cr_assert_eq(fltport_send(atomic_load(&last_client), "p", 1, NULL, 0, NULL, NULL, NULL,
				  FLTPORT_POLL),
		     -ETIMEDOUT);
	cr_assert_lt(tu_now_ms() - t0, 500);
	fltport_close(c);
	fltport_server_destroy(srv);
}

static void *huge_deadline_main(void *arg)
{
	struct send_arg *s = arg;

	s->len = 64;
	s->rc = fltport_send(s->client, "h", 1, NULL, 0, s->reply, &s->len, &s->status,
			     INT64_MAX - 5);
	return NULL;
}

/* Suspected: a huge finite deadline plus the reply grace overflowed. */
Test(regress, huge_deadline_gets_its_reply, .timeout = 60)
{
	const char *name;
	fltport_server *srv = start(&name);
	fltport_conn *c = connect_ok(name);
	static struct send_arg s;
	struct fltport_msg m;
	char buf[64];
	int one = 1;
	pthread_t t;

	cr_assert(tu_wait_until(connected, &one, 10000));
	s.client = atomic_load(&last_client);
	cr_assert_eq(pthread_create(&t, NULL, huge_deadline_main, &s), 0);
	cr_assert_eq(fltport_get(c, buf, sizeof(buf), &m, 10 * SEC), 0);
	cr_assert_eq(fltport_reply(c, m.id, 9, "ok", 2), 0);
	pthread_join(t, NULL);
	cr_assert_eq(s.rc, 0);
	cr_assert_eq(s.status, 9);
	fltport_close(c);
	fltport_server_destroy(srv);
}

/* Suspected: a port directory owned by another user is refused (clients
 * trust the directory's owner as a server). */
Test(regress, foreign_port_directory_is_refused, .timeout = 60)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.max_connections = 1,
	};
	fltport_server *srv;
	const char *dir;
	char sub[512];

	if (geteuid() != 0)
		cr_skip_test("needs root (chown to another uid)");
	dir = tu_private_dir();
	snprintf(sub, sizeof(sub), "%s/foreign", dir);
	cr_assert_eq(mkdir(sub, 0755), 0);
	cr_assert_eq(chown(sub, 65534, 65534), 0);
	setenv("FLTPORT_DIR", sub, 1);
	cr_assert_eq(fltport_server_create("p", &cfg, &srv), -EACCES);
	rmdir(sub);
	setenv("FLTPORT_DIR", dir, 1);
}

/* ---- fork (a second process is the point) ---- */

/* A service forks a child that never execs, then dies: the filter sees the
 * disconnect at once (the child holds no library fd), and in the child
 * the connection is dead. */
Test(regress, forked_child_does_not_keep_the_connection, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	char line[256];
	struct tu_proc p;
	int one = 1;
	long child;

	p = tu_spawn("fp_fork_peer", (const char *const[]){ "service", name, NULL });
	cr_assert(tu_expect(&p, "CHILD ", line, sizeof(line), 20000), "no CHILD line");
	child = tu_field_num(line, "pid");
	cr_assert_eq(tu_field_num(line, "request"), -ENOTCONN, "child: %s", line);
	cr_assert_eq(tu_field_num(line, "ended"), 1, "child: %s", line);
	cr_assert(tu_wait_until(connected, &one, 10000));
	tu_kill(&p, SIGKILL); /* the service dies; its child lives on */
	cr_assert(tu_wait_until(disconnected, &one, 20000),
		  "no disconnect while the forked child lives");
	kill((pid_t)child, SIGKILL);
	fltport_server_destroy(srv);
}

/* The same for a filter: it forks a child that never execs, then dies.
 * Its clients see the disconnect at once, and the name is free (nobody
 * listens on it any more). */
Test(regress, forked_child_does_not_keep_the_port, .timeout = 120)
{
	const char *name;
	char line[256];
	struct tu_proc p;
	fltport_conn *c;
	long child;
	int rc;

	tu_private_dir();
	name = tu_port_name("forkf");
	p = tu_spawn("fp_fork_peer", (const char *const[]){ "filter", name, NULL });
	cr_assert(tu_expect(&p, "LISTENING", line, sizeof(line), 20000));
	c = connect_ok(name);
	cr_assert(tu_expect(&p, "CHILD ", line, sizeof(line), 20000), "no CHILD line");
	child = tu_field_num(line, "pid");
	cr_assert_eq(tu_field_num(line, "send"), -ENOTCONN, "child: %s", line);
	tu_kill(&p, SIGKILL); /* the filter dies; its child lives on */
	cr_assert(tu_wait_until(conn_ended, c, 20000),
		  "the client never saw the filter die while its forked child lives");
	rc = fltport_connect(name, NULL, 0, 0, 2 * SEC, &c, NULL);
	cr_assert_eq(rc, -ENOENT, "connect after the filter died: %s", fltport_strerror(rc));
	fltport_close(c);
	kill((pid_t)child, SIGKILL);
}

static atomic_int reject_next;

static int on_connect_maybe_reject(fltport_client *c, void *sc, const void *ctx, size_t len,
				   const struct fltport_peer *peer, void **cookie, uint32_t *status)
{
	if (atomic_exchange(&reject_next, 0)) {
		*status = 0xC0000022u;
		return -1;
	}
	return on_connect(c, sc, ctx, len, peer, cookie, status);
}

/* Found by the scanner's tests: a refused connection gave its
 * max_connections slot back only after the client had its answer, so a
 * client connecting again at once was told -EUSERS. */
Test(regress, refused_connect_frees_its_slot_first, .timeout = 120)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect_maybe_reject,
		.on_disconnect = on_disconnect,
		.max_connections = 1,
	};
	const char *name;
	fltport_server *srv = start_cfg(&name, &cfg);

	for (int i = 0; i < tu_scaled(200, 20); i++) {
		fltport_conn *c;
		uint32_t status = 0;
		int rc, want = i + 1;

		atomic_store(&reject_next, 1);
		rc = fltport_connect(name, NULL, 0, 0, 10 * SEC, &c, &status);
		cr_assert_eq(rc, -ECONNREFUSED, "round %d", i);
		rc = fltport_connect(name, NULL, 0, 0, 10 * SEC, &c, NULL);
		cr_assert_eq(rc, 0, "round %d: %s", i, fltport_strerror(rc));
		fltport_close(c);
		cr_assert(tu_wait_until(disconnected, &want, 10000));
	}
	fltport_server_destroy(srv);
}
