/*
 * The verdict cache from outside an event (filter.h, "Verdict cache from
 * outside an event"): drop the cached allow of a file, or place one after a
 * scan that no event asked for (a scanner's rescan after close-write).
 *
 * Same rules as the event path (perm.c): a cached allow is an evictable
 * inode ignore mark that the kernel clears on modification, placed only if
 * a read lease taken before the scan is still unbroken once the mark is in
 * place — so the cache is never staler than the scan.  The lease is the
 * caller's "hold" here, taken with fltport_filter_cache_hold() before it
 * reads the file.
 */
#include "filter/filter_int.h"
#include "filter/fan_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* The permission-event bit cached for `op`, or 0. */
static uint64_t op_bit(const struct fltport_filter *f, enum fltport_filter_op op)
{
	uint64_t bit = 0;

	switch (op) {
	case FLTPORT_OP_OPEN:
		bit = FAN_OPEN_PERM;
		break;
	case FLTPORT_OP_EXEC:
		bit = FAN_OPEN_EXEC_PERM;
		break;
	case FLTPORT_OP_READ:
		bit = FAN_ACCESS_PERM;
		break;
	case FLTPORT_OP_CONTENT:
		bit = FAN_PRE_ACCESS;
		break;
	default:
		break;
	}
	return bit & f->perm_mask;
}

static int usable(const struct fltport_filter *f, int fd)
{
	if (!f || fp_forked(&f->fork) || f->perm_fd < 0)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	return 0;
}

int fltport_filter_cache_drop(fltport_filter *f, int fd)
{
	int rc = usable(f, fd);
	int mode, flag;

	if (rc)
		return rc;
	mode = atomic_load(&f->cache_mode);
	if (mode <= 0) /* nothing was ever cached by this filter */
		return 0;
	flag = mode == 1 ? FAN_MARK_IGNORE : FAN_MARK_IGNORED_MASK;
	if (fanotify_mark(f->perm_fd, FAN_MARK_REMOVE | flag, f->perm_mask, fd, NULL) == 0 ||
	    errno == ENOENT) /* no mark on that inode: nothing cached */
		return 0;
	rc = -errno;
	fp_filter_debug("cache drop: %s", strerror(errno));
	return rc;
}

int fltport_filter_cache_hold(fltport_filter *f, int fd)
{
	int rc = usable(f, fd);

	if (rc)
		return rc;
	if (atomic_load(&f->cache_mode) < 0)
		return -EOPNOTSUPP;
	rc = fp_filter_lease_take(fd);
	if (rc == 0)
		return 0;
	if (rc == -EAGAIN) /* open for writing now */
		return -EBUSY;
	if (rc == -EBADF)
		return -EBADF;
	return -EOPNOTSUPP; /* no leases on this file system, or fd not read-only */
}

void fltport_filter_cache_release(fltport_filter *f, int fd)
{
	(void)f;
	if (fd >= 0)
		(void)fcntl(fd, F_SETLEASE, F_UNLCK);
}

/* Place the ignore mark for `bit`; returns the ignore flag used, or 0 with
 * errno set.  Probes the mark flavour on first use, as perm.c does. */
static int mark_place(struct fltport_filter *f, int fd, uint64_t bit)
{
	int mode = atomic_load(&f->cache_mode);
	int expect = 0;

	if (mode == 0 || mode == 1) {
		if (fanotify_mark(f->perm_fd, FAN_MARK_ADD | FAN_MARK_IGNORE | FAN_MARK_EVICTABLE,
				  bit, fd, NULL) == 0) {
			atomic_compare_exchange_strong(&f->cache_mode, &expect, 1);
			return FAN_MARK_IGNORE;
		}
		if (errno != EINVAL || mode == 1)
			return 0;
	}
	if (fanotify_mark(f->perm_fd, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_EVICTABLE,
			  bit, fd, NULL) == 0) {
		expect = 0;
		atomic_compare_exchange_strong(&f->cache_mode, &expect, 2);
		return FAN_MARK_IGNORED_MASK;
	}
	if (errno == EINVAL) { /* no evictable marks: never pin inodes */
		expect = 0;
		atomic_compare_exchange_strong(&f->cache_mode, &expect, -1);
		errno = EOPNOTSUPP;
	}
	return 0;
}

int fltport_filter_cache_allow(fltport_filter *f, int fd, enum fltport_filter_op op)
{
	int rc = usable(f, fd);
	uint64_t bit;
	int flag;

	if (rc)
		return rc;
	bit = op_bit(f, op);
	if (!bit) {
		rc = -EINVAL;
	} else if (atomic_load(&f->cache_mode) < 0) {
		rc = -EOPNOTSUPP;
	} else if (fcntl(fd, F_GETLEASE) != F_RDLCK) {
		rc = -EBUSY; /* never held, or a writer broke it: the scan may be stale */
	} else if (!(flag = mark_place(f, fd, bit))) {
		rc = errno == EOPNOTSUPP ? -EOPNOTSUPP : -errno;
	} else if (fcntl(fd, F_GETLEASE) != F_RDLCK) {
		/* A writer came while the mark went in: it may have written
		 * before the mark existed, which the kernel could not clear. */
		(void)fanotify_mark(f->perm_fd, FAN_MARK_REMOVE | flag, bit, fd, NULL);
		rc = -EBUSY;
	} else {
		atomic_fetch_add(&f->c.cached, 1);
	}
	fltport_filter_cache_release(f, fd);
	return rc;
}
