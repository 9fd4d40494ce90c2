/*
 * Management plane, port side (fltport/mgmt.h): ports are listed with their
 * counters and connections, closed or dead ports are not, and other users
 * are refused.  Real sockets: the port's control socket is served by this
 * process's control thread, the queries connect to it.
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fltport/mgmt.h"
#include "fltport/port.h"
#include "testutil.h"

#define SEC ((int64_t)1000000000)

static int on_connect(fltport_client *client, void *server_cookie, const void *ctx, size_t ctx_len,
		      const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	*conn_cookie = client;
	return 0;
}

static void on_disconnect(void *conn_cookie)
{
}

static uint32_t on_message(void *conn_cookie, const struct fltport_request *req, void *out,
			   size_t out_cap, size_t *out_len)
{
	*out_len = 0;
	return 7;
}

static fltport_server *make_port(const char *name, fltport_client **client_slot)
{
	struct fltport_server_config cfg = { .on_connect = on_connect,
					     .on_disconnect = on_disconnect,
					     .on_message = on_message,
					     .max_connections = 3,
					     .access = { .mode = FLTPORT_ACCESS_EVERYONE } };
	fltport_server *srv;
	int rc;

	(void)client_slot;
	rc = fltport_server_create(name, &cfg, &srv);
	cr_assert_eq(rc, 0, "fltport_server_create(%s): %s", name, fltport_strerror(rc));
	return srv;
}

static const struct fltport_port_info *find_port(const struct fltport_port_info *v, size_t n,
						 const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

Test(mgmt, port_listed_with_counters_and_connections, .timeout = 60)
{
	const char *name;
	fltport_server *srv;
	fltport_conn *conn;
	struct fltport_port_info *ports, one;
	struct fltport_conn_info *conns;
	size_t n, denied = 99;
	uint8_t buf[16];
	size_t out_len;
	uint32_t status;

	tu_private_dir();
	name = tu_port_name("mgmt");
	srv = make_port(name, NULL);
	cr_assert_eq(fltport_connect(name, NULL, 0, 0, 5 * SEC, &conn, NULL), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(fltport_request(conn, "abcd", 4, NULL, 0, buf, sizeof(buf), &out_len,
					     &status, 5 * SEC),
			     0);

	cr_assert_eq(fltport_mgmt_ports(&ports, &n, &denied), 0);
	cr_expect_eq(denied, 0);
	const struct fltport_port_info *p = find_port(ports, n, name);
	cr_assert_not_null(p, "port %s not listed (%zu ports)", name, n);
	cr_expect_eq(p->pid, getpid());
	cr_expect_eq(p->uid, geteuid());
	cr_expect_eq(p->max_connections, 3);
	cr_expect_eq(p->stats.connections, 1);
	cr_expect_eq(p->stats.connects, 1);
	cr_expect_eq(p->stats.received, 3);
	cr_expect_eq(p->stats.received_bytes, 12);
	cr_expect_gt(p->started_ns, 0);
	fltport_mgmt_free(ports);

	cr_assert_eq(fltport_mgmt_connections(name, &conns, &n), 0);
	cr_assert_eq(n, 1);
	cr_expect_eq(conns[0].pid, getpid());
	cr_expect_eq(conns[0].uid, geteuid());
	cr_expect_eq(conns[0].id, 1);
	cr_expect_eq(conns[0].stats.received, 3);
	cr_expect_neq(conns[0].exe[0], '\0', "exe of the connected process");
	fltport_mgmt_free(conns);

	/* Gone from the list when the connection ends; counted. */
	fltport_close(conn);
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(fltport_mgmt_port(name, &one), 0);
		if (one.stats.connections == 0)
			break;
		tu_sleep_ms(10);
	}
	cr_expect_eq(one.stats.connections, 0);
	cr_expect_eq(one.stats.disconnects, 1);
	cr_assert_eq(fltport_mgmt_connections(name, &conns, &n), 0);
	cr_expect_eq(n, 0);
	fltport_mgmt_free(conns);

	/* A closed port is not listed. */
	fltport_server_close(srv);
	cr_expect_eq(fltport_mgmt_port(name, &one), -ENOENT);
	cr_assert_eq(fltport_mgmt_ports(&ports, &n, NULL), 0);
	cr_expect_null(find_port(ports, n, name));
	fltport_mgmt_free(ports);
	fltport_server_destroy(srv);
}

