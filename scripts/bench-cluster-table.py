#!/usr/bin/env python3
"""Turns the JSON lines of scripts/bench-cluster.sh into the tables of
BENCHMARKS.md ("Cluster: cross-node against same-node"): per load and mode,
the median of its runs with [min-max], runs that overlapped a compiler left
out (and counted), generator-bound runs flagged "gb"; then the ratios of the
medians, cross / same and same / alone. Usage:
    scripts/bench-cluster-table.py docs/bench-cluster-2026-11-28.jsonl
    scripts/bench-cluster-table.py --runs docs/bench-cluster-2026-11-28.jsonl  # run by run"""
import json
import statistics
import sys
from collections import OrderedDict

args = sys.argv[1:]
by_run = bool(args) and args[0] == "--runs"
if by_run:
    args = args[1:]
cells = OrderedDict()
overlapped = OrderedDict()
for path in args:
    for line in open(path):
        if not line.strip():
            continue
        row = json.loads(line)
        key = (row["load"], row["mode"])
        (overlapped if row.get("overlap") else cells).setdefault(key, []).append(row)


def get(value, path):
    for key in path.split("."):
        if value is None:
            return None
        if isinstance(value, list):
            value = next((v for v in value if v.get("name") == key), None)
        else:
            value = value.get(key)
    return value


def values(rows, path, scale=1.0):
    found = [get(r["result"], path) for r in rows]
    return [v * scale for v in found if v is not None]


def spread(rows, path, digits=2, scale=1.0):
    vs = values(rows, path, scale)
    if not vs:
        return "n/a"
    median = statistics.median(vs)
    if len(vs) == 1:
        return f"{median:,.{digits}f}"
    return f"{median:,.{digits}f} [{min(vs):,.{digits}f}-{max(vs):,.{digits}f}]"


def median(rows, path, scale=1.0):
    vs = values(rows, path, scale)
    return statistics.median(vs) if vs else None


def runs(key):
    rows = cells[key]
    gb = sum(1 for r in rows if r["result"].get("generator_bound"))
    skipped = len(overlapped.get(key, []))
    text = f"{len(rows)}"
    if gb:
        text += f" ({gb} gb)"
    if skipped:
        text += f" (+{skipped} overlapped, left out)"
    return text


LAT = [("p50 ms", "latency_ms.p50", 3), ("p99 ms", "latency_ms.p99", 3), ("p99.9 ms", "latency_ms.p999", 3)]
CPU = [
    ("total µs / delivered", "cluster.total_cpu_per_delivered_us", 2),
    ("node a", "cluster.processes.a.cpu_per_delivered_us", 2),
    ("node b", "cluster.processes.b.cpu_per_delivered_us", 2),
    ("NATS", "cluster.processes.nats.cpu_per_delivered_us", 2),
]
NATS = [
    ("NATS msgs in / s", "cluster.nats.in_msgs_per_s", 0),
    ("NATS bytes in / s", "cluster.nats.in_bytes_per_s", 0),
    ("NATS msgs out / s", "cluster.nats.out_msgs_per_s", 0),
    ("published by the nodes: msgs / s", "cluster.published.messages_per_s", 0),
    ("payload bytes / s", "cluster.published.bytes_per_s", 0),
]
COST = [
    ("node a CPU (of a core)", "cluster.processes.a.cores", 2),
    ("node b", "cluster.processes.b.cores", 2),
    ("NATS", "cluster.processes.nats.cores", 2),
    ("generator CPU", "generator.utilization", 2),
    ("sent / s", "sends.sent_per_s", 0),
    ("send lateness p99 ms", "sends.lateness_ms.p99", 2),
    ("node a waited for CPU ms", "cluster.processes.a.run_delay_ms", 0),
    ("host steal s", "host_steal_s", 2),
    ("kernel UDP drops", "delivery.kernel_udp_drops", 0),
]

if by_run:
    cols = [("delivery %", "delivery.ratio", 3)] + LAT + CPU + NATS[:2] + COST
    print("| load | mode | run | overlap | " + " | ".join(c[0] for c in cols) + " | gb |")
    print("|" + " --- |" * (len(cols) + 5))
    for path in args:
        for line in open(path):
            if not line.strip():
                continue
            row = json.loads(line)
            one = [row]
            print(
                f"| {row['load']} | {row['mode']} | {row['run']} | {'yes' if row.get('overlap') else ''} | "
                + " | ".join(spread(one, p, d, 100 if p == "delivery.ratio" else 1) for _, p, d in cols)
                + f" | {'yes' if row['result'].get('generator_bound') else ''} |"
            )
    sys.exit(0)


def table(columns, with_delivery=False):
    head = ["load", "mode", "runs"] + (["delivery %"] if with_delivery else []) + [c[0] for c in columns]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for (load, mode), rows in cells.items():
        out = [load, mode, runs((load, mode))]
        if with_delivery:
            out.append(spread(rows, "delivery.ratio", 3, 100))
        out += [spread(rows, p, d) for _, p, d in columns]
        print("| " + " | ".join(out) + " |")
    print()


table(LAT + CPU, with_delivery=True)
table(NATS)
table(COST)

loads = OrderedDict((load, None) for load, _ in cells)
pairs = [("cross", "same"), ("same", "alone")]
print("| load | ratio | " + " | ".join(name for name, _, _ in LAT + CPU[:1]) + " | nodes only, no NATS |")
print("|" + " --- |" * (len(LAT) + 4))
for load in loads:
    for top, bottom in pairs:
        over, under = cells.get((load, top)), cells.get((load, bottom))
        if not over or not under:
            continue
        ratios = []
        for _, path, _ in LAT + CPU[:1] + [("", "cluster.servers_cpu_per_delivered_us", 0)]:
            a, b = median(under, path), median(over, path)
            ratios.append(f"{b / a:.2f}" if a and b is not None else "n/a")
        print(f"| {load} | {top} / {bottom} | " + " | ".join(ratios) + " |")
print()

flagged = [
    (load, mode, r["run"], r["result"]["generator_bound"])
    for (load, mode), rows in cells.items()
    for r in rows
    if r["result"].get("generator_bound")
]
if flagged:
    print("Generator-bound runs (gb):")
    print()
    for load, mode, run, reasons in flagged:
        print(f"- {load} {mode} run {run}: {'; '.join(reasons)}")
