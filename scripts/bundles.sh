#!/usr/bin/env bash
# Builds the Linux packages of the app (.deb and .rpm) and lists what each depends on:
# `dpkg -I` for the deb, `rpm -qpR` for the rpm (where `rpm` is installed; Tauri's rpm
# bundler itself needs no tool).
# Usage: scripts/bundles.sh [--debug]
#   default   a release build of the UI and the app: many minutes on a small machine, so
#             not part of scripts/test.sh or CI;
#   --debug   the same packages around the debug build, which reuses a warm debug target
#             (the packaging, its metadata and dependencies are the same).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
args=()
case "${1:-}" in
  "") ;;
  --debug) profile=debug; args=(--debug) ;;
  *) echo "usage: $0 [--debug]" >&2; exit 2 ;;
esac
npx tauri build "${args[@]}" --bundles deb,rpm
bundle="${CARGO_TARGET_DIR:-target}/$profile/bundle"
for deb in "$bundle"/deb/*.deb; do
  echo "== $deb"
  dpkg -I "$deb"
done
for rpm in "$bundle"/rpm/*.rpm; do
  echo "== $rpm"
  if command -v rpm >/dev/null; then
    rpm -qpi "$rpm" | grep -E '^(Name|Version|License|Vendor|URL|Summary)' || true
    rpm -qpR "$rpm"
  else
    echo "(rpm not installed: its requirements are tauri.conf.json's bundle.linux.rpm.depends)"
  fi
done
