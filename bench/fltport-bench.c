/*
 * fltport-bench: libfltport against raw baselines, measured in one run.
 *
 * Every fltport row is compared with a raw AF_UNIX SOCK_SEQPACKET baseline
 * measured by the same program a few seconds earlier, so results from
 * different machines or runs are comparable as ratios only.
 *
 *   raw-pingpong       64-byte ping-pong over a socketpair, two processes (baseline)
 *   fp-request         fltport_request → message callback → response, 64 B each way;
 *                      the client (one thread) in the peer process, timed there
 *   fp-send-reply      fltport_send with reply (filter) → fltport_get + fltport_reply
 *                      (service), 64 B each way
 *   fp-send-noreply    fltport_send without reply: completes when the service takes it
 *   nng-reqrep         nng REQ/REP over ipc:// (reqrep.c), 64 B each way
 *   zmq-reqrep         ZeroMQ REQ/REP over ipc:// (reqrep.c), 64 B each way
 *   raw-futex          64-byte ping-pong through a shared mapping, FUTEX_WAIT/FUTEX_WAKE
 *                      on a word (futex.c): the floor for cross-process wake-ups (baseline)
 *   shm-request        fp-request and fp-send-reply on the shared-memory transport
 *   shm-send-reply     (FLTPORT_CONNECT_SHM: transport_unavailable() decides)
 *   …-4k               the same with 4 KiB each way (raw-pingpong-4k, raw-futex-4k are
 *                      the baselines)
 *   raw-4x4            4 threads, each ping-ponging on its own socketpair with one of
 *                      4 echo threads in the peer (baseline); raw-futex-4x4 likewise
 *   fp-send-reply-4x4  4 sender threads on one client port, 4 reader threads on the
 *                      connection in the service; fp-request-4x4: 4 requesting threads
 *                      on one connection; nng/zmq-reqrep-4x4: 4 requesters (reqrep.h)
 *   raw-1mib           1 MiB over a socketpair in 16 datagrams of 64 KiB, then a
 *                      64-byte acknowledgement (baseline)
 *   fp-1mib            fltport_send of 1 MiB with a 64-byte reply
 *
 * End-to-end rows (--e2e, root only; e2e.c): open()+close() of a small file
 * on a tmpfs the bench mounts in its own mount namespace, timed in a separate
 * opener process (the engine allows its own process unasked):
 *
 *   e2e-bare           no listener (baseline of e2e-cached, e2e-scanner-hit)
 *   e2e-fanotify-raw   a minimal raw fanotify listener answering FAN_ALLOW (the floor)
 *   e2e-fanotify-raw-info, e2e-fanotify-raw-ask, e2e-fanotify-raw-info-ask,
 *   e2e-fanotify-raw-cached
 *                      the same raw listener doing an engine row's work and
 *                      nothing of fltport's: the path and identity the
 *                      engine's default hands a callback; the event fd to a
 *                      service process over a raw SEQPACKET socket and its
 *                      64-byte answer (peer "fd-echo"); both; the engine
 *                      cache's ignore mark placed with its first answer.
 *                      Each is the
 *                      floor of the engine row that does the same work
 *                      (e2e_floor[]), measured in the same run
 *   e2e-engine-allow   the filter engine, pre_open returns FLTPORT_ALLOW
 *   e2e-engine-port    the filter engine, pre_open asks a service process over
 *                      a port (fltport_send of the event fd, reply wanted)
 *   e2e-engine-allow-lazy, e2e-engine-port-lazy
 *                      the same two with FLTPORT_FILTER_LAZY_INFO and
 *                      FLTPORT_FILTER_NO_CACHE: no path, identity or lease
 *                      per event unless the callback asks
 *   e2e-engine-allow-minimal
 *                      e2e-engine-allow-lazy with FLTPORT_FILTER_NO_PIDFD too:
 *                      no pidfd per event (identity and trust by pid)
 *   e2e-cached         the filter engine after FLTPORT_ALLOW_CACHE: the kernel
 *                      answers from the ignore mark
 *
 * Scanner rows (--e2e too, issue 10; scan.c): the same opener on a tmpfs of
 * clean files, each opened once by a miss row (a hit row reopens a few):
 *
 *   clamav-scan-only         open + in-process cl_scandesc + close of each
 *                            file: ClamAV's engine alone (the floor)
 *   e2e-scanner-bare         the hit row's opens (same opener, files, tmpfs)
 *                            before any listener: its like-for-like baseline
 *   e2e-scanner-pattern-miss fltport-scanner + fltport-scanuser, built-in pattern
 *   e2e-scanner-hit          the same programs, files already scanned clean
 *   e2e-scanner-clamav-miss  fltport-scanuser --clamav, a one-signature database
 *   e2e-clamonacc-miss       Debian's clamd + clamonacc --fdpass, prevention on,
 *   e2e-clamonacc-hit        the same database; files new, then reopened
 *
 * Processes: this program is the coordinator and the filter (server port);
 * each row's peer is this same binary, started by fork + exec of
 * /proc/self/exe with "--peer ROLE ..." (never fork without exec: the
 * filter process has threads).  Every wait is bounded: fltport calls carry a
 * deadline and a watchdog alarm ends both processes if a row overruns.
 *
 * Measurement: a warm-up, then a fixed time (or until MAX_SAMPLES), each
 * iteration timed with CLOCK_MONOTONIC.  ops/s = measured iterations /
 * measured time; median and p99 from the per-iteration samples; cpu/op and
 * csw/op = CPU time and context switches of both processes (getrusage,
 * warm-up included) per iteration.  ratio = baseline ops/s ÷ row ops/s,
 * i.e. time per operation relative to the baseline (1.15 = 15 % slower).
 * mallocs/op = malloc/calloc/realloc calls in all processes of the row
 * during the measured iterations, per iteration (alloc_count.h).
 * --json FILE writes every row and the targets as JSON.
 *
 * Exits non-zero if any fltport call (or any baseline system call) fails.
 * Uses only the public API in <fltport/port.h> and <fltport/filter.h>.
 * Other modules: e2e.c (end-to-end rows), futex.c (raw-futex), reqrep.c
 * (nng, ZeroMQ), alloc_count.c (the allocation counter).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fltport/port.h>

#include "alloc_count.h"
#include "e2e.h"
#include "futex.h"
#include "reqrep.h"
#include "scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORT_NAME "\\BenchPort"
#define MSG_SIZE 64u
#define MSG_4K 4096u
#define LARGE_SIZE (1u << 20)
#define RAW_CHUNK (64u << 10) /* raw 1 MiB: SEQPACKET datagrams of this size */
#define MT_THREADS 4u
#define MAX_SAMPLES (1u << 21) /* per thread; a row stops early when full */
#define NS_PER_SEC 1000000000LL
#define OP_TIMEOUT_NS (10 * NS_PER_SEC)  /* one fltport call */
#define GET_TIMEOUT_NS (30 * NS_PER_SEC) /* a service reader waiting for work */
#define STEP_TIMEOUT_S 10                /* connect / disconnect / child exit */
#define WATCHDOG_SLACK_S 30              /* per row, above its planned time */
#define MAX_PEERS 2                      /* peer processes alive at once */
#define STOP_MSG "STOP"
#define STOP_LEN 4u
#define MALLOC_ZERO 0.01 /* mallocs/op below this is "0 per message" (boundary ops) */
#define SCAN_SETUP_NS (90 * NS_PER_SEC) /* start or stop a scanner row's programs */

/* fltport-scanner and fltport-scanuser (the build's bin/, from CMake). */
#ifndef BENCH_BIN_DIR
#define BENCH_BIN_DIR "bin"
#endif

struct opts {
	int64_t warm_ns;
	int64_t run_ns;
	int64_t large_run_ns;
	int64_t e2e_run_ns;
	bool quick;
	bool memory;           /* --memory: run_memory() */
	const char *json_path; /* --json FILE, or NULL */
};

static struct opts opt = {
	.warm_ns = NS_PER_SEC / 2,
	.run_ns = 5 * NS_PER_SEC,
	.large_run_ns = 4 * NS_PER_SEC,
	.e2e_run_ns = 3 * NS_PER_SEC,
};

/* Process-wide state used by the error and watchdog paths. */
static const char *me = "fltport-bench";
static bool is_peer;
static volatile sig_atomic_t peers[MAX_PEERS]; /* running peers' pids; 0 = free slot */
static char bench_dir[64];                     /* private FLTPORT_DIR, or "" */
static fltport_server *bench_srv;
static char ipc_dir[64]; /* private directory of the ipc:// sockets, or "" */
static char ipc_paths[REQREP_PATHS_MAX][128];
static int ipc_npaths;
static int alloc_fd = -1; /* the shared allocation counter, for the peers */

/* Remove the ipc:// socket files and their directory.  Async-signal-safe. */
static void ipc_dir_remove(void)
{
	if (!ipc_dir[0])
		return;
	for (int i = 0; i < ipc_npaths; i++)
		unlink(ipc_paths[i]);
	rmdir(ipc_dir);
	ipc_dir[0] = '\0';
}

/* SIGKILL every running peer.  Async-signal-safe. */
static void kill_peers(void)
{
	for (unsigned i = 0; i < MAX_PEERS; i++) {
		pid_t pid = peers[i];

		if (pid > 0)
			kill(pid, SIGKILL);
	}
}

/* Empty the directory open at `fd`: its files, and its directories down to
 * `depth` more levels.  Async-signal-safe. */
static void empty_dir(int fd, int depth)
{
	char buf[2048];
	ssize_t n;

	while ((n = getdents64(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *de = (struct dirent64 *)(buf + off);
			int sub;

			off += de->d_reclen;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (de->d_type != DT_DIR) {
				unlinkat(fd, de->d_name, 0);
				continue;
			}
			sub = depth > 0 ? openat(fd, de->d_name,
						 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
					: -1;
			if (sub >= 0) {
				empty_dir(sub, depth - 1);
				close(sub);
			}
			unlinkat(fd, de->d_name, AT_REMOVEDIR);
		}
	}
}

/* Remove the port directory `dir` and what is left in it: sockets of a
 * killed program, the library's management subdirectory (.ctl) and its
 * sockets.  Async-signal-safe. */
static void remove_port_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0) {
		empty_dir(fd, 2);
		close(fd);
	}
	rmdir(dir);
}

/* What every error path undoes, in this order: the peers and the scanner
 * rows' programs (killed; the programs also reaped), the scanner rows'
 * tmpfs, the e2e tmpfs, the directories.  Async-signal-safe. */
static void abort_cleanup(void)
{
	kill_peers();
	scan_proc_kill_all();
	scan_env_abort();
	e2e_fs_abort();
	if (is_peer)
		return;
	ipc_dir_remove();
	if (bench_dir[0])
		remove_port_dir(bench_dir);
	bench_dir[0] = '\0';
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

/* Print an error, end the peers and the port, remove the directories (and
 * the e2e tmpfs), exit 1.  Any thread; never returns. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: FAILED: %s\n", me, line);
	fflush(stdout);
	fflush(stderr);
	if (!is_peer) {
		kill_peers();
		scan_proc_kill_all();
		if (bench_srv)
			fltport_server_close(bench_srv); /* removes the socket file */
		abort_cleanup();
	}
	_exit(1);
}

static void on_alarm(int sig)
{
	static const char text[] = ": FAILED: watchdog: a step overran its time, giving up\n";
	ssize_t rc;

	(void)sig;
	abort_cleanup();
	rc = write(STDERR_FILENO, me, strlen(me));
	rc = write(STDERR_FILENO, text, sizeof(text) - 1);
	(void)rc;
	_exit(3);
}

/* Ctrl-C (SIGINT), SIGTERM, SIGHUP in the coordinator: undo everything as
 * the watchdog does, then die of the signal.  The peers get a terminal's
 * SIGINT too; the scanner rows' programs, in process groups of their own,
 * are killed here. */
