#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine, then builds it.
# Idempotent: packages already present are skipped, so a warm machine pays seconds.
# Package lists live in scripts/apt/*.txt, one file per part of the project.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_apt_packages() {
  local wanted=() missing=()
  mapfile -t wanted < <(cat scripts/apt/*.txt | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
  for p in "${wanted[@]}"; do
    # node and npm may come from outside Debian (nvm, nodesource): accept any on PATH
    if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
    if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "apt: all ${#wanted[@]} packages present"
    return
  fi
  log "apt: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_rust() {
  if ! command -v cargo >/dev/null; then
    log "rust: installing the stable toolchain with rustup"
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
  fi
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
}

install_npm_packages() {
  if [ -f package-lock.json ]; then
    log "npm: ci"
    # npm 11 refuses `ci` when the lock lacks optional packages for other platforms
    # (@tauri-apps/cli-darwin-*), which a registry mirror may not serve at all; then
    # install from the same lock, which skips optional packages it cannot fetch.
    npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || {
      log "npm: ci refused the lock (optional platform packages); npm install from it"
      npm install --no-audit --no-fund --loglevel=error
    }
  else
    npm install --no-audit --no-fund --loglevel=error
  fi
}

install_apt_packages
install_rust
install_npm_packages
for hook in scripts/setup.d/*.sh; do
  [ -e "$hook" ] || continue
  log "running $hook"
  bash "$hook"
done
log "cargo: building the workspace"
cargo build --workspace --all-targets --locked
log "done"
