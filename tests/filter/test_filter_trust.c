/*
 * Trust that follows the service (issue 7): a trusted process's children
 * and grandchildren, and every process of a trusted cgroup, are answered
 * by the reader without a callback — and nobody else is.  As root, each
 * test in its own mount namespace with its own tmpfs (tests/filter/
 * fsbox.h); the filter is the test process, the service and its helpers
 * are tests/helpers/fp_filter_tree.c, other openers fp_filter_opener.c.
 *
 * Every filter here is fail-closed with a callback that denies everything:
 * an open that reaches the callback fails with EPERM, one answered as
 * trusted succeeds at once.
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fltport/filter.h>

#include "fsbox.h"
#include "testutil.h"

#define MS ((int64_t)1000000)
#define DEADLINE_MS 3000
#define FAST_MS 1000.0 /* an answer without a callback, with room for a slow CI */

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static atomic_int calls; /* callbacks run (the callback denies) */

static int deny_all(void *cookie, const struct fltport_filter_event *ev)
{
	atomic_fetch_add(&calls, 1);
	return -EPERM;
}

/* A fail-closed filter that denies every open it is asked about, attached
 * to the sandbox's tmpfs, with one file to open: fsbox_path("w/f.txt"). */
static fltport_filter *deny_filter(void)
{
	struct fltport_filter_config cfg = {
		.pre_open = deny_all,
		.policy = FLTPORT_FAIL_CLOSED,
		.deadline_ns = DEADLINE_MS * MS,
	};
	fltport_filter *f;

	mkdir(fsbox_path("w"), 0755);
	fsbox_write(fsbox_path("w/f.txt"), "content", 0644);
	f = fsbox_filter_create(&cfg);
	cr_assert_eq(fltport_filter_attach(f, fsbox_mnt), 0);
	return f;
}

/* A start gate: a fifo outside the tmpfs (never marked). */
static const char *make_gate(const char *name)
{
	static char bufs[4][320];
	static unsigned n;
	char *b = bufs[n++ % 4];

	snprintf(b, 320, "%s/%s", fsbox_dir, name);
	cr_assert_eq(mkfifo(b, 0600), 0, "mkfifo %s: %s", b, strerror(errno));
	return b;
}

static void open_gate(const char *fifo)
{
	int fd = open(fifo, O_WRONLY | O_CLOEXEC);

	cr_assert(fd >= 0 && write(fd, "x", 1) == 1, "gate %s: %s", fifo, strerror(errno));
	close(fd);
}

/* "<prefix> err=<e> ms=<t>" from p; returns e. */
static int expect_err(struct tu_proc *p, const char *prefix, double *ms)
{
	char line[256];
	int err = -1;
	double t = 0;

	cr_assert(tu_expect(p, prefix, line, sizeof(line), 2 * DEADLINE_MS), "no %s line", prefix);
	cr_assert_eq(sscanf(line + strlen(prefix), " err=%d ms=%lf", &err, &t), 2, "%s", line);
	if (ms)
		*ms = t;
	return err;
}

/* field 4 of /proc/<pid>/stat, -1 if gone */
static pid_t ppid_of(pid_t pid)
{
	char path[64], buf[512] = "", *p;
	FILE *fp;
	int ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "re");
	if (fp && !fgets(buf, sizeof(buf), fp))
		buf[0] = '\0';
	if (fp)
		fclose(fp);
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

static void trust_fini(void);

TestSuite(trust, .init = fsbox_init, .fini = trust_fini);

/* (a) The regression of issue 7: the helpers a trusted service starts (a
 * forked child; a forked child that execs /bin/cat on the file) open
 * without a callback, at once, although the filter is fail-closed and its
 * callback denies.  Before trust covered descendants each of them was
 * denied (or, with a callback asking the service, waited the whole
 * deadline). */
