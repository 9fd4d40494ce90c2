#!/usr/bin/env bash
# Install every build and test dependency of fltport with apt-get (Debian 12).
#
#   scripts/deps.sh          what `make`, `make test` and CI need
#   scripts/deps.sh --bench  only what the benchmark adds (`make bench`,
#                            `make bench-chart`): nng and ZeroMQ for the
#                            baselines, ClamAV on-access (clamd, clamonacc)
#                            for the scanner's, gnuplot and python3 for the chart
#
# Idempotent: prints nothing and exits 0 when everything is present.  Runs
# `apt-get update` only when something is missing.  Not root and something
# missing: prints the apt-get line to run and exits 1.
set -euo pipefail

packages=(
	build-essential            # gcc (with its ASan/UBSan/TSan runtimes), libc headers
	gcc
	make
	cmake                      # >= 3.20
	pkg-config
	libcriterion-dev           # test framework
	gcc-mingw-w64-x86-64-win32 # cross-compile check of the Windows layer
	clang                      # libFuzzer target of the frame decoder (make fuzz)
	libclang-rt-14-dev         # libFuzzer and sanitizer runtimes for clang
	e2fsprogs                  # mkfs.ext4: the pre-content filter test's loop-mounted image
	libclamav-dev              # the scanner service's ClamAV engine (fltport-scanuser --clamav)
	groff-base                 # scripts/check-man.sh --render (the man pages render without warnings)
	man-db                     # CI's install check: `man fltportctl` after make install
	dpkg-dev                   # make package: dpkg-shlibdeps fills the .deb's Depends
	gdb                        # CI's fuzz stage: a harness failure prints every thread's stack (FZ_GDB=1)
)

# fltport-bench builds without these (their rows are then skipped, with the reason).
bench_packages=(
	libnng-dev    # nng-reqrep rows
	libzmq3-dev   # zmq-reqrep rows
	clamav-daemon # e2e-clamonacc-* rows: clamd and clamonacc (the bench runs its own clamd on
	clamdscan     # its own tmpfs, never the system's service; bench/README.md, "Scanner rows")
	gnuplot-nox   # make bench-chart
	python3       # make bench-chart reads the JSON (bench/benchjson.py)
)

case "${1:-}" in
"") ;;
--bench) packages=("${bench_packages[@]}") ;;
*)
	echo "usage: scripts/deps.sh [--bench]" >&2
	exit 2
	;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: dpkg-query not found: this script needs a Debian-based system." >&2
	echo "deps.sh: install by hand: ${packages[*]}" >&2
	exit 1
fi

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing build/test dependencies: ${missing[*]}" >&2
	echo "deps.sh: run this, then try again:" >&2
	echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q </dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
