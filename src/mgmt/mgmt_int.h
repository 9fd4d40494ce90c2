/*
 * Management plane internals (docs/PROTOCOL.md, "Management protocol").
 *
 * Objects — named filter engines and server ports — register here.  Each
 * gets a listening SOCK_SEQPACKET socket "<dir>/.ctl/<kind>.<name>"; one
 * thread per process (started with the first registration, joined after
 * the last) accepts on all of them, checks the peer (root or our uid),
 * reads one request and calls the object's handler, which answers with
 * records; the thread then sends the END packet with the status.
 *
 * A handler runs without the registry lock, its registration counted busy:
 * unregistering waits for a running handler, so an object is never queried
 * after it unregistered.  A handler must not unregister its own object.
 */
#ifndef FP_MGMT_INT_H
#define FP_MGMT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "core/fork.h"
#include "fltport/mgmt.h"

#define FP_MGMT_MAGIC 0x474d5046u /* "FPMG", little-endian */
#define FP_MGMT_VERSION 1u
#define FP_MGMT_SUBDIR ".ctl"

enum fp_mgmt_kind { FP_MGMT_FILTER = 'f', FP_MGMT_PORT = 'p' };

enum fp_mgmt_type { FP_MGMT_T_REQ = 1, FP_MGMT_T_REC = 2, FP_MGMT_T_END = 3 };

enum fp_mgmt_op {
	FP_MGMT_INFO = 1,        /* → one fltport_filter_info / fltport_port_info */
	FP_MGMT_INSTANCES = 2,   /* filter → fltport_instance_info each */
	FP_MGMT_CONNECTIONS = 3, /* port → fltport_conn_info each */
	FP_MGMT_ATTACH = 4,      /* filter, struct fp_mgmt_attach → status */
	FP_MGMT_DETACH = 5,      /* filter, struct fp_mgmt_attach → status */
};

/* Every packet starts with this header (native byte order: the protocol
 * is host-local). */
struct fp_mgmt_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;  /* enum fp_mgmt_type */
	uint16_t op;    /* enum fp_mgmt_op */
	uint16_t kind;  /* enum fp_mgmt_kind of the object */
	int32_t status; /* END: 0 or a negative errno */
	uint32_t len;   /* payload bytes after the header */
	uint32_t count; /* END: records sent */
};

struct fp_mgmt_attach {
	uint32_t flags;
	char volume[FLTPORT_MGMT_PATH_MAX];
	char instance[FLTPORT_NAME_MAX + 1];
	char altitude[FLTPORT_ALTITUDE_MAX + 1];
};

/* The largest packet: a header and the largest record. */
#define FP_MGMT_PACKET_MAX (sizeof(struct fp_mgmt_hdr) + sizeof(struct fltport_instance_info))

struct fp_mgmt_out; /* where a handler's records go */

/* Send one record.  0 or a negative errno (the requester went away). */
int fp_mgmt_emit(struct fp_mgmt_out *out, const void *rec, size_t len);

typedef int (*fp_mgmt_fn)(void *obj, enum fp_mgmt_op op, const void *in, size_t in_len,
			  struct fp_mgmt_out *out);

struct fp_mgmt_reg {
	struct fp_mgmt_reg *next; /* under the registry lock */
	struct fp_forkreg fork;
	enum fp_mgmt_kind kind;
	fp_mgmt_fn fn;
	void *obj;
	uint64_t id; /* epoll tag */
	int lfd;
	dev_t dev;
	ino_t ino;
	struct sockaddr_un addr;
	socklen_t addrlen;
	int64_t started_ns; /* CLOCK_REALTIME */
	unsigned busy;      /* under the registry lock: handlers running */
	bool leaving;       /* under the registry lock: being unregistered */
	char name[FLTPORT_NAME_MAX + 1];
};

/* Register an object under `name` (port-name rules; a leading '\' is
 * dropped).  -EADDRINUSE: a live object of that kind has the name. */
int fp_mgmt_register(struct fp_mgmt_reg *reg, enum fp_mgmt_kind kind, const char *name,
		     fp_mgmt_fn fn, void *obj);
/* Unregister (no-op if not registered; in a forked child, local cleanup). */
void fp_mgmt_unregister(struct fp_mgmt_reg *reg);

/* The control socket address of an object. */
int fp_mgmt_addr(enum fp_mgmt_kind kind, const char *name, struct sockaddr_un *sa,
		 socklen_t *salen);

/* Wall clock now, ns. */
int64_t fp_mgmt_realtime(void);

/* The mount point (from /proc/self/mountinfo) of the mount holding `path`;
 * 0 or a negative errno. */
int fp_mgmt_mount_point(const char *path, char *out, size_t len);

#endif