Test(trust, service_children_are_trusted, .timeout = 60)
{
	const char *gate = make_gate("gate");
	struct fltport_filter_stats st;
	fltport_filter *f = deny_filter();
	struct tu_proc svc;
	char line[256];
	double ms = -1;
	int status = -1;

	svc = tu_spawn("fp_filter_tree",
		       (const char *[]){ "children", gate, fsbox_path("w/f.txt"), NULL });
	cr_assert(tu_expect(&svc, "READY", line, sizeof(line), FSBOX_LINE_MS));
	cr_assert_eq(fltport_filter_trust_pid(f, svc.pid), 0);
	open_gate(gate);
	cr_expect_eq(expect_err(&svc, "CHILD", &ms), 0, "the service's forked child was denied");
	cr_expect_lt(ms, FAST_MS, "the child's open waited %.1f ms", ms);
	cr_assert(tu_expect(&svc, "CAT", line, sizeof(line), 2 * DEADLINE_MS), "no CAT line");
	cr_assert_eq(sscanf(line, "CAT status=%d ms=%lf", &status, &ms), 2, "%s", line);
	cr_expect_eq(status, 0, "/bin/cat run by the service could not read the file");
	cr_expect_lt(ms, FAST_MS, "cat took %.1f ms", ms);
	cr_expect_eq(tu_wait(&svc, FSBOX_LINE_MS), 0);
	cr_expect_eq(atomic_load(&calls), 0, "a callback ran for the service's helpers");
	cr_expect(tu_wait_until(fsbox_quiet, f, 10000), "events left unanswered");
	fltport_filter_stats(f, &st);
	cr_expect_geq(st.fast, 2);
	cr_expect_eq(st.denied, 0);
}

/* (b) Only descendants: a sibling of the trusted service (another child
 * of the filter process, which is trusted for itself only) is asked. */
Test(trust, non_descendant_is_asked, .timeout = 60)
{
	const char *gate = make_gate("gate");
	fltport_filter *f = deny_filter();
	struct tu_proc svc;
	char line[256];

	svc = tu_spawn("fp_filter_tree",
		       (const char *[]){ "children", gate, fsbox_path("w/f.txt"), NULL });
	cr_assert(tu_expect(&svc, "READY", line, sizeof(line), FSBOX_LINE_MS));
	cr_assert_eq(fltport_filter_trust_pid(f, svc.pid), 0);
	cr_expect_eq(fsbox_opener("open", fsbox_path("w/f.txt"), "OPEN"), EPERM);
	cr_expect_eq(atomic_load(&calls), 1);
	/* The service still works: its children are not asked. */
	open_gate(gate);
	cr_expect_eq(expect_err(&svc, "CHILD", NULL), 0);
	cr_expect_eq(tu_wait(&svc, FSBOX_LINE_MS), 0);
	cr_expect_eq(atomic_load(&calls), 1);
}

/* (c) Trust passes down an unbroken chain of parents only: a grandchild
 * is trusted while the service lives; once the service has exited (its
 * child reparented), the grandchild is asked like anyone else. */
Test(trust, orphaned_grandchild_is_asked, .timeout = 60)
{
	const char *gate = make_gate("gate");
	const char *tgate = make_gate("tgate");
	fltport_filter *f = deny_filter();
	struct tu_proc svc;
	char line[256];
	int child = 0, grand = 0, out;
	double ms = -1;

	svc = tu_spawn("fp_filter_tree",
		       (const char *[]){ "orphan", gate, tgate, fsbox_path("w/f.txt"), NULL });
	cr_assert(tu_expect(&svc, "READY", line, sizeof(line), FSBOX_LINE_MS));
	cr_assert_eq(sscanf(line, "READY pid=%*d child=%d grandchild=%d", &child, &grand), 2);
	cr_assert_eq(fltport_filter_trust_pid(f, svc.pid), 0);
	open_gate(gate);
	cr_expect_eq(expect_err(&svc, "GRAND1", &ms), 0, "the service's grandchild was denied");
	cr_expect_lt(ms, FAST_MS);
	cr_expect_eq(atomic_load(&calls), 0);

	/* The service exits; its output pipe stays open (the grandchild
	 * holds it): reap the service without closing our end. */
	open_gate(tgate);
	out = svc.out;
	svc.out = -1;
	cr_assert_eq(tu_wait(&svc, FSBOX_LINE_MS), 0);
	svc.out = out;
	cr_expect_neq(ppid_of(child), svc.pid, "the service's child was not reparented");
	cr_expect_eq(ppid_of(grand), child);
	open_gate(gate);
	cr_expect_eq(expect_err(&svc, "GRAND2", NULL), EPERM, "an orphan kept the trust");
	cr_expect_eq(atomic_load(&calls), 1);
	close(svc.out);
}

