/*
 * fltport-scanuser — the service of the on-access scanner: connects to
 * fltport-scanner's port, scans what it is sent, answers safe or not.
 * Microsoft's scanUser on Linux, with the native API: threads × pre-posted
 * reads (asynchronous gets), a completion queue the threads take from, a
 * reply and a new read per message.  A thread with nothing to do waits in
 * fltport_run_completions(), as a Windows thread waits in
 * GetQueuedCompletionStatus: it reads the port itself, and a completed
 * read's callback runs on it.  See man fltport-scanuser(8).
 *
 *   default      connect with a struct fltport_scan_hello: receive each
 *                file's fd, scan the whole file (pattern and/or libclamav)
 *   --windows    connect with no context, as Microsoft's sample: receive the
 *                first 1 KiB (SCANNER_NOTIFICATION), scan it for the pattern
 *
 * One line per decision on stdout; every denial to the system log with
 * structured fields.  Reconnects when the filter goes away (unless --once).
 */
#include <fltport/port.h>

#include "scan_engine.h"
#include "scanner_proto.h"
#include "sc_common.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000LL
#define MAX_THREADS 64u
#define MAX_REQUESTS 64u
#define BUF_CAP FLTPORT_SCAN_REQUEST_MAX

static struct {
	const char *port;
	unsigned threads, requests;
	bool windows, quiet, once;
	double connect_timeout; /* seconds; 0: forever */
	const char *journal_socket;
	struct scan_engine engine;
} opt = { .threads = 2, .requests = 5 };

static atomic_bool stopping;

/* ---- one connection ---------------------------------------------------- */

struct req {
	struct session *ss;
	unsigned char buf[BUF_CAP];
	struct fltport_msg msg;
	struct req *next;
};

struct session {
	fltport_conn *conn;
	pthread_mutex_t lock;
	pthread_cond_t work;     /* workers: a completed read, or quit */
	pthread_cond_t done;     /* run_session: a read ended */
	struct req *head, *tail; /* completed reads, for the workers */
	unsigned ended;          /* reads that completed with an error: not reposted */
	unsigned total;
	bool quit;
	struct req *reqs;
};

/* The session the signal thread may shut down. */
static pthread_mutex_t cur_lock = PTHREAD_MUTEX_INITIALIZER;
static struct session *cur;

static void read_ended(struct session *ss)
{
	pthread_mutex_lock(&ss->lock);
	ss->ended++;
	pthread_cond_signal(&ss->done);
	pthread_mutex_unlock(&ss->lock);
}

/* A posted read completed: hand it to a worker (the completion port). */
static void on_read(void *arg, int err, void *buf, const struct fltport_msg *msg)
{
	struct req *r = arg;
	struct session *ss = r->ss;

	(void)buf;
	if (err) {
		if (err != -ENOTCONN && err != -ECANCELED)
			fprintf(stderr, "fltport-scanuser: read: %s\n", fltport_strerror(err));
		read_ended(ss);
		return;
	}
	r->msg = *msg;
	r->next = NULL;
	pthread_mutex_lock(&ss->lock);
	if (ss->tail)
		ss->tail->next = r;
	else
		ss->head = r;
	ss->tail = r;
	pthread_cond_signal(&ss->work);
	pthread_mutex_unlock(&ss->lock);
}

static void post(struct req *r)
{
	if (fltport_get_async(r->ss->conn, r->buf, sizeof(r->buf), on_read, r, NULL) < 0)
		read_ended(r->ss);
}

/* ---- decisions --------------------------------------------------------- */

