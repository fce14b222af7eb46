#!/usr/bin/env bash
# Every check and test: format, lints (server, browser and combined builds),
# unit and integration tests, the release binary alone in an empty
# directory, then the Playwright suite in Chromium against
# the real server on a fresh database. Run through `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# A clean clone builds everything once, so incremental caches only cost disk
# (4 GB of it). Local runs keep them.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (ssr + hydrate, all targets)"
cargo clippy --all-features --all-targets -- -D warnings
step "clippy (hydrate, wasm32)"
cargo clippy --lib --no-default-features --features hydrate --target wasm32-unknown-unknown -- -D warnings

step "unit and integration tests"
cargo test --features ssr

step "the release binary as one file (cargo leptos build --release --split, tests/release_binary.rs)"
cargo leptos build --release --split
cargo test --features ssr --test release_binary -- --ignored
scripts/e2e_release.sh

step "load tool (bench/load): lints and unit tests"
cargo clippy --manifest-path bench/load/Cargo.toml --target-dir target -- -D warnings
cargo test --manifest-path bench/load/Cargo.toml --target-dir target

step "end-to-end (cargo leptos end-to-end, Chromium)"
scripts/e2e.sh
