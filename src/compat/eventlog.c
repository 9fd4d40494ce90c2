/*
 * The event log's writing side (RegisterEventSource, ReportEvent,
 * DeregisterEventSource) on syslog(3): a service's reports reach the
 * journal under systemd, or whatever syslog daemon runs.  What is and is
 * not carried over: fltport_win32.h.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "compat/compat.h"
#include "compat/wfmt.h"

/* A registered source.  Handles are looked up in the list of live ones,
 * never read blind. */
struct evsource {
	struct evsource *next;
	char name[]; /* UTF-8 */
};

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct evsource *sources; /* under ev_lock */

static HANDLE add_source(char *name)
{
	size_t len = strlen(name);
	struct evsource *s = malloc(sizeof(*s) + len + 1);

	if (!s) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	memcpy(s->name, name, len + 1);
	pthread_mutex_lock(&ev_lock);
	s->next = sources;
	sources = s;
	pthread_mutex_unlock(&ev_lock);
	return s;
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
	return add_source((char *)lpSourceName);
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
	struct evsource **pp, *s = NULL;

	pthread_mutex_lock(&ev_lock);
	for (pp = &sources; *pp; pp = &(*pp)->next)
		if (*pp == hEventLog) {
			s = *pp;
			*pp = s->next;
			break;
		}
	pthread_mutex_unlock(&ev_lock);
	if (!s) {
		SetLastError(ERROR_INVALID_HANDLE);
		return FALSE;
	}
	free(s);
	return TRUE;
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

/* Send the record: the strings (UTF-8, n of them) joined by spaces. */
static BOOL report(HANDLE h, WORD type, DWORD id, WORD n, char *const *strs)
{
	size_t len = 0, at;
	char *text, *name = NULL;
	bool live = false;

	for (WORD i = 0; i < n; i++)
		len += strlen(strs[i]) + 1;
	text = malloc(len + 1);
	if (!text) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return FALSE;
	}
	at = 0;
	for (WORD i = 0; i < n; i++) {
		size_t l = strlen(strs[i]);

		if (i)
			text[at++] = ' ';
		memcpy(text + at, strs[i], l);
		at += l;
	}
	text[at] = '\0';
	/* The name is copied under the lock (a concurrent
	 * DeregisterEventSource frees it), logged after it. */
	pthread_mutex_lock(&ev_lock);
	for (struct evsource *s = sources; s; s = s->next)
		if (s == h) {
			name = strdup(s->name);
			live = true;
			break;
		}
	pthread_mutex_unlock(&ev_lock);
	if (!live || !name) {
		free(text);
		SetLastError(live ? ERROR_NOT_ENOUGH_MEMORY : ERROR_INVALID_HANDLE);
		return FALSE;
	}
	if (n)
		syslog(LOG_DAEMON | level_of(type), "%s: %s", name, text);
	else
		syslog(LOG_DAEMON | level_of(type), "%s: event %lu", name, (unsigned long)id);
	free(name);
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
		if (!lpStrings[i]) {
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
		if (!lpStrings[done]) {
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
