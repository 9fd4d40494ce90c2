/*
 * Management plane, filter side (fltport/mgmt.h): a named filter is listed
 * with its altitude and instances; volumes show the instances on them;
 * attach and detach requests change what the running filter sees, and its
 * instance_setup callback may refuse them; a dead filter is not listed.
 * Root: real fanotify on the sandbox's own tmpfs (fsbox.h).
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fltport/mgmt.h>

#include "fsbox.h"

TestSuite(mgmt, .init = fsbox_init, .fini = fsbox_fini);

static atomic_int opens; /* pre_open calls for files named "probe*" */

static int count_open(void *cookie, const struct fltport_filter_event *ev)
{
	const char *base = strrchr(ev->path, '/');

	if (base && strncmp(base + 1, "probe", 5) == 0)
		atomic_fetch_add(&opens, 1);
	return FLTPORT_ALLOW;
}

static int refuse_setup(void *cookie, const char *volume, const char *instance, bool detach)
{
	(void)cookie;
	(void)volume;
	return strcmp(instance, "Refused") == 0 ? -EPERM : 0;
}

static fltport_filter *make(const char *name, const char *altitude)
{
	struct fltport_filter_config cfg = { .pre_open = count_open,
					     .name = name,
					     .altitude = altitude,
					     .instance_setup = refuse_setup };

	return fsbox_filter_create(&cfg);
}

