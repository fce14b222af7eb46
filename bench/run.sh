#!/usr/bin/env bash
# Side-by-side benchmark: tandem and a Socket.IO 4 peer, driven by the same
# load tool (bench/load) over the same scenarios, on loopback only, with the
# server and the load tool pinned to different cores. Every run is bounded.
#   bench/run.sh [full|quick|idle] [--no-build]
# full: writes bench/results/<UTC date>.json (one object per run) and prints
# the table (bench/report.py), also saved as bench/results/latest.md.
# quick (short cells) and idle (the idle cells only) write
# bench/results/<UTC date>-<mode>-<UTC time>.json and leave latest.* alone.
# --no-build runs the binaries already in target/ (BENCH_COMMIT names
# the commit they were built from, for the result's metadata).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
MODE="${1:-full}"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
TANDEM_PORT=3300
SIO_PORT=3301
ulimit -n "$(ulimit -Hn)"  # as high as allowed (20,000 idle connections need ~20k fds per side)
log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

if [ "${2:-}" = --no-build ]; then
  log "using the release builds in target/ as they are"
else
  log "building (release)"
  ./scripts/setup.sh build >&2
  cargo leptos build --release >&2
  cargo build --release --manifest-path bench/load/Cargo.toml --target-dir target >&2
fi
(cd bench/socketio && { [ -d node_modules/socket.io ] || npm install --no-audit --no-fund >&2; })

work=$(mktemp -d)
if [ "$MODE" = full ]; then out="bench/results/$(date -u +%Y-%m-%d).json"
else out="bench/results/$(date -u +%Y-%m-%d)-$MODE-$(date -u +%H%M).json"; fi
mkdir -p bench/results
: > "$work/runs.jsonl"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port_open() { (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 100); do port_open "$1" && return 0; sleep 0.1; done; return 1; }
for port in $TANDEM_PORT $SIO_PORT; do
  if port_open "$port"; then log "port $port is already in use: stop what listens there first"; exit 1; fi
done

start_tandem() {
  rm -f "$work"/bench.db*
  # The load comes from one address and sends far above a person's rate: the
  # per-address and per-connection limits are lifted for the run (README).
  TANDEM_MESSAGES_PER_SECOND=10000000 TANDEM_MESSAGES_BURST=10000000 \
  TANDEM_CONNECTS_PER_MINUTE=10000000 TANDEM_MAX_WS_CONNECTIONS=100000 \
  TANDEM_MAX_WS_CONNECTIONS_PER_IP=100000 TANDEM_RESUMES_BURST=10000000 \
  TANDEM_DATABASE_URL="sqlite://$work/bench.db" TANDEM_PUBLISHERS='["bench"]' TANDEM_LOGIN_BURST=1000 \
    TANDEM_MAX_SUBSCRIPTIONS=8 TANDEM_SEED_DEMO_DATA=true RUST_LOG=warn \
    LEPTOS_SITE_ADDR="127.0.0.1:$TANDEM_PORT" LEPTOS_SITE_ROOT=target/site \
    taskset -c "$SERVER_CPU" target/release/tandem >"$work/tandem.log" 2>&1 &
  TANDEM_PID=$!; pids+=("$TANDEM_PID"); wait_port "$TANDEM_PORT"
}
start_sio() {
  PORT="$SIO_PORT" taskset -c "$SERVER_CPU" node bench/socketio/server.js >"$work/sio.log" 2>&1 &
  SIO_PID=$!; pids+=("$SIO_PID"); wait_port "$SIO_PORT"
}
stop() {
  kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true
  for _ in $(seq 50); do port_open "$2" || return 0; sleep 0.1; done
}

