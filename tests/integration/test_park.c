/*
 * One system call per direction on the socket transport: the filter side's
 * parked pool thread (server.c, "Parking") and the user side's requester
 * reading its response in recvmsg() (client.c, FP_BLOCK_SLICE_NS).
 *
 * What must hold, on both transports (on the rings nothing parks, and the
 * same assertions hold): a thread waiting on one connection holds up
 * neither the other connections nor a new one, even with every callback
 * slot busy; no request is lost when it arrives just as a parked thread
 * gives up its connection; a requester blocked in recvmsg() wakes when the
 * connection is shut down and times out at its own deadline.  Which thread
 * parks is observed (/proc/self/task/TID/syscall), never timed.  Both ends
 * run in this process over real sockets.
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fltport/port.h"
#include "testutil.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* ---- a server port in this process: one callback slot ---- */

static sem_t blk_entered, blk_release;
static atomic_int nconnected;

static int on_connect(fltport_client *c, void *sc, const void *ctx, size_t len,
		      const struct fltport_peer *peer, void **cookie, uint32_t *status)
{
	*cookie = c;
	atomic_fetch_add(&nconnected, 1);
	return 0;
}

static void on_disconnect(void *cookie)
{
	fltport_client_close(cookie);
}

/* Echoes the request; "block" waits until the test (or a "release"
 * request) lets it go; "back" first sends a message to its own client and
 * waits for the reply (a 5000-byte one: it comes as a frame, not through
 * the state page). */
static uint32_t on_message(void *cookie, const struct fltport_request *req, void *out, size_t cap,
			   size_t *out_len)
{
	size_t n = req->in_len < cap ? req->in_len : cap;

	if (req->in_len == 5 && memcmp(req->in, "block", 5) == 0) {
		sem_post(&blk_entered);
		sem_wait(&blk_release);
	}
	if (req->in_len == 7 && memcmp(req->in, "release", 7) == 0)
		sem_post(&blk_release);
	if (req->in_len == 4 && memcmp(req->in, "back", 4) == 0) {
		static __thread char reply[8192];
		size_t rlen = sizeof(reply);
		uint32_t st = 0;
		int rc = fltport_send(cookie, "q", 1, NULL, 0, reply, &rlen, &st, FLTPORT_INFINITE);

		if (rc != 0 || rlen != 5000)
			return 99;
	}
	memcpy(out, req->in, n);
	*out_len = n;
	return 7;
}

static fltport_server *start_n(const char **name, unsigned workers)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message,
		.max_connections = 8,
		.workers = workers,
	};
	fltport_server *srv;

	tu_private_dir();
	*name = tu_port_name("park");
	atomic_store(&nconnected, 0);
	sem_init(&blk_entered, 0, 0);
	sem_init(&blk_release, 0, 0);
	cr_assert_eq(fltport_server_create(*name, &cfg, &srv), 0);
	return srv;
}

static fltport_server *start(const char **name)
{
	return start_n(name, 1);
}

static fltport_conn *connect_to(const char *name)
{
	fltport_conn *c;
	int rc = fltport_connect(name, NULL, 0, 0, 10 * SEC, &c, NULL);

	cr_assert_eq(rc, 0, "fltport_connect: %s", fltport_strerror(rc));
	return c;
}

/* One request, its echo checked. */
static int echo(fltport_conn *c, const char *what, int64_t timeout_ns)
{
	char out[64];
	size_t len = 0, n = strlen(what);
	uint32_t status = 0;
	int rc = fltport_request(c, what, n, NULL, 0, out, sizeof(out), &len, &status, timeout_ns);

	if (rc)
		return rc;
	return len == n && memcmp(out, what, n) == 0 && status == 7 ? 0 : -EBADMSG;
}

static bool on_rings(void)
{
	const char *t = getenv("FLTPORT_TRANSPORT");

	return t && strcmp(t, "shm") == 0;
}

/* ---- which system call a thread sleeps in ---- */

/* A thread of this process other than `not` sleeping in recvmsg(): with
 * no requester reading, the filter side's parked pool thread. */
static atomic_int not_tid;

static bool someone_parked(void *arg)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	bool found = false;

	(void)arg;
	if (!d)
		return false;
	while (!found && (e = readdir(d)) != NULL) {
		int tid = atoi(e->d_name);

		if (tid > 0 && tid != atomic_load(&not_tid) && tu_task_syscall(tid) == SYS_recvmsg)
			found = true;
	}
	closedir(d);
	return found;
}

/* ---- a requester that keeps connection A busy ---- */

struct loop_arg {
	fltport_conn *c;
	atomic_bool stop;
	atomic_int tid;
	atomic_long done;
	int rc;
};

static void *loop_main(void *arg)
{
	struct loop_arg *a = arg;

	atomic_store(&a->tid, (int)syscall(SYS_gettid));
	while (!atomic_load(&a->stop)) {
		a->rc = echo(a->c, "a", 10 * SEC);
		if (a->rc)
			break;
		atomic_fetch_add(&a->done, 1);
	}
	return NULL;
}

