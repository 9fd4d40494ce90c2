/*
 * fltport-scanner-demo — what `make demo` runs: the on-access scanner at
 * work.
 *
 * As root: a private mount namespace with a tmpfs of its own (the only file
 * system the filter marks), clean and infected files on it and a
 * one-signature ClamAV database beside it; then fltport-scanner (the
 * filter) and fltport-scanuser (the service, with libclamav and the
 * built-in pattern), and each file opened as user "nobody".  Prints a table
 * (file, verdict, who decided, signature, time) and the filter's counters.
 * Everything it starts or creates is removed at the end, also on Ctrl-C;
 * the programs it starts die with it (PR_SET_PDEATHSIG).
 *
 * Not root: says what needs root and runs the port-only demo (fltport-demo).
 */
#include <fltport/port.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOBODY 65534
#define MALWARE "fltport-demo-malware"
#define SIG_NAME "Fltport.Demo.Dropper"
#define LINE_MS 10000

/* Everything to remove, made before the signal handlers are installed. */
static char tmp[64] = "/tmp/fltport-scanner-demo.XXXXXX";
static char mnt[128], ports[128], ports_ctl[160], port_sock[160], db_dir[128], db_file[192];
static volatile sig_atomic_t pid_scanner, pid_service, pid_opener, mounted;
static char bindir[PATH_MAX];

