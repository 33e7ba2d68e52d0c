#!/usr/bin/env bash
# run_distributed.sh <ems-binary> — exact totals through RabbitMQ and PostgreSQL.
#
# Starts a private cluster with deploy/local/cluster.sh (auth, devices, the
# balancer, 4 monitoring replicas sharing one database, nginx, a private
# PostgreSQL and RabbitMQ) in a temp dir on a free port base, runs
# ingest_distributed.py against it (kill -9 of a monitoring replica and of
# the balancer mid-stream, a broker restart, exact totals afterwards) and stops the cluster by
# its PIDs, whatever happened; a sanitizer report in any role's log fails
# the run.  Prints "N passed, N failed".
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"

ems_args 1 "<path-to-ems-binary>" "$@"
root=$(cd "$here/../.." && pwd)
cluster=$root/deploy/local/cluster.sh
# PostgreSQL runs as its own user when we are root: it must pass through (not list) the dir.
tmp=$(make_tmp ingest-distributed 711)

cleanup() {
  local rc=$?
  bash "$cluster" stop --dir "$tmp/cluster" >/dev/null 2>&1 || true
  if [ "$rc" -ne 0 ]; then tail_logs 15 "$tmp"/cluster/logs/monitoring-*.log "$tmp"/cluster/logs/balancer.log; fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port base whose 40 ports are free, below the kernel's ephemeral range (32768..), where
# outgoing connections could take one meanwhile; cluster.sh refuses one taken since: try another.
started=0
for _ in 1 2 3 4 5; do
  base=$(free_port_base 20000 32000) || break
  # SIMULATOR_DELAY_MS slows the replicas a little, so that a kill finds work in flight.
  if EMS_BIN=$ems SIMULATOR_DELAY_MS=2 bash "$cluster" start --dir "$tmp/cluster" --port-base "$base" \
    --roles "auth devices monitoring balancer" --replicas 4 >"$tmp/start.log" 2>&1; then
    started=1
    break
  fi
  if ! grep -qE "is taken|Address already in use" "$tmp/start.log"; then
    cat "$tmp/start.log"
    break
  fi
done
if [ "$started" -ne 1 ]; then
  echo "run_distributed: the cluster did not start"
  echo "0 passed, 1 failed"
  exit 1
fi

set +e
python3 "$here/ingest_distributed.py" "$tmp/cluster/cluster.env"
rc=$?
set -e
# A sanitizer build reports into the roles' logs, some only at exit: stop first, then look.
bash "$cluster" stop --dir "$tmp/cluster" >/dev/null 2>&1 || true
if ! logs_clean "run_distributed: sanitizer errors in the roles' logs:" "$tmp"/cluster/logs/*.log; then
  echo "0 passed, 1 failed (sanitizer)"
  rc=1
fi
exit "$rc"
