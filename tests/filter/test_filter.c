/*
 * The fanotify filter engine (include/fltport/filter.h), as root, each
 * test on a private file system it mounts itself inside its own mount
 * namespace (tmpfs; an ext4 image on a loop device for pre-content), and
 * marking only that file system: a stuck listener can never stall the
 * machine.  The test process is the filter; openers and services are
 * helper processes (tests/helpers/fp_filter_opener.c, fp_filter_service.c)
 * so they are not the filter's own, always-trusted, pid.
 *
 *   filter.*  deny by content, allow others, scope, exec, custom errno,
 *             pre-content, post-operation notifications, trust, the
 *             service reading the event fd without raising events
 *   cache.*   the verdict cache in the kernel
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fltport/filter.h>
#include <fltport/port.h>

#include "testutil.h"

#define MS ((int64_t)1000000)

#define LINE_MS 10000 /* bound on one helper line */
#define NOBODY 65534

/* ------------------------------------------------------------------ */
/* Sandbox: a private mount namespace and file system                  */
/* ------------------------------------------------------------------ */

static const char *sandbox_dir; /* holds mnt, ext4_mnt and the gate fifo */
static char mnt[128];           /* the tmpfs */
static char ext4_mnt[128];      /* the ext4 image, if mounted */
/* Only the main thread writes F, under F_lock; svc_connect (a server
 * thread) reads it under F_lock.  The main thread reads it freely. */
static fltport_filter *F;
static pthread_mutex_t F_lock = PTHREAD_MUTEX_INITIALIZER;

static void set_filter(fltport_filter *f)
{
	pthread_mutex_lock(&F_lock);
	F = f;
	pthread_mutex_unlock(&F_lock);
}

/* Unpublish F (NULL if none) before destroying it. */
static fltport_filter *take_filter(void)
{
	fltport_filter *f;

	pthread_mutex_lock(&F_lock);
	f = F;
	F = NULL;
	pthread_mutex_unlock(&F_lock);
	return f;
}

static void sandbox(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root: fanotify permission events and mounts");
	/* Before the namespace: its cleanup watcher stays outside it. */
	sandbox_dir = tu_temp_dir("fltport-fs");
	snprintf(mnt, sizeof(mnt), "%s/fs", sandbox_dir);
	cr_assert_eq(mkdir(mnt, 0755), 0, "mkdir %s: %s", mnt, strerror(errno));
	/* Before any thread exists: the namespace is per thread. */
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL), 0, "rprivate: %s",
		     strerror(errno));
	cr_assert_eq(mount("fltport-test", mnt, "tmpfs", 0, "size=64m,mode=0755"), 0,
		     "mount tmpfs: %s", strerror(errno));
}

static void sandbox_fini(void)
{
	fltport_filter *f = take_filter();

	if (f)
		fltport_filter_destroy(f);
	if (ext4_mnt[0]) {
		umount2(ext4_mnt, MNT_DETACH);
		rmdir(ext4_mnt);
	}
	if (mnt[0]) {
		umount2(mnt, MNT_DETACH);
		rmdir(mnt);
	}
}

static const char *in_mnt(const char *rel)
{
	static char bufs[8][512];
	static unsigned n;
	char *b = bufs[n++ % 8];

	snprintf(b, 512, "%s/%s", mnt, rel);
	return b;
}

