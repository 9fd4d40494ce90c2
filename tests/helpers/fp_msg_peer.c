/*
 * fp_msg_peer — the user-side service for tests/integration/test_messages.c.
 *
 *   fp_msg_peer <port> <cmd-fd>
 *
 * Connects to <port>, prints "CONNECTED rc=<rc> max=<max_message>", then
 * runs one command per line read from <cmd-fd> (a pipe from the test) and
 * reports each result as one line on stdout.  Results are "key=value"
 * tokens: errors as negative errnos, payloads as hex (up to 64 bytes) and
 * always as a length and an FNV-1a checksum.
 *
 *   GET <cap> <ms>             fltport_get      -> GOT rc= id= len= wr= rcap= nfds= sum= data= fds=
 *   WAITGET <cap> <ms>         prints WAITING, then as GET
 *   AGET <cap> <ms>            fltport_get_async, waits for the callback -> AGOT (as GOT)
 *   REPLY <id|last> <status> <data>   fltport_reply -> REPLIED rc=
 *   REQ <data> <outcap> <none|memfd|nine>  fltport_request -> REQ rc= status= outlen= sum= data= pipe=
 *   POLLFD <ms>                poll(fltport_conn_fd) -> POLLFD r=<0|1>
 *   ECHO <threads> <total>     threads get and echo-reply <total> messages -> ECHOREADY, ECHODONE ...
 *   CANCELTEST                 async get / cancel sequence -> CANCEL... lines
 *   CLOSETEST                  second connection closed with posted gets -> CLOSED ...
 *   QUIT                       fltport_close -> BYE, exit 0
 *
 * <data> is "-" (empty), "x<hex>", "p<len>:<seed>" (the test pattern) or
 * "@fd" (the bytes read through the first fd of the last message).
 * Received fds are reported as <number>/<cloexec 0|1>/<hex of its first
 * bytes, read with pread> and then closed.
 */
#include "testutil.h"

#include <fltport/port.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MS ((int64_t)1000000)
#define HEX_MAX 64

static fltport_conn *conn;
static uint64_t last_id;
static unsigned char fd_data[HEX_MAX];
static size_t fd_data_len;

static void hex(char *out, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = '\0';
}

static int unhex(const char *s, unsigned char *out, size_t cap)
{
	size_t n = strlen(s) / 2;

	if (n > cap)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return (int)n;
}

/* Build the bytes a <data> argument names; *buf is malloc'd (free it). */
static size_t make_data(const char *spec, unsigned char **buf)
{
	size_t len = 0;
	unsigned seed;

	if (spec[0] == 'x') {
		int n;

		*buf = malloc(strlen(spec) / 2 + 1);
		n = unhex(spec + 1, *buf, strlen(spec) / 2 + 1);
		len = n > 0 ? (size_t)n : 0;
	} else if (spec[0] == 'p' && sscanf(spec, "p%zu:%u", &len, &seed) == 2) {
		*buf = malloc(len + 1);
		for (size_t i = 0; i < len; i++)
			(*buf)[i] = tu_pattern_byte(i, seed);
	} else if (strcmp(spec, "@fd") == 0) {
		*buf = malloc(sizeof(fd_data));
		memcpy(*buf, fd_data, fd_data_len);
		len = fd_data_len;
	} else {
		*buf = malloc(1);
	}
	return len;
}

/* Describe, remember (first one) and close the fds of a message. */
static void describe_fds(char *out, const struct fltport_msg *m)
{
	char *p = out;

	*p = '\0';
	for (unsigned i = 0; i < m->nfds && i < FLTPORT_MAX_FDS; i++) {
		unsigned char b[HEX_MAX];
		char h[2 * HEX_MAX + 1];
		int fl = fcntl(m->fds[i], F_GETFD);
		ssize_t r = pread(m->fds[i], b, sizeof(b), 0);

		if (r < 0)
			r = 0;
		hex(h, b, (size_t)r);
		if (i == 0) {
			memcpy(fd_data, b, (size_t)r);
			fd_data_len = (size_t)r;
		}
		p += sprintf(p, "%s%d/%d/%s", i ? ";" : "", m->fds[i],
			     fl >= 0 && (fl & FD_CLOEXEC) ? 1 : 0, h);
		close(m->fds[i]);
	}
}

