/*
 * Post-operation notifications: a FAN_CLASS_NOTIF group reporting
 * directory file handles and names (FAN_REPORT_DFID_NAME), so that create,
 * delete and rename — which have no open file — can be reported with a
 * path (reads, writes and close-writes come the same way: the parent
 * directory and the name).  The directory is reopened with open_by_handle_at(O_PATH) relative
 * to the attached path's mount (needs CAP_DAC_READ_SEARCH) and its path
 * read from /proc/self/fd.  This thread may touch the file system: it is
 * not the permission reader, and O_PATH opens raise no permission events.
 */
#include "filter/filter_int.h"
#include "filter/fan_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOTIFY_BUF (64 * 1024)
#define FP_HANDLE_MAX 128 /* MAX_HANDLE_SZ */

int fp_filter_notify_init(struct fltport_filter *f)
{
	const struct fltport_filter_config *c = &f->cfg;
	int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE |
				       FAN_REPORT_DFID_NAME,
			       O_RDONLY | O_LARGEFILE | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;

		fp_filter_debug("no notification group: %s", strerror(e));
		return e == EINVAL || e == ENOSYS ? -EOPNOTSUPP : -e;
	}
	f->notify_fd = fd;
	f->features |= FLTPORT_FILTER_HAVE_NOTIFY;
	if (c->post_create)
		f->notify_mask |= FAN_CREATE | FAN_ONDIR;
	if (c->post_delete)
		f->notify_mask |= FAN_DELETE | FAN_ONDIR;
	if (c->post_close_write)
		f->notify_mask |= FAN_CLOSE_WRITE;
	/* FAN_ONDIR, set above for directory entries, also applies to these:
	 * a directory's FAN_ACCESS (a listing) is dropped in handle_notify. */
	if (c->post_read)
		f->notify_mask |= FAN_ACCESS;
	if (c->post_write)
		f->notify_mask |= FAN_MODIFY;
	if (c->post_rename) {
		/* Probe FAN_RENAME (5.17) with a short-lived inode mark on "/"
		 * (a notification mark never blocks anyone). */
		if (fanotify_mark(fd, FAN_MARK_ADD, FAN_RENAME, AT_FDCWD, "/") == 0) {
			(void)fanotify_mark(fd, FAN_MARK_REMOVE, FAN_RENAME, AT_FDCWD, "/");
			f->features |= FLTPORT_FILTER_HAVE_RENAME;
			f->notify_mask |= FAN_RENAME | FAN_ONDIR;
		} else {
			f->notify_mask |= FAN_MOVED_FROM | FAN_MOVED_TO | FAN_ONDIR;
		}
	}
	return 0;
}

/* One directory record: the directory's path (or NULL) and the name. */
struct fp_dirent {
	bool present;
	char dir[PATH_MAX];
	bool dir_ok;
	char name[NAME_MAX + 1];
};

static void resolve(struct fltport_filter *f, const char *rec, size_t len, struct fp_dirent *out)
{
	struct fanotify_event_info_fid fid;
	union {
		struct file_handle fh;
		char raw[sizeof(struct file_handle) + FP_HANDLE_MAX];
	} h;
	const struct fp_filter_scope *s;
	size_t hoff = sizeof(struct fanotify_event_info_fid);
	uint32_t hbytes;
	const char *name;
	uint64_t fsid = 0;
	int dfd;

	out->present = true;
	out->dir_ok = false;
	out->name[0] = '\0';
	if (len < hoff + sizeof(struct file_handle))
		return;
	memcpy(&fid, rec, sizeof(fid));
	memcpy(&fsid, &fid.fsid, sizeof(fsid) < sizeof(fid.fsid) ? sizeof(fsid) : sizeof(fid.fsid));
	memcpy(&h.fh, rec + hoff, sizeof(struct file_handle));
	hbytes = h.fh.handle_bytes;
	if (hbytes > FP_HANDLE_MAX || hoff + sizeof(struct file_handle) + hbytes >= len)
		return;
	memcpy(h.fh.f_handle, rec + hoff + sizeof(struct file_handle), hbytes);
	name = rec + hoff + sizeof(struct file_handle) + hbytes;
	snprintf(out->name, sizeof(out->name), "%.*s", (int)(rec + len - name), name);
	s = fp_filter_scope_by_fsid(f, fsid);
	if (!s) {
		fp_filter_debug("notify: no attached path with fsid %llx",
				(unsigned long long)fsid);
		return;
	}
	dfd = open_by_handle_at(s->mfd, &h.fh, O_PATH | O_CLOEXEC);
	if (dfd < 0) {
		fp_filter_debug("notify: open_by_handle_at: %s", strerror(errno));
		return;
	}
	out->dir_ok = fp_filter_fd_path(f, dfd, out->dir, sizeof(out->dir)) == 0;
	close(dfd);
}

static void join_path(char *buf, size_t n, const struct fp_dirent *d)
{
	int r;

	if (strcmp(d->name, ".") == 0 || d->name[0] == '\0')
		r = snprintf(buf, n, "%s", d->dir);
	else if (strcmp(d->dir, "/") == 0)
		r = snprintf(buf, n, "/%s", d->name);
	else
		r = snprintf(buf, n, "%s/%s", d->dir, d->name);
	if (r < 0 || (size_t)r >= n)
		buf[0] = '\0'; /* longer than PATH_MAX: never a truncated path */
}

static void deliver(struct fltport_filter *f, fltport_filter_post_fn fn,
		    struct fltport_filter_post_event *ev)
{
	if (!fn)
		return;
	fn(f->cfg.cookie, ev);
	atomic_fetch_add(&f->c.post_events, 1);
}

