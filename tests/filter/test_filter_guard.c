/*
 * The filter engine's guarantees (issue 7), one regression test per defect,
 * each seen failing before its fix.  Root, each test in its own mount
 * namespace on its own tmpfs (tests/filter/fsbox.h); openers are helper
 * processes (fp_filter_opener), never the filter's own pid.
 *
 *   scope.*   the kernel's mark is the scope: no path test to get past with
 *             a rename, a bind mount or a user namespace; submounts
 *   verdict.* a callback's return value the engine does not know denies
 *   cache.*   a writer during the scan leaves nothing cached; the lease is
 *             taken only while the filter caches
 *   budget.*  fd exhaustion never turns fail-open into a kernel deny
 *   fork.*    a forked child never keeps the fanotify group alive
 */
#ifdef FP_PLAIN
#include "plain_criterion.h"
#else
#include <criterion/criterion.h>
#endif

#include <limits.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "fsbox.h"

#define MS ((int64_t)1000000)

static atomic_int calls;
static atomic_int verdict = FLTPORT_ALLOW;
static atomic_int sleep_ms;

static int counting(void *cookie, const struct fltport_filter_event *ev)
{
	int ms = atomic_load(&sleep_ms);

	atomic_fetch_add(&calls, 1);
	if (ms)
		tu_sleep_ms(ms);
	return atomic_load(&verdict);
}

static fltport_filter *start(unsigned flags, const char *attach_rel)
{
	struct fltport_filter_config cfg = { .pre_open = counting };
	fltport_filter *f = fsbox_filter_create(&cfg);
	int rc;

	atomic_store(&calls, 0);
	rc = fltport_filter_attach_ex(f, fsbox_path(attach_rel), flags);
	cr_assert_eq(rc, 0, "attach: %s", strerror(-rc));
	return f;
}

TestSuite(scope, .init = fsbox_init, .fini = fsbox_fini);
TestSuite(verdict, .init = fsbox_init, .fini = fsbox_fini);
TestSuite(cache, .init = fsbox_init, .fini = fsbox_fini);
TestSuite(budget, .init = fsbox_init, .fini = fsbox_fini);
TestSuite(fork, .init = fsbox_init, .fini = fsbox_fini);

/* ---- scope ---------------------------------------------------------- */

/* Defect 1a: attached "below" a directory, a file elsewhere on the same
 * file system (where a rename can move it at any time) is still asked. */
Test(scope, whole_file_system_no_path_test, .timeout = 60)
{
	mkdir(fsbox_path("scoped"), 0755);
	mkdir(fsbox_path("elsewhere"), 0755);
	fsbox_write(fsbox_path("elsewhere/f"), "x", 0644);
	start(0, "scoped");
	cr_expect_eq(fsbox_opener("open", fsbox_path("elsewhere/f"), "OPEN"), 0);
	cr_expect_eq(atomic_load(&calls), 1, "a file outside the attach path was not asked");
	/* Moved into and out of the attach path: asked both times. */
	cr_assert_eq(rename(fsbox_path("elsewhere/f"), fsbox_path("scoped/f")), 0);
	atomic_store(&verdict, -EPERM);
	cr_expect_eq(fsbox_opener("open", fsbox_path("scoped/f"), "OPEN"), EPERM);
	cr_assert_eq(rename(fsbox_path("scoped/f"), fsbox_path("elsewhere/f")), 0);
	cr_expect_eq(fsbox_opener("open", fsbox_path("elsewhere/f"), "OPEN"), EPERM);
	cr_expect_eq(atomic_load(&calls), 3);
}

/* An open from a new user + mount namespace: err, or -1 if this kernel
 * does not let an unprivileged process make one. */
static int userns_open(const char *path)
{
	struct tu_proc p =
		tu_spawn("fp_filter_opener", (const char *[]){ "userns-open", path, NULL });
	char line[256];
	int err = -1;

	cr_assert(tu_read_line(&p, line, sizeof(line), 30000), "no line from userns-open");
	if (strncmp(line, "OPEN ", 5) == 0)
		cr_assert_eq(sscanf(line, "OPEN err=%d", &err), 1, "%s", line);
	tu_wait(&p, FSBOX_LINE_MS);
	return err;
}