static void on_interrupt(int sig)
{
	static const char text[] = ": interrupted: programs stopped, mounts and directories "
				   "removed\n";
	ssize_t rc;

	abort_cleanup();
	rc = write(STDERR_FILENO, me, strlen(me));
	rc = write(STDERR_FILENO, text, sizeof(text) - 1);
	(void)rc;
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Arm the watchdog for a step expected to take `ns`. */
static void watchdog(int64_t ns)
{
	alarm((unsigned)(ns / NS_PER_SEC) + WATCHDOG_SLACK_S);
}

/* ------------------------------------------------------------------ */
/* Timed loops and statistics                                           */
/* ------------------------------------------------------------------ */

/* What one row measured.  Also travels from a peer through a pipe. */
struct result {
	uint64_t ops;     /* measured iterations */
	uint64_t all_ops; /* with the warm-up */
	double ops_per_s;
	double median_us;
	double p99_us;
	uint64_t allocs; /* allocation calls, all processes, measured iterations */
	bool allocs_ok;  /* allocations were counted (alloc_count_active()) */
};

/* One timing thread: runs op() until end_ns, recording iterations that
 * start at or after start_ns. */
struct timed {
	int (*op)(void *arg); /* one iteration: 0, a negative errno, or 1: no more */
	void *arg;
	const char *what; /* for the error message */
	int64_t start_ns;
	int64_t end_ns;
	uint32_t *samples;
	size_t n;
	uint64_t all_ops;
	int64_t last_ns; /* end of the last measured iteration */
	uint64_t alloc0; /* allocation count before the first measured iteration */
	uint64_t alloc1; /* and after the last one */
	int err;
};

static void *timed_run(void *arg)
{
	struct timed *t = arg;

	for (;;) {
		int64_t t1 = now_ns(), t2;
		int rc;

		if (t1 >= t->end_ns || t->n == MAX_SAMPLES)
			break;
		if (t1 >= t->start_ns && !t->n)
			t->alloc0 = alloc_count();
		rc = t->op(t->arg);
		t2 = now_ns();
		if (rc < 0) {
			t->err = rc;
			break;
		}
		if (rc > 0)
			break; /* nothing left to do (a miss row opened every file) */
		t->all_ops++;
		if (t1 >= t->start_ns) {
			int64_t d = t2 - t1;

			t->samples[t->n++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
			t->last_ns = t2;
			t->alloc1 = alloc_count();
		}
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Run `n` timing threads (inline when n == 1) over ops[i]/args[i] for a
 * warm-up then `run_ns`, and summarise them into *res. */
static void measure(int (*op)(void *), void *const args[], unsigned n, const char *what,
		    int64_t run_ns, struct result *res)
{
	struct timed t[MT_THREADS];
	pthread_t tid[MT_THREADS];
	int64_t start = now_ns() + opt.warm_ns, last = start;
	uint32_t *all;
	size_t total = 0, k = 0;
	uint64_t alloc0 = UINT64_MAX, alloc1 = 0;

	if (n > MT_THREADS)
		fail("measure: %u threads", n);
	memset(t, 0, sizeof(t));
	for (unsigned i = 0; i < n; i++) {
		t[i].op = op;
		t[i].arg = args[i];
		t[i].what = what;
		t[i].start_ns = start;
		t[i].end_ns = start + run_ns;
		t[i].samples = malloc(MAX_SAMPLES * sizeof(uint32_t));
		if (!t[i].samples)
			fail("out of memory");
	}
	if (n == 1) {
		timed_run(&t[0]);
	} else {
		for (unsigned i = 0; i < n; i++) {
			int rc = pthread_create(&tid[i], NULL, timed_run, &t[i]);

			if (rc)
				fail("pthread_create: %s", strerror(rc));
		}
		for (unsigned i = 0; i < n; i++)
			pthread_join(tid[i], NULL);
	}

	memset(res, 0, sizeof(*res));
	for (unsigned i = 0; i < n; i++) {
		if (t[i].err)
			fail("%s: %s", what, fltport_strerror(t[i].err));
		total += t[i].n;
		res->all_ops += t[i].all_ops;
		if (t[i].last_ns > last)
			last = t[i].last_ns;
		/* The counter is monotonic: the union of the threads' windows. */
		if (t[i].n && t[i].alloc0 < alloc0)
			alloc0 = t[i].alloc0;
		if (t[i].n && t[i].alloc1 > alloc1)
			alloc1 = t[i].alloc1;
	}
	if (!total)
		fail("%s: no iteration completed in the measured time", what);
	all = malloc(total * sizeof(uint32_t));
	if (!all)
		fail("out of memory");
	for (unsigned i = 0; i < n; i++) {
		memcpy(all + k, t[i].samples, t[i].n * sizeof(uint32_t));
		k += t[i].n;
		free(t[i].samples);
	}
	qsort(all, total, sizeof(uint32_t), cmp_u32);
	res->ops = total;
	res->ops_per_s = (double)total * NS_PER_SEC / (double)(last - start);
	res->median_us = all[total / 2] / 1000.0;
	res->p99_us = all[(total * 99 + 99) / 100 - 1] / 1000.0;
	res->allocs = alloc1 - alloc0;
	res->allocs_ok = alloc_count_active();
	free(all);
}

/* ------------------------------------------------------------------ */
/* Raw baselines: one iteration                                         */
/* ------------------------------------------------------------------ */

struct raw_ctx {
	int fd;
	size_t len;         /* message bytes (ping-pong rows) */
	unsigned char *buf; /* LARGE_SIZE bytes for the 1 MiB row, else len */
	unsigned char ack[RAW_CHUNK];
};

/* Send `len` bytes as one datagram; 0 or -errno. */
static int raw_send(int fd, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = send(fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* Receive one datagram of exactly `len` bytes (0 = EOF is -ECONNRESET). */
static int raw_recv(int fd, void *buf, size_t cap, size_t len)
{
	ssize_t n;

	do
		n = recv(fd, buf, cap, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	return (size_t)n == len ? 0 : -EIO;
}

static int op_raw_pingpong(void *arg)
{
	struct raw_ctx *c = arg;
	int rc = raw_send(c->fd, c->buf, c->len);

	return rc ? rc : raw_recv(c->fd, c->ack, sizeof(c->ack), c->len);
}

/* raw-futex: one round trip through the shared mapping. */
struct futex_ctx {
	struct futex_pair *pair;
	size_t len;
	unsigned char msg[FUTEX_MSG_MAX];
	unsigned char reply[FUTEX_MSG_MAX];
};

static int op_futex(void *arg)
{
	struct futex_ctx *c = arg;

	return futex_roundtrip(c->pair, c->msg, c->reply, c->len, OP_TIMEOUT_NS);
}

/* nng-reqrep, zmq-reqrep: one REQ/REP round trip by requester `thread`. */
struct reqrep_ctx {
	struct reqrep_client *client;
	unsigned thread;
	size_t len;
	unsigned char msg[MSG_4K];
	unsigned char reply[MSG_4K];
};

static int op_reqrep(void *arg)
{
	struct reqrep_ctx *c = arg;

	return reqrep_roundtrip(c->client, c->thread, c->msg, c->reply, c->len);
}

static int op_raw_large(void *arg)
{
	struct raw_ctx *c = arg;

	for (size_t off = 0; off < LARGE_SIZE; off += RAW_CHUNK) {
		int rc = raw_send(c->fd, c->buf + off, RAW_CHUNK);

		if (rc)
			return rc;
	}
	return raw_recv(c->fd, c->ack, sizeof(c->ack), MSG_SIZE);
}

/* ------------------------------------------------------------------ */
/* fltport: one iteration                                               */
/* ------------------------------------------------------------------ */

struct fp_ctx {
	fltport_conn *conn;     /* user side (fp-request) */
	fltport_client *client; /* filter side (sends) */
	unsigned char *buf;     /* what is sent: len bytes */
	size_t len;
	bool want_reply;
	size_t reply_cap; /* reply capacity = the reply expected (reply_size(len)) */
	unsigned char reply[MSG_4K];
};

/* The reply to a message of `len` bytes: an echo up to 4 KiB, else 64 B. */
static size_t reply_size(size_t len)
{
	return len <= MSG_4K ? len : MSG_SIZE;
}

static int op_fp_request(void *arg)
{
	struct fp_ctx *c = arg;
	size_t out_len = 0;
	uint32_t status = 1;
	int rc;

	rc = fltport_request(c->conn, c->buf, c->len, NULL, 0, c->reply, c->reply_cap, &out_len,
			     &status, OP_TIMEOUT_NS);
	if (rc)
		return rc;
	return out_len == c->reply_cap && status == 0 ? 0 : -EIO;
}

static int op_fp_send(void *arg)
{
	struct fp_ctx *c = arg;
	size_t reply_len = c->reply_cap;
	uint32_t status = 1;
	int rc;

	if (!c->want_reply)
		return fltport_send(c->client, c->buf, c->len, NULL, 0, NULL, NULL, NULL,
				    OP_TIMEOUT_NS);
	rc = fltport_send(c->client, c->buf, c->len, NULL, 0, c->reply, &reply_len, &status,
			  OP_TIMEOUT_NS);
	if (rc)
		return rc;
	return reply_len == c->reply_cap && status == 0 ? 0 : -EIO;
}

/* ------------------------------------------------------------------ */
/* Peer processes (--peer ROLE ...)                                     */
/* ------------------------------------------------------------------ */

static long arg_long(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		fail("bad number \"%s\"", s);
	return v;
}

/* echo: send every datagram back on the fd it came from, until EOF. */
static void *echo_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	unsigned char buf[RAW_CHUNK];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("echo: recv: %s", strerror(errno));
		if (n == 0)
			return NULL;
		if (raw_send(fd, buf, (size_t)n))
			fail("echo: send: %s", strerror(errno));
	}
}

static int peer_echo(int argc, char **argv)
{
	pthread_t tid[MT_THREADS];
	int n = argc;

	if (n < 1 || n > (int)MT_THREADS)
		fail("echo: 1 to %u fds", MT_THREADS);
	for (int i = 0; i < n; i++) {
		int rc = pthread_create(&tid[i], NULL, echo_thread,
					(void *)(intptr_t)arg_long(argv[i]));

		if (rc)
			fail("pthread_create: %s", strerror(rc));
	}
	for (int i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	return 0;
}

/* fd-echo: a raw service for e2e-fanotify-raw-ask: take each request with
 * the fd it carries (as a service takes an event's fd), close the fd, answer
 * E2E_MSG_SIZE bytes; until EOF. */
static int peer_fd_echo(int argc, char **argv)
{
	unsigned char buf[E2E_MSG_SIZE];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	int fd;

	if (argc != 1)
		fail("fd-echo: FD");
	fd = (int)arg_long(argv[0]);
	for (;;) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		struct cmsghdr *c;
		ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("fd-echo: recvmsg: %s", strerror(errno));
		if (n == 0)
			return 0;
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				int got;

				memcpy(&got, CMSG_DATA(c), sizeof(got));
				close(got);
			}
		}
		if (raw_send(fd, buf, sizeof(buf)))
			fail("fd-echo: send: %s", strerror(errno));
	}
}

/* sink: read `bytes` bytes in datagrams, answer MSG_SIZE bytes; until EOF. */
static int peer_sink(int argc, char **argv)
{
	static unsigned char buf[RAW_CHUNK];
	size_t bytes, got = 0;
	int fd;

	if (argc != 2)
		fail("sink: BYTES FD");
	bytes = (size_t)arg_long(argv[0]);
	fd = (int)arg_long(argv[1]);
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("sink: recv: %s", strerror(errno));
		if (n == 0) {
			if (got)
				fail("sink: EOF inside a transfer");
			return 0;
		}
		got += (size_t)n;
		if (got > bytes)
			fail("sink: more than %zu bytes", bytes);
		if (got == bytes) {
			got = 0;
			if (raw_send(fd, buf, MSG_SIZE))
				fail("sink: send: %s", strerror(errno));
		}
	}
}

/* The transport a fltport row measures. */
enum transport { TRANSPORT_SOCKET, TRANSPORT_SHM };

static const char *const transport_names[] = { "socket", "shm" };

static enum transport transport_arg(const char *s)
{
	if (!strcmp(s, transport_names[TRANSPORT_SHM]))
		return TRANSPORT_SHM;
	if (strcmp(s, transport_names[TRANSPORT_SOCKET]))
		fail("unknown transport \"%s\"", s);
	return TRANSPORT_SOCKET;
}

/*
 * The one place that decides whether a transport can be measured, and how
 * fltport_connect() asks for it: NULL and *connect_flags, or the reason the
 * rows of that transport are skipped.  Both the coordinator (to skip a row)
 * and the peers (to connect) call it.  The socket transport always runs;
 * the shared-memory one is asked for with FLTPORT_CONNECT_SHM, and a peer
 * that did not get it fails its row (peer_connect()) rather than measure
 * the socket under the shm name.
 */
static const char *transport_unavailable(enum transport tr, unsigned *connect_flags)
{
	*connect_flags = tr == TRANSPORT_SHM ? FLTPORT_CONNECT_SHM : 0;
	return NULL;
}

static fltport_conn *peer_connect(enum transport tr)
{
	fltport_conn *conn;
	uint32_t status = 0;
	unsigned flags;
	const char *why = transport_unavailable(tr, &flags);
	int rc;

	if (why)
		fail("%s transport: %s", transport_names[tr], why);
	rc = fltport_connect(PORT_NAME, NULL, 0, flags, OP_TIMEOUT_NS, &conn, &status);
	if (rc)
		fail("fltport_connect: %s (status %#x)", fltport_strerror(rc), status);
	if (strcmp(fltport_conn_transport(conn), transport_names[tr]))
		fail("asked for the %s transport, got %s", transport_names[tr],
		     fltport_conn_transport(conn));
	return conn;
}

/* A timing peer's arguments end in WARM_NS RUN_NS RESFD (see
 * spawn_timing_peer): sets opt.warm_ns and *resfd, returns RUN_NS. */
static int64_t timing_args(char **argv, int *resfd)
{
	opt.warm_ns = arg_long(argv[0]);
	*resfd = (int)arg_long(argv[2]);
	return arg_long(argv[1]);
}

/* Hand a timing peer's result to the coordinator. */
static void send_result(int resfd, const struct result *res, const char *role)
{
	ssize_t n = write(resfd, res, sizeof(*res));

	if (n != (ssize_t)sizeof(*res))
		fail("%s: write result: %s", role, n < 0 ? strerror(errno) : "short");
	close(resfd);
}

/* request: NTHREADS threads on one connection time fltport_request of LEN
 * bytes (≤ 4 KiB, echoed back) for WARM_NS + RUN_NS; the result to RESFD. */
static int peer_request(int argc, char **argv)
{
	static unsigned char in[MSG_4K];
	static struct fp_ctx c[MT_THREADS];
	void *args[MT_THREADS];
	struct result res;
	fltport_conn *conn;
	int64_t run_ns;
	unsigned n;
	size_t len;
	int resfd;

	if (argc != 6)
		fail("request: NTHREADS LEN TRANSPORT WARM_NS RUN_NS RESFD");
	n = (unsigned)arg_long(argv[0]);
	len = (size_t)arg_long(argv[1]);
	if (n < 1 || n > MT_THREADS || len > MSG_4K)
		fail("request: bad arguments");
	run_ns = timing_args(argv + 3, &resfd);
	memset(in, 'q', sizeof(in));
	conn = peer_connect(transport_arg(argv[2]));
	for (unsigned i = 0; i < n; i++) {
		c[i] = (struct fp_ctx){ .conn = conn, .buf = in, .len = len };
		c[i].reply_cap = reply_size(len);
		args[i] = &c[i];
	}
	measure(op_fp_request, args, n, "fltport_request", run_ns, &res);
	send_result(resfd, &res, "request");
	fltport_close(conn);
	return 0;
}

/* opener: time open(PATH) + close for WARM_NS + RUN_NS, write the result to
 * RESFD.  A process of its own: the filter engine allows the filter's own
 * process without asking, so its opens would measure nothing. */
static int peer_opener(int argc, char **argv)
{
	void *args[1];
	struct result res;
	int64_t run_ns;
	int resfd;

	if (argc != 4)
		fail("opener: PATH WARM_NS RUN_NS RESFD");
	args[0] = argv[0];
	run_ns = timing_args(argv + 1, &resfd);
	measure(e2e_open_close, args, 1, "open+close", run_ns, &res);
	send_result(resfd, &res, "opener");
	return 0;
}

/* The clean files of the scanner rows, opened in order. */
struct opener_files {
	char *paths; /* scan_file_paths(): count paths, SCAN_PATH_MAX apart */
	unsigned count;
	unsigned cycle; /* 0: each file once; else the first `cycle` files in turn */
	unsigned next;
};

static int op_open_next(void *arg)
{
	struct opener_files *o = arg;
	unsigned i;

	if (o->cycle) {
		i = o->next++ % o->cycle;
	} else {
		if (o->next == o->count)
			return 1; /* every file opened once: the row ends early */
		i = o->next++;
	}
	return e2e_open_close(o->paths + (size_t)i * SCAN_PATH_MAX);
}

/* opener-files DIR COUNT CYCLE: as opener, over DIR's clean files (scan.h).
 * CYCLE 0: each of the COUNT files once (a miss row: a file never opened
 * before, every time); CYCLE N: the first N files in turn (a hit row). */
static int peer_opener_files(int argc, char **argv)
{
	struct opener_files o = { 0 };
	void *args[1] = { &o };
	struct result res;
	int64_t run_ns;
	int resfd;

	if (argc != 6)
		fail("opener-files: DIR COUNT CYCLE WARM_NS RUN_NS RESFD");
	o.count = (unsigned)arg_long(argv[1]);
	o.cycle = (unsigned)arg_long(argv[2]);
	if (o.count < 1 || o.count > SCAN_FILES || o.cycle > o.count)
		fail("opener-files: bad arguments");
	o.paths = scan_file_paths(argv[0], o.count);
	if (!o.paths)
		fail("opener-files: out of memory");
	run_ns = timing_args(argv + 3, &resfd);
	measure(op_open_next, args, 1, "open+close", run_ns, &res);
	send_result(resfd, &res, "opener-files");
	free(o.paths);
	return 0;
}

/* open-check PATH denied|allowed: open PATH once; exit 0 if that was the
 * verdict (denied: EPERM), else fail saying what happened. */
static int peer_open_check(int argc, char **argv)
{
	bool want_denied;
	int fd, err;

	if (argc != 2)
		fail("open-check: PATH denied|allowed");
	want_denied = !strcmp(argv[1], "denied");
	fd = open(argv[0], O_RDONLY | O_CLOEXEC);
	err = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	if (want_denied ? err != EPERM : err != 0)
		fail("open %s: %s, expected: %s", argv[0], err ? strerror(err) : "allowed",
		     want_denied ? "denied (EPERM)" : "allowed");
	return 0;
}

struct reader {
	fltport_conn *conn;
	unsigned char *buf;
	size_t cap;
};

/* Take messages and answer those that want a reply, until STOP. */
static void *reader_thread(void *arg)
{
	struct reader *rd = arg;

	for (;;) {
		struct fltport_msg msg;
		size_t len;
		int rc = fltport_get(rd->conn, rd->buf, rd->cap, &msg, GET_TIMEOUT_NS);

		if (rc)
			fail("fltport_get: %s", fltport_strerror(rc));
		for (unsigned i = 0; i < msg.nfds; i++)
			close(msg.fds[i]);
		if (msg.len == STOP_LEN && !memcmp(rd->buf, STOP_MSG, STOP_LEN))
			return NULL;
		if (!msg.wants_reply)
			continue;
		len = msg.reply_cap < msg.len ? msg.reply_cap : msg.len; /* an echo */
		rc = fltport_reply(rd->conn, msg.id, 0, rd->buf, len);
		if (rc)
			fail("fltport_reply: %s", fltport_strerror(rc));
	}
}

/* reader: NTHREADS threads in fltport_get/fltport_reply with CAP-byte
 * buffers, on one connection of TRANSPORT. */
static int peer_reader(int argc, char **argv)
{
	struct reader rd[MT_THREADS];
	pthread_t tid[MT_THREADS];
	fltport_conn *conn;
	unsigned n;
	size_t cap;

	if (argc != 3)
		fail("reader: NTHREADS CAP TRANSPORT");
	n = (unsigned)arg_long(argv[0]);
	cap = (size_t)arg_long(argv[1]);
	if (n < 1 || n > MT_THREADS || cap < MSG_SIZE)
		fail("reader: bad arguments");
	conn = peer_connect(transport_arg(argv[2]));
	for (unsigned i = 0; i < n; i++) {
		int rc;

		rd[i].conn = conn;
		rd[i].cap = cap;
		rd[i].buf = malloc(cap);
		if (!rd[i].buf)
			fail("out of memory");
		rc = pthread_create(&tid[i], NULL, reader_thread, &rd[i]);
		if (rc)
			fail("pthread_create: %s", strerror(rc));
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(tid[i], NULL);
		free(rd[i].buf);
	}
	fltport_close(conn);
	return 0;
}

/*
 * A serving peer is ready: say so on CTLFD (one byte), then wait for the
 * coordinator to close its end, and exit at once — the serving threads are
 * blocked in their library, which is never torn down under them.
 */
static void __attribute__((noreturn)) exit_at_eof(int ctlfd)
{
	char junk[16];
	ssize_t n;

	do
		n = read(ctlfd, junk, sizeof(junk));
	while (n > 0 || (n < 0 && errno == EINTR));
	fflush(stdout);
	fflush(stderr);
	_exit(0);
}

static void __attribute__((noreturn)) serve_until_eof(int ctlfd)
{
	char byte = 'R';

	if (write(ctlfd, &byte, 1) != 1)
		fail("ready: %s", strerror(errno));
	exit_at_eof(ctlfd);
}

/* futex-echo FD NPAIRS CTLFD: echo on the first NPAIRS pair areas of the
 * raw-futex mapping FD, one thread each. */
static void *futex_echo_thread(void *arg)
{
	static _Thread_local unsigned char buf[FUTEX_MSG_MAX];
	int rc = futex_echo(arg, buf);

	fail("futex echo: %s", strerror(-rc));
}

static int peer_futex_echo(int argc, char **argv)
{
	struct futex_pair *pairs;
	unsigned n;
	int rc;

	if (argc != 3)
		fail("futex-echo: FD NPAIRS CTLFD");
	n = (unsigned)arg_long(argv[1]);
	if (n < 1 || n > FUTEX_PAIRS_MAX)
		fail("futex-echo: 1 to %u pairs", FUTEX_PAIRS_MAX);
	rc = futex_area_map((int)arg_long(argv[0]), &pairs);
	if (rc)
		fail("futex-echo: mmap: %s", strerror(-rc));
	for (unsigned i = 0; i < n; i++) {
		pthread_t tid;

		rc = pthread_create(&tid, NULL, futex_echo_thread, &pairs[i]);
		if (rc)
			fail("pthread_create: %s", strerror(rc));
	}
	serve_until_eof((int)arg_long(argv[2]));
}

static void reqrep_died(const char *what, const char *text)
{
	fail("%s: %s", what, text);
}

/* reqrep-echo KIND DIR NTHREADS CAP CTLFD: the REP side of nng or zmq. */
static int peer_reqrep_echo(int argc, char **argv)
{
	enum reqrep_kind kind;
	int rc;

	if (argc != 5)
		fail("reqrep-echo: KIND DIR NTHREADS CAP CTLFD");
	kind = !strcmp(argv[0], reqrep_name(REQREP_NNG)) ? REQREP_NNG : REQREP_ZMQ;
	rc = reqrep_serve(kind, argv[1], (unsigned)arg_long(argv[2]), (size_t)arg_long(argv[3]),
			  reqrep_died);
	if (rc)
		fail("%s REP: %s (%s)", argv[0], strerror(-rc), reqrep_last_error());
	serve_until_eof((int)arg_long(argv[4]));
}

/* ------------------------------------------------------------------ */
/* Memory per connection (--memory)                                     */
/* ------------------------------------------------------------------ */

#define MEM_PORT "\\BenchMem"
#define MEM_CONNS 500u      /* connections measured at once */
#define MEM_MSGS 1000000L   /* messages of the flatness run (--quick: 100,000) */
#define MEM_TARGET_KIB 64.0 /* issue 9: resident per connection, each side */

/* run_memory()'s figures, for the JSON. */
static struct {
	bool done;
	double filter_kib, service_kib; /* per connection */
	long msgs, filter_growth_kib, service_growth_kib;
} mem_result;

/* Soft RLIMIT_NOFILE up to the hard limit: MEM_CONNS connections hold a few
 * fds each on both sides. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static fltport_conn *mem_connect(void)
{
	fltport_conn *conn;
	uint32_t status = 0;
	int rc = fltport_connect(MEM_PORT, NULL, 0, 0, OP_TIMEOUT_NS, &conn, &status);

	if (rc)
		fail("fltport_connect(%s): %s", MEM_PORT, fltport_strerror(rc));
	return conn;
}

static void ctl_write(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		fail("control pipe: %s", strerror(errno));
}

static void ctl_expect(int fd, char want)
{
	char c = 0;
	ssize_t n;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || c != want)
		fail("control pipe: expected '%c', got %s", want, n == 1 ? "another byte" : "EOF");
}

/* mem N CTLFD: one connection ('A'), then N more when told ('B' → 'C'),
 * then a reader on the first until STOP; exit when CTLFD closes. */
static int peer_mem(int argc, char **argv)
{
	struct reader rd = { .cap = MSG_SIZE };
	fltport_conn **conns;
	pthread_t tid;
	unsigned n;
	int ctl, rc;

	if (argc != 2)
		fail("mem: N CTLFD");
	n = (unsigned)arg_long(argv[0]);
	ctl = (int)arg_long(argv[1]);
	raise_nofile();
	conns = calloc(n + 1, sizeof(*conns));
	rd.buf = malloc(MSG_SIZE);
	if (!conns || !rd.buf)
		fail("out of memory");
	conns[0] = mem_connect();
	ctl_write(ctl, 'A');
	ctl_expect(ctl, 'B');
	for (unsigned i = 1; i <= n; i++)
		conns[i] = mem_connect();
	rd.conn = conns[0];
	rc = pthread_create(&tid, NULL, reader_thread, &rd);
	if (rc)
		fail("pthread_create: %s", strerror(rc));
	ctl_write(ctl, 'C');
	pthread_join(tid, NULL);
	/* The connections go with the process, as a dead service's do. */
	exit_at_eof(ctl);
}

static int peer_main(int argc, char **argv)
{
	const char *role = argv[0];
	int rc;

	is_peer = true;
	me = "fltport-bench peer";
	signal(SIGALRM, on_alarm);
	alarm(120); /* no row lasts this long; the coordinator's own watchdog is tighter */
	rc = alloc_count_attach();
	if (rc)
		fail("allocation counter: %s", strerror(-rc));
	alloc_count_active();
	if (!strcmp(role, "futex-echo"))
		return peer_futex_echo(argc - 1, argv + 1);
	if (!strcmp(role, "reqrep-echo"))
		return peer_reqrep_echo(argc - 1, argv + 1);
	if (!strcmp(role, "echo"))
		return peer_echo(argc - 1, argv + 1);
	if (!strcmp(role, "sink"))
		return peer_sink(argc - 1, argv + 1);
	if (!strcmp(role, "fd-echo"))
		return peer_fd_echo(argc - 1, argv + 1);
	if (!strcmp(role, "request"))
		return peer_request(argc - 1, argv + 1);
	if (!strcmp(role, "reader"))
		return peer_reader(argc - 1, argv + 1);
	if (!strcmp(role, "opener"))
		return peer_opener(argc - 1, argv + 1);
	if (!strcmp(role, "opener-files"))
		return peer_opener_files(argc - 1, argv + 1);
	if (!strcmp(role, "open-check"))
		return peer_open_check(argc - 1, argv + 1);
	if (!strcmp(role, "mem"))
		return peer_mem(argc - 1, argv + 1);
	fail("unknown peer role \"%s\"", role);
}

/* ------------------------------------------------------------------ */
/* Coordinator: spawning peers                                          */
/* ------------------------------------------------------------------ */

/*
 * fork + exec of this binary as "--peer args...".  `keep` lists the fds
 * (created O_CLOEXEC) that the peer inherits, besides the allocation
 * counter's (found through $ALLOC_COUNT_ENV).  Only async-signal-safe calls
 * between fork and exec: this process has threads.
 */
static pid_t spawn_peer(const char *const args[], const int *keep, unsigned nkeep)
{
	char *argv[16];
	unsigned argc = 0, slot = 0;
	pid_t parent = getpid(), pid;

	while (slot < MAX_PEERS && peers[slot])
		slot++;
	if (slot == MAX_PEERS)
		fail("more than %u peers at once", MAX_PEERS);
	argv[argc++] = (char *)"fltport-bench";
	argv[argc++] = (char *)"--peer";
	for (; *args && argc < 15; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		for (unsigned i = 0; i < nkeep; i++)
			if (fcntl(keep[i], F_SETFD, 0) < 0)
				_exit(127);
		if (alloc_fd >= 0 && fcntl(alloc_fd, F_SETFD, 0) < 0)
			_exit(127);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(127);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	peers[slot] = pid;
	return pid;
}

/* Wait (bounded by the watchdog) for the peer to exit; it must exit 0. */
static void wait_peer(pid_t pid)
{
	int st;

	alarm(STEP_TIMEOUT_S + WATCHDOG_SLACK_S);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			fail("waitpid: %s", strerror(errno));
	for (unsigned i = 0; i < MAX_PEERS; i++)
		if (peers[i] == pid)
			peers[i] = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		if (WIFSIGNALED(st))
			fail("peer %ld killed by signal %d", (long)pid, WTERMSIG(st));
		fail("peer %ld exited with status %d", (long)pid, WEXITSTATUS(st));
	}
}

static void fmt_num(char *buf, size_t cap, long long v)
{
	snprintf(buf, cap, "%lld", v);
}

/* Start a peer that times its own loop: "ROLE ARGS... WARM_NS RUN_NS RESFD"
 * (role_args: ROLE and its arguments, NULL-terminated, at most 8).  *resfd
 * gets the read end of its result pipe. */
static pid_t spawn_timing_peer(const char *const role_args[], int64_t run_ns, int *resfd)
{
	char warm[24], run[24], fdarg[16];
	const char *args[12];
	unsigned a = 0;
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		fail("pipe2: %s", strerror(errno));
	fmt_num(warm, sizeof(warm), opt.warm_ns);
	fmt_num(run, sizeof(run), run_ns);
	fmt_num(fdarg, sizeof(fdarg), pfd[1]);
	for (; *role_args && a < 8; role_args++)
		args[a++] = *role_args;
	args[a++] = warm;
	args[a++] = run;
	args[a++] = fdarg;
	args[a] = NULL;
	pid = spawn_peer(args, &pfd[1], 1);
	close(pfd[1]);
	*resfd = pfd[0];
	return pid;
}

/* Wait for a timing peer's exit and read its result. */
static void collect_timing(pid_t pid, int resfd, struct result *res)
{
	ssize_t n;

	wait_peer(pid);
	n = read(resfd, res, sizeof(*res));
	if (n != (ssize_t)sizeof(*res))
		fail("no result from peer %ld", (long)pid);
	close(resfd);
}

/*
 * Start a serving peer: "ROLE ARGS... CTLFD" (role_args NULL-terminated, at
 * most 8), inheriting `keep` too.  Returns once it said it is ready (it
 * listens / waits for work); *ctl is the control socket: closing it ends
 * the peer (end_serving_peer).
 */
static pid_t spawn_serving_peer(const char *const role_args[], const int *keep, unsigned nkeep,
				int *ctl)
{
	const char *args[12];
	int fds[MT_THREADS + 1], sv[2];
	struct pollfd pfd;
	char fdarg[16], byte;
	unsigned a = 0;
	pid_t pid;

	if (nkeep > MT_THREADS)
		fail("spawn_serving_peer: %u fds", nkeep);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		fail("socketpair: %s", strerror(errno));
	for (; *role_args && a < 8; role_args++)
		args[a++] = *role_args;
	fmt_num(fdarg, sizeof(fdarg), sv[1]);
	args[a++] = fdarg;
	args[a] = NULL;
	if (nkeep)
		memcpy(fds, keep, nkeep * sizeof(int));
	fds[nkeep] = sv[1];
	pid = spawn_peer(args, fds, nkeep + 1);
	close(sv[1]);
	pfd = (struct pollfd){ .fd = sv[0], .events = POLLIN };
	if (poll(&pfd, 1, STEP_TIMEOUT_S * 1000) != 1 || read(sv[0], &byte, 1) != 1)
		fail("peer %s did not start within %d s", args[0], STEP_TIMEOUT_S);
	*ctl = sv[0];
	return pid;
}

static void end_serving_peer(pid_t pid, int ctl)
{
	close(ctl);
	wait_peer(pid);
}

/* ------------------------------------------------------------------ */
/* Coordinator: the filter side                                         */
/* ------------------------------------------------------------------ */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	fltport_client *client;
	bool connected;
	bool disconnected;
} fs = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

static int on_connect(fltport_client *client, void *server_cookie, const void *ctx, size_t ctx_len,
		      const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	pthread_mutex_lock(&fs.lock);
	fs.client = client;
	fs.connected = true;
	fs.disconnected = false;
	pthread_cond_broadcast(&fs.cond);
	pthread_mutex_unlock(&fs.lock);
	*conn_cookie = client;
	return 0;
}

static void on_disconnect(void *conn_cookie)
{
	pthread_mutex_lock(&fs.lock);
	fs.disconnected = true;
	pthread_cond_broadcast(&fs.cond);
	pthread_mutex_unlock(&fs.lock);
}

/* Echo the request back (64 bytes in, 64 bytes out). */
static uint32_t on_message(void *conn_cookie, const struct fltport_request *req, void *out,
			   size_t out_cap, size_t *out_len)
{
	size_t n = req->in_len < out_cap ? req->in_len : out_cap;

	for (unsigned i = 0; i < req->nfds; i++)
		close(req->fds[i]);
	if (n)
		memcpy(out, req->in, n);
	*out_len = n;
	return 0;
}

/* Wait until *flag (under fs.lock) is true, at most `secs`. */
static void fs_wait(const bool *flag, int64_t secs, const char *what)
{
	struct timespec dl;
	int rc = 0;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += secs;
	pthread_mutex_lock(&fs.lock);
	while (!*flag && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&fs.cond, &fs.lock, &dl);
	ok = *flag;
	pthread_mutex_unlock(&fs.lock);
	if (!ok)
		fail("no %s within %lld s", what, (long long)secs);
}

static fltport_client *wait_connect(void)
{
	fltport_client *client;

	fs_wait(&fs.connected, STEP_TIMEOUT_S, "connection from the peer");
	pthread_mutex_lock(&fs.lock);
	client = fs.client;
	pthread_mutex_unlock(&fs.lock);
	return client;
}

/* The peer has gone: wait for the disconnect callback, release the client port. */
static void end_connection(fltport_client *client, int64_t secs)
{
	fs_wait(&fs.disconnected, secs, "disconnect callback");
	fltport_client_close(client);
	pthread_mutex_lock(&fs.lock);
	fs.client = NULL;
	fs.connected = false;
	fs.disconnected = false;
	pthread_mutex_unlock(&fs.lock);
}

static void server_start(void)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message,
		.max_connections = 2,
		.access = { .mode = FLTPORT_ACCESS_EVERYONE },
	};
	pthread_condattr_t attr;
	int rc;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&fs.cond, &attr);
	pthread_condattr_destroy(&attr);
	rc = fltport_server_create(PORT_NAME, &cfg, &bench_srv);
	if (rc)
		fail("fltport_server_create: %s", fltport_strerror(rc));
}

