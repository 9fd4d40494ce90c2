/*
 * Connection lifecycle, two processes at a time: name lookup and stale
 * sockets, name validation, max_connections, connect context and peer
 * identity, rejection, access policy, request/response, disconnect exactly
 * once (whichever side ends it), server-port close, server authentication
 * and the wire-version handshake (SPEC §8.6, §8.8, §8.10, §8.11, §8.14,
 * §8.25-§8.27; port.h).
 *
 * The test process plays one side with the real library; the other side
 * is a helper program (tests/helpers/fp_client_peer.c, fp_server_peer.c)
 * started with fork+exec, talking back through lines on its stdout.
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <fltport/port.h>

#include "core/frame.h"
#include "testutil.h"

#define SEC_NS 1000000000LL
#define LINE_MS 10000  /* bound on waiting for one helper line */
#define COUNT_MS 10000 /* bound on waiting for a callback count */
/* A window for something that must NOT happen (a second disconnect
 * callback, a disconnect for a rejected connect) to happen anyway, were
 * the library wrong.  Never used to wait for something that must happen. */
#define NEGATIVE_WINDOW_MS 300
#define NOBODY 65534

/* Same formula as fp_client_peer.c. */
static unsigned char ctx_byte(size_t i)
{
	return (unsigned char)(i * 131u + 17u);
}

/* ------------------------------------------------------------------ */
/* The filter side played by the test process                          */
/* ------------------------------------------------------------------ */

#define TMAX 16

struct tconn {
	fltport_client *client;
	struct fltport_peer peer;
	bool closed;     /* fltport_client_close called */
	atomic_int disc; /* disconnect callbacks for this connection */
};

static struct {
	pthread_mutex_t lock;
	struct tconn c[TMAX];
	int n;
	atomic_int connects, disconnects;
	bool reject;
	uint32_t reject_status;
	void *server_cookie;
	/* the last connect's context */
	unsigned char ctx[FLTPORT_CONTEXT_MAX + 16];
	size_t ctx_len;
	bool ctx_null;
	struct fltport_peer last_peer;
} T = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int t_connect(fltport_client *client, void *server_cookie, const void *ctx, size_t ctx_len,
		     const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	int i = -1;

	pthread_mutex_lock(&T.lock);
	T.server_cookie = server_cookie;
	T.ctx_null = ctx == NULL;
	T.ctx_len = ctx_len;
	if (ctx && ctx_len <= sizeof(T.ctx))
		memcpy(T.ctx, ctx, ctx_len);
	T.last_peer = *peer;
	if (!T.reject && T.n < TMAX) {
		i = T.n++;
		T.c[i].client = client;
		T.c[i].peer = *peer;
		T.c[i].closed = false;
		atomic_store(&T.c[i].disc, 0);
	}
	if (i < 0)
		*status = T.reject ? T.reject_status : 0xC000009Au;
	pthread_mutex_unlock(&T.lock);
	atomic_fetch_add(&T.connects, 1);
	if (i < 0)
		return 1;
	*conn_cookie = &T.c[i];
	return 0;
}

static void t_disconnect(void *conn_cookie)
{
	struct tconn *c = conn_cookie;
	bool close_it;

	pthread_mutex_lock(&T.lock);
	close_it = !c->closed;
	c->closed = true;
	pthread_mutex_unlock(&T.lock);
	atomic_fetch_add(&c->disc, 1);
	if (close_it)
		fltport_client_close(c->client);
	atomic_fetch_add(&T.disconnects, 1);
}

/* fltport_client_close from the test thread (the filter ends it). */
static void t_close_client(int i)
{
	fltport_client *client = NULL;

	pthread_mutex_lock(&T.lock);
	if (!T.c[i].closed) {
		T.c[i].closed = true;
		client = T.c[i].client;
	}
	pthread_mutex_unlock(&T.lock);
	cr_assert_not_null(client, "connection %d already closed", i);
	fltport_client_close(client);
}

/* Run as non-root, the test's own uid plays both sides, which the
 * default (root-only) policy would refuse: such runs admit everyone. */
static enum fltport_access_mode self_access(void)
{
	return geteuid() == 0 ? FLTPORT_ACCESS_ROOT : FLTPORT_ACCESS_EVERYONE;
}

static struct fltport_server_config tcfg(int max)
{
	return (struct fltport_server_config){
		.cookie = &T,
		.on_connect = t_connect,
		.on_disconnect = t_disconnect,
		.max_connections = max,
		.access.mode = self_access(),
	};
}

static fltport_server *tstart(const char *name, const struct fltport_server_config *cfg)
{
	fltport_server *srv = NULL;
	int rc = fltport_server_create(name, cfg, &srv);

	cr_assert_eq(rc, 0, "fltport_server_create(%s) = %d (%s)", name, rc, fltport_strerror(rc));
	cr_assert_not_null(srv);
	return srv;
}

struct at_least {
	atomic_int *v;
	int n;
};

static bool reached(void *arg)
{
	struct at_least *a = arg;

	return atomic_load(a->v) >= a->n;
}

static void wait_count(atomic_int *v, int n, const char *what)
{
	struct at_least a = { v, n };

	cr_assert(tu_wait_until(reached, &a, COUNT_MS), "%s: %d after %d ms, expected %d", what,
		  atomic_load(v), COUNT_MS, n);
}

/* ------------------------------------------------------------------ */
/* Helper processes                                                     */
/* ------------------------------------------------------------------ */

struct cinfo {
	int pid;
	unsigned uid, gid;
	int tries;
};

static struct tu_proc spawn_client(const char *const *args)
{
	return tu_spawn("fp_client_peer", args);
}

/* The next line must start with `prefix`. */
static void next_line(struct tu_proc *p, const char *prefix, char *buf, size_t n)
{
	buf[0] = '\0';
	cr_assert(tu_read_line(p, buf, n, LINE_MS),
		  "helper %d: no line within %d ms "
		  "(expected '%s...', partial '%s')",
		  (int)p->pid, LINE_MS, prefix, buf);
	cr_assert(strncmp(buf, prefix, strlen(prefix)) == 0,
		  "helper %d: got '%s', expected '%s...'", (int)p->pid, buf, prefix);
}