/* Defect 1b: the same file through a bind mount, and from an unprivileged
 * user + mount namespace, reaches the callback. */
Test(scope, bind_mount_and_user_namespace_are_asked, .timeout = 60)
{
	char bind[512];
	int err;

	snprintf(bind, sizeof(bind), "%s/bind", fsbox_dir);
	cr_assert_eq(mkdir(bind, 0755), 0);
	mkdir(fsbox_path("scoped"), 0755);
	fsbox_write(fsbox_path("scoped/f"), "x", 0644);
	cr_assert_eq(mount(fsbox_path("scoped"), bind, NULL, MS_BIND, NULL), 0, "bind: %s",
		     strerror(errno));
	atomic_store(&verdict, -EPERM);
	start(0, "scoped");
	strcat(bind, "/f");
	cr_expect_eq(fsbox_opener("open", bind, "OPEN"), EPERM, "bind mount got past the filter");
	err = userns_open(fsbox_path("scoped/f"));
	if (err != -1) {
		cr_expect_eq(err, EPERM, "a user namespace got past the filter (err %d)", err);
		cr_expect_eq(atomic_load(&calls), 2);
	} else {
		cr_log_info("no unprivileged user namespaces here: that part skipped");
		cr_expect_eq(atomic_load(&calls), 1);
	}
	*strrchr(bind, '/') = '\0';
	umount2(bind, MNT_DETACH);
	rmdir(bind);
}

/* Defect 1c: a file system mounted under an attached path — there before
 * the attach, and mounted after it — is filtered with SUBMOUNTS. */
Test(scope, submounts_now_and_later, .timeout = 60)
{
	fltport_filter *f;
	struct fltport_filter_stats st;

	mkdir(fsbox_path("top"), 0755);
	mkdir(fsbox_path("top/before"), 0755);
	mkdir(fsbox_path("top/after"), 0755);
	cr_assert_eq(mount("sub1", fsbox_path("top/before"), "tmpfs", 0, "size=1m"), 0);
	fsbox_write(fsbox_path("top/before/f"), "x", 0644);
	atomic_store(&verdict, -EPERM);
	f = start(FLTPORT_ATTACH_SUBMOUNTS, "top");
	cr_expect_eq(fsbox_opener("open", fsbox_path("top/before/f"), "OPEN"), EPERM);
	cr_assert_eq(mount("sub2", fsbox_path("top/after"), "tmpfs", 0, "size=1m"), 0);
	fsbox_write(fsbox_path("top/after/f"), "x", 0644);
	/* The watcher attaches it within milliseconds; allow a generous bound. */
	for (int i = 0; i < 200; i++) {
		fltport_filter_stats(f, &st);
		if (st.submounts >= 2)
			break;
		tu_sleep_ms(10);
	}
	cr_expect_eq(st.submounts, 2);
	cr_expect_eq(fsbox_opener("open", fsbox_path("top/after/f"), "OPEN"), EPERM);
	cr_expect_eq(atomic_load(&calls), 2);
	umount2(fsbox_path("top/before"), MNT_DETACH);
	umount2(fsbox_path("top/after"), MNT_DETACH);
}

/* FLTPORT_ATTACH_MOUNT: only that mount; the same files through a bind
 * mount are not filtered (what the flag is for, and documented). */
Test(scope, one_mount_only, .timeout = 60)
{
	char bind[512];

	snprintf(bind, sizeof(bind), "%s/bind", fsbox_dir);
	cr_assert_eq(mkdir(bind, 0755), 0);
	fsbox_write(fsbox_path("f"), "x", 0644);
	cr_assert_eq(mount(fsbox_mnt, bind, NULL, MS_BIND, NULL), 0);
	atomic_store(&verdict, -EPERM);
	start(FLTPORT_ATTACH_MOUNT, ".");
	cr_expect_eq(fsbox_opener("open", fsbox_path("f"), "OPEN"), EPERM);
	strcat(bind, "/f");
	cr_expect_eq(fsbox_opener("open", bind, "OPEN"), 0);
	cr_expect_eq(atomic_load(&calls), 1);
	*strrchr(bind, '/') = '\0';
	umount2(bind, MNT_DETACH);
	rmdir(bind);
}

