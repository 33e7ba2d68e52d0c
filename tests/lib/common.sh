# common.sh — the pieces the shell harnesses of the tests and benchmarks share; source it.
#
# A harness starts real servers on loopback ports in a temp dir, runs a suite against them and,
# on every way out, stops what it started by PID, fails on a sanitizer report in any log and
# shows the ends of the logs when something failed.  This file offers those steps: ems_args and
# make_tmp to begin; free_ports and free_port_base to choose ports; random_token for passwords;
# alive, wait_ready, stop_pids, stop_pidfiles and still_running for processes; backends_start,
# backends_stop and set_role_env for a private PostgreSQL and RabbitMQ (pg.sh, rabbitmq.sh) under
# distributed roles; logs_clean and tail_logs for the logs.  Only ems_args exits; every other
# function returns a status, so it works the same with or without `set -e`.
# shellcheck shell=bash
# shellcheck disable=SC2034  # ems and role_env are set here for the sourcing script

TESTS_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SANITIZER_RE='ERROR: (Address|Leak|Thread)Sanitizer|runtime error:'

# ems_args <count> <usage> <args...>: exits 2 with "usage: $0 <usage>" unless there are <count>
# arguments and the first is executable; sets ems to its absolute path.
ems_args() {
  local count=$1 usage=$2
  shift 2
  if [ $# -ne "$count" ] || [ ! -x "${1:-}" ]; then
    echo "usage: $0 $usage" >&2
    exit 2
  fi
  ems=$(realpath "$1")
}

# make_tmp <name> <mode>: prints a new temp dir ems-<name>.XXXXXX with that mode (711 lets a
# PostgreSQL running as its own user pass through).
make_tmp() {
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/ems-$1.XXXXXX") && chmod "$2" "$dir" && echo "$dir"
}

# free_ports <n>: n free loopback ports, bound together while chosen so that all differ.
free_ports() {
  python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# free_port_base <lo> <hi>: a base (a multiple of 40 in lo..hi) whose block base..base+39 for
# deploy/local/cluster.sh is free right now, and so are its broker's distribution and epmd
# ports (the AMQP port base+31 shifted by 10000 and 20000, as rabbitmq.sh derives them).
free_port_base() {
  python3 - "$1" "$2" <<'EOF'
import random, socket, sys
lo, hi = int(sys.argv[1]), int(sys.argv[2])
for _ in range(50):
    base = random.randrange(lo, hi, 40)
    socks = []
    try:
        for p in [*range(base, base + 40), base + 31 + 10000, base + 31 + 20000]:
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    sys.exit(0)
sys.exit("no free block of ports")
EOF
}

# random_token <bytes>: a URL-safe random string (passwords, ingest tokens, keys).
random_token() {
  python3 -c 'import secrets, sys; print(secrets.token_urlsafe(int(sys.argv[1])))' "$1"
}

# alive <pid>: the process runs and is not a zombie waiting for its reaper.
alive() {
  local state
  state=$(sed -E 's/.*\) ([A-Z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# wait_ready <base-url> <seconds> [pid]: polls <base-url>/readyz every 0.1 s until it answers
# 2xx; fails after <seconds>, or at once when <pid> is given and has exited.
wait_ready() {
  local url=$1/readyz deadline=$((SECONDS + $2)) pid=${3:-}
  while :; do
    curl -fs --noproxy '*' -m 1 -o /dev/null "$url" 2>/dev/null && return 0
    if [ -n "$pid" ] && ! alive "$pid"; then return 1; fi
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# stop_pids <pid>...: SIGTERM to all, SIGKILL to any still running 10 s later, then reaps the
# ones that are our children.
stop_pids() {
  local pid deadline=$((SECONDS + 10))
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if alive "$pid"; then
      echo "stop: pid $pid did not exit within 10 s of SIGTERM: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

# stop_pidfiles <pidfile>...: stop_pids on the PIDs the files hold; removes the files, so that a
# later cleanup does not stop those PIDs again.
stop_pidfiles() {
  local f pids=()
  for f in "$@"; do
    if [ -s "$f" ]; then pids+=("$(cat "$f")"); fi
    rm -f "$f"
  done
  stop_pids "${pids[@]}"
}

# still_running <what> <pid>: true if it runs; otherwise says that <what> crashed.
still_running() {
  alive "$2" && return 0
  echo "$1 was no longer running at the end (crashed?)"
  return 1
}

# backends_start <dir> <pg-port> <database>...: a private PostgreSQL in <dir>/pg with those
# databases and a RabbitMQ in <dir>/mq on a port it picks (set in amqp_port), their start logs
# in <dir>/logs.  The broker stops by itself if this shell dies without backends_stop.
backends_start() {
  local dir=$1 pg_port=$2 db
  shift 2
  mkdir -p "$dir/logs"
  bash "$TESTS_LIB/pg.sh" start "$dir/pg" "$pg_port" >"$dir/logs/pg-start.log" 2>&1 || return 1
  for db in "$@"; do
    bash "$TESTS_LIB/pg.sh" createdb "$dir/pg" "$pg_port" "$db" >/dev/null || return 1
  done
  amqp_port=$(bash "$TESTS_LIB/rabbitmq.sh" pick) || return 1
  EMS_BROKER_OWNER_PID=$$ bash "$TESTS_LIB/rabbitmq.sh" start "$dir/mq" "$amqp_port" \
    >"$dir/logs/mq-start.log" 2>&1 || return 1
  bash "$TESTS_LIB/rabbitmq.sh" wait "$amqp_port" 60 >/dev/null
}

# backends_stop <dir>: stops what backends_start started there; nothing started is no error.
backends_stop() {
  bash "$TESTS_LIB/rabbitmq.sh" stop "$1/mq" >/dev/null 2>&1
  bash "$TESTS_LIB/pg.sh" stop "$1/pg" >/dev/null 2>&1
  return 0
}

# set_role_env <sql-dir> <keys-dir> <pg-port> <amqp-port>: sets the array role_env to the
# environment every distributed role started beside backends_start shares (add PORT, DB_DBNAME...).
set_role_env() {
  role_env=(EMS_BIND=127.0.0.1 EMS_SQL_DIR="$1" DB_IP=127.0.0.1 DB_PORT="$3" DB_USER=postgres
    RABBITMQ_HOST=127.0.0.1 RABBITMQ_PORT="$4" RABBITMQ_USERNAME=guest RABBITMQ_PASSWORD=guest
    EMS_JWT_PUBLIC_KEY_FILE="$2/jwt-public.pem")
}

# logs_clean <heading> <log>...: false, after printing <heading> and the first reports, when a
# log holds a sanitizer report (a sanitizer build writes them to stderr, some only at exit).
logs_clean() {
  local heading=$1
  shift
  grep -qsE "$SANITIZER_RE" "$@" || return 0
  echo "$heading"
  grep -sE -A 12 "$SANITIZER_RE" "$@" | head -n 60
  return 1
}

# tail_logs <lines> <log>...: the last lines of each log that is not empty, under its name.
tail_logs() {
  local lines=$1 log
  shift
  for log in "$@"; do
    [ -s "$log" ] || continue
    echo "---- last lines of $log"
    tail -n "$lines" "$log"
  done
}
