/*
 * FormatMessage, its message tables, LocalAlloc/LocalFree, and the one
 * "module" LoadLibrary knows (fltlib.dll).
 *
 * The tables hold Windows' English texts (as learn.microsoft.com lists
 * them) without the "\r\n" every system message ends with; render() adds
 * it, so that FORMAT_MESSAGE_MAX_WIDTH_MASK and %0 treat it as Windows
 * does.  Rendering runs twice, counting then writing, so that the output
 * is measured before anything is allocated.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "compat/compat.h"
#include "compat/wfmt.h"

struct message {
	DWORD id;
	const char *text;
};

/* Win32 errors: every ERROR_* the layer's headers define, and WAIT_TIMEOUT
 * (test_compat_win32 checks that each header name has its row). */
static const struct message win32_messages[] = {
	{ 0, "The operation completed successfully." },
	{ 1, "Incorrect function." },
	{ 2, "The system cannot find the file specified." },
	{ 3, "The system cannot find the path specified." },
	{ 4, "The system cannot open the file." },
	{ 5, "Access is denied." },
	{ 6, "The handle is invalid." },
	{ 8, "Not enough memory resources are available to process this command." },
	{ 13, "The data is invalid." },
	{ 14, "Not enough storage is available to complete this operation." },
	{ 17, "The system cannot move the file to a different disk drive." },
	{ 18, "There are no more files." },
	{ 19, "The media is write protected." },
	{ 21, "The device is not ready." },
	{ 22, "The device does not recognize the command." },
	{ 24, "The program issued a command but the command length is incorrect." },
	{ 31, "A device attached to the system is not functioning." },
	{ 32, "The process cannot access the file because it is being used by another process." },
	{ 33, "The process cannot access the file because another process has locked a portion of "
	      "the file." },
	{ 38, "Reached the end of the file." },
	{ 50, "The request is not supported." },
	{ 80, "The file exists." },
	{ 87, "The parameter is incorrect." },
	{ 109, "The pipe has been ended." },
	{ 111, "The file name is too long." },
	{ 112, "There is not enough space on the disk." },
	{ 120, "This function is not supported on this system." },
	{ 121, "The semaphore timeout period has expired." },
	{ 122, "The data area passed to a system call is too small." },
	{ 123, "The filename, directory name, or volume label syntax is incorrect." },
	{ 126, "The specified module could not be found." },
	{ 127, "The specified procedure could not be found." },
	{ 131, "An attempt was made to move the file pointer before the beginning of the file." },
	{ 145, "The directory is not empty." },
	{ 161, "The specified path is invalid." },
	{ 170, "The requested resource is in use." },
	{ 183, "Cannot create a file when that file already exists." },
	{ 203, "The system could not find the environment option that was entered." },
	{ 206, "The filename or extension is too long." },
	{ 223, "The file size exceeds the limit allowed and cannot be saved." },
	{ 225, "Operation did not complete successfully because the file contains a virus or "
	       "potentially unwanted software." },
	{ 226,
	  "This file contains a virus or potentially unwanted software and cannot be opened. "
	  "Due to the nature of this virus or potentially unwanted software, the file has been "
	  "removed from this location." },
	{ 234, "More data is available." },
	{ 258, "The wait operation timed out." },
	{ 259, "No more data is available." },
	{ 267, "The directory name is invalid." },
	{ 298, "Too many posts were made to a semaphore." },
	{ 317, "The system cannot find message text for message number 0x%1 in the message file "
	       "for %2." },
	{ 487, "Attempt to access invalid address." },
	{ 534, "Arithmetic result exceeded 32 bits." },
	{ 735, "ERROR_ABANDONED_WAIT_0" },
	{ 741, "A reparse should be performed by the Object Manager since the name of the file "
	       "resulted in a symbolic link." },
	{ 995, "The I/O operation has been aborted because of either a thread exit or an "
	       "application request." },
	{ 996, "Overlapped I/O event is not in a signaled state." },
	{ 997, "Overlapped I/O operation is in progress." },
	{ 998, "Invalid access to memory location." },
	{ 1003, "Cannot complete this function." },
	{ 1004, "Invalid flags." },
	{ 1006, "The volume for a file has been externally altered so that the opened file is no "
		"longer valid." },
	{ 1052, "The requested control is not valid for this service." },
	{ 1056, "An instance of the service is already running." },
	{ 1060, "The specified service does not exist as an installed service." },
	{ 1061, "The service cannot accept control messages at this time." },
	{ 1062, "The service has not been started." },
	{ 1063, "The service process could not connect to the service controller." },
	{ 1066, "The service has returned a service-specific error code." },
	{ 1083, "The executable program that this service is configured to run in does not "
		"implement the service." },
	{ 1113, "No mapping for the Unicode character exists in the target multi-byte code page." },
	{ 1117, "The request could not be performed because of an I/O device error." },
	{ 1132, "The base address or the file offset specified does not have the proper "
		"alignment." },
	{ 1167, "The device is not connected." },
	{ 1168, "Element not found." },
	{ 1224, "The requested operation cannot be performed on a file with a user-mapped "
		"section open." },
	{ 1235, "The request was aborted." },
	{ 1237, "The operation could not be completed. A retry should be performed." },
	{ 1238, "A connection to the server could not be made because the limit on the number of "
		"concurrent connections for this account has been reached." },
	{ 1296, "The requested file operation failed because the storage policy blocks that type "
		"of file. For more information, contact your system administrator." },
	{ 1306, "Indicates two revision levels are incompatible." },
	{ 1314, "A required privilege is not held by the client." },
	{ 1359, "An internal error occurred." },
	{ 1392, "The file or directory is corrupted and unreadable." },
	{ 1393, "The disk structure is corrupted and unreadable." },
	{ 1450, "Insufficient system resources exist to complete the requested service." },
	{ 1460, "This operation returned because the timeout period expired." },
	{ 1784, "The supplied user buffer is not valid for the requested operation." },
	{ 1813, "The specified resource type cannot be found in the image file." },
	{ 1815, "The specified resource language ID cannot be found in the image file." },
	{ 1816, "Not enough quota is available to process this command." },
};

