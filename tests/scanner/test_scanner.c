/*
 * The scanner end to end (issue 10): fltport-scanner and fltport-scanuser
 * from build/bin/, openers as separate processes (fp_filter_opener), and a
 * service written only with the Windows API (win_scanuser).  Root; each
 * test in its own mount namespace on its own tmpfs (tests/filter/fsbox.h),
 * the only file system the filter marks.  Every program a test starts dies
 * with it (PR_SET_PDEATHSIG) and is stopped at the end.
 *
 *   engines.*    the built-in pattern (whole file, 1 KiB notification) and
 *                libclamav (.hdb and .ndb signatures)
 *   service.*    killed mid-run (the filter answers within its deadline),
 *                restarted (scanning resumes), filter restarted (the service
 *                reconnects), a stopped service under both policies, the
 *                connect context, the service's process tree exempt
 *   rescan.*     after close-write: no stale cache, next open answered
 *                from the rescan's verdict
 *   policy.*     fail-closed with no service
 *   quarantine.* infected files moved to a root-only directory
 *   windows.*    a Windows-API service gets the same verdicts
 *   log.*        denials reach the journal with structured fields
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <fltport/mgmt.h>
#include <fltport/port.h>

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "fsbox.h"
#include "scanner_proto.h"

#define LINE_MS 15000
#define DEADLINE_S "2"

static struct tu_proc scanner = { -1, -1 }, service = { -1, -1 };

/* ---- programs ---------------------------------------------------------- */

/* Start FP_BIN_DIR/<prog> (or a test helper when prog has no '/' prefix
 * flag): stdout captured, killed if this test process dies. */
static struct tu_proc spawn_prog(const char *path, const char *const *args)
{
	struct tu_proc p = { .pid = -1, .out = -1 };
	const char *argv[40];
	size_t n = 0;
	int fds[2];

	argv[n++] = path;
	for (; args && args[n - 1] && n < 39; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	fflush(NULL);
	p.pid = fork();
	cr_assert_geq(p.pid, 0);
	if (p.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(fds[1], STDOUT_FILENO) < 0)
			_exit(126);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	p.out = fds[0];
	return p;
}

static struct tu_proc spawn_bin(const char *prog, const char *const *args)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", FP_BIN_DIR, prog);
	return spawn_prog(path, args);
}

static struct tu_proc spawn_helper(const char *prog, const char *const *args)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", FP_HELPER_DIR, prog);
	return spawn_prog(path, args);
}

static void stop(struct tu_proc *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		tu_wait(p, LINE_MS);
	}
	p->pid = -1;
	p->out = -1;
}

/* Read lines until one starts with `prefix` and contains `part`. */
static bool expect_line(struct tu_proc *p, const char *prefix, const char *part, char *line,
			size_t cap, int ms)
{
	int64_t end = tu_now_ms() + ms;

	while (tu_now_ms() < end) {
		if (!tu_read_line(p, line, cap, (int)(end - tu_now_ms()) + 1))
			return false;
		if (strncmp(line, prefix, strlen(prefix)) == 0 && (!part || strstr(line, part)))
			return true;
	}
	return false;
}

/* A service already retrying connects as soon as the port exists, which
 * can be before the scanner says READY: such a line is remembered. */
static bool scanner_connected_early;

static void start_scanner(const char *const *extra)
{
	const char *args[32] = { "--verbose", "--deadline", DEADLINE_S };
	int64_t end = tu_now_ms() + LINE_MS;
	size_t n = 3;
	char line[512];
	bool ready = false;

	for (; extra && *extra && n < 30; extra++)
		args[n++] = *extra;
	args[n++] = fsbox_mnt;
	args[n] = NULL;
	scanner_connected_early = false;
	scanner = spawn_bin("fltport-scanner", args);
	while (!ready && tu_now_ms() < end &&
	       tu_read_line(&scanner, line, sizeof(line), (int)(end - tu_now_ms()) + 1)) {
		if (strncmp(line, "SERVICE connected", 17) == 0)
			scanner_connected_early = true;
		ready = strncmp(line, "READY", 5) == 0;
	}
	cr_assert(ready, "fltport-scanner did not start");
}

static void start_service(const char *const *args)
{
	const char *t = getenv("FLTPORT_TRANSPORT");
	char line[512];

	service = spawn_bin("fltport-scanuser", args);
	/* The socket unless the environment asks for shared memory. */
	cr_assert(expect_line(&service, "CONNECTED", NULL, line, sizeof(line), LINE_MS),
		  "fltport-scanuser did not connect");
	cr_assert(strstr(line, t && strcmp(t, "shm") == 0 ? "transport=shm" : "transport=socket"),
		  "%s", line);
	cr_assert(expect_line(&service, "READY", NULL, line, sizeof(line), LINE_MS),
		  "fltport-scanuser did not say READY");
	cr_assert(expect_line(&scanner, "SERVICE connected", NULL, line, sizeof(line), LINE_MS));
}

static bool have_clamav(void)
{
	struct tu_proc p = spawn_bin("fltport-scanuser", (const char *[]){ "--version", NULL });
	char line[256] = "";

	tu_read_line(&p, line, sizeof(line), LINE_MS);
	tu_wait(&p, LINE_MS);
	return strstr(line, "clamav") != NULL;
}

/* Open `rel` in the tmpfs from another process: its errno (0: opened). */
static int open_ms(const char *rel, double *ms)
{
	struct tu_proc p =
		spawn_helper("fp_filter_opener", (const char *[]){ "open", fsbox_path(rel), NULL });
	char line[256];
	int err = -1;
	double t = 0;

	cr_assert(tu_expect(&p, "OPEN", line, sizeof(line), 30000), "the opener of %s hung", rel);
	cr_assert_eq(sscanf(line, "OPEN err=%d ms=%lf", &err, &t), 2, "%s", line);
	cr_assert_eq(tu_wait(&p, LINE_MS), 0);
	if (ms)
		*ms = t;
	return err;
}

static int open_err(const char *rel)
{
	return open_ms(rel, NULL);
}

/* The filter's DECISION line about `rel`. */
static const char *decision(const char *rel)
{
	char *line = tu_scratch(), part[600];

	snprintf(part, sizeof(part), "path=%s", fsbox_path(rel));
	cr_assert(expect_line(&scanner, "DECISION", part, line, 2048, LINE_MS),
		  "no decision about %s", rel);
	return line;
}

/* One of the filter's counters, now. */
static long long counter(const char *name)
{
	char *line = tu_scratch();

	kill(scanner.pid, SIGUSR1);
	cr_assert(expect_line(&scanner, "STATS", NULL, line, 2048, LINE_MS));
	return tu_field_num(line, name);
}

static char *make_text(size_t size, size_t at, const char *what)
{
	char *s = malloc(size + 1);

	cr_assert_not_null(s);
	memset(s, 'a', size);
	if (what)
		memcpy(s + at, what, strlen(what));
	s[size] = '\0';
	return s;
}

static void setup(void)
{
	tu_private_dir();
	fsbox_init();
	signal(SIGPIPE, SIG_IGN);
}

static void teardown(void)
{
	stop(&service);
	stop(&scanner);
	fsbox_fini();
}

TestSuite(engines, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(service, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(rescan, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(policy, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(quarantine, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(windows, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(log, .init = setup, .fini = teardown, .timeout = 120);

/* ---- engines ----------------------------------------------------------- */

Test(engines, pattern_whole_file)
{
	char *far = make_text(3000, 2000, "foul");
	long long before;

	fsbox_write(fsbox_path("clean.txt"), "quarterly numbers\n", 0644);
	fsbox_write(fsbox_path("bad.txt"), "this is foul\n", 0644);
	fsbox_write(fsbox_path("far.doc"), far, 0644);
	fsbox_write(fsbox_path("photo.jpg"), "foul\n", 0644);
	free(far);
	start_scanner(NULL);
	start_service(NULL);

	cr_expect_eq(open_err("clean.txt"), 0);
	cr_expect(strstr(decision("clean.txt"), "verdict=allow source=service"));
	cr_expect_eq(open_err("bad.txt"), EPERM);
	cr_expect(
		strstr(decision("bad.txt"), "verdict=deny source=service signature=pattern:foul"));
	cr_expect_eq(open_err("far.doc"), EPERM, "the whole file is scanned, not 1 KiB");
	cr_expect(strstr(decision("far.doc"), "signature=pattern:foul"));
	cr_expect_eq(open_err("photo.jpg"), 0, ".jpg is not a scanned extension");

	/* Clean: cached in the kernel; infected: remembered by the filter. */
	before = counter("scanned");
	cr_expect_eq(open_err("clean.txt"), 0);
	cr_expect_eq(open_err("clean.txt"), 0);
	cr_expect_eq(open_err("bad.txt"), EPERM);
	cr_expect(strstr(decision("bad.txt"), "verdict=deny source=memory"));
	cr_expect_eq(counter("scanned"), before, "a known file was scanned again");
	cr_expect_geq(counter("cached"), 1);
}

/* The scanner is a registered filter (fltportctl, FilterFindFirst) with
 * one instance, on the sandbox's file system. */
Test(engines, registered_with_the_management_plane)
{
	struct fltport_instance_info *in = NULL;
	struct fltport_filter_info fi;
	size_t n = 0;

	start_scanner(NULL);
	cr_assert_eq(fltport_mgmt_filter("Scanner", &fi), 0);
	cr_expect_str_eq(fi.altitude, "265000");
	cr_expect_eq(fi.instances, 1);
	cr_assert_eq(fltport_mgmt_instances("Scanner", &in, &n, NULL), 0);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(in[0].volume, fsbox_mnt);
	fltport_mgmt_free(in);
}

/* An md5 signature (.hdb) for `content`: "md5:size:name". */
static void hdb_line(const char *content, const char *name, char *out, size_t cap)
{
	char cmd[600], sum[64] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "printf '%%s' '%s' | md5sum", content);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_eq(fscanf(p, "%32s", sum), 1);
	pclose(p);
	snprintf(out, cap, "%s:%zu:%s\n", sum, strlen(content), name);
}

Test(engines, clamav_hdb_and_ndb)
{
	char db[512], path[600], sig[256];
	const char *line;

	if (!have_clamav())
		cr_skip_test(
			"fltport-scanuser built without libclamav (scripts/deps.sh installs it)");
	snprintf(db, sizeof(db), "%s/db", fsbox_dir);
	cr_assert_eq(mkdir(db, 0755), 0);
	hdb_line("the exact bytes of a known sample", "Fltport.Test.Hash", sig, sizeof(sig));
	snprintf(path, sizeof(path), "%s/test.hdb", db);
	fsbox_write(path, sig, 0644);
	/* body signature: "fltport-test-body" in hex, anywhere, any file */
	snprintf(path, sizeof(path), "%s/test.ndb", db);
	fsbox_write(path, "Fltport.Test.Body:0:*:666c74706f72742d746573742d626f6479\n", 0644);
	fsbox_write(fsbox_path("known.doc"), "the exact bytes of a known sample", 0644);
	fsbox_write(fsbox_path("body.txt"), "header\nfltport-test-body\n", 0644);
	fsbox_write(fsbox_path("clean.txt"), "quarterly numbers\n", 0644);
	fsbox_write(fsbox_path("foul.txt"), "foul, but not to ClamAV\n", 0644);
	/* Verdicts only: a deadline no loaded machine misses (libclamav's
	 * first scan once took over 2 s with both CPUs busy). */
	start_scanner((const char *[]){ "--deadline", "30", NULL });
	start_service((const char *[]){ "--clamav", db, NULL });

	cr_expect_eq(open_err("known.doc"), EPERM);
	line = decision("known.doc");
	cr_expect(strstr(line, "signature=Fltport.Test.Hash"), "%s", line);
	cr_expect_eq(open_err("body.txt"), EPERM);
	line = decision("body.txt");
	cr_expect(strstr(line, "signature=Fltport.Test.Body"), "%s", line);
	cr_expect_eq(open_err("clean.txt"), 0);
	cr_expect_eq(open_err("foul.txt"), 0, "--clamav alone has no built-in pattern");
	/* The service's own line names the signature too. */
	cr_expect(expect_line(&service, "verdict=infected", "Fltport.Test.Hash", sig, sizeof(sig),
			      LINE_MS));
}

/* ---- service ----------------------------------------------------------- */

Test(service, killed_mid_run_then_restarted)
{
	struct tu_proc o;
	char line[256];
	double ms = 0;

	fsbox_write(fsbox_path("bad1.txt"), "foul 1\n", 0644);
	fsbox_write(fsbox_path("bad2.txt"), "foul 2\n", 0644);
	fsbox_write(fsbox_path("bad3.txt"), "foul 3\n", 0644);
	start_scanner(NULL);
	start_service(NULL);
	cr_expect_eq(open_err("bad1.txt"), EPERM);
	cr_expect(strstr(decision("bad1.txt"), "source=service"));

	/* A request in flight when the service dies: answered by policy at
	 * once (fail-open), not left to hang. */
	tu_kill(&service, SIGSTOP);
	o = spawn_helper("fp_filter_opener",
			 (const char *[]){ "open", fsbox_path("bad2.txt"), NULL });
	cr_assert(expect_line(&scanner, "DECISION", "bad2", line, sizeof(line), 500) == false,
		  "decided while the service was stopped: %s", line);
	tu_kill(&service, SIGKILL);
	service.pid = -1;
	cr_assert(tu_expect(&o, "OPEN", line, sizeof(line), 30000), "the opener hung");
	cr_assert_eq(sscanf(line, "OPEN err=%*d ms=%lf", &ms), 1, "%s", line);
	cr_expect(strstr(line, "err=0"), "fail-open: %s", line);
	cr_expect_lt(ms, 2000 + 5000, "not answered within the deadline: %s", line);
	tu_wait(&o, LINE_MS);
	cr_assert(expect_line(&scanner, "SERVICE disconnected", NULL, line, sizeof(line), LINE_MS));

	/* No service: allowed, as the Windows sample does, without waiting. */
	cr_expect_eq(open_ms("bad3.txt", &ms), 0);
	cr_expect_lt(ms, 2000, "waited for a service that is not there");

	/* Restarted: it connects again, scanning resumes. */
	start_service(NULL);
	cr_expect_eq(open_err("bad3.txt"), EPERM);
	cr_expect(strstr(decision("bad3.txt"), "source=service"));
}

Test(service, filter_restarted_service_reconnects)
{
	char line[256];

	fsbox_write(fsbox_path("bad.txt"), "foul\n", 0644);
	start_scanner(NULL);
	start_service(NULL);
	stop(&scanner);
	cr_assert(
		expect_line(&service, "DISCONNECTED", "reconnecting", line, sizeof(line), LINE_MS));
	start_scanner(NULL);
	cr_assert(scanner_connected_early || expect_line(&scanner, "SERVICE connected", NULL, line,
							 sizeof(line), LINE_MS),
		  "the service did not reconnect");
	cr_assert(expect_line(&service, "READY", NULL, line, sizeof(line), LINE_MS));
	cr_expect_eq(open_err("bad.txt"), EPERM);
}

static void stopped_service(const char *policy, int expect_err)
{
	char line[256];
	double ms = 0;

	fsbox_write(fsbox_path("f.txt"), "clean\n", 0644);
	start_scanner((const char *[]){ policy, "--deadline", "1", NULL });
	start_service(NULL);
	tu_kill(&service, SIGSTOP);
	cr_expect_eq(open_ms("f.txt", &ms), expect_err);
	cr_expect_lt(ms, 1000 + 5000, "answered after the deadline");
	snprintf(line, sizeof(line), "%s", decision("f.txt"));
	cr_expect(strstr(line, "source=policy"), "%s", line);
	kill(service.pid, SIGCONT);
}

Test(service, stopped_service_fail_open)
{
	stopped_service("--fail-open", 0);
}

Test(service, stopped_service_fail_closed)
{
	stopped_service("--fail-closed", EPERM);
}

/* Open `path` from a process outside this process's tree: a grandchild
 * whose parent exits, so that it is reparented (to init or a subreaper
 * above us).  Its errno arrives on *result (a pipe).  Returns its pid, or
 * -ECHILD. */
static pid_t outsider_open(const char *path, int *result)
{
	int p[2], q[2], st;
	pid_t child, gc = -1;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(q, O_CLOEXEC), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		pid_t mid = getpid(), g = fork();

		if (g == 0) {
			struct timespec tick = { 0, 1000000 };
			int fd, e;

			for (int i = 0; getppid() == mid; i++) /* until reparented */
				if (i == 10000 || nanosleep(&tick, NULL) < 0)
					_exit(1);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			e = fd < 0 ? errno : 0;
			if (write(p[1], &e, sizeof(e)) != sizeof(e))
				_exit(1);
			_exit(0);
		}
		if (write(q[1], &g, sizeof(g)) != sizeof(g))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	close(q[1]);
	waitpid(child, &st, 0);
	if (read(q[0], &gc, sizeof(gc)) != sizeof(gc))
		gc = -ECHILD;
	close(q[0]);
	*result = p[0];
	return gc;
}

/* A service of our own (this process), through the documented context:
 * the context is checked, one service at a time, its process tree is
 * exempt, and a request carries the opener and the file's fd. */
Test(service, context_fd_requests_and_exempt_tree)
{
	struct fltport_scan_hello hello = { .magic = FLTPORT_SCAN_MAGIC,
					    .version = FLTPORT_SCAN_VERSION,
					    .flags = FLTPORT_SCAN_WANT_FD };
	struct fltport_scan_hello bad = hello;
	unsigned char buf[FLTPORT_SCAN_REQUEST_MAX];
	const struct fltport_scan_request *h = (const void *)buf;
	struct fltport_scan_reply rep = { .safe = 1 };
	struct fltport_msg msg;
	fltport_conn *conn, *second;
	struct pollfd pfd;
	char line[256], content[16] = "";
	int result = -1, err = -1;
	pid_t opener;
	uint32_t status = 0;
	pid_t child;
	int st;

	fsbox_write(fsbox_path("bad.txt"), "so foul\n", 0644);
	fsbox_write(fsbox_path("other.txt"), "x\n", 0644);
	start_scanner((const char *[]){ "--fail-closed", NULL });

	strcpy(bad.magic, "nonsense");
	cr_expect_eq(fltport_connect(FLTPORT_SCAN_PORT, &bad, sizeof(bad), 0, 5000000000LL, &conn,
				     &status),
		     -ECONNREFUSED);
	cr_expect_eq(status, 0xC000000Du);
	bad = hello;
	bad.version = 2;
	cr_expect_eq(fltport_connect(FLTPORT_SCAN_PORT, &bad, sizeof(bad), 0, 5000000000LL, &conn,
				     &status),
		     -ECONNREFUSED);
	cr_expect_eq(status, 0xC0000059u);

	cr_assert_eq(fltport_connect(FLTPORT_SCAN_PORT, &hello, sizeof(hello), 0, 5000000000LL,
				     &conn, &status),
		     0);
	cr_assert(
		expect_line(&scanner, "SERVICE connected", "mode=fd", line, sizeof(line), LINE_MS));
	cr_expect_eq(fltport_connect(FLTPORT_SCAN_PORT, &hello, sizeof(hello), 0, 5000000000LL,
				     &second, &status),
		     -EUSERS, "MaxConnections is 1");

	/* The service's child: trusted with it, never asked about. */
	child = fork();
	if (child == 0) {
		int fd = open(fsbox_path("bad.txt"), O_RDONLY | O_CLOEXEC);

		_exit(fd < 0 ? errno : 0);
	}
	cr_assert_eq(waitpid(child, &st, 0), child);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the service's child was not exempt");
	cr_expect_eq(fltport_get(conn, buf, sizeof(buf), &msg, FLTPORT_POLL), -ETIMEDOUT,
		     "the service was asked about its own child's open");

	/* Anyone else: a request, with the opener and the fd.  The opener is
	 * reparented away from us first (else it is our descendant: exempt). */
	opener = outsider_open(fsbox_path("bad.txt"), &result);
	if (opener < 0) {
		fltport_close(conn);
		cr_skip_test("cannot make a process outside our tree: %s", strerror(-opener));
	}
	cr_assert_eq(fltport_get(conn, buf, sizeof(buf), &msg, 10000000000LL), 0);
	cr_assert_geq(msg.len, sizeof(*h));
	cr_expect_eq(h->version, FLTPORT_SCAN_VERSION);
	cr_expect_eq(h->flags, 0u);
	cr_expect_eq(h->pid, (int32_t)opener);
	cr_expect_eq(h->uid, 0u);
	cr_expect_eq(h->size, 8u);
	cr_expect_eq((size_t)h->path_len, strlen(fsbox_path("bad.txt")));
	cr_expect_eq(memcmp(buf + sizeof(*h), fsbox_path("bad.txt"), h->path_len), 0);
	cr_expect_eq(sizeof(*h) + h->path_len + h->exe_len, msg.len);
	cr_assert_eq(msg.nfds, 1u);
	cr_expect_eq(pread(msg.fds[0], content, 7, 0), 7);
	cr_expect_str_eq(content, "so foul");
	close(msg.fds[0]);
	cr_expect(msg.wants_reply);
	/* We say safe (a 1-byte reply is enough): the open is allowed. */
	cr_assert_eq(fltport_reply(conn, msg.id, 0, &rep, 1), 0);
	pfd = (struct pollfd){ .fd = result, .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 30000), 1, "the opener hung");
	cr_assert_eq(read(result, &err, sizeof(err)), (ssize_t)sizeof(err));
	cr_expect_eq(err, 0, "allowed by our reply, got %s", strerror(err));
	close(result);
	fltport_close(conn);
	cr_assert(expect_line(&scanner, "SERVICE disconnected", NULL, line, sizeof(line), LINE_MS));
	/* No service, fail-closed: denied (bad.txt itself is cached as
	 * allowed now: we said it was safe). */
	cr_expect_eq(open_err("other.txt"), EPERM);
}

/* ---- rescan ------------------------------------------------------------ */

Test(rescan, close_write_no_stale_cache)
{
	char line[512], part[600];
	long long before;
	void *map;
	int fd;

	fsbox_write(fsbox_path("f.txt"), "clean clean clean\n", 0644);
	start_scanner(NULL);
	start_service(NULL);
	cr_expect_eq(open_err("f.txt"), 0);
	cr_expect(strstr(decision("f.txt"), "verdict=allow"));
	before = counter("scanned");
	cr_expect_eq(open_err("f.txt"), 0);
	cr_expect_eq(counter("scanned"), before, "the clean verdict was not cached");

	/* Infect it through a shared mapping: no modify event, so the kernel
	 * keeps the cached allow — only the rescan after the close drops it. */
	fd = open(fsbox_path("f.txt"), O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s", strerror(errno));
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(map, MAP_FAILED);
	memcpy(map, "foul", 4);
	munmap(map, 4096);
	close(fd);
	snprintf(part, sizeof(part), "path=%s", fsbox_path("f.txt"));
	cr_assert(expect_line(&scanner, "RESCAN", part, line, sizeof(line), LINE_MS),
		  "no rescan after the close");
	cr_expect(strstr(line, "verdict=infected"), "%s", line);
	cr_expect_eq(open_err("f.txt"), EPERM, "stale cache: the infected file was allowed");
	cr_expect(strstr(decision("f.txt"), "source=memory"), "not answered from the rescan");

	/* A clean file written: the rescan caches it, the next open is
	 * answered by the kernel without a scan. */
	fd = open(fsbox_path("g.txt"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "fresh and clean\n", 16), 16);
	close(fd);
	snprintf(part, sizeof(part), "path=%s", fsbox_path("g.txt"));
	cr_assert(expect_line(&scanner, "RESCAN", part, line, sizeof(line), LINE_MS));
	cr_expect(strstr(line, "verdict=clean"), "%s", line);
	cr_expect(strstr(line, "cached=1"), "%s", line);
	before = counter("scanned");
	cr_expect_eq(open_err("g.txt"), 0);
	cr_expect_eq(counter("scanned"), before, "the rescan's verdict was not used");
}

/* ---- policy ------------------------------------------------------------ */

Test(policy, fail_closed_without_service)
{
	double ms = 0;

	fsbox_write(fsbox_path("clean.txt"), "clean\n", 0644);
	fsbox_write(fsbox_path("photo.jpg"), "clean\n", 0644);
	start_scanner((const char *[]){ "--fail-closed", "--deadline", "10", NULL });
	cr_expect_eq(open_ms("clean.txt", &ms), EPERM);
	cr_expect_lt(ms, 5000, "waited for the deadline instead of denying at once");
	cr_expect(strstr(decision("clean.txt"), "source=no-service"));
	cr_expect_eq(open_err("photo.jpg"), 0, "not a scanned extension");
}

/* ---- quarantine -------------------------------------------------------- */

static void quarantine_into(const char *qdir)
{
	char line[1024], *to;
	struct stat st;

	fsbox_write(fsbox_path("bad.txt"), "foul content\n", 0644);
	start_scanner((const char *[]){ "--quarantine", qdir, NULL });
	start_service(NULL);
	cr_assert_eq(stat(qdir, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0700);
	cr_expect_eq(st.st_uid, 0u);
	cr_expect_eq(open_err("bad.txt"), EPERM);
	cr_assert(expect_line(&scanner, "QUARANTINE", "bad.txt", line, sizeof(line), LINE_MS));
	cr_expect(strstr(line, "ok=1"), "%s", line);
	cr_expect_neq(access(fsbox_path("bad.txt"), F_OK), 0, "still in place");
	to = strstr(line, " to=");
	cr_assert_not_null(to);
	cr_assert_eq(stat(to + 4, &st), 0, "%s", to + 4);
	cr_expect_eq(st.st_mode & 07777, 0600);
	cr_expect_eq(st.st_size, 13);
}

Test(quarantine, other_file_system)
{
	char q[512];

	snprintf(q, sizeof(q), "%s/quarantine", fsbox_dir);
	quarantine_into(q);
}

Test(quarantine, same_file_system)
{
	quarantine_into(fsbox_path("quarantine"));
}

/* ---- Windows API ------------------------------------------------------- */

static void open_all(int *errs)
{
	static const char *const files[] = { "clean.txt", "bad.txt", "far.txt", "photo.jpg" };

	for (size_t i = 0; i < 4; i++)
		errs[i] = open_err(files[i]);
}

Test(windows, win32_service_same_verdicts)
{
	char *far = make_text(3000, 2000, "foul");
	struct tu_proc win;
	char line[512];
	int got_win[4], got_native[4], got_fd[4];

	fsbox_write(fsbox_path("clean.txt"), "quarterly numbers\n", 0644);
	fsbox_write(fsbox_path("bad.txt"), "this is foul\n", 0644);
	fsbox_write(fsbox_path("far.txt"), far, 0644);
	fsbox_write(fsbox_path("photo.jpg"), "foul\n", 0644);
	free(far);

	/* The Windows-API service: no context, a completion port, overlapped
	 * reads, packed 17-byte replies. */
	start_scanner(NULL);
	win = spawn_helper("win_scanuser", (const char *[]){ "ScannerPort", "2", "3", NULL });
	cr_assert(tu_expect(&win, "CONNECTED", line, sizeof(line), LINE_MS));
	cr_assert(strstr(line, "hr=0x00000000"), "%s", line);
	cr_assert(tu_expect(&win, "READY", line, sizeof(line), LINE_MS));
	cr_assert(expect_line(&scanner, "SERVICE connected", "mode=windows", line, sizeof(line),
			      LINE_MS));
	open_all(got_win);
	for (int i = 0; i < 3; i++) {
		cr_assert(tu_expect(&win, "SCAN", line, sizeof(line), LINE_MS));
		cr_expect(strstr(line, "replylength=17 reply=0x00000000"), "%s", line);
		cr_expect_leq(tu_field_num(line, "bytes"), 1024);
	}
	stop(&scanner); /* the port closes: the service's reads end */
	cr_assert(tu_expect(&win, "DONE", line, sizeof(line), LINE_MS));
	cr_expect(strstr(line, "scanned=3 bad=0"), "%s", line);
	cr_expect_eq(tu_wait(&win, LINE_MS), 0);

	/* fltport-scanuser in the same mode: the same verdicts. */
	start_scanner(NULL);
	start_service((const char *[]){ "--windows", NULL });
	open_all(got_native);
	stop(&service);
	stop(&scanner);

	/* And the fd mode, for contrast: the whole file. */
	start_scanner(NULL);
	start_service(NULL);
	open_all(got_fd);

	cr_expect_eq(got_win[0], 0);
	cr_expect_eq(got_win[1], EPERM);
	cr_expect_eq(got_win[2], 0, "only the first 1 KiB reaches a Windows-style service");
	cr_expect_eq(got_win[3], 0);
	cr_expect_arr_eq(got_native, got_win, sizeof(got_win));
	cr_expect_eq(got_fd[2], EPERM, "the fd service scans the whole file");
}

/* ---- log --------------------------------------------------------------- */

/* The value of a field in a journal native-protocol datagram. */
static const char *journal_field(const char *d, size_t n, const char *name)
{
	static char val[1024];
	size_t nl = strlen(name), i = 0;

	while (i < n) {
		const char *end = memchr(d + i, '\n', n - i);
		size_t k;

		if (!end)
			return NULL;
		k = (size_t)(end - (d + i));
		if (memchr(d + i, '=', k)) { /* NAME=value\n */
			if (k > nl && memcmp(d + i, name, nl) == 0 && d[i + nl] == '=') {
				snprintf(val, sizeof(val), "%.*s", (int)(k - nl - 1),
					 d + i + nl + 1);
				return val;
			}
			i += k + 1;
		} else { /* NAME\n, 64-bit little-endian length, value\n */
			uint64_t len = 0;

			for (int b = 0; b < 8; b++)
				len |= (uint64_t)(unsigned char)d[i + k + 1 + b] << (8 * b);
			if (k == nl && memcmp(d + i, name, nl) == 0) {
				snprintf(val, sizeof(val), "%.*s", (int)len, d + i + k + 9);
				return val;
			}
			i += k + 1 + 8 + len + 1;
		}
	}
	return NULL;
}

Test(log, denial_has_structured_fields)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	char dgram[16384];
	const char *v;
	ssize_t n;
	int s;

	fsbox_write(fsbox_path("bad.txt"), "foul\n", 0644);
	cr_assert_lt(strlen(fsbox_dir) + 14, sizeof(a.sun_path));
	memcpy(a.sun_path, fsbox_dir, strlen(fsbox_dir));
	strcat(a.sun_path, "/journal.sock");
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(s, 0);
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
	start_scanner(NULL);
	start_service((const char *[]){ "--journal-socket", a.sun_path, NULL });
	cr_expect_eq(open_err("bad.txt"), EPERM);
	pfd = (struct pollfd){ .fd = s, .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, LINE_MS), 1, "nothing logged");
	n = recv(s, dgram, sizeof(dgram), 0);
	cr_assert_gt(n, 0);
	v = journal_field(dgram, (size_t)n, "FLTPORT_PATH");
	cr_expect(v && strcmp(v, fsbox_path("bad.txt")) == 0, "path %s", v ? v : "(none)");
	v = journal_field(dgram, (size_t)n, "FLTPORT_SIGNATURE");
	cr_expect(v && strcmp(v, "pattern:foul") == 0, "signature %s", v ? v : "(none)");
	v = journal_field(dgram, (size_t)n, "FLTPORT_UID");
	cr_expect(v && strcmp(v, "0") == 0, "uid %s", v ? v : "(none)");
	v = journal_field(dgram, (size_t)n, "FLTPORT_PID");
	cr_expect(v && atoi(v) > 0, "pid %s", v ? v : "(none)");
	v = journal_field(dgram, (size_t)n, "FLTPORT_EXE");
	cr_expect(v && strstr(v, "fp_filter_opener"), "exe %s", v ? v : "(none)");
	v = journal_field(dgram, (size_t)n, "PRIORITY");
	cr_expect(v && strcmp(v, "4") == 0, "priority %s", v ? v : "(none)");
	v = journal_field(dgram, (size_t)n, "SYSLOG_IDENTIFIER");
	cr_expect(v && strcmp(v, "fltport-scanuser") == 0);
	close(s);
}