# run LABEL SERVER(tandem|sio) -- load-tool args...
run() {
  local label="$1" server="$2"; shift 3
  local target pid
  if [ "$server" = tandem ]; then target="127.0.0.1:$TANDEM_PORT"; pid=$TANDEM_PID; else target="127.0.0.1:$SIO_PORT"; pid=$SIO_PID; fi
  log "$label on $server"
  if timeout 600 taskset -c "$LOAD_CPU" target/release/tandem-load "$@" --target "$target" \
       --server-pid "$pid" --label "$label" --json "$work/one.json" >/dev/null; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["server_name"]=sys.argv[2]; print(json.dumps(d))' \
      "$work/one.json" "$server" >> "$work/runs.jsonl"
  else
    log "  $label on $server: no valid result (exit $?)"
    printf '{"label":"%s","server_name":"%s","invalid":true}\n' "$label" "$server" >> "$work/runs.jsonl"
  fi
}

if [ "$MODE" = quick ]; then IDLE=2000; HOLD=5; DUR=5; else IDLE=20000; HOLD=60; DUR=10; fi
case "$MODE" in full|quick|idle) ;; *) log "unknown mode $MODE (full, quick or idle)"; exit 2 ;; esac  # hold > 2 heartbeat intervals of either server
# Each side needs one descriptor per connection plus a few of its own.
FDS=$(ulimit -n)
if [ "$IDLE" -gt $((FDS - 200)) ]; then
  IDLE=$((FDS - 200))
  log "the descriptor limit is $FDS here: idle scenario uses $IDLE connections"
fi

# Idle connections first, on fresh servers (clean memory baselines).
start_tandem; start_sio
run "idle $IDLE" tandem -- idle --transport ws --subs "$IDLE" --hold "$HOLD"
run "idle $IDLE" sio -- idle --transport sio-ws --subs "$IDLE" --hold "$HOLD"
stop "$TANDEM_PID" "$TANDEM_PORT"; stop "$SIO_PID" "$SIO_PORT"
if [ "$MODE" != idle ]; then
start_tandem; start_sio

for spec in "100 100" "1000 100" "5000 10"; do
  set -- $spec
  run "$1 subs x $2/s" tandem -- fanout --transport ws --subs "$1" --rate "$2" --duration "$DUR"
  run "$1 subs x $2/s" sio -- fanout --transport sio-ws --subs "$1" --rate "$2" --duration "$DUR"
done
# Sustained maximum: 1,000 subscribers, rising rate.
for rate in 250 400; do
  run "max 1000 x $rate/s" tandem -- fanout --transport ws --subs 1000 --rate "$rate" --duration "$DUR"
  run "max 1000 x $rate/s" sio -- fanout --transport sio-ws --subs 1000 --rate "$rate" --duration "$DUR"
done
# Long polling (Socket.IO now; tandem's rung will join this row).
run "long-poll 1000 x 10/s" sio -- fanout --transport sio-poll --subs 1000 --rate 10 --duration "$DUR"
# Durability: the same fan-out on a persisted chat topic (write, then broadcast).
run "durable 1000 x 100/s" tandem -- fanout --transport ws --topic room:1 --subs 1000 --rate 100 --duration "$DUR"
run "durable 100 x 300/s" tandem -- fanout --transport ws --topic room:2 --subs 100 --rate 300 --duration "$DUR"
fi

MODE="$MODE" python3 - "$work/runs.jsonl" "$out" <<'PY'
import json, sys, platform, os, subprocess
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
meta = {"date_utc": subprocess.check_output(["date","-u","+%Y-%m-%dT%H:%M:%SZ"]).decode().strip(),
        "machine": f"{os.cpu_count()} cores ({cpu}), {round(os.sysconf('SC_PAGE_SIZE')*os.sysconf('SC_PHYS_PAGES')/2**30)} GiB, {platform.system()} {platform.release()}",
        "pinning": "server on core %s, load tool on core %s" % (os.environ.get("SERVER_CPU","0"), os.environ.get("LOAD_CPU","1")),
        "commit": os.environ.get("BENCH_COMMIT") or subprocess.run(["git","rev-parse","--short","HEAD"], capture_output=True, text=True).stdout.strip(),
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
