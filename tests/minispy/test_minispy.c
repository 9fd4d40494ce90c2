/*
 * The minispy sample end to end (issue 11): fltport-minispy and fltport-spy
 * from build/bin/.  Root; each test in its own mount namespace on its own
 * tmpfs (tests/filter/fsbox.h), the only file system the filter marks.  The
 * test process itself does the file operations (it is not the filter), and
 * reads the records through fltport-spy --json and directly through the
 * port, checking minispy's wire format.  Every program a test starts dies
 * with it (PR_SET_PDEATHSIG) and is stopped at the end.
 *
 *   ops.*    every operation kind recorded with the right pid, process,
 *            uid and path, through fltport-spy and through the port
 *   wire.*   GetMiniSpyVersion, bad commands, the empty log, a reply buffer
 *            too small, LOG_RECORD layout and alignment, non-UTF-8 names
 *   ring.*   a full ring drops and counts, never blocks an open; the gap
 *            shows in the sequence numbers and in the next record
 *   spy.*    --count, -o, --op, --path, --pid, the table
 *   cli.*    --version, --help, usage errors, no filter running
 *   proto.*  minispy_proto.h's readers on hand-made records (no root)
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <fltport/mgmt.h>
#include <fltport/port.h>

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "fsbox.h"
#include "minispy_proto.h"

#define LINE_MS 15000
#define MAX_LINES 512
#define NS_PER_MS ((int64_t)1000000)

static struct tu_proc minispy = { -1, -1 }, spy = { -1, -1 };

/* ---- programs ---------------------------------------------------------- */

/* Start `path` with stdout captured; killed if this test process dies. */
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

static void start_minispy(const char *const *extra)
{
	const char *args[32] = { "--verbose" };
	size_t n = 1;
	char line[512];

	for (; extra && *extra && n < 30; extra++)
		args[n++] = *extra;
	args[n++] = fsbox_mnt;
	args[n] = NULL;
	minispy = spawn_bin("fltport-minispy", args);
	cr_assert(expect_line(&minispy, "READY", NULL, line, sizeof(line), LINE_MS),
		  "fltport-minispy did not start");
}

/* One of the filter's STATS counters, now. */
static long long counter(const char *name)
{
	char *line = tu_scratch();

	kill(minispy.pid, SIGUSR1);
	cr_assert(expect_line(&minispy, "STATS", NULL, line, 2048, LINE_MS));
	return tu_field_num(line, name);
}

/* Run a program to its end; its exit code, its first `cap` bytes of output. */
static int run_bin(const char *prog, const char *const *args, char *outbuf, size_t cap)
{
	struct tu_proc p = spawn_bin(prog, args);
	size_t n = 0;
	char line[4096];

	if (outbuf)
		outbuf[0] = '\0';
	while (tu_read_line(&p, line, sizeof(line), LINE_MS)) {
		if (outbuf && n + strlen(line) + 2 < cap) {
			n += (size_t)snprintf(outbuf + n, cap - n, "%s\n", line);
		}
	}
	return tu_wait(&p, LINE_MS);
}

/* ---- JSON lines (flat objects, as fltport-spy writes them) ------------- */

/* The string value of "key"; escapes other than \" \\ are kept as written. */
static bool jstr(const char *line, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(line, pat);
	if (!p)
		return false;
	for (p += strlen(pat); *p && *p != '"' && n + 2 < cap; p++) {
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		out[n++] = *p;
	}
	out[n] = '\0';
	return *p == '"';
}

