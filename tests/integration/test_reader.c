/*
 * Who reads a connection's socket on the user side (client.c, "Who
 * reads"): a thread blocked in fltport_get() or fltport_request() reads
 * for itself, passes the role on when it leaves, is woken by
 * fltport_cancel_gets() while it reads, and never runs an async get's
 * callback itself; an idle connection still notices its server's end.
 *
 * Which thread reads is observed, not timed: a thread reading the socket
 * sleeps in poll() (a requester on the socket transport: in recvmsg(),
 * test_park.c; on the rings: in a futex wait on its ring's word), a thread
 * waiting for another to read sleeps in futex() on a word of its own
 * (/proc/self/task/TID/syscall).  Both ends run in this process over real
 * sockets.
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fltport/port.h"
#include "testutil.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* ---- a server port in this process ---- */

static fltport_client *_Atomic client;
static sem_t req_entered, req_release;

static int on_connect(fltport_client *c, void *sc, const void *ctx, size_t len,
		      const struct fltport_peer *peer, void **cookie, uint32_t *status)
{
	*cookie = c;
	atomic_store(&client, c);
	return 0;
}

static void on_disconnect(void *cookie)
{
	fltport_client_close(cookie);
}

/* Requests wait until the test lets them go. */
static uint32_t on_message(void *cookie, const struct fltport_request *req, void *out, size_t cap,
			   size_t *out_len)
{
	sem_post(&req_entered);
	sem_wait(&req_release);
	*out_len = 0;
	return 3;
}

static bool has_client(void *arg)
{
	(void)arg;
	return atomic_load(&client) != NULL;
}

static fltport_server *start(fltport_conn **c)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message,
		.max_connections = 4,
	};
	const char *name;
	fltport_server *srv;
	int rc;

	tu_private_dir();
	name = tu_port_name("reader");
	atomic_store(&client, NULL);
	sem_init(&req_entered, 0, 0);
	sem_init(&req_release, 0, 0);
	cr_assert_eq(fltport_server_create(name, &cfg, &srv), 0);
	rc = fltport_connect(name, NULL, 0, 0, 10 * SEC, c, NULL);
	cr_assert_eq(rc, 0, "fltport_connect: %s", fltport_strerror(rc));
	cr_assert(tu_wait_until(has_client, NULL, 10000));
	return srv;
}

/* ---- which system call a thread sleeps in ---- */

/* arg: the thread's tid, set by the thread itself once it runs */
static long syscall_of(void *arg)
{
	int tid = atomic_load((atomic_int *)arg);

	return tid > 0 ? tu_task_syscall(tid) : -1;
}

/* Waiting for the role: a futex wait, not on a ring's word (a reader's). */
static bool in_futex(void *arg)
{
	return syscall_of(arg) == SYS_futex &&
	       !tu_task_in_ring_wait(atomic_load((atomic_int *)arg));
}

/* A reader sleeps in poll() on the socket (and the kick eventfd), or, a
 * requester on the socket transport, in recvmsg() itself, or on the rings
 * in a futex wait on a ring's word. */
static bool in_read(void *arg)
{
	long nr = syscall_of(arg);

	if (nr == SYS_futex)
		return tu_task_in_ring_wait(atomic_load((atomic_int *)arg));

#ifdef SYS_poll
	if (nr == SYS_poll)
		return true;
#endif
	return nr == SYS_ppoll || nr == SYS_recvmsg;
}

/* Wait until the thread sleeps reading the socket (in_read) or in futex()
 * (it waits for a reader). */
static bool wait_reading(atomic_int *tid)
{
	return tu_wait_until(in_read, tid, 10000);
}

static bool wait_waiting(atomic_int *tid)
{
	return tu_wait_until(in_futex, tid, 10000);
}

/* ---- threads ---- */

struct get_arg {
	fltport_conn *c;
	int64_t timeout_ns;
	atomic_int tid;
	int rc;
	char buf[64];
	struct fltport_msg msg;
};

