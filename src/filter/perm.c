/*
 * The permission side: probe, reader, workers, deadline, cache.
 *
 * The deadline guarantee.  The kernel waits for our answer forever, so the
 * engine keeps its own clock: every queued event is on the deadline list
 * (ordered by arrival, and every event gets the same relative deadline, so
 * the list is ordered by deadline too).  When the head's deadline passes,
 * the deadline thread answers by policy — whatever the worker running its
 * callback is doing.  The worker's verdict, if it comes later, loses the
 * compare-and-swap on `answered` and is dropped.  Overflow of the bounded
 * queue is answered by policy by the reader at once.  Nothing else can
 * leave an event unanswered: the group is FAN_UNLIMITED_QUEUE, so the
 * kernel never drops (and silently allows) an event either.
 */
#include "filter/filter_int.h"
#include "filter/fan_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define READ_BUF (64 * 1024)

/* ------------------------------------------------------------------ */
/* Probe                                                                */
/* ------------------------------------------------------------------ */

static void probe_deny_errno(struct fltport_filter *f)
{
	/* A response for no event (FAN_NOFD) with an info record is checked
	 * by the kernel and then dropped: EINVAL for a refused errno, the
	 * length written for an accepted one.  No event is touched. */
	for (int e = 1; e <= 255; e++) {
		struct fp_fan_response_info p = {
			.r = { .fd = FAN_NOFD, .response = FAN_DENY_ERRNO(e) | FAN_INFO },
			.type = FAN_RESPONSE_INFO_AUDIT_RULE,
			.len = 16,
		};

		if (write(f->perm_fd, &p, sizeof(p)) > 0)
			f->errno_ok[e / 64] |= (uint64_t)1 << (e % 64);
	}
	if (f->errno_ok[0] & ~((uint64_t)1 << EPERM) || f->errno_ok[1] || f->errno_ok[2] ||
	    f->errno_ok[3])
		f->features |= FLTPORT_FILTER_HAVE_DENY_ERRNO;
	else
		memset(f->errno_ok, 0, sizeof(f->errno_ok));
}

static void probe_pidfs(struct fltport_filter *f)
{
	struct fp_pidfd_info info;
	struct statfs sfs;
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

	if (fd < 0)
		return;
	if (fstatfs(fd, &sfs) == 0 && (unsigned long)sfs.f_type == FP_PIDFS_MAGIC)
		f->pidfs = true;
	memset(&info, 0, sizeof(info));
	info.mask = FP_PIDFD_INFO_CREDS;
	if (ioctl(fd, FP_PIDFD_GET_INFO, &info) == 0 && (info.mask & FP_PIDFD_INFO_CREDS))
		f->features |= FLTPORT_FILTER_HAVE_PIDFD_INFO;
	close(fd);
}

static int open_group(struct fltport_filter *f)
{
	static const unsigned classes[] = { FAN_CLASS_PRE_CONTENT, FAN_CLASS_CONTENT };
	const unsigned base = FAN_CLOEXEC | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS;
	const unsigned evf = O_RDONLY | O_LARGEFILE | O_CLOEXEC;
	bool want_pidfd = !(f->cfg.flags & FLTPORT_FILTER_NO_PIDFD);
	int err = EINVAL;

	for (unsigned c = 0; c < 2; c++) {
		for (int pidfd = want_pidfd; pidfd >= 0; pidfd--) {
			int fd = fanotify_init(classes[c] | base | (pidfd ? FAN_REPORT_PIDFD : 0),
					       evf);

			if (fd >= 0) {
				f->perm_fd = fd;
				if (pidfd)
					f->features |= FLTPORT_FILTER_HAVE_PIDFD;
				if (classes[c] == FAN_CLASS_PRE_CONTENT)
					f->features |= FLTPORT_FILTER_HAVE_PRE_CONTENT;
				return 0;
			}
			err = errno;
			if (err == EPERM || err == EMFILE || err == ENFILE || err == ENOMEM)
				return -err;
		}
	}
	/* EINVAL for every class: no CONFIG_FANOTIFY_ACCESS_PERMISSIONS;
	 * ENOSYS: no fanotify at all. */
	return -EOPNOTSUPP;
}

