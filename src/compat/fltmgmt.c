/*
 * fltlib's management API (FilterFindFirst, FilterAttach, …) on the native
 * management plane, fltport/mgmt.h.  docs/PORTING.md, "Management API",
 * states the mapping; this file says why where it is not obvious.
 *
 * Each call asks the running processes (through mgmt.h) what is there now;
 * a search handle keeps the snapshot its *FindFirst took, so that an
 * enumeration is consistent and *FindNext is cheap.  Results are built in
 * a buffer of our own (aligned for the 4-byte WCHAR) and copied out whole,
 * so the caller's buffer is written only on success and may be unaligned.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat/compat.h"
#include "compat/wname.h"
#include "fltport/mgmt.h"

enum mg_type {
	MG_FILTER_FIND = 1, /* FilterFindFirst: filters[] */
	MG_INSTANCE_FIND,   /* FilterInstanceFindFirst: instances[] */
	MG_VOLUME_FIND,     /* FilterVolumeFindFirst: volumes[] */
	MG_VOLINST_FIND,    /* FilterVolumeInstanceFindFirst: instances[] */
	MG_FILTER,          /* FilterCreate: filter */
	MG_INSTANCE,        /* FilterInstanceCreate: filter, volume, instance */
};

/* A search, filter or instance handle. */
struct mg {
	struct fpw_obj obj;
	enum mg_type type;
	pthread_mutex_t lock; /* next, volumes */
	size_t next, count;
	struct fltport_filter_info *filters;
	struct fltport_instance_info *instances;
	struct fltport_volume_info *volumes; /* volume searches; else fetched for
					      * file-system types when needed */
	size_t nvolumes;
	char filter[FLTPORT_NAME_MAX + 1];
	char instance[FLTPORT_NAME_MAX + 1];
	char volume[FLTPORT_MGMT_PATH_MAX];
};

static HRESULT flt_hr(NTSTATUS s)
{
	return fpw_hresult_from_ntstatus(s);
}

#define HR_TOO_SMALL HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER)
#define HR_NO_MORE HRESULT_FROM_WIN32(ERROR_NO_MORE_ITEMS)

/* A native error of a query or request, for the caller.  `other` is what
 * an errno the management plane does not define means here: a filter's
 * own refusal (attach, detach) or a failure (queries). */
static HRESULT mgmt_hr(int rc, HRESULT other)
{
	switch (rc) {
	case -ENOENT:
	case -ECONNRESET: /* it died while answering */
		return flt_hr(STATUS_FLT_FILTER_NOT_FOUND);
	case -ENXIO:
		return flt_hr(STATUS_FLT_INSTANCE_NOT_FOUND);
	case -EEXIST:
		return flt_hr(STATUS_FLT_INSTANCE_NAME_COLLISION);
	case -EACCES:
		return E_ACCESSDENIED;
	case -ENOMEM:
		return E_OUTOFMEMORY;
	case -ETIMEDOUT:
		return flt_hr(STATUS_IO_TIMEOUT);
	default:
		return other;
	}
}

static void mg_close(struct fpw_obj *o)
{
	(void)o;
}

static void mg_destroy(struct fpw_obj *o)
{
	struct mg *m = (struct mg *)o;

	fltport_mgmt_free(m->filters);
	fltport_mgmt_free(m->instances);
	fltport_mgmt_free(m->volumes);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static struct mg *mg_new(enum mg_type type)
{
	struct mg *m = calloc(1, sizeof(*m));

	if (m) {
		fpw_obj_init(&m->obj, FPW_MGMT, mg_close, mg_destroy);
		m->type = type;
		pthread_mutex_init(&m->lock, NULL);
	}
	return m;
}

/* The handle's object if it is of `type` (a reference), else NULL. */
static struct mg *mg_get(HANDLE h, enum mg_type type)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_MGMT);

	if (o && ((struct mg *)o)->type != type) {
		fpw_obj_put(o);
		o = NULL;
	}
	return (struct mg *)o;
}

/* ---- names ---- */

/* A caller's name in UTF-8; false if it cannot be one (then no object of
 * that name can exist). */
static bool utf8_of(LPCWSTR w, char *out, size_t cap)
{
	return w && w[0] && fpw_wname_to_utf8(w, wcslen(w), out, cap) == 0;
}

static size_t wchars(const char *s)
{
	return fpw_utf8_to_wname(s, NULL, 0);
}

/* A volume name as the caller wrote it, made comparable with a mount
 * point: a trailing "/" is optional, as Windows' trailing backslash. */
static void strip_slashes(char *p)
{
	size_t n = strlen(p);

	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
}

/* The volume (mount point) a caller's name designates: the last mount on
 * that mount point in the mount table (the one on top), else the same
 * after resolving symbolic links.  The caller frees *vols. */
static HRESULT find_volume(LPCWSTR wname, struct fltport_volume_info **vols, size_t *nvols,
			   size_t *idx)
{
	char name[FLTPORT_MGMT_PATH_MAX], real[PATH_MAX];
	const char *want = name;
	size_t n = 0;
	int rc;

	*vols = NULL;
	if (!utf8_of(wname, name, sizeof(name)))
		return flt_hr(STATUS_FLT_VOLUME_NOT_FOUND);
	strip_slashes(name);
	rc = fltport_mgmt_volumes(vols, &n);
	if (rc < 0)
		return mgmt_hr(rc, E_FAIL);
	*nvols = n;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = n; i-- > 0;) {
			if (strcmp((*vols)[i].mount_point, want) == 0) {
				*idx = i;
				return S_OK;
			}
		}
		if (pass == 0) {
			if (name[0] != '/' || !realpath(name, real))
				break;
			want = real;
		}
	}
	fltport_mgmt_free(*vols);
	*vols = NULL;
	return flt_hr(STATUS_FLT_VOLUME_NOT_FOUND);
}