/* ---- verdicts ------------------------------------------------------- */

/* Defect 5: a return value that is neither an allow nor -1..-255 denies. */
Test(verdict, unknown_values_deny, .timeout = 60)
{
	static const int values[] = { 2, 3, 42, INT_MAX, -256, INT_MIN };

	fsbox_write(fsbox_path("f"), "x", 0644);
	start(0, ".");
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		atomic_store(&verdict, values[i]);
		cr_expect_eq(fsbox_opener("open", fsbox_path("f"), "OPEN"), EPERM,
			     "callback returned %d", values[i]);
	}
	atomic_store(&verdict, FLTPORT_ALLOW);
	cr_expect_eq(fsbox_opener("open", fsbox_path("f"), "OPEN"), 0);
}

/* ---- cache ---------------------------------------------------------- */

/* Defect 2: while someone has the file open for writing (an overwrite in
 * progress), an allow is not cached: the next open is asked again. */
Test(cache, writer_during_scan_caches_nothing, .timeout = 60)
{
	struct fltport_filter_stats st;
	fltport_filter *f;
	int w;

	fsbox_write(fsbox_path("f"), "clean", 0644);
	atomic_store(&verdict, FLTPORT_ALLOW_CACHE);
	f = start(0, ".");
	/* Our own open for writing: the filter's own events are not asked. */
	w = open(fsbox_path("f"), O_WRONLY | O_CLOEXEC);
	cr_assert_geq(w, 0);
	cr_expect_eq(fsbox_opener("open", fsbox_path("f"), "OPEN"), 0);
	cr_expect_eq(fsbox_opener("open", fsbox_path("f"), "OPEN"), 0);
	cr_expect_eq(atomic_load(&calls), 2, "a verdict was cached while a writer had the file");
	fltport_filter_stats(f, &st);
	cr_expect_eq(st.cached, 0);
	/* The writer gone, the next allow is cached: asked once more only. */
	close(w);
	cr_expect_eq(fsbox_opener("open", fsbox_path("f"), "OPEN"), 0);
	cr_expect_eq(fsbox_opener("open", fsbox_path("f"), "OPEN"), 0);
	cr_expect_eq(atomic_load(&calls), 3);
	fltport_filter_stats(f, &st);
	cr_expect_eq(st.cached, 1);
}

static sem_t scan_entered;
static atomic_int first_scan;

static int slow_first_scan(void *cookie, const struct fltport_filter_event *ev)
{
	atomic_fetch_add(&calls, 1);
	if (atomic_exchange(&first_scan, 0)) {
		sem_post(&scan_entered);
		tu_sleep_ms(300); /* the writer arrives while we scan */
	}
	return FLTPORT_ALLOW_CACHE;
}

/* A writer that opens the file during a scan breaks the scan's read lease.
 * The kernel signals the lease's owner on a break (SIGIO by default, which
 * kills): the filter process must survive it, and cache nothing. */
