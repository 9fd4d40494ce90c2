/*
 * The Win32 calls of avscan-style services (Windows-driver-samples' avscan
 * user program): threads created suspended and found by their ids, the
 * process heap, pagefile-backed sections and their views, VirtualQuery,
 * and the HRESULT macros such programs build their errors with; each with
 * Windows' values and error codes.
 */
#ifdef FP_PLAIN
#include "plain_criterion.h"
#else
#include <criterion/criterion.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "testutil.h"

#include <Windows.h>
#include <Strsafe.h>
#include <fltkernel.h>
#include <fltuser.h>

#include "clients/avscan_wire.h"
#include "winport.h"

/* ---- threads ---- */

struct started {
	atomic_int ran;
	DWORD id; /* GetCurrentThreadId() in the thread */
};

static DWORD WINAPI note_start(LPVOID arg)
{
	struct started *s = arg;

	s->id = GetCurrentThreadId();
	atomic_store(&s->ran, 1);
	return 42;
}

static bool has_run(void *arg)
{
	return atomic_load(&((struct started *)arg)->ran) != 0;
}

/* A thread created suspended does not run until ResumeThread brings its
 * count to 0; its id is known at once and is the one it sees itself. */
Test(win32_threads, created_suspended_runs_only_when_resumed, .timeout = 30)
{
	struct started s = { 0 };
	DWORD tid = 0, code = 0;
	HANDLE h;

	h = CreateThread(NULL, 0, note_start, &s, CREATE_SUSPENDED, &tid);
	cr_assert_not_null(h, "CreateThread(CREATE_SUSPENDED): error %u", GetLastError());
	cr_assert_neq(tid, 0);
	cr_assert_neq(tid, GetCurrentThreadId());
	cr_assert_eq(GetThreadId(h), tid);
	/* Give it every chance to run by mistake. */
	cr_assert_eq(WaitForSingleObject(h, 300), WAIT_TIMEOUT);
	cr_assert_eq(atomic_load(&s.ran), 0, "a suspended thread ran");
	cr_assert(GetExitCodeThread(h, &code));
	cr_assert_eq(code, STILL_ACTIVE);
	cr_assert_eq(ResumeThread(h), 1);
	cr_assert_eq(WaitForSingleObject(h, 20000), WAIT_OBJECT_0);
	cr_assert(tu_wait_until(has_run, &s, 20000));
	cr_assert_eq(s.id, tid, "the thread's own id %u, CreateThread's %u", s.id, tid);
	cr_assert(GetExitCodeThread(h, &code));
	cr_assert_eq(code, 42);
	cr_assert_eq(ResumeThread(h), 0, "not suspended: the count before is 0");
	cr_assert(CloseHandle(h));
}

/* Without the flag the id is set too; bad arguments fail as on Windows. */
Test(win32_threads, ids_and_errors, .timeout = 30)
{
	struct started s = { 0 };
	DWORD tid = 0;
	HANDLE h, ev;

	h = CreateThread(NULL, 0, note_start, &s, 0, &tid);
	cr_assert_not_null(h);
	cr_assert_eq(WaitForSingleObject(h, 20000), WAIT_OBJECT_0);
	cr_assert_eq(s.id, tid);
	cr_assert_eq(GetThreadId(h), tid);
	cr_assert(CloseHandle(h));

	SetLastError(0);
	cr_assert_eq(ResumeThread(h), (DWORD)-1, "a closed handle");
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE);
	ev = CreateEventW(NULL, TRUE, FALSE, NULL);
	cr_assert_not_null(ev);
	SetLastError(0);
	cr_assert_eq(ResumeThread(ev), (DWORD)-1, "an event is no thread");
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE);
	cr_assert_eq(GetThreadId(ev), 0);
	cr_assert(CloseHandle(ev));
	SetLastError(0);
	cr_assert_null(CreateThread(NULL, 0, note_start, &s, 0x2, NULL));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
}

/* The avscan pattern: workers created suspended, entered in a table by the
 * id CreateThread gave, then resumed; each finds its own entry by
 * GetCurrentThreadId(). */
#define NWORKERS 4

struct worker_ctx {
	DWORD id;
	HANDLE h;
	atomic_int found;
};

static struct worker_ctx workers[NWORKERS];

static DWORD WINAPI find_myself(LPVOID arg)
{
	DWORD me = GetCurrentThreadId();

	(void)arg;
	for (int i = 0; i < NWORKERS; i++) {
		if (workers[i].id == me) {
			atomic_fetch_add(&workers[i].found, 1);
			return (DWORD)i;
		}
	}
	return 99;
}

Test(win32_threads, workers_find_their_context_by_id, .timeout = 30)
{
	HANDLE hs[NWORKERS];

	for (int i = 0; i < NWORKERS; i++) {
		workers[i].h =
			CreateThread(NULL, 0, find_myself, NULL, CREATE_SUSPENDED, &workers[i].id);
		cr_assert_not_null(workers[i].h);
		hs[i] = workers[i].h;
	}
	for (int i = 0; i < NWORKERS; i++)
		cr_assert_eq(ResumeThread(workers[i].h), 1);
	cr_assert_eq(WaitForMultipleObjects(NWORKERS, hs, TRUE, 20000), WAIT_OBJECT_0);
	for (int i = 0; i < NWORKERS; i++) {
		DWORD code;

		cr_assert(GetExitCodeThread(hs[i], &code));
		cr_assert_eq(code, (DWORD)i, "worker %d found context %u", i, code);
		cr_assert_eq(atomic_load(&workers[i].found), 1);
		cr_assert(CloseHandle(hs[i]));
	}
}

