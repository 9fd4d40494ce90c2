/*
 * Errors a user can act on (issue 8): what -ENOENT means after
 * fltport_reply() and how fltport_strerror() says it; a relative
 * $FLTPORT_DIR refused; a $FLTPORT_DIR too long for any socket path told
 * apart from a port name too long for the directory (port.h,
 * fltport_name_valid() and fltport_dir(); docs/PORTING.md).
 *
 * FLTPORT_DEBUG lines are read by pointing this process's stderr at a
 * temporary file around the call (each test is its own process).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fltport/port.h>

#include "core/debug.h"
#include "testutil.h"

#define SEC_NS 1000000000LL

/* ---- stderr capture ---- */

static int saved_stderr = -1;
static FILE *captured;

static void capture_begin(void)
{
	fflush(stderr);
	captured = tmpfile();
	cr_assert_not_null(captured);
	saved_stderr = dup(STDERR_FILENO);
	cr_assert_geq(saved_stderr, 0);
	cr_assert_geq(dup2(fileno(captured), STDERR_FILENO), 0);
}

/* What was written to stderr since capture_begin(), in static storage. */
static const char *capture_end(void)
{
	static char text[8192];
	size_t n;

	fflush(stderr);
	/* The library's lines are written by a thread of its own: wait for it. */
	cr_assert(fp_debug_flush(10 * SEC_NS), "debug lines not written in 10 s");
	cr_assert_geq(dup2(saved_stderr, STDERR_FILENO), 0);
	close(saved_stderr);
	rewind(captured);
	n = fread(text, 1, sizeof(text) - 1, captured);
	text[n] = '\0';
	fclose(captured);
	return text;
}

/* ---- -ENOENT: no such port / no waiting sender ---- */

Test(errors, strerror_enoent_names_both_meanings)
{
	const char *t = fltport_strerror(-ENOENT);

	cr_expect_not_null(strstr(t, "no such port"), "%s", t);
	cr_expect_not_null(strstr(t, "no sender waits for this message id"), "%s", t);
	cr_expect_not_null(strstr(fltport_strerror(-EINVAL), "FLTPORT_DIR"), "%s",
			   fltport_strerror(-EINVAL));
	cr_expect_not_null(strstr(fltport_strerror(-ENAMETOOLONG), "FLTPORT_DIR"), "%s",
			   fltport_strerror(-ENAMETOOLONG));
}

static struct {
	pthread_mutex_t lock;
	fltport_client *client;
} T = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int on_connect(fltport_client *client, void *server_cookie, const void *ctx, size_t ctx_len,
		      const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	pthread_mutex_lock(&T.lock);
	T.client = client;
	pthread_mutex_unlock(&T.lock);
	*conn_cookie = client;
	return 0;
}

static void on_disconnect(void *conn_cookie)
{
	pthread_mutex_lock(&T.lock);
	T.client = NULL;
	pthread_mutex_unlock(&T.lock);
	fltport_client_close(conn_cookie);
}

/* The three calls that take a port name agree, and create nothing. */
static void expect_name_refused(const char *name, int err)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.max_connections = 1,
	};
	fltport_server *srv = NULL;
	fltport_conn *conn = NULL;

	cr_expect_eq(fltport_name_valid(name), err, "fltport_name_valid(%s) = %d, want %d", name,
		     fltport_name_valid(name), err);
	cr_expect_eq(fltport_server_create(name, &cfg, &srv), err, "fltport_server_create(%s)",
		     name);
	cr_expect_null(srv);
	cr_expect_eq(fltport_connect(name, NULL, 0, 0, SEC_NS, &conn, NULL), err,
		     "fltport_connect(%s)", name);
	cr_expect_null(conn);
}

/* A message taken by a posted get (fltport_get_async). */
struct taken {
	atomic_bool done;
	int err;
	uint64_t id;
	bool wants_reply;
};

static void on_taken(void *arg, int err, void *buf, const struct fltport_msg *msg)
{
	struct taken *t = arg;

	t->err = err;
	if (err == 0) {
		t->id = msg->id;
		t->wants_reply = msg->wants_reply;
	}
	atomic_store(&t->done, true);
}

