#!/usr/bin/env bash
# Compile-only check of the Windows-compatible headers (include/fltport/win),
# SPEC §8.13, §8.9, §8.20, §8.30, issue 3 point 4:
#   - every header alone, and all of them in one translation unit
#     (windows.h, fltuser.h, fltkernel.h, ntstatus.h, winioctl.h and the case
#     aliases fltUser.h, fltKernel.h), in two include orders;
#   - as C11 and as C++17, with -Wall -Wextra -Werror;
#   - with static asserts on every shared layout (FILTER_MESSAGE_HEADER,
#     FILTER_REPLY_HEADER, OVERLAPPED, LARGE_INTEGER, the Windows widths) and
#     on the types and values of the §4/§8.20 constants;
#   - and the README's C examples (scripts/readme-snippets.sh): the native
#     ones against include/, the Windows ones against include/fltport/win
#     (as `pkg-config --cflags fltport-win` puts it), with -Wall -Wextra
#     -Werror (unused callback parameters allowed, as in the build).
# Uses gcc/g++ (CC/CXX to override); clang/clang++ too when installed.
# Exits non-zero on the first failure.
set -euo pipefail

cd "$(dirname "$0")/.."
inc=include/fltport/win
tmp=$(mktemp -d /tmp/fltport-headers.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

headers=(windows.h fltuser.h fltkernel.h ntstatus.h winioctl.h fltUser.h fltKernel.h fltuserstructures.h
	fltUserStructures.h Windows.h strsafe.h Strsafe.h excpt.h tchar.h fltport_crt.h winsvc.h psapi.h)

# The checks shared by C and C++ (FP_SA is _Static_assert / static_assert).
cat >"$tmp/checks.h" <<'EOT'
#include <stddef.h>
#ifdef __cplusplus
#include <type_traits>
#define FP_SA(e, m) static_assert(e, m)
#define FP_SAME(x, T) (std::is_same<decltype(x), T>::value)
#define FP_ALIGNOF(T) alignof(T)
#define FP_MIN16(n) ((n) < 16u ? (n) : 16u) /* (libstdc++ headers included after windows.h may drop min/max, as on Windows) */
#else
#define FP_ALIGNOF(T) _Alignof(T)
#define FP_MIN16(n) min((n), 16u) /* §8.22 */
#define FP_SA(e, m) _Static_assert(e, m)
#define FP_SAME(x, T) _Generic((x), T: 1, default: 0)
#endif

/* Windows widths on LP64 (§8.9, §8.23). */
FP_SA(sizeof(BOOL) == 4 && sizeof(BOOLEAN) == 1 && sizeof(BYTE) == 1 && sizeof(UCHAR) == 1, "8/32");
FP_SA(sizeof(SHORT) == 2 && sizeof(USHORT) == 2 && sizeof(WORD) == 2, "16-bit");
FP_SA(sizeof(INT) == 4 && sizeof(UINT) == 4 && sizeof(LONG) == 4 && sizeof(ULONG) == 4, "32-bit");
FP_SA(sizeof(DWORD) == 4 && sizeof(NTSTATUS) == 4 && sizeof(HRESULT) == 4, "32-bit");
FP_SA(sizeof(LONGLONG) == 8 && sizeof(ULONGLONG) == 8 && sizeof(LARGE_INTEGER) == 8, "64-bit");
FP_SA(sizeof(ULONG_PTR) == sizeof(void *) && sizeof(LONG_PTR) == sizeof(void *), "pointer-sized");
FP_SA(sizeof(DWORD_PTR) == sizeof(void *) && sizeof(SIZE_T) == sizeof(void *), "pointer-sized");
FP_SA(sizeof(HANDLE) == sizeof(void *) && sizeof(WCHAR) == sizeof(wchar_t), "HANDLE, WCHAR");
FP_SA((LONG)-1 < 0 && (ULONG)-1 > 0 && (DWORD)-1 > 0 && (NTSTATUS)-1 < 0, "signedness");

/* The layouts that cross the process boundary (§3.6, §8.9). */
FP_SA(sizeof(FILTER_MESSAGE_HEADER) == 16, "FILTER_MESSAGE_HEADER size");
FP_SA(offsetof(FILTER_MESSAGE_HEADER, ReplyLength) == 0, "ReplyLength offset");
FP_SA(offsetof(FILTER_MESSAGE_HEADER, MessageId) == 8, "MessageId offset");
FP_SA(FP_ALIGNOF(FILTER_MESSAGE_HEADER) == 8, "FILTER_MESSAGE_HEADER alignment");
FP_SA(sizeof(FILTER_REPLY_HEADER) == 16, "FILTER_REPLY_HEADER size");
FP_SA(offsetof(FILTER_REPLY_HEADER, Status) == 0, "Status offset");
FP_SA(offsetof(FILTER_REPLY_HEADER, MessageId) == 8, "MessageId offset");
FP_SA(FP_ALIGNOF(FILTER_REPLY_HEADER) == 8, "FILTER_REPLY_HEADER alignment");
/* OVERLAPPED: the Windows x64 layout (§8.28). */
#if defined(__LP64__) || defined(_WIN64)
FP_SA(sizeof(OVERLAPPED) == 32, "OVERLAPPED size");
FP_SA(offsetof(OVERLAPPED, Internal) == 0 && offsetof(OVERLAPPED, InternalHigh) == 8, "Internal*");
FP_SA(offsetof(OVERLAPPED, Offset) == 16 && offsetof(OVERLAPPED, OffsetHigh) == 20, "Offset*");
FP_SA(offsetof(OVERLAPPED, Pointer) == 16 && offsetof(OVERLAPPED, hEvent) == 24, "Pointer, hEvent");
#endif
FP_SA(offsetof(LARGE_INTEGER, LowPart) == 0 && offsetof(LARGE_INTEGER, HighPart) == 4, "LARGE_INTEGER");

/* §4 values and §8.20 types: STATUS_* are NTSTATUS, E_* HRESULT. */
FP_SA(FP_SAME(STATUS_SUCCESS, NTSTATUS) && FP_SAME(STATUS_TIMEOUT, NTSTATUS), "NTSTATUS type");
FP_SA(FP_SAME(STATUS_BUFFER_OVERFLOW, NTSTATUS) && FP_SAME(STATUS_FLT_NO_WAITER_FOR_REPLY, NTSTATUS), "NTSTATUS type");
FP_SA(FP_SAME(S_OK, HRESULT) && FP_SAME(E_FAIL, HRESULT) && FP_SAME(E_INVALIDARG, HRESULT), "HRESULT type");
FP_SA(FP_SAME(HRESULT_FROM_WIN32(ERROR_ACCESS_DENIED), HRESULT), "HRESULT_FROM_WIN32 type");
FP_SA(STATUS_TIMEOUT == 0x102 && STATUS_PENDING == 0x103, "success codes");
FP_SA(STATUS_BUFFER_OVERFLOW == (NTSTATUS)0x80000005u && STATUS_BUFFER_OVERFLOW < 0, "0x80000005");
FP_SA(STATUS_DATATYPE_MISALIGNMENT == (NTSTATUS)0x80000002u, "0x80000002");
FP_SA(STATUS_NO_MORE_ENTRIES == (NTSTATUS)0x8000001Au, "0x8000001A");
FP_SA(STATUS_UNSUCCESSFUL == (NTSTATUS)0xC0000001u, "0xC0000001");
FP_SA(STATUS_INVALID_HANDLE == (NTSTATUS)0xC0000008u, "0xC0000008");
FP_SA(STATUS_INVALID_PARAMETER == (NTSTATUS)0xC000000Du, "0xC000000D");
FP_SA(STATUS_INVALID_DEVICE_REQUEST == (NTSTATUS)0xC0000010u, "0xC0000010");
FP_SA(STATUS_ACCESS_DENIED == (NTSTATUS)0xC0000022u, "0xC0000022");
FP_SA(STATUS_BUFFER_TOO_SMALL == (NTSTATUS)0xC0000023u, "0xC0000023");
FP_SA(STATUS_OBJECT_NAME_NOT_FOUND == (NTSTATUS)0xC0000034u, "0xC0000034");
FP_SA(STATUS_OBJECT_NAME_COLLISION == (NTSTATUS)0xC0000035u, "0xC0000035");
FP_SA(STATUS_PORT_DISCONNECTED == (NTSTATUS)0xC0000037u, "0xC0000037");
FP_SA(STATUS_THREAD_IS_TERMINATING == (NTSTATUS)0xC000004Bu, "0xC000004B");
FP_SA(STATUS_INTEGER_OVERFLOW == (NTSTATUS)0xC0000095u, "0xC0000095");
FP_SA(STATUS_INSUFFICIENT_RESOURCES == (NTSTATUS)0xC000009Au, "0xC000009A");
FP_SA(STATUS_IO_TIMEOUT == (NTSTATUS)0xC00000B5u, "0xC00000B5");
FP_SA(STATUS_CANCELLED == (NTSTATUS)0xC0000120u, "0xC0000120");
FP_SA(STATUS_NOT_FOUND == (NTSTATUS)0xC0000225u, "0xC0000225");
FP_SA(STATUS_CONNECTION_COUNT_LIMIT == (NTSTATUS)0xC0000246u, "0xC0000246");
FP_SA(STATUS_FLT_BUFFER_TOO_SMALL == (NTSTATUS)0x801C0001u, "0x801C0001");
FP_SA(STATUS_FLT_DELETING_OBJECT == (NTSTATUS)0xC01C000Bu, "0xC01C000B");
FP_SA(STATUS_FLT_NO_WAITER_FOR_REPLY == (NTSTATUS)0xC01C0020u, "0xC01C0020");
FP_SA(S_OK == 0 && S_FALSE == 1 && E_FAIL == (HRESULT)0x80004005u && E_NOTIMPL == (HRESULT)0x80004001u, "E_*");
FP_SA(E_OUTOFMEMORY == (HRESULT)0x8007000Eu && E_INVALIDARG == (HRESULT)0x80070057u, "E_*");
FP_SA(E_HANDLE == (HRESULT)0x80070006u && E_ACCESSDENIED == (HRESULT)0x80070005u, "E_*");
FP_SA(ERROR_SUCCESS == 0 && ERROR_INVALID_FUNCTION == 1 && ERROR_FILE_NOT_FOUND == 2, "ERROR_*");
FP_SA(ERROR_ACCESS_DENIED == 5 && ERROR_INVALID_HANDLE == 6 && ERROR_NOT_ENOUGH_MEMORY == 8, "ERROR_*");
FP_SA(ERROR_INVALID_PARAMETER == 87 && ERROR_INSUFFICIENT_BUFFER == 122 && ERROR_MORE_DATA == 234, "ERROR_*");
FP_SA(ERROR_NO_MORE_ITEMS == 259 && ERROR_ABANDONED_WAIT_0 == 735, "ERROR_*");
FP_SA(ERROR_OPERATION_ABORTED == 995 && ERROR_IO_PENDING == 997 && ERROR_NOT_FOUND == 1168, "ERROR_*");
FP_SA(ERROR_CONNECTION_COUNT_LIMIT == 1238 && ERROR_FLT_NO_WAITER_FOR_REPLY == (HRESULT)0x801F0020u, "ERROR_*");
FP_SA(WAIT_OBJECT_0 == 0 && WAIT_TIMEOUT == 258 && INFINITE == 0xFFFFFFFFu, "waits");
FP_SA(FLT_PORT_CONNECT == 0x0001 && FLT_PORT_ALL_ACCESS == 0x001F0001u, "§2.6");
FP_SA(FLT_PORT_FLAG_SYNC_HANDLE == 1 && FLT_PORT_CONTEXT_MAX == 0xFFE8, "§3.1");
FP_SA(OBJ_KERNEL_HANDLE == 0x200 && OBJ_CASE_INSENSITIVE == 0x40, "OBJ_*");
/* HRESULT helpers on a 32-bit HRESULT on LP64 (§4, §8.19). */
FP_SA(HRESULT_FROM_WIN32(ERROR_IO_PENDING) == (HRESULT)0x800703E5u, "HRESULT_FROM_WIN32(997)");
FP_SA(HRESULT_FROM_WIN32(ERROR_ABANDONED_WAIT_0) == (HRESULT)0x800702DFu, "HRESULT_FROM_WIN32(735)");
FP_SA(HRESULT_FROM_WIN32(0) == 0 && HRESULT_FROM_WIN32(ERROR_CONNECTION_COUNT_LIMIT) == (HRESULT)0x800704D6u, "");
FP_SA(FAILED(E_FAIL) && !FAILED(S_FALSE) && SUCCEEDED(S_OK) && IS_ERROR(E_HANDLE) && !IS_ERROR(S_FALSE), "§8.19");
FP_SA(NT_SUCCESS(STATUS_TIMEOUT) && !NT_SUCCESS(STATUS_BUFFER_OVERFLOW) && NT_ERROR(STATUS_ACCESS_DENIED), "NT_*");

/* The padding pitfall (§3.6): a packed reply is 16 + n, an unpacked one may be more. */
#pragma pack(push, 1)
typedef struct { FILTER_REPLY_HEADER h; UCHAR b; } FP_PACKED_REPLY;
#pragma pack(pop)
typedef struct { FILTER_REPLY_HEADER h; UCHAR b; } FP_UNPACKED_REPLY;
FP_SA(sizeof(FP_PACKED_REPLY) == 17 && sizeof(FP_UNPACKED_REPLY) == 24, "padding pitfall");

/* A few uses, so that the declarations are type-checked, §8.22 macros included. */
_Must_inspect_result_ HRESULT WINAPI fp_use(_In_ HANDLE h, _Out_ PFILTER_MESSAGE_HEADER m);
_Must_inspect_result_ HRESULT WINAPI fp_use(_In_ HANDLE h, _Out_ PFILTER_MESSAGE_HEADER m)
{
	OVERLAPPED ov;
	FILTER_REPLY_HEADER r;
	UNICODE_STRING u;
	OBJECT_ATTRIBUTES oa;
	LARGE_INTEGER t;
	PFLT_PORT port = NULL;
	DWORD n = 0;

	RtlZeroMemory(&ov, sizeof(ov));
	ZeroMemory(&r, sizeof(r));
	RtlInitUnicodeString(&u, L"\\ScannerPort");
	InitializeObjectAttributes(&oa, &u, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL, NULL);
	t.QuadPart = -10000000;
	UNREFERENCED_PARAMETER(oa);
	(void)FltSendMessage(NULL, &port, &t, sizeof(t), NULL, NULL, &t);
	(void)FilterReplyMessage(h, &r, sizeof(r));
	(void)FilterSendMessage(h, NULL, 0, NULL, 0, &n);
	(void)GetOverlappedResult(h, &ov, &n, FALSE);
	return FilterGetMessage(h, m, (DWORD)(sizeof(*m) + FP_MIN16(n)), &ov);
}

/* The Win32 subset of minispy-style programs (fltport_win32.h,
 * fltport_winbase.h, strsafe.h, excpt.h): layouts, values, uses. */
FP_SA(sizeof(FILETIME) == 8 && offsetof(FILETIME, dwHighDateTime) == 4, "FILETIME");
FP_SA(sizeof(SYSTEMTIME) == 16 && offsetof(SYSTEMTIME, wDayOfWeek) == 4, "SYSTEMTIME");
FP_SA(offsetof(SYSTEMTIME, wMilliseconds) == 14, "SYSTEMTIME");
FP_SA(sizeof(GUID) == 16 && offsetof(GUID, Data4) == 8, "GUID");
FP_SA(sizeof(LIST_ENTRY) == 2 * sizeof(void *), "LIST_ENTRY");
FP_SA(FP_SAME(E_BOUNDS, HRESULT) && E_BOUNDS == (HRESULT)0x8000000Bu, "E_BOUNDS");
FP_SA(STRSAFE_E_INSUFFICIENT_BUFFER == (HRESULT)0x8007007Au, "STRSAFE_E_INSUFFICIENT_BUFFER");
FP_SA(STRSAFE_E_INVALID_PARAMETER == (HRESULT)0x80070057u && STRSAFE_MAX_CCH == 2147483647, "strsafe");
FP_SA(IO_REPARSE_TAG_MOUNT_POINT == 0xA0000003u && IO_REPARSE_TAG_SYMLINK == 0xA000000Cu, "tags");
FP_SA(ERROR_ALREADY_EXISTS == 183 && ERROR_TOO_MANY_POSTS == 298 && ERROR_MOD_NOT_FOUND == 126, "");
FP_SA(ERROR_NO_UNICODE_TRANSLATION == 1113 && ERROR_INVALID_FLAGS == 1004, "ERROR_*");
FP_SA(FORMAT_MESSAGE_FROM_SYSTEM == 0x1000 && FORMAT_MESSAGE_ALLOCATE_BUFFER == 0x100, "FORMAT_*");
FP_SA(CP_UTF8 == 65001 && MAX_PATH == 260 && UNICODE_NULL == 0, "CP_UTF8, MAX_PATH");
FP_SA(sizeof(TEXT("x")[0]) == sizeof(TCHAR) && EXCEPTION_EXECUTE_HANDLER == 1, "TCHAR, excpt.h");
/* winsvc.h: the service side of the SCM API. */
FP_SA(sizeof(SERVICE_STATUS) == 28 && offsetof(SERVICE_STATUS, dwWaitHint) == 24, "SERVICE_STATUS");
FP_SA(offsetof(SERVICE_STATUS, dwWin32ExitCode) == 12, "SERVICE_STATUS");
FP_SA(sizeof(SERVICE_TABLE_ENTRYW) == 2 * sizeof(void *) && sizeof(SERVICE_STATUS_HANDLE) == sizeof(void *), "");
FP_SA(SERVICE_WIN32_OWN_PROCESS == 0x10 && SERVICE_RUNNING == 4 && SERVICE_STOP_PENDING == 3, "");
FP_SA(SERVICE_CONTROL_STOP == 1 && SERVICE_CONTROL_SHUTDOWN == 5 && SERVICE_CONTROL_PARAMCHANGE == 6, "");
FP_SA(SERVICE_CONTROL_PRESHUTDOWN == 0xF && SERVICE_ACCEPT_PRESHUTDOWN == 0x100, "");
FP_SA(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT == 1063 && ERROR_SERVICE_ALREADY_RUNNING == 1056, "");
FP_SA(ERROR_SERVICE_NOT_IN_EXE == 1083 && ERROR_SERVICE_SPECIFIC_ERROR == 1066, "");
FP_SA(sizeof(SERVICE_STATUS_PROCESS) == 36 && sizeof(SC_ACTION) == 8 && SC_MANAGER_ALL_ACCESS == 0xF003F, "");
FP_SA(SERVICE_ALL_ACCESS == 0xF01FF && SERVICE_AUTO_START == 2 && SERVICE_NO_CHANGE == 0xFFFFFFFF, "");
FP_SA(PROCESS_QUERY_LIMITED_INFORMATION == 0x1000 && PROCESS_ALL_ACCESS == 0x1FFFFF && PROCESS_TERMINATE == 1, "");
FP_SA(PROCESS_NAME_NATIVE == 1 && STILL_ACTIVE == 259, "");

_Must_inspect_result_ DWORD fp_use_win32(_In_opt_z_ LPCWSTR name);
_Must_inspect_result_ DWORD fp_use_win32(_In_opt_z_ LPCWSTR name)
{
	WCHAR w[MAX_PATH];
	char a[MAX_PATH];
	SYSTEMTIME st;
	FILETIME ft, local;
	LIST_ENTRY head;
	HANDLE s = CreateSemaphoreW(NULL, 0, 1, name);
	LONG prev;

	GetSystemTimeAsFileTime(&ft);
	(void)FileTimeToLocalFileTime(&ft, &local);
	(void)FileTimeToSystemTime(&local, &st);
	InitializeListHead(&head);
	(void)ReleaseSemaphore(s, 1, &prev);
	(void)StringCchPrintfW(w, ARRAYSIZE(w), L"%s", L"x");
	(void)StringCchCopyA(a, sizeof(a), "x");
	(void)MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, a, -1, w, MAX_PATH);
	(void)GetFullPathNameW(w, MAX_PATH, w, NULL);
	return FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM, NULL, 2, 0, w, MAX_PATH, NULL) +
	       GetSystemDirectoryW(w, MAX_PATH) + (IsListEmpty(&head) ? 1u : 0u);
}