/* ---- heap ---- */

Test(win32_heap, alloc_realloc_size_free, .timeout = 10)
{
	HANDLE heap = GetProcessHeap();
	unsigned char *p, *q;

	cr_assert_not_null(heap);
	cr_assert_eq(GetProcessHeap(), heap);
	p = HeapAlloc(heap, HEAP_ZERO_MEMORY, 100);
	cr_assert_not_null(p);
	cr_assert_eq((uintptr_t)p % _Alignof(max_align_t), 0);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(p[i], 0);
	cr_assert_eq(HeapSize(heap, 0, p), 100);
	memset(p, 0xAB, 100);
	q = HeapReAlloc(heap, HEAP_ZERO_MEMORY, p, 5000);
	cr_assert_not_null(q);
	cr_assert_eq(HeapSize(heap, 0, q), 5000);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(q[i], 0xAB, "byte %d kept", i);
	for (int i = 100; i < 5000; i++)
		cr_assert_eq(q[i], 0, "byte %d past the old size zeroed", i);
	/* In place: shrinking only. */
	cr_assert_null(HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY, q, 6000));
	cr_assert_eq(HeapSize(heap, 0, q), 5000);
	cr_assert_eq(HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY, q, 10), q);
	cr_assert_eq(HeapSize(heap, 0, q), 10);
	cr_assert(HeapFree(heap, 0, q));
	cr_assert(HeapFree(heap, 0, NULL), "NULL: nothing to free");
	p = HeapAlloc(heap, 0, 0);
	cr_assert_not_null(p, "a zero-size block is a block");
	cr_assert_eq(HeapSize(heap, 0, p), 0);
	cr_assert(HeapFree(heap, HEAP_NO_SERIALIZE, p));
}

/* A pointer that is not a live block is refused without being read: a
 * page right after an inaccessible one, a block freed already, a pointer
 * inside a block, another heap handle. */
Test(win32_heap, foreign_blocks_and_heaps_are_refused, .timeout = 10)
{
	HANDLE heap = GetProcessHeap();
	unsigned char *p = HeapAlloc(heap, HEAP_ZERO_MEMORY, 256);
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *two =
		mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	DWORD bogus_heap = 1;
	void *q;

	cr_assert_not_null(p);
	cr_assert_neq(two, MAP_FAILED);
	cr_assert_eq(mprotect(two, ps, PROT_NONE), 0);
	SetLastError(0);
	cr_assert_not(HeapFree(heap, 0, two + ps), "a page after an inaccessible one");
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_eq(HeapSize(heap, 0, two + ps), (SIZE_T)-1);
	cr_assert_null(HeapReAlloc(heap, 0, two + ps, 10));
	munmap(two, 2 * ps);
	SetLastError(0);
	cr_assert_not(HeapFree(heap, 0, p + 64), "not a block's start");
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	SetLastError(0);
	cr_assert_eq(HeapSize(heap, 0, p + 64), (SIZE_T)-1);
	cr_assert_eq(GetLastError(), 0, "HeapSize does not set the last error");
	cr_assert_null(HeapReAlloc(heap, 0, p + 64, 10));
	SetLastError(0);
	cr_assert_not(HeapFree(&bogus_heap, 0, p), "another heap handle");
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE);
	cr_assert_null(HeapAlloc(&bogus_heap, 0, 10));
	cr_assert_null(HeapAlloc(heap, 0, SIZE_MAX - 8), "too large: NULL, nothing raised");
	cr_assert(HeapFree(heap, 0, p), "the block is intact");
	/* Freed: refused again, also a large block whose memory is gone. */
	cr_assert_not(HeapFree(heap, 0, p));
	q = HeapAlloc(heap, 0, 8u << 20);
	cr_assert_not_null(q);
	cr_assert(HeapFree(heap, 0, q));
	SetLastError(0);
	cr_assert_not(HeapFree(heap, 0, q), "a double free");
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_eq(HeapSize(heap, 0, q), (SIZE_T)-1);
}

/* Many blocks from many threads: the set of live blocks grows, shrinks and
 * keeps every block findable. */
static DWORD WINAPI heap_churn(LPVOID arg)
{
	HANDLE heap = GetProcessHeap();
	void *blocks[500];

	(void)arg;
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 500; i++) {
			blocks[i] = HeapAlloc(heap, 0, (SIZE_T)(i % 97) + 1);
			if (!blocks[i])
				return 1;
		}
		for (int i = 0; i < 500; i += 2)
			if (!(blocks[i] = HeapReAlloc(heap, HEAP_ZERO_MEMORY, blocks[i], 300)))
				return 2;
		for (int i = 0; i < 500; i++) {
			SIZE_T want = (i % 2 == 0) ? 300 : (SIZE_T)(i % 97) + 1;

			if (HeapSize(heap, 0, blocks[i]) != want)
				return 3;
			if (!HeapFree(heap, 0, blocks[i]))
				return 4;
		}
	}
	return 0;
}

