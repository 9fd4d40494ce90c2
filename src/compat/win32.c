/* The Win32 subset port clients use: last error, events, threads, waits. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "compat/compat.h"

static _Thread_local DWORD last_error;

FLTPORT_WINAPI DWORD GetLastError(void)
{
	return last_error;
}

FLTPORT_WINAPI void SetLastError(DWORD e)
{
	last_error = e;
}

/* ---- the wait lock ---- */

pthread_mutex_t fpw_wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cond;
static pthread_once_t wait_once = PTHREAD_ONCE_INIT;

static void wait_init(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&wait_cond, &a);
	pthread_condattr_destroy(&a);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t fpw_deadline_ms(DWORD ms)
{
	if (ms == INFINITE)
		return INT64_MAX;
	return now_ns() + (int64_t)ms * 1000000;
}

void fpw_wait_broadcast(void)
{
	pthread_once(&wait_once, wait_init);
	pthread_cond_broadcast(&wait_cond);
}

bool fpw_wait_until(int64_t deadline)
{
	struct timespec ts;

	pthread_once(&wait_once, wait_init);
	if (deadline == INT64_MAX) {
		pthread_cond_wait(&wait_cond, &fpw_wait_lock);
		return true;
	}
	if (now_ns() >= deadline)
		return false;
	ts.tv_sec = (time_t)(deadline / 1000000000);
	ts.tv_nsec = (long)(deadline % 1000000000);
	return pthread_cond_timedwait(&wait_cond, &fpw_wait_lock, &ts) != ETIMEDOUT ||
	       now_ns() < deadline;
}

/* ---- events ---- */

struct fpw_event {
	struct fpw_obj obj;
	bool manual;
	bool named; /* in the name registry (named.c) */
	bool state; /* under fpw_wait_lock */
};

static void event_destroy(struct fpw_obj *o)
{
	if (((struct fpw_event *)o)->named)
		fpw_named_forget(o);
	free(o);
}

struct event_init {
	bool manual, initial, named;
};

static struct fpw_obj *make_event(void *arg)
{
	const struct event_init *in = arg;
	struct fpw_event *e = calloc(1, sizeof(*e));

	if (!e) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	fpw_obj_init(&e->obj, FPW_EVENT, NULL, event_destroy);
	e->manual = in->manual;
	e->state = in->initial;
	e->named = in->named;
	return &e->obj;
}

/* name: from fpw_name_from_*, owned (NULL: unnamed). */
static HANDLE create_event(BOOL manual, BOOL initial, wchar_t *name)
{
	struct event_init in = { manual != FALSE, initial != FALSE, name != NULL };
	struct fpw_obj *o;
	HANDLE h;

	if (name)
		return fpw_named_create(name, FPW_EVENT, make_event, &in);
	o = make_event(&in);
	if (!o)
		return NULL;
	h = fpw_handle_new(o);
	if (h)
		SetLastError(ERROR_SUCCESS);
	return h;
}

FLTPORT_WINAPI HANDLE CreateEventA(LPSECURITY_ATTRIBUTES sa, BOOL manual, BOOL initial, LPCSTR name)
{
	wchar_t *w;

	(void)sa;
	if (!fpw_name_from_a(name, &w))
		return NULL;
	return create_event(manual, initial, w);
}

FLTPORT_WINAPI HANDLE CreateEventW(LPSECURITY_ATTRIBUTES sa, BOOL manual, BOOL initial,
				   LPCWSTR name)
{
	wchar_t *w;

	(void)sa;
	if (!fpw_name_from_w(name, &w))
		return NULL;
	return create_event(manual, initial, w);
}

static BOOL set_event(HANDLE h, bool state)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_EVENT);

	if (!o)
		return FALSE;
	pthread_mutex_lock(&fpw_wait_lock);
	((struct fpw_event *)o)->state = state;
	if (state)
		fpw_wait_broadcast();
	pthread_mutex_unlock(&fpw_wait_lock);
	fpw_obj_put(o);
	return TRUE;
}

FLTPORT_WINAPI BOOL SetEvent(HANDLE h)
{
	return set_event(h, true);
}

FLTPORT_WINAPI BOOL ResetEvent(HANDLE h)
{
	return set_event(h, false);
}

void fpw_set_event_obj(struct fpw_obj *o)
{
	pthread_mutex_lock(&fpw_wait_lock);
	((struct fpw_event *)o)->state = true;
	fpw_wait_broadcast();
	pthread_mutex_unlock(&fpw_wait_lock);
}

/* ---- threads ---- */

struct fpw_thread {
	struct fpw_obj obj;
	LPTHREAD_START_ROUTINE start;
	LPVOID param;
	/* Under fpw_wait_lock: */
	bool done;
	DWORD exit_code;
	DWORD tid;       /* the Linux thread id, 0 until the thread has set it */
	DWORD suspended; /* CREATE_SUSPENDED: the suspend count, 1 at creation */
};

static void thread_destroy(struct fpw_obj *o)
{
	free(o);
}

/* The thread announces its id, then waits while it is suspended: the id is
 * known to CreateThread's caller before the start routine runs, as on
 * Windows (GetCurrentThreadId() in the thread returns the same number). */