struct child {
	pid_t pid;
	int out;
	char buf[16384];
	size_t len;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- cleanup (also from the signal handler: syscalls only) ------------- */

static void stop_child(volatile sig_atomic_t *pid)
{
	pid_t p = (pid_t)*pid;
	struct timespec tick = { 0, 10000000 };
	int st;

	if (p <= 0)
		return;
	kill(p, SIGTERM);
	for (int i = 0; i < 1000; i++) { /* 10 s, then SIGKILL */
		if (waitpid(p, &st, WNOHANG) != 0)
			break;
		if (i == 999) {
			kill(p, SIGKILL);
			waitpid(p, &st, 0);
		}
		nanosleep(&tick, NULL);
	}
	*pid = 0;
}

static void remove_all(void)
{
	stop_child(&pid_opener);
	stop_child(&pid_service);
	stop_child(&pid_scanner);
	if (mounted) {
		umount2(mnt, MNT_DETACH);
		mounted = 0;
	}
	rmdir(mnt);
	unlink(port_sock); /* the filter removes it; not if it was killed */
	rmdir(ports_ctl);  /* the management plane's, empty once the programs exited */
	rmdir(ports);
	unlink(db_file);
	rmdir(db_dir);
	rmdir(tmp);
}

static void on_signal(int sig)
{
	remove_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---- children ---------------------------------------------------------- */

static int spawn(struct child *c, const char *prog, char *const argv[])
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	c->len = 0;
	c->pid = fork();
	if (c->pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (c->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], STDOUT_FILENO);
		signal(SIGINT, SIG_IGN); /* Ctrl-C is the demo's to handle */
		execv(prog, argv);
		fprintf(stderr, "fltport-scanner-demo: %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	c->out = p[0];
	return 0;
}

/* The next line of a child's stdout, within `ms`. */
static bool read_line(struct child *c, char *line, size_t cap, int ms)
{
	int64_t until = now_ns() + (int64_t)ms * 1000000;

	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		struct pollfd pfd = { .fd = c->out, .events = POLLIN };
		int64_t left;
		ssize_t n;

		if (nl) {
			size_t k = (size_t)(nl - c->buf);

			snprintf(line, cap, "%.*s", (int)k, c->buf);
			memmove(c->buf, nl + 1, c->len - k - 1);
			c->len -= k + 1;
			return true;
		}
		left = (until - now_ns()) / 1000000;
		if (left <= 0 || c->len == sizeof(c->buf) || poll(&pfd, 1, (int)left) <= 0)
			return false;
		n = read(c->out, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n <= 0)
			return false;
		c->len += (size_t)n;
	}
}

/* Read lines until one starts with `prefix` and contains `part` (may be
 * NULL).  Lines of no interest are skipped. */
static bool expect(struct child *c, const char *prefix, const char *part, char *line, size_t cap,
		   int ms)
{
	int64_t until = now_ns() + (int64_t)ms * 1000000;

	while (now_ns() < until) {
		if (!read_line(c, line, cap, (int)((until - now_ns()) / 1000000) + 1))
			return false;
		if (strncmp(line, prefix, strlen(prefix)) == 0 && (!part || strstr(line, part)))
			return true;
	}
	return false;
}

/* " key=" of a line, copied into out ("" if absent). */
static void field(const char *line, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *p;
	size_t n;

	snprintf(pat, sizeof(pat), " %s=", key);
	p = strstr(line, pat);
	out[0] = '\0';
	if (!p)
		return;
	p += strlen(pat);
	n = strcspn(p, " ");
	snprintf(out, cap, "%.*s", (int)n, p);
}

/* Open `path` as nobody in a child process: its errno (0: opened) and the
 * time the open took. */
static int open_as_nobody(const char *path, double *us)
{
	struct {
		int err;
		int64_t ns;
	} r;
	int p[2], st;
	pid_t pid;

	memset(&r, 0, sizeof(r)); /* the padding too: the whole struct is written */
	r.err = -1;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int64_t t0;
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(1);
		t0 = now_ns();
		fd = open(path, O_RDONLY | O_CLOEXEC);
		r.ns = now_ns() - t0;
		r.err = fd < 0 ? errno : 0;
		if (write(p[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	pid_opener = pid;
	if (read(p[0], &r, sizeof(r)) != sizeof(r))
		r.err = -1;
	close(p[0]);
	waitpid(pid, &st, 0);
	pid_opener = 0;
	*us = (double)r.ns / 1000.0;
	return r.err;
}

/* ---- the demo ---------------------------------------------------------- */

static int write_file(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, content, strlen(content));
	close(fd);
	return n == (ssize_t)strlen(content) ? 0 : -1;
}

struct row {
	const char *file;
	const char *what;   /* what the row shows */
	bool deny;          /* expected: denied */
	const char *source; /* expected decider: "service", "memory", NULL (no scan) */
	bool clamav;        /* needs libclamav */
};

static const struct row rows[] = {
	{ "report.txt", "clean text", false, "service", false },
	{ "budget.doc", "clean document", false, "service", false },
	{ "invoice.doc", "ClamAV signature", true, "service", true },
	{ "notes.txt", "the pattern \"foul\"", true, "service", false },
	{ "photo.jpg", "\"foul\", but .jpg is not scanned", false, NULL, false },
	{ "report.txt", "opened again", false, NULL, false },
	{ "invoice.doc", "opened again", true, "memory", true },
	{ "report.txt", "after root wrote malware into it", true, "memory", false },
};

static const char *decider(const char *source)
{
	if (!source)
		return "-";
	if (strcmp(source, "service") == 0)
		return "service";
	if (strcmp(source, "memory") == 0)
		return "remembered";
	return source;
}

/* Rewrite report.txt and wait until the filter has rescanned it. */
static bool rewrite_report(struct child *scanner, bool clamav)
{
	char path[256], line[2048];

	snprintf(path, sizeof(path), "%s/report.txt", mnt);
	if (write_file(path, clamav ? "quarterly numbers\n" MALWARE "\n"
				    : "quarterly numbers\nfoul\n") < 0)
		return false;
	return expect(scanner, "RESCAN", "/report.txt", line, sizeof(line), LINE_MS);
}

static int run_rows(struct child *scanner, bool clamav)
{
	int failed = 0;

	printf("\n  %-12s %-36s %-8s %-11s %-34s %9s\n", "FILE", "CONTENT", "VERDICT", "DECIDED BY",
	       "SIGNATURE", "OPEN TIME");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		char path[256], line[2048], sig[256] = "-", source[32] = "", label[64];
		double us = 0;
		int err;
		bool ok;

		if (r->clamav && !clamav)
			continue;
		if (i == sizeof(rows) / sizeof(rows[0]) - 1 && !rewrite_report(scanner, clamav)) {
			printf("  (no rescan of report.txt seen)\n");
			failed++;
		}
		snprintf(path, sizeof(path), "%s/%s", mnt, r->file);
		err = open_as_nobody(path, &us);
		if (r->source && expect(scanner, "DECISION", path, line, sizeof(line), LINE_MS)) {
			field(line, "signature", sig, sizeof(sig));
			field(line, "source", source, sizeof(source));
		} else if (!r->source) {
			snprintf(source, sizeof(source), "%s",
				 strstr(r->what, "again") ? "kernel cache" : "not scanned");
		}
		ok = (r->deny ? err == EPERM : err == 0) &&
		     (!r->source || strcmp(source, r->source) == 0);
		failed += !ok;
		snprintf(label, sizeof(label), "%s", r->source ? decider(source) : source);
		printf("  %-12s %-36s %-8s %-11s %-34s %6.0f µs%s\n", r->file, r->what,
		       err == 0       ? "allowed"
		       : err == EPERM ? "DENIED"
				      : "error",
		       label, sig, us, ok ? "" : "   <- unexpected");
	}
	return failed;
}

static void print_counters(const char *stats)
{
	static const char *const keys[][2] = {
		{ "seen", "opens the kernel asked about" },
		{ "allowed", "allowed" },
		{ "denied", "denied" },
		{ "cached", "clean verdicts cached in the kernel" },
		{ "scanned", "files the service scanned" },
		{ "infected", "found infected" },
		{ "remembered", "denied from a remembered verdict" },
		{ "rescans", "background rescans after a write" },
		{ "timed_out", "answered by the deadline" },
	};

	printf("\nThe filter's counters (fltport-scanner):\n");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char v[32];

		field(stats, keys[i][0], v, sizeof(v));
		printf("  %-40s %s\n", keys[i][1], v[0] ? v : "?");
	}
}

static bool has_clamav(const char *scanuser)
{
	struct child c = { .out = -1 };
	char line[512] = "";
	int st;

	if (spawn(&c, scanuser, (char *[]){ (char *)scanuser, "--version", NULL }) < 0)
		return false;
	if (!read_line(&c, line, sizeof(line), LINE_MS))
		line[0] = '\0';
	close(c.out);
	waitpid(c.pid, &st, 0);
	return strstr(line, "clamav") != NULL;
}

static int setup_files(bool clamav)
{
	static const char *const files[][2] = {
		{ "report.txt", "quarterly numbers\n" },
		{ "budget.doc", "budget 2027: approved\n" },
		{ "invoice.doc", "invoice 42\n" MALWARE "\n" },
		{ "notes.txt", "this file is foul\n" },
		{ "photo.jpg", "not really a photo, but foul\n" },
	};
	char path[256], hex[2 * sizeof(MALWARE)], db[256];
	FILE *f;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", mnt, files[i][0]);
		if (write_file(path, files[i][1]) < 0)
			return -1;
	}
	if (!clamav)
		return 0;
	/* One ClamAV body signature (.ndb): name, any file type, any offset,
	 * the malware's bytes in hex. */
	for (size_t i = 0; i < strlen(MALWARE); i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)MALWARE[i]);
	snprintf(db, sizeof(db), "%s:0:*:%s\n", SIG_NAME, hex);
	f = fopen(db_file, "we");
	if (!f || fputs(db, f) < 0 || fclose(f) != 0)
		return -1;
	return 0;
}