static void log_denial(const char *path, const struct fltport_scan_request *h, const char *exe,
		       const char *sig)
{
	char msg[1024], spid[24], suid[24];
	struct sc_field fields[] = {
		{ "MESSAGE_ID", "5c4e1b1f8a2d4f0e9b6a3c7d2e1f0a9b" },
		{ "FLTPORT_PATH", path },
		{ "FLTPORT_PID", h->pid ? spid : NULL },
		{ "FLTPORT_EXE", exe[0] ? exe : NULL },
		{ "FLTPORT_UID", h->uid != 0xFFFFFFFFu ? suid : NULL },
		{ "FLTPORT_SIGNATURE", sig },
		{ "FLTPORT_DECIDED_BY", (h->flags & FLTPORT_SCAN_RESCAN) ? "rescan" : "service" },
	};

	snprintf(spid, sizeof(spid), "%ld", (long)h->pid);
	snprintf(suid, sizeof(suid), "%lu", (unsigned long)h->uid);
	if (h->flags & FLTPORT_SCAN_RESCAN)
		snprintf(msg, sizeof(msg), "infected after a write: %s: %s", path, sig);
	else
		snprintf(msg, sizeof(msg), "denied open of %s by pid %ld (%s, uid %lu): %s", path,
			 (long)h->pid, exe[0] ? exe : "?", (unsigned long)h->uid, sig);
	sc_log(LOG_WARNING, msg, fields, sizeof(fields) / sizeof(fields[0]));
}

static void decision_line(int verdict, const char *sig, int64_t t0, const char *path, long pid,
			  long uid, bool rescan)
{
	char epath[1024], esig[512];

	if (opt.quiet)
		return;
	sc_escape(path, epath, sizeof(epath));
	sc_escape(sig[0] ? sig : "-", esig, sizeof(esig));
	sc_out("verdict=%s signature=%s us=%lld pid=%ld uid=%ld%s file=%s",
	       verdict == 0  ? "clean"
	       : verdict > 0 ? "infected"
			     : "error",
	       esig, (long long)((sc_now_ns() - t0) / 1000), pid, uid, rescan ? " rescan=1" : "",
	       epath);
}

/* An fd request: scan the whole file.  Reply status 0 with the verdict, or
 * 1 when the file could not be scanned (the filter then applies its policy). */
static void handle_fd(struct session *ss, const struct req *r, int64_t t0)
{
	const struct fltport_scan_request *h = (const void *)r->buf;
	struct fltport_scan_reply rep = { 0 };
	char path[4097] = "", exe[4097] = "";
	size_t len;
	int v = -1;

	if (r->msg.len >= sizeof(*h) && r->msg.nfds == 1 &&
	    sizeof(*h) + (size_t)h->path_len + h->exe_len <= r->msg.len) {
		memcpy(path, r->buf + sizeof(*h), h->path_len);
		path[h->path_len] = '\0';
		memcpy(exe, r->buf + sizeof(*h) + h->path_len, h->exe_len);
		exe[h->exe_len] = '\0';
		v = scan_engine_fd(&opt.engine, r->msg.fds[0], path, rep.signature,
				   sizeof(rep.signature));
	} else {
		snprintf(rep.signature, sizeof(rep.signature), "malformed request");
	}
	rep.safe = v == 0;
	len = v > 0 ? offsetof(struct fltport_scan_reply, signature) + strlen(rep.signature) + 1
		    : 1;
	if (r->msg.wants_reply) {
		if (len > r->msg.reply_cap)
			len = r->msg.reply_cap;
		(void)fltport_reply(ss->conn, r->msg.id, v < 0 ? 1u : 0u, &rep, len);
	}
	decision_line(v, rep.signature, t0, path, r->msg.len >= sizeof(*h) ? h->pid : 0,
		      r->msg.len >= sizeof(*h) && h->uid != 0xFFFFFFFFu ? (long)h->uid : -1L,
		      r->msg.len >= sizeof(*h) && (h->flags & FLTPORT_SCAN_RESCAN));
	if (v > 0)
		log_denial(path, h, exe, rep.signature);
}

