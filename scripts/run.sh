#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh), then runs the main job headless: the
# reference backend embedded in `jamz server`, a demo account, group and two
# generated tracks, and a `jamz node --json` that takes control and plays. Type
# NODE_CONTROL.md commands (one JSON object per line) on stdin, e.g.
#   {"cmd":"status"}  {"cmd":"pause"}  {"cmd":"seek","position":30}  {"cmd":"next"}  {"cmd":"quit"}
# Environment: JAMZ_PORT (5050), JAMZ_DATA (./jamz-data), JAMZ_OUTPUT (default when a
# sound server answers, else null; or wav:PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

log() { printf '\033[1m[run]\033[0m %s\n' "$*" >&2; }
port=${JAMZ_PORT:-5050}
data=$(realpath -m "${JAMZ_DATA:-jamz-data}")
server="http://127.0.0.1:$port"
mkdir -p "$data/demo"
export JAMZ_CONFIG_DIR="$data/config" JAMZ_CACHE_DIR="$data/cache"

log "building jamz (release)"
cargo build --release --locked -q -p jamz-cli
jamz="${CARGO_TARGET_DIR:-target}/release/jamz"

"$jamz" server --bind "127.0.0.1:$port" --db "$data/jamz.db" --data-dir "$data/server" > "$data/server.out" 2> "$data/server.log" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q 'listening on' "$data/server.out" 2>/dev/null && break
  kill -0 $server_pid 2>/dev/null || { cat "$data/server.log" >&2; exit 1; }
  sleep 0.1
done
log "embedded server on $server (log: $data/server.log)"

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
log "group $group"

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
played=""
"$jamz" node --server "$server" --group "$group" --name "Demo car" --output "$output" --json <&3 |
  while IFS= read -r line; do
    printf '%s\n' "$line"
    if [ -z "$played" ] && [[ "$line" == *'"event":"controller"'* ]]; then
      played=1
      echo '{"cmd":"play"}' >&3
    fi
  done
