/*
 * The handle table.  A HANDLE is an index plus a generation, never a
 * pointer: CloseHandle on a closed or made-up handle, or any call with one,
 * is detected (ERROR_INVALID_HANDLE) instead of dereferencing garbage, and a
 * reused slot never answers to an old handle.  Values are multiples of 4,
 * so the Windows "hEvent | 1" idiom decodes to the same handle.
 */
#include <errno.h>
#include <stdlib.h>

#include "compat/compat.h"

struct entry {
	uint32_t gen;
	struct fpw_obj *obj; /* NULL: free */
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *table;
static uint32_t table_cap, table_used_hint;

#define IDX_BITS 22u
#define IDX_MAX ((1u << IDX_BITS) - 1u)

void fpw_obj_init(struct fpw_obj *o, enum fpw_kind kind, void (*close)(struct fpw_obj *),
		  void (*destroy)(struct fpw_obj *))
{
	o->kind = kind;
	atomic_init(&o->refs, 1);
	o->close = close;
	o->destroy = destroy;
}

void fpw_obj_get(struct fpw_obj *o)
{
	atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void fpw_obj_put(struct fpw_obj *o)
{
	if (o && atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
		o->destroy(o);
}

static HANDLE encode(uint32_t idx, uint32_t gen)
{
	uintptr_t v = (((uintptr_t)gen << IDX_BITS) | (idx + 1u)) << 2;

	return (HANDLE)v;
}

static bool decode(HANDLE h, uint32_t *idx, uint32_t *gen)
{
	uintptr_t v = (uintptr_t)h >> 2;

	if (h == NULL || h == INVALID_HANDLE_VALUE || (v & IDX_MAX) == 0)
		return false;
	*idx = (uint32_t)(v & IDX_MAX) - 1u;
	*gen = (uint32_t)(v >> IDX_BITS);
	return true;
}

HANDLE fpw_handle_new(struct fpw_obj *o)
{
	uint32_t i;
	HANDLE h = NULL;

	pthread_mutex_lock(&table_lock);
	for (i = table_used_hint; i < table_cap && table[i].obj; i++)
		;
	if (i == table_cap) {
		for (i = 0; i < table_cap && table[i].obj; i++)
			;
	}
	if (i == table_cap && table_cap < IDX_MAX) {
		uint32_t ncap = table_cap ? table_cap * 2 : 64;
		struct entry *n = realloc(table, ncap * sizeof(*n));

		if (n) {
			for (uint32_t k = table_cap; k < ncap; k++)
				n[k] = (struct entry){ .gen = 1, .obj = NULL };
			table = n;
			table_cap = ncap;
		}
	}
	if (i < table_cap && !table[i].obj) {
		table[i].obj = o;
		table_used_hint = i + 1;
		h = encode(i, table[i].gen);
	}
	pthread_mutex_unlock(&table_lock);
	if (!h) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		fpw_obj_put(o);
	}
	return h;
}

struct fpw_obj *fpw_handle_get(HANDLE h, enum fpw_kind kind)
{
	struct fpw_obj *o = NULL;
	uint32_t idx, gen;

	if (decode(h, &idx, &gen)) {
		pthread_mutex_lock(&table_lock);
		if (idx < table_cap &&
		    table[idx].gen == (gen & ((1u << (32 - IDX_BITS - 2)) - 1u)) &&
		    table[idx].obj && (!kind || table[idx].obj->kind == kind)) {
			o = table[idx].obj;
			fpw_obj_get(o);
		}
		pthread_mutex_unlock(&table_lock);
	}
	if (!o)
		SetLastError(ERROR_INVALID_HANDLE);
	return o;
}

FLTPORT_WINAPI BOOL CloseHandle(HANDLE h)
{
	struct fpw_obj *o = NULL;
	uint32_t idx, gen;

	if (decode(h, &idx, &gen)) {
		pthread_mutex_lock(&table_lock);
		if (idx < table_cap && table[idx].obj &&
		    table[idx].gen == (gen & ((1u << (32 - IDX_BITS - 2)) - 1u))) {
			o = table[idx].obj;
			table[idx].obj = NULL;
			/* A new generation: the old handle value is dead for good. */
			table[idx].gen = (table[idx].gen + 1u) & ((1u << (32 - IDX_BITS - 2)) - 1u);
			if (table[idx].gen == 0)
				table[idx].gen = 1;
			if (idx < table_used_hint)
				table_used_hint = idx;
		}
		pthread_mutex_unlock(&table_lock);
	}
	if (!o) {
		SetLastError(ERROR_INVALID_HANDLE);
		return FALSE;
	}
	if (o->close)
		o->close(o);
	fpw_obj_put(o);
	return TRUE;
}
