/*
 * The shared-memory transport (transport/ring.c) in itself: granted when
 * asked, refused by a server that runs with FLTPORT_TRANSPORT=socket,
 * every kind of frame intact through a ring that wraps and fills, a full
 * ring bounded by the sender's deadline, a user side that corrupts its
 * ring losing its own connection only, and how the user side waits (on its
 * ring's futex, or with a filter side that offers only the doorbell, in
 * poll()) and ends that wait when the filter process dies.  (Every other test of the suite
 * runs on this transport too with FLTPORT_TRANSPORT=shm: make test-shm.)
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fltport/port.h"
#include "testutil.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* The ring memfd's layout (ring.c): the user → filter ring's head word,
 * and where its records start. */
#define RING_BYTES (16u * 1024u)
#define USER_HEAD_OFF 192u
#define USER_DATA_OFF (4096u + RING_BYTES)

/* ---- a server port in this process ---- */

static fltport_client *_Atomic client;
static atomic_int disconnects;

static int on_connect(fltport_client *c, void *sc, const void *ctx, size_t len,
		      const struct fltport_peer *peer, void **cookie, uint32_t *status)
{
	*cookie = c;
	atomic_store(&client, c);
	return 0;
}

static void on_disconnect(void *cookie)
{
	atomic_fetch_add(&disconnects, 1);
	fltport_client_close(cookie);
}

/* Echo: the input, reversed. */
static uint32_t on_message(void *cookie, const struct fltport_request *req, void *out, size_t cap,
			   size_t *out_len)
{
	const uint8_t *in = req->in;
	size_t n = req->in_len < cap ? req->in_len : cap;

	for (size_t i = 0; i < n; i++)
		((uint8_t *)out)[i] = in[req->in_len - 1 - i];
	*out_len = n;
	for (unsigned i = 0; i < req->nfds; i++)
		close(req->fds[i]);
	return 0x5151;
}

static bool has_client(void *arg)
{
	(void)arg;
	return atomic_load(&client) != NULL;
}

static const char *port;

static const struct fltport_server_config echo_cfg = {
	.on_connect = on_connect,
	.on_disconnect = on_disconnect,
	.on_message = on_message,
	.max_connections = 4,
};

static fltport_server *start(fltport_conn **c, unsigned flags)
{
	fltport_server *srv;
	int rc;

	tu_private_dir();
	port = tu_port_name("shm");
	atomic_store(&client, NULL);
	atomic_store(&disconnects, 0);
	cr_assert_eq(fltport_server_create(port, &echo_cfg, &srv), 0);
	rc = fltport_connect(port, NULL, 0, flags, 10 * SEC, c, NULL);
	cr_assert_eq(rc, 0, "fltport_connect: %s", fltport_strerror(rc));
	cr_assert(tu_wait_until(has_client, NULL, 10000));
	return srv;
}

static void echo_once(fltport_conn *c, size_t len)
{
	uint8_t *in = malloc(len), *out = malloc(len);
	size_t out_len = 0;
	uint32_t status = 0;
	int rc;

	cr_assert(in && out);
	for (size_t i = 0; i < len; i++)
		in[i] = tu_pattern_byte(i, (unsigned)len);
	rc = fltport_request(c, in, len, NULL, 0, out, len, &out_len, &status, 10 * SEC);
	cr_assert_eq(rc, 0, "fltport_request(%zu bytes): %s", len, fltport_strerror(rc));
	cr_assert_eq(out_len, len);
	cr_assert_eq(status, 0x5151);
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(out[i], in[len - 1 - i], "byte %zu of %zu", i, len);
	free(in);
	free(out);
}

Test(shm, granted_when_asked, .timeout = 120)
{
	fltport_conn *c;
	fltport_server *srv = start(&c, FLTPORT_CONNECT_SHM);
	const char *env = getenv("FLTPORT_TRANSPORT");

	cr_assert_str_eq(fltport_conn_transport(c), "shm");
	/* Inline in the ring, the largest that is, and through the socket
	 * (a payload above 4 KiB; one above 64 KiB in a memfd). */
	echo_once(c, 1);
	echo_once(c, 4096);
	echo_once(c, 4097);
	echo_once(c, 200000);
	fltport_close(c);
	if (!env || !*env) { /* not asked: the socket */
		cr_assert_eq(fltport_connect(port, NULL, 0, 0, 10 * SEC, &c, NULL), 0);
		cr_assert_str_eq(fltport_conn_transport(c), "socket");
		echo_once(c, 64);
		fltport_close(c);
	}
	fltport_server_destroy(srv);
}