static void write_file(const char *path, const char *content, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	cr_assert_geq(fd, 0, "create %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	ssize_t n;

	cr_assert(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		cr_assert_eq(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

/* Run a helper command and return the err= of its first result line. */
static int opener_err(const char *cmd, const char *path, const char *prefix, double *ms)
{
	const char *args[] = { cmd, path, NULL };
	struct tu_proc p = tu_spawn("fp_filter_opener", args);
	char line[256];
	int err = -1;
	double t = 0;

	cr_assert(tu_expect(&p, prefix, line, sizeof(line), LINE_MS), "no %s line", prefix);
	cr_assert_eq(sscanf(line + strlen(prefix), " err=%d ms=%lf", &err, &t), 2, "%s", line);
	cr_assert_eq(tu_wait(&p, LINE_MS), 0);
	if (ms)
		*ms = t;
	return err;
}

/* READ open=<e> read=<e> data=<d> */
static void opener_read(const char *path, int *eo, int *er, char *data, size_t n)
{
	const char *args[] = { "read", path, NULL };
	struct tu_proc p = tu_spawn("fp_filter_opener", args);
	char line[256], d[64] = "";

	cr_assert(tu_expect(&p, "READ", line, sizeof(line), LINE_MS));
	cr_assert_geq(sscanf(line, "READ open=%d read=%d data=%63s", eo, er, d), 2, "%s", line);
	if (strncmp(d, "ms=", 3) == 0)
		d[0] = '\0';
	snprintf(data, n, "%s", d);
	cr_assert_eq(tu_wait(&p, LINE_MS), 0);
}

/* ------------------------------------------------------------------ */
/* In-process decisions                                                 */
/* ------------------------------------------------------------------ */

/* The last event a callback saw. */
struct last_event {
	int op;
	pid_t pid;
	uid_t uid;
	char exe[512];
	char path[512];
};

/* Callbacks run on the filter's worker threads: everything here but the
 * atomics is read and written under D.lock, by the test thread too
 * (last_seen(), set_deny_errno(), set_deny_name()). */
static struct {
	pthread_mutex_t lock;
	atomic_int calls;
	int deny_errno; /* errno for "EVIL" content */
	struct last_event last;
	char deny_name[64];           /* pre_exec: deny this file name */
	atomic_int self_events;       /* events whose pid is ours (must be 0) */
	atomic_int accessor_mismatch; /* eager events whose accessors disagree (must be 0) */
} D = { .lock = PTHREAD_MUTEX_INITIALIZER, .deny_errno = EPERM };

static struct last_event last_seen(void)
{
	struct last_event e;

	pthread_mutex_lock(&D.lock);
	e = D.last;
	pthread_mutex_unlock(&D.lock);
	return e;
}

static void set_deny_errno(int e)
{
	pthread_mutex_lock(&D.lock);
	D.deny_errno = e;
	pthread_mutex_unlock(&D.lock);
}

static void set_deny_name(const char *name)
{
	pthread_mutex_lock(&D.lock);
	snprintf(D.deny_name, sizeof(D.deny_name), "%s", name);
	pthread_mutex_unlock(&D.lock);
}

static bool content_is_evil(int fd)
{
	char buf[256];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "EVIL") != NULL;
}

static void remember(const struct fltport_filter_event *ev)
{
	uid_t uid;
	const char *exe;

	/* Without FLTPORT_FILTER_LAZY_INFO the accessors give the fields. */
	if (fltport_filter_event_path(ev) != ev->path ||
	    fltport_filter_event_identity(ev, &uid, NULL, &exe) != 0 || uid != ev->uid ||
	    exe != ev->exe)
		atomic_fetch_add(&D.accessor_mismatch, 1);
	pthread_mutex_lock(&D.lock);
	D.last.op = ev->op;
	D.last.pid = ev->pid;
	D.last.uid = ev->uid;
	snprintf(D.last.exe, sizeof(D.last.exe), "%s", ev->exe);
	snprintf(D.last.path, sizeof(D.last.path), "%s", ev->path);
	pthread_mutex_unlock(&D.lock);
	if (ev->pid == getpid())
		atomic_fetch_add(&D.self_events, 1);
	atomic_fetch_add(&D.calls, 1);
}

static int by_content(void *cookie, const struct fltport_filter_event *ev)
{
	int deny_errno;

	remember(ev);
	pthread_mutex_lock(&D.lock);
	deny_errno = D.deny_errno;
	pthread_mutex_unlock(&D.lock);
	return content_is_evil(ev->fd) ? -deny_errno : FLTPORT_ALLOW;
}

static int by_name(void *cookie, const struct fltport_filter_event *ev)
{
	const char *base = strrchr(ev->path, '/');
	bool deny;

	remember(ev);
	pthread_mutex_lock(&D.lock);
	deny = base && strcmp(base + 1, D.deny_name) == 0;
	pthread_mutex_unlock(&D.lock);
	return deny ? -EPERM : FLTPORT_ALLOW;
}

/* Counters follow the answers ("reply first, count after"): wait until
 * every event read has been counted before comparing them. */
static bool quiet(void *arg)
{
	struct fltport_filter_stats st;

	fltport_filter_stats(arg, &st);
	return st.in_flight == 0 && st.seen == st.allowed + st.denied;
}

static void stats_when_quiet(fltport_filter *f, struct fltport_filter_stats *st)
{
	cr_expect(tu_wait_until(quiet, f, 10000), "events left unanswered");
	fltport_filter_stats(f, st);
}

static fltport_filter *make_filter(struct fltport_filter_config *cfg)
{
	fltport_filter *f = NULL;
	int rc = fltport_filter_create(cfg, &f);

	cr_assert_eq(rc, 0, "fltport_filter_create: %s", strerror(-rc));
	set_filter(f);
	return f;
}

TestSuite(filter, .init = sandbox, .fini = sandbox_fini);
TestSuite(cache, .init = sandbox, .fini = sandbox_fini);

Test(filter, deny_by_content_allow_others_and_scope, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = by_content };
	struct fltport_filter_stats st;
	struct last_event last;
	fltport_filter *f;
	int fd;

	mkdir(in_mnt("w"), 0755);
	mkdir(in_mnt("outside"), 0755);
	write_file(in_mnt("w/evil.txt"), "this is EVIL content", 0644);
	write_file(in_mnt("w/clean.txt"), "clean", 0644);
	write_file(in_mnt("outside/evil.txt"), "EVIL elsewhere on the same fs", 0644);
	f = make_filter(&cfg);
	cr_assert_eq(fltport_filter_attach(f, in_mnt("w")), 0);

	cr_expect_eq(opener_err("open", in_mnt("w/evil.txt"), "OPEN", NULL), EPERM);
	last = last_seen();
	cr_expect_eq(last.uid, 0);
	cr_expect_str_eq(last.path, in_mnt("w/evil.txt"));
	cr_expect(strstr(last.exe, "fp_filter_opener") != NULL, "exe %s", last.exe);
	cr_expect_neq(last.pid, getpid());
	cr_expect_eq(opener_err("open", in_mnt("w/clean.txt"), "OPEN", NULL), 0);
	/* Same file system, outside the attached path: decided all the same
	 * (the scope is the file system, never a path: filter.h). */
	cr_expect_eq(opener_err("open", in_mnt("outside/evil.txt"), "OPEN", NULL), EPERM);
	/* The filter's own opens are allowed without a callback. */
	fd = open(in_mnt("w/evil.txt"), O_RDONLY | O_CLOEXEC);
	cr_expect_geq(fd, 0);
	close(fd);
	cr_expect_eq(atomic_load(&D.self_events), 0);
	cr_expect_eq(atomic_load(&D.accessor_mismatch), 0);

	stats_when_quiet(f, &st);
	cr_expect_eq(st.denied, 2);
	cr_expect_geq(st.fast, 1); /* own */
	cr_expect_eq(st.seen, st.allowed + st.denied);
	cr_expect_eq(st.in_flight, 0);
	cr_expect_eq(st.answer_errors, 0);
	cr_expect_eq(atomic_load(&D.calls), 3);
}

/* FLTPORT_FILTER_LAZY_INFO: nothing worked out before the callback; the
 * accessors work it out once, and say what the eager event would have. */
static int lazy_cb(void *cookie, const struct fltport_filter_event *ev)
{
	const char *path, *exe, *exe2;
	uid_t uid;
	gid_t gid;
	int rc;

	(void)cookie;
	if (ev->path || ev->exe || ev->uid != (uid_t)-1 || ev->gid != (gid_t)-1)
		atomic_fetch_add(&D.accessor_mismatch, 1); /* worked out eagerly */
	path = fltport_filter_event_path(ev);
	if (fltport_filter_event_path(ev) != path) /* once per event */
		atomic_fetch_add(&D.accessor_mismatch, 1);
	rc = fltport_filter_event_identity(ev, &uid, &gid, &exe);
	if (rc != 0 || fltport_filter_event_identity(ev, NULL, NULL, &exe2) != 0 || exe2 != exe)
		atomic_fetch_add(&D.accessor_mismatch, 1);
	pthread_mutex_lock(&D.lock);
	D.last.op = ev->op;
	D.last.pid = ev->pid;
	D.last.uid = uid;
	snprintf(D.last.exe, sizeof(D.last.exe), "%s", exe);
	snprintf(D.last.path, sizeof(D.last.path), "%s", path);
	pthread_mutex_unlock(&D.lock);
	atomic_fetch_add(&D.calls, 1);
	return content_is_evil(ev->fd) ? -EPERM : FLTPORT_ALLOW;
}

Test(filter, lazy_info_on_demand, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = lazy_cb,
					     .flags = FLTPORT_FILTER_LAZY_INFO };
	struct fltport_filter_stats st;
	struct last_event last;
	fltport_filter *f;

	write_file(in_mnt("lazy-evil.txt"), "EVIL", 0644);
	write_file(in_mnt("lazy-clean.txt"), "clean", 0644);
	f = make_filter(&cfg);
	cr_assert_eq(fltport_filter_attach(f, in_mnt("")), 0);
	cr_expect_eq(opener_err("open", in_mnt("lazy-evil.txt"), "OPEN", NULL), EPERM);
	last = last_seen();
	cr_expect_str_eq(last.path, in_mnt("lazy-evil.txt"));
	cr_expect_eq(last.uid, 0);
	cr_expect(strstr(last.exe, "fp_filter_opener") != NULL, "exe %s", last.exe);
	cr_expect_eq(opener_err("open", in_mnt("lazy-clean.txt"), "OPEN", NULL), 0);
	last = last_seen();
	cr_expect_str_eq(last.path, in_mnt("lazy-clean.txt"));
	cr_expect_eq(atomic_load(&D.accessor_mismatch), 0);
	cr_expect_eq(atomic_load(&D.calls), 2);
	cr_expect_null(fltport_filter_event_path(NULL));
	cr_expect_eq(fltport_filter_event_identity(NULL, NULL, NULL, NULL), -EINVAL);
	stats_when_quiet(f, &st);
	cr_expect_eq(st.denied, 1);
	cr_expect_eq(st.allowed, 1);
}

Test(filter, exec_denial, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_exec = by_name };
	const char *args[] = { "exec", NULL, "EXECUTED", NULL };
	struct tu_proc p;
	char line[256];
	int err = -1;

	mkdir(in_mnt("w"), 0755);
	copy_file("/bin/echo", in_mnt("w/prog_bad"));
	copy_file("/bin/echo", in_mnt("w/prog_ok"));
	set_deny_name("prog_bad");
	cr_assert_eq(fltport_filter_attach(make_filter(&cfg), in_mnt("w")), 0);

	args[1] = in_mnt("w/prog_bad");
	p = tu_spawn("fp_filter_opener", args);
	cr_assert(tu_expect(&p, "EXEC", line, sizeof(line), LINE_MS));
	cr_assert_eq(sscanf(line, "EXEC err=%d", &err), 1);
	cr_expect_eq(err, EPERM);
	cr_expect_eq(last_seen().op, FLTPORT_OP_EXEC);
	tu_wait(&p, LINE_MS);

	args[1] = in_mnt("w/prog_ok");
	p = tu_spawn("fp_filter_opener", args);
	cr_expect(tu_expect(&p, "EXECUTED", line, sizeof(line), LINE_MS), "exec of a clean file");
	cr_expect_eq(tu_wait(&p, LINE_MS), 0);
}

