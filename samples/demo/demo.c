/*
 * fltport-demo: a filter process and a user-mode service talking over a
 * named communication port — what `make demo` runs.
 *
 * One program, two processes.  main() makes a private port directory
 * (FLTPORT_DIR), then forks before any thread exists: the parent is the
 * filter, the child the service.
 *
 *   filter                                   service
 *   fltport_server_create("\DemoPort")
 *                                            fltport_connect(context)
 *   connect callback: peer + context
 *                                            fltport_request("hello")
 *   message callback: answers
 *   fltport_send("scan ...", file fd) ─────► fltport_get → reads the fd
 *                     verdict ◄───────────── fltport_reply("clean"/"infected")
 *   fltport_send(notice, no reply) ────────► fltport_get
 *   fltport_send("bye", no reply) ─────────► fltport_get, fltport_close
 *   disconnect callback
 *   fltport_server_destroy
 *
 * Every wait is bounded, so neither side hangs if the other dies.  Exits 0
 * only if every step worked.  Uses only the public API in <fltport/port.h>.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, pipe2 */
#endif

#include <fltport/port.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORT_NAME "\\DemoPort"
#define SERVICE_CONTEXT "demo-service v1"
#define NS_PER_SEC 1000000000LL
#define SEND_TIMEOUT_NS (5 * NS_PER_SEC) /* one deadline per request or message */
#define STEP_TIMEOUT_S 10                /* longest wait for the other process */

/* Application statuses carried by the port (opaque to the library). */
#define DEMO_STATUS_OK 0u
#define DEMO_STATUS_UNKNOWN_REQUEST 1u

#define EICAR_MARK "EICAR-STANDARD-ANTIVIRUS-TEST-FILE"

/* One line on stdout, prefixed by the side speaking; flushed at once so
 * that the two processes' lines interleave in the order they happen. */
static void say(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const char *who, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	printf("[%s] %s\n", who, line);
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Filter                                                               */
/* ------------------------------------------------------------------ */

/* State the filter's callbacks (library threads) share with its main
 * thread.  Everything below `lock` is protected by it. */
struct filter_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pid_t service_pid;      /* the only process allowed to connect */
	fltport_client *client; /* set by the connect callback; main closes it */
	bool hello_seen;        /* the service's first request arrived */
	bool disconnected;      /* the disconnect callback ran */
};

static struct filter_state fs = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

static int on_connect(fltport_client *client, void *server_cookie, const void *ctx, size_t ctx_len,
		      const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	struct filter_state *st = server_cookie;
	int shown = ctx_len > 200 ? 200 : (int)ctx_len;

	say("filter", "connect callback: peer pid %ld uid %ld gid %ld, context \"%.*s\"",
	    (long)peer->pid, (long)peer->uid, (long)peer->gid, shown,
	    ctx_len ? (const char *)ctx : "");
	if (peer->pid != st->service_pid) {
		say("filter", "unexpected peer (expected pid %ld): rejected",
		    (long)st->service_pid);
		*status = 0xC0000022u; /* STATUS_ACCESS_DENIED, as a Windows filter would */
		return -1;
	}
	pthread_mutex_lock(&st->lock);
	st->client = client;
	pthread_mutex_unlock(&st->lock);
	*conn_cookie = st;
	say("filter", "connection accepted");
	return 0;
}

static void on_disconnect(void *conn_cookie)
{
	struct filter_state *st = conn_cookie;

	say("filter", "disconnect callback: the service is gone");
	pthread_mutex_lock(&st->lock);
	st->disconnected = true;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

static uint32_t on_message(void *conn_cookie, const struct fltport_request *req, void *out,
			   size_t out_cap, size_t *out_len)
{
	struct filter_state *st = conn_cookie;
	int shown = req->in_len > 200 ? 200 : (int)req->in_len;
	char answer[128];
	size_t n;

	fltport_close_fds(req->fds, req->nfds); /* a client's: never close() */
	say("filter", "message callback: request \"%.*s\"", shown,
	    req->in_len ? (const char *)req->in : "");
	if (req->in_len != 5 || memcmp(req->in, "hello", 5) != 0) {
		say("filter", "unknown request: answering status %u", DEMO_STATUS_UNKNOWN_REQUEST);
		return DEMO_STATUS_UNKNOWN_REQUEST;
	}
	snprintf(answer, sizeof(answer), "hello, service; this is the filter (pid %ld)",
		 (long)getpid());
	n = strlen(answer);
	if (n > out_cap)
		n = out_cap;
	if (n)
		memcpy(out, answer, n);
	*out_len = n;

	pthread_mutex_lock(&st->lock);
	st->hello_seen = true;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
	return DEMO_STATUS_OK;
}

/* Wait until *flag (protected by fs.lock) is true, at most STEP_TIMEOUT_S. */
static bool filter_wait(const bool *flag, const char *what)
{
	struct timespec deadline;
	bool ok;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += STEP_TIMEOUT_S;
	pthread_mutex_lock(&fs.lock);
	while (!*flag && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&fs.cond, &fs.lock, &deadline);
	ok = *flag;
	pthread_mutex_unlock(&fs.lock);
	if (!ok)
		say("filter", "FAILED: no sign of %s within %d s", what, STEP_TIMEOUT_S);
	return ok;
}

/* A file for the service to scan: an unlinked temporary file holding
 * `content`.  Returns its fd or -1. */
static int make_file(const char *content)
{
	FILE *f = tmpfile();
	int fd;

	if (!f)
		return -1;
	if (fputs(content, f) < 0 || fflush(f) != 0) {
		fclose(f);
		return -1;
	}
	fd = dup(fileno(f)); /* fclose would close the stream's own fd */
	fclose(f);
	return fd;
}

/* Ask the service to scan `path` (its content travels as an fd); the reply
 * must be `expect`.  Returns 0 or -1. */
static int ask_scan(fltport_client *client, const char *path, const char *content,
		    const char *expect)
{
	char msg[256], reply[64];
	size_t reply_len = sizeof(reply) - 1;
	uint32_t status = 0;
	int fd, rc, len;

	fd = make_file(content);
	if (fd < 0) {
		say("filter", "FAILED: cannot make a temporary file: %s", strerror(errno));
		return -1;
	}
	len = snprintf(msg, sizeof(msg), "scan %s", path);
	say("filter", "fltport_send: \"%s\" (with the file's fd), waiting up to 5 s for a verdict",
	    msg);
	rc = fltport_send(client, msg, (size_t)len, &fd, 1, reply, &reply_len, &status,
			  SEND_TIMEOUT_NS);
	close(fd);
	if (rc < 0) {
		say("filter", "FAILED: fltport_send: %s", fltport_strerror(rc));
		return -1;
	}
	reply[reply_len] = '\0';
	say("filter", "verdict for %s: \"%s\" (status %u)", path, reply, status);
	if (strcmp(reply, expect) != 0 || status != DEMO_STATUS_OK) {
		say("filter", "FAILED: expected \"%s\" with status %u", expect, DEMO_STATUS_OK);
		return -1;
	}
	return 0;
}

/* A message that wants no reply: returns once the service has taken it. */
static int tell(fltport_client *client, const char *text)
{
	int rc;

	say("filter", "fltport_send: \"%s\" (no reply wanted)", text);
	rc = fltport_send(client, text, strlen(text), NULL, 0, NULL, NULL, NULL, SEND_TIMEOUT_NS);
	if (rc < 0) {
		say("filter", "FAILED: fltport_send: %s", fltport_strerror(rc));
		return -1;
	}
	say("filter", "the service took \"%s\"", text);
	return 0;
}

static int filter_talk(void)
{
	fltport_client *client;

	pthread_mutex_lock(&fs.lock);
	client = fs.client;
	pthread_mutex_unlock(&fs.lock);
	if (!client) {
		say("filter", "FAILED: a request arrived but no connection was recorded");
		return -1;
	}
	if (ask_scan(client, "/home/alice/report.txt", "quarterly numbers\n", "clean") < 0 ||
	    ask_scan(client, "/home/alice/Downloads/eicar.com",
		     "X5O!P%@AP[4\\PZX54(P^)7CC)7}$" EICAR_MARK "!$H+H*\n", "infected") < 0 ||
	    tell(client, "note: 2 files scanned, 1 infected") < 0 || tell(client, "bye") < 0)
		return -1;
	return 0;
}

/* The filter's life.  `ready_fd` is written once the port is open and then
 * closed (also on failure, so the service sees EOF instead of waiting). */
static int filter_main(pid_t service_pid, int ready_fd)
{
	struct fltport_server_config cfg = {
		.cookie = &fs,
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message,
		.max_connections = 1,
		.access = { .mode = FLTPORT_ACCESS_EVERYONE },
	};
	pthread_condattr_t attr;
	fltport_server *srv;
	fltport_client *client;
	int rc, ret = -1;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&fs.cond, &attr);
	pthread_condattr_destroy(&attr);
	fs.service_pid = service_pid;

	rc = fltport_server_create(PORT_NAME, &cfg, &srv);
	if (rc < 0) {
		say("filter", "FAILED: fltport_server_create(%s): %s", PORT_NAME,
		    fltport_strerror(rc));
		close(ready_fd);
		return -1;
	}
	say("filter", "server port %s open in %s (anyone may connect); waiting for the service",
	    PORT_NAME, fltport_dir());
	if (write(ready_fd, "R", 1) != 1)
		say("filter", "cannot signal the service: %s", strerror(errno));
	close(ready_fd);

	if (filter_wait(&fs.hello_seen, "the service's hello") && filter_talk() == 0 &&
	    filter_wait(&fs.disconnected, "the service disconnecting"))
		ret = 0;

	pthread_mutex_lock(&fs.lock);
	client = fs.client;
	fs.client = NULL;
	pthread_mutex_unlock(&fs.lock);
	if (client)
		fltport_client_close(client);
	fltport_server_destroy(srv);
	say("filter", "server port destroyed");
	pthread_cond_destroy(&fs.cond);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Service                                                              */
/* ------------------------------------------------------------------ */

/* The verdict on the file behind `fd`. */
static const char *scan_fd(int fd)
{
	char data[4096];
	ssize_t n = pread(fd, data, sizeof(data), 0);

	if (n < 0)
		return "unreadable";
	return memmem(data, (size_t)n, EICAR_MARK, strlen(EICAR_MARK)) ? "infected" : "clean";
}

/* Handle one message from the filter.  Returns 1 after "bye", 0 to go on,
 * -1 on failure. */
static int service_handle(fltport_conn *conn, const struct fltport_msg *msg, const char *text)
{
	const char *verdict;
	int rc;

	say("service", "fltport_get: message %llu \"%s\"%s%s", (unsigned long long)msg->id, text,
	    msg->nfds ? " with an fd" : "", msg->wants_reply ? ", reply wanted" : "");
	if (!msg->wants_reply)
		return strcmp(text, "bye") == 0 ? 1 : 0;

	verdict = msg->nfds ? scan_fd(msg->fds[0]) : "no file";
	rc = fltport_reply(conn, msg->id, DEMO_STATUS_OK, verdict, strlen(verdict));
	if (rc < 0) {
		say("service", "FAILED: fltport_reply: %s", fltport_strerror(rc));
		return -1;
	}
	say("service", "fltport_reply: \"%s\"", verdict);
	return 0;
}

static int service_loop(fltport_conn *conn)
{
	for (;;) {
		char buf[4096];
		struct fltport_msg msg;
		int rc = fltport_get(conn, buf, sizeof(buf) - 1, &msg, STEP_TIMEOUT_S * NS_PER_SEC);

		if (rc == -ETIMEDOUT) {
			say("service", "FAILED: no message from the filter for %d s",
			    STEP_TIMEOUT_S);
			return -1;
		}
		if (rc < 0) {
			say("service", "FAILED: fltport_get: %s", fltport_strerror(rc));
			return -1;
		}
		buf[msg.len] = '\0';
		rc = service_handle(conn, &msg, buf);
		for (unsigned i = 0; i < msg.nfds; i++)
			close(msg.fds[i]);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
	}
}

/* Wait (bounded) until the filter says its port is open. */
static int service_wait_ready(int ready_fd)
{
	struct pollfd pfd = { .fd = ready_fd, .events = POLLIN };
	char c;
	int rc;

	do
		rc = poll(&pfd, 1, STEP_TIMEOUT_S * 1000);
	while (rc < 0 && errno == EINTR);
	if (rc <= 0 || read(ready_fd, &c, 1) != 1) {
		say("service", "FAILED: the filter did not open its port");
		return -1;
	}
	return 0;
}

static int service_main(int ready_fd)
{
	struct fltport_peer peer;
	fltport_conn *conn;
	char answer[256];
	size_t answer_len = 0;
	uint32_t status = 0;
	int rc;

	rc = service_wait_ready(ready_fd);
	close(ready_fd);
	if (rc < 0)
		return -1;

	say("service", "fltport_connect(%s) with context \"%s\"", PORT_NAME, SERVICE_CONTEXT);
	rc = fltport_connect(PORT_NAME, SERVICE_CONTEXT, strlen(SERVICE_CONTEXT), 0,
			     SEND_TIMEOUT_NS, &conn, &status);
	if (rc < 0) {
		say("service", "FAILED: fltport_connect: %s (status 0x%08x)", fltport_strerror(rc),
		    rc == -ECONNREFUSED ? status : 0u);
		return -1;
	}
	fltport_conn_peer(conn, &peer);
	say("service", "connected; the server is pid %ld uid %ld", (long)peer.pid, (long)peer.uid);

	say("service", "fltport_request: \"hello\"");
	rc = fltport_request(conn, "hello", 5, NULL, 0, answer, sizeof(answer) - 1, &answer_len,
			     &status, SEND_TIMEOUT_NS);
	if (rc < 0 || status != DEMO_STATUS_OK) {
		say("service", "FAILED: fltport_request: %s (status %u)",
		    rc < 0 ? fltport_strerror(rc) : "done", status);
		fltport_close(conn);
		return -1;
	}
	answer[answer_len] = '\0';
	say("service", "response: \"%s\"", answer);

	rc = service_loop(conn);
	fltport_close(conn);
	say("service", "connection closed%s", rc < 0 ? " after a failure" : "");
	return rc;
}

/* ------------------------------------------------------------------ */
/* Both                                                                 */
/* ------------------------------------------------------------------ */

/* Reap the service, waiting at most STEP_TIMEOUT_S (then SIGKILL).
 * Returns true if it exited with status 0. */
static bool reap(pid_t pid)
{
	struct timespec tick = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
	int status;

	for (int i = 0; i < STEP_TIMEOUT_S * 100; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0;
		if (r < 0 && errno != EINTR)
			return false;
		nanosleep(&tick, NULL);
	}
	say("filter", "the service did not exit within %d s: killing it", STEP_TIMEOUT_S);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return false;
}

/* Interrupted (Ctrl-C, kill): the filter process removes the port
 * directory, ends the service and dies of the same signal.  Only
 * async-signal-safe calls here; the directory holds at most the port's
 * socket, whose path is made before the handler is installed. */
static char port_dir[64];
static char port_socket[128];
static pid_t filter_pid;
static volatile sig_atomic_t service_pid;

static void on_stop_signal(int sig)
{
	if (getpid() == filter_pid) {
		if (service_pid > 0)
			kill((pid_t)service_pid, SIGTERM);
		unlink(port_socket);
		rmdir(port_dir);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_stop_signals(void (*handler)(int))
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = handler };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

/* Remove the private port directory and anything left in it (the port's
 * socket; the management plane's .ctl directory, empty once the server is
 * destroyed). */
static void remove_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
			    unlinkat(dirfd(d), e->d_name, 0) < 0 && errno == EISDIR)
				unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
		}
		closedir(d);
	}
	if (rmdir(path) < 0)
		say("filter", "cannot remove %s: %s", path, strerror(errno));
}

static void usage(FILE *f)
{
	fprintf(f, "usage: fltport-demo [--help | --version]\n"
		   "A filter process and a service process talking over the port \\DemoPort\n"
		   "in a private port directory: connect with a context, a request, a message\n"
		   "carrying a file's fd answered with a verdict, messages without reply,\n"
		   "disconnect. Every wait is bounded; exits 0 only if every step worked.\n");
}

/* --help, --version: -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv)
{
	if (argc < 2)
		return -1;
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
		printf("fltport-demo %s\n", fltport_version(NULL));
		return 0;
	}
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	int ready[2];
	bool ok;
	pid_t pid;
	int status = parse_args(argc, argv);

	if (status >= 0)
		return status;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN); /* the ready pipe, if the service died early */

	snprintf(port_dir, sizeof(port_dir), "/tmp/fltport-demo.XXXXXX");
	if (!mkdtemp(port_dir)) {
		fprintf(stderr, "fltport-demo: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	/* The port's socket: its name without the leading backslash. */
	snprintf(port_socket, sizeof(port_socket), "%s/%s", port_dir, PORT_NAME + 1);
	filter_pid = getpid();
	catch_stop_signals(on_stop_signal);
	if (setenv("FLTPORT_DIR", port_dir, 1) < 0 || pipe2(ready, O_CLOEXEC) < 0) {
		fprintf(stderr, "fltport-demo: %s\n", strerror(errno));
		rmdir(port_dir);
		return 1;
	}
	say("filter", "private port directory %s (FLTPORT_DIR); starting the service process",
	    port_dir);

	/* Fork now, while this process has no threads; the library starts
	 * its threads later, separately in each process. */
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "fltport-demo: fork: %s\n", strerror(errno));
		rmdir(port_dir);
		return 1;
	}
	if (pid == 0) {
		int rc;

		catch_stop_signals(SIG_DFL); /* the directory is the filter's to remove */
		close(ready[1]);
		rc = service_main(ready[0]);
		fflush(stdout);
		_exit(rc < 0 ? 1 : 0);
	}
	service_pid = pid;
	close(ready[0]);

	ok = filter_main(pid, ready[1]) == 0;
	if (!reap(pid)) {
		say("filter", "FAILED: the service process did not succeed");
		ok = false;
	}
	service_pid = 0; /* reaped: the pid may be reused */
	remove_dir(port_dir);
	say("filter", "%s", ok ? "demo finished: every step worked" : "demo FAILED");
	return ok ? 0 : 1;
}
