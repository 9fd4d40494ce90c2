/*
 * Files: CreateFile and the synchronous calls on its handles (fltport_win32.h
 * says what each accepts).  A file handle holds an fd; CreateFileMapping
 * (memory.c) maps it through fpw_file_fd().
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compat/compat.h"
#include "compat/wname.h"

struct file {
	struct fpw_obj obj;
	int fd;
	bool readable, writable;
	bool delete_on_close;
	char *path; /* FILE_FLAG_DELETE_ON_CLOSE: unlinked at the last close */
};

DWORD fpw_errno_to_win32(int e)
{
	switch (e) {
	case 0:
		return ERROR_SUCCESS;
	case ENOENT:
		return ERROR_FILE_NOT_FOUND;
	case ENOTDIR:
		return ERROR_PATH_NOT_FOUND;
	case EACCES:
	case EPERM:
	case EISDIR:
		return ERROR_ACCESS_DENIED;
	case EEXIST:
		return ERROR_FILE_EXISTS;
	case EBADF:
		return ERROR_INVALID_HANDLE;
	case ENOMEM:
		return ERROR_NOT_ENOUGH_MEMORY;
	case EMFILE:
	case ENFILE:
		return ERROR_TOO_MANY_OPEN_FILES;
	case ENOSPC:
	case EDQUOT:
		return ERROR_DISK_FULL;
	case EROFS:
		return ERROR_WRITE_PROTECT;
	case ENAMETOOLONG:
		return ERROR_FILENAME_EXCED_RANGE;
	case EINVAL:
		return ERROR_INVALID_PARAMETER;
	case EFBIG:
		return ERROR_FILE_TOO_LARGE;
	case ETXTBSY:
	case EBUSY:
		return ERROR_SHARING_VIOLATION;
	case EIO:
		return ERROR_IO_DEVICE;
	default:
		return ERROR_GEN_FAILURE;
	}
}

static void file_destroy(struct fpw_obj *o)
{
	struct file *f = (struct file *)o;

	if (f->delete_on_close && f->path)
		unlink(f->path);
	close(f->fd);
	free(f->path);
	free(f);
}

int fpw_file_fd(struct fpw_obj *o, bool *readable, bool *writable)
{
	struct file *f = (struct file *)o;

	*readable = f->readable;
	*writable = f->writable;
	return f->fd;
}

enum need { NEED_NOTHING, NEED_READ, NEED_WRITE };

/* The file behind h, with a reference, if it was opened for `need`; else
 * NULL with the last error set. */
static struct file *file_get(HANDLE h, enum need need)
{
	struct file *f = (struct file *)fpw_handle_get(h, FPW_FILE);

	if (f && ((need == NEED_READ && !f->readable) || (need == NEED_WRITE && !f->writable))) {
		fpw_obj_put(&f->obj);
		SetLastError(ERROR_ACCESS_DENIED);
		return NULL;
	}
	return f;
}

/* ENOENT: ERROR_PATH_NOT_FOUND when a directory on the way is missing, as
 * Windows tells the two apart. */
static DWORD open_error(const char *path, int e)
{
	char *dir, *slash;
	struct stat st;
	DWORD err;

	if (e != ENOENT)
		return fpw_errno_to_win32(e);
	dir = strdup(path);
	if (!dir)
		return ERROR_NOT_ENOUGH_MEMORY;
	slash = strrchr(dir, '/');
	err = ERROR_FILE_NOT_FOUND;
	if (slash) {
		*(slash == dir ? slash + 1 : slash) = '\0';
		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
			err = ERROR_PATH_NOT_FOUND;
	}
	free(dir);
	return err;
}

#define ACCESS_READ (GENERIC_READ | GENERIC_ALL | FILE_READ_DATA)
#define ACCESS_WRITE (GENERIC_WRITE | GENERIC_ALL | FILE_WRITE_DATA | FILE_APPEND_DATA)

