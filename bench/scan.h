/*
 * scan.h — the pieces of fltport-bench's scanner rows (issue 10;
 * bench/README.md, "Scanner rows"): the files to scan on a tmpfs of their
 * own, the programs that scan them (fltport-scanner and fltport-scanuser from
 * this build; Debian's clamd and clamonacc), and libclamav in process.  The
 * rows themselves live in fltport-bench.c.
 *
 * Conventions as in e2e.h: 0 or a negative errno; nothing here prints — a
 * failure that needs more words than an errno fills the caller's `err`
 * text; every fd is O_CLOEXEC.  Root only.
 *
 * Safety: the programs started here watch one file system, the files
 * tmpfs, which lives under the bench's e2e tmpfs in its private mount
 * namespace: fltport-scanner is given only that path (checked with
 * e2e_fs_check() first), clamd's configuration names only its root
 * directory as OnAccessIncludePath, and clamonacc's marks are read back from
 * /proc and must be exactly one inode mark on that directory, or clamonacc
 * is killed at once.  Every program runs in its own process group (a
 * Ctrl-C is the bench's to handle), dies with the bench (PR_SET_PDEATHSIG;
 * none of them changes its credentials), and is killed and reaped by
 * scan_proc_kill_all() on every error path.
 */
#ifndef FLTPORT_BENCH_SCAN_H
#define FLTPORT_BENCH_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define SCAN_FILES 30000u  /* clean files: a miss row opens each at most once */
#define SCAN_HIT_FILES 16u /* the hit rows reopen the first ones of them in turn */
#define SCAN_FILE_SIZE 64u /* bytes per file, as the e2e rows' file */
#define SCAN_PATH_MAX 128u /* a file's path, with its NUL */
#define SCAN_ERR_MAX 512u  /* an error text */
#define SCAN_PROCS_MAX 4u  /* programs running at once */
#define SCAN_MALWARE "fltport-bench-malware" /* what the one signature matches */
#define SCAN_SIG_NAME "Fltport.Bench.Body"

/* The two tmpfs mounts of the scanner rows. */
struct scan_env {
	char files[64]; /* the clean files f00000.txt ... and infected.txt, nothing else */
	char work[64];  /* never watched: db/, clamd.conf, clamd's socket, tmp/, logs */
	char db[80];    /* work/db: bench.ndb, the one-signature ClamAV database */
	char infected[SCAN_PATH_MAX]; /* files/infected.txt: the signature and "foul" */
};

/*
 * Mount the two tmpfs on new directories in `parent` (the e2e tmpfs), write
 * the SCAN_FILES clean files (each with different contents, so that no
 * scanner's content cache turns a miss into a hit), the infected file and
 * the database.  On error what was done is undone and *what names the step.
 */
int scan_env_setup(struct scan_env *s, const char *parent, const char **what);

/* Unmount both tmpfs and remove their directories. */
int scan_env_teardown(struct scan_env *s);

/* For the error paths: the same, detaching lazily.  Async-signal-safe. */
void scan_env_abort(void);

/* The path of clean file `i` in directory `dir`; 0 or -ENAMETOOLONG. */
int scan_file_path(const char *dir, unsigned i, char *buf, size_t cap);

/* The paths of the first `n` clean files in `dir`, SCAN_PATH_MAX apart, in
 * one malloc'd block (free() it); NULL when out of memory. */
char *scan_file_paths(const char *dir, unsigned n);

/* ---- programs ----------------------------------------------------------- */

struct scan_proc {
	pid_t pid; /* 0: not running */
	int out;   /* read end of its stdout, or -1 (output to a file) */
	size_t len;
	char buf[4096];
};

/*
 * Start argv[0] (a path) with argv and the bench's environment plus `env`
 * ("NAME=VALUE", or NULL): a process group of its own, SIGKILL when the
 * bench dies.  out_file NULL: its stdout is a pipe read with
 * scan_proc_expect() and its stderr the bench's; else both go to out_file.
 * -EMFILE if SCAN_PROCS_MAX programs already run.
 */
int scan_proc_start(struct scan_proc *p, char *const argv[], const char *out_file, const char *env);

/* Read its stdout until a line starts with `prefix` (that line in `line`),
 * at most `ms`: 0, -ETIMEDOUT, or -EPIPE when it closed its stdout. */
