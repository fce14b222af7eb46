#!/usr/bin/env bash
# Side-by-side benchmark: tandem and a Socket.IO 4 peer, driven by the same
# load tool (bench/load), on loopback only, with the server and the load tool
# pinned to different cores. Every run is bounded; every run starts on
# freshly started servers.
#   bench/run.sh [full|quick|idle|compression|rungs|calibrate|first-load] [--no-build]
# full: the idle cells, every fan-out cell (5 runs for the 1,000- and
#   5,000-subscriber rows, 3 for the others; tandem with and without a flush
#   window), the compression cells and the calibration; writes
#   bench/results/<UTC date>-<UTC time>-full.json, copies it to
#   bench/results/latest.json and prints the tables (bench/report.py), saved
#   as bench/results/latest.md.
# quick: one short run per cell. idle: the idle cells only. compression:
#   the compression cells only. rungs: the transport ladder's rows only
#   (1,000 subscribers x 10 ticks/s on each of tandem's four rungs,
#   long polling on a persisted chat room, Socket.IO's long polling, and
#   the calibration server's long polling: the floor of a long poll here). calibrate: the calibration only (the load
#   tool against bench/load/src/bin/floor.rs). These write
#   bench/results/<UTC date>-<UTC time>-<mode>.json and leave latest.* alone.
# first-load (also the last part of full): bench/first_load.sh, the page's
#   weight and a first visit in Chromium (its own result file).
# --no-build runs the binaries already in target/ (BENCH_COMMIT names the
# commit they were built from, for the result's metadata).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source bench/lib.sh
MODE="${1:-full}"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
FLUSH_MS="${FLUSH_MS:-10}"  # the flush window of tandem's "with a window" runs
TANDEM_PORT=3300
SIO_PORT=3301
FLOOR_PORT=3302
ulimit -n "$(ulimit -Hn)"  # as high as allowed (20,000 idle connections need ~20k fds per side)
log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
case "$MODE" in full|quick|idle|compression|rungs|calibrate|first-load) ;; *) log "unknown mode $MODE (full, quick, idle, compression, rungs, calibrate or first-load)"; exit 2 ;; esac

if [ "${2:-}" = --no-build ]; then
  log "using the release builds in target/ as they are"
else
  log "building (release)"
  ./scripts/setup.sh test >&2  # Chromium and Playwright: first_load.sh
  cargo leptos build --release --split >&2
  cargo build --release --manifest-path bench/load/Cargo.toml --target-dir target >&2
fi
if [ "$MODE" = first-load ]; then exec bench/first_load.sh --no-build; fi
(cd bench/socketio && { [ -d node_modules/socket.io ] || npm install --no-audit --no-fund >&2; })

work=$(mktemp -d)
stamp=$(date -u +%Y-%m-%d-%H%M)
out="bench/results/$stamp-$MODE.json"
mkdir -p bench/results
: > "$work/runs.jsonl"
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

for port in $TANDEM_PORT $SIO_PORT $FLOOR_PORT; do
  if port_open "$port"; then log "port $port is already in use: stop what listens there first"; exit 1; fi
done

# start SERVER [FLUSH_MS]: a fresh server; sets SERVER_PID and TARGET.
start() {
  case "$1" in
    tandem)
      start_tandem "$TANDEM_PORT" "$work/bench.db" "$SERVER_CPU" "$work/server.log" TANDEM_FLUSH_WINDOW_MS="${2:-0}"
      TARGET="127.0.0.1:$TANDEM_PORT" ;;
    sio)
      PORT="$SIO_PORT" taskset -c "$SERVER_CPU" node bench/socketio/server.js >"$work/server.log" 2>&1 &
      SERVER_PID=$!
      TARGET="127.0.0.1:$SIO_PORT"
      wait_port "$SIO_PORT" || { log "the Socket.IO server did not start:"; cat "$work/server.log" >&2; exit 1; } ;;
    floor)
      start_floor "$FLOOR_PORT" "$SERVER_CPU" "$work/server.log" "${2:-0}"
      TARGET="127.0.0.1:$FLOOR_PORT" ;;
  esac
}
stop() { stop_server "${TARGET#*:}"; }

# The server's count of requests on a fallback rung (its metrics listener),
# or 0.
rung_requests() {
  local text
  text=$(curl -s --max-time 2 "http://127.0.0.1:9464/metrics" 2>/dev/null) || return 0
  awk -v s="tandem_connects_total{transport=\"$1\"}" '$1 == s { print $2 }' <<<"$text"
}

