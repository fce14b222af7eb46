#!/usr/bin/env python3
"""Renders bench/results/*.json as the side-by-side Markdown table in the README."""
import json
import sys

TARGETS = {
    "idle": "≤ 8 KiB RSS/conn; keep-alive ≤ 2% core; connect ≤ 150 µs CPU",
    "100 subs x 100/s": "p99 ≤ 1 ms",
    "1000 subs x 100/s": "p99 ≤ 10 ms; ≤ 4 µs CPU/delivery",
    "5000 subs x 10/s": "p99 ≤ 20 ms",
    "max": "≥ 250k deliveries/s with p99 < 50 ms",
    "long-poll": "(tandem rung: ≤ 15 µs CPU/delivery, p99 ≤ 25 ms)",
    "durable": "lost = duplicated = 0",
}


def target(label):
    for k, v in TARGETS.items():
        if label.startswith(k):
            return v
    return ""


def ms(us):
    return f"{us / 1000:.2f}"


def cell(r):
    if r is None:
        return "—"
    if r.get("invalid"):
        return "no valid run"
    s = r.get("server", {})
    if r["scenario"] == "idle":
        return (f"{s.get('rss_kib_per_connection', 0):.1f} KiB/conn, keep-alive {100 * s.get('cpu_core_share', 0):.2f}% core, "
                f"connect {s.get('cpu_us_per_connect', 0):.0f} µs CPU, {r['connect_per_s']:.0f} conn/s, {r['lost']} dropped")
    lat = r["latency_us"]
    per = s.get("cpu_us_per_delivery")
    parts = [f"p50 {ms(lat['p50'])} / p99 {ms(lat['p99'])} / max {ms(lat['max'])} ms",
             f"{r['deliveries_per_s'] / 1000:.1f}k del/s"]
    if per is not None:
        parts.append(f"{per:.2f} µs CPU/del")
    parts.append(f"lost {r['lost']}, dup {r['duplicated']}")
    return "; ".join(parts)


def ratio(t, s):
    if not t or not s or t.get("invalid") or s.get("invalid"):
        return ""
    if t["scenario"] == "idle":
        a, b = t["server"].get("rss_kib_per_connection"), s["server"].get("rss_kib_per_connection")
        return f"RSS ×{b / a:.1f}" if a and b else ""
    a, b = t["server"].get("cpu_us_per_delivery"), s["server"].get("cpu_us_per_delivery")
    p = (f"p99 ×{s['latency_us']['p99'] / t['latency_us']['p99']:.1f}" if t["latency_us"]["p99"] else "")
    c = f"CPU ×{b / a:.1f}" if a and b else ""
    return ", ".join(x for x in (c, p) if x)


def main(path):
    data = json.load(open(path))
    meta, runs = data["meta"], data["runs"]
    labels = []
    for r in runs:
        if r["label"] not in labels:
            labels.append(r["label"])
    by = {(r["label"], r["server_name"]): r for r in runs}
    print(f"Run {meta['date_utc']} on {meta['machine']}; {meta['pinning']}.\n")
    print("| scenario | tandem target | tandem | Socket.IO 4 | Socket.IO ÷ tandem |")
    print("|---|---|---|---|---|")
    for label in labels:
        t, s = by.get((label, "tandem")), by.get((label, "sio"))
        print(f"| {label} | {target(label)} | {cell(t)} | {cell(s)} | {ratio(t, s)} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest.json")
