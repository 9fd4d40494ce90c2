/*
 * Who caused an event: effective uid/gid and executable of the opener.
 *
 * fanotify reports a pid, not credentials.  With a pidfd of the opener
 * (FAN_REPORT_PIDFD) the credentials come from PIDFD_GET_INFO (6.13+),
 * which cannot race with pid reuse; otherwise from /proc/<pid>/status.  The
 * executable comes from /proc/<pid>/exe and is kept only if the pidfd shows
 * the same process still alive afterwards (a live process keeps its pid):
 * PIDFD_GET_INFO, asked after the readlink, shows it (one call for the
 * credentials and the check); else pidfd_send_signal(0).
 * Without a pidfd a reused pid could give another process's identity: the
 * opener is blocked in the kernel waiting for our answer, so it can only
 * disappear by SIGKILL — documented in docs/FILTER.md.
 */
#include "filter/filter_int.h"
#include "filter/fan_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

int fp_filter_fd_path(struct fltport_filter *f, int fd, char *buf, size_t len)
{
	char link[64];
	ssize_t n;

	if (f->selffd_dir >= 0)
		snprintf(link, sizeof(link), "%d", fd);
	else
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlinkat(f->selffd_dir >= 0 ? f->selffd_dir : AT_FDCWD, link, buf, len - 1);
	if (n < 0)
		return -errno;
	if ((size_t)n >= len - 1)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

static bool creds_from_pidfd(int pidfd, uid_t *uid, gid_t *gid)
{
	struct fp_pidfd_info info;

	memset(&info, 0, sizeof(info));
	info.mask = FP_PIDFD_INFO_CREDS;
	if (ioctl(pidfd, FP_PIDFD_GET_INFO, &info) != 0 || !(info.mask & FP_PIDFD_INFO_CREDS))
		return false;
	*uid = info.euid;
	*gid = info.egid;
	return true;
}

/* "Uid:\treal\teffective\tsaved\tfs" */
static void creds_from_proc(pid_t pid, uid_t *uid, gid_t *gid)
{
	char path[64], buf[4096], *p;
	unsigned long r, e;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	p = strstr(buf, "\nUid:");
	if (p && sscanf(p + 5, "%lu %lu", &r, &e) == 2)
		*uid = (uid_t)e;
	p = strstr(buf, "\nGid:");
	if (p && sscanf(p + 5, "%lu %lu", &r, &e) == 2)
		*gid = (gid_t)e;
}

void fp_filter_identity(struct fltport_filter *f, pid_t pid, int pidfd, uid_t *uid, gid_t *gid,
			char *exe, size_t exe_len)
{
	char link[64];
	ssize_t n;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	exe[0] = '\0';
	if (pid <= 0)
		return;
	if (f->proc_dir >= 0)
		snprintf(link, sizeof(link), "%d/exe", (int)pid);
	else
		snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	n = readlinkat(f->proc_dir >= 0 ? f->proc_dir : AT_FDCWD, link, exe, exe_len - 1);
	exe[n > 0 && (size_t)n < exe_len ? n : 0] = '\0';
	/* The executable was read through /proc by pid: keep it only if the
	 * process is still the one the pidfd names.  PIDFD_GET_INFO after the
	 * readlink proves that by itself (it fails once the process is
	 * reaped, and a pid is reused only after that): one call for both. */
	if (pidfd >= 0 && (f->features & FLTPORT_FILTER_HAVE_PIDFD_INFO) &&
	    creds_from_pidfd(pidfd, uid, gid))
		return;
	creds_from_proc(pid, uid, gid);
	if (pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) != 0) {
		*uid = (uid_t)-1;
		*gid = (gid_t)-1;
		exe[0] = '\0';
	}
}
