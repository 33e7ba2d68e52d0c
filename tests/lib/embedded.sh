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

if [ $# -ne 2 ] || [ ! -x "$1" ]; then
  echo "usage: $0 <path-to-ems-binary> <suite.py>" >&2
  exit 2
fi
ems=$(realpath "$1")
suite=$2
name=$(basename "$suite" .py)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ems-$name.XXXXXX")
chmod 700 "$tmp"
pid=

alive() {
  local state
  state=$(sed -E 's/.*\) ([A-Z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

cleanup() {
  local rc=$?
  if [ -n "$pid" ]; then
    if ! alive "$pid"; then
      echo "$name: ems was no longer running at the end (crashed?)"
      rc=1
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
  fi
  if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$tmp/ems.log" 2>/dev/null; then
    echo "$name: sanitizer errors in the server log:"
    grep -E -A 12 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$tmp/ems.log" | head -n 60
    rc=1
  fi
  if [ "$rc" -ne 0 ] && [ -f "$tmp/ems.log" ]; then
    echo "---- last lines of the server log"
    tail -n 40 "$tmp/ems.log"
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

read -r port ws_port <<<"$(free_ports 2)"
admin_password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
ingest_token=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')

EMS_ADMIN_PASSWORD=$admin_password EMS_INGEST_TOKEN=$ingest_token EMS_LOGIN_RATE=100000 EMS_WS_PORT=$ws_port \
  "$ems" serve --data-dir "$tmp/data" --port "$port" --bind 127.0.0.1 --web-dir "" >"$tmp/ems.log" 2>&1 </dev/null &
pid=$!

ready=0
for _ in $(seq 100); do
  if python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" \
    "http://127.0.0.1:$port/readyz" 2>/dev/null; then
    ready=1
    break
  fi
  alive "$pid" || break
  sleep 0.1
done
if [ "$ready" -ne 1 ]; then
  echo "$name: ems did not become ready"
  exit 1
fi

set +e
BASE_URL="http://127.0.0.1:$port" WS_PORT=$ws_port ADMIN_USERNAME=admin ADMIN_PASSWORD=$admin_password \
  INGEST_TOKEN=$ingest_token SERVER_PID=$pid python3 "$suite"
status=$?
set -e
exit "$status"
