/*
 * Internals of the fanotify filter engine (src/filter/).  Uses only the
 * public API (fltport/port.h, fltport/filter.h) and system headers.
 *
 * Threads of one filter:
 *   reader    reads the permission group; answers own / trusted / out of
 *             scope / overflow events at once; queues the rest.  Never
 *             touches a file system (only /proc/self/fd readlinks, fstat on
 *             pidfds and writes to the group).
 *   workers   run pre-operation callbacks, answer, place cache marks.
 *   deadline  answers, by policy, every pending event whose deadline passed.
 *   notify    reads the notification group, runs post callbacks (may touch
 *             the file system: open_by_handle_at with O_PATH).
 *
 * A pending event is answered exactly once: whoever wins the compare-and-
 * swap on `answered` writes the response.  Its fd stays open until both the
 * answer is written and nothing uses it any more (refs == 0).
 */
#ifndef FP_FILTER_INT_H
#define FP_FILTER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <fltport/filter.h>

enum fp_filter_pstate { FP_P_QUEUED, FP_P_RUNNING, FP_P_DONE };

struct fp_filter_pending {
	struct fp_filter_pending *qprev, *qnext; /* work queue (under f->lock) */
	struct fp_filter_pending *dprev, *dnext; /* deadline list (under f->lock) */
	enum fp_filter_pstate state;             /* under f->lock */
	bool on_deadline;                        /* under f->lock */
	int refs;                                /* under f->lock */
	atomic_bool answered;
	int fd, pidfd;
	pid_t pid;
	uint64_t mask;
	int64_t deadline;
	bool has_range;
	uint64_t offset, count;
	char *path;
};

struct fp_filter_scope {
	char *path; /* realpath of the attached path */
	size_t len;
	int mfd;       /* read-only fd of it: mount fd for open_by_handle_at */
	uint64_t fsid; /* statfs f_fsid of its file system */
};

struct fp_filter_trust {
	pid_t pid;
	int pidfd;
	uint64_t ino; /* pidfs inode, 0 if not on pidfs */
};

struct fp_filter_counters {
	atomic_uint_fast64_t seen, allowed, denied, fast, timed_out, overflowed, late, cached,
		answer_errors, post_events;
	atomic_uint in_flight;
};

struct fltport_filter {
	struct fltport_filter_config cfg;
	pid_t self;
	int perm_fd;           /* permission group, -1 if no pre callback */
	int notify_fd;         /* notification group, -1 if no post callback */
	int wake_fd;           /* eventfd: wakes reader and notify thread */
	uint64_t perm_mask;    /* events marked on the permission group */
	uint64_t notify_mask;  /* events marked on the notification group */
	unsigned features;     /* FLTPORT_FILTER_HAVE_* */
	uint64_t errno_ok[4];  /* bit e: errno e (1..255) accepted by FAN_DENY_ERRNO */
	bool pidfs;            /* pidfds live on pidfs: compare inodes */
	atomic_int cache_mode; /* 0 untried, 1 FAN_MARK_IGNORE, 2 IGNORED_MASK, -1 off */
	atomic_bool stopping;

	/* attached paths: published by count; entries immutable once published */
	pthread_mutex_t scope_lock; /* serialises attach */
	struct fp_filter_scope scope[FLTPORT_FILTER_MAX_PATHS];
	atomic_uint nscope;

	pthread_mutex_t trust_lock;
	struct fp_filter_trust trust[FLTPORT_FILTER_MAX_TRUSTED];
	unsigned ntrust;

	/* pending events */
	pthread_mutex_t lock;
	pthread_cond_t work_cond;     /* workers: queue not empty or stop */
	pthread_cond_t deadline_cond; /* deadline thread: list changed or stop */
	struct fp_filter_pending *qhead, *qtail;
	struct fp_filter_pending *dhead, *dtail;
	unsigned qlen;
	bool workers_stop, deadline_stop;

	pthread_t reader, deadline, notifier;
	pthread_t *workers;
	unsigned nworkers;
	bool have_reader, have_deadline, have_notifier;

	struct fp_filter_counters c;
};

/* filter.c */
void fp_filter_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t fp_filter_now(void);
bool fp_filter_in_scope(struct fltport_filter *f, const char *path);
const struct fp_filter_scope *fp_filter_scope_by_fsid(struct fltport_filter *f, uint64_t fsid);

/* trust.c */
bool fp_filter_trusted(struct fltport_filter *f, pid_t pid, int ev_pidfd);
void fp_filter_trust_free(struct fltport_filter *f);

/* perm.c */
int fp_filter_perm_start(struct fltport_filter *f);
void fp_filter_perm_stop(struct fltport_filter *f);
int fp_filter_perm_probe(struct fltport_filter *f);

/* identity.c */
void fp_filter_identity(struct fltport_filter *f, pid_t pid, int pidfd, uid_t *uid, gid_t *gid,
			char *exe, size_t exe_len);
int fp_filter_fd_path(int fd, char *buf, size_t len);

/* notify.c */
int fp_filter_notify_init(struct fltport_filter *f);
int fp_filter_notify_start(struct fltport_filter *f);
void fp_filter_notify_stop(struct fltport_filter *f);

#endif
