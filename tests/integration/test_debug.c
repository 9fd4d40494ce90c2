/*
 * Debug output never holds up a port (issue 7, defect 6).  With
 * FLTPORT_DEBUG=1 and stderr on a full pipe nobody reads, the server's I/O
 * thread used to block in fprintf on its first line, and every connect
 * after it timed out.  Here each round sends a CONNECT in a wire version
 * the server does not speak (its I/O thread logs a line and drops it), then
 * connects, makes a request and closes: every round completes at once, and
 * the lines that did not fit are counted by fltport_debug_dropped().
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/debug.h"
#include "core/frame.h"
#include "fltport/port.h"
#include "jam.h"
#include "rawwire.h"
#include "testutil.h"

#define MS ((int64_t)1000000)

static int on_connect(fltport_client *c, void *sc, const void *ctx, size_t len,
		      const struct fltport_peer *peer, void **cookie, uint32_t *status)
{
	*cookie = c;
	return 0;
}

static void on_disconnect(void *cookie)
{
	fltport_client_close(cookie);
}

static uint32_t on_message(void *cookie, const struct fltport_request *req, void *out, size_t cap,
			   size_t *out_len)
{
	return 7;
}

static void init(void)
{
	cr_assert_eq(setenv("FLTPORT_DEBUG", "1", 1), 0);
	tu_private_dir();
}

TestSuite(debug, .init = init);

/* A CONNECT the server refuses with one debug line on its I/O thread. */
static int bad_hello(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fp_hdr h = rw_hdr(FP_T_CONNECT);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -errno;
	h.version = FLTPORT_WIRE_VERSION + 1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", fltport_dir(), name);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0
		     ? -errno
		     : rw_send(fd, &h, NULL, 0, NULL, 0);
	close(fd);
	return rc;
}

/* The first failure of a round: which step, its result. */
struct outcome {
	long round;
	const char *step;
	int rc;
	int64_t max_ms; /* longest round */
};

static void rounds(const char *name, long n, struct outcome *o)
{
	for (o->round = 0; o->round < n; o->round++) {
		int64_t t0 = tu_now_ms();
		uint32_t status = 0;
		fltport_conn *c;

		o->step = "bad hello";
		if ((o->rc = bad_hello(name)) < 0)
			return;
		o->step = "connect";
		if ((o->rc = fltport_connect(name, NULL, 0, 0, 5000 * MS, &c, NULL)) < 0)
			return;
		o->step = "request";
		o->rc = fltport_request(c, "x", 1, NULL, 0, NULL, 0, NULL, &status, 5000 * MS);
		fltport_close(c);
		if (o->rc < 0)
			return;
		o->rc = status == 7 ? 0 : -EBADMSG;
		if (o->rc < 0)
			return;
		if (tu_now_ms() - t0 > o->max_ms)
			o->max_ms = tu_now_ms() - t0;
	}
	o->step = "none";
}

Test(debug, stuck_stderr_delays_no_connection, .timeout = 180)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message,
		.max_connections = 4,
	};
	long n = tu_scaled(300, 200); /* one line each: more than the buffer holds */
	struct outcome o = { 0 };
	const char *name = tu_port_name("debug");
	fltport_server *srv;
	struct tu_jam jam;
	int64_t t0, ms;

	cr_assert_eq(fltport_server_create(name, &cfg, &srv), 0);
	/* Nothing may print while stderr is stuck: record, unjam, then assert. */
	tu_jam_stderr(&jam);
	t0 = tu_now_ms();
	rounds(name, n, &o);
	ms = tu_now_ms() - t0;
	tu_unjam_stderr(&jam);

	cr_expect_eq(o.rc, 0, "round %ld of %ld: %s: %s", o.round, n, o.step, strerror(-o.rc));
	cr_expect_lt(o.max_ms, 5000, "a round took %lld ms", (long long)o.max_ms);
	cr_expect_lt(ms, 60000, "%ld rounds took %lld ms", n, (long long)ms);
	cr_expect_gt(fltport_debug_dropped(), 0, "no debug line dropped with stderr stuck");
	fltport_server_destroy(srv);
}

/* Exit with stderr stuck: the queued lines get a bounded time, then the
 * process ends anyway. */
Test(debug, exit_with_stuck_stderr_does_not_hang, .timeout = 60)
{
	struct tu_proc p = tu_spawn("fp_debug_peer", (const char *[]){ "stuck", "500", NULL });
	char line[256];
	bool exiting = tu_expect(&p, "EXITING", line, sizeof(line), 10000);
	int64_t t0 = tu_now_ms();
	int rc = tu_wait(&p, 10000); /* kills it if it hangs */
	int64_t ms = tu_now_ms() - t0;

	cr_assert(exiting, "its lines blocked the caller");
	cr_expect_eq(rc, 0, "exit hung on stuck stderr");
	cr_expect_lt(ms, 5000, "exit took %lld ms", (long long)ms);
}

/* Exit right after a line: it is still written. */
Test(debug, exit_writes_queued_lines, .timeout = 60)
{
	struct tu_proc p = tu_spawn("fp_debug_peer", (const char *[]){ "flush", NULL });
	char line[512];

	cr_expect(tu_expect(&p, "fltport[", line, sizeof(line), 10000),
		  "the line was lost at exit");
	cr_expect(strstr(line, "port name") != NULL, "%s", line);
	cr_expect_eq(tu_wait(&p, 10000), 0);
}

/* ---- fork ---- */

static atomic_bool spam_stop;

static void *spam(void *arg)
{
	while (!atomic_load(&spam_stop))
		(void)fltport_name_valid(arg);
	return NULL;
}

/* One child forked while the spam thread queues lines: it logs a line of
 * its own, waits for it to be written, and _exits; every line on its
 * stderr must be its own (its parent's queued lines are not repeated). */
static void forked_child_logs_alone(const char *long_name)
{
	struct tu_proc p = { .out = -1 };
	char line[512], mine[32];
	int fds[2], lines = 0;

	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	p.pid = fork();
	cr_assert_geq(p.pid, 0);
	if (p.pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		(void)fltport_name_valid(long_name);
		_exit(fp_debug_flush(5000 * MS) ? 0 : 3);
	}
	close(fds[1]);
	p.out = fds[0];
	snprintf(mine, sizeof(mine), "fltport[%d]: ", (int)p.pid);
	while (tu_read_line(&p, line, sizeof(line), 10000)) {
		cr_expect(strncmp(line, mine, strlen(mine)) == 0, "not the child's: %s", line);
		lines++;
	}
	cr_expect_eq(lines, 1, "child %d wrote %d lines", (int)p.pid, lines);
	cr_expect_eq(tu_wait(&p, 10000), 0, "the child hung or could not write its line");
}

Test(debug, forked_child_neither_deadlocks_nor_repeats, .timeout = 120)
{
	char long_name[FLTPORT_NAME_MAX + 2];
	int saved = dup(STDERR_FILENO), nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
	pthread_t t;

#if defined(__SANITIZE_THREAD__)
	cr_skip_test("TSan stops the child of a multi-threaded fork that starts a thread");
#endif
#if defined(__SANITIZE_ADDRESS__)
	/* ASan's allocator lock is not reset in the child of a multi-threaded
	 * fork (glibc's malloc's is): a thread started there can deadlock
	 * inside ASan.  The plain build runs this test. */
	cr_skip_test("ASan: a thread started in the child of a multi-threaded fork can deadlock");
#endif
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	cr_assert(saved >= 0 && nul >= 0 && dup2(nul, STDERR_FILENO) == STDERR_FILENO);
	cr_assert_eq(pthread_create(&t, NULL, spam, long_name), 0);
	for (int i = 0; i < 50; i++)
		forked_child_logs_alone(long_name);
	atomic_store(&spam_stop, true);
	pthread_join(t, NULL);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(nul);
}