/* Opens of a fresh file in the sandbox, seen or not by the filter. */
static int probe_seen(void)
{
	static int n;
	char rel[32];
	int before = atomic_load(&opens), fd;

	snprintf(rel, sizeof(rel), "probe%d", n++);
	fd = open(fsbox_path(rel), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	/* An open by another process: the filter answers its own at once,
	 * without the callback. */
	cr_assert_eq(fsbox_opener("open", fsbox_path(rel), "OPEN"), 0);
	return atomic_load(&opens) - before;
}

static const struct fltport_filter_info *find_filter(const struct fltport_filter_info *v, size_t n,
						     const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

Test(mgmt, filter_instances_and_volumes_listed)
{
	struct fltport_filter_info *fl, one;
	struct fltport_instance_info *in;
	struct fltport_volume_info *vol;
	size_t n, denied = 9;
	bool found = false;
	fltport_filter *f;

	tu_private_dir();
	f = make("TestFilter", "385100.5");
	cr_assert_eq(fltport_filter_attach(f, fsbox_mnt), 0);

	cr_assert_eq(fltport_mgmt_filters(&fl, &n, &denied), 0);
	cr_expect_eq(denied, 0);
	/* A copy: the plain build's asserts do not tell the compiler that p is
	 * not NULL after them. */
	const struct fltport_filter_info *hit = find_filter(fl, n, "TestFilter");
	struct fltport_filter_info copy, *p = &copy;

	cr_assert_not_null(hit);
	memcpy(&copy, hit ? hit : &copy, sizeof(copy));
	cr_expect_str_eq(p->altitude, "385100.5");
	cr_expect_eq(p->pid, getpid());
	cr_expect_eq(p->instances, 1);
	cr_expect_neq(p->features, 0);
	fltport_mgmt_free(fl);

	cr_assert_eq(probe_seen(), 1);
	cr_assert_eq(fltport_mgmt_filter("TestFilter", &one), 0);
	cr_expect_geq(one.stats.seen, 1, "counters come with the listing");

	cr_assert_eq(fltport_mgmt_instances("TestFilter", &in, &n, NULL), 0);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(in[0].filter, "TestFilter");
	cr_expect_str_eq(in[0].name, "TestFilter Instance");
	cr_expect_str_eq(in[0].altitude, "385100.5");
	cr_expect_str_eq(in[0].volume, fsbox_mnt);
	cr_expect_str_eq(in[0].path, fsbox_mnt);
	fltport_mgmt_free(in);

	cr_assert_eq(fltport_mgmt_volumes(&vol, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(vol[i].mount_point, fsbox_mnt) != 0)
			continue;
		found = true;
		cr_expect_str_eq(vol[i].fstype, "tmpfs");
		cr_expect_str_eq(vol[i].source, "fltport-test");
		cr_expect_eq(vol[i].instances, 1);
	}
	cr_expect(found, "the sandbox's tmpfs is not among the %zu volumes", n);
	fltport_mgmt_free(vol);

	cr_expect_eq(fltport_mgmt_filter("NoSuchFilter", &one), -ENOENT);
	cr_expect_eq(fltport_mgmt_instances("NoSuchFilter", &in, &n, NULL), -ENOENT);
}

Test(mgmt, attach_and_detach_requests)
{
	struct fltport_instance_info *in;
	fltport_filter *f;
	size_t n;

	tu_private_dir();
	f = make("AttachMe", "123456");
	(void)f;
	cr_assert_eq(probe_seen(), 0, "not attached yet");

	cr_assert_eq(fltport_mgmt_attach("AttachMe", fsbox_mnt, "Inst1", "200000", 0), 0);
	cr_assert_eq(probe_seen(), 1, "attached by request");
	cr_assert_eq(fltport_mgmt_instances("AttachMe", &in, &n, NULL), 0);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(in[0].name, "Inst1");
	cr_expect_str_eq(in[0].altitude, "200000");
	fltport_mgmt_free(in);

	cr_expect_eq(fltport_mgmt_attach("AttachMe", fsbox_mnt, NULL, NULL, 0), -EEXIST);
	cr_expect_eq(fltport_mgmt_attach("NoSuchFilter", fsbox_mnt, NULL, NULL, 0), -ENOENT);
	cr_expect_eq(fltport_mgmt_attach("AttachMe", fsbox_mnt, NULL, "12a", 0), -EINVAL);
	cr_expect_eq(fltport_mgmt_detach("AttachMe", fsbox_mnt, "Other"), -ENXIO);

	cr_assert_eq(fltport_mgmt_detach("AttachMe", fsbox_mnt, "Inst1"), 0);
	cr_assert_eq(probe_seen(), 0, "detached by request");
	cr_assert_eq(fltport_mgmt_instances("AttachMe", &in, &n, NULL), 0);
	cr_expect_eq(n, 0);
	fltport_mgmt_free(in);
	cr_expect_eq(fltport_mgmt_detach("AttachMe", fsbox_mnt, NULL), -ENXIO);

	/* Again: the slot is reused, the filter sees the file system again. */
	cr_assert_eq(fltport_mgmt_attach("AttachMe", fsbox_mnt, NULL, NULL, 0), 0);
	cr_assert_eq(probe_seen(), 1);
	cr_assert_eq(fltport_mgmt_instances("AttachMe", &in, &n, NULL), 0);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(in[0].name, "AttachMe Instance");
	cr_expect_str_eq(in[0].altitude, "123456");
	fltport_mgmt_free(in);

	/* The filter's own detach. */
	cr_assert_eq(fltport_filter_detach(f, fsbox_mnt), 0);
	cr_assert_eq(probe_seen(), 0);
	cr_expect_eq(fltport_filter_detach(f, fsbox_mnt), -ENXIO);
}

Test(mgmt, filter_refuses_an_instance)
{
	struct fltport_instance_info *in;
	size_t n;

	tu_private_dir();
	make("Picky", "300000");
	cr_expect_eq(fltport_mgmt_attach("Picky", fsbox_mnt, "Refused", NULL, 0), -EPERM);
	cr_assert_eq(fltport_mgmt_instances("Picky", &in, &n, NULL), 0);
	cr_expect_eq(n, 0);
	fltport_mgmt_free(in);
	cr_assert_eq(probe_seen(), 0);
}

/* What instance_setup was asked, in order (the management thread asks). */
static struct {
	pthread_mutex_t lock;
	int n;
	char volume[4][PATH_MAX], instance[4][64];
	bool detach[4];
} asked = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int keep_setup(void *cookie, const char *volume, const char *instance, bool detach)
{
	(void)cookie;
	pthread_mutex_lock(&asked.lock);
	if (asked.n < 4) {
		snprintf(asked.volume[asked.n], sizeof(asked.volume[0]), "%s", volume);
		snprintf(asked.instance[asked.n], sizeof(asked.instance[0]), "%s", instance);
		asked.detach[asked.n] = detach;
	}
	asked.n++;
	pthread_mutex_unlock(&asked.lock);
	return detach && strncmp(instance, "Keep", 4) == 0 ? -EPERM : 0;
}

static int asked_count(void)
{
	int n;

	pthread_mutex_lock(&asked.lock);
	n = asked.n;
	pthread_mutex_unlock(&asked.lock);
	return n;
}

/* instance_setup is told what will happen: the mount point of the file
 * system (not the path the request named), and for a detach without an
 * instance name the instance that would go — a filter that keeps "Keep*"
 * instances used to be told "<name> Instance" and lose "Keepme" anyway.
 * Requests that cannot be done fail without asking it. */
Test(mgmt, instance_setup_is_told_what_will_happen)
{
	struct fltport_filter_config cfg = { .pre_open = count_open,
					     .name = "Holder",
					     .altitude = "320000",
					     .instance_setup = keep_setup };
	struct fltport_instance_info *in;
	char sub[PATH_MAX];
	size_t n;

	tu_private_dir();
	fsbox_filter_create(&cfg);
	snprintf(sub, sizeof(sub), "%s", fsbox_path("sub"));
	cr_assert_eq(mkdir(sub, 0755), 0);

	cr_assert_eq(fltport_mgmt_attach("Holder", sub, "Keepme", NULL, 0), 0);
	cr_assert_eq(asked_count(), 1);
	cr_expect_str_eq(asked.volume[0], fsbox_mnt, "attach: the mount point, not the path");
	cr_expect_str_eq(asked.instance[0], "Keepme");
	cr_expect(!asked.detach[0]);
	cr_assert_eq(probe_seen(), 1);

	/* No instance named: the filter is asked about the one that would go. */
	cr_expect_eq(fltport_mgmt_detach("Holder", fsbox_mnt, NULL), -EPERM);
	cr_assert_eq(asked_count(), 2);
	cr_expect_str_eq(asked.instance[1], "Keepme", "detach: the instance found");
	cr_expect_str_eq(asked.volume[1], fsbox_mnt);
	cr_expect(asked.detach[1]);
	cr_assert_eq(fltport_mgmt_instances("Holder", &in, &n, NULL), 0);
	cr_expect_eq(n, 1, "a refused detach removed the instance");
	fltport_mgmt_free(in);
	cr_expect_eq(probe_seen(), 1, "a refused detach stopped the filtering");

	/* Not doable: not asked. */
	cr_expect_eq(fltport_mgmt_attach("Holder", fsbox_mnt, "Again", NULL, 0), -EEXIST);
	cr_expect_eq(fltport_mgmt_attach("Holder", fsbox_path("nowhere"), NULL, NULL, 0), -ENOENT);
	cr_expect_eq(fltport_mgmt_detach("Holder", fsbox_mnt, "Other"), -ENXIO);
	cr_expect_eq(asked_count(), 2, "asked about requests that could not be done");
}

Test(mgmt, names_are_unique_and_checked)
{
	struct fltport_filter_config cfg = { .pre_open = count_open, .name = "Twice" };
	fltport_filter *g = NULL;

	tu_private_dir();
	make("Twice", NULL);
	cr_expect_eq(fltport_filter_create(&cfg, &g), -EADDRINUSE);
	cfg.name = "Bad/Name";
	cr_expect_eq(fltport_filter_create(&cfg, &g), -EINVAL);
	cfg.name = "Fine";
	cfg.altitude = "1.2.3";
	cr_expect_eq(fltport_filter_create(&cfg, &g), -EINVAL);
	cr_expect_null(g);
}

Test(mgmt, killed_filter_not_listed)
{
	struct fltport_filter_info *fl;
	char path[512];
	struct stat sb;
	int fds[2], st;
	size_t n;
	pid_t pid;
	char c;

	tu_private_dir();
	cr_assert_eq(pipe(fds), 0);
	pid = fork(); /* no thread exists yet in this test */
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct fltport_filter_config cfg = { .pre_open = count_open, .name = "Doomed" };
		fltport_filter *f;

		close(fds[0]);
		if (fltport_filter_create(&cfg, &f) != 0 ||
		    fltport_filter_attach(f, fsbox_mnt) != 0)
			_exit(1);
		(void)!write(fds[1], "R", 1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], &c, 1), 1, "the filter child did not start");
	close(fds[0]);
	cr_assert_eq(fltport_mgmt_filters(&fl, &n, NULL), 0);
	cr_expect_not_null(find_filter(fl, n, "Doomed"));
	fltport_mgmt_free(fl);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert_eq(fltport_mgmt_filters(&fl, &n, NULL), 0);
	cr_expect_null(find_filter(fl, n, "Doomed"), "a SIGKILLed filter is still listed");
	fltport_mgmt_free(fl);
	snprintf(path, sizeof(path), "%s/.ctl/f.Doomed", fltport_dir());
	cr_expect_neq(stat(path, &sb), 0, "stale control socket left");
}
