#!/usr/bin/env bash
# E2E of the real app: builds the UI, the app (serving the built UI), jamz-server and
# the `jamz` CLI, then drives the app with tauri-driver + WebKitWebDriver under Xvfb
# (tests/app/e2e.mjs). Screenshots: tests/app/artifacts/.
# E2E_SCENARIOS=youtube (or main, hosting; comma-separated) runs only those.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build
# The test build's CSP also lets scripts come from loopback (any port): the YouTube
# stand-in that tests/app/youtube-server.mjs serves there. The shipped CSP
# (src-tauri/tauri.conf.json) allows exactly YouTube's origins; TAURI_CONFIG is merged
# into it at build time, for this build only.
TEST_CONFIG="$(node -e '
  const csp = require("./src-tauri/tauri.conf.json").app.security.csp;
  const test = csp.replace(/script-src ([^;]*)/, "script-src $1 http://127.0.0.1:*");
  if (test === csp) throw new Error("no script-src in the CSP");
  process.stdout.write(JSON.stringify({ app: { security: { csp: test } } }));
')"
TAURI_CONFIG="$TEST_CONFIG" cargo build -p trafficjamz --features tauri/custom-protocol
cargo build -p jamz-server -p jamz-cli
export PATH="$HOME/.cargo/bin:$PATH"
exec xvfb-run -a -s "-screen 0 1280x900x24" node tests/app/e2e.mjs