static void report(const char *what, int rc, const void *buf, const struct fltport_msg *m)
{
	char data[2 * HEX_MAX + 1] = "*";
	char fds[FLTPORT_MAX_FDS * (2 * HEX_MAX + 32) + 1] = "";
	uint64_t sum = 0;

	if (rc == 0) {
		last_id = m->id;
		sum = tu_fnv1a64(buf, m->len);
		if (m->len <= HEX_MAX)
			hex(data, buf, m->len);
		describe_fds(fds, m);
	}
	tu_say("%s rc=%d id=%" PRIu64 " len=%zu wr=%d rcap=%zu nfds=%u sum=%016" PRIx64
	       " data=%s fds=%s",
	       what, rc, rc == 0 ? m->id : 0, m->len, rc == 0 ? (int)m->wants_reply : 0,
	       rc == 0 ? m->reply_cap : 0, rc == 0 ? m->nfds : 0, sum, data, fds);
}

static void cmd_get(size_t cap, long ms, bool announce)
{
	unsigned char *buf = malloc(cap + 1);
	struct fltport_msg m;
	int rc;

	memset(&m, 0, sizeof(m));
	if (announce)
		tu_say("WAITING");
	rc = fltport_get(conn, buf, cap, &m, ms * MS);
	report("GOT", rc, buf, &m);
	free(buf);
}

/* ---- asynchronous gets -------------------------------------------- */

struct async_get {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;
	int err;
	struct fltport_msg msg;
};

static void async_init(struct async_get *a)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
}

static void async_fini(struct async_get *a)
{
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
}

static void async_done(void *arg, int err, void *buf, const struct fltport_msg *msg)
{
	struct async_get *a = arg;

	pthread_mutex_lock(&a->lock);
	a->calls++;
	a->err = err;
	if ((err == 0 || err == -EMSGSIZE) && msg)
		a->msg = *msg;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static bool async_wait(struct async_get *a, long ms)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&a->lock);
	while (a->calls == 0 && pthread_cond_timedwait(&a->cond, &a->lock, &ts) == 0)
		;
	ok = a->calls > 0;
	pthread_mutex_unlock(&a->lock);
	return ok;
}

static int async_err(struct async_get *a)
{
	int err;

	pthread_mutex_lock(&a->lock);
	err = a->calls ? a->err : 1;
	pthread_mutex_unlock(&a->lock);
	return err;
}

static int async_calls(struct async_get *a)
{
	int n;

	pthread_mutex_lock(&a->lock);
	n = a->calls;
	pthread_mutex_unlock(&a->lock);
	return n;
}

static void cmd_aget(size_t cap, long ms)
{
	unsigned char *buf = malloc(cap + 1);
	struct async_get a;
	int rc;

	async_init(&a);
	rc = fltport_get_async(conn, buf, cap, async_done, &a, NULL);
	if (rc != 0) {
		tu_say("AGOT post=%d", rc);
	} else if (!async_wait(&a, ms)) {
		/* Do not free buf while the get may still complete. */
		tu_say("AGOT post=0 callback=none");
		fltport_cancel_gets(conn);
		async_wait(&a, 10000);
	} else {
		report("AGOT", a.err, buf, &a.msg);
	}
	async_fini(&a);
	free(buf);
}

/* ---- requests ------------------------------------------------------ */

