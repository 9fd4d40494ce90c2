#include "jam.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void jam_die(const char *what)
{
	fprintf(stderr, "jam: %s: %s\n", what, strerror(errno));
	abort();
}

void tu_jam_stderr(struct tu_jam *j)
{
	static const char fill[4096];
	int p[2];

	fflush(stderr);
	if (pipe2(p, O_CLOEXEC) < 0)
		jam_die("pipe2");
	/* Fill it without blocking, then make the write end blocking again. */
	if (fcntl(p[1], F_SETFL, O_NONBLOCK) < 0)
		jam_die("O_NONBLOCK");
	while (write(p[1], fill, sizeof(fill)) > 0 || errno == EINTR)
		;
	if (errno != EAGAIN)
		jam_die("fill");
	while (write(p[1], fill, 1) > 0) /* the last bytes of a partial page */
		;
	if (fcntl(p[1], F_SETFL, 0) < 0)
		jam_die("blocking");
	j->saved = dup(STDERR_FILENO);
	if (j->saved < 0 || dup2(p[1], STDERR_FILENO) < 0)
		jam_die("dup2");
	close(p[1]);
	j->rd = p[0];
}

/* Read and discard until nothing came for 100 ms, or for ms at most. */
static void discard(int fd, int ms)
{
	static char buf[65536];
	int64_t end = tu_now_ms() + ms;

	while (tu_now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 100) <= 0 || read(fd, buf, sizeof(buf)) <= 0)
			break;
	}
}

void tu_unjam_stderr(struct tu_jam *j)
{
	discard(j->rd, 5000);
	if (dup2(j->saved, STDERR_FILENO) < 0)
		jam_die("dup2 back");
	close(j->saved);
	discard(j->rd, 1000); /* a write under way at the switch */
	close(j->rd);
}