Test(filter, custom_errno, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = by_content };
	fltport_filter *f;

	mkdir(in_mnt("w"), 0755);
	write_file(in_mnt("w/evil.txt"), "EVIL", 0644);
	f = make_filter(&cfg);
	if (!fltport_filter_errno_supported(f, EBUSY))
		cr_skip_test(
			"kernel has no FAN_DENY_ERRNO (needs 6.14 and a pre-content class group)");
	cr_expect(fltport_filter_features(f) & FLTPORT_FILTER_HAVE_DENY_ERRNO);
	cr_expect(fltport_filter_errno_supported(f, EIO));
	cr_expect(!fltport_filter_errno_supported(f, ENOENT), "the kernel refuses ENOENT");
	cr_assert_eq(fltport_filter_attach(f, in_mnt("w")), 0);

	set_deny_errno(EBUSY);
	cr_expect_eq(opener_err("open", in_mnt("w/evil.txt"), "OPEN", NULL), EBUSY);
	/* An errno the kernel refuses falls back to EPERM, still answered. */
	set_deny_errno(ENOENT);
	cr_expect_eq(opener_err("open", in_mnt("w/evil.txt"), "OPEN", NULL), EPERM);
}

Test(filter, not_root_is_eperm, .timeout = 30)
{
	const char *args[] = { "create-as", "65534", NULL };
	struct tu_proc p = tu_spawn("fp_filter_opener", args);
	char line[128];
	int rc = 0;

	cr_assert(tu_expect(&p, "CREATE", line, sizeof(line), LINE_MS));
	cr_assert_eq(sscanf(line, "CREATE rc=%d", &rc), 1);
	cr_expect_eq(rc, -EPERM);
	tu_wait(&p, LINE_MS);
}

Test(filter, bad_config_is_einval, .timeout = 30)
{
	struct fltport_filter_config none = { 0 };
	struct fltport_filter_config bad = { .pre_open = by_content, .deny_errno = 300 };
	fltport_filter *f = NULL;

	struct fltport_filter_config unknown_flag = { .pre_open = by_content,
						      .flags = 0x80000000u };

	cr_expect_eq(fltport_filter_create(&none, &f), -EINVAL);
	cr_expect_eq(fltport_filter_create(&bad, &f), -EINVAL);
	cr_expect_eq(fltport_filter_create(&unknown_flag, &f), -EINVAL);
	cr_expect_eq(fltport_filter_create(NULL, &f), -EINVAL);
	cr_expect_null(f);
}

