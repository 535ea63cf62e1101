#!/usr/bin/env bash
# Runs the standard cells of docs/PERFORMANCE.md, each RUNS times (default 5)
# against a fresh `partyline serve` started by the generator, server and
# generator pinned to separate cores (--pin), senders spread evenly, 2 s of
# warm-up excluded. One JSON object per run, one per line, in $OUT (default
# bench-results.jsonl); scripts/bench-table.py turns them into the medians
# (with min and max) of BENCHMARKS.md.
#
#   scripts/bench-cells.sh                 # every group below
#   scripts/bench-cells.sh standard        # only some groups:
#                                          # standard coalesce sweep idle keepalive handshake form stall
#   PL=/other/partyline-loadtest COMMIT=abc1234 scripts/bench-cells.sh idle
#                                          # another build (its server beside it), no cargo build
# Nothing else should run on the machine meanwhile: the generator reports
# its own CPU, its tick lateness and missed ticks, and the host's steal
# time, and flags a run it bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-results.jsonl}
RUNS=${RUNS:-5}
DURATION=${DURATION:-20}
# The coalescing curve and the load sweep: 10 s windows, so 5 runs of each
# of their 16 cells fit in half an hour.
SHORT=${SHORT:-10}
GROUPS_WANTED=${*:-standard coalesce sweep idle handshake form}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD)}
if [ -z "${PL:-}" ]; then
  cargo build --release --quiet -p partyline -p partyline-loadtest
  PL=./target/release/partyline-loadtest
fi
touch "$OUT"

# cell NAME ARGS...: RUNS runs of one cell, appended to $OUT.
cell() {
  local name=$1; shift
  for run in $(seq 1 "$RUNS"); do
    echo "== $name run $run/$RUNS: partyline-loadtest --pin --json $*" >&2
    local result
    if result=$($PL --pin --json "$@"); then
      printf '{"cell":"%s","run":%d,"args":"%s","date":"%s","commit":"%s","result":%s}\n' \
        "$name" "$run" "$*" "$(date -u +%FT%TZ)" "$COMMIT" "$result" >> "$OUT"
    else
      echo "!! $name run $run failed" >&2
    fi
  done
}

data="--party-size 4 --rate 20 --payload 64 --duration $DURATION"
for group in $GROUPS_WANTED; do
  case $group in
    standard)
      cell S --parties 100 $data --bare-reference
      cell M --parties 250 $data --bare-reference
      cell 1x64@20 --parties 1 --party-size 64 --rate 20 --payload 64 --duration "$DURATION" --bare-reference
      cell 1x128@10 --parties 1 --party-size 128 --rate 10 --payload 64 --duration "$DURATION" --bare-reference
      cell W --parties 1 --party-size 256 --rate 10 --payload 64 --duration "$DURATION" --bare-reference
      ;;
    coalesce)
      # The trade-off curve of --coalesce-us (0 is the standard group).
      for us in 0 250 500 1000; do
        c="--server-arg=--coalesce-us=$us"
        cell "S c$us" --parties 100 --party-size 4 --rate 20 --payload 64 --duration "$SHORT" "$c"
        cell "1x64@20 c$us" --parties 1 --party-size 64 --rate 20 --payload 64 --duration "$SHORT" "$c"
        cell "1x128@10 c$us" --parties 1 --party-size 128 --rate 10 --payload 64 --duration "$SHORT" "$c"
        cell "W c$us" --parties 1 --party-size 256 --rate 10 --payload 64 --duration "$SHORT" "$c"
      done
      ;;
    sweep)
      # Parties of 4 at 20 Hz, growing: where p99 and delivery give out.
      for parties in 150 350 500 750; do
        cell "L$parties" --parties "$parties" --party-size 4 --rate 20 --payload 64 --duration "$SHORT"
      done
      ;;
    idle)
      # Memory is read after holding the sessions 30 s (quinn grows some
      # per-connection queues once a connection is ~20 s old).
      # The server's metrics are read at the window's edges only: reading
      # 10,000 connections' QUIC counters every second costs ~1% of a core.
      cell I --idle-sessions 10000 --rate 0 --duration 30 --warmup 0 --connect-rate 500 --server-metrics-interval-ms 0
      ;;
    keepalive)
      # What the same 10,000 idle sessions cost when the sessions keep
      # themselves alive with QUIC PINGs instead (the server sends none):
      # at the server's period, and at the old 1 s / 5 s defaults.
      idle="--idle-sessions 10000 --rate 0 --duration 30 --warmup 0 --connect-rate 500 --server-metrics-interval-ms 0"
      cell "I ping5" $idle --server-arg=--keep-alive=0 --keep-alive-ms 5000 --idle-timeout-ms 10000
      cell "I ping1" $idle --server-arg=--keep-alive=0 --server-arg=--idle-timeout=5 --keep-alive-ms 1000 --idle-timeout-ms 5000
      ;;
    handshake)
      # New sessions per second, until handshake p99 passes 100 ms.
      for rate in 500 1000 2000; do
        cell "H$rate" --idle-sessions 2000 --rate 0 --duration 1 --connect-rate "$rate"
      done
      ;;
    stall)
      # Cell M with a busy loop sharing the server's core: what CPU
      # contention does to the tail, and how run delay shows it.
      taskset -c 0 sh -c 'while :; do :; done' &
      hog=$!
      cell "M+hog" --parties 250 $data
      kill "$hog"
      ;;
    form)
      # One party of 4 on an idle server: create, then three joins at once.
      cell F --parties 1 --party-size 4 --rate 0 --duration 0 --warmup 0
      ;;
    *) echo "unknown group $group" >&2; exit 2 ;;
  esac
done
