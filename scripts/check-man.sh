#!/usr/bin/env bash
# Check the library's man pages (man/*.3) against the public headers:
#   - every FLTPORT_API function of include/fltport/port.h, filter.h and
#     mgmt.h has man/<function>.3: a page of its own, or a one-line link
#     ".so man3/<page>.3";
#   - every link names an existing page that is not itself a link, and
#     that page's NAME section lists the function;
#   - every function a page's NAME section lists is a real function;
#   - with --render (when groff is installed): every page and every
#     program page (man/*.1, man/*.8) formats without a warning
#     (groff -man -ww -z; links are resolved in a temporary man3/).
# Exits non-zero on the first kind of failure it finds, after listing
# every instance of it.
set -euo pipefail

cd "$(dirname "$0")/.."
render=false
[ "${1:-}" = "--render" ] && render=true

headers=(include/fltport/port.h include/fltport/filter.h include/fltport/mgmt.h)
fail=0

# The functions a header declares: the name before the first '(' of each
# FLTPORT_API declaration (declarations may span lines).
functions() {
	cat "$@" | tr '\n' ' ' | grep -oE 'FLTPORT_API[^;]*;' |
		grep -oE '\bfltport_[A-Za-z0-9_]+[[:space:]]*\(' | tr -d ' (' | sort -u
}

# The names a page's NAME section lists, before "\-".
page_names() {
	awk '/^\.SH NAME/ { f = 1; next } /^\.SH/ { f = 0 } f' "$1" | tr '\n' ' ' |
		sed 's/\\-.*//' | tr ',' ' ' | tr -s ' ' '\n' | sed '/^$/d'
}

# The target of a link page (".so man3/x.3"), or nothing.
link_target() {
	sed -n '1s|^\.so man3/\(.*\)$|\1|p' "$1"
}

mapfile -t funcs < <(functions "${headers[@]}")
if [ "${#funcs[@]}" -lt 40 ]; then
	echo "check-man: found only ${#funcs[@]} functions in ${headers[*]}: parsing broke?" >&2
	exit 1
fi

declare -A known
for fn in "${funcs[@]}"; do
	known[$fn]=1
done

for fn in "${funcs[@]}"; do
	page=man/$fn.3
	if [ ! -f "$page" ]; then
		echo "check-man: $fn: no man/$fn.3 (a page, or \".so man3/<page>.3\")" >&2
		fail=1
		continue
	fi
	target=$(link_target "$page")
	if [ -n "$target" ]; then
		if [ "$(wc -l <"$page")" -ne 1 ]; then
			echo "check-man: $page: a link page must be the one .so line" >&2
			fail=1
		fi
		if [ ! -f "man/$target" ]; then
			echo "check-man: $page: links to man3/$target, which does not exist" >&2
			fail=1
			continue
		fi
		if [ -n "$(link_target "man/$target")" ]; then
			echo "check-man: $page: links to man3/$target, itself a link" >&2
			fail=1
			continue
		fi
		page=man/$target
	fi
	if ! grep -qx "$fn" <<<"$(page_names "$page")"; then
		echo "check-man: $fn: not in the NAME section of $page" >&2
		fail=1
	fi
done

# Names pages list that are no function (a typo, or a function removed).
for page in man/*.3; do
	[ -n "$(link_target "$page")" ] && continue
	base=$(basename "$page" .3)
	for name in $(page_names "$page"); do
		[ "$name" = "$base" ] && continue # an overview page's own name
		if [ -z "${known[$name]:-}" ]; then
			echo "check-man: $page: NAME lists $name, which no header declares" >&2
			fail=1
		fi
	done
done

if $render; then
	if ! command -v groff >/dev/null 2>&1; then
		echo "check-man: --render: groff not installed (apt-get install groff-base)" >&2
		exit 1
	fi
	tmp=$(mktemp -d /tmp/fltport-man.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	mkdir "$tmp/man3"
	cp man/*.3 "$tmp/man3/"
	for page in "$tmp"/man3/*.3 "$PWD"/man/*.1 "$PWD"/man/*.8; do
		[ -e "$page" ] || continue
		# soelim resolves ".so man3/x.3" from the tree's root, as man does.
		out=$( (cd "$tmp" && soelim "$page" | groff -man -ww -z) 2>&1) || true
		if [ -n "$out" ]; then
			echo "check-man: $(basename "$page"): groff says:" >&2
			echo "$out" >&2
			fail=1
		fi
	done
fi

if [ "$fail" -ne 0 ]; then
	exit 1
fi
echo "check-man: ${#funcs[@]} functions, each with a page or a link$($render && echo "; every page renders without warnings")"