/* ---- pre-content on ext4 ------------------------------------------- */

static bool run_mkfs(const char *img)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);

		dup2(nul, 1);
		dup2(nul, 2);
		execl("/sbin/mkfs.ext4", "mkfs.ext4", "-q", "-F", img, (char *)NULL);
		_exit(127);
	}
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* An ext4 image on the sandbox tmpfs, on a loop device (auto-cleared when
 * unmounted: the namespace's end unmounts it), mounted at ext4_mnt. */
static const char *mount_ext4(void)
{
	struct loop_info64 info = { .lo_flags = LO_FLAGS_AUTOCLEAR };
	const char *img = in_mnt("ext4.img");
	char dev[64];
	int fd, ctl, lfd, n;

	if (access("/sbin/mkfs.ext4", X_OK) != 0)
		cr_skip_test("mkfs.ext4 (e2fsprogs) not installed");
	fd = open(img, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	cr_assert(fd >= 0 && ftruncate(fd, 32 << 20) == 0);
	close(fd);
	cr_assert(run_mkfs(img), "mkfs.ext4 failed");
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		cr_skip_test("no /dev/loop-control: %s", strerror(errno));
	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	cr_assert_geq(n, 0, "LOOP_CTL_GET_FREE: %s", strerror(errno));
	snprintf(dev, sizeof(dev), "/dev/loop%d", n);
	lfd = open(dev, O_RDWR | O_CLOEXEC);
	if (lfd < 0)
		cr_skip_test("cannot open %s: %s", dev, strerror(errno));
	fd = open(img, O_RDWR | O_CLOEXEC);
	cr_assert_eq(ioctl(lfd, LOOP_SET_FD, fd), 0, "LOOP_SET_FD: %s", strerror(errno));
	cr_assert_eq(ioctl(lfd, LOOP_SET_STATUS64, &info), 0);
	close(fd);
	snprintf(ext4_mnt, sizeof(ext4_mnt), "%s/ext4", sandbox_dir);
	cr_assert_eq(mkdir(ext4_mnt, 0755), 0, "mkdir %s: %s", ext4_mnt, strerror(errno));
	cr_assert_eq(mount(dev, ext4_mnt, "ext4", 0, NULL), 0, "mount ext4: %s", strerror(errno));
	close(lfd); /* the mount holds the device; autoclear frees it on unmount */
	return ext4_mnt;
}

static int content_by_content(void *cookie, const struct fltport_filter_event *ev)
{
	remember(ev);
	return content_is_evil(ev->fd) ? -EIO : FLTPORT_ALLOW;
}

Test(filter, pre_content_on_ext4, .timeout = 120)
{
	struct fltport_filter_config cfg = { .pre_content = content_by_content };
	const char *root = mount_ext4();
	char evil[160], clean[160], data[64];
	fltport_filter *f = NULL;
	int rc, eo = -1, er = -1;

	snprintf(evil, sizeof(evil), "%s/evil.txt", root);
	snprintf(clean, sizeof(clean), "%s/clean.txt", root);
	write_file(evil, "EVIL inside", 0644);
	write_file(clean, "clean", 0644);
	rc = fltport_filter_create(&cfg, &f);
	if (rc == -EOPNOTSUPP)
		cr_skip_test("no pre-content class group on this kernel");
	cr_assert_eq(rc, 0);
	set_filter(f);
	rc = fltport_filter_attach(f, root);
	if (rc == -EOPNOTSUPP)
		cr_skip_test("kernel has no FAN_PRE_ACCESS on ext4 (needs 6.14)");
	cr_assert_eq(rc, 0, "attach: %s", strerror(-rc));

	opener_read(evil, &eo, &er, data, sizeof(data));
	cr_expect_eq(eo, 0, "the open itself is not filtered");
	cr_expect_eq(er, fltport_filter_errno_supported(f, EIO) ? EIO : EPERM);
	cr_expect_eq(last_seen().op, FLTPORT_OP_CONTENT);
	opener_read(clean, &eo, &er, data, sizeof(data));
	cr_expect_eq(eo, 0);
	cr_expect_eq(er, 0);
	cr_expect_str_eq(data, "clean");
}

/* ---- post-operation notifications ---------------------------------- */

#define NPOST 64
struct post_rec {
	int op;
	char path[256], new_path[256], name[64];
	bool is_dir;
	pid_t pid;
};

/* Filled by on_post on the notification thread; read under P.lock. */
static struct {
	pthread_mutex_t lock;
	int n;
	struct post_rec e[NPOST];
} P = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void on_post(void *cookie, const struct fltport_filter_post_event *ev)
{
	pthread_mutex_lock(&P.lock);
	if (P.n < NPOST) {
		P.e[P.n].op = ev->op;
		snprintf(P.e[P.n].path, 256, "%s", ev->path ? ev->path : "(null)");
		snprintf(P.e[P.n].new_path, 256, "%s", ev->new_path ? ev->new_path : "(null)");
		snprintf(P.e[P.n].name, 64, "%s", ev->name ? ev->name : "(null)");
		P.e[P.n].is_dir = ev->is_dir;
		P.e[P.n].pid = ev->pid;
		P.n++;
	}
	pthread_mutex_unlock(&P.lock);
}

static int find_post(int op, const char *path, const char *new_path)
{
	int found = -1;

	pthread_mutex_lock(&P.lock);
	for (int i = 0; i < P.n && found < 0; i++)
		if (P.e[i].op == op && strcmp(P.e[i].path, path) == 0 &&
		    (!new_path || strcmp(P.e[i].new_path, new_path) == 0))
			found = i;
	pthread_mutex_unlock(&P.lock);
	return found;
}

/* A copy of entry i (an index find_post returned). */
static struct post_rec post_at(int i)
{
	struct post_rec r;

	pthread_mutex_lock(&P.lock);
	r = P.e[i];
	pthread_mutex_unlock(&P.lock);
	return r;
}

static bool all_posts_seen(void *arg)
{
	return find_post(FLTPORT_OP_DELETE, in_mnt("w/renamed.txt"), NULL) >= 0 &&
	       find_post(FLTPORT_OP_CREATE, in_mnt("w/sub"), NULL) >= 0;
}

static bool five_posts(void *arg)
{
	struct fltport_filter_stats st;

	fltport_filter_stats(arg, &st);
	return st.post_events >= 5;
}

Test(filter, post_op_notifications, .timeout = 60)
{
	struct fltport_filter_config cfg = {
		.post_create = on_post,
		.post_delete = on_post,
		.post_rename = on_post,
		.post_close_write = on_post,
	};
	const char *args[] = { "ops", NULL, NULL };
	struct fltport_filter_stats st;
	struct tu_proc p;
	char line[128];
	int i;

	mkdir(in_mnt("w"), 0755);
	mkdir(in_mnt("outside"), 0755);
	cr_assert_eq(fltport_filter_attach(make_filter(&cfg), in_mnt("w")), 0);
	write_file(in_mnt("outside/also.txt"), "x", 0644); /* same file system */
	args[1] = in_mnt("w");
	p = tu_spawn("fp_filter_opener", args);
	cr_assert(tu_expect(&p, "OPS err=0", line, sizeof(line), LINE_MS));
	tu_wait(&p, LINE_MS);
	cr_assert(tu_wait_until(all_posts_seen, NULL, 10000), "notifications missing");

	i = find_post(FLTPORT_OP_CREATE, in_mnt("w/new.txt"), NULL);
	cr_expect_geq(i, 0, "create new.txt");
	if (i >= 0) {
		struct post_rec r = post_at(i);

		cr_expect_str_eq(r.name, "new.txt");
		cr_expect(!r.is_dir);
		cr_expect_eq(r.pid, p.pid);
	}
	cr_expect_geq(find_post(FLTPORT_OP_CLOSE_WRITE, in_mnt("w/new.txt"), NULL), 0,
		      "close-write new.txt");
	if (fltport_filter_features(F) & FLTPORT_FILTER_HAVE_RENAME)
		cr_expect_geq(
			find_post(FLTPORT_OP_RENAME, in_mnt("w/new.txt"), in_mnt("w/renamed.txt")),
			0, "rename new → renamed");
	i = find_post(FLTPORT_OP_CREATE, in_mnt("w/sub"), NULL);
	cr_expect(i >= 0 && post_at(i).is_dir, "mkdir sub");
	cr_expect_geq(find_post(FLTPORT_OP_DELETE, in_mnt("w/renamed.txt"), NULL), 0);
	cr_expect_geq(find_post(FLTPORT_OP_CREATE, in_mnt("outside/also.txt"), NULL), 0,
		      "the whole file system is reported, not only the attach path");
	cr_expect(tu_wait_until(five_posts, F, 10000));
	fltport_filter_stats(F, &st);
	cr_expect_geq(st.post_events, 5);
}

/* ---- trust ----------------------------------------------------------- */

Test(filter, trusted_process_is_not_asked, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = by_content };
	char fifo[160];
	const char *args[] = { "gate", fifo, "open", NULL, NULL };
	struct fltport_filter_stats st;
	fltport_filter *f;
	struct tu_proc p;
	char line[128];
	int fd, err = -1;

	mkdir(in_mnt("w"), 0755);
	write_file(in_mnt("w/evil.txt"), "EVIL", 0644);
	f = make_filter(&cfg);
	cr_assert_eq(fltport_filter_attach(f, in_mnt("w")), 0);
	/* The gate lives outside the tmpfs (not marked). */
	snprintf(fifo, sizeof(fifo), "%s/gate", sandbox_dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	args[3] = in_mnt("w/evil.txt");
	p = tu_spawn("fp_filter_opener", args);
	cr_assert(tu_expect(&p, "GATED", line, sizeof(line), LINE_MS));
	cr_assert_eq(fltport_filter_trust_pid(f, p.pid), 0);
	cr_assert_eq(fltport_filter_trust_pid(f, p.pid), 0, "twice is fine");
	fd = open(fifo, O_WRONLY | O_CLOEXEC);
	cr_assert(fd >= 0 && write(fd, "x", 1) == 1);
	close(fd);
	cr_assert(tu_expect(&p, "OPEN", line, sizeof(line), LINE_MS));
	cr_assert_eq(sscanf(line, "OPEN err=%d", &err), 1);
	cr_expect_eq(err, 0, "a trusted process opens the evil file");
	tu_wait(&p, LINE_MS);
	unlink(fifo);
	cr_expect_eq(atomic_load(&D.calls), 0);
	stats_when_quiet(f, &st);
	cr_expect_geq(st.fast, 1);
	/* Trust ended with the process: a new opener is asked again. */
	cr_expect_eq(fltport_filter_trust_pid(f, p.pid), -ESRCH);
	cr_expect_eq(opener_err("open", in_mnt("w/evil.txt"), "OPEN", NULL), EPERM);
	cr_expect_eq(fltport_filter_untrust_pid(f, 1), -ENOENT);
}

/* ---- the service receives the fd ------------------------------------ */

static struct {
	pthread_mutex_t lock;
	fltport_client *cur;
	pid_t cur_pid;
	fltport_client *dead[64];
	int ndead;
	bool trust;
	atomic_int service_events; /* events caused by the service (must be 0) */
	atomic_int asked;
	char last_reply[128];
} S = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int svc_connect(fltport_client *client, void *server_cookie, const void *ctx, size_t ctx_len,
		       const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	pthread_mutex_lock(&S.lock);
	if (S.trust) {
		pthread_mutex_lock(&F_lock);
		if (F)
			fltport_filter_trust_client(F, client);
		pthread_mutex_unlock(&F_lock);
	}
	S.cur = client;
	S.cur_pid = peer->pid;
	pthread_mutex_unlock(&S.lock);
	*conn_cookie = client;
	return 0;
}

static void svc_disconnect(void *conn_cookie)
{
	pthread_mutex_lock(&S.lock);
	if (S.cur == conn_cookie)
		S.cur = NULL;
	if (S.ndead < 64)
		S.dead[S.ndead++] = conn_cookie;
	pthread_mutex_unlock(&S.lock);
}

static int ask_service(void *cookie, const struct fltport_filter_event *ev)
{
	char reply[128];
	size_t rlen = sizeof(reply) - 1;
	uint32_t status = 0;
	fltport_client *c;
	int rc;

	pthread_mutex_lock(&S.lock);
	c = S.cur;
	if (ev->pid == S.cur_pid)
		atomic_fetch_add(&S.service_events, 1);
	pthread_mutex_unlock(&S.lock);
	if (!c)
		return -EPERM;
	atomic_fetch_add(&S.asked, 1);
	rc = fltport_send(c, ev->path, strlen(ev->path) + 1, &ev->fd, 1, reply, &rlen, &status,
			  fltport_filter_time_left(ev));
	if (rc != 0)
		return -EPERM;
	reply[rlen] = '\0';
	pthread_mutex_lock(&S.lock);
	snprintf(S.last_reply, sizeof(S.last_reply), "%s", reply);
	pthread_mutex_unlock(&S.lock);
	return status ? -(int)status : FLTPORT_ALLOW;
}

static void last_reply(char *buf, size_t n)
{
	pthread_mutex_lock(&S.lock);
	snprintf(buf, n, "%s", S.last_reply);
	pthread_mutex_unlock(&S.lock);
}

static fltport_server *start_port(char *name, size_t n)
{
	struct fltport_server_config cfg = {
		.on_connect = svc_connect,
		.on_disconnect = svc_disconnect,
		.max_connections = 4,
	};
	fltport_server *srv = NULL;

	tu_private_dir();
	snprintf(name, n, "%s", tu_port_name("scan"));
	cr_assert_eq(fltport_server_create(name, &cfg, &srv), 0);
	return srv;
}

static bool service_connected(void *arg)
{
	bool yes;

	pthread_mutex_lock(&S.lock);
	yes = S.cur != NULL;
	pthread_mutex_unlock(&S.lock);
	return yes;
}

static void stop_port(fltport_server *srv)
{
	fltport_filter *f = take_filter();

	/* The filter first: no callback uses a client any more. */
	if (f)
		fltport_filter_destroy(f);
	fltport_server_destroy(srv);
}

Test(filter, service_reads_event_fd_without_events, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = ask_service, .pre_read = ask_service };
	struct fltport_filter_stats st;
	fltport_server *srv;
	struct tu_proc svc;
	char port[64], line[128], data[64], reply[128];
	int eo = -1, er = -1;

	mkdir(in_mnt("w"), 0755);
	write_file(in_mnt("w/evil.txt"), "EVIL payload", 0644);
	write_file(in_mnt("w/clean.txt"), "clean-payload", 0644);
	srv = start_port(port, sizeof(port));
	cr_assert_eq(fltport_filter_attach(make_filter(&cfg), in_mnt("w")), 0);
	/* Not trusted on purpose: a read through the passed fd that raised
	 * an event would show up as a callback for the service's pid. */
	svc = tu_spawn("fp_filter_service", (const char *[]){ port, "scan", NULL });
	cr_assert(tu_expect(&svc, "READY", line, sizeof(line), LINE_MS));
	cr_assert(tu_wait_until(service_connected, NULL, 10000));

	cr_expect_eq(opener_err("open", in_mnt("w/evil.txt"), "OPEN", NULL), EPERM);
	last_reply(reply, sizeof(reply));
	cr_expect_str_eq(reply, "EVIL payload", "the service read the content via the fd");
	opener_read(in_mnt("w/clean.txt"), &eo, &er, data, sizeof(data));
	cr_expect_eq(eo, 0);
	cr_expect_eq(er, 0);
	cr_expect_str_eq(data, "clean-payload");
	last_reply(reply, sizeof(reply));
	cr_expect_str_eq(reply, "clean-payload");
	cr_expect_eq(atomic_load(&S.service_events), 0, "the service's reads raised events");
	cr_expect_geq(atomic_load(&S.asked), 3); /* open evil, open clean, read clean */
	stats_when_quiet(F, &st);
	cr_expect_eq(st.timed_out, 0);
	stop_port(srv);
	cr_expect_eq(tu_wait(&svc, 10000), 0);
}

/* ------------------------------------------------------------------ */
/* Cache                                                                */
/* ------------------------------------------------------------------ */

static int allow_cache(void *cookie, const struct fltport_filter_event *ev)
{
	remember(ev);
	return FLTPORT_ALLOW_CACHE;
}

static int allow_plain(void *cookie, const struct fltport_filter_event *ev)
{
	remember(ev);
	return FLTPORT_ALLOW;
}

static void loop_opens(const char *path, int n)
{
	char count[16], line[256];
	const char *args[] = { "loop", path, count, NULL };
	struct tu_proc p;
	long ok = -1;

	snprintf(count, sizeof(count), "%d", n);
	p = tu_spawn("fp_filter_opener", args);
	cr_assert(tu_expect(&p, "LOOP", line, sizeof(line), LINE_MS));
	cr_assert_eq(sscanf(line, "LOOP ok=%ld", &ok), 1);
	cr_assert_eq(ok, n, "%s", line);
	tu_wait(&p, LINE_MS);
}

/* Voluntary context switches (one each time a thread blocks) of every
 * thread of this process but the calling one: the filter's. */
static unsigned long others_blocked(void)
{
	char path[300], line[128];
	unsigned long sum = 0, n;
	const pid_t self = gettid();
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	cr_assert(d);
	while ((e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.' || atoi(e->d_name) == self)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		if (!(f = fopen(path, "r")))
			continue; /* a thread that just ended */
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "voluntary_ctxt_switches: %lu", &n) == 1)
				sum += n;
		fclose(f);
	}
	closedir(d);
	return sum;
}