static bool taken_done(void *arg)
{
	return atomic_load(&((struct taken *)arg)->done);
}

/* After fltport_reply(), -ENOENT is "no sender waits for this id": for a
 * made-up id, and for a real message that wanted no reply. */
Test(errors, reply_without_waiting_sender_is_enoent, .timeout = 60)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.max_connections = 1,
		.access = { .mode = FLTPORT_ACCESS_EVERYONE },
	};
	struct taken t = { .done = false };
	fltport_client *client;
	fltport_server *srv;
	fltport_conn *conn;
	const char *name;
	char buf[64];

	tu_private_dir();
	name = tu_port_name("err");
	cr_assert_eq(fltport_server_create(name, &cfg, &srv), 0);
	cr_assert_eq(fltport_connect(name, NULL, 0, 0, 5 * SEC_NS, &conn, NULL), 0);
	cr_expect_eq(fltport_reply(conn, 0x123456789ull, 0, "x", 1), -ENOENT);

	pthread_mutex_lock(&T.lock);
	client = T.client;
	pthread_mutex_unlock(&T.lock);
	cr_assert_not_null(client);
	/* The posted get is a waiting reader: the send returns once it took the
	 * message, and asks for no reply. */
	cr_assert_eq(fltport_get_async(conn, buf, sizeof(buf), on_taken, &t, NULL), 0);
	cr_assert_eq(fltport_send(client, "note", 4, NULL, 0, NULL, NULL, NULL, 10 * SEC_NS), 0);
	cr_assert(tu_wait_until(taken_done, &t, 10000), "the posted get did not complete");
	cr_assert_eq(t.err, 0);
	cr_expect(!t.wants_reply);
	cr_expect_eq(fltport_reply(conn, t.id, 0, "x", 1), -ENOENT,
		     "reply to a message that wanted none");

	fltport_close(conn);
	fltport_server_destroy(srv);
}

/* ---- $FLTPORT_DIR ---- */

/* A relative directory would be a different port in every working
 * directory: refused with -EINVAL by every call that takes a name, with a
 * debug line saying why, and nothing created. */
Test(errors, relative_dir_refused, .timeout = 60)
{
	static const char *const rel[] = { "ports", "./ports", "../ports", "ports/" };
	char cwd[] = "/tmp/fltport-errors.XXXXXX";
	struct stat st;
	const char *out;

	cr_assert_not_null(mkdtemp(cwd));
	cr_assert_eq(chdir(cwd), 0);
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		cr_assert_eq(setenv("FLTPORT_DIR", rel[i], 1), 0);
		cr_assert_eq(setenv("FLTPORT_DEBUG", "1", 1), 0);
		capture_begin();
		expect_name_refused("\\ScannerPort", -EINVAL);
		out = capture_end();
		cr_expect_not_null(strstr(out, "relative"), "FLTPORT_DIR=%s: debug output: %s",
				   rel[i], out);
		cr_expect_not_null(strstr(out, rel[i]), "debug output names the value: %s", out);
	}
	cr_expect_neq(stat("ports", &st), 0, "a relative FLTPORT_DIR was created");

	/* Without FLTPORT_DEBUG the library prints nothing. */
	cr_assert_eq(unsetenv("FLTPORT_DEBUG"), 0);
	capture_begin();
	cr_expect_eq(fltport_name_valid("x"), -EINVAL);
	out = capture_end();
	cr_expect_str_empty(out, "printed without FLTPORT_DEBUG: %s", out);
	cr_assert_eq(chdir("/"), 0);
	rmdir(cwd);
}

/* A directory too long for any socket path (sun_path holds 108 bytes:
 * "<dir>/<name>" and a NUL) is reported as the directory's fault; a name
 * too long for a directory that has room is reported as the name's. */
