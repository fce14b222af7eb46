#!/usr/bin/env bash
# One fan-out cell, ROUNDS runs (3 unless set), each on a fresh tandem, one
# line per run: for quick A/B comparisons between builds. BINS lists server
# binaries to alternate, run by run (target/release/tandem unless set).
#   TOPICS="room:1 ticker:BENCH" FLUSHES="0 10" SUBS=1000 RATE=100 bench/cell.sh
#   BINS="/tmp/tandem-old /tmp/tandem-new" ROUNDS=4 TOPICS=room:1 RATE=250 bench/cell.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_init
for topic in ${TOPICS:-room:1}; do
  for flush in ${FLUSHES:-10}; do
    for _ in $(seq "${ROUNDS:-3}"); do
     for bin in ${BINS:-target/release/tandem}; do
      TANDEM_BIN="$bin" start_tandem 3300 "$work/b.db" 0 "$work/s.log" TANDEM_FLUSH_WINDOW_MS="$flush"
      if taskset -c 1 target/release/tandem-load fanout --transport ws --topic "$topic" --subs "${SUBS:-1000}" \
           --rate "${RATE:-100}" --duration 10 --target 127.0.0.1:3300 --server-pid "$SERVER_PID" \
           --json "$work/o.json" >/dev/null 2>&1; then
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], "window", sys.argv[3], "%.1fk del/s %.2f us/del p50 %.2f p99 %.2f ms coalesced %d lost %d tool %.0f%%" % (d["deliveries_per_s"]/1000, d["server"]["cpu_us_per_delivery"], d["latency_us"]["p50"]/1000, d["latency_us"]["p99"]/1000, d["coalesced"], d["lost"], 100*d["client_cpu_core_share"]))' \
          "$work/o.json" "$bin $topic" "$flush"
      else
        echo "$bin $topic window $flush: refused or failed"
      fi
      rm -f "$work/o.json"
      stop_server 3300
     done
    done
  done
done