/* Skip lines until one starts with `prefix`. */
static void expect_line(struct tu_proc *p, const char *prefix, char *buf, size_t n)
{
	buf[0] = '\0';
	cr_assert(tu_expect(p, prefix, buf, n, LINE_MS),
		  "helper %d: no '%s...' line within %d ms (last '%s')", (int)p->pid, prefix,
		  LINE_MS, buf);
}

static struct cinfo expect_connected(struct tu_proc *p)
{
	struct cinfo ci = { 0 };
	char line[256];

	next_line(p, "CONNECTED", line, sizeof(line));
	cr_assert_eq(sscanf(line, "CONNECTED pid=%d uid=%u gid=%u tries=%d", &ci.pid, &ci.uid,
			    &ci.gid, &ci.tries),
		     4, "bad line '%s'", line);
	return ci;
}

/* The client's connect failed: its rc (and status). */
static int expect_connect_err(struct tu_proc *p, uint32_t *status)
{
	char line[256];
	unsigned st = 0;
	int rc = 0;

	next_line(p, "CONNECT_ERR", line, sizeof(line));
	cr_assert_eq(sscanf(line, "CONNECT_ERR rc=%d status=0x%x", &rc, &st), 2, "bad line '%s'",
		     line);
	if (status)
		*status = st;
	return rc;
}

/* A client holding its connection: make it close (SIGUSR1) and exit. */
static void client_close(struct tu_proc *p)
{
	char line[128];

	kill(p->pid, SIGUSR1);
	next_line(p, "CLOSED", line, sizeof(line));
	cr_assert_eq(tu_wait(p, LINE_MS), 0, "client %d did not exit cleanly", (int)p->pid);
}

static void client_done(struct tu_proc *p)
{
	cr_assert_eq(tu_wait(p, LINE_MS), 0, "client %d did not exit cleanly", (int)p->pid);
}

/* Starts a server helper and waits until it listens.  See self_access(). */
static struct tu_proc spawn_server(const char *const *args)
{
	const char *argv[32];
	struct tu_proc p;
	char line[256];
	size_t n = 0;

	while (args[n] && n < 30) {
		argv[n] = args[n];
		n++;
	}
	if (self_access() == FLTPORT_ACCESS_EVERYONE)
		argv[n++] = "--everyone";
	argv[n] = NULL;
	p = tu_spawn("fp_server_peer", argv);

	next_line(&p, "LISTENING", line, sizeof(line));
	return p;
}

/* Ask a server helper for its callback counts. */
static void server_stats(struct tu_proc *p, int *connects, int *disconnects)
{
	char line[256];
	int m = 0;

	kill(p->pid, SIGUSR1);
	expect_line(p, "STATS", line, sizeof(line));
	cr_assert_eq(sscanf(line, "STATS connects=%d disconnects=%d messages=%d", connects,
			    disconnects, &m),
		     3, "bad line '%s'", line);
}

static void server_stop(struct tu_proc *p)
{
	char line[256];

	kill(p->pid, SIGTERM);
	expect_line(p, "DESTROYED", line, sizeof(line));
	cr_assert_eq(tu_wait(p, LINE_MS), 0, "server %d did not exit cleanly", (int)p->pid);
}

static void copy_name(char *dst, size_t n, const char *prefix)
{
	snprintf(dst, n, "%s", tu_port_name(prefix));
}

static void port_path(char *dst, size_t n, const char *dir, const char *name)
{
	snprintf(dst, n, "%s/%s", dir, name);
}

static bool is_socket(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static fltport_conn *connect_ok(const char *name)
{
	fltport_conn *conn = NULL;
	uint32_t st = 0;
	int rc = fltport_connect(name, NULL, 0, 0, 10 * SEC_NS, &conn, &st);

	cr_assert_eq(rc, 0, "fltport_connect(%s) = %d (%s)", name, rc, fltport_strerror(rc));
	cr_assert_not_null(conn);
	return conn;
}

static int connect_rc(const char *name)
{
	fltport_conn *conn = NULL;
	int rc = fltport_connect(name, NULL, 0, 0, 10 * SEC_NS, &conn, NULL);

	if (rc == 0)
		fltport_close(conn);
	return rc;
}

/* ------------------------------------------------------------------ */
/* 1. Names that do not exist, stale sockets, live names                */
/* ------------------------------------------------------------------ */

Test(connect, unknown_name_is_enoent, .timeout = 60)
{
	char name[64];

	tu_private_dir();
	copy_name(name, sizeof(name), "nobody");
	cr_assert_eq(connect_rc(name), -ENOENT);
}

Test(connect, stale_socket_is_enoent_then_replaced, .timeout = 60)
{
	const char *dir = tu_private_dir();
	char name[64], path[256];
	struct tu_proc srvp, cli;
	struct fltport_server_config cfg = tcfg(4);
	fltport_server *srv;
	struct cinfo ci;

	copy_name(name, sizeof(name), "stale");
	port_path(path, sizeof(path), dir, name);
	srvp = spawn_server((const char *const[]){ "serve", name, NULL });
	cr_assert(is_socket(path), "%s is not a socket while the server lives", path);
	tu_kill(&srvp, SIGKILL);
	cr_assert(is_socket(path), "the killed server's socket file %s should stay", path);

	cr_assert_eq(connect_rc(name), -ENOENT);

	srv = tstart(name, &cfg);
	cr_assert(is_socket(path));
	cli = spawn_client((const char *const[]){ "connect", name, NULL });
	ci = expect_connected(&cli);
	cr_assert_eq(atomic_load(&T.connects), 1);
	cr_assert_eq(T.c[0].peer.pid, (pid_t)cli.pid);
	cr_assert_eq(ci.pid, (int)cli.pid);
	client_close(&cli);
	wait_count(&T.disconnects, 1, "disconnect callbacks");
	fltport_server_destroy(srv);
}

Test(connect, live_name_is_eaddrinuse, .timeout = 60)
{
	const char *dir = tu_private_dir();
	struct fltport_server_config cfg = tcfg(4);
	fltport_server *srv = (fltport_server *)&cfg; /* must stay untouched */
	char name[64], path[256], line[256];
	struct tu_proc srvp;
	fltport_conn *conn;

	copy_name(name, sizeof(name), "live");
	port_path(path, sizeof(path), dir, name);
	srvp = spawn_server((const char *const[]){ "serve", name, NULL });

	cr_assert_eq(fltport_server_create(name, &cfg, &srv), -EADDRINUSE);
	cr_assert_eq(srv, (fltport_server *)&cfg, "out-parameter written on error");
	cr_assert_eq(atomic_load(&T.connects), 0);

	/* The live server still owns the name. */
	cr_assert(is_socket(path));
	conn = connect_ok(name);
	expect_line(&srvp, "CONNECT ", line, sizeof(line));
	fltport_close(conn);
	expect_line(&srvp, "DISCONNECT n=1", line, sizeof(line));
	cr_assert_eq(atomic_load(&T.connects), 0);
	server_stop(&srvp);
}

/* ------------------------------------------------------------------ */
/* 2. Name validation                                                   */
/* ------------------------------------------------------------------ */

/* Entries in dir (besides . and ..); their names, for messages. */
static int dir_entries(const char *dir, char *names, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int count = 0;

	cr_assert_not_null(d, "opendir(%s): %s", dir, strerror(errno));
	names[0] = '\0';
	while ((e = readdir(d))) {
		/* ".ctl": the management plane's control sockets (checked
		 * apart: docs/PROTOCOL.md, "Management protocol"). */
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    strcmp(e->d_name, ".ctl") == 0)
			continue;
		count++;
		strncat(names, e->d_name, n - strlen(names) - 1);
		strncat(names, " ", n - strlen(names) - 1);
	}
	closedir(d);
	return count;
}

