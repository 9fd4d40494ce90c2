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
#include <sys/uio.h>
#include <unistd.h>

#include "compat/compat.h"
#include "compat/wname.h"

struct file {
	struct fpw_obj obj;
	int fd;
	bool readable, writable; /* writable: write or append access */
	bool write_data;         /* write access (not append-only) */
	/* One transfer or seek at a time, as Windows serialises the I/O of
	 * a synchronous handle: a transfer at an offset moves the pointer. */
	pthread_mutex_t io_lock;
	/* FILE_FLAG_DELETE_ON_CLOSE: the name to remove at the last close,
	 * in the directory it was opened in (whatever the cwd then). */
	int dir_fd;
	char *base;
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
	case EFAULT:
		return ERROR_NOACCESS;
	default:
		return ERROR_GEN_FAILURE;
	}
}

static void file_destroy(struct fpw_obj *o)
{
	struct file *f = (struct file *)o;

	if (f->dir_fd >= 0) {
		unlinkat(f->dir_fd, f->base, 0);
		close(f->dir_fd);
	}
	close(f->fd);
	free(f->base);
	pthread_mutex_destroy(&f->io_lock);
	free(f);
}

int fpw_file_fd(struct fpw_obj *o, bool *readable, bool *writable)
{
	struct file *f = (struct file *)o;

	*readable = f->readable;
	*writable = f->write_data;
	return f->fd;
}

enum need { NEED_NOTHING, NEED_READ, NEED_WRITE, NEED_WRITE_DATA };

/* The file behind h, with a reference, if it was opened for `need`; else
 * NULL with the last error set. */
static struct file *file_get(HANDLE h, enum need need)
{
	struct file *f = (struct file *)fpw_handle_get(h, FPW_FILE);