Test(cache, writer_breaking_the_lease_kills_nothing, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = slow_first_scan };
	struct fltport_filter_stats st;
	struct tu_proc r, w;
	char line[256];
	fltport_filter *f;

	fsbox_write(fsbox_path("f"), "clean", 0644);
	sem_init(&scan_entered, 0, 0);
	atomic_store(&first_scan, 1);
	f = fsbox_filter_create(&cfg);
	cr_assert_eq(fltport_filter_attach(f, fsbox_mnt), 0);
	r = tu_spawn("fp_filter_opener", (const char *[]){ "open", fsbox_path("f"), NULL });
	cr_assert_eq(sem_wait(&scan_entered), 0);
	w = tu_spawn("fp_filter_opener", (const char *[]){ "write", fsbox_path("f"), "x", NULL });
	cr_assert(tu_expect(&r, "OPEN err=0", line, sizeof(line), 30000), "reader: %s", line);
	cr_assert(tu_expect(&w, "WRITE err=0", line, sizeof(line), 30000), "writer: %s", line);
	tu_wait(&r, FSBOX_LINE_MS);
	tu_wait(&w, FSBOX_LINE_MS);
	cr_expect(tu_wait_until(fsbox_quiet, f, 10000));
	fltport_filter_stats(f, &st);
	/* The writer's own open may be cached (nobody wrote during its scan);
	 * the reader's scan overlapped a writer: at most one allow cached. */
	cr_expect_leq(st.cached, 1);
	cr_expect_eq(st.seen, 2);
	cr_expect_eq(st.denied, 0);
}

static atomic_int kept_fd = -1;

/* A callback that keeps a copy of the event's fd, as a service that was
 * sent it and has not closed it yet does, and allows without caching. */
static int keep_a_copy(void *cookie, const struct fltport_filter_event *ev)
{
	int copy = -1;

	atomic_fetch_add(&calls, 1);
	if (atomic_load(&kept_fd) < 0 && (copy = fcntl(ev->fd, F_DUPFD_CLOEXEC, 0)) >= 0)
		atomic_store(&kept_fd, copy);
	return FLTPORT_ALLOW;
}

/* The scan's read lease is dropped before the answer whatever the verdict:
 * a copy of the event's fd held elsewhere (a service, a callback) shares
 * the lease, and a writer would otherwise wait for it up to the kernel's
 * lease-break-time (45 s by default) after the allow. */
Test(cache, a_kept_copy_of_the_fd_holds_no_writer_up, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = keep_a_copy };
	struct tu_proc w;
	char line[256];
	fltport_filter *f;
	int kept;

	fsbox_write(fsbox_path("f"), "clean", 0644);
	atomic_store(&kept_fd, -1);
	atomic_store(&calls, 0);
	f = fsbox_filter_create(&cfg);
	cr_assert_eq(fltport_filter_attach(f, fsbox_mnt), 0);
	cr_assert_eq(fsbox_opener("open", fsbox_path("f"), "OPEN"), 0);
	kept = atomic_load(&kept_fd);
	cr_assert_geq(kept, 0, "the callback kept no copy");
	w = tu_spawn("fp_filter_opener", (const char *[]){ "write", fsbox_path("f"), "x", NULL });
	cr_assert(tu_expect(&w, "WRITE err=0", line, sizeof(line), 10000),
		  "a writer waited for a lease the allowed open left behind: %s", line);
	tu_wait(&w, FSBOX_LINE_MS);
	close(kept);
	cr_expect(tu_wait_until(fsbox_quiet, f, 10000));
}

/* Whether this process holds a lease on the file `fd` is open on. */
static bool holds_lease(int fd)
{
	char path[64], line[256];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strncmp(line, "lock:", 5) == 0 && strstr(line, "LEASE");
	fclose(f);
	return found;
}

static atomic_int leased_calls;
static atomic_int cache_from; /* calls from this one on return ALLOW_CACHE */

static int lease_watch(void *cookie, const struct fltport_filter_event *ev)
{
	int n = atomic_fetch_add(&calls, 1);

	(void)cookie;
	if (holds_lease(ev->fd))
		atomic_fetch_add(&leased_calls, 1);
	return n >= atomic_load(&cache_from) ? FLTPORT_ALLOW_CACHE : FLTPORT_ALLOW;
}

static void open_loop(const char *path, int n)
{
	char count[16], line[256];
	struct tu_proc p;
	long ok = -1;

	snprintf(count, sizeof(count), "%d", n);
	p = tu_spawn("fp_filter_opener", (const char *[]){ "loop", path, count, NULL });
	cr_assert(tu_expect(&p, "LOOP", line, sizeof(line), FSBOX_LINE_MS));
	cr_assert_eq(sscanf(line, "LOOP ok=%ld", &ok), 1);
	cr_assert_eq(ok, n, "%s", line);
	tu_wait(&p, FSBOX_LINE_MS);
}