/* The filter side's sends are counted: delivered, replied, timed out. */
static fltport_client *last_client;

static int on_connect_keep(fltport_client *client, void *server_cookie, const void *ctx,
			   size_t ctx_len, const struct fltport_peer *peer, void **conn_cookie,
			   uint32_t *status)
{
	__atomic_store_n(&last_client, client, __ATOMIC_SEQ_CST);
	*conn_cookie = client;
	return 0;
}

static void *replier(void *arg)
{
	fltport_conn *conn = arg;
	struct fltport_msg m;
	uint8_t buf[64];

	if (fltport_get(conn, buf, sizeof(buf), &m, 10 * SEC) == 0)
		fltport_reply(conn, m.id, 0, "ok", 2);
	return NULL;
}

Test(mgmt, send_counters, .timeout = 60)
{
	struct fltport_server_config cfg = { .on_connect = on_connect_keep,
					     .on_disconnect = on_disconnect,
					     .max_connections = 1,
					     .access = { .mode = FLTPORT_ACCESS_EVERYONE } };
	fltport_server *srv;
	fltport_conn *conn;
	fltport_client *cl = NULL;
	struct fltport_conn_info *conns;
	struct fltport_port_info info;
	pthread_t t;
	uint8_t reply[16];
	size_t reply_len = sizeof(reply), n;
	const char *name;

	tu_private_dir();
	name = tu_port_name("mgmt-send");
	cr_assert_eq(fltport_server_create(name, &cfg, &srv), 0);
	cr_assert_eq(fltport_connect(name, NULL, 0, 0, 5 * SEC, &conn, NULL), 0);
	for (int i = 0; i < 500 && !cl; i++) {
		cl = __atomic_load_n(&last_client, __ATOMIC_SEQ_CST);
		if (!cl)
			tu_sleep_ms(10);
	}
	cr_assert_not_null(cl);
	/* Nobody reads: a send that waits for its reply times out. */
	cr_assert_eq(fltport_send(cl, "x", 1, NULL, 0, reply, &reply_len, NULL, SEC / 10),
		     -ETIMEDOUT);
	/* Someone reads and replies. */
	cr_assert_eq(pthread_create(&t, NULL, replier, conn), 0);
	reply_len = sizeof(reply);
	cr_assert_eq(fltport_send(cl, "hello", 5, NULL, 0, reply, &reply_len, NULL, 10 * SEC), 0);
	pthread_join(t, NULL);

	cr_assert_eq(fltport_mgmt_port(name, &info), 0);
	cr_expect_eq(info.stats.timed_out, 1);
	cr_expect_eq(info.stats.sent, 1);
	cr_expect_eq(info.stats.sent_bytes, 5);
	cr_expect_eq(info.stats.replies, 1);
	cr_expect_eq(info.stats.pending, 0);
	cr_assert_eq(fltport_mgmt_connections(name, &conns, &n), 0);
	cr_assert_eq(n, 1);
	cr_expect_eq(conns[0].stats.sent, 1);
	cr_expect_eq(conns[0].stats.timed_out, 1);
	fltport_mgmt_free(conns);
	fltport_close(conn);
	fltport_server_destroy(srv);
}

/* Another user is refused by each object, and counted as denied. */
Test(mgmt, other_users_are_refused, .timeout = 60)
{
	fltport_server *srv;
	const char *name;
	int st, go[2];
	pid_t pid;

	if (geteuid() != 0)
		cr_skip_test("needs root: the test runs a query as another user");
	tu_private_dir();
	name = tu_port_name("mgmt-deny");
	/* The directory must be reachable by the other user. */
	cr_assert_eq(chmod(fltport_dir(), 0755), 0);
	cr_assert_eq(pipe(go), 0);
	pid = fork(); /* before any thread: the child only queries */
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct fltport_port_info *ports, one;
		struct fltport_conn_info *conns;
		size_t n, denied = 0;
		char c;

		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(9);
		if (tu_drop_to(65534, 65534) != 0)
			_exit(10);
		if (fltport_mgmt_ports(&ports, &n, &denied) != 0)
			_exit(11);
		if (find_port(ports, n, name) || denied != 1) {
			fprintf(stderr, "listed %zu, denied %zu\n", n, denied);
			_exit(12);
		}
		fltport_mgmt_free(ports);
		if (fltport_mgmt_port(name, &one) != -EACCES)
			_exit(13);
		if (fltport_mgmt_connections(name, &conns, &n) != -EACCES)
			_exit(14);
		_exit(0);
	}
	close(go[0]);
	srv = make_port(name, NULL);
	cr_assert_eq(write(go[1], "G", 1), 1);
	close(go[1]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	fltport_server_destroy(srv);
}

