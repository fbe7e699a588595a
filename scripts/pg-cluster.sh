#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests (scripts/env.d/postgres.sh, and the server
# tests that stop and restart a database of their own): Debian's postgresql package
# (scripts/apt/postgres.txt), a data directory of its own, loopback only, on its own port.
#
#   scripts/pg-cluster.sh start DIR PORT   creates the cluster in DIR if missing, starts
#                                          it on 127.0.0.1:PORT, prints its URL
#   scripts/pg-cluster.sh stop DIR         stops it (fast: clients are cut off)
#   scripts/pg-cluster.sh destroy DIR      stops it and removes DIR
#
# PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` user
# (or `nobody` where there is none) through runuser/setpriv; otherwise as the caller.
# Its only role is the superuser `jamz`, trusted on loopback and its private socket:
# a test cluster, never a deployment's (deploy/README.md).
set -euo pipefail

die() {
  echo "[pg-cluster] $*" >&2
  exit 1
}

# The directory of initdb/pg_ctl: $JAMZ_PG_BIN, else Debian's newest
# /usr/lib/postgresql/*/bin (not on PATH), else PATH.
pg_bin() {
  if [ -n "${JAMZ_PG_BIN:-}" ]; then
    [ -x "$JAMZ_PG_BIN/initdb" ] || die "initdb not found in JAMZ_PG_BIN=$JAMZ_PG_BIN"
    echo "$JAMZ_PG_BIN"
    return
  fi
  local d
  d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then
    echo "$d"
    return
  fi
  command -v initdb >/dev/null 2>&1 || die "initdb not found: PostgreSQL is not installed (scripts/apt/postgres.txt)"
  dirname "$(command -v initdb)"
}

# Runs a command as the cluster's owner.
as_owner() {
  if [ "$(id -u)" -ne 0 ]; then
    "$@"
  elif id postgres >/dev/null 2>&1; then
    runuser -u postgres -- "$@"
  else
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
  fi
}

owner() {
  if [ "$(id -u)" -ne 0 ]; then
    id -un
  elif id postgres >/dev/null 2>&1; then
    echo postgres
  else
    echo nobody
  fi
}

[ $# -ge 2 ] || die "usage: $0 start DIR PORT | stop DIR | destroy DIR"
cmd=$1
dir=$2
case "$dir" in /*) ;; *) die "DIR must be an absolute path: $dir" ;; esac
bin=$(pg_bin)

case "$cmd" in
  start)
    port=${3:?"usage: $0 start DIR PORT"}
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      mkdir -p "$dir/data" "$dir/run" || die "cannot make $dir"
      chown -R "$(owner)" "$dir" || die "cannot give $dir to $(owner)"
      chmod 700 "$dir" "$dir/data"
      as_owner test -w "$dir/data" || die "$(owner) cannot write $dir/data (a parent directory closed to it?)"
      as_owner "$bin/initdb" -D "$dir/data" -U jamz --auth=trust --encoding=UTF8 --locale=C \
        --no-instructions >"$dir/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$dir/initdb.log")"
      # Loopback and the private socket only; settings kept in the cluster so that a
      # restart (`start` again) needs no options. fsync off: a test cluster.
      as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/run'
fsync = off
max_connections = 200
EOF
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null ||
        die "could not start: $(tail -n 5 "$dir/server.log" 2>/dev/null)"
    fi
    echo "postgres://jamz@127.0.0.1:$port/postgres"
    ;;
  stop)
    if [ -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
    ;;
  destroy)
    if [ -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) die "unknown command $cmd" ;;
esac
