#!/usr/bin/env bash
# run_distributed.sh <ems-binary> — the API suite through the distributed gateway.
#
# deploy/local/cluster.sh starts a private cluster in a temp dir (PostgreSQL,
# RabbitMQ, the auth, users and devices roles — the ones this suite covers —
# and nginx in front serving a small web app
# written here) on a block of free loopback ports, prints "cluster: ready" and
# writes <dir>/cluster.env.  The suite then runs against GATEWAY_URL, so every
# request goes through nginx's routing and forward-auth, real PostgreSQL and
# RabbitMQ.  Beside the cluster this script runs two processes of its own:
#   - a second auth process on the cluster's database and key whose tokens
#     live 2 s (EMS_TOKEN_TTL=2): its tokens must stop working at the gateway;
#   - an embedded `ems serve` with a key pair of its own: its tokens must be
#     refused by the cluster.
# The restart test restarts the auth, users and devices processes: each is
# stopped with SIGTERM and started again with the command line and
# environment it ran with (read from /proc), its PID written back where
# cluster.sh keeps it so that `cluster.sh stop` still stops it (cluster.sh
# has no per-role restart, and a whole-cluster stop + start takes ~30 s).
# Everything is always stopped and the temp dir removed.  Exit status: the
# suite's, or 1 if a process (in a sanitizer build) reported an error.
# shellcheck disable=SC2317  # cleanup functions run from the EXIT trap
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"