#ifndef __cplusplus
int fp_use_try(HANDLE h);
int fp_use_try(HANDLE h)
{
	int r = 0;

	__try {
		if (!h)
			__leave;
		r = 1;
	} __finally {
		r |= AbnormalTermination() ? 4 : 2;
	}
	try {
		r++;
	} except (EXCEPTION_EXECUTE_HANDLER) {
		r = (int)GetExceptionCode();
	}
	return r;
}
#endif
EOT

# (compiler, language flags) pairs.
cc=${CC:-gcc}
cxx=${CXX:-g++}
compilers=("$cc|-x c -std=c11 -Wshadow -Wstrict-prototypes -Wmissing-prototypes"
	   "$cxx|-x c++ -std=c++17 -Wshadow")
if command -v clang >/dev/null 2>&1 && command -v clang++ >/dev/null 2>&1; then
	compilers+=("clang|-x c -std=c11 -Wshadow -Wstrict-prototypes -Wmissing-prototypes"
		    "clang++|-x c++ -std=c++17 -Wshadow")
fi

fail=0
compile()
{
	local what=$1 file=$2 comp=${3%%|*} flags=${3#*|}
	# shellcheck disable=SC2086 # $flags is a list of words
	if ! "$comp" $flags -Wall -Wextra -Werror -I"$inc" -fsyntax-only "$file" 2>"$tmp/err"; then
		echo "check-headers: FAILED: $what with $comp $flags" >&2
		cat "$tmp/err" >&2
		fail=1
	fi
}

for c in "${compilers[@]}"; do
	# Each header alone: self-contained.
	for h in "${headers[@]}"; do
		printf '#include <%s>\nint fp_header_alone;\n' "$h" >"$tmp/alone.c"
		compile "$h alone" "$tmp/alone.c" "$c"
	done
	# All of them together, in two orders, with the checks.
	{
		for h in "${headers[@]}"; do printf '#include <%s>\n' "$h"; done
		printf '#include "%s"\n' "$tmp/checks.h"
		printf 'int fp_main(void);\nint fp_main(void) { return fp_use(NULL, NULL) == S_OK; }\n'
	} >"$tmp/all.c"
	compile "all headers" "$tmp/all.c" "$c"
	{
		for ((i = ${#headers[@]} - 1; i >= 0; i--)); do printf '#include <%s>\n' "${headers[$i]}"; done
		printf '#include "%s"\n' "$tmp/checks.h"
		printf 'int fp_main(void);\nint fp_main(void) { return fp_use(NULL, NULL) == S_OK; }\n'
	} >"$tmp/all-rev.c"
	compile "all headers, reverse order" "$tmp/all-rev.c" "$c"
done

# Programs' own NTSTATUS definitions (windows.h has none on Windows): the
# SDK's spelling is no redefinition, and under WIN32_NO_STATUS windows.h
# defines none, so any spelling is; ntstatus.h after it defines them all.
cat >"$tmp/status-sdk.c" <<'EOT'
#include <windows.h>
#include <fltuser.h>
#define STATUS_SUCCESS ((NTSTATUS)0x00000000L)
#define STATUS_INFO_LENGTH_MISMATCH ((NTSTATUS)0xC0000004L)
#define STATUS_ACCESS_DENIED ((NTSTATUS)0xC0000022L)
#define NT_SUCCESS(Status) (((NTSTATUS)(Status)) >= 0)
int fp_status(NTSTATUS s);
int fp_status(NTSTATUS s) { return NT_SUCCESS(s) && s != STATUS_ACCESS_DENIED && s != STATUS_TIMEOUT; }
EOT
cat >"$tmp/status-none.c" <<'EOT'
#define WIN32_NO_STATUS
#include <windows.h>
#include <fltuser.h>
#define STATUS_SUCCESS 0
#define STATUS_ACCESS_DENIED 0xC0000022
#ifdef STATUS_TIMEOUT
#error "WIN32_NO_STATUS: windows.h defined STATUS_TIMEOUT"
#endif
int fp_status(NTSTATUS s);
int fp_status(NTSTATUS s) { return NT_SUCCESS(s) && (ULONG)s != STATUS_ACCESS_DENIED; }
EOT
cat >"$tmp/status-pattern.c" <<'EOT'
#define WIN32_NO_STATUS
#include <windows.h>
#undef WIN32_NO_STATUS
#include <ntstatus.h>
#include <fltuser.h>
int fp_status(NTSTATUS s);
int fp_status(NTSTATUS s) { return s == STATUS_TIMEOUT || s == STATUS_PORT_DISCONNECTED || s < 0; }
EOT
# In C, a FARPROC is called with the arguments its real function takes.
cat >"$tmp/farproc.c" <<'EOT'
#include <windows.h>
int fp_call(HMODULE m);
int fp_call(HMODULE m)
{
	FARPROC p = GetProcAddress(m, "FilterConnectCommunicationPort");
	return p ? (int)p(L"\\x", 0, NULL, 0, NULL, NULL) : 0;
}
EOT
# _tmain is wmain with _UNICODE; in C++ windows.h gives wmain C linkage.
cat >"$tmp/tmain.c" <<'EOT'
#define UNICODE
#define _UNICODE
#include <windows.h>
#include <tchar.h>
#ifdef __cplusplus
static_assert(sizeof(_TCHAR) == sizeof(wchar_t), "_TCHAR");
#else
int _tmain(int argc, _TCHAR *argv[]);
#endif
int _tmain(int argc, _TCHAR *argv[]) { return argv[argc - 1][0] == L'x'; }
EOT
for c in "${compilers[@]}"; do
	compile tmain.c "$tmp/tmain.c" "$c"
	for f in status-sdk status-none status-pattern; do
		compile "$f.c" "$tmp/$f.c" "$c"
	done
	case $c in *"-x c "*) compile farproc.c "$tmp/farproc.c" "$c" ;; esac
done

# excpt.h: a try statement is two statements here, so `if (c) __try` must
# not compile (it would detach the __finally block from the `if`).
printf '#include <windows.h>\nint fp_bad(int c);\nint fp_bad(int c) { int r = 0; if (c) __try { r = 1; } __finally { r = 2; } return r; }\n' \
	>"$tmp/bad-try.c"
for comp in "$cc" clang; do
	command -v "$comp" >/dev/null 2>&1 || continue
	if "$comp" -x c -std=c11 -I"$inc" -fsyntax-only "$tmp/bad-try.c" 2>/dev/null; then
		echo "check-headers: FAILED: 'if (c) __try' compiles with $comp" >&2
		fail=1
	fi
done

# The README's examples, as a newcomer compiles them (the compiler's default
# C dialect, and C11).
scripts/readme-snippets.sh "$tmp/readme" >/dev/null
nsnip=0
for f in "$tmp"/readme/native-*.c "$tmp"/readme/windows-*.c; do
	[ -e "$f" ] || continue
	case $f in
	*/native-*) incs=(-Iinclude) ;;
	*) incs=(-I"$inc" -Iinclude) ;;
	esac
	for std in "" "-std=c11"; do
		# shellcheck disable=SC2086 # $std is zero or one word
		if ! "$cc" $std -Wall -Wextra -Wno-unused-parameter -Werror "${incs[@]}" \
			-c "$f" -o "$tmp/snippet.o" 2>"$tmp/err"; then
			echo "check-headers: FAILED: README example ${f##*/} with $cc $std" >&2
			cat "$tmp/err" >&2
			fail=1
		fi
	done
	nsnip=$((nsnip + 1))
done
if [ "$nsnip" -eq 0 ]; then
	echo "check-headers: no C example found in README.md" >&2
	fail=1
fi

if [ "$fail" -ne 0 ]; then
	exit 1
fi
echo "check-headers: OK (${#headers[@]} headers; ${#compilers[@]} compiler/language combinations;" \
	"$nsnip README examples)"
