#!/usr/bin/env bash
# The chat page's cost per incoming message and its memory, in Chromium, on
# the release build (bench/chat_cost.mjs says what is measured). Server on
# core 0, the browser wherever the OS puts it; loopback; a fresh database.
#   bench/chat_cost.sh [--no-build] [SAMPLES]
# Writes bench/results/chat-cost-<UTC date>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source bench/lib.sh
PORT=3304
log() { printf '\033[1m[chat-cost]\033[0m %s\n' "$*" >&2; }

build_for_browser "${1:-}"
[ "${1:-}" = --no-build ] && shift
SAMPLES="${1:-40}"
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
if port_open "$PORT"; then log "port $PORT is in use"; exit 1; fi

# Snapshots of up to 2,000 messages (so 2,000 rows are on screen at once);
# the bench creates rooms and accounts from one address, and fills rooms
# over HTTP as one account.
TANDEM_DATABASE_URL="sqlite://$work/c.db" RUST_LOG=warn TANDEM_HISTORY_PAGE=2000 \
  TANDEM_WRITES_PER_MINUTE=100000000 TANDEM_WRITES_BURST=10000000 \
  TANDEM_ROOMS_PER_HOUR=1000 TANDEM_SIGNUPS_PER_HOUR=1000 TANDEM_LOGIN_IP_BURST=1000 \
  TANDEM_METRICS_ADDR=127.0.0.1:9467 \
  LEPTOS_SITE_ADDR="127.0.0.1:$PORT" LEPTOS_SITE_ROOT=target/site \
  taskset -c 0 target/release/tandem >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do port_open "$PORT" && break; sleep 0.1; done
out="bench/results/chat-cost-$(date -u +%F).json"
node bench/chat_cost.mjs "http://127.0.0.1:$PORT" "$out" "$SAMPLES"
log "wrote $out"
