#!/usr/bin/env bash
# Cross-node against same-node fan-out (issue 14): a fresh nats-server and
# two fresh partyline nodes (a and b) per run, then one partyline-loadtest
# run against them, in two modes under the same load:
#   same  every member of every party on node a (b idle, in the cluster)
#   cross member j of party p on node (p + j) % 2: two members of every
#         party of 4 on each node, half the parties led (homed) on each
#   alone (only with MODES) node a started without --cluster, no node b,
#         NATS running idle: what cluster mode itself costs a node
# RUNS runs of each mode in $MODES (default "same cross"), interleaved (the
# order turns by one each run: same, cross; then cross, same; ...). One
# JSON object per run, one per line, appended to $OUT
# (default docs/bench-cluster-$(date -u +%F).jsonl), with the exact
# generator command; scripts/bench-cluster-table.py makes the tables.
#
#   scripts/bench-cluster.sh            # load S (100 x 4 @ 20 Hz)
#   LOADS="S M" scripts/bench-cluster.sh
#   MODES="alone same" LOADS="S M" scripts/bench-cluster.sh
#
# Pinning (2 cores): both nodes and NATS on CPU 0 (taskset -c 0), the
# generator on the last CPU (its --pin), in both modes. Nodes run one
# worker thread each (--threads 1), as the standard cells' server does.
#
# A quiet machine: before each pair of runs the script waits until no
# rustc or cargo process (anyone's) has been seen for $QUIET_S seconds
# (default 30), and watches for them during each run; a run that
# overlapped one is kept with "overlap": true (the table leaves it out)
# and made again, up to 3 times.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-docs/bench-cluster-$(date -u +%F).jsonl}
RUNS=${RUNS:-5}
DURATION=${DURATION:-20}
LOADS=${LOADS:-S}
MODES=${MODES:-same cross}
QUIET_S=${QUIET_S:-30}
NATS_SERVER=${NATS_SERVER:-nats-server}
# Fixed loopback ports below the ephemeral range, so nothing else's random
# port takes them between runs.
BASE=${BASE_PORT:-24200}
NATS_PORT=$BASE NATS_MON=$((BASE + 1))
A_PORT=$((BASE + 10)) B_PORT=$((BASE + 11))
A_METRICS=$((BASE + 20)) B_METRICS=$((BASE + 21))
COMMIT=${COMMIT:-$(git rev-parse --short HEAD)}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p partyline -p partyline-loadtest
  BIN=${CARGO_TARGET_DIR:-target}/release
