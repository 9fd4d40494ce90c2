/*
 * fltportctl end to end (issue 11): the built program (build/bin/) run with
 * fork+exec against real objects — a named filter with a server port
 * (fp_ctl_filter) attached to a tmpfs the test mounted in its own mount
 * namespace (tests/filter/fsbox.h), and a client connected to that port
 * (fp_msg_peer) — every command in text and in JSON, the JSON read back by
 * a strict parser (tjson.h) and checked against what the test set up.
 *
 *   cli.*       --version, --help, help COMMAND, usage errors (exit 2); no root
 *   listings.*  filters, instances, volumes, ports, connections
 *   stats.*     counters of the filter, the port and the connection move with
 *               opens and messages
 *   attach.*    detach and attach change what the running filter sees; the
 *               filter can refuse; errors for what is not there
 *   stale.*     a SIGKILLed filter's registrations do not show
 *   access.*    as another user: listings count the refusals (exit 3),
 *               attach says it needs root or the filter's user
 *   json.*      names and mount points with quotes, backslashes, tabs,
 *               non-ASCII and invalid UTF-8 come back exactly (or as U+FFFD)
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <fltport/port.h>

#include <dirent.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "fsbox.h"
#include "tjson.h"

#define LINE_MS 15000
#define RUN_MS 20000 /* one fltportctl run; each of its calls is bounded at 2 s */
#define OUT_MAX (512 * 1024)
#define NOBODY 65534
#define ALTITUDE "385100"

/* ---- running fltportctl ------------------------------------------------ */

struct run {
	int code; /* exit status; 128+signal; -1 if it had to be killed */
	char out[OUT_MAX], err[16384];
	struct tj json; /* stdout, read back by run_json() */
};

/* Results rotate: a test holds a few at a time. */
static struct run runs[4];
static unsigned next_run;

static void drain(int fd, char *buf, size_t cap, size_t *len, bool *open_)
{
	char tmp[4096];
	ssize_t r = read(fd, tmp, sizeof(tmp));

	if (r <= 0) {
		*open_ = false;
		return;
	}
	if (*len + (size_t)r >= cap)
		r = (ssize_t)(cap - 1 - *len);
	memcpy(buf + *len, tmp, (size_t)r);
	*len += (size_t)r;
	buf[*len] = '\0';
}

/* Run fltportctl with `args` as `uid` (0: as we are), stdout and stderr
 * captured, bounded by RUN_MS. */
static struct run *run_as(uid_t uid, const char *const *args)
{
	struct run *r = &runs[next_run++ % 4];
	const char *argv[32];
	char path[512];
	int out[2], err[2], status;
	size_t n = 0, olen = 0, elen = 0;
	bool oopen = true, eopen = true;
	int64_t end = tu_now_ms() + RUN_MS;
	pid_t pid;

	tj_free(&r->json);
	r->out[0] = r->err[0] = '\0';
	snprintf(path, sizeof(path), "%s/fltportctl", FP_BIN_DIR);
	argv[n++] = path;
	for (; args[n - 1] && n < 31; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (uid && (setgroups(0, NULL) || setgid(uid) || setuid(uid)))
			_exit(125);
		if (dup2(out[1], STDOUT_FILENO) < 0 || dup2(err[1], STDERR_FILENO) < 0)
			_exit(126);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	while ((oopen || eopen) && tu_now_ms() < end) {
		struct pollfd p[2] = { { .fd = oopen ? out[0] : -1, .events = POLLIN },
				       { .fd = eopen ? err[0] : -1, .events = POLLIN } };

		if (poll(p, 2, (int)(end - tu_now_ms()) + 1) <= 0)
			continue;
		if (p[0].revents)
			drain(out[0], r->out, sizeof(r->out), &olen, &oopen);
		if (p[1].revents)
			drain(err[0], r->err, sizeof(r->err), &elen, &eopen);
	}
	close(out[0]);
	close(err[0]);
	r->code = -1;
	while (tu_now_ms() < end) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid) {
			r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			break;
		}
		tu_sleep_ms(1);
	}
	if (r->code == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	cr_assert_neq(r->code, -1, "fltportctl %s did not end within %d ms", args[0] ? args[0] : "",
		      RUN_MS);
	return r;
}

#define CTL(...) run_as(0, (const char *const[]){ __VA_ARGS__, NULL })
#define CTL_AS(uid, ...) run_as(uid, (const char *const[]){ __VA_ARGS__, NULL })

/* Run with --json appended and read stdout back; asserts the exit code. */
static const struct tj *json_as(uid_t uid, int code, const char *const *args)
{
	const char *a[32];
	char why[128];
	size_t n = 0;
	struct run *r;

	for (; args[n] && n < 30; n++)
		a[n] = args[n];
	a[n++] = "--json";
	a[n] = NULL;
	r = run_as(uid, a);
	cr_assert_eq(r->code, code, "fltportctl %s --json: exit %d, not %d; stderr: %s", args[0],
		     r->code, code, r->err);
	cr_assert(tj_parse(r->out, &r->json, why, sizeof(why)),
		  "fltportctl %s --json: not valid JSON (%s):\n%s", args[0], why, r->out);
	cr_assert_eq(r->json.type, TJ_OBJ, "the document is an object");
	return &r->json;
}