/* As another user: connect to every port control socket under dir/.ctl and
 * close, as fast as possible, until killed.  Exits 20 if it could not even
 * find one to try, 21 if one ever accepted it. */
static void flood_controls(const char *dir)
{
	char ctl[300];
	unsigned tried = 0;

	snprintf(ctl, sizeof(ctl), "%s/.ctl", dir);
	for (;;) {
		DIR *d = opendir(ctl);
		struct dirent *de;

		if (!d)
			_exit(20);
		while ((de = readdir(d)) != NULL) {
			struct sockaddr_un sa = { .sun_family = AF_UNIX };
			int fd;

			if (strncmp(de->d_name, "p.", 2) != 0)
				continue;
			if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", ctl,
					     de->d_name) >= sizeof(sa.sun_path))
				continue;
			for (int i = 0; i < 64; i++) {
				fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
				if (fd < 0)
					_exit(22);
				if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
					/* accepted: the refusal is then served to us */
					(void)!send(fd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
					tried |= 2;
				}
				close(fd);
				tried |= 1;
			}
		}
		closedir(d);
		if (!tried)
			usleep(1000);
	}
}

/* Another user hammering a port's control socket (connect, close, again)
 * cannot make root's queries fail: 199 of 200 failed with -ETIMEDOUT at
 * once before the sockets were made owner-only (the backlog stayed full
 * and a full backlog was taken for an answer). */
Test(mgmt, other_users_cannot_starve_queries, .timeout = 120)
{
	struct fltport_port_info one;
	fltport_server *srv;
	const char *name;
	int st, go[2], failed = 0, first_rc = 0;
	pid_t pid;
	char c;

	if (geteuid() != 0)
		cr_skip_test("needs root: the flood runs as another user");
	tu_private_dir();
	name = tu_port_name("mgmt-flood");
	cr_assert_eq(chmod(fltport_dir(), 0755), 0);
	cr_assert_eq(pipe(go), 0);
	pid = fork(); /* before any thread */
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(9);
		if (tu_drop_to(65534, 65534) != 0)
			_exit(10);
		flood_controls(fltport_dir());
	}
	close(go[0]);
	srv = make_port(name, NULL);
	cr_assert_eq(write(go[1], "G", 1), 1);
	close(go[1]);
	usleep(200000); /* the flood is under way */
	for (int i = 0; i < 200; i++) {
		int rc = fltport_mgmt_port(name, &one);

		if (rc != 0 && !failed++)
			first_rc = rc;
	}
	cr_expect_eq(waitpid(pid, &st, WNOHANG), 0, "the flooder stopped early (status %d)", st);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_expect_eq(failed, 0, "%d of 200 queries failed, the first with %s", failed,
		     strerror(-first_rc));
	fltport_server_destroy(srv);
}

/* The management wire header (docs/PROTOCOL.md, "Management protocol"). */
struct wire_hdr {
	uint32_t magic;
	uint16_t version, type, op, kind;
	int32_t status;
	uint32_t len, count;
};

struct slow_reader {
	int fd;
	atomic_bool stop;
	int records;
};

