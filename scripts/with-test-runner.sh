#!/usr/bin/env bash
# Runs a command (scripts/test.sh: `cargo test --workspace ...`) with cargo's target runner
# set to scripts/test-runner.sh, so every test binary runs under its time limit: the unit
# and integration tests, and the doc-tests too (cargo hands the runner to rustdoc, which
# runs each crate's doc-test program through it).
# Usage: scripts/with-test-runner.sh COMMAND [ARGS...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
host=$(rustc -vV | sed -n 's/^host: //p')
export "CARGO_TARGET_$(printf '%s' "$host" | tr '[:lower:]-' '[:upper:]_')_RUNNER=$here/test-runner.sh"
exec "$@"