/* Start a service peer: `nread` threads in fltport_get + fltport_reply with
 * `cap`-byte buffers, on one connection.  *client gets its client port. */
static pid_t spawn_readers(unsigned nread, size_t cap, enum transport tr, fltport_client **client)
{
	char nthr[16], capa[24];
	const char *args[5] = { "reader", nthr, capa, transport_names[tr], NULL };
	pid_t pid;

	fmt_num(nthr, sizeof(nthr), nread);
	fmt_num(capa, sizeof(capa), (long long)cap);
	pid = spawn_peer(args, NULL, 0);
	*client = wait_connect();
	return pid;
}

/* End a service peer: one STOP per reader (each exits after taking one),
 * then the disconnect and the peer's exit. */
static void stop_readers(fltport_client *client, unsigned nread, pid_t pid)
{
	for (unsigned i = 0; i < nread; i++) {
		int rc = fltport_send(client, STOP_MSG, STOP_LEN, NULL, 0, NULL, NULL, NULL,
				      OP_TIMEOUT_NS);

		if (rc)
			fail("fltport_send (stop): %s", fltport_strerror(rc));
	}
	end_connection(client, STEP_TIMEOUT_S);
	wait_peer(pid);
}

/* ------------------------------------------------------------------ */
/* Rows                                                                 */
/* ------------------------------------------------------------------ */

/* Rows run in this order, each fltport row after its baseline (the e2e rows
 * excepted: run_e2e_rows() has their order). */
enum {
	ROW_RAW_PP,
	ROW_FP_REQUEST,
	ROW_FP_SEND_REPLY,
	ROW_FP_SEND_NOREPLY,
	ROW_NNG,
	ROW_ZMQ,
	ROW_RAW_FUTEX,
	ROW_SHM_REQUEST,
	ROW_SHM_SEND_REPLY,
	ROW_RAW_PP_4K,
	ROW_FP_REQUEST_4K,
	ROW_FP_SEND_REPLY_4K,
	ROW_NNG_4K,
	ROW_ZMQ_4K,
	ROW_RAW_FUTEX_4K,
	ROW_SHM_REQUEST_4K,
	ROW_SHM_SEND_REPLY_4K,
	ROW_RAW_MT,
	ROW_FP_MT,
	ROW_FP_REQUEST_MT,
	ROW_NNG_MT,
	ROW_ZMQ_MT,
	ROW_RAW_FUTEX_MT,
	ROW_SHM_REQUEST_MT,
	ROW_SHM_SEND_REPLY_MT,
	ROW_RAW_LARGE,
	ROW_FP_LARGE,
	ROW_E2E_BARE,
	ROW_E2E_RAW,
	ROW_E2E_RAW_INFO,
	ROW_E2E_RAW_ASK,
	ROW_E2E_RAW_INFO_ASK,
	ROW_E2E_RAW_CACHED,
	ROW_E2E_ALLOW,
	ROW_E2E_PORT,
	ROW_E2E_ALLOW_LAZY,
	ROW_E2E_PORT_LAZY,
	ROW_E2E_ALLOW_MINIMAL,
	ROW_E2E_CACHED,
	ROW_CLAM_SCAN,
	ROW_SCAN_BARE,
	ROW_SCAN_PATTERN,
	ROW_SCAN_HIT,
	ROW_SCAN_CLAMAV,
	ROW_ONACC_MISS,
	ROW_ONACC_HIT,
	NROWS
};

/* What a row runs (run_row()). */
enum row_kind {
	K_RAW,             /* socketpair ping-pong, or raw-1mib when bytes > 4 KiB */
	K_FUTEX,           /* raw-futex */
	K_FP_REQUEST,      /* fltport_request, timed in the peer */
	K_FP_SEND,         /* fltport_send with reply → get + reply */
	K_FP_SEND_NOREPLY, /* fltport_send without reply */
	K_NNG,
	K_ZMQ,
	K_E2E,
};

