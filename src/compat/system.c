/*
 * The process and system calls of port services: GetSystemInfo, the
 * environment, the computer name, debug output, the current directory,
 * directories, attributes, moves (fltport_win32.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compat/compat.h"
#include "compat/wfmt.h"

/* ---- system information ---- */

FLTPORT_WINAPI void GetSystemInfo(LPSYSTEM_INFO si)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	memset(si, 0, sizeof(*si));
#if defined(__x86_64__)
	si->wProcessorArchitecture = PROCESSOR_ARCHITECTURE_AMD64;
	si->dwProcessorType = PROCESSOR_AMD_X8664;
#elif defined(__aarch64__)
	si->wProcessorArchitecture = PROCESSOR_ARCHITECTURE_ARM64;
#elif defined(__i386__)
	si->wProcessorArchitecture = PROCESSOR_ARCHITECTURE_INTEL;
	si->dwProcessorType = PROCESSOR_INTEL_PENTIUM;
#else
	si->wProcessorArchitecture = PROCESSOR_ARCHITECTURE_UNKNOWN;
#endif
	si->dwPageSize = (DWORD)sysconf(_SC_PAGESIZE);
	si->dwAllocationGranularity = 65536;
	si->lpMinimumApplicationAddress = (LPVOID)(uintptr_t)0x10000;
#if UINTPTR_MAX > 0xFFFFFFFFu
	si->lpMaximumApplicationAddress = (LPVOID)(uintptr_t)0x7FFFFFFEFFFFull;
#else
	si->lpMaximumApplicationAddress = (LPVOID)(uintptr_t)0x7FFEFFFFu;
#endif
	/* The CPUs this process may run on, as the one processor group. */
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		for (unsigned i = 0; i < CPU_SETSIZE && i < 8 * sizeof(DWORD_PTR); i++)
			if (CPU_ISSET(i, &set)) {
				si->dwActiveProcessorMask |= (DWORD_PTR)1 << i;
				si->dwNumberOfProcessors++;
			}
	}
	if (si->dwNumberOfProcessors == 0)
		si->dwNumberOfProcessors = ncpu > 0 ? (DWORD)ncpu : 1;
}

FLTPORT_WINAPI void GetNativeSystemInfo(LPSYSTEM_INFO si)
{
	GetSystemInfo(si);
}

/* ---- environment ----
 *
 * The Win32 environment is a block of its own, as on Windows (where the C
 * runtime keeps a separate copy for getenv): taken from environ at first
 * use, then changed by SetEnvironmentVariable only, under one lock.  So a
 * change never races with getenv() elsewhere in the process (glibc's
 * setenv frees the array a concurrent getenv may read), names compare
 * ignoring case as Windows' do, and C's getenv() does not see Win32
 * changes — as on Windows. */

struct env_var {
	char *name, *value;
};

static pthread_mutex_t env_lock = PTHREAD_MUTEX_INITIALIZER;
static struct env_var *env;
static size_t env_n, env_cap;
static bool env_loaded;

extern char **environ;

static bool env_put(const char *name, size_t nlen, const char *value)
{
	struct env_var v;

	if (env_n == env_cap) {
		size_t cap = env_cap ? 2 * env_cap : 64;
		struct env_var *e = realloc(env, cap * sizeof(*e));

		if (!e)
			return false;
		env = e;
		env_cap = cap;
	}
	v.name = strndup(name, nlen);
	v.value = strdup(value);
	if (!v.name || !v.value) {
		free(v.name);
		free(v.value);
		return false;
	}
	env[env_n++] = v;
	return true;
}

/* env_lock held. */
static void env_load(void)
{
	if (env_loaded)
		return;
	env_loaded = true;
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');

		if (eq && eq != *e)
			env_put(*e, (size_t)(eq - *e), eq + 1);
	}
}

/* The variable named name (ignoring case), or NULL.  env_lock held. */
static struct env_var *env_find(const char *name)
{
	for (size_t i = 0; i < env_n; i++)
		if (strcasecmp(env[i].name, name) == 0)
			return &env[i];
	return NULL;
}

static DWORD get_env(const char *name, void *buf, DWORD cap, bool wide)
{
	struct env_var *v;
	DWORD n = 0;

	if (!name) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return 0;
	}
	pthread_mutex_lock(&env_lock);
	env_load();
	v = env_find(name);
	if (v)
		n = fpw_put_text(v->value, buf, cap, wide);
	pthread_mutex_unlock(&env_lock);
	if (!v)
		SetLastError(ERROR_ENVVAR_NOT_FOUND);
	return n;
}

FLTPORT_WINAPI DWORD GetEnvironmentVariableA(LPCSTR name, LPSTR buf, DWORD size)
{
	return get_env(name, buf, size, false);
}

/* A wide string as a malloc'ed UTF-8 one; NULL with the last error set
 * (strict: an invalid code point gives ERROR_NO_UNICODE_TRANSLATION). */
static char *utf8_dup(LPCWSTR w, bool strict)
{
	ssize_t n;
	char *s;

	if (!w) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	n = fpw_wide_to_utf8(w, wcslen(w), NULL, 0, strict);
	if (n < 0) {
		SetLastError(ERROR_NO_UNICODE_TRANSLATION);
		return NULL;
	}
	s = malloc((size_t)n + 1);
	if (!s) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	fpw_wide_to_utf8(w, wcslen(w), s, (size_t)n, strict);
	s[n] = '\0';
	return s;
}

FLTPORT_WINAPI DWORD GetEnvironmentVariableW(LPCWSTR name, LPWSTR buf, DWORD size)
{
	char *n = utf8_dup(name, true);
	DWORD r;

	if (!n)
		return 0;
	r = get_env(n, buf, size, true);
	free(n);
	return r;
}

static BOOL set_env(const char *name, const char *value)
{
	struct env_var *v;
	bool ok = true;

	if (!name[0] || strchr(name, '=')) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	pthread_mutex_lock(&env_lock);
	env_load();
	v = env_find(name);
	if (v && value) {
		char *copy = strdup(value);

		ok = copy != NULL;
		if (ok) {
			free(v->value);
			v->value = copy; /* the name keeps its case, as on Windows */
		}
	} else if (v) {
		free(v->name);
		free(v->value);
		*v = env[--env_n];
	} else if (value) {
		ok = env_put(name, strlen(name), value);
	}
	pthread_mutex_unlock(&env_lock);
	if (!ok) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return FALSE;
	}
	return TRUE;
}

FLTPORT_WINAPI BOOL SetEnvironmentVariableA(LPCSTR name, LPCSTR value)
{
	if (!name) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	return set_env(name, value);
}

FLTPORT_WINAPI BOOL SetEnvironmentVariableW(LPCWSTR name, LPCWSTR value)
{
	char *n = utf8_dup(name, true), *v = NULL;
	BOOL ok = FALSE;

	if (n && (!value || (v = utf8_dup(value, true))))
		ok = set_env(n, v);
	free(n);
	free(v);
	return ok;
}

/* ---- computer name ---- */

/* Windows' NetBIOS name: the host name's first label, upper case, at most
 * MAX_COMPUTERNAME_LENGTH characters. */
static void computer_name(char out[MAX_COMPUTERNAME_LENGTH + 1])
{
	char host[256] = "";
	size_t i;

	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		strcpy(host, "LOCALHOST");
	for (i = 0; i < MAX_COMPUTERNAME_LENGTH && host[i] && host[i] != '.'; i++)
		out[i] = (char)(host[i] >= 'a' && host[i] <= 'z' ? host[i] - 'a' + 'A' : host[i]);
	out[i] = '\0';
}

static BOOL get_computer_name(void *buf, LPDWORD size, bool wide)
{
	char name[MAX_COMPUTERNAME_LENGTH + 1];
	DWORD n;

	if (!size) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	computer_name(name);
	n = fpw_put_text(name, buf, *size, wide);
	if (n >= *size || !buf) {
		*size = n; /* the size needed, with the terminator */
		SetLastError(ERROR_BUFFER_OVERFLOW);
		return FALSE;
	}
	*size = n;
	return TRUE;
}

FLTPORT_WINAPI BOOL GetComputerNameA(LPSTR buf, LPDWORD size)
{
	return get_computer_name(buf, size, false);
}

FLTPORT_WINAPI BOOL GetComputerNameW(LPWSTR buf, LPDWORD size)
{
	return get_computer_name(buf, size, true);
}

/* ---- debug output ---- */

void fpw_stderr_line(const char *prefix, const char *text)
{
	struct pollfd pfd = { .fd = STDERR_FILENO, .events = POLLOUT };
	size_t n = strlen(text);
	char line[1024];
	int len;

	len = snprintf(line, sizeof(line), "%s%s%s", prefix, text,
		       n && text[n - 1] == '\n' ? "" : "\n");
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(line))
		len = sizeof(line) - 1;
	/* Written only if stderr has room now: a pipe nobody reads never
	 * blocks the caller (the line is dropped). */
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT))
		(void)!write(STDERR_FILENO, line, (size_t)len);
}

