#!/usr/bin/env bash
# The soak of BENCHMARKS.md ("Soak"), issue 12: for DURATION seconds
# (default 1800) a release `partyline serve` started by the load generator
# carries steady party traffic, connect/disconnect churn (some sessions
# leave silently, so their grace window runs out), resumes, flooders and a
# garbage sender at once, its RSS, CPU and gauges sampled every 10 s.
# Passes when RSS at the end of the load is within 10% of RSS after the
# warm-up, and every session, party, listing, ticket and join-code gauge
# reads zero once everyone has left. Exits 1 on FAIL. With the default
# load a steady session's replay log reaches its byte budget (16 KiB,
# `--replay-bytes`) in about 3.5 minutes (BENCHMARKS.md, "Soak"); a larger
# budget (`--server-arg=--replay-bytes=...`) keeps RSS growing past the
# warm-up, though nothing leaks.
#
#   scripts/soak.sh                                # 30 minutes
#   DURATION=120 scripts/soak.sh                   # a short try
#   OUT=/tmp/soak.jsonl scripts/soak.sh --resumers 16 --server-arg=--grace=30
#                                                  # more generator flags
#   PL=/other/partyline-loadtest scripts/soak.sh   # another build (its server beside it)
#
# The samples, one JSON line each, go to OUT (default
# docs/soak-YYYY-MM-DD.jsonl), after a first line naming the run (date,
# commit, command) and before a last one with the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-1800}
OUT=${OUT:-docs/soak-$(date -u +%F).jsonl}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD)}
if [ -z "${PL:-}" ]; then
  cargo build --release --quiet -p partyline -p partyline-loadtest
  PL=${CARGO_TARGET_DIR:-target}/release/partyline-loadtest
fi
mkdir -p "$(dirname "$OUT")"
command="partyline-loadtest soak --duration $DURATION $*"
printf '{"kind":"run","date":"%s","commit":"%s","host_cpus":%d,"command":"%s"}\n' \
  "$(date -u +%FT%TZ)" "$COMMIT" "$(nproc)" "$command" > "$OUT"
echo "== $command (samples in $OUT)" >&2
"$PL" soak --duration "$DURATION" --samples "$OUT" "$@"
