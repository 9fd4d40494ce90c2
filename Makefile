# Thin wrapper over CMake.  The real build is CMakeLists.txt; this file only
# gives the README's commands (`make demo`, `make test`) and a few shortcuts.
#
#   make                  install missing dependencies, configure build/, build
#   make test             build, then run the whole ctest suite twice: on the socket transport,
#                         then on the shared-memory one (FLTPORT_TRANSPORT=shm)
#   make test-socket / test-shm   one of the two passes
#   make demo             build the scanner and run its demo (as root; else the port-only demo)
#   make bench            install the bench packages, build fltport-bench, run it (~2 min;
#                         BENCH_ARGS=--quick for ~30 s); JSON in $(BUILD)/bench.json
#   make bench-chart      docs/benchmarks.png from BENCH_JSON (one or more runs' JSON files)
#   make install          cmake --install into $(PREFIX) (default /usr/local)
#   make uninstall        remove what `make install` installed (its manifest in $(BUILD)/)
#   make package          a .deb of the library, headers, programs and man pages (CPack), in $(BUILD)/
#   make help             this list
#   make asan / tsan      sanitizer builds in build-asan/ and build-tsan/
#   make format-check     clang-format --dry-run over the sources (skipped without clang-format)
#   make fuzz             the five libFuzzer targets for FUZZ_SECONDS each (default 60): the
#                         frame decoder, a server port, a client connection, the Windows layer,
#                         a shared-memory ring read by the filter side
#   make fuzz-server      one of them (fuzz-frame, -server, -client, -win, -ring); corpora
#                         in build-fuzz/corpus-<target>/, crashes in build-fuzz/ (docs/TESTING.md)
#   make soak             filters and services under random kills for SOAK_SECONDS (default 300)
#   make clean            remove every build directory

BUILD ?= build
PREFIX ?= /usr/local
CMAKE ?= cmake
CTEST ?= ctest
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FORMAT_DIRS := src include tests samples bench tools

# cmake --build runs make again: keep its output free of "Entering directory" lines.
MAKEFLAGS += --no-print-directory

FUZZ_SECONDS ?= 60
BENCH_ARGS ?=
BENCH_JSON ?= $(BUILD)/bench.json
BENCH_CHART ?= docs/benchmarks.png
SOAK_SECONDS ?= 300
SOAK_ARGS ?=

.PHONY: all configure deps test test-socket test-shm install uninstall package help demo bench bench-chart format-check clean
.PHONY: asan tsan fuzz soak
.PHONY: fuzz-build fuzz-seeds fuzz-frame fuzz-server fuzz-client fuzz-win fuzz-ring

all: configure
	$(CMAKE) --build $(BUILD) -j $(JOBS)

configure: deps
	@test -f $(BUILD)/CMakeCache.txt || $(CMAKE) -S . -B $(BUILD)

deps:
	@bash scripts/deps.sh

test: test-socket test-shm

test-socket: all
	@echo "== the whole suite on the socket transport"
	env -u FLTPORT_TRANSPORT $(CTEST) --test-dir $(BUILD) --output-on-failure

# The same tests, every connection on the rings (docs/PORTING.md, "Transports").
test-shm: all
	@echo "== the whole suite on the shared-memory transport"
	FLTPORT_TRANSPORT=shm $(CTEST) --test-dir $(BUILD) --output-on-failure

