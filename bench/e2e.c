/*
 * e2e.c — the end-to-end rows' tmpfs, raw listener and engine (e2e.h).
 *
 * Safety: the bench runs as root and fanotify permission marks stall every
 * opener on the marked file system while the listener is slow, so nothing
 * but the bench's own tmpfs is ever marked.  The tmpfs lives in a private
 * mount namespace (invisible to the rest of the machine, unmounted by the
 * kernel when the bench's last process exits) and every mark is preceded by
 * a check that its path is that tmpfs, not the file system under it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "e2e.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define E2E_TMPFS_OPTS "size=1m,nr_inodes=64,mode=0700"

/* The mounted directory, for e2e_fs_abort() from a signal handler. */
static char abort_dir[64];
static volatile sig_atomic_t abort_armed;

int e2e_probe(void)
{
	int fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

int e2e_fs_check(const char *dir)
{
	char parent[sizeof(abort_dir) + 4];
	struct statfs sfs;
	struct stat st, up;

	if ((size_t)snprintf(parent, sizeof(parent), "%s/..", dir) >= sizeof(parent))
		return -ENAMETOOLONG;
	if (statfs(dir, &sfs) < 0 || stat(dir, &st) < 0 || stat(parent, &up) < 0)
		return -errno;
	/* /tmp may itself be a tmpfs: the device must differ from the parent's too. */
	if (sfs.f_type != TMPFS_MAGIC || st.st_dev == up.st_dev)
		return -EXDEV;
	return 0;
}

static int write_file(const char *path)
{
	char data[E2E_FILE_SIZE];
	ssize_t n;
	int fd, rc = 0;

	memset(data, 'e', sizeof(data));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	n = write(fd, data, sizeof(data));
	if (n != (ssize_t)sizeof(data))
		rc = n < 0 ? -errno : -EIO;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

int e2e_fs_setup(struct e2e_fs *fs, const char **what)
{
	char dir[] = "/tmp/fltport-e2e.XXXXXX";
	char file[sizeof(fs->file)];
	int rc;

	/* Until "/" is private, a mount here would propagate to the host. */
	*what = "unshare(CLONE_NEWNS)";
	if (unshare(CLONE_NEWNS) < 0)
		return -errno;
	*what = "mount --make-rprivate /";
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	*what = "mkdtemp";
	if (!mkdtemp(dir))
		return -errno;
	*what = "mount tmpfs";
	if (mount("fltport-e2e", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, E2E_TMPFS_OPTS) <
	    0) {
		rc = -errno;
		rmdir(dir);
		return rc;
	}
	memcpy(abort_dir, dir, sizeof(dir));
	abort_armed = 1;

	*what = "check that the directory is the new tmpfs";
	rc = e2e_fs_check(dir);
	if (rc)
		goto undo;
	*what = "create the file";
	snprintf(file, sizeof(file), "%s/file", dir);
	rc = write_file(file);
	if (rc)
		goto undo;
	memcpy(fs->dir, dir, sizeof(dir));
	memcpy(fs->file, file, sizeof(file));
	return 0;
undo:
	e2e_fs_abort();
	return rc;
}

int e2e_fs_teardown(struct e2e_fs *fs)
{
	int rc = 0;

	abort_armed = 0;
	if (umount2(fs->dir, 0) < 0 && (errno != EBUSY || umount2(fs->dir, MNT_DETACH) < 0))
		rc = -errno;
	if (rmdir(fs->dir) < 0 && !rc)
		rc = -errno;
	return rc;
}

void e2e_fs_abort(void)
{
	if (!abort_armed)
		return;
	abort_armed = 0;
	umount2(abort_dir, MNT_DETACH);
	rmdir(abort_dir);
}

/* ------------------------------------------------------------------ */
/* The raw listener                                                     */
/* ------------------------------------------------------------------ */

static int raw_allow(int fan, int fd)
{
	struct fanotify_response resp = { .fd = fd, .response = FAN_ALLOW };
	ssize_t n;

	do
		n = write(fan, &resp, sizeof(resp));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(resp))
		return n < 0 ? -errno : -EIO;
	return 0;
}

/* PIDFD_GET_INFO (Linux 6.13), as the engine asks it (its first 64 bytes). */
struct raw_pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t spare0;
};
#define RAW_PIDFD_GET_INFO _IOWR(0xFF, 11, struct raw_pidfd_info)
#define RAW_PIDFD_INFO_CREDS 0x2u

