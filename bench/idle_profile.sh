#!/usr/bin/env bash
# Where an idle tandem server's keep-alive CPU goes: holds N idle
# connections (default 19,800, 60 s) with the load tool and records the
# server with `perf record -g` for 30 s of the hold, then prints the top
# symbols. Uses the release builds in target/ (bench/run.sh builds them).
#   bench/idle_profile.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-19800}"
PORT=3300
ulimit -n "$(ulimit -Hn)"
log() { printf '\033[1m[idle-profile]\033[0m %s\n' "$*" >&2; }
port_open() { (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if port_open "$PORT"; then log "port $PORT is in use"; exit 1; fi
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# The same limits as bench/run.sh (one address, many connections).
TANDEM_CONNECTS_PER_MINUTE=10000000 TANDEM_MAX_WS_CONNECTIONS=100000 \
  TANDEM_MAX_WS_CONNECTIONS_PER_IP=100000 TANDEM_RESUMES_BURST=10000000 \
  TANDEM_DATABASE_URL="sqlite://$work/bench.db" TANDEM_PUBLISHERS='["bench"]' TANDEM_LOGIN_BURST=1000 \
  TANDEM_MAX_SUBSCRIPTIONS=8 TANDEM_SEED_DEMO_DATA=true RUST_LOG=warn \
  LEPTOS_SITE_ADDR="127.0.0.1:$PORT" LEPTOS_SITE_ROOT=target/site \
  taskset -c 0 target/release/tandem >"$work/tandem.log" 2>&1 &
pid=$!
for _ in $(seq 100); do port_open "$PORT" && break; sleep 0.1; done
taskset -c 1 target/release/tandem-load idle --transport ws --subs "$N" --hold 60 \
  --target "127.0.0.1:$PORT" --server-pid "$pid" --label profile --json "$work/one.json" >/dev/null &
load=$!
# Connecting 19,800 takes about 10 s; record well inside the hold.
sleep 25
perf record -F 999 -g -p "$pid" -o "$work/idle.perf" -- sleep 30 >&2
wait "$load"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["server"]; print("keep-alive %.2f%% of a core, %.1f KiB/conn" % (100*s["cpu_core_share"], s["rss_kib_per_connection"]))' "$work/one.json"
perf report -i "$work/idle.perf" --no-children --sort symbol --stdio 2>/dev/null | grep -v '^#' | grep '%' | head -30