ems_args 1 "<path-to-ems-binary>" "$@"
src=${EMS_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
cluster="$src/deploy/local/cluster.sh"
suite="$here/ems_api_test.py"

if [ ! -f "$cluster" ]; then
  echo "run_distributed: $cluster does not exist" >&2
  exit 1
fi

work=$(make_tmp api-cluster 711) # as root, PostgreSQL runs as postgres and must pass through
tmp="$work/cluster"
started=0

cleanup() {
  local rc=$?
  stop_pidfiles "$work"/extra/*.pid
  if [ "$started" -eq 1 ]; then
    bash "$cluster" stop --dir "$tmp" >"$work/stop.log" 2>&1 || {
      echo "run_distributed: cluster.sh stop failed:"
      tail -n 20 "$work/stop.log"
      rc=1
    }
  fi
  logs_clean "run_distributed: sanitizer errors in the logs:" "$tmp"/logs/*.log "$work"/extra/*.log || rc=1
  if [ "$rc" -ne 0 ]; then
    tail_logs 25 "$work"/start.log "$tmp"/logs/{auth,users,devices,nginx-error}.log "$work"/extra/*.log
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# procs.py: the processes this script adds to or restarts in the cluster.
mkdir -p "$work/extra"
cat >"$work/procs.py" <<'EOF'
"""
procs.py clone <cluster-dir> <role> <pidfile> <log> KEY=VALUE...
    starts another process exactly like the cluster's <role>, with the overrides
procs.py restart <cluster-dir> <suite> <role>...
    SIGTERM to each role, then the same command and environment again
"""
import os, subprocess, sys, time


def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def snapshot(cdir, role):
    with open(f"{cdir}/run/{role}.pid") as f:
        pid = int(f.read())
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmd = f.read().rstrip(b"\0").split(b"\0")
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
    return pid, cmd, env


def spawn(cmd, env, log, pidfile):
    with open(log, "ab") as out:
        p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             start_new_session=True)
    with open(pidfile, "w") as f:
        f.write(f"{p.pid}\n")


def wait_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while any(running(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def main(cmd, *args):
    if cmd == "clone":
        cdir, role, pidfile, log, *overrides = args
        _, argv, env = snapshot(cdir, role)
        env.update(dict(o.encode().split(b"=", 1) for o in overrides))
        spawn(argv, env, log, pidfile)
    elif cmd == "restart":
        cdir, suite, *roles = args
        procs = {role: snapshot(cdir, role) for role in roles}
        for pid, _, _ in procs.values():
            os.kill(pid, 15)
        if not wait_gone([p for p, _, _ in procs.values()], 10):
            sys.exit("restart: a role did not exit within 10 s of SIGTERM")
        for role, (_, argv, env) in procs.items():
            spawn(argv, env, f"{cdir}/logs/{role}.log", f"{cdir}/run/{role}.pid")
        for role in roles:
            url = os.environ[role.upper() + "_URL"]
            if subprocess.call([sys.executable, suite, "wait-ready", url, "15", f"{cdir}/run/{role}.pid"]):
                sys.exit(f"restart: {role} not ready again")


main(*sys.argv[1:])
EOF

# A base port whose block (base..base+39, and the broker's derived ports) is free right now.
port_base=$(free_port_base 20000 44000)

# A small web app for nginx to serve, and a file beside it that path
# traversal must not reach.
index_marker="ems-api-test-index-$RANDOM$RANDOM"
secret_marker="ems-api-test-secret-$RANDOM$RANDOM"
mkdir -p "$work/web/assets"
echo "<!doctype html><title>$index_marker</title>" >"$work/web/index.html"
echo "console.log('app');" >"$work/web/assets/app.js"
echo "$secret_marker" >"$work/secret.txt"

# The suite logs in far more often than a person: lift the login limits
# (cluster.sh passes EMS_* to the roles; GW_* tune the gateway).
started=1
EMS_BIN="$ems" EMS_WEB_DIR="$work/web" EMS_LOGIN_RATE=100000 GW_LOGIN_RATE=1000r/s GW_LOGIN_BURST=1000 \
  timeout 120 bash "$cluster" start --dir "$tmp" --port-base "$port_base" --roles "auth users devices" \
  >"$work/start.log" 2>&1 || {
  echo "run_distributed: cluster.sh start failed" >&2
  exit 1
}
grep -q '^cluster: ready' "$work/start.log" || {
  echo "run_distributed: cluster.sh did not print 'cluster: ready'" >&2
  exit 1
}
echo "run_distributed: cluster ready after ${SECONDS} s"
[ -f "$tmp/cluster.env" ] || {
  echo "run_distributed: no $tmp/cluster.env" >&2
  exit 1
}
set -a
# shellcheck disable=SC1091
. "$tmp/cluster.env"
set +a
: "${GATEWAY_URL:?cluster.env has no GATEWAY_URL}"
: "${ADMIN_PASSWORD:?cluster.env has no ADMIN_PASSWORD}"

pubkey=${JWT_PUBLIC_KEY_FILE:-$(find "$tmp" -name jwt-public.pem -print -quit)}

# The roles' own addresses, for /readyz and /metrics (nginx routes only /api).
role_urls=""
for v in AUTH_URL USERS_URL DEVICES_URL; do
  [ -n "${!v:-}" ] && role_urls="$role_urls ${!v}"
done

read -r ttl_port foreign_port foreign_ws_port <<<"$(free_ports 3)"
python3 "$work/procs.py" clone "$tmp" auth "$work/extra/ttl-auth.pid" "$work/extra/ttl-auth.log" \
  PORT="$ttl_port" EMS_TOKEN_TTL=2
EMS_ADMIN_PASSWORD="$ADMIN_PASSWORD" EMS_WS_PORT="$foreign_ws_port" "$ems" serve --data-dir "$work/foreign" --port "$foreign_port" \
  --bind 127.0.0.1 >>"$work/extra/foreign.log" 2>&1 </dev/null &
echo $! >"$work/extra/foreign.pid"
python3 "$suite" wait-ready "http://127.0.0.1:$ttl_port" 15 "$work/extra/ttl-auth.pid"
python3 "$suite" wait-ready "http://127.0.0.1:$foreign_port" 15 "$work/extra/foreign.pid"

set +e
BASE_URL="$GATEWAY_URL" \
ADMIN_USERNAME="${ADMIN_USERNAME:-admin}" \
ADMIN_PASSWORD="$ADMIN_PASSWORD" \
EMS_MODE=distributed \
JWT_PUBLIC_KEY_FILE="$pubkey" \
ROLE_URLS="${role_urls# }" \
RESTART_CMD="python3 $(printf '%q %q %q %q' "$work/procs.py" restart "$tmp" "$suite") auth users devices" \
WEB_INDEX_MARKER="$index_marker" \
WEB_SECRET_NAME=secret.txt \
WEB_SECRET_MARKER="$secret_marker" \
TTL_BASE_URL="http://127.0.0.1:$ttl_port" \
TTL_USE_URL="$GATEWAY_URL" \
FOREIGN_BASE_URL="http://127.0.0.1:$foreign_port" \
  python3 "$suite"
status=$?
set -e
exit "$status"