int fp_filter_perm_probe(struct fltport_filter *f)
{
	int rc = open_group(f);

	if (rc) {
		fp_filter_debug("no permission group: %s%s", strerror(-rc),
				rc == -EPERM ? " (needs root / CAP_SYS_ADMIN)" : "");
		return rc;
	}
	if (f->cfg.pre_content && !(f->features & FLTPORT_FILTER_HAVE_PRE_CONTENT))
		return -EOPNOTSUPP;
	if ((f->features & FLTPORT_FILTER_HAVE_PRE_CONTENT) &&
	    !(f->cfg.flags & FLTPORT_FILTER_NO_DENY_ERRNO))
		probe_deny_errno(f);
	probe_pidfs(f);
	if (f->cfg.flags & FLTPORT_FILTER_NO_CACHE)
		atomic_store(&f->cache_mode, -1);
	if (f->cfg.pre_open)
		f->perm_mask |= FAN_OPEN_PERM;
	if (f->cfg.pre_exec)
		f->perm_mask |= FAN_OPEN_EXEC_PERM;
	if (f->cfg.pre_read)
		f->perm_mask |= FAN_ACCESS_PERM;
	if (f->cfg.pre_content)
		f->perm_mask |= FAN_PRE_ACCESS;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Answers                                                              */
/* ------------------------------------------------------------------ */

static int policy_verdict(const struct fltport_filter *f)
{
	return f->cfg.policy == FLTPORT_FAIL_CLOSED ? f->cfg.deny_errno : 0;
}

/* Write one response: verdict 0 allows, a positive errno denies. */
static void respond(struct fltport_filter *f, int fd, int verdict)
{
	struct fanotify_response r = { .fd = fd, .response = FAN_ALLOW };

	if (verdict) {
		r.response = FAN_DENY;
		if (verdict != EPERM && fltport_filter_errno_supported(f, verdict))
			r.response = FAN_DENY_ERRNO(verdict);
	}
	for (;;) {
		if (write(f->perm_fd, &r, sizeof(r)) == (ssize_t)sizeof(r))
			break;
		if (errno == EINTR)
			continue;
		if (errno == EINVAL && r.response != FAN_DENY && r.response != FAN_ALLOW) {
			r.response = FAN_DENY; /* refused errno: plain deny */
			continue;
		}
		atomic_fetch_add(&f->c.answer_errors, 1);
		fp_filter_debug("response for fd %d refused: %s", fd, strerror(errno));
		break;
	}
	if (verdict)
		atomic_fetch_add(&f->c.denied, 1);
	else
		atomic_fetch_add(&f->c.allowed, 1);
	atomic_fetch_sub(&f->c.in_flight, 1);
}

/* The one answer of a pending event; false if someone answered first. */
static bool answer(struct fltport_filter *f, struct fp_filter_pending *p, int verdict)
{
	bool expected = false;

	if (!atomic_compare_exchange_strong(&p->answered, &expected, true))
		return false;
	respond(f, p->fd, verdict);
	return true;
}

/* Answer an event that never becomes a pending one, and release it. */
static void answer_now(struct fltport_filter *f, int fd, int pidfd, int verdict)
{
	respond(f, fd, verdict);
	close(fd);
	if (pidfd >= 0)
		close(pidfd);
}

/* ------------------------------------------------------------------ */
/* Lists (under f->lock)                                                */
/* ------------------------------------------------------------------ */

static void q_push(struct fltport_filter *f, struct fp_filter_pending *p)
{
	p->qnext = NULL;
	p->qprev = f->qtail;
	if (f->qtail)
		f->qtail->qnext = p;
	else
		f->qhead = p;
	f->qtail = p;
	f->qlen++;
}

static void q_unlink(struct fltport_filter *f, struct fp_filter_pending *p)
{
	if (p->qprev)
		p->qprev->qnext = p->qnext;
	else
		f->qhead = p->qnext;
	if (p->qnext)
		p->qnext->qprev = p->qprev;
	else
		f->qtail = p->qprev;
	p->qprev = p->qnext = NULL;
	f->qlen--;
}

static void d_push(struct fltport_filter *f, struct fp_filter_pending *p)
{
	p->dnext = NULL;
	p->dprev = f->dtail;
	if (f->dtail)
		f->dtail->dnext = p;
	else
		f->dhead = p;
	f->dtail = p;
	p->on_deadline = true;
}

static void d_unlink(struct fltport_filter *f, struct fp_filter_pending *p)
{
	if (p->dprev)
		p->dprev->dnext = p->dnext;
	else
		f->dhead = p->dnext;
	if (p->dnext)
		p->dnext->dprev = p->dprev;
	else
		f->dtail = p->dprev;
	p->dprev = p->dnext = NULL;
	p->on_deadline = false;
}

static void release_n(struct fp_filter_pending *p, int n)
{
	p->refs -= n;
	if (p->refs > 0)
		return;
	close(p->fd);
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p->path);
	free(p);
}