/* fp_server_peer serving `name` (--echo) with `var` set to `value` in its
 * environment (unset if NULL); this process's own value is left as it was. */
static struct tu_proc spawn_echo_filter(const char *name, const char *var, const char *value)
{
	const char *prev = getenv(var);
	char *saved = prev ? strdup(prev) : NULL;
	struct tu_proc p;

	if (value)
		setenv(var, value, 1);
	else
		unsetenv(var);
	p = tu_spawn("fp_server_peer", (const char *const[]){ "serve", name, "--echo", NULL });
	if (saved)
		setenv(var, saved, 1);
	else
		unsetenv(var);
	free(saved);
	return p;
}

Test(shm, a_server_may_refuse_it, .timeout = 120)
{
	const char *name;
	char line[256];
	struct tu_proc p;
	fltport_conn *c;
	int rc;

	tu_private_dir();
	name = tu_port_name("shmrefuse");
	/* The helper grants the socket only. */
	p = spawn_echo_filter(name, "FLTPORT_TRANSPORT", "socket");
	cr_assert(tu_expect(&p, "LISTENING", line, sizeof(line), 10000));
	rc = fltport_connect(name, NULL, 0, FLTPORT_CONNECT_SHM, 10 * SEC, &c, NULL);
	cr_assert_eq(rc, 0, "fltport_connect: %s", fltport_strerror(rc));
	cr_assert_str_eq(fltport_conn_transport(c), "socket");
	{
		char out[5];
		size_t n = 0;

		rc = fltport_request(c, "abcde", 5, NULL, 0, out, sizeof(out), &n, NULL, 10 * SEC);
		cr_assert_eq(rc, 0, "fltport_request: %s", fltport_strerror(rc));
		cr_assert_eq(n, 5);
		cr_assert_eq(memcmp(out, "edcba", 5), 0);
	}
	fltport_close(c);
	tu_kill(&p, SIGTERM);
	(void)tu_wait(&p, 10000);
}

/* ---- every kind of frame, from several senders at once ---- */

#define SENDERS 4
#define READERS 2

