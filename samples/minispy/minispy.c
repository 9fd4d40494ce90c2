/*
 * fltport-minispy — a file-system activity recorder (root): Microsoft's
 * minispy sample on Linux.  Attaches to the file systems given, records
 * opens, execs, reads, writes, close-writes, creates, deletes and renames
 * in a bounded ring, and hands them out on port "MiniSpyPort" in minispy's
 * own message format (minispy_proto.h).  See man fltport-minispy(8) and
 * docs/MINISPY.md.
 *
 * This file: options, the port, start and stop.  The callbacks are in
 * mspy_filter.c, the ring and the wire format in mspy_ring.c.
 */
#include "mspy.h"
#include "sc_common.h"

#include <fltport/filter.h>
#include <fltport/port.h>

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CLIENTS 64

static struct {
	const char *port;
	const char *name, *altitude;
	unsigned ring;
	unsigned ops;
	unsigned attach_flags;
	int clients;
	bool any_user;
	bool quiet;
} o;

static fltport_filter *filter;
static fltport_server *server;

/* ---- the port ---------------------------------------------------------- */

static int on_connect(fltport_client *client, void *cookie, const void *ctx, size_t ctx_len,
		      const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	*conn_cookie = client;
	if (!o.quiet)
		sc_out("CLIENT connected pid=%ld uid=%ld", (long)peer->pid, (long)peer->uid);
	return 0;
}

static void on_disconnect(void *cookie)
{
	fltport_client *client = cookie;
	struct fltport_peer peer;

	fltport_client_peer(client, &peer);
	if (!o.quiet)
		sc_out("CLIENT disconnected pid=%ld", (long)peer.pid);
	fltport_client_close(client);
}

/* minispy's message callback: GetMiniSpyLog, GetMiniSpyVersion. */
static uint32_t on_message(void *cookie, const struct fltport_request *req, void *out,
			   size_t out_cap, size_t *out_len)
{
	const struct fltport_mspy_version ver = { FLTPORT_MSPY_MAJOR, FLTPORT_MSPY_MINOR };
	uint32_t command;

	fltport_close_fds(req->fds, req->nfds); /* no command carries an fd */
	if (req->in_len < sizeof(command))
		return FLTPORT_MSPY_STATUS_INVALID_PARAMETER;
	memcpy(&command, req->in, sizeof(command));
	switch (command) {
	case FLTPORT_MSPY_GET_LOG:
		if (!out || out_cap == 0)
			return FLTPORT_MSPY_STATUS_INVALID_PARAMETER;
		return mspy_ring_take(out, out_cap, out_len);
	case FLTPORT_MSPY_GET_VERSION:
		if (!out || out_cap < sizeof(ver))
			return FLTPORT_MSPY_STATUS_INVALID_PARAMETER;
		memcpy(out, &ver, sizeof(ver));
		*out_len = sizeof(ver);
		return FLTPORT_MSPY_STATUS_SUCCESS;
	default:
		return FLTPORT_MSPY_STATUS_INVALID_PARAMETER;
	}
}

static int start_port(void)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.on_message = on_message,
		.max_connections = o.clients,
		.access = { .mode = o.any_user ? FLTPORT_ACCESS_EVERYONE : FLTPORT_ACCESS_ROOT },
	};
	int rc = fltport_server_create(o.port, &cfg, &server);

	if (rc < 0) {
		fprintf(stderr, "fltport-minispy: port %s: %s\n", o.port, fltport_strerror(rc));
		return -1;
	}
	return 0;
}

/* ---- the filter -------------------------------------------------------- */

static int start_filter(char **paths, int n)
{
	struct fltport_filter_config cfg = {
		.name = o.name,
		.altitude = o.altitude,
	};
	int rc;

	mspy_filter_callbacks(&cfg, o.ops);
	rc = fltport_filter_create(&cfg, &filter);
	if (rc < 0) {
		fprintf(stderr, "fltport-minispy: cannot create the filter: %s%s\n",
			fltport_strerror(rc),
			rc == -EPERM        ? " (needs root)"
			: rc == -EOPNOTSUPP ? " (the kernel lacks fanotify permission events "
					      "or FAN_REPORT_DFID_NAME)"
					    : "");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		rc = fltport_filter_attach_ex(filter, paths[i], o.attach_flags);
		if (rc < 0) {
			fprintf(stderr, "fltport-minispy: attach %s: %s\n", paths[i],
				fltport_strerror(rc));
			return -1;
		}
	}
	return 0;
}

static void print_stats(void)
{
	struct mspy_ring_stats r;
	struct fltport_filter_stats st;

	mspy_ring_stats(&r);
	fltport_filter_stats(filter, &st);
	sc_out("STATS recorded=%llu stored=%llu dropped=%llu taken=%llu depth=%u capacity=%u "
	       "seen=%llu allowed=%llu denied=%llu timed_out=%llu post_events=%llu "
	       "lines_dropped=%llu",
	       (unsigned long long)r.recorded, (unsigned long long)r.stored,
	       (unsigned long long)r.dropped, (unsigned long long)r.taken, r.depth, r.capacity,
	       (unsigned long long)st.seen, (unsigned long long)st.allowed,
	       (unsigned long long)st.denied, (unsigned long long)st.timed_out,
	       (unsigned long long)st.post_events, (unsigned long long)sc_out_dropped());
}