static void *thread_main(void *arg)
{
	struct fpw_thread *t = arg;
	DWORD code;

	pthread_mutex_lock(&fpw_wait_lock);
	t->tid = (DWORD)syscall(SYS_gettid);
	fpw_wait_broadcast();
	while (t->suspended > 0)
		fpw_wait_until(INT64_MAX);
	pthread_mutex_unlock(&fpw_wait_lock);
	code = t->start(t->param);
	pthread_mutex_lock(&fpw_wait_lock);
	t->exit_code = code;
	t->done = true;
	fpw_wait_broadcast();
	pthread_mutex_unlock(&fpw_wait_lock);
	fpw_obj_put(&t->obj); /* the thread's own reference */
	return NULL;
}

FLTPORT_WINAPI HANDLE CreateThread(LPSECURITY_ATTRIBUTES sa, SIZE_T stack,
				   LPTHREAD_START_ROUTINE start, LPVOID param, DWORD flags,
				   LPDWORD tid)
{
	struct fpw_thread *t;
	pthread_attr_t attr;
	pthread_t th;
	HANDLE h;
	int rc;

	(void)sa;
	if (!start || (flags & ~(DWORD)(STACK_SIZE_PARAM_IS_A_RESERVATION | CREATE_SUSPENDED))) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	fpw_obj_init(&t->obj, FPW_THREAD, NULL, thread_destroy);
	t->start = start;
	t->param = param;
	t->exit_code = STILL_ACTIVE;
	t->suspended = (flags & CREATE_SUSPENDED) ? 1 : 0;
	fpw_obj_get(&t->obj); /* the handle's; the initial one is the thread's */
	h = fpw_handle_new(&t->obj);
	if (!h) {
		fpw_obj_put(&t->obj);
		return NULL;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (stack >= 65536)
		pthread_attr_setstacksize(&attr, stack);
	rc = pthread_create(&th, &attr, thread_main, t);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		fpw_obj_put(&t->obj);
		CloseHandle(h);
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	pthread_mutex_lock(&fpw_wait_lock);
	while (t->tid == 0)
		fpw_wait_until(INT64_MAX);
	if (tid)
		*tid = t->tid;
	pthread_mutex_unlock(&fpw_wait_lock);
	return h;
}

FLTPORT_WINAPI DWORD ResumeThread(HANDLE h)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_THREAD);
	struct fpw_thread *t = (struct fpw_thread *)o;
	DWORD prev;

	if (!o)
		return (DWORD)-1;
	pthread_mutex_lock(&fpw_wait_lock);
	prev = t->suspended;
	if (prev > 0 && --t->suspended == 0)
		fpw_wait_broadcast();
	pthread_mutex_unlock(&fpw_wait_lock);
	fpw_obj_put(o);
	return prev;
}

FLTPORT_WINAPI DWORD GetThreadId(HANDLE h)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_THREAD);
	DWORD id;

	if (!o)
		return 0;
	pthread_mutex_lock(&fpw_wait_lock);
	id = ((struct fpw_thread *)o)->tid;
	pthread_mutex_unlock(&fpw_wait_lock);
	fpw_obj_put(o);
	return id;
}

FLTPORT_WINAPI BOOL GetExitCodeThread(HANDLE h, LPDWORD code)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_THREAD);

	if (!o)
		return FALSE;
	pthread_mutex_lock(&fpw_wait_lock);
	if (code)
		*code = ((struct fpw_thread *)o)->exit_code;
	pthread_mutex_unlock(&fpw_wait_lock);
	fpw_obj_put(o);
	return TRUE;
}

FLTPORT_WINAPI DWORD GetCurrentThreadId(void)
{
	return (DWORD)syscall(SYS_gettid);
}

FLTPORT_WINAPI DWORD GetCurrentProcessId(void)
{
	return (DWORD)getpid();
}