static const size_t sizes[] = { 1, 64, 1000, 4096, 4097, 9000, 70000 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
#define PER_SENDER_MIN 60

struct sender {
	pthread_t t;
	int idx;
	long n;
	int rc;
};

static long per_sender;
static atomic_long received;
static atomic_bool seen_bad;
static atomic_int senders_left;
static uint8_t *seen; /* [sender][seq] */

/* Message k of sender s: a header (s, k), then the pattern; every fifth
 * carries a pipe whose one byte is k % 251. */
static size_t msg_size(long k)
{
	return sizes[k % NSIZES] < 8 ? 8 : sizes[k % NSIZES];
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	uint8_t *buf = malloc(70000);
	fltport_client *cl = atomic_load(&client);

	s->rc = buf ? 0 : -ENOMEM;
	for (long k = 0; k < s->n && s->rc == 0; k++) {
		size_t len = msg_size(k);
		int fd[2] = { -1, -1 };
		bool with_fd = k % 5 == 0;
		uint8_t b = (uint8_t)(k % 251);

		memcpy(buf, &s->idx, 4);
		memcpy(buf + 4, &k, 4);
		for (size_t i = 8; i < len; i++)
			buf[i] = tu_pattern_byte(i, (unsigned)(s->idx * 1000 + k));
		if (with_fd && (pipe(fd) != 0 || write(fd[1], &b, 1) != 1))
			s->rc = -errno;
		if (s->rc == 0)
			s->rc = fltport_send(cl, buf, len, with_fd ? &fd[0] : NULL, with_fd ? 1 : 0,
					     NULL, NULL, NULL, 30 * SEC);
		if (with_fd) {
			close(fd[0]);
			close(fd[1]);
		}
	}
	free(buf);
	atomic_fetch_sub(&senders_left, 1);
	return NULL;
}

static void *reader_main(void *arg)
{
	fltport_conn *c = arg;
	uint8_t *buf = malloc(70000);

	while (buf && atomic_load(&received) < SENDERS * per_sender) {
		struct fltport_msg m;
		int s = -1, k = -1;
		int rc = fltport_get(c, buf, 70000, &m, 200 * MS);
		bool ok;

		if (rc == -ETIMEDOUT && atomic_load(&senders_left) > 0)
			continue;
		if (rc == -ETIMEDOUT)
			break; /* every sender is done: the count tells */
		if (rc != 0) {
			atomic_store(&seen_bad, true);
			break;
		}
		memcpy(&s, buf, 4);
		memcpy(&k, buf + 4, 4);
		ok = s >= 0 && s < SENDERS && k >= 0 && k < per_sender && m.len == msg_size(k) &&
		     m.nfds == (k % 5 == 0 ? 1u : 0u);
		for (size_t i = 8; ok && i < m.len; i++)
			ok = buf[i] == tu_pattern_byte(i, (unsigned)(s * 1000 + k));
		if (ok && m.nfds == 1) {
			uint8_t b = 0;

			ok = read(m.fds[0], &b, 1) == 1 && b == (uint8_t)(k % 251);
		}
		for (unsigned i = 0; i < m.nfds; i++)
			close(m.fds[i]);
		if (!ok || seen[s * per_sender + k]++) {
			atomic_store(&seen_bad, true);
			break;
		}
		atomic_fetch_add(&received, 1);
	}
	free(buf);
	return NULL;
}

Test(shm, every_frame_kind_intact_through_a_ring_that_wraps_and_fills, .timeout = 120)
{
	fltport_conn *c;
	fltport_server *srv = start(&c, FLTPORT_CONNECT_SHM);
	struct sender s[SENDERS];
	pthread_t r[READERS];

	cr_assert_str_eq(fltport_conn_transport(c), "shm");
	per_sender = tu_scaled(700, PER_SENDER_MIN);
	seen = calloc((size_t)(SENDERS * per_sender), 1);
	cr_assert(seen);
	atomic_store(&received, 0);
	atomic_store(&seen_bad, false);
	atomic_store(&senders_left, SENDERS);
	for (int i = 0; i < READERS; i++)
		cr_assert_eq(pthread_create(&r[i], NULL, reader_main, c), 0);
	for (int i = 0; i < SENDERS; i++) {
		s[i] = (struct sender){ .idx = i, .n = per_sender };
		cr_assert_eq(pthread_create(&s[i].t, NULL, sender_main, &s[i]), 0);
	}
	for (int i = 0; i < SENDERS; i++)
		pthread_join(s[i].t, NULL);
	for (int i = 0; i < READERS; i++)
		pthread_join(r[i], NULL);
	for (int i = 0; i < SENDERS; i++)
		cr_assert_eq(s[i].rc, 0, "sender %d: %s", i, fltport_strerror(s[i].rc));
	cr_assert(!atomic_load(&seen_bad), "a message arrived damaged, twice, or not at all");
	cr_assert_eq(atomic_load(&received), SENDERS * per_sender);
	free(seen);
	fltport_close(c);
	fltport_server_destroy(srv);
}

/* ---- an idle server frees a dead connection ---- */

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	cr_assert(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

static int fds_before;

static bool fds_back(void *arg)
{
	(void)arg;
	return count_fds() == fds_before;
}

/* The filter side watches the ring connection of its last request for a
 * moment before it sleeps (a reference held): once that connection is
 * gone, an idle server must still let it go, fds and all. */
Test(shm, an_idle_server_frees_a_dead_connection, .timeout = 120)
{
	fltport_server *srv;
	fltport_conn *c;

	tu_private_dir();
	port = tu_port_name("shmidle");
	atomic_store(&client, NULL);
	atomic_store(&disconnects, 0);
	cr_assert_eq(fltport_server_create(port, &echo_cfg, &srv), 0);
	fds_before = count_fds();
	cr_assert_eq(fltport_connect(port, NULL, 0, FLTPORT_CONNECT_SHM, 10 * SEC, &c, NULL), 0);
	cr_assert_str_eq(fltport_conn_transport(c), "shm");
	for (int i = 0; i < 20; i++)
		echo_once(c, 64);
	fltport_close(c);
	cr_assert(tu_wait_until(fds_back, NULL, 10000),
		  "%d fds open, %d before the connection: the filter side kept it", count_fds(),
		  fds_before);
	cr_assert_eq(atomic_load(&disconnects), 1);
	fltport_server_destroy(srv);
}

/* ---- a full ring: the sender's deadline still holds ---- */

struct fsend {
	pthread_t t;
	int rc;
	int64_t took_ns;
};

static void *full_sender(void *arg)
{
	struct fsend *f = arg;
	static uint8_t buf[4096];
	int64_t t0 = tu_now_ns();

	f->rc = fltport_send(atomic_load(&client), buf, sizeof(buf), NULL, 0, NULL, NULL, NULL,
			     300 * MS);
	f->took_ns = tu_now_ns() - t0;
	return NULL;
}

Test(shm, a_full_ring_ends_at_the_senders_deadline, .timeout = 120)
{
	fltport_conn *c;
	fltport_server *srv = start(&c, FLTPORT_CONNECT_SHM);
	struct fsend f[6];
	struct fltport_msg m;
	char buf[16];

	/* Nobody reads: three 4 KiB records fill the 16 KiB ring, the rest
	 * wait for room until their deadline. */
	for (int i = 0; i < 6; i++)
		cr_assert_eq(pthread_create(&f[i].t, NULL, full_sender, &f[i]), 0);
	for (int i = 0; i < 6; i++) {
		pthread_join(f[i].t, NULL);
		cr_assert_eq(f[i].rc, -ETIMEDOUT, "sender %d: %s", i, fltport_strerror(f[i].rc));
		cr_assert_lt(f[i].took_ns, 10 * SEC, "sender %d took %lld ms", i,
			     (long long)(f[i].took_ns / MS));
	}
	/* Expired messages are never delivered; the ring works again. */
	cr_assert_eq(fltport_get(c, buf, sizeof(buf), &m, 200 * MS), -ETIMEDOUT);
	{
		struct fsend g;
		uint8_t big[4096];

		g.rc = 1;
		cr_assert_eq(pthread_create(&g.t, NULL, full_sender, &g), 0);
		cr_assert_eq(fltport_get(c, big, sizeof(big), &m, 10 * SEC), 0);
		cr_assert_eq(m.len, 4096);
		pthread_join(g.t, NULL);
		cr_assert_eq(g.rc, 0, "send after the drain: %s", fltport_strerror(g.rc));
	}
	fltport_close(c);
	fltport_server_destroy(srv);
}

/* ---- a user side that breaks its ring ---- */

/* This process's mapping of a ring memfd (only the user side maps one
 * here: the server is another process). */
static uint8_t *find_ring(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	uint8_t *at = NULL;

	cr_assert(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo;

		if (strstr(line, "memfd:fltport-ring") && sscanf(line, "%lx-", &lo) == 1) {
			at = (uint8_t *)lo;
			break;
		}
	}
	fclose(f);
	return at;
}

struct req {
	pthread_t t;
	fltport_conn *c;
	int rc;
};

static void *req_main(void *arg)
{
	struct req *q = arg;
	char out[8];

	q->rc = fltport_request(q->c, "ping", 4, NULL, 0, out, sizeof(out), NULL, NULL, 20 * SEC);
	return NULL;
}

Test(shm, a_corrupt_ring_drops_that_connection_only, .timeout = 120)
{
	const char *name;
	char line[256];
	struct tu_proc p;
	fltport_conn *c, *c2;
	struct req q;
	uint8_t *ring;
	_Atomic uint32_t *head;
	uint32_t h0;
	int rc;

	tu_private_dir();
	name = tu_port_name("shmbad");
	p = tu_spawn("fp_server_peer", (const char *const[]){ "serve", name, "--echo", NULL });
	cr_assert(tu_expect(&p, "LISTENING", line, sizeof(line), 10000));
	rc = fltport_connect(name, NULL, 0, FLTPORT_CONNECT_SHM, 10 * SEC, &c, NULL);
	cr_assert_eq(rc, 0, "fltport_connect: %s", fltport_strerror(rc));
	cr_assert_str_eq(fltport_conn_transport(c), "shm");
	ring = find_ring();
	cr_assert(ring, "no fltport-ring mapping in /proc/self/maps");
	head = (_Atomic uint32_t *)(ring + USER_HEAD_OFF);
	/* Stop the filter, queue a request, and break its record before
	 * the filter can read it: a length far beyond the ring. */
	tu_kill(&p, SIGSTOP);
	h0 = atomic_load(head);
	q = (struct req){ .c = c, .rc = 1 };
	cr_assert_eq(pthread_create(&q.t, NULL, req_main, &q), 0);
	for (int i = 0; i < 10000 && atomic_load(head) == h0; i++)
		tu_sleep_ms(1);
	cr_assert_neq(atomic_load(head), h0, "the request never reached the ring");
	{
		uint32_t bad = 0x7FFFFFF0u;

		memcpy(ring + USER_DATA_OFF + h0 % RING_BYTES, &bad, 4);
	}
	kill(p.pid, SIGCONT); /* (tu_kill would wait for an exit) */
	pthread_join(q.t, NULL);
	cr_assert_eq(q.rc, -ENOTCONN, "the request: %s", fltport_strerror(q.rc));
	cr_assert(tu_expect(&p, "DISCONNECT", line, sizeof(line), 10000));
	fltport_close(c);
	/* The filter lives on and serves others. */
	rc = fltport_connect(name, NULL, 0, FLTPORT_CONNECT_SHM, 10 * SEC, &c2, NULL);
	cr_assert_eq(rc, 0, "fltport_connect again: %s", fltport_strerror(rc));
	{
		char out[4];
		size_t n = 0;

		rc = fltport_request(c2, "abcd", 4, NULL, 0, out, sizeof(out), &n, NULL, 10 * SEC);
		cr_assert_eq(rc, 0, "fltport_request: %s", fltport_strerror(rc));
		cr_assert_eq(memcmp(out, "dcba", 4), 0);
	}
	fltport_close(c2);
	tu_kill(&p, SIGTERM);
	(void)tu_wait(&p, 10000);
}

/* ---- how the user side waits, and the filter's death ---- */

struct getter {
	fltport_conn *c;
	atomic_int tid;
	int rc;
};

static void *get_main(void *arg)
{
	struct getter *g = arg;
	struct fltport_msg m;
	char buf[64];

	atomic_store(&g->tid, (int)syscall(SYS_gettid));
	g->rc = fltport_get(g->c, buf, sizeof(buf), &m, 600 * SEC);
	return NULL;
}

static bool get_in_ring_wait(void *arg)
{
	int tid = atomic_load(&((struct getter *)arg)->tid);

	return tid > 0 && tu_task_in_ring_wait(tid);
}

static bool get_in_poll(void *arg)
{
	int tid = atomic_load(&((struct getter *)arg)->tid);
	long nr = tid > 0 ? tu_task_syscall(tid) : -1;

#ifdef SYS_poll
	if (nr == SYS_poll)
		return true;
#endif
	return nr == SYS_ppoll;
}

/* A filter process (a helper; FLTPORT_RING_WAKE=wake in its environment
 * unless NULL), a ring connection to it that answers, and a get blocked
 * for 600 s: it must wait as `waits` says, and end when the filter process
 * is killed (its socket's end: the ring itself never says). */
static void blocked_get_ends_when_the_filter_dies(const char *wake, bool (*waits)(void *),
						  const char *how)
{
	const char *name;
	struct getter g = { .rc = 1 };
	struct timespec bound;
	char line[256], out[5];
	struct tu_proc p;
	size_t n = 0;
	pthread_t t;
	int rc;

	tu_private_dir();
	name = tu_port_name("shmwait");
	p = spawn_echo_filter(name, "FLTPORT_RING_WAKE", wake);
	cr_assert(tu_expect(&p, "LISTENING", line, sizeof(line), 10000));
	rc = fltport_connect(name, NULL, 0, FLTPORT_CONNECT_SHM, 10 * SEC, &g.c, NULL);
	cr_assert_eq(rc, 0, "fltport_connect: %s", fltport_strerror(rc));
	cr_assert_str_eq(fltport_conn_transport(g.c), "shm");
	rc = fltport_request(g.c, "abcde", 5, NULL, 0, out, sizeof(out), &n, NULL, 10 * SEC);
	cr_assert_eq(rc, 0, "fltport_request: %s", fltport_strerror(rc));
	cr_assert_eq(n, 5);
	cr_assert_eq(memcmp(out, "edcba", 5), 0);
	cr_assert_eq(pthread_create(&t, NULL, get_main, &g), 0);
	cr_assert(tu_wait_until(waits, &g, 10000),
		  "the blocked get does not wait %s (system call %ld)", how,
		  tu_task_syscall(atomic_load(&g.tid)));
	tu_kill(&p, SIGKILL);
	(void)tu_wait(&p, 10000);
	clock_gettime(CLOCK_REALTIME, &bound);
	bound.tv_sec += 30;
	cr_assert_eq(pthread_timedjoin_np(t, NULL, &bound), 0,
		     "the filter process died: the get waiting %s did not end", how);
	cr_assert_eq(g.rc, -ENOTCONN, "fltport_get: %s", fltport_strerror(g.rc));
	fltport_close(g.c);
}

/* This process's threads, but for the closer threads (transport/closer.c),
 * which come and go with the fds the server closes. */
static int threads(void)
{
	return tu_thread_count("fltport-clos");
}

static bool threads_back(void *arg)
{
	return threads() == *(int *)arg;
}

static const struct fltport_server_config many_cfg = {
	.on_connect = on_connect,
	.on_disconnect = on_disconnect,
	.on_message = on_message,
	.max_connections = 32,
};

/* A ring connection costs the user side one thread, its receive thread,
 * as a socket connection does (no thread of its own watches the socket
 * for the futex wait: memory per connection, issue 9), and none once it
 * is closed. */
Test(shm, a_ring_connection_costs_one_thread_as_a_socket_one, .timeout = 120)
{
	fltport_conn *c[20];
	fltport_server *srv;
	int before;

	tu_private_dir();
	port = tu_port_name("shmthreads");
	atomic_store(&client, NULL);
	cr_assert_eq(fltport_server_create(port, &many_cfg, &srv), 0);
	before = threads();
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(
			fltport_connect(port, NULL, 0, FLTPORT_CONNECT_SHM, 10 * SEC, &c[i], NULL),
			0);
		cr_assert_str_eq(fltport_conn_transport(c[i]), "shm");
	}
	echo_once(c[7], 64);
	cr_assert_eq(threads(), before + 20, "%d threads for 20 ring connections",
		     threads() - before);
	for (int i = 0; i < 20; i++)
		fltport_close(c[i]);
	cr_assert(tu_wait_until(threads_back, &before, 10000), "%d threads left after close",
		  threads() - before);
	fltport_server_destroy(srv);
}

/* The user side sleeps in one futex wait on its ring (one system call per
 * wake-up, as the raw futex ping-pong); when the filter process dies, the
 * connection's receive thread, which looks at the socket every 100 ms
 * while a caller waits, ends that wait. */
Test(shm, a_get_waits_on_the_ring_futex_and_ends_when_the_filter_dies, .timeout = 120)
{
	blocked_get_ends_when_the_filter_dies(NULL, get_in_ring_wait, "on its ring's futex");
}

/* A filter side that offers only the doorbell (as before the futex wake;
 * FLTPORT_RING_WAKE=doorbell): the user side polls it, and its socket. */
Test(shm, with_a_filter_offering_only_the_doorbell_a_get_polls_it, .timeout = 120)
{
	blocked_get_ends_when_the_filter_dies("doorbell", get_in_poll, "in poll()");
}

/* ---- a dead filter, while the receive thread runs a slow completion ---- */

static sem_t slow_cb_entered, slow_cb_release;

/* A posted get's completion that takes its time (on the receive thread,
 * handed over by the requester that read the message). */
static void on_posted_slow(void *arg, int err, void *buf, const struct fltport_msg *msg)
{
	(void)arg;
	(void)buf;
	(void)msg;
	if (err != 0)
		return;
	sem_post(&slow_cb_entered);
	while (sem_wait(&slow_cb_release) != 0)
		;
}

struct requester {
	fltport_conn *c;
	atomic_int tid;
	atomic_int rc;
	atomic_bool done;
};

static void *request_main(void *arg)
{
	struct requester *q = arg;
	char out[8];
	size_t n = 0;

	atomic_store(&q->tid, (int)syscall(SYS_gettid));
	atomic_store(&q->rc, fltport_request(q->c, "abc", 3, NULL, 0, out, sizeof(out), &n, NULL,
					     600 * SEC));
	atomic_store(&q->done, true);
	return NULL;
}

static bool requester_in_ring_wait(void *arg)
{
	int tid = atomic_load(&((struct requester *)arg)->tid);

	return tid > 0 && tu_task_in_ring_wait(tid);
}

static bool requester_done(void *arg)
{
	return atomic_load(&((struct requester *)arg)->done);
}

/* A requester waits on the ring for a response the filter never sends;
 * a message for a posted get comes, the requester reads it and hands its
 * completion to the receive thread, whose callback takes its time; then
 * the filter process dies.  The requester's wait still ends (-ENOTCONN):
 * it looks at the socket every second itself, and does not depend on the
 * receive thread, which is busy in the callback. */
Test(shm, a_ring_wait_ends_when_the_filter_dies_while_a_completion_runs, .timeout = 120)
{
	static char buf[64];
	struct requester q = { .rc = 1 };
	char line[256];
	const char *name;
	struct tu_proc p;
	struct timespec bound;
	pthread_t t;
	int rc;

	sem_init(&slow_cb_entered, 0, 0);
	sem_init(&slow_cb_release, 0, 0);
	tu_private_dir();
	name = tu_port_name("shmslowcb");
	p = tu_spawn("fp_server_peer",
		     (const char *const[]){ "serve", name, "--block-msg", "--usr2", "send", NULL });
	cr_assert(tu_expect(&p, "LISTENING", line, sizeof(line), 10000));
	rc = fltport_connect(name, NULL, 0, FLTPORT_CONNECT_SHM, 10 * SEC, &q.c, NULL);
	cr_assert_eq(rc, 0, "fltport_connect: %s", fltport_strerror(rc));
	cr_assert_str_eq(fltport_conn_transport(q.c), "shm");
	cr_assert_eq(pthread_create(&t, NULL, request_main, &q), 0);
	cr_assert(tu_expect(&p, "MSG", line, sizeof(line), 10000),
		  "the request never reached the filter");
	cr_assert(tu_wait_until(requester_in_ring_wait, &q, 10000),
		  "the requester does not wait on the ring (system call %ld)",
		  tu_task_syscall(atomic_load(&q.tid)));
	cr_assert_eq(fltport_get_async(q.c, buf, sizeof(buf), on_posted_slow, NULL, NULL), 0);
	kill(p.pid, SIGUSR2); /* the filter sends: the requester reads it for the posted get */
	clock_gettime(CLOCK_REALTIME, &bound);
	bound.tv_sec += 10;
	cr_assert_eq(sem_timedwait(&slow_cb_entered, &bound), 0, "the posted get did not complete");
	tu_kill(&p, SIGKILL);
	(void)tu_wait(&p, 10000);
	cr_assert(
		tu_wait_until(requester_done, &q, 30000),
		"the filter process died: the requester's ring wait did not end while the receive "
		"thread ran a completion");
	cr_assert_eq(atomic_load(&q.rc), -ENOTCONN, "fltport_request: %s",
		     fltport_strerror(atomic_load(&q.rc)));
	sem_post(&slow_cb_release);
	pthread_join(t, NULL);
	fltport_close(q.c);
}