/* Microsoft's notification: the pattern in the first ≤ 1 KiB. */
static void handle_windows(struct session *ss, const struct req *r, int64_t t0)
{
	const struct fltport_scan_win_notification *n = (const void *)r->buf;
	struct fltport_scan_win_reply rep = { 0 };
	char sig[256] = "";
	size_t bytes = 0;
	int v = -1;

	if (r->msg.len >= offsetof(struct fltport_scan_win_notification, contents)) {
		bytes = n->bytes_to_scan;
		if (bytes > FLTPORT_SCAN_WIN_BYTES)
			bytes = FLTPORT_SCAN_WIN_BYTES;
		if (bytes > r->msg.len - offsetof(struct fltport_scan_win_notification, contents))
			bytes = r->msg.len -
				offsetof(struct fltport_scan_win_notification, contents);
		v = scan_engine_buf(&opt.engine, n->contents, bytes, sig, sizeof(sig));
	}
	rep.safe_to_open = v <= 0;
	if (r->msg.wants_reply && r->msg.reply_cap >= 1)
		(void)fltport_reply(ss->conn, r->msg.id, 0, &rep, sizeof(rep));
	decision_line(v, sig, t0, "-", 0, -1, false);
	if (v > 0) {
		struct sc_field f[] = { { "FLTPORT_SIGNATURE", sig } };

		sc_log(LOG_WARNING, "denied an open (1 KiB notification)", f, 1);
	}
}

static void *worker(void *arg)
{
	struct session *ss = arg;

	for (;;) {
		struct req *r;
		bool quit;
		int64_t t0;

		pthread_mutex_lock(&ss->lock);
		r = ss->head;
		if (r) {
			ss->head = r->next;
			if (!ss->head)
				ss->tail = NULL;
		}
		quit = ss->quit;
		pthread_mutex_unlock(&ss->lock);
		if (!r && quit)
			return NULL;
		if (!r) {
			/* Wait for a read to complete on this thread: it reads the
			 * connection itself and on_read() runs here, so a message
			 * wakes only this thread.  With no read posted (all taken
			 * by the other threads) or the connection over, wait for
			 * the queue instead. */
			int rc = fltport_run_completions(ss->conn, NS / 5);

			if (rc == -EAGAIN || rc == -ENOTCONN || rc == -ECANCELED) {
				pthread_mutex_lock(&ss->lock);
				while (!ss->head && !ss->quit)
					pthread_cond_wait(&ss->work, &ss->lock);
				pthread_mutex_unlock(&ss->lock);
			}
			continue;
		}
		t0 = sc_now_ns();
		if (opt.windows)
			handle_windows(ss, r, t0);
		else
			handle_fd(ss, r, t0);
		for (unsigned i = 0; i < r->msg.nfds; i++)
			close(r->msg.fds[i]);
		post(r);
	}
}

/* Serve one connection until it ends or we stop. */
static void run_session(fltport_conn *conn)
{
	struct session ss = { .conn = conn, .total = opt.threads * opt.requests };
	pthread_t threads[MAX_THREADS];
	unsigned started = 0;

	pthread_mutex_init(&ss.lock, NULL);
	pthread_cond_init(&ss.work, NULL);
	pthread_cond_init(&ss.done, NULL);
	ss.reqs = calloc(ss.total, sizeof(struct req));
	if (!ss.reqs) {
		fprintf(stderr, "fltport-scanuser: out of memory\n");
		return;
	}
	pthread_mutex_lock(&cur_lock);
	cur = &ss;
	if (atomic_load(&stopping))
		fltport_shutdown(conn);
	pthread_mutex_unlock(&cur_lock);
	for (; started < opt.threads; started++)
		if (pthread_create(&threads[started], NULL, worker, &ss) != 0)
			break;
	for (unsigned i = 0; i < ss.total; i++) {
		ss.reqs[i].ss = &ss;
		post(&ss.reqs[i]);
	}
	sc_out("READY mode=%s threads=%u requests=%u posted=%u", opt.windows ? "windows" : "fd",
	       started, opt.requests, ss.total);
	sc_notify("READY=1");

	pthread_mutex_lock(&ss.lock);
	while (ss.ended < ss.total)
		pthread_cond_wait(&ss.done, &ss.lock);
	ss.quit = true;
	pthread_cond_broadcast(&ss.work);
	pthread_mutex_unlock(&ss.lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);

	pthread_mutex_lock(&cur_lock);
	cur = NULL;
	pthread_mutex_unlock(&cur_lock);
	free(ss.reqs);
	pthread_cond_destroy(&ss.work);
	pthread_cond_destroy(&ss.done);
	pthread_mutex_destroy(&ss.lock);
}

