#!/usr/bin/env bash
# The web app's benchmark: the size of the built bundle (gzip -9, as docs/benchmarks.md measures
# it), and in headless Chromium (playwright-core, /usr/bin/chromium) the time to first render of
# the consumption page, to draw another day, and to draw a month, against a fresh `ems serve`.
# Usage: bash bench/web/run.sh [path/to/ems]        (default: $EMS_BIN, else build/ems)
# Starts `ems serve` on a free loopback port with a temp data dir, a random admin password and
# ingest token; bench.mjs then creates a customer with a device, posts a month of hourly readings
# and measures (BENCH_REPS repetitions, default 7). Prints a markdown report on stdout. The
# server is stopped by PID on exit, also after a failure or Ctrl-C.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=tests/lib/common.sh
. "$root/tests/lib/common.sh"
ems="${1:-${EMS_BIN:-$root/build/ems}}"
[ -x "$ems" ] || { echo "bench/web: $ems is not an executable (build it: cmake --build build --target ems)" >&2; exit 1; }
ems="$(cd "$(dirname "$ems")" && pwd)/$(basename "$ems")"
chromium="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] || { echo "bench/web: $chromium is missing (apt-get install -y chromium)" >&2; exit 1; }

bash "$root/scripts/web.sh" >&2

tmp="$(make_tmp bench-web 700)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then stop_pids "$pid"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two free ports: the HTTP one, and the WebSocket's (by default PORT+1, which may be taken).
read -r port ws_port <<<"$(free_ports 2)"
admin_password="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
ingest_token="ingest-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

EMS_ADMIN_USERNAME=admin EMS_ADMIN_PASSWORD="$admin_password" EMS_INGEST_TOKEN="$ingest_token" EMS_WS_PORT="$ws_port" EMS_LOG_LEVEL=warn \
  "$ems" serve --data-dir "$tmp/data" --port "$port" --bind 127.0.0.1 --web-dir "$root/web/dist" >"$tmp/server.log" 2>&1 &
pid=$!

base="http://127.0.0.1:$port"
if ! wait_ready "$base" 20 "$pid"; then
  echo "bench/web: the server did not become ready on $base; its log:" >&2
  tail -n 30 "$tmp/server.log" >&2
  exit 1
fi

# The bundle, measured exactly as docs/benchmarks.md's "Web app bundle" section does.
bundle="$tmp/bundle.txt"
for f in "$root"/web/dist/assets/*.js "$root"/web/dist/assets/*.css; do
  echo "$(basename "$f") $(wc -c <"$f") $(gzip -9 -c "$f" | wc -c)"
done >"$bundle"

BASE_URL="$base" ADMIN_USERNAME=admin ADMIN_PASSWORD="$admin_password" INGEST_TOKEN="$ingest_token" \
  CHROMIUM="$chromium" BUNDLE_FILE="$bundle" EMS_BINARY="$ems" \
  node "$root/bench/web/bench.mjs"