/* HRESULTs of other facilities that the system table has. */
static const struct message hresult_messages[] = {
	{ 0x80004001u, "Not implemented" },
	{ 0x80004002u, "No such interface supported" },
	{ 0x80004003u, "Invalid pointer" },
	{ 0x80004004u, "Operation aborted" },
	{ 0x80004005u, "Unspecified error" },
	{ 0x8000000Bu, "The operation attempted to access data outside the valid range" },
	{ 0x8000FFFFu, "Catastrophic failure" },
};

/* fltlib.dll's table: the FltMgr HRESULTs (facility 0x1F) that fltlib
 * derives from STATUS_FLT_* (fpw_hresult_from_ntstatus); every ERROR_FLT_*
 * and STATUS_FLT_* of the headers has its row (test_compat_win32). */
static const struct message fltlib_messages[] = {
	{ 0x801F0001u, "A handler was not defined by the filter for this operation." },
	{ 0x801F0002u, "A context is already defined for this object." },
	{ 0x801F000Bu, "The object specified for this action is in the process of being deleted, "
		       "therefore the action requested cannot be completed at this time." },
	{ 0x801F000Fu, "Do not attach the filter to the volume at this time." },
	{ 0x801F0010u, "Do not detach the filter from the volume at this time." },
	{ 0x801F0011u, "An instance already exists at this altitude on the volume specified." },
	{ 0x801F0012u, "An instance already exists with this name on the volume specified." },
	{ 0x801F0013u, "The requested filter could not be found." },
	{ 0x801F0014u, "The requested volume could not be found." },
	{ 0x801F0015u, "The requested instance could not be found." },
	{ 0x801F0020u, "No waiter is present for the filter's reply to this message." },
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Longest output, in characters (Windows' limit is 64 KB). */
#define FPW_MESSAGE_MAX 32767u
#define FPW_INSERTS_MAX 99u

static const char *find(const struct message *t, size_t n, DWORD id)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].id == id)
			return t[i].text;
	return NULL;
}

static const char *system_text(DWORD id)
{
	if (id <= 0xFFFFu)
		return find(win32_messages, N_OF(win32_messages), id);
	if ((id & 0xFFFF0000u) == 0x80070000u) /* HRESULT_FROM_WIN32 */
		return find(win32_messages, N_OF(win32_messages), id & 0xFFFFu);
	return find(hresult_messages, N_OF(hresult_messages), id);
}