static void check_bad_name(const char *name, int expected)
{
	struct fltport_server_config cfg = tcfg(4);
	fltport_server *srv = NULL;
	fltport_conn *conn = NULL;

	cr_assert_eq(fltport_name_valid(name), expected, "fltport_name_valid(\"%s\") = %d", name,
		     fltport_name_valid(name));
	cr_assert_eq(fltport_server_create(name, &cfg, &srv), expected,
		     "fltport_server_create(\"%s\")", name);
	cr_assert_null(srv);
	cr_assert_eq(fltport_connect(name, NULL, 0, 0, SEC_NS, &conn, NULL), expected,
		     "fltport_connect(\"%s\")", name);
	cr_assert_null(conn);
}

/* The longest name that fits works, under its full name. */
static void check_longest_name(const char *dir, const char *fits)
{
	struct fltport_server_config cfg = tcfg(4);
	char path[512], names[1024];
	fltport_server *srv;

	cr_assert_eq(fltport_name_valid(fits), 0);
	srv = tstart(fits, &cfg);
	port_path(path, sizeof(path), dir, fits);
	cr_assert(is_socket(path), "%s missing", path);
	cr_assert_eq(dir_entries(dir, names, sizeof(names)), 1, "%s", names);
	fltport_server_destroy(srv);
}

Test(connect, bad_names_rejected_never_truncated, .timeout = 60)
{
	const char *dir = tu_private_dir();
	static const char *const invalid[] = {
		"",
		"a/b",
		"..",
		".",
		"a\\b",
		"a\x01"
		"b",
		"a\nb",
		"a\x7f",
		"\\",
		"\\\\",
		"\\..",
		"\\.",
		"/abs",
		"x/",
	};
	char fits[256], too_long[256], way_too_long[512], names[1024];
	size_t room, i;

	/* sun_path holds "<dir>/<name>" plus the terminating NUL. */
	room = sizeof(((struct sockaddr_un *)0)->sun_path) - strlen(dir) - 2;
	if (room > FLTPORT_NAME_MAX)
		room = FLTPORT_NAME_MAX;
	memset(fits, 'f', room);
	fits[room] = '\0';
	memset(too_long, 't', room + 1);
	too_long[room + 1] = '\0';
	memset(way_too_long, 'w', 300);
	way_too_long[300] = '\0';

	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		check_bad_name(invalid[i], -EINVAL);
	check_bad_name(too_long, -ENAMETOOLONG);
	check_bad_name(way_too_long, -ENAMETOOLONG);

	cr_assert_eq(dir_entries(dir, names, sizeof(names)), 0,
		     "rejected names left files in %s: %s", dir, names);

	check_longest_name(dir, fits);
}

Test(connect, leading_backslash_maps_to_plain_name, .timeout = 60)
{
	const char *dir = tu_private_dir();
	struct fltport_server_config cfg = tcfg(4);
	char path[256], names[1024];
	struct tu_proc a, b;
	fltport_server *srv;

	cr_assert_eq(fltport_name_valid("\\ScannerPort"), 0);
	cr_assert_eq(fltport_name_valid("\\\\ScannerPort"), 0);
	srv = tstart("\\ScannerPort", &cfg);
	port_path(path, sizeof(path), dir, "ScannerPort");
	cr_assert(is_socket(path), "%s missing", path);
	cr_assert_eq(dir_entries(dir, names, sizeof(names)), 1, "%s", names);
	/* Its control socket goes by the plain name too. */
	snprintf(names, sizeof(names), "%s/.ctl", dir);
	cr_assert_eq(dir_entries(names, path, sizeof(path)), 1, "%s", path);
	cr_assert_str_eq(path, "p.ScannerPort ");

	/* Both spellings reach the same port. */
	a = spawn_client((const char *const[]){ "connect", "ScannerPort", NULL });
	expect_connected(&a);
	b = spawn_client((const char *const[]){ "connect", "\\ScannerPort", NULL });
	expect_connected(&b);
	cr_assert_eq(atomic_load(&T.connects), 2);
	client_close(&a);
	client_close(&b);
	wait_count(&T.disconnects, 2, "disconnect callbacks");
	fltport_server_destroy(srv);
	cr_assert_eq(dir_entries(dir, names, sizeof(names)), 0, "destroy left files: %s", names);
}

