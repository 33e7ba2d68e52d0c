#!/usr/bin/env bash
# Browser tests of the web app against the distributed stack: deploy/local/cluster.sh starts
# private PostgreSQL, RabbitMQ, every role (4 monitoring replicas) and nginx serving web/dist,
# on a free block of loopback ports; the same tests as run_embedded.sh then run through the
# gateway (REST, forward-auth, /ws upgrade). The restart test needs a server of its own and
# runs only in embedded mode. Always stops the cluster.
# Usage: tests/e2e/run_distributed.sh <path-to-ems-binary>
# Ends with the runner's "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail

ems="${1:?usage: run_distributed.sh <ems-binary>}"
ems="$(cd "$(dirname "$ems")" && pwd)/$(basename "$ems")"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cluster="$root/deploy/local/cluster.sh"

bash "$root/scripts/web.sh"

tmp="$(mktemp -d /tmp/ems-e2e-cluster.XXXXXX)"
chmod 711 "$tmp" # as root, PostgreSQL runs as postgres and must pass through
cleanup() {
  bash "$cluster" stop --dir "$tmp/cluster" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port base whose 40 ports are free, below the kernel's ephemeral range.
started=0
for _ in 1 2 3 4 5; do
  base=$(( (RANDOM % 300 + 500) * 40 ))
  # EMS_WS_RATE: the flood test's budget, as in run_embedded.sh (the roles inherit the environment).
  if EMS_BIN=$ems EMS_WEB_DIR="$root/web/dist" GW_LOGIN_RATE=1000r/s EMS_WS_RATE="${E2E_WS_RATE:-10}" bash "$cluster" start \
    --dir "$tmp/cluster" --port-base "$base" >"$tmp/start.log" 2>&1; then
    started=1
    break
  fi
  grep -qE "is taken|Address already in use" "$tmp/start.log" || break
done
if [ "$started" -ne 1 ]; then
  echo "e2e: the cluster did not start:"
  tail -n 20 "$tmp/start.log"
  echo "0 passed, 1 failed"
  exit 1
fi
# shellcheck disable=SC1091
. "$tmp/cluster/cluster.env"

mkdir -p "$root/tests/out/e2e"
rc=0
BASE_URL="$GATEWAY_URL" ADMIN_USERNAME="$ADMIN_USERNAME" ADMIN_PASSWORD="$ADMIN_PASSWORD" \
  INGEST_TOKEN="$INGEST_TOKEN" node "$root/tests/e2e/run.mjs" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "e2e: role logs (last lines):"
  tail -n 5 "$tmp"/cluster/logs/*.log
fi
exit "$rc"
