/*
 * Post-operation notifications of data access (post_read, post_write:
 * FLTPORT_OP_ACCESS, FLTPORT_OP_MODIFY).  Root, each test in its own mount
 * namespace on its own tmpfs (tests/filter/fsbox.h); the readers and
 * writers are helper processes (fp_filter_opener) unless a test is about
 * the filter's own accesses.
 *
 *   post.read_and_write_reported     path, name, pid and op of each; the
 *                                    close-write after the write
 *   post.read_only_config            post_read alone is a valid config
 *   post.listing_is_not_a_read       getdents on a directory is dropped
 *   post.event_fd_reads_raise_none   a pre callback reading ev->fd: no read
 *   post.mount_attach_refused        FLTPORT_ATTACH_MOUNT: -EOPNOTSUPP
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <dirent.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "fsbox.h"

#define NREC 256
#define WAIT_MS 10000

struct rec {
	int op;
	char path[512], name[128];
	bool is_dir;
	pid_t pid;
};

/* Filled on the notification thread, read under R.lock. */
static struct {
	pthread_mutex_t lock;
	int n;
	struct rec e[NREC];
} R = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void on_post(void *cookie, const struct fltport_filter_post_event *ev)
{
	pthread_mutex_lock(&R.lock);
	if (R.n < NREC) {
		struct rec *r = &R.e[R.n++];

		r->op = ev->op;
		snprintf(r->path, sizeof(r->path), "%s", ev->path ? ev->path : "(null)");
		snprintf(r->name, sizeof(r->name), "%s", ev->name ? ev->name : "(null)");
		r->is_dir = ev->is_dir;
		r->pid = ev->pid;
	}
	pthread_mutex_unlock(&R.lock);
}

/* The index of the first record of `op` about `path` (from `from` on), or -1. */
static int find(int op, const char *path, int from)
{
	int found = -1;

	pthread_mutex_lock(&R.lock);
	for (int i = from; i < R.n && found < 0; i++)
		if (R.e[i].op == op && strcmp(R.e[i].path, path) == 0)
			found = i;
	pthread_mutex_unlock(&R.lock);
	return found;
}

static struct rec rec_at(int i)
{
	struct rec r;

	pthread_mutex_lock(&R.lock);
	r = R.e[i];
	pthread_mutex_unlock(&R.lock);
	return r;
}

struct want {
	int op;
	const char *path;
};

static bool seen(void *arg)
{
	const struct want *w = arg;

	return find(w->op, w->path, 0) >= 0;
}

/* Wait (bounded) for a record of `op` about `path`; its index. */
static int wait_for(int op, const char *path)
{
	struct want w = { op, path };

	cr_assert(tu_wait_until(seen, &w, WAIT_MS), "no op %d about %s", op, path);
	return find(op, path, 0);
}

static void reset(void)
{
	pthread_mutex_lock(&R.lock);
	R.n = 0;
	pthread_mutex_unlock(&R.lock);
}

/* Run fp_filter_opener with `args`; wait for its line starting with
 * `prefix`; returns its pid. */
static pid_t run_opener(const char *const *args, const char *prefix)
{
	struct tu_proc p = tu_spawn("fp_filter_opener", args);
	char line[256];
	pid_t pid = p.pid;

	cr_assert(tu_expect(&p, prefix, line, sizeof(line), FSBOX_LINE_MS), "no %s line", prefix);
	cr_assert_eq(tu_wait(&p, FSBOX_LINE_MS), 0);
	return pid;
}

static void setup(void)
{
	fsbox_init();
	reset();
}

TestSuite(post, .init = setup, .fini = fsbox_fini, .timeout = 60);

Test(post, read_and_write_reported)
{
	struct fltport_filter_config cfg = {
		.post_read = on_post,
		.post_write = on_post,
		.post_close_write = on_post,
		.post_create = on_post,
	};
	fltport_filter *f = fsbox_filter_create(&cfg);
	struct fltport_filter_stats st;
	const char *data = fsbox_path("data.txt");
	const char *log = fsbox_path("log.txt");
	pid_t reader, writer;
	int r, w, cw;

	fsbox_write(data, "payload", 0644);
	cr_assert_eq(fltport_filter_attach(f, fsbox_mnt), 0);
	reader = run_opener((const char *[]){ "read", data, NULL }, "READ open=0 read=0");
	writer = run_opener((const char *[]){ "write", log, "hello", NULL }, "WRITE err=0");

	r = wait_for(FLTPORT_OP_ACCESS, data);
	cr_expect_eq(rec_at(r).pid, reader);
	cr_expect_str_eq(rec_at(r).name, "data.txt");
	cr_expect(!rec_at(r).is_dir);
	w = wait_for(FLTPORT_OP_MODIFY, log);
	cr_expect_eq(rec_at(w).pid, writer);
	cr_expect_str_eq(rec_at(w).name, "log.txt");
	cw = wait_for(FLTPORT_OP_CLOSE_WRITE, log);
	cr_expect_gt(cw, w, "the write is reported before the close-write");
	cr_expect_lt(wait_for(FLTPORT_OP_CREATE, log), w, "the create before the write");
	cr_expect_eq(find(FLTPORT_OP_MODIFY, data, 0), -1, "nobody wrote data.txt");
	cr_expect_eq(find(FLTPORT_OP_ACCESS, log, 0), -1, "nobody read log.txt");
	fltport_filter_stats(f, &st);
	cr_expect_geq(st.post_events, 4);
	cr_expect_eq(st.seen, 0, "no permission group: nothing ever waits");
}