/* ------------------------------------------------------------------ */
/* 3. max_connections                                                   */
/* ------------------------------------------------------------------ */

Test(connect, max_connections_then_slot_freed, .timeout = 60)
{
	struct fltport_server_config cfg = tcfg(2);
	struct tu_proc a, b, c, d;
	fltport_server *srv;
	struct cinfo ci;
	char name[64];

	tu_private_dir();
	copy_name(name, sizeof(name), "max");
	srv = tstart(name, &cfg);

	a = spawn_client((const char *const[]){ "connect", name, NULL });
	expect_connected(&a);
	b = spawn_client((const char *const[]){ "connect", name, NULL });
	expect_connected(&b);

	c = spawn_client((const char *const[]){ "connect", name, NULL });
	cr_assert_eq(expect_connect_err(&c, NULL), -EUSERS);
	client_done(&c);
	cr_assert_eq(atomic_load(&T.connects), 2,
		     "the connect callback ran for a connect over the limit");

	client_close(&a);
	wait_count(&T.disconnects, 1, "disconnect callbacks");
	/* The slot is freed just after the callback returns (SPEC §8.6):
	 * the client retries a bounded number of times on -EUSERS. */
	d = spawn_client((const char *const[]){ "connect", name, "--retry-busy", "100", NULL });
	ci = expect_connected(&d);
	cr_assert_leq(ci.tries, 101);
	cr_assert_eq(atomic_load(&T.connects), 3);

	client_close(&b);
	client_close(&d);
	wait_count(&T.disconnects, 3, "disconnect callbacks");
	fltport_server_destroy(srv);
	cr_assert_eq(atomic_load(&T.disconnects), 3);
}

/* ------------------------------------------------------------------ */
/* 4. Connect context and peer identity                                 */
/* ------------------------------------------------------------------ */

static void check_ctx_delivered(const char *name, size_t len, int nth)
{
	char lenarg[32];
	bool drop = geteuid() == 0;
	struct tu_proc p;
	struct cinfo ci;
	size_t i;

	snprintf(lenarg, sizeof(lenarg), "%zu", len);
	if (drop)
		p = spawn_client((const char *const[]){ "connect", name, "--ctx-len", lenarg,
							"--uid", "65534", NULL });
	else
		p = spawn_client(
			(const char *const[]){ "connect", name, "--ctx-len", lenarg, NULL });
	ci = expect_connected(&p);
	cr_assert_eq(atomic_load(&T.connects), nth);

	pthread_mutex_lock(&T.lock);
	cr_assert_eq(T.ctx_len, len, "ctx_len %zu, sent %zu", T.ctx_len, len);
	if (len > 0)
		cr_assert_not(T.ctx_null, "NULL context for %zu bytes", len);
	for (i = 0; i < len; i++)
		cr_assert_eq(T.ctx[i], ctx_byte(i), "ctx byte %zu of %zu: 0x%02x, expected 0x%02x",
			     i, len, T.ctx[i], ctx_byte(i));
	cr_assert_eq(T.server_cookie, (void *)&T);
	cr_assert_eq(T.last_peer.pid, (pid_t)p.pid);
	cr_assert_eq(T.last_peer.pid, (pid_t)ci.pid);
	cr_assert_eq(T.last_peer.uid, (uid_t)ci.uid);
	cr_assert_eq(T.last_peer.gid, (gid_t)ci.gid);
	if (drop) {
		cr_assert_eq(T.last_peer.uid, (uid_t)NOBODY);
		cr_assert_eq(T.last_peer.gid, (gid_t)NOBODY);
	} else {
		cr_assert_eq(T.last_peer.uid, getuid());
		cr_assert_eq(T.last_peer.gid, getgid());
	}
	pthread_mutex_unlock(&T.lock);
	client_close(&p);
}

Test(connect, context_bytes_and_peer_ids, .timeout = 60)
{
	static const size_t lens[] = { 1, 1000, FLTPORT_CONTEXT_MAX, 0 };
	struct fltport_server_config cfg = tcfg(4);
	fltport_server *srv;
	char name[64];
	size_t i;

	tu_private_dir();
	copy_name(name, sizeof(name), "ctx");
	/* Root drops the client to nobody, so that its ids are not ours. */
	cfg.access.mode = FLTPORT_ACCESS_EVERYONE;
	srv = tstart(name, &cfg);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		check_ctx_delivered(name, lens[i], (int)i + 1);
	wait_count(&T.disconnects, 4, "disconnect callbacks");
	fltport_server_destroy(srv);
}

Test(connect, context_bad_arguments_never_reach_server, .timeout = 60)
{
	static unsigned char big[FLTPORT_CONTEXT_MAX + 1];
	struct fltport_server_config cfg = tcfg(4);
	fltport_conn *const sentinel = (fltport_conn *)&cfg;
	fltport_conn *conn = sentinel;
	uint32_t st = 0xA5A5A5A5u;
	struct tu_proc p;
	fltport_server *srv;
	char name[64];

	tu_private_dir();
	copy_name(name, sizeof(name), "ctxbad");
	srv = tstart(name, &cfg);
	/* A live client proves the server answers connects at all. */
	p = spawn_client((const char *const[]){ "connect", name, "--ctx-len", "3", NULL });
	expect_connected(&p);
	cr_assert_eq(atomic_load(&T.connects), 1);

	cr_assert_eq(fltport_connect(name, big, FLTPORT_CONTEXT_MAX + 1, 0, 5 * SEC_NS, &conn, &st),
		     -E2BIG);
	cr_assert_eq(fltport_connect(name, NULL, 5, 0, 5 * SEC_NS, &conn, &st), -EINVAL);
	cr_assert_eq(fltport_connect(name, big, 0, 0, 5 * SEC_NS, &conn, &st), -EINVAL);
	cr_assert_eq(conn, sentinel, "out-parameter written on error");
	cr_assert_eq(st, 0xA5A5A5A5u, "status written on an error other than -ECONNREFUSED");
	cr_assert_eq(atomic_load(&T.connects), 1, "a bad connect reached the connect callback");

	client_close(&p);
	wait_count(&T.disconnects, 1, "disconnect callbacks");
	fltport_server_destroy(srv);
}

