#!/usr/bin/env bash
# E2E of the real app: builds the UI, the app (serving the built UI), jamz-server and
# the `jamz` CLI, then drives the app with tauri-driver + WebKitWebDriver under Xvfb
# (tests/app/e2e.mjs). Screenshots: tests/app/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build
cargo build -p trafficjamz --features tauri/custom-protocol
cargo build -p jamz-server -p jamz-cli
export PATH="$HOME/.cargo/bin:$PATH"
exec xvfb-run -a -s "-screen 0 1280x900x24" node tests/app/e2e.mjs
