/*
 * fltport/filter.h — the file-system filter engine of libfltport: a
 * minifilter-style programming model on fanotify (docs/FILTER.md).
 *
 *   fltport_filter_create()    permission + notification groups, threads
 *   fltport_filter_attach()    start filtering the file system holding a path
 *   fltport_filter_attach_ex() ... or one mount, or every file system below a path
 *   fltport_filter_trust_*()   exempt a process and its descendants, or a cgroup
 *                              (their events are allowed at once)
 *   fltport_filter_cache_*()   drop / place a cached allow outside an event
 *   fltport_filter_stats()     counters, readable at any time
 *   fltport_filter_destroy()   stop, answer what is pending, free
 *
 * The engine answers every permission event before its deadline, whatever
 * the callbacks, the services they ask, or the machine do: on expiry it
 * answers by the filter's policy (fail-open or fail-closed) and drops the
 * late verdict.  Events caused by the filter process itself and by trusted
 * processes are answered by the reader thread at once, without a callback.
 *
 * Scope is the kernel's, as a minifilter instance attaches to a volume: an
 * attached file system is filtered whole, through every mount, bind mount
 * and mount namespace that shows it.  There is no path test: ev->path lets
 * a callback narrow its own work, but a path decided in user space is not a
 * security boundary (a rename or a bind mount gets past it).
 *
 * Conventions are those of fltport/port.h: 0 or a negative errno, out-
 * parameters written only on success, the library never prints (except
 * FLTPORT_DEBUG=1 lines on stderr), every fd it creates is O_CLOEXEC.
 *
 * Requires CAP_SYS_ADMIN (root) and a kernel with fanotify permission
 * events (CONFIG_FANOTIFY_ACCESS_PERMISSIONS).
 */
#ifndef FLTPORT_FILTER_H
#define FLTPORT_FILTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <fltport/port.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fltport_filter fltport_filter;

#define FLTPORT_FILTER_DEFAULT_DEADLINE (5 * (int64_t)1000000000) /* 5 s */
#define FLTPORT_FILTER_DEFAULT_WORKERS 4u
#define FLTPORT_FILTER_DEFAULT_QUEUE 1024u
#define FLTPORT_FILTER_MAX_WORKERS 256u
#define FLTPORT_FILTER_MAX_QUEUE 65536u
#define FLTPORT_FILTER_MAX_PATHS 64u    /* attached file systems / mounts per filter */
#define FLTPORT_FILTER_MAX_TRUSTED 256u /* trusted processes per filter */

/* The operation an event is about. */
enum fltport_filter_op {
	FLTPORT_OP_OPEN = 1,    /* pre: open (FAN_OPEN_PERM) */
	FLTPORT_OP_EXEC,        /* pre: open for execution (FAN_OPEN_EXEC_PERM) */
	FLTPORT_OP_READ,        /* pre: read access (FAN_ACCESS_PERM) */
	FLTPORT_OP_CONTENT,     /* pre: content access (FAN_PRE_ACCESS, kernel ≥ 6.14,
				 * file systems with pre-content support: ext4, xfs, btrfs) */
	FLTPORT_OP_CREATE,      /* post: a directory entry was created */
	FLTPORT_OP_DELETE,      /* post: a directory entry was deleted */
	FLTPORT_OP_RENAME,      /* post: a directory entry was renamed */
	FLTPORT_OP_CLOSE_WRITE, /* post: a file open for writing was closed */
	FLTPORT_OP_ACCESS,      /* post: a file's data was read (FAN_ACCESS) */
	FLTPORT_OP_MODIFY,      /* post: a file's data was written (FAN_MODIFY) */
};

/* What a pre-operation callback returns. */
#define FLTPORT_ALLOW 0 /* allow */
#define FLTPORT_ALLOW_CACHE \
	1 /* allow, and let the kernel remember it for this
			       * file until it is modified (see "cache" below).
			       * A filter that returned none in its first 64
			       * decisions stops taking the cache's lease: its
			       * first ones after that are not cached (FILTER.md) */
