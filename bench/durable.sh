#!/usr/bin/env bash
# Durable publish throughput and latency: the same open-loop publish load against tandem
# with history in memory, in the durable store with store.sync=normal, and with
# store.sync=full (fsync per group commit, the default). Loopback only, bounded in time.
#
#   bench/durable.sh [--rates 10000,50000,100000] [--duration 5]
#
# One publisher connection sends --rate publications/s (Centrifugo JSON `publish` commands)
# round-robin over 100 channels with one subscriber each; a publication is delivered only
# after its commit, so publish->delivery latency includes the group commit. Prints a table
# with each durable mode's throughput and p99 as a ratio to the in-memory run.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TANDEM_BIN=${TANDEM_BIN:-$ROOT/build/dev/tandem}
TD_LOADGEN=${TD_LOADGEN:-$ROOT/build/dev/td_loadgen}
RATES=10000,50000,100000
DURATION=5
while [ $# -gt 0 ]; do
  case "$1" in
    --rates) RATES=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    *) echo "usage: $0 [--rates R1,R2,...] [--duration SEC]" >&2; exit 2 ;;
  esac
done
for b in "$TANDEM_BIN" "$TD_LOADGEN"; do
  [ -x "$b" ] || { echo "missing $b (make build; cmake --build --preset dev --target td_loadgen)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "jq is needed (apt-get install jq)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/tandem-durable-bench.XXXXXX)
SRV_PID=""
cleanup() { [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

config() { # MODE -> config file
  local durable=true sync=full
  case "$1" in
    memory) durable=false ;;
    normal) sync=normal ;;
  esac
  cat >"$WORK/$1.json" <<JSON
{ "log": {"level": "warn"},
  "store": {"sync": "$sync"},
  "client": {"insecure": true, "queue_max_size": 16777216},
  "channel": {"without_namespace": {"history_size": 1000, "history_ttl": "300s",
                                    "history_durable": $durable}} }
JSON
  echo "$WORK/$1.json"
}

run() { # MODE RATE -> loadgen JSON line
  local mode=$1 rate=$2 log="$WORK/$mode-$rate.log"
  rm -rf "$WORK/data"
  "$TANDEM_BIN" --config "$(config "$mode")" --port 0 --data-dir "$WORK/data" --log-level info \
    >"$log" 2>&1 &
  SRV_PID=$!
  local port=""
  for _ in $(seq 1 100); do
    port=$(grep -o 'msg="listening".*port=[0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "tandem did not start: $(tail -3 "$log")" >&2; exit 1; }
  "$TD_LOADGEN" --port "$port" --proto centrifuge-json --mode rate --subs ${SUBS:-100} --channels ${CHANNELS:-100} \
    --payload 64 --rate "$rate" --duration "$DURATION" --warmup 1 --timeout 10 \
    --server-pid "$SRV_PID" --label "$mode/$rate" 2>/dev/null | grep -m1 '^{'
  kill -TERM "$SRV_PID"
  wait "$SRV_PID" 2>/dev/null || true
  SRV_PID=""
}

printf '%-8s %9s %12s %10s %10s %10s %14s %12s\n' mode rate 'pubs/s' 'p50 us' 'p99 us' 'p999 us' 'pubs/s ratio' 'p99 ratio'
IFS=, read -ra rates <<<"$RATES"
for rate in "${rates[@]}"; do
  declare -A base=()
  for mode in memory normal full; do
    line=$(run "$mode" "$rate")
    pubs=$(echo "$line" | jq '.publications / .seconds')
    p50=$(echo "$line" | jq '.lat_p50_us')
    p99=$(echo "$line" | jq '.lat_p99_us')
    p999=$(echo "$line" | jq '.lat_p999_us')
    lost=$(echo "$line" | jq '.expected_deliveries - .deliveries')
    if [ "$mode" = memory ]; then base[pubs]=$pubs; base[p99]=$p99; fi
    printf '%-8s %9s %12.0f %10s %10s %10s %14.2f %12.2f%s\n' "$mode" "$rate" "$pubs" "$p50" "$p99" "$p999" \
      "$(awk -v a="$pubs" -v b="${base[pubs]}" 'BEGIN{print a/b}')" \
      "$(awk -v a="$p99" -v b="${base[p99]}" 'BEGIN{print a/b}')" \
      "$([ "$lost" != 0 ] && echo "  (missing deliveries: $lost)")"
  done
done
