/*
 * What fltport-scanner and fltport-scanuser share: output lines that never
 * block the thread that writes them, the system log (journald's native
 * protocol with structured fields, else syslog), readiness notification for
 * systemd, and small helpers.
 */
#ifndef SC_COMMON_H
#define SC_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- output lines -----------------------------------------------------
 * sc_out() formats a line and queues it (bounded: 4096 lines); a thread of
 * its own writes the queue to stdout.  A thread deciding a file never waits
 * on stdout: when the queue is full the line is dropped and counted.
 * sc_out_stop() writes what is queued (at most `ms` milliseconds) and stops
 * the thread; later lines are written directly. */
void sc_out_start(void);
void sc_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sc_out_stop(int ms);
uint64_t sc_out_dropped(void);

/* ---- system log ------------------------------------------------------- */
struct sc_field {
	const char *name;  /* journal field name: upper case, digits, '_' */
	const char *value; /* any bytes except NUL; NULL: field left out */
};

/* `ident` is SYSLOG_IDENTIFIER.  `journal_socket`: the journal's native
 * socket (NULL: /run/systemd/journal/socket); when it is missing, entries
 * go to /dev/log as syslog lines with the fields as key="value".  Sending
 * never blocks (a full socket drops the entry). */
void sc_log_init(const char *ident, const char *journal_socket);
void sc_log(int priority, const char *message, const struct sc_field *fields, size_t nfields);

/* Tell systemd (Type=notify) e.g. "READY=1"; nothing without $NOTIFY_SOCKET. */
void sc_notify(const char *state);

/* ---- helpers ---------------------------------------------------------- */
int64_t sc_now_ns(void);

/* Copy `in` for an output line: bytes outside printable ASCII, spaces and
 * backslashes become \xNN, so a line splits on spaces.  Always terminates. */
void sc_escape(const char *in, char *out, size_t cap);

/* Parse a positive decimal number (≤ max).  Returns false if not one. */
bool sc_parse_num(const char *s, unsigned long max, unsigned long *out);

#endif