struct row {
	const char *name;  /* RESULT name= */
	const char *label; /* table text */
	int base;          /* baseline row, or -1 for a baseline */
	size_t bytes;      /* payload per operation, each way */
	bool e2e;          /* an end-to-end row (--e2e) */
	enum row_kind kind;
	unsigned threads;  /* per side */
	enum transport tr; /* fltport rows */
	bool run;          /* selected (all but e2e by default; see --only, --e2e) */
	const char *skip;  /* selected but not measured: why */
	struct result r;
	double cpu_us_per_op;
	double csw_per_op;
	uint64_t listened; /* e2e: opens that reached the listener, a callback or the service */
	uint64_t cached;   /* e2e: verdicts the engine placed in the kernel cache */
	bool uncounted;    /* e2e: listened and cached not known (ClamAV's programs) */
	bool floor;        /* e2e: a raw listener doing an engine row's work (e2e_floor[]) */
};

static struct row rows[NROWS] = {
	[ROW_RAW_PP] = { "raw-pingpong", "raw SEQPACKET ping-pong 64 B", -1, MSG_SIZE,
			 .kind = K_RAW },
	[ROW_FP_REQUEST] = { "fp-request", "fltport request/response 64 B", ROW_RAW_PP, MSG_SIZE,
			     .kind = K_FP_REQUEST },
	[ROW_FP_SEND_REPLY] = { "fp-send-reply", "fltport send+get+reply 64 B", ROW_RAW_PP,
				MSG_SIZE, .kind = K_FP_SEND },
	[ROW_FP_SEND_NOREPLY] = { "fp-send-noreply", "fltport send, no reply 64 B", ROW_RAW_PP,
				  MSG_SIZE, .kind = K_FP_SEND_NOREPLY },
	[ROW_NNG] = { "nng-reqrep", "nng REQ/REP ipc 64 B", ROW_RAW_PP, MSG_SIZE, .kind = K_NNG },
	[ROW_ZMQ] = { "zmq-reqrep", "ZeroMQ REQ/REP ipc 64 B", ROW_RAW_PP, MSG_SIZE,
		      .kind = K_ZMQ },
	[ROW_RAW_FUTEX] = { "raw-futex", "raw futex ping-pong 64 B", -1, MSG_SIZE,
			    .kind = K_FUTEX },
	[ROW_SHM_REQUEST] = { "shm-request", "shm request/response 64 B", ROW_RAW_FUTEX, MSG_SIZE,
			      .kind = K_FP_REQUEST, .tr = TRANSPORT_SHM },
	[ROW_SHM_SEND_REPLY] = { "shm-send-reply", "shm send+get+reply 64 B", ROW_RAW_FUTEX,
				 MSG_SIZE, .kind = K_FP_SEND, .tr = TRANSPORT_SHM },
	[ROW_RAW_PP_4K] = { "raw-pingpong-4k", "raw SEQPACKET ping-pong 4 KiB", -1, MSG_4K,
			    .kind = K_RAW },
	[ROW_FP_REQUEST_4K] = { "fp-request-4k", "fltport request/response 4 KiB", ROW_RAW_PP_4K,
				MSG_4K, .kind = K_FP_REQUEST },
	[ROW_FP_SEND_REPLY_4K] = { "fp-send-reply-4k", "fltport send+get+reply 4 KiB",
				   ROW_RAW_PP_4K, MSG_4K, .kind = K_FP_SEND },
	[ROW_NNG_4K] = { "nng-reqrep-4k", "nng REQ/REP ipc 4 KiB", ROW_RAW_PP_4K, MSG_4K,
			 .kind = K_NNG },
	[ROW_ZMQ_4K] = { "zmq-reqrep-4k", "ZeroMQ REQ/REP ipc 4 KiB", ROW_RAW_PP_4K, MSG_4K,
			 .kind = K_ZMQ },
	[ROW_RAW_FUTEX_4K] = { "raw-futex-4k", "raw futex ping-pong 4 KiB", -1, MSG_4K,
			       .kind = K_FUTEX },
	[ROW_SHM_REQUEST_4K] = { "shm-request-4k", "shm request/response 4 KiB", ROW_RAW_FUTEX_4K,
				 MSG_4K, .kind = K_FP_REQUEST, .tr = TRANSPORT_SHM },
	[ROW_SHM_SEND_REPLY_4K] = { "shm-send-reply-4k", "shm send+get+reply 4 KiB",
				    ROW_RAW_FUTEX_4K, MSG_4K, .kind = K_FP_SEND,
				    .tr = TRANSPORT_SHM },
	[ROW_RAW_MT] = { "raw-4x4", "raw ping-pong, 4 thread pairs", -1, MSG_SIZE, .kind = K_RAW,
			 .threads = MT_THREADS },
	[ROW_FP_MT] = { "fp-send-reply-4x4", "fltport send+reply, 4x4 threads", ROW_RAW_MT,
			MSG_SIZE, .kind = K_FP_SEND, .threads = MT_THREADS },
	[ROW_FP_REQUEST_MT] = { "fp-request-4x4", "fltport request, 4 threads", ROW_RAW_MT,
				MSG_SIZE, .kind = K_FP_REQUEST, .threads = MT_THREADS },
	[ROW_NNG_MT] = { "nng-reqrep-4x4", "nng REQ/REP, 4x4 contexts", ROW_RAW_MT, MSG_SIZE,
			 .kind = K_NNG, .threads = MT_THREADS },
	[ROW_ZMQ_MT] = { "zmq-reqrep-4x4", "ZeroMQ REQ/REP, 4 socket pairs", ROW_RAW_MT, MSG_SIZE,
			 .kind = K_ZMQ, .threads = MT_THREADS },
	[ROW_RAW_FUTEX_MT] = { "raw-futex-4x4", "raw futex ping-pong, 4 pairs", -1, MSG_SIZE,
			       .kind = K_FUTEX, .threads = MT_THREADS },
	[ROW_SHM_REQUEST_MT] = { "shm-request-4x4", "shm request, 4 threads", ROW_RAW_FUTEX_MT,
				 MSG_SIZE, .kind = K_FP_REQUEST, .threads = MT_THREADS,
				 .tr = TRANSPORT_SHM },
	[ROW_SHM_SEND_REPLY_MT] = { "shm-send-reply-4x4", "shm send+reply, 4x4 threads",
				    ROW_RAW_FUTEX_MT, MSG_SIZE, .kind = K_FP_SEND,
				    .threads = MT_THREADS, .tr = TRANSPORT_SHM },
	[ROW_RAW_LARGE] = { "raw-1mib", "raw 1 MiB (16 x 64 KiB) + ack", -1, LARGE_SIZE,
			    .kind = K_RAW },
	[ROW_FP_LARGE] = { "fp-1mib", "fltport send 1 MiB + reply", ROW_RAW_LARGE, LARGE_SIZE,
			   .kind = K_FP_SEND },
	[ROW_E2E_BARE] = { "e2e-bare", "e2e open+close, no listener", -1, 0, true, K_E2E },
	[ROW_E2E_RAW] = { "e2e-fanotify-raw", "e2e raw fanotify listener", -1, 0, true, K_E2E },
	[ROW_E2E_RAW_INFO] = { "e2e-fanotify-raw-info", "e2e raw listener + path, identity",
			       ROW_E2E_RAW, 0, true, K_E2E, .floor = true },
	[ROW_E2E_RAW_ASK] = { "e2e-fanotify-raw-ask", "e2e raw listener + raw service", ROW_E2E_RAW,
			      0, true, K_E2E, .floor = true },
	[ROW_E2E_RAW_INFO_ASK] = { "e2e-fanotify-raw-info-ask", "e2e raw listener + info + service",
				   ROW_E2E_RAW, 0, true, K_E2E, .floor = true },
	[ROW_E2E_RAW_CACHED] = { "e2e-fanotify-raw-cached", "e2e raw listener's ignore mark",
				 ROW_E2E_BARE, 0, true, K_E2E, .floor = true },
	[ROW_E2E_ALLOW] = { "e2e-engine-allow", "e2e engine, callback allows", ROW_E2E_RAW, 0, true,
			    K_E2E },
	[ROW_E2E_PORT] = { "e2e-engine-port", "e2e engine, asks service (port)", ROW_E2E_RAW, 0,
			   true, K_E2E },
	[ROW_E2E_ALLOW_LAZY] = { "e2e-engine-allow-lazy", "e2e engine, allows, lazy info",
				 ROW_E2E_RAW, 0, true, K_E2E },
	[ROW_E2E_PORT_LAZY] = { "e2e-engine-port-lazy", "e2e engine, asks service, lazy info",
				ROW_E2E_RAW, 0, true, K_E2E },
	[ROW_E2E_ALLOW_MINIMAL] = { "e2e-engine-allow-minimal", "e2e engine, allows, no pidfd",
				    ROW_E2E_RAW, 0, true, K_E2E },
	[ROW_E2E_CACHED] = { "e2e-cached", "e2e engine, cached verdict", ROW_E2E_BARE, 0, true,
			     K_E2E },
	[ROW_CLAM_SCAN] = { "clamav-scan-only", "libclamav cl_scandesc in-process", -1, 0, true,
			    K_E2E, .uncounted = true },
	[ROW_SCAN_BARE] = { "e2e-scanner-bare", "e2e scanner's files, no listener", -1, 0, true,
			    K_E2E },
	[ROW_SCAN_PATTERN] = { "e2e-scanner-pattern-miss", "e2e scanner miss, pattern",
			       ROW_ONACC_MISS, 0, true, K_E2E },
	[ROW_SCAN_HIT] = { "e2e-scanner-hit", "e2e scanner hit (kernel cache)", ROW_E2E_BARE, 0,
			   true, K_E2E },
	[ROW_SCAN_CLAMAV] = { "e2e-scanner-clamav-miss", "e2e scanner miss, libclamav",
			      ROW_ONACC_MISS, 0, true, K_E2E },
	[ROW_ONACC_MISS] = { "e2e-clamonacc-miss", "e2e clamonacc miss (clamd)", -1, 0, true, K_E2E,
			     .uncounted = true },
	[ROW_ONACC_HIT] = { "e2e-clamonacc-hit", "e2e clamonacc hit (clamd cache)", -1, 0, true,
			    K_E2E, .uncounted = true },
};

/* Selected and measured (not skipped). */
static bool row_measured(const struct row *row)
{
	return row->run && !row->skip;
}

/* A row measured by fltport (either transport), as opposed to a baseline. */
static bool is_fltport_row(const struct row *row)
{
	return row->kind == K_FP_REQUEST || row->kind == K_FP_SEND ||
	       row->kind == K_FP_SEND_NOREPLY ||
	       (row->kind == K_E2E && row->base >= 0 && !row->floor);
}

/* Each engine row with a target, and the raw listener that does the same
 * work without fltport: what the row costs over its floor is what fltport
 * adds, and the floor's own ratio to e2e-fanotify-raw is the lowest ratio
 * that work allows on this machine. */
static const struct {
	int row, floor;
} e2e_floor[] = {
	{ ROW_E2E_ALLOW, ROW_E2E_RAW_INFO },    { ROW_E2E_ALLOW_LAZY, ROW_E2E_RAW },
	{ ROW_E2E_ALLOW_MINIMAL, ROW_E2E_RAW }, { ROW_E2E_PORT, ROW_E2E_RAW_INFO_ASK },
	{ ROW_E2E_PORT_LAZY, ROW_E2E_RAW_ASK }, { ROW_E2E_CACHED, ROW_E2E_RAW_CACHED },
};

static unsigned row_threads(const struct row *row)
{
	return row->threads ? row->threads : 1;
}

/* The e2e rows' tmpfs, once mounted (e2e_prepare). */
static struct e2e_fs e2e;
static bool e2e_mounted;

/* The scanner rows' tmpfs, once mounted (scan_prepare). */
static struct scan_env scan_fs;
static bool scan_mounted;

#define USAGE_EXT_MAX 2u

struct usage {
	struct rusage self;
	struct rusage kids;
	/* A scanner row's programs, running through the row (not reaped at its
	 * end, so not in kids): counted through /proc; 0 = none. */
	pid_t ext[USAGE_EXT_MAX];
	double ext_cpu_us;
	double ext_csw;
};

static void usage_mark(struct usage *u)
{
	getrusage(RUSAGE_SELF, &u->self);
	getrusage(RUSAGE_CHILDREN, &u->kids);
	u->ext_cpu_us = 0;
	u->ext_csw = 0;
	for (unsigned i = 0; i < USAGE_EXT_MAX; i++) {
		int rc =
			u->ext[i] > 0 ? scan_proc_usage(u->ext[i], &u->ext_cpu_us, &u->ext_csw) : 0;

		if (rc)
			fail("usage of pid %ld (/proc): %s", (long)u->ext[i], strerror(-rc));
	}
}

static double tv_us(const struct timeval *tv)
{
	return tv->tv_sec * 1e6 + tv->tv_usec;
}

static double ru_cpu_us(const struct rusage *ru)
{
	return tv_us(&ru->ru_utime) + tv_us(&ru->ru_stime);
}

static double ru_csw(const struct rusage *ru)
{
	return (double)ru->ru_nvcsw + (double)ru->ru_nivcsw;
}

/* CPU time and context switches of this process and the (reaped) peer
 * since `a`, per operation (warm-up included). */
static void usage_account(struct row *row, const struct usage *a)
{
	struct usage b;
	double ops = row->r.all_ops ? (double)row->r.all_ops : 1.0;

	memcpy(b.ext, a->ext, sizeof(b.ext));
	usage_mark(&b);
	row->cpu_us_per_op = (ru_cpu_us(&b.self) - ru_cpu_us(&a->self) + ru_cpu_us(&b.kids) -
			      ru_cpu_us(&a->kids) + b.ext_cpu_us - a->ext_cpu_us) /
			     ops;
	row->csw_per_op = (ru_csw(&b.self) - ru_csw(&a->self) + ru_csw(&b.kids) - ru_csw(&a->kids) +
			   b.ext_csw - a->ext_csw) /
			  ops;
}

/* A row starts: say so, arm the watchdog for `run_ns` after the warm-up,
 * take the usage before, that of the running programs `ext` (scanner rows)
 * too. */
static void row_begin_ext(const struct row *row, int64_t run_ns, struct usage *u,
			  const pid_t ext[USAGE_EXT_MAX])
{
	fprintf(stderr, "%s: running %s ...\n", me, row->name);
	watchdog(opt.warm_ns + run_ns);
	for (unsigned i = 0; i < USAGE_EXT_MAX; i++)
		u->ext[i] = ext ? ext[i] : 0;
	usage_mark(u);
}

static void row_begin(const struct row *row, int64_t run_ns, struct usage *u)
{
	row_begin_ext(row, run_ns, u, NULL);
}

/* The measured time of a row: 1 MiB rows have their own. */
static int64_t row_run_ns(const struct row *row)
{
	return row->bytes > MSG_4K ? opt.large_run_ns : opt.run_ns;
}

/* Raw rows: one socketpair per thread, peer "echo" (or "sink" for the 1 MiB row). */
static void run_raw(int idx)
{
	struct row *row = &rows[idx];
	unsigned npairs = row_threads(row);
	bool large = row->bytes > MSG_4K;
	int64_t run_ns = row_run_ns(row);
	struct raw_ctx *ctx[MT_THREADS];
	void *ops_arg[MT_THREADS];
	char fdarg[MT_THREADS][16], bytes[24];
	const char *args[MT_THREADS + 3];
	int peer_fd[MT_THREADS];
	unsigned a = 0;
	struct usage u;
	pid_t pid;

	row_begin(row, run_ns, &u);
	args[a++] = large ? "sink" : "echo";
	if (large) {
		fmt_num(bytes, sizeof(bytes), LARGE_SIZE);
		args[a++] = bytes;
	}
	for (unsigned i = 0; i < npairs; i++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			fail("socketpair: %s", strerror(errno));
		ctx[i] = calloc(1, sizeof(*ctx[i]));
		if (!ctx[i] || !(ctx[i]->buf = malloc(row->bytes)))
			fail("out of memory");
		memset(ctx[i]->buf, 'r', row->bytes);
		ctx[i]->fd = sv[0];
		ctx[i]->len = row->bytes;
		ops_arg[i] = ctx[i];
		peer_fd[i] = sv[1];
		fmt_num(fdarg[i], sizeof(fdarg[i]), sv[1]);
		args[a++] = fdarg[i];
	}
	args[a] = NULL;
	pid = spawn_peer(args, peer_fd, npairs);
	for (unsigned i = 0; i < npairs; i++)
		close(peer_fd[i]);

	measure(large ? op_raw_large : op_raw_pingpong, ops_arg, npairs, row->name, run_ns,
		&row->r);

	for (unsigned i = 0; i < npairs; i++) {
		close(ctx[i]->fd); /* EOF ends the peer */
		free(ctx[i]->buf);
		free(ctx[i]);
	}
	wait_peer(pid);
	usage_account(row, &u);
}

