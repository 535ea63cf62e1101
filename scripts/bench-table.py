#!/usr/bin/env python3
"""Turns the JSON lines of scripts/bench-cells.sh into the Markdown tables of
BENCHMARKS.md. Usage: scripts/bench-table.py bench-results.jsonl"""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
cells = {row["cell"]: row["result"] for row in rows}


def f(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}"


print("| cell | load | delivery | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | server CPU s | generator CPU s | server µs / delivered | bare quinn µs / delivered | ratio |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for name, r in cells.items():
    if name.startswith("H") or name == "I":
        continue
    lat = r["latency_ms"]
    bare = r.get("bare_reference") or {}
    print(
        f"| {name} | {r['parties']} x {r['party_size']} @ {r['rate_hz']:g} Hz | {r['delivery_ratio'] * 100:.3f}% "
        f"| {f(lat['p50'], 3)} | {f(lat['p90'], 3)} | {f(lat['p99'], 3)} | {f(lat['p999'], 3)} | {f(lat['max'], 3)} "
        f"| {f(r['server_steady_cpu_s'])} | {f(r['generator_steady_cpu_s'])} | {f(r['server_cpu_per_delivered_us'])} "
        f"| {f(bare.get('cpu_per_datagram_us'))} | {f(r['transport_ratio'])} |"
    )
print()
print("| cell | sessions | failed | handshake p50 ms | p99 ms | handshakes/s | server RSS per session KiB | server peak RSS MiB |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for name, r in cells.items():
    if not (name.startswith("H") or name == "I"):
        continue
    rss = r["server_rss_per_session_bytes"]
    peak = r["server_peak_rss_bytes"]
    print(
        f"| {name} | {r['sessions']} | {r.get('connect_failures', 0)} | {f(r['handshake']['p50_ms'])} | {f(r['handshake']['p99_ms'])} "
        f"| {r['handshakes_per_s']:.0f} | {f(rss / 1024 if rss else None, 1)} | {f(peak / 1048576 if peak else None, 1)} |"
    )
print()
print("| cell | create p50 / p99 ms | join p50 / p99 ms | accept p50 / p99 ms |")
print("| --- | --- | --- | --- |")
for name in ("S", "M"):
    if name in cells:
        r = cells[name]
        pair = lambda k: f"{r[k]['p50_ms']:.2f} / {r[k]['p99_ms']:.2f}"
        print(f"| {name} | {pair('create')} | {pair('join')} | {pair('accept')} |")
