#!/usr/bin/env bash
# WebTransport vs WebSocket fan-out (issue #7): the same tandem configuration, the same
# publisher (one WebSocket connection sending Centrifugo JSON publish commands), the same
# open-loop publication rate and payload; only the subscribers' transport differs:
#   WT   build/dev/td_wtload   N WebTransport sessions, one QUIC connection each (as Chromium)
#   WSS  build/dev/td_loadgen  N WebSocket connections over TLS (--tls), --proto centrifuge-json
#   WS   build/dev/td_loadgen  N plaintext WebSocket connections, --proto centrifuge-json
# WebTransport encrypts every packet, so WT/WSS is the like-for-like ratio; WT/WS shows what
# encryption and QUIC cost together. tandem serves TCP either with TLS or without, never both
# on one port, so WT and WS run against a server with "tls.tcp": false and WSS against one
# with TLS on TCP (same certificate; in the WSS run the publisher uses TLS too).
# Loopback only, bounded in time. Each measurement gets a fresh tandem.
#
#   bench/wt.sh [--quick] [--subs 500,2000] [--channels 10] [--rate 200] [--duration 10]
#
#   --quick     3 s measurements after 1 s warm-up (default: 10 s after 2 s)
#   --subs      subscriber counts, comma-separated (default 500,2000)
#   --channels  channels; subscriber i joins bench<i % channels> (default 10)
#   --rate      publications per second in total, round-robin over the channels (default 200)
#   --duration  measured seconds (overrides --quick's)
#
# Prints a table per N: deliveries/s, deliveries per server CPU-second, p50/p99 latency,
# server and load-generator CPU, for WT, WSS and WS, and the ratios WT/WSS and WT/WS. Every result line
# (td_loadgen's JSON fields) is kept in bench/results/wt-<timestamp>.jsonl.
#
# Environment: TANDEM_BIN (default build/dev/tandem), TD_LOADGEN, TD_WTLOAD (default
# build/dev/td_loadgen, build/dev/td_wtload).
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
TANDEM_BIN=${TANDEM_BIN:-$ROOT/build/dev/tandem}
TD_LOADGEN=${TD_LOADGEN:-$ROOT/build/dev/td_loadgen}
TD_WTLOAD=${TD_WTLOAD:-$ROOT/build/dev/td_wtload}

SUBS=500,2000 CHANNELS=10 RATE=200 PAYLOAD=100 MEAS=10 WARM=2 DURATION=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MEAS=3 WARM=1; shift ;;
    --subs) SUBS=$2; shift 2 ;;
    --channels) CHANNELS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    -h | --help)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
      exit 0
      ;;
    *) echo "bench/wt.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$DURATION" ] && MEAS=$DURATION

die() { echo "bench/wt.sh: $*" >&2; exit 1; }
for b in "$TANDEM_BIN" "$TD_LOADGEN" "$TD_WTLOAD"; do
  [ -x "$b" ] || die "missing $b (make build; cmake --build --preset dev --target td_loadgen td_wtload)"
done
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Server on CPU 0, load generator on CPU 1, as bench/run.sh does.
SRV_PIN=() LG_PIN=() PINNING="none (fewer than 2 CPUs or no taskset)"
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SRV_PIN=(taskset -c 0) LG_PIN=(taskset -c 1)
  PINNING="server on CPU 0, load generator on CPU 1"
fi

