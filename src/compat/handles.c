/*
 * The handle table.  A HANDLE is an index plus a generation, never a
 * pointer: CloseHandle on a closed or made-up handle, or any call with one,
 * is detected (ERROR_INVALID_HANDLE) instead of dereferencing garbage.
 * Values are multiples of 4, so the Windows "hEvent | 1" idiom decodes to
 * the same handle.
 *
 * A reused slot does not answer to an old handle: closing bumps the slot's
 * generation, and free slots are handed out least recently freed first, so
 * a slot comes back only after every other free slot has been used.  An old
 * value could only match again after its slot's generation wrapped: 2^32
 * reuses of that one slot on LP64, 255 on a 32-bit build (where only 8 bits
 * are left for it).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "compat/compat.h"

#define IDX_BITS 22u
#define IDX_MAX ((1u << IDX_BITS) - 1u) /* slots 0 .. IDX_MAX - 1: index + 1 fits */
#if UINTPTR_MAX > 0xFFFFFFFFu
#define GEN_MASK UINT32_MAX
#else
#define GEN_MASK ((1u << (32u - IDX_BITS - 2u)) - 1u)
#endif
#define NO_SLOT UINT32_MAX

struct entry {
	uint32_t gen;        /* 1 .. GEN_MASK */
	uint32_t next;       /* free: the next free slot, NO_SLOT at the tail */
	struct fpw_obj *obj; /* NULL: free */
};

/* table_lock guards everything below. */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *table;
static uint32_t table_cap;
static uint32_t free_head = NO_SLOT, free_tail = NO_SLOT; /* FIFO of free slots */

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

bool fpw_obj_tryget(struct fpw_obj *o)
{
	int r = atomic_load_explicit(&o->refs, memory_order_relaxed);

	while (r > 0)
		if (atomic_compare_exchange_weak_explicit(&o->refs, &r, r + 1, memory_order_acquire,
							  memory_order_relaxed))
			return true;
	return false;
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

	if (h == NULL || h == INVALID_HANDLE_VALUE || (v & IDX_MAX) == 0 ||
	    (v >> IDX_BITS) > GEN_MASK)
		return false;
	*idx = (uint32_t)(v & IDX_MAX) - 1u;
	*gen = (uint32_t)(v >> IDX_BITS);
	return true;
}

static void free_push(uint32_t i)
{
	table[i].next = NO_SLOT;
	if (free_tail == NO_SLOT)
		free_head = i;
	else
		table[free_tail].next = i;
	free_tail = i;
}

static uint32_t free_pop(void)
{
	uint32_t i = free_head;

	if (i != NO_SLOT) {
		free_head = table[i].next;
		if (free_head == NO_SLOT)
			free_tail = NO_SLOT;
	}
	return i;
}

/* Double the table (up to IDX_MAX slots) and queue the new slots. */
static void grow(void)
{
	uint32_t ncap = table_cap ? table_cap * 2 : 64;
	struct entry *n;

	if (ncap > IDX_MAX)
		ncap = IDX_MAX;
	if (ncap <= table_cap)
		return;
	n = realloc(table, ncap * sizeof(*n));
	if (!n)
		return;
	table = n;
	for (uint32_t k = table_cap; k < ncap; k++) {
		table[k] = (struct entry){ .gen = 1, .obj = NULL };
		free_push(k);
	}
	table_cap = ncap;
}

HANDLE fpw_handle_new(struct fpw_obj *o)
{
	uint32_t i;
	HANDLE h = NULL;

	pthread_mutex_lock(&table_lock);
	if (free_head == NO_SLOT)
		grow();
	i = free_pop();
	if (i != NO_SLOT) {
		table[i].obj = o;
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
		if (idx < table_cap && table[idx].gen == gen && table[idx].obj &&
		    (!kind || table[idx].obj->kind == kind)) {
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

	/* GetCurrentProcess(), GetCurrentThread(): closing them does nothing. */
	if (h == (HANDLE)(LONG_PTR)-1 || h == (HANDLE)(LONG_PTR)-2)
		return TRUE;
	if (decode(h, &idx, &gen)) {
		pthread_mutex_lock(&table_lock);
		if (idx < table_cap && table[idx].obj && table[idx].gen == gen) {
			o = table[idx].obj;
			table[idx].obj = NULL;
			/* A new generation kills the old value; the slot goes to
			 * the back of the queue, so it is reused last. */
			table[idx].gen = (table[idx].gen + 1u) & GEN_MASK;
			if (table[idx].gen == 0)
				table[idx].gen = 1;
			free_push(idx);
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
