/*
 * The process heap, pagefile-backed sections and their views, and
 * VirtualQuery (fltport_win32.h says what each call accepts).
 *
 * A heap block carries a header with its size, so that HeapSize and
 * HeapReAlloc(HEAP_ZERO_MEMORY) know the size asked for, and is listed in a
 * set of live blocks, so that a pointer from elsewhere (or freed already)
 * is refused instead of freed.  A section is a memfd; a view
 * an mmap of it, listed so that UnmapViewOfFile knows its length and
 * VirtualQuery its base.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compat/compat.h"

/* ---- heap ---- */

struct heap_block {
	SIZE_T size;
	max_align_t data[]; /* malloc's alignment, as HeapAlloc's */
};

/* A pseudo-handle: never an entry of the handle table. */
static char process_heap;

/*
 * The live blocks: an open-addressing set of their data pointers, so that a
 * pointer is looked up before anything is read at it — a foreign pointer
 * or a block freed already is refused, never touched.
 */
#define SLOT_EMPTY ((uintptr_t)0)
#define SLOT_GONE ((uintptr_t)1) /* a removed entry (pointers are aligned) */

static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *slots;
static size_t nslots, nused, nlive; /* nused: live and removed entries */

static size_t slot_of(uintptr_t p)
{
	return (size_t)(((uint64_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 17) & (nslots - 1);
}

/* The slot of p, or SIZE_MAX.  heap_lock held. */
static size_t block_find(const void *p)
{
	if (!nslots || !p)
		return SIZE_MAX;
	for (size_t i = slot_of((uintptr_t)p);; i = (i + 1) & (nslots - 1)) {
		if (slots[i] == (uintptr_t)p)
			return i;
		if (slots[i] == SLOT_EMPTY)
			return SIZE_MAX;
	}
}

/* Room for one more entry; false when memory is short.  heap_lock held. */
static bool block_reserve(void)
{
	uintptr_t *old = slots;
	size_t n = 64, oldn = nslots;

	if ((nused + 1) * 2 <= nslots)
		return true;
	while (n < (nlive + 1) * 4)
		n *= 2;
	slots = calloc(n, sizeof(*slots));
	if (!slots) {
		slots = old;
		return false;
	}
	nslots = n;
	nused = nlive;
	for (size_t i = 0; i < oldn; i++) {
		if (old[i] != SLOT_EMPTY && old[i] != SLOT_GONE) {
			size_t j = slot_of(old[i]);

			while (slots[j] != SLOT_EMPTY)
				j = (j + 1) & (nslots - 1);
			slots[j] = old[i];
		}
	}
	free(old);
	return true;
}

/* After block_reserve().  heap_lock held. */
static void block_add(const void *p)
{
	size_t i = slot_of((uintptr_t)p);

	while (slots[i] != SLOT_EMPTY && slots[i] != SLOT_GONE)
		i = (i + 1) & (nslots - 1);
	if (slots[i] == SLOT_EMPTY)
		nused++;
	slots[i] = (uintptr_t)p;
	nlive++;
}

static void block_remove(size_t i)
{
	slots[i] = SLOT_GONE;
	nlive--;
}

static struct heap_block *header_of(const void *p)
{
	return (struct heap_block *)((char *)(uintptr_t)p - offsetof(struct heap_block, data));
}

FLTPORT_WINAPI HANDLE GetProcessHeap(void)
{
	return (HANDLE)&process_heap;
}

FLTPORT_WINAPI LPVOID HeapAlloc(HANDLE heap, DWORD flags, SIZE_T n)
{
	struct heap_block *b = NULL;

	if (heap != (HANDLE)&process_heap || n > SIZE_MAX - sizeof(*b))
		return NULL;
	pthread_mutex_lock(&heap_lock);
	if (block_reserve()) {
		b = (flags & HEAP_ZERO_MEMORY) ? calloc(1, sizeof(*b) + n) : malloc(sizeof(*b) + n);
		if (b) {
			b->size = n;
			block_add(b->data);
		}
	}
	pthread_mutex_unlock(&heap_lock);
	return b ? b->data : NULL;
}

FLTPORT_WINAPI LPVOID HeapReAlloc(HANDLE heap, DWORD flags, LPVOID mem, SIZE_T n)
{
	struct heap_block *b, *nb = NULL;
	size_t i;

	if (heap != (HANDLE)&process_heap || n > SIZE_MAX - sizeof(*b))
		return NULL;
	pthread_mutex_lock(&heap_lock);
	i = block_find(mem);
	if (i == SIZE_MAX) {
		pthread_mutex_unlock(&heap_lock);
		return NULL;
	}
	b = header_of(mem);
	if (flags & HEAP_REALLOC_IN_PLACE_ONLY) {
		if (n <= b->size) {
			b->size = n;
			nb = b;
		}
	} else if (block_reserve()) {
		SIZE_T old = b->size;

		i = block_find(mem); /* the set may have been rebuilt */
		nb = realloc(b, sizeof(*b) + n);
		if (nb) {
			if ((flags & HEAP_ZERO_MEMORY) && n > old)
				memset((char *)nb->data + old, 0, n - old);
			nb->size = n;
			block_remove(i);
			block_add(nb->data);
		}
	}
	pthread_mutex_unlock(&heap_lock);
	return nb ? nb->data : NULL;
}

FLTPORT_WINAPI BOOL HeapFree(HANDLE heap, DWORD flags, LPVOID mem)
{
	size_t i;

	(void)flags;
	if (heap != (HANDLE)&process_heap) {
		SetLastError(ERROR_INVALID_HANDLE);
		return FALSE;
	}
	if (!mem)
		return TRUE;
	pthread_mutex_lock(&heap_lock);
	i = block_find(mem);
	if (i != SIZE_MAX)
		block_remove(i);
	pthread_mutex_unlock(&heap_lock);
	if (i == SIZE_MAX) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	free(header_of(mem));
	return TRUE;
}

FLTPORT_WINAPI SIZE_T HeapSize(HANDLE heap, DWORD flags, LPCVOID mem)
{
	SIZE_T n = (SIZE_T)-1;

	(void)flags;
	if (heap != (HANDLE)&process_heap)
		return n;
	pthread_mutex_lock(&heap_lock);
	if (block_find(mem) != SIZE_MAX)
		n = header_of(mem)->size;
	pthread_mutex_unlock(&heap_lock);
	return n;
}

/* ---- sections ---- */

#define ALLOCATION_GRANULARITY 65536u

struct section {
	struct fpw_obj obj;
	int fd;
	uint64_t size;
	DWORD protect; /* PAGE_READONLY, PAGE_READWRITE or PAGE_WRITECOPY */
};

struct view {
	struct view *next;
	uintptr_t base;
	size_t len;
	DWORD protect; /* the view's, as VirtualQuery's AllocationProtect */
	dev_t dev;     /* the mapped file's (SetEndOfFile asks) */
	ino_t ino;
	bool alloc; /* a VirtualAlloc region, not a view */
};

static pthread_mutex_t views_lock = PTHREAD_MUTEX_INITIALIZER;
static struct view *views;

static void section_destroy(struct fpw_obj *o)
{
	struct section *s = (struct section *)o;

	close(s->fd);
	free(s);
}

/* The fd a section of the file behind `file` maps (a copy, so that the
 * section outlives the file handle, as on Windows), its size settled:
 * 0 asks for the file's size; a larger one grows a file mapped writable.
 * -1 with the last error set. */
static int file_section_fd(HANDLE file, DWORD page, uint64_t *size)
{
	struct fpw_obj *o = fpw_handle_get(file, FPW_FILE);
	DWORD err = ERROR_SUCCESS;
	bool rd, wr;
	struct stat st;
	int ffd, fd = -1;

	if (!o)
		return -1;
	ffd = fpw_file_fd(o, &rd, &wr);
	if (!rd || (page == PAGE_READWRITE && !wr))
		err = ERROR_ACCESS_DENIED;
	else if (fstat(ffd, &st) != 0 || !S_ISREG(st.st_mode))
		err = ERROR_INVALID_HANDLE;
	else if (*size == 0 && st.st_size == 0)
		err = ERROR_FILE_INVALID; /* a mapping of nothing */
	if (!err && *size == 0)
		*size = (uint64_t)st.st_size;
	if (!err && *size > (uint64_t)st.st_size) {
		/* Windows grows the file when the pages are writable, and
		 * refuses a section larger than a file it may not grow. */
		if (page != PAGE_READWRITE)
			err = ERROR_NOT_ENOUGH_MEMORY;
		else if ((uint64_t)(off_t)*size != *size || ftruncate(ffd, (off_t)*size) != 0)
			err = fpw_errno_to_win32(errno);
	}
	if (!err) {
		fd = fcntl(ffd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			err = fpw_errno_to_win32(errno);
	}
	fpw_obj_put(o);
	if (err)
		SetLastError(err);
	return fd;
}

static HANDLE create_mapping(HANDLE file, DWORD protect, DWORD high, DWORD low, bool named)
{
	uint64_t size = ((uint64_t)high << 32) | low;
	DWORD page = protect & ~(DWORD)SEC_COMMIT;
	struct section *s;
	int fd;

	if (named) {
		SetLastError(ERROR_NOT_SUPPORTED);
		return NULL;
	}
	if ((size == 0 && file == INVALID_HANDLE_VALUE) ||
	    (page != PAGE_READONLY && page != PAGE_READWRITE && page != PAGE_WRITECOPY)) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	if (file != INVALID_HANDLE_VALUE) {
		fd = file_section_fd(file, page, &size);
		if (fd < 0)
			return NULL;
	} else {
		fd = -1;
	}
	if (size > (uint64_t)SIZE_MAX || (uint64_t)(off_t)size != size || (off_t)size < 0) {
		if (fd >= 0)
			close(fd);
		SetLastError(ERROR_NOT_ENOUGH_MEMORY); /* more than this process can map */
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		if (fd >= 0)
			close(fd);
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	if (fd < 0) {
		fd = memfd_create("fltport-section", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
			SetLastError(errno == ENOMEM || errno == EFBIG ? ERROR_NOT_ENOUGH_MEMORY
								       : ERROR_NO_SYSTEM_RESOURCES);
			if (fd >= 0)
				close(fd);
			free(s);
			return NULL;
		}
	}
	s->fd = fd;
	s->size = size;
	s->protect = page;
	fpw_obj_init(&s->obj, FPW_SECTION, NULL, section_destroy);
	SetLastError(ERROR_SUCCESS);
	return fpw_handle_new(&s->obj);
}

FLTPORT_WINAPI HANDLE CreateFileMappingA(HANDLE file, LPSECURITY_ATTRIBUTES sa, DWORD protect,
					 DWORD high, DWORD low, LPCSTR name)
{
	(void)sa;
	return create_mapping(file, protect, high, low, name && name[0]);
}

FLTPORT_WINAPI HANDLE CreateFileMappingW(HANDLE file, LPSECURITY_ATTRIBUTES sa, DWORD protect,
					 DWORD high, DWORD low, LPCWSTR name)
{
	(void)sa;
	return create_mapping(file, protect, high, low, name && name[0]);
}

FLTPORT_WINAPI LPVOID MapViewOfFile(HANDLE h, DWORD access, DWORD high, DWORD low, SIZE_T n)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_SECTION);
	struct section *s = (struct section *)o;
	uint64_t off = ((uint64_t)high << 32) | low;
	int prot, flags = MAP_SHARED;
	DWORD vprot, err = ERROR_SUCCESS;
	struct view *v = NULL;
	void *p = MAP_FAILED;
	struct stat st;
	dev_t dev = 0;
	ino_t ino = 0;

	if (!o)
		return NULL;
	if (access & FILE_MAP_EXECUTE) {
		err = ERROR_ACCESS_DENIED;
	} else if (access & FILE_MAP_WRITE) {
		/* FILE_MAP_ALL_ACCESS holds FILE_MAP_COPY's bit and means
		 * FILE_MAP_WRITE: copy-on-write only without the write bit. */
		prot = PROT_READ | PROT_WRITE;
		vprot = PAGE_READWRITE;
		if (s->protect != PAGE_READWRITE)
			err = ERROR_ACCESS_DENIED;
	} else if (access & FILE_MAP_COPY) {
		prot = PROT_READ | PROT_WRITE;
		flags = MAP_PRIVATE;
		vprot = PAGE_WRITECOPY;
	} else if (access & FILE_MAP_READ) {
		prot = PROT_READ;
		vprot = PAGE_READONLY;
	} else {
		err = ERROR_INVALID_PARAMETER;
	}
	if (!err && off % ALLOCATION_GRANULARITY != 0)
		err = ERROR_MAPPED_ALIGNMENT;
	if (!err && (off >= s->size || (n != 0 && n > s->size - off)))
		err = ERROR_ACCESS_DENIED;
	if (!err && fstat(s->fd, &st) == 0) {
		dev = st.st_dev;
		ino = st.st_ino;
	}
	if (!err) {
		if (n == 0)
			n = (SIZE_T)(s->size - off);
		v = malloc(sizeof(*v));
		if (v)
			p = mmap(NULL, n, prot, flags, s->fd, (off_t)off);
		if (!v || p == MAP_FAILED)
			err = ERROR_NOT_ENOUGH_MEMORY;
	}
	fpw_obj_put(o); /* the mapping keeps the memfd's pages */
	if (err) {
		free(v);
		SetLastError(err);
		return NULL;
	}
	v->base = (uintptr_t)p;
	v->len = n;
	v->protect = vprot;
	v->dev = dev;
	v->ino = ino;
	v->alloc = false;
	pthread_mutex_lock(&views_lock);
	v->next = views;
	views = v;
	pthread_mutex_unlock(&views_lock);
	return p;
}

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* The view holding addr (views_lock held), and the link to it. */
static struct view **region_at(uintptr_t addr)
{
	size_t ps = page_size();

	for (struct view **pv = &views; *pv; pv = &(*pv)->next) {
		uintptr_t end = (*pv)->base + ((*pv)->len + ps - 1) / ps * ps;

		if (addr >= (*pv)->base && addr < end)
			return pv;
	}
	return NULL;
}

/* The view (not VirtualAlloc region) holding addr.  views_lock held. */
static struct view **view_at(uintptr_t addr)
{
	struct view **pv = region_at(addr);

	return pv && !(*pv)->alloc ? pv : NULL;
}

static BOOL unmap_view(const void *addr)
{
	struct view **pv, *v = NULL;

	pthread_mutex_lock(&views_lock);
	pv = view_at((uintptr_t)addr);
	if (pv) {
		v = *pv;
		*pv = v->next;
	}
	pthread_mutex_unlock(&views_lock);
	if (!v) {
		SetLastError(ERROR_INVALID_ADDRESS);
		return FALSE;
	}
	munmap((void *)v->base, v->len);
	free(v);
	return TRUE;
}

bool fpw_file_mapped(dev_t dev, ino_t ino)
{
	bool found = false;

	pthread_mutex_lock(&views_lock);
	for (struct view *v = views; v && !found; v = v->next)
		found = v->dev == dev && v->ino == ino;
	pthread_mutex_unlock(&views_lock);
	return found;
}

FLTPORT_WINAPI BOOL UnmapViewOfFile(LPCVOID addr)
{
	return unmap_view(addr);
}

FLTPORT_WINAPI BOOL UnmapViewOfFileEx(PVOID addr, ULONG flags)
{
	if (flags & ~(ULONG)MEM_UNMAP_WITH_TRANSIENT_BOOST) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	return unmap_view(addr);
}

/* ---- VirtualQuery ---- */

/* The end of user space (one past its last address): x86-64's 47 bits,
 * other 64-bit ABIs' 48 (larger spaces serve only programs that ask for
 * addresses above these), all of a 32-bit space. */
#if UINTPTR_MAX > 0xFFFFFFFFu
#if defined(__x86_64__)
#define USER_SPACE_END ((uint64_t)1 << 47)
#else
#define USER_SPACE_END ((uint64_t)1 << 48)
#endif
#else
#define USER_SPACE_END ((uint64_t)UINTPTR_MAX + 1)
#endif

static DWORD page_protect(const char perms[4])
{
	bool r = perms[0] == 'r', w = perms[1] == 'w', x = perms[2] == 'x';

	if (x)
		return w ? PAGE_EXECUTE_READWRITE : r ? PAGE_EXECUTE_READ : PAGE_EXECUTE;
	if (w)
		return PAGE_READWRITE;
	return r ? PAGE_READONLY : PAGE_NOACCESS;
}

/*
 * One line of /proc/self/maps for addr: *start and *end of the region
 * holding it (found), else of the gap holding it (*end: the next region's
 * start, or USER_SPACE_END).  0, or -1 when the map cannot be read.
 */
static int map_region(uint64_t addr, uint64_t *start, uint64_t *end, char perms[5], bool *file,
		      bool *found)
{
	FILE *fp = fopen("/proc/self/maps", "re");
	uint64_t prev_end = 0;
	char line[4096];

	if (!fp)
		return -1;
	*found = false;
	*start = 0;
	*end = USER_SPACE_END;
	while (fgets(line, sizeof(line), fp)) {
		uint64_t lo, hi;
		char path[2] = "";
		int n = 0;

		if (!strchr(line, '\n')) { /* a long path: the rest is no line */
			int c;

			while ((c = getc(fp)) != EOF && c != '\n')
				;
		}
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %*s %*s %*s %n", &lo, &hi, perms,
			   &n) < 3)
			continue;
		if (n > 0 && line[n] != '\n' && line[n] != '\0')
			path[0] = line[n];
		if (lo >= USER_SPACE_END) /* x86-64's [vsyscall] page */
			break;
		if (addr < lo) {
			*start = prev_end;
			*end = lo;
			break;
		}
		if (addr < hi) {
			*start = lo;
			*end = hi;
			*file = path[0] == '/';
			*found = true;
			break;
		}
		prev_end = hi;
		*start = hi;
	}
	fclose(fp);
	return 0;
}

