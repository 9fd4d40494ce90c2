/*
 * Internals of libfltport-win, the Windows API on top of libfltport's public
 * native API (never its internals).
 */
#ifndef FPW_COMPAT_H
#define FPW_COMPAT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <wchar.h>
#include <sys/types.h>

#include "fltport/port.h"
#include "fltkernel.h"
#include "fltuser.h"
#include "windows.h"

/* ---- handle table (handles.c) ---- */
enum fpw_kind {
	FPW_PORT = 1,
	FPW_EVENT,
	FPW_THREAD,
	FPW_IOCP,
	FPW_MGMT,
	FPW_SEMAPHORE,
	FPW_SECTION,
	FPW_FILE,
	FPW_PROCESS,
	FPW_EVENTSOURCE
};

struct fpw_obj {
	enum fpw_kind kind;
	atomic_int refs;
	void (*close)(struct fpw_obj *o);   /* CloseHandle of the last handle: wake, cancel */
	void (*destroy)(struct fpw_obj *o); /* last reference: free */
};

void fpw_obj_init(struct fpw_obj *o, enum fpw_kind kind, void (*close)(struct fpw_obj *),
		  void (*destroy)(struct fpw_obj *));
void fpw_obj_get(struct fpw_obj *o);
bool fpw_obj_tryget(struct fpw_obj *o); /* a reference unless it is already gone */
void fpw_obj_put(struct fpw_obj *o);
/* Enter the object in the table; the table takes the caller's reference.
 * NULL (ERROR_NOT_ENOUGH_MEMORY set) on failure, the reference then
 * dropped. */
HANDLE fpw_handle_new(struct fpw_obj *o);
/* The object behind a handle, with a reference; NULL and
 * ERROR_INVALID_HANDLE set if the handle is not a live handle of `kind`
 * (0: any kind). */
struct fpw_obj *fpw_handle_get(HANDLE h, enum fpw_kind kind);

/* ---- console signals (console.c) ---- */
/* While `route` is set (service.c's control dispatcher), SIGINT, SIGHUP and
 * SIGTERM are caught (unless ignored before the library touched them) and
 * each goes to route(sig), on the console's dispatcher thread, instead of
 * the console handlers; NULL gives them back.  False if that thread cannot
 * start. */
bool fpw_console_route(void (*route)(int sig));
/* The signal's default action, now: the process ends by it. */
void fpw_signal_default(int sig);

/* ---- processes (process.c) ---- */
/* A process object (FPW_PROCESS) is signalled once its process has ended. */
bool fpw_process_signalled(struct fpw_obj *o);
/* Wake waiters (fpw_wait_broadcast) when it ends; false if that cannot be
 * arranged (the wait then fails). */
bool fpw_process_watch(struct fpw_obj *o);

/* ---- files (file.c) ---- */
/* The Win32 error of an errno (file and memory calls). */
DWORD fpw_errno_to_win32(int e);
/* The fd of a file object (FPW_FILE) and the access it was opened with;
 * valid while the caller holds a reference. */
int fpw_file_fd(struct fpw_obj *o, bool *readable, bool *writable);
/* A Win32 path argument as a malloc'ed Linux path (UTF-8, '\\' taken for
 * '/'), or NULL with the last error set (NULL name:
 * ERROR_INVALID_PARAMETER; ERROR_INVALID_NAME, ERROR_NOT_ENOUGH_MEMORY). */
char *fpw_path_a(LPCSTR name);
char *fpw_path_w(LPCWSTR name);
/* The Win32 getters' way of returning text (UTF-8 s) into a buffer of cap
 * characters, narrow or wide: the length without the terminator when it
 * fits, else the size needed with it and nothing written. */
DWORD fpw_put_text(const char *s, void *buf, DWORD cap, bool wide);
/* prefix + text as one line on stderr, only if stderr has room now (a
 * pipe nobody reads drops it rather than block): system.c. */
void fpw_stderr_line(const char *prefix, const char *text);
/* Whether a view (MapViewOfFile) maps the file dev/ino (memory.c). */
bool fpw_file_mapped(dev_t dev, ino_t ino);