/* ------------------------------------------------------------------ */
/* 5. Rejection by the connect callback                                 */
/* ------------------------------------------------------------------ */

Test(connect, rejected_connect_carries_status_no_disconnect, .timeout = 60)
{
	struct fltport_server_config cfg = tcfg(1);
	fltport_server *srv;
	struct tu_proc p;
	uint32_t st = 0;
	char name[64];
	int i;

	tu_private_dir();
	copy_name(name, sizeof(name), "reject");
	T.reject = true;
	T.reject_status = 0xC0000022u;
	srv = tstart(name, &cfg);

	/* Twice with max_connections = 1: a rejected connect holds no slot. */
	for (i = 1; i <= 2; i++) {
		p = spawn_client((const char *const[]){ "connect", name, NULL });
		cr_assert_eq(expect_connect_err(&p, &st), -ECONNREFUSED);
		cr_assert_eq(st, 0xC0000022u, "status 0x%08x", st);
		client_done(&p);
		cr_assert_eq(atomic_load(&T.connects), i);
	}
	tu_sleep_ms(NEGATIVE_WINDOW_MS);
	cr_assert_eq(atomic_load(&T.disconnects), 0,
		     "disconnect callback ran for a rejected connection");

	pthread_mutex_lock(&T.lock);
	T.reject = false;
	pthread_mutex_unlock(&T.lock);
	p = spawn_client((const char *const[]){ "connect", name, NULL });
	expect_connected(&p);
	client_close(&p);
	wait_count(&T.disconnects, 1, "disconnect callbacks");
	fltport_server_destroy(srv);
	cr_assert_eq(atomic_load(&T.disconnects), 1);
}

/* ------------------------------------------------------------------ */
/* 6. Access policy                                                     */
/* ------------------------------------------------------------------ */

/* A client dropped to nobody connects to a fresh port with `access`:
 * admitted when `expected` is 0, else refused with that error. */
static void nobody_connects(const struct fltport_access *access, int expected)
{
	struct fltport_server_config cfg = tcfg(4);
	int before = atomic_load(&T.connects);
	fltport_server *srv;
	struct tu_proc p;
	char name[64];

	copy_name(name, sizeof(name), "acl");
	cfg.access = *access;
	srv = tstart(name, &cfg);
	p = spawn_client((const char *const[]){ "connect", name, "--uid", "65534", NULL });
	if (expected) {
		int rc = expect_connect_err(&p, NULL);

		cr_assert_eq(rc, expected, "access mode %d: connect = %d, expected %d",
			     (int)access->mode, rc, expected);
		client_done(&p);
		cr_assert_eq(atomic_load(&T.connects), before,
			     "the connect callback ran for a refused peer");
	} else {
		expect_connected(&p);
		cr_assert_eq(atomic_load(&T.connects), before + 1);
		cr_assert_eq(T.last_peer.uid, (uid_t)NOBODY);
		client_close(&p);
		wait_count(&T.disconnects, atomic_load(&T.connects), "disconnect callbacks");
	}
	fltport_server_destroy(srv);
}

Test(connect, access_policy_by_peer_credentials, .timeout = 60)
{
	static const uid_t nobody[] = { NOBODY }, other[] = { 12345 };
	static const gid_t nogroup[] = { NOBODY };

	if (geteuid() != 0)
		cr_skip("needs root: drops a client to uid %d", NOBODY);
	tu_private_dir();
	nobody_connects(&(struct fltport_access){ .mode = FLTPORT_ACCESS_ROOT }, -EACCES);
	nobody_connects(&(struct fltport_access){ .mode = FLTPORT_ACCESS_EVERYONE }, 0);
	nobody_connects(
		&(struct fltport_access){ .mode = FLTPORT_ACCESS_LIST, .uids = nobody, .nuids = 1 },
		0);
	nobody_connects(
		&(struct fltport_access){ .mode = FLTPORT_ACCESS_LIST, .uids = other, .nuids = 1 },
		-EACCES);
	nobody_connects(&(struct fltport_access){ .mode = FLTPORT_ACCESS_LIST,
						  .uids = other,
						  .nuids = 1,
						  .gids = nogroup,
						  .ngids = 1 },
			0);
}

/* ------------------------------------------------------------------ */
/* 7. Request / response                                                */
/* ------------------------------------------------------------------ */

static void check_request(fltport_conn *conn, struct tu_proc *srvp, size_t in_len, size_t out_cap)
{
	static unsigned char in[4096], out[4096 + 64];
	char line[256], want[128];
	size_t i, n = in_len < out_cap ? in_len : out_cap, out_len = 0xdead;
	uint32_t st = 0;
	int rc;

	for (i = 0; i < in_len; i++)
		in[i] = (unsigned char)('a' + i % 26 + (i / 26) % 7);
	memset(out, 0xEE, sizeof(out));
	rc = fltport_request(conn, in, in_len, NULL, 0, out_cap ? out : NULL, out_cap, &out_len,
			     &st, 10 * SEC_NS);
	cr_assert_eq(rc, 0, "fltport_request(in %zu, cap %zu) = %d", in_len, out_cap, rc);
	cr_assert_eq(st, 0x12345678u, "status 0x%08x", st);
	cr_assert_eq(out_len, n, "out_len %zu, expected %zu", out_len, n);
	for (i = 0; i < n; i++)
		cr_assert_eq(out[i], in[in_len - 1 - i], "output byte %zu", i);
	for (i = out_cap; i < sizeof(out); i++)
		cr_assert_eq(out[i], 0xEE, "byte %zu written past out_cap %zu", i, out_cap);
	snprintf(want, sizeof(want), "MSG in_len=%zu out_cap=%zu", in_len, out_cap);
	expect_line(srvp, "MSG ", line, sizeof(line));
	cr_assert_str_eq(line, want);
}