Test(win32_heap, blocks_from_many_threads, .timeout = 60)
{
	HANDLE t[4];

	for (int i = 0; i < 4; i++) {
		t[i] = CreateThread(NULL, 0, heap_churn, NULL, 0, NULL);
		cr_assert_not_null(t[i]);
	}
	cr_assert_eq(WaitForMultipleObjects(4, t, TRUE, 50000), WAIT_OBJECT_0);
	for (int i = 0; i < 4; i++) {
		DWORD code = 99;

		cr_assert(GetExitCodeThread(t[i], &code));
		cr_assert_eq(code, 0, "thread %d failed at step %u", i, code);
		cr_assert(CloseHandle(t[i]));
	}
}

/* ---- sections, views, VirtualQuery ---- */

#define SECTION_SIZE (3u * 65536u + 100u)

Test(win32_memory, views_of_one_section_share_pages, .timeout = 10)
{
	HANDLE s = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT, 0,
				      SECTION_SIZE, NULL);
	unsigned char *w, *r, *tail, *copy;
	MEMORY_BASIC_INFORMATION mbi;
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);

	cr_assert_not_null(s, "CreateFileMappingW: error %u", GetLastError());
	cr_assert_eq(GetLastError(), ERROR_SUCCESS);
	w = MapViewOfFile(s, FILE_MAP_WRITE, 0, 0, 0);
	r = MapViewOfFile(s, FILE_MAP_READ, 0, 0, SECTION_SIZE);
	tail = MapViewOfFile(s, FILE_MAP_ALL_ACCESS, 0, 2 * 65536, 0);
	copy = MapViewOfFile(s, FILE_MAP_COPY, 0, 0, 4096);
	cr_assert(w && r && tail && copy, "views: error %u", GetLastError());
	cr_assert_eq(r[SECTION_SIZE - 1], 0, "pagefile-backed pages start zeroed");
	w[0] = 'A';
	w[SECTION_SIZE - 1] = 'Z';
	cr_assert_eq(r[0], 'A');
	cr_assert_eq(r[SECTION_SIZE - 1], 'Z');
	cr_assert_eq(tail[65536 + 99], 'Z', "the view at offset 128 KiB sees the same pages");
	tail[0] = 'T'; /* FILE_MAP_ALL_ACCESS is FILE_MAP_WRITE, not a private copy */
	cr_assert_eq(r[2 * 65536], 'T');
	cr_assert_eq(copy[0], 'A');
	copy[0] = 'C'; /* copy-on-write: private to this view */
	cr_assert_eq(r[0], 'A');
	/* The section lives on while views do. */
	cr_assert(CloseHandle(s));
	w[1] = 'B';
	cr_assert_eq(r[1], 'B');

	/* VirtualQuery: the view, its base, its size, mapped pages. */
	cr_assert_eq(VirtualQuery(r + 10, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.BaseAddress, r);
	cr_assert_eq(mbi.AllocationBase, r);
	cr_assert_eq(mbi.RegionSize, (SECTION_SIZE + ps - 1) / ps * ps);
	cr_assert_eq(mbi.State, MEM_COMMIT);
	cr_assert_eq(mbi.Type, MEM_MAPPED);
	cr_assert_eq(mbi.Protect, PAGE_READONLY);
	cr_assert_eq(mbi.AllocationProtect, PAGE_READONLY);
	cr_assert_eq(VirtualQuery(w + ps, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.BaseAddress, w + ps);
	cr_assert_eq(mbi.AllocationBase, w);
	cr_assert_eq(mbi.RegionSize, (SECTION_SIZE + ps - 1) / ps * ps - ps);
	cr_assert_eq(mbi.Protect, PAGE_READWRITE);
	cr_assert_eq(VirtualQuery(copy, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.AllocationProtect, PAGE_WRITECOPY);
	cr_assert_eq(mbi.RegionSize, 4096);

	cr_assert(UnmapViewOfFileEx(tail, MEM_UNMAP_WITH_TRANSIENT_BOOST));
	cr_assert(UnmapViewOfFile(copy));
	cr_assert(UnmapViewOfFile(w + 5), "an address inside the view");
	SetLastError(0);
	cr_assert_not(UnmapViewOfFile(w), "unmapped already");
	cr_assert_eq(GetLastError(), ERROR_INVALID_ADDRESS);
	cr_assert_eq(r[1], 'B', "the last view still holds the pages");
	cr_assert(UnmapViewOfFile(r));
}

Test(win32_memory, section_and_view_errors, .timeout = 10)
{
	HANDLE ro, rw, ev;
	int local = 0;

	SetLastError(0);
	cr_assert_null(CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 0, NULL));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER, "size 0");
	cr_assert_null(CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_EXECUTE_READWRITE, 0,
					  4096, NULL));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	ev = CreateEventA(NULL, FALSE, FALSE, NULL);
	cr_assert_null(CreateFileMappingA(ev, NULL, PAGE_READONLY, 0, 4096, NULL));
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE, "no file handles here");
	cr_assert_null(CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 4096,
					  L"Local\\AvScanSection"));
	cr_assert_eq(GetLastError(), ERROR_NOT_SUPPORTED);
	SetLastError(0);
	cr_assert_null(MapViewOfFile(ev, FILE_MAP_READ, 0, 0, 0));
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE, "an event is no section");
	cr_assert(CloseHandle(ev));

	ro = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READONLY, 0, 4 * 65536, "");
	rw = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 4 * 65536, NULL);
	cr_assert(ro && rw);
	cr_assert_null(MapViewOfFile(ro, FILE_MAP_WRITE, 0, 0, 0));
	cr_assert_eq(GetLastError(), ERROR_ACCESS_DENIED, "write view of read-only pages");
	cr_assert_null(MapViewOfFile(rw, FILE_MAP_READ | FILE_MAP_EXECUTE, 0, 0, 0));
	cr_assert_eq(GetLastError(), ERROR_ACCESS_DENIED);
	cr_assert_null(MapViewOfFile(rw, FILE_MAP_READ, 0, 4096, 0));
	cr_assert_eq(GetLastError(), ERROR_MAPPED_ALIGNMENT, "offsets are 64 KiB multiples");
	cr_assert_null(MapViewOfFile(rw, FILE_MAP_READ, 0, 65536, 3 * 65536 + 1));
	cr_assert_eq(GetLastError(), ERROR_ACCESS_DENIED, "past the end");
	cr_assert_null(MapViewOfFile(rw, FILE_MAP_READ, 1, 0, 0));
	cr_assert_eq(GetLastError(), ERROR_ACCESS_DENIED, "offset past the end");
	cr_assert_null(MapViewOfFile(rw, 0, 0, 0, 0));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER, "no access asked");
	SetLastError(0);
	cr_assert_not(UnmapViewOfFile(&local));
	cr_assert_eq(GetLastError(), ERROR_INVALID_ADDRESS, "not a view");
	cr_assert_not(UnmapViewOfFileEx(&local, MEM_PRESERVE_PLACEHOLDER));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert(CloseHandle(ro));
	cr_assert(CloseHandle(rw));
}

