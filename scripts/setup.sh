#!/usr/bin/env bash
# Installs whatever is missing to build (and, with `test`, to test) tandem.
# Idempotent: a second run only checks versions. Tools go to ~/.cargo/bin and
# $TANDEM_TOOLS (default ~/.cache/tandem-tools); source scripts/env.sh after.
#   scripts/setup.sh build   wasm target, cargo-leptos, wasm-bindgen CLI, wasm-opt
#   scripts/setup.sh test    all of the above, plus Chromium, nginx and the Playwright packages
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
what="${1:-build}"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

LEPTOS_VERSION=0.3.10
if ! cargo leptos --version 2>/dev/null | grep -q "$LEPTOS_VERSION"; then
  log "installing cargo-leptos $LEPTOS_VERSION (no tool downloads)"
  cargo install --locked --features no_downloads "cargo-leptos@$LEPTOS_VERSION"
fi

# The CLI must equal the wasm-bindgen crate in Cargo.lock (pinned with = in Cargo.toml).
WBG_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q "$WBG_VERSION"; then
  log "installing wasm-bindgen-cli $WBG_VERSION"
  cargo install wasm-bindgen-cli --version "$WBG_VERSION" --locked \
    || cargo install wasm-bindgen-cli --version "$WBG_VERSION" --force
fi

# wasm-opt (release builds) from the npm package binaryen.
if ! command -v wasm-opt >/dev/null; then
  log "installing wasm-opt (npm binaryen) into $TANDEM_TOOLS"
  mkdir -p "$TANDEM_TOOLS"
  (cd "$TANDEM_TOOLS" && { [ -f package.json ] || echo '{"private":true}' > package.json; } \
    && npm install --no-audit --no-fund binaryen@132.0.0 >/dev/null)
fi

if [ "$what" = test ]; then
  if [ ! -x "$CHROMIUM_PATH" ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      log "installing Chromium from Debian"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      log "no Chromium at $CHROMIUM_PATH; trying Playwright's own download"
      (cd end2end && npx playwright install chromium)
    fi
  fi
  # proxy.spec.ts puts nginx in front of the app (the fallback ladder).
  if [ ! -x /usr/sbin/nginx ] && ! command -v nginx >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      log "installing nginx from Debian"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
    else
      log "nginx is missing: install it (e.g. apt-get install nginx); proxy.spec.ts needs it"
      exit 1
    fi
  fi
  if [ ! -d end2end/node_modules/@playwright/test ]; then
    log "installing the end-to-end test packages"
    (cd end2end && npm ci --no-audit --no-fund)
  fi
fi
