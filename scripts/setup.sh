#!/usr/bin/env bash
# Installs what tandem needs to build and test on Debian bookworm, skipping what is present.
#   scripts/setup.sh          build dependencies (compiler, cmake, ninja, libuv, libcrypto)
#   scripts/setup.sh --test   also node + npm packages for the interop tests
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake ninja-build pkg-config libuv1-dev libssl-dev libsqlite3-dev zlib1g-dev clang)
pkgs+=(libngtcp2-dev libngtcp2-crypto-gnutls-dev libnghttp3-dev libgnutls28-dev)  # QUIC/HTTP3 (WebTransport)
want_test=0
[ "${1:-}" = "--test" ] && want_test=1
if [ $want_test = 1 ]; then
  pkgs+=(nodejs curl chromium)  # chromium: headless browser tests (playwright-core drives it)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs may come from elsewhere than Debian; a working node >= 18 is enough.
if [ $want_test = 1 ] && command -v node >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ $want_test = 1 ] && ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null
fi
if [ $want_test = 1 ]; then
  if [ ! -d tests/interop/node_modules ] || [ tests/interop/package-lock.json -nt tests/interop/node_modules ]; then
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
  fi
  if [ ! -d tests/crdt/node_modules ] || [ tests/crdt/package-lock.json -nt tests/crdt/node_modules ]; then
    (cd tests/crdt && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