static HANDLE create_file(char *path, DWORD access, DWORD disposition, DWORD flags)
{
	bool rd = access & ACCESS_READ, wr = access & ACCESS_WRITE, existed = false;
	int oflags = O_CLOEXEC | O_NOCTTY, fd = -1;
	struct file *f;
	struct stat st;
	HANDLE h;

	for (char *p = path; *p; p++)
		if (*p == '\\')
			*p = '/';
	if (!path[0] || disposition < CREATE_NEW || disposition > TRUNCATE_EXISTING ||
	    (disposition == TRUNCATE_EXISTING && !wr)) {
		SetLastError(path[0] ? ERROR_INVALID_PARAMETER : ERROR_PATH_NOT_FOUND);
		free(path);
		return INVALID_HANDLE_VALUE;
	}
	if (flags & FILE_FLAG_OVERLAPPED) {
		free(path);
		SetLastError(ERROR_NOT_SUPPORTED);
		return INVALID_HANDLE_VALUE;
	}
	oflags |= rd && wr ? O_RDWR : wr ? O_WRONLY : O_RDONLY;
	if (wr && !(access & (GENERIC_WRITE | GENERIC_ALL | FILE_WRITE_DATA)))
		oflags |= O_APPEND; /* FILE_APPEND_DATA alone */
	if (flags & FILE_FLAG_WRITE_THROUGH)
		oflags |= O_DSYNC;
	for (int tries = 0; fd < 0 && tries < 100; tries++) {
		switch (disposition) {
		case CREATE_NEW:
			fd = open(path, oflags | O_CREAT | O_EXCL, 0666);
			break;
		case OPEN_EXISTING:
			fd = open(path, oflags);
			break;
		case TRUNCATE_EXISTING:
			fd = open(path, oflags | O_TRUNC);
			break;
		case CREATE_ALWAYS:
		case OPEN_ALWAYS:
			/* Whether it existed is part of the result: open first,
			 * create only if that found nothing (and again if
			 * someone else created it meanwhile). */
			fd = open(path, oflags | (disposition == CREATE_ALWAYS ? O_TRUNC : 0));
			existed = fd >= 0;
			if (fd < 0 && errno == ENOENT) {
				fd = open(path, oflags | O_CREAT | O_EXCL, 0666);
				if (fd < 0 && errno == EEXIST)
					continue;
			}
			break;
		}
		break;
	}
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) &&
	    !(flags & FILE_FLAG_BACKUP_SEMANTICS)) {
		close(fd); /* a directory needs FILE_FLAG_BACKUP_SEMANTICS */
		fd = -1;
		errno = EACCES;
	}
	if (fd < 0 && errno == EISDIR && (flags & FILE_FLAG_BACKUP_SEMANTICS) && !wr)
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		DWORD err = open_error(path, errno);

		free(path);
		SetLastError(err);
		return INVALID_HANDLE_VALUE;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(fd);
		free(path);
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return INVALID_HANDLE_VALUE;
	}
	f->fd = fd;
	f->readable = rd;
	f->writable = wr;
	f->delete_on_close = flags & FILE_FLAG_DELETE_ON_CLOSE;
	f->path = path;
	if (flags & FILE_FLAG_SEQUENTIAL_SCAN)
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	else if (flags & FILE_FLAG_RANDOM_ACCESS)
		posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	fpw_obj_init(&f->obj, FPW_FILE, NULL, file_destroy);
	h = fpw_handle_new(&f->obj);
	if (!h)
		return INVALID_HANDLE_VALUE;
	/* CREATE_ALWAYS and OPEN_ALWAYS say whether the file was there. */
	SetLastError(existed ? ERROR_ALREADY_EXISTS : ERROR_SUCCESS);
	return h;
}

FLTPORT_WINAPI HANDLE CreateFileA(LPCSTR name, DWORD access, DWORD share, LPSECURITY_ATTRIBUTES sa,
				  DWORD disposition, DWORD flags, HANDLE template_file)
{
	char *path;

	(void)share;
	(void)sa;
	(void)template_file;
	if (!name) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return INVALID_HANDLE_VALUE;
	}
	path = strdup(name);
	if (!path) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return INVALID_HANDLE_VALUE;
	}
	return create_file(path, access, disposition, flags);
}

FLTPORT_WINAPI HANDLE CreateFileW(LPCWSTR name, DWORD access, DWORD share, LPSECURITY_ATTRIBUTES sa,
				  DWORD disposition, DWORD flags, HANDLE template_file)
{
	size_t n, cap;
	char *path;

	(void)share;
	(void)sa;
	(void)template_file;
	if (!name) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return INVALID_HANDLE_VALUE;
	}
	n = wcslen(name);
	if (n > 32767) {
		SetLastError(ERROR_FILENAME_EXCED_RANGE);
		return INVALID_HANDLE_VALUE;
	}
	cap = 4 * n + 1;
	path = malloc(cap);
	if (!path) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return INVALID_HANDLE_VALUE;
	}
	if (fpw_wname_to_utf8(name, n, path, cap) < 0) {
		free(path);
		SetLastError(ERROR_INVALID_NAME);
		return INVALID_HANDLE_VALUE;
	}
	return create_file(path, access, disposition, flags);
}