/* ---- modules ---- */

static const char fltlib_tag; /* its address is fltlib's HMODULE */
#define FLTLIB_MODULE ((HMODULE)(uintptr_t)&fltlib_tag)

static bool is_fltlib(const char *path)
{
	const char *base = path;

	for (const char *p = path; *p; p++)
		if (*p == '\\' || *p == '/')
			base = p + 1;
	return strcasecmp(base, "fltlib.dll") == 0 || strcasecmp(base, "fltlib") == 0;
}

static HMODULE load(const char *path, HANDLE file)
{
	if (!path || file) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	if (!is_fltlib(path)) {
		SetLastError(ERROR_MOD_NOT_FOUND);
		return NULL;
	}
	return FLTLIB_MODULE;
}

FLTPORT_WINAPI HMODULE LoadLibraryExA(LPCSTR name, HANDLE file, DWORD flags)
{
	(void)flags;
	return load(name, file);
}

FLTPORT_WINAPI HMODULE LoadLibraryA(LPCSTR name)
{
	return load(name, NULL);
}

FLTPORT_WINAPI HMODULE LoadLibraryExW(LPCWSTR name, HANDLE file, DWORD flags)
{
	char path[4 * MAX_PATH + 1];
	size_t len, from;
	ssize_t n;

	(void)flags;
	if (!name) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	/* Only the base name matters, so the last MAX_PATH characters do. */
	len = wcslen(name);
	from = len > MAX_PATH ? len - MAX_PATH : 0;
	n = fpw_wide_to_utf8(name + from, len - from, path, sizeof(path) - 1, false);
	path[n < 0 ? 0 : (size_t)n] = '\0';
	return load(path, file);
}

FLTPORT_WINAPI HMODULE LoadLibraryW(LPCWSTR name)
{
	return LoadLibraryExW(name, NULL, 0);
}

/* The program's own module: GetModuleHandle(NULL). */
static const char exe_tag;
#define EXE_MODULE ((HMODULE)(uintptr_t)&exe_tag)

static HMODULE module_handle(const char *name)
{
	if (!name)
		return EXE_MODULE;
	if (is_fltlib(name))
		return FLTLIB_MODULE; /* linked in: always loaded */
	SetLastError(ERROR_MOD_NOT_FOUND);
	return NULL;
}

FLTPORT_WINAPI HMODULE GetModuleHandleA(LPCSTR name)
{
	return module_handle(name);
}

FLTPORT_WINAPI HMODULE GetModuleHandleW(LPCWSTR name)
{
	char path[4 * MAX_PATH + 1];
	size_t len, from;
	ssize_t n;

	if (!name)
		return module_handle(NULL);
	len = wcslen(name);
	from = len > MAX_PATH ? len - MAX_PATH : 0;
	n = fpw_wide_to_utf8(name + from, len - from, path, sizeof(path) - 1, false);
	path[n < 0 ? 0 : (size_t)n] = '\0';
	return module_handle(path);
}

/* The module's file: the program's (NULL or GetModuleHandle(NULL)), or
 * fltlib.dll in the system directory.  As on Windows: the length without
 * the terminator; a buffer too small gets the name cut to size - 1
 * characters and terminated, returns size and ERROR_INSUFFICIENT_BUFFER. */
