#!/usr/bin/env bash
# Browser tests of the web app against one `ems serve` (embedded mode).
# Usage: tests/e2e/run_embedded.sh <path-to-ems-binary>
# Builds the web app (scripts/web.sh: installs npm packages if needed, rebuilds only when stale),
# starts the server on a free loopback port with a fresh data dir and a random ingest token (the
# tests post meter readings with it), waits for /readyz, runs
# tests/e2e/run.mjs in Debian's Chromium, stops the server by PID. Screenshots: tests/out/e2e/.
# EMS_BINARY lets reconnect.test.mjs run a second server of its own that it restarts.
# Ends with the runner's "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail

ems="${1:?usage: run_embedded.sh <ems-binary>}"
ems="$(cd "$(dirname "$ems")" && pwd)/$(basename "$ems")"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[ -x "$ems" ] || { echo "e2e: $ems is not an executable"; echo "0 passed, 1 failed"; exit 1; }

if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM:-}" ]; then
  echo "e2e: /usr/bin/chromium is missing (apt-get install -y chromium; scripts/deps.sh does it)"
  echo "0 passed, 1 failed"
  exit 1
fi

bash "$root/scripts/web.sh"

tmp="$(mktemp -d /tmp/ems-e2e.XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two free ports: the HTTP one, and the WebSocket's (by default PORT+1, which may be taken).
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
port="$(free_port)"
ws_port="$(free_port)"
while [ "$ws_port" = "$port" ]; do ws_port="$(free_port)"; done
admin_password="e2e-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
ingest_token="ingest-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
# The flood test (live.test.mjs) must pass the WebSocket's frames-per-second budget from the UI on
# a busy machine: a budget of 10 is still far above what the other tests send.
ws_rate="${E2E_WS_RATE:-10}"

EMS_ADMIN_USERNAME=admin EMS_ADMIN_PASSWORD="$admin_password" EMS_INGEST_TOKEN="$ingest_token" EMS_WS_PORT="$ws_port" EMS_WS_RATE="$ws_rate" EMS_LOG_LEVEL=warn \
  "$ems" serve --data-dir "$tmp/data" --port "$port" --web-dir "$root/web/dist" >"$tmp/server.log" 2>&1 &
pid=$!

base="http://127.0.0.1:$port"
ready=""
for _ in $(seq 1 100); do
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  if curl -fsS -o /dev/null "$base/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.2
done
if [ -z "$ready" ]; then
  echo "e2e: the server did not become ready on $base; its log:"
  tail -n 30 "$tmp/server.log"
  echo "0 passed, 1 failed"
  exit 1
fi

mkdir -p "$root/tests/out/e2e"
rc=0
BASE_URL="$base" ADMIN_USERNAME=admin ADMIN_PASSWORD="$admin_password" INGEST_TOKEN="$ingest_token" EMS_BINARY="$ems" \
  node "$root/tests/e2e/run.mjs" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "e2e: server log (last lines):"
  tail -n 20 "$tmp/server.log"
fi
exit "$rc"
