/*
 * The permission side: probe, leader/follower workers, deadline, cache.
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
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
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
	/* Non-blocking: several threads wait for events (perm.c, "Readers"),
	 * and the one the kernel wakes may find another got there first. */
	const unsigned base =
		FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS;
	const unsigned evf = O_RDONLY | O_LARGEFILE | O_CLOEXEC;
	bool want_pidfd = !(f->cfg.flags & FLTPORT_FILTER_NO_PIDFD);
	int err = EINVAL;

	/* FAN_REPORT_FD_ERROR: without it, an event whose file the kernel
	 * cannot open for us (EMFILE, an LSM) is denied by the kernel and
	 * cuts the read short, so the events after it wait for another read
	 * that nothing announces (read_events()). */
	for (unsigned c = 0; c < 2; c++) {
		for (int pidfd = want_pidfd; pidfd >= 0; pidfd--) {
			for (int fderr = 1; fderr >= 0; fderr--) {
				unsigned fl = classes[c] | base | (pidfd ? FAN_REPORT_PIDFD : 0) |
					      (fderr ? FAN_REPORT_FD_ERROR : 0);
				int fd = fanotify_init(fl, evf);

				if (fd >= 0) {
					f->perm_fd = fd;
					if (pidfd)
						f->features |= FLTPORT_FILTER_HAVE_PIDFD;
					if (fderr)
						f->features |= FLTPORT_FILTER_HAVE_FD_ERROR;
					if (classes[c] == FAN_CLASS_PRE_CONTENT)
						f->features |= FLTPORT_FILTER_HAVE_PRE_CONTENT;
					return 0;
				}
				err = errno;
				if (err == EPERM || err == EMFILE || err == ENFILE || err == ENOMEM)
					return -err;
			}
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
	/* Counted before the answer is written: the opener returns as soon as
	 * the kernel has it, and whoever it tells must find it counted. */
	if (verdict)
		atomic_fetch_add(&f->c.denied, 1);
	else
		atomic_fetch_add(&f->c.allowed, 1);
	atomic_fetch_sub(&f->c.in_flight, 1);
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
}

/* The one answer of a pending event; false if someone answered first.
 * `also` (or NULL): a counter of why it was answered (timed_out), counted
 * with the answer, before the opener can see it. */
static bool answer(struct fltport_filter *f, struct fp_filter_pending *p, int verdict,
		   atomic_uint_fast64_t *also)
{
	bool expected = false;

	if (!atomic_compare_exchange_strong(&p->answered, &expected, true))
		return false;
	if (also)
		atomic_fetch_add(also, 1);
	respond(f, p->fd, verdict);
	return true;
}

/* ------------------------------------------------------------------ */
/* The fd budget                                                        */
/* ------------------------------------------------------------------ */

/*
 * The kernel turns every event the reader reads into an open fd (two with
 * FAN_REPORT_PIDFD).  If it cannot (EMFILE), it denies that permission
 * event itself — whatever the policy.  So the engine keeps the events it
 * holds (read, fds not yet closed) below a budget derived from
 * RLIMIT_NOFILE, and reads fewer events rather than more than fit: the
 * rest wait in the kernel's unlimited queue.  The pidfds kept after their
 * events (keep_pidfd(), below) are outside the budget: the reserve grows
 * by their number.
 */
static unsigned fds_per_event(const struct fltport_filter *f)
{
	return (f->features & FLTPORT_FILTER_HAVE_PIDFD) ? 2u : 1u;
}

/* At start: raise the soft limit to the hard one, and size the budget,
 * keeping a quarter of the limit (at least 64) for everything else the
 * process does (its ports, its callbacks' files), and room for the kept
 * pidfds. */
static void budget_init(struct fltport_filter *f)
{
	struct rlimit rl;
	uint64_t limit = 1024, reserve;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur != rl.rlim_max) {
			struct rlimit raised = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };

			if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
				rl = raised;
		}
		limit = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : (uint64_t)rl.rlim_cur;
	}
	if (limit > (1u << 20))
		limit = 1u << 20;
	reserve = limit / 4 > 64 ? limit / 4 : 64;
	if (f->features & FLTPORT_FILTER_HAVE_PIDFD)
		reserve += FP_PIDFD_KEEP;
	f->max_in_flight = limit > reserve + 2 * fds_per_event(f)
				   ? (unsigned)((limit - reserve) / fds_per_event(f))
				   : 2;
	fp_filter_debug("fd budget: RLIMIT_NOFILE %llu, at most %u events held",
			(unsigned long long)limit, f->max_in_flight);
}

/* An event's fd is closed (its pidfd kept or closed): give its place in the budget back (every
 * reader waiting for it may read: several can wait at once). */
static void held_release(struct fltport_filter *f)
{
	if (atomic_fetch_sub(&f->held, 1) == f->max_in_flight) {
		pthread_mutex_lock(&f->budget_lock);
		if (f->budget_waiters)
			pthread_cond_broadcast(&f->budget_cond);
		pthread_mutex_unlock(&f->budget_lock);
	}
}

/*
 * An event's pidfd is kept open after the event, one per slot by its pid,
 * until a later event's pidfd takes the slot.  On pidfs (Linux 6.9+) the
 * pidfds of one process share an inode and a dentry that live only while
 * one of them is open: closing each event's pidfd freed them, and the
 * process's next event made them again, which cost about 3 us of an
 * allowed open's 10 (docs/FILTER.md, "The kept pidfd").  A kept pidfd holds the
 * process's struct pid only, not the process; the slots count in the part
 * of RLIMIT_NOFILE the fd budget leaves to the rest of the process.
 */
static void keep_pidfd(struct fltport_filter *f, pid_t pid, int pidfd)
{
	int old = atomic_exchange(&f->pidfd_keep[(unsigned)pid % FP_PIDFD_KEEP], pidfd);

	if (old >= 0)
		close(old);
}

static void close_event(struct fltport_filter *f, int fd, int pidfd, pid_t pid)
{
	close(fd);
	if (pidfd >= 0)
		keep_pidfd(f, pid, pidfd);
	held_release(f);
}

/* The room now, without waiting for it. */
static unsigned budget_room_now(struct fltport_filter *f)
{
	unsigned held = atomic_load(&f->held);

	return held < f->max_in_flight ? f->max_in_flight - held : 0;
}