Test(post, read_only_config)
{
	struct fltport_filter_config cfg = { .post_read = on_post };
	fltport_filter *f = fsbox_filter_create(&cfg);
	const char *data = fsbox_path("only.txt");

	cr_expect(fltport_filter_features(f) & FLTPORT_FILTER_HAVE_NOTIFY);
	fsbox_write(data, "x", 0644);
	cr_assert_eq(fltport_filter_attach(f, fsbox_mnt), 0);
	run_opener((const char *[]){ "write", data, "more", NULL }, "WRITE err=0");
	run_opener((const char *[]){ "read", data, NULL }, "READ open=0 read=0");
	wait_for(FLTPORT_OP_ACCESS, data);
	cr_expect_eq(find(FLTPORT_OP_MODIFY, data, 0), -1, "no post_write callback");
	cr_expect_eq(find(FLTPORT_OP_CLOSE_WRITE, data, 0), -1);
}

/* A directory listing is FAN_ACCESS on the directory once FAN_ONDIR is in
 * the mask (post_create sets it): not a read of file data. */
Test(post, listing_is_not_a_read)
{
	struct fltport_filter_config cfg = { .post_read = on_post, .post_create = on_post };
	fltport_filter *f = fsbox_filter_create(&cfg);
	const char *dir = fsbox_path("d");
	const char *marker = fsbox_path("d/marker");
	struct dirent *de;
	DIR *d;
	int n = 0, m;

	cr_assert_eq(mkdir(dir, 0755), 0);
	fsbox_write(marker, "m", 0644);
	cr_assert_eq(fltport_filter_attach(f, fsbox_mnt), 0);
	/* The filter process itself lists: notifications are not filtered by
	 * pid (only the permission group answers its own events at once). */
	d = opendir(dir);
	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n++;
	closedir(d);
	cr_expect_geq(n, 3);
	/* Then a read: notifications come in order, so once it is in, a
	 * listing reported as a read would be in too. */
	run_opener((const char *[]){ "read", marker, NULL }, "READ open=0 read=0");
	m = wait_for(FLTPORT_OP_ACCESS, marker);
	for (int i = 0; i < m; i++)
		cr_expect(rec_at(i).op != FLTPORT_OP_ACCESS, "a listing was reported as a read: %s",
			  rec_at(i).path);
}

static atomic_int pre_reads;

static int read_event_fd(void *cookie, const struct fltport_filter_event *ev)
{
	char buf[16];

	if (pread(ev->fd, buf, sizeof(buf), 0) > 0)
		atomic_fetch_add(&pre_reads, 1);
	return FLTPORT_ALLOW;
}

Test(post, event_fd_reads_raise_none)
{
	struct fltport_filter_config cfg = { .pre_open = read_event_fd, .post_read = on_post };
	fltport_filter *f = fsbox_filter_create(&cfg);
	const char *quiet = fsbox_path("quiet.txt");
	const char *marker = fsbox_path("marker.txt");
	int m;

	fsbox_write(quiet, "untouched", 0644);
	fsbox_write(marker, "marker", 0644);
	cr_assert_eq(fltport_filter_attach(f, fsbox_mnt), 0);
	cr_expect_eq(fsbox_opener("open", quiet, "OPEN"), 0); /* opened, never read */
	cr_expect_geq(atomic_load(&pre_reads), 1, "the callback read the event fd");
	run_opener((const char *[]){ "read", marker, NULL }, "READ open=0 read=0");
	m = wait_for(FLTPORT_OP_ACCESS, marker);
	cr_expect_eq(find(FLTPORT_OP_ACCESS, quiet, 0), -1,
		     "a read through the event fd raised a notification");
	cr_expect_geq(m, 0);
}

Test(post, mount_attach_refused)
{
	struct fltport_filter_config cfg = { .post_write = on_post };
	fltport_filter *f = fsbox_filter_create(&cfg);

	cr_expect_eq(fltport_filter_attach_ex(f, fsbox_mnt, FLTPORT_ATTACH_MOUNT), -EOPNOTSUPP);
}
