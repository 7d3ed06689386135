#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL server from Debian's packages, on loopback only, in a temp data dir.
#   scripts/db/postgres.sh install          apt-get install postgresql (root only)
#   scripts/db/postgres.sh start DIR [PORT] initdb + start; prints the connection URL on stdout
#   scripts/db/postgres.sh stop DIR         stops the server started in DIR
#   scripts/db/postgres.sh available        exits 0 when the binaries are installed
# Authentication is "trust" for the loopback socket only: the server is for tests and local development.
set -euo pipefail
. "$(dirname "$0")/common.sh"

pg_bin() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then
    echo "$d"
  elif command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  else
    return 1
  fi
}

cmd="${1:-}"
case "$cmd" in
  available)
    pg_bin >/dev/null
    ;;
  install)
    [ "$(id -u)" -eq 0 ] || die "install must run as root"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    ;;
  start)
    dir="${2:?usage: postgres.sh start DIR [PORT]}"
    port="${3:-$(free_port)}"
    bin="$(pg_bin)" || die "postgresql is not installed (scripts/db/postgres.sh install)"
    ensure_db_user
    own_dir "$dir"
    own_dir "$dir/data"
    own_dir "$dir/run"
    as_db_user "$bin/initdb" -D "$dir/data" -U tessera --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    as_db_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/run/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/run -c max_connections=200" start \
      >/dev/null || { cat "$dir/run/server.log" >&2; die "pg_ctl start failed"; }
    echo "$port" >"$dir/port"
    as_db_user "$bin/createdb" -h 127.0.0.1 -p "$port" -U tessera tessera
    echo "postgres://tessera@127.0.0.1:$port/tessera"
    ;;
  stop)
    dir="${2:?usage: postgres.sh stop DIR}"
    bin="$(pg_bin)" || die "postgresql is not installed"
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_db_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    ;;
  *)
    die "usage: postgres.sh install|available|start DIR [PORT]|stop DIR"
    ;;
esac
