/*
 * fp_fork_peer MODE NAME — a process that forks a worker without exec
 * (tests/integration/test_regress.c, the fork rule of docs/DESIGN.md).
 *
 * service: connects to NAME, then forks.  The child tries a request on the
 *   inherited connection (2 s deadline) and prints
 *     CHILD pid=P request=RC ended=E
 *   then lives on for 60 s holding whatever it inherited.
 * filter: creates port NAME (open to everyone), then forks.  The child
 *   tries fltport_send() on the client port it inherited and prints
 *     CHILD pid=P send=RC
 *   then lives on for 60 s.  (The test connects before READY.)
 * engine: creates a fanotify filter attached to the file system holding
 *   NAME (a path) whose pre_open callback, on its first call, forks a child
 *   that never execs (it sleeps 60 s) and allows.  Prints ENGINE_READY,
 *   then CHILD pid=P once the callback forked.
 * The parent prints READY child=P and waits to be killed (60 s at most).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fltport/filter.h>
#include <fltport/port.h>

#include "testutil.h"

#define SEC 1000000000LL

static fltport_client *_Atomic client;

static int on_connect(fltport_client *c, void *sc, const void *ctx, size_t len,
		      const struct fltport_peer *peer, void **cookie, uint32_t *status)
{
	*cookie = c;
	atomic_store(&client, c);
	return 0;
}

static void on_disconnect(void *cookie)
{
	fltport_client_close(cookie);
}

static int service(const char *name)
{
	fltport_conn *c;
	pid_t pid;
	int rc = fltport_connect(name, NULL, 0, 0, 10 * SEC, &c, NULL);

	if (rc < 0) {
		tu_say("CONNECT_ERR rc=%d", rc);
		return 1;
	}
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		uint32_t st = 0;

		alarm(60);
		rc = fltport_request(c, "c", 1, NULL, 0, NULL, 0, NULL, &st, 2 * SEC);
		tu_say("CHILD pid=%d request=%d ended=%d", (int)getpid(), rc,
		       fltport_conn_ended(c) ? 1 : 0);
		fltport_close(c); /* frees the child's copy only */
		sleep(60);
		_exit(0);
	}
	tu_say("READY child=%d", (int)pid);
	sleep(60);
	fltport_close(c);
	return 0;
}

static int filter(const char *name)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.max_connections = 1,
		.access = { .mode = FLTPORT_ACCESS_EVERYONE },
	};
	fltport_server *srv;
	pid_t pid;
	int rc = fltport_server_create(name, &cfg, &srv);

	if (rc < 0) {
		tu_say("CREATE_ERR rc=%d", rc);
		return 1;
	}
	tu_say("LISTENING");
	for (int i = 0; i < 10000 && !atomic_load(&client); i++)
		usleep(1000);
	if (!atomic_load(&client))
		return 3;
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		alarm(60);
		rc = fltport_send(atomic_load(&client), "m", 1, NULL, 0, NULL, NULL, NULL, 2 * SEC);
		tu_say("CHILD pid=%d send=%d", (int)getpid(), rc);
		fltport_server_destroy(srv); /* nothing to do in the child */
		sleep(60);
		_exit(0);
	}
	tu_say("READY child=%d", (int)pid);
	sleep(60);
	fltport_server_destroy(srv);
	return 0;
}

static atomic_int forked;

static int fork_in_callback(void *cookie, const struct fltport_filter_event *ev)
{
	if (atomic_exchange(&forked, 1) == 0) {
		pid_t pid = fork();

		if (pid == 0) {
			alarm(60);
			sleep(60); /* holds whatever the library left it */
			_exit(0);
		}
		tu_say("CHILD pid=%d", (int)pid);
	}
	return FLTPORT_ALLOW;
}

static int engine(const char *path)
{
	struct fltport_filter_config cfg = { .pre_open = fork_in_callback };
	fltport_filter *f;
	int rc = fltport_filter_create(&cfg, &f);

	if (rc == 0)
		rc = fltport_filter_attach(f, path);
	if (rc < 0) {
		tu_say("ENGINE_ERR rc=%d", rc);
		return 1;
	}
	tu_say("ENGINE_READY");
	sleep(60);
	fltport_filter_destroy(f);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "service") == 0)
		return service(argv[2]);
	if (argc == 3 && strcmp(argv[1], "filter") == 0)
		return filter(argv[2]);
	if (argc == 3 && strcmp(argv[1], "engine") == 0)
		return engine(argv[2]);
	fprintf(stderr, "usage: fp_fork_peer service|filter|engine NAME\n");
	return 64;
}