static void *get_main(void *arg)
{
	struct get_arg *g = arg;

	atomic_store(&g->tid, (int)syscall(SYS_gettid));
	g->rc = fltport_get(g->c, g->buf, sizeof(g->buf), &g->msg, g->timeout_ns);
	return NULL;
}

struct req_arg {
	fltport_conn *c;
	atomic_int tid;
	int rc;
	uint32_t status;
};

static void *req_main(void *arg)
{
	struct req_arg *r = arg;

	atomic_store(&r->tid, (int)syscall(SYS_gettid));
	r->rc = fltport_request(r->c, "q", 1, NULL, 0, NULL, 0, NULL, &r->status, 30 * SEC);
	return NULL;
}

/* A blocked get reads the socket itself; when it times out, a get still
 * waiting takes over the reading and gets the next message. */
Test(reader, role_passes_on_when_the_reader_times_out, .timeout = 60)
{
	fltport_conn *c;
	fltport_server *srv = start(&c);
	struct get_arg a = { .c = c, .timeout_ns = 1 * SEC },
		       b = { .c = c, .timeout_ns = 30 * SEC };
	pthread_t ta, tb;
	int rc;

	cr_assert_eq(pthread_create(&ta, NULL, get_main, &a), 0);
	cr_assert(wait_reading(&a.tid), "the only blocked get does not read the socket itself");
	cr_assert_eq(pthread_create(&tb, NULL, get_main, &b), 0);
	cr_assert(wait_waiting(&b.tid), "a second get does not wait for the first to read");
	pthread_join(ta, NULL);
	cr_assert_eq(a.rc, -ETIMEDOUT, "first get: %s", fltport_strerror(a.rc));
	cr_assert(wait_reading(&b.tid), "the reading did not pass to the waiting get");
	rc = fltport_send(atomic_load(&client), "next", 4, NULL, 0, NULL, NULL, NULL, 10 * SEC);
	cr_assert_eq(rc, 0, "send: %s", fltport_strerror(rc));
	pthread_join(tb, NULL);
	cr_assert_eq(b.rc, 0, "second get: %s", fltport_strerror(b.rc));
	cr_assert_eq(b.msg.len, 4);
	cr_assert_eq(memcmp(b.buf, "next", 4), 0);
	fltport_close(c);
	fltport_server_destroy(srv);
}

/* fltport_cancel_gets() wakes a get that is reading the socket. */
Test(reader, cancel_gets_wakes_the_reading_get, .timeout = 60)
{
	fltport_conn *c;
	fltport_server *srv = start(&c);
	struct get_arg a = { .c = c, .timeout_ns = 600 * SEC };
	struct timespec bound;
	pthread_t ta;

	cr_assert_eq(pthread_create(&ta, NULL, get_main, &a), 0);
	cr_assert(wait_reading(&a.tid), "the blocked get does not read the socket itself");
	cr_assert_eq(fltport_cancel_gets(c), 1);
	/* A generous bound: the get must not sit out its own deadline. */
	clock_gettime(CLOCK_REALTIME, &bound);
	bound.tv_sec += 30;
	cr_assert_eq(pthread_timedjoin_np(ta, NULL, &bound), 0,
		     "fltport_cancel_gets() did not wake the get reading the socket");
	cr_assert_eq(a.rc, -ECANCELED, "get: %s", fltport_strerror(a.rc));
	fltport_close(c);
	fltport_server_destroy(srv);
}

/* ---- an async get completed by a message that a requester read ---- */

static atomic_int cb_tid, cb_err;
static sem_t cb_done;

static void on_get(void *arg, int err, void *buf, const struct fltport_msg *msg)
{
	(void)arg;
	(void)buf;
	(void)msg;
	atomic_store(&cb_err, err);
	atomic_store(&cb_tid, (int)syscall(SYS_gettid));
	sem_post(&cb_done);
}

/* The callback may close the connection, which waits for the calls inside
 * it to leave: it must not run on a thread inside fltport_request(). */
