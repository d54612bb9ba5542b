#!/usr/bin/env bash
# Runs the interop test suite (tests/interop) against a tandem binary.
#   scripts/test-interop.sh              uses build/tandem
#   TANDEM_BIN=/path/to/tandem scripts/test-interop.sh
# Installs the npm dependencies (npm ci) on first use. Exits with the test runner's status.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${TANDEM_BIN:-$root/build/tandem}"
case "$bin" in
  /*) ;;
  *) bin="$(pwd)/$bin" ;;
esac
cd "$root/tests/interop"
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
TANDEM_BIN="$bin" node --test --test-concurrency=1 test/