/* The reader: wait until the budget has room (or stopping); returns how
 * many more events it may read now. */
static unsigned budget_room(struct fltport_filter *f)
{
	unsigned held, room = budget_room_now(f);

	if (room > 0)
		return room;
	atomic_fetch_add(&f->c.throttled, 1);
	pthread_mutex_lock(&f->budget_lock);
	f->budget_waiters++;
	while ((held = atomic_load(&f->held)) >= f->max_in_flight && !atomic_load(&f->stopping)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&f->budget_cond, &f->budget_lock, &ts);
	}
	f->budget_waiters--;
	pthread_mutex_unlock(&f->budget_lock);
	return held < f->max_in_flight ? f->max_in_flight - held : 0;
}

/* Answer an event that never becomes a pending one, and release it. */
static void answer_now(struct fltport_filter *f, int fd, int pidfd, pid_t pid, int verdict)
{
	respond(f, fd, verdict);
	close_event(f, fd, pidfd, pid);
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

/* The fds of a pending event whose last reference went (under f->lock):
 * closed by the caller once it has unlocked, so that no system call runs
 * under the lock every reader and the deadline thread take. */
struct fp_dead {
	int fd, pidfd;
	pid_t pid;
};
#define FP_DEAD_NONE      \
	{                 \
		-1, -1, 0 \
	}

/* A pending's path for debug lines ("-": lazy, not worked out by the
 * engine; the callback's copy is its own). */
static const char *pname(const struct fp_filter_pending *p)
{
	return p->path ? p->path : "-";
}

/* Drop n references (f->lock held).  The last one recycles the pending
 * (no allocation per event) and hands its fds over in *dead. */
static void release_n(struct fp_filter_pending *p, int n, struct fp_dead *dead)
{
	struct fltport_filter *f = p->filter;

	p->refs -= n;
	if (p->refs > 0)
		return;
	dead->fd = p->fd;
	dead->pidfd = p->pidfd;
	dead->pid = p->pid;
	if (p->path != p->small)
		free(p->path);
	if (f->npfree < FP_PENDING_FREE_MAX) {
		p->qnext = f->pfree;
		f->pfree = p;
		f->npfree++;
	} else {
		free(p);
	}
}

/* Close what release_n() handed over (f->lock not held). */
static void bury(struct fltport_filter *f, struct fp_dead *dead)
{
	if (dead->fd >= 0)
		close_event(f, dead->fd, dead->pidfd, dead->pid);
	dead->fd = dead->pidfd = -1;
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

/*
 * Whether the queue is full (f->lock held): queue_max counts the events
 * that wait for a worker, and a worker that is not inside a callback
 * (idle, reading, or just back from one) takes a queued event at once.
 * So an event is answered by policy as overflow only when queue_max events
 * are queued beyond those workers.  (Counting every queued event once
 * turned a worker's batch into overflow while other workers were idle:
 * filter::queue_max_counts_only_events_no_worker_takes.)
 */
static bool queue_full(const struct fltport_filter *f)
{
	unsigned running = atomic_load(&f->running);
	/* cfg.workers: every one of them runs (or create failed) */
	unsigned free_workers = f->cfg.workers > running ? f->cfg.workers - running : 0;

	return f->qlen >= f->cfg.queue_max + free_workers;
}
/* Make a pending event of `m`: on the deadline list, and either queued for
 * a worker or, with `keep`, returned to the caller (the reading worker) to
 * decide itself.  NULL if queued or answered at once.  path NULL: lazy (the
 * pending's path stays NULL; decide() works it out if asked). */
static struct fp_filter_pending *enqueue(struct fltport_filter *f,
					 const struct fanotify_event_metadata *m,
					 const struct fp_event_info *inf, const char *path,
					 bool keep, unsigned *queued)
{
	size_t len = path ? strlen(path) : 0;
	struct fp_filter_pending *p;

	pthread_mutex_lock(&f->lock);
	p = f->pfree;
	if (p) {
		f->pfree = p->qnext;
		f->npfree--;
	}
	pthread_mutex_unlock(&f->lock);
	if (!p)
		p = malloc(sizeof(*p));
	if (p) {
		memset(p, 0, offsetof(struct fp_filter_pending, small));
		if (path)
			p->path = len < sizeof(p->small) ? p->small : strdup(path);
		if (path && p->path == p->small)
			memcpy(p->small, path, len + 1);
	}
	if (!p || (path && !p->path)) {
		free(p);
		atomic_fetch_add(&f->c.overflowed, 1);
		answer_now(f, m->fd, inf->pidfd, m->pid, policy_verdict(f));
		return NULL;
	}
	p->filter = f;
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
	if (!keep && queue_full(f)) {
		pthread_mutex_unlock(&f->lock);
		/* Overflow: answered by policy at once, never left to wait. */
		atomic_fetch_add(&f->c.overflowed, 1);
		answer_now(f, m->fd, inf->pidfd, m->pid, policy_verdict(f));
		fp_filter_debug("queue full: pid %d %s answered by policy", (int)m->pid,
				path ? path : "-");
		if (p->path != p->small)
			free(p->path);
		free(p);
		return NULL;
	}
	if (keep) {
		p->state = FP_P_RUNNING;
		atomic_fetch_add(&f->running, 1);
	} else {
		p->state = FP_P_QUEUED;
		q_push(f, p); /* the reader tells idle workers (queue_fd) */
		(*queued)++;
	}
	d_push(f, p); /* the deadline thread needs no wake-up: see deadline_main() */
	pthread_mutex_unlock(&f->lock);
	return keep ? p : NULL;
}

/* One event: answered at once (own or trusted process), or made pending
 * (kept for the caller when `keep`: see enqueue()). */
static struct fp_filter_pending *handle_event(struct fltport_filter *f,
					      const struct fanotify_event_metadata *m,
					      const char *raw, char *path, size_t path_len,
					      bool keep, unsigned *queued)
{
	struct fp_event_info inf;

	parse_info(m, raw, &inf);
	if (m->fd < 0) {
		/* FAN_REPORT_FD_ERROR: the kernel could not open the file for
		 * us and has denied the event itself.  (An overflow report,
		 * impossible with FAN_UNLIMITED_QUEUE, has FAN_Q_OVERFLOW; its
		 * fd, FAN_NOFD, is -1 = -EPERM, an error an LSM gives too.) */
		if ((f->features & FLTPORT_FILTER_HAVE_FD_ERROR) && !(m->mask & FAN_Q_OVERFLOW)) {
			atomic_fetch_add(&f->c.kernel_denied, 1);
			fp_filter_debug("event for pid %d: no fd (%s): the kernel denied it",
					(int)m->pid, strerror(-m->fd));
		}
		if (inf.pidfd >= 0)
			close(inf.pidfd);
		return NULL;
	}
	if (!(m->mask & f->perm_mask)) {
		close_event(f, m->fd, inf.pidfd, m->pid);
		return NULL;
	}
	atomic_fetch_add(&f->c.seen, 1);
	atomic_fetch_add(&f->c.in_flight, 1);
	if (m->pid == f->self || fp_filter_trusted(f, m->pid, inf.pidfd)) {
		atomic_fetch_add(&f->c.fast, 1);
		answer_now(f, m->fd, inf.pidfd, m->pid, 0);
		return NULL;
	}
	/* Every event of a marked file system is decided: the scope is the
	 * kernel's mark, never this path (filter.h).  A path we cannot read
	 * is given as "".  Lazy: the callback asks for it, if it wants it. */
	if (f->cfg.flags & FLTPORT_FILTER_LAZY_INFO)
		return enqueue(f, m, &inf, NULL, keep, queued);
	if (fp_filter_fd_path(f, m->fd, path, path_len) != 0)
		path[0] = '\0';
	return enqueue(f, m, &inf, path, keep, queued);
}

/* Events are copied out of the buffer before use: records after the
 * metadata need not keep it 8-byte aligned.  With `keep`, the first event
 * that needs a callback is returned to the caller instead of queued;
 * *queued counts the ones queued. */
static struct fp_filter_pending *handle_buffer(struct fltport_filter *f, const char *buf,
					       size_t len, bool keep, unsigned *queued)
{
	struct fp_filter_pending *kept = NULL;
	char path[PATH_MAX];

	for (size_t off = 0; off + FAN_EVENT_METADATA_LEN <= len;) {
		struct fanotify_event_metadata m;

		memcpy(&m, buf + off, sizeof(m));
		if (m.event_len < FAN_EVENT_METADATA_LEN || m.event_len > len - off)
			break;
		if (m.fd >= 0)
			atomic_fetch_add(&f->held, 1);
		if (m.vers != FANOTIFY_METADATA_VERSION ||
		    m.metadata_len < FAN_EVENT_METADATA_LEN || m.metadata_len > m.event_len) {
			fp_filter_debug("fanotify metadata version %u unknown", m.vers);
			if (m.fd >= 0) {
				/* Still a permission event we must answer. */
				struct fanotify_response r = { .fd = m.fd, .response = FAN_ALLOW };

				(void)!write(f->perm_fd, &r, sizeof(r));
				close_event(f, m.fd, -1, 0);
			}
		} else {
			struct fp_filter_pending *p = handle_event(
				f, &m, buf + off, path, sizeof(path), keep && !kept, queued);

			if (p)
				kept = p;
		}
		off += m.event_len;
	}
	return kept;
}

/* What a read_events() call did besides the event it returns. */
struct fp_readout {
	bool empty;      /* nothing to read */
	bool full;       /* the read filled its buffer: more may wait in the group */
	unsigned queued; /* events it queued for the workers */
};

/*
 * Read events and handle them: at most `max` (bounded by the fd budget).
 * Own and trusted processes' events are answered at once; with `keep`, the
 * first event that needs a callback is returned to the caller (a worker
 * runs it itself), the others are queued.  Returns NULL with out->empty set
 * when there was nothing to read.
 */
static struct fp_filter_pending *read_events(struct fltport_filter *f, char *buf, unsigned max,
					     bool keep, struct fp_readout *out)
{
	struct fp_filter_pending *kept = NULL;
	unsigned room = budget_room(f);
	size_t want;
	ssize_t n;

	*out = (struct fp_readout){ .empty = false };
	if (room == 0)
		return NULL;
	for (;;) {
		struct fp_filter_pending *p;

		if (room > max)
			room = max;
		/* Each record is at least FAN_EVENT_METADATA_LEN bytes; the
		 * floor (one event with every info record we ask for) lets
		 * one event through, or a few small ones that the budget's
		 * reserve covers. */
		want = (size_t)room * FAN_EVENT_METADATA_LEN;
		if (want < f->event_max)
			want = f->event_max;
		if (want > READ_BUF)
			want = READ_BUF;
		n = read(f->perm_fd, buf, want);
		if (n <= 0)
			break;
		out->full = (size_t)n + f->event_max > want;
		p = handle_buffer(f, buf, (size_t)n, keep && !kept, &out->queued);
		if (p)
			kept = p;
		/* Before Linux 6.13 (no FAN_REPORT_FD_ERROR) the kernel ends a
		 * read at an event it could not open for us, denying it
		 * itself, and returns the events before it: a read that was
		 * not full may have left events that nothing announces.
		 * Read on until the group is empty or a read is full. */
		if (out->full || (f->features & FLTPORT_FILTER_HAVE_FD_ERROR))
			return kept;
		room = budget_room_now(f);
		if (room == 0) {
			out->full = true; /* the budget's waiters read on */
			return kept;
		}
	}
	/* n <= 0: the first read, or one reading on after a short read. */
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		out->empty = errno == EAGAIN;
		out->full = errno == EINTR; /* not read: still there */
		return kept;
	}
	if (n < 0) {
		/* EMFILE/ENFILE/ENOMEM (before FAN_REPORT_FD_ERROR): the
		 * kernel could not make an event's fd and has failed that
		 * event itself (it cannot be answered by policy: it is gone).
		 * Counted; wait for fds to come back before reading again.
		 * Any other error: wait too, never spin. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
			atomic_fetch_add(&f->c.kernel_denied, 1);
		fp_filter_debug("read: %s", strerror(errno));
		if (!kept) /* an event in hand is not held up */
			usleep(10000);
		out->full = true; /* what the kernel still holds needs a reader */
	}
	return kept;
}

/* ------------------------------------------------------------------ */
/* Workers                                                              */
/* ------------------------------------------------------------------ */

/*
 * The cache is never staler than the scan.  Before the callbacks run, the
 * worker takes a read lease on the event's file: the kernel refuses it
 * while anyone has the file open for writing (a writable shared mapping
 * included), and breaks it as soon as anyone opens it for writing or
 * truncates it.  An allow is cached only if the lease was taken before the
 * scan and is still unbroken after the mark is in place; from then on the
 * kernel clears the mark on modification.  The lease is released before
 * the answer (a writer that broke it waits at most until then; the
 * deadline thread releases it too when it answers first).
 */
static bool lease_take(int fd)
{
	return fp_filter_lease_take(fd) == 0;
}

/*
 * Taking a lease makes the caller the file's owner for signals: when a
 * writer breaks it, the kernel sends SIGIO, whose default action kills the
 * process.  So the owner is removed at once (F_SETOWN 0: no signal at all;
 * the break is seen through F_GETLEASE), and for the instant between the two
 * calls the signal is SIGURG (F_SETSIG), which is ignored by default.
 */
int fp_filter_lease_take(int fd)
{
	int rc;

	if (fcntl(fd, F_SETSIG, SIGURG) != 0 || fcntl(fd, F_SETLEASE, F_RDLCK) != 0)
		return -errno;
	if (fcntl(fd, F_SETOWN, 0) != 0) {
		rc = -errno;
		(void)fcntl(fd, F_SETLEASE, F_UNLCK);
		return rc;
	}
	return 0;
}

static bool lease_intact(int fd)
{
	return fcntl(fd, F_GETLEASE) == F_RDLCK;
}

static void lease_drop(int fd)
{
	(void)fcntl(fd, F_SETLEASE, F_UNLCK);
}

/*
 * The lease costs four fcntl()s per event (three to take it, one to drop
 * it): a filter whose callbacks never return FLTPORT_ALLOW_CACHE should not
 * pay them.  decide() leases while the engine probes (its first
 * LEASE_PROBE decisions) and for good once a callback has returned
 * FLTPORT_ALLOW_CACHE.  After LEASE_PROBE decisions without one it stops;
 * the next FLTPORT_ALLOW_CACHE is then an allow that is not cached (there
 * was no lease to prove the scan current), and leasing is on for good from
 * the next event.
 */
enum { FP_LEASE_PROBING, FP_LEASE_ON, FP_LEASE_OFF };
#define LEASE_PROBE 64u

static void lease_note(struct fltport_filter *f, int mode, bool said_cache)
{
	int expect = FP_LEASE_PROBING;

	if (said_cache) {
		if (mode != FP_LEASE_ON)
			atomic_store(&f->lease_mode, FP_LEASE_ON);
	} else if (mode == FP_LEASE_PROBING &&
		   atomic_fetch_add(&f->lease_probe, 1) + 1 >= LEASE_PROBE) {
		atomic_compare_exchange_strong(&f->lease_mode, &expect, FP_LEASE_OFF);
	}
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
 * modification.  A writer between the start of the scan and the mark would
 * be missed by the kernel: the read lease taken before the scan must still
 * be intact once the mark is in place, else the mark is removed.  Placed
 * before the answer, so the opener's next open already finds it.  Returns
 * the ignore flag used (to undo it), or 0 if nothing was placed.
 */
static int cache_place(struct fltport_filter *f, const struct fp_filter_pending *p)
{
	uint64_t mask = p->mask & f->perm_mask;
	int mode = atomic_load(&f->cache_mode);

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
	if (!lease_intact(p->fd)) {
		cache_undo(f, p, ignore_flag(mode));
		fp_filter_debug("not cached: pid %d %s was opened for writing during the scan",
				(int)p->pid, pname(p));
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

/* Map a callback's return to 0 (allow) or a positive errno (deny): a value
 * the engine does not understand denies (filter.h). */
static int deny_errno_of(int v)
{
	if (v == FLTPORT_ALLOW || v == FLTPORT_ALLOW_CACHE)
		return 0;
	if (v < 0 && v >= -255)
		return -v;
	return EPERM;
}

/* The worker running an event is out of its callbacks: from now on it
 * counts as free for queue_full() (before the answer, so that an opener
 * told the verdict finds the worker free). */
static void callbacks_done(struct fltport_filter *f)
{
	atomic_fetch_sub(&f->running, 1);
}
/* What the accessors of a lazy event work out, once (fltport_filter_event_
 * path / _identity): on the stack of decide(), which outlives the callbacks. */
struct fp_lazy {
	struct fltport_filter *f;
	const struct fp_filter_pending *p;
	bool have_path, have_ident;
	uid_t uid;
	gid_t gid;
	char path[PATH_MAX];
	char exe[PATH_MAX];
};

static void lazy_identity(struct fp_lazy *lz)
{
	if (!lz->have_ident)
		fp_filter_identity(lz->f, lz->p->pid, lz->p->pidfd, &lz->uid, &lz->gid, lz->exe,
				   sizeof(lz->exe));
	lz->have_ident = true;
}

FLTPORT_API const char *fltport_filter_event_path(const struct fltport_filter_event *ev)
{
	struct fp_lazy *lz;

	if (!ev)
		return NULL;
	if (ev->path || !ev->fltport_private)
		return ev->path ? ev->path : "";
	lz = (struct fp_lazy *)ev->fltport_private;
	if (!lz->have_path && fp_filter_fd_path(lz->f, lz->p->fd, lz->path, sizeof(lz->path)) != 0)
		lz->path[0] = '\0';
	lz->have_path = true;
	return lz->path;
}

FLTPORT_API int fltport_filter_event_identity(const struct fltport_filter_event *ev, uid_t *uid,
					      gid_t *gid, const char **exe)
{
	uid_t u;
	gid_t g;
	const char *x;

	if (!ev)
		return -EINVAL;
	if (ev->exe || !ev->fltport_private) {
		u = ev->uid;
		g = ev->gid;
		x = ev->exe ? ev->exe : "";
	} else {
		struct fp_lazy *lz = (struct fp_lazy *)ev->fltport_private;

		lazy_identity(lz);
		u = lz->uid;
		g = lz->gid;
		x = lz->exe;
	}
	if (uid)
		*uid = u;
	if (gid)
		*gid = g;
	if (exe)
		*exe = x;
	return u == (uid_t)-1 ? -ESRCH : 0;
}

static void decide(struct fltport_filter *f, struct fp_filter_pending *p)
{
	/* Not zeroed as a whole: its two PATH_MAX buffers are 8 KiB, which a
	 * memset per event wrote for nothing (callgrind: 85% of the engine's
	 * instructions per allowed event; little time on a CPU with fast
	 * string stores, but 8 KiB of cache). */
	struct fp_lazy lz;
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
		.uid = (uid_t)-1,
		.gid = (gid_t)-1,
		.fltport_private = &lz,
	};
	/* leased: this worker holds the scan's lease, and must drop it before
	 * the answer whatever the verdict — a copy of the fd a callback
	 * passed to a service (or kept) would otherwise keep the lease, and
	 * a writer would wait for it up to lease-break-time (45 s).
	 * cacheable: leased, and every callback so far said ALLOW_CACHE. */
	const int lease_mode = atomic_load_explicit(&f->lease_mode, memory_order_relaxed);
	bool leased =
		atomic_load(&f->cache_mode) >= 0 && lease_mode != FP_LEASE_OFF && lease_take(p->fd);
	bool cacheable = leased, said_cache = false;
	int deny = 0, cached;

	lz.f = f;
	lz.p = p;
	lz.have_path = lz.have_ident = false;
	lz.uid = (uid_t)-1;
	lz.gid = (gid_t)-1;
	lz.path[0] = lz.exe[0] = '\0';

	if (leased && atomic_load(&p->answered)) {
		/* The deadline answered first: nothing to cache (and it may
		 * have dropped its lease before this one was taken). */
		lease_drop(p->fd);
		leased = cacheable = false;
	}

	if (!(f->cfg.flags & FLTPORT_FILTER_LAZY_INFO)) {
		lazy_identity(&lz);
		ev.uid = lz.uid;
		ev.gid = lz.gid;
		ev.exe = lz.exe;
	}
	for (size_t i = 0; i < sizeof(op_order) / sizeof(op_order[0]) && !deny; i++) {
		fltport_filter_pre_fn fn;
		int v;

		if (!(p->mask & op_order[i].bit) || !(fn = callback_for(f, op_order[i].op)))
			continue;
		ev.op = op_order[i].op;
		v = fn(f->cfg.cookie, &ev);
		if (v != FLTPORT_ALLOW_CACHE)
			cacheable = false;
		else
			said_cache = true;
		deny = deny_errno_of(v);
	}
	callbacks_done(f);
	if (atomic_load_explicit(&f->cache_mode, memory_order_relaxed) >= 0)
		lease_note(f, lease_mode, said_cache);
	if (fp_filter_now() >= p->deadline) {
		/* Decided too late (e.g. a send that timed out with the
		 * deadline): the policy answers, exactly as if the deadline
		 * thread had been first. */
		if (leased)
			lease_drop(p->fd);
		atomic_fetch_add(&f->c.late, 1);
		(void)answer(f, p, policy_verdict(f), &f->c.timed_out);
		fp_filter_debug("late verdict dropped: pid %d %s", (int)p->pid, pname(p));
		return;
	}
	cached = !deny && cacheable ? cache_place(f, p) : 0;
	if (leased)
		lease_drop(p->fd);
	/* Counted before the answer, as the answer itself is: whoever the
	 * opener tells reads the counters with the mark already counted. */
	if (cached)
		atomic_fetch_add(&f->c.cached, 1);
	if (!answer(f, p, deny, NULL)) {
		if (cached) { /* the deadline answered by policy: not our allow */
			cache_undo(f, p, cached);
			atomic_fetch_sub(&f->c.cached, 1);
		}
		atomic_fetch_add(&f->c.late, 1);
		fp_filter_debug("late verdict dropped: pid %d %s", (int)p->pid, pname(p));
		return;
	}
	fp_filter_debug("pid %d %s: %s%s%s", (int)p->pid, pname(p), deny ? "deny " : "allow",
			deny ? strerror(deny) : "", cached ? " (cached)" : "");
}

/*
 * Readers.  The thread that reads an event runs its callback — no hop
 * between threads.  One idle worker, the leader, waits for the group in
 * epoll_wait() (the group edge-triggered in its set); the other idle
 * workers, the followers, wait in a set without the group.  The leader
 * reads every event queued at the time, up to a small batch, keeps the
 * first and queues the others; idle workers are woken for those through
 * the queue eventfd (in both sets), and one more if the read was full.
 *
 * The leader keeps the lead while it runs its callback: an event that
 * comes meanwhile waits in the group until the leader is back, which for
 * the callbacks most events get (an allow decided in the process, a cache
 * lookup, one question over a port) is sooner than a follower woken for it
 * could run — and on a busy CPU the event is read without anyone sleeping
 * in between.  (When every idle worker waited for the group, each event
 * woke one more thread: 0.48 context switches per open more than a raw
 * listener, measured.)  A callback must not stop events from being read,
 * though, nor keep other CPUs idle while events wait: while events come
 * faster than one leader takes them, every idle worker leads
 * (lead_note()); and the deadline thread takes the lead from a leader busy
 * for LEAD_WATCH_NS (lead_watch()): a follower called through lead_fd takes
 * it.  (A leader that handed the lead on before every callback that took
 * 50 us or more on average cost the scanner's ClamAV row 7.1 context
 * switches per open against 4.5, for nothing the two rules above do not
 * do: measured, and taken out.)  When every worker is busy,
 * the spare reader (a thread that never runs callbacks) reads instead and
 * queues what it reads: the deadline thread answers those in time even if
 * no worker comes back, and the first worker that does takes them.
 * (Sets of their own per worker, each holding the group level-triggered
 * with EPOLLEXCLUSIVE, also woke one worker per event, but a worker coming
 * back to its set found the group still listed as ready and read along
 * with the one woken for the next event: at high rates a third of the
 * reads found nothing.)  Lock: f->lock for the queue, `idle` and the lead.
 */
#define LEAD_READY_NS (2 * 1000) /* a wait this short did not sleep */
#define LEAD_WATCH_NS (1000 * 1000)

static void finish(struct fltport_filter *f, struct fp_filter_pending *p, struct fp_dead *dead)
{
	p->state = FP_P_DONE;
	if (p->on_deadline) {
		d_unlink(f, p);
		release_n(p, 2, dead); /* the deadline side's and ours */
	} else {
		release_n(p, 1, dead);
	}
}

/* A worker: whether it holds the lead (under f->lock). */
struct fp_worker {
	bool leader;
	bool following; /* counted in f->nfollow (waits in follow_ep) */
};

/* A running share (of 1024) over about the last 8 samples. */
static int share_note(_Atomic int *share, bool yes)
{
	int r = atomic_load_explicit(share, memory_order_relaxed);

	r += ((yes ? 1024 : 0) - r) / 8;
	atomic_store_explicit(share, r, memory_order_relaxed);
	return r;
}

/*
 * Whether events come faster than one leader takes them: then every idle
 * worker leads, as many reading at once as there are events; back to one
 * leader when they come slower again.  Two signs, each a running share: a
 * leader's read that finds more than one event (several openers at once);
 * and, on more than one CPU, a leader's wait that finds an event already
 * there (it did not sleep: another reader could have run it on another
 * CPU meanwhile).  On one CPU a wait finds the next event there whenever
 * the opener preempted the leader that answered it, so that sign means
 * nothing there.  `ready` < 0: a read, `batch` its sign; else a wait.
 */
static void lead_note(struct fltport_filter *f, int ready, bool batch)
{
	int r = atomic_load_explicit(&f->lead_ready, memory_order_relaxed);
	int b = atomic_load_explicit(&f->lead_batch, memory_order_relaxed);

	if (ready >= 0)
		r = share_note(&f->lead_ready, ready);
	else
		b = share_note(&f->lead_batch, batch);
	if (!f->multi_cpu)
		r = 0;
	if (r > 640 || b > 256)
		atomic_store_explicit(&f->lead_all, true, memory_order_relaxed);
	else if (r < 256 && b < 64)
		atomic_store_explicit(&f->lead_all, false, memory_order_relaxed);
}

static void run(struct fltport_filter *f, struct fp_filter_pending *p)
{
	struct fp_dead dead = FP_DEAD_NONE;

	if (!atomic_load(&p->answered))
		decide(f, p); /* calls callbacks_done() */
	else
		callbacks_done(f);
	pthread_mutex_lock(&f->lock);
	finish(f, p, &dead);
	pthread_mutex_unlock(&f->lock);
	bury(f, &dead);
}

/* Run every queued event (lock not held on entry or exit). */
static void drain_queue(struct fltport_filter *f)
{
	for (;;) {
		struct fp_filter_pending *p;

		pthread_mutex_lock(&f->lock);
		p = f->qhead;
		if (p) {
			q_unlink(f, p);
			p->state = FP_P_RUNNING;
			atomic_fetch_add(&f->running, 1);
		}
		pthread_mutex_unlock(&f->lock);
		if (!p)
			return;
		run(f, p);
	}
}

/* A worker about to wait: counted idle, unless the queue holds events
 * (false: run them instead).  The spare reader queues under the same lock
 * and then wakes as many idle workers as it queued: an event it queues is
 * either seen here or followed by a wake-up for this worker.  It leads if
 * it did or the lead is free; else it follows. */
static bool idle_enter(struct fltport_filter *f, struct fp_worker *me)
{
	/* No followers' set, or events come fast: all lead (the owner still
	 * answers to the deadline thread's watch).  Else lead if the lead is
	 * free, or held too long by a busy leader (the deadline thread calls
	 * a follower only while one waits). */
	const bool all =
		f->follow_ep < 0 || atomic_load_explicit(&f->lead_all, memory_order_relaxed);
	bool queued;

	pthread_mutex_lock(&f->lock);
	queued = f->qhead != NULL;
	if (!queued) {
		f->idle++;
		if (!f->lead_owner || (!all && f->lead_owner != me && f->lead_busy &&
				       fp_filter_now() - f->lead_since >= LEAD_WATCH_NS))
			f->lead_owner = me;
		me->leader = all || f->lead_owner == me;
		if (f->lead_owner == me)
			f->lead_busy = false;
		me->following = !me->leader;
		if (me->following)
			f->nfollow++;
	}
	pthread_mutex_unlock(&f->lock);
	return !queued;
}

/* A worker back from its wait; `called`: a follower told that the lead is
 * free (it takes it if still free).  The leader is busy from now until it
 * waits again: the deadline thread watches that spell. */
static void idle_leave(struct fltport_filter *f, struct fp_worker *me, bool called)
{
	pthread_mutex_lock(&f->lock);
	f->idle--;
	if (me->following)
		f->nfollow--;
	me->following = false;
	if (called && !f->lead_owner && f->follow_ep >= 0) {
		f->lead_owner = me;
		me->leader = true;
	}
	if (f->lead_owner == me) {
		f->lead_busy = true;
		f->lead_since = fp_filter_now();
		f->lead_epoch++;
		if (f->dl_long) {
			f->dl_long = false;
			pthread_cond_signal(&f->deadline_cond);
		}
	}
	if (f->idle == 0 && f->spare_waiting)
		pthread_cond_signal(&f->spare_cond); /* every worker busy: the spare reads */
	pthread_mutex_unlock(&f->lock);
}

/* Add the queue eventfd (workers' sets) and the stop eventfd to `ep`:
 * returns ep, or -1 (closed). */
static int set_fill(struct fltport_filter *f, int ep, bool workers)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = f->queue_fd };

	if (workers && epoll_ctl(ep, EPOLL_CTL_ADD, f->queue_fd, &ev) != 0)
		goto fail;
	ev.data.fd = f->wake_fd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, f->wake_fd, &ev) != 0)
		goto fail;
	return ep;
