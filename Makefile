# The commands of the README. Each installs what is missing (scripts/deps.sh), configures,
# builds and runs; build directories: build/ (tests), build-asan/, build-tsan/, build-bench/.
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps deps-build build build-tests check check-plain check-asan check-tsan demo bench install deb clean fuzz stress

all: build

deps:
	@scripts/deps.sh check

deps-build:
	@scripts/deps.sh build

# The library and its tools: build dependencies only, no tests (make check adds them to build/).
build: deps-build
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DERRINJ_TESTS=OFF $(CMAKE_FLAGS) >/dev/null
	cmake --build build -j$(JOBS)

build-tests: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DERRINJ_TESTS=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build build -j$(JOBS)

# Every test: the plain build runs all of them; the sanitizer builds run the C unit tests and the
# server's integration suite (its test host is then built with the sanitizer too).
check: check-plain check-asan check-tsan
	@echo "make check: all test suites passed"

check-plain: build-tests
	cd build && ctest --output-on-failure -j$(JOBS)

check-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DERRINJ_SANITIZE=address $(CMAKE_FLAGS) >/dev/null
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j$(JOBS) -L 'unit|sanitize'

check-tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DERRINJ_SANITIZE=thread $(CMAKE_FLAGS) >/dev/null
	cmake --build build-tsan -j$(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
		ctest --output-on-failure -j$(JOBS) -L 'unit|sanitize'

# The demo: a 4-shard kvnode, a parked write, its event, the message, and log parsing compared.
demo: build-tests
	/usr/bin/python3 examples/demo.py build/examples/kvnode

# The benchmarks (docs/BENCHMARKS.md): an optimised build without the tests, then the driver, which
# prints every table and writes build-bench/bench/results.md and latency_cdf.png. About 4 minutes.
bench:
	scripts/deps.sh bench
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DERRINJ_TESTS=OFF -DERRINJ_BENCH=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build build-bench -j$(JOBS)
	/usr/bin/python3 bench/run.py --build build-bench

# Longer than make check. fuzz: each libFuzzer target for FUZZ_SECONDS (default 300) from its seeds
# and saved crashes; a crash fails and leaves its input in build/tests/fuzz/clang/artifacts/ (copy
# it to tests/fuzz/regressions/TARGET/ to keep it as a regression test). stress: the stress test
# for STRESS_SECONDS (default 300, in 10 rounds), then the bad-input test waiting for the server's
# idle timeout to close the clients that stall, and the long connection attacks (stream churn at 50/s
# for a minute, 20 rounds out of descriptors, slow clients reconnecting for a minute, 200 fires of a
# 100,000-key event, a million distinct names enabled and disabled with the host's RSS bounded).
fuzz: build-tests
	sh tests/fuzz/run.sh build build/tests/fuzz/clang
	for t in http params startup sse term; do \
		sh tests/fuzz/run.sh run build/tests/fuzz/clang $$t $(or $(FUZZ_SECONDS),300) || exit 1; \
	done

stress: build-tests
	sh tests/stress/run_filtered.sh build/tests/stress/errinj-stress --seconds $(or $(STRESS_SECONDS),300) \
		--clients 100 --rounds 10
	ERRINJ_ATTACK_LONG=1 build/tests/attack/attack_bad_input build/tests/errinj-testhost
	ERRINJ_ATTACK_LONG=1 build/tests/attack/attack_connections build/tests/errinj-testhost
	ERRINJ_ATTACK_LONG=1 build/tests/attack/attack_big_events build/tests/errinj-testhost
	ERRINJ_ATTACK_LONG=1 build/tests/attack/attack_names build/tests/errinj-testhost

install: build
	cmake --install build --prefix $(or $(PREFIX),/usr/local)

# Debian packages (liberrinj0, liberrinj-dev, errinj-tools, python3-errinj) in build-deb/, checked
# with lintian; see packaging/deb.sh.
deb: 
	scripts/deps.sh deb
	packaging/deb.sh build-deb

clean:
	rm -rf build build-asan build-tsan build-bench build-deb