/* Linux file-system types that are the file systems Windows names. */
FLT_FILESYSTEM_TYPE fpw_fs_type(const char *t)
{
	static const struct {
		const char *name;
		FLT_FILESYSTEM_TYPE type;
	} map[] = {
		{ "ntfs", FLT_FSTYPE_NTFS },       { "ntfs3", FLT_FSTYPE_NTFS },
		{ "vfat", FLT_FSTYPE_FAT },        { "msdos", FLT_FSTYPE_FAT },
		{ "fat", FLT_FSTYPE_FAT },         { "exfat", FLT_FSTYPE_EXFAT },
		{ "iso9660", FLT_FSTYPE_CDFS },    { "udf", FLT_FSTYPE_UDFS },
		{ "cifs", FLT_FSTYPE_LANMAN },     { "smb3", FLT_FSTYPE_LANMAN },
		{ "smbfs", FLT_FSTYPE_LANMAN },    { "nfs", FLT_FSTYPE_NFS },
		{ "nfs4", FLT_FSTYPE_NFS },        { "davfs", FLT_FSTYPE_WEBDAV },
		{ "gpfs", FLT_FSTYPE_GPFS },       { "afs", FLT_FSTYPE_OPENAFS },
		{ "openafs", FLT_FSTYPE_OPENAFS },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].name, t) == 0)
			return map[i].type;
	return FLT_FSTYPE_UNKNOWN;
}

/* ---- building a result ---- */

/* A string of a result: where it goes and how many bytes it takes. */
struct piece {
	const char *s;
	size_t at, bytes;
};

/* Place the strings one after another from `start`; the total size, or 0
 * if an offset or a length does not fit the structures' USHORTs. */
static size_t layout(size_t start, struct piece *pc, size_t n)
{
	size_t at = start;

	for (size_t i = 0; i < n; i++) {
		pc[i].at = at;
		pc[i].bytes = wchars(pc[i].s) * sizeof(WCHAR);
		if (at > 0xFFFF || pc[i].bytes > 0xFFFF)
			return 0;
		at += pc[i].bytes;
	}
	return at;
}

/* Copy the fixed part and the strings out, or say how much is needed. */
static HRESULT emit(const void *fixed, size_t fixed_len, const struct piece *pc, size_t n,
		    size_t total, LPVOID buf, DWORD size, LPDWORD ret)
{
	unsigned char *blk;

	if (total == 0)
		return flt_hr(STATUS_NAME_TOO_LONG);
	if (total > size) {
		*ret = (DWORD)total;
		return HR_TOO_SMALL;
	}
	blk = calloc(1, total); /* total >= fixed_len: the strings follow it */
	if (!blk)
		return E_OUTOFMEMORY;
	memcpy(blk, fixed, fixed_len);
	for (size_t i = 0; i < n; i++)
		fpw_utf8_to_wname(pc[i].s, (wchar_t *)(blk + pc[i].at),
				  pc[i].bytes / sizeof(WCHAR));
	memcpy(buf, blk, total);
	free(blk);
	*ret = (DWORD)total;
	return S_OK;
}

static HRESULT filter_fill(const struct fltport_filter_info *fi, int cls, LPVOID buf, DWORD size,
			   LPDWORD ret)
{
	struct piece pc[2] = { { .s = fi->name }, { .s = fi->altitude } };
	size_t total;

	switch (cls) {
	case FilterFullInformation: {
		FILTER_FULL_INFORMATION f = { 0 };

		total = layout(offsetof(FILTER_FULL_INFORMATION, FilterNameBuffer), pc, 1);
		f.NumberOfInstances = fi->instances;
		f.FilterNameLength = (USHORT)pc[0].bytes;
		return emit(&f, offsetof(FILTER_FULL_INFORMATION, FilterNameBuffer), pc, 1, total,
			    buf, size, ret);
	}
	case FilterAggregateBasicInformation: {
		FILTER_AGGREGATE_BASIC_INFORMATION a = { 0 };

		total = layout(sizeof(a), pc, 2);
		a.Flags = FLTFL_AGGREGATE_INFO_IS_MINIFILTER;
		a.Type.MiniFilter.NumberOfInstances = fi->instances;
		a.Type.MiniFilter.FilterNameLength = (USHORT)pc[0].bytes;
		a.Type.MiniFilter.FilterNameBufferOffset = (USHORT)pc[0].at;
		a.Type.MiniFilter.FilterAltitudeLength = (USHORT)pc[1].bytes;
		a.Type.MiniFilter.FilterAltitudeBufferOffset = (USHORT)pc[1].at;
		return emit(&a, sizeof(a), pc, 2, total, buf, size, ret);
	}
	case FilterAggregateStandardInformation: {
		FILTER_AGGREGATE_STANDARD_INFORMATION a = { 0 };

		total = layout(sizeof(a), pc, 2);
		a.Flags = FLTFL_ASI_IS_MINIFILTER;
		a.Type.MiniFilter.NumberOfInstances = fi->instances;
		a.Type.MiniFilter.FilterNameLength = (USHORT)pc[0].bytes;
		a.Type.MiniFilter.FilterNameBufferOffset = (USHORT)pc[0].at;
		a.Type.MiniFilter.FilterAltitudeLength = (USHORT)pc[1].bytes;
		a.Type.MiniFilter.FilterAltitudeBufferOffset = (USHORT)pc[1].at;
		return emit(&a, sizeof(a), pc, 2, total, buf, size, ret);
	}
	default:
		return E_INVALIDARG;
	}
}

