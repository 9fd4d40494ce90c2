/*
 * fltport-scanner — the filter of an on-access scanner (root): Microsoft's
 * scanner sample on Linux.  Attaches to the file systems given, asks the
 * service connected to port "ScannerPort" about opens of files with a
 * scanned extension, denies the infected ones, rescans written files in the
 * background.  See man fltport-scanner(8).
 *
 * This file: options, the port (one service at a time, trusted with its
 * process tree while connected), start and stop.  The scan itself is in
 * scan_filter.c.
 */
#include "scanner_int.h"
#include "scanner_proto.h"
#include "sc_common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define STATUS_INVALID_PARAMETER 0xC000000Du
#define STATUS_REVISION_MISMATCH 0xC0000059u
#define STATUS_INSUFFICIENT_RESOURCES 0xC000009Au
#define MAX_IDS 32

struct sc_state sc = { .lock = PTHREAD_MUTEX_INITIALIZER, .qdir_fd = -1 };

static uid_t uids[MAX_IDS];
static gid_t gids[MAX_IDS];
static size_t nuids, ngids;
static bool everyone;

/* ---- the service ------------------------------------------------------- */

struct sc_service *sc_service_get(void)
{
	struct sc_service *s;

	pthread_mutex_lock(&sc.lock);
	s = sc.svc;
	if (s)
		s->refs++;
	pthread_mutex_unlock(&sc.lock);
	return s;
}

void sc_service_put(struct sc_service *s)
{
	bool last;

	pthread_mutex_lock(&sc.lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&sc.lock);
	if (last) {
		fltport_client_close(s->client);
		free(s);
	}
}

/* Which kind of service: no context → Microsoft's notifications; a
 * struct fltport_scan_hello → fds.  Returns 0 or the status to refuse with. */
static uint32_t read_hello(const void *ctx, size_t len, bool *want_fd)
{
	struct fltport_scan_hello h;

	*want_fd = false;
	if (len == 0)
		return 0;
	if (len != sizeof(h))
		return STATUS_INVALID_PARAMETER;
	memcpy(&h, ctx, sizeof(h));
	if (strncmp(h.magic, FLTPORT_SCAN_MAGIC, sizeof(h.magic)) != 0)
		return STATUS_INVALID_PARAMETER;
	if (h.version != FLTPORT_SCAN_VERSION)
		return STATUS_REVISION_MISMATCH;
	if (h.flags & ~FLTPORT_SCAN_WANT_FD)
		return STATUS_INVALID_PARAMETER;
	*want_fd = (h.flags & FLTPORT_SCAN_WANT_FD) != 0;
	return 0;
}

/* Guards sc.filter against the port's callbacks at shutdown. */
static pthread_mutex_t filter_lock = PTHREAD_MUTEX_INITIALIZER;

static int on_connect(fltport_client *client, void *cookie, const void *ctx, size_t ctx_len,
		      const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	struct sc_service *s;
	bool want_fd;
	int rc;

	(void)cookie;
	*status = read_hello(ctx, ctx_len, &want_fd);
	if (*status) {
		sc_out("SERVICE refused pid=%ld uid=%ld status=0x%08X", (long)peer->pid,
		       (long)peer->uid, *status);
		return -1;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		*status = STATUS_INSUFFICIENT_RESOURCES;
		return -1;
	}
	/* As the sample exempts its service: the service and what it starts
	 * never wait on a scan (a scan that waited for them would deadlock). */
	pthread_mutex_lock(&filter_lock);
	rc = sc.filter ? fltport_filter_trust_client(sc.filter, client) : -ESHUTDOWN;
	pthread_mutex_unlock(&filter_lock);
	if (rc < 0) {
		free(s);
		*status = STATUS_INSUFFICIENT_RESOURCES;
		return -1;
	}
	s->client = client;
	s->want_fd = want_fd;
	s->pid = peer->pid;
	s->uid = peer->uid;
	s->refs = 1;     /* the connection's own, dropped by the disconnect callback */
	sc_memo_clear(); /* a new service may know other signatures */
	pthread_mutex_lock(&sc.lock);
	sc.svc = s;
	pthread_mutex_unlock(&sc.lock);
	*conn_cookie = s;
	sc_out("SERVICE connected pid=%ld uid=%ld mode=%s", (long)peer->pid, (long)peer->uid,
	       want_fd ? "fd" : "windows");
	return 0;
}

static void on_disconnect(void *cookie)
{
	struct sc_service *s = cookie;

	pthread_mutex_lock(&filter_lock);
	if (sc.filter)
		(void)fltport_filter_untrust_pid(sc.filter, s->pid);
	pthread_mutex_unlock(&filter_lock);
	pthread_mutex_lock(&sc.lock);
	if (sc.svc == s)
		sc.svc = NULL;
	pthread_mutex_unlock(&sc.lock);
	sc_out("SERVICE disconnected pid=%ld", (long)s->pid);
	sc_service_put(s);
}