/* raw-futex rows: one pair area per thread in a shared memfd, peer "futex-echo". */
static void run_futex(int idx)
{
	struct row *row = &rows[idx];
	unsigned n = row_threads(row);
	struct futex_ctx *ctx[MT_THREADS];
	void *ops_arg[MT_THREADS];
	struct futex_pair *pairs;
	char fdarg[16], narg[16];
	const char *args[] = { "futex-echo", fdarg, narg, NULL };
	struct usage u;
	int fd, ctl, rc;
	pid_t pid;

	row_begin(row, opt.run_ns, &u);
	rc = futex_area_create(&fd, &pairs);
	if (rc)
		fail("%s: shared mapping: %s", row->name, strerror(-rc));
	fmt_num(fdarg, sizeof(fdarg), fd);
	fmt_num(narg, sizeof(narg), n);
	pid = spawn_serving_peer(args, &fd, 1, &ctl);
	close(fd);
	for (unsigned i = 0; i < n; i++) {
		ctx[i] = calloc(1, sizeof(*ctx[i]));
		if (!ctx[i])
			fail("out of memory");
		ctx[i]->pair = &pairs[i];
		ctx[i]->len = row->bytes;
		memset(ctx[i]->msg, 'f', sizeof(ctx[i]->msg));
		ops_arg[i] = ctx[i];
	}
	measure(op_futex, ops_arg, n, row->name, opt.run_ns, &row->r);
	end_serving_peer(pid, ctl);
	for (unsigned i = 0; i < n; i++)
		free(ctx[i]);
	futex_area_unmap(pairs);
	usage_account(row, &u);
}

/* nng-reqrep, zmq-reqrep rows: REQ here, peer "reqrep-echo" (REP). */
static void run_reqrep(int idx, enum reqrep_kind kind)
{
	struct row *row = &rows[idx];
	unsigned n = row_threads(row);
	struct reqrep_ctx *ctx[MT_THREADS];
	void *ops_arg[MT_THREADS];
	struct reqrep_client *client;
	char narg[16], caparg[24];
	const char *args[] = { "reqrep-echo", reqrep_name(kind), ipc_dir, narg, caparg, NULL };
	struct usage u;
	int ctl, rc;
	pid_t pid;

	row_begin(row, opt.run_ns, &u);
	fmt_num(narg, sizeof(narg), n);
	fmt_num(caparg, sizeof(caparg), (long long)row->bytes);
	pid = spawn_serving_peer(args, NULL, 0, &ctl);
	rc = reqrep_client_open(kind, ipc_dir, n, &client);
	if (rc)
		fail("%s: REQ: %s (%s)", row->name, strerror(-rc), reqrep_last_error());
	for (unsigned i = 0; i < n; i++) {
		ctx[i] = calloc(1, sizeof(*ctx[i]));
		if (!ctx[i])
			fail("out of memory");
		ctx[i]->client = client;
		ctx[i]->thread = i;
		ctx[i]->len = row->bytes;
		memset(ctx[i]->msg, 'z', sizeof(ctx[i]->msg));
		ops_arg[i] = ctx[i];
	}
	measure(op_reqrep, ops_arg, n, row->name, opt.run_ns, &row->r);
	reqrep_client_close(client);
	end_serving_peer(pid, ctl);
	for (unsigned i = 0; i < n; i++)
		free(ctx[i]);
	usage_account(row, &u);
}

/* fp-request rows: the peer times fltport_request (row_threads() threads on
 * one connection) and sends its result back. */
static void run_fp_request(int idx)
{
	struct row *row = &rows[idx];
	char narg[16], lenarg[24];
	const char *args[] = { "request", narg, lenarg, transport_names[row->tr], NULL };
	fltport_client *client;
	struct usage u;
	int resfd;
	pid_t pid;

	row_begin(row, opt.run_ns, &u);
	fmt_num(narg, sizeof(narg), row_threads(row));
	fmt_num(lenarg, sizeof(lenarg), (long long)row->bytes);
	pid = spawn_timing_peer(args, opt.run_ns, &resfd);
	client = wait_connect();
	end_connection(client, (opt.warm_ns + opt.run_ns) / NS_PER_SEC + STEP_TIMEOUT_S);
	collect_timing(pid, resfd, &row->r);
	usage_account(row, &u);
}

/* Send rows: row_threads() sender threads here, as many reader threads in
 * the peer. */
static void run_fp_send(int idx, bool want_reply)
{
	struct row *row = &rows[idx];
	unsigned n = row_threads(row);
	size_t len = row->bytes;
	int64_t run_ns = row_run_ns(row);
	struct fp_ctx *ctx[MT_THREADS];
	void *ops_arg[MT_THREADS];
	fltport_client *client;
	unsigned char *buf;
	struct usage u;
	pid_t pid;

	row_begin(row, run_ns, &u);
	pid = spawn_readers(n, len, row->tr, &client);

	buf = malloc(len);
	if (!buf)
		fail("out of memory");
	memset(buf, 's', len);
	for (unsigned i = 0; i < n; i++) {
		ctx[i] = calloc(1, sizeof(*ctx[i]));
		if (!ctx[i])
			fail("out of memory");
		ctx[i]->client = client;
		ctx[i]->buf = buf;
		ctx[i]->len = len;
		ctx[i]->want_reply = want_reply;
		ctx[i]->reply_cap = reply_size(len);
		ops_arg[i] = ctx[i];
	}
	measure(op_fp_send, ops_arg, n, "fltport_send", run_ns, &row->r);
	stop_readers(client, n, pid);
	for (unsigned i = 0; i < n; i++)
		free(ctx[i]);
	free(buf);
	usage_account(row, &u);
}

/* ------------------------------------------------------------------ */
/* End-to-end rows                                                      */
/* ------------------------------------------------------------------ */

static bool scan_row(int i)
{
	return i >= ROW_CLAM_SCAN && i <= ROW_ONACC_HIT;
}

/*
 * The scanner rows: skip those whose programs or library are missing (the
 * reason is printed with the row), and if any is left, mount their tmpfs
 * in the e2e tmpfs and write the files (scan.h).
 */
static void scan_prepare(void)
{
	const char *fp = scan_fltport_missing(BENCH_BIN_DIR), *what;
	bool any = false;
	int rc;

	rows[ROW_CLAM_SCAN].skip = scan_clam_missing();
	rows[ROW_SCAN_BARE].skip = fp; /* measured for e2e-scanner-hit only */
	rows[ROW_SCAN_PATTERN].skip = fp;
	rows[ROW_SCAN_HIT].skip = fp;
	rows[ROW_SCAN_CLAMAV].skip = fp;
	if (!fp && rows[ROW_SCAN_CLAMAV].run && !scan_fltport_has_clamav(BENCH_BIN_DIR))
		rows[ROW_SCAN_CLAMAV].skip = "fltport-scanuser built without libclamav "
					     "(libclamav-dev: scripts/deps.sh)";
	rows[ROW_ONACC_MISS].skip = scan_clamd_missing();
	rows[ROW_ONACC_HIT].skip = rows[ROW_ONACC_MISS].skip;
	for (int i = 0; i < NROWS; i++)
		any = any || (scan_row(i) && row_measured(&rows[i]));
	if (!any)
		return;
	rc = scan_env_setup(&scan_fs, e2e.dir, &what);
	if (rc)
		fail("scanner rows' setup: %s: %s", what, strerror(-rc));
	scan_mounted = true;
}

/*
 * Call before any thread starts.  Skip the e2e rows with one line saying
 * why (not root, no fanotify permission events), or enter the private mount
 * namespace and mount the tmpfs (e2e.h), and the scanner rows' (scan.h).
 */
static void e2e_prepare(void)
{
	const char *what;
	char why[160] = "";
	int rc;

	if (geteuid() != 0)
		snprintf(why, sizeof(why),
			 "they need root (CAP_SYS_ADMIN: fanotify permission events, a private "
			 "tmpfs mount)");
	else if ((rc = e2e_probe()) < 0)
		snprintf(
			why, sizeof(why),
			"no fanotify permission events here (fanotify_init(FAN_CLASS_CONTENT): %s)",
			strerror(-rc));
	if (why[0]) {
		printf("%s: e2e rows skipped: %s\n", me, why);
		fflush(stdout);
		for (int i = 0; i < NROWS; i++)
			if (rows[i].e2e)
				rows[i].run = false;
		return;
	}
	rc = e2e_fs_setup(&e2e, &what);
	if (rc)
		fail("e2e setup: %s: %s", what, strerror(-rc));
	e2e_mounted = true;
	scan_prepare();
}

/* Time the opener peer's open+close loop on the tmpfs file into row->r. */
static void e2e_time_opens(struct row *row)
{
	int resfd;
	const char *args[] = { "opener", e2e.file, NULL };
	pid_t pid = spawn_timing_peer(args, opt.e2e_run_ns, &resfd);

	collect_timing(pid, resfd, &row->r);
}

/* A listener row measures the listener only if every open reached it. */
static void e2e_check_listened(const struct row *row)
{
	if (row->listened < row->r.all_ops)
		fail("%s: %" PRIu64 " opens, but only %" PRIu64 " reached the listener", row->name,
		     row->r.all_ops, row->listened);
}

static void run_e2e_bare(int idx)
{
	struct row *row = &rows[idx];
	struct usage u;

	row_begin(row, opt.e2e_run_ns, &u);
	e2e_time_opens(row);
	usage_account(row, &u);
}

/* The raw listener rows; the ASK modes with a raw service peer ("fd-echo"). */
static void run_e2e_raw(int idx, enum e2e_raw_mode mode)
{
	struct row *row = &rows[idx];
	struct e2e_raw raw;
	struct usage u;
	pid_t svc_pid = 0;
	int rc, sv[2] = { -1, -1 };

	row_begin(row, opt.e2e_run_ns, &u);
	if (mode & E2E_RAW_ASK) {
		char fdarg[16];
		const char *args[] = { "fd-echo", fdarg, NULL };

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			fail("socketpair: %s", strerror(errno));
		fmt_num(fdarg, sizeof(fdarg), sv[1]);
		svc_pid = spawn_peer(args, &sv[1], 1);
		close(sv[1]);
	}
	rc = e2e_raw_start(&raw, e2e.dir, mode, sv[0]);
	if (rc)
		fail("%s: start: %s", row->name, strerror(-rc));
	e2e_time_opens(row);
	rc = e2e_raw_stop(&raw, e2e.file);
	if (rc)
		fail("%s: listener: %s", row->name, strerror(-rc));
	if (svc_pid) {
		close(sv[0]); /* EOF ends the service */
		wait_peer(svc_pid);
	}
	usage_account(row, &u);
	row->listened = raw.answered;
	row->cached = raw.cached;
	if (!(mode & E2E_RAW_CACHE))
		e2e_check_listened(row);
}

/* Engine rows; with E2E_ASK_SERVICE also a service peer (one reader thread)
 * that the filter trusts. */
static void run_e2e_engine(int idx, enum e2e_verdict verdict)
{
	struct row *row = &rows[idx];
	struct fltport_filter_stats st;
	struct e2e_engine eng;
	fltport_client *svc = NULL;
	struct usage u;
	pid_t svc_pid = 0;
	int rc;

	row_begin(row, opt.e2e_run_ns, &u);
	rc = e2e_engine_start(&eng, verdict, e2e.dir);
	if (rc)
		fail("%s: fltport_filter_create/attach: %s", row->name, fltport_strerror(rc));
	if (verdict == E2E_ASK_SERVICE || verdict == E2E_ASK_SERVICE_LAZY) {
		svc_pid = spawn_readers(1, E2E_MSG_SIZE, TRANSPORT_SOCKET, &svc);
		rc = e2e_engine_serve(&eng, svc);
		if (rc)
			fail("fltport_filter_trust_client: %s", fltport_strerror(rc));
	}
	e2e_time_opens(row);
	rc = e2e_engine_stop(&eng, &st); /* no callback runs after this */
	if (rc)
		fail("%s: fltport_send from pre_open: %s", row->name, fltport_strerror(rc));
	if (svc)
		stop_readers(svc, 1, svc_pid);
	usage_account(row, &u);
	if (st.timed_out || st.overflowed || st.answer_errors)
		fail("%s: %" PRIu64 " events timed out, %" PRIu64 " overflowed, %" PRIu64
		     " answers refused",
		     row->name, st.timed_out, st.overflowed, st.answer_errors);
	row->listened = st.seen - st.fast;
	row->cached = st.cached;
	if (verdict != E2E_ALLOW_CACHE)
		e2e_check_listened(row);
}

/* ------------------------------------------------------------------ */
/* Scanner rows (issue 10)                                              */
/* ------------------------------------------------------------------ */

/* Time the opener over the clean files: each once (cycle 0: a miss row),
 * or the first `cycle` in turn (a hit row). */
static void scan_time_opens(struct row *row, unsigned cycle)
{
	char count[16], cyc[16];
	const char *args[] = { "opener-files", scan_fs.files, count, cyc, NULL };
	int resfd;
	pid_t pid;

	fmt_num(count, sizeof(count), SCAN_FILES);
	fmt_num(cyc, sizeof(cyc), cycle);
	pid = spawn_timing_peer(args, opt.e2e_run_ns, &resfd);
	collect_timing(pid, resfd, &row->r);
}

/* Open the infected file from a peer: it must be denied (the engine and
 * its prevention are on), else the run fails. */
static void scan_check_denied(const char *who)
{
	const char *args[] = { "open-check", scan_fs.infected, "denied", NULL };
	pid_t pid;

	fprintf(stderr, "%s: %s: the infected file must be denied ...\n", me, who);
	pid = spawn_peer(args, NULL, 0);
	wait_peer(pid);
}

struct clam_ctx {
	void *engine;
	char *paths; /* SCAN_FILES paths, SCAN_PATH_MAX apart */
	unsigned next;
	char err[SCAN_ERR_MAX];
};

/* clamav-scan-only: open, cl_scandesc, close one file never scanned before;
 * 1 when all were. */
static int op_clam_scan(void *arg)
{
	struct clam_ctx *c = arg;
	const char *path;
	int fd, rc;

	if (c->next == SCAN_FILES)
		return 1;
	path = c->paths + (size_t)c->next++ * SCAN_PATH_MAX;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = scan_clam_fd(c->engine, fd, c->err, sizeof(c->err));
	close(fd);
	if (rc)
		fail("%s: %s", path, rc > 0 ? "a clean file found infected" : c->err);
	return 0;
}

