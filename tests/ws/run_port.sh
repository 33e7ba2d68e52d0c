#!/usr/bin/env bash
# run_port.sh <ems-binary> — where the embedded WebSocket listens.
#
# `ems serve` without EMS_WS_PORT puts the WebSocket on PORT+1; when another
# process holds that port it must still start, on another port, and say
# which in /api/config, where the browser looks.  With PORT+1 free it uses
# PORT+1; with PORT 0 it tells a real port, not 1.  Each server runs on its
# own temp data dir and is stopped by PID.  Prints "N passed, N failed".
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
set -u

ems=$(realpath "${1:?usage: run_port.sh <ems-binary>}")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ems-ws-port.XXXXXX")
pids=()
passed=0 failed=0

# serve runs in a command substitution, a subshell: its servers' PIDs go to a file.
cleanup() {
    [ -f "$tmp/pids" ] && while read -r p; do pids+=("$p"); done <"$tmp/pids"
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$tmp"/*.log 2>/dev/null; then
        echo "FAIL sanitizer errors in a server log"
        grep -hE -A 12 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$tmp"/*.log | head -n 40
        failed=$((failed + 1))
    fi
    [ "$failed" -eq 0 ] || tail -n 5 "$tmp"/*.log
    rm -rf "$tmp"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
trap 'cleanup; exit $?' EXIT
check() { # check <name> <command...>
    local name=$1
    shift
    if "$@"; then echo "ok   $name"; passed=$((passed + 1)); else echo "FAIL $name"; failed=$((failed + 1)); fi
}

# A port whose successor is free too (held together while chosen).
pair() {
    python3 -c '
import socket
for _ in range(200):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1))
    except OSError:
        a.close(); b.close(); continue
    print(p); break'
}

# serve NAME PORT: starts ems serve, waits for /readyz, prints the ws_url of /api/config.
serve() {
    local name=$1 port=$2 base pid
    EMS_ADMIN_PASSWORD="pw-$RANDOM$RANDOM$RANDOM" EMS_LOG_LEVEL=info \
        "$ems" serve --data-dir "$tmp/$name" --port "$port" --bind 127.0.0.1 --web-dir "" \
        >"$tmp/$name.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >>"$tmp/pids"
    if [ "$port" = 0 ]; then
        for _ in $(seq 100); do
            port=$(sed -nE 's/.*event=ems\.listening .* port=([0-9]+).*/\1/p' "$tmp/$name.log" | head -n 1)
            [ -n "$port" ] && break
            sleep 0.1
        done
    fi
    base="http://127.0.0.1:$port"
    for _ in $(seq 100); do
        curl -sf "$base/readyz" >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    curl -sf "$base/api/config" | python3 -c 'import json, sys; print(json.load(sys.stdin)["ws_url"])'
}

# ws_port_of URL -> the port in ws://host:port/ws
ws_port_of() { sed -nE 's#^ws://[^/]*:([0-9]+)/ws$#\1#p' <<<"$1"; }

# 1. PORT+1 is held by another process: the server starts anyway, on another port.
port=$(pair)
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]) + 1)); s.listen(1)
open(sys.argv[2], "w").close()
time.sleep(120)' "$port" "$tmp/held" &
pids+=("$!")
for _ in $(seq 100); do [ -e "$tmp/held" ] && break; sleep 0.05; done
check "another process holds PORT+1" test -e "$tmp/held"
url=$(serve busy "$port")
ws=$(ws_port_of "$url")
check "PORT+1 taken: the server starts and /api/config names a ws URL ($url)" test -n "$ws"
check "PORT+1 taken: the WebSocket moved to another port" test -n "$ws" -a "$ws" != "$((port + 1))"
check "PORT+1 taken: ws.port_moved is logged" grep -q "event=ws.port_moved wanted=$((port + 1)) port=$ws" "$tmp/busy.log"
check "PORT+1 taken: a WebSocket upgrade on the port it names is answered" python3 -c '
import sys
sys.path.insert(0, sys.argv[1])
from ws_client import WSClient, Refused
try:
    WSClient.connect("127.0.0.1", int(sys.argv[2]))   # no token: refused, but by the ws server
except Refused:
    sys.exit(0)
sys.exit(1)' "$here" "${ws:-1}"

# 2. PORT+1 free: it is the WebSocket's.
port=$(pair)
url=$(serve free "$port")
check "PORT+1 free: the WebSocket is on PORT+1 ($url)" test "$(ws_port_of "$url")" = "$((port + 1))"
check "PORT+1 free: nothing about a moved port in the log" bash -c "! grep -q ws.port_moved '$tmp/free.log'"

# 3. PORT 0: any free port, and /api/config tells which.
url=$(serve any 0)
ws=$(ws_port_of "$url")
check "PORT 0: /api/config names a real port ($url)" test -n "$ws" -a "${ws:-0}" -gt 1024
