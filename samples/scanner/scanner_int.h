/*
 * fltport-scanner internals, shared by scanner.c (options, port, main) and
 * scan_filter.c (the filter's callbacks, rescans, verdict memory,
 * quarantine).
 */
#ifndef SCANNER_INT_H
#define SCANNER_INT_H

#include <fltport/filter.h>
#include <fltport/port.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define SC_MAX_EXTS 64
#define SC_EXT_MAX 16

struct sc_opts {
	const char *port;
	const char *name;                   /* the filter's registered name (fltportctl) */
	const char *altitude;               /* and its altitude */
	char exts[SC_MAX_EXTS][SC_EXT_MAX]; /* lower case, without the dot */
	unsigned nexts;
	bool all;
	int64_t deadline_ns;
	bool fail_closed;
	const char *quarantine;
	unsigned workers;
	unsigned attach_flags;
	bool verbose;
	const char *journal_socket;
};

/* One connected service.  Held by reference while a scan uses it; the last
 * reference (the disconnect callback's, or a scan finishing after it)
 * closes the client port. */
struct sc_service {
	fltport_client *client;
	bool want_fd; /* asked for fds at connect; else Microsoft's notification */
	pid_t pid;
	uid_t uid;
	int refs; /* under sc.lock */
};

struct sc_counters {
	atomic_uint_fast64_t scanned, clean, infected, remembered, no_service, failed, rescans,
		quarantined;
};

struct sc_state {
	struct sc_opts o;
	fltport_filter *filter;
	fltport_server *server;
	pthread_mutex_t lock;
	struct sc_service *svc; /* the connected service, or NULL; under lock */
	int qdir_fd;            /* quarantine directory, or -1 */
	dev_t qdir_dev;
	char qdir_path[4096];
	struct sc_counters c;
};

extern struct sc_state sc;

/* scanner.c */
struct sc_service *sc_service_get(void); /* a reference to the service, or NULL */
void sc_service_put(struct sc_service *s);

/* scan_filter.c */
int sc_pre_open(void *cookie, const struct fltport_filter_event *ev);
void sc_post_close_write(void *cookie, const struct fltport_filter_post_event *ev);
int sc_background_start(unsigned threads);
void sc_background_stop(void);
void sc_memo_clear(void);

#endif
