#!/usr/bin/env bash
# tandem benchmarks: tandem and its peers (uWebSockets.js, nats-server, node ws), each measured
# with the same load generator (build/dev/td_loadgen), same payload, same N. Loopback only.
#
#   bench/run.sh [--quick|--full]
#
#   --quick  (default; what `make bench` runs) 3 s measurements after 1 s warm-up, whole run
#            bounded to under 10 minutes
#   --full   10 s measurements after 2 s warm-up, latency also at N = 10,000
#
# Environment:
#   TANDEM_BIN     tandem binary (default build/dev/tandem)
#   TD_LOADGEN     load generator (default build/dev/td_loadgen)
#   BENCH_SERVERS  subset of "tandem-pb tandem-json uws nats ws" (default: all)
#
# Writes every load-generator result (one JSON line each, plus failures) to
# bench/results/<timestamp>.jsonl, then prints one table (bench/report.js). A server that fails
# is shown as "failed" with the reason in a footnote; the run goes on. Every step has a timeout
# and every server started here is stopped on exit. See BENCHMARKS.md for the method.
set -uo pipefail

MODE=quick
for arg in "$@"; do
  case "$arg" in
    --quick) MODE=quick ;;
    --full) MODE=full ;;
    -h | --help)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
      exit 0
      ;;
    *)
      echo "bench/run.sh: unknown argument: $arg (use --quick or --full)" >&2
      exit 2
      ;;
  esac
done

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
TANDEM_BIN=${TANDEM_BIN:-$ROOT/build/dev/tandem}
TD_LOADGEN=${TD_LOADGEN:-$ROOT/build/dev/td_loadgen}
SERVERS=${BENCH_SERVERS:-tandem-pb tandem-json uws nats ws}

if [ "$MODE" = quick ]; then
  MEAS=3 WARM=1 BUDGET=570 LAT_NS="1000"
else
  MEAS=10 WARM=2 BUDGET=3600 LAT_NS="1000 10000"
fi
PAYLOAD=100

die() {
  echo "bench/run.sh: $*" >&2
  exit 1
}
[ -x "$TANDEM_BIN" ] || die "no tandem binary at $TANDEM_BIN (run make build)"
[ -x "$TD_LOADGEN" ] || die "no load generator at $TD_LOADGEN (cmake --build --preset dev --target td_loadgen)"
command -v jq >/dev/null || die "jq missing (run bench/setup.sh)"
command -v node >/dev/null || die "node missing (run bench/setup.sh)"

# --- file descriptors: soft limit up to the hard limit -------------------------------------
HARD_NOFILE=$(ulimit -Hn)
if [ "$HARD_NOFILE" != unlimited ]; then
  # Try to raise the hard limit too (needs CAP_SYS_RESOURCE); fine if it fails.
  ulimit -Hn 200000 2>/dev/null && HARD_NOFILE=200000
fi
ulimit -n "$HARD_NOFILE" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
NOTES=()
IDLE_BIG=50000
# Server and load generator each hold one fd per connection, plus a few of their own.
if [ $((NOFILE - 256)) -lt "$IDLE_BIG" ]; then
  IDLE_BIG=$(((NOFILE - 256) / 1000 * 1000))
  NOTES+=("idle 50,000 reduced to $IDLE_BIG: the open-files hard limit here is $NOFILE and cannot be raised (no CAP_SYS_RESOURCE)")
fi
if [ "$NOFILE" -lt 10300 ]; then
  NOTES+=("open-files limit $NOFILE is below 10,300: the 10,000-connection scenarios will fail")
fi

# --- CPU pinning: server on CPU 0, load generator on CPU 1 ----------------------------------
SRV_PIN=() LG_PIN=() PINNING="none"
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SRV_PIN=(taskset -c 0) LG_PIN=(taskset -c 1)
  PINNING="server on CPU 0, load generator on CPU 1 (taskset)"
else
  NOTES+=("no CPU pinning (taskset missing or fewer than 2 CPUs): server and load generator share CPUs")
fi

# Source addresses: one (port range allows ~28k connections per destination) unless more needed.
src_ips() {
  if [ "$1" -ge 28000 ]; then echo "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4"; else echo "127.0.0.1"; fi
}

mkdir -p "$BENCH_DIR/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS="$BENCH_DIR/results/$STAMP.jsonl"
WORK=$(mktemp -d /tmp/tandem-bench.XXXXXX)
SRV_PID=""
LG_PID=""

