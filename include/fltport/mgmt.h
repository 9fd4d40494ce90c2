/*
 * fltport management plane: what runs on this machine, and attach/detach.
 *
 * What `fltmc` and fltlib's management API show on Windows — filters, their
 * instances, volumes — and what fltportctl adds — ports, connections,
 * counters — come from the running processes themselves.  Every filter
 * engine created with a name (fltport_filter_config.name) and every server
 * port answers on a control socket of its own, in the hidden subdirectory
 * ".ctl" of the port directory (fltport_dir()).  Listing asks each; a
 * socket nobody answers belongs to a dead process and is removed, so stale
 * registrations never show.  The protocol is in docs/PROTOCOL.md.
 *
 * Access: an object answers root and the user it runs as; others are
 * refused (-EACCES), and listings count them in `*denied` instead.
 *
 * Errors: 0 or a negative errno; out-params are written only on success.
 * Arrays returned through `**out` are one malloc'd block: free them with
 * fltport_mgmt_free().  Every call is bounded: an object that does not
 * answer within FLTPORT_MGMT_TIMEOUT_MS is skipped (listings) or reported
 * as -ETIMEDOUT (single-object calls).
 */
#ifndef FLTPORT_MGMT_H
#define FLTPORT_MGMT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <fltport/filter.h>
#include <fltport/port.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLTPORT_MGMT_TIMEOUT_MS 2000
#define FLTPORT_ALTITUDE_MAX 31u /* bytes of an altitude string ("385100") */
#define FLTPORT_MGMT_PATH_MAX 4096u

/* A running filter engine (one per fltport_filter_create with a name). */
struct fltport_filter_info {
	char name[FLTPORT_NAME_MAX + 1];
	char altitude[FLTPORT_ALTITUDE_MAX + 1];
	int32_t pid;        /* the filter process */
	uint32_t uid;       /* the user it runs as */
	uint32_t instances; /* attached instances now */
	uint32_t features;  /* FLTPORT_FILTER_HAVE_* */
	int64_t started_ns; /* CLOCK_REALTIME, when it was created */
	struct fltport_filter_stats stats;
};

/* An instance: a filter attached to one file system (or one mount). */
struct fltport_instance_info {
	char filter[FLTPORT_NAME_MAX + 1];
	char name[FLTPORT_NAME_MAX + 1]; /* instance name ("<filter> Instance" by default) */
	char altitude[FLTPORT_ALTITUDE_MAX + 1];
	char volume[FLTPORT_MGMT_PATH_MAX]; /* mount point of the attached path */
	char path[FLTPORT_MGMT_PATH_MAX];   /* the path attached */
	uint32_t flags;                     /* FLTPORT_ATTACH_*, FLTPORT_INSTANCE_* */
	int32_t pid;                        /* the filter process */
};
#define FLTPORT_INSTANCE_FOUND 0x100u /* attached by the submount watcher */

/* A volume: a mounted file system, from the caller's mount table. */
struct fltport_volume_info {
	char mount_point[FLTPORT_MGMT_PATH_MAX];
	char source[FLTPORT_MGMT_PATH_MAX];
	char fstype[64];
	uint64_t mount_id;
	uint32_t dev_major, dev_minor;
	uint32_t instances; /* instances of running filters on it */
};

/* Counters of a port or of one connection.  "sent": filter → user
 * messages (fltport_send); "received": user → filter requests. */
struct fltport_port_stats {
	uint64_t connects;    /* connections accepted (port) */
	uint64_t refused;     /* connections refused: access, limit, callback (port) */
	uint64_t disconnects; /* connections ended (port) */
	uint64_t sent;        /* messages delivered to the user side */
	uint64_t sent_bytes;
	uint64_t replies;   /* replies received for them */
	uint64_t timed_out; /* sends that ended with -ETIMEDOUT */
	uint64_t cancelled; /* sends ended by a disconnect (-ENOTCONN) */
	uint64_t received;  /* requests received from the user side */
	uint64_t received_bytes;
	uint32_t connections; /* connected now (port); 1 (connection) */
	uint32_t pending;     /* sends waiting now */
};

/* A server port. */
struct fltport_port_info {
	char name[FLTPORT_NAME_MAX + 1];
	int32_t pid;
	uint32_t uid;
	uint32_t max_connections;
	uint32_t reserved;
	int64_t started_ns; /* CLOCK_REALTIME */
	struct fltport_port_stats stats;
};

/* One connection of a port. */
struct fltport_conn_info {
	uint64_t id; /* unique within the port, in connect order */
	int32_t pid; /* the connected process */
	uint32_t uid;
	uint32_t gid;
	uint32_t reserved;
	int64_t since_ns;                /* CLOCK_REALTIME, when it connected */
	char exe[FLTPORT_MGMT_PATH_MAX]; /* its executable at connect time, "" if unknown */
	struct fltport_port_stats stats;
};

/* Listings.  `denied` (may be NULL) receives how many objects refused the
 * caller (neither root nor their owner). */
FLTPORT_API int fltport_mgmt_filters(struct fltport_filter_info **out, size_t *count,
				     size_t *denied);
/* Instances of one filter (by name: -ENOENT if it does not run, -EACCES if
 * it refuses the caller), or of every filter (NULL). */
FLTPORT_API int fltport_mgmt_instances(const char *filter, struct fltport_instance_info **out,
				       size_t *count, size_t *denied);
FLTPORT_API int fltport_mgmt_volumes(struct fltport_volume_info **out, size_t *count);
FLTPORT_API int fltport_mgmt_ports(struct fltport_port_info **out, size_t *count, size_t *denied);
FLTPORT_API int fltport_mgmt_connections(const char *port, struct fltport_conn_info **out,
					 size_t *count);

/* One object by name: -ENOENT if none runs. */
FLTPORT_API int fltport_mgmt_filter(const char *name, struct fltport_filter_info *out);
FLTPORT_API int fltport_mgmt_port(const char *name, struct fltport_port_info *out);

/* Ask a running filter to attach an instance to `volume` (a mount point or
 * any path on the file system), or to detach it.  `instance` NULL: the
 * default name; `altitude` NULL: the filter's.  The filter may refuse
 * (its instance_setup callback's errno).  -ENOENT: no such filter;
 * -EEXIST: already attached there; -ENXIO (detach): no such instance. */
FLTPORT_API int fltport_mgmt_attach(const char *filter, const char *volume, const char *instance,
				    const char *altitude, unsigned flags);
FLTPORT_API int fltport_mgmt_detach(const char *filter, const char *volume, const char *instance);

FLTPORT_API void fltport_mgmt_free(void *array);

/* The filter side of detach: remove the instance on `path` (as attached,
 * or its mount point).  0, or -ENXIO when nothing is attached there. */
FLTPORT_API int fltport_filter_detach(fltport_filter *f, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* FLTPORT_MGMT_H */
