#!/usr/bin/env bash
# run_distributed.sh <ems-binary> — two ws replicas over PostgreSQL and RabbitMQ.
#
# Starts, in a temp dir and on free loopback ports, a private PostgreSQL
# (databases ems_auth and ems_ws), a private RabbitMQ, the auth role (to
# register and sign in) and two `ems serve --role ws` processes sharing
# ems_ws, each with its own REST port, WebSocket port and replica id.  Then
# ws_distributed.py connects an administrator to one replica and a client
# to the other and checks that chat, typing, read receipts, presence and
# notifications cross between them.  Everything is stopped by PID on exit
# and the temp dir removed.  Exit status: the suite's, or 1 if a process
# died or reported a sanitizer error.
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 <path-to-ems-binary>" >&2
  exit 2
fi
ems=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
src=${EMS_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
pg="$src/tests/lib/pg.sh"
mq="$src/tests/lib/rabbitmq.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ems-ws-dist.XXXXXX")
chmod 711 "$tmp" # as root, PostgreSQL runs as postgres and must pass through
mkdir -p "$tmp/logs"
pids=()
pg_started=0
mq_started=0

alive() {
  local state
  state=$(sed -E 's/.*\) ([A-Z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do
    if ! alive "$pid"; then
      echo "run_distributed: process $pid was no longer running at the end (crashed?)"
      rc=1
    fi
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
  done
  [ "$mq_started" -eq 1 ] && bash "$mq" stop "$tmp/mq" >/dev/null 2>&1
  [ "$pg_started" -eq 1 ] && bash "$pg" stop "$tmp/pg" >/dev/null 2>&1
  if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$tmp"/logs/*.log 2>/dev/null; then
    echo "run_distributed: sanitizer errors in the logs:"
    grep -E -A 12 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$tmp"/logs/*.log | head -n 60
    rc=1
  fi
  if [ "$rc" -ne 0 ]; then
    for log in "$tmp"/logs/*.log; do
      echo "---- last lines of $(basename "$log")"
      tail -n 25 "$log"
    done
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_ports() { # n: n distinct free loopback ports (held together while chosen, so all differ)
  python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

read -r pg_port auth_port rest1 sock1 rest2 sock2 <<<"$(free_ports 6)"
rest_ports=("$rest1" "$rest2")
ws_ports=("$sock1" "$sock2")
bash "$pg" start "$tmp/pg" "$pg_port" >"$tmp/logs/pg-start.log" 2>&1
pg_started=1
bash "$pg" createdb "$tmp/pg" "$pg_port" ems_auth >/dev/null
bash "$pg" createdb "$tmp/pg" "$pg_port" ems_ws >/dev/null
amqp_port=$(bash "$mq" pick)
EMS_BROKER_OWNER_PID=$$ bash "$mq" start "$tmp/mq" "$amqp_port" >"$tmp/logs/mq-start.log" 2>&1
mq_started=1
bash "$mq" wait "$amqp_port" 60 >/dev/null

"$ems" keygen "$tmp/keys" >/dev/null
admin_password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
common=(EMS_BIND=127.0.0.1 EMS_SQL_DIR="$src/sql" DB_IP=127.0.0.1 DB_PORT="$pg_port" DB_USER=postgres
  RABBITMQ_HOST=127.0.0.1 RABBITMQ_PORT="$amqp_port" RABBITMQ_USERNAME=guest RABBITMQ_PASSWORD=guest
  EMS_JWT_PUBLIC_KEY_FILE="$tmp/keys/jwt-public.pem" EMS_LOGIN_RATE=100000)

env "${common[@]}" PORT="$auth_port" DB_DBNAME=ems_auth EMS_JWT_PRIVATE_KEY_FILE="$tmp/keys/jwt-private.pem" \
  EMS_ADMIN_PASSWORD="$admin_password" "$ems" serve --role auth >"$tmp/logs/auth.log" 2>&1 </dev/null &
pids+=($!)
for i in 0 1; do
  env "${common[@]}" PORT="${rest_ports[$i]}" EMS_WS_PORT="${ws_ports[$i]}" EMS_WS_REPLICA_ID="test-$((i + 1))" \
    AUTH_SERVICE_HOST="http://127.0.0.1:$auth_port" \
    DB_DBNAME=ems_ws "$ems" serve --role ws >"$tmp/logs/ws-$((i + 1)).log" 2>&1 </dev/null &
  pids+=($!)
done

for port in "$auth_port" "${rest_ports[@]}"; do
  ready=0
  for _ in $(seq 300); do
    if python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" \
      "http://127.0.0.1:$port/readyz" 2>/dev/null; then
      ready=1
      break
    fi
    sleep 0.1
  done
  if [ "$ready" -ne 1 ]; then
    echo "run_distributed: the process on port $port did not become ready"
    exit 1
  fi
done

set +e
AUTH_URL="http://127.0.0.1:$auth_port" REST_URLS="http://127.0.0.1:${rest_ports[0]} http://127.0.0.1:${rest_ports[1]}" \
  WS_PORTS="${ws_ports[*]}" AMQP_URL="amqp://guest:guest@127.0.0.1:$amqp_port" ADMIN_USERNAME=admin \
  ADMIN_PASSWORD="$admin_password" python3 "$here/ws_distributed.py"
status=$?
set -e
exit "$status"
