#!/usr/bin/env python3
"""Turns the JSON lines of scripts/bench-cells.sh into the Markdown tables of
BENCHMARKS.md: per cell, the median of its runs with [min-max], and how many
runs the generator bounded (flagged "gb"). Usage:
    scripts/bench-table.py bench-results.jsonl [more.jsonl ...]
    scripts/bench-table.py --runs M bench-results.jsonl   # every run of cell M,
                                                          # with its stall signals"""
import json
import statistics
import sys
from collections import OrderedDict

args = sys.argv[1:]
runs_of = None
if args and args[0] == "--runs":
    runs_of, args = args[1], args[2:]
cells = OrderedDict()
for path in args:
    for line in open(path):
        if line.strip():
            row = json.loads(line)
            cells.setdefault(row["cell"], []).append(row)
# Runs of one cell from several builds (a PL override) are kept apart.
commits = {}
for name, rows in cells.items():
    commits[name] = sorted({row.get("commit", "") for row in rows})
split = OrderedDict()
for name, rows in cells.items():
    for row in rows:
        key = name if len(commits[name]) == 1 else f"{name} @{row.get('commit', '')}"
        split.setdefault(key, []).append(row["result"])
cells = split


def get(result, path):
    value = result
    for key in path.split("."):
        if value is None:
            return None
        value = value.get(key)
    return value


def spread(results, path, digits=2, scale=1.0):
    values = [get(r, path) for r in results]
    values = [v * scale for v in values if v is not None]
    if not values:
        return "n/a"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def bound(results):
    flagged = sum(1 for r in results if r.get("generator_bound"))
    return f"{len(results)}" + (f" ({flagged} gb)" if flagged else "")


def bare_bound(results):
    flagged = sum(1 for r in results if (r.get("bare") or {}).get("generator_bound"))
    return f" ({flagged} gb)" if flagged else ""


def load(r):
    l = r["load"]
    return f"{l['parties']} x {l['party_size']} @ {l['rate_hz']:g} Hz"


def data_cells(predicate):
    return [(n, rs) for n, rs in cells.items() if predicate(n) and rs[0]["load"]["rate_hz"] > 0]


