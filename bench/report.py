#!/usr/bin/env python3
"""Renders bench/results/*.json as the side-by-side Markdown table in the README."""
import json
import sys

TARGETS = {
    "idle": "≤ 5 KiB RSS/conn; keep-alive ≤ 1% core; connect ≤ 75 µs CPU",
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


def verdict(label, r):
    """Whether a tandem run meets its row's target, by that target's own rule."""
    if r is None:
        return "not built" if label.startswith("long-poll") else "not run"
    if r.get("invalid"):
        return "**missed**: no valid run (the load tool saturated)"
    s = r.get("server", {})
    lat = r.get("latency_us", {})
    p99 = lat.get("p99", 0) / 1000
    checks = []
    if label.startswith("idle"):
        checks = [("≤ 5 KiB/conn", s.get("rss_kib_per_connection", 1e9) <= 5),
                  ("keep-alive ≤ 1%", 100 * s.get("cpu_core_share", 1) <= 1),
                  ("connect ≤ 75 µs", s.get("cpu_us_per_connect", 1e9) <= 75)]
    elif label.startswith("100 subs"):
        checks = [("p99 ≤ 1 ms", p99 <= 1)]
    elif label.startswith("1000 subs"):
        checks = [("p99 ≤ 10 ms", p99 <= 10), ("≤ 4 µs CPU", s.get("cpu_us_per_delivery", 1e9) <= 4)]
    elif label.startswith("5000 subs"):
        checks = [("p99 ≤ 20 ms", p99 <= 20)]
    elif label.startswith("max"):
        checks = [("≥ 250k del/s", r.get("deliveries_per_s", 0) >= 250_000), ("p99 < 50 ms", p99 < 50)]
    elif label.startswith("durable"):
        checks = [("lost = dup = 0", r.get("lost") == 0 and r.get("duplicated") == 0)]
    if not checks:
        return ""
    missed = [name for name, ok in checks if not ok]
    if not missed:
        return "met"
    return "**missed**: " + ", ".join(missed)


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
                f"connect {s.get('cpu_us_per_connect', 0):.0f} µs CPU, {r['connect_per_s']:.0f} conn/s, {r['lost']} closed during the hold")
    lat = r["latency_us"]
    per = s.get("cpu_us_per_delivery")
    parts = [f"p50 {ms(lat['p50'])} / p99 {ms(lat['p99'])} / max {ms(lat['max'])} ms",
             f"{r['deliveries_per_s'] / 1000:.1f}k del/s"]
    if per is not None:
        parts.append(f"{per:.2f} µs CPU/del")
    # The tool counts an event not received by its 3 s cut-off as "lost",
    # whether the server dropped it or still had it queued.
    parts.append(f"not received by the cut-off {r['lost']}, dup {r['duplicated']}")
    return "; ".join(parts)


def ratio(t, s):
    if not t or not s or t.get("invalid") or s.get("invalid"):
        return ""
    if t["scenario"] == "idle":
        a, b = t["server"].get("rss_kib_per_connection"), s["server"].get("rss_kib_per_connection")
        k, l = t["server"].get("cpu_core_share"), s["server"].get("cpu_core_share")
        parts = [f"RSS ×{b / a:.1f}" if a and b else "", f"keep-alive ×{l / k:.1f}" if k and l else ""]
        return ", ".join(x for x in parts if x)
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
    print(f"Run {meta['date_utc']} on {meta['machine']}; {meta['pinning']}. One run per cell.\n")
    print("| scenario | tandem target | verdict | tandem | Socket.IO 4 | Socket.IO ÷ tandem |")
    print("|---|---|---|---|---|---|")
    for label in labels:
        t, s = by.get((label, "tandem")), by.get((label, "sio"))
        print(f"| {label} | {target(label)} | {verdict(label, t)} | {cell(t)} | {cell(s)} | {ratio(t, s)} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest.json")
