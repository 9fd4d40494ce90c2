/*
 * fp_ctl_filter — a named, running filter with a server port, for the
 * management-plane tests (tests/tools/test_fltportctl.c).  Root.
 *
 *   fp_ctl_filter NAME ALTITUDE PATH PORT [--refuse-detach]
 *
 * Creates a filter registered as NAME at ALTITUDE (fltport_filter_config
 * .name/.altitude) whose pre-open callback allows everything, attaches it
 * to the file system holding PATH ("-": not attached), creates the server
 * port PORT ("-": none; anyone may connect; requests are echoed), then
 * prints
 *   READY pid=P
 * or SETUP_ERR what=W rc=R (and exits 2).  Then, on
 *   SIGUSR1  sends "ping" to every connected client and waits for the reply
 *            (5 s): SENT n=N rc=R (R: the first error, or 0)
 *   SIGUSR2  prints the filter's counters: STATS seen= allowed= denied=
 *   SIGTERM  destroys the port and the filter: BYE, exit 0
 * Attach and detach requests from the management plane are done and
 * printed (SETUP volume=V instance=I detach=0|1); with --refuse-detach a
 * detach is refused with -EBUSY.  Exits by itself after 300 s, or when the
 * test process dies (parent-death signal).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <fltport/filter.h>
#include <fltport/port.h>

#include "testutil.h"

#define LIFETIME_S 300
#define MAX_CLIENTS 8
#define SEND_TIMEOUT_NS (5 * 1000000000LL)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static fltport_client *clients[MAX_CLIENTS]; /* under lock */
static bool refuse_detach;

static int pre_open(void *cookie, const struct fltport_filter_event *ev)
{
	(void)cookie;
	(void)ev;
	return FLTPORT_ALLOW;
}

static int instance_setup(void *cookie, const char *volume, const char *instance, bool detach)
{
	(void)cookie;
	tu_say("SETUP volume=%s instance=%s detach=%d", volume, instance ? instance : "",
	       detach ? 1 : 0);
	return detach && refuse_detach ? -EBUSY : 0;
}

static int on_connect(fltport_client *client, void *cookie, const void *ctx, size_t ctx_len,
		      const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	(void)cookie;
	(void)ctx;
	(void)ctx_len;
	(void)peer;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		if (!clients[i]) {
			clients[i] = client;
			*conn_cookie = client;
			pthread_mutex_unlock(&lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&lock);
	*status = 1;
	return -1;
}

static void on_disconnect(void *conn_cookie)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i] == conn_cookie)
			clients[i] = NULL;
	}
	pthread_mutex_unlock(&lock);
	fltport_client_close(conn_cookie);
}

static uint32_t on_message(void *conn_cookie, const struct fltport_request *req, void *out,
			   size_t out_cap, size_t *out_len)
{
	size_t n = req->in_len < out_cap ? req->in_len : out_cap;

	(void)conn_cookie;
	for (unsigned i = 0; i < req->nfds; i++)
		close(req->fds[i]);
	if (n)
		memcpy(out, req->in, n);
	*out_len = n;
	return 0;
}

/* Send one message to each client, one after another.  A client is only
 * used under the lock's protection from its disconnect callback: the
 * sends run with the lock held (the disconnect callback waits). */
static void send_all(void)
{
	char reply[64];
	int n = 0, first = 0;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		size_t rlen = sizeof(reply);
		uint32_t status = 0;
		int rc;

		if (!clients[i])
			continue;
		rc = fltport_send(clients[i], "ping", 4, NULL, 0, reply, &rlen, &status,
				  SEND_TIMEOUT_NS);
		n++;
		if (rc < 0 && first == 0)
			first = rc;
	}
	pthread_mutex_unlock(&lock);
	tu_say("SENT n=%d rc=%d", n, first);
}

static int setup_err(const char *what, int rc)
{
	tu_say("SETUP_ERR what=%s rc=%d", what, rc);
	return 2;
}

int main(int argc, char **argv)
{
	struct fltport_filter_config fcfg = {
		.pre_open = pre_open,
		.instance_setup = instance_setup,
		.deadline_ns = 5 * 1000000000LL,
	};
	struct fltport_server_config scfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message,
		.max_connections = MAX_CLIENTS,
		.access = { .mode = FLTPORT_ACCESS_EVERYONE },
	};
	fltport_filter *filter = NULL;
	fltport_server *server = NULL;
	sigset_t set;
	int rc, sig;

	if (argc < 5 || argc > 6 || (argc == 6 && strcmp(argv[5], "--refuse-detach") != 0)) {
		fprintf(stderr, "usage: fp_ctl_filter NAME ALTITUDE PATH PORT [--refuse-detach]\n");
		return 2;
	}
	refuse_detach = argc == 6;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(LIFETIME_S);
	signal(SIGIO, SIG_IGN);
	/* Blocked before any library thread starts, so that only sigwait()
	 * below takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	fcfg.name = argv[1];
	fcfg.altitude = argv[2];
	rc = fltport_filter_create(&fcfg, &filter);
	if (rc < 0)
		return setup_err("filter_create", rc);
	if (strcmp(argv[3], "-") != 0) {
		rc = fltport_filter_attach(filter, argv[3]);
		if (rc < 0)
			return setup_err("attach", rc);
	}
	if (strcmp(argv[4], "-") != 0) {
		rc = fltport_server_create(argv[4], &scfg, &server);
		if (rc < 0)
			return setup_err("server_create", rc);
	}
	tu_say("READY pid=%ld", (long)getpid());

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGUSR1) {
			send_all();
		} else if (sig == SIGUSR2) {
			struct fltport_filter_stats st;

			fltport_filter_stats(filter, &st);
			tu_say("STATS seen=%llu allowed=%llu denied=%llu",
			       (unsigned long long)st.seen, (unsigned long long)st.allowed,
			       (unsigned long long)st.denied);
		} else {
			break;
		}
	}
	fltport_server_destroy(server);
	fltport_filter_destroy(filter);
	tu_say("BYE");
	return 0;
}
