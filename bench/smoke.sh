#!/usr/bin/env bash
# Smoke test for td_loadgen: starts tandem on an OS-chosen port with a temporary config and
# runs the load generator briefly in every mode (rounds with JSON and Protobuf, rate, connect,
# idle). Checks that each run exits 0 and prints one JSON line whose deliveries match the
# expected count. Builds nothing and asserts no timing.
#   TANDEM_BIN=... LOADGEN_BIN=... bench/smoke.sh
# Exits non-zero with a message naming the failing case.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tandem="${TANDEM_BIN:-build/dev/tandem}"
loadgen="${LOADGEN_BIN:-build/dev/td_loadgen}"
case "$tandem" in /*) ;; *) tandem="$root/$tandem" ;; esac
case "$loadgen" in /*) ;; *) loadgen="$root/$loadgen" ;; esac

fail() {
  echo "bench smoke: FAIL: $*" >&2
  exit 1
}

[ -x "$tandem" ] || fail "tandem binary not found at $tandem (build first)"
[ -x "$loadgen" ] || fail "td_loadgen binary not found at $loadgen (build first)"

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/config.json" <<'EOF'
{
  "client": { "insecure": true },
  "http_api": { "key": "bench-smoke-key" },
  "channel": {
    "without_namespace": { "history_size": 100, "history_ttl": "300s" }
  }
}
EOF

"$tandem" --config "$tmp/config.json" --port 0 2>"$tmp/server.log" &
server_pid=$!

port=""
for _ in $(seq 1 100); do
  port="$(sed -n 's/.*msg="listening".* port=\([0-9][0-9]*\).*/\1/p' "$tmp/server.log" | head -n 1)"
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || fail "tandem exited at startup: $(cat "$tmp/server.log")"
  sleep 0.1
done
[ -n "$port" ] || fail "tandem did not log msg=\"listening\" within 10 s"
echo "bench smoke: tandem pid $server_pid on port $port"

# field NAME JSON: the value of a top-level number/null field.
field() {
  printf '%s\n' "$2" | sed -n "s/.*\"$1\":\([-0-9.]*\|null\)[,}].*/\1/p"
}

# run NAME CHECK_DELIVERIES ARGS...: runs td_loadgen and validates its output.
run() {
  local name="$1" check="$2"
  shift 2
  local out rc=0
  out="$(timeout 120 "$loadgen" --port "$port" --server-pid "$server_pid" --label "$name" "$@" \
    2>"$tmp/$name.err")" || rc=$?
  [ "$rc" -eq 0 ] || fail "$name: td_loadgen exited $rc: $(tail -n 3 "$tmp/$name.err")"
  [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "$name: expected one line on stdout, got: $out"
  case "$out" in "{"*"}") ;; *) fail "$name: not a JSON object: $out" ;; esac
  [ "$(field errors "$out")" = "0" ] || fail "$name: errors is not 0: $out"
  if [ "$check" = deliveries ]; then
    local got want
    got="$(field deliveries "$out")"
    want="$(field expected_deliveries "$out")"
    [ -n "$got" ] && [ "$got" != null ] || fail "$name: no deliveries field: $out"
    [ "$got" -gt 0 ] || fail "$name: no deliveries: $out"
    [ "$got" = "$want" ] || fail "$name: deliveries $got != expected_deliveries $want"
  fi
  echo "bench smoke: ok $name: $out"
  LAST="$out"
}

common=(--subs 20 --channels 2 --warmup 0 --duration 1)
run rounds_json deliveries --proto centrifuge-json --mode rounds --batch 4 "${common[@]}"
run rounds_protobuf deliveries --proto centrifuge-protobuf --mode rounds --batch 4 "${common[@]}"
run rate_json deliveries --proto centrifuge-json --mode rate --rate 200 "${common[@]}"
run connect_json none --proto centrifuge-json --mode connect --subs 50
[ "$(field connect_per_s "$LAST")" != null ] || fail "connect_json: connect_per_s is null"
run idle_json none --proto centrifuge-json --mode idle --subs 50 --duration 1
[ "$(field rss_per_conn_bytes "$LAST")" != null ] || fail "idle_json: rss_per_conn_bytes is null"

kill -0 "$server_pid" 2>/dev/null || fail "tandem died during the runs: $(tail -n 5 "$tmp/server.log")"
echo "bench smoke: all cases passed"