Test(connect, request_response_exact, .timeout = 60)
{
	struct tu_proc srvp;
	fltport_conn *conn;
	char name[64];

	tu_private_dir();
	copy_name(name, sizeof(name), "echo");
	srvp = spawn_server((const char *const[]){ "serve", name, "--echo", NULL });
	conn = connect_ok(name);
	check_request(conn, &srvp, 26, 64);
	check_request(conn, &srvp, 26, 10); /* the callback wants 26, gets room for 10 */
	check_request(conn, &srvp, 0, 64);
	check_request(conn, &srvp, 4096, 4096);
	check_request(conn, &srvp, 5, 0); /* no output buffer */
	fltport_close(conn);
	server_stop(&srvp);
}

Test(connect, request_without_message_callback, .timeout = 60)
{
	unsigned char out[16];
	size_t out_len = 77;
	uint32_t st = 0x5A5A5A5Au;
	struct tu_proc srvp;
	fltport_conn *conn;
	char name[64];
	int c = -1, d = -1;

	tu_private_dir();
	copy_name(name, sizeof(name), "nomsg");
	srvp = spawn_server((const char *const[]){ "serve", name, NULL });
	conn = connect_ok(name);
	cr_assert_eq(fltport_request(conn, "abc", 3, NULL, 0, out, sizeof(out), &out_len, &st,
				     10 * SEC_NS),
		     -EOPNOTSUPP);
	cr_assert_eq(out_len, 77u, "out_len written on error");
	cr_assert_eq(st, 0x5A5A5A5Au, "status written on error");
	/* The connection survives the refused request. */
	cr_assert_not(fltport_conn_ended(conn));
	server_stats(&srvp, &c, &d);
	cr_assert_eq(c, 1);
	cr_assert_eq(d, 0);
	fltport_close(conn);
	server_stop(&srvp);
}

/* ------------------------------------------------------------------ */
/* 8. Disconnect runs exactly once, whoever ends the connection         */
/* ------------------------------------------------------------------ */

static void assert_once_per_conn(int nconns)
{
	int i;

	wait_count(&T.disconnects, nconns, "disconnect callbacks");
	tu_sleep_ms(NEGATIVE_WINDOW_MS); /* room for a wrong second callback */
	cr_assert_eq(atomic_load(&T.disconnects), nconns);
	for (i = 0; i < nconns; i++)
		cr_assert_eq(atomic_load(&T.c[i].disc), 1, "connection %d: %d disconnect callbacks",
			     i, atomic_load(&T.c[i].disc));
}

Test(disconnect, client_close_once, .timeout = 60)
{
	struct fltport_server_config cfg = tcfg(4);
	fltport_server *srv;
	struct tu_proc p;
	char name[64];

	tu_private_dir();
	copy_name(name, sizeof(name), "dclose");
	srv = tstart(name, &cfg);
	p = spawn_client((const char *const[]){ "connect", name, NULL });
	expect_connected(&p);
	client_close(&p);
	assert_once_per_conn(1);
	fltport_server_destroy(srv);
	cr_assert_eq(atomic_load(&T.disconnects), 1, "destroy ran the callback again");
}

Test(disconnect, filter_closes_client, .timeout = 60)
{
	struct fltport_server_config cfg = tcfg(4);
	fltport_server *srv;
	struct tu_proc p;
	char name[64], line[128];

	tu_private_dir();
	copy_name(name, sizeof(name), "dfilter");
	srv = tstart(name, &cfg);
	p = spawn_client((const char *const[]){ "connect", name, "--then", "get", NULL });
	expect_connected(&p);
	next_line(&p, "GETTING", line, sizeof(line));
	/* Lets the get block first; the outcome must be the same if it has
	 * not yet (SPEC §8.14: every call on the ended handle fails). */
	tu_sleep_ms(100);
	t_close_client(0);
	next_line(&p, "GET_ERR", line, sizeof(line));
	cr_assert_str_eq(line, "GET_ERR rc=-107"); /* -ENOTCONN */
	next_line(&p, "REQ_ERR", line, sizeof(line));
	cr_assert_str_eq(line, "REQ_ERR rc=-107");
	next_line(&p, "ENDED", line, sizeof(line));
	cr_assert_str_eq(line, "ENDED e=1");
	client_done(&p);
	assert_once_per_conn(1);
	fltport_server_destroy(srv);
	cr_assert_eq(atomic_load(&T.disconnects), 1);
}

Test(disconnect, client_killed_once, .timeout = 60)
{
	struct fltport_server_config cfg = tcfg(4);
	fltport_server *srv;
	struct tu_proc p;
	char name[64];

	tu_private_dir();
	copy_name(name, sizeof(name), "dkill");
	srv = tstart(name, &cfg);
	p = spawn_client((const char *const[]){ "connect", name, NULL });
	expect_connected(&p);
	tu_kill(&p, SIGKILL);
	assert_once_per_conn(1);
	fltport_server_destroy(srv);
	cr_assert_eq(atomic_load(&T.disconnects), 1);
}

struct blocked_call {
	fltport_conn *conn;
	int rc;
};

static void *blocked_get(void *arg)
{
	struct blocked_call *c = arg;
	struct fltport_msg msg;
	char buf[256];

	c->rc = fltport_get(c->conn, buf, sizeof(buf), &msg, 15 * SEC_NS);
	return NULL;
}

static void *blocked_request(void *arg)
{
	struct blocked_call *c = arg;
	char out[64];
	size_t len = 0;
	uint32_t st = 0;

	c->rc = fltport_request(c->conn, "q", 1, NULL, 0, out, sizeof(out), &len, &st, 15 * SEC_NS);
	return NULL;
}

static void join_bounded(pthread_t t, const char *what)
{
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	rc = pthread_timedjoin_np(t, NULL, &ts);
	cr_assert_eq(rc, 0, "%s still blocked 20 s after the server died", what);
}

