#!/usr/bin/env bash
# run_embedded.sh <ems-binary> — the API suite against `ems serve` (embedded mode).
#
# Starts two private servers on free loopback ports, each with its own temp
# data dir and the same random admin password, serving a small web app
# written here (with a file beside it that path traversal must not reach):
# the main one, and a second one whose tokens live 2 s (the expired-token
# test; its own key pair also makes its tokens foreign to the main one).
# Each server is started by a small generated
# script that `exec`s ems, so its PID file names ems itself; RESTART_CMD is a
# generated script that stops the main server with SIGTERM, starts it again
# on the same data dir and waits for /readyz — the suite calls it to check
# that data survives a restart.  Both servers are killed by PID on exit and
# the temp dir removed.  The exit status is the suite's, or 1 if a server
# crashed or (in a sanitizer build) reported an error into its log.
# shellcheck disable=SC2317  # cleanup functions run from the EXIT trap
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"

ems_args 1 "<path-to-ems-binary>" "$@"
suite="$here/ems_api_test.py"
tmp=$(make_tmp api-embedded 700)

cleanup() {
  local rc=$? f pids=()
  for f in "$tmp"/*.pid; do
    [ -e "$f" ] || continue
    pids+=("$(cat "$f")")
    still_running "run_embedded: ems ($(basename "$f" .pid))" "${pids[-1]}" || rc=1
  done
  stop_pids "${pids[@]}"
  logs_clean "run_embedded: sanitizer errors in the server log:" "$tmp"/*.log || rc=1
  if [ "$rc" -ne 0 ]; then tail_logs 40 "$tmp"/*.log; fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# write_server <name> <port> <ws-port> <token-ttl>: $tmp/<name>.sh runs one
# server, and <name>.start starts it in the background recording its PID.
# The WebSocket port is given: by default it is PORT+1, which may be taken.
write_server() {
  local name=$1 port=$2 ws_port=$3 ttl=$4
  mkdir -p "$tmp/$name"
  {
    echo "#!/usr/bin/env bash"
    printf 'export EMS_ADMIN_PASSWORD=%q EMS_LOGIN_RATE=100000 EMS_TOKEN_TTL=%q EMS_WS_PORT=%q\n' \
      "$admin_password" "$ttl" "$ws_port"
    printf 'exec %q serve --data-dir %q --port %q --bind 127.0.0.1 --web-dir %q\n' \
      "$ems" "$tmp/$name" "$port" "$tmp/web"
  } >"$tmp/$name.sh"
  {
    echo "#!/usr/bin/env bash"
    printf 'bash %q >>%q 2>&1 </dev/null &\n' "$tmp/$name.sh" "$tmp/$name.log"
    printf 'echo $! >%q\n' "$tmp/$name.pid"
  } >"$tmp/$name.start"
}

admin_password=$(random_token 18)
index_marker="ems-api-test-index-$RANDOM$RANDOM"
secret_marker="ems-api-test-secret-$RANDOM$RANDOM"
mkdir -p "$tmp/web/assets"
echo "<!doctype html><title>$index_marker</title>" >"$tmp/web/index.html"
echo "console.log('app');" >"$tmp/web/assets/app.js"
echo "$secret_marker" >"$tmp/secret.txt"
read -r port main_ws_port ttl_port ttl_ws_port <<<"$(free_ports 4)"
write_server main "$port" "$main_ws_port" 3600
write_server ttl "$ttl_port" "$ttl_ws_port" 2

# shellcheck disable=SC2016  # the lines below are written, not run, here
# The restart: SIGTERM must stop the server (within 10 s), then the same command again.
{
  echo "#!/usr/bin/env bash"
  echo "set -u"
  printf 'pid=$(cat %q)\n' "$tmp/main.pid"
  echo 'kill -TERM "$pid" || exit 1'
  declare -f alive
  echo 'for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done'
  echo 'if alive "$pid"; then echo "restart: ems did not exit within 10 s of SIGTERM"; kill -KILL "$pid"; exit 1; fi'
  printf 'bash %q\n' "$tmp/main.start"
  printf 'exec python3 %q wait-ready %q 10 %q\n' "$suite" "http://127.0.0.1:$port" "$tmp/main.pid"
} >"$tmp/restart.sh"

bash "$tmp/main.start"
bash "$tmp/ttl.start"
python3 "$suite" wait-ready "http://127.0.0.1:$port" 10 "$tmp/main.pid"
python3 "$suite" wait-ready "http://127.0.0.1:$ttl_port" 10 "$tmp/ttl.pid"

set +e
BASE_URL="http://127.0.0.1:$port" \
ADMIN_USERNAME=admin \
ADMIN_PASSWORD="$admin_password" \
EMS_MODE=embedded \
JWT_PUBLIC_KEY_FILE="$tmp/main/jwt-public.pem" \
RESTART_CMD="bash $(printf %q "$tmp/restart.sh")" \
TTL_BASE_URL="http://127.0.0.1:$ttl_port" \
TTL_ADMIN_PASSWORD="$admin_password" \
FOREIGN_BASE_URL="http://127.0.0.1:$ttl_port" \
ROLE_URLS='' \
WEB_INDEX_MARKER="$index_marker" \
WEB_SECRET_NAME=secret.txt \
WEB_SECRET_MARKER="$secret_marker" \
  python3 "$suite"
status=$?
set -e
exit "$status"
