/*
 * The filter suites' sandbox, shared: a private mount namespace with a
 * tmpfs of its own (only that file system is ever marked), the filter under
 * test published for server threads, and the opener helper's result lines.
 * Include after Criterion (or plain_criterion.h): it uses cr_assert.
 *
 *   fsbox_init()         skip unless root; unshare the mount namespace (must
 *                        run before any thread exists); mount the tmpfs
 *   fsbox_fini()         destroy the published filter, unmount
 *   fsbox_path("rel")    a path inside the tmpfs (8 rotating buffers)
 */
#ifndef FP_FSBOX_H
#define FP_FSBOX_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fltport/filter.h>

#include "testutil.h"

#define FSBOX_LINE_MS 10000 /* bound on one helper line */

static char fsbox_dir[256]; /* holds the mount point: removed at exit */
static char fsbox_mnt[300]; /* the tmpfs */
static fltport_filter *fsbox_filter;
static pthread_mutex_t fsbox_lock = PTHREAD_MUTEX_INITIALIZER;

static inline void fsbox_init(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root: fanotify permission events and mounts");
	/* Before the namespace: its cleanup watcher stays outside it. */
	snprintf(fsbox_dir, sizeof(fsbox_dir), "%s", tu_temp_dir("fltport-fs"));
	snprintf(fsbox_mnt, sizeof(fsbox_mnt), "%s/fs", fsbox_dir);
	cr_assert_eq(mkdir(fsbox_mnt, 0755), 0, "mkdir %s: %s", fsbox_mnt, strerror(errno));
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL), 0, "rprivate: %s",
		     strerror(errno));
	cr_assert_eq(mount("fltport-test", fsbox_mnt, "tmpfs", 0, "size=64m,mode=0755"), 0,
		     "mount tmpfs: %s", strerror(errno));
}

/* Publish the filter under test (NULL to unpublish); returns the old one. */
static inline fltport_filter *fsbox_set_filter(fltport_filter *f)
{
	fltport_filter *old;

	pthread_mutex_lock(&fsbox_lock);
	old = fsbox_filter;
	fsbox_filter = f;
	pthread_mutex_unlock(&fsbox_lock);
	return old;
}

static inline fltport_filter *fsbox_get_filter(void)
{
	fltport_filter *f;

	pthread_mutex_lock(&fsbox_lock);
	f = fsbox_filter;
	pthread_mutex_unlock(&fsbox_lock);
	return f;
}

static inline void fsbox_fini(void)
{
	fltport_filter *f = fsbox_set_filter(NULL);

	if (f)
		fltport_filter_destroy(f);
	if (fsbox_mnt[0]) {
		umount2(fsbox_mnt, MNT_DETACH);
		rmdir(fsbox_mnt);
	}
}

static inline const char *fsbox_path(const char *rel)
{
	static char bufs[8][512];
	static unsigned n;
	char *b = bufs[n++ % 8];

	snprintf(b, 512, "%s/%s", fsbox_mnt, rel);
	return b;
}

static inline void fsbox_write(const char *path, const char *content, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	cr_assert_geq(fd, 0, "create %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

/* Create a filter and publish it. */
static inline fltport_filter *fsbox_filter_create(const struct fltport_filter_config *cfg)
{
	fltport_filter *f = NULL;
	int rc = fltport_filter_create(cfg, &f);

	cr_assert_eq(rc, 0, "fltport_filter_create: %s", strerror(-rc));
	fsbox_set_filter(f);
	return f;
}

/* Run fp_filter_opener CMD PATH and return the err= of its line that starts
 * with `prefix` (e.g. "OPEN"). */
static inline int fsbox_opener(const char *cmd, const char *path, const char *prefix)
{
	struct tu_proc p = tu_spawn("fp_filter_opener", (const char *[]){ cmd, path, NULL });
	char line[256];
	int err = -1;
	double t = 0;

	cr_assert(tu_expect(&p, prefix, line, sizeof(line), 30000), "no %s line", prefix);
	cr_assert_eq(sscanf(line + strlen(prefix), " err=%d ms=%lf", &err, &t), 2, "%s", line);
	cr_assert_eq(tu_wait(&p, FSBOX_LINE_MS), 0);
	return err;
}

/* Every event read has been answered and counted. */
static inline bool fsbox_quiet(void *arg)
{
	struct fltport_filter_stats st;

	fltport_filter_stats(arg, &st);
	return st.in_flight == 0 && st.seen == st.allowed + st.denied;
}

#endif
