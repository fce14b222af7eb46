#!/usr/bin/env bash
# The page's weight and a first visit in Chromium, on the release binary
# deployed as one file (copied alone into an empty directory):
#  - the binary's size and its start time (exec to answering, 5 starts);
#  - the site's files as served: raw, gzip and brotli bytes, and the wasm's
#    code by crate (bench/wasm_breakdown.py, twiggy);
#  - bench/first_load.mjs over HTTPS and over plain HTTP (Chromium offers
#    brotli to both: loopback is a secure origin): bytes of a first and a
#    repeat visit of a room page
#    and the time from navigation to `live`, RUNS visits each (default 5);
#    the same for the lobby (`/`, a lazy route: main wasm plus its chunks)
#    over HTTPS.
#   bench/first_load.sh [--no-build] [RUNS]
# Writes bench/results/first-load-<UTC date>-<UTC time, to the second>.json.
# BIN=<binary> measures another build (default target/release/tandem); with
# SITE=<site folder> its site is copied beside it and served from there (how
# releases were deployed before the site went into the binary), e.g. for an
# older commit built in a git worktree:
#   BENCH_COMMIT=<commit> BIN=target/release/tandem SITE=../old/target/site \
#     bench/first_load.sh --no-build
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source bench/lib.sh
PORT=3305
log() { printf '\033[1m[first-load]\033[0m %s\n' "$*" >&2; }

build_for_browser "${1:-}"
[ "${1:-}" = --no-build ] && shift
RUNS="${1:-5}"
command -v twiggy >/dev/null || { log "installing twiggy"; cargo install --locked twiggy >&2; }
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
if port_open "$PORT"; then log "port $PORT is in use"; exit 1; fi

# The deployment: one file in an empty directory (or a binary and its site).
BIN="${BIN:-target/release/tandem}"
cp "$BIN" "$work/tandem"
site_env=()
if [ -n "${SITE:-}" ]; then
  cp -r "$SITE" "$work/site"
  site_env=(LEPTOS_SITE_ROOT=site)
fi
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
# Chromium trusts it by its key's hash (first_load.mjs says why).
spki=$(openssl x509 -in "$work/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der \
  | openssl dgst -sha256 -binary | base64)

# serve SCHEME: starts the binary on a fresh database; sets pid.
serve() {
  local tls=()
  [ "$1" = https ] && tls=(TANDEM_TLS_CERT_FILE="$work/cert.pem" TANDEM_TLS_KEY_FILE="$work/key.pem")
  rm -f "$work"/t.db*
  (cd "$work" && exec env "${tls[@]}" "${site_env[@]}" TANDEM_DATABASE_URL="sqlite://$work/t.db" \
    TANDEM_PUBLIC_ORIGINS="[\"$1://127.0.0.1:$PORT\"]" TANDEM_METRICS=false RUST_LOG=warn \
    LEPTOS_SITE_ADDR="127.0.0.1:$PORT" taskset -c 0 ./tandem >"$work/server.log" 2>&1) &
  pid=$!
  for _ in $(seq 2000); do
    [ "$(curl -sk -o /dev/null -w '%{http_code}' "$1://127.0.0.1:$PORT/healthz")" = 200 ] && return
    sleep 0.01
  done
  log "the server did not start:"; cat "$work/server.log" >&2; exit 1
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; }

# Start time: exec to the first answer to /healthz, five times.
starts=()
for _ in 1 2 3 4 5; do
  t0=$(date +%s%N)
  serve http
  starts+=($(( ($(date +%s%N) - t0) / 1000000 )))
  stop
done
log "start times (ms): ${starts[*]}"

serve https
# The files a room page and the lobby name (the lobby, a lazy route, also
# names its chunks).
page=$(curl -sk "https://127.0.0.1:$PORT/rooms/1" "https://127.0.0.1:$PORT/")
files=$(grep -o '/pkg/[^"]*\.\(wasm\|js\|css\)' <<<"$page" | sort -u)
: > "$work/files.jsonl"
for f in $files; do
  raw=$(curl -sk "https://127.0.0.1:$PORT$f" | wc -c)
  gz=$(curl -sk -H 'accept-encoding: gzip' "https://127.0.0.1:$PORT$f" | wc -c)
  br=$(curl -sk -H 'accept-encoding: br' "https://127.0.0.1:$PORT$f" | wc -c)
  printf '{"path":"%s","raw":%d,"gzip":%d,"br":%d}\n' "$f" "$raw" "$gz" "$br" >> "$work/files.jsonl"
done
log "visits over HTTPS"
SPKI="$spki" node bench/first_load.mjs "https://127.0.0.1:$PORT" /rooms/1 "$work/https.json" "$RUNS"
log "visits of the lobby over HTTPS"
SPKI="$spki" node bench/first_load.mjs "https://127.0.0.1:$PORT" / "$work/lobby.json" "$RUNS"
stop
serve http
log "visits over HTTP"
node bench/first_load.mjs "http://127.0.0.1:$PORT" /rooms/1 "$work/http.json" "$RUNS"
stop

if [ -z "${SITE:-}" ]; then python3 bench/wasm_breakdown.py > "$work/breakdown.json"; else echo '{}' > "$work/breakdown.json"; fi
mkdir -p bench/results
out="bench/results/first-load-$(date -u +%Y-%m-%d-%H%M%S).json"
python3 - "$work" "$out" "$(stat -c %s "$BIN")" "${starts[*]}" <<'EOF'
import json, os, subprocess, sys
work, out, size, starts = sys.argv[1], sys.argv[2], int(sys.argv[3]), [int(x) for x in sys.argv[4].split()]
git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True).stdout.strip()
result = {
    "meta": {"commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
             "binary": os.environ.get("BIN", "target/release/tandem"), "site_folder": os.environ.get("SITE") or None,
             "binary_commit": os.environ.get("BENCH_COMMIT")},
    "binary_bytes": size,
    "start_ms": starts,
    "files": [json.loads(l) for l in open(f"{work}/files.jsonl")],
    "wasm_by_crate": json.load(open(f"{work}/breakdown.json")),
    "https": json.load(open(f"{work}/https.json")),
    "http": json.load(open(f"{work}/http.json")),
    "lobby_https": json.load(open(f"{work}/lobby.json")),
}
json.dump(result, open(out, "w"), indent=1)
print(json.dumps({k: result[k] for k in ("binary_bytes", "start_ms", "files")}, indent=1))
for s in ("https", "http"):
    print(s, json.dumps(result[s]["summary"]))
EOF
log "wrote $out"