static bool loop_going(void *arg)
{
	return atomic_load(&((struct loop_arg *)arg)->done) >= 100;
}

/* With a pool thread parked on a busy connection, another connection's
 * requests are all answered. */
Test(park, a_parked_thread_does_not_hold_up_other_connections, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	struct loop_arg a = { .c = connect_to(name) };
	fltport_conn *b = connect_to(name);
	pthread_t ta;

	cr_assert_eq(pthread_create(&ta, NULL, loop_main, &a), 0);
	cr_assert(tu_wait_until(loop_going, &a, 20000), "connection A's requests stalled");
	if (!on_rings()) {
		/* A's requester reads its responses in recvmsg() too. */
		atomic_store(&not_tid, atomic_load(&a.tid));
		cr_assert(tu_wait_until(someone_parked, NULL, 10000),
			  "no pool thread waits in recvmsg() on the busy connection");
	}
	for (int i = 0; i < 200; i++) {
		int rc = echo(b, "b", 10 * SEC);

		cr_assert_eq(rc, 0, "request %d on B: %s", i, fltport_strerror(rc));
	}
	atomic_store(&a.stop, true);
	pthread_join(ta, NULL);
	cr_assert_eq(a.rc, 0, "A: %s", fltport_strerror(a.rc));
	fltport_close(a.c);
	fltport_close(b);
	fltport_server_destroy(srv);
}

struct req_arg {
	fltport_conn *c;
	const char *what;
	int64_t timeout_ns;
	atomic_int tid;
	int rc;
};

static void *req_main(void *arg)
{
	struct req_arg *r = arg;

	atomic_store(&r->tid, (int)syscall(SYS_gettid));
	r->rc = echo(r->c, r->what, r->timeout_ns);
	return NULL;
}

static void sem_wait_bounded(sem_t *s, const char *what)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	cr_assert_eq(sem_timedwait(s, &ts), 0, "%s", what);
}

/* One callback slot, taken by a blocked callback just after the other pool
 * thread parked on an idle connection: a new connection still gets
 * through (the parked thread gives its connection up within its slice; one
 * parked for good would leave nobody to accept it), and its requests are
 * answered once the slot is free. */
Test(park, a_connect_gets_through_while_the_only_slot_is_busy, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	fltport_conn *a = connect_to(name), *c;
	struct req_arg blk = { .c = connect_to(name), .what = "block", .timeout_ns = 60 * SEC };
	pthread_t tb;

	cr_assert_eq(echo(a, "a", 10 * SEC), 0); /* a pool thread parks on A */
	cr_assert_eq(pthread_create(&tb, NULL, req_main, &blk), 0);
	sem_wait_bounded(&blk_entered, "the blocking request never reached its callback");
	c = connect_to(name);
	cr_assert(atomic_load(&nconnected) == 3);
	sem_post(&blk_release);
	pthread_join(tb, NULL);
	cr_assert_eq(blk.rc, 0, "blocked request: %s", fltport_strerror(blk.rc));
	cr_assert_eq(echo(c, "c", 10 * SEC), 0);
	cr_assert_eq(echo(a, "a", 10 * SEC), 0);
	fltport_close(a);
	fltport_close(blk.c);
	fltport_close(c);
	fltport_server_destroy(srv);
}

/* Requests whose gaps straddle the parked thread's slice (10 ms): one that
 * arrives as the connection goes back to the epoll set is still read. */
Test(park, requests_at_the_slice_edge_are_all_answered, .timeout = 120)
{
	static const int gap_us[] = { 0, 5000, 9000, 9700, 10000, 10300, 11000, 15000, 0, 0 };
	const char *name;
	fltport_server *srv = start(&name);
	fltport_conn *c = connect_to(name);

	for (int i = 0; i < 300; i++) {
		char what[16];
		int rc;

		snprintf(what, sizeof(what), "r%d", i);
		rc = echo(c, what, 10 * SEC);
		cr_assert_eq(rc, 0, "request %d: %s", i, fltport_strerror(rc));
		usleep((useconds_t)gap_us[i % 10]);
	}
	fltport_close(c);
	fltport_server_destroy(srv);
}

static bool blocked_reading(void *arg)
{
	int tid = atomic_load((atomic_int *)arg);
	long nr = tu_task_syscall(tid);

	if (nr == SYS_futex) /* on the rings */
		return tu_task_in_ring_wait(tid);
	return nr == SYS_recvmsg || nr == SYS_poll || nr == SYS_ppoll;
}

/* A requester waiting for its response in recvmsg() (a 600 s timeout: far
 * beyond a slice) wakes when the connection is shut down. */
Test(park, a_requester_in_recvmsg_wakes_on_shutdown, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	struct req_arg r = { .c = connect_to(name), .what = "block", .timeout_ns = 600 * SEC };
	struct timespec bound;
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, req_main, &r), 0);
	sem_wait_bounded(&blk_entered, "the request never reached its callback");
	cr_assert(tu_wait_until(blocked_reading, &r.tid, 10000),
		  "the requester does not read its own response");
	if (!on_rings())
		cr_assert_eq(tu_task_syscall(atomic_load(&r.tid)), SYS_recvmsg,
			     "the requester waits in poll(), not recvmsg()");
	fltport_shutdown(r.c);
	clock_gettime(CLOCK_REALTIME, &bound);
	bound.tv_sec += 30;
	cr_assert_eq(pthread_timedjoin_np(t, NULL, &bound), 0,
		     "fltport_shutdown() did not wake the requester");
	cr_assert_eq(r.rc, -ENOTCONN, "request: %s", fltport_strerror(r.rc));
	sem_post(&blk_release);
	fltport_close(r.c);
	fltport_server_destroy(srv);
}

/* A requester that reads in slices still ends at its own deadline: never
 * before it, and not a slice late (bound generous: 10 s). */
Test(park, a_requester_reading_in_slices_times_out_at_its_deadline, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	fltport_conn *c = connect_to(name);
	int64_t t0 = tu_now_ns(), took;
	int rc;

	rc = echo(c, "block", 1500 * MS);
	took = tu_now_ns() - t0;
	cr_assert_eq(rc, -ETIMEDOUT, "request: %s", fltport_strerror(rc));
	cr_assert_geq(took, 1500 * MS, "ended %lld ns early", (long long)(1500 * MS - took));
	cr_assert_lt(took, 10 * SEC, "ended %lld ms late", (long long)(took / MS - 1500));
	sem_post(&blk_release);
	cr_assert_eq(echo(c, "after", 10 * SEC), 0);
	fltport_close(c);
	fltport_server_destroy(srv);
}

/* The user side's answers to "back": a 5000-byte reply. */
static void *answer_main(void *arg)
{
	fltport_conn *c = arg;
	static char big[5000];
	char buf[64];
	struct fltport_msg m;

	while (fltport_get(c, buf, sizeof(buf), &m, 30 * SEC) == 0)
		if (fltport_reply(c, m.id, 0, big, sizeof(big)) != 0)
			break;
	return NULL;
}

/* A callback of the parked thread sends to its own client and waits
 * (FLTPORT_INFINITE) for a reply that comes as a frame on that very
 * connection: the connection must be read meanwhile. */
Test(park, a_parked_callback_gets_its_own_clients_reply, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	fltport_conn *c = connect_to(name);
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, answer_main, c), 0);
	for (int i = 0; i < 20; i++) /* from the second on, a parked thread runs it */
		cr_assert_eq(echo(c, "back", 30 * SEC), 0, "request %d", i);
	fltport_shutdown(c);
	pthread_join(t, NULL);
	fltport_close(c);
	fltport_server_destroy(srv);
}

/* Two requests of one connection run concurrently (port.h): the first's
 * callback waits for the second's, which a parked thread running the
 * first must not keep unread. */
Test(park, requests_of_one_connection_run_concurrently, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start_n(&name, 2);
	fltport_conn *c = connect_to(name);
	struct req_arg blk = { .c = c, .what = "block", .timeout_ns = 60 * SEC };
	pthread_t tb;

	for (int round = 0; round < 20; round++) {
		cr_assert_eq(echo(c, "warm", 10 * SEC), 0); /* a thread parks on c */
		cr_assert_eq(pthread_create(&tb, NULL, req_main, &blk), 0);
		sem_wait_bounded(&blk_entered, "the blocking request never reached its callback");
		cr_assert_eq(echo(c, "release", 30 * SEC), 0, "round %d: the second request",
			     round);
		pthread_join(tb, NULL);
		cr_assert_eq(blk.rc, 0, "round %d: %s", round, fltport_strerror(blk.rc));
	}
	fltport_close(c);
	fltport_server_destroy(srv);
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* A requester in recvmsg() that keeps getting signals (a handler with
 * SA_RESTART: a socket read with a timeout still ends with EINTR) still
 * ends at its deadline: a restarted read would begin a new slice each
 * time and never see it. */
Test(park, a_requester_getting_signals_still_times_out, .timeout = 120)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	const char *name;
	fltport_server *srv = start(&name);
	struct req_arg r = { .c = connect_to(name), .what = "block", .timeout_ns = 2 * SEC };
	int64_t t0 = tu_now_ns();
	pthread_t t;

	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	cr_assert_eq(pthread_create(&t, NULL, req_main, &r), 0);
	/* A signal every 20 ms until the request ends (20 s at most). */
	while (pthread_tryjoin_np(t, NULL) != 0) {
		cr_assert_lt(tu_now_ns() - t0, 20 * SEC, "the request never reached its deadline");
		pthread_kill(t, SIGUSR1);
		usleep(20000);
	}
	cr_assert_eq(r.rc, -ETIMEDOUT, "request: %s", fltport_strerror(r.rc));
	cr_assert_geq(tu_now_ns() - t0, 2 * SEC);
	sem_post(&blk_release);
	fltport_close(r.c);
	fltport_server_destroy(srv);
}