/* An event wakes one idle worker, not all of them: with 16 workers idle,
 * 200 opens one after the other cost the filter's threads one wake-up
 * each (plain epoll waits on the group, or blocking reads, would wake all
 * 16 per event). */
Test(filter, an_event_wakes_one_idle_worker, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = allow_plain, .workers = 16 };
	struct fltport_filter_stats st;
	unsigned long before, woken;
	const int n = 200;

	mkdir(in_mnt("w"), 0755);
	write_file(in_mnt("w/a.txt"), "clean", 0644);
	cr_assert_eq(fltport_filter_attach(make_filter(&cfg), in_mnt("w")), 0);
	loop_opens(in_mnt("w/a.txt"), 20); /* every worker has started */
	before = others_blocked();
	loop_opens(in_mnt("w/a.txt"), n);
	woken = others_blocked() - before;
	stats_when_quiet(F, &st);
	cr_expect_eq(st.seen, (uint64_t)n + 20);
	cr_expect_eq(st.allowed, (uint64_t)n + 20);
	cr_expect_leq(woken, (unsigned long)n * 2,
		      "%lu wake-ups of the filter's threads for %d opens", woken, n);
}

/* The pidfds open in this process (their links read "anon_inode:[pidfd]",
 * on pidfs too; "pidfd" is matched anywhere in the name). */
