/*
 * A completion port's waiter reads its port itself (issue 9, part 1):
 * GetQueuedCompletionStatus on a completion port with one associated
 * filter port, and no packet queued, reads that port's connection
 * (fltport_run_completions), so an overlapped FilterGetMessage completes on
 * the waiting thread: one wake-up per message, not the receive thread's
 * and then the waiter's.  What must still hold, as on Windows: a packet
 * posted by another thread, CloseHandle of the completion port or of the
 * port, and the wait's timeout all end the wait; every message completes
 * exactly one read, with several waiters too.  And the native call itself.
 *
 * Who reads is observed (/proc/self/task/TID/syscall: poll() on the
 * socket, not futex() on a condition variable), never timed.  The filter
 * side is the native API in this process.  Also built plain for TSan.
 */
#ifdef FP_PLAIN
#include "plain_criterion.h"
#else
#include <criterion/criterion.h>
#endif

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "testutil.h"

#include <fltport/port.h>
#include <windows.h>
#include <fltuser.h>

#define SEC ((int64_t)1000000000)
#define NREADS 4

static fltport_client *_Atomic current;
static atomic_int nconnect;

static int on_connect(fltport_client *c, void *sc, const void *ctx, size_t len,
		      const struct fltport_peer *peer, void **cookie, uint32_t *status)
{
	*cookie = c;
	atomic_store(&current, c);
	atomic_fetch_add(&nconnect, 1);
	return 0;
}

static void on_disconnect(void *cookie)
{
	fltport_client *expect = cookie;

	atomic_compare_exchange_strong(&current, &expect, NULL);
	fltport_client_close(cookie);
}

static bool has_client(void *arg)
{
	(void)arg;
	return atomic_load(&current) != NULL;
}

static fltport_server *start(const char **name)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.max_connections = 4,
		.access = { .mode = FLTPORT_ACCESS_EVERYONE },
	};
	fltport_server *srv;

	tu_private_dir();
	*name = tu_port_name("iocp");
	atomic_store(&current, NULL);
	cr_assert_eq(fltport_server_create(*name, &cfg, &srv), 0);
	return srv;
}

/* ---- the Windows side ---- */

struct win {
	HANDLE port, iocp;
	struct {
		FILTER_MESSAGE_HEADER h;
		unsigned char body[64];
	} buf[NREADS];
	OVERLAPPED ov[NREADS];
};

static void post_read(struct win *w, int i)
{
	HRESULT hr;

	memset(&w->ov[i], 0, sizeof(w->ov[i]));
	hr = FilterGetMessage(w->port, &w->buf[i].h, sizeof(w->buf[i]), &w->ov[i]);
	cr_assert_eq(hr, HRESULT_FROM_WIN32(ERROR_IO_PENDING), "read %d: 0x%08X", i, (unsigned)hr);
}

static void win_open(struct win *w, const char *name)
{
	WCHAR wname[128];
	HRESULT hr;

	swprintf(wname, 128, L"\\%s", name);
	hr = FilterConnectCommunicationPort(wname, 0, NULL, 0, NULL, &w->port);
	cr_assert_eq(hr, S_OK, "connect 0x%08X", (unsigned)hr);
	cr_assert(tu_wait_until(has_client, NULL, 10000));
	w->iocp = CreateIoCompletionPort(w->port, NULL, 7, 0);
	cr_assert_not_null(w->iocp);
	for (int i = 0; i < NREADS; i++)
		post_read(w, i);
}

static void send_one(unsigned v)
{
	int rc = fltport_send(atomic_load(&current), &v, sizeof(v), NULL, 0, NULL, NULL, NULL,
			      10 * SEC);

	cr_assert_eq(rc, 0, "send %u: %s", v, fltport_strerror(rc));
}

/* A thread in GetQueuedCompletionStatus. */
struct gq {
	struct win *w;
	DWORD ms;
	atomic_int tid;
	BOOL ok;
	DWORD bytes, err;
	ULONG_PTR key;
	LPOVERLAPPED ov;
};

static void *gq_main(void *arg)
{
	struct gq *g = arg;

	atomic_store(&g->tid, (int)syscall(SYS_gettid));
	g->ok = GetQueuedCompletionStatus(g->w->iocp, &g->bytes, &g->key, &g->ov, g->ms);
	g->err = g->ok ? 0 : GetLastError();
	return NULL;
}

static void join_bounded(pthread_t t, const char *what)
{
	struct timespec bound;

	clock_gettime(CLOCK_REALTIME, &bound);
	bound.tv_sec += 30;
	cr_assert_eq(pthread_timedjoin_np(t, NULL, &bound), 0, "%s", what);
}

/* In a wait that reads the port: poll() as the reader-role holder, or
 * epoll_wait() parked (client.c). */
static bool in_poll(void *arg)
{
	int tid = atomic_load((atomic_int *)arg);
	long nr = tid > 0 ? tu_task_syscall(tid) : -1;

	if (nr == SYS_futex) /* on the rings: a futex wait on a ring's word */
		return tu_task_in_ring_wait(tid);
#ifdef SYS_poll
	if (nr == SYS_poll)
		return true;
#endif
#ifdef SYS_epoll_wait
	if (nr == SYS_epoll_wait) /* parked on the socket transport */
		return true;
#endif
	return nr == SYS_ppoll || nr == SYS_epoll_pwait || nr == SYS_epoll_pwait2;
}

