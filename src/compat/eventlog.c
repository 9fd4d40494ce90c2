/*
 * The event log's writing side (RegisterEventSource, ReportEvent,
 * DeregisterEventSource) on syslog(3): a service's reports reach the
 * journal under systemd, or whatever syslog daemon runs.  What is and is
 * not carried over: fltport_win32.h.  The strings often hold what a filter
 * saw (file names: anyone's choice), so control characters are escaped.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "compat/compat.h"
#include "compat/wfmt.h"

/* Windows' limit on each string of a report, in characters. */
#define STRING_MAX 31839u
/* A record longer than this is cut (at a character) and marked: a syslog
 * datagram over the socket's buffer would be dropped without a word. */
#define RECORD_MAX (60u * 1024u)

/* A registered source: an object of the handle table, so that a handle
 * deregistered is refused, not mistaken for a later source. */
struct evsource {
	struct fpw_obj obj;
	char name[]; /* UTF-8 */
};

static void source_destroy(struct fpw_obj *o)
{
	free(o);
}

static HANDLE add_source(const char *name)
{
	size_t len = strlen(name);
	struct evsource *s = malloc(sizeof(*s) + len + 1);

	if (!s) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	fpw_obj_init(&s->obj, FPW_EVENTSOURCE, NULL, source_destroy);
	memcpy(s->name, name, len + 1);
	return fpw_handle_new(&s->obj);
}

/* Another machine's log cannot be written; NULL or "" is this one's. */
static bool local_server(bool given_and_nonempty)
{
	if (given_and_nonempty) {
		SetLastError(ERROR_ACCESS_DENIED);
		return false;
	}
	return true;
}

FLTPORT_WINAPI HANDLE RegisterEventSourceA(LPCSTR lpUNCServerName, LPCSTR lpSourceName)
{
	if (!local_server(lpUNCServerName && *lpUNCServerName))
		return NULL;
	if (!lpSourceName) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	return add_source(lpSourceName);
}

/* A wide string as UTF-8 (invalid units as U+FFFD), malloc'ed; NULL with
 * ERROR_NOT_ENOUGH_MEMORY. */
static char *utf8_of(const wchar_t *w)
{
	size_t n = wcslen(w);
	ssize_t need = fpw_wide_to_utf8(w, n, NULL, 0, false);
	char *s = need >= 0 ? malloc((size_t)need + 1) : NULL;

	if (!s) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	fpw_wide_to_utf8(w, n, s, (size_t)need, false);
	s[need] = '\0';
	return s;
}

FLTPORT_WINAPI HANDLE RegisterEventSourceW(LPCWSTR lpUNCServerName, LPCWSTR lpSourceName)
{
	char *name;
	HANDLE h;

	if (!local_server(lpUNCServerName && *lpUNCServerName))
		return NULL;
	if (!lpSourceName) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	name = utf8_of(lpSourceName);
	h = name ? add_source(name) : NULL;
	free(name);
	return h;
}

FLTPORT_WINAPI BOOL DeregisterEventSource(HANDLE hEventLog)
{
	struct fpw_obj *o = fpw_handle_get(hEventLog, FPW_EVENTSOURCE);

	if (!o)
		return FALSE;
	fpw_obj_put(o);
	return CloseHandle(hEventLog);
}

static int level_of(WORD type)
{
	switch (type) {
	case EVENTLOG_ERROR_TYPE:
		return LOG_ERR;
	case EVENTLOG_WARNING_TYPE:
	case EVENTLOG_AUDIT_FAILURE:
		return LOG_WARNING;
	case EVENTLOG_AUDIT_SUCCESS:
		return LOG_NOTICE;
	default:
		return LOG_INFO;
	}
}

/* Append s to the record at *at (room for 4 bytes per byte of s):
 * control characters as "#ooo" (as rsyslog escapes them: a string cannot
 * forge a line of its own), invalid UTF-8 as U+FFFD. */
static void append_clean(char *out, size_t *at, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	while (n > 0) {
		uint32_t cp;
		size_t len;

		if (!fpw_utf8_next(p, n, &cp, &len)) {
			memcpy(out + *at, "\xef\xbf\xbd", 3);
			*at += 3;
		} else if (cp < 0x20 || cp == 0x7F) {
			*at += (size_t)sprintf(out + *at, "#%03o", (unsigned)cp);
		} else {
			memcpy(out + *at, p, len);
			*at += len;
		}
		p += len;
		n -= len;
	}
}

/* Send the record: the strings (UTF-8, n of them) joined by spaces. */
static BOOL report(HANDLE h, WORD type, DWORD id, WORD n, char *const *strs)
{
	static const char cut[] = " [truncated]";
	struct evsource *src;
	size_t len = 0, at = 0;
	char *text;

	for (WORD i = 0; i < n; i++)
		len += 4 * strlen(strs[i]) + 1;
	text = malloc(len + 1);
	if (!text) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return FALSE;
	}
	for (WORD i = 0; i < n; i++) {
		if (i)
			text[at++] = ' ';
		append_clean(text, &at, strs[i]);
	}
	if (at > RECORD_MAX) {
		at = RECORD_MAX - sizeof(cut);
		while (at > 0 && ((unsigned char)text[at] & 0xC0) == 0x80)
			at--; /* not inside a character */
		memcpy(text + at, cut, sizeof(cut) - 1);
		at += sizeof(cut) - 1;
	}
	text[at] = '\0';
	src = (struct evsource *)fpw_handle_get(h, FPW_EVENTSOURCE);
	if (!src) {
		free(text);
		return FALSE;
	}
	if (n)
		syslog(LOG_DAEMON | level_of(type), "%s: %s", src->name, text);
	else
		syslog(LOG_DAEMON | level_of(type), "%s: event %lu", src->name, (unsigned long)id);
	fpw_obj_put(&src->obj);
	free(text);
	return TRUE;
}

FLTPORT_WINAPI BOOL ReportEventA(HANDLE hEventLog, WORD wType, WORD wCategory, DWORD dwEventID,
				 PSID lpUserSid, WORD wNumStrings, DWORD dwDataSize,
				 LPCSTR *lpStrings, LPVOID lpRawData)
{
	if (wNumStrings && !lpStrings) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	for (WORD i = 0; i < wNumStrings; i++)
		if (!lpStrings[i] || strlen(lpStrings[i]) > STRING_MAX) {
			SetLastError(ERROR_INVALID_PARAMETER);
			return FALSE;
		}
	return report(hEventLog, wType, dwEventID, wNumStrings, (char *const *)lpStrings);
}

FLTPORT_WINAPI BOOL ReportEventW(HANDLE hEventLog, WORD wType, WORD wCategory, DWORD dwEventID,
				 PSID lpUserSid, WORD wNumStrings, DWORD dwDataSize,
				 LPCWSTR *lpStrings, LPVOID lpRawData)
{
	char **strs;
	WORD done = 0;
	BOOL ok = FALSE;

	if (wNumStrings && !lpStrings) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	strs = calloc(wNumStrings ? wNumStrings : 1, sizeof(*strs));
	if (!strs) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return FALSE;
	}
	for (; done < wNumStrings; done++) {
		if (!lpStrings[done] || wcslen(lpStrings[done]) > STRING_MAX) {
			SetLastError(ERROR_INVALID_PARAMETER);
			break;
		}
		if (!(strs[done] = utf8_of(lpStrings[done])))
			break;
	}
	if (done == wNumStrings)
		ok = report(hEventLog, wType, dwEventID, wNumStrings, strs);
	while (done > 0)
		free(strs[--done]);
	free(strs);
	return ok;
}