fail:
	close(ep);
	return -1;
}

/* An epoll set on the group and the stop eventfd: the set the workers
 * share (the group edge-triggered, above, and the queue eventfd), or the
 * spare's own (the group with EPOLLEXCLUSIVE; not the queue eventfd, which
 * only idle workers consume). */
static int reader_epoll(struct fltport_filter *f, bool workers)
{
	struct epoll_event ev = { .events = EPOLLIN | (workers ? EPOLLET : EPOLLEXCLUSIVE) };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		return -1;
	ev.data.fd = f->perm_fd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, f->perm_fd, &ev) != 0)
		goto fail;
	return set_fill(f, ep, workers);
fail:
	close(ep);
	return -1;
}

/* The followers' set: as the leader's, without the group, with lead_fd. */
static int follower_epoll(struct fltport_filter *f)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = f->lead_fd };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		return -1;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, f->lead_fd, &ev) != 0) {
		close(ep);
		return -1;
	}
	return set_fill(f, ep, true);
}

/* A worker reads at most this many events at once: the first it decides,
 * the others go to idle workers. */
#define WORKER_BATCH 4u

/* Wake `n` idle workers (the queue eventfd is a semaphore): one for each
 * event a read queued, and one more to read on if the group may hold more
 * than the read took. */
static void wake_workers(struct fltport_filter *f, uint64_t n)
{
	if (n)
		(void)!write(f->queue_fd, &n, sizeof(n));
}