/* The event's pidfd record, or -1. */
static int raw_event_pidfd(const struct fanotify_event_metadata *m)
{
	const char *p = (const char *)m + m->metadata_len, *end = (const char *)m + m->event_len;

	while (p + sizeof(struct fanotify_event_info_header) <= end) {
		const struct fanotify_event_info_header *h = (const void *)p;

		if (h->len < sizeof(*h) || p + h->len > end)
			break;
		if (h->info_type == FAN_EVENT_INFO_TYPE_PIDFD &&
		    h->len >= sizeof(struct fanotify_event_info_pidfd))
			return ((const struct fanotify_event_info_pidfd *)p)->pidfd;
		p += h->len;
	}
	return -1;
}

/* The opener's credentials from /proc/PID/status, as the engine reads them
 * where PIDFD_GET_INFO is missing (before Linux 6.13). */
static void raw_creds_from_proc(struct e2e_raw *r, pid_t pid)
{
	char path[32], buf[2048];
	unsigned uid = 0, gid = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%d/status", (int)pid);
	fd = openat(r->proc_dir, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (strstr(buf, "\nUid:"))
		(void)sscanf(strstr(buf, "\nUid:") + 5, "%*u %u", &uid);
	if (strstr(buf, "\nGid:"))
		(void)sscanf(strstr(buf, "\nGid:") + 5, "%*u %u", &gid);
}

/* INFO: what the engine's default works out before a callback: the same
 * calls, kernel by kernel (identity.c). */
static int raw_info(struct e2e_raw *r, const struct fanotify_event_metadata *m)
{
	char link[32], path[4096], exe[4096];
	struct raw_pidfd_info info;
	int pidfd = raw_event_pidfd(m);

	/* Kept until the next event's, as the engine keeps it (and closed
	 * whatever happens below). */
	if (r->last_pidfd >= 0)
		close(r->last_pidfd);
	r->last_pidfd = pidfd;
	snprintf(link, sizeof(link), "%d", m->fd);
	if (readlinkat(r->selffd_dir, link, path, sizeof(path) - 1) < 0)
		return -errno;
	snprintf(link, sizeof(link), "%d/exe", (int)m->pid);
	(void)readlinkat(r->proc_dir, link, exe, sizeof(exe) - 1); /* the opener may be gone */
	memset(&info, 0, sizeof(info));
	info.mask = RAW_PIDFD_INFO_CREDS;
	if (pidfd >= 0 && ioctl(pidfd, RAW_PIDFD_GET_INFO, &info) == 0)
		return 0;
	raw_creds_from_proc(r, m->pid); /* before 6.13 */
	if (pidfd >= 0)
		(void)syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0);
	return 0;
}