/* ---- options ----------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fltport-scanner [options] PATH...\n"
		"Scan files on the file systems holding each PATH when they are opened; deny\n"
		"the infected ones.  A service (fltport-scanuser) connects to the port and scans.\n"
		"\n"
		"  --ext LIST            extensions to scan (default doc,txt,bat,cmd,inf)\n"
		"  --all                 scan every regular file\n"
		"  --deadline SECONDS    longest wait for a verdict (default 5)\n"
		"  --fail-open           no verdict in time: allow (default)\n"
		"  --fail-closed         no verdict in time, or no service: deny\n"
		"  --quarantine DIR      move infected files to DIR (made root-only, 0700)\n"
		"  --port NAME           port name (default ScannerPort)\n"
		"  --name NAME           the filter's name for fltportctl (default Scanner)\n"
		"  --altitude N          its altitude (default 265000)\n"
		"  --service-user USER   also admit USER (name or uid) as the service\n"
		"  --service-group GROUP also admit members of GROUP\n"
		"  --any-service         admit any local user as the service\n"
		"  --mount               attach only the mount at each PATH\n"
		"  --submounts           also every file system mounted below each PATH\n"
		"  --workers N           threads deciding opens (default 4)\n"
		"  --verbose             one line per decision on stdout\n"
		"  --journal-socket PATH journald's socket (default /run/systemd/journal/socket)\n"
		"  --help, --version\n");
}

static int parse_exts(const char *list)
{
	char buf[1024];
	char *save = NULL;

	if (strlen(list) >= sizeof(buf))
		return -1;
	strcpy(buf, list);
	sc.o.nexts = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t n;

		if (*t == '.')
			t++;
		n = strlen(t);
		if (n == 0 || n >= SC_EXT_MAX || sc.o.nexts == SC_MAX_EXTS || strchr(t, '/'))
			return -1;
		for (size_t i = 0; i <= n; i++)
			sc.o.exts[sc.o.nexts][i] = (char)tolower((unsigned char)t[i]);
		sc.o.nexts++;
	}
	return sc.o.nexts ? 0 : -1;
}

static int add_user(const char *name)
{
	struct passwd *pw = getpwnam(name);
	unsigned long v;

	if (nuids == MAX_IDS)
		return -1;
	if (pw)
		uids[nuids++] = pw->pw_uid;
	else if (sc_parse_num(name, (uid_t)-2, &v))
		uids[nuids++] = (uid_t)v;
	else
		return -1;
	return 0;
}

static int add_group(const char *name)
{
	struct group *gr = getgrnam(name);
	unsigned long v;

	if (ngids == MAX_IDS)
		return -1;
	if (gr)
		gids[ngids++] = gr->gr_gid;
	else if (sc_parse_num(name, (gid_t)-2, &v))
		gids[ngids++] = (gid_t)v;
	else
		return -1;
	return 0;
}

static int parse_deadline(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v > 0) || v > 3600)
		return -1;
	sc.o.deadline_ns = (int64_t)(v * 1e9);
	return 0;
}

enum {
	OPT_EXT = 256,
	OPT_ALL,
	OPT_DEADLINE,
	OPT_FAIL_OPEN,
	OPT_FAIL_CLOSED,
	OPT_QUARANTINE,
	OPT_PORT,
	OPT_NAME,
	OPT_ALTITUDE,
	OPT_USER,
	OPT_GROUP,
	OPT_ANY,
	OPT_MOUNT,
	OPT_SUBMOUNTS,
	OPT_WORKERS,
	OPT_VERBOSE,
	OPT_JOURNAL,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option longopts[] = {
	{ "ext", required_argument, NULL, OPT_EXT },
	{ "all", no_argument, NULL, OPT_ALL },
	{ "deadline", required_argument, NULL, OPT_DEADLINE },
	{ "fail-open", no_argument, NULL, OPT_FAIL_OPEN },
	{ "fail-closed", no_argument, NULL, OPT_FAIL_CLOSED },
	{ "quarantine", required_argument, NULL, OPT_QUARANTINE },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "altitude", required_argument, NULL, OPT_ALTITUDE },
	{ "service-user", required_argument, NULL, OPT_USER },
	{ "service-group", required_argument, NULL, OPT_GROUP },
	{ "any-service", no_argument, NULL, OPT_ANY },
	{ "mount", no_argument, NULL, OPT_MOUNT },
	{ "submounts", no_argument, NULL, OPT_SUBMOUNTS },
	{ "workers", required_argument, NULL, OPT_WORKERS },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "journal-socket", required_argument, NULL, OPT_JOURNAL },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* Returns 0, or the exit code (2: usage error, 0 with *quit: --help). */