static void run_clam_scan(int idx)
{
	struct row *row = &rows[idx];
	static struct clam_ctx c;
	void *args[1] = { &c };
	char tmpdir[96];
	struct usage u;
	int fd, rc;

	watchdog(SCAN_SETUP_NS);
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", scan_fs.work);
	rc = scan_clam_load(scan_fs.db, tmpdir, &c.engine, c.err, sizeof(c.err));
	if (rc)
		fail("%s: %s", row->name, c.err);
	c.paths = scan_file_paths(scan_fs.files, SCAN_FILES);
	if (!c.paths)
		fail("out of memory");
	fd = open(scan_fs.infected, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("%s: %s", scan_fs.infected, strerror(errno));
	rc = scan_clam_fd(c.engine, fd, c.err, sizeof(c.err));
	close(fd);
	if (rc != 1)
		fail("%s: the infected file was not found infected: %s", row->name,
		     rc ? c.err : "clean");

	row_begin(row, opt.e2e_run_ns, &u);
	measure(op_clam_scan, args, 1, row->name, opt.e2e_run_ns, &row->r);
	usage_account(row, &u);
	scan_clam_free(c.engine);
	free(c.paths);
	c.engine = NULL;
	c.paths = NULL;
}

/* One row on running fltport-scanner + fltport-scanuser: every open must
 * have been decided by the service (miss) and none by the policy. */
static void run_scanner_row(int idx, struct scan_fltport *f, unsigned cycle)
{
	struct row *row = &rows[idx];
	const pid_t ext[USAGE_EXT_MAX] = { f->filter.pid, f->service.pid };
	struct scan_stats a, b;
	struct usage u;

	if (scan_fltport_stats(f, &a))
		fail("%s: no counters from fltport-scanner", row->name);
	row_begin_ext(row, opt.e2e_run_ns, &u, ext);
	scan_time_opens(row, cycle);
	usage_account(row, &u);
	if (scan_fltport_stats(f, &b))
		fail("%s: no counters from fltport-scanner", row->name);
	if (b.timed_out != a.timed_out || b.failed != a.failed || b.no_service != a.no_service)
		fail("%s: %lld verdicts timed out, %lld scans failed, %lld opens found no service",
		     row->name, b.timed_out - a.timed_out, b.failed - a.failed,
		     b.no_service - a.no_service);
	row->listened = (uint64_t)(b.scanned - a.scanned);
	row->cached = (uint64_t)(b.cached - a.cached);
	if (!cycle)
		e2e_check_listened(row);
	scan_check_denied(row->name);
}

/* e2e-scanner-bare: the opens of e2e-scanner-hit (the same opener, the same
 * files in turn, on the same tmpfs) before any listener marks it: what the
 * hit row costs without the scanner, path walk and file count included
 * (e2e-bare opens one file with a shorter path on another tmpfs). */
static void run_scan_bare(int idx)
{
	struct row *row = &rows[idx];
	struct usage u;

	row_begin(row, opt.e2e_run_ns, &u);
	scan_time_opens(row, SCAN_HIT_FILES);
	usage_account(row, &u);
}

/* pattern-miss and hit on one pair of programs with the built-in pattern,
 * or clamav-miss on a pair with libclamav. */
static void run_scanner_rows(bool clamav)
{
	const char *what = clamav ? "fltport-scanuser --clamav" : "fltport-scanuser";
	struct scan_fltport f;
	struct scan_stats end;
	char err[SCAN_ERR_MAX];
	int rc;

	fprintf(stderr, "%s: starting fltport-scanner and %s ...\n", me, what);
	watchdog(SCAN_SETUP_NS);
	rc = scan_fltport_start(&f, BENCH_BIN_DIR, &scan_fs, clamav, err, sizeof(err));
	if (rc)
		fail("scanner rows: %s", err);
	scan_check_denied(what);
	if (clamav) {
		run_scanner_row(ROW_SCAN_CLAMAV, &f, 0);
	} else {
		if (row_measured(&rows[ROW_SCAN_PATTERN]))
			run_scanner_row(ROW_SCAN_PATTERN, &f, 0);
		if (row_measured(&rows[ROW_SCAN_HIT]))
			run_scanner_row(ROW_SCAN_HIT, &f, SCAN_HIT_FILES);
	}
	watchdog(SCAN_SETUP_NS);
	rc = scan_fltport_stop(&f, &end, err, sizeof(err));
	if (rc)
		fail("scanner rows: %s", err);
	alarm(0);
}

static void run_onacc_row(int idx, struct scan_clamd *c, unsigned cycle)
{
	struct row *row = &rows[idx];
	const pid_t ext[USAGE_EXT_MAX] = { c->clamd.pid, c->onacc.pid };
	struct usage u;

	row_begin_ext(row, opt.e2e_run_ns, &u, ext);
	scan_time_opens(row, cycle);
	usage_account(row, &u);
	/* Opens that clamonacc never saw would look fast: it must still run,
	 * and still deny. */
	if (!scan_proc_alive(&c->clamd, NULL) || !scan_proc_alive(&c->onacc, NULL))
		fail("%s: clamd or clamonacc ended during the row", row->name);
	scan_check_denied(row->name);
}

/* clamonacc-miss and -hit on one clamd + clamonacc. */
static void run_onacc_rows(void)
{
	struct scan_clamd c;
	char err[SCAN_ERR_MAX];
	int rc;

	fprintf(stderr, "%s: starting clamd and clamonacc --fdpass on %s ...\n", me, scan_fs.files);
	watchdog(SCAN_SETUP_NS);
	rc = scan_clamd_start(&c, &scan_fs, err, sizeof(err));
	if (rc)
		fail("clamonacc rows: %s", err);
	scan_check_denied("clamonacc");
	if (row_measured(&rows[ROW_ONACC_MISS]))
		run_onacc_row(ROW_ONACC_MISS, &c, 0);
	if (row_measured(&rows[ROW_ONACC_HIT]))
		run_onacc_row(ROW_ONACC_HIT, &c, SCAN_HIT_FILES);
	watchdog(SCAN_SETUP_NS);
	rc = scan_clamd_stop(&c, err, sizeof(err));
	if (rc)
		fail("clamonacc rows: %s", err);
	alarm(0);
}

/* Each group of programs is started fresh, so that every miss row begins
 * with empty caches; clamd's own cache serves clamonacc-hit. */
static void run_scan_rows(void)
{
	if (row_measured(&rows[ROW_CLAM_SCAN]))
		run_clam_scan(ROW_CLAM_SCAN);
	if (row_measured(&rows[ROW_SCAN_BARE]))
		run_scan_bare(ROW_SCAN_BARE);
	if (row_measured(&rows[ROW_SCAN_PATTERN]) || row_measured(&rows[ROW_SCAN_HIT]))
		run_scanner_rows(false);
	if (row_measured(&rows[ROW_SCAN_CLAMAV]))
		run_scanner_rows(true);
	if (row_measured(&rows[ROW_ONACC_MISS]) || row_measured(&rows[ROW_ONACC_HIT]))
		run_onacc_rows();
}

/* ------------------------------------------------------------------ */
/* Report                                                               */
/* ------------------------------------------------------------------ */

/* NAN when the baseline was skipped (ClamAV's rows without ClamAV). */
static double row_ratio(const struct row *row)
{
	if (row->base < 0)
		return 1.0;
	if (!row_measured(&rows[row->base]))
		return NAN;
	return rows[row->base].r.ops_per_s / row->r.ops_per_s;
}

static double row_median_ratio(const struct row *row)
{
	if (row->base < 0)
		return 1.0;
	if (!row_measured(&rows[row->base]))
		return NAN;
	return row->r.median_us / rows[row->base].r.median_us;
}

static const char *met_text(bool mean_ok, bool median_ok)
{
	if (mean_ok && median_ok)
		return "met";
	if (median_ok)
		return "met by the median only";
	return mean_ok ? "met by the mean only" : "NOT met";
}

/* What reached the listener, the callback or the service in an e2e row. */
static void e2e_row_note(int i, const struct row *row)
{
	switch (i) {
	case ROW_E2E_BARE:
	case ROW_ONACC_MISS:
	case ROW_ONACC_HIT:
		break;
	case ROW_E2E_RAW:
	case ROW_E2E_RAW_INFO:
	case ROW_E2E_RAW_ASK:
	case ROW_E2E_RAW_INFO_ASK:
		printf(", %" PRIu64 " answered by the listener", row->listened);
		break;
	case ROW_E2E_RAW_CACHED:
		printf(", %" PRIu64 " answered by the listener, ignore marks %" PRIu64,
		       row->listened, row->cached);
		break;
	case ROW_E2E_CACHED:
		printf(", %" PRIu64 " reached the callback, cached verdicts %" PRIu64,
		       row->listened, row->cached);
		break;
	case ROW_CLAM_SCAN:
		printf(" of files never scanned before, in this process");
		break;
	case ROW_SCAN_PATTERN:
	case ROW_SCAN_CLAMAV:
		printf(" of files never opened before, %" PRIu64 " scanned by the service",
		       row->listened);
		break;
	case ROW_SCAN_HIT:
		printf(" of %u scanned files in turn, %" PRIu64 " scanned by the service",
		       SCAN_HIT_FILES, row->listened);
		break;
	case ROW_SCAN_BARE:
		printf(" of the %u files of e2e-scanner-hit in turn, no listener", SCAN_HIT_FILES);
		break;
	default:
		printf(", %" PRIu64 " reached the callback", row->listened);
	}
	if (i == ROW_ONACC_MISS)
		printf(" of files never opened before");
	if (i == ROW_ONACC_HIT)
		printf(" of %u files clamd has scanned, in turn", SCAN_HIT_FILES);
}

/* Each engine row against the raw listener doing the same work: the
 * floor's ratio to e2e-fanotify-raw (no engine can do that work for less,
 * on this machine, in this run) and what the engine adds on top. */
static void report_e2e_floors(void)
{
	bool any = false;

	for (size_t i = 0; i < sizeof(e2e_floor) / sizeof(e2e_floor[0]); i++) {
		const struct row *row = &rows[e2e_floor[i].row], *fl = &rows[e2e_floor[i].floor];

		if (!row_measured(row) || !row_measured(fl))
			continue;
		if (!any)
			printf("\nthe same work without fltport (a raw listener doing it; medians, "
			       "ops/s ratio in brackets):\n");
		any = true;
		if (e2e_floor[i].floor == ROW_E2E_RAW) {
			printf("  %-24s floor: e2e-fanotify-raw itself\n", row->name);
			continue;
		}
		printf("  %-24s floor %-26s %.2f x %s (%.2f)   engine / floor %.2f (%.2f)\n",
		       row->name, fl->name, row_median_ratio(fl),
		       fl->base == ROW_E2E_BARE ? "bare" : "raw", row_ratio(fl),
		       row->r.median_us / fl->r.median_us, fl->r.ops_per_s / row->r.ops_per_s);
	}
}

/* The e2e rows per open, what reached the listener, and the issue-7 targets. */
static void report_e2e(void)
{
	static const struct {
		int row;
		double target; /* ratio to the row's baseline */
	} goals[] = {
		{ ROW_E2E_ALLOW, 1.3 }, { ROW_E2E_ALLOW_LAZY, 1.3 }, { ROW_E2E_ALLOW_MINIMAL, 1.3 },
		{ ROW_E2E_PORT, 2.0 },  { ROW_E2E_PORT_LAZY, 2.0 },  { ROW_E2E_CACHED, 1.1 },
	};
	const struct row *cached = &rows[ROW_E2E_CACHED], *hit = &rows[ROW_SCAN_HIT];

	printf("\nend-to-end: open()+close() of a %u-byte file on a private tmpfs, timed in an "
	       "opener process\n",
	       E2E_FILE_SIZE);
	for (int i = 0; i < NROWS; i++) {
		const struct row *row = &rows[i];

		if (!row->e2e || !row_measured(row))
			continue;
		printf("  %-24s %8.2f us/op  median %8.2f  p99 %8.2f  (%" PRIu64 " %s", row->name,
		       1e6 / row->r.ops_per_s, row->r.median_us, row->r.p99_us, row->r.all_ops,
		       i == ROW_CLAM_SCAN ? "scans" : "opens");
		e2e_row_note(i, row);
		printf(")\n");
	}
	if (cached->run && cached->listened > cached->r.all_ops / 100)
		printf("  NOTE: the verdict cache did not hold; e2e-cached timed uncached opens\n");
	if (row_measured(hit) && hit->listened > hit->r.all_ops / 100)
		printf("  NOTE: the scanner's cache did not hold; e2e-scanner-hit timed scans\n");
	if (!rows[ROW_E2E_ALLOW].run && !rows[ROW_E2E_PORT].run && !rows[ROW_E2E_ALLOW_LAZY].run &&
	    !rows[ROW_E2E_PORT_LAZY].run && !rows[ROW_E2E_ALLOW_MINIMAL].run && !cached->run)
		return;

	/* One opener, one open at a time: the mean (ratio) carries every
	 * preemption on a shared machine, the median the path itself. */
	printf("\nissue-7 targets, time per open vs the baseline in this run (mean = ops/s "
	       "ratio):\n");
	for (size_t i = 0; i < sizeof(goals) / sizeof(goals[0]); i++) {
		const struct row *row = &rows[goals[i].row];
		bool mean_ok, median_ok;

		if (!row->run)
			continue;
		mean_ok = row_ratio(row) <= goals[i].target;
		median_ok = row_median_ratio(row) <= goals[i].target;
		printf("  %-16s / %-17s mean %.2f  median %.2f  target <= %.1f  %s\n", row->name,
		       rows[row->base].name, row_ratio(row), row_median_ratio(row), goals[i].target,
		       met_text(mean_ok, median_ok));
	}
	report_e2e_floors();
}

/* Allocation calls per measured operation, or NAN where not counted. */
static double row_mallocs(const struct row *row)
{
	if (!row->r.allocs_ok || !row->r.ops)
		return NAN;
	return (double)row->r.allocs / (double)row->r.ops;
}

static void print_table(void)
{
	printf("\n%-32s %11s %9s %9s %7s %7s %8s %7s %8s  %s\n", "row", "ops/s", "median_us",
	       "p99_us", "ratio", "med_rat", "cpu_us/op", "csw/op", "mallocs", "baseline");
	for (int i = 0; i < NROWS; i++) {
		const struct row *row = &rows[i];
		double m = row_mallocs(row);

		if (!row->run)
			continue;
		if (row->skip) {
			printf("%-32s skipped: %s\n", row->label, row->skip);
			continue;
		}
		printf("%-32s %11.0f %9.2f %9.2f %7.2f %7.2f %8.2f %7.2f ", row->label,
		       row->r.ops_per_s, row->r.median_us, row->r.p99_us, row_ratio(row),
		       row_median_ratio(row), row->cpu_us_per_op, row->csw_per_op);
		if (isnan(m))
			printf("%8s", "n/a");
		else
			printf("%8.2f", m);
		printf("  %s\n", row->base < 0 ? "(baseline)" : rows[row->base].name);
	}
	printf("\nratio = baseline ops/s / row ops/s (time per operation vs the baseline);"
	       " med_rat = row median / baseline median;\nmallocs = malloc/calloc/realloc calls "
	       "per operation, both processes, measured iterations only\n");
	if (row_measured(&rows[ROW_FP_LARGE]))
		printf("large rows: raw %.0f MiB/s, fltport %.0f MiB/s\n",
		       rows[ROW_RAW_LARGE].r.ops_per_s * LARGE_SIZE / (1 << 20),
		       rows[ROW_FP_LARGE].r.ops_per_s * LARGE_SIZE / (1 << 20));
}

static void print_results(void)
{
	printf("\n");
	for (int i = 0; i < NROWS; i++) {
		const struct row *row = &rows[i];
		double m = row_mallocs(row);

		if (!row->run)
			continue;
		if (row->skip) {
			printf("RESULT name=%s skipped=\"%s\"\n", row->name, row->skip);
			continue;
		}
		printf("RESULT name=%s ops_per_s=%.0f median_us=%.2f p99_us=%.2f ratio=%.3f "
		       "median_ratio=%.3f cpu_us_per_op=%.2f csw_per_op=%.2f ops=%" PRIu64
		       " baseline=%s",
		       row->name, row->r.ops_per_s, row->r.median_us, row->r.p99_us, row_ratio(row),
		       row_median_ratio(row), row->cpu_us_per_op, row->csw_per_op, row->r.ops,
		       row->base < 0 ? "none" : rows[row->base].name);
		if (isnan(m))
			printf(" mallocs_per_op=n/a\n");
		else
			printf(" mallocs_per_op=%.3f\n", m);
	}
}

/* ------------------------------------------------------------------ */
/* Issue-9 targets                                                      */
/* ------------------------------------------------------------------ */

enum goal_kind {
	GOAL_RATIO,  /* row's median ≤ limit × other's median */
	GOAL_FASTER, /* row's median × limit ≤ other's median */
	GOAL_CSW,    /* row's context switches per operation ≤ limit */
	GOAL_MALLOC, /* no allocation per operation (below MALLOC_ZERO) */
};

struct goal {
	const char *what; /* in plain words */
	int row;
	int other; /* GOAL_RATIO, GOAL_FASTER; else -1 */
	enum goal_kind kind;
	double limit;
};

/* Medians decide (issue 9: "Targets (medians, same run)"); the ops/s ratio
 * is shown beside them. */
static const struct goal goals[] = {
	{ "socket request/response vs raw ping-pong", ROW_FP_REQUEST, ROW_RAW_PP, GOAL_RATIO,
	  1.15 },
	{ "socket send+get+reply vs raw ping-pong", ROW_FP_SEND_REPLY, ROW_RAW_PP, GOAL_RATIO,
	  1.15 },
	{ "socket request/response, 4 KiB", ROW_FP_REQUEST_4K, ROW_RAW_PP_4K, GOAL_RATIO, 1.15 },
	{ "socket send+get+reply, 4 KiB", ROW_FP_SEND_REPLY_4K, ROW_RAW_PP_4K, GOAL_RATIO, 1.15 },
	{ "context switches, request/response", ROW_FP_REQUEST, -1, GOAL_CSW, 2.2 },
	{ "context switches, send+get+reply", ROW_FP_SEND_REPLY, -1, GOAL_CSW, 2.2 },
	{ "4x4 send+reply on one connection vs raw-4x4", ROW_FP_MT, ROW_RAW_MT, GOAL_RATIO, 1.3 },
	{ "4 requesters on one connection vs raw-4x4", ROW_FP_REQUEST_MT, ROW_RAW_MT, GOAL_RATIO,
	  1.3 },
	{ "1 MiB send + reply vs raw", ROW_FP_LARGE, ROW_RAW_LARGE, GOAL_RATIO, 1.3 },
	{ "shm request/response vs raw futex", ROW_SHM_REQUEST, ROW_RAW_FUTEX, GOAL_RATIO, 1.5 },
	{ "shm send+get+reply vs raw futex", ROW_SHM_SEND_REPLY, ROW_RAW_FUTEX, GOAL_RATIO, 1.5 },
	{ "shm vs socket transport, request/response", ROW_SHM_REQUEST, ROW_FP_REQUEST, GOAL_FASTER,
	  3 },
	{ "shm vs socket transport, send+get+reply", ROW_SHM_SEND_REPLY, ROW_FP_SEND_REPLY,
	  GOAL_FASTER, 3 },
	{ "socket transport vs nng REQ/REP", ROW_FP_REQUEST, ROW_NNG, GOAL_FASTER, 4 },
	{ "socket transport vs ZeroMQ REQ/REP", ROW_FP_REQUEST, ROW_ZMQ, GOAL_FASTER, 4 },
	{ "shm transport vs nng REQ/REP", ROW_SHM_REQUEST, ROW_NNG, GOAL_FASTER, 4 },
	{ "shm transport vs ZeroMQ REQ/REP", ROW_SHM_REQUEST, ROW_ZMQ, GOAL_FASTER, 4 },
};

/* Issue 10: the scanner against ClamAV on-access, same files, same
 * database.  "≤ 1/4 of ClamAV on-access per open" is a median ratio ≤ 0.25. */
static const struct goal goals10[] = {
	{ "scanner miss, libclamav, vs clamonacc miss", ROW_SCAN_CLAMAV, ROW_ONACC_MISS, GOAL_RATIO,
	  0.25 },
	{ "scanner miss, pattern, vs clamonacc miss", ROW_SCAN_PATTERN, ROW_ONACC_MISS, GOAL_RATIO,
	  0.1 },
	{ "scanner hit vs a bare open", ROW_SCAN_HIT, ROW_E2E_BARE, GOAL_RATIO, 1.1 },
	{ "scanner hit vs its own opens, no scanner", ROW_SCAN_HIT, ROW_SCAN_BARE, GOAL_RATIO,
	  1.1 },
	{ "scanner hit vs clamonacc hit", ROW_SCAN_HIT, ROW_ONACC_HIT, GOAL_FASTER, 100 },
};

/* One goal, evaluated on this run. */
struct verdict {
	int met;         /* 1 met, 0 not met, -1 not measured */
	double value;    /* by medians (GOAL_RATIO, GOAL_FASTER), else the per-op figure */
	double by_ops;   /* by ops/s (GOAL_RATIO, GOAL_FASTER), else NAN */
	const char *why; /* met < 0: why not measured */
};

static const char *unmeasured_why(const struct row *row)
{
	if (row->skip)
		return row->skip;
	return "not selected by --only";
}

static struct verdict judge(const struct goal *g)
{
	const struct row *row = &rows[g->row], *other = g->other >= 0 ? &rows[g->other] : NULL;
	struct verdict v = { .met = -1, .value = NAN, .by_ops = NAN };

	if (!row_measured(row) || (other && !row_measured(other))) {
		v.why = unmeasured_why(row_measured(row) ? other : row);
		return v;
	}
	switch (g->kind) {
	case GOAL_RATIO:
		v.value = row->r.median_us / other->r.median_us;
		v.by_ops = other->r.ops_per_s / row->r.ops_per_s;
		v.met = v.value <= g->limit;
		break;
	case GOAL_FASTER:
		v.value = other->r.median_us / row->r.median_us;
		v.by_ops = row->r.ops_per_s / other->r.ops_per_s;
		v.met = v.value >= g->limit;
		break;
	case GOAL_CSW:
		v.value = row->csw_per_op;
		v.met = v.value <= g->limit;
		break;
	case GOAL_MALLOC:
		v.value = row_mallocs(row);
		v.met = isnan(v.value) ? -1 : v.value < MALLOC_ZERO;
		if (v.met < 0)
			v.why = "allocations not counted in this build (sanitizer)";
		break;
	}
	return v;
}

/* "target ≤ 1.15 ×" and the like. */
static void goal_target_text(const struct goal *g, char *buf, size_t cap)
{
	static const char *const fmt[] = {
		[GOAL_RATIO] = "target ≤ %g ×",
		[GOAL_FASTER] = "target ≥ %g × faster",
		[GOAL_CSW] = "target ≤ %g per round trip",
		[GOAL_MALLOC] = "target 0 per message",
	};

	snprintf(buf, cap, fmt[g->kind], g->limit);
}

/* "not met (3.44 ×; by ops/s 3.47 ×)" and the like. */
static void verdict_text(const struct goal *g, const struct verdict *v, char *buf, size_t cap)
{
	const char *word = v->met > 0 ? "met" : "not met";

	if (v->met < 0)
		snprintf(buf, cap, "not measured (%s)", v->why);
	else if (g->kind == GOAL_RATIO || g->kind == GOAL_FASTER)
		snprintf(buf, cap, "%s (%.2f ×; by ops/s %.2f ×)", word, v->value, v->by_ops);
	else
		snprintf(buf, cap, "%s (%.2f)", word, v->value);
}

/* The allocation goal of fltport row `idx`, built on the fly. */
static struct goal malloc_goal(int idx)
{
	return (struct goal){ "allocations per message after warm-up", idx, -1, GOAL_MALLOC, 0 };
}

static bool malloc_goal_applies(int idx)
{
	return rows[idx].kind != K_E2E && is_fltport_row(&rows[idx]) && row_measured(&rows[idx]);
}

static void print_goal(const struct goal *g)
{
	struct verdict v = judge(g);
	char target[64], verdict[160], pair[64];

	goal_target_text(g, target, sizeof(target));
	verdict_text(g, &v, verdict, sizeof(verdict));
	if (g->other >= 0)
		snprintf(pair, sizeof(pair), "%s / %s", rows[g->row].name, rows[g->other].name);
	else
		snprintf(pair, sizeof(pair), "%s", rows[g->row].name);
	printf("  %-44s %s: %s  [%s]\n", g->what, target, verdict, pair);
}

static void report_targets10(void)
{
	bool any = false;

	for (size_t i = 0; i < sizeof(goals10) / sizeof(goals10[0]); i++)
		any = any || rows[goals10[i].row].run;
	if (!any)
		return;
	printf("\nissue-10 targets, time per open in this run (medians decide; ops/s ratio "
	       "beside):\n");
	for (size_t i = 0; i < sizeof(goals10) / sizeof(goals10[0]); i++)
		if (rows[goals10[i].row].run)
			print_goal(&goals10[i]);
}

static bool goal_selected(const struct goal *g)
{
	return rows[g->row].run && (g->other < 0 || rows[g->other].run);
}

static void report_targets(void)
{
	bool any = false;

	for (size_t i = 0; i < sizeof(goals) / sizeof(goals[0]); i++)
		any = any || goal_selected(&goals[i]);
	for (int i = 0; i < NROWS; i++)
		any = any || malloc_goal_applies(i);
	if (!any)
		return; /* e.g. --only e2e */
	printf("\nissue-9 targets, this run (medians decide; ops/s ratio beside):\n");
	for (size_t i = 0; i < sizeof(goals) / sizeof(goals[0]); i++)
		if (goal_selected(&goals[i]))
			print_goal(&goals[i]);
	for (int i = 0; i < NROWS; i++) {
		if (malloc_goal_applies(i)) {
			struct goal g = malloc_goal(i);

			print_goal(&g);
		}
	}
}

/* ------------------------------------------------------------------ */
/* --json FILE                                                          */
/* ------------------------------------------------------------------ */

/* What the header line and the JSON say about the machine and the run. */
static struct {
	struct utsname un;
	double load;
	long cpus;
	char affinity[128]; /* the CPUs this process may run on, e.g. "0" or "0,1" */
	unsigned naffinity;
	char date[32]; /* UTC, ISO 8601 */
	int argc;
	char **argv;
} run_info;

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double x)
{
	if (isfinite(x))
		fprintf(f, "%.6g", x);
	else
		fputs("null", f);
}