static DWORD module_file_name(HMODULE m, void *buf, DWORD size, bool wide)
{
	char exe[4096];
	const char *name;
	DWORD n;

	if (!m || m == EXE_MODULE) {
		static const char deleted[] = " (deleted)";
		const size_t dl = sizeof(deleted) - 1;
		ssize_t r = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

		if (r < 0 || (size_t)r >= sizeof(exe) - 1) {
			SetLastError(ERROR_GEN_FAILURE);
			return 0;
		}
		exe[r] = '\0';
		/* Replaced or removed since the program started: its name. */
		if ((size_t)r > dl && strcmp(exe + r - dl, deleted) == 0)
			exe[r - dl] = '\0';
		name = exe;
	} else if (m == FLTLIB_MODULE) {
		name = "/usr/lib/fltlib.dll";
	} else {
		SetLastError(ERROR_MOD_NOT_FOUND);
		return 0;
	}
	if (size == 0 || !buf) {
		SetLastError(ERROR_INSUFFICIENT_BUFFER);
		return 0;
	}
	n = fpw_put_text(name, buf, size, wide);
	if (n < size)
		return n;
	/* Cut to fit. */
	if (wide) {
		wchar_t *w = malloc((size_t)n * sizeof(wchar_t));

		if (!w) {
			SetLastError(ERROR_NOT_ENOUGH_MEMORY);
			return 0;
		}
		fpw_put_text(name, w, n, true);
		memcpy(buf, w, (size_t)(size - 1) * sizeof(wchar_t));
		((wchar_t *)buf)[size - 1] = 0;
		free(w);
	} else {
		size_t cut = size - 1;

		/* Not inside a UTF-8 sequence. */
		while (cut > 0 && ((unsigned char)name[cut] & 0xC0) == 0x80)
			cut--;
		memcpy(buf, name, cut);
		memset((char *)buf + cut, 0, size - cut);
	}
	SetLastError(ERROR_INSUFFICIENT_BUFFER);
	return size;
}

FLTPORT_WINAPI DWORD GetModuleFileNameA(HMODULE m, LPSTR buf, DWORD size)
{
	return module_file_name(m, buf, size, false);
}

FLTPORT_WINAPI DWORD GetModuleFileNameW(HMODULE m, LPWSTR buf, DWORD size)
{
	return module_file_name(m, buf, size, true);
}

FLTPORT_WINAPI BOOL FreeLibrary(HMODULE m)
{
	if (m != FLTLIB_MODULE) {
		SetLastError(ERROR_INVALID_HANDLE);
		return FALSE;
	}
	return TRUE;
}

/* void (*)(void) in between: the one function type GCC lets any other
 * convert to without -Wcast-function-type. */
#define PROC(f)                                \
	{                                      \
#f, (FARPROC)(void (*)(void))f \
	}

FLTPORT_WINAPI FARPROC GetProcAddress(HMODULE m, LPCSTR name)
{
	static const struct {
		const char *name;
		FARPROC fn;
	} exports[] = {
		PROC(FilterConnectCommunicationPort),
		PROC(FilterSendMessage),
		PROC(FilterGetMessage),
		PROC(FilterReplyMessage),
	};

	if (m != FLTLIB_MODULE) {
		SetLastError(ERROR_INVALID_HANDLE);
		return NULL;
	}
	/* Names only: an ordinal (a "pointer" below 0x10000) is not found. */
	if ((uintptr_t)name > 0xFFFFu) {
		for (size_t i = 0; i < N_OF(exports); i++)
			if (strcmp(exports[i].name, name) == 0)
				return exports[i].fn;
	}
	SetLastError(ERROR_PROC_NOT_FOUND);
	return NULL;
}

/* ---- local memory ---- */

FLTPORT_WINAPI HLOCAL LocalAlloc(UINT flags, SIZE_T n)
{
	void *p;

	if (flags & ~(UINT)LMEM_ZEROINIT) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	if (n == 0)
		n = 1; /* a valid block, as Windows gives */
	p = (flags & LMEM_ZEROINIT) ? calloc(1, n) : malloc(n);
	if (!p)
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
	return p;
}

FLTPORT_WINAPI HLOCAL LocalFree(HLOCAL m)
{
	free(m);
	return NULL;
}

/* ---- rendering ---- */

struct render {
	bool wide;     /* the function's width: the template's and the output's */
	bool ignore;   /* FORMAT_MESSAGE_IGNORE_INSERTS */
	bool one_line; /* a width in the low byte: line breaks become spaces */
	const uintptr_t *args;
	size_t nargs;
};

static uint32_t at(const struct render *r, const void *t, size_t i)
{
	return r->wide ? (uint32_t)((const wchar_t *)t)[i] : ((const unsigned char *)t)[i];
}

static void text(struct fpw_sink *s, const char *ascii)
{
	fpw_sink_text(s, ascii, false, strlen(ascii));
}