static void request_fds(const char *mode, int *fds, unsigned *nfds, int *pipe_rd)
{
	static const char text[] = "from helper";
	int p[2];

	*nfds = 0;
	*pipe_rd = -1;
	if (strcmp(mode, "memfd") == 0) {
		fds[0] = memfd_create("fp_msg_peer", MFD_CLOEXEC);
		if (fds[0] < 0 || write(fds[0], text, strlen(text)) != (ssize_t)strlen(text) ||
		    pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
			tu_say("REQ setup-failed errno=%d", errno);
			exit(4);
		}
		fds[1] = p[1];
		*pipe_rd = p[0];
		*nfds = 2;
	} else if (strcmp(mode, "nine") == 0) {
		for (unsigned i = 0; i < FLTPORT_MAX_FDS + 1; i++)
			fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		*nfds = FLTPORT_MAX_FDS + 1;
	}
}

static void cmd_req(const char *spec, size_t out_cap, const char *mode)
{
	unsigned char *in, *out = malloc(out_cap + 1);
	size_t in_len = make_data(spec, &in), out_len = 0;
	int fds[FLTPORT_MAX_FDS + 1], pipe_rd;
	unsigned nfds;
	uint32_t status = 0;
	char data[2 * HEX_MAX + 1] = "*", piped[2 * HEX_MAX + 1] = "";
	int rc;

	request_fds(mode, fds, &nfds, &pipe_rd);
	rc = fltport_request(conn, in, in_len, fds, nfds, out_cap ? out : NULL, out_cap, &out_len,
			     &status, 10000 * MS);
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	if (pipe_rd >= 0) {
		unsigned char b[HEX_MAX];
		ssize_t r = read(pipe_rd, b, sizeof(b));

		hex(piped, b, r > 0 ? (size_t)r : 0);
		close(pipe_rd);
	}
	if (rc == 0 && out_len <= HEX_MAX)
		hex(data, out, out_len);
	tu_say("REQ rc=%d status=0x%08" PRIx32 " outlen=%zu sum=%016" PRIx64 " data=%s pipe=%s", rc,
	       rc == 0 ? status : 0, rc == 0 ? out_len : 0, rc == 0 ? tu_fnv1a64(out, out_len) : 0,
	       data, piped);
	free(in);
	free(out);
}

static void cmd_reply(const char *idspec, const char *status, const char *spec)
{
	uint64_t id = strcmp(idspec, "last") == 0 ? last_id : strtoull(idspec, NULL, 0);
	unsigned char *data;
	size_t len = make_data(spec, &data);
	int rc;

	rc = fltport_reply(conn, id, (uint32_t)strtoul(status, NULL, 0), data, len);
	tu_say("REPLIED rc=%d", rc);
	free(data);
}

static void cmd_pollfd(long ms)
{
	struct pollfd pfd = { .fd = fltport_conn_fd(conn), .events = POLLIN };
	int r;

	do
		r = poll(&pfd, 1, (int)ms);
	while (r < 0 && errno == EINTR);
	tu_say("POLLFD r=%d", r > 0 && (pfd.revents & POLLIN) ? 1 : 0);
}

/* ---- many readers echoing ---------------------------------------- */

struct echo {
	pthread_mutex_t lock;
	long total, taken, errors, replyfail, bad;
	unsigned *seen;
	uint64_t *ids;
	atomic_bool stop;
};