/* Our own namespace, our own tmpfs: the filter marks nothing else. */
static int setup_mount(void)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "fltport-scanner-demo: private mount namespace: %s\n",
			strerror(errno));
		return -1;
	}
	if (mount("fltport-demo", mnt, "tmpfs", 0, "size=16m,mode=0755") < 0) {
		fprintf(stderr, "fltport-scanner-demo: mount tmpfs: %s\n", strerror(errno));
		return -1;
	}
	mounted = 1;
	return 0;
}

static int start_programs(struct child *scanner, struct child *service, bool clamav)
{
	char prog[PATH_MAX + 32], line[2048];

	snprintf(prog, sizeof(prog), "%s/fltport-scanner", bindir);
	if (spawn(scanner, prog, (char *[]){ prog, "--verbose", mnt, NULL }) < 0)
		return -1;
	pid_scanner = scanner->pid;
	if (!expect(scanner, "READY", NULL, line, sizeof(line), LINE_MS)) {
		fprintf(stderr, "fltport-scanner-demo: the filter did not start\n");
		return -1;
	}
	printf("[demo] fltport-scanner (pid %d) attached to %s; port ScannerPort in %s\n",
	       (int)scanner->pid, mnt, ports);
	snprintf(prog, sizeof(prog), "%s/fltport-scanuser", bindir);
	if (spawn(service, prog,
		  clamav ? (char *[]){ prog, "--clamav", db_dir, "--pattern", "foul", NULL }
			 : (char *[]){ prog, NULL }) < 0)
		return -1;
	pid_service = service->pid;
	if (!expect(scanner, "SERVICE connected", NULL, line, sizeof(line), LINE_MS) ||
	    !expect(service, "READY", NULL, line, sizeof(line), LINE_MS)) {
		fprintf(stderr, "fltport-scanner-demo: the service did not connect\n");
		return -1;
	}
	printf("[demo] fltport-scanuser (pid %d) connected: engines %s\n", (int)service->pid,
	       clamav ? "libclamav (1 signature: " SIG_NAME ") + pattern \"foul\""
		      : "pattern \"foul\" (built without libclamav)");
	return 0;
}

