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

/* Is a server answering on this socket path?  1 yes, 0 no (a stale
 * socket file, or none), < 0 error.  Never blocks: a live server that does
 * not accept (stopped, backlog full) answers EAGAIN, and is live. */
int fp_socket_live(const struct sockaddr_un *sa, socklen_t len);

/* True when $FLTPORT_DIR is set (not the default directory). */
bool fp_dir_is_custom(void);

#endif
