/*
 * Internals of the fanotify filter engine (src/filter/).  Uses only the
 * public API (fltport/port.h, fltport/filter.h) and system headers.
 *
 * Threads of one filter:
 *   workers   leader and followers (perm.c): one leads — reads the
 *             permission group, answers own / trusted events at once,
 *             queues the batch's others and runs the first event's
 *             callback itself, keeping the lead meanwhile; idle ones take
 *             queued events, and the lead from a leader busy too long
 *             (the deadline thread calls them); all lead while events come
 *             fast.
 *             Reading never touches a watched file system (only /proc,
 *             fstat and ioctls on pidfds, fstatat in cgroup2 for trusted
 *             cgroups, writes to the group).
 *   spare     leads only when no worker is idle; never runs callbacks.
 *   deadline  answers, by policy, every pending event whose deadline passed;
 *             watches the lead.
 *   notify    reads the notification group, runs post callbacks (may touch
 *             the file system: open_by_handle_at with O_PATH).
 *   mounts    FLTPORT_ATTACH_SUBMOUNTS: attaches file systems mounted later.
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
#include <fltport/mgmt.h>

#include "core/fork.h"
#include "mgmt/mgmt_int.h"

enum fp_filter_pstate { FP_P_QUEUED, FP_P_RUNNING, FP_P_DONE };

#define FP_PENDING_PATH 256u    /* paths shorter than this live in the pending */
#define FP_PENDING_FREE_MAX 64u /* pendings kept for reuse (f->pfree) */

struct fp_filter_pending {
	struct fltport_filter *filter;
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
	char *path; /* small[], or malloc'd when longer */
	char small[FP_PENDING_PATH];
};

/* One attached file system (or mount): the kernel's mark is the scope;
 * this entry keeps a mount fd for open_by_handle_at (post events). */
struct fp_filter_scope {
	char *path;     /* realpath of the attached path, or a submount's mount point */
	int mfd;        /* read-only fd of it */
	uint64_t fsid;  /* statfs f_fsid of its file system */
	unsigned flags; /* FLTPORT_ATTACH_*; FP_SCOPE_FOUND: a submount found by the watcher */
	/* The instance (management plane; under scope_lock). */
	char *instance; /* its name */
	char *volume;   /* the mount point of `path` */
	char altitude[FLTPORT_ALTITUDE_MAX + 1];
	atomic_bool detached; /* marks removed; the slot is reused by a new attach */
};
#define FP_SCOPE_FOUND 0x100u

/* A path attached with FLTPORT_ATTACH_SUBMOUNTS: mounts below it follow. */
struct fp_filter_watch {
	char *path;
	size_t len;
};

struct fp_filter_trust {
	pid_t pid;
	int pidfd;
	uint64_t ino; /* pidfs inode, 0 if not on pidfs */
	bool tree;    /* its descendants too */
};

/* A trusted cgroup (cgtrust.c): its path and its identity, so that a cgroup
 * made again under the same path is not trusted. */
struct fp_filter_trust_cg {
	char *path; /* as in /proc/<pid>/cgroup: "/a/b", canonical, never "/" */
	size_t len;
	uint64_t id; /* inode of its directory in cgroup2: its cgroup id */
};

#define FP_PIDFD_KEEP 16u /* pidfds kept after their events (perm.c) */

/* A remembered answer of a descendant or cgroup check, valid while the
 * trust set is unchanged (trust.c). */
#define FP_FILTER_MEMO 256u /* entries per memo; a power of two */
struct fp_filter_memo {
	uint64_t a, b; /* the key */
	uint64_t gen;  /* trust_gen it was computed under; 0: empty */
	bool yes;
};

struct fp_filter_counters {
	atomic_uint_fast64_t seen, allowed, denied, fast, timed_out, overflowed, late, cached,
		answer_errors, post_events, throttled, kernel_denied, submounts;
	atomic_uint in_flight;
};

struct fltport_filter {
	struct fp_forkreg fork; /* first: in_child() casts */
	struct fltport_filter_config cfg;
	/* management plane (manage.c): cfg.name and cfg.altitude point here */
	struct fp_mgmt_reg mreg;
	bool registered;
	char name[FLTPORT_NAME_MAX + 1];
	char altitude[FLTPORT_ALTITUDE_MAX + 1];
	int64_t started_ns;
	pid_t self;
	int perm_fd;             /* permission group, -1 if no pre callback */
	int notify_fd;           /* notification group, -1 if no post callback */
	int wake_fd;             /* eventfd: wakes reader and notify thread */
	uint64_t perm_mask;      /* events marked on the permission group */
	uint64_t notify_mask;    /* events marked on the notification group */
	unsigned features;       /* FLTPORT_FILTER_HAVE_* */
	uint64_t errno_ok[4];    /* bit e: errno e (1..255) accepted by FAN_DENY_ERRNO */
	bool pidfs;              /* pidfds live on pidfs: compare inodes */
	atomic_int cache_mode;   /* 0 untried, 1 FAN_MARK_IGNORE, 2 IGNORED_MASK, -1 off */
	atomic_int lease_mode;   /* FP_LEASE_*: whether decide() takes the scan's lease */
	atomic_uint lease_probe; /* decisions seen while FP_LEASE_PROBING */
	atomic_bool stopping;
	atomic_bool draining; /* perm_stop(): the marks are gone, read what is left */

	/* attached file systems: published by count; entries immutable once
	 * published */
	pthread_mutex_t scope_lock; /* serialises attach and the mount watcher */
	struct fp_filter_scope scope[FLTPORT_FILTER_MAX_PATHS];
	atomic_uint nscope;
	struct fp_filter_watch watch[FLTPORT_FILTER_MAX_PATHS]; /* under scope_lock */
	unsigned nwatch;
	int mountinfo_fd; /* polled by the mount watcher, -1 until a SUBMOUNTS attach */
	/* O_PATH dirs of /proc/self/fd and /proc (or -1): an event's path and
	 * its opener's exe are read relative to them, a lookup of one name
	 * instead of three (identity.c). */
	int selffd_dir, proc_dir;
	pthread_t mount_watcher;
	bool have_mount_watcher; /* under scope_lock */

	/* pidfds of recent events, one per slot by pid (perm.c keep_pidfd()) */
	atomic_int pidfd_keep[FP_PIDFD_KEEP];

	/* fd budget (perm.c): events held (read, fds open) at most */
	unsigned max_in_flight;
	atomic_uint held;
	pthread_mutex_t budget_lock; /* after f->lock, never before it */
	pthread_cond_t budget_cond;  /* reader: held dropped below the budget */
	unsigned budget_waiters;     /* readers in budget_room(); under budget_lock */

	pthread_mutex_t trust_lock; /* held by the leading reader while it checks an event */
	struct fp_filter_trust trust[FLTPORT_FILTER_MAX_TRUSTED];
	unsigned ntrust;
	struct fp_filter_trust_cg trust_cg[FLTPORT_FILTER_MAX_TRUSTED_CGROUPS];
	unsigned ntrust_cg;
	int cg_root;        /* O_PATH fd of the cgroup2 root, -1 until a cgroup is trusted */
	uint64_t trust_gen; /* bumped by every change of the trust set */
	struct fp_filter_memo tree_memo[FP_FILTER_MEMO]; /* negatives only */
	struct fp_filter_memo cg_memo[FP_FILTER_MEMO];   /* by cgroup id */

