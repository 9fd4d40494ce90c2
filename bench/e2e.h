/*
 * e2e.h — the pieces of fltport-bench's end-to-end rows (bench/README.md,
 * "End-to-end rows"): a private tmpfs to filter, a minimal raw fanotify
 * listener (the floor the engine is measured against), and the fltport
 * filter engine with the bench's pre_open callbacks.  The rows themselves
 * and the opener process that times the opens live in fltport-bench.c.
 *
 * Conventions: 0 or a negative errno; nothing here prints; every fd is
 * O_CLOEXEC.  Everything needs root (CAP_SYS_ADMIN).  Only the tmpfs that
 * e2e_fs_setup() mounted is ever marked: every mark is preceded by
 * e2e_fs_check().
 */
#ifndef FLTPORT_BENCH_E2E_H
#define FLTPORT_BENCH_E2E_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <fltport/filter.h>
#include <fltport/port.h>

#define E2E_FILE_SIZE 64u /* bytes in the file the opener opens */
#define E2E_MSG_SIZE 64u  /* the request to the service, and its reply */

/* The private tmpfs and the one file the rows open. */
struct e2e_fs {
	char dir[64];  /* mount point: a mkdtemp directory under /tmp */
	char file[96]; /* dir + "/file" */
};

/*
 * Whether this kernel has fanotify permission events: 0, or the errno
 * fanotify_init() gave for a content-class group (-EINVAL / -ENOSYS: not
 * built in; -EPERM: no CAP_SYS_ADMIN).
 */
int e2e_probe(void);

/*
 * Move this process into a private mount namespace (unshare(CLONE_NEWNS),
 * then "/" recursively private), mount a tmpfs on a new directory under
 * /tmp and create the file.  Call it before the process starts any thread:
 * unshare changes only the calling thread's namespace, and later threads and
 * children inherit it.  On error, what was done is undone (the namespace
 * stays) and *what names the step that failed.
 */
int e2e_fs_setup(struct e2e_fs *fs, const char **what);

/* 0 if `dir` is the root of a tmpfs mounted on a different file system
 * than its parent directory, else -EXDEV. */
int e2e_fs_check(const char *dir);

/* Unmount the tmpfs and remove its directory (lazily if it is busy). */
int e2e_fs_teardown(struct e2e_fs *fs);

/* For the error paths (a failure, the watchdog): the same as teardown,
 * detaching lazily.  Async-signal-safe; does nothing if nothing is mounted. */
void e2e_fs_abort(void);

/*
 * The floors: a raw in-process listener, one thread answering FAN_ALLOW,
 * doing per event only what a mode says (and nothing of fltport's):
 *   PLAIN  nothing: e2e-fanotify-raw, the floor of the issue-7 targets.
 *   INFO   what the engine's default hands a callback: the group reports a
 *          pidfd (FAN_REPORT_PIDFD, kept until the next event's, as the
 *          engine keeps it), and the listener reads the file's path
 *          (readlinkat of /proc/self/fd/N), the opener's executable
 *          (readlinkat of /proc/PID/exe) and its credentials
 *          (PIDFD_GET_INFO): e2e-fanotify-raw-info.
 *   ASK    passes the event fd to a service process over a SOCK_SEQPACKET
 *          socket (SCM_RIGHTS, 64 bytes) and waits for its 64-byte answer
 *          before allowing: e2e-fanotify-raw-ask.
 *   INFO_ASK  both: e2e-fanotify-raw-info-ask.
 *   CACHE  places, with its answer, the ignore mark the engine's cache
 *          places (FAN_MARK_IGNORE | FAN_MARK_EVICTABLE on the file, for
 *          FAN_OPEN_PERM): later opens are answered by the kernel —
 *          e2e-fanotify-raw-cached, the floor of e2e-cached.
 */
enum e2e_raw_mode {
	E2E_RAW_PLAIN = 0,
	E2E_RAW_INFO = 1,
	E2E_RAW_ASK = 2,
	E2E_RAW_INFO_ASK = E2E_RAW_INFO | E2E_RAW_ASK,
	E2E_RAW_CACHE = 4,
};

struct e2e_raw {
	int fan; /* the fanotify group; the thread closes it on its own error */
	pthread_t thread;
	atomic_bool stop;
	enum e2e_raw_mode mode;
	int ask_fd;     /* ASK: the socket to the service (not owned) */
	int selffd_dir; /* INFO: /proc/self/fd and /proc, O_PATH */
	int proc_dir;
	int last_pidfd;    /* INFO: the previous event's pidfd, or -1 */
	uint64_t answered; /* read after e2e_raw_stop() only */
	uint64_t cached;   /* CACHE: ignore marks placed */
	int err;           /* the thread's first error (negative errno), or 0 */
};

/* Create a FAN_CLASS_CONTENT group, mark the tmpfs at `dir` for
 * FAN_OPEN_PERM (FAN_MARK_FILESYSTEM) and start the thread.  `ask_fd`: the
 * service's socket for the ASK modes, else -1. */
int e2e_raw_start(struct e2e_raw *r, const char *dir, enum e2e_raw_mode mode, int ask_fd);

/* Stop the thread (this thread opens `file` once so that the listener wakes
 * to see the stop flag), join it, close the group.  Returns the thread's
 * error, if any; r->answered then holds the number of answers it wrote. */
int e2e_raw_stop(struct e2e_raw *r, const char *file);

/* What the engine's pre_open callback does. */
enum e2e_verdict {
	E2E_ALLOW,       /* return FLTPORT_ALLOW at once */
	E2E_ALLOW_CACHE, /* return FLTPORT_ALLOW_CACHE at once */
	E2E_ASK_SERVICE, /* fltport_send the event fd to the service, allow on its reply */
	/* The same two with FLTPORT_FILTER_LAZY_INFO | FLTPORT_FILTER_NO_CACHE:
	 * no path, identity or lease unless the callback asks. */
	E2E_ALLOW_LAZY,
	E2E_ASK_SERVICE_LAZY,
	/* E2E_ALLOW_LAZY and FLTPORT_FILTER_NO_PIDFD: no pidfd per event either
	 * (identity and trust by pid, docs/FILTER.md). */
	E2E_ALLOW_MINIMAL,
};

struct e2e_engine {
	fltport_filter *filter;
	_Atomic(fltport_client *) service; /* E2E_ASK_SERVICE; NULL → allow unasked */
	atomic_int err;                    /* first failed fltport_send (negative errno), or 0 */
};

/* fltport_filter_create (pre_open only, defaults otherwise) and
 * fltport_filter_attach to the tmpfs at `dir`. */
int e2e_engine_start(struct e2e_engine *e, enum e2e_verdict verdict, const char *dir);

/* E2E_ASK_SERVICE: trust the service's process and send it every event
 * from now on.  The client port must outlive e2e_engine_stop(). */
int e2e_engine_serve(struct e2e_engine *e, fltport_client *service);

/* Read the counters, destroy the filter (no callback runs afterwards),
 * return the first error a callback met. */
int e2e_engine_stop(struct e2e_engine *e, struct fltport_filter_stats *st);

/* One timed iteration of the opener: open(path, O_RDONLY) + close. */
int e2e_open_close(void *path);

#endif /* FLTPORT_BENCH_E2E_H */