/* The n-th generation below a trusted service opens the file: its err. */
static int deep_open(fltport_filter *f, unsigned n)
{
	const char *gate = make_gate(n % 2 ? "gate-odd" : "gate-even");
	struct tu_proc svc;
	char line[256], num[16];
	int err;

	snprintf(num, sizeof(num), "%u", n);
	svc = tu_spawn("fp_filter_tree",
		       (const char *[]){ "chain", gate, num, fsbox_path("w/f.txt"), NULL });
	cr_assert(tu_expect(&svc, "READY", line, sizeof(line), FSBOX_LINE_MS));
	cr_assert_eq(fltport_filter_trust_pid(f, svc.pid), 0);
	open_gate(gate);
	err = expect_err(&svc, "DEEP", NULL);
	cr_expect_eq(tu_wait(&svc, FSBOX_LINE_MS), 0);
	unlink(gate);
	return err;
}

/* The walk up the parents is bounded: FLTPORT_FILTER_TRUST_DEPTH
 * generations are trusted, one more is not. */
Test(trust, depth_limit, .timeout = 60)
{
	fltport_filter *f = deny_filter();

	cr_expect_eq(deep_open(f, FLTPORT_FILTER_TRUST_DEPTH), 0);
	cr_expect_eq(atomic_load(&calls), 0);
	cr_expect_eq(deep_open(f, FLTPORT_FILTER_TRUST_DEPTH + 1), EPERM);
	cr_expect_eq(atomic_load(&calls), 1);
}

/* Trusted for itself only: the same service's helpers are asked. */
Test(trust, process_only_flag, .timeout = 60)
{
	const char *gate = make_gate("gate");
	fltport_filter *f = deny_filter();
	struct tu_proc svc;
	char line[256];
	int pidfd, status = -1;

	svc = tu_spawn("fp_filter_tree",
		       (const char *[]){ "children", gate, fsbox_path("w/f.txt"), NULL });
	cr_assert(tu_expect(&svc, "READY", line, sizeof(line), FSBOX_LINE_MS));
	pidfd = (int)syscall(SYS_pidfd_open, svc.pid, 0);
	cr_assert_geq(pidfd, 0, "pidfd_open: %s", strerror(errno));
	cr_expect_eq(fltport_filter_trust_pidfd_ex(f, pidfd, 0x80), -EINVAL);
	cr_expect_eq(fltport_filter_trust_pidfd_ex(NULL, pidfd, 0), -EINVAL);
	cr_assert_eq(fltport_filter_trust_pidfd_ex(f, pidfd, FLTPORT_TRUST_PROCESS_ONLY), 0);
	close(pidfd);
	open_gate(gate);
	cr_expect_eq(expect_err(&svc, "CHILD", NULL), EPERM);
	cr_assert(tu_expect(&svc, "CAT", line, sizeof(line), 2 * DEADLINE_MS), "no CAT line");
	cr_assert_eq(sscanf(line, "CAT status=%d", &status), 1, "%s", line);
	cr_expect_neq(status, 0, "cat read the file without being asked");
	cr_expect_eq(tu_wait(&svc, FSBOX_LINE_MS), 0);
	cr_expect_eq(atomic_load(&calls), 2);
}

/* ---- cgroups ---------------------------------------------------------- */

static char cg_made[40][128]; /* cgroups this test made (paths below the root) */
static int ncg_made;
static char cg_mnt[256];