/* No debugger listens: the text goes to stderr when FLTPORT_DEBUG is set
 * (as DebugView would show it), nowhere otherwise. */
FLTPORT_WINAPI void OutputDebugStringA(LPCSTR text)
{
	const char *d = getenv("FLTPORT_DEBUG");

	if (text && d && d[0] && strcmp(d, "0") != 0)
		fpw_stderr_line("fltport: debug string: ", text);
}

FLTPORT_WINAPI void OutputDebugStringW(LPCWSTR text)
{
	DWORD err = GetLastError();
	char *s = text ? utf8_dup(text, false) : NULL;

	if (s)
		OutputDebugStringA(s);
	free(s);
	SetLastError(err); /* it reports nothing */
}

/* ---- directories, attributes, moves ---- */

static DWORD get_cwd(void *buf, DWORD cap, bool wide)
{
	char *cwd = getcwd(NULL, 0);
	DWORD n;

	if (!cwd) {
		SetLastError(fpw_errno_to_win32(errno));
		return 0;
	}
	n = fpw_put_text(cwd, buf, cap, wide);
	free(cwd);
	return n;
}

FLTPORT_WINAPI DWORD GetCurrentDirectoryA(DWORD size, LPSTR buf)
{
	return get_cwd(buf, size, false);
}

FLTPORT_WINAPI DWORD GetCurrentDirectoryW(DWORD size, LPWSTR buf)
{
	return get_cwd(buf, size, true);
}

/* ENOENT: ERROR_PATH_NOT_FOUND or ERROR_FILE_NOT_FOUND, as a missing
 * directory on the way or the last component. */
static DWORD path_error(const char *path, int e, DWORD last_missing)
{
	char *dir;
	struct stat st;
	DWORD err = last_missing;

	if (e != ENOENT)
		return fpw_errno_to_win32(e);
	dir = strdup(path);
	if (dir) {
		char *slash = strrchr(dir, '/');

		if (slash) {
			*(slash == dir ? slash + 1 : slash) = '\0';
			if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
				err = ERROR_PATH_NOT_FOUND;
		}
		free(dir);
	}
	return err;
}

static int do_rmdir(const char *p);
static int do_chdir(const char *p);

/* Run op(path) for a path argument; TRUE, or FALSE with the last error. */
static BOOL path_op(char *path, int (*op)(const char *p), DWORD last_missing)
{
	int e;

	if (!path)
		return FALSE;
	if (op(path) == 0) {
		free(path);
		return TRUE;
	}
	e = errno;
	if (e == ENOTDIR && (op == do_rmdir || op == do_chdir)) {
		struct stat st;
		DWORD err = ERROR_PATH_NOT_FOUND; /* a file on the way */

		/* The name itself is a file: ERROR_DIRECTORY. */
		if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode))
			err = ERROR_DIRECTORY;
		free(path);
		SetLastError(err);
		return FALSE;
	}
	SetLastError(e == EEXIST      ? ERROR_ALREADY_EXISTS
		     : e == ENOTEMPTY ? ERROR_DIR_NOT_EMPTY
				      : path_error(path, e, last_missing));
	free(path);
	return FALSE;
}

static int do_chdir(const char *p)
{
	return chdir(p);
}

static int do_mkdir(const char *p)
{
	return mkdir(p, 0777);
}

static int do_rmdir(const char *p)
{
	struct stat st;

	/* A symbolic link to a directory goes, as a directory link does on
	 * Windows (not what it points to). */
	if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode) && stat(p, &st) == 0 && S_ISDIR(st.st_mode))
		return unlink(p);
	return rmdir(p);
}

FLTPORT_WINAPI BOOL SetCurrentDirectoryA(LPCSTR name)
{
	return path_op(fpw_path_a(name), do_chdir, ERROR_FILE_NOT_FOUND);
}

FLTPORT_WINAPI BOOL SetCurrentDirectoryW(LPCWSTR name)
{
	return path_op(fpw_path_w(name), do_chdir, ERROR_FILE_NOT_FOUND);
}

FLTPORT_WINAPI BOOL CreateDirectoryA(LPCSTR name, LPSECURITY_ATTRIBUTES sa)
{
	(void)sa;
	return path_op(fpw_path_a(name), do_mkdir, ERROR_PATH_NOT_FOUND);
}