#define JSON(code, ...) json_as(0, code, (const char *const[]){ __VA_ARGS__, NULL })
#define JSON_AS(uid, code, ...) json_as(uid, code, (const char *const[]){ __VA_ARGS__, NULL })

static void expect_ok(const struct run *r, const char *what)
{
	cr_assert_eq(r->code, 0, "%s: exit %d; stderr: %s", what, r->code, r->err);
}

static long long num(const struct tj *v, const char *key)
{
	long long n = -1;

	cr_assert(tj_int(tj_get(v, key), &n), "no integer \"%s\"", key);
	return n;
}

static const char *str(const struct tj *v, const char *key)
{
	const char *s = tj_str(tj_get(v, key));

	cr_assert_not_null(s, "no string \"%s\"", key);
	return s;
}

static long long counter(const struct tj *obj, const char *key)
{
	const struct tj *st = tj_get(obj, "stats");

	cr_assert_not_null(st, "no \"stats\"");
	return num(st, key);
}

/* The line of a text listing whose first column is `first`, split on runs
 * of spaces into at most `max` columns (the last takes the rest). */
static int columns(const char *out, const char *first, char cols[][512], int max)
{
	const char *line = out;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[2048];
		int n = 0;
		char *p = buf;

		snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
		line = nl ? nl + 1 : NULL;
		while (n < max && *p) {
			size_t w = n == max - 1 ? strlen(p) : strcspn(p, " ");

			snprintf(cols[n++], 512, "%.*s", (int)w, p);
			p += w;
			while (*p == ' ')
				p++;
		}
		if (n > 0 && strcmp(cols[0], first) == 0)
			return n;
	}
	return 0;
}

/* The line of `out` that starts with `first` and a space (asserted). */
static const char *line_of(const char *out, const char *first)
{
	size_t n = strlen(first);
	const char *l = out;

	while (l && *l) {
		if (strncmp(l, first, n) == 0 && l[n] == ' ')
			return l;
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	cr_assert(false, "no line starts with %s:\n%s", first, out);
	return NULL;
}

/* ---- the objects ------------------------------------------------------- */

static struct tu_proc filter = { -1, -1 }, peer = { -1, -1 };
static int peer_cmd = -1;
static char fname[128], pname[128];

static void start_filter_at(const char *name, const char *path, const char *port, const char *extra)
{
	char line[512];

	filter = tu_spawn("fp_ctl_filter",
			  (const char *const[]){ name, ALTITUDE, path, port, extra, NULL });
	cr_assert(tu_read_line(&filter, line, sizeof(line), LINE_MS), "fp_ctl_filter: no line");
	cr_assert(strncmp(line, "READY", 5) == 0, "fp_ctl_filter: %s", line);
}

static void start_filter(const char *extra)
{
	start_filter_at(fname, fsbox_mnt, pname, extra);
}

static void peer_say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	cr_assert_eq(write(peer_cmd, buf, (size_t)n), n);
}

static const char *peer_expect(const char *prefix)
{
	char *line = tu_scratch();

	cr_assert(tu_expect(&peer, prefix, line, 2048, LINE_MS), "fp_msg_peer: no %s line", prefix);
	return line;
}

static void start_peer(const char *port)
{
	char fdarg[16];
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(fcntl(p[0], F_SETFD, 0), 0);
	snprintf(fdarg, sizeof(fdarg), "%d", p[0]);
	peer = tu_spawn("fp_msg_peer", (const char *const[]){ port, fdarg, NULL });
	close(p[0]);
	peer_cmd = p[1];
	cr_assert_eq(tu_field_num(peer_expect("CONNECTED"), "rc"), 0, "the client connects");
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

static void setup(void)
{
	tu_private_dir();
	fsbox_init();
	signal(SIGPIPE, SIG_IGN);
	snprintf(fname, sizeof(fname), "ctl-%ld", (long)getpid());
	snprintf(pname, sizeof(pname), "ctlport-%ld", (long)getpid());
}

static void teardown(void)
{
	if (peer_cmd >= 0)
		close(peer_cmd); /* EOF: the client closes and exits */
	peer_cmd = -1;
	if (peer.pid > 0)
		tu_wait(&peer, LINE_MS);
	peer.pid = -1;
	stop(&filter);
	fsbox_fini();
	for (unsigned i = 0; i < 4; i++)
		tj_free(&runs[i].json);
}

static void cli_setup(void)
{
	tu_private_dir();
}

static void cli_teardown(void)
{
	for (unsigned i = 0; i < 4; i++)
		tj_free(&runs[i].json);
}

TestSuite(cli, .init = cli_setup, .fini = cli_teardown, .timeout = 120);
TestSuite(listings, .init = setup, .fini = teardown, .timeout = 180);
TestSuite(stats, .init = setup, .fini = teardown, .timeout = 180);
TestSuite(attach, .init = setup, .fini = teardown, .timeout = 180);
TestSuite(stale, .init = setup, .fini = teardown, .timeout = 180);
TestSuite(access, .init = setup, .fini = teardown, .timeout = 180);
TestSuite(json, .init = setup, .fini = teardown, .timeout = 180);

/* The counters of our filter, through `stats NAME --json`. */
static long long filter_seen(void)
{
	const struct tj *doc = JSON(0, "stats", fname);
	const struct tj *f = tj_find(tj_get(doc, "filters"), "name", fname);

	cr_assert_not_null(f, "stats %s: the filter is not there", fname);
	return counter(f, "seen");
}

/* Open (and close) a file on the tmpfs from this process: not the filter's
 * own, so the filter's pre-open callback sees it while attached. */
static void touch_open(const char *rel)
{
	int fd = open(fsbox_path(rel), O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open %s: %s", rel, strerror(errno));
	close(fd);
}

/* ---- cli ----------------------------------------------------------------- */

Test(cli, version_help_usage)
{
	struct run *r;

	r = CTL("--version");
	expect_ok(r, "--version");
	cr_expect(strncmp(r->out, "fltportctl ", 11) == 0, "%s", r->out);
	cr_expect(strchr("0123456789", r->out[11]) != NULL, "a version number: %s", r->out);

	r = CTL("--help");
	expect_ok(r, "--help");
	cr_expect(strstr(r->out, "usage: fltportctl"), "%s", r->out);
	for (const char *const *c =
		     (const char *const[]){ "filters", "instances", "volumes", "attach", "detach",
					    "ports", "connections", "stats", NULL };
	     *c; c++)
		cr_expect(strstr(r->out, *c), "--help names %s", *c);
	cr_expect(strstr(r->out, "Exit status"), "--help gives the exit codes");

	r = CTL("help", "attach");
	expect_ok(r, "help attach");
	cr_expect(strstr(r->out, "attach FILTER VOLUME"), "%s", r->out);
	r = CTL("attach", "--help");
	expect_ok(r, "attach --help");
	cr_expect(strstr(r->out, "attach FILTER VOLUME"), "%s", r->out);

	cr_expect_eq(CTL("help", "nosuch")->code, 2);
	cr_expect_eq(CTL("nosuch")->code, 2);
	r = CTL("--bogus");
	cr_expect_eq(r->code, 2);
	cr_expect(strstr(r->err, "usage"), "a usage error shows the usage: %s", r->err);
	cr_expect_eq(CTL("filters", "extra")->code, 2);
	cr_expect_eq(CTL("attach", "onlyone")->code, 2);
	cr_expect_eq(CTL("connections")->code, 2);
	cr_expect_eq(CTL("detach", "f", "/", "i", "extra")->code, 2);
	r = CTL("attach", "f", "/", "-a", "12x");
	cr_expect_eq(r->code, 2, "a bad altitude is a usage error");
	cr_expect(strstr(r->err, "altitude"), "%s", r->err);
	cr_expect_eq(CTL("attach", "f", "/", "-a", "1.2.3")->code, 2);
}

Test(cli, empty_listings)
{
	const struct tj *doc;
	struct run *r;

	/* A private port directory nobody uses: nothing runs. */
	doc = JSON(0, "filters");
	cr_expect_eq(tj_get(doc, "filters")->n, 0);
	cr_expect_eq(num(doc, "denied"), 0);
	doc = JSON(0, "ports");
	cr_expect_eq(tj_get(doc, "ports")->n, 0);
	/* --json before the command, as a global option, too. */
	r = CTL("--json", "instances");
	expect_ok(r, "--json instances");
	{
		char why[128];

		cr_expect(tj_parse(r->out, &r->json, why, sizeof(why)), "%s: %s", why, r->out);
		cr_expect_not_null(tj_get(&r->json, "instances"));
	}
	r = run_as(0, (const char *const[]){ NULL });
	expect_ok(r, "no command");
	cr_expect(strstr(r->out,
			 "Filter Name                     Num Instances    Altitude    Frame"),
		  "no command lists the filters, as fltmc: %s", r->out);
	doc = JSON(1, "stats", "nosuch");
	cr_expect_str_eq(str(tj_get(doc, "error"), "code"), "ENOENT");
	r = CTL("connections", "nosuch");
	cr_expect_eq(r->code, 1);
	cr_expect(strstr(r->err, "nosuch"), "the error names the port: %s", r->err);
}

/* ---- listings ------------------------------------------------------------ */

Test(listings, filters)
{
	const struct tj *doc, *f;
	char cols[6][512];
	struct run *r;
	long long n;

	start_filter(NULL);
	r = CTL("filters");
	expect_ok(r, "filters");
	cr_expect(strstr(r->out,
			 "Filter Name                     Num Instances    Altitude    Frame\n"
			 "------------------------------  -------------  ------------  -----\n"),
		  "fltmc's header: %s", r->out);
	cr_assert_eq(columns(r->out, fname, cols, 4), 4, "no line for %s:\n%s", fname, r->out);
	cr_expect_str_eq(cols[1], "1", "one instance");
	cr_expect_str_eq(cols[2], ALTITUDE);
	cr_expect_str_eq(cols[3], "0", "frame 0");
	/* fltmc's columns: the altitude at byte 48, the frame ending at 63. */
	{
		const char *l = line_of(r->out, fname);

		cr_expect(strncmp(l + 48, ALTITUDE " ", 7) == 0, "altitude column: '%s'", l);
		cr_expect(strncmp(l + 59, "    0\n", 6) == 0, "frame column: '%s'", l);
	}

	doc = JSON(0, "filters");
	cr_expect_eq(num(doc, "denied"), 0);
	f = tj_find(tj_get(doc, "filters"), "name", fname);
	cr_assert_not_null(f, "filters --json lists %s", fname);
	cr_expect_str_eq(str(f, "altitude"), ALTITUDE);
	cr_expect_eq(num(f, "pid"), filter.pid);
	cr_expect_eq(num(f, "uid"), 0);
	cr_expect_eq(num(f, "instances"), 1);
	cr_expect_eq(num(f, "frame"), 0);
	cr_expect_eq(tj_get(f, "features")->type, TJ_ARR);
	cr_expect_gt(num(f, "started_ns"), 0);
	cr_expect(strlen(str(f, "started")) > 10);
	n = counter(f, "seen");
	cr_expect_geq(n, 0);
}

Test(listings, instances)
{
	const struct tj *doc, *in;
	char cols[4][512];
	struct run *r;

	start_filter(NULL);
	r = CTL("instances");
	expect_ok(r, "instances");
	cr_expect(strstr(r->out,
			 "Filter                Volume Name                              "
			 "Altitude        Instance Name       Frame   SprtFtrs  VlStatus\n"),
		  "fltmc's header: %s", r->out);
	cr_assert_eq(columns(r->out, fname, cols, 4), 4, "no line for %s:\n%s", fname, r->out);
	cr_expect_str_eq(cols[1], fsbox_mnt);
	cr_expect_str_eq(cols[2], ALTITUDE);
	/* fltmc's columns: volume at 22, altitude at 64, instance name at 75. */
	{
		const char *l = line_of(r->out, fname);

		cr_expect(strncmp(l + 22, fsbox_mnt, strlen(fsbox_mnt)) == 0, "'%s'", l);
		cr_expect(strncmp(l + 64, ALTITUDE " ", 7) == 0, "altitude column: '%s'", l);
		cr_expect(l[74] == ' ' && l[75] != ' ', "instance column: '%s'", l);
	}

	for (int form = 0; form < 4; form++) {
		if (form == 0)
			doc = JSON(0, "instances");
		else if (form == 1)
			doc = JSON(0, "instances", fname);
		else if (form == 2)
			doc = JSON(0, "instances", "-f", fname);
		else
			doc = JSON(0, "instances", "-v", fsbox_mnt);
		in = tj_find(tj_get(doc, "instances"), "filter", fname);
		cr_assert_not_null(in, "form %d lists the instance", form);
		cr_expect_str_eq(str(in, "volume"), fsbox_mnt);
		cr_expect_str_eq(str(in, "path"), fsbox_mnt);
		cr_expect_str_eq(str(in, "altitude"), ALTITUDE);
		cr_expect(str(in, "name")[0] != '\0', "an instance name");
		cr_expect_eq(num(in, "pid"), filter.pid);
		cr_expect_eq(tj_get(in, "flags")->n, 0, "a whole file system, by the engine");
	}
	doc = JSON(0, "instances", "-v", "/");
	cr_expect_null(tj_find(tj_get(doc, "instances"), "filter", fname), "not on /");

	r = CTL("instances", "nosuch");
	cr_expect_eq(r->code, 1);
	cr_expect(strstr(r->err, "nosuch") && strstr(r->err, "no filter"), "%s", r->err);
	doc = JSON(1, "instances", "nosuch");
	cr_expect_str_eq(str(tj_get(doc, "error"), "code"), "ENOENT");
	cr_expect_eq(num(tj_get(doc, "error"), "errno"), ENOENT);
}

Test(listings, volumes)
{
	const struct tj *doc, *v;
	char cols[6][512];
	struct run *r;

	start_filter(NULL);
	r = CTL("volumes");
	expect_ok(r, "volumes");
	cr_expect(strstr(r->out, "Dos Name                        Volume Name"), "%s", r->out);
	cr_assert_eq(columns(r->out, fsbox_mnt, cols, 4), 4, "no line for %s:\n%s", fsbox_mnt,
		     r->out);
	cr_expect_str_eq(cols[1], "fltport-test", "the source fsbox mounted");
	cr_expect_str_eq(cols[2], "tmpfs");
	cr_expect_str_eq(cols[3], "1", "one instance on it");

	doc = JSON(0, "volumes");
	v = tj_find(tj_get(doc, "volumes"), "mount_point", fsbox_mnt);
	cr_assert_not_null(v, "volumes --json lists %s", fsbox_mnt);
	cr_expect_str_eq(str(v, "fstype"), "tmpfs");
	cr_expect_str_eq(str(v, "source"), "fltport-test");
	cr_expect_eq(num(v, "instances"), 1);
	cr_expect_gt(num(v, "mount_id"), 0);
	/* Which instance: the filter's, by name. */
	{
		const struct tj *a = tj_find(tj_get(v, "attached"), "filter", fname);

		cr_assert_not_null(a, "volumes --json: %s not among %s's attached", fname,
				   fsbox_mnt);
		cr_expect_str_eq(str(a, "altitude"), ALTITUDE);
		cr_expect_neq(str(a, "instance")[0], '\0');
	}
	cr_expect(tj_find(tj_get(doc, "volumes"), "mount_point", "/"), "/ is listed too");
}

Test(listings, ports_and_connections)
{
	const struct tj *doc, *p, *c;
	char cols[8][512], exe[600];
	struct run *r;

	start_filter(NULL);
	start_peer(pname);
	r = CTL("ports");
	expect_ok(r, "ports");
	cr_assert_geq(columns(r->out, pname, cols, 7), 6, "no line for %s:\n%s", pname, r->out);
	cr_expect_eq(atol(cols[1]), filter.pid);
	cr_expect_str_eq(cols[2], "0", "uid");
	cr_expect_str_eq(cols[3], "1", "one connection");

	doc = JSON(0, "ports");
	cr_expect_eq(num(doc, "denied"), 0);
	p = tj_find(tj_get(doc, "ports"), "name", pname);
	cr_assert_not_null(p, "ports --json lists %s", pname);
	cr_expect_eq(num(p, "pid"), filter.pid);
	cr_expect_eq(num(p, "uid"), 0);
	cr_expect_eq(num(p, "connections"), 1);
	cr_expect_eq(num(p, "max_connections"), 8);
	cr_expect_eq(counter(p, "connects"), 1);
	cr_expect_gt(num(p, "started_ns"), 0);

	r = CTL("connections", pname);
	expect_ok(r, "connections");
	snprintf(exe, sizeof(exe), "%s/fp_msg_peer", FP_HELPER_DIR);
	cr_expect(strstr(r->out, exe), "the client's executable: %s", r->out);
	doc = JSON(0, "connections", pname);
	cr_expect_str_eq(str(doc, "port"), pname);
	cr_assert_eq(tj_get(doc, "connections")->n, 1, "one connection");
	c = tj_at(tj_get(doc, "connections"), 0);
	cr_expect_eq(num(c, "pid"), peer.pid, "the client's pid");
	cr_expect_eq(num(c, "uid"), 0);
	cr_expect_eq(num(c, "gid"), 0);
	cr_expect_geq(num(c, "id"), 1);
	cr_expect_str_eq(str(c, "exe"), exe);
	cr_expect_gt(num(c, "since_ns"), 0);
	cr_expect_eq(counter(c, "connections"), 1);

	r = CTL("connections", "nosuch");
	cr_expect_eq(r->code, 1);
	cr_expect(strstr(r->err, "no port"), "%s", r->err);
}

/* ---- stats --------------------------------------------------------------- */

Test(stats, port_and_connection_counters)
{
	const struct tj *doc, *p, *c;
	long long recv0, bytes0, sent0, replies0;
	struct run *r;
	char line[512];

	start_filter(NULL);
	start_peer(pname);
	doc = JSON(0, "stats", pname);
	cr_expect_eq(tj_get(doc, "filters")->n, 0, "no filter of that name");
	p = tj_find(tj_get(doc, "ports"), "name", pname);
	cr_assert_not_null(p);
	recv0 = counter(p, "received");
	bytes0 = counter(p, "received_bytes");
	sent0 = counter(p, "sent");
	replies0 = counter(p, "replies");
	cr_expect_eq(counter(p, "connections"), 1);

	/* Three requests of 4 bytes from the client. */
	for (int i = 0; i < 3; i++) {
		peer_say("REQ x41424344 16 none");
		cr_assert_eq(tu_field_num(peer_expect("REQ"), "rc"), 0);
	}
	/* One message from the filter, answered. */
	kill(filter.pid, SIGUSR1);
	peer_say("GET 256 10000");
	cr_assert_eq(tu_field_num(peer_expect("GOT"), "rc"), 0);
	peer_say("REPLY last 0 x6f6b");
	cr_assert_eq(tu_field_num(peer_expect("REPLIED"), "rc"), 0);
	cr_assert(tu_expect(&filter, "SENT", line, sizeof(line), LINE_MS));
	cr_assert_eq(tu_field_num(line, "rc"), 0, "%s", line);

	doc = JSON(0, "stats", pname);
	p = tj_find(tj_get(doc, "ports"), "name", pname);
	cr_assert_not_null(p);
	cr_expect_eq(counter(p, "received"), recv0 + 3);
	cr_expect_eq(counter(p, "received_bytes"), bytes0 + 12);
	cr_expect_eq(counter(p, "sent"), sent0 + 1);
	cr_expect_eq(counter(p, "sent_bytes"), 4);
	cr_expect_eq(counter(p, "replies"), replies0 + 1);
	cr_expect_eq(counter(p, "pending"), 0);
	cr_expect_eq(counter(p, "timed_out"), 0);
	cr_assert_eq(tj_get(p, "connections")->n, 1);
	c = tj_at(tj_get(p, "connections"), 0);
	cr_expect_eq(num(c, "pid"), peer.pid);
	cr_expect_eq(counter(c, "received"), 3, "per connection");
	cr_expect_eq(counter(c, "sent"), 1, "per connection");
	cr_expect_eq(counter(c, "replies"), 1, "per connection");

	r = CTL("stats", pname);
	expect_ok(r, "stats PORT");
	cr_expect(strstr(r->out, "Port \""), "%s", r->out);
	cr_expect(strstr(r->out, "  received         3\n"), "%s", r->out);
	cr_expect(strstr(r->out, "Connection "), "%s", r->out);
}

Test(stats, filter_counters_and_all)
{
	const struct tj *doc, *f;
	long long seen0, allowed0;
	char cols[8][512];
	struct run *r;

	start_filter(NULL);
	start_peer(pname);
	fsbox_write(fsbox_path("a.txt"), "a\n", 0644);
	doc = JSON(0, "stats", fname);
	cr_expect_eq(tj_get(doc, "ports")->n, 0, "no port of that name");
	f = tj_find(tj_get(doc, "filters"), "name", fname);
	cr_assert_not_null(f);
	seen0 = counter(f, "seen");
	allowed0 = counter(f, "allowed");
	for (int i = 0; i < 3; i++)
		touch_open("a.txt");
	doc = JSON(0, "stats", fname);
	f = tj_find(tj_get(doc, "filters"), "name", fname);
	cr_assert_not_null(f);
	cr_expect_eq(counter(f, "seen"), seen0 + 3, "three opens seen");
	cr_expect_eq(counter(f, "allowed"), allowed0 + 3);
	cr_expect_eq(counter(f, "denied"), 0);
	cr_expect_eq(counter(f, "in_flight"), 0);

	r = CTL("stats", fname);
	expect_ok(r, "stats FILTER");
	cr_expect(strstr(r->out, "Filter \""), "%s", r->out);
	cr_expect(strstr(r->out, "  seen "), "%s", r->out);

	/* Everything: the filter and the port, each in its table. */
	r = CTL("stats");
	expect_ok(r, "stats");
	cr_assert_geq(columns(r->out, fname, cols, 7), 6, "%s", r->out);
	cr_expect_eq(atoll(cols[1]), seen0 + 3);
	cr_assert_geq(columns(r->out, pname, cols, 8), 7, "%s", r->out);
	cr_expect_str_eq(cols[1], "1", "one connection");
	doc = JSON(0, "stats");
	cr_expect_not_null(tj_find(tj_get(doc, "filters"), "name", fname));
	cr_expect_not_null(tj_find(tj_get(doc, "ports"), "name", pname));
	cr_expect_eq(num(doc, "denied"), 0);

	r = CTL("stats", "nosuch");
	cr_expect_eq(r->code, 1);
	cr_expect(strstr(r->err, "no filter or port"), "%s", r->err);
}

/* ---- attach / detach ----------------------------------------------------- */

Test(attach, detach_then_attach_changes_what_the_filter_sees)
{
	const struct tj *doc, *in, *v;
	char line[512];
	long long seen;
	struct run *r;

	start_filter(NULL);
	fsbox_write(fsbox_path("f.txt"), "f\n", 0644);
	seen = filter_seen();
	touch_open("f.txt");
	cr_assert_eq(filter_seen(), seen + 1, "attached: the open is seen");

	r = CTL("detach", fname, fsbox_mnt);
	expect_ok(r, "detach");
	cr_expect(strstr(r->out, "Detached"), "%s", r->out);
	cr_expect(tu_expect(&filter, "SETUP", line, sizeof(line), LINE_MS));
	cr_expect(strstr(line, "detach=1"), "%s", line);
	doc = JSON(0, "instances", fname);
	cr_expect_eq(tj_get(doc, "instances")->n, 0, "no instance left");
	doc = JSON(0, "filters");
	cr_expect_eq(num(tj_find(tj_get(doc, "filters"), "name", fname), "instances"), 0);
	doc = JSON(0, "volumes");
	v = tj_find(tj_get(doc, "volumes"), "mount_point", fsbox_mnt);
	cr_assert_not_null(v);
	cr_expect_eq(num(v, "instances"), 0);

	touch_open("f.txt");
	touch_open("f.txt");
	cr_expect_eq(filter_seen(), seen + 1, "detached: opens are no longer seen");

	/* Nothing left to detach. */
	r = CTL("detach", fname, fsbox_mnt);
	cr_expect_eq(r->code, 1);
	cr_expect(strstr(r->err, "no instance"), "%s", r->err);
	doc = JSON(1, "detach", fname, fsbox_mnt);
	cr_expect_str_eq(str(tj_get(doc, "error"), "code"), "ENXIO");
	/* A relative path that does not resolve: an error document too (it
	 * used to print nothing on stdout). */
	doc = JSON(1, "attach", fname, "no/such/relative/dir");
	cr_expect_str_eq(str(tj_get(doc, "error"), "code"), "ENOENT");
	cr_expect_str_eq(str(tj_get(doc, "error"), "volume"), "no/such/relative/dir");

	/* Attach again, with an instance name and an altitude of our own. */
	doc = JSON(0, "attach", fname, fsbox_mnt, "-i", "ctl inst", "-a", "123456.5");
	in = tj_get(doc, "attached");
	cr_assert_not_null(in);
	cr_expect_str_eq(str(in, "filter"), fname);
	cr_expect_str_eq(str(in, "volume"), fsbox_mnt);
	cr_expect_str_eq(str(in, "instance"), "ctl inst");
	cr_expect_str_eq(str(in, "altitude"), "123456.5");
	doc = JSON(0, "instances", fname);
	in = tj_find(tj_get(doc, "instances"), "filter", fname);
	cr_assert_not_null(in, "attached again");
	cr_expect_str_eq(str(in, "name"), "ctl inst");
	cr_expect_str_eq(str(in, "altitude"), "123456.5");
	touch_open("f.txt");
	cr_expect_eq(filter_seen(), seen + 2, "attached again: the open is seen");

	r = CTL("attach", fname, fsbox_mnt);
	cr_expect_eq(r->code, 1, "attached twice");
	cr_expect(strstr(r->err, "already attached"), "%s", r->err);

	/* fltmc's form: detach FILTER VOLUME INSTANCE. */
	r = CTL("detach", fname, fsbox_mnt, "ctl inst");
	expect_ok(r, "detach by instance name");
	touch_open("f.txt");
	cr_expect_eq(filter_seen(), seen + 2);

	/* A relative path is resolved here, not in the filter's directory. */
	cr_assert_eq(chdir(fsbox_dir), 0);
	r = CTL("attach", fname, "fs");
	expect_ok(r, "attach by a relative path");
	cr_expect(strstr(r->out, fsbox_mnt), "%s", r->out);
	touch_open("f.txt");
	cr_expect_eq(filter_seen(), seen + 3);

	r = CTL("attach", "nosuch", fsbox_mnt);
	cr_expect_eq(r->code, 1);
	cr_expect(strstr(r->err, "no filter"), "%s", r->err);
	doc = JSON(1, "attach", "nosuch", fsbox_mnt);
	cr_expect_str_eq(str(tj_get(doc, "error"), "code"), "ENOENT");
}

Test(attach, the_filter_can_refuse)
{
	const struct tj *doc;
	long long seen;
	struct run *r;

	start_filter("--refuse-detach");
	fsbox_write(fsbox_path("f.txt"), "f\n", 0644);
	r = CTL("detach", fname, fsbox_mnt);
	cr_expect_eq(r->code, 1);
	cr_expect(strstr(r->err, strerror(EBUSY)), "the filter's errno: %s", r->err);
	doc = JSON(1, "detach", fname, fsbox_mnt);
	cr_expect_eq(num(tj_get(doc, "error"), "errno"), EBUSY);
	doc = JSON(0, "instances", fname);
	cr_expect_eq(tj_get(doc, "instances")->n, 1, "still attached");
	seen = filter_seen();
	touch_open("f.txt");
	cr_expect_eq(filter_seen(), seen + 1, "still filtering");
}

/* ---- stale registrations -------------------------------------------------- */

static bool ctl_dir_has(const char *name)
{
	char dir[600];
	struct dirent *e;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/.ctl", fltport_dir());
	d = opendir(dir);
	if (!d)
		return false;
	while ((e = readdir(d)))
		found |= strstr(e->d_name, name) != NULL;
	closedir(d);
	return found;
}

Test(stale, sigkilled_filter_does_not_show)
{
	const struct tj *doc;
	struct run *r;

	start_filter(NULL);
	doc = JSON(0, "filters");
	cr_assert_not_null(tj_find(tj_get(doc, "filters"), "name", fname));
	doc = JSON(0, "ports");
	cr_assert_not_null(tj_find(tj_get(doc, "ports"), "name", pname));

	tu_kill(&filter, SIGKILL);
	filter.pid = -1;

	r = CTL("filters");
	expect_ok(r, "filters after the kill");
	cr_expect_null(strstr(r->out, fname), "a dead filter is listed:\n%s", r->out);
	doc = JSON(0, "filters");
	cr_expect_null(tj_find(tj_get(doc, "filters"), "name", fname), "dead filter listed");
	cr_expect_eq(num(doc, "denied"), 0, "a dead filter is not a refusal");
	doc = JSON(0, "ports");
	cr_expect_null(tj_find(tj_get(doc, "ports"), "name", pname), "dead port listed");
	doc = JSON(0, "instances");
	cr_expect_null(tj_find(tj_get(doc, "instances"), "filter", fname), "dead instance listed");
	doc = JSON(0, "volumes");
	cr_expect_eq(num(tj_find(tj_get(doc, "volumes"), "mount_point", fsbox_mnt), "instances"), 0,
		     "a dead filter's instance is counted on the volume");
	cr_expect_eq(CTL("stats", fname)->code, 1);
	cr_expect(!ctl_dir_has(fname), "the dead filter's control socket is removed");

	/* The name is free again. */
	start_filter(NULL);
	doc = JSON(0, "filters");
	cr_expect_eq(num(tj_find(tj_get(doc, "filters"), "name", fname), "pid"), filter.pid);
}

/* ---- another user ---------------------------------------------------------- */

Test(access, other_user_is_told)
{
	const struct tj *doc;
	struct run *r;

	start_filter(NULL);
	start_peer(pname);

	r = CTL_AS(NOBODY, "filters");
	cr_expect_eq(r->code, 3, "an incomplete listing: exit 3; stderr: %s", r->err);
	cr_expect(strstr(r->err, "1 filter refused"), "%s", r->err);
	cr_expect(strstr(r->err, "run as root"), "%s", r->err);
	cr_expect_null(strstr(r->out, fname), "not shown to another user");
	doc = JSON_AS(NOBODY, 3, "filters");
	cr_expect_eq(num(doc, "denied"), 1);
	cr_expect_null(tj_find(tj_get(doc, "filters"), "name", fname));

	doc = JSON_AS(NOBODY, 3, "ports");
	cr_expect_eq(num(doc, "denied"), 1);
	doc = JSON_AS(NOBODY, 3, "instances");
	cr_expect_eq(num(doc, "denied"), 1);
	doc = JSON_AS(NOBODY, 3, "stats");
	cr_expect_eq(num(doc, "denied"), 2, "the filter and the port");

	r = CTL_AS(NOBODY, "attach", fname, fsbox_mnt);
	cr_expect_eq(r->code, 3, "attach as another user: %s", r->err);
	cr_expect(strstr(r->err, "needs root or the user the filter runs as"), "%s", r->err);
	doc = JSON_AS(NOBODY, 3, "detach", fname, fsbox_mnt);
	cr_expect_str_eq(str(tj_get(doc, "error"), "code"), "EACCES");
	r = CTL_AS(NOBODY, "stats", fname);
	cr_expect_eq(r->code, 3, "%s", r->err);
	r = CTL_AS(NOBODY, "connections", pname);
	cr_expect_eq(r->code, 3, "%s", r->err);
	cr_expect(strstr(r->err, "permission"), "%s", r->err);

	/* Refused, so nothing changed. */
	doc = JSON(0, "instances", fname);
	cr_expect_eq(tj_get(doc, "instances")->n, 1);
}

/* ---- JSON escaping --------------------------------------------------------- */

Test(json, names_and_paths_round_trip)
{
	/* A quote, a backslash, a tab, non-ASCII: exact.  0xff: U+FFFD. */
	static const char weird_dir[] = "we\"ird\\dir\t\xc3\xa9";
	static const char bad_dir[] = "bad\xff";
	char weird[600], bad[600], name[128], port[128];
	const struct tj *doc, *v, *in, *f;
	char cols[4][512];
	struct run *r;

	snprintf(weird, sizeof(weird), "%s/%s", fsbox_dir, weird_dir);
	snprintf(bad, sizeof(bad), "%s/%s", fsbox_dir, bad_dir);
	cr_assert_eq(mkdir(weird, 0755), 0);
	cr_assert_eq(mkdir(bad, 0755), 0);
	cr_assert_eq(mount("fltport-test", weird, "tmpfs", 0, "size=1m"), 0, "%s", strerror(errno));
	cr_assert_eq(mount("fltport-test", bad, "tmpfs", 0, "size=1m"), 0, "%s", strerror(errno));
	snprintf(name, sizeof(name), "q\"uote \xc3\xa9 %ld", (long)getpid());
	snprintf(port, sizeof(port), "p\"ort \xe2\x9c\x93 %ld", (long)getpid());

	start_filter_at(name, weird, port, NULL);
	doc = JSON(0, "volumes");
	v = tj_find(tj_get(doc, "volumes"), "mount_point", weird);
	cr_assert_not_null(v, "the mount point comes back byte for byte");
	cr_expect_str_eq(str(v, "fstype"), "tmpfs");
	cr_expect_eq(num(v, "instances"), 1);
	{
		char want[600];

		snprintf(want, sizeof(want), "%s/bad\xef\xbf\xbd", fsbox_dir);
		cr_expect_not_null(tj_find(tj_get(doc, "volumes"), "mount_point", want),
				   "an invalid byte comes back as U+FFFD");
	}
	doc = JSON(0, "filters");
	f = tj_find(tj_get(doc, "filters"), "name", name);
	cr_assert_not_null(f, "the filter's name comes back byte for byte");
	doc = JSON(0, "instances", name);
	in = tj_find(tj_get(doc, "instances"), "filter", name);
	cr_assert_not_null(in);
	cr_expect_str_eq(str(in, "volume"), weird);
	doc = JSON(0, "ports");
	cr_expect_not_null(tj_find(tj_get(doc, "ports"), "name", port));
	doc = JSON(0, "stats", port);
	cr_expect_not_null(tj_find(tj_get(doc, "ports"), "name", port));

	/* Text: control bytes are shown as '?', never sent to the terminal. */
	r = CTL("volumes");
	expect_ok(r, "volumes");
	{
		char shown[600];

		snprintf(shown, sizeof(shown), "%s/we\"ird\\dir?\xc3\xa9", fsbox_dir);
		cr_expect_eq(columns(r->out, shown, cols, 2), 2, "%s", r->out);
		cr_expect_null(strchr(r->out, '\t'), "a raw tab in the text output");
	}
	umount2(weird, MNT_DETACH);
	umount2(bad, MNT_DETACH);
}
