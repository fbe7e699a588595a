#!/usr/bin/env bash
# Prints the app's cold start to first paint (ms) and its idle memory (RSS and PSS of
# the app and its WebKit processes), under Xvfb. Usage: scripts/app-startup.sh [BINARY] [RUNS]
# Default binary: target/release/trafficjamz if built, else target/debug/trafficjamz
# (build it with the UI inside: `npx tauri build --bundles deb` or
# `npm run build && cargo build -p trafficjamz --features tauri/custom-protocol`).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
bin="${1:-}"
if [ -z "$bin" ]; then
  if [ -x "$target/release/trafficjamz" ]; then bin="$target/release/trafficjamz"; else bin="$target/debug/trafficjamz"; fi
fi
runs="${2:-3}"
[ -x "$bin" ] || { echo "no app binary at $bin" >&2; exit 1; }
if [ -z "${DISPLAY:-}" ]; then
  exec xvfb-run -a -s "-screen 0 1280x900x24" "$0" "$bin" "$runs"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Sum of a /proc field (kB) over the app and its descendants.
tree_pids() {
  local p=$1
  echo "$p"
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree_pids "$c"; done
}
sum_kb() { # FIELD FILE PIDS...
  local field=$1 file=$2; shift 2
  local total=0 v
  for p in "$@"; do
    v=$(awk -v f="$field:" '$1==f {print $2}' /proc/"$p"/"$file" 2>/dev/null || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

echo "binary: $bin"
for i in $(seq 1 "$runs"); do
  out="$tmp/out.$i"
  start_ns=$(date +%s%N)
  JAMZ_REPORT_STARTUP=1 JAMZ_CONFIG_DIR="$tmp/cfg" JAMZ_CACHE_DIR="$tmp/cache" "$bin" >"$out" 2>"$tmp/err.$i" &
  pid=$!
  # Wait (bounded) for the UI's first-paint report.
  for _ in $(seq 1 600); do
    grep -q '^first-paint-ms' "$out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  paint_ns=$(date +%s%N)
  in_app=$(awk '/^first-paint-ms/ {print $2}' "$out")
  [ -n "$in_app" ] || { echo "run $i: no first paint reported"; cat "$tmp/err.$i" >&2; kill "$pid" 2>/dev/null || true; exit 1; }
  # Idle: sample until RSS settles (two samples 500 ms apart within 1 %), at most 10 s.
  prev=0 rss=0
  for _ in $(seq 1 20); do
    sleep 0.5
    mapfile -t pids < <(tree_pids "$pid")
    rss=$(sum_kb Rss smaps_rollup "${pids[@]}")
    if [ "$prev" -gt 0 ] && [ $(( (rss > prev ? rss - prev : prev - rss) * 100 )) -le "$prev" ]; then break; fi
    prev=$rss
  done
  pss=$(sum_kb Pss smaps_rollup "${pids[@]}")
  app_rss=$(sum_kb Rss smaps_rollup "$pid")
  printf 'run %d: cold start to first paint %d ms (wall, from exec) / %s ms (in-app, from run()); idle memory: RSS %d MiB (app %d MiB + %d WebKit processes), PSS %d MiB\n' \
    "$i" $(( (paint_ns - start_ns) / 1000000 )) "$in_app" $((rss / 1024)) $((app_rss / 1024)) $(( ${#pids[@]} - 1 )) $((pss / 1024))
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
