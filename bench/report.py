#!/usr/bin/env python3
"""Renders a bench/results/*.json file as the Markdown tables in the README:
every cell is the median of its runs with the range (min–max) beside it."""
import json
import statistics
import sys

TARGETS = {
    "deflate idle": "≤ 8 KiB RSS/conn with permessage-deflate agreed",
    "idle": "≤ 5 KiB RSS/conn; keep-alive ≤ 1% core; connect ≤ 75 µs CPU",
    "100 subs x 100/s": "p99 ≤ 1 ms; ≥ 2× Socket.IO on CPU and p99",
    "1000 subs x 100/s": "p99 ≤ 10 ms; ≤ 4 µs CPU/delivery; ≥ 2× Socket.IO on CPU and p99",
    "5000 subs x 10/s": "p99 ≤ 20 ms; ≥ 2× Socket.IO on CPU and p99",
    "max": "≥ 250k deliveries/s with p99 < 50 ms",
    "durable": "lost = duplicated = reordered = 0",
}


def target(label):
    return next((v for k, v in TARGETS.items() if label.startswith(k)), "")


def med(runs, f):
    """Median and range of f over the runs where it is defined."""
    xs = [x for x in (f(r) for r in runs) if x is not None]
    if not xs:
        return None
    return statistics.median(xs), min(xs), max(xs)


def fmt(m, scale=1.0, digits=2, unit=""):
    if m is None:
        return "—"
    mid, lo, hi = (v / scale for v in m)
    if lo == hi:
        return f"{mid:.{digits}f}{unit}"
    return f"{mid:.{digits}f}{unit} ({lo:.{digits}f}–{hi:.{digits}f})"


p50 = lambda r: r["latency_us"]["p50"]
p99 = lambda r: r["latency_us"]["p99"]
cpu = lambda r: r.get("server", {}).get("cpu_us_per_delivery")
rate = lambda r: r.get("deliveries_per_s")


def valid(runs):
    return [r for r in runs if not r.get("invalid")]


def refused(runs):
    n = sum(1 for r in runs if r.get("invalid"))
    return f"; **{n} of {len(runs)} runs refused** (load tool saturated or failed)" if n else ""


def cell(runs):
    if not runs:
        return "—"
    ok = valid(runs)
    if not ok:
        return f"no valid run ({len(runs)} refused: the load tool saturated or failed)"
    n = f"{len(ok)} run{'s' if len(ok) > 1 else ''}"
    if ok[0]["scenario"] == "idle":
        s = lambda k: (lambda r: r["server"].get(k))
        return (f"{fmt(med(ok, s('rss_kib_per_connection')), digits=1)} KiB/conn, keep-alive "
                f"{fmt(med(ok, lambda r: 100 * r['server']['cpu_core_share']))}% core, connect "
                f"{fmt(med(ok, s('cpu_us_per_connect')), digits=0)} µs CPU, "
                f"{sum(r['lost'] for r in ok)} closed during the hold; {n}" + refused(runs))
    parts = [f"p50 {fmt(med(ok, p50), 1000)} ms", f"p99 {fmt(med(ok, p99), 1000)} ms",
             f"{fmt(med(ok, rate), 1000, 1)}k del/s", f"{fmt(med(ok, cpu))} µs CPU/del"]
    tot = lambda k: sum(r.get(k, 0) for r in ok)
    faults = f"lost {tot('lost')}, dup {tot('duplicated')}, reordered {tot('reordered')}"
    if ok[0].get("latest_wins"):
        faults += f", coalesced {tot('coalesced')}"
    parts.append(faults + f"; in flight at the last publish {fmt(med(ok, lambda r: r.get('in_flight_at_end')), digits=0)}")
    return "; ".join(parts) + f"; {n}" + refused(runs)


def verdict(label, runs, sio):
    """Whether tandem's runs meet the row's target, judged on medians."""
    ok = valid(runs)
    if not runs:
        return "not run"
    if not ok:
        return "**missed**: no valid run"
    checks = []
    m = lambda f: (med(ok, f) or (float("inf"),))[0]
    ms99 = m(p99) / 1000
    if label.startswith("deflate idle"):
        checks = [("≤ 8 KiB/conn", m(lambda r: r["server"].get("rss_kib_per_connection")) <= 8)]
    elif label.startswith("idle"):
        checks = [("≤ 5 KiB/conn", m(lambda r: r["server"].get("rss_kib_per_connection")) <= 5),
                  ("keep-alive ≤ 1%", 100 * m(lambda r: r["server"].get("cpu_core_share")) <= 1),
                  ("connect ≤ 75 µs", m(lambda r: r["server"].get("cpu_us_per_connect")) <= 75)]
    elif label.startswith("max"):
        checks = [("≥ 250k del/s", m(rate) >= 250_000), ("p99 < 50 ms", ms99 < 50)]
    elif label.startswith("durable"):
        checks = [("lost = dup = reordered = 0", all(r["lost"] == r["duplicated"] == r.get("reordered", 0) == 0 for r in ok))]
    else:
        bound = {"100 subs": 1, "1000 subs": 10, "5000 subs": 20}
        for k, v in bound.items():
            if label.startswith(k):
                checks.append((f"p99 ≤ {v} ms", ms99 <= v))
        if label.startswith("1000 subs"):
            checks.append(("≤ 4 µs CPU", m(cpu) <= 4))
        s = valid(sio)
        if s:
            sm = lambda f: med(s, f)[0]
            checks.append(("CPU ≤ ½ Socket.IO's", m(cpu) <= sm(cpu) / 2))
            checks.append(("p99 ≤ ½ Socket.IO's", m(p99) <= sm(p99) / 2))
    if not checks:
        return ""
    missed = [name for name, good in checks if not good]
    return "met" if not missed else "**missed**: " + ", ".join(missed)


