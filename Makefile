# Friendly front for CMake presets. See README.md.
.PHONY: all build run test test-unit test-interop asan fuzz bench bench-crdt bench-durable bench-wt bench-yjs clean setup setup-test

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
	TANDEM_BIN=$(CURDIR)/build/dev/tandem scripts/test-crdt.sh
	ctest --preset asan -j $(JOBS)
	TANDEM_BIN=$(CURDIR)/build/asan/tandem scripts/test-interop.sh
	TANDEM_BIN=$(CURDIR)/build/asan/tandem scripts/test-crdt.sh

fuzz:
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS)

# Quick benchmark of tandem against uWebSockets.js, nats-server and node ws (< 10 minutes,
# loopback only); prints one table. See BENCHMARKS.md; `bench/run.sh --full` for longer runs.
bench: build
	cmake --build --preset dev -j $(JOBS) --target td_loadgen
	bench/setup.sh && bench/run.sh --quick

# The CRDT engine against yjs, ywasm, loro, diamond-types and automerge on editing traces.
bench-crdt: build
	cmake --build --preset dev -j $(JOBS) --target td_crdtbench
	cd bench/crdt && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; }
	bench/crdt/run.js

# Durable publish throughput and latency against the in-memory mode.
bench-durable: build
	cmake --build --preset dev -j $(JOBS) --target td_loadgen
	bench/durable.sh

# WebTransport vs WebSocket fan-out in the same run (issue #7); `bench/wt.sh --quick` is shorter.
bench-wt: build
	cmake --build --preset dev -j $(JOBS) --target td_loadgen td_wtload
	bench/wt.sh

# Yjs rooms: tandem against @y/websocket-server 0.1.1 with real y-websocket editors.
bench-yjs: build
	cd bench/yjs && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; }
	cd bench/yjs && node run.js

clean:
	rm -rf build
