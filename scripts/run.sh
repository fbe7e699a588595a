#!/usr/bin/env bash
# Sets up what the headless node needs (scripts/setup.sh run), builds only the release
# `jamz`, then runs the main job headless: the
# reference backend embedded in `jamz server`, a demo account, group and two
# generated tracks, and a `jamz node --json` that takes control and plays. Type
# control commands (docs/node-control.md; one JSON object per line) on stdin, e.g.
#   {"cmd":"status"}  {"cmd":"pause"}  {"cmd":"seek","position":30}  {"cmd":"next"}  {"cmd":"quit"}
# Environment: JAMZ_PORT (5050), JAMZ_DATA (./jamz-data), JAMZ_OUTPUT (default when a
# sound server answers, else null; or wav:PATH). Every step prints how long it took, and
# the first `playback` event of the node how long it came after the script started.
set -euo pipefail
start=$EPOCHREALTIME
cd "$(dirname "$0")/.."

log() { printf '\033[1m[run]\033[0m %s\n' "$*" >&2; }
# Seconds since $1 (an $EPOCHREALTIME), one decimal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }

scripts/setup.sh run
# A toolchain setup.sh just installed with rustup is not on this shell's PATH yet.
if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
log "setup: $(since "$start")"
port=${JAMZ_PORT:-5050}
data=$(realpath -m "${JAMZ_DATA:-jamz-data}")
server="http://127.0.0.1:$port"
mkdir -p "$data/demo"
export JAMZ_CONFIG_DIR="$data/config" JAMZ_CACHE_DIR="$data/cache"

log "building jamz (release)"
t=$EPOCHREALTIME
# Only the binary this script runs: the workspace's test targets are scripts/test.sh's.
cargo build --release --locked -q -p jamz-cli --bin jamz
log "build: $(since "$t")"
jamz="${CARGO_TARGET_DIR:-target}/release/jamz"

t=$EPOCHREALTIME
"$jamz" server --bind "127.0.0.1:$port" --db "$data/jamz.db" --data-dir "$data/server" > "$data/server.out" 2> "$data/server.log" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q 'listening on' "$data/server.out" 2>/dev/null && break
  kill -0 $server_pid 2>/dev/null || { cat "$data/server.log" >&2; exit 1; }
  sleep 0.1
done
log "embedded server on $server (log: $data/server.log); server start: $(since "$t")"

t=$EPOCHREALTIME
"$jamz" login --server "$server" --username demo --password demo-pass >/dev/null 2>&1 ||
  "$jamz" register --server "$server" --username demo --email demo@example.test --password demo-pass >/dev/null
group=$("$jamz" group list 2>/dev/null | grep -oE '^[0-9a-f]{24}' | head -1 || true)
if [ -z "$group" ]; then
  group=$("$jamz" group create "Road trip" | grep -oE '[0-9a-f]{24}' | head -1)
  for n in 1 2; do
    f="$data/demo/demo-$n.flac"
    sox -q -n -r 44100 -c 2 "$f" synth 30 pluck "$((220 * n))" tremolo 4 40 fade 0.5 30 1 2>/dev/null
    "$jamz" upload --group "$group" "$f" >&2
  done
fi
log "group $group; account, group and demo tracks: $(since "$t")"

output=${JAMZ_OUTPUT:-}
if [ -z "$output" ]; then
  if command -v pactl >/dev/null && timeout 3 pactl info >/dev/null 2>&1; then output=default; else output=null; fi
fi
log "node output: $output; type JSON commands, {\"cmd\":\"quit\"} to stop"
# The node reads a fifo that this script also writes: it takes control, plays once
# the server confirms the DJ role, and forwards the user's stdin (EOF means quit).
fifo="$data/node.stdin"
rm -f "$fifo"
mkfifo "$fifo"
exec 3<>"$fifo" 4<&0
# (a background job's stdin would be /dev/null: read the user's through fd 4)
{ cat <&4; echo '{"cmd":"quit"}'; } >&3 &
echo '{"cmd":"take-control"}' >&3
played="" sounding="" t=$EPOCHREALTIME
"$jamz" node --server "$server" --group "$group" --name "Demo car" --output "$output" --json <&3 |
  while IFS= read -r line; do
    printf '%s\n' "$line"
    if [ -z "$played" ] && [[ "$line" == *'"event":"controller"'* ]]; then
      played=1
      echo '{"cmd":"play"}' >&3
    fi
    if [ -z "$sounding" ] && [[ "$line" == *'"event":"playback"'* && "$line" == *'"playing":true'* ]]; then
      sounding=1
      log "first playback event: $(since "$t") after the node started, $(since "$start") after scripts/run.sh started"
    fi
  done