if runs_of is not None:
    print("| run | delivery % | p50 ms | p99 ms | max ms | server CPU | generator CPU | send lateness p99 ms | server waited for CPU ms | generator waited ms | host steal s | kernel UDP drops | gb |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, r in enumerate(cells.get(runs_of, [])):
        one = [r]
        print(
            f"| {i + 1} | {spread(one, 'delivery.ratio', 3, 100)} | {spread(one, 'latency_ms.p50', 3)} | {spread(one, 'latency_ms.p99', 3)} "
            f"| {spread(one, 'latency_ms.max', 3)} | {spread(one, 'server.utilization')} | {spread(one, 'generator.utilization')} "
            f"| {spread(one, 'sends.lateness_ms.p99')} | {spread(one, 'server.run_delay_ms', 0)} | {spread(one, 'generator.run_delay_ms', 0)} "
            f"| {spread(one, 'host_steal_s')} | {spread(one, 'delivery.kernel_udp_drops', 0)} | {'yes' if r.get('generator_bound') else ''} |"
        )
    sys.exit(0)

standard = data_cells(lambda n: " c" not in n and not n.startswith("L"))
if standard:
    print("| cell | load | runs | delivery % | p50 ms | p99 ms | p99.9 ms | server µs / delivered | bare relay µs / delivered | ratio | bare p50 / p99 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, rs in standard:
        print(
            f"| {name} | {load(rs[0])} | {bound(rs)} | {spread(rs, 'delivery.ratio', 3, 100)} "
            f"| {spread(rs, 'latency_ms.p50', 3)} | {spread(rs, 'latency_ms.p99', 3)} | {spread(rs, 'latency_ms.p999', 3)} "
            f"| {spread(rs, 'server_figures.cpu_per_delivered_us')} | {spread(rs, 'bare.cpu_per_delivered_us')}{bare_bound(rs)} "
            f"| {spread(rs, 'transport_ratio')} | {spread(rs, 'bare.latency_ms.p50', 3)} / {spread(rs, 'bare.latency_ms.p99', 3)} |"
        )
    print()
    print("Load and cost of the same runs:")
    print()
    print("| cell | offered / s | sent / s | missed | send lateness p99 ms | server CPU (of its core) | generator CPU | server waited for CPU ms | generator waited ms | host steal s | kernel UDP drops |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, rs in standard + data_cells(lambda n: n.startswith("L")):
        print(
            f"| {name} | {spread(rs, 'sends.offered_per_s', 0)} | {spread(rs, 'sends.sent_per_s', 0)} | {spread(rs, 'sends.missed', 0)} "
            f"| {spread(rs, 'sends.lateness_ms.p99', 2)} | {spread(rs, 'server.utilization', 2)} | {spread(rs, 'generator.utilization', 2)} "
            f"| {spread(rs, 'server.run_delay_ms', 0)} | {spread(rs, 'generator.run_delay_ms', 0)} | {spread(rs, 'host_steal_s', 2)} "
            f"| {spread(rs, 'delivery.kernel_udp_drops', 0)} |"
        )
    print()

coalesce = data_cells(lambda n: " c" in n)
if coalesce:
    print("| cell | --coalesce-us | runs | delivery % | p50 ms | p99 ms | server µs / delivered | server CPU (of its core) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = [(n.split(" c")[0], int(n.split(" c")[1]), rs) for n, rs in coalesce]
    order = ["S", "M", "1x64@20", "1x128@10", "W"]
    rows.sort(key=lambda row: (order.index(row[0]) if row[0] in order else 99, row[1]))
    for base, us, rs in rows:
        print(
            f"| {base} | {us} | {bound(rs)} | {spread(rs, 'delivery.ratio', 3, 100)} | {spread(rs, 'latency_ms.p50', 3)} "
            f"| {spread(rs, 'latency_ms.p99', 3)} | {spread(rs, 'server_figures.cpu_per_delivered_us')} | {spread(rs, 'server.utilization', 2)} |"
        )
    print()

sweep = data_cells(lambda n: n.startswith("L"))
if sweep:
    print("| cell | load | runs | delivery % | p50 ms | p99 ms | server µs / delivered | server CPU | generator CPU |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, rs in sweep:
        print(
            f"| {name} | {load(rs[0])} | {bound(rs)} | {spread(rs, 'delivery.ratio', 3, 100)} | {spread(rs, 'latency_ms.p50', 3)} "
            f"| {spread(rs, 'latency_ms.p99', 3)} | {spread(rs, 'server_figures.cpu_per_delivered_us')} "
            f"| {spread(rs, 'server.utilization', 2)} | {spread(rs, 'generator.utilization', 2)} |"
        )
    print()

idle = [(n, rs) for n, rs in cells.items() if n == "I" or n.startswith("I ") or n.startswith("H")]
if idle:
    print("| cell | sessions | runs | failed | handshake p50 ms | p99 ms | handshakes / s | server RSS per session KiB | server peak RSS MiB | server CPU while held (of its core) | server packets / session / s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, rs in idle:
        for r in rs:
            sent = (r.get("server_transport") or {}).get("packets_sent")
            r["_packets_per_session_s"] = sent / r["load"]["sessions"] / r["window_s"] if sent is not None and r.get("window_s") else None
        print(
            f"| {name} | {rs[0]['load']['sessions']} | {len(rs)} | {spread(rs, 'control.connect_failures', 0)} "
            f"| {spread(rs, 'control.handshake.p50')} | {spread(rs, 'control.handshake.p99')} | {spread(rs, 'control.handshakes_per_s', 0)} "
            f"| {spread(rs, 'server_figures.rss_per_session_bytes', 1, 1 / 1024)} | {spread(rs, 'server_figures.peak_rss_bytes', 1, 1 / 1048576)} "
            f"| {spread(rs, 'server.utilization', 3)} | {spread(rs, '_packets_per_session_s', 2)} |"
        )
    print()

forming = [(n, rs) for n, rs in cells.items() if rs[0]["control"].get("form") and rs[0]["load"]["rate_hz"] == 0]
if forming:
    print("| cell | runs | whole party ms | create ms | join ms (p50 of 3) |")
    print("| --- | --- | --- | --- | --- |")
    for name, rs in forming:
        print(
            f"| {name} | {len(rs)} | {spread(rs, 'control.form.max', 3)} | {spread(rs, 'control.create.max', 3)} | {spread(rs, 'control.join.p50', 3)} |"
        )
    print()

flagged = [(n, i + 1, r["generator_bound"]) for n, rs in cells.items() for i, r in enumerate(rs) if r.get("generator_bound")]
if flagged:
    print("Generator-bound runs (gb):")
    print()
    for name, run, reasons in flagged:
        print(f"- {name} run {run}: {'; '.join(reasons)}")