/* Deny: return a negative errno (-1 .. -255).  -EPERM always works;
 * another errno reaches the opener where fltport_filter_errno_supported()
 * says so and becomes EPERM elsewhere.  Any other value (2, INT_MAX, below
 * -255) denies with EPERM: a verdict the engine does not understand never
 * allows. */

/* Timeout and overflow policy. */
enum fltport_filter_policy {
	FLTPORT_FAIL_OPEN = 0,   /* an unanswered event is allowed (the default) */
	FLTPORT_FAIL_CLOSED = 1, /* an unanswered event is denied with deny_errno */
};

/*
 * A permission event as a pre-operation callback sees it.  Everything in it
 * is valid during the callback only.
 */
struct fltport_filter_event {
	fltport_filter *filter;
	enum fltport_filter_op op; /* the callback's operation */
	uint64_t mask;             /* the raw fanotify event mask */
	/* An fd of the file, opened by the kernel for this event: reads
	 * through it (and through copies of it passed to a service with
	 * fltport_send) raise no fanotify events.  Borrowed: do not close it. */
	int fd;
	const char *path;    /* as seen from the filter's mount namespace */
	pid_t pid;           /* the process (thread group) that caused it */
	int pidfd;           /* a pidfd of it, or -1; borrowed */
	uid_t uid;           /* its effective uid, (uid_t)-1 if unknown */
	gid_t gid;           /* its effective gid, (gid_t)-1 if unknown */
	const char *exe;     /* its executable, "" if unknown */
	int64_t deadline_ns; /* absolute, CLOCK_MONOTONIC: the engine answers by
				    * policy at this time if the callback has not */
	bool has_range;      /* FLTPORT_OP_CONTENT: the range being accessed */
	uint64_t offset, count;
	const void *fltport_private; /* the engine's (lazy path and identity) */
};

/*
 * Path and identity on demand.  With FLTPORT_FILTER_LAZY_INFO the engine
 * does not work them out before the callback (two readlinks and a pidfd
 * ioctl per event: a third of an allowed open's cost, docs/FILTER.md): in
 * the event, path and exe are NULL and uid and gid (uid_t)-1, and these
 * calls work them out on first use, once per event.  Without the flag they
 * return what the event already holds.  Call them from the callback only,
 * with the event it was given (not a copy).
 *
 *   _path      the file's path as ev->path would have been ("" if it
 *              cannot be read); valid during the callback.
 *   _identity  the opener's effective uid and gid and its executable (exe
 *              valid during the callback; any output may be NULL).  0, or
 *              -ESRCH when the credentials could not be read (the process
 *              is gone: uid and gid are (uid_t)-1, exe is "" unless it was
 *              read), or -EINVAL.
 */
FLTPORT_API const char *fltport_filter_event_path(const struct fltport_filter_event *ev);
FLTPORT_API int fltport_filter_event_identity(const struct fltport_filter_event *ev, uid_t *uid,
					      gid_t *gid, const char **exe);

/* A pre-operation callback.  Runs on one of the filter's worker threads;
 * calls run concurrently.  It may block (ask a service with
 * fltport_send(), bounded by fltport_filter_time_left()); a verdict given
 * after the deadline is dropped.  It must not call fltport_filter_destroy(). */
typedef int (*fltport_filter_pre_fn)(void *cookie, const struct fltport_filter_event *ev);

/* A post-operation notification. */
struct fltport_filter_post_event {
	fltport_filter *filter;
	enum fltport_filter_op op;
	const char *path;     /* the entry (rename: its old path); NULL if the
			       * directory could not be resolved */
	const char *name;     /* the entry's name in its directory */
	const char *new_path; /* rename: the new path (NULL if unresolved or
			       * on kernels without FAN_RENAME); else NULL */
	bool is_dir;
	pid_t pid; /* who did it (0 if unknown) */
};

/* A post-operation callback.  Runs on the filter's notification thread, one
 * at a time, in the order the kernel reported the events.  It cannot change
 * what happened.  It must not block for long (it delays later notifications,
 * never a file operation) nor call fltport_filter_destroy(). */