/* Read the answer one packet a second, until its end or told to stop. */
static void *read_slowly(void *arg)
{
	struct slow_reader *sr = arg;
	static char buf[65536];

	while (!atomic_load(&sr->stop)) {
		ssize_t n = recv(sr->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
		if (n > 0)
			sr->records++;
		tu_sleep_ms(1000);
	}
	return NULL;
}

/* A peer (allowed: our own user) that asks for a long answer and reads it
 * slowly holds the control thread — and so every other query, and the
 * port's destroy — for the answer's budget (2 s) at most.  Each packet had
 * a 2 s send timeout of its own: with 80 connections listed one record a
 * second, destroy waited for the half of them the socket buffer did not
 * hold, one second each. */
Test(mgmt, a_slow_reader_holds_the_control_thread_briefly, .timeout = 120)
{
	struct fltport_server_config cfg = { .on_connect = on_connect,
					     .on_disconnect = on_disconnect,
					     .on_message = on_message,
					     .max_connections = 100 };
	enum { NCONN = 80 };
	static fltport_conn *conns[NCONN];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct wire_hdr h = { .magic = 0x474d5046u, .version = 1, .type = 1, .op = 3 };
	struct slow_reader sr = { .fd = -1 };
	fltport_server *srv;
	const char *name;
	pthread_t t;
	int64_t t0, took;

	tu_private_dir();
	name = tu_port_name("mgmt-slow");
	cr_assert_eq(fltport_server_create(name, &cfg, &srv), 0);
	for (int i = 0; i < NCONN; i++)
		cr_assert_eq(fltport_connect(name, NULL, 0, 0, 5 * SEC, &conns[i], NULL), 0,
			     "connection %d", i);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/.ctl/p.%s", fltport_dir(), name);
	sr.fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_geq(sr.fd, 0);
	cr_assert_eq(connect(sr.fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s: %s", sa.sun_path,
		     strerror(errno));
	cr_assert_eq(send(sr.fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	atomic_init(&sr.stop, false);
	cr_assert_eq(pthread_create(&t, NULL, read_slowly, &sr), 0);
	tu_sleep_ms(300); /* the answer fills the socket */
	for (int i = 0; i < NCONN; i++)
		fltport_close(conns[i]);
	t0 = tu_now_ms();
	fltport_server_destroy(srv);
	took = tu_now_ms() - t0;
	atomic_store(&sr.stop, true);
	pthread_join(t, NULL);
	close(sr.fd);
	cr_expect_gt(sr.records, 0, "the slow reader read nothing");
	cr_expect_lt(took, 10000, "destroy waited %lld ms behind a slow reader", (long long)took);
}

/* A port whose process died is not listed, and its control socket goes. */
Test(mgmt, dead_port_not_listed, .timeout = 60)
{
	char path[512];
	struct fltport_port_info *ports;
	struct stat sb;
	const char *name;
	int fds[2], st;
	size_t n;
	pid_t pid;
	char c;

	tu_private_dir();
	name = tu_port_name("mgmt-dead");
	cr_assert_eq(pipe(fds), 0);
	pid = fork(); /* before any thread of this test */
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		fltport_server *srv;

		close(fds[0]);
		srv = make_port(name, NULL);
		(void)srv;
		(void)!write(fds[1], "R", 1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], &c, 1), 1);
	close(fds[0]);
	cr_assert_eq(fltport_mgmt_ports(&ports, &n, NULL), 0);
	cr_expect_not_null(find_port(ports, n, name), "live port listed");
	fltport_mgmt_free(ports);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert_eq(fltport_mgmt_ports(&ports, &n, NULL), 0);
	cr_expect_null(find_port(ports, n, name), "dead port still listed");
	fltport_mgmt_free(ports);
	snprintf(path, sizeof(path), "%s/.ctl/p.%s", fltport_dir(), name);
	cr_expect_neq(stat(path, &sb), 0, "stale control socket %s left", path);
	cr_expect_eq(fltport_mgmt_port(name, &(struct fltport_port_info){ 0 }), -ENOENT);
}

/* Anyone who can open the port directory can flock it: creating a port
 * (and its control socket) must not wait for such a lock without bound. */
Test(mgmt, directory_locks_held_by_others_do_not_block_create, .timeout = 60)
{
	char ctl[512];
	fltport_server *a, *b;
	const char *na, *nb;
	struct fltport_port_info info;
	int d1, d2;

	tu_private_dir();
	na = tu_port_name("mgmt-lock-a");
	a = make_port(na, NULL);          /* makes .ctl */
	nb = tu_port_name("mgmt-lock-b"); /* (one buffer: after na's last use) */
	snprintf(ctl, sizeof(ctl), "%s/.ctl", fltport_dir());
	d1 = open(fltport_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d2 = open(ctl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(d1, 0);
	cr_assert_geq(d2, 0);
	cr_assert_eq(flock(d1, LOCK_EX), 0);
	cr_assert_eq(flock(d2, LOCK_EX), 0);
	b = make_port(nb, NULL); /* waits a bounded while for each lock, then goes on */
	cr_expect_eq(fltport_mgmt_port(nb, &info), 0, "the new port is listed");
	close(d1);
	close(d2);
	fltport_server_destroy(b);
	fltport_server_destroy(a);
}