/* ------------------------------------------------------------------ */
/* Reader                                                               */
/* ------------------------------------------------------------------ */

struct fp_event_info {
	int pidfd;
	bool has_range;
	uint64_t offset, count;
};

static void parse_info(const struct fanotify_event_metadata *m, const char *raw,
		       struct fp_event_info *inf)
{
	const char *p = raw + m->metadata_len;
	const char *end = raw + m->event_len;

	inf->pidfd = -1;
	inf->has_range = false;
	inf->offset = inf->count = 0;
	while (p + sizeof(struct fanotify_event_info_header) <= end) {
		struct fanotify_event_info_header h;

		memcpy(&h, p, sizeof(h));
		if (h.len < sizeof(h) || p + h.len > end)
			break;
		if (h.info_type == FAN_EVENT_INFO_TYPE_PIDFD &&
		    h.len >= sizeof(struct fp_fan_info_pidfd)) {
			struct fp_fan_info_pidfd r;

			memcpy(&r, p, sizeof(r));
			if (r.pidfd >= 0)
				inf->pidfd = r.pidfd;
		} else if (h.info_type == FAN_EVENT_INFO_TYPE_RANGE &&
			   h.len >= sizeof(struct fp_fan_info_range)) {
			struct fp_fan_info_range r;

			memcpy(&r, p, sizeof(r));
			inf->has_range = true;
			inf->offset = r.offset;
			inf->count = r.count;
		}
		p += h.len;
	}
}

static void enqueue(struct fltport_filter *f, const struct fanotify_event_metadata *m,
		    const struct fp_event_info *inf, const char *path)
{
	struct fp_filter_pending *p = calloc(1, sizeof(*p));
	bool wake_deadline;

	if (p)
		p->path = strdup(path);
	if (!p || !p->path) {
		free(p);
		atomic_fetch_add(&f->c.overflowed, 1);
		answer_now(f, m->fd, inf->pidfd, policy_verdict(f));
		return;
	}
	p->fd = m->fd;
	p->pidfd = inf->pidfd;
	p->pid = m->pid;
	p->mask = m->mask;
	p->has_range = inf->has_range;
	p->offset = inf->offset;
	p->count = inf->count;
	p->deadline = fp_filter_now() + f->cfg.deadline_ns;
	p->refs = 2; /* the queue/worker side and the deadline side */
	atomic_init(&p->answered, false);
	pthread_mutex_lock(&f->lock);
	if (f->qlen >= f->cfg.queue_max) {
		pthread_mutex_unlock(&f->lock);
		/* Overflow: answered by policy at once, never left to wait. */
		atomic_fetch_add(&f->c.overflowed, 1);
		answer_now(f, m->fd, inf->pidfd, policy_verdict(f));
		fp_filter_debug("queue full: pid %d %s answered by policy", (int)m->pid, path);
		free(p->path);
		free(p);
		return;
	}
	p->state = FP_P_QUEUED;
	q_push(f, p);
	wake_deadline = f->dhead == NULL;
	d_push(f, p);
	pthread_cond_signal(&f->work_cond);
	if (wake_deadline)
		pthread_cond_signal(&f->deadline_cond);
	pthread_mutex_unlock(&f->lock);
}