typedef void (*fltport_filter_post_fn)(void *cookie, const struct fltport_filter_post_event *ev);

/* Off switches for probed kernel features (fltport_filter_config.flags). */
#define FLTPORT_FILTER_NO_PIDFD 0x1u      /* do not use FAN_REPORT_PIDFD */
#define FLTPORT_FILTER_NO_DENY_ERRNO 0x2u /* deny with EPERM only */
#define FLTPORT_FILTER_NO_CACHE 0x4u      /* FLTPORT_ALLOW_CACHE acts as FLTPORT_ALLOW */
/* A speed switch: path and identity on demand (fltport_filter_event_path()). */
#define FLTPORT_FILTER_LAZY_INFO 0x8u

struct fltport_filter_config {
	void *cookie; /* handed to every callback */
	/* Pre-operation callbacks (at least one pre or post callback). */
	fltport_filter_pre_fn pre_open;
	fltport_filter_pre_fn pre_exec;
	fltport_filter_pre_fn pre_read;
	fltport_filter_pre_fn pre_content;
	/* Post-operation notifications. */
	fltport_filter_post_fn post_create;
	fltport_filter_post_fn post_delete;
	fltport_filter_post_fn post_rename;
	fltport_filter_post_fn post_close_write;
	int64_t deadline_ns;               /* 0 → FLTPORT_FILTER_DEFAULT_DEADLINE */
	enum fltport_filter_policy policy; /* on deadline expiry and queue overflow */
	int deny_errno;                    /* errno of policy denials; 0 → EPERM */
	unsigned workers;                  /* 0 → FLTPORT_FILTER_DEFAULT_WORKERS */
	unsigned queue_max;                /* events waiting for a busy worker (beyond
					    * those a free worker takes); 0 → default */
	unsigned flags;                    /* FLTPORT_FILTER_NO_* */
	/* Management plane (fltport/mgmt.h, fltportctl): the filter's name and
	 * altitude, as a minifilter's.  NULL name: the filter is not registered
	 * (no one can list, attach or detach it).  The name follows port-name
	 * rules; the altitude is a decimal string ("385100"), NULL → "0". */
	const char *name;
	const char *altitude;
	/* An attach or detach request from the management plane (FilterAttach,
	 * fltportctl attach/detach): return 0 to let the engine do it, or a
	 * negative errno to refuse (the requester gets it).  `volume` is the
	 * mount point of the file system concerned (an attach: of the path
	 * asked, resolved; a detach: of the instance found); `instance` the
	 * instance's name (an attach without one: "<name> Instance"; a detach
	 * without one: the name of the instance it would remove, the first on
	 * that path — and only that instance goes).  Asked only about a request
	 * that can be done: an attach of a path that does not resolve or of a
	 * file system already attached, and a detach of no attached instance,
	 * fail without asking.  NULL: every request is done.  Runs on the
	 * engine's management thread. */
	int (*instance_setup)(void *cookie, const char *volume, const char *instance, bool detach);
	/* Post-operation notifications of data access (FLTPORT_OP_ACCESS,
	 * FLTPORT_OP_MODIFY): a file's data was read (read, readv, sendfile,
	 * splice; not directory listings) or written (write, truncate...).  One
	 * notification may stand for several calls: the kernel merges events
	 * of one process on one file that wait unread.  Reads and writes through
	 * a mapping raise none.  Reads through the fds the engine hands to pre
	 * callbacks (and to services) raise none either. */
	fltport_filter_post_fn post_read;
	fltport_filter_post_fn post_write;
};

/*
 * Create a filter: the fanotify groups it needs, and its threads (a reader,
 * the workers, a deadline thread; a notification thread if a post callback
 * is set).  Nothing is filtered until fltport_filter_attach().
 *
 * Errors: -EPERM (not root / no CAP_SYS_ADMIN), -EOPNOTSUPP (the kernel has
 * no fanotify permission events, or no FAN_REPORT_DFID_NAME while post
 * callbacks are set), -EINVAL (no callback, bad limits, deny_errno out of
 * 1..255, an unknown flag), -ENOMEM, -EMFILE and other errnos from the system calls.
 */
FLTPORT_API int fltport_filter_create(const struct fltport_filter_config *cfg,
				      fltport_filter **out);

/*
 * Attach the filter to the file system holding `path` (FAN_MARK_FILESYSTEM):
 * every file on it is filtered, whatever mount, bind mount or namespace it
 * is reached through — not only the files below `path`.  Same as
 * fltport_filter_attach_ex(f, path, 0).
 */
FLTPORT_API int fltport_filter_attach(fltport_filter *f, const char *path);

/* fltport_filter_attach_ex() flags.
 *   MOUNT      only the mount at `path` (FAN_MARK_MOUNT): the same files
 *              reached through another mount are not filtered; pre
 *              callbacks only.
 *   SUBMOUNTS  also every file system mounted below `path`, now and later:
 *              a watcher thread follows the filter's mount table
 *              (/proc/self/mountinfo) and attaches each new one within
 *              milliseconds of its mount (docs/FILTER.md). */
#define FLTPORT_ATTACH_MOUNT 0x1u
#define FLTPORT_ATTACH_SUBMOUNTS 0x2u

/*
 * Attach with flags (0, or FLTPORT_ATTACH_*).  `path` is resolved with
 * realpath() once, here.  Attaching a file system twice is not an error.
 * Thread-safe.
 *
 * Errors: -ENOENT and other lookup errors, -EOPNOTSUPP (pre_content is set
 * and this file system has no pre-content events; post callbacks are set
 * and it cannot report file handles; or FLTPORT_ATTACH_MOUNT with post
 * callbacks), -ENOSPC (FLTPORT_FILTER_MAX_PATHS file systems or mounts),
 * -EINVAL (bad flags, the filter being destroyed, or a forked child's copy
 * of the filter).
 */
FLTPORT_API int fltport_filter_attach_ex(fltport_filter *f, const char *path, unsigned flags);

/*
 * Trust a process and its descendants: their events are allowed at once,
 * without a callback (the scanner sample exempts its service this way; the
 * helpers a service starts — a forked child, a decompressor it execs — are
 * exempt too, so they never wait on a decision that waits for them).  The
 * filter process itself is always trusted, for itself only.  Thread-safe,
 * callable from callbacks.
 *
 *   _pid:    by pid (a pidfd is opened now: -ESRCH if it is gone)
 *   _pidfd:  by a pidfd (duplicated; the caller keeps its own)
 *   _client: the peer of a port connection (its pidfd from the connection
 *            when the kernel gave one, else one opened now)
 *   _pidfd_ex: by a pidfd, with FLTPORT_TRUST_* flags
 *
 * The trust is held by a pidfd: it ends with the process and never passes
 * to a later process that reuses the pid.  A descendant is trusted while
 * its chain of parents up to the trusted process is unbroken and at most
 * FLTPORT_FILTER_TRUST_DEPTH generations long: one reparented away from it
 * (a parent on the way exited), or whose trusted ancestor exited, is asked
 * like anyone else (a service that wants its orphans kept can make itself
 * a child subreaper, prctl(PR_SET_CHILD_SUBREAPER)).  When the ancestry
 * cannot be read with certainty (processes exiting during the check), the
 * event is not trusted.
 *
 * Errors: -ESRCH, -ENOSPC (FLTPORT_FILTER_MAX_TRUSTED live entries),
 * -EINVAL (bad flags), -EMFILE.  Trusting a process twice is not an error;
 * the later call's flags replace the earlier ones.
 */
#define FLTPORT_TRUST_PROCESS_ONLY 0x1u /* the process itself, not its descendants */
#define FLTPORT_FILTER_TRUST_DEPTH 32u  /* generations below a trusted process */
FLTPORT_API int fltport_filter_trust_pid(fltport_filter *f, pid_t pid);
FLTPORT_API int fltport_filter_trust_pidfd(fltport_filter *f, int pidfd);
FLTPORT_API int fltport_filter_trust_client(fltport_filter *f, const fltport_client *client);
FLTPORT_API int fltport_filter_trust_pidfd_ex(fltport_filter *f, int pidfd, unsigned flags);

/* End the trust of a process by pid.  Returns 0 or -ENOENT. */
FLTPORT_API int fltport_filter_untrust_pid(fltport_filter *f, pid_t pid);

/*
 * Trust a cgroup (cgroup2): every process in it or in a cgroup below it, as
 * /proc/<pid>/cgroup shows it when the event happens (a service started by
 * systemd, with everything it runs).  `cgroup_path` is the cgroup's path
 * relative to the cgroup2 root, as in the "0::" line of /proc/<pid>/cgroup
 * and systemd's ControlGroup property: "/system.slice/scanner.service" —
 * not a file-system path under /sys/fs/cgroup.  "/" (every process) is
 * refused.  The cgroup is held by its identity (its cgroup id), not its
 * name: once it is removed, a cgroup made again under the same path is not
 * trusted (trust it again to trust the new one).  Thread-safe.
 *
 * Errors: -EINVAL (NULL, not starting with "/", "/" itself, empty, "." or
 * ".." components), -ENAMETOOLONG, -ENOENT (no such cgroup), -ENOTDIR,
 * -EOPNOTSUPP (no cgroup2 file system mounted in the filter's mount
 * namespace), -ENOSPC (FLTPORT_FILTER_MAX_TRUSTED_CGROUPS), -ENOMEM.
 * Trusting a cgroup twice is not an error.
 */
#define FLTPORT_FILTER_MAX_TRUSTED_CGROUPS 32u
FLTPORT_API int fltport_filter_trust_cgroup(fltport_filter *f, const char *cgroup_path);

/* End the trust of a cgroup, by the path it was trusted with.  Returns 0,
 * -ENOENT, or -EINVAL. */
FLTPORT_API int fltport_filter_untrust_cgroup(fltport_filter *f, const char *cgroup_path);

/*
 * Verdict cache from outside an event (cache.c).  A filter that scans a
 * file no event asked for — a scanner's rescan after close-write — can drop
 * the file's cached allow, and place one after a clean scan, with the rules
 * of FLTPORT_ALLOW_CACHE (docs/FILTER.md, "The verdict cache"): the mark is
 * cleared by the kernel on modification and placed only if no writer could
 * have changed the file during the scan.  `fd` is the caller's fd of the
 * file, opened read-only (not O_PATH); the filter process's own opens are
 * never asked, so it may open a watched file by name for this.
 *
 *   _drop     forget the file's cached allow (all operations), e.g. after a
 *             close-write: a write through a shared mapping raises no modify
 *             event and leaves the mark.  0 also when nothing was cached.
 *   _hold     before reading the file: take a read lease on `fd`.  -EBUSY
 *             if the file is open for writing now (nothing can be cached),
 *             -EOPNOTSUPP if the cache is off or the file system has no
 *             leases.  While held, a writer's open waits until the hold ends
 *             (keep the scan short), and the kernel sends the process SIGIO
 *             (F_SETSIG) — a filter process must ignore or handle SIGIO, as
 *             it must for the engine's own cached allows.
 *   _allow    after a clean scan: cache an allow of `op` for the file if the
 *             hold is still unbroken once the mark is in place.  0 (cached),
 *             -EBUSY (no hold, or a writer broke it: nothing cached),
 *             -EOPNOTSUPP, -EINVAL (the filter has no callback for `op`).
 *             Always ends the hold.
 *   _release  end a hold without caching (an infected or failed scan).
 *
 * Thread-safe.  Errors also: -EINVAL (no permission group, or a forked
 * child's copy of the filter), -EBADF.
 */
FLTPORT_API int fltport_filter_cache_drop(fltport_filter *f, int fd);
FLTPORT_API int fltport_filter_cache_hold(fltport_filter *f, int fd);
FLTPORT_API int fltport_filter_cache_allow(fltport_filter *f, int fd, enum fltport_filter_op op);
FLTPORT_API void fltport_filter_cache_release(fltport_filter *f, int fd);

