#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh all), builds the workspace with every test target,
# and runs every test of the project:
# formatting, the dependency policy (cargo deny), clippy, the Rust workspace's tests, the JavaScript peers' tests, the
# UI's unit tests and the app's end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh all
# A toolchain setup.sh just installed with rustup is not on this shell's PATH yet.
if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
build_start=$EPOCHREALTIME
cargo build --workspace --all-targets --locked
printf '\033[1m[test]\033[0m build: %s\n' "$(awk -v a="$build_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }')" >&2

# Test-time services (a PulseAudio null sink, ...) start here and export their
# environment to everything below; each hook in scripts/env.d owns one service.
for hook in scripts/env.d/*.sh; do
  [ -e "$hook" ] || continue
  # shellcheck disable=SC1090
  . "$hook"
done

step() { printf '\n\033[1m[test]\033[0m %s\n' "$*" >&2; }
step "cargo fmt --check"
cargo fmt --all -- --check
scripts/check-layering.sh
step "cargo deny (licences, bans, sources of deny.toml)"
cargo deny --locked check licenses bans sources
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo test"
# Every test binary, the doc-tests' included, runs under scripts/test-runner.sh: a time
# limit per binary (JAMZ_TEST_BINARY_TIMEOUT), so a hang fails fast and names itself.
scripts/with-test-runner.sh cargo test --workspace --locked -- --nocapture 2>&1 | tee /tmp/jamz-cargo-test.log
step "node --test tests/js"
# A limit per test (ms): the slowest takes a few seconds.
node --test --test-timeout=120000 tests/js/
# The server scenarios again against other server set-ups (tests/js/helpers.mjs,
# JAMZ_JS_SERVER): e.g. JAMZ_JS_SERVER_MODES="postgres cluster" (CI).
for mode in ${JAMZ_JS_SERVER_MODES:-}; do
  step "node --test tests/js/server-scenario.test.mjs (JAMZ_JS_SERVER=$mode)"
  JAMZ_JS_SERVER=$mode node --test --test-timeout=120000 tests/js/server-scenario.test.mjs
done
step "npm test (UI typecheck and unit tests)"
npm test
step "app E2E (real binary, tauri-driver, Xvfb)"
timeout --kill-after=20 "${JAMZ_APP_E2E_TIMEOUT:-1800}" scripts/app-e2e.sh ||
  { status=$?; [ "$status" -ne 124 ] || echo "[test] TIMEOUT: the app E2E ran over ${JAMZ_APP_E2E_TIMEOUT:-1800} s" >&2; exit "$status"; }
step "all tests passed"
