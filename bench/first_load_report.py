#!/usr/bin/env python3
"""Pools bench/first_load.sh result files (e.g. two runs of one build,
alternated with two of another) and prints, per scheme and visit (a room
page over HTTPS and HTTP, and the lobby over HTTPS), the
median time to `live` (min-max), the median bytes on the wire and the
median of each timing mark; then the start times and the files as served.

    python3 bench/first_load_report.py RESULT.json...
"""
import json
import statistics
import sys


def main() -> None:
    results = [json.load(open(f)) for f in sys.argv[1:]]
    for scheme in ("https", "http", "lobby_https"):
        if not all(scheme in r for r in results):
            continue  # the lobby is measured since 2026-11-29
        for visit in ("first", "repeat"):
            live, sent, marks = [], [], {}
            for r in results:
                for run in r[scheme]["detail"]:
                    v = run[visit]
                    live.append(v["live_ms"])
                    sent.append(v["total"])
                    for k, t in v["marks"].items():
                        marks.setdefault(k, []).append(t)
            timing = ", ".join(f"{k} {statistics.median(t):.0f}" for k, t in sorted(marks.items(), key=lambda kv: statistics.median(kv[1])))
            print(f"{scheme:11} {visit:6} live {statistics.median(live):.0f} ms ({min(live):.0f}-{max(live):.0f}, n={len(live)}), "
                  f"{statistics.median(sent):.0f} B; marks (ms): {timing}")
    print("start (ms):", [r["start_ms"] for r in results])
    print("binary (B):", sorted({r["binary_bytes"] for r in results}))
    for f in results[0]["files"]:
        print(f"  {f['path']}: raw {f['raw']}, gzip {f['gzip']}, br {f['br']}")


if __name__ == "__main__":
    main()
