#include "core/names.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fltport/port.h"

FLTPORT_API const char *fltport_dir(void)
{
	const char *d = getenv("FLTPORT_DIR");

	return d && *d ? d : FLTPORT_DEFAULT_DIR;
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

static int check_name(const char *n)
{
	size_t len = 0;

	for (const unsigned char *p = (const unsigned char *)n; *p; p++, len++) {
		if (*p == '/' || *p == '\\' || *p < 0x20 || *p == 0x7f)
			return -EINVAL;
	}
	if (len == 0 || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
		return -EINVAL;
	if (len > FLTPORT_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int fp_port_addr(const char *name, struct sockaddr_un *sa, socklen_t *salen)
{
	const char *dir = fltport_dir();
	int rc, n;

	if (!name)
		return -EINVAL;
	name = strip(name);
	rc = check_name(name);
	if (rc < 0)
		return rc;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
	return 0;
}
