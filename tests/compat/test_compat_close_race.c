/*
 * Regression (issue 8, defect 9): CloseHandle on a port right after an
 * overlapped FilterGetMessage completed.  The completion still held a
 * reference to the port; its release ran the port's destroy on the
 * library's own receive thread, which joined itself and freed the
 * connection it was still using (SIGSEGV in real clients).  The filter side
 * here is the native API in this process; the user side is the Windows
 * layer, with an event and with a completion port.  Run under ASan and TSan
 * by CI (this suite is also built as a plain executable).
 */
#ifdef FP_PLAIN
#include "plain_criterion.h"
#else
#include <criterion/criterion.h>
#endif

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "testutil.h"

#include <fltport/port.h>
#include <windows.h>
#include <fltuser.h>

#define SEC ((int64_t)1000000000)

static fltport_client *_Atomic current;
static atomic_int nconnect, ndisconnect;

static int on_connect(fltport_client *c, void *sc, const void *ctx, size_t len,
		      const struct fltport_peer *peer, void **cookie, uint32_t *status)
{
	*cookie = c;
	atomic_store(&current, c);
	atomic_fetch_add(&nconnect, 1);
	return 0;
}

static void on_disconnect(void *cookie)
{
	fltport_client *expect = cookie;

	atomic_compare_exchange_strong(&current, &expect, NULL);
	fltport_client_close(cookie);
	atomic_fetch_add(&ndisconnect, 1);
}

static fltport_server *start(const char **name, WCHAR *wname, size_t wcap)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.max_connections = 4,
		.access = { .mode = FLTPORT_ACCESS_EVERYONE },
	};
	fltport_server *srv;

	tu_private_dir();
	*name = tu_port_name("closerace");
	swprintf(wname, wcap, L"\\%s", *name);
	cr_assert_eq(fltport_server_create(*name, &cfg, &srv), 0);
	return srv;
}

static bool has_client(void *arg)
{
	return atomic_load(&nconnect) > *(int *)arg && atomic_load(&current) != NULL;
}

/* Send one message (no reply) to the connected port: it completes the
 * pending overlapped read. */
static void send_one(int round)
{
	int rc = fltport_send(atomic_load(&current), &round, sizeof(round), NULL, 0, NULL, NULL,
			      NULL, 10 * SEC);

	cr_assert_eq(rc, 0, "round %d: send: %s", round, fltport_strerror(rc));
}

static void loop(bool use_iocp)
{
	const char *name;
	WCHAR wname[128];
	fltport_server *srv = start(&name, wname, 128);
	int rounds = (int)tu_scaled(300, 100);

	for (int i = 0; i < rounds; i++) {
		struct {
			FILTER_MESSAGE_HEADER h;
			int body;
		} msg;
		OVERLAPPED ov;
		HANDLE port = INVALID_HANDLE_VALUE, ev = NULL, iocp = NULL;
		int seen = atomic_load(&nconnect);
		HRESULT hr;

		hr = FilterConnectCommunicationPort(wname, 0, NULL, 0, NULL, &port);
		cr_assert_eq(hr, S_OK, "round %d: connect 0x%08X", i, (unsigned)hr);
		cr_assert(tu_wait_until(has_client, &seen, 10000));
		memset(&ov, 0, sizeof(ov));
		if (use_iocp) {
			iocp = CreateIoCompletionPort(port, NULL, 7, 1);
			cr_assert_neq(iocp, NULL);
		} else {
			ev = CreateEventW(NULL, TRUE, FALSE, NULL);
			cr_assert_neq(ev, NULL);
			ov.hEvent = ev;
		}
		hr = FilterGetMessage(port, &msg.h, sizeof(msg), &ov);
		cr_assert_eq(hr, HRESULT_FROM_WIN32(ERROR_IO_PENDING), "round %d: 0x%08X", i,
			     (unsigned)hr);
		send_one(i);
		if (use_iocp) {
			DWORD bytes = 0;
			ULONG_PTR key = 0;
			LPOVERLAPPED got = NULL;

			cr_assert(GetQueuedCompletionStatus(iocp, &bytes, &key, &got, 10000));
			cr_assert_eq(got, &ov);
		} else {
			cr_assert_eq(WaitForSingleObject(ev, 10000), WAIT_OBJECT_0);
		}
		cr_assert(CloseHandle(port)); /* at once: the completion may still be leaving */
		cr_assert_eq(msg.body, i);
		CloseHandle(use_iocp ? iocp : ev);
	}
	fltport_server_destroy(srv);
}

Test(close_race, close_right_after_overlapped_completion_event, .timeout = 300)
{
	loop(false);
}

Test(close_race, close_right_after_overlapped_completion_iocp, .timeout = 300)
{
	loop(true);
}