/* ---- connecting -------------------------------------------------------- */

static void nap_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&t, &t) < 0 && errno == EINTR && !atomic_load(&stopping))
		;
}

/* Connect, retrying while the filter is not there.  NULL when stopped or
 * out of time. */
static fltport_conn *connect_retry(void)
{
	struct fltport_scan_hello hello = { .version = FLTPORT_SCAN_VERSION,
					    .flags = FLTPORT_SCAN_WANT_FD };
	int64_t until = opt.connect_timeout > 0 ? sc_now_ns() + (int64_t)(opt.connect_timeout * NS)
						: INT64_MAX;
	long wait_ms = 50;
	int last = 0;

	strncpy(hello.magic, FLTPORT_SCAN_MAGIC, sizeof(hello.magic));
	while (!atomic_load(&stopping)) {
		fltport_conn *conn;
		uint32_t status = 0;
		/* The socket transport unless FLTPORT_TRANSPORT=shm: the
		 * shared-memory one was measured no faster here, pinned or
		 * not, and slower for an fd service, whose every message
		 * carries an fd and so goes through the socket anyway (with a
		 * ring mark and a doorbell besides). */
		int rc = opt.windows ? fltport_connect(opt.port, NULL, 0, 0, 5 * NS, &conn, &status)
				     : fltport_connect(opt.port, &hello, sizeof(hello), 0, 5 * NS,
						       &conn, &status);

		if (rc == 0) {
			sc_out("CONNECTED port=%s transport=%s", opt.port,
			       fltport_conn_transport(conn));
			return conn;
		}
		if (rc != last)
			fprintf(stderr, "fltport-scanuser: connect %s: %s; retrying\n", opt.port,
				rc == -ENOENT         ? "no such port (is fltport-scanner running?)"
				: rc == -ECONNREFUSED ? "refused by the filter"
						      : fltport_strerror(rc));
		last = rc;
		if (sc_now_ns() >= until)
			return NULL;
		nap_ms(wait_ms);
		if (wait_ms < 1000)
			wait_ms *= 2;
	}
	return NULL;
}

/* SIGINT/SIGTERM/SIGHUP: stop, ending the current connection. */
static void *signal_main(void *arg)
{
	const sigset_t *set = arg;
	int sig;

	while (sigwait(set, &sig) != 0)
		;
	atomic_store(&stopping, true);
	pthread_mutex_lock(&cur_lock);
	if (cur)
		fltport_shutdown(cur->conn);
	pthread_mutex_unlock(&cur_lock);
	return NULL;
}