cleanup() {
  if [ -n "$LG_PID" ]; then # `timeout` passes TERM on to the load generator
    kill -TERM "$LG_PID" 2>/dev/null
    sleep 0.5
    kill -KILL "$LG_PID" 2>/dev/null
    wait "$LG_PID" 2>/dev/null
  fi
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "bench/run.sh: interrupted" >&2; exit 130' INT TERM

# --- servers ----------------------------------------------------------------------------------
# A port below the ephemeral range (32768+) that nobody listens on.
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

wait_listening() { # PORT PID TIMEOUT_S
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$2" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

SRV_REASON=""
start_server() { # NAME PORT ; sets SRV_PID or SRV_REASON
  local name=$1 port=$2 log="$WORK/$1.log"
  SRV_REASON=""
  case "$name" in
    tandem-*)
      "${SRV_PIN[@]}" "$TANDEM_BIN" --config "$BENCH_DIR/peers/tandem.json" --port "$port" \
        >"$log" 2>&1 &
      ;;
    uws) "${SRV_PIN[@]}" node "$BENCH_DIR/peers/uws_server.js" "$port" >"$log" 2>&1 & ;;
    ws) "${SRV_PIN[@]}" node "$BENCH_DIR/peers/ws_server.js" "$port" >"$log" 2>&1 & ;;
    nats)
      NATS_WS_PORT=$port NATS_PORT=$(free_port) \
        "${SRV_PIN[@]}" nats-server -c "$BENCH_DIR/peers/nats.conf" >"$log" 2>&1 &
      ;;
    *)
      SRV_REASON="unknown server $name"
      return 1
      ;;
  esac
  SRV_PID=$!
  if ! wait_listening "$port" "$SRV_PID" 15; then
    local how="not listening on port $port after 15 s"
    if ! kill -0 "$SRV_PID" 2>/dev/null; then
      wait "$SRV_PID" 2>/dev/null
      how="exited with status $?"
      SRV_PID=""
    fi
    SRV_REASON="$name did not start ($how): $(grep -v '^\s*$' "$log" | tail -n 3 | tr '\n' ' ' | cut -c1-240)"
    stop_server
    return 1
  fi
  return 0
}

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

proto_of() {
  case "$1" in
    tandem-pb) echo centrifuge-protobuf ;;
    tandem-json) echo centrifuge-json ;;
    nats) echo nats ;;
    *) echo raw ;;
  esac
}

record_failure() { # SERVER SCENARIO REASON
  jq -cn --arg s "$1" --arg sc "$2" --arg r "$3" \
    '{server:$s, scenario:$sc, label:($s+"/"+$sc), failed:true, reason:$r}' >>"$RESULTS"
}

# run_one SERVER SCENARIO TIMEOUT_S LOADGEN_ARGS... ; appends one line to $RESULTS,
# leaves the load generator's JSON in $LAST (empty on failure)
LAST=""
run_one() {
  local server=$1 scen=$2 tmo=$3
  shift 3
  LAST=""
  # Worst case of one step: server start (15 s) + load generator (tmo + 15 s) + stop (5 s).
  if [ $((SECONDS + tmo + 35)) -gt "$BUDGET" ]; then
    record_failure "$server" "$scen" "skipped: it might not finish within the ${BUDGET}s time budget"
    return 1
  fi
  local port
  port=$(free_port) || {
    record_failure "$server" "$scen" "no free port"
    return 1
  }
  if ! start_server "$server" "$port"; then
    record_failure "$server" "$scen" "$SRV_REASON"
    return 1
  fi
  local path_args=()
  [ "$server" = nats ] && path_args=(--path /)
  local out="$WORK/lg.out" err="$WORK/lg.err" rc
  printf '  %-12s %-22s ' "$server" "$scen" >&2
  timeout -k 5 $((tmo + 15)) "${LG_PIN[@]}" "$TD_LOADGEN" --host 127.0.0.1 --port "$port" \
    "${path_args[@]}" --proto "$(proto_of "$server")" --server-pid "$SRV_PID" \
    --label "$server/$scen" --timeout "$tmo" "$@" >"$out" 2>"$err" &
  LG_PID=$!
  wait "$LG_PID"
  rc=$?
  LG_PID=""
  local line
  line=$(grep -m1 '^{' "$out" || true)
  local server_alive=1
  kill -0 "$SRV_PID" 2>/dev/null || server_alive=0
  stop_server
  if [ $rc -eq 0 ] && [ -n "$line" ] && echo "$line" | jq -e . >/dev/null 2>&1; then
    LAST=$line
    echo "$line" | jq -c --arg s "$server" --arg sc "$scen" '. + {server:$s, scenario:$sc}' >>"$RESULTS"
    echo "$line" | jq -r 'def r: if . == null then "-" else (. | floor | tostring) end;
      "ok  deliv/s=\(.deliveries_per_s|r) per-cpu-s=\(.deliveries_per_cpu_s|r) p99us=\(.lat_p99_us|r) rss/conn=\(.rss_per_conn_bytes|r) conn/s=\(.connect_per_s|r) errors=\(.errors // 0)"' >&2
    return 0
  fi
  local reason
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    reason="load generator timed out after $((tmo + 15))s"
  else
    reason="load generator exit $rc"
  fi
  local msg
  msg=$(grep -v '^\s*$' "$err" | tail -n 1 | cut -c1-200)
  [ -n "$msg" ] && reason="$reason: $msg"
  [ $server_alive -eq 0 ] && reason="$reason; server died: $(tail -n 1 "$WORK/$server.log" | cut -c1-160)"
  echo "FAILED ($reason)" >&2
  record_failure "$server" "$scen" "$reason"
  return 1
}