/* %N[!spec!] at t[*i] (the first digit).  false: ERROR_INVALID_PARAMETER. */
static bool insert(const struct render *r, struct fpw_sink *s, const void *t, size_t *i)
{
	static const char dflt_a[] = "s";
	static const wchar_t dflt_w[] = L"s";
	struct fpw_args a;
	size_t n = at(r, t, (*i)++) - '0', k;

	if (at(r, t, *i) >= '0' && at(r, t, *i) <= '9')
		n = n * 10 + (at(r, t, (*i)++) - '0');
	if (n == 0 || n > r->nargs)
		return false;
	a = (struct fpw_args){ .arr = &r->args[n - 1], .narr = 1 };
	if (at(r, t, *i) != '!') {
		k = 0;
		return fpw_format_conv(s, r->wide ? (const void *)dflt_w : (const void *)dflt_a,
				       r->wide, &k, &a);
	}
	(*i)++;
	if (!fpw_format_conv(s, t, r->wide, i, &a) || at(r, t, *i) != '!')
		return false;
	(*i)++;
	return true;
}

/* Render template t (NUL-terminated, of the function's width). */
static bool render(const struct render *r, struct fpw_sink *s, const void *t)
{
	size_t i = 0;
	uint32_t c;

	while ((c = at(r, t, i)) != 0 && !s->full) {
		i++;
		if (c == '\r' || c == '\n') {
			bool crlf = c == '\r' && at(r, t, i) == '\n';

			if (crlf)
				i++;
			if (r->one_line)
				fpw_sink_unit(s, ' ');
			else if (crlf)
				text(s, "\r\n");
			else
				fpw_sink_unit(s, c);
			continue;
		}
		if (c != '%') {
			fpw_sink_unit(s, c);
			continue;
		}
		c = at(r, t, i);
		if (c >= '1' && c <= '9' && !r->ignore) {
			if (!insert(r, s, t, &i))
				return false;
			continue;
		}
		if (c >= '1' && c <= '9') {
			fpw_sink_unit(s, '%'); /* passed through unchanged */
			continue;
		}
		if (c == 0)
			break;
		i++;
		switch (c) {
		case '0':
			return true; /* end of output, no line break */
		case 'n':
			text(s, "\r\n");
			break;
		case 'r':
			fpw_sink_unit(s, '\r');
			break;
		case 't':
			fpw_sink_unit(s, '\t');
			break;
		case 'b':
			fpw_sink_unit(s, ' ');
			break;
		default: /* %% %. %! "% " and anything else: the character */
			fpw_sink_unit(s, c);
			break;
		}
	}
	return true;
}

/* The highest %N in t (for fetching va_list arguments). */
static size_t max_insert(const struct render *r, const void *t)
{
	size_t max = 0, n;

	for (size_t i = 0; at(r, t, i); i++) {
		if (at(r, t, i) != '%')
			continue;
		if (at(r, t, i + 1) == '%') {
			i++;
			continue;
		}
		if (at(r, t, i + 1) < '1' || at(r, t, i + 1) > '9')
			continue;
		n = at(r, t, i + 1) - '0';
		if (at(r, t, i + 2) >= '0' && at(r, t, i + 2) <= '9')
			n = n * 10 + (at(r, t, i + 2) - '0');
		if (n > max)
			max = n;
	}
	return max;
}

/* A table text plus its "\r\n", in the function's width (malloc'ed). */
static void *table_template(const char *msg, bool wide)
{
	size_t n = strlen(msg);
	void *t = malloc((n + 3) * (wide ? sizeof(wchar_t) : 1));

	if (!t)
		return NULL;
	for (size_t i = 0; i <= n + 2; i++) {
		char c = i < n ? msg[i] : i == n ? '\r' : i == n + 1 ? '\n' : '\0';

		if (wide)
			((wchar_t *)t)[i] = (wchar_t)c;
		else
			((char *)t)[i] = c;
	}
	return t;
}

static bool language_ok(DWORD lang)
{
	WORD primary = PRIMARYLANGID(lang);

	return lang == 0 || primary == LANG_NEUTRAL || primary == LANG_ENGLISH;
}

