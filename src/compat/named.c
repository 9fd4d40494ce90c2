/*
 * Named events and semaphores, and semaphores themselves.
 *
 * The registry maps a name to an object without holding a reference: the
 * name must vanish when the last handle goes, as on Windows.  So a lookup
 * takes a reference only from an object that still has one (a count that
 * reached 0 is an object being destroyed, whose destroy will take the
 * registry lock to drop its entry), and find-or-create runs under the
 * registry lock, so that two threads creating the same name get one object.
 * registry_lock is never held with another lock: make() runs under it but
 * only allocates, and handles are entered and references dropped after it
 * is released (the last put's destroy takes it).
 */
#include <stdlib.h>
#include <wchar.h>

#include "compat/compat.h"
#include "compat/wfmt.h"

struct name_entry {
	wchar_t *name;
	struct fpw_obj *obj; /* no reference */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct name_entry *registry; /* under registry_lock */
static size_t registry_n, registry_cap;

/* Names: at most MAX_PATH characters, as Windows' object names. */
#define FPW_OBJECT_NAME_MAX MAX_PATH

bool fpw_name_from_w(const wchar_t *name, wchar_t **out)
{
	size_t n;

	*out = NULL;
	if (!name || !name[0])
		return true;
	n = wcsnlen(name, FPW_OBJECT_NAME_MAX + 1);
	if (n > FPW_OBJECT_NAME_MAX) {
		SetLastError(ERROR_FILENAME_EXCED_RANGE);
		return false;
	}
	*out = malloc((n + 1) * sizeof(wchar_t));
	if (!*out) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return false;
	}
	wmemcpy(*out, name, n + 1);
	return true;
}

bool fpw_name_from_a(const char *name, wchar_t **out)
{
	size_t n;
	ssize_t need;

	*out = NULL;
	if (!name || !name[0])
		return true;
	n = strlen(name);
	need = fpw_utf8_to_wide(name, n, NULL, 0, true);
	if (need < 0) {
		SetLastError(ERROR_INVALID_NAME);
		return false;
	}
	if (need > FPW_OBJECT_NAME_MAX) {
		SetLastError(ERROR_FILENAME_EXCED_RANGE);
		return false;
	}
	*out = malloc(((size_t)need + 1) * sizeof(wchar_t));
	if (!*out) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return false;
	}
	fpw_utf8_to_wide(name, n, *out, (size_t)need, true);
	(*out)[need] = L'\0';
	return true;
}

/* A reference on o, unless it is already on its way out. */
static bool get_live(struct fpw_obj *o)
{
	int r = atomic_load_explicit(&o->refs, memory_order_relaxed);

	while (r > 0) {
		if (atomic_compare_exchange_weak_explicit(&o->refs, &r, r + 1, memory_order_acq_rel,
							  memory_order_relaxed))
			return true;
	}
	return false;
}

/* The live object named `name`, with a reference.  registry_lock held. */
static struct fpw_obj *lookup(const wchar_t *name)
{
	for (size_t i = 0; i < registry_n; i++) {
		if (wcscmp(registry[i].name, name) == 0 && get_live(registry[i].obj))
			return registry[i].obj;
	}
	return NULL;
}

static bool insert(wchar_t *name, struct fpw_obj *o)
{
	if (registry_n == registry_cap) {
		size_t ncap = registry_cap ? registry_cap * 2 : 16;
		struct name_entry *n = realloc(registry, ncap * sizeof(*n));

		if (!n)
			return false;
		registry = n;
		registry_cap = ncap;
	}
	registry[registry_n++] = (struct name_entry){ .name = name, .obj = o };
	return true;
}

