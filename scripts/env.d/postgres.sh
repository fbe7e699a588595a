# shellcheck shell=bash
# Sourced by scripts/test.sh: starts a private PostgreSQL (scripts/pg-cluster.sh: Debian's
# postgresql, a fresh data directory under /tmp, loopback only, its own port) for the
# jamz-server tests that run on both storage engines (docs/architecture.md, "Storage"), and
# exports:
#   JAMZ_TEST_POSTGRES_URL   a superuser's URL; each test makes a fresh database of its own
#   JAMZ_PG_CLUSTER          scripts/pg-cluster.sh, for tests that start a cluster of their own
# The cluster is stopped and removed when the sourcing shell exits. If PostgreSQL is missing
# or cannot start, it exports nothing and those tests report "skipped: no PostgreSQL"; unless
# JAMZ_REQUIRE_POSTGRES is set (CI, .ci/run): then the run fails with the reason.
# JAMZ_PG_DIR and JAMZ_PG_PORT override the directory (/tmp/jamz-postgres) and port (55432).
# Runs under the caller's `set -euo pipefail`, so every command here is guarded.

jamz_pg_unavailable() {
  if [ -n "${JAMZ_REQUIRE_POSTGRES:-}" ]; then
    echo "[postgres] $1; JAMZ_REQUIRE_POSTGRES is set (CI): failing instead of skipping" >&2
    return 1
  fi
  echo "[postgres] $1: the PostgreSQL tests will be skipped" >&2
  return 0
}

jamz_pg_start() {
  local dir="${JAMZ_PG_DIR:-/tmp/jamz-postgres}"
  local port="${JAMZ_PG_PORT:-55432}"
  local script
  script="$(pwd)/scripts/pg-cluster.sh"
  # A cluster left by an earlier run that did not exit cleanly: gone, then a fresh one.
  "$script" destroy "$dir" >/dev/null 2>&1 || true
  local url err
  if ! err=$("$script" start "$dir" "$port" 2>&1 >"$dir.url"); then
    rm -f "$dir.url"
    jamz_pg_unavailable "could not start: ${err:-no reason given}"
    return
  fi
  url=$(cat "$dir.url")
  rm -f "$dir.url"
  export JAMZ_TEST_POSTGRES_URL="$url"
  export JAMZ_PG_CLUSTER="$script"
  # Stopped and removed with the shell that sourced this (after any EXIT trap it had).
  local previous
  # `trap -p` quotes the command for the shell: eval takes the quoting off again.
  eval "previous=$(trap -p EXIT | sed -e 's/^trap -- //' -e 's/ EXIT$//')"
  # shellcheck disable=SC2064
  trap "${previous:+$previous; }'$script' destroy '$dir' >/dev/null 2>&1 || true" EXIT
  echo "[postgres] test cluster at $url (data in $dir)" >&2
  return 0
}
jamz_pg_status=0
jamz_pg_start || jamz_pg_status=$?
unset -f jamz_pg_start jamz_pg_unavailable
[ "$jamz_pg_status" -eq 0 ]