/* A thread in GetQueuedCompletionStatus(INFINITE), once it reads the port. */
static void waiter_start(struct gq *g, struct win *w, pthread_t *t)
{
	memset(g, 0, sizeof(*g));
	g->w = w;
	g->ms = INFINITE;
	cr_assert_eq(pthread_create(t, NULL, gq_main, g), 0);
	cr_assert(tu_wait_until(in_poll, &g->tid, 10000),
		  "the waiter does not read the port (system call %ld)",
		  tu_task_syscall(atomic_load(&g->tid)));
}

static void win_close(struct win *w)
{
	if (w->port)
		CloseHandle(w->port);
	if (w->iocp)
		CloseHandle(w->iocp);
}

/* The waiter reads the port itself, and the message completes its read. */
Test(iocp, the_waiting_thread_reads_the_port, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	struct win w = { 0 };
	struct gq g;
	pthread_t t;
	int idx;

	win_open(&w, name);
	for (unsigned round = 0; round < 20; round++) {
		waiter_start(&g, &w, &t);
		send_one(round);
		join_bounded(t, "the message did not end the wait");
		cr_assert(g.ok, "round %u: error %lu", round, (unsigned long)g.err);
		cr_assert_eq(g.key, 7);
		idx = (int)(g.ov - w.ov);
		cr_assert(idx >= 0 && idx < NREADS);
		cr_assert_eq(g.bytes, sizeof(FILTER_MESSAGE_HEADER) + sizeof(unsigned));
		cr_assert_eq(memcmp(w.buf[idx].body, &round, sizeof(round)), 0);
		post_read(&w, idx);
	}
	win_close(&w);
	fltport_server_destroy(srv);
}

/* A packet posted by another thread ends a reading waiter's wait. */
Test(iocp, a_posted_packet_wakes_a_reading_waiter, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	struct win w = { 0 };
	struct gq g;
	OVERLAPPED mine;
	pthread_t t;

	win_open(&w, name);
	waiter_start(&g, &w, &t);
	cr_assert(PostQueuedCompletionStatus(w.iocp, 5, 77, &mine));
	join_bounded(t, "PostQueuedCompletionStatus did not wake the waiter");
	cr_assert(g.ok);
	cr_assert_eq(g.key, 77);
	cr_assert_eq(g.bytes, 5);
	cr_assert_eq(g.ov, &mine);
	win_close(&w);
	fltport_server_destroy(srv);
}

/* The wait's own timeout, while reading: never early. */
Test(iocp, a_reading_waiter_times_out, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	struct win w = { 0 };
	struct gq g = { .w = &w, .ms = 300 };
	int64_t t0;
	pthread_t t;

	win_open(&w, name);
	t0 = tu_now_ms();
	cr_assert_eq(pthread_create(&t, NULL, gq_main, &g), 0);
	join_bounded(t, "the timeout did not end the wait");
	cr_assert_not(g.ok);
	cr_assert_eq(g.err, WAIT_TIMEOUT);
	cr_assert_null(g.ov);
	cr_assert_geq(tu_now_ms() - t0, 300);
	win_close(&w);
	fltport_server_destroy(srv);
}

/* CloseHandle of the port: its pending reads complete as aborted, through
 * the waiter that was reading it. */
Test(iocp, closing_the_port_aborts_its_reads, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	struct win w = { 0 };
	struct gq g;
	pthread_t t;

	win_open(&w, name);
	waiter_start(&g, &w, &t);
	CloseHandle(w.port);
	w.port = NULL;
	join_bounded(t, "CloseHandle(port) did not end the wait");
	cr_assert_not(g.ok);
	cr_assert_eq(g.err, ERROR_OPERATION_ABORTED, "error %lu", (unsigned long)g.err);
	cr_assert_not_null(g.ov);
	for (int i = 1; i < NREADS; i++) {
		DWORD bytes;
		ULONG_PTR key;
		LPOVERLAPPED ov;

		cr_assert_not(GetQueuedCompletionStatus(w.iocp, &bytes, &key, &ov, 10000));
		cr_assert_eq(GetLastError(), ERROR_OPERATION_ABORTED);
		cr_assert_not_null(ov);
	}
	win_close(&w);
	fltport_server_destroy(srv);
}

/* CloseHandle of the completion port ends a reading waiter's wait. */
Test(iocp, closing_the_completion_port_ends_the_wait, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	struct win w = { 0 };
	struct gq g;
	pthread_t t;

	win_open(&w, name);
	waiter_start(&g, &w, &t);
	CloseHandle(w.iocp);
	w.iocp = NULL;
	join_bounded(t, "CloseHandle(completion port) did not end the wait");
	cr_assert_not(g.ok);
	cr_assert_eq(g.err, ERROR_ABANDONED_WAIT_0, "error %lu", (unsigned long)g.err);
	win_close(&w);
	fltport_server_destroy(srv);
}

