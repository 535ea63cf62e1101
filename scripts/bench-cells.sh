#!/usr/bin/env bash
# Runs the standard cells of PERFORMANCE.md (S, M, W, I, the load sweep for
# L and the latency growth table, and the handshake-rate sweep), one after
# another, each against a fresh `partyline serve` started by the generator
# (partyline-loadtest, its own binary beside `partyline`).
# Output: one JSON object per line in $OUT (default bench-results.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-results.jsonl}
cargo build --release --quiet -p partyline -p partyline-loadtest
PL=./target/release/partyline-loadtest
: > "$OUT"
cell() { local name=$1; shift; echo "== $name: partyline-loadtest $*" >&2; printf '{"cell":"%s","result":%s}\n' "$name" "$($PL --json "$@")" >> "$OUT"; }
cell S --parties 100 --party-size 4 --rate 20 --payload 64 --duration 20 --bare-reference
cell M --parties 250 --party-size 4 --rate 20 --payload 64 --duration 20 --bare-reference
cell W --parties 1 --party-size 256 --rate 10 --payload 64 --duration 20 --bare-reference
for parties in 50 150 500 1000 2000; do
  cell "L$parties" --parties "$parties" --party-size 4 --rate 20 --payload 64 --duration 20
done
cell 1x64@20 --parties 1 --party-size 64 --rate 20 --payload 64 --duration 20
cell 1x128@10 --parties 1 --party-size 128 --rate 10 --payload 64 --duration 20
cell I --idle-sessions 10000 --rate 0 --duration 5 --connect-rate 500
for rate in 500 1000 2000; do
  cell "H$rate" --idle-sessions 2000 --rate 0 --duration 1 --connect-rate "$rate"
done