static int parse_args(int argc, char **argv, bool *quit)
{
	unsigned long v;
	int c, bad = 0;

	sc.o.port = FLTPORT_SCAN_PORT;
	sc.o.name = "Scanner";
	sc.o.altitude = "265000"; /* the scanner minifilter sample's */
	sc.o.deadline_ns = FLTPORT_FILTER_DEFAULT_DEADLINE;
	parse_exts("doc,txt,bat,cmd,inf");
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_EXT:
			bad |= parse_exts(optarg);
			break;
		case OPT_ALL:
			sc.o.all = true;
			break;
		case OPT_DEADLINE:
			bad |= parse_deadline(optarg);
			break;
		case OPT_FAIL_OPEN:
			sc.o.fail_closed = false;
			break;
		case OPT_FAIL_CLOSED:
			sc.o.fail_closed = true;
			break;
		case OPT_QUARANTINE:
			sc.o.quarantine = optarg;
			break;
		case OPT_PORT:
			sc.o.port = optarg;
			break;
		case OPT_NAME:
			sc.o.name = optarg;
			break;
		case OPT_ALTITUDE:
			sc.o.altitude = optarg;
			break;
		case OPT_USER:
			bad |= add_user(optarg);
			break;
		case OPT_GROUP:
			bad |= add_group(optarg);
			break;
		case OPT_ANY:
			everyone = true;
			break;
		case OPT_MOUNT:
			sc.o.attach_flags |= FLTPORT_ATTACH_MOUNT;
			break;
		case OPT_SUBMOUNTS:
			sc.o.attach_flags |= FLTPORT_ATTACH_SUBMOUNTS;
			break;
		case OPT_WORKERS:
			if (sc_parse_num(optarg, FLTPORT_FILTER_MAX_WORKERS, &v) && v > 0)
				sc.o.workers = (unsigned)v;
			else
				bad = -1;
			break;
		case OPT_VERBOSE:
			sc.o.verbose = true;
			break;
		case OPT_JOURNAL:
			sc.o.journal_socket = optarg;
			break;
		case OPT_HELP:
			usage(stdout);
			*quit = true;
			return 0;
		case OPT_VERSION:
			printf("fltport-scanner %s\n", FLTPORT_VERSION_STRING);
			*quit = true;
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (bad) {
		fprintf(stderr, "fltport-scanner: bad option value (see --help)\n");
		return 2;
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if ((sc.o.attach_flags & FLTPORT_ATTACH_MOUNT) &&
	    (sc.o.attach_flags & FLTPORT_ATTACH_SUBMOUNTS)) {
		fprintf(stderr, "fltport-scanner: --mount and --submounts exclude each other\n");
		return 2;
	}
	return 0;
}

/* ---- start and stop ---------------------------------------------------- */

/* The quarantine directory: made if missing; it must be a directory owned
 * by root (not a symlink), and is set to mode 0700. */
static int open_quarantine(const char *dir)
{
	struct stat st;
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		goto fail;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	if (fstat(fd, &st) < 0 || st.st_uid != 0) {
		fprintf(stderr, "fltport-scanner: quarantine %s: not owned by root\n", dir);
		close(fd);
		return -1;
	}
	if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0) {
		close(fd);
		goto fail;
	}
	if (!realpath(dir, sc.qdir_path)) {
		close(fd);
		goto fail;
	}
	sc.qdir_fd = fd;
	sc.qdir_dev = st.st_dev;
	return 0;
fail:
	fprintf(stderr, "fltport-scanner: quarantine %s: %s\n", dir, strerror(errno));
	return -1;
}

static int start_filter(void)
{
	struct fltport_filter_config cfg = {
		.pre_open = sc_pre_open,
		.post_close_write = sc_post_close_write,
		.deadline_ns = sc.o.deadline_ns,
		.policy = sc.o.fail_closed ? FLTPORT_FAIL_CLOSED : FLTPORT_FAIL_OPEN,
		.workers = sc.o.workers,
		.name = sc.o.name,
		.altitude = sc.o.altitude,
		/* the path for every open; who opened it only for a denial,
		 * an fd service or a decision line (sc_pre_open) */
		.flags = FLTPORT_FILTER_LAZY_INFO,
	};
	int rc;

	if (sc.o.attach_flags & FLTPORT_ATTACH_MOUNT)
		cfg.post_close_write = NULL; /* notifications need file-system marks */
	rc = fltport_filter_create(&cfg, &sc.filter);
	if (rc == -EOPNOTSUPP && cfg.post_close_write) {
		fprintf(stderr, "fltport-scanner: no close-write notifications on this kernel: "
				"no background rescans\n");
		cfg.post_close_write = NULL;
		rc = fltport_filter_create(&cfg, &sc.filter);
	}
	if (rc < 0) {
		fprintf(stderr, "fltport-scanner: cannot create the filter: %s%s\n",
			fltport_strerror(rc),
			rc == -EPERM        ? " (needs root)"
			: rc == -EADDRINUSE ? " (a filter of that name runs: --name)"
					    : "");
		return -1;
	}
	return 0;
}

