# shellcheck shell=bash
# Sourced by scripts/test.sh: starts a private PulseAudio with a null sink named "jamz_test" for
# jamz-audio's real-time tests (docs/architecture.md, real-time audio without a sound card) and exports what they need:
#   PULSE_SERVER, XDG_RUNTIME_DIR   where clients (cpal via ALSA's pulse plugin, parec) connect
#   PULSE_SINK, JAMZ_PULSE_SINK     the null sink; its monitor is "$JAMZ_PULSE_SINK.monitor"
# Idempotent (reuses a daemon that already answers). If PulseAudio is missing or cannot start,
# it exports nothing and the real-time tests report "skipped: no PulseAudio"; unless
# JAMZ_REQUIRE_PULSE is set (CI, .ci/run): then every such path fails the run with its reason.
# Runs under the caller's `set -euo pipefail`, so every command here is guarded.

# Says why PulseAudio is unavailable; fails (status 1) when JAMZ_REQUIRE_PULSE is set.
jamz_pulse_unavailable() {
  if [ -n "${JAMZ_REQUIRE_PULSE:-}" ]; then
    echo "[pulseaudio] $1; JAMZ_REQUIRE_PULSE is set (CI): failing instead of skipping" >&2
    return 1
  fi
  echo "[pulseaudio] $1: real-time audio tests will be skipped" >&2
  return 0
}

jamz_pulse_start() {
  # JAMZ_PULSE_DIR only for tests/tests/env_hooks.rs (a directory that cannot be made).
  local dir="${JAMZ_PULSE_DIR:-/tmp/jamz-pulse}"
  local sink=jamz_test
  # 50 kHz: one frame is exactly 20 us, so the null sink does not drift against the monotonic
  # clock (a 48 kHz sink ran 75-740 ppm fast; docs/architecture.md ("real-time audio without a sound card")).
  local rate=50000
  if ! command -v pulseaudio >/dev/null 2>&1 || ! command -v pactl >/dev/null 2>&1; then
    jamz_pulse_unavailable "pulseaudio or pactl not installed (scripts/apt)"
    return
  fi
  if ! mkdir -p "$dir/runtime" "$dir/home/.config/pulse" || ! chmod 700 "$dir" "$dir/runtime"; then
    jamz_pulse_unavailable "cannot make its directories under $dir"
    return
  fi
  if ! printf 'alternate-sample-rate = %s\ndefault-sample-rate = %s\n' "$rate" "$rate" \
    >"$dir/home/.config/pulse/daemon.conf"; then
    jamz_pulse_unavailable "cannot write $dir/home/.config/pulse/daemon.conf"
    return
  fi
  local server="unix:$dir/runtime/pulse/native"
  if ! PULSE_SERVER="$server" timeout 5 pactl info >/dev/null 2>&1; then
    # HOME only for the daemon: its config and cookie stay private, and cargo keeps the real HOME.
    # auth-anonymous: clients need no cookie. --system=false and -n: no user or system config.
    HOME="$dir/home" XDG_RUNTIME_DIR="$dir/runtime" timeout 20 pulseaudio \
      --daemonize=yes --exit-idle-time=-1 --system=false -n --log-target=stderr --log-level=error \
      --load="module-native-protocol-unix auth-anonymous=1 socket=$dir/runtime/pulse/native" \
      --load="module-null-sink sink_name=$sink channels=2 rate=$rate" >/dev/null 2>&1 || true
    local i
    for i in $(seq 1 50); do
      PULSE_SERVER="$server" timeout 5 pactl info >/dev/null 2>&1 && break
      sleep 0.1
    done
  fi
  if PULSE_SERVER="$server" timeout 5 pactl list short sinks 2>/dev/null | grep -q "$sink"; then
    export XDG_RUNTIME_DIR="$dir/runtime"
    export PULSE_SERVER="$server"
    export PULSE_SINK="$sink"
    export JAMZ_PULSE_SINK="$sink"
    PULSE_SERVER="$server" pactl set-default-sink "$sink" >/dev/null 2>&1 || true
    echo "[pulseaudio] null sink $sink at $rate Hz on $server" >&2
  else
    jamz_pulse_unavailable "could not start, or its null sink $sink is missing"
    return
  fi
  return 0
}
jamz_pulse_status=0
jamz_pulse_start || jamz_pulse_status=$?
unset -f jamz_pulse_start jamz_pulse_unavailable
[ "$jamz_pulse_status" -eq 0 ]