/* A filter whose callbacks never return FLTPORT_ALLOW_CACHE stops taking
 * the scan's lease after 64 decisions; the first FLTPORT_ALLOW_CACHE after
 * that is allowed but not cached (no lease proved the scan current), and
 * from the next event on the lease is taken and the allow cached. */
Test(cache, lease_only_while_the_filter_caches, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = lease_watch };
	struct fltport_filter_stats st;
	fltport_filter *f;

	fsbox_write(fsbox_path("f"), "clean", 0644);
	atomic_store(&calls, 0);
	atomic_store(&leased_calls, 0);
	atomic_store(&cache_from, 100);
	f = fsbox_filter_create(&cfg);
	cr_assert_eq(fltport_filter_attach(f, fsbox_mnt), 0);
	open_loop(fsbox_path("f"), 100);
	cr_expect_eq(atomic_load(&calls), 100);
	cr_expect_eq(atomic_load(&leased_calls), 64, "leased %d of 100 plain allows",
		     atomic_load(&leased_calls));
	open_loop(fsbox_path("f"), 1); /* ALLOW_CACHE, without a lease */
	cr_expect(tu_wait_until(fsbox_quiet, f, 10000));
	fltport_filter_stats(f, &st);
	cr_expect_eq(st.cached, 0);
	cr_expect_eq(atomic_load(&leased_calls), 64);
	open_loop(fsbox_path("f"), 5); /* leased again: cached at the first */
	cr_expect_eq(atomic_load(&calls), 102);
	cr_expect_eq(atomic_load(&leased_calls), 65);
	cr_expect(tu_wait_until(fsbox_quiet, f, 10000));
	fltport_filter_stats(f, &st);
	cr_expect_eq(st.cached, 1);
}

/* A filter that caches from its first decision takes the lease every
 * time: its first allow of each file is cached. */
Test(cache, a_caching_filter_keeps_leasing, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = lease_watch };
	struct fltport_filter_stats st;
	char name[16];
	fltport_filter *f;

	for (int i = 0; i < 80; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		fsbox_write(fsbox_path(name), "clean", 0644);
	}
	atomic_store(&calls, 0);
	atomic_store(&leased_calls, 0);
	atomic_store(&cache_from, 0);
	f = fsbox_filter_create(&cfg);
	cr_assert_eq(fltport_filter_attach(f, fsbox_mnt), 0);
	for (int i = 0; i < 80; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		open_loop(fsbox_path(name), 2);
	}
	cr_expect_eq(atomic_load(&calls), 80, "each file asked once");
	cr_expect_eq(atomic_load(&leased_calls), 80);
	cr_expect(tu_wait_until(fsbox_quiet, f, 10000));
	fltport_filter_stats(f, &st);
	cr_expect_eq(st.cached, 80);
}

/* ---- fd budget ------------------------------------------------------ */

/* Defect 3: RLIMIT_NOFILE 1024 (soft and hard, systemd's default), a
 * callback that takes 300 ms and 1,500 concurrent opens under fail-open:
 * every open is allowed; the counters add up. */