/* The cgroup2 mount point (of the whole hierarchy), or NULL. */
static const char *cgroup2_mount(void)
{
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	char line[1024], root[256], mp[256];

	cr_assert_not_null(fp);
	while (!cg_mnt[0] && fgets(line, sizeof(line), fp)) {
		char *sep = strstr(line, " - ");

		if (sep && strncmp(sep + 3, "cgroup2 ", 8) == 0 &&
		    sscanf(line, "%*s %*s %*s %255s %255s", root, mp) == 2 &&
		    strcmp(root, "/") == 0)
			snprintf(cg_mnt, sizeof(cg_mnt), "%s", mp);
	}
	fclose(fp);
	return cg_mnt[0] ? cg_mnt : NULL;
}

static void cgroup2_or_skip(void)
{
	if (!cgroup2_mount())
		cr_skip_test("no cgroup2 file system mounted");
}

/* The directory of cgroup `cg` (a path below the cgroup2 root). */
static const char *cg_dir(char *buf, size_t n, const char *cg)
{
	snprintf(buf, n, "%s%s", cg_mnt, cg);
	return buf;
}

static void cg_mkdir(const char *cg)
{
	char dir[400];

	if (mkdir(cg_dir(dir, sizeof(dir), cg), 0755) != 0) {
		if (errno == EACCES || errno == EPERM || errno == EROFS)
			cr_skip_test("cgroup2 at %s is not writable: %s", cg_mnt, strerror(errno));
		cr_assert(0, "mkdir %s: %s", dir, strerror(errno));
	}
	if (ncg_made < 40)
		snprintf(cg_made[ncg_made++], sizeof(cg_made[0]), "%s", cg);
}

/* rmdir a cgroup whose processes have been reaped (the kernel may take a
 * moment to let go of them). */
static int cg_rmdir(const char *cg)
{
	char dir[400];

	cg_dir(dir, sizeof(dir), cg);
	for (int i = 0; i < 200; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			break;
		tu_sleep_ms(10);
	}
	return -errno;
}

/* An opener moved into cgroup `cg` before it opens the sandbox's file:
 * returns its err. */
static int open_in_cgroup(const char *cg, const char *gate)
{
	struct tu_proc p;
	char line[256], dir[400], procs[420], pid[32];
	int fd, err;

	p = tu_spawn("fp_filter_opener",
		     (const char *[]){ "gate", gate, "open", fsbox_path("w/f.txt"), NULL });
	cr_assert(tu_expect(&p, "GATED", line, sizeof(line), FSBOX_LINE_MS));
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg_dir(dir, sizeof(dir), cg));
	snprintf(pid, sizeof(pid), "%d\n", (int)p.pid);
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	cr_assert(fd >= 0 && write(fd, pid, strlen(pid)) == (ssize_t)strlen(pid),
		  "moving %d to %s: %s", (int)p.pid, procs, strerror(errno));
	close(fd);
	open_gate(gate);
	err = expect_err(&p, "OPEN", NULL);
	cr_assert_eq(tu_wait(&p, FSBOX_LINE_MS), 0);
	return err;
}

/* (d) A trusted cgroup: its processes and those of its sub-cgroups are not
 * asked; once it is removed, a cgroup made again under its path is not
 * trusted until it is trusted itself. */
