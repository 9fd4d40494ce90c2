/*
 * fltport-scanuser's engines: the built-in pattern (Microsoft's sample looks
 * for "foul") and libclamav (when built with it).  Both scan a buffer (the
 * 1 KiB of Microsoft's notification) or a whole file through an fd.
 * Thread-safe once loaded.
 */
#ifndef SCAN_ENGINE_H
#define SCAN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#define SCAN_PATTERN_MAX 256

struct scan_engine {
	char pattern[SCAN_PATTERN_MAX]; /* "" when off */
	size_t pattern_len;
	void *clam; /* struct cl_engine *, NULL when off */
	unsigned clam_sigs;
};

/* Built with libclamav? */
bool scan_engine_have_clamav(void);
const char *scan_engine_clamav_version(void);

/* Load ClamAV signatures from a database directory or file.  Returns 0, or
 * -1 with the reason in err. */
int scan_engine_load_clamav(struct scan_engine *e, const char *db, char *err, size_t errcap);
void scan_engine_free(struct scan_engine *e);

/* Scan.  Returns 0 (clean), 1 (infected: `sig` names what was found), or -1
 * (could not scan: the reason in `sig`).  The pattern reads the fd with
 * pread; libclamav may move its offset.  `name` is for libclamav's messages
 * (may be NULL). */
int scan_engine_fd(const struct scan_engine *e, int fd, const char *name, char *sig, size_t cap);
int scan_engine_buf(const struct scan_engine *e, const void *buf, size_t len, char *sig,
		    size_t cap);

#endif
