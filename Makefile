# Thin wrapper over CMake.  The real build is CMakeLists.txt; this file only
# gives the README's commands (`make demo`, `make test`) and a few shortcuts.
#
#   make                  install missing dependencies, configure build/, build
#   make test             build, then run the whole ctest suite
#   make demo             build the library and the demo, then run it (filter + service)
#   make bench            build fltport-bench and run it (~60 s; BENCH_ARGS=--quick for ~10 s)
#   make install          cmake --install into $(PREFIX) (default /usr/local)
#   make asan / tsan      sanitizer builds in build-asan/ and build-tsan/
#   make format-check     clang-format --dry-run over the sources (skipped without clang-format)
#   make fuzz             libFuzzer on the frame decoder for FUZZ_SECONDS (default 60)
#   make clean            remove every build directory

BUILD ?= build
PREFIX ?= /usr/local
CMAKE ?= cmake
CTEST ?= ctest
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FORMAT_DIRS := src include tests samples bench

# cmake --build runs make again: keep its output free of "Entering directory" lines.
MAKEFLAGS += --no-print-directory

FUZZ_SECONDS ?= 60
BENCH_ARGS ?=

.PHONY: all configure deps test install demo bench format-check clean asan tsan fuzz

all: configure
	$(CMAKE) --build $(BUILD) -j $(JOBS)

configure: deps
	@test -f $(BUILD)/CMakeCache.txt || $(CMAKE) -S . -B $(BUILD)

deps:
	@bash scripts/deps.sh

test: all
	$(CTEST) --test-dir $(BUILD) --output-on-failure

install: all
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

# Only what the demo needs: a test that does not compile must not hide the demo.
demo: configure
	$(CMAKE) --build $(BUILD) -j $(JOBS) --target fltport-demo
	$(BUILD)/fltport-demo

# Benchmark: fltport against raw socketpair baselines, in one run (bench/README.md).
bench: configure
	$(CMAKE) --build $(BUILD) -j $(JOBS) --target fltport-bench
	$(BUILD)/bench/fltport-bench $(BENCH_ARGS)

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

fuzz: deps
	@mkdir -p build-fuzz/corpus
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
		tests/fuzz/fuzz_frame.c src/core/frame.c -o build-fuzz/fuzz_frame
	build-fuzz/fuzz_frame -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build-fuzz/corpus

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz
