#include <sched.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/spin.h"

/* Whether this thread may run on more than one CPU (asked once per thread:
 * affinity is set before a program starts in practice). */
static bool may_spin(void)
{
	static _Thread_local int cached = -1;

	if (cached < 0) {
		cpu_set_t set;

		cached = sysconf(_SC_NPROCESSORS_ONLN) > 1 &&
			 sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 1;
	}
	return cached;
}

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

bool fp_spin_until(struct fp_spin *s, bool (*ready)(const void *arg), const void *arg)
{
	uint32_t fails = atomic_load_explicit(&s->fails, memory_order_relaxed);
	uint32_t budget = FP_SPIN_MAX_NS;
	int64_t until;

	if (!may_spin())
		return false;
	if (fails >= FP_SPIN_FAILS) {
		if (atomic_fetch_add_explicit(&s->skip, 1, memory_order_relaxed) % 64 != 63)
			return false;
	} else {
		budget >>= fails;
	}
	until = fp_now() + budget;
	for (unsigned i = 1;; i++) {
		if (ready(arg)) {
			atomic_store_explicit(&s->fails, 0, memory_order_relaxed);
			return true;
		}
		relax();
		if (i % 32 == 0 && fp_now() >= until)
			break;
	}
	if (fails < FP_SPIN_FAILS)
		atomic_store_explicit(&s->fails, fails + 1, memory_order_relaxed);
	return false;
}
