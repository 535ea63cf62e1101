#!/usr/bin/env python3
"""A hiccup meter: sleeps 1 ms at a time for SECONDS and reports every wake
that came more than THRESHOLD_MS late, as one JSON line
{"at_s": seconds since start, "late_ms": ...}, then a summary line.

Run beside a load test to tell stalls of the processes under test from
stalls of the whole machine: if this idle process, which needs almost no
CPU, also wakes hundreds of milliseconds late, nothing on the machine was
running then (a paused virtual machine, say), whatever the load test says.

    scripts/hiccup.py SECONDS [THRESHOLD_MS]   (default threshold 5 ms)"""
import json
import sys
import time

seconds = float(sys.argv[1])
threshold = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.005
start = time.monotonic()
last = start
worst = 0.0
count = 0
while last - start < seconds:
    time.sleep(0.001)
    now = time.monotonic()
    late = now - last - 0.001
    if late > threshold:
        count += 1
        print(json.dumps({"at_s": round(last - start, 3), "late_ms": round(late * 1000, 1)}), flush=True)
    worst = max(worst, late)
    last = now
print(json.dumps({"summary": True, "seconds": seconds, "hiccups": count, "worst_ms": round(worst * 1000, 1)}))