static int global_rw = 1;

Test(win32_memory, virtual_query_describes_the_process, .timeout = 10)
{
	MEMORY_BASIC_INFORMATION mbi;
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	int local = 0;
	void *heap = HeapAlloc(GetProcessHeap(), 0, 64);

	/* The stack: private, committed, read-write. */
	cr_assert_eq(VirtualQuery(&local, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.BaseAddress, (void *)((uintptr_t)&local / ps * ps));
	cr_assert_eq(mbi.State, MEM_COMMIT);
	cr_assert_eq(mbi.Type, MEM_PRIVATE);
	cr_assert_eq(mbi.Protect, PAGE_READWRITE);
	cr_assert_geq(mbi.RegionSize, ps);
	cr_assert_leq((uintptr_t)mbi.AllocationBase, (uintptr_t)mbi.BaseAddress);
	/* The heap block: committed, read-write (executable too under
	 * valgrind, whose allocator maps its arenas so). */
	cr_assert_eq(VirtualQuery(heap, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.State, MEM_COMMIT);
	cr_assert(mbi.Protect == PAGE_READWRITE || mbi.Protect == PAGE_EXECUTE_READWRITE,
		  "protect 0x%x", (unsigned)mbi.Protect);
	/* This program's code: an image, executable. */
	cr_assert_eq(VirtualQuery((const void *)(uintptr_t)&VirtualQuery, &mbi, sizeof(mbi)),
		     sizeof(mbi));
	cr_assert_eq(mbi.Protect, PAGE_EXECUTE_READ);
	cr_assert_eq(mbi.Type, MEM_IMAGE);
	cr_assert_eq(VirtualQuery(&global_rw, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.Protect, PAGE_READWRITE);
	cr_assert_eq(mbi.Type, MEM_IMAGE);
	/* Page 0 is never mapped. */
	cr_assert_eq(VirtualQuery(NULL, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.State, MEM_FREE);
	cr_assert_eq(mbi.Protect, PAGE_NOACCESS);
	cr_assert_null(mbi.AllocationBase);
	cr_assert_eq(mbi.Type, 0);
	cr_assert_geq(mbi.RegionSize, ps);
	/* Errors. */
	SetLastError(0);
	cr_assert_eq(VirtualQuery(&local, &mbi, sizeof(mbi) - 1), 0);
	cr_assert_eq(GetLastError(), ERROR_BAD_LENGTH);
	SetLastError(0);
	cr_assert_eq(VirtualQuery(&local, NULL, sizeof(mbi)), 0);
	cr_assert_eq(GetLastError(), ERROR_NOACCESS);
#if defined(__x86_64__)
	SetLastError(0);
	cr_assert_eq(VirtualQuery((void *)(uintptr_t)0xffff800000000000ull, &mbi, sizeof(mbi)), 0);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER, "kernel space");
	/* The free space above the last mapping ends where user space does. */
	cr_assert_eq(VirtualQuery((void *)(uintptr_t)0x7ffffffff000ull, &mbi, sizeof(mbi)),
		     sizeof(mbi));
	if (mbi.State == MEM_FREE)
		cr_assert_eq(mbi.RegionSize, 4096, "past user space: %zx", (size_t)mbi.RegionSize);
#endif
	cr_assert(HeapFree(GetProcessHeap(), 0, heap));
}

/* ---- types and constants (Windows SDK values) ---- */

Test(win32_memory, types_and_constants, .timeout = 10)
{
	LONGLONG ll = 0;
	ULONGLONG ull = 0;
	char buf[64];

#if UINTPTR_MAX > 0xFFFFFFFFu
	cr_assert_eq(sizeof(MEMORY_BASIC_INFORMATION), 48);
	cr_assert_eq(offsetof(MEMORY_BASIC_INFORMATION, AllocationProtect), 16);
	cr_assert_eq(offsetof(MEMORY_BASIC_INFORMATION, PartitionId), 20);
	cr_assert_eq(offsetof(MEMORY_BASIC_INFORMATION, RegionSize), 24);
	cr_assert_eq(offsetof(MEMORY_BASIC_INFORMATION, State), 32);
	cr_assert_eq(offsetof(MEMORY_BASIC_INFORMATION, Type), 40);
#else
	cr_assert_eq(sizeof(MEMORY_BASIC_INFORMATION), 28);
#endif
	cr_assert_eq(FILE_MAP_COPY, 0x1);
	cr_assert_eq(FILE_MAP_WRITE, 0x2);
	cr_assert_eq(FILE_MAP_READ, 0x4);
	cr_assert_eq(FILE_MAP_EXECUTE, 0x20);
	cr_assert_eq(FILE_MAP_ALL_ACCESS, 0xF001F);
	cr_assert_eq(PAGE_READONLY, 0x2);
	cr_assert_eq(PAGE_READWRITE, 0x4);
	cr_assert_eq(PAGE_WRITECOPY, 0x8);
	cr_assert_eq(PAGE_EXECUTE_READ, 0x20);
	cr_assert_eq(MEM_COMMIT, 0x1000);
	cr_assert_eq(MEM_FREE, 0x10000);
	cr_assert_eq(MEM_PRIVATE, 0x20000);
	cr_assert_eq(MEM_MAPPED, 0x40000);
	cr_assert_eq(MEM_IMAGE, 0x1000000);
	cr_assert_eq(MEM_UNMAP_WITH_TRANSIENT_BOOST, 0x1);
	cr_assert_eq(SEC_COMMIT, 0x8000000);
	cr_assert_eq(HEAP_ZERO_MEMORY, 0x8);
	cr_assert_eq(HEAP_GENERATE_EXCEPTIONS, 0x4);
	cr_assert_eq(CREATE_SUSPENDED, 0x4);
	cr_assert_eq(ERROR_INVALID_ADDRESS, 487);
	cr_assert_eq(ERROR_MAPPED_ALIGNMENT, 1132);
	/* HRESULT builders, on a 32-bit HRESULT. */
	cr_assert_eq(sizeof(MAKE_HRESULT(SEVERITY_ERROR, FACILITY_WIN32, 5)), 4);
	cr_assert_eq(MAKE_HRESULT(SEVERITY_ERROR, FACILITY_WIN32, ERROR_ACCESS_DENIED),
		     E_ACCESSDENIED);
	cr_assert_eq(MAKE_HRESULT(SEVERITY_SUCCESS, 0, 0), S_OK);
	cr_assert(FAILED(MAKE_HRESULT(SEVERITY_ERROR, 0, 1)));
	cr_assert_eq(HRESULT_SEVERITY(E_FAIL), SEVERITY_ERROR);
	cr_assert_eq(HRESULT_SEVERITY(S_FALSE), SEVERITY_SUCCESS);
	/* LONGLONG is MSVC's __int64, long long: %lld and %llu print it. */
	cr_assert(_Generic(ll, long long : 1, default : 0));
	cr_assert(_Generic(ull, unsigned long long : 1, default : 0));
	ll = -5;
	ull = 7;
	snprintf(buf, sizeof(buf), "%lld %llu", ll, ull);
	cr_assert_str_eq(buf, "-5 7");
	/* Strsafe.h, in the case Windows sources write it. */
	cr_assert(SUCCEEDED(StringCchPrintfA(buf, sizeof(buf), "%d", 12)));
	cr_assert_str_eq(buf, "12");
}

static void unused_parameter(_Unreferenced_parameter_ int x);
static void unused_parameter(_Unreferenced_parameter_ int x)
{
	(void)x;
}

Test(win32_memory, sal_unreferenced_parameter_compiles, .timeout = 10)
{
	unused_parameter(1);
}

/* ---- an avscan-style service against a filter in this process ---- */

#define AV_WORKERS "3"
#define AV_SENDERS 3
#define AV_PER_SENDER 40

static struct tw_conn av_conn = TW_CONN_INIT;
static struct {
	pthread_mutex_t lock;
	atomic_long answered, infected, bad;
	char first_bad[200];
} av = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void av_bad(const char *what, long seq, unsigned v)
{
	if (atomic_fetch_add(&av.bad, 1) == 0) {
		pthread_mutex_lock(&av.lock);
		snprintf(av.first_bad, sizeof(av.first_bad), "seq %ld: %s %u", seq, what, v);
		pthread_mutex_unlock(&av.lock);
	}
}

/* One sender: AV_PER_SENDER requests, every fourth infected, of lengths up
 * to AV_CONTENT_MAX, the signature at a varying offset. */
static void *av_sender(void *arg)
{
	static _Thread_local AV_SCAN_REQUEST rq;
	long first = (long)(intptr_t)arg * AV_PER_SENDER;

	for (long seq = first; seq < first + AV_PER_SENDER; seq++) {
		size_t k = sizeof(AV_SIGNATURE) - 1;
		bool infect = seq % 4 == 0;
		AV_SCAN_REPLY r;
		ULONG rlen = sizeof(r);
		LARGE_INTEGER timeout;
		NTSTATUS st;

		rq.Seq = (ULONG)seq;
		rq.Length = (ULONG)(k + (size_t)(seq * 97) % (AV_CONTENT_MAX - k));
		for (ULONG i = 0; i < rq.Length; i++)
			rq.Content[i] = (UCHAR)('a' + (i + (ULONG)seq) % 26);
		if (infect)
			memcpy(rq.Content + (size_t)seq % (rq.Length - k + 1), AV_SIGNATURE, k);
		memset(&r, 0xEE, sizeof(r));
		timeout.QuadPart = -100000000LL; /* 10 s */
		st = FltSendMessage(NULL, &av_conn.client, &rq, sizeof(rq), &r, &rlen, &timeout);
		if (st != STATUS_SUCCESS) {
			av_bad("FltSendMessage", seq, (unsigned)st);
			continue;
		}
		if (rlen != sizeof(r) || r.Seq != (ULONG)seq || r.WorkerId == 0) {
			av_bad("reply", seq, r.Seq);
			continue;
		}
		if (r.Infected != (BOOLEAN)infect) {
			av_bad("verdict", seq, r.Infected);
			continue;
		}
		atomic_fetch_add(&av.answered, 1);
		if (infect)
			atomic_fetch_add(&av.infected, 1);
	}
	return NULL;
}

/* The avscan shape end to end: three workers created suspended, found by
 * id, scanning through section views, answering concurrent senders; then
 * FltCloseClientPort ends every posted read and the service exits clean. */
Test(win32_avscan, service_scans_through_sections, .timeout = 120)
{
	char line[512], arg[128];
	pthread_t th[AV_SENDERS];
	struct tu_proc p;
	const char *name;
	NTSTATUS st;
	int rc;

	tu_private_dir();
	name = tu_port_name("avscan");
	st = tw_open_conn_port(name, &av_conn, NULL);
	cr_assert_eq(st, STATUS_SUCCESS, "FltCreateCommunicationPort: 0x%08X", (unsigned)st);

	snprintf(arg, sizeof(arg), "\\%s", name);
	p = tu_spawn("win_avscan", (const char *const[]){ arg, AV_WORKERS, NULL });
	cr_assert(tu_expect(&p, "CONNECTED", line, sizeof(line), 15000), "no CONNECTED (%s)", line);
	cr_assert_str_eq(line, "CONNECTED hr=0x00000000");
	cr_assert(tu_expect(&p, "READY", line, sizeof(line), 15000), "no READY (%s)", line);
	cr_assert_str_eq(line, "READY workers=3 view=131072");

	for (int t = 0; t < AV_SENDERS; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, av_sender, (void *)(intptr_t)t), 0);
	for (int t = 0; t < AV_SENDERS; t++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 50;
		cr_assert_eq(pthread_timedjoin_np(th[t], NULL, &ts), 0, "sender %d stuck", t);
	}
	cr_assert_eq(atomic_load(&av.bad), 0, "%ld bad replies; first: %s", atomic_load(&av.bad),
		     av.first_bad);
	cr_assert_eq(atomic_load(&av.answered), AV_SENDERS * AV_PER_SENDER);
	cr_assert_eq(atomic_load(&av.infected), AV_SENDERS * AV_PER_SENDER / 4);

	FltCloseClientPort(NULL, &av_conn.client);
	cr_assert(tu_expect(&p, "DONE", line, sizeof(line), 15000), "no DONE (%s)", line);
	snprintf(arg, sizeof(arg), "DONE scanned=%d infected=%d bad=0 wait=0",
		 AV_SENDERS * AV_PER_SENDER, AV_SENDERS * AV_PER_SENDER / 4);
	cr_assert_str_eq(line, arg);
	rc = tu_wait(&p, 10000);
	cr_assert_eq(rc, 0, "win_avscan exit code %d", rc);
	cr_assert(tu_wait_until(tw_disconnected, &av_conn, 10000), "DisconnectNotify");
	FltCloseCommunicationPort(av_conn.server);
	FltportUnloadFilter(NULL);
	cr_assert_eq(av_conn.ndisc, 1, "DisconnectNotify exactly once");
	cr_assert_eq(av_conn.nconn, 1);
}

/* The /proc/self/maps line of the mapping at p, in buf; its length. */
static size_t maps_line_of(const void *p, char *buf, size_t cap)
{
	char want[32];
	FILE *fp = fopen("/proc/self/maps", "re");
	size_t n = 0;
	int c;

	cr_assert_not_null(fp);
	snprintf(want, sizeof(want), "%" PRIxPTR "-", (uintptr_t)p);
	for (;;) {
		n = 0;
		while ((c = getc(fp)) != EOF && c != '\n')
			if (n + 1 < cap)
				buf[n++] = (char)c;
		buf[n] = '\0';
		if (strncmp(buf, want, strlen(want)) == 0 || c == EOF)
			break;
	}
	fclose(fp);
	return n;
}

/* A mapped file whose path is long enough to cut its maps line past the
 * parser's 4 KiB buffer, with text after the cut that reads like a region
 * line for the free page above the mapping: VirtualQuery must not take that
 * text for a region. */
Test(win32_memory, a_long_path_in_the_map_is_not_a_region, .timeout = 30)
{
	static char line[8192], dir[4096], from[8192], to[8192];
	size_t ps = (size_t)sysconf(_SC_PAGESIZE), len, prefix, filler;
	MEMORY_BASIC_INFORMATION mbi;
	char name[256], fake[96];
	unsigned char *map, *above;
	int fd;

	snprintf(dir, sizeof(dir), "%s", tu_temp_dir("fltport-maps"));
	/* Directories of 200-character names down to ~3,800 characters. */
	memset(name, 'd', 200);
	name[200] = '\0';
	while (strlen(dir) < 3800) {
		len = strlen(dir);
		snprintf(dir + len, sizeof(dir) - len, "/%s", name);
		cr_assert_eq(mkdir(dir, 0700), 0, "mkdir: %s", strerror(errno));
	}
	snprintf(from, sizeof(from), "%s/f", dir);
	fd = open(from, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)ps), 0);
	/* The file's page with two free pages above it. */
	map = mmap(NULL, 3 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(map, MAP_FAILED);
	cr_assert_eq(mmap(map, ps, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0), map);
	cr_assert_eq(munmap(map + ps, 2 * ps), 0);
	above = map + ps;
	close(fd);
	snprintf(fake, sizeof(fake), "%" PRIxPTR "-%" PRIxPTR " rwxp 00000000 00:00 0",
		 (uintptr_t)above, (uintptr_t)(above + ps));
	len = maps_line_of(map, line, sizeof(line));
	if (len <= strlen(from) || strcmp(line + len - strlen(from), from) != 0) {
		munmap(map, ps);
		cr_skip("/proc/self/maps does not show the mapping's file name (valgrind "
			"writes its own)");
	}
	prefix = len - strlen(from);
	/* Rename it so that the fake line starts at byte 4095 of its line. */
	cr_assert_lt(prefix + strlen(dir) + 2, 4095);
	filler = 4095 - prefix - strlen(dir) - 1;
	cr_assert(filler >= 1 && filler + strlen(fake) < sizeof(name), "filler %zu", filler);
	memset(name, 'x', filler);
	memcpy(name + filler, fake, strlen(fake) + 1);
	snprintf(to, sizeof(to), "%s/%s", dir, name);
	cr_assert_eq(rename(from, to), 0, "rename: %s", strerror(errno));
	len = maps_line_of(map, line, sizeof(line));
	cr_assert_geq(len, 4095 + strlen(fake));
	cr_assert_eq(memcmp(line + 4095, fake, strlen(fake)), 0, "the cut is where planned");

	cr_assert_eq(VirtualQuery(above, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.State, MEM_FREE, "a file name read as a region (state 0x%x)",
		     (unsigned)mbi.State);
	cr_assert_geq(mbi.RegionSize, 2 * ps);
	/* The mapping itself is described. */
	cr_assert_eq(VirtualQuery(map, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.State, MEM_COMMIT);
	cr_assert_eq(mbi.Type, MEM_MAPPED);
	cr_assert_eq(mbi.Protect, PAGE_READONLY);
	cr_assert_eq(mbi.RegionSize, ps);
	munmap(map, ps);
	cr_assert_eq(unlink(to), 0);
}

/* ---- VirtualAlloc ---- */

Test(win32_memory, virtual_alloc_reserve_commit_protect_free, .timeout = 10)
{
	MEMORY_BASIC_INFORMATION mbi;
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *p, *r, *c;
	DWORD old = 0;

	p = VirtualAlloc(NULL, 10000, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
	cr_assert_not_null(p, "error %u", GetLastError());
	cr_assert_eq((uintptr_t)p % 65536, 0, "at the allocation granularity");
	cr_assert_eq(p[9999], 0, "zero-filled");
	p[0] = 1;
	cr_assert_eq(VirtualQuery(p + 5000, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.AllocationBase, p);
	cr_assert_eq(mbi.State, MEM_COMMIT);
	cr_assert_eq(mbi.Type, MEM_PRIVATE);
	cr_assert_eq(mbi.Protect, PAGE_READWRITE);
	cr_assert_eq(mbi.AllocationProtect, PAGE_READWRITE);
	cr_assert(VirtualProtect(p, ps, PAGE_READONLY, &old));
	cr_assert_eq(old, PAGE_READWRITE);
	cr_assert_eq(VirtualQuery(p, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.Protect, PAGE_READONLY);
	cr_assert_eq(mbi.RegionSize, ps, "one page changed");
	SetLastError(0);
	cr_assert_not(VirtualProtect(p, ps, PAGE_READWRITE, NULL));
	cr_assert_eq(GetLastError(), ERROR_NOACCESS);
	cr_assert_not(VirtualFree(p, 100, MEM_RELEASE));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER, "MEM_RELEASE takes size 0");
	cr_assert_not(VirtualFree(p + ps, 0, MEM_RELEASE));
	cr_assert_eq(GetLastError(), ERROR_INVALID_ADDRESS, "not the base");
	cr_assert_not(UnmapViewOfFile(p), "not a view");
	cr_assert(VirtualFree(p, 0, MEM_RELEASE));
	cr_assert_eq(VirtualQuery(p, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.State, MEM_FREE);

	/* Reserve 1 MiB, commit 64 KiB in the middle, decommit it. */
	r = VirtualAlloc(NULL, 1 << 20, MEM_RESERVE, PAGE_READWRITE);
	cr_assert_not_null(r);
	cr_assert_eq(VirtualQuery(r, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.State, MEM_RESERVE);
	cr_assert_eq(mbi.AllocationBase, r);
	c = VirtualAlloc(r + 65536 + 10, 65536, MEM_COMMIT, PAGE_READWRITE);
	cr_assert_eq(c, r + 65536, "committed from the page holding the address");
	memset(c, 0x5A, 65536);
	cr_assert_eq(VirtualQuery(c, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.State, MEM_COMMIT);
	cr_assert_eq(mbi.AllocationBase, r);
	cr_assert(VirtualFree(c, 65536, MEM_DECOMMIT));
	cr_assert_eq(VirtualQuery(c, &mbi, sizeof(mbi)), sizeof(mbi));
	cr_assert_eq(mbi.State, MEM_RESERVE);
	cr_assert_eq(VirtualAlloc(c, ps, MEM_COMMIT, PAGE_READWRITE), c);
	cr_assert_eq(c[0], 0, "a decommitted page comes back zeroed");
	cr_assert_null(VirtualAlloc(r + (1 << 20) - ps, 2 * ps, MEM_COMMIT, PAGE_READWRITE));
	cr_assert_eq(GetLastError(), ERROR_INVALID_ADDRESS, "past the reservation");
	cr_assert(VirtualFree(r, 0, MEM_RELEASE));

	SetLastError(0);
	cr_assert_null(VirtualAlloc(NULL, 0, MEM_COMMIT, PAGE_READWRITE));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_null(VirtualAlloc(NULL, 4096, MEM_COMMIT, PAGE_WRITECOPY));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_null(VirtualAlloc(NULL, 4096, 0, PAGE_READWRITE));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_not(VirtualFree(&old, 0, MEM_RELEASE));
	cr_assert_eq(GetLastError(), ERROR_INVALID_ADDRESS, "not VirtualAlloc's");
	cr_assert_eq(MEM_RELEASE, 0x8000);
	cr_assert_eq(MEM_DECOMMIT, 0x4000);
	cr_assert_null(VirtualAlloc((LPVOID)(uintptr_t)0x1000, 65536, MEM_RESERVE, PAGE_READWRITE));
	cr_assert_eq(GetLastError(), ERROR_INVALID_ADDRESS, "below the first 64 KiB");
}

/* VirtualProtect stays inside one region: a range running into the next
 * mapping fails and changes nothing there. */
Test(win32_memory, virtual_protect_stays_in_its_region, .timeout = 10)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *a, *next;
	DWORD old = 0;

	a = VirtualAlloc(NULL, 65536, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
	cr_assert_not_null(a);
	/* A mapping of someone else's right after it. */
	next = mmap(a + 65536, ps, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (next != a + 65536) {
		if (next != MAP_FAILED)
			munmap(next, ps);
		VirtualFree(a, 0, MEM_RELEASE);
		cr_skip("the page after the region is taken");
	}
	SetLastError(0);
	cr_assert_not(VirtualProtect(a, 65536 + ps, PAGE_NOACCESS, &old));
	cr_assert_eq(GetLastError(), ERROR_INVALID_ADDRESS);
	next[0] = 1; /* still writable */
	a[0] = 1;    /* unchanged too */
	cr_assert(VirtualProtect(a, 65536, PAGE_READONLY, &old));
	cr_assert_eq(old, PAGE_READWRITE);
	cr_assert_not(VirtualFree(a + 5, SIZE_MAX, MEM_DECOMMIT));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER, "a size that wraps");
	munmap(next, ps);
	cr_assert(VirtualFree(a, 0, MEM_RELEASE));
}