static HRESULT instance_fill(const struct fltport_instance_info *ii, FLT_FILESYSTEM_TYPE fs,
			     int cls, LPVOID buf, DWORD size, LPDWORD ret)
{
	struct piece pc[4] = {
		{ .s = ii->name }, { .s = ii->altitude }, { .s = ii->volume }, { .s = ii->filter }
	};
	size_t total;

	switch (cls) {
	case InstanceBasicInformation: {
		INSTANCE_BASIC_INFORMATION b = { 0 };

		total = layout(sizeof(b), pc, 1);
		b.InstanceNameLength = (USHORT)pc[0].bytes;
		b.InstanceNameBufferOffset = (USHORT)pc[0].at;
		return emit(&b, sizeof(b), pc, 1, total, buf, size, ret);
	}
	case InstancePartialInformation: {
		INSTANCE_PARTIAL_INFORMATION p = { 0 };

		total = layout(sizeof(p), pc, 2);
		p.InstanceNameLength = (USHORT)pc[0].bytes;
		p.InstanceNameBufferOffset = (USHORT)pc[0].at;
		p.AltitudeLength = (USHORT)pc[1].bytes;
		p.AltitudeBufferOffset = (USHORT)pc[1].at;
		return emit(&p, sizeof(p), pc, 2, total, buf, size, ret);
	}
	case InstanceFullInformation: {
		INSTANCE_FULL_INFORMATION f = { 0 };

		total = layout(sizeof(f), pc, 4);
		f.InstanceNameLength = (USHORT)pc[0].bytes;
		f.InstanceNameBufferOffset = (USHORT)pc[0].at;
		f.AltitudeLength = (USHORT)pc[1].bytes;
		f.AltitudeBufferOffset = (USHORT)pc[1].at;
		f.VolumeNameLength = (USHORT)pc[2].bytes;
		f.VolumeNameBufferOffset = (USHORT)pc[2].at;
		f.FilterNameLength = (USHORT)pc[3].bytes;
		f.FilterNameBufferOffset = (USHORT)pc[3].at;
		return emit(&f, sizeof(f), pc, 4, total, buf, size, ret);
	}
	case InstanceAggregateStandardInformation: {
		INSTANCE_AGGREGATE_STANDARD_INFORMATION a = { 0 };

		total = layout(sizeof(a), pc, 4);
		a.Flags = FLTFL_IASI_IS_MINIFILTER;
		a.Type.MiniFilter.VolumeFileSystemType = fs;
		a.Type.MiniFilter.InstanceNameLength = (USHORT)pc[0].bytes;
		a.Type.MiniFilter.InstanceNameBufferOffset = (USHORT)pc[0].at;
		a.Type.MiniFilter.AltitudeLength = (USHORT)pc[1].bytes;
		a.Type.MiniFilter.AltitudeBufferOffset = (USHORT)pc[1].at;
		a.Type.MiniFilter.VolumeNameLength = (USHORT)pc[2].bytes;
		a.Type.MiniFilter.VolumeNameBufferOffset = (USHORT)pc[2].at;
		a.Type.MiniFilter.FilterNameLength = (USHORT)pc[3].bytes;
		a.Type.MiniFilter.FilterNameBufferOffset = (USHORT)pc[3].at;
		return emit(&a, sizeof(a), pc, 4, total, buf, size, ret);
	}
	default:
		return E_INVALIDARG;
	}
}

static HRESULT volume_fill(const struct fltport_volume_info *v, int cls, LPVOID buf, DWORD size,
			   LPDWORD ret)
{
	struct piece pc[1] = { { .s = v->mount_point } };
	size_t total;

	switch (cls) {
	case FilterVolumeBasicInformation: {
		FILTER_VOLUME_BASIC_INFORMATION b = { 0 };
		size_t at = offsetof(FILTER_VOLUME_BASIC_INFORMATION, FilterVolumeName);

		total = layout(at, pc, 1);
		b.FilterVolumeNameLength = (USHORT)pc[0].bytes;
		return emit(&b, at, pc, 1, total, buf, size, ret);
	}
	case FilterVolumeStandardInformation: {
		FILTER_VOLUME_STANDARD_INFORMATION s = { 0 };
		size_t at = offsetof(FILTER_VOLUME_STANDARD_INFORMATION, FilterVolumeName);

		total = layout(at, pc, 1);
		s.FileSystemType = fpw_fs_type(v->fstype);
		s.FilterVolumeNameLength = (USHORT)pc[0].bytes;
		return emit(&s, at, pc, 1, total, buf, size, ret);
	}
	default:
		return E_INVALIDARG;
	}
}

/* The file-system type of the volume an instance is on (volumes fetched
 * once per handle; m->lock held, or m not yet shared). */
static FLT_FILESYSTEM_TYPE instance_fs(struct mg *m, const struct fltport_instance_info *ii)
{
	if (!m->volumes && fltport_mgmt_volumes(&m->volumes, &m->nvolumes) < 0) {
		m->volumes = NULL;
		m->nvolumes = 0;
	}
	for (size_t i = m->nvolumes; i-- > 0;)
		if (strcmp(m->volumes[i].mount_point, ii->volume) == 0)
			return fpw_fs_type(m->volumes[i].fstype);
	return FLT_FSTYPE_UNKNOWN;
}

