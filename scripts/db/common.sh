# Shared helpers for scripts/db/*.sh (sourced, not executed).
# Database servers refuse to run as root (PostgreSQL) or should not (MariaDB): when invoked as root, the servers
# run as the system user "tessera-db", created on first use.

DB_USER="${TESSERA_DB_USER:-tessera-db}"

die() {
  echo "db: $*" >&2
  exit 1
}

# Runs a command as the database user (directly when not root).
as_db_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$DB_USER" -- "$@"
  else
    "$@"
  fi
}

# Creates the database user when running as root and it does not exist yet.
ensure_db_user() {
  if [ "$(id -u)" -ne 0 ]; then
    return 0
  fi
  if ! id -u "$DB_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$DB_USER" 2>/dev/null ||
      id -u "$DB_USER" >/dev/null 2>&1 || die "cannot create system user '$DB_USER'"
  fi
}

# Gives the database user a directory (mode 0700).
own_dir() {
  mkdir -p "$1"
  chmod 0700 "$1"
  if [ "$(id -u)" -eq 0 ]; then
    chown "$DB_USER" "$1"
    # The user must be able to traverse to its directory.
    chmod o+x "$(dirname "$1")"
  fi
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