/* The template for the flags (fills *owned when it had to be made). */
static const void *find_template(DWORD flags, LPCVOID src, DWORD id, DWORD lang, bool wide,
				 void **owned)
{
	const char *msg = NULL;
	DWORD err = ERROR_MR_MID_NOT_FOUND;

	*owned = NULL;
	if (flags & FORMAT_MESSAGE_FROM_STRING) {
		if (!src || (flags & (FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_FROM_SYSTEM))) {
			SetLastError(ERROR_INVALID_PARAMETER);
			return NULL;
		}
		return src;
	}
	if (!(flags & (FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_FROM_SYSTEM))) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	if (!language_ok(lang)) {
		SetLastError(ERROR_RESOURCE_LANG_NOT_FOUND);
		return NULL;
	}
	if (flags & FORMAT_MESSAGE_FROM_HMODULE) {
		if (src == FLTLIB_MODULE)
			msg = find(fltlib_messages, N_OF(fltlib_messages), id);
		else
			err = ERROR_RESOURCE_TYPE_NOT_FOUND; /* no other module has a table */
	}
	if (!msg && (flags & FORMAT_MESSAGE_FROM_SYSTEM)) {
		msg = system_text(id);
		err = ERROR_MR_MID_NOT_FOUND;
	}
	if (!msg) {
		SetLastError(err);
		return NULL;
	}
	*owned = table_template(msg, wide);
	if (!*owned)
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
	return *owned;
}

static DWORD format_message(bool wide, DWORD flags, LPCVOID src, DWORD id, DWORD lang, void *buffer,
			    DWORD size, va_list *va)
{
	uintptr_t collected[FPW_INSERTS_MAX];
	struct render r = { .wide = wide };
	struct fpw_sink sink;
	size_t unit = wide ? sizeof(wchar_t) : 1, out_len;
	const void *t;
	void *owned, *out;
	DWORD result = 0;

	if (!buffer) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return 0;
	}
	t = find_template(flags, src, id, lang, wide, &owned);
	if (!t)
		return 0;
	r.ignore = (flags & FORMAT_MESSAGE_IGNORE_INSERTS) != 0;
	r.one_line = (flags & FORMAT_MESSAGE_MAX_WIDTH_MASK) != 0;
	if (!r.ignore && va && (flags & FORMAT_MESSAGE_ARGUMENT_ARRAY)) {
		r.args = (const uintptr_t *)(const void *)va;
		r.nargs = FPW_INSERTS_MAX; /* the caller's array is as long as its inserts */
	} else if (!r.ignore && va) {
		r.nargs = max_insert(&r, t);
		for (size_t k = 0; k < r.nargs; k++)
			collected[k] = va_arg(*va, uintptr_t);
		r.args = collected;
	}

	fpw_sink_init(&sink, wide, NULL, 0);
	if (!render(&r, &sink, t)) {
		SetLastError(ERROR_INVALID_PARAMETER);
		goto out;
	}
	out_len = sink.len;
	if (out_len > FPW_MESSAGE_MAX) {
		SetLastError(ERROR_MORE_DATA);
		goto out;
	}
	if (flags & FORMAT_MESSAGE_ALLOCATE_BUFFER) {
		size_t cap = out_len + 1 > size ? out_len + 1 : size;

		out = LocalAlloc(LMEM_FIXED, cap * unit);
		if (!out)
			goto out;
		fpw_sink_init(&sink, wide, out, cap);
		render(&r, &sink, t);
		fpw_sink_end(&sink);
		*(void **)buffer = out;
	} else {
		if (out_len + 1 > size) {
			SetLastError(ERROR_INSUFFICIENT_BUFFER);
			goto out;
		}
		fpw_sink_init(&sink, wide, buffer, size);
		render(&r, &sink, t);
		fpw_sink_end(&sink);
	}
	result = (DWORD)out_len;
out:
	free(owned);
	return result;
}

FLTPORT_WINAPI DWORD FormatMessageA(DWORD flags, LPCVOID src, DWORD id, DWORD lang, LPSTR buffer,
				    DWORD size, va_list *args)
{
	return format_message(false, flags, src, id, lang, buffer, size, args);
}

FLTPORT_WINAPI DWORD FormatMessageW(DWORD flags, LPCVOID src, DWORD id, DWORD lang, LPWSTR buffer,
				    DWORD size, va_list *args)
{
	return format_message(true, flags, src, id, lang, buffer, size, args);
}