/* Entry i of a search (m->lock held, or m not yet shared). */
static HRESULT entry_fill(struct mg *m, size_t i, int cls, LPVOID buf, DWORD size, LPDWORD ret)
{
	switch (m->type) {
	case MG_FILTER_FIND:
		return filter_fill(&m->filters[i], cls, buf, size, ret);
	case MG_INSTANCE_FIND:
	case MG_VOLINST_FIND:
		return instance_fill(&m->instances[i], instance_fs(m, &m->instances[i]), cls, buf,
				     size, ret);
	case MG_VOLUME_FIND:
		return volume_fill(&m->volumes[i], cls, buf, size, ret);
	default:
		return E_HANDLE;
	}
}

/* ---- searches ---- */

static int valid_class(enum mg_type type, int cls)
{
	switch (type) {
	case MG_FILTER_FIND:
		return cls >= FilterFullInformation && cls <= FilterAggregateStandardInformation;
	case MG_VOLUME_FIND:
		return cls >= FilterVolumeBasicInformation &&
		       cls <= FilterVolumeStandardInformation;
	default:
		return cls >= InstanceBasicInformation &&
		       cls <= InstanceAggregateStandardInformation;
	}
}

/* Hand out the first entry of a snapshot and a handle on the rest; m is
 * consumed. */
static HRESULT find_first(struct mg *m, int cls, LPVOID buf, DWORD size, LPDWORD ret, LPHANDLE out)
{
	HRESULT hr;
	HANDLE h;

	if (m->count == 0) {
		fpw_obj_put(&m->obj);
		return HR_NO_MORE;
	}
	hr = entry_fill(m, 0, cls, buf, size, ret);
	if (hr != S_OK) {
		fpw_obj_put(&m->obj);
		return hr;
	}
	m->next = 1;
	h = fpw_handle_new(&m->obj);
	if (!h)
		return E_OUTOFMEMORY;
	*out = h;
	return S_OK;
}

static HRESULT find_next(HANDLE h, enum mg_type type, int cls, LPVOID buf, DWORD size, LPDWORD ret)
{
	struct mg *m = mg_get(h, type);
	HRESULT hr;

	if (!m)
		return E_HANDLE;
	if (!ret || (!buf && size) || !valid_class(type, cls)) {
		fpw_obj_put(&m->obj);
		return E_INVALIDARG;
	}
	pthread_mutex_lock(&m->lock);
	if (m->next >= m->count) {
		hr = HR_NO_MORE;
	} else {
		/* A buffer too small leaves the search on this entry. */
		hr = entry_fill(m, m->next, cls, buf, size, ret);
		if (hr == S_OK)
			m->next++;
	}
	pthread_mutex_unlock(&m->lock);
	fpw_obj_put(&m->obj);
	return hr;
}

static HRESULT handle_close(HANDLE h, enum mg_type type)
{
	struct mg *m = mg_get(h, type);

	if (!m)
		return E_HANDLE;
	fpw_obj_put(&m->obj);
	return CloseHandle(h) ? S_OK : E_HANDLE;
}

/* Common argument checks of the *FindFirst calls. */
static HRESULT first_args(enum mg_type type, int cls, LPVOID buf, DWORD size, LPDWORD ret,
			  LPHANDLE out)
{
	if (out)
		*out = INVALID_HANDLE_VALUE;
	if (!out || !ret || (!buf && size) || !valid_class(type, cls))
		return E_INVALIDARG;
	return S_OK;
}

/* By the digits, not strtod: strtod follows LC_NUMERIC, and where the
 * decimal point is ',' it reads "370030.5" as 370030, so that two
 * altitudes differing only in the fraction would compare equal.  Digits
 * are also exact at any length. */
int fpw_altitude_cmp(const char *a, const char *b)
{
	static const char digits[] = "0123456789";
	size_t la, lb;
	int c;

	while (*a == '0')
		a++;
	while (*b == '0')
		b++;
	la = strspn(a, digits);
	lb = strspn(b, digits);
	if (la != lb)
		return la < lb ? -1 : 1;
	c = memcmp(a, b, la);
	if (c != 0)
		return c < 0 ? -1 : 1;
	a += la + (a[la] == '.');
	b += lb + (b[lb] == '.');
	la = strspn(a, digits);
	lb = strspn(b, digits);
	for (size_t i = 0; i < la || i < lb; i++) {
		char da = i < la ? a[i] : '0', db = i < lb ? b[i] : '0';

		if (da != db)
			return da < db ? -1 : 1;
	}
	return 0;
}

/* Filters by decreasing altitude: the one farthest from the file system
 * first, as FltMgr lists them. */
static int by_altitude_f(const void *a, const void *b)
{
	const struct fltport_filter_info *x = a, *y = b;
	int c = fpw_altitude_cmp(y->altitude, x->altitude);

	return c != 0 ? c : strcmp(x->name, y->name);
}

static int by_altitude_i(const void *a, const void *b)
{
	const struct fltport_instance_info *x = a, *y = b;
	int c = fpw_altitude_cmp(y->altitude, x->altitude);

	return c != 0 ? c : strcmp(x->name, y->name);
}