	/* pending events */
	pthread_mutex_t lock;
	pthread_cond_t deadline_cond; /* deadline thread: list changed or stop */
	struct fp_filter_pending *qhead, *qtail;
	struct fp_filter_pending *dhead, *dtail;
	struct fp_filter_pending *pfree; /* reusable, chained by qnext */
	unsigned npfree;
	unsigned qlen;
	bool deadline_stop;
	/* readers (perm.c) */
	unsigned idle;       /* workers waiting for events (under lock) */
	atomic_uint running; /* workers inside callbacks (perm.c queue_full()) */
	bool spare_waiting;  /* the spare reader waits on spare_cond (under lock) */
	pthread_cond_t spare_cond;
	int queue_fd;  /* eventfd: events queued for idle workers (semaphore) */
	int worker_ep; /* the leader's epoll set: the group, queue_fd, wake_fd */
	int follow_ep; /* the followers' set: queue_fd, wake_fd, lead_fd; -1: no
			   * followers (every idle worker waits in worker_ep) */
	int lead_fd;   /* eventfd: the lead is free, a follower takes it */
	/* Leadership (perm.c "Readers"), under lock. */
	const void *lead_owner; /* the worker that reads the group, or NULL */
	unsigned nfollow;       /* idle workers waiting in follow_ep */
	bool lead_busy;         /* it is out of its wait since lead_since */
	int64_t lead_since;
	uint64_t lead_epoch;    /* busy spells so far: the deadline thread's watch */
	bool dl_long;           /* the deadline thread sleeps without watching them */
	_Atomic int lead_ready; /* share (of 1024) of the leaders' recent waits
				    * that found an event already there */
	_Atomic int lead_batch; /* share (of 1024) of their recent reads that
				    * found more than one event */
	atomic_bool lead_all;   /* events come faster than one leader takes
				    * them: every idle worker leads */
	bool multi_cpu;         /* the workers may run on more than one CPU */
	size_t event_max;       /* bytes of the largest single event record */

	pthread_t reader, deadline, notifier;
	pthread_t *workers;
	unsigned nworkers;
	bool have_reader, have_deadline, have_notifier;

	struct fp_filter_counters c;
};

/* filter.c */
void fp_filter_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t fp_filter_now(void);
const struct fp_filter_scope *fp_filter_scope_by_fsid(struct fltport_filter *f, uint64_t fsid);
int fp_filter_attach_found(struct fltport_filter *f, const char *mount_point);

/* Before a management-plane attach asks the filter's instance_setup: 0 if
 * `real` (a realpath) is not filtered yet, with its mount point in
 * `volume`; -EEXIST if it is, or statfs()'s errno. */
int fp_filter_attach_check(struct fltport_filter *f, const char *real, unsigned flags, char *volume,
			   size_t cap);
int fp_filter_attach_instance(struct fltport_filter *f, const char *path, unsigned flags,
			      const char *instance, const char *altitude, bool strict);

/* manage.c: the management plane */
int fp_filter_manage_init(struct fltport_filter *f); /* check + copy name/altitude */
int fp_filter_manage_register(struct fltport_filter *f);
void fp_filter_manage_unregister(struct fltport_filter *f);

/* mounts.c: FLTPORT_ATTACH_SUBMOUNTS */
int fp_filter_watch_add(struct fltport_filter *f, char *path); /* scope_lock held; copies path */
void fp_filter_mounts_scan(struct fltport_filter *f);
void fp_filter_mounts_stop(struct fltport_filter *f);

/* trust.c */
bool fp_filter_trusted(struct fltport_filter *f, pid_t pid, int ev_pidfd);
void fp_filter_trust_free(struct fltport_filter *f);
bool fp_filter_pidfd_alive(int pidfd);
ssize_t fp_filter_read_proc(pid_t pid, const char *name, char *buf, size_t len);
bool fp_filter_memo_get(struct fltport_filter *f, struct fp_filter_memo *memo, uint64_t a,
			uint64_t b, bool *yes);
void fp_filter_memo_put(struct fltport_filter *f, struct fp_filter_memo *memo, uint64_t a,
			uint64_t b, bool yes);

/* cgtrust.c (trust_lock held) */
bool fp_filter_cg_trusted(struct fltport_filter *f, pid_t pid, int ev_pidfd);
void fp_filter_cg_free(struct fltport_filter *f);

/* perm.c */
int fp_filter_lease_take(int fd); /* a read lease that never signals us */
int fp_filter_perm_start(struct fltport_filter *f);
void fp_filter_perm_stop(struct fltport_filter *f);
int fp_filter_perm_probe(struct fltport_filter *f);

/* identity.c */
void fp_filter_identity(struct fltport_filter *f, pid_t pid, int pidfd, uid_t *uid, gid_t *gid,
			char *exe, size_t exe_len);
int fp_filter_fd_path(struct fltport_filter *f, int fd, char *buf, size_t len);

/* notify.c */
int fp_filter_notify_init(struct fltport_filter *f);
int fp_filter_notify_start(struct fltport_filter *f);
void fp_filter_notify_stop(struct fltport_filter *f);

#endif