/* ASK: the event fd to the service, and its answer. */
static int raw_ask(struct e2e_raw *r, int fd)
{
	unsigned char msg[E2E_MSG_SIZE] = { 0 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { msg, sizeof(msg) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	ssize_t n;

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	do
		n = sendmsg(r->ask_fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(msg))
		return n < 0 ? -errno : -EIO;
	do
		n = recv(r->ask_fd, msg, sizeof(msg), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(msg))
		return n < 0 ? -errno : -EPIPE;
	return 0;
}

/* Answer one batch of events.  Every event fd is closed, also after an
 * error; a permission event left unanswered is allowed when the group is
 * closed. */
static int raw_batch(struct e2e_raw *r, struct fanotify_event_metadata *m, ssize_t len)
{
	int err = 0;

	for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
		if (m->vers != FANOTIFY_METADATA_VERSION)
			return -EPROTO;
		if (m->fd < 0)
			continue;
		if (err && (r->mode & E2E_RAW_INFO) && raw_event_pidfd(m) >= 0)
			close(raw_event_pidfd(m)); /* not looked at: closed */
		if (!err && (r->mode & E2E_RAW_INFO))
			err = raw_info(r, m);
		if (!err && (r->mode & E2E_RAW_ASK))
			err = raw_ask(r, m->fd);
		if (!err && (m->mask & FAN_OPEN_PERM) && (r->mode & E2E_RAW_CACHE)) {
			/* As the engine's cache: FAN_MARK_IGNORE where the
			 * kernel has it (6.0), else the ignored mask. */
			if (fanotify_mark(r->fan,
					  FAN_MARK_ADD | FAN_MARK_IGNORE | FAN_MARK_EVICTABLE,
					  FAN_OPEN_PERM, m->fd, NULL) == 0 ||
			    fanotify_mark(r->fan,
					  FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_EVICTABLE,
					  FAN_OPEN_PERM, m->fd, NULL) == 0)
				r->cached++;
		}
		if (!err && (m->mask & FAN_OPEN_PERM)) {
			err = raw_allow(r->fan, m->fd);
			if (!err)
				r->answered++;
		}
		close(m->fd);
	}
	return err;
}

static void *raw_listen(void *arg)
{
	struct e2e_raw *r = arg;
	uint64_t buf[4096 / sizeof(uint64_t)]; /* events with their info records */

	for (;;) {
		ssize_t len = read(r->fan, buf, sizeof(buf));

		if (len < 0 && errno == EINTR)
			continue;
		r->err = len > 0   ? raw_batch(r, (struct fanotify_event_metadata *)buf, len)
			 : len < 0 ? -errno
				   : -EIO;
		if (r->err)
			break;
		if (atomic_load(&r->stop))
			return NULL;
	}
	/* Closing the group allows what is pending and drops the mark, so that
	 * no opener (nor e2e_raw_stop's own open) waits for this thread. */
	close(r->fan);
	r->fan = -1;
	return NULL;
}

static void raw_close(struct e2e_raw *r)
{
	if (r->fan >= 0)
		close(r->fan);
	if (r->selffd_dir >= 0)
		close(r->selffd_dir);
	if (r->proc_dir >= 0)
		close(r->proc_dir);
	if (r->last_pidfd >= 0)
		close(r->last_pidfd);
	r->fan = r->selffd_dir = r->proc_dir = r->last_pidfd = -1;
}

int e2e_raw_start(struct e2e_raw *r, const char *dir, enum e2e_raw_mode mode, int ask_fd)
{
	unsigned flags = FAN_CLASS_CONTENT | FAN_CLOEXEC;
	int rc = e2e_fs_check(dir);

	if (rc)
		return rc;
	if ((mode & E2E_RAW_ASK) && ask_fd < 0)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	atomic_init(&r->stop, false);
	r->mode = mode;
	r->ask_fd = ask_fd;
	r->selffd_dir = r->proc_dir = r->last_pidfd = -1;
	if (mode & E2E_RAW_INFO) {
		r->selffd_dir = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
		r->proc_dir = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (r->selffd_dir < 0 || r->proc_dir < 0) {
			rc = -errno;
			goto fail;
		}
		flags |= FAN_REPORT_PIDFD;
	}
	r->fan = fanotify_init(flags, O_RDONLY | O_CLOEXEC | O_LARGEFILE);
	if (r->fan < 0 && (flags & FAN_REPORT_PIDFD) && errno == EINVAL) /* before 5.15 */
		r->fan = fanotify_init(flags & ~FAN_REPORT_PIDFD,
				       O_RDONLY | O_CLOEXEC | O_LARGEFILE);
	if (r->fan < 0) {
		rc = -errno;
		goto fail;
	}
	if (fanotify_mark(r->fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_PERM, AT_FDCWD,
			  dir) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = -pthread_create(&r->thread, NULL, raw_listen, r);
	if (rc)
		goto fail;
	return 0;
fail:
	raw_close(r);
	return rc;
}

int e2e_raw_stop(struct e2e_raw *r, const char *file)
{
	int fd, rc = 0;

	char wake[256];
	const char *slash = strrchr(file, '/');

	atomic_store(&r->stop, true);
	/* Our own open is an event like any other: the thread answers it, then
	 * sees the flag.  (The file exists, so the open does raise the event.)
	 * CACHE: the kernel answers opens of that file from the ignore mark,
	 * so a new file beside it raises the event. */
	if ((r->mode & E2E_RAW_CACHE) && slash &&
	    (size_t)snprintf(wake, sizeof(wake), "%.*s/.wake", (int)(slash - file), file) <
		    sizeof(wake)) {
		fd = open(wake, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0)
			unlink(wake);
	} else {
		fd = open(file, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		rc = -errno;
	else
		close(fd);
	pthread_join(r->thread, NULL);
	raw_close(r);
	return r->err ? r->err : rc;
}

/* ------------------------------------------------------------------ */
/* The engine                                                           */
/* ------------------------------------------------------------------ */

static int pre_open_allow(void *cookie, const struct fltport_filter_event *ev)
{
	return FLTPORT_ALLOW;
}

static int pre_open_cache(void *cookie, const struct fltport_filter_event *ev)
{
	return FLTPORT_ALLOW_CACHE;
}

/* The scanner pattern: the event fd to the service, its reply decides.  A
 * failed ask is remembered (the row then fails) and the open allowed. */
static int pre_open_ask(void *cookie, const struct fltport_filter_event *ev)
{
	struct e2e_engine *e = cookie;
	fltport_client *svc = atomic_load_explicit(&e->service, memory_order_acquire);
	unsigned char msg[E2E_MSG_SIZE], reply[E2E_MSG_SIZE];
	size_t reply_len = sizeof(reply);
	uint32_t status = 1;
	int rc, none = 0;

	if (!svc)
		return FLTPORT_ALLOW;
	memset(msg, 0, sizeof(msg));
	rc = fltport_send(svc, msg, sizeof(msg), &ev->fd, 1, reply, &reply_len, &status,
			  fltport_filter_time_left(ev));
	if (!rc && status != 0)
		rc = -EPROTO;
	if (rc)
		atomic_compare_exchange_strong(&e->err, &none, rc);
	return FLTPORT_ALLOW;
}

int e2e_engine_start(struct e2e_engine *e, enum e2e_verdict verdict, const char *dir)
{
	static const fltport_filter_pre_fn pre[] = {
		[E2E_ALLOW] = pre_open_allow,          [E2E_ALLOW_CACHE] = pre_open_cache,
		[E2E_ASK_SERVICE] = pre_open_ask,      [E2E_ALLOW_LAZY] = pre_open_allow,
		[E2E_ASK_SERVICE_LAZY] = pre_open_ask, [E2E_ALLOW_MINIMAL] = pre_open_allow,
	};
	const bool lazy = verdict == E2E_ALLOW_LAZY || verdict == E2E_ASK_SERVICE_LAZY ||
			  verdict == E2E_ALLOW_MINIMAL;
	struct fltport_filter_config cfg = {
		.cookie = e,
		.pre_open = pre[verdict],
		.flags = (lazy ? FLTPORT_FILTER_LAZY_INFO | FLTPORT_FILTER_NO_CACHE : 0) |
			 (verdict == E2E_ALLOW_MINIMAL ? FLTPORT_FILTER_NO_PIDFD : 0),
	};
	fltport_filter *f;
	int rc = e2e_fs_check(dir);

	if (rc)
		return rc;
	e->filter = NULL;
	atomic_init(&e->service, NULL);
	atomic_init(&e->err, 0);
	rc = fltport_filter_create(&cfg, &f);
	if (rc)
		return rc;
	rc = fltport_filter_attach(f, dir);
	if (rc) {
		fltport_filter_destroy(f);
		return rc;
	}
	e->filter = f;
	return 0;
}

int e2e_engine_serve(struct e2e_engine *e, fltport_client *service)
{
	int rc = fltport_filter_trust_client(e->filter, service);

	if (rc)
		return rc;
	atomic_store_explicit(&e->service, service, memory_order_release);
	return 0;
}

int e2e_engine_stop(struct e2e_engine *e, struct fltport_filter_stats *st)
{
	fltport_filter_stats(e->filter, st);
	fltport_filter_destroy(e->filter);
	e->filter = NULL;
	return atomic_load(&e->err);
}

int e2e_open_close(void *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	return close(fd) < 0 ? -errno : 0;
}