FLTPORT_WINAPI HRESULT FilterFindFirst(FILTER_INFORMATION_CLASS cls, LPVOID buf, DWORD size,
				       LPDWORD ret, LPHANDLE out)
{
	HRESULT hr = first_args(MG_FILTER_FIND, cls, buf, size, ret, out);
	size_t denied = 0;
	struct mg *m;
	int rc;

	if (hr != S_OK)
		return hr;
	m = mg_new(MG_FILTER_FIND);
	if (!m)
		return E_OUTOFMEMORY;
	rc = fltport_mgmt_filters(&m->filters, &m->count, &denied);
	if (rc < 0) {
		fpw_obj_put(&m->obj);
		return mgmt_hr(rc, E_FAIL);
	}
	/* Only what refused us runs: as Windows to a user who is not an
	 * administrator. */
	if (m->count == 0 && denied > 0) {
		fpw_obj_put(&m->obj);
		return E_ACCESSDENIED;
	}
	qsort(m->filters, m->count, sizeof(*m->filters), by_altitude_f);
	return find_first(m, cls, buf, size, ret, out);
}

FLTPORT_WINAPI HRESULT FilterFindNext(HANDLE h, FILTER_INFORMATION_CLASS cls, LPVOID buf,
				      DWORD size, LPDWORD ret)
{
	return find_next(h, MG_FILTER_FIND, cls, buf, size, ret);
}

FLTPORT_WINAPI HRESULT FilterFindClose(HANDLE h)
{
	return handle_close(h, MG_FILTER_FIND);
}

/* The instances of one filter: FILTER_NOT_FOUND if it does not run. */
static HRESULT filter_instances(const char *filter, struct fltport_instance_info **out,
				size_t *count)
{
	struct fltport_filter_info fi;
	int rc = fltport_mgmt_filter(filter, &fi);

	if (rc < 0)
		return mgmt_hr(rc, E_FAIL);
	rc = fltport_mgmt_instances(filter, out, count, NULL);
	return rc < 0 ? mgmt_hr(rc, E_FAIL) : S_OK;
}

FLTPORT_WINAPI HRESULT FilterInstanceFindFirst(LPCWSTR filter, INSTANCE_INFORMATION_CLASS cls,
					       LPVOID buf, DWORD size, LPDWORD ret, LPHANDLE out)
{
	HRESULT hr = first_args(MG_INSTANCE_FIND, cls, buf, size, ret, out);
	struct mg *m;

	if (hr != S_OK)
		return hr;
	m = mg_new(MG_INSTANCE_FIND);
	if (!m)
		return E_OUTOFMEMORY;
	if (!utf8_of(filter, m->filter, sizeof(m->filter)))
		hr = flt_hr(STATUS_FLT_FILTER_NOT_FOUND);
	else
		hr = filter_instances(m->filter, &m->instances, &m->count);
	if (hr != S_OK) {
		fpw_obj_put(&m->obj);
		return hr;
	}
	qsort(m->instances, m->count, sizeof(*m->instances), by_altitude_i);
	return find_first(m, cls, buf, size, ret, out);
}

FLTPORT_WINAPI HRESULT FilterInstanceFindNext(HANDLE h, INSTANCE_INFORMATION_CLASS cls, LPVOID buf,
					      DWORD size, LPDWORD ret)
{
	return find_next(h, MG_INSTANCE_FIND, cls, buf, size, ret);
}

FLTPORT_WINAPI HRESULT FilterInstanceFindClose(HANDLE h)
{
	return handle_close(h, MG_INSTANCE_FIND);
}

FLTPORT_WINAPI HRESULT FilterVolumeFindFirst(FILTER_VOLUME_INFORMATION_CLASS cls, LPVOID buf,
					     DWORD size, LPDWORD ret, PHANDLE out)
{
	HRESULT hr = first_args(MG_VOLUME_FIND, cls, buf, size, ret, out);
	struct mg *m;
	int rc;

	if (hr != S_OK)
		return hr;
	m = mg_new(MG_VOLUME_FIND);
	if (!m)
		return E_OUTOFMEMORY;
	rc = fltport_mgmt_volumes(&m->volumes, &m->count);
	if (rc < 0) {
		fpw_obj_put(&m->obj);
		return mgmt_hr(rc, E_FAIL);
	}
	m->nvolumes = m->count;
	return find_first(m, cls, buf, size, ret, out);
}

FLTPORT_WINAPI HRESULT FilterVolumeFindNext(HANDLE h, FILTER_VOLUME_INFORMATION_CLASS cls,
					    LPVOID buf, DWORD size, LPDWORD ret)
{
	return find_next(h, MG_VOLUME_FIND, cls, buf, size, ret);
}

FLTPORT_WINAPI HRESULT FilterVolumeFindClose(HANDLE h)
{
	return handle_close(h, MG_VOLUME_FIND);
}

/* Keep the instances on mount point `mp`, compacted to the front. */
static size_t keep_volume(struct fltport_instance_info *ii, size_t n, const char *mp)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(ii[i].volume, mp) != 0)
			continue;
		if (k != i)
			ii[k] = ii[i];
		k++;
	}
	return k;
}

