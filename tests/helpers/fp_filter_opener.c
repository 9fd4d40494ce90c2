/*
 * fp_filter_opener — a process that touches files under a filter, for
 * tests/filter/.  It is a separate process so that it is not the filter's
 * own (always trusted) pid.  Every result is one line on stdout; errors are
 * positive errno values (0 = success), times in milliseconds.
 *
 *   open <path>              OPEN err=<e> ms=<t>
 *   read <path>              READ open=<e> read=<e> data=<first bytes> ms=<t>
 *   exec <path> [args...]    execv(path); on failure EXEC err=<e> ms=<t>
 *   loop <path> <n>          n × open+close: LOOP ok= eperm= other= lasterr= maxms=
 *   write <path> <text>      append text: WRITE err=<e>
 *   ops <dir>                create+write <dir>/new.txt, rename to renamed.txt,
 *                            mkdir <dir>/sub, unlink renamed.txt: OPS err=<e>
 *   create-as <uid>          drop to uid, fltport_filter_create: CREATE rc=<rc>
 *   concurrent <path> <n>    n threads open+close <path> at once (a start
 *                            barrier): CONC ok= eperm= other= lasterr= maxms=
 *   userns-open <path>       in a new user + mount namespace (as an unprivileged
 *                            container would): OPEN err=<e> ms=<t>
 *                            (USERNS err=<e> if the namespace cannot be made)
 *   gate <fifo> <cmd> ...    read one byte from <fifo> first (a start gate the
 *                            test opens when it is ready), then run <cmd>
 */
#include "testutil.h"

#include <fltport/filter.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static double ms_since(int64_t t0)
{
	return (double)(tu_now_ns() - t0) / 1e6;
}

static int do_open(const char *path)
{
	int64_t t0 = tu_now_ns();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int e = fd < 0 ? errno : 0;

	if (fd >= 0)
		close(fd);
	tu_say("OPEN err=%d ms=%.1f", e, ms_since(t0));
	return 0;
}

static int do_read(const char *path)
{
	int64_t t0 = tu_now_ns();
	char buf[33] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int eo = fd < 0 ? errno : 0, er = 0;

	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);

		if (n < 0)
			er = errno;
		else
			buf[n] = '\0';
		close(fd);
	}
	for (char *p = buf; *p; p++)
		if (*p == ' ' || *p == '\n')
			*p = '_';
	tu_say("READ open=%d read=%d data=%s ms=%.1f", eo, er, buf, ms_since(t0));
	return 0;
}

static int do_loop(const char *path, long n)
{
	long ok = 0, eperm = 0, other = 0;
	int lasterr = 0;
	double maxms = 0;

	for (long i = 0; i < n; i++) {
		int64_t t0 = tu_now_ns();
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		double ms;

		if (fd >= 0) {
			ok++;
			close(fd);
		} else if (errno == EPERM) {
			eperm++;
		} else {
			other++;
			lasterr = errno;
		}
		ms = ms_since(t0);
		if (ms > maxms)
			maxms = ms;
	}
	tu_say("LOOP ok=%ld eperm=%ld other=%ld lasterr=%d maxms=%.1f", ok, eperm, other, lasterr,
	       maxms);
	return 0;
}

static int do_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	int e = 0;

	if (fd < 0) {
		e = errno;
	} else {
		if (write(fd, text, strlen(text)) < 0)
			e = errno;
		close(fd);
	}
	tu_say("WRITE err=%d", e);
	return 0;
}

static int do_ops(const char *dir)
{
	char a[512], b[512], d[512];
	int fd, e = 0;

	snprintf(a, sizeof(a), "%s/new.txt", dir);
	snprintf(b, sizeof(b), "%s/renamed.txt", dir);
	snprintf(d, sizeof(d), "%s/sub", dir);
	fd = open(a, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, "data", 4) != 4)
		e = errno;
	if (fd >= 0)
		close(fd);
	if (!e && rename(a, b) != 0)
		e = errno;
	if (!e && mkdir(d, 0755) != 0)
		e = errno;
	if (!e && unlink(b) != 0)
		e = errno;
	tu_say("OPS err=%d", e);
	return 0;
}

struct conc {
	const char *path;
	pthread_barrier_t start;
	atomic_long ok, eperm, other;
	atomic_int lasterr;
	atomic_long maxus;
};

