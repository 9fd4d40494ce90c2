/*
 * fp_client_peer — the user side of a port in its own process, for the
 * connection-lifecycle tests (tests/integration/test_connect.c).
 *
 *   fp_client_peer connect NAME [--uid U] [--gid G] [--ctx-len N]
 *                  [--retry-busy N] [--then hold|get]
 *
 * Drops to U/G first if asked, connects with N context bytes following
 * fp_ctx_byte() (the test checks them), then prints exactly one of
 *   CONNECTED pid=P uid=U gid=G tries=T
 *   CONNECT_ERR rc=R status=0xS          (and exits 0)
 *   SETUP_ERR what=W rc=R                (and exits 2)
 * --retry-busy N retries up to N times while the port answers -EUSERS.
 * Then, with
 *   hold (default): waits for SIGUSR1, closes (fltport_close), prints CLOSED.
 *   get:  prints GETTING, then GOT len=L for each message until fltport_get
 *         fails (GET_ERR rc=R), then tries one request (REQ_ERR rc=R or
 *         REQ_OK), prints ENDED e=0|1 and closes.
 * Exits by itself after 30 s whatever happens (alarm), or when the test
 * process dies (parent-death signal).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <fltport/port.h>

#include "testutil.h"

#define DEADLINE_S 30
#define CONNECT_TIMEOUT_NS (10 * 1000000000LL)

struct opts {
	const char *name;
	long uid, gid; /* -1: keep */
	long ctx_len;
	long retry_busy;
	const char *then;
};

/* One write per line, so lines from several threads never interleave. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDOUT_FILENO, buf, (size_t)n) < 0)
		_exit(4);
}

/* The context pattern; test_connect.c has the same formula. */
static unsigned char fp_ctx_byte(size_t i)
{
	return (unsigned char)(i * 131u + 17u);
}

static void usage(void)
{
	fprintf(stderr, "usage: fp_client_peer connect NAME [--uid U] [--gid G] "
			"[--ctx-len N] [--retry-busy N] [--then hold|get]\n");
	exit(64);
}

static void parse(int argc, char **argv, struct opts *o)
{
	int i;

	if (argc < 3 || strcmp(argv[1], "connect") != 0)
		usage();
	*o = (struct opts){ .name = argv[2], .uid = -1, .gid = -1, .then = "hold" };
	for (i = 3; i < argc; i++) {
		const char *a = argv[i];

		if (i + 1 >= argc)
			usage();
		if (strcmp(a, "--uid") == 0)
			o->uid = strtol(argv[++i], NULL, 0);
		else if (strcmp(a, "--gid") == 0)
			o->gid = strtol(argv[++i], NULL, 0);
		else if (strcmp(a, "--ctx-len") == 0)
			o->ctx_len = strtol(argv[++i], NULL, 0);
		else if (strcmp(a, "--retry-busy") == 0)
			o->retry_busy = strtol(argv[++i], NULL, 0);
		else if (strcmp(a, "--then") == 0)
			o->then = argv[++i];
		else
			usage();
	}
	if (o->uid >= 0 && o->gid < 0)
		o->gid = o->uid;
}

static void setup(const struct opts *o)
{
	sigset_t set;

	/* Blocked before the library starts threads, so that only
	 * sigwait below sees SIGUSR1. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	alarm(DEADLINE_S);
	if (o->uid >= 0) {
		int rc = tu_drop_to((uid_t)o->uid, (gid_t)o->gid);

		if (rc != 0) {
			say("SETUP_ERR what=drop rc=%d", rc);
			exit(2);
		}
	}
	/* After the drop: changing credentials clears the setting. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		exit(5);
}

static int do_connect(const struct opts *o, fltport_conn **conn, int *tries)
{
	unsigned char *ctx = NULL;
	uint32_t status = 0;
	long i;
	int rc;

	if (o->ctx_len > 0) {
		ctx = malloc((size_t)o->ctx_len);
		if (!ctx) {
			say("SETUP_ERR what=malloc rc=%d", -ENOMEM);
			exit(2);
		}
		for (i = 0; i < o->ctx_len; i++)
			ctx[i] = fp_ctx_byte((size_t)i);
	}
	for (*tries = 1;; ++*tries) {
		status = 0;
		rc = fltport_connect(o->name, ctx, (size_t)o->ctx_len, 0, CONNECT_TIMEOUT_NS, conn,
				     &status);
		if (rc != -EUSERS || *tries > o->retry_busy)
			break;
		tu_sleep_ms(20);
	}
	free(ctx);
	if (rc != 0)
		say("CONNECT_ERR rc=%d status=0x%08x", rc, (unsigned)status);
	return rc;
}

static int hold(fltport_conn *conn)
{
	sigset_t set;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	while (sigwait(&set, &sig) != 0)
		;
	fltport_close(conn);
	say("CLOSED");
	return 0;
}

static int get_until_error(fltport_conn *conn)
{
	static char buf[1 << 16];
	struct fltport_msg msg;
	uint32_t status = 0;
	int64_t left;
	unsigned i;
	int rc;

	say("GETTING");
	for (;;) {
		left = (int64_t)DEADLINE_S * 1000000000LL;
		rc = fltport_get(conn, buf, sizeof(buf), &msg, left);
		if (rc != 0)
			break;
		for (i = 0; i < msg.nfds; i++)
			close(msg.fds[i]);
		say("GOT len=%zu", msg.len);
	}
	say("GET_ERR rc=%d", rc);
	rc = fltport_request(conn, "x", 1, NULL, 0, buf, sizeof(buf), NULL, &status, 5000000000LL);
	if (rc == 0)
		say("REQ_OK status=0x%08x", (unsigned)status);
	else
		say("REQ_ERR rc=%d", rc);
	say("ENDED e=%d", fltport_conn_ended(conn) ? 1 : 0);
	fltport_close(conn);
	return 0;
}

int main(int argc, char **argv)
{
	fltport_conn *conn = NULL;
	struct opts o;
	int tries = 0;

	parse(argc, argv, &o);
	setup(&o);
	if (do_connect(&o, &conn, &tries) != 0)
		return 0;
	say("CONNECTED pid=%d uid=%u gid=%u tries=%d", (int)getpid(), (unsigned)getuid(),
	    (unsigned)getgid(), tries);
	if (strcmp(o.then, "get") == 0)
		return get_until_error(conn);
	return hold(conn);
}