static int port_only(void)
{
	char prog[PATH_MAX + 32];

	printf("fltport-scanner-demo: the scanner needs root (fanotify permission events and a "
	       "private tmpfs mount): run `sudo make demo`. Meanwhile, the port-only demo:\n\n");
	fflush(stdout);
	/* Installed: beside us; in a build tree: build/fltport-demo. */
	snprintf(prog, sizeof(prog), "%s/fltport-demo", bindir);
	execl(prog, prog, (char *)NULL);
	snprintf(prog, sizeof(prog), "%s/../fltport-demo", bindir);
	execl(prog, prog, (char *)NULL);
	fprintf(stderr, "fltport-scanner-demo: %s: %s\n", prog, strerror(errno));
	return 1;
}

static int demo(void)
{
	struct child scanner = { .out = -1 }, service = { .out = -1 };
	char line[2048], stats[2048] = "";
	char prog[PATH_MAX + 32];
	bool clamav;
	int failed;

	snprintf(prog, sizeof(prog), "%s/fltport-scanuser", bindir);
	clamav = has_clamav(prog);
	printf("[demo] private mount namespace, tmpfs at %s (the only file system marked)\n", mnt);
	if (setup_mount() < 0 || setup_files(clamav) < 0 ||
	    start_programs(&scanner, &service, clamav) < 0)
		return 1;
	printf("[demo] opening each file as user nobody (uid %d):\n", NOBODY);
	failed = run_rows(&scanner, clamav);

	stop_child(&pid_service);
	kill(scanner.pid, SIGTERM);
	if (expect(&scanner, "STATS", NULL, line, sizeof(line), LINE_MS))
		snprintf(stats, sizeof(stats), "%s", line);
	stop_child(&pid_scanner);
	close(scanner.out);
	close(service.out);
	print_counters(stats);
	printf("\n%s\n", failed ? "demo FAILED: some verdicts were not the expected ones"
				: "demo finished: infected files denied, clean ones allowed");
	return failed ? 1 : 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: fltport-scanner-demo [--help | --version]\n"
		   "As root: the on-access scanner on a private tmpfs, in a private mount\n"
		   "namespace: fltport-scanner and fltport-scanuser, clean and infected files\n"
		   "opened as user nobody, a table of verdicts and the filter's counters.\n"
		   "Everything it makes is removed at the end. Not root: the port-only demo\n"
		   "(fltport-demo). Exits 0 when every verdict is the expected one.\n");
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
		printf("fltport-scanner-demo %s\n", fltport_version(NULL));
		return 0;
	}
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = on_signal };
	char self[PATH_MAX];
	ssize_t n;
	int rc = parse_args(argc, argv);

	if (rc >= 0)
		return rc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 1;
	self[n] = '\0';
	snprintf(bindir, sizeof(bindir), "%s", dirname(self));
	if (geteuid() != 0)
		return port_only();

	if (!mkdtemp(tmp)) {
		fprintf(stderr, "fltport-scanner-demo: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(mnt, sizeof(mnt), "%s/fs", tmp);
	snprintf(ports, sizeof(ports), "%s/ports", tmp);
	snprintf(ports_ctl, sizeof(ports_ctl), "%s/.ctl", ports);
	snprintf(port_sock, sizeof(port_sock), "%s/ScannerPort", ports);
	snprintf(db_dir, sizeof(db_dir), "%s/clamav-db", tmp);
	snprintf(db_file, sizeof(db_file), "%s/demo.ndb", db_dir);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (chmod(tmp, 0755) < 0 || mkdir(mnt, 0755) < 0 || mkdir(ports, 0755) < 0 ||
	    mkdir(db_dir, 0755) < 0 || setenv("FLTPORT_DIR", ports, 1) < 0) {
		fprintf(stderr, "fltport-scanner-demo: %s\n", strerror(errno));
		remove_all();
		return 1;
	}
	rc = demo();
	remove_all();
	return rc;
}