FLTPORT_WINAPI HRESULT FilterVolumeInstanceFindFirst(LPCWSTR volume, INSTANCE_INFORMATION_CLASS cls,
						     LPVOID buf, DWORD size, LPDWORD ret,
						     LPHANDLE out)
{
	HRESULT hr = first_args(MG_VOLINST_FIND, cls, buf, size, ret, out);
	struct mg *m;
	size_t idx, n = 0, denied = 0;
	int rc;

	if (hr != S_OK)
		return hr;
	m = mg_new(MG_VOLINST_FIND);
	if (!m)
		return E_OUTOFMEMORY;
	hr = find_volume(volume, &m->volumes, &m->nvolumes, &idx);
	if (hr != S_OK) {
		fpw_obj_put(&m->obj);
		return hr;
	}
	snprintf(m->volume, sizeof(m->volume), "%s", m->volumes[idx].mount_point);
	rc = fltport_mgmt_instances(NULL, &m->instances, &n, &denied);
	if (rc < 0) {
		fpw_obj_put(&m->obj);
		return mgmt_hr(rc, E_FAIL);
	}
	m->count = keep_volume(m->instances, n, m->volume);
	if (m->count == 0 && denied > 0) { /* as FilterFindFirst */
		fpw_obj_put(&m->obj);
		return E_ACCESSDENIED;
	}
	/* Top of the stack first, as FltMgr lists a volume's instances. */
	qsort(m->instances, m->count, sizeof(*m->instances), by_altitude_i);
	return find_first(m, cls, buf, size, ret, out);
}

FLTPORT_WINAPI HRESULT FilterVolumeInstanceFindNext(HANDLE h, INSTANCE_INFORMATION_CLASS cls,
						    LPVOID buf, DWORD size, LPDWORD ret)
{
	return find_next(h, MG_VOLINST_FIND, cls, buf, size, ret);
}

FLTPORT_WINAPI HRESULT FilterVolumeInstanceFindClose(HANDLE h)
{
	return handle_close(h, MG_VOLINST_FIND);
}

/* ---- filter and instance handles ---- */

FLTPORT_WINAPI HRESULT FilterCreate(LPCWSTR filter, HFILTER *out)
{
	struct fltport_filter_info fi;
	struct mg *m;
	HANDLE h;
	int rc;

	if (out)
		*out = INVALID_HANDLE_VALUE;
	if (!out || !filter)
		return E_INVALIDARG;
	m = mg_new(MG_FILTER);
	if (!m)
		return E_OUTOFMEMORY;
	if (!utf8_of(filter, m->filter, sizeof(m->filter))) {
		fpw_obj_put(&m->obj);
		return flt_hr(STATUS_FLT_FILTER_NOT_FOUND);
	}
	rc = fltport_mgmt_filter(m->filter, &fi);
	if (rc < 0) {
		fpw_obj_put(&m->obj);
		return mgmt_hr(rc, E_FAIL);
	}
	h = fpw_handle_new(&m->obj);
	if (!h)
		return E_OUTOFMEMORY;
	*out = h;
	return S_OK;
}

/* fltlib's FilterClose is CloseHandle: it closes a port handle too. */
FLTPORT_WINAPI HRESULT FilterClose(HFILTER h)
{
	return CloseHandle(h) ? S_OK : E_HANDLE;
}

FLTPORT_WINAPI HRESULT FilterGetInformation(HFILTER h, FILTER_INFORMATION_CLASS cls, LPVOID buf,
					    DWORD size, LPDWORD ret)
{
	struct mg *m = mg_get(h, MG_FILTER);
	struct fltport_filter_info fi;
	HRESULT hr;
	int rc;

	if (!m)
		return E_HANDLE;
	if (!ret || (!buf && size) || !valid_class(MG_FILTER_FIND, cls)) {
		fpw_obj_put(&m->obj);
		return E_INVALIDARG;
	}
	rc = fltport_mgmt_filter(m->filter, &fi);
	hr = rc < 0 ? mgmt_hr(rc, E_FAIL) : filter_fill(&fi, cls, buf, size, ret);
	fpw_obj_put(&m->obj);
	return hr;
}

/* Index of the instance of m->filter on m->volume named m->instance (the
 * highest one if m->instance is ""), in a fresh listing; the caller frees
 * *ii.  INSTANCE_NOT_FOUND when it is not there (any more). */
static HRESULT instance_lookup(struct mg *m, struct fltport_instance_info **ii, size_t *idx)
{
	size_t n = 0;
	HRESULT hr = filter_instances(m->filter, ii, &n);

	if (hr != S_OK)
		return hr;
	n = keep_volume(*ii, n, m->volume);
	qsort(*ii, n, sizeof(**ii), by_altitude_i);
	for (size_t i = 0; i < n; i++) {
		if (!m->instance[0] || strcmp((*ii)[i].name, m->instance) == 0) {
			*idx = i;
			return S_OK;
		}
	}
	fltport_mgmt_free(*ii);
	*ii = NULL;
	return flt_hr(STATUS_FLT_INSTANCE_NOT_FOUND);
}

/* Fill m->filter, m->volume (the mount point) and m->instance from a
 * caller's names, checking that the filter runs and the volume exists. */
static HRESULT names_of(struct mg *m, LPCWSTR filter, LPCWSTR volume, LPCWSTR instance)
{
	struct fltport_volume_info *vols;
	struct fltport_filter_info fi;
	size_t nvols, idx;
	HRESULT hr;
	int rc;

	if (!utf8_of(filter, m->filter, sizeof(m->filter)))
		return flt_hr(STATUS_FLT_FILTER_NOT_FOUND);
	rc = fltport_mgmt_filter(m->filter, &fi);
	if (rc < 0)
		return mgmt_hr(rc, E_FAIL);
	hr = find_volume(volume, &vols, &nvols, &idx);
	if (hr != S_OK)
		return hr;
	snprintf(m->volume, sizeof(m->volume), "%s", vols[idx].mount_point);
	fltport_mgmt_free(vols);
	if (instance && !utf8_of(instance, m->instance, sizeof(m->instance)))
		return flt_hr(STATUS_FLT_INSTANCE_NOT_FOUND);
	return S_OK;
}

