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

/* True when $FLTPORT_DIR is set (not the default directory). */
bool fp_dir_is_custom(void);

#endif
