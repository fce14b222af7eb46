# Sourced by the other scripts: where the project's tools live.
export TANDEM_TOOLS="${TANDEM_TOOLS:-$HOME/.cache/tandem-tools}"
export PATH="$HOME/.cargo/bin:$TANDEM_TOOLS/node_modules/.bin:$PATH"
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
