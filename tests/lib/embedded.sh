#!/usr/bin/env bash
# embedded.sh <ems-binary> <suite.py> — runs one python suite against `ems serve`
# (embedded mode): tests/ws/run_embedded.sh and run_alerts.sh, and
# tests/monitoring/run_query.sh use it.  The suite path is taken as given.
#
# Starts one server on free loopback ports (REST on PORT, the WebSocket on
# EMS_WS_PORT) with EMS_INGEST_TOKEN set, its own temp data dir and a random
# admin password, waits for /readyz, and runs the suite against it with
# BASE_URL, WS_PORT, ADMIN_USERNAME, ADMIN_PASSWORD, INGEST_TOKEN and
# SERVER_PID.  The server is stopped by PID on exit and the temp dir removed.
# Exit status: the suite's, or 1 if the server died or (in a sanitizer build)
# reported an error into its log.
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/common.sh
. "$here/common.sh"

ems_args 2 "<path-to-ems-binary> <suite.py>" "$@"
suite=$2
name=$(basename "$suite" .py)
tmp=$(make_tmp "$name" 700)
pid=

cleanup() {
  local rc=$?
  if [ -n "$pid" ]; then
    still_running "$name: ems" "$pid" || rc=1
    stop_pids "$pid"
  fi
  logs_clean "$name: sanitizer errors in the server log:" "$tmp/ems.log" || rc=1
  if [ "$rc" -ne 0 ]; then tail_logs 40 "$tmp/ems.log"; fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r port ws_port <<<"$(free_ports 2)"
admin_password=$(random_token 18)
ingest_token=$(random_token 24)

EMS_ADMIN_PASSWORD=$admin_password EMS_INGEST_TOKEN=$ingest_token EMS_LOGIN_RATE=100000 EMS_WS_PORT=$ws_port \
  "$ems" serve --data-dir "$tmp/data" --port "$port" --bind 127.0.0.1 --web-dir "" >"$tmp/ems.log" 2>&1 </dev/null &
pid=$!

if ! wait_ready "http://127.0.0.1:$port" 10 "$pid"; then
  echo "$name: ems did not become ready"
  exit 1
fi

set +e
BASE_URL="http://127.0.0.1:$port" WS_PORT=$ws_port ADMIN_USERNAME=admin ADMIN_PASSWORD=$admin_password \
  INGEST_TOKEN=$ingest_token SERVER_PID=$pid python3 "$suite"
status=$?
set -e
exit "$status"