/* ---- options ----------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fltport-scanuser [options]\n"
		"Scan the files fltport-scanner sends; answer safe or not.\n"
		"\n"
		"  --port NAME           port name (default ScannerPort)\n"
		"  --threads N           scanning threads (default 2, at most 64)\n"
		"  --requests N          reads posted per thread (default 5, at most 64)\n"
		"  --pattern TEXT        built-in pattern (default \"foul\"; off with --clamav\n"
		"                        unless given)\n"
		"  --no-pattern          no built-in pattern\n"
		"  --clamav DB           libclamav with the signatures in DB (a directory or a\n"
		"                        file: .hdb, .ndb, .cvd, ...); scans whole files\n"
		"  --windows             connect as Microsoft's sample does: 1 KiB notifications\n"
		"  --quiet               no line per decision\n"
		"  --once                exit when the filter goes away (default: reconnect)\n"
		"  --connect-timeout S   give up connecting after S seconds (default: never)\n"
		"  --journal-socket PATH journald's socket (default /run/systemd/journal/socket)\n"
		"  --help, --version\n");
}

static int parse_args(int argc, char **argv, bool *quit)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "requests", required_argument, NULL, 'r' },
		{ "pattern", required_argument, NULL, 'P' },
		{ "no-pattern", no_argument, NULL, 'N' },
		{ "clamav", required_argument, NULL, 'c' },
		{ "windows", no_argument, NULL, 'w' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "once", no_argument, NULL, 'o' },
		{ "connect-timeout", required_argument, NULL, 'T' },
		{ "journal-socket", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *pattern = NULL, *clamdb = NULL;
	bool no_pattern = false;
	unsigned long v;
	char err[512], *end;
	int c;

	opt.port = FLTPORT_SCAN_PORT;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			opt.port = optarg;
			break;
		case 't':
		case 'r':
			if (!sc_parse_num(optarg, c == 't' ? MAX_THREADS : MAX_REQUESTS, &v) ||
			    v == 0)
				goto bad;
			*(c == 't' ? &opt.threads : &opt.requests) = (unsigned)v;
			break;
		case 'P':
			if (!optarg[0] || strlen(optarg) >= SCAN_PATTERN_MAX)
				goto bad;
			pattern = optarg;
			break;
		case 'N':
			no_pattern = true;
			break;
		case 'c':
			clamdb = optarg;
			break;
		case 'w':
			opt.windows = true;
			break;
		case 'q':
			opt.quiet = true;
			break;
		case 'o':
			opt.once = true;
			break;
		case 'T':
			opt.connect_timeout = strtod(optarg, &end);
			if (end == optarg || *end || opt.connect_timeout < 0)
				goto bad;
			break;
		case 'j':
			opt.journal_socket = optarg;
			break;
		case 'h':
			usage(stdout);
			*quit = true;
			return 0;
		case 'V':
			printf("fltport-scanuser %s (engines: pattern%s%s)\n",
			       FLTPORT_VERSION_STRING, scan_engine_have_clamav() ? ", clamav " : "",
			       scan_engine_have_clamav() ? scan_engine_clamav_version() : "");
			*quit = true;
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!no_pattern && (pattern || !clamdb))
		snprintf(opt.engine.pattern, sizeof(opt.engine.pattern), "%s",
			 pattern ? pattern : "foul");
	opt.engine.pattern_len = strlen(opt.engine.pattern);
	if (clamdb && opt.windows) {
		fprintf(stderr,
			"fltport-scanuser: --clamav scans whole files: not with --windows\n");
		return 2;
	}
	if (!clamdb && !opt.engine.pattern_len) {
		fprintf(stderr, "fltport-scanuser: no engine (--no-pattern without --clamav)\n");
		return 2;
	}
	if (clamdb && scan_engine_load_clamav(&opt.engine, clamdb, err, sizeof(err)) < 0) {
		fprintf(stderr, "fltport-scanuser: %s\n", err);
		return 1;
	}
	return 0;
bad:
	fprintf(stderr, "fltport-scanuser: bad option value (see --help)\n");
	return 2;
}

int main(int argc, char **argv)
{
	bool quit = false;
	pthread_t sigthread;
	sigset_t set;
	int rc = parse_args(argc, argv, &quit);

	if (rc || quit)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&sigthread, NULL, signal_main, &set) != 0)
		return 1;
	pthread_detach(sigthread);
	sc_out_start();
	sc_log_init("fltport-scanuser", opt.journal_socket);
	sc_out("ENGINE pattern=%s clamav=%s signatures=%u",
	       opt.engine.pattern_len ? opt.engine.pattern : "-", opt.engine.clam ? "yes" : "no",
	       opt.engine.clam_sigs);
	rc = 1;
	for (;;) {
		fltport_conn *conn = connect_retry();

		if (!conn)
			break;
		rc = 0;
		run_session(conn);
		fltport_close(conn);
		if (atomic_load(&stopping))
			break;
		sc_out("DISCONNECTED%s", opt.once ? "" : ": reconnecting");
		if (opt.once)
			break;
	}
	if (atomic_load(&stopping))
		rc = 0;
	scan_engine_free(&opt.engine);
	sc_out_stop(1000);
	return rc;
}