/* The offset an OVERLAPPED names for a synchronous handle; -1: the end of
 * the file (Offset and OffsetHigh both 0xFFFFFFFF, WriteFile only). */
static off_t ov_offset(const OVERLAPPED *ov)
{
	if (ov->Offset == 0xFFFFFFFFu && ov->OffsetHigh == 0xFFFFFFFFu)
		return -1;
	return (off_t)(((uint64_t)ov->OffsetHigh << 32) | ov->Offset);
}

static void ov_done(LPOVERLAPPED ov, size_t n)
{
	if (ov) {
		ov->Internal = (ULONG_PTR)STATUS_SUCCESS;
		ov->InternalHigh = n;
	}
}

FLTPORT_WINAPI BOOL ReadFile(HANDLE h, LPVOID buf, DWORD len, LPDWORD done, LPOVERLAPPED ov)
{
	struct file *f;
	ssize_t n;

	if (!done && !ov) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	f = file_get(h, NEED_READ);
	if (!f)
		return FALSE;
	if (done)
		*done = 0;
	do {
		if (ov) {
			off_t at = ov_offset(ov);

			/* As on Windows, a read at an offset moves the file
			 * pointer past what it read. */
			n = at < 0 ? -1 : pread(f->fd, buf, len, at);
			if (at < 0)
				errno = EINVAL;
			if (n >= 0)
				lseek(f->fd, at + n, SEEK_SET);
		} else {
			n = read(f->fd, buf, len);
		}
	} while (n < 0 && errno == EINTR);
	fpw_obj_put(&f->obj);
	if (n < 0) {
		SetLastError(errno == EISDIR ? ERROR_INVALID_FUNCTION : fpw_errno_to_win32(errno));
		return FALSE;
	}
	if (done)
		*done = (DWORD)n;
	ov_done(ov, (size_t)n);
	if (ov && n == 0 && len > 0) {
		/* Past the end with an OVERLAPPED: ERROR_HANDLE_EOF. */
		ov->Internal = (ULONG_PTR)(LONG)0xC0000011; /* STATUS_END_OF_FILE */
		SetLastError(ERROR_HANDLE_EOF);
		return FALSE;
	}
	return TRUE;
}

FLTPORT_WINAPI BOOL WriteFile(HANDLE h, LPCVOID buf, DWORD len, LPDWORD done, LPOVERLAPPED ov)
{
	const char *p = buf;
	size_t total = 0;
	struct file *f;
	off_t at = 0;
	int err = 0;

	if (!done && !ov) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	f = file_get(h, NEED_WRITE);
	if (!f)
		return FALSE;
	if (done)
		*done = 0;
	if (ov) {
		at = ov_offset(ov);
		if (at < 0)
			at = lseek(f->fd, 0, SEEK_END);
	}
	/* A regular file takes it all but for a full disk: write the rest. */
	while (total < len) {
		ssize_t n = ov ? pwrite(f->fd, p + total, len - total, at + (off_t)total)
			       : write(f->fd, p + total, len - total);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : ENOSPC;
			break;
		}
		total += (size_t)n;
	}
	if (ov && total > 0)
		lseek(f->fd, at + (off_t)total, SEEK_SET);
	fpw_obj_put(&f->obj);
	if (done)
		*done = (DWORD)total;
	if (err) {
		SetLastError(fpw_errno_to_win32(err));
		return FALSE;
	}
	ov_done(ov, total);
	return TRUE;
}

FLTPORT_WINAPI BOOL GetFileSizeEx(HANDLE h, PLARGE_INTEGER size)
{
	struct file *f = file_get(h, NEED_NOTHING);
	struct stat st;
	int rc;

	if (!f)
		return FALSE;
	rc = fstat(f->fd, &st);
	fpw_obj_put(&f->obj);
	if (rc != 0) {
		SetLastError(fpw_errno_to_win32(errno));
		return FALSE;
	}
	if (!size) {
		SetLastError(ERROR_NOACCESS);
		return FALSE;
	}
	size->QuadPart = S_ISREG(st.st_mode) ? (LONGLONG)st.st_size : 0;
	return TRUE;
}

FLTPORT_WINAPI DWORD GetFileSize(HANDLE h, LPDWORD high)
{
	LARGE_INTEGER size;

	if (!GetFileSizeEx(h, &size))
		return INVALID_FILE_SIZE;
	if (high)
		*high = (DWORD)((ULONGLONG)size.QuadPart >> 32);
	/* A size whose low part is 0xFFFFFFFF: the caller checks GetLastError. */
	SetLastError(ERROR_SUCCESS);
	return (DWORD)size.QuadPart;
}