Test(reader, async_completion_never_runs_on_a_reading_caller, .timeout = 60)
{
	fltport_conn *c;
	fltport_server *srv = start(&c);
	struct req_arg r = { .c = c };
	static char buf[64];
	pthread_t tr;
	int rc;

	sem_init(&cb_done, 0, 0);
	atomic_store(&cb_tid, 0);
	cr_assert_eq(pthread_create(&tr, NULL, req_main, &r), 0);
	cr_assert_eq(sem_wait(&req_entered), 0); /* the callback holds the response back */
	cr_assert(wait_reading(&r.tid), "the requester does not read its own response");
	cr_assert_eq(fltport_get_async(c, buf, sizeof(buf), on_get, NULL, NULL), 0);
	/* The requester reads this message and completes the posted get. */
	rc = fltport_send(atomic_load(&client), "async", 5, NULL, 0, NULL, NULL, NULL, 10 * SEC);
	cr_assert_eq(rc, 0, "send: %s", fltport_strerror(rc));
	cr_assert_eq(sem_wait(&cb_done), 0);
	cr_assert_eq(atomic_load(&cb_err), 0);
	cr_assert_neq(atomic_load(&cb_tid), atomic_load(&r.tid),
		      "the async get's callback ran on the requester's thread");
	cr_assert_neq(atomic_load(&cb_tid), (int)syscall(SYS_gettid));
	sem_post(&req_release);
	pthread_join(tr, NULL);
	cr_assert_eq(r.rc, 0, "request: %s", fltport_strerror(r.rc));
	cr_assert_eq(r.status, 3);
	fltport_close(c);
	fltport_server_destroy(srv);
}

static bool conn_ended(void *arg)
{
	return fltport_conn_ended(arg);
}

/* Nobody reads an idle connection, yet it notices the server's end. */
Test(reader, idle_connection_notices_the_end, .timeout = 60)
{
	fltport_conn *c;
	fltport_server *srv = start(&c);
	struct fltport_msg m;
	char buf[8];

	cr_assert_not(fltport_conn_ended(c));
	fltport_server_destroy(srv);
	cr_assert(tu_wait_until(conn_ended, c, 10000), "the end went unnoticed");
	cr_assert_eq(fltport_get(c, buf, sizeof(buf), &m, FLTPORT_POLL), -ENOTCONN);
	fltport_close(c);
}

/* The user side's socket of this process's only connection: the socket
 * whose peer has a path (the port's). */
static int client_socket(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;

	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL) {
		struct sockaddr_un sa;
		socklen_t len = sizeof(sa);
		struct stat st;
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(d) || fstat(fd, &st) != 0 ||
		    !S_ISSOCK(st.st_mode))
			continue;
		memset(&sa, 0, sizeof(sa));
		if (getpeername(fd, (struct sockaddr *)&sa, &len) == 0 &&
		    sa.sun_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path) &&
		    sa.sun_path[0] != '\0')
			found = fd;
	}
	closedir(d);
	return found;
}

static bool socket_drained(void *arg)
{
	int n = -1;

	return ioctl(*(int *)arg, FIONREAD, &n) == 0 && n == 0;
}

/* After a blocking call has come and gone, frames sent to the idle
 * connection are still read off its socket (the receive thread's sweep),
 * so expired messages and their memfds do not pile up there. */
Test(reader, idle_connection_is_drained_after_a_blocking_call, .timeout = 60)
{
	fltport_conn *c;
	fltport_server *srv = start(&c);
	struct fltport_msg m;
	char buf[8];
	int fd = client_socket(), rc;

	cr_assert_geq(fd, 0, "no user-side socket found");
	cr_assert_eq(fltport_get(c, buf, sizeof(buf), &m, 50 * MS), -ETIMEDOUT);
	/* Nobody takes it: it expires, its frame stays to be read. */
	rc = fltport_send(atomic_load(&client), "stale", 5, NULL, 0, NULL, NULL, NULL, 50 * MS);
	cr_assert_eq(rc, -ETIMEDOUT, "send: %s", fltport_strerror(rc));
	cr_assert(tu_wait_until(socket_drained, &fd, 10000),
		  "the idle connection's socket is never read");
	fltport_close(c);
	fltport_server_destroy(srv);
}

