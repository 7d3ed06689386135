#!/usr/bin/env bash
# Starts and stops a throwaway MariaDB server from Debian's packages, on loopback only, in a temp data dir.
#   scripts/db/mariadb.sh install          apt-get install mariadb-server (root only)
#   scripts/db/mariadb.sh start DIR [PORT] install the system tables + start; prints the connection URL on stdout
#   scripts/db/mariadb.sh stop DIR         stops the server started in DIR
#   scripts/db/mariadb.sh available        exits 0 when the binaries are installed
# The server's root account is reachable only through the Unix socket inside DIR; the printed URL uses a
# "tessera" account limited to 127.0.0.1 (allowed to create databases, so tests can use one per case).
set -euo pipefail
. "$(dirname "$0")/common.sh"

mysqld_bin() {
  local b
  for b in mariadbd mysqld; do
    if [ -x "/usr/sbin/$b" ]; then echo "/usr/sbin/$b"; return 0; fi
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
  done
  return 1
}

cmd="${1:-}"
case "$cmd" in
  available)
    mysqld_bin >/dev/null && command -v mariadb-install-db >/dev/null
    ;;
  install)
    [ "$(id -u)" -eq 0 ] || die "install must run as root"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null
    ;;
  start)
    dir="${2:?usage: mariadb.sh start DIR [PORT]}"
    port="${3:-$(free_port)}"
    bin="$(mysqld_bin)" || die "mariadb-server is not installed (scripts/db/mariadb.sh install)"
    ensure_db_user
    own_dir "$dir"
    own_dir "$dir/data"
    own_dir "$dir/run"
    as_db_user mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
      --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; die "mariadb-install-db failed"; }
    sock="$dir/run/mysqld.sock"
    # setsid + nohup: the server outlives this script and is not killed with the caller's process group.
    as_db_user setsid nohup "$bin" --no-defaults --datadir="$dir/data" --socket="$sock" --port="$port" \
      --bind-address=127.0.0.1 --pid-file="$dir/run/mysqld.pid" --log-error="$dir/run/server.log" \
      --skip-name-resolve --innodb-buffer-pool-size=64M --max-connections=200 \
      </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 150); do
      if mariadb-admin --no-defaults -S "$sock" -u root ping >/dev/null 2>&1; then break; fi
      sleep 0.2
    done
    mariadb-admin --no-defaults -S "$sock" -u root ping >/dev/null 2>&1 ||
      { cat "$dir/run/server.log" >&2 || true; die "mariadbd did not start"; }
    echo "$port" >"$dir/port"
    mariadb --no-defaults -S "$sock" -u root <<SQL
CREATE DATABASE tessera CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER 'tessera'@'127.0.0.1' IDENTIFIED BY 'tessera';
GRANT ALL PRIVILEGES ON *.* TO 'tessera'@'127.0.0.1';
SQL
    echo "mysql://tessera:tessera@127.0.0.1:$port/tessera"
    ;;
  stop)
    dir="${2:?usage: mariadb.sh stop DIR}"
    sock="$dir/run/mysqld.sock"
    if [ -S "$sock" ]; then
      mariadb-admin --no-defaults -S "$sock" -u root shutdown >/dev/null 2>&1 || true
    fi
    if [ -f "$dir/run/mysqld.pid" ]; then
      pid="$(cat "$dir/run/mysqld.pid")"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    ;;
  *)
    die "usage: mariadb.sh install|available|start DIR [PORT]|stop DIR"
    ;;
esac