static int pidfds_open(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char link[300], got[64];
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		ssize_t k;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		k = readlink(link, got, sizeof(got) - 1);
		if (k > 0) {
			got[k] = '\0';
			n += strstr(got, "pidfd") != NULL;
		}
	}
	closedir(d);
	return n;
}

static int pidfds_before;

static bool pidfds_settled(void *unused)
{
	(void)unused;
	return pidfds_open() - pidfds_before <= 16;
}

/* The engine keeps the pidfds of recent events open (perm.c keep_pidfd():
 * a process's next event costs less), a bounded number of them, and
 * destroy closes them: 40 openers, each its own process, leave at most 16
 * pidfds behind while the filter runs and none after it. */
Test(filter, kept_pidfds_are_bounded_and_closed_by_destroy, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = allow_plain };
	struct fltport_filter_stats st;
	int before = pidfds_open(), during;
	fltport_filter *f;

	write_file(in_mnt("p.txt"), "clean", 0644);
	f = make_filter(&cfg);
	cr_assert_eq(fltport_filter_attach(f, in_mnt("")), 0);
	for (int i = 0; i < 40; i++)
		cr_assert_eq(opener_err("open", in_mnt("p.txt"), "OPEN", NULL), 0);
	stats_when_quiet(f, &st);
	cr_expect_eq(st.allowed, 40);
	/* The answer wakes the opener before the worker keeps the pidfd and
	 * closes the one it replaces: allow it that moment. */
	pidfds_before = before;
	cr_expect(tu_wait_until(pidfds_settled, NULL, 10000), "%d pidfds kept for 40 openers",
		  pidfds_open() - before);
	during = pidfds_open() - before;
	if (fltport_filter_features(f) & FLTPORT_FILTER_HAVE_PIDFD)
		cr_expect(during >= 1, "no pidfd kept");
	else
		cr_expect_eq(during, 0);
	fltport_filter_destroy(take_filter());
	cr_expect_eq(pidfds_open(), before, "pidfds left after destroy");
}