	if (f && ((need == NEED_READ && !f->readable) || (need == NEED_WRITE && !f->writable) ||
		  (need == NEED_WRITE_DATA && !f->write_data))) {
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
	bool wdata = access & (GENERIC_WRITE | GENERIC_ALL | FILE_WRITE_DATA);
	int oflags = O_CLOEXEC | O_NOCTTY, fd = -1;
	struct file *f;
	struct stat st;
	HANDLE h;

	if (!path[0] || disposition < CREATE_NEW || disposition > TRUNCATE_EXISTING ||
	    (disposition == TRUNCATE_EXISTING && !wdata)) {
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
	if (wr && !wdata)
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
	if (fd < 0 && errno == EISDIR && (flags & FILE_FLAG_BACKUP_SEMANTICS) && !wr &&
	    (disposition == OPEN_EXISTING || disposition == OPEN_ALWAYS)) {
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		existed = fd >= 0;
	}
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
	f->write_data = wdata;
	f->dir_fd = -1;
	pthread_mutex_init(&f->io_lock, NULL);
	if (flags & FILE_FLAG_DELETE_ON_CLOSE) {
		char *slash = strrchr(path, '/');

		f->base = strdup(slash ? slash + 1 : path);
		if (slash == path)
			f->dir_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		else if (slash) {
			*slash = '\0';
			f->dir_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		} else {
			f->dir_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		}
		if (f->dir_fd < 0 || !f->base) {
			DWORD err = f->base ? fpw_errno_to_win32(errno) : ERROR_NOT_ENOUGH_MEMORY;

			if (f->dir_fd >= 0)
				close(f->dir_fd);
			free(f->base);
			pthread_mutex_destroy(&f->io_lock);
			free(f);
			close(fd);
			free(path);
			SetLastError(err);
			return INVALID_HANDLE_VALUE;
		}
	}
	free(path);
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

char *fpw_path_a(LPCSTR name)
{
	char *path;

	if (!name) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	path = strdup(name);
	if (!path) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	for (char *p = path; *p; p++)
		if (*p == '\\')
			*p = '/';
	return path;
}

char *fpw_path_w(LPCWSTR name)
{
	size_t n, cap;
	char *path;

	if (!name) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	n = wcslen(name);
	if (n > 32767) {
		SetLastError(ERROR_FILENAME_EXCED_RANGE);
		return NULL;
	}
	cap = 4 * n + 1;
	path = malloc(cap);
	if (!path) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	if (fpw_wname_to_utf8(name, n, path, cap) < 0) {
		free(path);
		SetLastError(ERROR_INVALID_NAME);
		return NULL;
	}
	for (char *p = path; *p; p++)
		if (*p == '\\')
			*p = '/';
	return path;
}

DWORD fpw_put_text(const char *s, void *buf, DWORD cap, bool wide)
{
	size_t n;

	if (!wide) {
		n = strlen(s);
		if (!buf || n + 1 > cap)
			return (DWORD)(n + 1);
		memcpy(buf, s, n + 1);
		return (DWORD)n;
	}
	n = fpw_utf8_to_wname(s, NULL, 0);
	if (!buf || n + 1 > cap)
		return (DWORD)(n + 1);
	fpw_utf8_to_wname(s, buf, n);
	((wchar_t *)buf)[n] = 0;
	return (DWORD)n;
}

FLTPORT_WINAPI HANDLE CreateFileA(LPCSTR name, DWORD access, DWORD share, LPSECURITY_ATTRIBUTES sa,
				  DWORD disposition, DWORD flags, HANDLE template_file)
{
	char *path = fpw_path_a(name);

	(void)share;
	(void)sa;
	(void)template_file;
	return path ? create_file(path, access, disposition, flags) : INVALID_HANDLE_VALUE;
}

FLTPORT_WINAPI HANDLE CreateFileW(LPCWSTR name, DWORD access, DWORD share, LPSECURITY_ATTRIBUTES sa,
				  DWORD disposition, DWORD flags, HANDLE template_file)
{
	char *path = fpw_path_w(name);

	(void)share;
	(void)sa;
	(void)template_file;
	return path ? create_file(path, access, disposition, flags) : INVALID_HANDLE_VALUE;
}

/* The offset an OVERLAPPED names for a synchronous handle: 0 with *at, or
 * false for an offset no file has (OffsetHigh with its top bit set, but
 * for the append marker).  *append: Offset and OffsetHigh both
 * 0xFFFFFFFF, "at the end" (WriteFile). */
static bool ov_offset(const OVERLAPPED *ov, off_t *at, bool *append)
{
	*append = ov->Offset == 0xFFFFFFFFu && ov->OffsetHigh == 0xFFFFFFFFu;
	if (*append)
		return true;
	if (ov->OffsetHigh & 0x80000000u)
		return false;
	*at = (off_t)(((uint64_t)ov->OffsetHigh << 32) | ov->Offset);
	return true;
}

static void ov_done(LPOVERLAPPED ov, size_t n)
{
	if (ov) {
		ov->Internal = (ULONG_PTR)STATUS_SUCCESS;
		ov->InternalHigh = n;
	}
}

/* The checks ReadFile and WriteFile share, in Windows' order (the count
 * zeroed first): the file, its io_lock taken, and an OVERLAPPED's offset
 * (the append marker for writes only); NULL with the last error set. */
static struct file *io_begin(HANDLE h, LPDWORD done, LPOVERLAPPED ov, enum need need, off_t *at,
			     bool *append)
{
	struct file *f;

	if (done)
		*done = 0;
	if ((!done && !ov) ||
	    (ov && (!ov_offset(ov, at, append) || (*append && need != NEED_WRITE)))) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	f = file_get(h, need);
	if (f)
		pthread_mutex_lock(&f->io_lock);
	return f;
}

FLTPORT_WINAPI BOOL ReadFile(HANDLE h, LPVOID buf, DWORD len, LPDWORD done, LPOVERLAPPED ov)
{
	struct file *f;
	size_t total = 0;
	bool append = false;
	off_t at = 0;
	int err = 0;

	f = io_begin(h, done, ov, NEED_READ, &at, &append);
	if (!f)
		return FALSE;
	/* A regular file gives all that is there: read until len or the end
	 * (one read() stops at 2 GiB). */
	while (total < len) {
		ssize_t n = ov ? pread(f->fd, (char *)buf + total, len - total, at + (off_t)total)
			       : read(f->fd, (char *)buf + total, len - total);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			break;
		}
		if (n == 0)
			break;
		total += (size_t)n;
	}
	/* As on Windows, a read at an offset moves the file pointer past it. */
	if (ov && !err)
		lseek(f->fd, at + (off_t)total, SEEK_SET);
	pthread_mutex_unlock(&f->io_lock);
	fpw_obj_put(&f->obj);
	if (done)
		*done = (DWORD)total;
	if (err) {
		SetLastError(err == EISDIR ? ERROR_INVALID_FUNCTION : fpw_errno_to_win32(err));
		return FALSE;
	}
	ov_done(ov, total);
	if (ov && total == 0 && len > 0) {
		/* Past the end with an OVERLAPPED: ERROR_HANDLE_EOF. */
		ov->Internal = (ULONG_PTR)(LONG)0xC0000011; /* STATUS_END_OF_FILE */
		SetLastError(ERROR_HANDLE_EOF);
		return FALSE;
	}
	return TRUE;
}

/* One write at `at` (append: at the end, atomically, RWF_APPEND; its
 * offset then is the file's end before it). */
static ssize_t write_at(int fd, const char *p, size_t n, off_t at, bool append)
{
	struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
	ssize_t w;

	if (!append)
		return pwrite(fd, p, n, at);
	w = pwritev2(fd, &iov, 1, -1, RWF_APPEND);
	if (w >= 0 || errno != EOPNOTSUPP)
		return w;
	/* Before Linux 4.16: the end under the handle's lock (other handles
	 * of the file can still interleave). */
	at = lseek(fd, 0, SEEK_END);
	return at < 0 ? -1 : pwrite(fd, p, n, at);
}

FLTPORT_WINAPI BOOL WriteFile(HANDLE h, LPCVOID buf, DWORD len, LPDWORD done, LPOVERLAPPED ov)
{
	const char *p = buf;
	size_t total = 0;
	bool append = false;
	struct file *f;
	off_t at = 0;
	int err = 0;

	f = io_begin(h, done, ov, NEED_WRITE, &at, &append);
	if (!f)
		return FALSE;
	/* A regular file takes it all but for a full disk: write the rest. */
	while (total < len) {
		ssize_t n = ov ? write_at(f->fd, p + total, len - total, at + (off_t)total, append)
			       : write(f->fd, p + total, len - total);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : ENOSPC;
			break;
		}
		total += (size_t)n;
	}
	if (ov && total > 0) {
		if (append)
			lseek(f->fd, 0, SEEK_END);
		else
			lseek(f->fd, at + (off_t)total, SEEK_SET);
	}
	pthread_mutex_unlock(&f->io_lock);
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

/* The position a move would reach, without moving; false with the last
 * error set.  io_lock held. */
static bool seek_target(struct file *f, LONGLONG dist, DWORD method, off_t *target)
{
	struct stat st;
	off_t base;

	switch (method) {
	case FILE_BEGIN:
		base = 0;
		break;
	case FILE_CURRENT:
		base = lseek(f->fd, 0, SEEK_CUR);
		break;
	case FILE_END:
		base = fstat(f->fd, &st) == 0 ? st.st_size : -1;
		break;
	default:
		SetLastError(ERROR_INVALID_PARAMETER);
		return false;
	}
	if (base < 0) {
		SetLastError(fpw_errno_to_win32(errno));
		return false;
	}
	if ((dist < 0 && -(unsigned long long)dist > (unsigned long long)base) ||
	    (dist > 0 &&
	     (unsigned long long)dist > (unsigned long long)INT64_MAX - (unsigned long long)base)) {
		SetLastError(dist < 0 ? ERROR_NEGATIVE_SEEK : ERROR_INVALID_PARAMETER);
		return false;
	}
	*target = base + (off_t)dist;
	return true;
}

/* Move to dist from method's base; limit: the highest position accepted
 * (else ERROR_INVALID_PARAMETER, not moved). */
static BOOL seek(HANDLE h, LONGLONG dist, DWORD method, off_t limit, off_t *pos)
{
	struct file *f = file_get(h, NEED_NOTHING);
	DWORD err = ERROR_SUCCESS;
	off_t target = 0;

	if (!f)
		return FALSE;
	pthread_mutex_lock(&f->io_lock);
	if (!seek_target(f, dist, method, &target))
		err = GetLastError();
	else if (target > limit)
		err = ERROR_INVALID_PARAMETER;
	else if (lseek(f->fd, target, SEEK_SET) < 0)
		err = fpw_errno_to_win32(errno);
	pthread_mutex_unlock(&f->io_lock);
	fpw_obj_put(&f->obj);
	if (err) {
		SetLastError(err);
		return FALSE;
	}
	*pos = target;
	return TRUE;
}

FLTPORT_WINAPI BOOL SetFilePointerEx(HANDLE h, LARGE_INTEGER dist, PLARGE_INTEGER newpos,
				     DWORD method)
{
	off_t pos;

	if (!seek(h, dist.QuadPart, method, INT64_MAX, &pos))
		return FALSE;
	if (newpos)
		newpos->QuadPart = (LONGLONG)pos;
	return TRUE;
}

FLTPORT_WINAPI DWORD SetFilePointer(HANDLE h, LONG lo, PLONG hi, DWORD method)
{
	LONGLONG d;
	off_t pos;

	/* Without lpDistanceToMoveHigh: a signed 32-bit distance, and a
	 * result that must fit 32 bits (else it fails without moving). */
	d = hi ? (LONGLONG)(((ULONGLONG)(ULONG)*hi << 32) | (ULONG)lo) : (LONGLONG)lo;
	if (!seek(h, d, method, hi ? INT64_MAX : (off_t)0xFFFFFFFFu, &pos))
		return INVALID_SET_FILE_POINTER;
	if (hi)
		*hi = (LONG)((ULONGLONG)pos >> 32);
	SetLastError(ERROR_SUCCESS); /* a result of 0xFFFFFFFF is no failure */
	return (DWORD)pos;
}

FLTPORT_WINAPI BOOL SetEndOfFile(HANDLE h)
{
	struct file *f = file_get(h, NEED_WRITE_DATA);
	DWORD err = ERROR_SUCCESS;
	struct stat st;
	off_t at;

	if (!f)
		return FALSE;
	pthread_mutex_lock(&f->io_lock);
	at = lseek(f->fd, 0, SEEK_CUR);
	if (at < 0 || fstat(f->fd, &st) != 0)
		err = fpw_errno_to_win32(errno);
	else if (at < st.st_size && fpw_file_mapped(st.st_dev, st.st_ino))
		err = ERROR_USER_MAPPED_FILE; /* a view would lose its pages */
	else if (ftruncate(f->fd, at) != 0)
		err = fpw_errno_to_win32(errno);
	pthread_mutex_unlock(&f->io_lock);
	fpw_obj_put(&f->obj);
	if (err) {
		SetLastError(err);
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
	char *path = fpw_path_a(name);

	return path ? delete_file(path) : FALSE;
}

FLTPORT_WINAPI BOOL DeleteFileW(LPCWSTR name)
{
	char *path = fpw_path_w(name);

	return path ? delete_file(path) : FALSE;
}
