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
# One file at a time: each starts its own servers. Node 18 (Debian's) lacks the flag but
# already runs test files one after another.
if node --test-concurrency=1 -e '' >/dev/null 2>&1; then
  TANDEM_BIN="$bin" exec node --test --test-concurrency=1 test/
fi
TANDEM_BIN="$bin" exec node --test test/
