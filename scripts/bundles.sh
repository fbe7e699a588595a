#!/usr/bin/env bash
# Builds the Linux packages of the app (.deb and .rpm: a release build of the UI and the
# app, many minutes on a small machine, so not part of scripts/test.sh or CI) and lists
# what each depends on: `dpkg -I` for the deb, `rpm -qpR` for the rpm (where `rpm` is
# installed; Tauri's rpm bundler itself needs no tool). Usage: scripts/bundles.sh
set -euo pipefail
cd "$(dirname "$0")/.."
npx tauri build --bundles deb,rpm
bundle="${CARGO_TARGET_DIR:-target}/release/bundle"
for deb in "$bundle"/deb/*.deb; do
  echo "== $deb"
  dpkg -I "$deb"
done
for rpm in "$bundle"/rpm/*.rpm; do
  echo "== $rpm"
  if command -v rpm >/dev/null; then
    rpm -qpR "$rpm"
  else
    echo "(rpm not installed: its requirements are tauri.conf.json's bundle.linux.rpm.depends)"
  fi
done