# run N LABEL SERVER FLUSH_MS -- load-tool args...: N runs, each on a fresh server.
# With COUNT=<transport> (sse, long_poll, short_poll) in the environment, the
# server's requests on that rung during the run go into the result (`requests`).
run() {
  local n="$1" label="$2" server="$3" flush="$4"; shift 5
  for i in $(seq "$n"); do
    start "$server" "$flush"
    log "$label on $server (flush window $flush ms), run $i of $n"
    rm -f "$work/one.json"
    local code=0 before="" after=""
    if [ -n "${COUNT:-}" ]; then
      # The metrics listener comes up beside the server's port.
      wait_port 9464 || log "  no metrics listener: requests not counted"
      before=$(rung_requests "$COUNT")
    fi
    timeout 600 taskset -c "$LOAD_CPU" target/release/tandem-load "$@" --target "$TARGET" \
      --server-pid "$SERVER_PID" --label "$label" --json "$work/one.json" >/dev/null || code=$?
    if [ -n "${COUNT:-}" ]; then after=$(rung_requests "$COUNT"); fi
    if [ "$code" = 0 ] && [ -s "$work/one.json" ]; then
      python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.update(server_name=sys.argv[2], flush_window_ms=int(sys.argv[3]), run=int(sys.argv[4])); c, a, b = sys.argv[5:8]; d.update(requests=int(float(a)) - int(float(b))) if c and a and b else None; print(json.dumps(d))' \
        "$work/one.json" "$server" "$flush" "$i" "${COUNT:-}" "$after" "$before" >> "$work/runs.jsonl"
    else
      # Refused (the load tool saturated: exit 3) or failed: no figures, only the fact.
      log "  no valid result (exit $code)"
      printf '{"label":"%s","server_name":"%s","flush_window_ms":%s,"run":%s,"invalid":true,"exit":%s}\n' \
        "$label" "$server" "$flush" "$i" "$code" >> "$work/runs.jsonl"
    fi
    stop
  done
}

if [ "$MODE" = quick ]; then IDLE=2000; HOLD=5; DUR=5; BIG=1; SMALL=1; else IDLE=20000; HOLD=60; DUR=10; BIG=5; SMALL=3; fi
# Each side needs one descriptor per connection plus a few of its own.
FDS=$(ulimit -n)
if [ "$IDLE" -gt $((FDS - 200)) ]; then
  IDLE=$((FDS - 200))
  log "the descriptor limit is $FDS here: idle scenario uses $IDLE connections"
fi

# The fan-out cells: subscribers, rate, runs.
CELLS=("100 100 $SMALL" "1000 100 $BIG" "5000 10 $BIG" "1000 250 $BIG")
label_of() { if [ "$2" -ge 250 ]; then echo "max $1 x $2/s"; else echo "$1 subs x $2/s"; fi; }

if [ "$MODE" = full ] || [ "$MODE" = quick ] || [ "$MODE" = idle ]; then
  # Hold > 2 heartbeat intervals of either server.
  run 1 "idle $IDLE" tandem 0 -- idle --transport ws --subs "$IDLE" --hold "$HOLD"
  run 1 "idle $IDLE" sio 0 -- idle --transport sio-ws --subs "$IDLE" --hold "$HOLD"
  # The same with permessage-deflate offered (as browsers do) and agreed.
  run 1 "deflate idle $IDLE" tandem 0 -- idle --transport ws --subs "$IDLE" --hold "$HOLD" --deflate 1
fi
if [ "$MODE" = full ] || [ "$MODE" = quick ]; then
  for cell in "${CELLS[@]}"; do
    set -- $cell
    label=$(label_of "$1" "$2")
    run "$3" "$label" tandem 0 -- fanout --transport ws --subs "$1" --rate "$2" --duration "$DUR"
    run "$3" "$label" tandem "$FLUSH_MS" -- fanout --transport ws --subs "$1" --rate "$2" --duration "$DUR"
    run "$3" "$label" sio 0 -- fanout --transport sio-ws --subs "$1" --rate "$2" --duration "$DUR"
  done
  # Durability: the same fan-out on a persisted chat topic (write, then broadcast).
  run "$BIG" "durable 1000 x 100/s" tandem 0 -- fanout --transport ws --topic room:1 --subs 1000 --rate 100 --duration "$DUR"
  run "$BIG" "durable 1000 x 100/s" tandem "$FLUSH_MS" -- fanout --transport ws --topic room:1 --subs 1000 --rate 100 --duration "$DUR"
  run "$SMALL" "durable 100 x 300/s" tandem 0 -- fanout --transport ws --topic room:2 --subs 100 --rate 300 --duration "$DUR"
  # The maximum on a lossless topic: every message delivered, none coalesced.
  run "$BIG" "max durable 1000 x 250/s" tandem 0 -- fanout --transport ws --topic room:1 --subs 1000 --rate 250 --duration "$DUR"
  run "$BIG" "max durable 1000 x 250/s" tandem "$FLUSH_MS" -- fanout --transport ws --topic room:1 --subs 1000 --rate 250 --duration "$DUR"