/* Each of n "loop" openers reports that all `each` opens succeeded
 * (within 45 s), and exits. */
static void expect_loops(struct tu_proc *p, int n, long each)
{
	char line[256];

	for (int i = 0; i < n; i++) {
		long ok = -1;

		cr_assert(tu_expect(&p[i], "LOOP", line, sizeof(line), 45000), "opener %d", i);
		cr_assert_eq(sscanf(line, "LOOP ok=%ld", &ok), 1);
		cr_expect_eq(ok, each, "%s", line);
		tu_wait(&p[i], LINE_MS);
	}
}

/* Many openers at once, fewer workers than openers: every event is
 * decided by a callback, none is left in the group for the deadline to
 * answer (a worker reads a few events at once and hands the rest on; an
 * event the kernel queues meanwhile must still wake a worker). */
Test(filter, concurrent_opens_are_all_decided_by_callbacks, .timeout = 120)
{
	struct fltport_filter_config cfg = { .pre_open = allow_plain,
					     .workers = 3,
					     .deadline_ns = 60 * 1000 * MS };
	enum { OPENERS = 8, EACH = 2000 };
	const char *args[] = { "loop", NULL, "2000", NULL };
	struct fltport_filter_stats st;
	struct tu_proc p[OPENERS];
	char name[OPENERS][32];

	mkdir(in_mnt("w"), 0755);
	for (int i = 0; i < OPENERS; i++) {
		snprintf(name[i], sizeof(name[i]), "w/f%d", i % 3);
		write_file(in_mnt(name[i]), "clean", 0644);
	}
	cr_assert_eq(fltport_filter_attach(make_filter(&cfg), in_mnt("w")), 0);
	for (int i = 0; i < OPENERS; i++) {
		args[1] = strdup(in_mnt(name[i]));
		p[i] = tu_spawn("fp_filter_opener", args);
		free((void *)args[1]);
	}
	/* A stranded event would hold its opener for the whole 60 s
	 * deadline: longer than this wait. */
	expect_loops(p, OPENERS, EACH);
	stats_when_quiet(F, &st);
	cr_expect_eq(st.seen, (uint64_t)OPENERS * EACH);
	cr_expect_eq(st.allowed, (uint64_t)OPENERS * EACH);
	cr_expect_eq(st.timed_out, 0);
	cr_expect_eq(atomic_load(&D.calls), OPENERS * EACH);
}

/* queue_max counts events that wait for a worker, not events handed to
 * a free one: three openers, each with one open at a time, and four
 * workers never make an event wait, so a queue of one never overflows.
 * (Before the fix a worker that read several events at once queued all
 * but one and answered the rest as overflow while the other workers were
 * idle: hundreds of the 6,000 opens in every run.) */