install: all
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)
	@if [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi

# Every file the last `make install` wrote (CMake's manifest), then the
# directories it made that are now empty.
uninstall:
	@test -f $(BUILD)/install_manifest.txt || \
		{ echo "make uninstall: no $(BUILD)/install_manifest.txt (nothing installed from $(BUILD))" >&2; exit 1; }
	@while IFS= read -r f || [ -n "$$f" ]; do \
		if [ -e "$$f" ] || [ -L "$$f" ]; then rm -f -- "$$f" && echo "removed $$f"; fi; \
	done < $(BUILD)/install_manifest.txt
	@for d in $$(sed 's|/[^/]*$$||' $(BUILD)/install_manifest.txt | sort -ur); do \
		rmdir -p --ignore-fail-on-non-empty "$$d" 2>/dev/null || true; done
	@rm -f $(BUILD)/install_manifest.txt
	@if [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi

# A Debian package (CPack's DEB generator; dpkg-deb is all it needs).
package: all
	cd $(BUILD) && cpack -G DEB
	@ls -1 $(BUILD)/*.deb

help:
	@sed -n '/^#   make /,/^$$/{/^#/p}' Makefile | sed 's/^#   //'

# Only what the demo needs: a test that does not compile must not hide the demo.
# The scanner demo (samples/scanner/demo.c); not root, it runs the port-only
# fltport-demo instead and says what needs root.
demo: configure
	$(CMAKE) --build $(BUILD) -j $(JOBS) --target fltport-demo fltport-scanner fltport-scanuser \
		fltport-scanner-demo
	$(BUILD)/bin/fltport-scanner-demo

# Benchmark: fltport against raw socketpair and futex baselines, nng and ZeroMQ, in one run
# (bench/README.md).  Its packages (deps.sh --bench) are not needed by `make test`; cmake runs
# again so that a build directory configured before they were installed finds them.
bench: configure
	@bash scripts/deps.sh --bench || echo "make bench: going on; rows that need them are skipped" >&2
	@$(CMAKE) -S . -B $(BUILD) > /dev/null
	$(CMAKE) --build $(BUILD) -j $(JOBS) --target fltport-bench
	$(BUILD)/bench/fltport-bench --memory --json $(BENCH_JSON) $(BENCH_ARGS)

# The chart of docs/BENCHMARKS.md: BENCH_JSON="pinned.json unpinned.json" puts runs side by side.
bench-chart:
	@bash scripts/deps.sh --bench
	@mkdir -p $(BUILD)
	python3 bench/benchjson.py chart-data $(BENCH_JSON) > $(BUILD)/bench-chart.dat
	gnuplot -e "datafile='$(BUILD)/bench-chart.dat'; outfile='$(BENCH_CHART)'; \
		nsets=$(words $(BENCH_JSON))" bench/chart.gp
	@echo "chart: $(BENCH_CHART)"

# Soak: not part of `make test` (docs/TESTING.md, "Soak"); SOAK_ARGS=--seed N replays a run.
soak: configure
	$(CMAKE) --build $(BUILD) -j $(JOBS) --target fltport-soak
	$(BUILD)/tests/soak/fltport-soak --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

asan: deps
	$(CMAKE) -S . -B build-asan -DFLTPORT_SANITIZE=address
	$(CMAKE) --build build-asan -j $(JOBS)

tsan: deps
	$(CMAKE) -S . -B build-tsan -DFLTPORT_SANITIZE=thread
	$(CMAKE) --build build-tsan -j $(JOBS)

format-check:
	@if command -v clang-format >/dev/null 2>&1; then \
		files=$$(find $(FORMAT_DIRS) -type f -name '*.[ch]' 2>/dev/null | sort); \
		if [ -n "$$files" ]; then clang-format --dry-run --Werror $$files; fi; \
	fi

# Fuzzing (docs/TESTING.md, "Fuzzing"): each target compiles the library
# sources it needs directly, with libFuzzer, ASan and UBSan.  FUZZ_ARGS adds
# libFuzzer flags (e.g. FUZZ_ARGS=-runs=100000).
FUZZ_CC ?= clang
FUZZ_ARGS ?=
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -pthread -Iinclude -Isrc -Itests/fuzz \
	-Itests/common
FUZZ_LIB := $(wildcard src/core/*.c src/transport/*.c src/server/*.c src/client/*.c src/mgmt/*.c)
FUZZ_WIN_LIB := $(wildcard src/compat/*.c)
FUZZ_HDRS := $(wildcard include/fltport/*.h include/fltport/win/*.h src/*/*.h tests/fuzz/*.h) \
	tests/common/rawwire.h
FUZZ_UTIL := tests/fuzz/fuzz_util.c tests/common/rawwire.c
FUZZ_TARGETS := frame server client win ring

fuzz: fuzz-frame fuzz-server fuzz-client fuzz-win fuzz-ring

fuzz-build: $(addprefix build-fuzz/fuzz_,$(FUZZ_TARGETS)) fuzz-seeds

build-fuzz/fuzz_frame: tests/fuzz/fuzz_frame.c src/core/frame.c $(FUZZ_HDRS) | deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) tests/fuzz/fuzz_frame.c src/core/frame.c -o $@

build-fuzz/fuzz_server build-fuzz/fuzz_client: build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c \
		$(FUZZ_UTIL) $(FUZZ_LIB) $(FUZZ_HDRS) | deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $< $(FUZZ_UTIL) $(FUZZ_LIB) -o $@

build-fuzz/fuzz_win: tests/fuzz/fuzz_win.c $(FUZZ_UTIL) $(FUZZ_LIB) $(FUZZ_WIN_LIB) $(FUZZ_HDRS) \
		| deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Iinclude/fltport/win $< $(FUZZ_UTIL) $(FUZZ_LIB) $(FUZZ_WIN_LIB) \
		-o $@

# The filter side reading a ring a hostile user side writes (tests/fuzz/fuzz_ring.c).
build-fuzz/fuzz_ring: tests/fuzz/fuzz_ring.c $(FUZZ_LIB) $(FUZZ_HDRS) | deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $< $(FUZZ_LIB) -o $@

# Seed corpora written with the real frame encoder (tests/fuzz/fuzz_seeds.c).
build-fuzz/fuzz_seeds: tests/fuzz/fuzz_seeds.c src/core/frame.c $(FUZZ_HDRS) | deps
	@mkdir -p $(@D)
	$(FUZZ_CC) -g -Wall -Wextra -D_GNU_SOURCE -Iinclude -Isrc -Itests/fuzz \
		tests/fuzz/fuzz_seeds.c src/core/frame.c -o $@

# ... and the inputs that once failed (tests/fuzz/crashers/<target>-*), as regression inputs.
fuzz-seeds: build-fuzz/fuzz_seeds
	@mkdir -p $(addprefix build-fuzz/corpus-,$(FUZZ_TARGETS))
	build-fuzz/fuzz_seeds build-fuzz/corpus-server build-fuzz/corpus-client build-fuzz/corpus-win
	@for t in $(FUZZ_TARGETS); do for f in tests/fuzz/crashers/$$t-*; do \
		if [ -f "$$f" ]; then cp "$$f" build-fuzz/corpus-$$t/; fi; done; done

# -timeout: the harnesses bound each of their own waits to 10 s; 60 s is a hang.
fuzz-frame fuzz-server fuzz-client fuzz-win fuzz-ring: fuzz-%: build-fuzz/fuzz_% fuzz-seeds
	build-fuzz/fuzz_$* -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -timeout=60 \
		-artifact_prefix=build-fuzz/$*- $(FUZZ_ARGS) build-fuzz/corpus-$*

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz
