/* Port names → socket paths in the port directory. */
#ifndef FP_NAMES_H
#define FP_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Build the socket address for `name`.  Returns 0, -EINVAL or -ENAMETOOLONG;
 * never truncates. */
int fp_port_addr(const char *name, struct sockaddr_un *sa, socklen_t *salen);

/* flock(LOCK_EX) on fd, waiting at most `ms`: anyone who can open the
 * port directory can hold its lock, so no caller waits for it unbounded.
 * True if locked. */
#define FP_FLOCK_MS 2000
bool fp_flock_bounded(int fd, int ms);

/* True when $FLTPORT_DIR is set (not the default directory). */
bool fp_dir_is_custom(void);

#endif
