#!/usr/bin/env bash
# WebSocket compression (permessage-deflate): bytes on the wire per delivery
# and server CPU per delivery, with and without compression offered, each
# cell 3 times on a fresh release tandem (server on core 0, load tool on 1).
#   bench/compression.sh            # writes bench/results/<UTC>-compression.json
# Rows: chat messages (a time plus an 80-byte line of text, a typical chat
# message) to 100 subscribers at 20/s and to 1,000 at 100/s (10 ms flush
# window: durable chat at that rate needs one, README); ticker updates to
# 1,000 subscribers at 100/s.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_init
out="bench/results/$(date -u +%Y-%m-%d-%H%M)-compression.json"
runs=()
cell() { # LABEL TOPIC SUBS RATE PAD DEFLATE [VAR=value ...]
  local label="$1" topic="$2" subs="$3" rate="$4" pad="$5" deflate="$6"; shift 6
  for i in 1 2 3; do
    start_tandem 3300 "$work/b.db" 0 "$work/s.log" "$@"
    if taskset -c 1 target/release/tandem-load fanout --transport ws --topic "$topic" --subs "$subs" \
         --rate "$rate" --duration 10 --pad "$pad" --deflate "$deflate" --target 127.0.0.1:3300 \
         --server-pid "$SERVER_PID" --label "$label" --json "$work/r-${#runs[@]}.json" >/dev/null 2>&1; then
      runs+=("$work/r-${#runs[@]}.json")
      python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%-34s %6.1f B/del %5.2f us/del p50 %6.2f p99 %7.2f ms lost %d" % (d["label"], d["wire_bytes_per_delivery"], d["server"]["cpu_us_per_delivery"], d["latency_us"]["p50"]/1000, d["latency_us"]["p99"]/1000, d["lost"]))' "${runs[-1]}"
    else
      echo "$label run $i: refused or failed"
    fi
    stop_server 3300
  done
}
cell "chat 100x20/s plain"      room:1 100 20 80 0
cell "chat 100x20/s deflate"    room:1 100 20 80 1
cell "chat 1000x100/s w10 plain"   room:1 1000 100 80 0 TANDEM_FLUSH_WINDOW_MS=10
cell "chat 1000x100/s w10 deflate" room:1 1000 100 80 1 TANDEM_FLUSH_WINDOW_MS=10
cell "ticker 1000x100/s plain"     ticker:BENCH 1000 100 0 0
cell "ticker 1000x100/s deflate"   ticker:BENCH 1000 100 0 1
python3 - "$out" "${runs[@]}" <<'PY'
import json, subprocess, sys, time
out, files = sys.argv[1], sys.argv[2:]
meta = {
    "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "machine": subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip(),
    "kernel": subprocess.run(["uname", "-r"], capture_output=True, text=True).stdout.strip(),
    "commit": subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip(),
}
json.dump({"meta": meta, "runs": [json.load(open(f)) for f in files]}, open(out, "w"), indent=1)
print("wrote", out)
PY