FLTPORT_WINAPI HRESULT FilterInstanceCreate(LPCWSTR filter, LPCWSTR volume, LPCWSTR instance,
					    HFILTER_INSTANCE *out)
{
	struct fltport_instance_info *ii = NULL;
	struct mg *m;
	size_t idx;
	HRESULT hr;
	HANDLE h;

	if (out)
		*out = INVALID_HANDLE_VALUE;
	if (!out || !filter || !volume)
		return E_INVALIDARG;
	m = mg_new(MG_INSTANCE);
	if (!m)
		return E_OUTOFMEMORY;
	hr = names_of(m, filter, volume, instance);
	if (hr == S_OK)
		hr = instance_lookup(m, &ii, &idx);
	if (hr != S_OK) {
		fpw_obj_put(&m->obj);
		return hr;
	}
	/* The handle names this very instance from now on. */
	snprintf(m->instance, sizeof(m->instance), "%s", ii[idx].name);
	fltport_mgmt_free(ii);
	h = fpw_handle_new(&m->obj);
	if (!h)
		return E_OUTOFMEMORY;
	*out = h;
	return S_OK;
}

FLTPORT_WINAPI HRESULT FilterInstanceClose(HFILTER_INSTANCE h)
{
	return handle_close(h, MG_INSTANCE);
}

FLTPORT_WINAPI HRESULT FilterInstanceGetInformation(HFILTER_INSTANCE h,
						    INSTANCE_INFORMATION_CLASS cls, LPVOID buf,
						    DWORD size, LPDWORD ret)
{
	struct mg *m = mg_get(h, MG_INSTANCE);
	struct fltport_instance_info *ii = NULL;
	size_t idx;
	HRESULT hr;

	if (!m)
		return E_HANDLE;
	if (!ret || (!buf && size) || !valid_class(MG_INSTANCE, cls)) {
		fpw_obj_put(&m->obj);
		return E_INVALIDARG;
	}
	hr = instance_lookup(m, &ii, &idx);
	/* The instance's filter gone: so is the instance. */
	if (hr == flt_hr(STATUS_FLT_FILTER_NOT_FOUND))
		hr = flt_hr(STATUS_FLT_INSTANCE_NOT_FOUND);
	if (hr == S_OK) {
		pthread_mutex_lock(&m->lock);
		hr = instance_fill(&ii[idx], instance_fs(m, &ii[idx]), cls, buf, size, ret);
		pthread_mutex_unlock(&m->lock);
		fltport_mgmt_free(ii);
	}
	fpw_obj_put(&m->obj);
	return hr;
}

/* ---- attach, detach ---- */

/* An altitude is a decimal number ("385100", "370030.5"). */
static bool altitude_valid(const char *a)
{
	bool digits = false, dot = false;

	for (; *a; a++) {
		if (*a >= '0' && *a <= '9')
			digits = true;
		else if (*a == '.' && !dot)
			dot = true;
		else
			return false;
	}
	return digits;
}

/* An instance name is shown and passed around as text: no control
 * characters (the length is bounded by the buffer it fits in). */
static bool instance_name_valid(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7F)
			return false;
	return true;
}

/* Windows' rules for a new instance on a volume (FltAttachVolumeAtAltitude):
 * instance names are unique on a volume, and so are altitudes.  (Beyond
 * them, the native engine has one instance per filter and file system: a
 * second one with another name and altitude is -EEXIST.) */
static HRESULT collisions(const char *volume, const char *instance, const char *altitude)
{
	struct fltport_instance_info *ii = NULL;
	size_t n = 0;
	HRESULT hr = S_OK;
	int rc = fltport_mgmt_instances(NULL, &ii, &n, NULL);

	if (rc < 0)
		return mgmt_hr(rc, E_FAIL);
	n = keep_volume(ii, n, volume);
	for (size_t i = 0; i < n && hr == S_OK; i++) {
		if (strcmp(ii[i].name, instance) == 0)
			hr = flt_hr(STATUS_FLT_INSTANCE_NAME_COLLISION);
		else if (fpw_altitude_cmp(ii[i].altitude, altitude) == 0)
			hr = flt_hr(STATUS_FLT_INSTANCE_ALTITUDE_COLLISION);
	}
	fltport_mgmt_free(ii);
	return hr;
}

