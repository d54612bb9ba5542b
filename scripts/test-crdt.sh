#!/usr/bin/env bash
# Runs the CRDT test suite (tests/crdt: the C Yjs engine via `tandem doc ...` against the real
# yjs package) on a tandem binary.
#   scripts/test-crdt.sh                       uses build/tandem
#   TANDEM_BIN=/path/to/tandem scripts/test-crdt.sh
#   SEED=17 scripts/test-crdt.sh               one random seed only (reproduce a failure)
#   TANDEM_CRDT_SEEDS=200 scripts/test-crdt.sh more random sessions (default 60; 20 when
#                                              TANDEM_BIN is an ASan build, which is ~3x slower)
#   TANDEM_TRACES=/path/to/traces              trace directory (default ../shared/traces)
# Installs the npm dependencies (npm ci) on first use. Exits with the test runner's status.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${TANDEM_BIN:-$root/build/tandem}"
case "$bin" in
  /*) ;;
  *) bin="$(pwd)/$bin" ;;
esac
if [ -z "${TANDEM_CRDT_SEEDS:-}" ]; then
  case "$bin" in
    */asan/*) export TANDEM_CRDT_SEEDS=20 ;;
    *) export TANDEM_CRDT_SEEDS=60 ;;
  esac
fi
cd "$root/tests/crdt"
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
# One file at a time: the 2-core CI machine is busy enough with one engine process at a time.
if node --test-concurrency=1 -e '' >/dev/null 2>&1; then
  TANDEM_BIN="$bin" exec node --test --test-concurrency=1 test/
fi
TANDEM_BIN="$bin" exec node --test test/