static long long jnum(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

struct jlines {
	int n;
	char *line[MAX_LINES];
};

static void jlines_free(struct jlines *j)
{
	for (int i = 0; i < j->n; i++)
		free(j->line[i]);
	j->n = 0;
}

/* Read spy's lines until one has op `op` and a path ending in `suffix`. */
static void collect_until(struct tu_proc *p, struct jlines *j, const char *op, const char *suffix)
{
	int64_t end = tu_now_ms() + LINE_MS;
	char line[8192], v[4096];

	while (tu_now_ms() < end && j->n < MAX_LINES) {
		cr_assert(tu_read_line(p, line, sizeof(line), (int)(end - tu_now_ms()) + 1),
			  "fltport-spy stopped or went quiet before %s %s", op, suffix);
		j->line[j->n++] = strdup(line);
		if (jstr(line, "op", v, sizeof(v)) && strcmp(v, op) == 0 &&
		    jstr(line, "path", v, sizeof(v)) && strlen(v) >= strlen(suffix) &&
		    strcmp(v + strlen(v) - strlen(suffix), suffix) == 0)
			return;
	}
	cr_assert(false, "no %s %s within %d ms", op, suffix, LINE_MS);
}

/* The first line with this op, pid and path (and new_path if given). */
static const char *find_line(const struct jlines *j, const char *op, long pid, const char *path,
			     const char *new_path)
{
	char v[4096];

	for (int i = 0; i < j->n; i++) {
		const char *l = j->line[i];

		if (!jstr(l, "op", v, sizeof(v)) || strcmp(v, op) != 0)
			continue;
		if (jnum(l, "pid") != pid)
			continue;
		if (!jstr(l, "path", v, sizeof(v)) || strcmp(v, path) != 0)
			continue;
		if (new_path && (!jstr(l, "new_path", v, sizeof(v)) || strcmp(v, new_path) != 0))
			continue;
		return l;
	}
	return NULL;
}

/* ---- the port, directly ------------------------------------------------ */

static fltport_conn *connect_port(void)
{
	fltport_conn *c = NULL;
	int rc = fltport_connect(FLTPORT_MSPY_PORT, NULL, 0, 0, 5000 * NS_PER_MS, &c, NULL);

	cr_assert_eq(rc, 0, "connect MiniSpyPort: %s", strerror(-rc));
	return c;
}

/* The port counts no connection (a closed one's disconnect is handled
 * asynchronously: a reader started right after fltport_close() could find
 * the one-reader limit still taken). */
static bool no_reader(void *arg)
{
	struct fltport_port_info pi;

	(void)arg;
	return fltport_mgmt_port(FLTPORT_MSPY_PORT, &pi) == 0 && pi.stats.connections == 0;
}

static bool one_reader(void *arg)
{
	struct fltport_port_info pi;

	(void)arg;
	return fltport_mgmt_port(FLTPORT_MSPY_PORT, &pi) == 0 && pi.stats.connections == 1;
}

static uint32_t command(fltport_conn *c, uint32_t cmd, void *out, size_t cap, size_t *got)
{
	struct fltport_mspy_command m = { .command = cmd };
	uint32_t status = 0xFFFFFFFFu;
	size_t n = 0;
	int rc =
		fltport_request(c, &m, sizeof(m), NULL, 0, out, cap, &n, &status, 5000 * NS_PER_MS);

	cr_assert_eq(rc, 0, "request: %s", strerror(-rc));
	if (got)
		*got = n;
	return status;
}

/* A record read from the port, decoded. */
struct prec {
	struct fltport_mspy_log_record h;
	struct fltport_mspy_ext x;
	bool has_ext;
	uint32_t name[1024];
	size_t name_units;
	char path[4096], new_path[4096];
};

/* Check one record's framing and decode it; its length. */
static size_t check_record(const char *p, size_t avail, struct prec *r)
{
	const struct fltport_mspy_ext *x;
	size_t max;

	cr_assert_geq(avail, sizeof(r->h) + 4);
	memcpy(&r->h, p, sizeof(r->h));
	cr_assert_eq(r->h.length % 8, 0, "Length %u is not pointer-aligned", r->h.length);
	cr_assert_geq(r->h.length, sizeof(r->h) + 4, "shorter than LOG_RECORD + one WCHAR");
	cr_assert_leq(r->h.length, avail);
	cr_assert_leq(r->h.length, FLTPORT_MSPY_RECORD_MAX);
	max = (r->h.length - sizeof(r->h)) / 4;
	memcpy(r->name, p + sizeof(r->h), max * 4 < sizeof(r->name) ? max * 4 : sizeof(r->name));
	for (r->name_units = 0; r->name_units < max && r->name[r->name_units]; r->name_units++)
		;
	cr_assert_lt(r->name_units, max, "the name is not NUL-terminated inside Length");
	x = fltport_mspy_ext_of(p, avail);
	r->has_ext = x != NULL;
	cr_assert(r->has_ext, "no fltport block");
	memcpy(&r->x, x, sizeof(r->x));
	r->new_path[0] = '\0';
	for (size_t i = 0, o = 0; i <= r->name_units && o + 1 < sizeof(r->path); i++) {
		uint32_t c = r->name[i];

		/* ASCII and escaped bytes only: what the tests use */
		r->path[o++] = c >= 0xDC80 && c <= 0xDCFF ? (char)(c - 0xDC00) : (char)c;
		if (c > 0x7F && !(c >= 0xDC80 && c <= 0xDCFF))
			r->path[o - 1] = '?';
	}
	if (x->new_name_len) {
		const uint32_t *u = fltport_mspy_ext_new_name(x);
		size_t i;

		for (i = 0; i < x->new_name_len && i + 1 < sizeof(r->new_path); i++)
			r->new_path[i] = (char)u[i];
		r->new_path[i] = '\0';
	}
	return r->h.length;
}

#define MAX_PRECS 256
static struct prec precs[MAX_PRECS];
static int nprecs;

/* Drain the log through the port into precs[] until a record of `op` about
 * `path` is in (bounded), then until the log is empty. */
static void drain_port(fltport_conn *c, unsigned op, const char *path)
{
	static uint64_t buf[65536 / 8];
	int64_t end = tu_now_ms() + LINE_MS;
	bool found = false;

	nprecs = 0;
	while (tu_now_ms() < end) {
		size_t got = 0, off = 0;
		uint32_t st = command(c, FLTPORT_MSPY_GET_LOG, buf, sizeof(buf), &got);

		if (st == FLTPORT_MSPY_STATUS_NO_MORE_ENTRIES) {
			cr_assert_eq(got, 0);
			if (found)
				return;
			tu_sleep_ms(20);
			continue;
		}
		cr_assert_eq(st, FLTPORT_MSPY_STATUS_SUCCESS, "status 0x%08X", st);
		while (off < got && nprecs < MAX_PRECS) {
			struct prec *r = &precs[nprecs++];

			off += check_record((const char *)buf + off, got - off, r);
			if (r->x.op == op && strcmp(r->path, path) == 0)
				found = true;
		}
		cr_assert_eq(off, got, "records do not fill the reply exactly");
	}
	cr_assert(found, "no record of op %u about %s", op, path);
}

static const struct prec *find_prec(unsigned op, long pid, const char *path)
{
	for (int i = 0; i < nprecs; i++)
		if (precs[i].x.op == op && (long)precs[i].h.data.process_id == pid &&
		    strcmp(precs[i].path, path) == 0)
			return &precs[i];
	return NULL;
}

/* ---- the sandbox's operations ----------------------------------------- */

static void own_comm(char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/comm", "re");

	cr_assert_not_null(f);
	cr_assert_not_null(fgets(out, (int)cap, f));
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

static void create_write(const char *path, const char *text)
{
	fsbox_write(path, text, 0644);
}

static void read_file(const char *path)
{
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_gt(read(fd, buf, sizeof(buf)), 0);
	close(fd);
}

/* Copy /bin/true into the tmpfs as `path`, executable. */
static void copy_true(const char *path)
{
	char buf[65536];
	int in = open("/bin/true", O_RDONLY | O_CLOEXEC);
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	ssize_t n;

	cr_assert_geq(in, 0);
	cr_assert_geq(out, 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		cr_assert_eq(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

/* Run `path` (no arguments) to its end; its pid. */
static pid_t exec_and_wait(const char *path)
{
	int status = 0;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s failed: 0x%x", path, status);
	return pid;
}

/* ---- suites ------------------------------------------------------------ */

static void setup(void)
{
	tu_private_dir();
	fsbox_init();
	signal(SIGPIPE, SIG_IGN);
}

static void teardown(void)
{
	stop(&spy);
	stop(&minispy);
	fsbox_fini();
}

static void cli_setup(void)
{
	tu_private_dir();
}

TestSuite(ops, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(wire, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(ring, .init = setup, .fini = teardown, .timeout = 180);
TestSuite(spy, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(cli, .init = cli_setup, .timeout = 60);
TestSuite(proto, .timeout = 10);

/* ---- ops --------------------------------------------------------------- */

/* Every kind, done by this process (and an exec'd child) in the sandbox.
 * Returns the child's pid. */
static pid_t do_every_op(void)
{
	pid_t child;

	create_write(fsbox_path("new.txt"), "hello"); /* create, open, write, close-write */
	read_file(fsbox_path("new.txt"));             /* open, read */
	cr_assert_eq(rename(fsbox_path("new.txt"), fsbox_path("renamed.txt")), 0);
	copy_true(fsbox_path("prog"));
	child = exec_and_wait(fsbox_path("prog")); /* exec, open by the child */
	cr_assert_eq(unlink(fsbox_path("renamed.txt")), 0);
	create_write(fsbox_path("zz-end"), "end"); /* the marker */
	return child;
}

Test(ops, every_kind_through_spy_json)
{
	struct jlines j = { 0 };
	long self = (long)getpid();
	char comm[32], v[256];
	const char *l;
	pid_t child;

	own_comm(comm, sizeof(comm));
	start_minispy(NULL);
	spy = spawn_bin("fltport-spy", (const char *[]){ "--json", "--interval", "20", "--path",
							 fsbox_mnt, NULL });
	child = do_every_op();
	collect_until(&spy, &j, "close-write", "/zz-end");
	stop(&spy);

	l = find_line(&j, "create", self, fsbox_path("new.txt"), NULL);
	cr_expect_not_null(l, "create new.txt");
	if (l) {
		cr_expect(jstr(l, "process", v, sizeof(v)) && strcmp(v, comm) == 0, "%s", l);
		cr_expect_eq(jnum(l, "uid"), 0);
		cr_expect(jstr(l, "irp", v, sizeof(v)) && strcmp(v, "IRP_MJ_CREATE") == 0);
		cr_expect(jstr(l, "result", v, sizeof(v)) && strcmp(v, "0x00000000") == 0);
		cr_expect_eq(jnum(l, "tid"), 0);
	}
	cr_expect_not_null(find_line(&j, "open", self, fsbox_path("new.txt"), NULL), "open");
	l = find_line(&j, "write", self, fsbox_path("new.txt"), NULL);
	cr_expect_not_null(l, "write new.txt");
	if (l)
		cr_expect(jstr(l, "irp", v, sizeof(v)) && strcmp(v, "IRP_MJ_WRITE") == 0);
	cr_expect_not_null(find_line(&j, "close-write", self, fsbox_path("new.txt"), NULL),
			   "close-write new.txt");
	l = find_line(&j, "read", self, fsbox_path("new.txt"), NULL);
	cr_expect_not_null(l, "read new.txt");
	if (l)
		cr_expect(jstr(l, "irp", v, sizeof(v)) && strcmp(v, "IRP_MJ_READ") == 0);
	l = find_line(&j, "rename", self, fsbox_path("new.txt"), fsbox_path("renamed.txt"));
	cr_expect_not_null(l, "rename new.txt -> renamed.txt");
	if (l)
		cr_expect(jstr(l, "irp", v, sizeof(v)) && strcmp(v, "IRP_MJ_SET_INFORMATION") == 0);
	l = find_line(&j, "exec", (long)child, fsbox_path("prog"), NULL);
	cr_expect_not_null(l, "exec prog by its own pid %ld", (long)child);
	if (l) {
		/* Decided before the new program replaces the old: the forked
		 * child still has our name. */
		cr_expect(jstr(l, "process", v, sizeof(v)) && strcmp(v, comm) == 0, "%s", l);
		cr_expect(jstr(l, "irp", v, sizeof(v)) &&
			  strcmp(v, "IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION") == 0);
	}
	cr_expect_not_null(find_line(&j, "open", (long)child, fsbox_path("prog"), NULL));
	l = find_line(&j, "delete", self, fsbox_path("renamed.txt"), NULL);
	cr_expect_not_null(l, "delete renamed.txt");
	cr_expect_eq(counter("dropped"), 0);
	cr_expect_eq(counter("timed_out"), 0);
	jlines_free(&j);
}

Test(ops, every_kind_through_the_port)
{
	long self = (long)getpid();
	const struct prec *r;
	fltport_conn *c;
	pid_t child;
	int64_t now_ft;
	char comm[32];

	own_comm(comm, sizeof(comm));
	start_minispy(NULL);
	child = do_every_op();
	c = connect_port();
	drain_port(c, FLTPORT_MSPY_OP_CLOSE_WRITE, fsbox_path("zz-end"));
	fltport_close(c);

	now_ft = 116444736000000000LL + (int64_t)time(NULL) * 10000000;
	r = find_prec(FLTPORT_MSPY_OP_CREATE, self, fsbox_path("new.txt"));
	cr_assert_not_null(r, "create new.txt");
	cr_expect_eq(r->h.data.major, FLTPORT_MSPY_IRP_MJ_CREATE);
	cr_expect_eq(r->h.data.information, FLTPORT_MSPY_FILE_CREATED);
	cr_expect_eq(r->h.data.flags, FLTPORT_MSPY_FLT_CALLBACK_DATA_IRP_OPERATION);
	cr_expect_eq(r->h.data.status, 0);
	cr_expect_eq(r->h.data.thread_id, 0);
	cr_expect_str_eq(r->x.process, comm);
	cr_expect_eq(r->x.uid, 0);
	cr_expect(r->h.data.originating_time > now_ft - 600000000LL &&
			  r->h.data.originating_time < now_ft + 600000000LL,
		  "OriginatingTime is a FILETIME of now");
	cr_expect(r->h.record_type & FLTPORT_MSPY_RECORD_TYPE_FLAG_FLTPORT_EXT);

	r = find_prec(FLTPORT_MSPY_OP_OPEN, self, fsbox_path("new.txt"));
	cr_assert_not_null(r, "open new.txt");
	cr_expect_eq(r->h.data.major, FLTPORT_MSPY_IRP_MJ_CREATE);
	cr_expect_eq(r->h.data.information, FLTPORT_MSPY_FILE_OPENED);
	cr_expect_neq(r->h.data.file_object, 0, "an open carries the inode");

	r = find_prec(FLTPORT_MSPY_OP_READ, self, fsbox_path("new.txt"));
	cr_expect(r && r->h.data.major == FLTPORT_MSPY_IRP_MJ_READ, "read new.txt");
	r = find_prec(FLTPORT_MSPY_OP_WRITE, self, fsbox_path("new.txt"));
	cr_expect(r && r->h.data.major == FLTPORT_MSPY_IRP_MJ_WRITE, "write new.txt");
	r = find_prec(FLTPORT_MSPY_OP_CLOSE_WRITE, self, fsbox_path("new.txt"));
	cr_expect(r && r->h.data.major == FLTPORT_MSPY_IRP_MJ_CLEANUP, "close-write new.txt");
	r = find_prec(FLTPORT_MSPY_OP_RENAME, self, fsbox_path("new.txt"));
	cr_expect(r && r->h.data.major == FLTPORT_MSPY_IRP_MJ_SET_INFORMATION &&
			  r->h.data.arg[1] == FLTPORT_MSPY_FILE_RENAME_INFORMATION,
		  "rename new.txt");
	if (r)
		cr_expect_str_eq(r->new_path, fsbox_path("renamed.txt"));
	r = find_prec(FLTPORT_MSPY_OP_DELETE, self, fsbox_path("renamed.txt"));
	cr_expect(r && r->h.data.major == FLTPORT_MSPY_IRP_MJ_SET_INFORMATION &&
			  r->h.data.arg[1] == FLTPORT_MSPY_FILE_DISPOSITION_INFORMATION,
		  "delete renamed.txt");
	r = find_prec(FLTPORT_MSPY_OP_EXEC, (long)child, fsbox_path("prog"));
	cr_expect(r && r->h.data.major == FLTPORT_MSPY_IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION &&
			  r->h.data.flags == FLTPORT_MSPY_FLT_CALLBACK_DATA_FS_FILTER_OPERATION,
		  "exec prog");
	/* Sequence numbers: one per record, none lost. */
	for (int i = 1; i < nprecs; i++)
		cr_expect_eq(precs[i].h.sequence_number, precs[i - 1].h.sequence_number + 1);
}

/* ---- wire -------------------------------------------------------------- */

Test(wire, version_and_bad_requests)
{
	struct fltport_mspy_version ver = { 0, 0 };
	uint64_t buf[512];
	fltport_conn *c;
	size_t got = 99;
	uint32_t status = 0;
	uint16_t two = 1;

	start_minispy(NULL);
	c = connect_port();
	cr_expect_eq(command(c, FLTPORT_MSPY_GET_VERSION, &ver, sizeof(ver), &got),
		     FLTPORT_MSPY_STATUS_SUCCESS);
	cr_expect_eq(got, sizeof(ver));
	cr_expect_eq(ver.major, 2);
	cr_expect_eq(ver.minor, 0);
	cr_expect_eq(command(c, FLTPORT_MSPY_GET_VERSION, buf, 2, NULL),
		     FLTPORT_MSPY_STATUS_INVALID_PARAMETER, "version into 2 bytes");
	cr_expect_eq(command(c, 7, buf, sizeof(buf), NULL), FLTPORT_MSPY_STATUS_INVALID_PARAMETER,
		     "unknown command");
	cr_expect_eq(command(c, FLTPORT_MSPY_GET_LOG, NULL, 0, NULL),
		     FLTPORT_MSPY_STATUS_INVALID_PARAMETER, "GetMiniSpyLog without a buffer");
	cr_assert_eq(fltport_request(c, &two, sizeof(two), NULL, 0, buf, sizeof(buf), &got, &status,
				     5000 * NS_PER_MS),
		     0);
	cr_expect_eq(status, FLTPORT_MSPY_STATUS_INVALID_PARAMETER, "a 2-byte command");
	cr_expect_eq(command(c, FLTPORT_MSPY_GET_LOG, buf, sizeof(buf), &got),
		     FLTPORT_MSPY_STATUS_NO_MORE_ENTRIES, "nothing happened yet");
	cr_expect_eq(got, 0);
	fltport_close(c);
}

static bool log_not_empty(void *arg)
{
	uint64_t small[2];

	return command(arg, FLTPORT_MSPY_GET_LOG, small, sizeof(small), NULL) !=
	       FLTPORT_MSPY_STATUS_NO_MORE_ENTRIES;
}

Test(wire, small_buffer_and_names)
{
	static const char name[] = "caf\xc3\xa9-\xff.txt"; /* UTF-8 é, then a lone 0xFF */
	static uint64_t buf[FLTPORT_MSPY_RECORD_MAX / 8];
	char path[600];
	fltport_conn *c;
	size_t got = 0, units, base;
	uint32_t u[64];

	start_minispy(NULL);
	c = connect_port();
	snprintf(path, sizeof(path), "%s/%s", fsbox_mnt, name);
	create_write(path, "x");
	cr_assert(tu_wait_until(log_not_empty, c, LINE_MS));
	cr_expect_eq(command(c, FLTPORT_MSPY_GET_LOG, buf, 100, &got),
		     FLTPORT_MSPY_STATUS_BUFFER_TOO_SMALL, "the oldest record does not fit");
	cr_expect_eq(got, 0);
	/* A reply buffer of FLTPORT_MSPY_RECORD_MAX always takes a record. */
	cr_assert_eq(command(c, FLTPORT_MSPY_GET_LOG, buf, sizeof(buf), &got),
		     FLTPORT_MSPY_STATUS_SUCCESS);
	cr_assert_geq(got, sizeof(struct fltport_mspy_log_record) + 4);
	memcpy(u, (const char *)buf + sizeof(struct fltport_mspy_log_record),
	       sizeof(u) < got - sizeof(struct fltport_mspy_log_record)
		       ? sizeof(u)
		       : got - sizeof(struct fltport_mspy_log_record));
	/* The name: the mount point, then c a f U+00E9 - U+DCFF . t x t */
	base = strlen(fsbox_mnt) + 1;
	for (units = 0; units < 64 && u[units]; units++)
		;
	cr_assert_eq(units, base + 10, "one unit per character, one per stray byte");
	cr_expect_eq(u[base + 3], 0xE9u, "UTF-8 decoded to one WCHAR");
	cr_expect_eq(u[base + 5], 0xDCFFu, "a byte that is not UTF-8: U+DC00 + the byte");
	cr_expect_eq(u[base], (uint32_t)'c');
	fltport_close(c);
}

/* ---- ring -------------------------------------------------------------- */

Test(ring, overflow_drops_counted_opens_never_blocked)
{
	static uint64_t buf[65536 / 8];
	const long n = tu_scaled(3000, 300);
	long long recorded, stored, dropped;
	struct jlines j = { 0 };
	struct prec r;
	char line[256], arg[32];
	struct tu_proc p;
	fltport_conn *c;
	size_t got = 0, off = 0;
	uint32_t last = 0;
	int taken = 0;

	fsbox_write(fsbox_path("hot"), "x", 0644);
	start_minispy((const char *[]){ "--ring", "16", "--quiet", NULL });
	/* Many opens, nobody reading: every one completes. */
	snprintf(arg, sizeof(arg), "%ld", n);
	p = tu_spawn("fp_filter_opener", (const char *[]){ "loop", fsbox_path("hot"), arg, NULL });
	cr_assert(tu_expect(&p, "LOOP", line, sizeof(line), 60000), "the opens hung");
	cr_assert_eq(tu_wait(&p, LINE_MS), 0);
	cr_expect_eq(tu_field_num(line, "ok"), n, "%s", line);
	cr_expect_eq(tu_field_num(line, "other"), 0, "%s", line);
	recorded = counter("recorded");
	stored = counter("stored");
	dropped = counter("dropped");
	cr_expect_geq(recorded, n);
	cr_expect_eq(stored, 16, "the ring keeps its 16 records");
	cr_expect_eq(dropped, recorded - stored, "every other record is dropped and counted");
	cr_expect_gt(dropped, 0);
	cr_expect_eq(counter("timed_out"), 0, "no open waited for the deadline");

	/* The 16 kept: consecutive sequence numbers from 1. */
	c = connect_port();
	cr_assert_eq(command(c, FLTPORT_MSPY_GET_LOG, buf, sizeof(buf), &got),
		     FLTPORT_MSPY_STATUS_SUCCESS);
	while (off < got) {
		off += check_record((const char *)buf + off, got - off, &r);
		cr_expect_eq(r.h.sequence_number, last + 1);
		cr_expect_eq(r.x.dropped, 0);
		last = r.h.sequence_number;
		taken++;
	}
	cr_expect_eq(taken, 16);
	cr_expect_eq(command(c, FLTPORT_MSPY_GET_LOG, buf, sizeof(buf), &got),
		     FLTPORT_MSPY_STATUS_NO_MORE_ENTRIES);
	fltport_close(c);
	cr_assert(tu_wait_until(no_reader, NULL, LINE_MS), "the closed reader is still counted");

	/* The next record shows the gap: in its sequence number, its count,
	 * and minispy's EXCEED_MEMORY_ALLOWANCE flag; fltport-spy says so. */
	cr_expect_eq(fsbox_opener("open", fsbox_path("hot"), "OPEN"), 0);
	p = spawn_bin("fltport-spy", (const char *[]){ "--json", "--count", "1", NULL });
	collect_until(&p, &j, "open", "/hot");
	cr_expect_eq(tu_wait(&p, LINE_MS), 0, "--count 1 exits by itself");
	cr_expect_eq(jnum(j.line[0], "seq"), 16 + dropped + 1, "%s", j.line[0]);
	cr_expect_eq(jnum(j.line[0], "dropped_before"), dropped, "%s", j.line[0]);
	jlines_free(&j);
}

Test(ring, gap_flag_on_the_wire)
{
	static uint64_t buf[65536 / 8];
	struct prec r;
	fltport_conn *c;
	size_t got = 0;

	fsbox_write(fsbox_path("f"), "x", 0644);
	start_minispy((const char *[]){ "--ring", "1", "--ops", "open", NULL });
	for (int i = 0; i < 3; i++)
		cr_expect_eq(fsbox_opener("open", fsbox_path("f"), "OPEN"), 0);
	c = connect_port();
	cr_assert_eq(command(c, FLTPORT_MSPY_GET_LOG, buf, sizeof(buf), &got),
		     FLTPORT_MSPY_STATUS_SUCCESS);
	check_record((const char *)buf, got, &r);
	cr_expect_eq(r.h.sequence_number, 1);
	cr_expect_eq(got, r.h.length, "a ring of one holds one record");
	cr_expect_eq(fsbox_opener("open", fsbox_path("f"), "OPEN"), 0);
	cr_assert_eq(command(c, FLTPORT_MSPY_GET_LOG, buf, sizeof(buf), &got),
		     FLTPORT_MSPY_STATUS_SUCCESS);
	check_record((const char *)buf, got, &r);
	cr_expect_eq(r.h.sequence_number, 4, "records 2 and 3 were dropped");
	cr_expect_eq(r.x.dropped, 2);
	cr_expect(r.h.record_type & FLTPORT_MSPY_RECORD_TYPE_FLAG_EXCEED_MEMORY_ALLOWANCE);
	fltport_close(c);
	cr_expect_eq(counter("dropped"), 2);
}

/* ---- spy --------------------------------------------------------------- */

Test(spy, count_output_file_and_filters)
{
	char out[600], text[8192], prefix[600], pid[32];
	FILE *f;
	int lines = 0;
	struct tu_proc w;
	char line[256];

	start_minispy(NULL);
	create_write(fsbox_path("a.txt"), "a");
	create_write(fsbox_path("b.txt"), "b");
	snprintf(out, sizeof(out), "%s/out.json", fsbox_dir);
	snprintf(prefix, sizeof(prefix), "%s/b", fsbox_mnt);
	cr_assert_eq(
		run_bin("fltport-spy",
			(const char *[]){ "--json", "--count", "2", "--op", "write,close_write",
					  "--path", prefix, "-o", out, NULL },
			NULL, 0),
		0);
	f = fopen(out, "re");
	cr_assert_not_null(f);
	while (fgets(text, sizeof(text), f)) {
		char v[600];

		lines++;
		cr_expect(jstr(text, "path", v, sizeof(v)) && strcmp(v, fsbox_path("b.txt")) == 0,
			  "%s", text);
		cr_expect(jstr(text, "op", v, sizeof(v)) &&
				  (strcmp(v, "write") == 0 || strcmp(v, "close-write") == 0),
			  "%s", text);
	}
	fclose(f);
	cr_expect_eq(lines, 2);

	/* --pid: another process's write only; the table. */
	w = tu_spawn("fp_filter_opener",
		     (const char *[]){ "write", fsbox_path("c.txt"), "c", NULL });
	cr_assert(tu_expect(&w, "WRITE err=0", line, sizeof(line), LINE_MS));
	snprintf(pid, sizeof(pid), "%ld", (long)w.pid);
	tu_wait(&w, LINE_MS);
	create_write(fsbox_path("d.txt"), "d");
	cr_assert_eq(
		run_bin("fltport-spy",
			(const char *[]){ "--pid", pid, "--op", "create", "--count", "1", NULL },
			text, sizeof(text)),
		0);
	cr_expect(strncmp(text, "TIME", 4) == 0, "a header first: %s", text);
	cr_expect(strstr(text, fsbox_path("c.txt")) && strstr(text, " create "), "%s", text);
	cr_expect(strstr(text, "SUCCESS"), "%s", text);
	cr_expect(!strstr(text, "d.txt"), "--pid shows only that process: %s", text);
}

Test(spy, stops_cleanly_and_filter_stops_cleanly)
{
	char line[512];

	start_minispy(NULL);
	spy = spawn_bin("fltport-spy", NULL);
	create_write(fsbox_path("x"), "x");
	cr_assert(expect_line(&spy, "TIME", NULL, line, sizeof(line), LINE_MS));
	cr_assert(expect_line(&spy, "", "/x", line, sizeof(line), LINE_MS));
	kill(spy.pid, SIGINT);
	cr_expect_eq(tu_wait(&spy, LINE_MS), 0, "SIGINT: clean exit");
	spy.pid = -1;
	cr_assert(tu_wait_until(no_reader, NULL, LINE_MS), "the first reader is still counted");
	/* A second reader is refused while one is connected (one, as minispy). */
	spy = spawn_bin("fltport-spy", NULL);
	cr_assert(tu_wait_until(one_reader, NULL, LINE_MS), "fltport-spy did not connect");
	cr_expect_eq(run_bin("fltport-spy", NULL, NULL, 0), 1, "a second reader");
	stop(&spy);
	kill(minispy.pid, SIGTERM);
	cr_expect(expect_line(&minispy, "STOPPING", NULL, line, sizeof(line), LINE_MS));
	cr_expect(expect_line(&minispy, "STATS", NULL, line, sizeof(line), LINE_MS));
	cr_expect_eq(tu_wait(&minispy, LINE_MS), 0);
	minispy.pid = -1;
}

/* ---- proto ------------------------------------------------------------- */

/* A record as a later version may send it: name "a", a block of 48 bytes
 * (8 more than this version's 40, filled with a pattern no name has), then
 * the new name "xy".  Readers once took the new name at x + 1, inside the
 * new fields. */
Test(proto, larger_ext_block_new_name_at_size)
{
	static uint64_t buf[64];
	char *p = (char *)buf;
	struct fltport_mspy_log_record h;
	struct fltport_mspy_ext x;
	const struct fltport_mspy_ext *got;
	const uint32_t name[2] = { 'a', 0 }, new_name[3] = { 'x', 'y', 0 };
	const size_t ext_off = sizeof(h) + sizeof(name), ext_size = 48;
	const size_t len = (ext_off + ext_size + sizeof(new_name) + 7) & ~(size_t)7;
	const uint32_t *u;

	cr_assert_eq(ext_off % 8, 0);
	memset(buf, 0, sizeof(buf));
	memset(&h, 0, sizeof(h));
	h.length = (uint32_t)len;
	h.sequence_number = 1;
	h.record_type = FLTPORT_MSPY_RECORD_TYPE_FLAG_FLTPORT_EXT;
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), name, sizeof(name));
	memset(&x, 0, sizeof(x));
	x.magic = FLTPORT_MSPY_EXT_MAGIC;
	x.size = (uint16_t)ext_size;
	x.op = FLTPORT_MSPY_OP_RENAME;
	x.new_name_len = 2;
	memcpy(p + ext_off, &x, sizeof(x));
	memset(p + ext_off + sizeof(x), 0xEE, ext_size - sizeof(x)); /* the later fields */
	memcpy(p + ext_off + ext_size, new_name, sizeof(new_name));

	got = fltport_mspy_ext_of(p, len);
	cr_assert_not_null(got, "a larger block is accepted");
	cr_assert_eq((const char *)got, p + ext_off);
	u = fltport_mspy_ext_new_name(got);
	cr_assert_eq((const char *)u, p + ext_off + ext_size, "the new name is at size");
	cr_expect_eq(u[0], 'x');
	cr_expect_eq(u[1], 'y');
	cr_expect_eq(u[2], 0);
	/* This version's block: right after it. */
	x.size = sizeof(x);
	memcpy(p + ext_off, &x, sizeof(x));
	memcpy(p + ext_off + sizeof(x), new_name, sizeof(new_name));
	got = fltport_mspy_ext_of(p, len);
	cr_assert_not_null(got);
	cr_expect_eq((const char *)fltport_mspy_ext_new_name(got), p + ext_off + sizeof(x));
	/* A size that would put the new name off its 4-byte alignment, or
	 * one whose new name runs past Length: refused. */
	x.size = sizeof(x) + 2;
	memcpy(p + ext_off, &x, sizeof(x));
	cr_expect_null(fltport_mspy_ext_of(p, len));
	x.size = (uint16_t)(len - ext_off);
	memcpy(p + ext_off, &x, sizeof(x));
	cr_expect_null(fltport_mspy_ext_of(p, len));
}

/* ---- cli --------------------------------------------------------------- */

Test(cli, version_help_usage)
{
	char text[4096];

	cr_expect_eq(run_bin("fltport-minispy", (const char *[]){ "--version", NULL }, text,
			     sizeof(text)),
		     0);
	cr_expect(strncmp(text, "fltport-minispy ", 16) == 0, "%s", text);
	cr_expect(strstr(text, "minispy 2.0"), "%s", text);
	cr_expect_eq(
		run_bin("fltport-minispy", (const char *[]){ "--help", NULL }, text, sizeof(text)),
		0);
	cr_expect(strstr(text, "--ring"), "%s", text);
	cr_expect_eq(run_bin("fltport-minispy", NULL, NULL, 0), 2, "no path");
	cr_expect_eq(
		run_bin("fltport-minispy", (const char *[]){ "--ring", "0", "/", NULL }, NULL, 0),
		2);
	cr_expect_eq(run_bin("fltport-minispy", (const char *[]){ "--ops", "open,fly", "/", NULL },
			     NULL, 0),
		     2);
	cr_expect_eq(
		run_bin("fltport-spy", (const char *[]){ "--version", NULL }, text, sizeof(text)),
		0);
	cr_expect(strncmp(text, "fltport-spy ", 12) == 0, "%s", text);
	cr_expect_eq(run_bin("fltport-spy", (const char *[]){ "--help", NULL }, text, sizeof(text)),
		     0);
	cr_expect(strstr(text, "--json"), "%s", text);
	cr_expect_eq(run_bin("fltport-spy", (const char *[]){ "--count", "x", NULL }, NULL, 0), 2);
	cr_expect_eq(run_bin("fltport-spy", (const char *[]){ "stray", NULL }, NULL, 0), 2);
	/* No filter running (a private FLTPORT_DIR): exit 1. */
	cr_expect_eq(run_bin("fltport-spy", NULL, NULL, 0), 1);
}