WORK=$(mktemp -d /tmp/tandem-wt-bench.XXXXXX)
SRV_PID=""
stop_server() {
  [ -n "$SRV_PID" ] || return 0
  kill -TERM "$SRV_PID" 2>/dev/null
  local _
  for _ in $(seq 1 50); do
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SRV_PID" 2>/dev/null
  wait "$SRV_PID" 2>/dev/null
  SRV_PID=""
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'echo "bench/wt.sh: interrupted" >&2; exit 130' INT TERM

"$TANDEM_BIN" gencert --days 13 --out "$WORK/cert" >"$WORK/gencert.log" 2>&1 ||
  die "tandem gencert failed: $(tail -n 2 "$WORK/gencert.log")"
# write_config FILE TCP_TLS: tls.tcp false (WT, WS: plaintext TCP) or true (WSS).
write_config() {
  cat >"$1" <<JSON
{
  "address": "127.0.0.1",
  "log": { "level": "warn" },
  "client": { "insecure": true, "queue_max_size": 16777216 },
  "channel": { "without_namespace": { "history_size": 100, "history_ttl": "300s",
                                      "history_durable": false } },
  "webtransport": { "enabled": true },
  "tls": { "cert_file": "$WORK/cert/cert.pem", "key_file": "$WORK/cert/key.pem", "tcp": $2 }
}
JSON
}
write_config "$WORK/tandem-plain.json" false
write_config "$WORK/tandem-tls.json" true

# A port below the ephemeral range that nobody listens on (TCP; tandem takes the same
# number on UDP for WebTransport).
free_port() {
  local p _
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

start_server() { # PORT LOG CONFIG
  "${SRV_PIN[@]}" "$TANDEM_BIN" --config "$3" --port "$1" --data-dir "$WORK/data" \
    >"$2" 2>&1 &
  SRV_PID=$!
  local deadline=$((SECONDS + 15))
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$SRV_PID" 2>/dev/null; then
      wait "$SRV_PID" 2>/dev/null
      SRV_PID=""
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      sleep 0.2 # the UDP listener starts with the TCP one
      return 0
    fi
    sleep 0.05
  done
  stop_server
  return 1
}

# Source addresses for the WebTransport sessions: tandem accepts at most 100 QUIC
# connections per client address, so spread them, 50 per address, over 127.0.0.x.
wt_src_ips() {
  local n=$(($1 / 50 + 1)) i out=""
  [ "$n" -gt 250 ] && n=250
  for i in $(seq 1 "$n"); do out="$out${out:+,}127.0.0.$i"; done
  echo "$out"
}

mkdir -p "$BENCH_DIR/results"
RESULTS="$BENCH_DIR/results/wt-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
: >"$RESULTS"

# run_one KIND N (KIND: wt, wss or ws) -> sets LAST to the load generator's JSON line (empty on failure)
LAST=""
run_one() {
  local kind=$1 n=$2 port log="$WORK/tandem-$1-$2.log"
  LAST=""
  port=$(free_port) || { echo "no free port" >&2; return 1; }
  local config="$WORK/tandem-plain.json"
  [ "$kind" = wss ] && config="$WORK/tandem-tls.json"
  if ! start_server "$port" "$log" "$config"; then
    echo "bench/wt.sh: tandem did not start: $(grep -v '^\s*$' "$log" | tail -n 3 | tr '\n' ' ')" >&2
    return 1
  fi
  local common=(--port "$port" --mode rate --subs "$n" --channels "$CHANNELS" --payload "$PAYLOAD"
    --rate "$RATE" --duration "$MEAS" --warmup "$WARM" --timeout 15 --server-pid "$SRV_PID"
    --label "$kind/n$n")
  local out="$WORK/$kind-$n.out" err="$WORK/$kind-$n.err" rc
  if [ "$kind" = wt ]; then
    timeout -k 5 $((MEAS + WARM + 90)) "${LG_PIN[@]}" "$TD_WTLOAD" "${common[@]}" \
      --src-ips "$(wt_src_ips "$n")" >"$out" 2>"$err"
  else
    local tls=()
    [ "$kind" = wss ] && tls=(--tls)
    timeout -k 5 $((MEAS + WARM + 90)) "${LG_PIN[@]}" "$TD_LOADGEN" "${common[@]}" \
      --proto centrifuge-json "${tls[@]}" >"$out" 2>"$err"
  fi
  rc=$?
  local alive=1
  kill -0 "$SRV_PID" 2>/dev/null || alive=0
  stop_server
  local line
  line=$(grep -m1 '^{' "$out" || true)
  if [ $rc -ne 0 ]; then
    echo "bench/wt.sh: $kind n=$n: load generator exit $rc: $(grep -v '^\s*$' "$err" | tail -n 1 | cut -c1-300)" >&2
    [ $alive -eq 0 ] && echo "bench/wt.sh: tandem died: $(tail -n 2 "$log" | tr '\n' ' ')" >&2
  fi
  [ -n "$line" ] || return 1
  echo "$line" >>"$RESULTS"
  LAST=$line
}

echo "bench/wt.sh: subs $SUBS, $CHANNELS channels, $PAYLOAD-byte payload, $RATE publications/s," \
  "${MEAS}s after ${WARM}s warm-up; $PINNING" >&2
printf '%-6s %-6s %12s %14s %9s %9s %9s %9s %s\n' subs proto 'deliv/s' 'deliv/cpu-s' 'p50 us' \
  'p99 us' 'srv cpu' 'lg cpu' 'notes'
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "null" || b == "null" || b == 0) print "-"; else printf "%.2f", a / b }'; }
row() { # N PROTO JSON
  echo "$3" | jq -r --arg n "$1" --arg p "$2" 'def f: if . == null then "-" else (. | floor | tostring) end;
    def c: if . == null then "-" else tostring end;
    [$n, $p, (.deliveries_per_s|f), (.deliveries_per_cpu_s|f), (.lat_p50_us|f), (.lat_p99_us|f),
     (.server_cpu_s|c), (.loadgen_cpu_s|c),
     (if (.errors // 0) > 0 then "errors=\(.errors)" else "" end)] | @tsv' |
    awk -F'\t' '{ printf "%-6s %-6s %12s %14s %9s %9s %9s %9s %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }'
}
# ratio_row N NAME A_JSON B_JSON: the A/B ratio of every column.
ratio_row() {
  g() { echo "$1" | jq -r ".$2 // empty"; }
  printf '%-6s %-6s %12s %14s %9s %9s %9s %9s\n' "$1" "$2" \
    "$(ratio "$(g "$3" deliveries_per_s)" "$(g "$4" deliveries_per_s)")" \
    "$(ratio "$(g "$3" deliveries_per_cpu_s)" "$(g "$4" deliveries_per_cpu_s)")" \
    "$(ratio "$(g "$3" lat_p50_us)" "$(g "$4" lat_p50_us)")" \
    "$(ratio "$(g "$3" lat_p99_us)" "$(g "$4" lat_p99_us)")" \
    "$(ratio "$(g "$3" server_cpu_s)" "$(g "$4" server_cpu_s)")" \
    "$(ratio "$(g "$3" loadgen_cpu_s)" "$(g "$4" loadgen_cpu_s)")"
}
IFS=, read -ra ns <<<"$SUBS"
for n in "${ns[@]}"; do
  run_one wt "$n"
  wt=$LAST
  run_one wss "$n"
  wss=$LAST
  run_one ws "$n"
  ws=$LAST
  if [ -n "$wt" ]; then row "$n" WT "$wt"; else printf '%-6s %-6s %s\n' "$n" WT failed; fi
  if [ -n "$wss" ]; then row "$n" WSS "$wss"; else printf '%-6s %-6s %s\n' "$n" WSS failed; fi
  if [ -n "$ws" ]; then row "$n" WS "$ws"; else printf '%-6s %-6s %s\n' "$n" WS failed; fi
  [ -n "$wt" ] && [ -n "$wss" ] && ratio_row "$n" 'WT/WSS' "$wt" "$wss"
  [ -n "$wt" ] && [ -n "$ws" ] && ratio_row "$n" 'WT/WS' "$wt" "$ws"
done
echo "bench/wt.sh: results in ${RESULTS#"$ROOT"/}" >&2
