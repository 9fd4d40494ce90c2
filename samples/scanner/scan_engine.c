/*
 * The engines of fltport-scanuser (scan_engine.h).
 */
#include "scan_engine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef FLTPORT_HAVE_CLAMAV
#include <clamav.h>
#endif

#define CHUNK (64 * 1024)

/* ---- the built-in pattern ---------------------------------------------- */

static int pattern_hit(const struct scan_engine *e, char *sig, size_t cap)
{
	snprintf(sig, cap, "pattern:%s", e->pattern);
	return 1;
}

int scan_engine_buf(const struct scan_engine *e, const void *buf, size_t len, char *sig, size_t cap)
{
	sig[0] = '\0';
	if (e->clam) {
		snprintf(sig, cap, "clamav needs the whole file (fd mode)");
		return -1;
	}
	if (e->pattern_len && memmem(buf, len, e->pattern, e->pattern_len))
		return pattern_hit(e, sig, cap);
	return 0;
}

/* The whole file, in chunks that overlap by pattern_len - 1 bytes so that
 * a match across a chunk boundary is found. */
static int pattern_fd(const struct scan_engine *e, int fd, char *sig, size_t cap)
{
	static __thread char buf[CHUNK + SCAN_PATTERN_MAX];
	size_t keep = 0, overlap = e->pattern_len - 1;
	off_t off = 0;

	for (;;) {
		ssize_t n = pread(fd, buf + keep, CHUNK, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(sig, cap, "read: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			return 0;
		off += n;
		if (memmem(buf, keep + (size_t)n, e->pattern, e->pattern_len))
			return pattern_hit(e, sig, cap);
		if (keep + (size_t)n >= overlap) {
			memmove(buf, buf + keep + (size_t)n - overlap, overlap);
			keep = overlap;
		} else {
			keep += (size_t)n;
		}
	}
}

/* ---- libclamav --------------------------------------------------------- */

#ifdef FLTPORT_HAVE_CLAMAV

bool scan_engine_have_clamav(void)
{
	return true;
}

const char *scan_engine_clamav_version(void)
{
	return cl_retver();
}

/* libclamav's messages would go to stderr: only errors are kept. */
static void clam_msg(enum cl_msg severity, const char *fullmsg, const char *msg, void *ctx)
{
	(void)msg;
	(void)ctx;
	if (severity == CL_MSG_ERROR)
		fprintf(stderr, "fltport-scanuser: libclamav: %s", fullmsg);
}

int scan_engine_load_clamav(struct scan_engine *e, const char *db, char *err, size_t errcap)
{
	struct cl_engine *eng;
	unsigned sigs = 0;
	cl_error_t rc;

	cl_set_clcb_msg(clam_msg);
	rc = cl_init(CL_INIT_DEFAULT);
	if (rc != CL_SUCCESS) {
		snprintf(err, errcap, "cl_init: %s", cl_strerror(rc));
		return -1;
	}
	eng = cl_engine_new();
	if (!eng) {
		snprintf(err, errcap, "cl_engine_new failed");
		return -1;
	}
	rc = cl_load(db, eng, &sigs, CL_DB_STDOPT);
	if (rc == CL_SUCCESS)
		rc = cl_engine_compile(eng);
	if (rc != CL_SUCCESS) {
		snprintf(err, errcap, "%s: %s", db, cl_strerror(rc));
		cl_engine_free(eng);
		return -1;
	}
	if (sigs == 0) {
		snprintf(err, errcap, "%s: no signatures", db);
		cl_engine_free(eng);
		return -1;
	}
	e->clam = eng;
	e->clam_sigs = sigs;
	return 0;
}

void scan_engine_free(struct scan_engine *e)
{
	if (e->clam)
		cl_engine_free(e->clam);
	e->clam = NULL;
}

/* clamd's defaults: every parser, heuristic alerts on. */
static void clam_options(struct cl_scan_options *o)
{
	memset(o, 0, sizeof(*o));
	o->general = CL_SCAN_GENERAL_HEURISTICS;
	o->parse = ~0u;
}

static int clam_fd(const struct scan_engine *e, int fd, const char *name, char *sig, size_t cap)
{
	struct cl_scan_options opts;
	const char *virname = NULL;
	unsigned long scanned = 0;
	cl_error_t rc;

	clam_options(&opts);
	rc = cl_scandesc(fd, name, &virname, &scanned, e->clam, &opts);
	if (rc == CL_VIRUS) {
		snprintf(sig, cap, "%s", virname ? virname : "clamav");
		return 1;
	}
	if (rc == CL_CLEAN)
		return 0;
	snprintf(sig, cap, "clamav: %s", cl_strerror(rc));
	return -1;
}

#else /* no libclamav */

bool scan_engine_have_clamav(void)
{
	return false;
}

const char *scan_engine_clamav_version(void)
{
	return NULL;
}

int scan_engine_load_clamav(struct scan_engine *e, const char *db, char *err, size_t errcap)
{
	(void)e;
	(void)db;
	snprintf(err, errcap, "built without libclamav (install libclamav-dev and rebuild)");
	return -1;
}

void scan_engine_free(struct scan_engine *e)
{
	e->clam = NULL;
}

static int clam_fd(const struct scan_engine *e, int fd, const char *name, char *sig, size_t cap)
{
	(void)e;
	(void)fd;
	(void)name;
	snprintf(sig, cap, "no libclamav");
	return -1;
}

#endif

int scan_engine_fd(const struct scan_engine *e, int fd, const char *name, char *sig, size_t cap)
{
	int rc = 0;

	sig[0] = '\0';
	if (e->clam)
		rc = clam_fd(e, fd, name, sig, cap);
	if (rc == 0 && e->pattern_len)
		rc = pattern_fd(e, fd, sig, cap);
	return rc;
}