Test(disconnect, server_killed_wakes_get_and_request, .timeout = 60)
{
	struct blocked_call g = { .rc = 1 }, r = { .rc = 1 };
	pthread_t tg, tr;
	struct tu_proc srvp;
	char name[64], line[128];

	tu_private_dir();
	copy_name(name, sizeof(name), "dsrvkill");
	srvp = spawn_server((const char *const[]){ "serve", name, "--block-msg", NULL });
	g.conn = r.conn = connect_ok(name);
	cr_assert_eq(pthread_create(&tg, NULL, blocked_get, &g), 0);
	cr_assert_eq(pthread_create(&tr, NULL, blocked_request, &r), 0);
	/* The request is in the (blocking) message callback. */
	expect_line(&srvp, "MSG in_len=1", line, sizeof(line));
	tu_kill(&srvp, SIGKILL);
	join_bounded(tg, "fltport_get");
	join_bounded(tr, "fltport_request");
	cr_assert_eq(g.rc, -ENOTCONN, "fltport_get = %d", g.rc);
	cr_assert_eq(r.rc, -ENOTCONN, "fltport_request = %d", r.rc);
	cr_assert(fltport_conn_ended(g.conn));
	fltport_close(g.conn);
}

Test(disconnect, server_destroy_ends_each_once, .timeout = 60)
{
	struct fltport_server_config cfg = tcfg(4);
	struct tu_proc p[2];
	fltport_server *srv;
	char name[64], line[128];
	int i;

	tu_private_dir();
	copy_name(name, sizeof(name), "ddestroy");
	srv = tstart(name, &cfg);
	for (i = 0; i < 2; i++) {
		p[i] = spawn_client(
			(const char *const[]){ "connect", name, "--then", "get", NULL });
		expect_connected(&p[i]);
		next_line(&p[i], "GETTING", line, sizeof(line));
	}
	fltport_server_destroy(srv);
	/* Before destroy returned: */
	cr_assert_eq(atomic_load(&T.disconnects), 2);
	cr_assert_eq(atomic_load(&T.c[0].disc), 1);
	cr_assert_eq(atomic_load(&T.c[1].disc), 1);
	for (i = 0; i < 2; i++) {
		next_line(&p[i], "GET_ERR", line, sizeof(line));
		cr_assert_str_eq(line, "GET_ERR rc=-107");
		next_line(&p[i], "REQ_ERR", line, sizeof(line));
		cr_assert_str_eq(line, "REQ_ERR rc=-107");
		next_line(&p[i], "ENDED", line, sizeof(line));
		cr_assert_str_eq(line, "ENDED e=1");
		client_done(&p[i]);
	}
	cr_assert_eq(atomic_load(&T.disconnects), 2);
}

/* ------------------------------------------------------------------ */
/* 9. Closing the server port keeps existing connections                */
/* ------------------------------------------------------------------ */

Test(connect, server_close_keeps_connections, .timeout = 60)
{
	const char *dir = tu_private_dir();
	unsigned char out[16];
	char name[64], path[256], line[256], buf[64];
	struct fltport_msg msg;
	struct tu_proc srvp;
	fltport_conn *conn;
	struct stat sst;
	size_t out_len = 0;
	uint32_t st = 0;

	copy_name(name, sizeof(name), "sclose");
	port_path(path, sizeof(path), dir, name);
	srvp = spawn_server((const char *const[]){ "serve", name, "--echo", "--usr2", "close-port",
						   "--usr2", "send", NULL });
	conn = connect_ok(name);
	kill(srvp.pid, SIGUSR2);
	expect_line(&srvp, "PORT_CLOSED", line, sizeof(line));

	cr_assert_eq(connect_rc(name), -ENOENT);
	cr_assert_eq(lstat(path, &sst), -1, "%s still exists after server close", path);
	cr_assert_eq(errno, ENOENT);

	/* user → filter */
	cr_assert_eq(fltport_request(conn, "abc", 3, NULL, 0, out, sizeof(out), &out_len, &st,
				     10 * SEC_NS),
		     0);
	cr_assert_eq(out_len, 3u);
	cr_assert_eq(memcmp(out, "cba", 3), 0);
	cr_assert_eq(st, 0x12345678u);

	/* filter → user, with a reply */
	kill(srvp.pid, SIGUSR2);
	cr_assert_eq(fltport_get(conn, buf, sizeof(buf), &msg, 10 * SEC_NS), 0);
	cr_assert_eq(msg.len, 5u);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	cr_assert(msg.wants_reply);
	cr_assert_eq(msg.reply_cap, 64u);
	cr_assert_eq(fltport_reply(conn, msg.id, 0x77u, "world", 5), 0);
	expect_line(&srvp, "SENT", line, sizeof(line));
	cr_assert_str_eq(line, "SENT rc=0 len=5 status=0x00000077 data=world");

	server_stop(&srvp);
	cr_assert_eq(fltport_get(conn, buf, sizeof(buf), &msg, 10 * SEC_NS), -ENOTCONN);
	cr_assert(fltport_conn_ended(conn));
	fltport_close(conn);
}

/* ------------------------------------------------------------------ */
/* 10. Server authentication                                            */
/* ------------------------------------------------------------------ */

/* A server helper as nobody, keeping CAP_DAC_OVERRIDE so that it can
 * bind in a root-owned directory. */
static struct tu_proc spawn_nobody_server(const char *name, bool cap)
{
	if (cap)
		return spawn_server((const char *const[]){ "serve", name, "--everyone", "--as-uid",
							   "65534", "--cap-dac", NULL });
	return spawn_server(
		(const char *const[]){ "serve", name, "--everyone", "--as-uid", "65534", NULL });
}

static void expect_untrusted(struct tu_proc *srvp, const char *name)
{
	int c = -1, d = -1;

	cr_assert_eq(connect_rc(name), -EACCES, "a root client trusted an untrusted server");
	server_stats(srvp, &c, &d);
	cr_assert_eq(c, 0, "the untrusted server saw the connect");
	tu_kill(srvp, SIGKILL);
}

static void expect_trusted(struct tu_proc *srvp, const char *name)
{
	char line[256];
	fltport_conn *conn = connect_ok(name);

	expect_line(srvp, "CONNECT ", line, sizeof(line));
	fltport_close(conn);
	expect_line(srvp, "DISCONNECT n=1", line, sizeof(line));
	server_stop(srvp);
}

