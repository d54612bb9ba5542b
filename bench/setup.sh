#!/usr/bin/env bash
# Installs what the benchmarks need, if missing (idempotent):
#   - nats-server (Debian package; bookworm has 2.9.10) for the NATS peer
#   - node + npm, then `npm ci` in bench/ for uWebSockets.js and ws (pinned in package-lock.json)
# Does not start anything. The Debian package enables a systemd unit; nothing here uses it
# (bench/run.sh starts its own nats-server on loopback with bench/peers/nats.conf).
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_install() {
  echo "bench/setup.sh: installing $* (apt)"
  $SUDO env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "$@" ||
    { $SUDO timeout 300 apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive \
        timeout 600 apt-get install -y --no-install-recommends "$@"; }
}

missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "bench/setup.sh: node $(node --version) is too old (need >= 18; the uWS.js binary needs ABI 108/115)" >&2
  exit 1
fi

# npm ci only when node_modules does not match the lock file.
if [ ! -f node_modules/.package-lock.json ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ] ||
   [ ! -d node_modules/@trufflesuite/uws-js-unofficial/binaries ] || [ ! -d node_modules/ws ]; then
  echo "bench/setup.sh: npm ci in bench/"
  timeout 600 npm ci --no-audit --no-fund --loglevel=error
fi

# Fail here, not in the middle of a run, if the native uWS.js addon does not load.
# shellcheck disable=SC2016 # JavaScript, not shell
node -e '
  const path = require("path");
  const dir = path.dirname(require.resolve("@trufflesuite/uws-js-unofficial/package.json"));
  const f = path.join(dir, "binaries", `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  try { require(f); } catch (e) {
    console.error("bench/setup.sh: native uWebSockets.js addon does not load: " + f + "\n  " + e.message.split("\n")[0]);
    process.exit(1);
  }' || echo "bench/setup.sh: WARNING: the uws peer will be reported as failed" >&2

echo "bench/setup.sh: ok (nats-server $(nats-server --version | sed 's/^nats-server: //'), node $(node --version))"
