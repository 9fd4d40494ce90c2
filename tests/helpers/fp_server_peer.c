/*
 * fp_server_peer — the filter side of a port in its own process, for the
 * connection-lifecycle tests (tests/integration/test_connect.c).
 *
 *   fp_server_peer serve NAME [--max N] [--everyone] [--list-uid U]
 *                  [--list-gid G] [--echo] [--block-msg] [--reject STATUS]
 *                  [--as-uid U [--as-gid G]] [--cap-dac] [--usr2 ACTION]...
 *
 * Prints LISTENING pid=P uid=U once the port exists (CREATE_ERR rc=R or
 * SETUP_ERR what=W rc=R otherwise), then one line per callback:
 *   CONNECT pid=P uid=U gid=G ctx_len=L n=N   DISCONNECT n=N
 *   MSG in_len=I out_cap=C
 * --echo:      the message callback writes the input reversed, at most
 *              out_cap bytes, and returns 0x12345678 (else on_message NULL).
 * --block-msg: the message callback blocks (until the deadline).
 * --reject S:  every connect is rejected with status S.
 * --as-uid U:  drop to U/G before creating the port; with --cap-dac keep
 *              CAP_DAC_OVERRIDE, so that it can bind in a root-owned dir.
 * Signals: SIGUSR1 prints STATS connects=C disconnects=D messages=M;
 * SIGUSR2 runs the next --usr2 ACTION:
 *   close-port     fltport_server_close, prints PORT_CLOSED
 *   send           sends "hello" (reply wanted, 64 bytes, 10 s) to the first
 *                  live client: SENT rc=R len=L status=0xS data=D
 *   close-clients  fltport_client_close on every live client: CLIENTS_CLOSED n=N
 * SIGTERM destroys the server and prints DESTROYED connects=C disconnects=D.
 * Exits by itself after 30 s (DEADLINE, exit 3), or when the test dies.
 */
#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <fltport/port.h>

#include "testutil.h"

#define DEADLINE_S 30
#define MAX_CONNS 64
#define MAX_ACTIONS 8
#define MAX_IDS 8

struct opts {
	const char *name;
	int max;
	bool everyone, echo, block_msg, cap_dac;
	bool reject;
	uint32_t reject_status;
	long as_uid, as_gid;
	uid_t uids[MAX_IDS];
	size_t nuids;
	gid_t gids[MAX_IDS];
	size_t ngids;
	const char *actions[MAX_ACTIONS];
	int nactions;
};

struct conn {
	fltport_client *client;
	bool closed; /* fltport_client_close called */
	bool ended;  /* disconnect callback ran */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn conns[MAX_CONNS];
static int nconns;
static atomic_int n_connect, n_disconnect, n_message;
static int64_t deadline_ns;

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

static void usage(void)
{
	fprintf(stderr, "usage: fp_server_peer serve NAME [options] (see source)\n");
	exit(64);
}

static bool parse_flag(struct opts *o, const char *a)
{
	if (strcmp(a, "--everyone") == 0)
		o->everyone = true;
	else if (strcmp(a, "--echo") == 0)
		o->echo = true;
	else if (strcmp(a, "--block-msg") == 0)
		o->block_msg = true;
	else if (strcmp(a, "--cap-dac") == 0)
		o->cap_dac = true;
	else
		return false;
	return true;
}

static void parse_valued(struct opts *o, const char *a, const char *v)
{
	if (strcmp(a, "--max") == 0) {
		o->max = (int)strtol(v, NULL, 0);
	} else if (strcmp(a, "--reject") == 0) {
		o->reject = true;
		o->reject_status = (uint32_t)strtoul(v, NULL, 0);
	} else if (strcmp(a, "--as-uid") == 0) {
		o->as_uid = strtol(v, NULL, 0);
	} else if (strcmp(a, "--as-gid") == 0) {
		o->as_gid = strtol(v, NULL, 0);
	} else if (strcmp(a, "--list-uid") == 0 && o->nuids < MAX_IDS) {
		o->uids[o->nuids++] = (uid_t)strtoul(v, NULL, 0);
	} else if (strcmp(a, "--list-gid") == 0 && o->ngids < MAX_IDS) {
		o->gids[o->ngids++] = (gid_t)strtoul(v, NULL, 0);
	} else if (strcmp(a, "--usr2") == 0 && o->nactions < MAX_ACTIONS) {
		o->actions[o->nactions++] = v;
	} else {
		usage();
	}
}

static void parse(int argc, char **argv, struct opts *o)
{
	int i;

	if (argc < 3 || strcmp(argv[1], "serve") != 0)
		usage();
	*o = (struct opts){ .name = argv[2], .max = 16, .as_uid = -1, .as_gid = -1 };
	for (i = 3; i < argc; i++) {
		if (parse_flag(o, argv[i]))
			continue;
		if (i + 1 >= argc)
			usage();
		parse_valued(o, argv[i], argv[i + 1]);
		i++;
	}
	if (o->as_uid >= 0 && o->as_gid < 0)
		o->as_gid = o->as_uid;
}

/* Become uid/gid but keep CAP_DAC_OVERRIDE (permitted + effective). */
static int drop_keep_dac(uid_t uid, gid_t gid)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
		.pid = 0,
	};
	struct __user_cap_data_struct data[2];
	int rc;

	if (prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) != 0)
		return -errno;
	rc = tu_drop_to(uid, gid);
	if (rc != 0)
		return rc;
	memset(data, 0, sizeof(data));
	data[0].effective = 1u << CAP_DAC_OVERRIDE;
	data[0].permitted = 1u << CAP_DAC_OVERRIDE;
	if (syscall(SYS_capset, &hdr, data) != 0)
		return -errno;
	return 0;
}

static void setup(const struct opts *o)
{
	sigset_t set;
	int rc = 0;

	/* Blocked before the library starts threads: only sigtimedwait in
	 * main() sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	alarm(DEADLINE_S + 2);
	deadline_ns = tu_now_ns() + (int64_t)DEADLINE_S * 1000000000LL;
	if (o->as_uid >= 0) {
		if (o->cap_dac)
			rc = drop_keep_dac((uid_t)o->as_uid, (gid_t)o->as_gid);
		else
			rc = tu_drop_to((uid_t)o->as_uid, (gid_t)o->as_gid);
	}
	if (rc != 0) {
		say("SETUP_ERR what=drop rc=%d", rc);
		exit(2);
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		exit(5);
}

static const struct opts *g_opts;

static int on_connect(fltport_client *client, void *server_cookie, const void *ctx, size_t ctx_len,
		      const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	int n = atomic_fetch_add(&n_connect, 1) + 1;
	int i;

	say("CONNECT pid=%d uid=%u gid=%u ctx_len=%zu n=%d", (int)peer->pid, (unsigned)peer->uid,
	    (unsigned)peer->gid, ctx_len, n);
	if (g_opts->reject) {
		*status = g_opts->reject_status;
		return 1;
	}
	pthread_mutex_lock(&lock);
	if (nconns == MAX_CONNS) {
		pthread_mutex_unlock(&lock);
		*status = 0xC000009Au;
		return 1;
	}
	i = nconns++;
	conns[i] = (struct conn){ .client = client };
	pthread_mutex_unlock(&lock);
	*conn_cookie = &conns[i];
	return 0;
}

static void on_disconnect(void *conn_cookie)
{
	struct conn *c = conn_cookie;
	bool close_it;
	int n;

	pthread_mutex_lock(&lock);
	close_it = !c->closed;
	c->closed = true;
	c->ended = true;
	pthread_mutex_unlock(&lock);
	n = atomic_fetch_add(&n_disconnect, 1) + 1;
	say("DISCONNECT n=%d", n);
	if (close_it)
		fltport_client_close(c->client);
}

static uint32_t on_echo(void *conn_cookie, const struct fltport_request *req, void *out,
			size_t out_cap, size_t *out_len)
{
	const unsigned char *in = req->in;
	unsigned char *o = out;
	size_t i, n = req->in_len < out_cap ? req->in_len : out_cap;
	unsigned k;

	atomic_fetch_add(&n_message, 1);
	for (k = 0; k < req->nfds; k++)
		close(req->fds[k]);
	say("MSG in_len=%zu out_cap=%zu", req->in_len, out_cap);
	for (i = 0; i < n; i++)
		o[i] = in[req->in_len - 1 - i];
	*out_len = n;
	return 0x12345678u;
}

static uint32_t on_block(void *conn_cookie, const struct fltport_request *req, void *out,
			 size_t out_cap, size_t *out_len)
{
	unsigned k;

	atomic_fetch_add(&n_message, 1);
	for (k = 0; k < req->nfds; k++)
		close(req->fds[k]);
	say("MSG in_len=%zu out_cap=%zu", req->in_len, out_cap);
	while (tu_now_ns() < deadline_ns)
		tu_sleep_ms(50);
	return 0;
}

static fltport_client *first_live(void)
{
	fltport_client *c = NULL;
	int i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < nconns && !c; i++)
		if (!conns[i].closed)
			c = conns[i].client;
	pthread_mutex_unlock(&lock);
	return c;
}

static void act_send(void)
{
	fltport_client *c = first_live();
	char reply[64 + 1];
	size_t len = 64;
	uint32_t st = 0;
	int rc = -ENOTCONN;

	memset(reply, 0, sizeof(reply));
	if (c)
		rc = fltport_send(c, "hello", 5, NULL, 0, reply, &len, &st, 10000000000LL);
	if (rc != 0 && rc != -EOVERFLOW)
		len = 0;
	reply[len] = '\0';
	say("SENT rc=%d len=%zu status=0x%08x data=%s", rc, len, (unsigned)st, reply);
}

static void act_close_clients(void)
{
	fltport_client *todo[MAX_CONNS];
	int i, n = 0;

	pthread_mutex_lock(&lock);
	for (i = 0; i < nconns; i++) {
		if (!conns[i].closed) {
			conns[i].closed = true;
			todo[n++] = conns[i].client;
		}
	}
	pthread_mutex_unlock(&lock);
	for (i = 0; i < n; i++)
		fltport_client_close(todo[i]);
	say("CLIENTS_CLOSED n=%d", n);
}

static void run_action(fltport_server *srv, const char *a)
{
	if (!a) {
		say("ACTION_ERR none left");
	} else if (strcmp(a, "close-port") == 0) {
		fltport_server_close(srv);
		say("PORT_CLOSED");
	} else if (strcmp(a, "send") == 0) {
		act_send();
	} else if (strcmp(a, "close-clients") == 0) {
		act_close_clients();
	} else {
		say("ACTION_ERR unknown=%s", a);
	}
}

static int create(const struct opts *o, fltport_server **srv)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.max_connections = o->max,
	};
	int rc;

	if (o->echo)
		cfg.on_message = on_echo;
	else if (o->block_msg)
		cfg.on_message = on_block;
	if (o->everyone) {
		cfg.access.mode = FLTPORT_ACCESS_EVERYONE;
	} else if (o->nuids || o->ngids) {
		cfg.access.mode = FLTPORT_ACCESS_LIST;
		cfg.access.uids = o->uids;
		cfg.access.nuids = o->nuids;
		cfg.access.gids = o->gids;
		cfg.access.ngids = o->ngids;
	}
	rc = fltport_server_create(o->name, &cfg, srv);
	if (rc != 0)
		say("CREATE_ERR rc=%d", rc);
	return rc;
}

static int serve(const struct opts *o, fltport_server *srv)
{
	struct timespec slice = { .tv_sec = 0, .tv_nsec = 200000000 };
	sigset_t set;
	int next = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	while (tu_now_ns() < deadline_ns) {
		int sig = sigtimedwait(&set, NULL, &slice);

		if (sig == SIGUSR1) {
			say("STATS connects=%d disconnects=%d messages=%d", atomic_load(&n_connect),
			    atomic_load(&n_disconnect), atomic_load(&n_message));
		} else if (sig == SIGUSR2) {
			run_action(srv, next < o->nactions ? o->actions[next] : NULL);
			next++;
		} else if (sig == SIGTERM) {
			fltport_server_destroy(srv);
			say("DESTROYED connects=%d disconnects=%d", atomic_load(&n_connect),
			    atomic_load(&n_disconnect));
			return 0;
		}
	}
	say("DEADLINE");
	_exit(3);
}

int main(int argc, char **argv)
{
	fltport_server *srv = NULL;
	struct opts o;

	parse(argc, argv, &o);
	g_opts = &o;
	setup(&o);
	if (create(&o, &srv) != 0)
		return 0;
	say("LISTENING pid=%d uid=%u", (int)getpid(), (unsigned)geteuid());
	return serve(&o, srv);
}