/* The workers a read calls for: one per event it queued, one more if it
 * was full. */
static uint64_t wakes_for(const struct fp_readout *out)
{
	return (uint64_t)out->queued + (out->full ? 1u : 0u);
}

static void *worker_main(void *arg)
{
	struct fltport_filter *f = arg;
	/* On the thread's stack: no allocation can fail here. */
	char buf[READ_BUF] __attribute__((aligned(8)));
	struct fp_worker me = { .leader = false };

	for (;;) {
		struct epoll_event evs[3];
		struct fp_filter_pending *p;
		struct fp_readout out;
		bool stop;
		int n;

		drain_queue(f);
		stop = atomic_load(&f->stopping);
		if (!stop) {
			bool queue = false, called = false;
			int64_t t0;
			int ep;

			if (!idle_enter(f, &me))
				continue; /* events were queued meanwhile */
			ep = me.leader ? f->worker_ep : f->follow_ep;
			t0 = me.leader ? fp_filter_now() : 0;
			n = ep >= 0 ? epoll_wait(ep, evs, 3, -1) : poll(NULL, 0, 10);
			if (t0)
				t0 = fp_filter_now() - t0;
			if (n < 0 && errno != EINTR && ep >= 0)
				usleep(1000);
			for (int i = 0; i < n && ep >= 0; i++) {
				uint64_t v;

				if (evs[i].data.fd == f->perm_fd && me.leader && n == 1)
					lead_note(f, t0 < LEAD_READY_NS,
						  false); /* the group alone */
				if (evs[i].data.fd == f->queue_fd) {
					(void)!read(f->queue_fd, &v, sizeof(v));
					queue = true;
				} else if (evs[i].data.fd == f->lead_fd) {
					called = read(f->lead_fd, &v, sizeof(v)) == sizeof(v);
				}
			}
			idle_leave(f, &me, called);
			/*
			 * A wake-up through the queue eventfd stands for queued
			 * events or for the group (a full read).  Read the group
			 * first, queueing what it holds, then run the queue,
			 * oldest first: its callbacks may block, and a signal
			 * this worker took — the eventfd's or the group's edge,
			 * which comes once per event — must not wait for them
			 * while other workers sleep.  (Running the queue first
			 * once left an open unread: CI, faults/
			 * callback_blocks_forever.)
			 */
			if (queue) {
				(void)read_events(f, buf, WORKER_BATCH, false, &out);
				wake_workers(f, wakes_for(&out));
				continue;
			}
			if (!me.leader)
				continue; /* a follower: called to lead, or stopping */
		}
		p = read_events(f, buf, WORKER_BATCH, true, &out);
		if (p && me.leader)
			lead_note(f, -1, out.queued > 0);
		if (!stop)
			wake_workers(f, wakes_for(&out));
		if (p)
			run(f, p);
		else if (stop && out.empty)
			break; /* stopping, and the group is drained */
		else if (stop)
			(void)poll(NULL, 0, 1); /* no fd to read with: no spin */
	}
	drain_queue(f);
	return NULL;
}

