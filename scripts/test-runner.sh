#!/usr/bin/env bash
# Cargo's target runner during scripts/test.sh's `cargo test` (set by
# scripts/with-test-runner.sh): runs one test binary under a time limit, so a hung test
# fails the run in minutes, with its binary's name, instead of holding CI until its own
# limit. libtest itself names every test still running after 60 s ("test X has been running
# for over 60 seconds"), so the log names the hung test too. Doc-tests come here as well:
# rustdoc runs each crate's doc-test program (`rust_out`) through the runner; they are named
# by their package.
#   JAMZ_TEST_BINARY_TIMEOUT   seconds per test binary (default 300; the slowest binary
#                              takes about 25 s on a 2-core machine)
# Usage (what cargo does): scripts/test-runner.sh TEST-BINARY [ARGS...]
set -uo pipefail
limit="${JAMZ_TEST_BINARY_TIMEOUT:-300}"
bin="$1"
# timeout puts the binary in a process group of its own and, on expiry, signals the whole
# group: the servers and nodes a test started go too. KILL 20 s later if TERM is not enough.
timeout --kill-after=20 "$limit" "$@"
status=$?
name="$(basename "$bin")"
if [ "$name" = rust_out ] && [ -n "${CARGO_PKG_NAME:-}" ]; then
  name="the doc-tests of $CARGO_PKG_NAME"
fi
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  printf '\n[test] TIMEOUT: %s ran over %s s and was stopped (the tests still running are the ones reported above as "running for over 60 seconds")\n' \
    "$name" "$limit" >&2
fi
exit "$status"