FLTPORT_WINAPI void Sleep(DWORD ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- waits ---- */

/* GetCurrentProcess() and GetCurrentThread() in a wait: objects of their
 * own, never signalled while their waiter runs (a thread that parks itself
 * for good waits on them). */
static struct fpw_obj pseudo[2];

static bool is_pseudo(const struct fpw_obj *o)
{
	return o == &pseudo[0] || o == &pseudo[1];
}

/* Signalled?  Consumes an auto-reset event when `consume`.  Lock held. */
static bool signalled(struct fpw_obj *o, bool consume)
{
	if (is_pseudo(o))
		return false;
	if (o->kind == FPW_EVENT) {
		struct fpw_event *e = (struct fpw_event *)o;
		bool s = e->state;

		if (s && consume && !e->manual)
			e->state = false;
		return s;
	}
	if (o->kind == FPW_SEMAPHORE)
		return fpw_semaphore_signalled(o, consume);
	if (o->kind == FPW_PROCESS)
		return fpw_process_signalled(o);
	return ((struct fpw_thread *)o)->done;
}

/* Does the array name one object twice (two handles to one named object
 * count)?  Windows refuses that for a wait on all of them: taking "each"
 * would take a semaphore twice on one check of its count. */
static bool has_duplicate(struct fpw_obj *const *objs, DWORD n)
{
	for (DWORD i = 1; i < n; i++) {
		for (DWORD k = 0; k < i; k++) {
			if (objs[i] == objs[k])
				return true;
		}
	}
	return false;
}

static void put_objects(struct fpw_obj **objs, DWORD n)
{
	for (DWORD i = 0; i < n; i++)
		if (!is_pseudo(objs[i]))
			fpw_obj_put(objs[i]);
}

static DWORD wait_objects(DWORD n, const HANDLE *hs, BOOL all, DWORD ms)
{
	struct fpw_obj *objs[MAXIMUM_WAIT_OBJECTS];
	int64_t deadline = fpw_deadline_ms(ms);
	DWORD rc = WAIT_TIMEOUT;

	if (n == 0 || n > MAXIMUM_WAIT_OBJECTS || !hs) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return WAIT_FAILED;
	}
	for (DWORD i = 0; i < n; i++) {
		if (hs[i] == GetCurrentProcess() || hs[i] == GetCurrentThread()) {
			objs[i] = &pseudo[hs[i] == GetCurrentThread()];
			continue;
		}
		objs[i] = fpw_handle_get(hs[i], 0);
		if (!objs[i] || (objs[i]->kind != FPW_EVENT && objs[i]->kind != FPW_THREAD &&
				 objs[i]->kind != FPW_SEMAPHORE && objs[i]->kind != FPW_PROCESS)) {
			put_objects(objs, i + 1);
			SetLastError(ERROR_INVALID_HANDLE);
			return WAIT_FAILED;
		}
		if (objs[i]->kind == FPW_PROCESS && !fpw_process_watch(objs[i])) {
			put_objects(objs, i + 1);
			SetLastError(ERROR_NOT_ENOUGH_MEMORY);
			return WAIT_FAILED;
		}
	}
	if (all && has_duplicate(objs, n)) {
		put_objects(objs, n);
		SetLastError(ERROR_INVALID_PARAMETER);
		return WAIT_FAILED;
	}
	pthread_mutex_lock(&fpw_wait_lock);
	for (;;) {
		if (all) {
			DWORD k = 0;

			while (k < n && signalled(objs[k], false))
				k++;
			if (k == n) {
				for (k = 0; k < n; k++)
					signalled(objs[k], true);
				rc = WAIT_OBJECT_0;
				break;
			}
		} else {
			DWORD k = 0;

			while (k < n && !signalled(objs[k], true))
				k++;
			if (k < n) {
				rc = (DWORD)(WAIT_OBJECT_0 + k);
				break;
			}
		}
		if (!fpw_wait_until(deadline))
			break;
	}
	pthread_mutex_unlock(&fpw_wait_lock);
	put_objects(objs, n);
	return rc;
}

FLTPORT_WINAPI DWORD WaitForSingleObject(HANDLE h, DWORD ms)
{
	return wait_objects(1, &h, TRUE, ms);
}

FLTPORT_WINAPI DWORD WaitForSingleObjectEx(HANDLE h, DWORD ms, BOOL alertable)
{
	(void)alertable;
	return wait_objects(1, &h, TRUE, ms);
}

FLTPORT_WINAPI DWORD WaitForMultipleObjects(DWORD n, const HANDLE *hs, BOOL all, DWORD ms)
{
	return wait_objects(n, hs, all, ms);
}

/* No APC is ever queued here: an alertable wait is an ordinary one and
 * never returns WAIT_IO_COMPLETION. */
FLTPORT_WINAPI DWORD WaitForMultipleObjectsEx(DWORD n, const HANDLE *hs, BOOL all, DWORD ms,
					      BOOL alertable)
{
	(void)alertable;
	return wait_objects(n, hs, all, ms);
}

FLTPORT_WINAPI DWORD SleepEx(DWORD ms, BOOL alertable)
{
	(void)alertable;
	Sleep(ms);
	return 0;
}

/* ---- critical sections ---- */

FLTPORT_WINAPI void InitializeCriticalSection(LPCRITICAL_SECTION cs)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&cs->fltport_mutex, &a);
	pthread_mutexattr_destroy(&a);
}

FLTPORT_WINAPI BOOL InitializeCriticalSectionAndSpinCount(LPCRITICAL_SECTION cs, DWORD spin)
{
	(void)spin;
	InitializeCriticalSection(cs);
	return TRUE;
}

FLTPORT_WINAPI void EnterCriticalSection(LPCRITICAL_SECTION cs)
{
	pthread_mutex_lock(&cs->fltport_mutex);
}

FLTPORT_WINAPI BOOL TryEnterCriticalSection(LPCRITICAL_SECTION cs)
{
	return pthread_mutex_trylock(&cs->fltport_mutex) == 0;
}

FLTPORT_WINAPI void LeaveCriticalSection(LPCRITICAL_SECTION cs)
{
	pthread_mutex_unlock(&cs->fltport_mutex);
}

FLTPORT_WINAPI void DeleteCriticalSection(LPCRITICAL_SECTION cs)
{
	pthread_mutex_destroy(&cs->fltport_mutex);
}
