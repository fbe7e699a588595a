# shellcheck shell=bash
# Sourced by scripts/test.sh: starts a private Redis (Debian's redis-server, a fresh
# directory under /tmp, loopback only, its own port, no persistence) for the jamz-server
# tests that run several server processes as one (deploy/scale-out.md), and exports:
#   JAMZ_TEST_REDIS_URL   redis://127.0.0.1:PORT/ (tests take a key prefix of their own)
# Redis is stopped and its directory removed when the sourcing shell exits. If redis-server
# is missing or cannot start, it exports nothing and those tests report "skipped: no Redis";
# unless JAMZ_REQUIRE_REDIS is set (CI, .ci/run): then the run fails with the reason.
# JAMZ_REDIS_DIR, JAMZ_REDIS_PORT and JAMZ_REDIS_BIN override the directory
# (/tmp/jamz-redis), port (56379) and program (redis-server on PATH).
# Runs under the caller's `set -euo pipefail`, so every command here is guarded.

jamz_redis_unavailable() {
  if [ -n "${JAMZ_REQUIRE_REDIS:-}" ]; then
    echo "[redis] $1; JAMZ_REQUIRE_REDIS is set (CI): failing instead of skipping" >&2
    return 1
  fi
  echo "[redis] $1: the Redis tests will be skipped" >&2
  return 0
}

jamz_redis_start() {
  local dir="${JAMZ_REDIS_DIR:-/tmp/jamz-redis}"
  local port="${JAMZ_REDIS_PORT:-56379}"
  local bin="${JAMZ_REDIS_BIN:-redis-server}"
  if ! command -v "$bin" >/dev/null 2>&1; then
    jamz_redis_unavailable "redis-server not found: Redis is not installed (scripts/apt/redis.txt)"
    return
  fi
  # A server left by an earlier run that did not exit cleanly: stopped, then a fresh one.
  if [ -f "$dir/redis.pid" ]; then
    kill "$(cat "$dir/redis.pid")" >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  if ! mkdir -p "$dir" 2>/dev/null; then
    jamz_redis_unavailable "cannot make its directory $dir"
    return
  fi
  # Loopback only, no persistence, daemonized with its pid in the directory.
  if ! "$bin" --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    >"$dir/start.log" 2>&1; then
    jamz_redis_unavailable "could not start: $(tail -n 3 "$dir/start.log" "$dir/redis.log" 2>/dev/null | tr '\n' ' ')"
    return
  fi
  # Ready when it answers PING (bounded: 10 s).
  local i
  for i in $(seq 1 100); do
    # (The group keeps the 2>/dev/null to the exec: on a bare exec it would be the shell's.)
    if [ -f "$dir/redis.pid" ] && { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      printf 'PING\r\n' >&3
      local reply=""
      read -r -t 2 reply <&3 || true
      exec 3>&- 3<&-
      case "$reply" in +PONG*) break ;; esac
    fi
    sleep 0.1
    if [ "$i" -eq 100 ]; then
      jamz_redis_unavailable "could not start: no answer on 127.0.0.1:$port ($(tail -n 3 "$dir/redis.log" 2>/dev/null | tr '\n' ' '))"
      return
    fi
  done
  export JAMZ_TEST_REDIS_URL="redis://127.0.0.1:$port/"
  # Stopped and removed with the shell that sourced this (after any EXIT trap it had).
  local previous
  # `trap -p` quotes the command for the shell: eval takes the quoting off again.
  eval "previous=$(trap -p EXIT | sed -e 's/^trap -- //' -e 's/ EXIT$//')"
  # shellcheck disable=SC2064
  trap "${previous:+$previous; }kill \$(cat '$dir/redis.pid' 2>/dev/null) >/dev/null 2>&1 || true; rm -rf '$dir'" EXIT
  echo "[redis] test server at $JAMZ_TEST_REDIS_URL (files in $dir)" >&2
  return 0
}
jamz_redis_status=0
jamz_redis_start || jamz_redis_status=$?
unset -f jamz_redis_start jamz_redis_unavailable
[ "$jamz_redis_status" -eq 0 ]
