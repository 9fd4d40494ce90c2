/*
 * Trusted processes.  Trust is held by a pidfd: a pid alone could be
 * reused by an unrelated process after the trusted one exits.
 *
 * Matching an event (called by the reader, so no file-system access):
 *   - on pidfs (6.9+) every process has its own inode number: the event's
 *     pidfd (FAN_REPORT_PIDFD) and the trusted pidfd name the same process
 *     iff their inodes are equal;
 *   - otherwise the pids must be equal and the trusted process alive
 *     (pidfd_send_signal(…, 0)): a live process keeps its pid, so the pid
 *     cannot have been reused.
 */
#include "filter/filter_int.h"
#include "filter/fan_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

static bool pidfd_alive(int pidfd)
{
	return syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0;
}

static uint64_t pidfd_ino(struct fltport_filter *f, int pidfd)
{
	struct stat st;

	if (!f->pidfs || pidfd < 0 || fstat(pidfd, &st) != 0)
		return 0;
	return (uint64_t)st.st_ino;
}

/* The pid a pidfd refers to, from /proc/self/fdinfo ("Pid:"), or -1. */
static pid_t pidfd_pid(int pidfd)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;
	char *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "\nPid:");
	if (!p)
		return -1;
	return (pid_t)strtol(p + 5, NULL, 10);
}

bool fp_filter_trusted(struct fltport_filter *f, pid_t pid, int ev_pidfd)
{
	bool yes = false;

	pthread_mutex_lock(&f->trust_lock);
	for (unsigned i = 0; i < f->ntrust && !yes; i++) {
		const struct fp_filter_trust *t = &f->trust[i];

		if (t->pid != pid)
			continue;
		if (t->ino && ev_pidfd >= 0)
			yes = pidfd_ino(f, ev_pidfd) == t->ino;
		else
			yes = pidfd_alive(t->pidfd);
	}
	pthread_mutex_unlock(&f->trust_lock);
	return yes;
}

/* Drop entries whose process is gone.  Under trust_lock. */
static void prune(struct fltport_filter *f)
{
	unsigned j = 0;

	for (unsigned i = 0; i < f->ntrust; i++) {
		if (pidfd_alive(f->trust[i].pidfd))
			f->trust[j++] = f->trust[i];
		else
			close(f->trust[i].pidfd);
	}
	f->ntrust = j;
}

/* Takes ownership of pidfd. */
static int trust_add(struct fltport_filter *f, int pidfd)
{
	struct fp_filter_trust t = { .pidfd = pidfd };
	int rc = 0;

	t.pid = pidfd_pid(pidfd);
	if (t.pid <= 0 || !pidfd_alive(pidfd)) {
		close(pidfd);
		return -ESRCH;
	}
	t.ino = pidfd_ino(f, pidfd);
	pthread_mutex_lock(&f->trust_lock);
	prune(f);
	for (unsigned i = 0; i < f->ntrust; i++) {
		if (f->trust[i].pid == t.pid && f->trust[i].ino == t.ino) {
			close(pidfd); /* already trusted */
			pthread_mutex_unlock(&f->trust_lock);
			return 0;
		}
	}
	if (f->ntrust >= FLTPORT_FILTER_MAX_TRUSTED)
		rc = -ENOSPC;
	else
		f->trust[f->ntrust++] = t;
	pthread_mutex_unlock(&f->trust_lock);
	if (rc)
		close(pidfd);
	else
		fp_filter_debug("trusting pid %d", (int)t.pid);
	return rc;
}

int fltport_filter_trust_pid(fltport_filter *f, pid_t pid)
{
	int fd;

	if (!f || pid <= 0)
		return -EINVAL;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -errno;
	/* pidfd_open gives no CLOEXEC flag choice: set it. */
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	return trust_add(f, fd);
}

int fltport_filter_trust_pidfd(fltport_filter *f, int pidfd)
{
	int fd;

	if (!f || pidfd < 0)
		return -EINVAL;
	fd = fcntl(pidfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	return trust_add(f, fd);
}

int fltport_filter_trust_client(fltport_filter *f, const fltport_client *client)
{
	struct fltport_peer peer;

	if (!f || !client)
		return -EINVAL;
	fltport_client_peer(client, &peer);
	if (peer.pidfd >= 0)
		return fltport_filter_trust_pidfd(f, peer.pidfd);
	return fltport_filter_trust_pid(f, peer.pid);
}

int fltport_filter_untrust_pid(fltport_filter *f, pid_t pid)
{
	int rc = -ENOENT;
	unsigned j = 0;

	if (!f)
		return -EINVAL;
	pthread_mutex_lock(&f->trust_lock);
	for (unsigned i = 0; i < f->ntrust; i++) {
		if (f->trust[i].pid == pid) {
			close(f->trust[i].pidfd);
			rc = 0;
		} else {
			f->trust[j++] = f->trust[i];
		}
	}
	f->ntrust = j;
	pthread_mutex_unlock(&f->trust_lock);
	return rc;
}

void fp_filter_trust_free(struct fltport_filter *f)
{
	for (unsigned i = 0; i < f->ntrust; i++)
		close(f->trust[i].pidfd);
	f->ntrust = 0;
}