Test(trust, cgroup_and_a_recreated_one, .timeout = 60)
{
	const char *gate = make_gate("gate");
	char cg[64], sub[80];
	fltport_filter *f;

	cgroup2_or_skip();
	snprintf(cg, sizeof(cg), "/fltport-trust-%d", (int)getpid());
	snprintf(sub, sizeof(sub), "%s/helper", cg);
	cg_mkdir(cg);
	cg_mkdir(sub);
	f = deny_filter();
	cr_assert_eq(fltport_filter_trust_cgroup(f, cg), 0);
	cr_assert_eq(fltport_filter_trust_cgroup(f, cg), 0, "twice is fine");

	cr_expect_eq(open_in_cgroup(sub, gate), 0, "a process in a trusted sub-cgroup was asked");
	cr_expect_eq(open_in_cgroup(cg, gate), 0, "a process in the trusted cgroup was asked");
	cr_expect_eq(atomic_load(&calls), 0);
	cr_expect_eq(fsbox_opener("open", fsbox_path("w/f.txt"), "OPEN"), EPERM, "outside it");
	cr_expect_eq(atomic_load(&calls), 1);

	cr_assert_eq(cg_rmdir(sub), 0);
	cr_assert_eq(cg_rmdir(cg), 0);
	cg_mkdir(cg);
	cr_expect_eq(open_in_cgroup(cg, gate), EPERM, "a recreated cgroup inherited the trust");
	cr_expect_eq(atomic_load(&calls), 2);

	cr_assert_eq(fltport_filter_trust_cgroup(f, cg), 0);
	cr_expect_eq(open_in_cgroup(cg, gate), 0, "the new cgroup, trusted");
	cr_expect_eq(atomic_load(&calls), 2);
	cr_expect_eq(fltport_filter_untrust_cgroup(f, cg), 0);
	cr_expect_eq(fltport_filter_untrust_cgroup(f, cg), -ENOENT);
	cr_expect_eq(open_in_cgroup(cg, gate), EPERM, "untrusted");
	cr_expect_eq(atomic_load(&calls), 3);
}

Test(trust, cgroup_errors, .timeout = 60)
{
	static char longp[PATH_MAX + 2];
	fltport_filter *f = deny_filter();
	char cg[64], name[96];
	int rc;

	cr_expect_eq(fltport_filter_trust_cgroup(NULL, "/x"), -EINVAL);
	cr_expect_eq(fltport_filter_trust_cgroup(f, NULL), -EINVAL);
	cr_expect_eq(fltport_filter_trust_cgroup(f, ""), -EINVAL);
	cr_expect_eq(fltport_filter_trust_cgroup(f, "relative"), -EINVAL);
	cr_expect_eq(fltport_filter_trust_cgroup(f, "/"), -EINVAL, "every process");
	cr_expect_eq(fltport_filter_trust_cgroup(f, "/a//b"), -EINVAL);
	cr_expect_eq(fltport_filter_trust_cgroup(f, "/a/../b"), -EINVAL);
	cr_expect_eq(fltport_filter_trust_cgroup(f, "/a/./b"), -EINVAL);
	cr_expect_eq(fltport_filter_trust_cgroup(f, "/a/"), -EINVAL);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	cr_expect_eq(fltport_filter_trust_cgroup(f, longp), -ENAMETOOLONG);
	cr_expect_eq(fltport_filter_untrust_cgroup(f, "/"), -EINVAL);
	cr_expect_eq(fltport_filter_untrust_cgroup(f, "/never-trusted"), -ENOENT);

	rc = fltport_filter_trust_cgroup(f, "/fltport-no-such-cgroup");
	if (!cgroup2_mount()) {
		cr_expect_eq(rc, -EOPNOTSUPP);
		cr_skip_test("no cgroup2 file system mounted");
	}
	cr_expect_eq(rc, -ENOENT);
	cr_expect_eq(fltport_filter_trust_cgroup(f, "/cgroup.procs"), -ENOTDIR);
	snprintf(cg, sizeof(cg), "/fltport-trust-%d", (int)getpid());
	cg_mkdir(cg);
	for (unsigned i = 0; i <= FLTPORT_FILTER_MAX_TRUSTED_CGROUPS; i++) {
		snprintf(name, sizeof(name), "%s/c%u", cg, i);
		cg_mkdir(name);
		rc = fltport_filter_trust_cgroup(f, name);
		cr_expect_eq(rc, i < FLTPORT_FILTER_MAX_TRUSTED_CGROUPS ? 0 : -ENOSPC, "%u: %d", i,
			     rc);
	}
}

static void trust_fini(void)
{
	fsbox_fini();
	while (ncg_made > 0)
		(void)cg_rmdir(cg_made[--ncg_made]);
}