FLTPORT_WINAPI BOOL SetFilePointerEx(HANDLE h, LARGE_INTEGER dist, PLARGE_INTEGER newpos,
				     DWORD method)
{
	int whence = method == FILE_BEGIN     ? SEEK_SET
		     : method == FILE_CURRENT ? SEEK_CUR
		     : method == FILE_END     ? SEEK_END
					      : -1;
	struct file *f;
	off_t at;

	if (whence < 0) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	f = file_get(h, NEED_NOTHING);
	if (!f)
		return FALSE;
	at = lseek(f->fd, (off_t)dist.QuadPart, whence);
	fpw_obj_put(&f->obj);
	if (at < 0) {
		/* Before the start of the file: ERROR_NEGATIVE_SEEK. */
		SetLastError(errno == EINVAL ? ERROR_NEGATIVE_SEEK : fpw_errno_to_win32(errno));
		return FALSE;
	}
	if (newpos)
		newpos->QuadPart = (LONGLONG)at;
	return TRUE;
}

FLTPORT_WINAPI DWORD SetFilePointer(HANDLE h, LONG lo, PLONG hi, DWORD method)
{
	LARGE_INTEGER d, pos;

	/* Without lpDistanceToMoveHigh the distance is a signed 32-bit one. */
	d.QuadPart = hi ? (LONGLONG)(((ULONGLONG)(ULONG)*hi << 32) | (ULONG)lo) : (LONGLONG)lo;
	if (!SetFilePointerEx(h, d, &pos, method))
		return INVALID_SET_FILE_POINTER;
	if (hi)
		*hi = (LONG)((ULONGLONG)pos.QuadPart >> 32);
	else if ((ULONGLONG)pos.QuadPart > 0xFFFFFFFEu) {
		SetLastError(ERROR_INVALID_PARAMETER); /* does not fit the result */
		return INVALID_SET_FILE_POINTER;
	}
	SetLastError(ERROR_SUCCESS);
	return (DWORD)pos.QuadPart;
}

FLTPORT_WINAPI BOOL SetEndOfFile(HANDLE h)
{
	struct file *f = file_get(h, NEED_WRITE);
	off_t at;
	int rc = -1;

	if (!f)
		return FALSE;
	at = lseek(f->fd, 0, SEEK_CUR);
	if (at >= 0)
		rc = ftruncate(f->fd, at);
	fpw_obj_put(&f->obj);
	if (rc != 0) {
		SetLastError(fpw_errno_to_win32(errno));
		return FALSE;
	}
	return TRUE;
}

FLTPORT_WINAPI BOOL FlushFileBuffers(HANDLE h)
{
	struct file *f = file_get(h, NEED_WRITE);
	int rc;

	if (!f)
		return FALSE;
	rc = fsync(f->fd);
	fpw_obj_put(&f->obj);
	if (rc != 0 && errno != EINVAL) {
		SetLastError(fpw_errno_to_win32(errno));
		return FALSE;
	}
	return TRUE;
}

static BOOL delete_file(char *path)
{
	struct stat st;
	int rc, e;

	for (char *p = path; *p; p++)
		if (*p == '\\')
			*p = '/';
	/* A directory is not a file: ERROR_ACCESS_DENIED, as on Windows. */
	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		free(path);
		SetLastError(ERROR_ACCESS_DENIED);
		return FALSE;
	}
	rc = unlink(path);
	e = errno;
	if (rc != 0) {
		DWORD err = open_error(path, e);

		free(path);
		SetLastError(err);
		return FALSE;
	}
	free(path);
	return TRUE;
}

FLTPORT_WINAPI BOOL DeleteFileA(LPCSTR name)
{
	char *path = name ? strdup(name) : NULL;

	if (!path) {
		SetLastError(name ? ERROR_NOT_ENOUGH_MEMORY : ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	return delete_file(path);
}

FLTPORT_WINAPI BOOL DeleteFileW(LPCWSTR name)
{
	size_t n = name ? wcslen(name) : 0;
	char *path;

	if (!name) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	path = malloc(4 * n + 1);
	if (!path) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return FALSE;
	}
	if (fpw_wname_to_utf8(name, n, path, 4 * n + 1) < 0) {
		free(path);
		SetLastError(ERROR_INVALID_NAME);
		return FALSE;
	}
	return delete_file(path);
}
