/*
 * The record ring: a fixed array of fixed records, allocated once.  The
 * writers are the filter's threads (workers for opens and execs, the
 * notification thread for the rest); the readers are the port's message
 * callbacks (GetMiniSpyLog).  One mutex guards it, and it is held only to
 * copy one record in or out: a reader encodes a record after it has taken
 * it, outside the lock, so a slow reader never holds up an open.  When the
 * ring is full the new record is dropped (an open is never made to wait for
 * room); its sequence number is used all the same, so a reader sees the
 * gap, and the next record stored carries the count.  A record taken for a
 * reply is gone from the ring even if the reply never arrives (the reader
 * gave up or disconnected; the port does not tell us): then the gap alone
 * shows it (docs/MINISPY.md, "The ring").
 */
#include "mspy.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static struct {
	pthread_mutex_t lock;
	struct mspy_rec *slot;
	unsigned cap, head, count;
	uint32_t seq;     /* last sequence number given */
	uint32_t pending; /* dropped since the last stored record */
	uint64_t stored, dropped, taken;
} ring = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The bytes of a record that matter: the header and the paths used. */
static size_t rec_bytes(const struct mspy_rec *r)
{
	size_t n = offsetof(struct mspy_rec, names) + r->path_len + 1u;

	if (r->new_len)
		n += r->new_len + 1u;
	return n;
}

void mspy_rec_finish(struct mspy_rec *r, const char *path, const char *new_path)
{
	size_t plen = path ? strlen(path) : 0, nlen = new_path ? strlen(new_path) : 0;
	const size_t avail = MSPY_NAMES_MAX - 2; /* two NULs */

	if (!path)
		r->flags |= FLTPORT_MSPY_EXT_NO_PATH;
	if (plen + nlen > avail) {
		size_t p = plen, n = nlen;

		/* Share the room: a short one keeps all of it. */
		if (plen <= avail / 2)
			n = avail - plen;
		else if (nlen <= avail / 2)
			p = avail - nlen;
		else
			p = avail / 2, n = avail - avail / 2;
		plen = mspy_utf8_cut(path, plen, p);
		nlen = new_path ? mspy_utf8_cut(new_path, nlen, n) : 0;
		r->flags |= FLTPORT_MSPY_EXT_TRUNCATED;
	}
	memcpy(r->names, path ? path : "", plen);
	r->names[plen] = '\0';
	r->path_len = (uint16_t)plen;
	r->path_units = (uint16_t)mspy_utf8_units(r->names, plen);
	r->new_len = (uint16_t)nlen;
	r->new_units = 0;
	if (nlen) {
		memcpy(r->names + plen + 1, new_path, nlen);
		r->names[plen + 1 + nlen] = '\0';
		r->new_units = (uint16_t)mspy_utf8_units(r->names + plen + 1, nlen);
	}
	r->wire_len = (uint32_t)fltport_mspy_record_len(r->path_units, r->new_units);
}

int mspy_ring_init(unsigned cap)
{
	if (cap == 0 || cap > MSPY_RING_MAX)
		return -EINVAL;
	ring.slot = calloc(cap, sizeof(*ring.slot));
	if (!ring.slot)
		return -ENOMEM;
	ring.cap = cap;
	return 0;
}

void mspy_ring_fini(void)
{
	pthread_mutex_lock(&ring.lock);
	free(ring.slot);
	ring.slot = NULL;
	ring.cap = ring.count = 0;
	pthread_mutex_unlock(&ring.lock);
}

void mspy_ring_put(struct mspy_rec *r)
{
	pthread_mutex_lock(&ring.lock);
	r->seq = ++ring.seq;
	if (ring.count == ring.cap) {
		ring.pending++;
		ring.dropped++;
	} else {
		r->dropped = ring.pending;
		ring.pending = 0;
		memcpy(&ring.slot[(ring.head + ring.count) % ring.cap], r, rec_bytes(r));
		ring.count++;
		ring.stored++;
	}
	pthread_mutex_unlock(&ring.lock);
}

/* Take the oldest record if it fits in `room` bytes: 1 taken, 0 none,
 * -1 it does not fit. */
static int take_one(struct mspy_rec *r, size_t room)
{
	const struct mspy_rec *s;
	int rc = 0;

	pthread_mutex_lock(&ring.lock);
	if (ring.count) {
		s = &ring.slot[ring.head];
		if (s->wire_len > room) {
			rc = -1;
		} else {
			memcpy(r, s, rec_bytes(s));
			ring.head = (ring.head + 1) % ring.cap;
			ring.count--;
			ring.taken++;
			rc = 1;
		}
	}
	pthread_mutex_unlock(&ring.lock);
	return rc;
}