static bool in_recvmsg(void *arg)
{
	return syscall_of(arg) == SYS_recvmsg;
}

/* On the socket transport a get with a long deadline sleeps in recvmsg()
 * itself, as a requester does: one system call per message, as a raw
 * ping-pong, not poll() and then recvmsg().  It still ends at once for a
 * message, and within a slice (100 ms) for fltport_cancel_gets(). */
Test(reader, a_blocked_get_waits_in_recvmsg, .timeout = 60)
{
	fltport_conn *c;
	fltport_server *srv = start(&c);
	struct get_arg a = { .c = c, .timeout_ns = 600 * SEC },
		       b = { .c = c, .timeout_ns = 600 * SEC };
	const char *transport = fltport_conn_transport(c); /* a string constant */
	struct timespec bound;
	pthread_t ta, tb;
	int rc;

	if (strcmp(transport, "socket") != 0) {
		fltport_close(c);
		fltport_server_destroy(srv);
		cr_skip("the %s transport waits on its ring, not in recvmsg()", transport);
	}
	cr_assert_eq(pthread_create(&ta, NULL, get_main, &a), 0);
	cr_assert(tu_wait_until(in_recvmsg, &a.tid, 10000),
		  "a blocked get does not wait in recvmsg() (syscall %ld)", syscall_of(&a.tid));
	rc = fltport_send(atomic_load(&client), "m", 1, NULL, 0, NULL, NULL, NULL, 10 * SEC);
	cr_assert_eq(rc, 0, "send: %s", fltport_strerror(rc));
	pthread_join(ta, NULL);
	cr_assert_eq(a.rc, 0, "get: %s", fltport_strerror(a.rc));
	cr_assert_eq(a.msg.len, 1);

	cr_assert_eq(pthread_create(&tb, NULL, get_main, &b), 0);
	cr_assert(tu_wait_until(in_recvmsg, &b.tid, 10000));
	cr_assert_eq(fltport_cancel_gets(c), 1);
	clock_gettime(CLOCK_REALTIME, &bound);
	bound.tv_sec += 30; /* generous: the slice is 100 ms */
	cr_assert_eq(pthread_timedjoin_np(tb, NULL, &bound), 0,
		     "fltport_cancel_gets() did not end a get blocked in recvmsg()");
	cr_assert_eq(b.rc, -ECANCELED, "get: %s", fltport_strerror(b.rc));
	fltport_close(c);
	fltport_server_destroy(srv);
}

/* ---- several threads in fltport_run_completions() ---- */

/* Voluntary context switches of a thread of this process: one each time it
 * blocks. */