FLTPORT_WINAPI BOOL CreateDirectoryW(LPCWSTR name, LPSECURITY_ATTRIBUTES sa)
{
	(void)sa;
	return path_op(fpw_path_w(name), do_mkdir, ERROR_PATH_NOT_FOUND);
}

FLTPORT_WINAPI BOOL RemoveDirectoryA(LPCSTR name)
{
	return path_op(fpw_path_a(name), do_rmdir, ERROR_FILE_NOT_FOUND);
}

FLTPORT_WINAPI BOOL RemoveDirectoryW(LPCWSTR name)
{
	return path_op(fpw_path_w(name), do_rmdir, ERROR_FILE_NOT_FOUND);
}

static DWORD attributes(char *path)
{
	struct stat st;
	DWORD a = 0;

	if (!path)
		return INVALID_FILE_ATTRIBUTES;
	if (stat(path, &st) != 0) {
		SetLastError(path_error(path, errno, ERROR_FILE_NOT_FOUND));
		free(path);
		return INVALID_FILE_ATTRIBUTES;
	}
	free(path);
	if (S_ISDIR(st.st_mode))
		a |= FILE_ATTRIBUTE_DIRECTORY;
	if (!(st.st_mode & S_IWUSR))
		a |= FILE_ATTRIBUTE_READONLY;
	return a ? a : FILE_ATTRIBUTE_NORMAL;
}

FLTPORT_WINAPI DWORD GetFileAttributesA(LPCSTR name)
{
	return attributes(fpw_path_a(name));
}

FLTPORT_WINAPI DWORD GetFileAttributesW(LPCWSTR name)
{
	return attributes(fpw_path_w(name));
}

/* rename() that never replaces: RENAME_NOREPLACE, or where the file
 * system refuses the flag (NFS, CIFS, old kernels), link() + unlink() for
 * a file (atomic too) and a look first for anything else. */
static int rename_noreplace(const char *from, const char *to)
{
	struct stat st;

	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (lstat(from, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		if (link(from, to) != 0)
			return -1;
		return unlink(from);
	}
	if (lstat(to, &st) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(from, to);
}

static BOOL move(char *from, char *to, DWORD flags)
{
	DWORD err = ERROR_SUCCESS;
	struct stat st;
	int rc;

	if (!from || !to) {
		free(from);
		free(to);
		return FALSE;
	}
	if (flags &
	    ~(DWORD)(MOVEFILE_REPLACE_EXISTING | MOVEFILE_COPY_ALLOWED | MOVEFILE_WRITE_THROUGH)) {
		err = ERROR_INVALID_PARAMETER;
	} else {
		/* Without MOVEFILE_REPLACE_EXISTING an existing target stays;
		 * Windows replaces files, never directories. */
		if (!(flags & MOVEFILE_REPLACE_EXISTING))
			rc = rename_noreplace(from, to);
		else if (stat(to, &st) == 0 && S_ISDIR(st.st_mode))
			errno = EISDIR, rc = -1;
		else
			rc = rename(from, to);
		if (rc != 0) {
			int e = errno;

			if (e == ENOENT && lstat(from, &st) == 0)
				err = ERROR_PATH_NOT_FOUND; /* the target's directory */
			else if (e == EEXIST)
				err = ERROR_ALREADY_EXISTS;
			else if (e == EXDEV)
				err = ERROR_NOT_SAME_DEVICE;
			else if (e == ENOTEMPTY || e == EISDIR)
				err = ERROR_ACCESS_DENIED;
			else
				err = path_error(from, e, ERROR_FILE_NOT_FOUND);
		}
	}
	free(from);
	free(to);
	if (err) {
		SetLastError(err);
		return FALSE;
	}
	return TRUE;
}

FLTPORT_WINAPI BOOL MoveFileExA(LPCSTR from, LPCSTR to, DWORD flags)
{
	return move(fpw_path_a(from), fpw_path_a(to), flags);
}

FLTPORT_WINAPI BOOL MoveFileExW(LPCWSTR from, LPCWSTR to, DWORD flags)
{
	return move(fpw_path_w(from), fpw_path_w(to), flags);
}

FLTPORT_WINAPI BOOL MoveFileA(LPCSTR from, LPCSTR to)
{
	return MoveFileExA(from, to, 0);
}

FLTPORT_WINAPI BOOL MoveFileW(LPCWSTR from, LPCWSTR to)
{
	return MoveFileExW(from, to, 0);
}
