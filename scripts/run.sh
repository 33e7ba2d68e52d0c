#!/usr/bin/env bash
# `make run`: the embedded system on http://127.0.0.1:$PORT (default 8080).
# On the first start it makes an administrator password and an ingest token
# (kept in the data dir, mode 0600), and fills a demo customer's last week of
# readings so the consumption pages have something to show.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
data="${EMS_DATA_DIR:-$root/var}"
port="${PORT:-8080}"
mkdir -p "$data"
chmod 700 "$data"

secret() { # file: a random secret, made once
  [ -s "$1" ] || (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$1")
  cat "$1"
}
first_start=0
[ -s "$data/admin-password" ] || first_start=1
export EMS_ADMIN_PASSWORD="${EMS_ADMIN_PASSWORD:-$(secret "$data/admin-password")}"
export EMS_INGEST_TOKEN="${EMS_INGEST_TOKEN:-$(secret "$data/ingest-token")}"

"$build/ems" serve --data-dir "$data" --port "$port" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "run: ems serve exited" >&2; exit 1; }
  sleep 0.1
done

if [ ! -e "$data/demo-done" ]; then
  if python3 "$root/scripts/demo.py" "http://127.0.0.1:$port" "$build/ems-sim"; then
    touch "$data/demo-done"
  else
    echo "run: the demo data could not be loaded; the system runs without it" >&2
  fi
fi

echo
echo "  EMS is up: http://127.0.0.1:$port"
if [ "$first_start" = 1 ]; then
  echo "  administrator: admin / $EMS_ADMIN_PASSWORD   (kept in $data/admin-password)"
else
  echo "  administrator: admin, password in $data/admin-password"
fi
[ -e "$data/demo-done" ] && echo "  demo customer: demo / demo-password (a week of readings on three devices)"
echo "  stop with Ctrl-C"
echo
wait "$pid"