static void handle_event(struct fltport_filter *f, const struct fanotify_event_metadata *m,
			 const char *raw, char *path, size_t path_len)
{
	struct fp_event_info inf;

	parse_info(m, raw, &inf);
	if (m->fd < 0) { /* no file: only overflow reports, impossible here */
		if (inf.pidfd >= 0)
			close(inf.pidfd);
		return;
	}
	if (!(m->mask & f->perm_mask)) {
		close(m->fd);
		if (inf.pidfd >= 0)
			close(inf.pidfd);
		return;
	}
	atomic_fetch_add(&f->c.seen, 1);
	atomic_fetch_add(&f->c.in_flight, 1);
	if (m->pid == f->self || fp_filter_trusted(f, m->pid, inf.pidfd)) {
		atomic_fetch_add(&f->c.fast, 1);
		answer_now(f, m->fd, inf.pidfd, 0);
		return;
	}
	/* A path we cannot read stays in scope: decide it, never skip it. */
	if (fp_filter_fd_path(m->fd, path, path_len) != 0)
		path[0] = '\0';
	else if (!fp_filter_in_scope(f, path)) {
		atomic_fetch_add(&f->c.fast, 1);
		answer_now(f, m->fd, inf.pidfd, 0);
		return;
	}
	enqueue(f, m, &inf, path);
}

/* Events are copied out of the buffer before use: records after the
 * metadata need not keep it 8-byte aligned. */
static void handle_buffer(struct fltport_filter *f, const char *buf, size_t len)
{
	char path[PATH_MAX];

	for (size_t off = 0; off + FAN_EVENT_METADATA_LEN <= len;) {
		struct fanotify_event_metadata m;

		memcpy(&m, buf + off, sizeof(m));
		if (m.event_len < FAN_EVENT_METADATA_LEN || m.event_len > len - off)
			break;
		if (m.vers != FANOTIFY_METADATA_VERSION ||
		    m.metadata_len < FAN_EVENT_METADATA_LEN || m.metadata_len > m.event_len) {
			fp_filter_debug("fanotify metadata version %u unknown", m.vers);
			if (m.fd >= 0) {
				/* Still a permission event we must answer. */
				struct fanotify_response r = { .fd = m.fd, .response = FAN_ALLOW };

				(void)!write(f->perm_fd, &r, sizeof(r));
				close(m.fd);
			}
		} else {
			handle_event(f, &m, buf + off, path, sizeof(path));
		}
		off += m.event_len;
	}
}