fi
if [ "$MODE" = full ] || [ "$MODE" = quick ] || [ "$MODE" = rungs ]; then
  # The transport ladder: the same fan-out (1,000 subscribers of one ticker,
  # 10 ticks/s) on each of tandem's rungs, and Socket.IO's long polling. The
  # polling rows count the server's requests (its own metric).
  run "$SMALL" "rung websocket 1000 x 10/s" tandem 0 -- fanout --transport ws --subs 1000 --rate 10 --duration "$DUR"
  COUNT=sse run "$SMALL" "rung sse 1000 x 10/s" tandem 0 -- fanout --transport sse --subs 1000 --rate 10 --duration "$DUR"
  COUNT=long_poll run "$SMALL" "rung long-poll 1000 x 10/s" tandem 0 -- fanout --transport long-poll --subs 1000 --rate 10 --duration "$DUR"
  COUNT=short_poll run "$SMALL" "rung short-poll 1000 x 10/s" tandem 0 -- fanout --transport short-poll --subs 1000 --rate 10 --duration "$DUR"
  run "$SMALL" "rung long-poll 1000 x 10/s" sio 0 -- fanout --transport sio-poll --subs 1000 --rate 10 --duration "$DUR"
  # Chat on the long-polling rung: the same on a persisted room (each poll
  # authorizes the room and reads its log from the version it names).
  COUNT=long_poll run "$SMALL" "rung durable long-poll 1000 x 10/s" tandem 0 -- fanout --transport long-poll --topic room:1 --subs 1000 --rate 10 --duration "$DUR"
  # The floor of long polling here: the calibration server's long polls
  # (one thread, an answer built once per event, no headers, no rules).
  run "$SMALL" "rung long-poll 1000 x 10/s" floor 0 -- fanout --transport floor-long-poll --subs 1000 --rate 10 --duration "$DUR"
fi
if [ "$MODE" = full ] || [ "$MODE" = quick ] || [ "$MODE" = compression ]; then
  # WebSocket compression (permessage-deflate): each row without and with
  # compression offered (as browsers offer it; tandem agrees), for bytes on
  # the wire and server CPU per delivery. Chat bodies are a time plus an
  # 80-byte line of text (--pad 80), a typical chat message; durable chat
  # at 1,000 x 100/s runs with the flush window (it needs one, above).
  compression() { # LABEL FLUSH_MS -- load-tool args...: the row plain, then compressed
    local label="$1" flush="$2"; shift 3
    run "$SMALL" "$label" tandem "$flush" -- "$@" --deflate 0
    run "$SMALL" "$label" tandem "$flush" -- "$@" --deflate 1
  }
  compression "compression chat 100 x 20/s" 0 -- fanout --transport ws --topic room:1 --subs 100 --rate 20 --duration "$DUR" --pad 80
  compression "compression chat 1000 x 100/s" "$FLUSH_MS" -- fanout --transport ws --topic room:1 --subs 1000 --rate 100 --duration "$DUR" --pad 80
  compression "compression ticker 1000 x 100/s" 0 -- fanout --transport ws --subs 1000 --rate 100 --duration "$DUR"
fi
if [ "$MODE" = full ] || [ "$MODE" = calibrate ]; then
  # Calibration: the same cells at twice the rate, against the minimal
  # native fan-out server, without and with the flush window. A valid run
  # (the tool not saturated, nothing lost) shows the tool receives at twice
  # the rate of the row it calibrates.
  for cell in "${CELLS[@]}"; do
    set -- $cell
    label=$(label_of "$1" "$2")
    run 1 "$label" floor 0 -- fanout --transport floor --subs "$1" --rate $(( $2 * 2 )) --duration "$DUR"
    run 1 "$label" floor "$FLUSH_MS" -- fanout --transport floor --subs "$1" --rate $(( $2 * 2 )) --duration "$DUR"
  done
  run 1 "max durable 1000 x 250/s" floor "$FLUSH_MS" -- fanout --transport floor --subs 1000 --rate 500 --duration "$DUR"
fi

MODE="$MODE" python3 - "$work/runs.jsonl" "$out" <<'PY'
import json, sys, platform, os, subprocess
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not any(not r.get("invalid") for r in runs):
    sys.exit("no valid run: no result file written")
cpu = next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"
sio = json.load(open("bench/socketio/node_modules/socket.io/package.json"))["version"]
meta = {"date_utc": out("date", "-u", "+%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{os.cpu_count()} cores ({cpu}), {round(os.sysconf('SC_PAGE_SIZE')*os.sysconf('SC_PHYS_PAGES')/2**30)} GiB, {platform.system()} {platform.release()}",
        "pinning": "server on core %s, load tool on core %s" % (os.environ.get("SERVER_CPU","0"), os.environ.get("LOAD_CPU","1")),
        "commit": os.environ.get("BENCH_COMMIT") or out("git", "rev-parse", "--short", "HEAD"),
        "tool_commit": out("git", "rev-parse", "--short", "HEAD") + ("-dirty" if out("git", "status", "--porcelain", "bench") else ""),
        "node": out("node", "--version"), "socket_io": sio,
        "flush_window_ms": int(os.environ.get("FLUSH_MS", "10")),
        "mode": os.environ.get("MODE", "")}
json.dump({"meta": meta, "runs": runs}, open(sys.argv[2], "w"), indent=1)
PY
if [ "$MODE" = full ]; then
  cp "$out" bench/results/latest.json
  python3 bench/report.py bench/results/latest.json | tee bench/results/latest.md
else
  python3 bench/report.py "$out"
fi
log "wrote $out"
if [ "$MODE" = full ]; then bench/first_load.sh --no-build; fi