# --- metadata ---------------------------------------------------------------------------------
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
NATS_VER=$(nats-server --version 2>/dev/null | sed 's/^nats-server: //')
UWS_VER=$(node -p 'require(process.argv[1]+"/node_modules/@trufflesuite/uws-js-unofficial/package.json").version' "$BENCH_DIR" 2>/dev/null)
WS_VER=$(node -p 'require(process.argv[1]+"/node_modules/ws/package.json").version' "$BENCH_DIR" 2>/dev/null)
TANDEM_VER=$("$TANDEM_BIN" version 2>/dev/null | head -n 1)
notes_json=$(printf '%s\n' "${NOTES[@]+"${NOTES[@]}"}" | jq -R . | jq -cs 'map(select(. != ""))')
jq -cn --arg mode "$MODE" --arg date "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" \
  --arg nproc "$(nproc)" --arg cpu "$CPU_MODEL" --arg kernel "$(uname -r)" \
  --arg pinning "$PINNING" --arg cmd "bench/run.sh --$MODE" --arg node "$(node --version)" \
  --arg nats "$NATS_VER" --arg uws "$UWS_VER" --arg ws "$WS_VER" --arg tandem "$TANDEM_VER" \
  --argjson meas "$MEAS" --argjson warm "$WARM" --argjson payload "$PAYLOAD" \
  --argjson idle_big "$IDLE_BIG" --arg nofile "$NOFILE" --argjson notes "$notes_json" \
  --arg servers "$SERVERS" \
  '{meta:{mode:$mode, date:$date, nproc:$nproc, cpu:$cpu, kernel:$kernel, pinning:$pinning,
    command:$cmd, node:$node, nats_server:$nats, uws_js:$uws, ws:$ws, tandem:$tandem,
    measure_s:$meas, warmup_s:$warm, payload:$payload, idle_big:$idle_big, nofile:$nofile,
    servers:($servers|split(" ")|map(select(. != ""))), notes:$notes}}' >"$RESULTS"

echo "bench/run.sh --$MODE: results in $RESULTS" >&2
for n in "${NOTES[@]+"${NOTES[@]}"}"; do echo "  note: $n" >&2; done

COMMON=(--payload "$PAYLOAD" --duration "$MEAS" --warmup "$WARM")
declare -A MAXRATE # "server/N" -> publications/s measured in rounds mode, batch 1, one channel

# (1) one channel, N subscribers, B publications per round
echo "(1) one channel, fan-out" >&2
for n in 1000 10000; do
  for b in 1 16; do
    for s in $SERVERS; do
      if run_one "$s" "s1-n$n-b$b" 40 --mode rounds --subs "$n" --channels 1 --batch "$b" \
        "${COMMON[@]}" --src-ips "$(src_ips $n)"; then
        if [ "$b" = 1 ]; then
          MAXRATE[$s/$n]=$(echo "$LAST" | jq -r 'if (.deliveries_per_s // 0) > 0 and .subs > 0
            then (.deliveries_per_s / .subs) else empty end')
        fi
      fi
    done
  done
done

# (2) many small rooms: 10,000 connections in 1,000 channels of 10
echo "(2) many small rooms" >&2
for s in $SERVERS; do
  run_one "$s" "s2-rooms-10000x1000" 40 --mode rounds --subs 10000 --channels 1000 --batch 1 \
    "${COMMON[@]}" --src-ips 127.0.0.1
done

# (3) idle connections, each subscribed to its own channel: RSS per connection
echo "(3) idle connections" >&2
for n in 10000 "$IDLE_BIG"; do
  for s in $SERVERS; do
    run_one "$s" "s3-idle-$n" 60 --mode idle --subs "$n" --channels "$n" --payload "$PAYLOAD" \
      --duration 1 --warmup 0 --src-ips "$(src_ips "$n")"
  done
done

# (4) publish-to-delivery latency at 25/50/75% of each server's own maximum rate (from (1))
echo "(4) latency under open-loop load" >&2
for n in $LAT_NS; do
  for pct in 25 50 75; do
    for s in $SERVERS; do
      max=${MAXRATE[$s/$n]:-}
      if [ -z "$max" ]; then
        record_failure "$s" "s4-lat-n$n-p$pct" "no maximum rate: the s1-n$n-b1 run failed"
        continue
      fi
      rate=$(awk -v m="$max" -v p="$pct" 'BEGIN { r = m * p / 100; if (r < 1) r = 1; printf "%.0f", r }')
      run_one "$s" "s4-lat-n$n-p$pct" 40 --mode rate --subs "$n" --channels 1 --rate "$rate" \
        --batch 1 "${COMMON[@]}" --src-ips "$(src_ips "$n")"
    done
  done
done

# (5) connection setup rate: connect (and subscribe) 10,000 clients as fast as possible
echo "(5) connection setup rate" >&2
for s in $SERVERS; do
  run_one "$s" "s5-connect-10000" 60 --mode connect --subs 10000 --channels 1000 \
    --payload "$PAYLOAD" --duration "$MEAS" --warmup 0 --src-ips 127.0.0.1
done

echo "bench/run.sh: done in ${SECONDS}s; results in ${RESULTS#"$ROOT"/}" >&2
echo
node "$BENCH_DIR/report.js" "$RESULTS"