static HRESULT attach(LPCWSTR filter, LPCWSTR volume, LPCWSTR walt, LPCWSTR instance,
		      DWORD created_len, LPWSTR created)
{
	char altitude[FLTPORT_ALTITUDE_MAX + 1];
	struct fltport_filter_info fi;
	struct mg *m;
	size_t need;
	HRESULT hr;
	int rc;

	if (!filter || !volume)
		return E_INVALIDARG;
	m = mg_new(MG_INSTANCE); /* only for its name fields */
	if (!m)
		return E_OUTOFMEMORY;
	hr = names_of(m, filter, volume, NULL);
	if (hr != S_OK)
		goto out;
	if (instance) {
		if (!utf8_of(instance, m->instance, sizeof(m->instance)) ||
		    !instance_name_valid(m->instance)) {
			hr = HRESULT_FROM_WIN32(ERROR_INVALID_NAME);
			goto out;
		}
	} else if ((size_t)snprintf(m->instance, sizeof(m->instance), "%s Instance", m->filter) >=
		   sizeof(m->instance)) {
		hr = HRESULT_FROM_WIN32(ERROR_INVALID_NAME);
		goto out;
	}
	/* Check the caller can have the name before attaching anything. */
	need = (wchars(m->instance) + 1) * sizeof(WCHAR);
	if (created && created_len < need) {
		hr = HR_TOO_SMALL;
		goto out;
	}
	if (walt) {
		if (!utf8_of(walt, altitude, sizeof(altitude)) || !altitude_valid(altitude)) {
			hr = E_INVALIDARG;
			goto out;
		}
	} else {
		rc = fltport_mgmt_filter(m->filter, &fi);
		if (rc < 0) {
			hr = mgmt_hr(rc, E_FAIL);
			goto out;
		}
		snprintf(altitude, sizeof(altitude), "%s", fi.altitude);
	}
	hr = collisions(m->volume, m->instance, altitude);
	if (hr != S_OK)
		goto out;
	rc = fltport_mgmt_attach(m->filter, m->volume, m->instance, walt ? altitude : NULL, 0);
	/* Any other errno is the filter's: its instance setup refused. */
	hr = rc < 0 ? mgmt_hr(rc, flt_hr(STATUS_FLT_DO_NOT_ATTACH)) : S_OK;
	if (hr == S_OK && created) {
		size_t n = fpw_utf8_to_wname(m->instance, created, need / sizeof(WCHAR) - 1);

		created[n] = L'\0';
	}
out:
	fpw_obj_put(&m->obj);
	return hr;
}

FLTPORT_WINAPI HRESULT FilterAttach(LPCWSTR filter, LPCWSTR volume, LPCWSTR instance,
				    DWORD created_len, LPWSTR created)
{
	return attach(filter, volume, NULL, instance, created_len, created);
}

FLTPORT_WINAPI HRESULT FilterAttachAtAltitude(LPCWSTR filter, LPCWSTR volume, LPCWSTR altitude,
					      LPCWSTR instance, DWORD created_len, LPWSTR created)
{
	if (!altitude)
		return E_INVALIDARG;
	return attach(filter, volume, altitude, instance, created_len, created);
}

FLTPORT_WINAPI HRESULT FilterDetach(LPCWSTR filter, LPCWSTR volume, LPCWSTR instance)
{
	struct fltport_instance_info *ii = NULL;
	struct mg *m;
	size_t idx;
	HRESULT hr;
	int rc;

	if (!filter || !volume)
		return E_INVALIDARG;
	m = mg_new(MG_INSTANCE);
	if (!m)
		return E_OUTOFMEMORY;
	hr = names_of(m, filter, volume, instance);
	/* Name the instance: NULL means the highest one of the filter there. */
	if (hr == S_OK)
		hr = instance_lookup(m, &ii, &idx);
	if (hr == S_OK) {
		rc = fltport_mgmt_detach(m->filter, m->volume, ii[idx].name);
		hr = rc < 0 ? mgmt_hr(rc, flt_hr(STATUS_FLT_DO_NOT_DETACH)) : S_OK;
		fltport_mgmt_free(ii);
	}
	fpw_obj_put(&m->obj);
	return hr;
}

/* ---- names, load, unload ---- */

FLTPORT_WINAPI HRESULT FilterGetDosName(LPCWSTR volume, LPWSTR dos, DWORD cch)
{
	struct fltport_volume_info *vols;
	size_t nvols, idx, n;
	HRESULT hr;

	if (!volume || (!dos && cch))
		return E_INVALIDARG;
	hr = find_volume(volume, &vols, &nvols, &idx);
	if (hr != S_OK)
		return hr;
	n = wchars(vols[idx].mount_point);
	if (n + 1 > cch) {
		hr = HR_TOO_SMALL;
	} else {
		fpw_utf8_to_wname(vols[idx].mount_point, dos, n);
		dos[n] = L'\0';
	}
	fltport_mgmt_free(vols);
	return hr;
}

/* Loading or unloading needs root, as SeLoadDriverPrivilege on Windows;
 * then the running filter's state decides. */
static HRESULT load_check(LPCWSTR filter, bool *running)
{
	char name[FLTPORT_NAME_MAX + 1];
	struct fltport_filter_info fi;
	int rc;

	if (!filter || !filter[0])
		return E_INVALIDARG;
	if (geteuid() != 0)
		return HRESULT_FROM_WIN32(ERROR_PRIVILEGE_NOT_HELD);
	if (!utf8_of(filter, name, sizeof(name))) {
		*running = false;
		return S_OK;
	}
	rc = fltport_mgmt_filter(name, &fi);
	if (rc < 0 && rc != -ENOENT)
		return mgmt_hr(rc, E_FAIL);
	*running = rc == 0;
	return S_OK;
}

/* A filter is a process someone started, not a driver fltport can load. */
FLTPORT_WINAPI HRESULT FilterLoad(LPCWSTR filter)
{
	bool running;
	HRESULT hr = load_check(filter, &running);

	if (hr != S_OK)
		return hr;
	return running ? HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS)
		       : HRESULT_FROM_WIN32(ERROR_NOT_SUPPORTED);
}

/* Ending a filter process is its owner's business (a signal, systemctl
 * stop): only the Windows answer for a filter that does not run applies. */
FLTPORT_WINAPI HRESULT FilterUnload(LPCWSTR filter)
{
	bool running;
	HRESULT hr = load_check(filter, &running);

	if (hr != S_OK)
		return hr;
	return running ? HRESULT_FROM_WIN32(ERROR_NOT_SUPPORTED)
		       : flt_hr(STATUS_FLT_FILTER_NOT_FOUND);
}
