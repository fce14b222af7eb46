#!/usr/bin/env bash
# Where a server's CPU goes, from `perf record -g`: the server pinned to
# core 0 under the load tool (core 1), recorded for a window inside the run.
#   bench/profile.sh idle [N]                     tandem holding N idle connections
#                                                 (default 19,800, 60 s; 30 s recorded)
#   bench/profile.sh connect [N]                  tandem accepting N connections
#                                                 (default 19,800; the connects recorded)
#   bench/profile.sh fanout tandem|floor [SUBS RATE FLUSH_MS TRANSPORT]
#                                                 a fan-out (default 1,000 x 100/s over
#                                                 ws, 20 s; 10 s recorded); TRANSPORT:
#                                                 ws, sse, long-poll or short-poll (tandem);
#                                                 floor or floor-long-poll (floor)
# Prints the run's figures, the kernel/user split and the top symbols, and
# saves them as bench/results/profile-<scenario>-<server>-<UTC date-time>.txt.
# Uses the release builds in target/ (bench/run.sh builds them).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SCENARIO="${1:-idle}"
ulimit -n "$(ulimit -Hn)"
log() { printf '\033[1m[profile]\033[0m %s\n' "$*" >&2; }
PORT=3300
if port_open "$PORT"; then log "port $PORT is in use"; exit 1; fi
work=$(mktemp -d)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

case "$SCENARIO" in
  idle)
    SERVER=tandem; N="${2:-19800}"
    start_tandem "$PORT" "$work/bench.db" 0 "$work/server.log"
    load=(idle --transport ws --subs "$N" --hold 60)
    lead=25; span=30 ;;  # connecting 19,800 takes about 10 s
  connect)
    SERVER=tandem; N="${2:-19800}"
    start_tandem "$PORT" "$work/bench.db" 0 "$work/server.log"
    load=(idle --transport ws --subs "$N" --hold 3)
    lead=1; span=$((N / 2500)) ;;  # about 2,500 connects a second; the token is made first
  fanout)
    SERVER="${2:-tandem}"; SUBS="${3:-1000}"; RATE="${4:-100}"; FLUSH="${5:-0}"
    case "$SERVER" in
      tandem) start_tandem "$PORT" "$work/bench.db" 0 "$work/server.log" TANDEM_FLUSH_WINDOW_MS="$FLUSH"
              transport="${6:-ws}" ;;
      floor) start_floor "$PORT" 0 "$work/server.log" "$FLUSH"; transport="${6:-floor}" ;;
      *) log "unknown server $SERVER (tandem or floor)"; exit 2 ;;
    esac
    load=(fanout --transport "$transport" --subs "$SUBS" --rate "$RATE" --duration 20)
    lead=7; span=10 ;;
  *) log "unknown scenario $SCENARIO (idle, connect or fanout)"; exit 2 ;;
esac

taskset -c 1 target/release/tandem-load "${load[@]}" --target "127.0.0.1:$PORT" \
  --server-pid "$SERVER_PID" --label profile --json "$work/one.json" >/dev/null &
loadpid=$!
sleep "$lead"
perf record -F 999 -g -p "$SERVER_PID" -o "$work/run.perf" -- sleep "$span" >/dev/null 2>&1
wait "$loadpid"
out="bench/results/profile-$SCENARIO-$SERVER-$(date -u +%Y-%m-%d-%H%M).txt"
{
  echo "bench/profile.sh ${*}: $(date -u +%Y-%m-%dT%H:%M:%SZ), server built from ${BENCH_COMMIT:-$(git rev-parse --short HEAD)}, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs))"
  python3 - "$work/one.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); s = d["server"]
if d["scenario"] == "idle":
    print("keep-alive %.2f%% of a core, %.1f KiB/conn, connect %.0f us CPU"
          % (100 * s["cpu_core_share"], s["rss_kib_per_connection"], s["cpu_us_per_connect"]))
else:
    print("%.1fk del/s, %.2f us server CPU/del, p50 %.2f / p99 %.2f ms, coalesced %d, lost %d"
          % (d["deliveries_per_s"] / 1000, s["cpu_us_per_delivery"], d["latency_us"]["p50"] / 1000,
             d["latency_us"]["p99"] / 1000, d["coalesced"], d["lost"]))
PY
  echo; echo "where (share of samples):"
  perf report -i "$work/run.perf" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -5
  echo; echo "top symbols (self):"
  perf report -i "$work/run.perf" --no-children --sort symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9.]+%' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' | head -40
} | tee "$out"
log "wrote $out"
