#!/usr/bin/env bash
# Fairness: a normal chat client beside a flooder, against tandem with its
# DEFAULT limits (unlike bench/run.sh, which lifts them). Server on core 0,
# load tool on core 1, loopback only, bounded in time.
#   bench/fairness.sh [--no-build]
# Writes bench/results/fairness-<UTC date>.json and prints the table
# (also bench/results/fairness-latest.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
PORT=3302
log() { printf '\033[1m[fairness]\033[0m %s\n' "$*" >&2; }

if [ "${1:-}" != --no-build ]; then
  log "building (release)"
  ./scripts/setup.sh build >&2
  cargo leptos build --release --split >&2
  cargo build --release --manifest-path bench/load/Cargo.toml --target-dir target >&2
fi
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port_open() { (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if port_open "$PORT"; then log "port $PORT is in use"; exit 1; fi

: > "$work/runs.jsonl"
for flood in backfill send; do
  # A fresh server per flood, with every limit at its default but the
  # per-account write rate: the load tool fills its long room (1,000
  # messages) over HTTP as one account before the flood starts. (That rate
  # covers the account's sockets too, so the send flood meets only its
  # socket's own messages-per-second.)
  rm -f "$work"/f.db*
  # The load tool signs up `bench` and uses its access token (`publishers`
  # only matters for the `publish` scope it asks for).
  TANDEM_DATABASE_URL="sqlite://$work/f.db" TANDEM_METRICS_ADDR="" RUST_LOG=warn \
    TANDEM_PUBLISHERS='["bench"]' TANDEM_WRITES_PER_MINUTE=100000000 TANDEM_WRITES_BURST=10000000 \
    LEPTOS_SITE_ADDR="127.0.0.1:$PORT" LEPTOS_SITE_ROOT=target/site \
    taskset -c "$SERVER_CPU" target/release/tandem >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do port_open "$PORT" && break; sleep 0.1; done
  log "flood: $flood"
  timeout 300 taskset -c "$LOAD_CPU" target/release/tandem-load fairness --target "127.0.0.1:$PORT" \
    --flood "$flood" --flooders 8 --interval-ms 200 --duration 10 --json "$work/one.json" >/dev/null
  cat "$work/one.json" >> "$work/runs.jsonl"; echo >> "$work/runs.jsonl"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done

out="bench/results/fairness-$(date -u +%Y-%m-%d).json"
python3 - "$work/runs.jsonl" "$out" <<'PY' | tee bench/results/fairness-latest.md
import json, os, sys, subprocess
date = subprocess.check_output(["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"]).decode().strip()
runs = [dict(json.loads(l), date_utc=date) for l in open(sys.argv[1]) if l.strip()]
# The day's file keeps every run of the day (so their spread can be read).
earlier = json.load(open(sys.argv[2]))["runs"] if os.path.exists(sys.argv[2]) else []
json.dump({"runs": earlier + runs}, open(sys.argv[2], "w"), indent=1)
ms = lambda us: f"{us / 1000:.1f}"
print(f"Run {date}; tandem with its default limits; one run per row (earlier runs of the day are in the JSON).\n")
print("| flooder | normal client alone: p50 / p99 ms | beside the flooder: p50 / p99 ms | normal sends failed | what the flooder got |")
print("|---|---|---|---|---|")
for r in runs:
    f = r["flooder"]
    who = {"backfill": f"{r['flooders']} clients looping events_since (8 MB rooms)",
           "send": "one socket sending without waiting"}[r["flood"]]
    got = f"{f['served']} served, {f['refused']} refused" + (f", closed with {f['closed_with']}" if f["closed_with"] else "")
    print(f"| {who} | {ms(r['alone_us']['p50'])} / {ms(r['alone_us']['p99'])} | "
          f"{ms(r['flooded_us']['p50'])} / {ms(r['flooded_us']['p99'])} | {r['flooded_failures']} | {got} |")
PY