/* `"key": ` */
static void json_key(FILE *f, const char *key)
{
	json_str(f, key);
	fputs(": ", f);
}

static void json_row(FILE *f, const struct row *row)
{
	bool m = row_measured(row);

	fputs("    {", f);
	json_key(f, "name");
	json_str(f, row->name);
	fputs(", ", f);
	json_key(f, "label");
	json_str(f, row->label);
	fputs(", ", f);
	json_key(f, "baseline");
	if (row->base < 0)
		fputs("null", f);
	else
		json_str(f, rows[row->base].name);
	fprintf(f, ", \"bytes\": %zu, \"threads\": %u, \"fltport\": %s, ", row->bytes,
		row_threads(row), is_fltport_row(row) ? "true" : "false");
	json_key(f, "transport");
	if (is_fltport_row(row) && row->kind != K_E2E)
		json_str(f, transport_names[row->tr]);
	else
		fputs("null", f);
	fputs(", ", f);
	json_key(f, "skipped");
	if (row->skip)
		json_str(f, row->skip);
	else
		fputs("null", f);
	fprintf(f, ", \"ops_per_s\": ");
	json_num(f, m ? row->r.ops_per_s : NAN);
	fprintf(f, ", \"median_us\": ");
	json_num(f, m ? row->r.median_us : NAN);
	fprintf(f, ", \"p99_us\": ");
	json_num(f, m ? row->r.p99_us : NAN);
	fprintf(f, ", \"ratio\": ");
	json_num(f, m ? row_ratio(row) : NAN);
	fprintf(f, ", \"median_ratio\": ");
	json_num(f, m ? row_median_ratio(row) : NAN);
	fprintf(f, ", \"cpu_us_per_op\": ");
	json_num(f, m ? row->cpu_us_per_op : NAN);
	fprintf(f, ", \"csw_per_op\": ");
	json_num(f, m ? row->csw_per_op : NAN);
	fprintf(f, ", \"mallocs_per_op\": ");
	json_num(f, m ? row_mallocs(row) : NAN);
	fprintf(f, ", \"ops\": %" PRIu64 ", \"all_ops\": %" PRIu64, m ? row->r.ops : 0,
		m ? row->r.all_ops : 0);
	if (row->kind == K_E2E && m && row->uncounted)
		fprintf(f, ", \"listened\": null, \"cached\": null");
	else if (row->kind == K_E2E && m)
		fprintf(f, ", \"listened\": %" PRIu64 ", \"cached\": %" PRIu64, row->listened,
			row->cached);
	fputs("}", f);
}

static void json_goal(FILE *f, const struct goal *g)
{
	static const char *const kinds[] = { "ratio_max", "faster_min", "csw_max", "mallocs_zero" };
	struct verdict v = judge(g);
	char text[160];

	fputs("    {", f);
	json_key(f, "what");
	json_str(f, g->what);
	fputs(", ", f);
	json_key(f, "row");
	json_str(f, rows[g->row].name);
	fputs(", ", f);
	json_key(f, "other");
	if (g->other >= 0)
		json_str(f, rows[g->other].name);
	else
		fputs("null", f);
	fputs(", ", f);
	json_key(f, "kind");
	json_str(f, kinds[g->kind]);
	fputs(", \"limit\": ", f);
	json_num(f, g->limit);
	fputs(", \"value\": ", f);
	json_num(f, v.value);
	fputs(", \"by_ops\": ", f);
	json_num(f, v.by_ops);
	fprintf(f, ", \"met\": %s, ", v.met < 0 ? "null" : v.met ? "true" : "false");
	goal_target_text(g, text, sizeof(text));
	json_key(f, "target");
	json_str(f, text);
	fputs(", ", f);
	verdict_text(g, &v, text, sizeof(text));
	json_key(f, "verdict");
	json_str(f, text);
	fputs("}", f);
}

static void json_run_info(FILE *f)
{
	const char *shm;
	unsigned flags;

	json_key(f, "tool");
	json_str(f, "fltport-bench");
	fputs(",\n  ", f);
	json_key(f, "date");
	json_str(f, run_info.date);
	fputs(",\n  \"command\": [", f);
	for (int i = 0; i < run_info.argc; i++) {
		json_str(f, run_info.argv[i]);
		fputs(i + 1 < run_info.argc ? ", " : "", f);
	}
	fputs("],\n  ", f);
	json_key(f, "kernel");
	json_str(f, run_info.un.release);
	fputs(", ", f);
	json_key(f, "machine");
	json_str(f, run_info.un.machine);
	fprintf(f, ", \"cpus_online\": %ld, ", run_info.cpus);
	json_key(f, "affinity");
	json_str(f, run_info.affinity);
	fprintf(f, ", \"pinned\": %s, \"load\": ", run_info.naffinity == 1 ? "true" : "false");
	json_num(f, run_info.load);
	fputs(",\n  \"options\": {\"warm_s\": ", f);
	json_num(f, opt.warm_ns / 1e9);
	fputs(", \"run_s\": ", f);
	json_num(f, opt.run_ns / 1e9);
	fputs(", \"large_run_s\": ", f);
	json_num(f, opt.large_run_ns / 1e9);
	fputs(", \"e2e_run_s\": ", f);
	json_num(f, opt.e2e_run_ns / 1e9);
	fprintf(f, ", \"quick\": %s},\n  \"mallocs_counted\": %s,\n  ",
		opt.quick ? "true" : "false", alloc_count_active() ? "true" : "false");
	shm = transport_unavailable(TRANSPORT_SHM, &flags);
	json_key(f, "shm_transport");
	json_str(f, shm ? shm : "available");
	if (mem_result.done) {
		fprintf(f, ",\n  \"memory\": {\"connections\": %u, \"filter_kib_per_conn\": ",
			MEM_CONNS);
		json_num(f, mem_result.filter_kib);
		fputs(", \"service_kib_per_conn\": ", f);
		json_num(f, mem_result.service_kib);
		fprintf(f,
			", \"target_kib\": %.0f, \"flat_msgs\": %ld, \"filter_growth_kib\": %ld, "
			"\"service_growth_kib\": %ld}",
			MEM_TARGET_KIB, mem_result.msgs, mem_result.filter_growth_kib,
			mem_result.service_growth_kib);
	}
}

static void json_write(FILE *f)
{
	bool first = true;

	fputs("{\n  ", f);
	json_run_info(f);
	fputs(",\n  \"rows\": [\n", f);
	for (int i = 0; i < NROWS; i++) {
		if (!rows[i].run)
			continue;
		fputs(first ? "" : ",\n", f);
		json_row(f, &rows[i]);
		first = false;
	}
	fputs("\n  ],\n  \"targets\": [\n", f);
	first = true;
	for (size_t i = 0; i < sizeof(goals) / sizeof(goals[0]); i++) {
		fputs(first ? "" : ",\n", f);
		json_goal(f, &goals[i]);
		first = false;
	}
	for (size_t i = 0; i < sizeof(goals10) / sizeof(goals10[0]); i++) {
		if (!rows[goals10[i].row].run)
			continue;
		fputs(",\n", f);
		json_goal(f, &goals10[i]);
	}
	for (int i = 0; i < NROWS; i++) {
		if (malloc_goal_applies(i)) {
			struct goal g = malloc_goal(i);

			fputs(",\n", f);
			json_goal(f, &g);
		}
	}
	fputs("\n  ]\n}\n", f);
}

/* FILE.tmp, where the JSON is written before it is renamed to FILE. */
static void json_tmp_path(const char *path, char tmp[PATH_MAX])
{
	if ((size_t)snprintf(tmp, PATH_MAX, "%s.tmp", path) >= PATH_MAX)
		fail("--json: path too long");
}

/* Before the run: fail now, not after minutes of measuring, if the JSON
 * could not be written. */
static void json_check(const char *path)
{
	char tmp[PATH_MAX];
	int fd;

	json_tmp_path(path, tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		fail("--json: %s: %s", tmp, strerror(errno));
	close(fd);
	unlink(tmp);
}

/* Write the JSON to FILE.tmp, then rename it over FILE: a failed run never
 * leaves a half-written file. */
static void json_save(const char *path)
{
	char tmp[PATH_MAX];
	FILE *f;

	json_tmp_path(path, tmp);
	f = fopen(tmp, "we");
	if (!f)
		fail("--json: %s: %s", tmp, strerror(errno));
	json_write(f);
	if (fflush(f) != 0 || ferror(f)) {
		fclose(f);
		unlink(tmp);
		fail("--json: write %s: %s", tmp, strerror(errno));
	}
	fclose(f);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		fail("--json: rename to %s: %s", path, strerror(errno));
	}
	printf("\nJSON: %s\n", path);
}

static bool rows_selected(void);

static void report(void)
{
	bool e2e_ran = false;

	for (int i = 0; i < NROWS; i++)
		e2e_ran = e2e_ran || (rows[i].e2e && row_measured(&rows[i]));
	if (!rows_selected()) { /* --only memory: its lines were the report */
		if (opt.json_path)
			json_save(opt.json_path);
		return;
	}
	print_table();
	print_results();
	if (e2e_ran)
		report_e2e();
	report_targets10();
	report_targets();
	fflush(stdout);
	if (opt.json_path)
		json_save(opt.json_path);
}

static void usage_text(FILE *f)
{
	fprintf(f,
		"usage: fltport-bench [--quick] [--seconds N] [--only NAME[,NAME...]] [--e2e]\n"
		"                     [--memory] [--json FILE]\n"
		"  --quick      ~30 s in all (1 s per row after 0.2 s of warm-up)\n"
		"  --seconds N  measured seconds per row (default 5; 1 MiB rows 4; e2e rows 3)\n"
		"  --only LIST  run only these rows (and their baselines), e.g. fp-request;\n"
		"               \"e2e\" names all end-to-end rows, \"memory\" the --memory\n"
		"               measurement\n"
		"  --e2e        add the end-to-end rows (root only: fanotify on a private tmpfs),\n"
		"               the scanner's and ClamAV on-access's among them\n"
		"  --memory     also measure resident memory per connection (500 connections)\n"
		"               and its growth over 1,000,000 messages (--quick: 100,000)\n"
		"  --json FILE  also write every row, the machine and the targets as JSON\n"
		"  --help, --version\n"
		"rows:");
	for (int i = 0; i < NROWS; i++)
		fprintf(f, " %s", rows[i].name);
	fprintf(f, "\n");
}

/* --only: select rows by name; a selected row's baseline runs too. */
static void select_rows(const char *list)
{
	char *copy = strdup(list), *save = NULL;

	if (!copy)
		fail("out of memory");
	for (int i = 0; i < NROWS; i++)
		rows[i].run = false;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int i = 0;

		if (!strcmp(tok, "e2e")) {
			for (i = 0; i < NROWS; i++)
				rows[i].run = rows[i].run || rows[i].e2e;
			continue;
		}
		if (!strcmp(tok, "memory")) { /* not a row: the --memory measurement */
			opt.memory = true;
			continue;
		}
		while (i < NROWS && strcmp(rows[i].name, tok))
			i++;
		if (i == NROWS) {
			usage_text(stderr);
			fail("--only: no row \"%s\"", tok);
		}
		rows[i].run = true;
		if (rows[i].base >= 0)
			rows[rows[i].base].run = true;
		for (size_t f = 0; f < sizeof(e2e_floor) / sizeof(e2e_floor[0]); f++)
			if (e2e_floor[f].row == i)
				rows[e2e_floor[f].floor].run = true;
	}
	free(copy);
}