Test(filter, queue_max_counts_only_events_no_worker_takes, .timeout = 120)
{
	struct fltport_filter_config cfg = {
		.pre_open = allow_plain, .workers = 4, .queue_max = 1, .deadline_ns = 60 * 1000 * MS
	};
	enum { OPENERS = 3, EACH = 2000 };
	const char *args[] = { "loop", NULL, "2000", NULL };
	struct fltport_filter_stats st;
	struct tu_proc p[OPENERS];
	char path[512];

	mkdir(in_mnt("q"), 0755);
	write_file(in_mnt("q/a.txt"), "clean", 0644);
	cr_assert_eq(fltport_filter_attach(make_filter(&cfg), in_mnt("q")), 0);
	snprintf(path, sizeof(path), "%s", in_mnt("q/a.txt"));
	args[1] = path;
	for (int i = 0; i < OPENERS; i++)
		p[i] = tu_spawn("fp_filter_opener", args);
	expect_loops(p, OPENERS, EACH);
	stats_when_quiet(F, &st);
	cr_expect_eq(st.overflowed, 0, "%" PRIu64 " of %d opens answered as overflow",
		     st.overflowed, OPENERS * EACH);
	cr_expect_eq(st.seen, (uint64_t)OPENERS * EACH);
	cr_expect_eq(atomic_load(&D.calls), OPENERS * EACH);
}

static int slow_allow(void *cookie, const struct fltport_filter_event *ev)
{
	remember(ev);
	tu_sleep_ms(300);
	return FLTPORT_ALLOW;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Every worker busy in a slow callback, events queued for workers that are
 * not idle: the filter waits, it does not spin (a queue wake-up meant for
 * idle workers once kept the spare reader's epoll_wait returning at once,
 * a CPU at 100% for the whole 1.5 s). */
Test(filter, busy_workers_and_a_queue_burn_no_cpu, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = slow_allow, .workers = 1 };
	enum { OPENERS = 5 };
	const char *args[] = { "loop", NULL, "1", NULL };
	struct fltport_filter_stats st;
	struct tu_proc p[OPENERS];
	char line[256];
	double cpu;

	mkdir(in_mnt("w"), 0755);
	write_file(in_mnt("w/a.txt"), "clean", 0644);
	cr_assert_eq(fltport_filter_attach(make_filter(&cfg), in_mnt("w")), 0);
	args[1] = in_mnt("w/a.txt");
	cpu = cpu_seconds();
	for (int i = 0; i < OPENERS; i++)
		p[i] = tu_spawn("fp_filter_opener", args);
	for (int i = 0; i < OPENERS; i++) {
		cr_assert(tu_expect(&p[i], "LOOP ok=1", line, sizeof(line), 30000), "%s", line);
		tu_wait(&p[i], LINE_MS);
	}
	cpu = cpu_seconds() - cpu;
	stats_when_quiet(F, &st);
	cr_expect_eq(st.allowed, OPENERS);
	cr_expect_eq(st.timed_out, 0);
	/* The callbacks sleep 1.5 s in all; spinning through them costs
	 * about as much CPU. */
	cr_expect_lt(cpu, 0.5, "the filter used %.2f s of CPU while its callbacks slept", cpu);
}

Test(cache, allowed_file_not_asked_again_until_modified, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = allow_cache };
	const char *args[] = { "write", NULL, "more", NULL };
	struct fltport_filter_stats st;
	fltport_filter *f;
	struct tu_proc p;
	char line[64];

	mkdir(in_mnt("w"), 0755);
	write_file(in_mnt("w/a.txt"), "clean", 0644);
	write_file(in_mnt("w/b.txt"), "clean", 0644);
	f = make_filter(&cfg);
	cr_assert_eq(fltport_filter_attach(f, in_mnt("w")), 0);

	loop_opens(in_mnt("w/a.txt"), 20);
	cr_expect_eq(atomic_load(&D.calls), 1, "one callback for 20 opens of an unchanged file");
	stats_when_quiet(f, &st);
	cr_expect_eq(st.cached, 1);
	/* Another file is decided on its own. */
	loop_opens(in_mnt("w/b.txt"), 5);
	cr_expect_eq(atomic_load(&D.calls), 2);

	/* A write by another process clears the kernel's ignore mark. */
	args[1] = in_mnt("w/a.txt");
	p = tu_spawn("fp_filter_opener", args);
	cr_assert(tu_expect(&p, "WRITE err=0", line, sizeof(line), LINE_MS));
	tu_wait(&p, LINE_MS);
	loop_opens(in_mnt("w/a.txt"), 3);
	cr_expect_eq(atomic_load(&D.calls), 3, "the modified file is decided again, once");
	/* A write by the filter process itself clears it too. */
	write_file(in_mnt("w/b.txt"), "changed", 0644);
	loop_opens(in_mnt("w/b.txt"), 3);
	cr_expect_eq(atomic_load(&D.calls), 4);
}

Test(cache, plain_allow_is_asked_every_time, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = allow_plain };
	struct fltport_filter_stats st;

	mkdir(in_mnt("w"), 0755);
	write_file(in_mnt("w/a.txt"), "clean", 0644);
	cr_assert_eq(fltport_filter_attach(make_filter(&cfg), in_mnt("w")), 0);
	loop_opens(in_mnt("w/a.txt"), 5);
	cr_expect_eq(atomic_load(&D.calls), 5);
	stats_when_quiet(F, &st);
	cr_expect_eq(st.cached, 0);
}

Test(cache, off_switch, .timeout = 60)
{
	struct fltport_filter_config cfg = { .pre_open = allow_cache,
					     .flags = FLTPORT_FILTER_NO_CACHE };

	mkdir(in_mnt("w"), 0755);
	write_file(in_mnt("w/a.txt"), "clean", 0644);
	cr_assert_eq(fltport_filter_attach(make_filter(&cfg), in_mnt("w")), 0);
	loop_opens(in_mnt("w/a.txt"), 4);
	cr_expect_eq(atomic_load(&D.calls), 4);
}