void fpw_named_forget(struct fpw_obj *o)
{
	pthread_mutex_lock(&registry_lock);
	for (size_t i = 0; i < registry_n; i++) {
		if (registry[i].obj == o) {
			free(registry[i].name);
			registry[i] = registry[--registry_n];
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
}

HANDLE fpw_named_create(wchar_t *name, enum fpw_kind kind, struct fpw_obj *(*make)(void *arg),
			void *arg)
{
	struct fpw_obj *o;
	DWORD err = ERROR_SUCCESS;
	HANDLE h;

	pthread_mutex_lock(&registry_lock);
	o = lookup(name);
	if (o) {
		free(name);
		if (o->kind != kind) {
			pthread_mutex_unlock(&registry_lock);
			fpw_obj_put(o);
			SetLastError(ERROR_INVALID_HANDLE);
			return NULL;
		}
		err = make ? ERROR_ALREADY_EXISTS : ERROR_SUCCESS;
	} else if (!make) {
		pthread_mutex_unlock(&registry_lock);
		free(name);
		SetLastError(ERROR_FILE_NOT_FOUND);
		return NULL;
	} else {
		o = make(arg); /* sets the last error on failure */
		if (!o || !insert(name, o)) {
			pthread_mutex_unlock(&registry_lock);
			free(name);
			if (o) {
				/* Not registered: its destroy finds no entry. */
				fpw_obj_put(o);
				SetLastError(ERROR_NOT_ENOUGH_MEMORY);
			}
			return NULL;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	/* The handle takes our reference (on failure it drops it, and a new
	 * object's destroy then removes its name). */
	h = fpw_handle_new(o);
	if (h)
		SetLastError(err);
	return h;
}

/* ---- semaphores ---- */

struct fpw_semaphore {
	struct fpw_obj obj;
	bool named;
	LONG count; /* under fpw_wait_lock */
	LONG max;
};

static void semaphore_destroy(struct fpw_obj *o)
{
	if (((struct fpw_semaphore *)o)->named)
		fpw_named_forget(o);
	free(o);
}

struct semaphore_init {
	LONG initial, max;
	bool named;
};

static struct fpw_obj *make_semaphore(void *arg)
{
	const struct semaphore_init *in = arg;
	struct fpw_semaphore *s = calloc(1, sizeof(*s));

	if (!s) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	fpw_obj_init(&s->obj, FPW_SEMAPHORE, NULL, semaphore_destroy);
	s->count = in->initial;
	s->max = in->max;
	s->named = in->named;
	return &s->obj;
}

bool fpw_semaphore_signalled(struct fpw_obj *o, bool consume)
{
	struct fpw_semaphore *s = (struct fpw_semaphore *)o;

	if (s->count <= 0)
		return false;
	if (consume)
		s->count--;
	return true;
}

/* name: owned (NULL: unnamed). */
static HANDLE create_semaphore(LONG initial, LONG max, wchar_t *name)
{
	struct semaphore_init in = { initial, max, name != NULL };
	struct fpw_obj *o;
	HANDLE h;

	if (max <= 0 || initial < 0 || initial > max) {
		free(name);
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	if (name)
		return fpw_named_create(name, FPW_SEMAPHORE, make_semaphore, &in);
	o = make_semaphore(&in);
	if (!o)
		return NULL;
	h = fpw_handle_new(o);
	if (h)
		SetLastError(ERROR_SUCCESS);
	return h;
}

FLTPORT_WINAPI HANDLE CreateSemaphoreA(LPSECURITY_ATTRIBUTES sa, LONG initial, LONG max,
				       LPCSTR name)
{
	wchar_t *w;

	(void)sa;
	if (!fpw_name_from_a(name, &w))
		return NULL;
	return create_semaphore(initial, max, w);
}

FLTPORT_WINAPI HANDLE CreateSemaphoreW(LPSECURITY_ATTRIBUTES sa, LONG initial, LONG max,
				       LPCWSTR name)
{
	wchar_t *w;

	(void)sa;
	if (!fpw_name_from_w(name, &w))
		return NULL;
	return create_semaphore(initial, max, w);
}

FLTPORT_WINAPI BOOL ReleaseSemaphore(HANDLE h, LONG n, LPLONG prev)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_SEMAPHORE);
	struct fpw_semaphore *s = (struct fpw_semaphore *)o;
	LONG before;
	BOOL ok = FALSE;

	if (!o)
		return FALSE;
	if (n <= 0) {
		fpw_obj_put(o);
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	pthread_mutex_lock(&fpw_wait_lock);
	before = s->count;
	if (n <= s->max - s->count) {
		s->count += n;
		ok = TRUE;
		fpw_wait_broadcast();
	}
	pthread_mutex_unlock(&fpw_wait_lock);
	fpw_obj_put(o);
	if (!ok) {
		SetLastError(ERROR_TOO_MANY_POSTS);
		return FALSE;
	}
	if (prev)
		*prev = before;
	return TRUE;
}

/* ---- Open* ---- */

static HANDLE open_named(wchar_t *name, enum fpw_kind kind)
{
	if (!name) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	return fpw_named_create(name, kind, NULL, NULL);
}

FLTPORT_WINAPI HANDLE OpenSemaphoreA(DWORD access, BOOL inherit, LPCSTR name)
{
	wchar_t *w;

	(void)access;
	(void)inherit;
	if (!fpw_name_from_a(name, &w))
		return NULL;
	return open_named(w, FPW_SEMAPHORE);
}

FLTPORT_WINAPI HANDLE OpenSemaphoreW(DWORD access, BOOL inherit, LPCWSTR name)
{
	wchar_t *w;

	(void)access;
	(void)inherit;
	if (!fpw_name_from_w(name, &w))
		return NULL;
	return open_named(w, FPW_SEMAPHORE);
}

FLTPORT_WINAPI HANDLE OpenEventA(DWORD access, BOOL inherit, LPCSTR name)
{
	wchar_t *w;

	(void)access;
	(void)inherit;
	if (!fpw_name_from_a(name, &w))
		return NULL;
	return open_named(w, FPW_EVENT);
}

FLTPORT_WINAPI HANDLE OpenEventW(DWORD access, BOOL inherit, LPCWSTR name)
{
	wchar_t *w;

	(void)access;
	(void)inherit;
	if (!fpw_name_from_w(name, &w))
		return NULL;
	return open_named(w, FPW_EVENT);
}