/* Counters.  Every permission event read is answered exactly once, as
 * allowed or denied: once quiet, seen == allowed + denied and in_flight == 0. */
struct fltport_filter_stats {
	uint64_t seen;          /* permission events read from the kernel */
	uint64_t allowed;       /* answered allow (for any reason) */
	uint64_t denied;        /* answered deny (for any reason) */
	uint64_t fast;          /* of those, answered by the reader: own process or
				 * trusted process */
	uint64_t timed_out;     /* answered by policy at the deadline */
	uint64_t overflowed;    /* answered by policy because the queue was full */
	uint64_t late;          /* callback verdicts dropped (deadline came first) */
	uint64_t cached;        /* allow verdicts placed in the kernel cache */
	uint64_t answer_errors; /* responses the kernel refused (should stay 0) */
	uint64_t post_events;   /* post-operation notifications delivered */
	uint32_t queue_depth;   /* events queued for a worker now (up to
				 * queue_max + workers: see queue_max) */
	uint32_t in_flight;     /* events read and not yet answered now */
	/* The fd budget (fltport_filter_create raises the soft RLIMIT_NOFILE
	 * to the hard limit and keeps events in flight below what it allows): */
	uint32_t max_in_flight; /* events in flight at most */
	uint64_t throttled;     /* times the reader waited for the budget */
	uint64_t kernel_denied; /* events the kernel denied itself, unable to
				 * open the file for the filter (an fd, memory, an
				 * LSM): one per event with FLTPORT_FILTER_HAVE_FD_ERROR,
				 * else one per failed read (at least one event
				 * each); should stay 0 */
	uint64_t submounts;     /* file systems attached by FLTPORT_ATTACH_SUBMOUNTS */
};

/* Read the counters (each is read atomically; the set is not a snapshot). */
FLTPORT_API void fltport_filter_stats(const fltport_filter *f, struct fltport_filter_stats *st);

/* Features found at create time (bits). */
#define FLTPORT_FILTER_HAVE_PIDFD 0x01u       /* opener identity through FAN_REPORT_PIDFD */
#define FLTPORT_FILTER_HAVE_DENY_ERRNO 0x02u  /* custom deny errnos (FAN_DENY_ERRNO) */
#define FLTPORT_FILTER_HAVE_PRE_CONTENT 0x04u /* pre-content class group */
#define FLTPORT_FILTER_HAVE_NOTIFY 0x08u      /* post-operation notifications */
#define FLTPORT_FILTER_HAVE_RENAME 0x10u      /* FAN_RENAME (old and new path in one event) */
#define FLTPORT_FILTER_HAVE_PIDFD_INFO 0x20u  /* credentials through PIDFD_GET_INFO */
#define FLTPORT_FILTER_HAVE_FD_ERROR 0x40u    /* FAN_REPORT_FD_ERROR (kernel_denied, above) */

FLTPORT_API unsigned fltport_filter_features(const fltport_filter *f);

/* Whether `err` (a positive errno) can be a deny verdict's errno here.
 * EPERM always can. */
FLTPORT_API bool fltport_filter_errno_supported(const fltport_filter *f, int err);

/* Nanoseconds left before the engine answers `ev` by policy (≥ 0): the
 * timeout to give fltport_send() when asking a service. */
FLTPORT_API int64_t fltport_filter_time_left(const struct fltport_filter_event *ev);

/*
 * Destroy a filter: remove its marks, answer every event still pending (by
 * the callbacks still running, or by policy at their deadline), wait for
 * running callbacks, stop the threads, close the groups, free.  Blocks
 * until done — a callback that never returns blocks it (as FltMgr's rundown
 * waits for callbacks).  Must not be called from a callback.  NULL is a
 * no-op.
 */
FLTPORT_API void fltport_filter_destroy(fltport_filter *f);

#ifdef __cplusplus
}
#endif

#endif /* FLTPORT_FILTER_H */