static void set_irp(const struct mspy_rec *r, struct fltport_mspy_record_data *d)
{
	d->flags = FLTPORT_MSPY_FLT_CALLBACK_DATA_IRP_OPERATION;
	switch (r->op) {
	case FLTPORT_MSPY_OP_OPEN:
		d->major = FLTPORT_MSPY_IRP_MJ_CREATE;
		d->information = FLTPORT_MSPY_FILE_OPENED;
		break;
	case FLTPORT_MSPY_OP_CREATE:
		d->major = FLTPORT_MSPY_IRP_MJ_CREATE;
		d->information = FLTPORT_MSPY_FILE_CREATED;
		break;
	case FLTPORT_MSPY_OP_EXEC:
		/* Mapping an image for execution: FltMgr's FsFilter callback. */
		d->flags = FLTPORT_MSPY_FLT_CALLBACK_DATA_FS_FILTER_OPERATION;
		d->major = FLTPORT_MSPY_IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION;
		d->arg[0] = FLTPORT_MSPY_SYNC_TYPE_CREATE_SECTION;
		d->arg[1] = FLTPORT_MSPY_PAGE_EXECUTE;
		break;
	case FLTPORT_MSPY_OP_READ:
		d->major = FLTPORT_MSPY_IRP_MJ_READ;
		break;
	case FLTPORT_MSPY_OP_WRITE:
		d->major = FLTPORT_MSPY_IRP_MJ_WRITE;
		break;
	case FLTPORT_MSPY_OP_CLOSE_WRITE:
		d->major = FLTPORT_MSPY_IRP_MJ_CLEANUP;
		break;
	case FLTPORT_MSPY_OP_DELETE:
		d->major = FLTPORT_MSPY_IRP_MJ_SET_INFORMATION;
		d->arg[1] = FLTPORT_MSPY_FILE_DISPOSITION_INFORMATION;
		break;
	case FLTPORT_MSPY_OP_RENAME:
		d->major = FLTPORT_MSPY_IRP_MJ_SET_INFORMATION;
		d->arg[1] = FLTPORT_MSPY_FILE_RENAME_INFORMATION;
		break;
	}
}

/* Write `n` units and a NUL at out + off; returns the offset after them. */
static size_t put_units(char *out, size_t off, const char *s, size_t len, size_t n)
{
	uint32_t u[MSPY_NAMES_MAX + 1];
	size_t got = mspy_utf8_decode(s, len, u);

	u[got] = 0;
	memcpy(out + off, u, (n + 1) * 4);
	return off + (n + 1) * 4;
}

/* The wire form of `r` (exactly r->wire_len bytes) at `out`. */
static void encode(const struct mspy_rec *r, char *out)
{
	struct fltport_mspy_log_record h;
	struct fltport_mspy_ext x;
	size_t off;

	memset(&h, 0, sizeof(h));
	h.length = r->wire_len;
	h.sequence_number = r->seq;
	h.record_type = FLTPORT_MSPY_RECORD_TYPE_FLAG_FLTPORT_EXT;
	if (r->dropped)
		h.record_type |= FLTPORT_MSPY_RECORD_TYPE_FLAG_EXCEED_MEMORY_ALLOWANCE;
	h.data.originating_time = h.data.completion_time = r->time;
	h.data.device_object = (uintptr_t)r->dev;
	h.data.file_object = (uintptr_t)r->ino;
	h.data.process_id = (uintptr_t)(uint32_t)r->pid;
	h.data.thread_id = r->tid;
	h.data.status = (int32_t)FLTPORT_MSPY_STATUS_SUCCESS;
	set_irp(r, &h.data);
	memset(out, 0, r->wire_len); /* padding is zero: nothing of ours leaks */
	memcpy(out, &h, sizeof(h));
	off = put_units(out, sizeof(h), r->names, r->path_len, r->path_units);
	off = (off + 7) & ~(size_t)7;
	memset(&x, 0, sizeof(x));
	x.magic = FLTPORT_MSPY_EXT_MAGIC;
	x.size = sizeof(x);
	x.op = r->op;
	x.uid = r->uid;
	x.dropped = r->dropped;
	x.flags = r->flags;
	x.new_name_len = r->new_len ? r->new_units : 0;
	memcpy(x.process, r->comm, sizeof(x.process));
	x.process[sizeof(x.process) - 1] = '\0';
	memcpy(out + off, &x, sizeof(x));
	off += sizeof(x);
	if (r->new_len)
		put_units(out, off, r->names + r->path_len + 1, r->new_len, r->new_units);
}

uint32_t mspy_ring_take(void *out, size_t cap, size_t *len)
{
	static __thread struct mspy_rec r; /* 1 KiB: off the callback's stack */
	size_t used = 0;
	int rc = 0;

	while ((rc = take_one(&r, cap - used)) == 1) {
		encode(&r, (char *)out + used);
		used += r.wire_len;
	}
	*len = used;
	if (used)
		return FLTPORT_MSPY_STATUS_SUCCESS;
	return rc < 0 ? FLTPORT_MSPY_STATUS_BUFFER_TOO_SMALL : FLTPORT_MSPY_STATUS_NO_MORE_ENTRIES;
}

void mspy_ring_stats(struct mspy_ring_stats *st)
{
	pthread_mutex_lock(&ring.lock);
	st->stored = ring.stored;
	st->dropped = ring.dropped;
	st->recorded = ring.stored + ring.dropped;
	st->taken = ring.taken;
	st->depth = ring.count;
	st->capacity = ring.cap;
	pthread_mutex_unlock(&ring.lock);
}
