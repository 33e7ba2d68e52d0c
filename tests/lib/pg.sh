#!/usr/bin/env bash
# pg.sh — a private PostgreSQL 15 for the tests and the local cluster.
#
#   pg.sh start <dir> <port>            initdb <dir>/data on first use, then start the server on
#                                       127.0.0.1:<port> only, its socket inside <dir>
#   pg.sh stop <dir>                    fast shutdown of the server whose PID is in
#                                       <dir>/data/postmaster.pid; nothing to do is not an error
#   pg.sh createdb <dir> <port> <name>  creates database <name> unless it exists
#
# The superuser is "postgres" with trust authentication (loopback and socket only), so a client
# connects with postgresql://postgres@127.0.0.1:<port>/<name>.  initdb refuses to run as root:
# as root, <dir> is handed to the postgres user and the server runs as that user.
# Extra server settings may be passed in PG_OPTS (e.g. PG_OPTS="-c fsync=off").
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

die() { echo "pg.sh: $*" >&2; exit 1; }

usage() { die "usage: pg.sh start <dir> <port> | stop <dir> | createdb <dir> <port> <name>"; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

abs_dir() {
  case "$1" in
    *[[:space:]]*) die "no spaces in the folder, please: '$1'" ;;
  esac
  realpath -m -- "$1"
}

check_port() {
  [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1024 ] && [ "$1" -le 65535 ] || die "bad port '$1'"
}

# The PID in postmaster.pid if that process is a live postgres, else nothing.
server_pid() {
  local pidfile=$1/data/postmaster.pid pid state
  [ -f "$pidfile" ] || return 0
  pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  [ -r "/proc/$pid/stat" ] || return 0
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [ "$state" != "Z" ] || return 0 # exited, waiting for its parent to reap it
  [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = postgres ] || return 0
  echo "$pid"
}

cmd_start() {
  [ $# -eq 2 ] || usage
  local dir port
  dir=$(abs_dir "$1")
  port=$2
  check_port "$port"
  # Unix socket paths are limited to 107 bytes: "<dir>/.s.PGSQL.<port>" must fit.
  [ $((${#dir} + 17)) -le 107 ] || die "folder path too long for a socket: $dir"
  [ -x "$PGBIN/initdb" ] || die "PostgreSQL 15 not found in $PGBIN (apt-get install postgresql)"

  if [ "$(id -u)" -eq 0 ]; then
    install -d -m 0700 -o postgres -g postgres "$dir"
    chown postgres:postgres "$dir"
    runuser -u postgres -- test -w "$dir" || die "user postgres cannot reach $dir (check its parents' permissions)"
  else
    install -d -m 0700 "$dir"
  fi

  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; die "initdb failed in $dir"; }
  fi

  if [ -n "$(server_pid "$dir")" ]; then
    echo "pg.sh: already running in $dir"
    return 0
  fi

  if ! as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $dir ${PG_OPTS:-}" start >/dev/null; then
    tail -n 20 "$dir/server.log" >&2 || true
    die "server did not start in $dir on port $port"
  fi
}

cmd_stop() {
  [ $# -eq 1 ] || usage
  local dir pid
  dir=$(abs_dir "$1")
  pid=$(server_pid "$dir")
  [ -n "$pid" ] || return 0
  kill -INT "$pid" 2>/dev/null || true # SIGINT = fast shutdown: roll back sessions, checkpoint, exit
  for _ in $(seq 1 300); do
    [ -n "$(server_pid "$dir")" ] || return 0
    sleep 0.1
  done
  echo "pg.sh: fast shutdown timed out, stopping $pid immediately" >&2
  kill -QUIT "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    [ -n "$(server_pid "$dir")" ] || return 0
    sleep 0.1
  done
  die "server $pid in $dir did not stop"
}

cmd_createdb() {
  [ $# -eq 3 ] || usage
  local dir port name exists
  dir=$(abs_dir "$1")
  port=$2
  name=$3
  check_port "$port"
  [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad database name '$name'"
  exists=$(psql -h "$dir" -p "$port" -U postgres -d postgres -XtAq \
    -c "SELECT 1 FROM pg_database WHERE datname = '$name'") || die "cannot reach the server in $dir"
  [ "$exists" = 1 ] && return 0
  createdb -h "$dir" -p "$port" -U postgres "$name"
}

[ $# -ge 1 ] || usage
command=$1
shift
case "$command" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  createdb) cmd_createdb "$@" ;;
  *) usage ;;
esac