Test(budget, fd_exhaustion_never_denies_under_fail_open, .timeout = 300)
{
	struct fltport_filter_config cfg = { .pre_open = counting, .deadline_ns = 1000 * MS };
	struct rlimit rl = { .rlim_cur = 1024, .rlim_max = 1024 };
	struct fltport_filter_stats st;
	struct tu_proc p;
	fltport_filter *f;
	char line[256];
	long ok = -1, eperm = -1, other = -1;

	char gate[512];
	int g = -1;

	struct rlimit big;

	fsbox_write(fsbox_path("f"), "x", 0644);
	/* The openers start first, gated: they keep this process's limit (the
	 * 1,500 opens each hold an fd of theirs while they wait), and only the
	 * filter gets 1024.  Room for them whatever limit the test was started
	 * with (a shell's `ulimit -n 1024` sets the hard limit too; raising
	 * it takes CAP_SYS_RESOURCE). */
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &big), 0);
	if (big.rlim_cur < 2048) {
		big.rlim_cur = 2048;
		if (big.rlim_max < big.rlim_cur)
			big.rlim_max = big.rlim_cur;
		if (setrlimit(RLIMIT_NOFILE, &big) != 0)
			cr_skip_test("the 1,500 openers need RLIMIT_NOFILE 2048, and this "
				     "process may not raise its limit to that (%s)",
				     strerror(errno));
	}
	snprintf(gate, sizeof(gate), "%s/gate", fsbox_dir);
	cr_assert_eq(mkfifo(gate, 0600), 0);
	p = tu_spawn("fp_filter_opener",
		     (const char *[]){ "gate", gate, "concurrent", fsbox_path("f"), "1500", NULL });
	cr_assert(tu_expect(&p, "GATED", line, sizeof(line), FSBOX_LINE_MS));
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	atomic_store(&sleep_ms, 300);
	f = fsbox_filter_create(&cfg);
	cr_assert_eq(fltport_filter_attach(f, fsbox_mnt), 0);
	for (int i = 0; i < 1000 && g < 0; i++) {
		g = open(gate, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (g < 0)
			tu_sleep_ms(10);
	}
	cr_assert_geq(g, 0, "gate: %s", strerror(errno));
	cr_assert_eq(write(g, "g", 1), 1);
	close(g);
	cr_assert(tu_expect(&p, "CONC", line, sizeof(line), 240000), "the openers hung");
	cr_assert_eq(sscanf(line, "CONC ok=%ld eperm=%ld other=%ld", &ok, &eperm, &other), 3, "%s",
		     line);
	cr_assert_eq(tu_wait(&p, FSBOX_LINE_MS), 0);
	cr_expect_eq(ok, 1500, "%s", line);
	cr_expect_eq(eperm, 0, "%s", line);
	cr_expect(tu_wait_until(fsbox_quiet, f, 30000), "events left unanswered");
	fltport_filter_stats(f, &st);
	cr_expect_eq(st.kernel_denied, 0);
	cr_expect_eq(st.denied, 0);
	cr_expect_eq(st.seen, st.allowed + st.denied);
	cr_expect_eq(st.seen, 1500);
	cr_expect_leq(st.timed_out + st.overflowed, st.allowed);
	cr_expect_gt(st.max_in_flight, 0);
	cr_expect_lt(st.max_in_flight, 1024);
}

/* ---- fork ----------------------------------------------------------- */

/* Defect 4: a callback forks a child that never execs; the filter process
 * is SIGKILLed: opens on the file system do not hang while the child
 * lives. */
Test(fork, child_does_not_keep_the_group, .timeout = 120)
{
	struct tu_proc engine;
	char line[256];
	long child;
	struct tu_proc o;

	fsbox_write(fsbox_path("f"), "x", 0644);
	engine = tu_spawn("fp_fork_peer", (const char *[]){ "engine", fsbox_mnt, NULL });
	cr_assert(tu_expect(&engine, "ENGINE_READY", line, sizeof(line), 20000));
	cr_expect_eq(fsbox_opener("open", fsbox_path("f"), "OPEN"), 0);
	cr_assert(tu_expect(&engine, "CHILD ", line, sizeof(line), 20000));
	child = tu_field_num(line, "pid");
	tu_kill(&engine, SIGKILL);
	o = tu_spawn("fp_filter_opener", (const char *[]){ "open", fsbox_path("f"), NULL });
	cr_expect(tu_expect(&o, "OPEN", line, sizeof(line), 20000),
		  "an open hangs: the forked child keeps the dead filter's group alive");
	kill((pid_t)child, SIGKILL);
	tu_wait(&o, FSBOX_LINE_MS);
}