static void *conc_main(void *arg)
{
	struct conc *c = arg;
	int64_t t0;
	long us, m;
	int fd;

	pthread_barrier_wait(&c->start);
	t0 = tu_now_ns();
	fd = open(c->path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		atomic_fetch_add(&c->ok, 1);
		close(fd);
	} else if (errno == EPERM) {
		atomic_fetch_add(&c->eperm, 1);
	} else {
		atomic_fetch_add(&c->other, 1);
		atomic_store(&c->lasterr, errno);
	}
	us = (long)((tu_now_ns() - t0) / 1000);
	m = atomic_load(&c->maxus);
	while (us > m && !atomic_compare_exchange_weak(&c->maxus, &m, us))
		;
	return NULL;
}

static int do_concurrent(const char *path, long n)
{
	static struct conc c;
	pthread_attr_t a;
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	long started = 0;
	struct rlimit rl;

	if (!t || n <= 0)
		return 2;
	/* Room for n fds of our own (as root, above an inherited hard limit):
	 * only the filter's limit is under test. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = (rlim_t)n + 64;
		if (rl.rlim_max < rl.rlim_cur)
			rl.rlim_max = rl.rlim_cur;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	c.path = path;
	pthread_barrier_init(&c.start, NULL, (unsigned)n);
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 64 * 1024);
	for (; started < n; started++)
		if (pthread_create(&t[started], &a, conc_main, &c) != 0)
			break;
	if (started < n) {
		tu_say("CONC_ERR started=%ld", started);
		_exit(3); /* the started threads wait at the barrier forever */
	}
	for (long i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	tu_say("CONC ok=%ld eperm=%ld other=%ld lasterr=%d maxms=%.1f", atomic_load(&c.ok),
	       atomic_load(&c.eperm), atomic_load(&c.other), atomic_load(&c.lasterr),
	       (double)atomic_load(&c.maxus) / 1000.0);
	free(t);
	return 0;
}

/* An unprivileged user namespace with its own mount namespace: the view a
 * rootless container has of the same file system. */
static int do_userns_open(const char *path)
{
	if (tu_drop_to(65534, 65534) != 0 || unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
		tu_say("USERNS err=%d", errno);
		return 0;
	}
	return do_open(path);
}

static int cb_allow(void *cookie, const struct fltport_filter_event *ev)
{
	return FLTPORT_ALLOW;
}

static int do_create_as(uid_t uid)
{
	struct fltport_filter_config cfg = { .pre_open = cb_allow };
	fltport_filter *f = NULL;
	int rc = tu_drop_to(uid, uid);

	if (rc == 0) {
		rc = fltport_filter_create(&cfg, &f);
		if (rc == 0)
			fltport_filter_destroy(f);
	}
	tu_say("CREATE rc=%d", rc);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "gate") == 0) {
		char c;
		int fd;

		/* Non-blocking open and a bounded wait: never stuck forever. */
		tu_say("GATED");
		fd = open(argv[2], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			return 3;
		for (int64_t end = tu_now_ms() + 20000;;) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			if (read(fd, &c, 1) == 1)
				break;
			if (tu_now_ms() > end)
				return 3;
			(void)poll(&pfd, 1, 50);
		}
		close(fd);
		argv += 2;
		argc -= 2;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: fp_filter_opener <cmd> <arg>...\n");
		return 2;
	}
	if (strcmp(argv[1], "open") == 0)
		return do_open(argv[2]);
	if (strcmp(argv[1], "read") == 0)
		return do_read(argv[2]);
	if (strcmp(argv[1], "exec") == 0) {
		int64_t t0 = tu_now_ns();

		fflush(stdout);
		execv(argv[2], argv + 2);
		tu_say("EXEC err=%d ms=%.1f", errno, ms_since(t0));
		return 0;
	}
	if (strcmp(argv[1], "loop") == 0 && argc >= 4)
		return do_loop(argv[2], strtol(argv[3], NULL, 10));
	if (strcmp(argv[1], "write") == 0 && argc >= 4)
		return do_write(argv[2], argv[3]);
	if (strcmp(argv[1], "ops") == 0)
		return do_ops(argv[2]);
	if (strcmp(argv[1], "concurrent") == 0 && argc >= 4)
		return do_concurrent(argv[2], strtol(argv[3], NULL, 10));
	if (strcmp(argv[1], "userns-open") == 0)
		return do_userns_open(argv[2]);
	if (strcmp(argv[1], "create-as") == 0)
		return do_create_as((uid_t)strtoul(argv[2], NULL, 10));
	fprintf(stderr, "fp_filter_opener: unknown command %s\n", argv[1]);
	return 2;
}
