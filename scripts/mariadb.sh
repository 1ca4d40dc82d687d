#!/usr/bin/env bash
# A private MariaDB server for the ratings service's MySQL back end (tests and demos).
#
#   scripts/mariadb.sh start    install MariaDB if missing, initialise, start, seed
#   scripts/mariadb.sh stop     shut the server down cleanly
#   scripts/mariadb.sh status   exit 0 and say so when running, exit 1 otherwise
#   scripts/mariadb.sh env      print the MYSQL_DB_* settings for ratings v2
#
# The server runs as the current user with its data, socket, pid and log files under
# ${BOOKINFO_RUN_DIR:-<repo>/.run}/mariadb and listens on 127.0.0.1:${MARIADB_PORT:-13306}
# only, so it never clashes with a system database. The root password is `password`, the
# value Bookinfo's manifests use, and the seed (scripts/mariadb-init.sql) is the same data
# as Bookinfo's mysqldb image. Progress goes to stderr; only `env` writes to stdout.
set -euo pipefail

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="${BOOKINFO_RUN_DIR:-$repo_dir/.run}/mariadb"
data_dir="$run_dir/data"
socket="$run_dir/mariadb.sock"
# Unix socket paths are limited to about 107 bytes; a deep checkout would exceed it.
if ((${#socket} > 100)); then
  socket="${TMPDIR:-/tmp}/bookinfo-mariadb-$(id -u)-${MARIADB_PORT:-13306}.sock"
fi
pid_file="$run_dir/mariadb.pid"
log_file="$run_dir/mariadb.log"
port="${MARIADB_PORT:-13306}"
password="password"
seed_sql="$repo_dir/scripts/mariadb-init.sql"
start_timeout=30

say() { echo "mariadb.sh: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

usage() {
  echo "usage: $0 start|stop|status|env" >&2
  exit 64
}

case "$port" in
  '' | *[!0-9]*) die "MARIADB_PORT=\"$port\" is not a port number" ;;
esac
if ((port < 1 || port > 65535)); then
  die "MARIADB_PORT=$port is outside 1-65535"
fi

# Debian puts the server in /usr/sbin, which is not on every user's PATH.
find_tool() {
  local name
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
    if [[ -x "/usr/sbin/$name" ]]; then
      echo "/usr/sbin/$name"
      return 0
    fi
  done
  return 1
}

install_packages() {
  say "MariaDB is not installed; installing mariadb-server and mariadb-client with apt-get."
  local -a prefix=()
  if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      prefix=(sudo)
    else
      die "MariaDB is missing and installing it needs root (or sudo): apt-get install mariadb-server mariadb-client"
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || die "MariaDB is missing and apt-get is not available; install mariadb-server by hand"
  "${prefix[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >&2
  "${prefix[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    mariadb-server mariadb-client >&2
}

# Sets server, install_db, client and admin to the installed binaries.
locate_binaries() {
  server="$(find_tool mariadbd mysqld)" || return 1
  install_db="$(find_tool mariadb-install-db mysql_install_db)" || return 1
  client="$(find_tool mariadb mysql)" || return 1
  admin="$(find_tool mariadb-admin mysqladmin)" || return 1
}

# The pid of our server if it is alive, else nothing (and a non-zero status).
running_pid() {
  [[ -f "$pid_file" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$pid_file")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# Runs the client over our socket as root, with the password once it is set.
sql_as_root() {
  "$client" --no-defaults --protocol=socket --socket="$socket" --user=root --password="$password" "$@"
}

sql_as_root_without_password() {
  "$client" --no-defaults --protocol=socket --socket="$socket" --user=root "$@"
}

sql_over_tcp() {
  "$client" --no-defaults --protocol=tcp --host=127.0.0.1 --port="$port" --user=root --password="$password" "$@"
}

log_tail() {
  if [[ -f "$log_file" ]]; then
    say "last lines of $log_file:"
    tail -n 20 "$log_file" >&2
  fi
}

init_data_dir() {
  if [[ -d "$data_dir/mysql" ]]; then
    return 0
  fi
  say "Initialising a new data directory in $data_dir."
  mkdir -p "$data_dir"
  if ! "$install_db" --no-defaults --datadir="$data_dir" --user="$(id -un)" \
    --auth-root-authentication-method=normal --skip-test-db >>"$log_file" 2>&1; then
    log_tail
    # A half-initialised directory would make the next start skip initialisation.
    rm -rf "$data_dir"
    die "mariadb-install-db failed"
  fi
}

wait_until_up() {
  local deadline=$((SECONDS + start_timeout))
  while ((SECONDS < deadline)); do
    # ping succeeds as soon as the server answers, even before the password is known.
    if "$admin" --no-defaults --protocol=socket --socket="$socket" --user=root --connect-timeout=1 ping >/dev/null 2>&1; then
      return 0
    fi
    if [[ -n "${1:-}" ]] && ! kill -0 "$1" 2>/dev/null; then
      log_tail
      die "the server exited during startup"
    fi
    sleep 0.5
  done
  log_tail
  die "the server did not answer within ${start_timeout}s"
}

# Gives every root account the password `password` and adds root@'%' for TCP logins.
# A fresh data directory has password-less root accounts (localhost, 127.0.0.1, ::1 and
# the host name); the most specific one wins at login, so all of them need the password.
# The host-name account is left alone: with --skip-name-resolve it can never match.
secure_root() {
  if sql_over_tcp -e "SELECT 1" >/dev/null 2>&1; then
    return 0
  fi
  say "Setting the root password."
  local -a run=(sql_as_root)
  if ! sql_as_root -e "SELECT 1" >/dev/null 2>&1; then
    run=(sql_as_root_without_password)
  fi
  local hosts host statements=""
  hosts="$("${run[@]}" -N -B -e "SELECT Host FROM mysql.user WHERE User = 'root' AND Host IN ('localhost', '127.0.0.1', '::1')")"
  while IFS= read -r host; do
    [[ -n "$host" ]] && statements+="ALTER USER 'root'@'$host' IDENTIFIED BY '$password';"$'\n'
  done <<<"$hosts"
  "${run[@]}" <<SQL
$statements
CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
  sql_over_tcp -e "SELECT 1" >/dev/null 2>&1 || die "root cannot log in over TCP on 127.0.0.1:$port after setting the password"
}

cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    say "already running on 127.0.0.1:$port (pid $pid)."
    return 0
  fi
  if ! locate_binaries; then
    install_packages
    locate_binaries || die "MariaDB binaries still not found after installing"
  fi
  [[ -f "$seed_sql" ]] || die "seed file $seed_sql is missing"
  mkdir -p "$run_dir"
  init_data_dir
  rm -f "$pid_file"
  say "Starting $(basename "$server") on 127.0.0.1:$port (data in $data_dir)."
  # mariadbd refuses to run as root unless --user names it, hence --user.
  # skip-name-resolve: TCP logins match root@'%' without a reverse DNS lookup.
  nohup "$server" --no-defaults \
    --datadir="$data_dir" \
    --socket="$socket" \
    --port="$port" \
    --bind-address=127.0.0.1 \
    --user="$(id -un)" \
    --pid-file="$pid_file" \
    --log-error="$log_file" \
    --skip-name-resolve \
    --innodb-buffer-pool-size=32M \
    </dev/null >>"$log_file" 2>&1 &
  local server_pid=$!
  # A server that started but could not be set up must not linger half-configured
  # (the next `start` would just report it as running).
  trap 'kill -TERM "$server_pid" 2>/dev/null || true' EXIT
  wait_until_up "$server_pid"
  secure_root
  sql_as_root <"$seed_sql" || die "loading $seed_sql failed"
  trap - EXIT
  say "ready on 127.0.0.1:$port (pid $(running_pid || echo "$server_pid")); database test seeded."
}

cmd_stop() {
  local pid
  if ! pid="$(running_pid)"; then
    say "not running."
    rm -f "$pid_file"
    return 0
  fi
  say "Stopping the server (pid $pid)."
  if ! locate_binaries || ! "$admin" --no-defaults --protocol=socket --socket="$socket" --user=root \
    --password="$password" shutdown >/dev/null 2>&1; then
    kill -TERM "$pid" 2>/dev/null || true
  fi
  local deadline=$((SECONDS + start_timeout))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log_tail
      die "the server (pid $pid) did not stop within ${start_timeout}s"
    fi
    sleep 0.2
  done
  rm -f "$pid_file"
  say "stopped."
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    say "running on 127.0.0.1:$port (pid $pid), data in $data_dir."
    return 0
  fi
  say "not running."
  return 1
}

cmd_env() {
  echo "MYSQL_DB_HOST=127.0.0.1"
  echo "MYSQL_DB_PORT=$port"
  echo "MYSQL_DB_USER=root"
  echo "MYSQL_DB_PASSWORD=$password"
}

[[ $# -eq 1 ]] || usage
case "$1" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) usage ;;
esac
