/*
 * Test utilities shared by the suites and helper programs.
 *
 * Tests start helper programs (tests/helpers/) with fork+exec and talk to
 * them through the helper's stdout, one line per event.  Every wait here has
 * a deadline: a test never hangs, it fails.
 */
#ifndef FP_TESTUTIL_H
#define FP_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Make a fresh directory "$TMPDIR/<prefix>-XXXXXX", mode 0755 ($TMPDIR unset,
 * relative, or too long to leave room for socket names under it: /tmp), and
 * have it removed with everything in it when this process ends:
 *   - by this process at exit() (also after a failed Criterion assertion);
 *     a forked child that calls exit() leaves it alone;
 *   - if the process dies without exit() (a signal, a Criterion timeout,
 *     _exit()), by a watcher started here: `sh` in its own session, waiting
 *     for EOF on a pipe whose write end (O_CLOEXEC) this process and its
 *     forked, not exec'd, children hold.  Call this before unshare(): the
 *     watcher then sees the directory as the rest of the system does.
 * Returns the path (static storage, one per call).  Aborts on failure.
 */
const char *tu_temp_dir(const char *prefix);

/* A tu_temp_dir("fltport-test") with FLTPORT_DIR pointed at it, so that
 * tests never collide.  Returns the path. */
const char *tu_private_dir(void);

/* A port name unique in this process: "<prefix>-<pid>-<n>". */
const char *tu_port_name(const char *prefix);

/* A started helper: its pid and the read end of its stdout. */
struct tu_proc {
	pid_t pid;
	int out; /* -1 if not captured */
};

/* Start FP_HELPER_DIR/<helper> with the given arguments (NULL-terminated,
 * argv[0] excluded).  Its stdout is captured (read it with tu_read_line),
 * its stderr goes to ours.  Aborts the test on failure to start. */
struct tu_proc tu_spawn(const char *helper, const char *const *args);

/* Read one line (without the newline) from the helper within timeout_ms.
 * Returns true if a line was read; false on EOF or timeout. */
bool tu_read_line(struct tu_proc *p, char *buf, size_t n, int timeout_ms);

/* Read lines until one starts with `prefix`; returns true and the line in
 * buf, or false on EOF/timeout.  Other lines are skipped. */
bool tu_expect(struct tu_proc *p, const char *prefix, char *buf, size_t n, int timeout_ms);

/* Wait for the helper to exit within timeout_ms.  Returns its exit code,
 * 128+signal if killed by a signal, or -1 on timeout (it is then killed
 * with SIGKILL and reaped).  Closes p->out. */
int tu_wait(struct tu_proc *p, int timeout_ms);

/* Kill with `sig` and reap (bounded wait); SIGSTOP: return once every
 * thread of the helper has stopped (it is not reaped). */
void tu_kill(struct tu_proc *p, int sig);

/* Monotonic clock in nanoseconds / milliseconds. */
int64_t tu_now_ns(void);
int64_t tu_now_ms(void);

/* Sleep without being cut short by signals. */
void tu_sleep_ms(int ms);

/* Poll `pred(arg)` every millisecond until it is true or timeout_ms passes. */
bool tu_wait_until(bool (*pred)(void *), void *arg, int timeout_ms);

/* The system call a thread of this process sleeps in
 * (/proc/self/task/TID/syscall), or -1 (running, gone). */
long tu_task_syscall(int tid);

/* Whether a thread of this process sleeps in a futex wait on the user
 * side's `sleeping` word of a shared-memory ring (the reader on the rings:
 * transport/ring.h, fp_ring_wait()). */
bool tu_task_in_ring_wait(int tid);

/* The id of this process's thread named `comm` (/proc/self/task/TID/comm),
 * or -1. */
int tu_thread_named(const char *comm);

/* How many threads this process has, but for those whose name starts with
 * `except_prefix`. */
int tu_thread_count(const char *except_prefix);

/* How many fds of this process refer to the pipe with inode `ino`. */
int tu_pipe_refs(ino_t ino);

/* Scale a message count by $FLTPORT_TEST_SCALE (a percentage, default 100),
 * used by sanitizer passes to keep to CI's time budget; never below min. */
long tu_scaled(long n, long min);

/* The tests' byte pattern: byte i of pattern `seed`.  (The Windows-style
 * clients in tests/compat/clients/ cannot link this file and keep a copy.) */
unsigned char tu_pattern_byte(size_t i, unsigned seed);

/* FNV-1a checksums of payloads, as helpers print them. */
uint64_t tu_fnv1a64(const void *p, size_t n);
uint32_t tu_fnv1a32(const void *p, size_t n);

/* One of 8 rotating static 2 KiB buffers, so that a few formatted results
 * fit in one assertion message. */
char *tu_scratch(void);

/* The value of " key=" in a helper's output line ("" if absent), in a
 * scratch buffer; and the same as a number (strtoll, base 0). */
const char *tu_field(const char *line, const char *key);
long long tu_field_num(const char *line, const char *key);

/* Helpers' side: print a line to stdout and flush at once. */
void tu_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Helpers' side: drop to uid/gid (setgroups cleared).  Returns 0 or -errno. */
int tu_drop_to(uid_t uid, gid_t gid);

#endif