fi
SERVER_CPU=0
WORK=$(mktemp -d /tmp/bench-cluster.XXXXXX)
PIDS=()
# Stops what start_cluster started, last first: the nodes before NATS (a
# node asked to stop while NATS is gone waits for it to come back), each
# given 5 s before SIGKILL.
cleanup() {
  local i pid
  for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
    pid=${PIDS[i]}
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap 'cleanup; rm -rf "$WORK"' EXIT
touch "$OUT"

busy() { pgrep -x rustc >/dev/null || pgrep -x cargo >/dev/null; }

# Waits until no rustc/cargo has been seen for QUIET_S seconds; prints the wait.
wait_quiet() {
  local started last now
  started=$(date +%s) last=$started
  while :; do
    now=$(date +%s)
    if busy; then last=$now; fi
    if (( now - last >= QUIET_S )); then break; fi
    sleep 1
  done
  echo $(( $(date +%s) - started ))
}

# up URL GREP: waits (10 s at most) until the page at URL holds GREP.
up() {
  for _ in $(seq 1 100); do
    if curl -fs "$1" 2>/dev/null | grep -q "$2"; then return 0; fi
    sleep 0.1
  done
  echo "!! $1 never showed $2" >&2
  return 1
}

# start_cluster MODE: starts NATS and nodes a and b (fresh state, one
# shared dev certificate), pinned to SERVER_CPU; sets NATS_PID A_PID B_PID.
# MODE alone: node a only, not in a cluster.
start_cluster() {
  local mode=$1
  rm -rf "$WORK/certs"
  taskset -c $SERVER_CPU "$NATS_SERVER" -a 127.0.0.1 -p $NATS_PORT -m $NATS_MON >"$WORK/nats.log" 2>&1 &
  NATS_PID=$!; PIDS+=("$NATS_PID")
  up "http://127.0.0.1:$NATS_MON/varz" in_msgs
  local node port metrics
  if [ "$mode" = alone ]; then
    NO_COLOR=1 taskset -c $SERVER_CPU "$BIN/partyline" serve --listen 127.0.0.1:$A_PORT \
      --cert-dir "$WORK/certs" --metrics 127.0.0.1:$A_METRICS --threads 1 \
      --log-level warn,partyline=info,partyline::server=warn >"$WORK/node-a.log" 2>&1 &
    A_PID=$!; PIDS+=("$A_PID")
    up "http://127.0.0.1:$A_METRICS/metrics" partyline_sessions
    return
  fi
  for node in a b; do
    if [ $node = a ]; then port=$A_PORT metrics=$A_METRICS; else port=$B_PORT metrics=$B_METRICS; fi
    NO_COLOR=1 taskset -c $SERVER_CPU "$BIN/partyline" serve --listen 127.0.0.1:$port \
      --cert-dir "$WORK/certs" --cluster nats://127.0.0.1:$NATS_PORT --node $node \
      --metrics 127.0.0.1:$metrics --threads 1 \
      --log-level warn,partyline=info,partyline::server=warn >"$WORK/node-$node.log" 2>&1 &
    PIDS+=("$!")
    if [ $node = a ]; then A_PID=$!; else B_PID=$!; fi
    # Node a writes the certificate before b starts, so b reuses it.
    up "http://127.0.0.1:$metrics/metrics" partyline_cluster_link_up
  done
  # Each node hears the other.
  up "http://127.0.0.1:$A_METRICS/metrics" '^partyline_cluster_peers 1'
  up "http://127.0.0.1:$B_METRICS/metrics" '^partyline_cluster_peers 1'
}

# one LOAD MODE RUN ARGS...: one run in a fresh cluster; 0 if it was clean.
one() {
  local load=$1 mode=$2 run=$3 wait_s=$4; shift 4
  start_cluster "$mode"
  local servers="127.0.0.1:$A_PORT"
  [ "$mode" = cross ] && servers="127.0.0.1:$A_PORT,127.0.0.1:$B_PORT"
  local nodes
  if [ "$mode" = alone ]; then
    nodes=(--server-pid "a=$A_PID" --extra-pid "nats=$NATS_PID" --node-metrics "a=127.0.0.1:$A_METRICS")
  else
    nodes=(--server-pid "a=$A_PID" --server-pid "b=$B_PID" --extra-pid "nats=$NATS_PID"
      --node-metrics "a=127.0.0.1:$A_METRICS" --node-metrics "b=127.0.0.1:$B_METRICS")
  fi
  local cmd=("$BIN/partyline-loadtest" --pin --json --servers "$servers"
    --cert "$WORK/certs/cert.pem" "${nodes[@]}" --nats-monitor "127.0.0.1:$NATS_MON" "$@")
  echo "== $load $mode run $run: ${cmd[*]}" >&2
  # Watch for anyone's compiler during the run.
  rm -f "$WORK/overlap"
  ( while :; do if busy; then echo seen >"$WORK/overlap"; fi; sleep 0.5; done ) &
  local watcher=$!
  local result status=0
  result=$("${cmd[@]}") || status=$?
  kill $watcher 2>/dev/null; wait $watcher 2>/dev/null || true
  cleanup
  if [ $status -ne 0 ] || [ -z "$result" ]; then
    echo "!! $load $mode run $run failed ($status)" >&2
    return 1
  fi
  local overlap=false
  [ -e "$WORK/overlap" ] && overlap=true
  python3 - "$load" "$mode" "$run" "$COMMIT" "$overlap" "$wait_s" "${cmd[*]}" "$result" >>"$OUT" <<'EOF'
import json, sys, datetime
load, mode, run, commit, overlap, wait_s, command, result = sys.argv[1:]
print(json.dumps({
    "cell": f"{load} {mode}", "load": load, "mode": mode, "run": int(run),
    "command": command, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "commit": commit, "overlap": overlap == "true", "quiet_wait_s": int(wait_s),
    "result": json.loads(result)}))
EOF
  if [ $overlap = true ]; then
    echo "!! $load $mode run $run overlapped a rustc/cargo: kept as overlap, made again" >&2
    return 1
  fi
}

for load in $LOADS; do
  case $load in
    S) args=(--parties 100 --party-size 4 --rate 20 --payload 64 --duration "$DURATION") ;;
    M) args=(--parties 250 --party-size 4 --rate 20 --payload 64 --duration "$DURATION") ;;
    *) echo "unknown load $load (S or M)" >&2; exit 2 ;;
  esac
  for run in $(seq 1 "$RUNS"); do
    # The order turns by one each run.
    read -r -a order <<<"$MODES"
    shift_by=$(( (run - 1) % ${#order[@]} ))
    modes=("${order[@]:shift_by}" "${order[@]:0:shift_by}")
    for mode in "${modes[@]}"; do
      for attempt in 1 2 3; do
        echo "-- waiting for $QUIET_S s without rustc/cargo" >&2
        waited=$(wait_quiet)
        if one "$load" "$mode" "$run" "$waited" "${args[@]}"; then break; fi
      done
    done
  done
done