/* ---- options ----------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fltport-minispy [options] PATH...\n"
		"Record file operations on the file systems holding each PATH (root) and hand\n"
		"them out on a port in Microsoft minispy's format (read them with fltport-spy).\n"
		"\n"
		"  --ops LIST       operations to record (default all): open,exec,read,write,\n"
		"                   close-write,create,delete,rename\n"
		"  --ring N         records kept until read (default %u, at most %u); when full,\n"
		"                   new records are dropped and counted\n"
		"  --port NAME      port name (default %s)\n"
		"  --name NAME      the filter's registered name (default %s)\n"
		"  --altitude N     its altitude (default %s)\n"
		"  --clients N      readers connected at once (default 1, as minispy)\n"
		"  --any-user       let any local user read the log (default: root only)\n"
		"  --submounts      also every file system mounted below each PATH\n"
		"  --quiet          no CLIENT lines\n"
		"  --verbose        one EVENT line per recorded operation\n"
		"  --help, --version\n",
		MSPY_RING_DEFAULT, MSPY_RING_MAX, FLTPORT_MSPY_PORT, FLTPORT_MSPY_FILTER_NAME,
		FLTPORT_MSPY_ALTITUDE);
}

enum {
	OPT_OPS = 256,
	OPT_RING,
	OPT_PORT,
	OPT_NAME,
	OPT_ALTITUDE,
	OPT_CLIENTS,
	OPT_ANY,
	OPT_SUBMOUNTS,
	OPT_QUIET,
	OPT_VERBOSE,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option longopts[] = {
	{ "ops", required_argument, NULL, OPT_OPS },
	{ "ring", required_argument, NULL, OPT_RING },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "altitude", required_argument, NULL, OPT_ALTITUDE },
	{ "clients", required_argument, NULL, OPT_CLIENTS },
	{ "any-user", no_argument, NULL, OPT_ANY },
	{ "submounts", no_argument, NULL, OPT_SUBMOUNTS },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* Returns 0, or the exit code (2: usage error; 0 with *quit: --help). */
static int parse_args(int argc, char **argv, bool *quit)
{
	unsigned long v;
	int c, bad = 0;

	o.port = FLTPORT_MSPY_PORT;
	o.name = FLTPORT_MSPY_FILTER_NAME;
	o.altitude = FLTPORT_MSPY_ALTITUDE;
	o.ring = MSPY_RING_DEFAULT;
	o.ops = MSPY_OPS_ALL;
	o.clients = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_OPS:
			bad |= mspy_ops_parse(optarg, &o.ops);
			break;
		case OPT_RING:
			if (sc_parse_num(optarg, MSPY_RING_MAX, &v) && v > 0)
				o.ring = (unsigned)v;
			else
				bad = -1;
			break;
		case OPT_PORT:
			o.port = optarg;
			break;
		case OPT_NAME:
			o.name = optarg;
			break;
		case OPT_ALTITUDE:
			o.altitude = optarg; /* checked by fltport_filter_create */
			break;
		case OPT_CLIENTS:
			if (sc_parse_num(optarg, MAX_CLIENTS, &v) && v > 0)
				o.clients = (int)v;
			else
				bad = -1;
			break;
		case OPT_ANY:
			o.any_user = true;
			break;
		case OPT_SUBMOUNTS:
			o.attach_flags |= FLTPORT_ATTACH_SUBMOUNTS;
			break;
		case OPT_QUIET:
			o.quiet = true;
			mspy_verbose = false;
			break;
		case OPT_VERBOSE:
			mspy_verbose = true;
			o.quiet = false;
			break;
		case OPT_HELP:
			usage(stdout);
			*quit = true;
			return 0;
		case OPT_VERSION:
			printf("fltport-minispy %s (minispy %u.%u)\n", FLTPORT_VERSION_STRING,
			       FLTPORT_MSPY_MAJOR, FLTPORT_MSPY_MINOR);
			*quit = true;
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (bad) {
		fprintf(stderr, "fltport-minispy: bad option value (see --help)\n");
		return 2;
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	return 0;
}

/* ---- start and stop ---------------------------------------------------- */

/* Signals are taken by sigwait() in main: block them before any thread. */
static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

static void run_until_stopped(const sigset_t *set)
{
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGUSR1) {
			print_stats();
			continue;
		}
		sc_out("STOPPING signal=%d", sig);
		return;
	}
}

int main(int argc, char **argv)
{
	bool quit = false;
	sigset_t set;
	int rc = parse_args(argc, argv, &quit);

	if (rc || quit)
		return rc;
	if (geteuid() != 0) {
		fprintf(stderr, "fltport-minispy: needs root (fanotify)\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	block_signals(&set);
	if (mspy_ring_init(o.ring) < 0) {
		fprintf(stderr, "fltport-minispy: no memory for a ring of %u records\n", o.ring);
		return 1;
	}
	sc_out_start();
	rc = 1;
	if (start_filter(argv + optind, argc - optind) < 0 || start_port() < 0)
		goto out;
	sc_out("READY port=%s dir=%s paths=%d ring=%u features=0x%x", o.port, fltport_dir(),
	       argc - optind, o.ring, fltport_filter_features(filter));
	sc_notify("READY=1");
	run_until_stopped(&set);
	sc_notify("STOPPING=1");
	rc = 0;
out:
	/* Both kinds of callback use the ring: stop them all before it goes. */
	if (filter) {
		if (rc == 0)
			print_stats();
		fltport_filter_destroy(filter);
	}
	if (server)
		fltport_server_destroy(server);
	mspy_ring_fini();
	sc_out_stop(1000);
	return rc;
}