FLTPORT_WINAPI SIZE_T VirtualQuery(LPCVOID address, PMEMORY_BASIC_INFORMATION mbi, SIZE_T len)
{
	size_t ps = page_size();
	uint64_t addr = (uintptr_t)address / ps * ps, start, end;
	MEMORY_BASIC_INFORMATION m = { 0 };
	char perms[5] = "----";
	bool file = false, found;
	struct view **pv;

	if (len < sizeof(*mbi)) {
		SetLastError(ERROR_BAD_LENGTH);
		return 0;
	}
	if (!mbi) {
		SetLastError(ERROR_NOACCESS);
		return 0;
	}
	if (addr >= USER_SPACE_END) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return 0;
	}
	if (map_region(addr, &start, &end, perms, &file, &found) != 0) {
		SetLastError(ERROR_NOACCESS);
		return 0;
	}
	m.BaseAddress = (PVOID)(uintptr_t)addr;
	m.RegionSize = end - addr <= SIZE_MAX ? (SIZE_T)(end - addr) : SIZE_MAX / ps * ps;
	if (!found) {
		m.State = MEM_FREE;
		m.Protect = PAGE_NOACCESS;
		*mbi = m;
		return sizeof(*mbi);
	}
	m.AllocationBase = (PVOID)(uintptr_t)start;
	m.Protect = page_protect(perms);
	m.AllocationProtect = m.Protect;
	m.State = MEM_COMMIT;
	if (perms[3] == 's')
		m.Type = MEM_MAPPED;
	else if (file)
		m.Type = MEM_IMAGE;
	else
		m.Type = MEM_PRIVATE;
	if (m.Protect == PAGE_NOACCESS) {
		/* An inaccessible private region: address space held, as a
		 * reservation (guard gaps, PROT_NONE reservations). */
		m.State = MEM_RESERVE;
		m.Protect = 0;
	}
	pthread_mutex_lock(&views_lock);
	pv = region_at((uintptr_t)addr);
	if (pv) {
		uint64_t vend = (*pv)->base + ((*pv)->len + ps - 1) / ps * ps;

		if (end > vend) /* the kernel merged it with a neighbour */
			m.RegionSize = (SIZE_T)(vend - addr);
		m.AllocationBase = (PVOID)(*pv)->base;
		m.AllocationProtect = (*pv)->protect;
		m.Type = (*pv)->alloc ? MEM_PRIVATE : MEM_MAPPED;
		if ((*pv)->protect == PAGE_WRITECOPY && m.Protect == PAGE_READWRITE)
			m.Protect = PAGE_WRITECOPY;
	}
	pthread_mutex_unlock(&views_lock);
	*mbi = m;
	return sizeof(*mbi);
}