Test(auth, custom_dir_trusts_root_or_owner, .timeout = 60)
{
	const char *dir;
	struct tu_proc srvp;
	char name[64];

	if (geteuid() != 0)
		cr_skip("needs root: runs a server as uid %d", NOBODY);
	dir = tu_private_dir();

	/* Root-owned directory: a nobody server is not trusted... */
	copy_name(name, sizeof(name), "auth");
	srvp = spawn_nobody_server(name, true);
	expect_untrusted(&srvp, name);
	/* ...a root server is. */
	copy_name(name, sizeof(name), "auth");
	srvp = spawn_server((const char *const[]){ "serve", name, NULL });
	expect_trusted(&srvp, name);

	/* A directory owned by nobody: its owner is trusted. */
	cr_assert_eq(chown(dir, NOBODY, NOBODY), 0, "chown: %s", strerror(errno));
	copy_name(name, sizeof(name), "auth");
	srvp = spawn_nobody_server(name, false);
	expect_trusted(&srvp, name);
}

Test(auth, default_dir_trusts_root_only, .timeout = 60)
{
	struct tu_proc srvp;
	char name[64];

	if (geteuid() != 0)
		cr_skip("needs root: mount namespace and a server as uid %d", NOBODY);
	tu_private_dir();
	/* The mount namespace is this test process's own (Criterion runs each
	 * test in a process); helpers started from now on inherit it. */
	if (unshare(CLONE_NEWNS) != 0)
		cr_skip("unshare(CLONE_NEWNS) failed: %s", strerror(errno));
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
		cr_skip("making / private failed: %s", strerror(errno));
	if (mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0)
		cr_skip("mounting a tmpfs on /run failed: %s", strerror(errno));
	cr_assert_eq(mkdir(FLTPORT_DEFAULT_DIR, 0755), 0, "mkdir: %s", strerror(errno));
	cr_assert_eq(chmod(FLTPORT_DEFAULT_DIR, 0755), 0);
	cr_assert_eq(unsetenv("FLTPORT_DIR"), 0);
	cr_assert_str_eq(fltport_dir(), FLTPORT_DEFAULT_DIR);

	copy_name(name, sizeof(name), "dauth");
	srvp = spawn_nobody_server(name, true);
	expect_untrusted(&srvp, name);

	copy_name(name, sizeof(name), "dauth");
	srvp = spawn_server((const char *const[]){ "serve", name, NULL });
	expect_trusted(&srvp, name);

	/* A directory others may write: nobody is trusted, not even root. */
	cr_assert_eq(chmod(FLTPORT_DEFAULT_DIR, 0777), 0);
	copy_name(name, sizeof(name), "dauth");
	srvp = spawn_server((const char *const[]){ "serve", name, NULL });
	expect_untrusted(&srvp, name);
}

/* ------------------------------------------------------------------ */
/* 11. Wire version mismatch                                            */
/* ------------------------------------------------------------------ */

static int raw_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s: %s", path,
		     strerror(errno));
	return fd;
}

/* Receive one frame within 10 s; returns its length, closes passed fds. */
static size_t raw_recv(int fd, uint8_t *buf, size_t cap, unsigned *nfds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 16)];
	} cm;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cm.b,
			     .msg_controllen = sizeof(cm.b) };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct cmsghdr *c;
	ssize_t n;

	cr_assert_eq(poll(&pfd, 1, LINE_MS), 1, "no answer to the connect frame");
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	cr_assert_gt(n, 0, "recvmsg = %zd (%s)", n, n < 0 ? strerror(errno) : "EOF");
	*nfds = 0;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t k, m = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int fds[16];

			memcpy(fds, CMSG_DATA(c), m * sizeof(int));
			for (k = 0; k < m; k++)
				close(fds[k]);
			*nfds += (unsigned)m;
		}
	}
	return (size_t)n;
}

static void raw_connect_version(const char *path, uint16_t version)
{
	struct fp_hdr h = {
		.magic = FP_MAGIC,
		.version = version,
		.type = FP_T_CONNECT,
		.len = 4,
	};
	uint8_t frame[FP_HDR_SIZE + 4], ans[FP_FRAME_MAX];
	struct fp_hdr r;
	unsigned nfds;
	size_t n;
	int fd, rc;

	fp_hdr_encode(&h, frame);
	memcpy(frame + FP_HDR_SIZE, "ctx!", 4);
	fd = raw_socket(path);
	cr_assert_eq(send(fd, frame, sizeof(frame), MSG_NOSIGNAL), (ssize_t)sizeof(frame));
	n = raw_recv(fd, ans, sizeof(ans), &nfds);
	rc = fp_frame_decode(ans, n, nfds, FLTPORT_CONTEXT_MAX, &r);
	cr_assert_eq(rc, 0, "the answer does not decode: %d", rc);
	cr_assert_eq(r.type, FP_T_CONNECT_RESULT, "answer type %u", r.type);
	cr_assert_eq(r.err, -EPROTO, "connect-result err %d for wire version %u", r.err, version);
	cr_assert_eq(nfds, 0u, "a refused connect carried fds");
	close(fd);
}

Test(connect, wire_version_mismatch, .timeout = 60)
{
	const char *dir = tu_private_dir();
	char name[64], path[256], line[256];
	struct tu_proc srvp;
	fltport_conn *conn;
	int c = -1, d = -1;

	copy_name(name, sizeof(name), "wire");
	port_path(path, sizeof(path), dir, name);
	srvp = spawn_server((const char *const[]){ "serve", name, NULL });
	raw_connect_version(path, (uint16_t)(FLTPORT_WIRE_VERSION + 1));
	raw_connect_version(path, 0);
	raw_connect_version(path, 0xFFFF);
	/* Room for a wrong connect callback to run after the answer. */
	tu_sleep_ms(NEGATIVE_WINDOW_MS);
	server_stats(&srvp, &c, &d);
	cr_assert_eq(c, 0, "the connect callback ran for a wrong wire version");
	cr_assert_eq(d, 0);

	/* The same server accepts the library's own version. */
	conn = connect_ok(name);
	expect_line(&srvp, "CONNECT ", line, sizeof(line));
	fltport_close(conn);
	expect_line(&srvp, "DISCONNECT n=1", line, sizeof(line));
	server_stop(&srvp);
}