static unsigned long blocked_count(int tid)
{
	char path[64], line[128];
	unsigned long n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	f = fopen(path, "r");
	cr_assert(f, "%s", path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %lu", &n) == 1)
			break;
	fclose(f);
	return n;
}

struct pumper {
	fltport_conn *c;
	atomic_int tid;
	int rc;
};

static atomic_int pumped_tid;
static sem_t pumped;
static char pump_bufs[2][64];

/* A posted get completed on the thread that read its message: note which,
 * and post it again. */
static void on_pumped(void *arg, int err, void *buf, const struct fltport_msg *msg)
{
	(void)msg;
	if (err)
		return;
	atomic_store(&pumped_tid, (int)syscall(SYS_gettid));
	cr_assert_eq(fltport_get_async(arg, buf, sizeof(pump_bufs[0]), on_pumped, arg, NULL), 0);
	sem_post(&pumped);
}

static void *pump_main(void *arg)
{
	struct pumper *p = arg;
	int rc;

	atomic_store(&p->tid, (int)syscall(SYS_gettid));
	while ((rc = fltport_run_completions(p->c, 60 * SEC)) >= 0 || rc == -ETIMEDOUT)
		;
	p->rc = rc;
	return NULL;
}

/* Asleep in epoll_wait() on the connection (parked, client.c). */
static bool parked(void *arg)
{
	long nr = syscall_of(arg);

#ifdef SYS_epoll_wait
	if (nr == SYS_epoll_wait)
		return true;
#endif
	return nr == SYS_epoll_pwait || nr == SYS_epoll_pwait2;
}

static bool both_parked(void *arg)
{
	struct pumper *p = arg;

	return parked(&p[0].tid) && parked(&p[1].tid);
}

/* Two threads wait in fltport_run_completions() (a completion port's
 * threads): each message wakes the one that reads it and runs its
 * completion, and the other stays asleep — one wake-up per message, not
 * a second one to pass the reading on.  Counted with the threads' context
 * switches, over 20 messages. */
Test(reader, a_message_wakes_one_of_the_threads_running_completions, .timeout = 120)
{
	fltport_conn *c;
	fltport_server *srv = start(&c);
	struct pumper p[2] = { { .c = c }, { .c = c } };
	pthread_t t[2];
	unsigned woke_both = 0;

	const char *transport = fltport_conn_transport(c); /* a string constant */

	if (strcmp(transport, "socket") != 0) {
		fltport_close(c);
		fltport_server_destroy(srv);
		cr_skip("the %s transport passes the reading on (only socket threads park)",
			transport);
	}
	sem_init(&pumped, 0, 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(fltport_get_async(c, pump_bufs[i], sizeof(pump_bufs[i]), on_pumped, c,
					       NULL),
			     0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, pump_main, &p[i]), 0);
	for (int i = 0; i < 20; i++) {
		unsigned long before[2], after[2];
		int rc, who;

		cr_assert(tu_wait_until(both_parked, p, 10000),
			  "message %d: the threads do not both wait on the connection", i);
		for (int k = 0; k < 2; k++)
			before[k] = blocked_count(atomic_load(&p[k].tid));
		rc = fltport_send(atomic_load(&client), "m", 1, NULL, 0, NULL, NULL, NULL,
				  10 * SEC);
		cr_assert_eq(rc, 0, "send: %s", fltport_strerror(rc));
		cr_assert_eq(sem_wait(&pumped), 0);
		who = atomic_load(&pumped_tid) == atomic_load(&p[0].tid) ? 0 : 1;
		cr_assert_eq(atomic_load(&pumped_tid), atomic_load(&p[who].tid),
			     "the completion ran on neither thread");
		cr_assert(tu_wait_until(both_parked, p, 10000),
			  "message %d: the threads do not both wait again", i);
		for (int k = 0; k < 2; k++)
			after[k] = blocked_count(atomic_load(&p[k].tid));
		cr_assert_geq(after[who], before[who] + 1);
		if (after[!who] != before[!who])
			woke_both++;
	}
	cr_assert_eq(woke_both, 0, "%u of 20 messages also woke the thread that did not read them",
		     woke_both);
	fltport_shutdown(c);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		cr_assert(p[i].rc == -ENOTCONN || p[i].rc == -ECANCELED, "run_completions: %s",
			  fltport_strerror(p[i].rc));
	}
	fltport_close(c);
	fltport_server_destroy(srv);
}

static bool in_poll_only(void *arg)
{
	long nr = syscall_of(arg);

#ifdef SYS_poll
	if (nr == SYS_poll)
		return true;
#endif
	return nr == SYS_ppoll;
}

/* A requester on a connection where a thread is parked in
 * fltport_run_completions(): it waits for its response in poll(), which the
 * response wakes whoever else waits — not in a blocking recvmsg(), whose
 * exclusive wake-up the parked thread's epoll set would take (it then slept
 * out its slice, 100 ms, on every request: the review of the parked
 * threads).  The response arrives and the request completes. */