Test(errors, dir_too_long_told_apart_from_name_too_long, .timeout = 60)
{
	char dir[256], name[128];
	const char *out;

	cr_assert_eq(setenv("FLTPORT_DEBUG", "1", 1), 0);

	/* 106 bytes: not even a one-byte name fits. */
	dir[0] = '/';
	memset(dir + 1, 'd', 105);
	dir[106] = '\0';
	cr_assert_eq(setenv("FLTPORT_DIR", dir, 1), 0);
	capture_begin();
	expect_name_refused("p", -ENAMETOOLONG);
	out = capture_end();
	cr_expect_not_null(strstr(out, "FLTPORT_DIR is 106 bytes"), "debug output: %s", out);
	cr_expect_null(strstr(out, "port name"), "blamed the name: %s", out);

	/* 105 bytes: exactly a one-byte name fits. */
	dir[105] = '\0';
	cr_assert_eq(setenv("FLTPORT_DIR", dir, 1), 0);
	capture_begin();
	cr_expect_eq(fltport_name_valid("p"), 0);
	expect_name_refused("pq", -ENAMETOOLONG);
	out = capture_end();
	cr_expect_not_null(strstr(out, "port name pq is 2 bytes: at most 1 fit"), "debug: %s", out);
	cr_expect_null(strstr(out, "FLTPORT_DIR is"), "blamed the directory: %s", out);

	/* Above FLTPORT_NAME_MAX in a short directory. */
	tu_private_dir();
	memset(name, 'n', FLTPORT_NAME_MAX + 1);
	name[FLTPORT_NAME_MAX + 1] = '\0';
	capture_begin();
	expect_name_refused(name, -ENAMETOOLONG);
	out = capture_end();
	cr_expect_not_null(strstr(out, "is 101 bytes: at most 100"), "debug output: %s", out);
}

/* ---- -EACCES: a reason for each side, with FLTPORT_DEBUG=1 ---- */

static int accept_all(fltport_client *c, void *sc, const void *ctx, size_t len,
		      const struct fltport_peer *peer, void **cookie, uint32_t *status)
{
	*cookie = c;
	return 0;
}

static void close_client(void *cookie)
{
	fltport_client_close(cookie);
}

/* A user the port's policy does not admit is told why on the client side;
 * a user that cannot write the port directory is told why on create.  Run
 * as uid 65534 in a forked child (a fresh process: only the child drops
 * its privileges), which reports through its exit code. */
Test(errors, access_refusals_say_why, .timeout = 60)
{
	struct fltport_server_config cfg = {
		.on_connect = accept_all,
		.on_disconnect = close_client,
		.max_connections = 1, /* default policy: root only */
	};
	fltport_server *srv;
	const char *name;
	int status, go[2];
	pid_t pid;

	if (geteuid() != 0)
		cr_skip_test("needs root (a second uid)");
	tu_private_dir();
	name = tu_port_name("acl");
	/* Fork while this process has one thread (before the server's):
	 * the child then may start threads and allocate freely. */
	cr_assert_eq(pipe(go), 0);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		fltport_server *mine;
		fltport_conn *c;
		const char *out;
		int rc, bad = 0;
		char b;

		close(go[1]);
		if (read(go[0], &b, 1) != 1)
			_exit(91);
		if (tu_drop_to(65534, 65534) != 0)
			_exit(90);
		setenv("FLTPORT_DEBUG", "1", 1);
		capture_begin();
		rc = fltport_connect(name, NULL, 0, 0, 10 * SEC_NS, &c, NULL);
		out = capture_end();
		if (rc != -EACCES)
			bad |= 1;
		if (!strstr(out, "access policy does not admit"))
			bad |= 2;
		capture_begin();
		rc = fltport_server_create("mine", &cfg, &mine);
		out = capture_end();
		if (rc != -EACCES)
			bad |= 4;
		if (!strstr(out, "cannot create port") || !strstr(out, "Permission denied"))
			bad |= 8;
		if (!strstr(fltport_strerror(-EACCES), "write permission"))
			bad |= 16;
		_exit(bad);
	}
	close(go[0]);
	cr_assert_eq(fltport_server_create(name, &cfg, &srv), 0);
	cr_assert_eq(write(go[1], "g", 1), 1);
	close(go[1]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	cr_expect_eq(WEXITSTATUS(status), 0,
		     "child failures (bits): 1 connect rc, 2 its debug line, 4 create rc, 8 its "
		     "debug line, 16 strerror; got %d",
		     WEXITSTATUS(status));
	fltport_server_destroy(srv);
}