def ratio(t, s):
    t, s = valid(t), valid(s)
    if not t or not s:
        return ""
    if t[0]["scenario"] == "idle":
        a, b = med(t, lambda r: r["server"].get("rss_kib_per_connection")), med(s, lambda r: r["server"].get("rss_kib_per_connection"))
        k, l = med(t, lambda r: r["server"].get("cpu_core_share")), med(s, lambda r: r["server"].get("cpu_core_share"))
        return ", ".join(x for x in (f"RSS ×{b[0] / a[0]:.1f}" if a and b else "", f"keep-alive ×{l[0] / k[0]:.1f}" if k and l and k[0] else "") if x)
    a, b = med(t, cpu), med(s, cpu)
    c = f"CPU ×{b[0] / a[0]:.1f}" if a and b else ""
    p = f"p99 ×{med(s, p99)[0] / med(t, p99)[0]:.1f}" if med(t, p99)[0] else ""
    return ", ".join(x for x in (c, p) if x)


def compression(runs):
    """The compression rows: each without and with permessage-deflate offered."""
    rows = []
    for r in runs:
        if r["label"].startswith("compression") and r["label"] not in rows:
            rows.append(r["label"])
    if not rows:
        return
    wire = lambda r: r.get("wire_bytes_per_delivery")
    tool = lambda r: 100 * r["client_cpu_core_share"]
    print("\nWebSocket compression: each row without and with permessage-deflate offered (tandem agrees "
          "to it). Bytes are the WebSocket frames received per delivery, headers included.\n")
    print("| row | flush window | bytes/delivery plain | compressed | server CPU/delivery plain | compressed | "
          "p99 plain | compressed | load tool core plain | compressed | lost, dup, reordered |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label in rows:
        mine = [r for r in runs if r["label"] == label]
        plain = valid([r for r in mine if not r.get("deflate_offered")])
        packed = valid([r for r in mine if r.get("deflate_offered")])
        fw = mine[0].get("flush_window_ms", 0)
        if not plain or not packed:
            print(f"| {label[len('compression '):]} | {fw} ms | no valid run{refused(mine)} | | | | | | | | |")
            continue
        a, b = med(plain, wire), med(packed, wire)
        change = f", {100 * (b[0] - a[0]) / a[0]:+.0f}%" if a and b else ""
        faults = ", ".join(str(sum(r.get(k, 0) for r in plain + packed)) for k in ("lost", "duplicated", "reordered"))
        print(f"| {label[len('compression '):]} | {fw} ms | {fmt(a, digits=0)} | **{fmt(b, digits=0)}**{change} | "
              f"{fmt(med(plain, cpu))} µs | {fmt(med(packed, cpu))} µs | {fmt(med(plain, p99), 1000)} ms | "
              f"{fmt(med(packed, p99), 1000)} ms | {fmt(med(plain, tool), digits=0)}% | {fmt(med(packed, tool), digits=0)}% | "
              f"{faults}; {len(plain)} + {len(packed)} runs{refused(mine)} |")


def rungs(runs):
    """The transport ladder's rows: each rung of tandem, and Socket.IO's long polling."""
    mine = [r for r in runs if r["label"].startswith("rung ")]
    if not mine:
        return
    ws = valid([r for r in mine if r["label"].startswith("rung websocket") and r["server_name"] == "tandem"])
    ws_cpu = med(ws, cpu)
    # Steady state: the requests after each subscriber's first, over the
    # publishing time and the drain after it.
    span = lambda r: r["duration_s"] + r.get("drain_s", 0)
    rps = lambda r: (r["requests"] - r["subs"]) / span(r) if "requests" in r else None
    print("\nThe transport ladder: the same fan-out on each rung (a ticker, so a subscriber that is behind gets "
          "the newest tick: coalesced, not lost). Requests/s: the server's own count of that rung's requests "
          "during the run (`tandem_connects_total{transport}`) beyond each subscriber's first (for SSE: "
          "streams opened again), over the publishing time and the drain after it.\n")
    print("| rung | target | verdict | p50 | p99 | server CPU/delivery | deliveries/s | requests/s | "
          "lost, dup, reordered, coalesced | runs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    order = ["websocket", "sse", "long-poll", "short-poll", "durable long-poll"]
    rows = []
    for name in order:
        rows.append((f"tandem {name}", [r for r in mine if r["label"].startswith(f"rung {name} ") and r["server_name"] == "tandem"], name))
    rows.append(("Socket.IO long polling", [r for r in mine if r["server_name"] == "sio"], "sio"))
    rows.append(("floor long polling (calibration server)", [r for r in mine if r["server_name"] == "floor"], "floor"))
    for title, rs, name in rows:
        ok = valid(rs)
        if not rs:
            continue
        if not ok:
            print(f"| {title} | | **missed**: no valid run | | | | | | |{refused(rs)} |")
            continue
        m = lambda f: (med(ok, f) or (float("inf"),))[0]
        goal, checks = "", []
        if name == "long-poll":
            goal = "≤ 15 µs CPU/delivery, p99 ≤ 25 ms"
            checks = [("≤ 15 µs CPU", m(cpu) <= 15), ("p99 ≤ 25 ms", m(p99) / 1000 <= 25)]
        elif name == "sse" and ws_cpu:
            goal = "CPU/delivery ≤ 1.5× the WebSocket's"
            checks = [("≤ 1.5× WebSocket CPU", m(cpu) <= 1.5 * ws_cpu[0])]
        missed = [n for n, good in checks if not good]
        verdict_ = "" if not checks else ("met" if not missed else "**missed**: " + ", ".join(missed))
        tot = lambda k: sum(r.get(k, 0) for r in ok)
        faults = f"{tot('lost')}, {tot('duplicated')}, {tot('reordered')}, {tot('coalesced')}"
        print(f"| {title} | {goal} | {verdict_} | {fmt(med(ok, p50), 1000)} ms | {fmt(med(ok, p99), 1000)} ms | "
              f"{fmt(med(ok, cpu))} µs | {fmt(med(ok, rate), 1000, 2)}k | {fmt(med(ok, rps), digits=0)} | {faults} | "
              f"{len(ok)}{refused(rs)} |")


def main(path):
    data = json.load(open(path))
    meta, runs = data["meta"], data["runs"]
    window = meta.get("flush_window_ms", 10)
    labels = []
    for r in runs:
        if (r["label"] not in labels and r["server_name"] != "floor" and not r["label"].startswith("compression")
                and not r["label"].startswith("rung ")):
            labels.append(r["label"])
    pick = lambda label, server, flush=None: [r for r in runs if r["label"] == label and r["server_name"] == server
                                              and (flush is None or r.get("flush_window_ms", 0) == flush)]
    print(f"Run {meta['date_utc']} at commit {meta.get('commit', '?')} on {meta['machine']}; {meta['pinning']}; "
          f"Node {meta.get('node', '?')}, Socket.IO {meta.get('socket_io', '?')}. Each cell: median of its runs "
          f"(range min–max), every run on freshly started servers.\n")
    if labels:
        print(f"| scenario | tandem target | verdict (window 0) | verdict (window {window} ms) | tandem, flush window 0 | "
              f"tandem, flush window {window} ms | Socket.IO 4 | Socket.IO ÷ tandem (window 0) |")
        print("|---|---|---|---|---|---|---|---|")
        for label in labels:
            t0, tw, s = pick(label, "tandem", 0), pick(label, "tandem", window), pick(label, "sio")
            print(f"| {label} | {target(label)} | {verdict(label, t0, s)} | {verdict(label, tw, s) if tw else '—'} | "
                  f"{cell(t0)} | {cell(tw)} | {cell(s)} | {ratio(t0, s)} |")
    compression(runs)
    rungs(runs)
    floor = [r for r in runs if r["server_name"] == "floor" and not r["label"].startswith("rung ")]
    if floor:
        print("\nCalibration: the load tool against `bench/load/src/bin/floor.rs` (the least a fan-out server "
              "does per delivery) at **twice** each row's rate. A row is covered when the tool took every "
              "delivery without saturating its core, at least twice the row's best delivery rate above.\n")
        print("| row | floor flush window | floor at 2× rate | load tool CPU/del | load tool core share | covers the row |")
        print("|---|---|---|---|---|---|")
        for r in floor:
            label, fw = r["label"], r.get("flush_window_ms", 0)
            # Window 0 calibrates Socket.IO's runs and tandem's without a window.
            peers = pick(label, "tandem", fw) + (pick(label, "sio") if fw == 0 else [])
            best = max((x["deliveries_per_s"] for x in valid(peers)), default=0)
            if r.get("invalid"):
                print(f"| {label} | {fw} ms | refused (the tool saturated or failed) | — | — | **no** |")
                continue
            covers = r["lost"] == 0 and r["deliveries_per_s"] >= 2 * best * 0.98 and not r["client_saturated"]
            covered = ("yes" if covers else "**no**") + f" (row's best {best / 1000:.1f}k del/s)" if best else "— (no run of the row in this file)"
            print(f"| {label} | {fw} ms | {r['deliveries_per_s'] / 1000:.1f}k del/s, p99 {r['latency_us']['p99'] / 1000:.2f} ms, "
                  f"floor {r['server']['cpu_us_per_delivery']:.2f} µs CPU/del, lost {r['lost']} | "
                  f"{r['client_us_per_delivery']:.2f} µs | {100 * r['client_cpu_core_share']:.0f}% | "
                  f"{covered} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest.json")