/* ---- status mapping (status.c) ---- */
HRESULT fpw_hresult_from_ntstatus(NTSTATUS s);
/* Row i of RtlNtStatusToDosError's table (false past the last), so that a
 * test can prove every row. */
bool fpw_dos_map_entry(size_t i, NTSTATUS *status, ULONG *win32);

/* ---- management (fltmgmt.c) ---- */
/* The FLT_FILESYSTEM_TYPE of a Linux file-system type (docs/PORTING.md). */
FLT_FILESYSTEM_TYPE fpw_fs_type(const char *fstype);
/* Two altitudes (decimal numbers: digits, at most one '.') compared as
 * numbers, whatever the locale: <0, 0, >0 as a is lower, equal, higher. */
int fpw_altitude_cmp(const char *a, const char *b);

/* ---- waiting (win32.c) ---- */
/* One lock and condition for everything waitable (events, threads,
 * overlapped results): simple, and waits on several objects need it. */
extern pthread_mutex_t fpw_wait_lock;
void fpw_wait_broadcast(void); /* caller holds fpw_wait_lock */
int64_t fpw_deadline_ms(DWORD ms);
/* Wait on fpw_wait_cond until deadline; false on timeout.  Lock held. */
bool fpw_wait_until(int64_t deadline);
void fpw_set_event_obj(struct fpw_obj *o);

/* ---- named objects, semaphores (named.c) ---- */
/* Create the named object `name` (a wide copy the registry keeps) of
 * `kind` with make(arg), or open the live one of that name: a new handle in
 * both cases (last error 0, or ERROR_ALREADY_EXISTS).  Another kind of
 * object has the name: NULL, ERROR_INVALID_HANDLE.  make == NULL: open only
 * (unknown name: ERROR_FILE_NOT_FOUND).  Takes ownership of `name`. */
HANDLE fpw_named_create(wchar_t *name, enum fpw_kind kind, struct fpw_obj *(*make)(void *arg),
			void *arg);
/* An object's last reference is going: drop its name.  Call from the
 * destroy of a named object. */
void fpw_named_forget(struct fpw_obj *o);
/* The name argument of a Create/Open call as a fresh wide string: *out NULL
 * for an unnamed object (NULL or ""); false with the last error set when it
 * is invalid or too long. */
bool fpw_name_from_a(const char *name, wchar_t **out);
bool fpw_name_from_w(const wchar_t *name, wchar_t **out);
/* Semaphore wait support: signalled?  Takes one when `consume`.
 * fpw_wait_lock held. */
bool fpw_semaphore_signalled(struct fpw_obj *o, bool consume);

/* ---- I/O completion ports (iocp.c) ---- */
struct fpw_iocp;
void fpw_iocp_post(struct fpw_iocp *q, DWORD bytes, ULONG_PTR key, LPOVERLAPPED ov,
		   NTSTATUS status);
/* A port associated with q, and one going away (before its connection is
 * closed): GetQueuedCompletionStatus reads a lone port's connection itself
 * (fltport_run_completions). */
struct fpw_port;
void fpw_iocp_port_add(struct fpw_iocp *q, struct fpw_port *p);
void fpw_iocp_port_remove(struct fpw_iocp *q, struct fpw_port *p);

/* ---- filter port handles (fltuser.c) ---- */
struct fpw_read;
struct fpw_port {
	struct fpw_obj obj;
	fltport_conn *conn;
	bool sync;
	pthread_mutex_t lock;
	struct fpw_iocp *iocp; /* association, with a reference on its object */
	ULONG_PTR key;
	struct fpw_read *reads; /* pending overlapped reads */
};
bool fpw_port_associate(struct fpw_port *p, struct fpw_iocp *q, ULONG_PTR key);
struct fpw_obj *fpw_iocp_obj(struct fpw_iocp *q);

/* Complete an OVERLAPPED: Internal/InternalHigh, then its event, then the
 * completion port (unless hEvent has its low bit set). */
void fpw_complete(LPOVERLAPPED ov, NTSTATUS status, DWORD bytes, struct fpw_iocp *q, ULONG_PTR key);

/* towlower by Unicode's case mapping whatever the program's locale (glibc's
 * "C" locale lowers ASCII only; Windows folds every letter). */
wint_t fpw_towlower(wint_t c);

#endif
