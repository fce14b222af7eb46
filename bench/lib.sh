# Shared by the bench scripts (sourced, not run): ports and fresh servers.

# bench_init: the descriptor limit as high as allowed, a scratch folder in
# $work, and on exit SERVER_PID stopped and $work removed.
bench_init() {
  ulimit -n "$(ulimit -Hn)"
  work=$(mktemp -d)
  SERVER_PID=""
  trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$work"' EXIT
}

port_open() { (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# build_for_browser ARG: unless ARG is --no-build, installs what the browser
# benches need (Chromium, Playwright) and builds the release.
build_for_browser() {
  [ "${1:-}" = --no-build ] && return
  printf '\033[1m[bench]\033[0m building (release)\n' >&2
  ./scripts/setup.sh test >&2
  cargo leptos build --release --split >&2
}
wait_port() { for _ in $(seq 100); do port_open "$1" && return 0; sleep 0.1; done; return 1; }

# The load comes from one address and sends far above a person's rate: the
# per-address, per-connection and per-account limits are lifted for it
# (README, "Benchmarks"). bench/fairness.sh keeps the defaults on purpose
# (all but the per-account write rate, for filling its long room over HTTP).
LIFTED_LIMITS=(
  TANDEM_MESSAGES_PER_SECOND=10000000 TANDEM_MESSAGES_BURST=10000000
  TANDEM_WRITES_PER_MINUTE=100000000 TANDEM_WRITES_BURST=10000000
  TANDEM_CONNECTS_PER_MINUTE=10000000 TANDEM_MAX_WS_CONNECTIONS=100000
  TANDEM_MAX_WS_CONNECTIONS_PER_IP=100000 TANDEM_RESUMES_BURST=10000000
  TANDEM_LOGIN_BURST=1000 TANDEM_POLLS_PER_MINUTE=100000000 TANDEM_POLLS_BURST=10000000
)

# start_tandem PORT DB CPU LOG [VAR=value ...]: a fresh release tandem
# ($TANDEM_BIN, target/release/tandem unless set; new
# database at DB, demo data, the `bench` account allowed to publish, the
# limits lifted) on 127.0.0.1:PORT, pinned to CPU, in the background, with
# any extra settings given. Sets SERVER_PID; returns once it listens.
start_tandem() {
  local port="$1" db="$2" cpu="$3" logfile="$4"; shift 4
  rm -f "$db" "$db"-*
  env "${LIFTED_LIMITS[@]}" TANDEM_DATABASE_URL="sqlite://$db" TANDEM_PUBLISHERS='["bench"]' \
    TANDEM_MAX_SUBSCRIPTIONS=8 TANDEM_SEED_DEMO_DATA=true RUST_LOG=warn \
    LEPTOS_SITE_ADDR="127.0.0.1:$port" LEPTOS_SITE_ROOT=target/site "$@" \
    taskset -c "$cpu" "${TANDEM_BIN:-target/release/tandem}" >"$logfile" 2>&1 &
  SERVER_PID=$!
  wait_port "$port" || { echo "tandem did not start:" >&2; cat "$logfile" >&2; return 1; }
}

# start_floor PORT CPU LOG [FLUSH_MS]: the calibration server (bench/load/src/bin/floor.rs).
start_floor() {
  taskset -c "$2" target/release/floor "127.0.0.1:$1" "${4:-0}" >"$3" 2>&1 &
  SERVER_PID=$!
  wait_port "$1" || { echo "floor did not start:" >&2; cat "$3" >&2; return 1; }
}

# stop_server PORT: stops SERVER_PID and waits for PORT to close.
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 50); do port_open "$1" || break; sleep 0.1; done
  SERVER_PID=""
}
