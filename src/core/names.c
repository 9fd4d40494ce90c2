#include "core/names.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "core/debug.h"
#include "fltport/port.h"

#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

FLTPORT_API const char *fltport_dir(void)
{
	const char *d = getenv("FLTPORT_DIR");

	return d && *d ? d : FLTPORT_DEFAULT_DIR;
}

bool fp_flock_bounded(int fd, int ms)
{
	int waited = 0, step = 1;

	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return true;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return false;
		if (waited >= ms)
			return false;
		usleep((useconds_t)step * 1000);
		waited += step;
		if (step < 16)
			step *= 2;
	}
}

int fp_socket_live(const struct sockaddr_un *sa, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int rc;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, len) == 0 || errno == EAGAIN ||
	    errno == EINPROGRESS)
		rc = 1;
	else if (errno == ECONNREFUSED || errno == ENOENT)
		rc = 0;
	else
		rc = -errno;
	close(fd);
	return rc;
}

bool fp_dir_is_custom(void)
{
	const char *d = getenv("FLTPORT_DIR");

	return d && *d;
}

static const char *strip(const char *name)
{
	while (*name == '\\')
		name++;
	return name;
}

FLTPORT_API int fltport_name_valid(const char *name)
{
	struct sockaddr_un sa;
	socklen_t len;

	return fp_port_addr(name, &sa, &len);
}

/* The directory part of every socket path.  A relative $FLTPORT_DIR would
 * name a different directory (so a different port) in every working
 * directory: refused.  A directory too long for any socket path is told
 * apart from a name too long for the directory, as the fixes differ. */
static int check_dir(const char *dir)
{
	size_t len = strlen(dir);

	if (dir[0] != '/') {
		fp_debug("FLTPORT_DIR=%s is a relative path: set it to an absolute one", dir);
		return -EINVAL;
	}
	/* "<dir>/<name of one byte>" and the NUL. */
	if (len + 3 > SUN_PATH_SIZE) {
		fp_debug("FLTPORT_DIR is %zu bytes: no socket path fits under it (a Unix "
			 "socket path holds %zu bytes); use a directory of at most %zu bytes",
			 len, SUN_PATH_SIZE - 1, SUN_PATH_SIZE - 3);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int check_name(const char *n)
{
	size_t len = 0;

	for (const unsigned char *p = (const unsigned char *)n; *p; p++, len++) {
		if (*p == '/' || *p == '\\' || *p < 0x20 || *p == 0x7f)
			return -EINVAL;
	}
	if (len == 0 || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
		return -EINVAL;
	if (len > FLTPORT_NAME_MAX) {
		fp_debug("port name %s is %zu bytes: at most %u", n, len, FLTPORT_NAME_MAX);
		return -ENAMETOOLONG;
	}
	return 0;
}

int fp_port_addr(const char *name, struct sockaddr_un *sa, socklen_t *salen)
{
	const char *dir = fltport_dir();
	int rc, n;

	if (!name)
		return -EINVAL;
	rc = check_dir(dir);
	if (rc < 0)
		return rc;
	name = strip(name);
	rc = check_name(name);
	if (rc < 0)
		return rc;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path)) {
		fp_debug("port name %s is %zu bytes: at most %zu fit under the port directory %s",
			 name, strlen(name), SUN_PATH_SIZE - 2 - strlen(dir), dir);
		return -ENAMETOOLONG;
	}
	*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
	return 0;
}