/* ---- VirtualAlloc ---- */

static int prot_of(DWORD protect)
{
	switch (protect) {
	case PAGE_NOACCESS:
		return PROT_NONE;
	case PAGE_READONLY:
		return PROT_READ;
	case PAGE_READWRITE:
		return PROT_READ | PROT_WRITE;
	case PAGE_EXECUTE:
		return PROT_EXEC;
	case PAGE_EXECUTE_READ:
		return PROT_READ | PROT_EXEC;
	case PAGE_EXECUTE_READWRITE:
		return PROT_READ | PROT_WRITE | PROT_EXEC;
	default:
		return -1; /* WRITECOPY, GUARD, NOCACHE...: not for private memory here */
	}
}

/* A new region of size bytes at a 64 KiB boundary (at `at` if not NULL),
 * reserved (PROT_NONE) or committed; MAP_FAILED on failure. */
static void *reserve(void *at, size_t size, int prot)
{
	size_t span;
	char *p, *base;

	if (at) {
		p = mmap(at, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p != MAP_FAILED && p != at) { /* an old kernel took it as a hint */
			munmap(p, size);
			return MAP_FAILED;
		}
		return p;
	}
	if (size > SIZE_MAX - ALLOCATION_GRANULARITY)
		return MAP_FAILED;
	span = size + ALLOCATION_GRANULARITY;
	p = mmap(NULL, span, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return p;
	base = (char *)(((uintptr_t)p + ALLOCATION_GRANULARITY - 1) &
			~(uintptr_t)(ALLOCATION_GRANULARITY - 1));
	if (base > p)
		munmap(p, (size_t)(base - p));
	if (p + span > base + size)
		munmap(base + size, (size_t)(p + span - (base + size)));
	return base;
}

FLTPORT_WINAPI LPVOID VirtualAlloc(LPVOID addr, SIZE_T size, DWORD type, DWORD protect)
{
	size_t ps = page_size();
	int prot = prot_of(protect);
	struct view **pv, *v;
	uintptr_t lo, hi;
	void *p;

	if (size == 0 || prot < 0 || !(type & (MEM_COMMIT | MEM_RESERVE)) ||
	    (type & ~(DWORD)(MEM_COMMIT | MEM_RESERVE | MEM_TOP_DOWN)) ||
	    size > UINTPTR_MAX - ALLOCATION_GRANULARITY - (uintptr_t)addr) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	if ((type & MEM_RESERVE) || !addr) {
		/* A new region: reserved only, or committed at once. */
		uintptr_t at = (uintptr_t)addr & ~(uintptr_t)(ALLOCATION_GRANULARITY - 1);
		size_t len = ((uintptr_t)addr + size - at + ps - 1) / ps * ps;

		if (addr && at == 0) {
			SetLastError(ERROR_INVALID_ADDRESS); /* below the first 64 KiB */
			return NULL;
		}
		if (!addr)
			len = (size + ps - 1) / ps * ps;
		v = malloc(sizeof(*v));
		if (!v) {
			SetLastError(ERROR_NOT_ENOUGH_MEMORY);
			return NULL;
		}
		p = reserve(addr ? (void *)at : NULL, len, (type & MEM_COMMIT) ? prot : PROT_NONE);
		if (p == MAP_FAILED) {
			free(v);
			SetLastError(addr ? ERROR_INVALID_ADDRESS : ERROR_NOT_ENOUGH_MEMORY);
			return NULL;
		}
		*v = (struct view){
			.base = (uintptr_t)p, .len = len, .protect = protect, .alloc = true
		};
		pthread_mutex_lock(&views_lock);
		v->next = views;
		views = v;
		pthread_mutex_unlock(&views_lock);
		return p;
	}
	/* MEM_COMMIT inside a reserved region: pages become accessible. */
	lo = (uintptr_t)addr / ps * ps;
	hi = ((uintptr_t)addr + size + ps - 1) / ps * ps;
	pthread_mutex_lock(&views_lock);
	pv = region_at(lo);
	if (!pv || !(*pv)->alloc || hi > (*pv)->base + (*pv)->len ||
	    mprotect((void *)lo, hi - lo, prot) != 0) {
		pthread_mutex_unlock(&views_lock);
		SetLastError(ERROR_INVALID_ADDRESS);
		return NULL;
	}
	pthread_mutex_unlock(&views_lock);
	return (LPVOID)lo;
}

FLTPORT_WINAPI BOOL VirtualFree(LPVOID addr, SIZE_T size, DWORD type)
{
	size_t ps = page_size();
	struct view **pv, *v = NULL;
	DWORD err = ERROR_SUCCESS;
	uintptr_t lo, hi;

	if ((type != MEM_RELEASE && type != MEM_DECOMMIT) ||
	    size > UINTPTR_MAX - ps - (uintptr_t)addr) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	pthread_mutex_lock(&views_lock);
	pv = region_at((uintptr_t)addr);
	if (!pv || !(*pv)->alloc) {
		err = ERROR_INVALID_ADDRESS;
	} else if (type == MEM_RELEASE) {
		/* The whole region, by its base, size 0. */
		if (size != 0)
			err = ERROR_INVALID_PARAMETER;
		else if ((uintptr_t)addr != (*pv)->base)
			err = ERROR_INVALID_ADDRESS;
		else {
			v = *pv;
			*pv = v->next;
		}
	} else {
		lo = (uintptr_t)addr / ps * ps;
		hi = size ? ((uintptr_t)addr + size + ps - 1) / ps * ps : (*pv)->base + (*pv)->len;
		if (size == 0 && (uintptr_t)addr != (*pv)->base)
			err = ERROR_INVALID_PARAMETER;
		else if (hi > (*pv)->base + (*pv)->len)
			err = ERROR_INVALID_ADDRESS;
		else if (mmap((void *)lo, hi - lo, PROT_NONE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
			      0) == MAP_FAILED)
			err = ERROR_NOT_ENOUGH_MEMORY; /* fresh pages: the contents go */
	}
	pthread_mutex_unlock(&views_lock);
	if (v) {
		munmap((void *)v->base, v->len);
		free(v);
	}
	if (err) {
		SetLastError(err);
		return FALSE;
	}
	return TRUE;
}

FLTPORT_WINAPI BOOL VirtualProtect(LPVOID addr, SIZE_T size, DWORD protect, PDWORD old)
{
	size_t ps = page_size();
	int prot = prot_of(protect);
	MEMORY_BASIC_INFORMATION mbi;
	DWORD err = ERROR_SUCCESS;
	struct view **pv;
	uintptr_t lo, hi;

	if (!old) {
		SetLastError(ERROR_NOACCESS);
		return FALSE;
	}
	if (prot < 0 || size == 0 || size > UINTPTR_MAX - ps - (uintptr_t)addr) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	if (VirtualQuery(addr, &mbi, sizeof(mbi)) != sizeof(mbi) || mbi.State == MEM_FREE) {
		SetLastError(ERROR_INVALID_ADDRESS);
		return FALSE;
	}
	lo = (uintptr_t)addr / ps * ps;
	hi = ((uintptr_t)addr + size + ps - 1) / ps * ps;
	/* Every page in one region, as Windows requires: one of ours (a
	 * VirtualAlloc region or a view), else one kernel mapping — never
	 * whatever is mapped next.  Checked and changed under the lock, so
	 * that no VirtualFree or unmap comes in between. */
	pthread_mutex_lock(&views_lock);
	pv = region_at(lo);
	if (pv) {
		if (hi > (*pv)->base + ((*pv)->len + ps - 1) / ps * ps)
			err = ERROR_INVALID_ADDRESS;
	} else {
		uint64_t start, end;
		char perms[5] = "----";
		bool file = false, found = false;

		if (map_region(lo, &start, &end, perms, &file, &found) != 0 || !found || hi > end)
			err = ERROR_INVALID_ADDRESS;
	}
	if (!err && mprotect((void *)lo, hi - lo, prot) != 0)
		err = errno == ENOMEM ? ERROR_INVALID_ADDRESS : ERROR_ACCESS_DENIED;
	pthread_mutex_unlock(&views_lock);
	if (err) {
		SetLastError(err);
		return FALSE;
	}
	*old = mbi.Protect ? mbi.Protect : PAGE_NOACCESS;
	return TRUE;
}
