# Friendly front for CMake presets. See README.md.
.PHONY: all build run test test-unit test-interop asan fuzz bench clean setup setup-test

JOBS ?= $(shell nproc)

all: build

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

build/dev/build.ninja:
	cmake --preset dev >/dev/null

build: build/dev/build.ninja
	cmake --build --preset dev -j $(JOBS)
	@ln -sf dev/tandem build/tandem

build/asan/build.ninja:
	cmake --preset asan >/dev/null

asan: build/asan/build.ninja
	cmake --build --preset asan -j $(JOBS)

run: setup build
	scripts/run-dev.sh

# Every suite, on the dev build and again on the ASan+UBSan build.
test: setup-test build asan
	ctest --preset dev -j $(JOBS)
	TANDEM_BIN=$(CURDIR)/build/dev/tandem scripts/test-interop.sh
	ctest --preset asan -j $(JOBS)
	TANDEM_BIN=$(CURDIR)/build/asan/tandem scripts/test-interop.sh

fuzz:
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS)

# Quick benchmark of tandem against uWebSockets.js, nats-server and node ws (< 10 minutes,
# loopback only); prints one table. See BENCHMARKS.md; `bench/run.sh --full` for longer runs.
bench: build
	cmake --build --preset dev -j $(JOBS) --target td_loadgen
	bench/setup.sh && bench/run.sh --quick

clean:
	rm -rf build
