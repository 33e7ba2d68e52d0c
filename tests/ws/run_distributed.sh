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

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"

ems_args 1 "<path-to-ems-binary>" "$@"
src=${EMS_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
tmp=$(make_tmp ws-dist 711) # as root, PostgreSQL runs as postgres and must pass through
mkdir -p "$tmp/logs"
pids=()

cleanup() {
  local rc=$? pid
  for pid in "${pids[@]}"; do still_running "run_distributed: process $pid" "$pid" || rc=1; done
  stop_pids "${pids[@]}"
  backends_stop "$tmp"
  logs_clean "run_distributed: sanitizer errors in the logs:" "$tmp"/logs/*.log || rc=1
  if [ "$rc" -ne 0 ]; then tail_logs 25 "$tmp"/logs/*.log; fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r pg_port auth_port rest1 sock1 rest2 sock2 <<<"$(free_ports 6)"
rest_ports=("$rest1" "$rest2")
ws_ports=("$sock1" "$sock2")
backends_start "$tmp" "$pg_port" ems_auth ems_ws

"$ems" keygen "$tmp/keys" >/dev/null
admin_password=$(random_token 18)
set_role_env "$src/sql" "$tmp/keys" "$pg_port" "$amqp_port"
role_env+=(EMS_LOGIN_RATE=100000)

env "${role_env[@]}" PORT="$auth_port" DB_DBNAME=ems_auth EMS_JWT_PRIVATE_KEY_FILE="$tmp/keys/jwt-private.pem" \
  EMS_ADMIN_PASSWORD="$admin_password" "$ems" serve --role auth >"$tmp/logs/auth.log" 2>&1 </dev/null &
pids+=($!)
for i in 0 1; do
  env "${role_env[@]}" PORT="${rest_ports[$i]}" EMS_WS_PORT="${ws_ports[$i]}" EMS_WS_REPLICA_ID="test-$((i + 1))" \
    AUTH_SERVICE_HOST="http://127.0.0.1:$auth_port" \
    DB_DBNAME=ems_ws "$ems" serve --role ws >"$tmp/logs/ws-$((i + 1)).log" 2>&1 </dev/null &
  pids+=($!)
done

for port in "$auth_port" "${rest_ports[@]}"; do
  if ! wait_ready "http://127.0.0.1:$port" 30; then
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