static void *reader_main(void *arg)
{
	struct fltport_filter *f = arg;
	/* On the thread's stack: no allocation can fail here. */
	char buf[READ_BUF] __attribute__((aligned(8)));

	for (;;) {
		struct pollfd pfd[2] = { { .fd = f->perm_fd, .events = POLLIN },
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
				break; /* stopping and nothing left to read */
			continue;
		}
		n = read(f->perm_fd, buf, sizeof(buf));
		if (n > 0) {
			handle_buffer(f, buf, (size_t)n);
		} else if (n < 0 && errno != EINTR && errno != EAGAIN) {
			/* e.g. EMFILE: the kernel could not make the event's
			 * fd and has denied that event itself. */
			fp_filter_debug("read: %s", strerror(errno));
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Workers                                                              */
/* ------------------------------------------------------------------ */

static bool same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int ignore_flag(int mode)
{
	return mode == 1 ? FAN_MARK_IGNORE : FAN_MARK_IGNORED_MASK;
}

static void cache_undo(struct fltport_filter *f, const struct fp_filter_pending *p, int flag)
{
	(void)fanotify_mark(f->perm_fd, FAN_MARK_REMOVE | flag, p->mask & f->perm_mask, p->fd,
			    NULL);
}

/*
 * Remember an allow in the kernel: an evictable inode ignore mark, without
 * FAN_MARK_IGNORED_SURV_MODIFY, so the kernel clears it on the next
 * modification.  A modification between the callback's look at the file
 * (`before`) and the mark would be missed by the kernel, so the file state
 * is compared after the mark is in place and the mark removed if changed.
 * Placed before the answer, so the opener's next open already finds it.
 * Returns the ignore flag used (to undo it), or 0 if nothing was placed.
 */
static int cache_place(struct fltport_filter *f, const struct fp_filter_pending *p,
		       const struct stat *before)
{
	uint64_t mask = p->mask & f->perm_mask;
	int mode = atomic_load(&f->cache_mode);
	struct stat after;

	if (mode < 0)
		return 0;
	if (mode == 0 || mode == 1) {
		if (fanotify_mark(f->perm_fd, FAN_MARK_ADD | FAN_MARK_IGNORE | FAN_MARK_EVICTABLE,
				  mask, p->fd, NULL) == 0) {
			mode = 1;
		} else if (errno == EINVAL && mode == 0) {
			mode = 2;
		} else {
			fp_filter_debug("cache mark: %s", strerror(errno));
			return 0;
		}
	}
	if (mode == 2 &&
	    fanotify_mark(f->perm_fd, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_EVICTABLE,
			  mask, p->fd, NULL) != 0) {
		if (errno == EINVAL) /* no evictable marks: do not pin inodes */
			atomic_store(&f->cache_mode, -1);
		return 0;
	}
	atomic_store(&f->cache_mode, mode);
	if (fstat(p->fd, &after) != 0 || !same_file_state(before, &after)) {
		cache_undo(f, p, ignore_flag(mode));
		return 0;
	}
	return ignore_flag(mode);
}

struct fp_op_map {
	uint64_t bit;
	enum fltport_filter_op op;
};

/* Exec before open: an exec's open reports both bits (or two events). */
static const struct fp_op_map op_order[] = {
	{ FAN_OPEN_EXEC_PERM, FLTPORT_OP_EXEC },
	{ FAN_OPEN_PERM, FLTPORT_OP_OPEN },
	{ FAN_ACCESS_PERM, FLTPORT_OP_READ },
	{ FAN_PRE_ACCESS, FLTPORT_OP_CONTENT },
};

static fltport_filter_pre_fn callback_for(const struct fltport_filter *f, enum fltport_filter_op op)
{
	switch (op) {
	case FLTPORT_OP_EXEC:
		return f->cfg.pre_exec;
	case FLTPORT_OP_OPEN:
		return f->cfg.pre_open;
	case FLTPORT_OP_READ:
		return f->cfg.pre_read;
	case FLTPORT_OP_CONTENT:
		return f->cfg.pre_content;
	default:
		return NULL;
	}
}

/* Map a callback's return to 0 (allow) or a positive errno (deny). */
static int deny_errno_of(int v)
{
	if (v >= 0)
		return 0;
	if (v < -255)
		return EPERM;
	return -v;
}

static void decide(struct fltport_filter *f, struct fp_filter_pending *p)
{
	struct fltport_filter_event ev = {
		.filter = f,
		.mask = p->mask,
		.fd = p->fd,
		.path = p->path,
		.pid = p->pid,
		.pidfd = p->pidfd,
		.deadline_ns = p->deadline,
		.has_range = p->has_range,
		.offset = p->offset,
		.count = p->count,
	};
	char exe[PATH_MAX];
	struct stat before;
	bool cacheable = atomic_load(&f->cache_mode) >= 0 && fstat(p->fd, &before) == 0;
	int deny = 0, cached;

	fp_filter_identity(f, p->pid, p->pidfd, &ev.uid, &ev.gid, exe, sizeof(exe));
	ev.exe = exe;
	for (size_t i = 0; i < sizeof(op_order) / sizeof(op_order[0]) && !deny; i++) {
		fltport_filter_pre_fn fn;
		int v;

		if (!(p->mask & op_order[i].bit) || !(fn = callback_for(f, op_order[i].op)))
			continue;
		ev.op = op_order[i].op;
		v = fn(f->cfg.cookie, &ev);
		if (v != FLTPORT_ALLOW_CACHE)
			cacheable = false;
		deny = deny_errno_of(v);
	}
	if (fp_filter_now() >= p->deadline) {
		/* Decided too late (e.g. a send that timed out with the
		 * deadline): the policy answers, exactly as if the deadline
		 * thread had been first. */
		atomic_fetch_add(&f->c.late, 1);
		if (answer(f, p, policy_verdict(f)))
			atomic_fetch_add(&f->c.timed_out, 1);
		fp_filter_debug("late verdict dropped: pid %d %s", (int)p->pid, p->path);
		return;
	}
	cached = !deny && cacheable ? cache_place(f, p, &before) : 0;
	if (!answer(f, p, deny)) {
		if (cached) /* the deadline answered by policy: not our allow */
			cache_undo(f, p, cached);
		atomic_fetch_add(&f->c.late, 1);
		fp_filter_debug("late verdict dropped: pid %d %s", (int)p->pid, p->path);
		return;
	}
	if (cached)
		atomic_fetch_add(&f->c.cached, 1);
	fp_filter_debug("pid %d %s: %s%s%s", (int)p->pid, p->path, deny ? "deny " : "allow",
			deny ? strerror(deny) : "", cached ? " (cached)" : "");
}

static void *worker_main(void *arg)
{
	struct fltport_filter *f = arg;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		struct fp_filter_pending *p;

		while (!f->qhead && !f->workers_stop)
			pthread_cond_wait(&f->work_cond, &f->lock);
		if (!f->qhead)
			break;
		p = f->qhead;
		q_unlink(f, p);
		p->state = FP_P_RUNNING;
		pthread_mutex_unlock(&f->lock);
		if (!atomic_load(&p->answered))
			decide(f, p);
		pthread_mutex_lock(&f->lock);
		p->state = FP_P_DONE;
		if (p->on_deadline) {
			d_unlink(f, p);
			release_n(p, 2); /* the deadline side's and ours */
		} else {
			release_n(p, 1);
		}
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Deadline                                                             */
/* ------------------------------------------------------------------ */

static struct timespec abs_ts(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };

	return ts;
}

static void *deadline_main(void *arg)
{
	struct fltport_filter *f = arg;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		struct fp_filter_pending *p = f->dhead;

		if (!p) {
			if (f->deadline_stop)
				break;
			pthread_cond_wait(&f->deadline_cond, &f->lock);
			continue;
		}
		if (!f->deadline_stop && p->deadline > fp_filter_now()) {
			struct timespec ts = abs_ts(p->deadline);

			pthread_cond_timedwait(&f->deadline_cond, &f->lock, &ts);
			continue;
		}
		d_unlink(f, p);
		if (p->state == FP_P_QUEUED) {
			q_unlink(f, p);
			p->state = FP_P_DONE;
			release_n(p, 1); /* the queue's reference; ours keeps it alive */
		}
		pthread_mutex_unlock(&f->lock);
		if (answer(f, p, policy_verdict(f))) {
			atomic_fetch_add(&f->c.timed_out, 1);
			fp_filter_debug("deadline: pid %d %s answered by policy", (int)p->pid,
					p->path);
		}
		pthread_mutex_lock(&f->lock);
		release_n(p, 1);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Start / stop                                                         */
/* ------------------------------------------------------------------ */

int fp_filter_perm_start(struct fltport_filter *f)
{
	int rc;

	f->workers = calloc(f->cfg.workers, sizeof(*f->workers));
	if (!f->workers)
		return -ENOMEM;
	rc = pthread_create(&f->deadline, NULL, deadline_main, f);
	if (rc)
		goto fail;
	f->have_deadline = true;
	for (unsigned i = 0; i < f->cfg.workers; i++) {
		rc = pthread_create(&f->workers[i], NULL, worker_main, f);
		if (rc)
			goto fail;
		f->nworkers++;
	}
	rc = pthread_create(&f->reader, NULL, reader_main, f);
	if (rc)
		goto fail;
	f->have_reader = true;
	return 0;
fail:
	fp_filter_perm_stop(f);
	return -rc;
}

void fp_filter_perm_stop(struct fltport_filter *f)
{
	uint64_t one = 1;

	atomic_store(&f->stopping, true);
	(void)!write(f->wake_fd, &one, sizeof(one));
	if (f->have_reader)
		pthread_join(f->reader, NULL);
	f->have_reader = false;
	pthread_mutex_lock(&f->lock);
	f->workers_stop = true;
	pthread_cond_broadcast(&f->work_cond);
	pthread_mutex_unlock(&f->lock);
	for (unsigned i = 0; i < f->nworkers; i++)
		pthread_join(f->workers[i], NULL);
	f->nworkers = 0;
	pthread_mutex_lock(&f->lock);
	f->deadline_stop = true;
	pthread_cond_signal(&f->deadline_cond);
	pthread_mutex_unlock(&f->lock);
	if (f->have_deadline)
		pthread_join(f->deadline, NULL);
	f->have_deadline = false;
}