Test(reader, a_requester_is_woken_by_its_response_beside_a_parked_thread, .timeout = 60)
{
	fltport_conn *c;
	fltport_server *srv = start(&c);
	const char *transport = fltport_conn_transport(c); /* a string constant */
	struct pumper p = { .c = c };
	struct req_arg r = { .c = c };
	pthread_t tp, tr;

	if (strcmp(transport, "socket") != 0) {
		fltport_close(c);
		fltport_server_destroy(srv);
		cr_skip("the %s transport has no parked threads", transport);
	}
	sem_init(&pumped, 0, 0);
	cr_assert_eq(fltport_get_async(c, pump_bufs[0], sizeof(pump_bufs[0]), on_pumped, c, NULL),
		     0);
	cr_assert_eq(pthread_create(&tp, NULL, pump_main, &p), 0);
	cr_assert(tu_wait_until(parked, &p.tid, 10000), "the thread does not park");
	for (int i = 0; i < 3; i++) {
		memset(&r, 0, sizeof(r));
		r.c = c;
		cr_assert_eq(pthread_create(&tr, NULL, req_main, &r), 0);
		cr_assert_eq(sem_wait(&req_entered), 0); /* the callback holds the response */
		cr_assert(tu_wait_until(in_poll_only, &r.tid, 10000),
			  "request %d: the requester waits in system call %ld, not poll()", i,
			  syscall_of(&r.tid));
		sem_post(&req_release);
		pthread_join(tr, NULL);
		cr_assert_eq(r.rc, 0, "request %d: %s", i, fltport_strerror(r.rc));
		cr_assert_eq(r.status, 3);
	}
	fltport_shutdown(c);
	pthread_join(tp, NULL);
	fltport_close(c);
	fltport_server_destroy(srv);
}

/* Two threads in fltport_run_completions() while a third keeps waking them
 * with fltport_wake_completions() (as a completion port's other packets
 * do): a thread that leaves with a frame it was woken for unread must hand
 * it on — every one of 2,000 messages is taken, none waits for the next
 * one to come (the review of the parked threads: pass_on()). */
static atomic_int stress_got;
static atomic_bool stress_stop;

static void on_stress_get(void *arg, int err, void *buf, const struct fltport_msg *msg)
{
	(void)msg;
	if (err)
		return;
	atomic_fetch_add(&stress_got, 1);
	(void)fltport_get_async(arg, buf, sizeof(pump_bufs[0]), on_stress_get, arg, NULL);
}

static void *waker_main(void *arg)
{
	while (!atomic_load(&stress_stop)) {
		fltport_wake_completions(arg);
		sched_yield();
	}
	return NULL;
}

Test(reader, woken_threads_running_completions_lose_no_message, .timeout = 240)
{
	fltport_conn *c;
	fltport_server *srv = start(&c);
	struct pumper p[2] = { { .c = c }, { .c = c } };
	pthread_t t[2], w;
	int n = (int)tu_scaled(2000, 200);

	atomic_store(&stress_got, 0);
	atomic_store(&stress_stop, false);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(fltport_get_async(c, pump_bufs[i], sizeof(pump_bufs[i]), on_stress_get,
					       c, NULL),
			     0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, pump_main, &p[i]), 0);
	cr_assert_eq(pthread_create(&w, NULL, waker_main, c), 0);
	for (int i = 0; i < n; i++) {
		int rc = fltport_send(atomic_load(&client), "m", 1, NULL, 0, NULL, NULL, NULL,
				      10 * SEC);

		cr_assert_eq(rc, 0, "message %d of %d: %s", i, n, fltport_strerror(rc));
	}
	atomic_store(&stress_stop, true);
	pthread_join(w, NULL);
	cr_assert_eq(atomic_load(&stress_got), n);
	fltport_shutdown(c);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	fltport_close(c);
	fltport_server_destroy(srv);
}