/* The notification thread's scratch space, on its stack (not in thread-
 * local storage: a library's static TLS is set up in every thread of the
 * process, 17 KiB each for this). */
struct fp_notify_scratch {
	struct fp_dirent d[2]; /* [0] the entry / old, [1] new */
	char path[PATH_MAX], new_path[PATH_MAX];
};

/* `m` is an aligned copy of the metadata at `raw` (events with names are
 * only 4-byte aligned in the buffer). */
static void handle_notify(struct fltport_filter *f, const struct fanotify_event_metadata *m,
			  const char *raw, struct fp_notify_scratch *sc)
{
	const char *p = raw + m->metadata_len;
	const char *end = raw + m->event_len;
	struct fp_dirent *d = sc->d;
	char *path = sc->path, *new_path = sc->new_path;
	struct fltport_filter_post_event ev = { .filter = f, .pid = m->pid };
	const struct fltport_filter_config *c = &f->cfg;

	d[0].present = d[1].present = false;
	if (m->fd >= 0)
		close(m->fd); /* not expected with FID reporting */
	while (p + sizeof(struct fanotify_event_info_header) <= end) {
		struct fanotify_event_info_header hd;

		memcpy(&hd, p, sizeof(hd));
		if (hd.len < sizeof(hd) || p + hd.len > end)
			break;
		if (hd.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME ||
		    hd.info_type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME)
			resolve(f, p, hd.len, &d[0]);
		else if (hd.info_type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME)
			resolve(f, p, hd.len, &d[1]);
		p += hd.len;
	}
	if (!d[0].present && !d[1].present)
		return;
	if (d[0].present && d[0].dir_ok)
		join_path(path, sizeof(sc->path), &d[0]);
	if (d[1].present && d[1].dir_ok)
		join_path(new_path, sizeof(sc->new_path), &d[1]);
	/* Every entry of an attached file system is reported: the scope is
	 * the kernel's mark (filter.h). */
	ev.is_dir = (m->mask & FAN_ONDIR) != 0;
	ev.path = d[0].present && d[0].dir_ok ? path : NULL;
	ev.name = d[0].present ? d[0].name : d[1].name;
	if (m->mask & FAN_CREATE) {
		ev.op = FLTPORT_OP_CREATE;
		deliver(f, c->post_create, &ev);
	}
	if ((m->mask & FAN_ACCESS) && !ev.is_dir) {
		ev.op = FLTPORT_OP_ACCESS;
		deliver(f, c->post_read, &ev);
	}
	if (m->mask & FAN_MODIFY) {
		ev.op = FLTPORT_OP_MODIFY;
		deliver(f, c->post_write, &ev);
	}
	if (m->mask & FAN_CLOSE_WRITE) {
		ev.op = FLTPORT_OP_CLOSE_WRITE;
		deliver(f, c->post_close_write, &ev);
	}
	if (m->mask & (FAN_RENAME | FAN_MOVED_FROM | FAN_MOVED_TO)) {
		ev.op = FLTPORT_OP_RENAME;
		if (m->mask & FAN_MOVED_TO) { /* old kernels: the new half only */
			ev.new_path = ev.path;
			ev.path = NULL;
		} else if (d[1].present) {
			ev.new_path = d[1].dir_ok ? new_path : NULL;
		}
		deliver(f, c->post_rename, &ev);
		ev.new_path = NULL;
	}
	if (m->mask & FAN_DELETE) {
		ev.op = FLTPORT_OP_DELETE;
		ev.path = d[0].present && d[0].dir_ok ? path : NULL;
		deliver(f, c->post_delete, &ev);
	}
}

static void *notify_main(void *arg)
{
	struct fltport_filter *f = arg;
	char buf[NOTIFY_BUF] __attribute__((aligned(8)));
	struct fp_notify_scratch sc;

	for (;;) {
		struct pollfd pfd[2] = { { .fd = f->notify_fd, .events = POLLIN },
					 { .fd = f->wake_fd, .events = POLLIN } };
		bool stop = atomic_load(&f->stopping);
		int r = poll(pfd, 2, stop ? 0 : -1);
		ssize_t n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (!(pfd[0].revents & POLLIN)) {
			if (stop)
				break;
			continue;
		}
		n = read(f->notify_fd, buf, sizeof(buf));
		if (n <= 0)
			continue;
		for (size_t off = 0; off + FAN_EVENT_METADATA_LEN <= (size_t)n;) {
			struct fanotify_event_metadata m;

			memcpy(&m, buf + off, sizeof(m));
			if (m.event_len < FAN_EVENT_METADATA_LEN || m.event_len > (size_t)n - off)
				break;
			if (m.vers == FANOTIFY_METADATA_VERSION && !(m.mask & FAN_Q_OVERFLOW) &&
			    m.metadata_len >= FAN_EVENT_METADATA_LEN &&
			    m.metadata_len <= m.event_len)
				handle_notify(f, &m, buf + off, &sc);
			else if (m.fd >= 0)
				close(m.fd);
			off += m.event_len;
		}
	}
	return NULL;
}

int fp_filter_notify_start(struct fltport_filter *f)
{
	int rc = pthread_create(&f->notifier, NULL, notify_main, f);

	if (rc)
		return -rc;
	f->have_notifier = true;
	return 0;
}

void fp_filter_notify_stop(struct fltport_filter *f)
{
	uint64_t one = 1;

	atomic_store(&f->stopping, true);
	(void)!write(f->wake_fd, &one, sizeof(one));
	if (f->have_notifier)
		pthread_join(f->notifier, NULL);
	f->have_notifier = false;
}
