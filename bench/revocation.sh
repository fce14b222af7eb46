#!/usr/bin/env bash
# Accounts, measured on the release build: the time a revoked session's
# socket stays open (log_out sent → close 4401 received) and the time per
# Argon2id hash (the server's `tandem_password_hash_seconds` histogram, and
# the log-in round trip). Server on core 0, load tool on core 1, loopback.
#   bench/revocation.sh [--no-build] [ROUNDS]
# Writes bench/results/revocation-<UTC date>.json (every run of the day).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
PORT=3303
METRICS=127.0.0.1:9466
log() { printf '\033[1m[revocation]\033[0m %s\n' "$*" >&2; }

if [ "${1:-}" = --no-build ]; then shift; else
  log "building (release)"
  ./scripts/setup.sh build >&2
  cargo leptos build --release --split >&2
  cargo build --release --manifest-path bench/load/Cargo.toml --target-dir target >&2
fi
ROUNDS="${1:-50}"
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port_open() { (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if port_open "$PORT"; then log "port $PORT is in use"; exit 1; fi

# Default limits, except the log-in burst: every round logs the same account in.
TANDEM_DATABASE_URL="sqlite://$work/r.db" TANDEM_METRICS_ADDR="$METRICS" RUST_LOG=warn \
  TANDEM_LOGIN_BURST=100000 TANDEM_LOGIN_IP_BURST=100000 \
  LEPTOS_SITE_ADDR="127.0.0.1:$PORT" LEPTOS_SITE_ROOT=target/site \
  taskset -c "$SERVER_CPU" target/release/tandem >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do port_open "$PORT" && break; sleep 0.1; done
log "$ROUNDS rounds"
timeout 300 taskset -c "$LOAD_CPU" target/release/tandem-load revocation --target "127.0.0.1:$PORT" \
  --rounds "$ROUNDS" --json "$work/one.json" >/dev/null
curl -s "http://$METRICS/metrics" | grep '^tandem_password_hash_seconds' > "$work/hash.txt"

out="bench/results/revocation-$(date -u +%Y-%m-%d).json"
python3 - "$work/one.json" "$work/hash.txt" "$out" <<'PY'
import json, os, sys, subprocess
date = subprocess.check_output(["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"]).decode().strip()
run = json.load(open(sys.argv[1]))
hist = {}
for line in open(sys.argv[2]):
    name, value = line.rsplit(" ", 1)
    hist[name] = float(value)
count = hist.get("tandem_password_hash_seconds_count", 0)
total = hist.get("tandem_password_hash_seconds_sum", 0)
buckets = {k.split('le="')[1].rstrip('"}'): v for k, v in hist.items() if "_bucket" in k}
run.update(date_utc=date, hashes=int(count), hash_mean_ms=round(1000 * total / count, 2) if count else None,
           hash_buckets=buckets, argon2="Argon2id m=19456 KiB, t=2, p=1")
earlier = json.load(open(sys.argv[3]))["runs"] if os.path.exists(sys.argv[3]) else []
json.dump({"runs": earlier + [run]}, open(sys.argv[3], "w"), indent=1)
ms = lambda us: f"{us / 1000:.1f}"
r, l = run["revocation_us"], run["log_in_us"]
print(f"Run {date}, {run['rounds']} rounds, close codes {run['close_codes']}")
print(f"revocation (log_out sent -> close received): p50 {ms(r['p50'])} ms, p90 {ms(r['p90'])}, p99 {ms(r['p99'])}, max {ms(r['max'])}")
print(f"log in (one Argon2id verify + round trip): p50 {ms(l['p50'])} ms, p90 {ms(l['p90'])}, p99 {ms(l['p99'])}, max {ms(l['max'])}")
print(f"Argon2id per hash (server histogram): mean {run['hash_mean_ms']} ms over {run['hashes']} hashes; cumulative buckets {buckets}")
PY