static void *echo_main(void *arg)
{
	struct echo *e = arg;
	unsigned char buf[4096];

	while (!atomic_load(&e->stop)) {
		struct fltport_msg m;
		uint32_t seq;
		int rc = fltport_get(conn, buf, sizeof(buf), &m, 200 * MS);

		if (rc == -ETIMEDOUT)
			continue;
		pthread_mutex_lock(&e->lock);
		if (rc != 0) {
			e->errors++;
			pthread_mutex_unlock(&e->lock);
			break;
		}
		if (m.len < sizeof(seq) || !m.wants_reply) {
			e->bad++;
		} else {
			memcpy(&seq, buf, sizeof(seq));
			if (seq < e->total)
				e->seen[seq]++;
			else
				e->bad++;
		}
		if (e->taken < e->total)
			e->ids[e->taken] = m.id;
		if (++e->taken >= e->total)
			atomic_store(&e->stop, true);
		pthread_mutex_unlock(&e->lock);
		if (fltport_reply(conn, m.id, (uint32_t)m.len, buf, m.len) != 0) {
			pthread_mutex_lock(&e->lock);
			e->replyfail++;
			pthread_mutex_unlock(&e->lock);
		}
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void echo_summary(struct echo *e)
{
	long dups = 0, missing = 0, distinct = 0, n = e->taken < e->total ? e->taken : e->total;

	for (long i = 0; i < e->total; i++) {
		dups += e->seen[i] > 1;
		missing += e->seen[i] == 0;
	}
	qsort(e->ids, (size_t)n, sizeof(*e->ids), cmp_u64);
	for (long i = 0; i < n; i++)
		distinct += i == 0 || e->ids[i] != e->ids[i - 1];
	tu_say("ECHODONE taken=%ld dups=%ld missing=%ld bad=%ld errors=%ld replyfail=%ld ids=%ld",
	       e->taken, dups, missing, e->bad, e->errors, e->replyfail, distinct);
}

static void cmd_echo(int nthreads, long total)
{
	struct echo e = { .total = total };
	pthread_t th[64];
	int64_t end = tu_now_ms() + 40000;

	if (nthreads > 64)
		nthreads = 64;
	pthread_mutex_init(&e.lock, NULL);
	e.seen = calloc((size_t)total, sizeof(*e.seen));
	e.ids = calloc((size_t)total, sizeof(*e.ids));
	for (int i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, echo_main, &e);
	tu_say("ECHOREADY");
	while (!atomic_load(&e.stop) && tu_now_ms() < end)
		tu_sleep_ms(5);
	atomic_store(&e.stop, true);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	echo_summary(&e);
	free(e.seen);
	free(e.ids);
	pthread_mutex_destroy(&e.lock);
}

/* ---- cancellation --------------------------------------------------- */

struct blocked_get {
	pthread_t th;
	atomic_int rc;
	atomic_bool done;
};

static void *blocked_main(void *arg)
{
	struct blocked_get *b = arg;
	unsigned char buf[64];
	struct fltport_msg m;

	atomic_store(&b->rc, fltport_get(conn, buf, sizeof(buf), &m, 20000 * MS));
	atomic_store(&b->done, true);
	return NULL;
}

/* A blocked get cannot be seen from outside: cancel until it has left. */
static void cancel_blocked_get(void)
{
	struct blocked_get b = { .rc = 1 };
	int64_t end = tu_now_ms() + 15000;

	pthread_create(&b.th, NULL, blocked_main, &b);
	while (!atomic_load(&b.done) && tu_now_ms() < end) {
		fltport_cancel_gets(conn);
		tu_sleep_ms(10);
	}
	pthread_join(b.th, NULL);
	tu_say("BLOCKED rc=%d", atomic_load(&b.rc));
}

static void cmd_canceltest(void)
{
	static unsigned char buf[3][64];
	struct async_get a[3];
	uint64_t tok[3] = { 0, 0, 0 };
	int rc[3];

	for (int i = 0; i < 3; i++) {
		async_init(&a[i]);
		rc[i] = fltport_get_async(conn, buf[i], sizeof(buf[i]), async_done, &a[i], &tok[i]);
	}
	tu_say("POSTED rc=%d,%d,%d distinct=%d", rc[0], rc[1], rc[2],
	       tok[0] != tok[1] && tok[1] != tok[2] && tok[0] != tok[2]);
	rc[0] = fltport_cancel_get(conn, tok[0]);
	tu_say("CANCEL1 rc=%d err=%d calls=%d", rc[0], async_err(&a[0]), async_calls(&a[0]));
	rc[0] = fltport_cancel_get(conn, tok[0]);
	tu_say("CANCEL1AGAIN rc=%d calls=%d", rc[0], async_calls(&a[0]));
	rc[0] = fltport_cancel_gets(conn);
	tu_say("CANCELALL rc=%d err1=%d err2=%d calls=%d", rc[0], async_err(&a[1]),
	       async_err(&a[2]), async_calls(&a[0]) + async_calls(&a[1]) + async_calls(&a[2]));
	tu_say("CANCELNONE rc=%d", fltport_cancel_gets(conn));
	cancel_blocked_get();
	for (int i = 0; i < 3; i++)
		async_fini(&a[i]);
}

static void cmd_closetest(const char *port)
{
	static unsigned char buf[2][64];
	struct async_get a[2];
	fltport_conn *c2;
	int rc, posted[2];

	rc = fltport_connect(port, NULL, 0, 0, 10000 * MS, &c2, NULL);
	if (rc != 0) {
		tu_say("CLOSED connect=%d", rc);
		return;
	}
	for (int i = 0; i < 2; i++) {
		async_init(&a[i]);
		posted[i] = fltport_get_async(c2, buf[i], sizeof(buf[i]), async_done, &a[i], NULL);
	}
	fltport_close(c2);
	tu_say("CLOSED connect=0 posted=%d,%d calls=%d,%d err0=%d err1=%d", posted[0], posted[1],
	       async_calls(&a[0]), async_calls(&a[1]), async_err(&a[0]), async_err(&a[1]));
	for (int i = 0; i < 2; i++)
		async_fini(&a[i]);
}

/* ---- main loop ------------------------------------------------------ */

static void run(const char *port, const char *line)
{
	char op[32] = "", a[256] = "", b[256] = "", c[256] = "";

	sscanf(line, "%31s %255s %255s %255s", op, a, b, c);
	if (strcmp(op, "GET") == 0)
		cmd_get(strtoul(a, NULL, 0), strtol(b, NULL, 0), false);
	else if (strcmp(op, "WAITGET") == 0)
		cmd_get(strtoul(a, NULL, 0), strtol(b, NULL, 0), true);
	else if (strcmp(op, "AGET") == 0)
		cmd_aget(strtoul(a, NULL, 0), strtol(b, NULL, 0));
	else if (strcmp(op, "REPLY") == 0)
		cmd_reply(a, b, c);
	else if (strcmp(op, "REQ") == 0)
		cmd_req(a, strtoul(b, NULL, 0), c);
	else if (strcmp(op, "POLLFD") == 0)
		cmd_pollfd(strtol(a, NULL, 0));
	else if (strcmp(op, "ECHO") == 0)
		cmd_echo(atoi(a), strtol(b, NULL, 0));
	else if (strcmp(op, "CANCELTEST") == 0)
		cmd_canceltest();
	else if (strcmp(op, "CLOSETEST") == 0)
		cmd_closetest(port);
	else
		tu_say("UNKNOWN %s", line);
}

int main(int argc, char **argv)
{
	char line[1024];
	uint32_t status = 0;
	FILE *in;
	int rc;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	if (argc != 3 || !(in = fdopen(atoi(argv[2]), "r"))) {
		fprintf(stderr, "usage: fp_msg_peer <port> <cmd-fd>\n");
		return 2;
	}
	rc = fltport_connect(argv[1], NULL, 0, 0, 10000 * MS, &conn, &status);
	tu_say("CONNECTED rc=%d max=%zu", rc, rc == 0 ? fltport_conn_max_message(conn) : 0);
	if (rc != 0)
		return 3;
	while (fgets(line, sizeof(line), in)) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "QUIT") == 0)
			break;
		run(argv[1], line);
	}
	fltport_close(conn);
	fclose(in);
	tu_say("BYE");
	return 0;
}