int scan_proc_expect(struct scan_proc *p, const char *prefix, char *line, size_t cap, int ms);

/* Still running?  Reaps it if not (*status then holds its wait status). */
bool scan_proc_alive(struct scan_proc *p, int *status);

/* SIGTERM, at most `ms` for it to exit, then SIGKILL; reaps it.  Returns its
 * wait status (0: exited 0), or 0 if it was not running. */
int scan_proc_stop(struct scan_proc *p, int ms);

/* CPU time (µs) and context switches of a running program, all threads,
 * from /proc; adds them to *cpu_us and *csw. */
int scan_proc_usage(pid_t pid, double *cpu_us, double *csw);

/* SIGKILL and reap every program started here.  Async-signal-safe. */
void scan_proc_kill_all(void);

/* The number after " key=" in a line like "STATS seen=3 ...", or -1. */
long long scan_field(const char *line, const char *key);

/* ---- fltport-scanner + fltport-scanuser ----------------------------------- */

struct scan_fltport {
	struct scan_proc filter;  /* fltport-scanner */
	struct scan_proc service; /* fltport-scanuser */
};

/* The filter's counters (its STATS line). */
struct scan_stats {
	long long seen, scanned, cached, timed_out, failed, no_service, infected;
};

/* NULL, or why the rows of the programs in `bindir` are skipped. */
const char *scan_fltport_missing(const char *bindir);

/* Whether bindir's fltport-scanuser was built with libclamav. */
bool scan_fltport_has_clamav(const char *bindir);

/* Start fltport-scanner on s->files (default extensions, fail-open, 5 s)
 * and fltport-scanuser (the built-in pattern, or libclamav with s->db
 * only, TMPDIR s->work/tmp as clamd's), and wait until the service is
 * connected. */
int scan_fltport_start(struct scan_fltport *f, const char *bindir, const struct scan_env *s,
		       bool clamav, char *err, size_t cap);

/* The filter's counters now (SIGUSR1 → its STATS line). */
int scan_fltport_stats(struct scan_fltport *f, struct scan_stats *st);

/* Stop the service, then the filter; *st gets the filter's last counters. */
int scan_fltport_stop(struct scan_fltport *f, struct scan_stats *st, char *err, size_t cap);

/* ---- ClamAV on-access: clamd + clamonacc --fdpass --------------------------- */

struct scan_clamd {
	struct scan_proc clamd;
	struct scan_proc onacc; /* clamonacc */
	struct stat files;      /* the directory clamonacc may mark */
};

/* NULL, or why the clamonacc rows are skipped (clamd or clamonacc missing). */
const char *scan_clamd_missing(void);

/* Write clamd.conf in s->work (s->db, a socket and a temp dir there;
 * OnAccessIncludePath s->files, OnAccessPrevention yes), start clamd, wait
 * until it answers PING, start clamonacc --fdpass, wait until its one mark
 * is on s->files.  Both run as root (clamonacc needs root; clamd stays root
 * so that it dies with the bench): clamonacc demands an excluded user, given
 * as uid 65534, which opens nothing here. */
int scan_clamd_start(struct scan_clamd *c, const struct scan_env *s, char *err, size_t cap);

/* Check clamonacc's marks once more (still the one on s->files), then
 * stop clamonacc (its group closes: pending opens allowed), then clamd. */
int scan_clamd_stop(struct scan_clamd *c, char *err, size_t cap);

/* ---- libclamav in process --------------------------------------------------- */

/* NULL, or why clamav-scan-only is skipped (built without libclamav). */
const char *scan_clam_missing(void);

/* cl_init, a new engine, cl_load(db, CL_DB_STDOPT), compile: as
 * fltport-scanuser --clamav does; its per-scan directories in `tmpdir`. */
int scan_clam_load(const char *db, const char *tmpdir, void **engine, char *err, size_t cap);

/* cl_scandesc with fltport-scanuser's options: 0 clean, 1 infected, or
 * -EIO (err says why). */
int scan_clam_fd(void *engine, int fd, char *err, size_t cap);

void scan_clam_free(void *engine);

#endif /* FLTPORT_BENCH_SCAN_H */
