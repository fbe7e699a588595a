#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian 12 machine. Builds nothing: each
# caller builds what it runs (scripts/run.sh a release `jamz`, scripts/test.sh the
# whole workspace with its test targets).
#
#   scripts/setup.sh run   what the headless node of scripts/run.sh needs: the apt lists
#                          scripts/apt/base.txt and audio.txt, a minimal Rust toolchain
#   scripts/setup.sh all   everything (the default): every scripts/apt/*.txt, clippy and
#                          rustfmt, the npm packages of package-lock.json, scripts/setup.d/*.sh
#
# Idempotent: what is present is skipped, so a warm machine pays seconds. Every step
# prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-all}
case "$mode" in
  run | all) ;;
  *) echo "usage: $0 [run|all]" >&2; exit 2 ;;
esac

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# `timed NAME CMD...`: runs CMD and logs how long it took.
timed() {
  local name=$1 t0=$EPOCHREALTIME
  shift
  "$@"
  log "$name: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }')"
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_lists() {
  if [ "$mode" = run ]; then
    # The headless node: compilers and -sys build deps, ALSA for cpal, pactl to find a
    # sound server, sox for the demo tracks. No Node.js, WebKitGTK or test-only tools.
    echo scripts/apt/base.txt scripts/apt/audio.txt
  else
    echo scripts/apt/*.txt
  fi
}

install_apt_packages() {
  local wanted=() missing=() lists
  lists=$(apt_lists)
  # shellcheck disable=SC2086
  mapfile -t wanted < <(cat $lists | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
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
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
  fi
  if [ "$mode" = all ] && ! rustup component list --installed 2>/dev/null | grep -q '^clippy'; then
    rustup component add clippy rustfmt
  fi
}

install_npm_packages() {
  # `npm ci` installs exactly package-lock.json and never rewrites it. When it refuses
  # the lock (package.json changed, or an npm that wants entries the lock lacks), the
  # lock is what must be fixed, in a commit: regenerate it with
  # `npm install --package-lock-only` and commit it. Falling back to `npm install`
  # here would rewrite the tracked lock on every fresh machine.
  if ! npm ci --no-audit --no-fund --loglevel=error; then
    log "npm: 'npm ci' refused package-lock.json; regenerate it with"
    log "     'npm install --package-lock-only', check 'npm ci' accepts it, and commit it"
    exit 1
  fi
}

run_hooks() {
  local hook
  for hook in scripts/setup.d/*.sh; do
    [ -e "$hook" ] || continue
    timed "$hook" bash "$hook"
  done
}

setup_t0=$EPOCHREALTIME
log "mode: $mode"
timed "apt" install_apt_packages
timed "rust" install_rust
if [ "$mode" = all ]; then
  # Node.js, the UI's packages and the setup hooks (tauri-driver, ...) serve the app
  # and the tests only; the headless node of scripts/run.sh needs none of them.
  timed "npm" install_npm_packages
  run_hooks
fi
log "done in $(awk -v a="$setup_t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }')"