/* Two waiters, 300 messages: each completes exactly one read, once. */
struct loop {
	struct win *w;
	pthread_mutex_t lock;
	unsigned seen[300];
	atomic_int done;
	int err;
};

static void *loop_main(void *arg)
{
	struct loop *l = arg;

	while (atomic_load(&l->done) < 300) {
		DWORD bytes;
		ULONG_PTR key;
		LPOVERLAPPED ov;
		unsigned v;
		int idx;

		if (!GetQueuedCompletionStatus(l->w->iocp, &bytes, &key, &ov, 100)) {
			if (GetLastError() == WAIT_TIMEOUT)
				continue;
			l->err = (int)GetLastError();
			return NULL;
		}
		idx = (int)(ov - l->w->ov);
		memcpy(&v, l->w->buf[idx].body, sizeof(v));
		pthread_mutex_lock(&l->lock);
		if (v < 300)
			l->seen[v]++;
		pthread_mutex_unlock(&l->lock);
		post_read(l->w, idx);
		atomic_fetch_add(&l->done, 1);
	}
	return NULL;
}

Test(iocp, two_waiters_each_message_once, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	struct win w = { 0 };
	struct loop l = { .w = &w, .lock = PTHREAD_MUTEX_INITIALIZER };
	pthread_t t[2];

	win_open(&w, name);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, loop_main, &l), 0);
	for (unsigned v = 0; v < 300; v++)
		send_one(v);
	for (int i = 0; i < 2; i++)
		join_bounded(t[i], "the waiters did not take every message");
	cr_assert_eq(l.err, 0, "GetQueuedCompletionStatus error %d", l.err);
	for (unsigned v = 0; v < 300; v++)
		cr_assert_eq(l.seen[v], 1, "message %u completed %u reads", v, l.seen[v]);
	win_close(&w);
	fltport_server_destroy(srv);
}

/* ---- the native call ---- */

static atomic_int cb_tid, cb_count, cb_nested;

/* arg: the connection; a nested fltport_run_completions() on it must
 * refuse (it would wait for the role its own thread holds). */
static void on_get(void *arg, int err, void *buf, const struct fltport_msg *msg)
{
	(void)buf;
	(void)msg;
	if (err == 0) {
		atomic_store(&cb_tid, (int)syscall(SYS_gettid));
		atomic_fetch_add(&cb_count, 1);
		atomic_store(&cb_nested, fltport_run_completions(arg, FLTPORT_INFINITE));
	}
}

static atomic_int main_tid;
static int send_rc = -1;

static void *send_when_reading(void *arg)
{
	unsigned v = 42;

	(void)arg;
	if (tu_wait_until(in_poll, &main_tid, 10000))
		send_rc = fltport_send(atomic_load(&current), &v, sizeof(v), NULL, 0, NULL, NULL,
				       NULL, 10 * SEC);
	return NULL;
}

Test(iocp, run_completions_runs_them_on_the_calling_thread, .timeout = 120)
{
	const char *name;
	fltport_server *srv = start(&name);
	static char buf[64];
	fltport_conn *c;
	pthread_t t;
	int64_t t0;

	cr_assert_eq(fltport_connect(name, NULL, 0, 0, 10 * SEC, &c, NULL), 0);
	cr_assert(tu_wait_until(has_client, NULL, 10000));
	cr_assert_eq(fltport_run_completions(c, 100 * 1000 * 1000), -EAGAIN, "nothing posted");
	cr_assert_eq(fltport_get_async(c, buf, sizeof(buf), on_get, c, NULL), 0);
	t0 = tu_now_ms();
	cr_assert_eq(fltport_run_completions(c, 300 * 1000 * 1000), -ETIMEDOUT);
	cr_assert_geq(tu_now_ms() - t0, 300);
	fltport_wake_completions(c); /* nobody inside: the next call returns 0 */
	cr_assert_eq(fltport_run_completions(c, 10 * SEC), 0);
	/* The message is sent once this thread reads the connection. */
	atomic_store(&main_tid, (int)syscall(SYS_gettid));
	cr_assert_eq(pthread_create(&t, NULL, send_when_reading, NULL), 0);
	cr_assert_eq(fltport_run_completions(c, 10 * SEC), 1);
	pthread_join(t, NULL);
	cr_assert_eq(send_rc, 0, "the message was not sent");
	cr_assert_eq(atomic_load(&cb_count), 1);
	cr_assert_eq(atomic_load(&cb_tid), (int)syscall(SYS_gettid),
		     "the callback ran on another thread");
	cr_assert_eq(atomic_load(&cb_nested), -EDEADLK, "a nested call: %d",
		     atomic_load(&cb_nested));
	cr_assert_eq(fltport_get_async(c, buf, sizeof(buf), on_get, c, NULL), 0);
	fltport_shutdown(c);
	cr_assert_eq(fltport_run_completions(c, 10 * SEC), -ECANCELED);
	fltport_close(c);
	fltport_server_destroy(srv);
}