/* Read every event still queued in the group into the queue (the
 * deadline thread answers them), waiting for fds while the budget has no
 * room; returns once a read finds the group empty. */
static void spare_drain(struct fltport_filter *f, char *buf)
{
	struct fp_readout out = { .empty = false };

	while (!out.empty) {
		if (budget_room(f) == 0) {
			(void)poll(NULL, 0, 10); /* the deadline thread frees fds */
			continue;
		}
		(void)read_events(f, buf, f->max_in_flight, false, &out);
	}
}

/* The spare reader: reads only while no worker is idle. */
static void *spare_main(void *arg)
{
	struct fltport_filter *f = arg;
	char buf[READ_BUF] __attribute__((aligned(8)));
	int ep = reader_epoll(f, false);

	for (;;) {
		struct epoll_event evs[3];
		struct fp_readout out;
		bool stop = atomic_load(&f->stopping);
		uint64_t want;

		pthread_mutex_lock(&f->lock);
		while (f->idle > 0 && !atomic_load(&f->draining)) {
			f->spare_waiting = true;
			pthread_cond_wait(&f->spare_cond, &f->lock);
			f->spare_waiting = false;
		}
		pthread_mutex_unlock(&f->lock);
		stop = atomic_load(&f->draining);
		if (stop) {
			/* The marks are gone: read what the kernel queued before,
			 * so that the deadline thread answers it in time even
			 * while every worker is held in a callback (a worker
			 * reads only when it comes back). */
			spare_drain(f, buf);
			break;
		}
		/* Every worker is busy: wait for events, and look again at
		 * the workers every 10 ms.  Stopping, the marks not yet gone,
		 * the stop eventfd stays readable and the set would not wait:
		 * wait on the group alone.  No set: read every 10 ms. */
		if (atomic_load(&f->stopping) || ep < 0) {
			struct pollfd pf = { .fd = f->perm_fd, .events = POLLIN };

			if (poll(&pf, 1, 10) <= 0)
				continue;
		} else if (epoll_wait(ep, evs, 3, 10) <= 0) {
			continue;
		}
		(void)read_events(f, buf, f->max_in_flight, false, &out);
		/* Workers that came back meanwhile: wake one per event queued
		 * (and one more if the group may hold more), as many as are
		 * idle; a worker going idle after this sees the queue
		 * (idle_enter()). */
		want = wakes_for(&out);
		pthread_mutex_lock(&f->lock);
		if (want > f->idle)
			want = f->idle;
		pthread_mutex_unlock(&f->lock);
		wake_workers(f, want);
	}
	if (ep >= 0)
		close(ep);
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

/*
 * The deadline thread also watches the lead (lock held).  A leader busy
 * for LEAD_WATCH_NS while a follower is idle loses the lead: returns -1,
 * and the caller calls a follower through lead_fd.  Otherwise returns when
 * to look again: within LEAD_WATCH_NS while the leader is busy or was since
 * the last look; INT64_MAX when it was idle all along — the thread may then
 * sleep long (dl_long), and the next busy spell wakes it (idle_leave()):
 * one wake-up per idle-to-busy change, not per event — or when no follower
 * waits: every idle worker then reads the group anyway (leaders left from
 * the all-lead mode), or none is idle and the spare reads; the first
 * worker to go idle takes the overdue lead itself (idle_enter()), so no
 * polling while every worker is busy.  Only the owner's busy spells are
 * watched: a worker that led in the all-lead mode and blocks leaves the
 * owner and the others reading (so they are not counted in nfollow).
 */
static int64_t lead_watch(struct fltport_filter *f, uint64_t *seen)
{
	int64_t now;

	if (f->follow_ep < 0)
		return INT64_MAX;
	if (f->lead_owner && f->lead_busy) {
		now = fp_filter_now();
		*seen = f->lead_epoch;
		if (now - f->lead_since < LEAD_WATCH_NS)
			return f->lead_since + LEAD_WATCH_NS;
		if (f->nfollow == 0)
			return INT64_MAX; /* the spare reads; idle_enter() takes it over */
		f->lead_owner = NULL;
		f->lead_busy = false;
		return -1;
	}
	if (*seen != f->lead_epoch) {
		*seen = f->lead_epoch;
		return fp_filter_now() + LEAD_WATCH_NS;
	}
	return INT64_MAX;
}

/* Sleep until `until` or a signal, at most until `watch` (lock held). */
static void deadline_sleep(struct fltport_filter *f, int64_t until, int64_t watch)
{
	struct timespec ts;

	f->dl_long = watch == INT64_MAX;
	ts = abs_ts(watch < until ? watch : until);
	pthread_cond_timedwait(&f->deadline_cond, &f->lock, &ts);
	f->dl_long = false;
}

static void *deadline_main(void *arg)
{
	struct fltport_filter *f = arg;
	struct fp_dead dead = FP_DEAD_NONE;
	uint64_t seen = 0;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		struct fp_filter_pending *p = f->dhead;
		int64_t watch = lead_watch(f, &seen);
		bool running;

		if (watch < 0) {
			uint64_t one = 1;

			pthread_mutex_unlock(&f->lock);
			(void)!write(f->lead_fd, &one, sizeof(one));
			pthread_mutex_lock(&f->lock);
			continue;
		}
		if (!p) {
			/* Nothing pending.  Every event gets the same relative
			 * deadline, so one that arrives while we sleep expires no
			 * sooner than deadline_ns from now: sleeping that long
			 * means nobody has to wake us per event (a wake-up per
			 * event would cost a context switch each). */
			if (f->deadline_stop)
				break;
			deadline_sleep(f, fp_filter_now() + f->cfg.deadline_ns, watch);
			continue;
		}
		if (!f->deadline_stop && p->deadline > fp_filter_now()) {
			deadline_sleep(f, p->deadline, watch);
			continue;
		}
		d_unlink(f, p);
		running = p->state == FP_P_RUNNING;
		if (p->state == FP_P_QUEUED) {
			q_unlink(f, p);
			p->state = FP_P_DONE;
			release_n(p, 1, &dead); /* the queue's: ours keeps it alive */
		}
		pthread_mutex_unlock(&f->lock);
		if (answer(f, p, policy_verdict(f), &f->c.timed_out)) {
			/* A callback still scanning must not hold a writer up. */
			if (running)
				lease_drop(p->fd);
			fp_filter_debug("deadline: pid %d %s answered by policy", (int)p->pid,
					pname(p));
		}
		pthread_mutex_lock(&f->lock);
		release_n(p, 1, &dead);
		if (dead.fd >= 0) {
			pthread_mutex_unlock(&f->lock);
			bury(f, &dead);
			pthread_mutex_lock(&f->lock);
		}
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

	budget_init(f);
	/* The largest record of one event: metadata, a pidfd record, a range
	 * record.  A read of that size returns exactly one event. */
	f->event_max =
		FAN_EVENT_METADATA_LEN +
		((f->features & FLTPORT_FILTER_HAVE_PIDFD) ? sizeof(struct fp_fan_info_pidfd) : 0) +
		((f->perm_mask & FAN_PRE_ACCESS) ? sizeof(struct fp_fan_info_range) : 0);
	f->queue_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
	if (f->queue_fd < 0)
		return -errno;
	f->worker_ep = reader_epoll(f, true); /* if it fails, workers poll */
	/* Not a semaphore: one read takes every call (one lead to take). */
	f->lead_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->lead_fd < 0)
		return -errno;
	/* If it fails, every idle worker waits in worker_ep (no followers). */
	f->follow_ep = f->worker_ep >= 0 ? follower_epoll(f) : -1;
	{
		cpu_set_t set;

		f->multi_cpu = sched_getaffinity(0, sizeof(set), &set) != 0 || CPU_COUNT(&set) > 1;
	}
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
	rc = pthread_create(&f->reader, NULL, spare_main, f);
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
	atomic_store(&f->draining, true); /* the caller removed the marks */
	(void)!write(f->wake_fd, &one, sizeof(one));
	/* The spare and the workers drain the group and the queue, then
	 * leave; the deadline thread answers until the workers are gone. */
	pthread_mutex_lock(&f->lock);
	pthread_cond_broadcast(&f->spare_cond);
	pthread_mutex_unlock(&f->lock);
	if (f->have_reader)
		pthread_join(f->reader, NULL);
	f->have_reader = false;
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
	while (f->pfree) { /* every thread is gone: no lock needed */
		struct fp_filter_pending *p = f->pfree;

		f->pfree = p->qnext;
		free(p);
	}
	f->npfree = 0;
}
