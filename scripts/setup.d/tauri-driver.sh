#!/usr/bin/env bash
# tauri-driver: the WebDriver proxy for the app's E2E (tests/app). Skipped when present.
set -euo pipefail
if command -v tauri-driver >/dev/null 2>&1; then
  exit 0
fi
cargo install tauri-driver --locked
