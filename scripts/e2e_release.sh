#!/usr/bin/env bash
# The Playwright specs of end2end/release against the release binary
# deployed as one file: target/release/tandem (from `cargo leptos build
# --release --split`) copied alone into an empty directory and started there on a
# fresh database.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
PORT=3010
if (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "port $PORT is in use: stop what listens there" >&2
  exit 1
fi
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$work"; }
trap cleanup EXIT
cp target/release/tandem "$work/tandem"
(cd "$work" && exec env TANDEM_DATABASE_URL="sqlite://$work/t.db" TANDEM_METRICS=false \
  LEPTOS_SITE_ADDR="127.0.0.1:$PORT" ./tandem >"$work/server.log" 2>&1) &
pid=$!
up=""
for _ in $(seq 500); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")" = 200 ] && { up=1; break; }
  sleep 0.02
done
if [ -z "$up" ]; then
  echo "the release server did not answer within 10 s:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
status=0
(cd end2end && TANDEM_E2E_DIR=./release BASE_URL="http://127.0.0.1:$PORT" npx playwright test) || status=$?
if grep -n "panicked" "$work/server.log"; then
  echo "the release server panicked (log above)" >&2
  status=1
fi
exit $status