static bool rows_selected(void)
{
	for (int i = 0; i < NROWS; i++)
		if (rows[i].run)
			return true;
	return false;
}

/* Parse the command line into opt and rows[].run; returns -1 to go on, or
 * the exit status. */
static int parse_args(int argc, char **argv, bool *any_e2e)
{
	bool want_e2e = false;

	for (int i = 0; i < NROWS; i++)
		rows[i].run = !rows[i].e2e;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			opt.quick = true;
			opt.warm_ns = NS_PER_SEC / 5;
			opt.run_ns = NS_PER_SEC;
			opt.large_run_ns = NS_PER_SEC;
			opt.e2e_run_ns = NS_PER_SEC;
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			long s = arg_long(argv[++i]);

			if (s < 1 || s > 60)
				fail("--seconds: 1 to 60");
			opt.run_ns = s * NS_PER_SEC;
			opt.large_run_ns = s * NS_PER_SEC;
			opt.e2e_run_ns = s * NS_PER_SEC;
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			select_rows(argv[++i]);
		} else if (!strcmp(argv[i], "--e2e")) {
			want_e2e = true;
		} else if (!strcmp(argv[i], "--memory")) {
			opt.memory = true;
		} else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			opt.json_path = argv[++i];
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage_text(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
			printf("fltport-bench %s\n", fltport_version(NULL));
			return 0;
		} else {
			usage_text(stderr);
			return 2;
		}
	}
	*any_e2e = false;
	for (int i = 0; i < NROWS; i++) {
		rows[i].run = rows[i].run || (want_e2e && rows[i].e2e);
		*any_e2e = *any_e2e || (rows[i].run && rows[i].e2e);
	}
	return -1;
}

/* The machine and the run, for the header line and the JSON. */
static void gather_run_info(int argc, char **argv)
{
	cpu_set_t set;
	time_t now = time(NULL);
	struct tm tm;
	size_t off = 0;
	FILE *f;

	run_info.argc = argc;
	run_info.argv = argv;
	uname(&run_info.un);
	run_info.cpus = sysconf(_SC_NPROCESSORS_ONLN);
	run_info.load = -1;
	f = fopen("/proc/loadavg", "re");
	if (f) {
		if (fscanf(f, "%lf", &run_info.load) != 1)
			run_info.load = -1;
		fclose(f);
	}
	gmtime_r(&now, &tm);
	strftime(run_info.date, sizeof(run_info.date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		CPU_ZERO(&set);
	for (int cpu = 0; cpu < CPU_SETSIZE && off + 8 < sizeof(run_info.affinity); cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		off += (size_t)snprintf(run_info.affinity + off, sizeof(run_info.affinity) - off,
					"%s%d", run_info.naffinity ? "," : "", cpu);
		run_info.naffinity++;
	}
}

/* Decide, before anything runs, which selected rows cannot be measured here. */
static void decide_skips(void)
{
	for (int i = 0; i < NROWS; i++) {
		struct row *row = &rows[i];
		unsigned flags;

		if (!row->run)
			continue;
		if (row->kind == K_NNG)
			row->skip = reqrep_missing(REQREP_NNG);
		else if (row->kind == K_ZMQ)
			row->skip = reqrep_missing(REQREP_ZMQ);
		else if (row->kind == K_FP_REQUEST || row->kind == K_FP_SEND ||
			 row->kind == K_FP_SEND_NOREPLY)
			row->skip = transport_unavailable(row->tr, &flags);
	}
}

/* The private directory of the ipc:// sockets, if an nng or zmq row runs. */
static void ipc_dir_create(void)
{
	char dir[] = "/tmp/fltport-bench-ipc.XXXXXX";
	bool needed = false;

	for (int i = 0; i < NROWS; i++)
		needed = needed || (row_measured(&rows[i]) &&
				    (rows[i].kind == K_NNG || rows[i].kind == K_ZMQ));
	if (!needed)
		return;
	if (!mkdtemp(dir))
		fail("mkdtemp: %s", strerror(errno));
	snprintf(ipc_dir, sizeof(ipc_dir), "%s", dir);
	ipc_npaths = reqrep_paths(ipc_dir, ipc_paths, REQREP_PATHS_MAX);
	if (ipc_npaths < 0)
		fail("ipc paths under %s: %s", ipc_dir, strerror(-ipc_npaths));
}

/* Directories, the allocation counter, the JSON file's place: everything
 * the rows need, while this process still has one thread. */
static void prepare(void)
{
	char dir[] = "/tmp/fltport-bench.XXXXXX", fdarg[16];
	int rc;

	static const int stops[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = on_interrupt };

	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
		sigaction(stops[i], &sa, NULL);
	if (opt.json_path)
		json_check(opt.json_path);
	if (!mkdtemp(dir))
		fail("mkdtemp: %s", strerror(errno));
	snprintf(bench_dir, sizeof(bench_dir), "%s", dir);
	if (setenv("FLTPORT_DIR", bench_dir, 1) < 0)
		fail("setenv: %s", strerror(errno));
	rc = alloc_count_share(&alloc_fd);
	if (rc)
		fail("allocation counter: %s", strerror(-rc));
	fmt_num(fdarg, sizeof(fdarg), alloc_fd);
	if (setenv(ALLOC_COUNT_ENV, fdarg, 1) < 0)
		fail("setenv: %s", strerror(errno));
	if (!alloc_count_active())
		printf("fltport-bench: allocations not counted in this build "
		       "(mallocs_per_op=n/a)\n");
	decide_skips();
	ipc_dir_create();
}

/* The e2e rows, each after its baseline: e2e-cached right after e2e-bare,
 * the engine rows after e2e-fanotify-raw. */
static void run_e2e_rows(void)
{
	if (rows[ROW_E2E_BARE].run)
		run_e2e_bare(ROW_E2E_BARE);
	if (rows[ROW_E2E_CACHED].run)
		run_e2e_engine(ROW_E2E_CACHED, E2E_ALLOW_CACHE);
	if (rows[ROW_E2E_RAW].run)
		run_e2e_raw(ROW_E2E_RAW, E2E_RAW_PLAIN);
	if (rows[ROW_E2E_RAW_INFO].run)
		run_e2e_raw(ROW_E2E_RAW_INFO, E2E_RAW_INFO);
	if (rows[ROW_E2E_RAW_ASK].run)
		run_e2e_raw(ROW_E2E_RAW_ASK, E2E_RAW_ASK);
	if (rows[ROW_E2E_RAW_INFO_ASK].run)
		run_e2e_raw(ROW_E2E_RAW_INFO_ASK, E2E_RAW_INFO_ASK);
	if (rows[ROW_E2E_RAW_CACHED].run)
		run_e2e_raw(ROW_E2E_RAW_CACHED, E2E_RAW_CACHE);
	if (rows[ROW_E2E_ALLOW].run)
		run_e2e_engine(ROW_E2E_ALLOW, E2E_ALLOW);
	if (rows[ROW_E2E_PORT].run)
		run_e2e_engine(ROW_E2E_PORT, E2E_ASK_SERVICE);
	if (rows[ROW_E2E_ALLOW_LAZY].run)
		run_e2e_engine(ROW_E2E_ALLOW_LAZY, E2E_ALLOW_LAZY);
	if (rows[ROW_E2E_PORT_LAZY].run)
		run_e2e_engine(ROW_E2E_PORT_LAZY, E2E_ASK_SERVICE_LAZY);
	if (rows[ROW_E2E_ALLOW_MINIMAL].run)
		run_e2e_engine(ROW_E2E_ALLOW_MINIMAL, E2E_ALLOW_MINIMAL);
	if (scan_mounted)
		run_scan_rows();
}

static void run_row(int idx)
{
	switch (rows[idx].kind) {
	case K_RAW:
		run_raw(idx);
		break;
	case K_FUTEX:
		run_futex(idx);
		break;
	case K_FP_REQUEST:
		run_fp_request(idx);
		break;
	case K_FP_SEND:
		run_fp_send(idx, true);
		break;
	case K_FP_SEND_NOREPLY:
		run_fp_send(idx, false);
		break;
	case K_NNG:
		run_reqrep(idx, REQREP_NNG);
		break;
	case K_ZMQ:
		run_reqrep(idx, REQREP_ZMQ);
		break;
	case K_E2E:
		break; /* run_e2e_rows() */
	}
}

/* The memory measurement's port: counts connections, answers nothing. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned connected;
	fltport_client *first;
} ms = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static int mem_on_connect(fltport_client *client, void *server_cookie, const void *ctx,
			  size_t ctx_len, const struct fltport_peer *peer, void **conn_cookie,
			  uint32_t *status)
{
	pthread_mutex_lock(&ms.lock);
	if (!ms.first)
		ms.first = client;
	ms.connected++;
	pthread_cond_broadcast(&ms.cond);
	pthread_mutex_unlock(&ms.lock);
	*conn_cookie = client;
	return 0;
}

static void mem_on_disconnect(void *conn_cookie)
{
	(void)conn_cookie;
}

static void mem_wait_connected(unsigned want)
{
	struct timespec dl;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 4 * STEP_TIMEOUT_S;
	pthread_mutex_lock(&ms.lock);
	while (ms.connected < want && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&ms.cond, &ms.lock, &dl);
	pthread_mutex_unlock(&ms.lock);
	if (rc == ETIMEDOUT)
		fail("memory: %u connections expected, %u made", want, ms.connected);
}

/* VmRSS of a process, KiB. */
static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		fail("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	if (kib < 0)
		fail("%s: no VmRSS", path);
	return kib;
}

static void mem_send(fltport_client *c, long n)
{
	unsigned char msg[MSG_SIZE], reply[MSG_SIZE];

	memset(msg, 0x4d, sizeof(msg));
	for (long i = 0; i < n; i++) {
		size_t rlen = sizeof(reply);
		int rc = fltport_send(c, msg, sizeof(msg), NULL, 0, reply, &rlen, NULL,
				      OP_TIMEOUT_NS);

		if (rc)
			fail("memory: fltport_send: %s", fltport_strerror(rc));
	}
}

/*
 * Resident memory per connection on each side (issue 9: at most 64 KiB,
 * state page included, at the default slot count), and whether it stays
 * flat over MEM_MSGS messages on one connection.  The service peer makes
 * one connection, then MEM_CONNS more; each side's VmRSS before and after,
 * divided by MEM_CONNS, is its cost per connection (the state page is
 * shared memory: it counts on both sides, as it is resident for both).
 */
static void run_memory(void)
{
	struct fltport_server_config cfg = {
		.on_connect = mem_on_connect,
		.on_disconnect = mem_on_disconnect,
		.on_message = on_message,
		.max_connections = MEM_CONNS + 1,
		.access = { .mode = FLTPORT_ACCESS_EVERYONE },
	};
	const long msgs = opt.quick ? MEM_MSGS / 10 : MEM_MSGS;
	char nconn[16], fdarg[16];
	const char *args[4] = { "mem", nconn, fdarg, NULL };
	fltport_server *srv;
	long s1, p1, s2, p2, s3, p3, s4, p4;
	double per_s, per_p;
	int sv[2], rc;
	pid_t pid;

	raise_nofile();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		fail("socketpair: %s", strerror(errno));
	rc = fltport_server_create(MEM_PORT, &cfg, &srv);
	if (rc)
		fail("fltport_server_create(%s): %s", MEM_PORT, fltport_strerror(rc));
	fmt_num(nconn, sizeof(nconn), MEM_CONNS);
	fmt_num(fdarg, sizeof(fdarg), sv[1]);
	fprintf(stderr, "%s: memory: %u connections, then %ld messages on one ...\n", me, MEM_CONNS,
		msgs);
	alarm(8 * STEP_TIMEOUT_S + WATCHDOG_SLACK_S + (unsigned)(msgs / 10000));
	pid = spawn_peer(args, &sv[1], 1);
	close(sv[1]);
	ctl_expect(sv[0], 'A');
	mem_wait_connected(1);
	s1 = rss_kib(getpid());
	p1 = rss_kib(pid);
	ctl_write(sv[0], 'B');
	ctl_expect(sv[0], 'C');
	mem_wait_connected(1 + MEM_CONNS);
	s2 = rss_kib(getpid());
	p2 = rss_kib(pid);
	mem_send(ms.first, msgs / 10); /* warm-up: every free list filled */
	s3 = rss_kib(getpid());
	p3 = rss_kib(pid);
	mem_send(ms.first, msgs - msgs / 10);
	s4 = rss_kib(getpid());
	p4 = rss_kib(pid);
	rc = fltport_send(ms.first, STOP_MSG, STOP_LEN, NULL, 0, NULL, NULL, NULL, OP_TIMEOUT_NS);
	if (rc)
		fail("memory: fltport_send (stop): %s", fltport_strerror(rc));
	close(sv[0]);
	wait_peer(pid);
	fltport_server_destroy(srv);
	alarm(0);
	per_s = (double)(s2 - s1) / MEM_CONNS;
	per_p = (double)(p2 - p1) / MEM_CONNS;
	printf("\nmemory: resident (VmRSS) per connection, %u connections, default slot count "
	       "(%u)\n",
	       MEM_CONNS, FLTPORT_DEFAULT_SLOTS);
	printf("  filter side  %8.1f KiB per connection   target <= %.0f KiB: %s\n", per_s,
	       MEM_TARGET_KIB, per_s <= MEM_TARGET_KIB ? "met" : "NOT met");
	printf("  service side %8.1f KiB per connection   target <= %.0f KiB: %s\n", per_p,
	       MEM_TARGET_KIB, per_p <= MEM_TARGET_KIB ? "met" : "NOT met");
	printf("  over %ld messages on one connection (after %ld of warm-up): filter side "
	       "%+ld KiB, service side %+ld KiB  (%s)\n",
	       msgs - msgs / 10, msgs / 10, s4 - s3, p4 - p3,
	       s4 - s3 <= 64 && p4 - p3 <= 64 ? "flat" : "NOT flat");
	mem_result.done = true;
	mem_result.filter_kib = per_s;
	mem_result.service_kib = per_p;
	mem_result.msgs = msgs - msgs / 10;
	mem_result.filter_growth_kib = s4 - s3;
	mem_result.service_growth_kib = p4 - p3;
	printf("RESULT name=mem-per-conn conns=%u filter_kib=%.1f service_kib=%.1f "
	       "target_kib=%.0f\n",
	       MEM_CONNS, per_s, per_p, MEM_TARGET_KIB);
	printf("RESULT name=mem-flat msgs=%ld filter_growth_kib=%ld service_growth_kib=%ld\n",
	       msgs - msgs / 10, s4 - s3, p4 - p3);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	bool any_e2e;
	int rc;

	if (argc >= 3 && !strcmp(argv[1], "--peer"))
		return peer_main(argc - 2, argv + 2);
	rc = parse_args(argc, argv, &any_e2e);
	if (rc >= 0)
		return rc;
	gather_run_info(argc, argv);
	printf("fltport-bench: %ld CPUs online (this process may use CPU %s), load %.2f, %s %s "
	       "%s; warm-up %.1f s, %.1f s per row (1 MiB rows %.1f s)\n",
	       run_info.cpus, run_info.affinity, run_info.load, run_info.un.sysname,
	       run_info.un.release, run_info.un.machine, opt.warm_ns / 1e9, opt.run_ns / 1e9,
	       opt.large_run_ns / 1e9);
	fflush(stdout);
	prepare();
	/* Still one thread: the mount namespace must be in place before any starts. */
	if (any_e2e)
		e2e_prepare();
	if (e2e_mounted)
		printf("fltport-bench: e2e rows %.1f s each, on a tmpfs at %s\n",
		       opt.e2e_run_ns / 1e9, e2e.dir);
	fflush(stdout);
	if (!rows_selected() && !opt.memory) {
		rmdir(bench_dir);
		ipc_dir_remove();
		return 0;
	}

	server_start();
	for (int i = 0; i < NROWS; i++)
		if (row_measured(&rows[i]))
			run_row(i);
	run_e2e_rows();
	if (opt.memory)
		run_memory();

	alarm(STEP_TIMEOUT_S + WATCHDOG_SLACK_S);
	fltport_server_destroy(bench_srv);
	bench_srv = NULL;
	alarm(0);
	remove_port_dir(bench_dir);
	bench_dir[0] = '\0';
	ipc_dir_remove();
	if (scan_mounted) {
		rc = scan_env_teardown(&scan_fs);
		if (rc)
			fail("scanner rows' teardown: %s: %s", scan_fs.files, strerror(-rc));
		scan_mounted = false;
	}
	if (e2e_mounted) {
		rc = e2e_fs_teardown(&e2e);
		if (rc)
			fail("e2e teardown: %s: %s", e2e.dir, strerror(-rc));
		e2e_mounted = false;
	}
	report();
	return 0;
}
