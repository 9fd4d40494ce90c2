#!/usr/bin/env bash
# The README's C examples, one file each, so that the checks can compile
# them (a newcomer copies them: they must build):
#   DIR/native-N.c   examples of the native API (#include <fltport/...>)
#   DIR/windows-N.c  Windows sources (#include <windows.h>)
# N is the example's place among the README's ```c blocks.  Every ```c block
# must be one of the two kinds.  Prints the files written, one per line.
#
# Usage: scripts/readme-snippets.sh DIR [README.md]
# Used by scripts/check-headers.sh (gcc against include/) and
# scripts/cross-compile-clients.sh (mingw-w64 against the real Windows headers).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 DIR [README.md]" >&2
	exit 2
fi
out=$1
readme=${2:-"$(dirname "$0")/../README.md"}
mkdir -p "$out"

# Each block between a line "```c" and the next line starting with "```".
awk -v out="$out" '
	!inblock && /^```c[ \t]*$/ { n++; file = sprintf("%s/block-%d.c", out, n); inblock = 1; next }
	inblock && /^```/ { close(file); inblock = 0; next }
	inblock { print > file }
	END { if (inblock) { print "readme-snippets: unterminated ```c block" > "/dev/stderr"; exit 1 } }
' "$readme"

shopt -s nullglob
found=0
for f in "$out"/block-*.c; do
	n=${f##*/block-}
	n=${n%.c}
	if grep -q '^#include <windows.h>' "$f"; then
		kind=windows
	elif grep -q '^#include <fltport/' "$f"; then
		kind=native
	else
		echo "readme-snippets: ${readme}: C block $n includes neither <windows.h> nor <fltport/...>" >&2
		exit 1
	fi
	mv "$f" "$out/$kind-$n.c"
	echo "$out/$kind-$n.c"
	found=$((found + 1))
done
if [ "$found" -eq 0 ]; then
	echo "readme-snippets: no \`\`\`c block in $readme" >&2
	exit 1
fi
