#include "core/fork.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

_Atomic unsigned fp_fork_generation;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static struct fp_forkreg *reg_head;
static int inert_fd = -1; /* the child's template for fp_fork_kill_fd() */

/* The registry is consistent across fork(): the forking thread holds its
 * lock from prepare to parent/child. */
static void prepare(void)
{
	pthread_mutex_lock(&reg_lock);
}

static void parent(void)
{
	pthread_mutex_unlock(&reg_lock);
}

static void child(void)
{
	atomic_fetch_add_explicit(&fp_fork_generation, 1, memory_order_relaxed);
	inert_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	for (struct fp_forkreg *r = reg_head; r; r = r->next)
		r->in_child(r);
	if (inert_fd >= 0)
		close(inert_fd);
	inert_fd = -1;
	pthread_mutex_unlock(&reg_lock);
}

static void install(void)
{
	pthread_atfork(prepare, parent, child);
}

void fp_fork_register(struct fp_forkreg *r, void (*in_child)(struct fp_forkreg *r))
{
	pthread_once(&reg_once, install);
	r->in_child = in_child;
	pthread_mutex_lock(&reg_lock);
	r->gen = atomic_load_explicit(&fp_fork_generation, memory_order_relaxed);
	r->prev = NULL;
	r->next = reg_head;
	if (reg_head)
		reg_head->prev = r;
	reg_head = r;
	pthread_mutex_unlock(&reg_lock);
}

void fp_fork_unregister(struct fp_forkreg *r)
{
	pthread_mutex_lock(&reg_lock);
	if (r->prev)
		r->prev->next = r->next;
	else if (reg_head == r)
		reg_head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	pthread_mutex_unlock(&reg_lock);
}

void fp_fork_kill_fd(int fd)
{
	if (fd < 0)
		return;
	/* dup3 replaces the file atomically and keeps the number taken; if
	 * no inert socket could be made, closing is the next best thing. */
	if (inert_fd < 0 || dup3(inert_fd, fd, O_CLOEXEC) < 0)
		close(fd);
}
