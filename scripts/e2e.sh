#!/usr/bin/env bash
# The Playwright suite (`cargo leptos end-to-end`) against the real server on
# a fresh database. Fails if the run fails, or if the server panicked at any
# point (a panic in a server task does not always fail a page).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
for port in 3000 3101 3102 3103 3104; do
  if (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "port $port is in use: stop what listens there (a server or proxy left from an earlier run?)" >&2
    exit 1
  fi
done
mkdir -p target/e2e
rm -f target/e2e/e2e.db*
log=target/e2e/output.log
# Every spec creates its own room and accounts from one address: more than
# the default 20 rooms and 20 sign-ups an hour, and many log-ins. Hidden
# tabs rest after 4 s (hidden_tab.spec.ts) instead of a minute. The nginx
# proxies of proxy.spec.ts (ports 3101-3104) are public origins too. The
# suite creates more rooms than one page of the room list holds (50), and
# unread.spec.ts reads its new room's row on the first page; the list
# follows every room it shows, so a connection may hold more topics too.
# Some specs fill a room's history over HTTP as one account, faster than
# the per-account chat-write rate.
TANDEM_PUBLIC_ORIGINS='["http://127.0.0.1:3000","http://localhost:3000","http://127.0.0.1:3101","http://127.0.0.1:3102","http://127.0.0.1:3103","http://127.0.0.1:3104"]' \
TANDEM_WRITES_PER_MINUTE=100000 TANDEM_WRITES_BURST=1000 TANDEM_ROOM_PAGE=200 TANDEM_MAX_SUBSCRIPTIONS=256 TANDEM_ROOMS_PER_HOUR=1000 TANDEM_SIGNUPS_PER_HOUR=1000 TANDEM_LOGIN_IP_BURST=1000 TANDEM_HIDDEN_TAB_MS=4000 \
TANDEM_DATABASE_URL="sqlite://target/e2e/e2e.db" cargo leptos end-to-end --split 2>&1 | tee "$log"
if grep -n "panicked" "$log"; then
  echo "the server panicked during the end-to-end run (see $log)" >&2
  exit 1
fi