static int attach_all(char **paths, int n)
{
	for (int i = 0; i < n; i++) {
		int rc = fltport_filter_attach_ex(sc.filter, paths[i], sc.o.attach_flags);

		if (rc < 0) {
			fprintf(stderr, "fltport-scanner: attach %s: %s\n", paths[i],
				fltport_strerror(rc));
			return -1;
		}
	}
	return 0;
}

static int start_port(void)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.max_connections = 1,
		.access = { .mode = everyone           ? FLTPORT_ACCESS_EVERYONE
				    : (nuids || ngids) ? FLTPORT_ACCESS_LIST
						       : FLTPORT_ACCESS_ROOT,
			    .uids = uids,
			    .nuids = nuids,
			    .gids = gids,
			    .ngids = ngids },
	};
	int rc = fltport_server_create(sc.o.port, &cfg, &sc.server);

	if (rc < 0) {
		fprintf(stderr, "fltport-scanner: port %s: %s\n", sc.o.port, fltport_strerror(rc));
		return -1;
	}
	return 0;
}

static void print_stats(void)
{
	struct fltport_filter_stats st;

	fltport_filter_stats(sc.filter, &st);
	sc_out("STATS seen=%llu allowed=%llu denied=%llu cached=%llu timed_out=%llu late=%llu "
	       "scanned=%llu clean=%llu infected=%llu remembered=%llu no_service=%llu "
	       "failed=%llu rescans=%llu quarantined=%llu",
	       (unsigned long long)st.seen, (unsigned long long)st.allowed,
	       (unsigned long long)st.denied, (unsigned long long)st.cached,
	       (unsigned long long)st.timed_out, (unsigned long long)st.late,
	       (unsigned long long)atomic_load(&sc.c.scanned),
	       (unsigned long long)atomic_load(&sc.c.clean),
	       (unsigned long long)atomic_load(&sc.c.infected),
	       (unsigned long long)atomic_load(&sc.c.remembered),
	       (unsigned long long)atomic_load(&sc.c.no_service),
	       (unsigned long long)atomic_load(&sc.c.failed),
	       (unsigned long long)atomic_load(&sc.c.rescans),
	       (unsigned long long)atomic_load(&sc.c.quarantined));
}

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
	fltport_filter *f;
	bool quit = false;
	sigset_t set;
	int rc = parse_args(argc, argv, &quit);

	if (rc || quit)
		return rc;
	if (geteuid() != 0) {
		fprintf(stderr, "fltport-scanner: needs root (fanotify permission events)\n");
		return 1;
	}
	/* A writer that opens a file during a scan breaks the read lease the
	 * cache takes on it, and the kernel then sends SIGIO, which would
	 * kill the filter — and with it every pending answer. */
	signal(SIGIO, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	block_signals(&set);
	sc_out_start();
	sc_log_init("fltport-scanner", sc.o.journal_socket);
	rc = 1;
	if (sc.o.quarantine && open_quarantine(sc.o.quarantine) < 0)
		goto out;
	if (start_filter() < 0)
		goto out;
	if (attach_all(argv + optind, argc - optind) < 0 || start_port() < 0 ||
	    sc_background_start(2) < 0)
		goto out_filter;
	sc_out("READY port=%s dir=%s paths=%d deadline_ms=%lld policy=%s", sc.o.port, fltport_dir(),
	       argc - optind, (long long)(sc.o.deadline_ns / 1000000),
	       sc.o.fail_closed ? "fail-closed" : "fail-open");
	sc_notify("READY=1");
	run_until_stopped(&set);
	sc_notify("STOPPING=1");
	rc = 0;
	/* Order: no rescan may touch the filter once it is gone, and no scan
	 * may hold the service once the port is gone. */
	sc_background_stop();
	print_stats();
out_filter:
	sc_background_stop();
	/* The port's connect and disconnect callbacks trust and untrust
	 * through sc.filter: they see NULL from here on, never a freed one. */
	pthread_mutex_lock(&filter_lock);
	f = sc.filter;
	sc.filter = NULL;
	pthread_mutex_unlock(&filter_lock);
	fltport_filter_destroy(f);
	if (sc.server)
		fltport_server_destroy(sc.server);
out:
	if (sc.qdir_fd >= 0)
		close(sc.qdir_fd);
	sc_out_stop(1000);
	return rc;
}
