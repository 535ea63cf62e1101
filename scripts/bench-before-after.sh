#!/usr/bin/env bash
# Cells S and M, RUNS times each (default 5), for two builds interleaved run
# by run (old, new, old, new, ...) so that both see the same machine: server
# and generator pinned (--pin), senders spread, 2 s warm-up excluded, the
# default settings. One JSON object per run in $OUT; scripts/bench-table.py
# gives the medians per build.
#
#   OLD=/path/old/target/release/partyline-loadtest OLD_COMMIT=abc1234 \
#   NEW=./target/release/partyline-loadtest NEW_COMMIT=def5678 \
#   scripts/bench-before-after.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-before-after.jsonl}
RUNS=${RUNS:-5}
DURATION=${DURATION:-20}
data="--party-size 4 --rate 20 --payload 64 --duration $DURATION"
touch "$OUT"
for run in $(seq 1 "$RUNS"); do
  for cell in S M; do
    case $cell in S) parties=100 ;; M) parties=250 ;; esac
    for build in old new; do
      if [ "$build" = old ]; then PL=$OLD; COMMIT=$OLD_COMMIT; else PL=$NEW; COMMIT=$NEW_COMMIT; fi
      args="--parties $parties $data"
      echo "== $cell run $run/$RUNS $build ($COMMIT): partyline-loadtest --pin --json $args" >&2
      if result=$($PL --pin --json $args); then
        printf '{"cell":"%s","run":%d,"args":"%s","date":"%s","commit":"%s","result":%s}\n' \
          "$cell" "$run" "$args" "$(date -u +%FT%TZ)" "$COMMIT" "$result" >> "$OUT"
      else
        echo "!! $cell run $run $build failed" >&2
      fi
    done
  done
done
