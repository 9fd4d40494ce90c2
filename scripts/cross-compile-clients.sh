#!/usr/bin/env bash
# Same source, two targets (SPEC §8.31, issue 3 point 3): compile every
# Windows-style user-side program in tests/compat/clients/*.c, and the
# README's Windows example (scripts/readme-snippets.sh), for Windows with
# mingw-w64 against its real windows.h/fltuser.h, linked with fltlib
# (-lfltlib).  The programs cannot run here; compiling and linking them
# proves that they use only the Windows API.  A program that needs Linux
# (clients/win_filter.c) guards itself with #ifndef _WIN32.
#
# Needs x86_64-w64-mingw32-gcc (Debian: gcc-mingw-w64-x86-64-win32, which
# scripts/deps.sh installs).  MINGW_CC overrides the compiler.
set -euo pipefail

cd "$(dirname "$0")/.."
mingw=${MINGW_CC:-x86_64-w64-mingw32-gcc}
if ! command -v "$mingw" >/dev/null 2>&1; then
	echo "cross-compile-clients: $mingw not found (install gcc-mingw-w64-x86-64-win32)" >&2
	exit 1
fi

shopt -s nullglob
srcs=(tests/compat/clients/*.c tests/scanner/win_scanuser.c)
if [ ${#srcs[@]} -eq 0 ]; then
	echo "cross-compile-clients: no tests/compat/clients/*.c" >&2
	exit 1
fi

tmp=$(mktemp -d /tmp/fltport-mingw.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

scripts/readme-snippets.sh "$tmp/readme" >/dev/null
readme=("$tmp"/readme/windows-*.c)
if [ ${#readme[@]} -eq 0 ]; then
	echo "cross-compile-clients: README.md has no Windows example (#include <windows.h>)" >&2
	exit 1
fi
srcs+=("${readme[@]}")

fail=0
for src in "${srcs[@]}"; do
	name=$(basename "$src" .c)
	# The fltport headers must not be on the path: only mingw-w64's.
	# A program that starts at wmain is linked with -municode, as mingw-w64 wants.
	entry=()
	if grep -q '^int __cdecl wmain\|^int wmain' "$src"; then
		entry=(-municode)
	fi
	if "$mingw" -std=c11 -Wall -Wextra -Werror -O2 "${entry[@]}" -o "$tmp/$name.exe" "$src" -lfltlib; then
		echo "cross-compile-clients: $src -> $name.exe"
	else
		echo "cross-compile-clients: FAILED: $src" >&2
		fail=1
	fi
done
if [ "$fail" -ne 0 ]; then
	exit 1
fi
echo "cross-compile-clients: OK (${#srcs[@]} programs built for Windows with $mingw," \
	"${#readme[@]} of them from README.md)"
