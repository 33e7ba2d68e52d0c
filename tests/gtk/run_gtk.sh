#!/usr/bin/env bash
# run_gtk.sh — black-box test of the simulator window, ems-sim-gtk, under Xvfb.
#
#   bash tests/gtk/run_gtk.sh <path-to-ems>      (ems-sim-gtk is next to ems)
#
# Starts an embedded `ems serve` (temp data dir, free loopback port, admin
# password and ingest token from the environment), creates a device through
# the API as admin, writes a config that targets the server over HTTP with
# that device, and runs the window under `xvfb-run -a` replaying yesterday
# at 3600× with --autostart --screenshot: the readings must arrive in the
# store (GET /api/consumption total > 0) and the screenshot must be a real
# PNG (kept in tests/out/gtk/window.png).  Then an invalid config and an
# unreachable target (a closed port) must be reported by the window (its
# message on stderr and exit codes 2 and 3), not crash it.  GTK under ASan
# reports leaks inside GTK itself, so leak detection is off for the window.
# Prints PASS/FAIL lines and "N passed, N failed"; stops the server by PID.
set -u

EMS=${1:?usage: run_gtk.sh <path-to-ems>}
EMS=$(cd "$(dirname "$EMS")" && pwd)/$(basename "$EMS")
GUI="$(dirname "$EMS")/ems-sim-gtk"
SRC=${EMS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
OUT="$SRC/tests/out/gtk"
WORK=$(mktemp -d /tmp/ems-gtk-test.XXXXXX)
chmod 700 "$WORK"
passed=0 failed=0
SERVER_PID=""

cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1${2:+: $2}"; failed=$((failed + 1)); }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Runs the window under a private X server; its stderr goes to $1, the rest of the arguments are its flags.
run_gui() {
    local errfile=$1
    shift
    ASAN_OPTIONS=detect_leaks=0 GSK_RENDERER=cairo GDK_BACKEND=x11 NO_AT_BRIDGE=1 \
        timeout 60 xvfb-run -a -s "-screen 0 1280x1024x24" "$GUI" "$@" >"$WORK/gui.out" 2>"$errfile"
}

for tool in xvfb-run curl python3; do
    if ! command -v "$tool" >/dev/null; then
        fail "tool $tool" "not installed (scripts/deps.sh installs it)"
        finish
    fi
done
if [ ! -x "$GUI" ]; then
    fail "ems-sim-gtk binary" "not found at $GUI (GTK 4 is a dependency: libgtk-4-dev)"
    finish
fi
mkdir -p "$OUT"

# ---- an embedded server ---------------------------------------------------

PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
ADMIN_PASSWORD="pw-$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TOKEN="ingest-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
EMS_ADMIN_PASSWORD=$ADMIN_PASSWORD EMS_INGEST_TOKEN=$TOKEN EMS_LOG_LEVEL=warn EMS_WS_PORT=$(free_port) \
    "$EMS" serve --data-dir "$WORK/data" --port "$PORT" --bind 127.0.0.1 >"$WORK/ems.log" 2>&1 </dev/null &
SERVER_PID=$!
up=0
for _ in $(seq 150); do
    if curl -sf "$BASE/readyz" >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
if [ "$up" -ne 1 ]; then
    fail "embedded server starts" "$(tail -n 20 "$WORK/ems.log")"
    finish
fi
pass "embedded server starts"

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1" 2>/dev/null; }

ADMIN=$(curl -sf -X POST "$BASE/api/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" | json_field token)
DEVICE=$(curl -sf -X POST "$BASE/api/devices" -H 'Content-Type: application/json' -H "Authorization: Bearer $ADMIN" \
    -d '{"name":"gtk-window-meter","max_hourly_kwh":1000}' | json_field id)
if [ -z "$ADMIN" ] || [ -z "$DEVICE" ]; then
    fail "device created as admin" "login or POST /api/devices failed"
    finish
fi
pass "device created as admin"

# ---- the window sends readings that arrive in the store ----------------------

YESTERDAY=$(date -u -d yesterday +%F)
cat >"$WORK/sim.json" <<EOF
{
  "devices": [{"id": "$DEVICE", "name": "Window test meter", "scale": 2}],
  "interval_s": 600,
  "timezone": "UTC",
  "seed": 7,
  "target": {"http": "$BASE", "token": "$TOKEN"}
}
EOF
rm -f "$OUT/window.png"
run_gui "$WORK/gui.err" --config "$WORK/sim.json" --start "$YESTERDAY" --speed 3600 --autostart \
    --screenshot "$OUT/window.png" --after-ms 4000
rc=$?
if [ "$rc" -eq 0 ]; then pass "window runs and exits 0"; else fail "window runs and exits 0" "exit $rc: $(tail -n 5 "$WORK/gui.err")"; fi

total=$(curl -sf "$BASE/api/consumption/$DEVICE?date=$YESTERDAY&tz=UTC" -H "Authorization: Bearer $ADMIN" |
    json_field total_kwh)
if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "${total:-0}" 2>/dev/null; then
    pass "readings sent by the window are in the store (total_kwh=$total for $YESTERDAY)"
else
    fail "readings sent by the window are in the store" "total_kwh='${total}'"
fi

png_ok() { # a PNG of at least 800x500 pixels and 20 kB (a real window, not an empty surface)
    python3 - "$1" <<'PY'
import struct, sys, os
data = open(sys.argv[1], "rb").read()
ok = data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000
w, h = struct.unpack(">II", data[16:24]) if ok else (0, 0)
sys.exit(0 if ok and w >= 800 and h >= 500 else 1)
PY
}
if [ -f "$OUT/window.png" ] && png_ok "$OUT/window.png"; then
    pass "screenshot saved ($OUT/window.png, $(stat -c %s "$OUT/window.png") bytes)"
else
    fail "screenshot saved" "$OUT/window.png missing or trivial"
fi

# ---- problems are reported, not crashed on --------------------------------------

cat >"$WORK/bad.json" <<EOF
{"devices": [{"id": "$DEVICE", "scal": 2}], "target": {"http": "$BASE", "token": "$TOKEN"}}
EOF
run_gui "$WORK/bad.err" --config "$WORK/bad.json" --autostart --screenshot "$OUT/invalid-config.png" --after-ms 1500
rc=$?
if [ "$rc" -eq 2 ] && grep -qF "invalid config: $WORK/bad.json: devices[0]: unknown key 'scal'" "$WORK/bad.err"; then
    pass "invalid config: the window says which key, exit 2"
else
    fail "invalid config: the window says which key, exit 2" "exit $rc: $(grep ems-sim-gtk "$WORK/bad.err")"
fi

DEAD=$(free_port)
cat >"$WORK/dead.json" <<EOF
{"devices": [{"id": "$DEVICE"}], "timezone": "UTC", "target": {"http": "http://127.0.0.1:$DEAD", "token": "$TOKEN"}}
EOF
run_gui "$WORK/dead.err" --config "$WORK/dead.json" --start "$YESTERDAY" --speed 3600 --autostart \
    --screenshot "$OUT/unreachable.png" --after-ms 2500
rc=$?
if [ "$rc" -eq 3 ] && grep -qF "target unreachable: server unreachable" "$WORK/dead.err" &&
    ! grep -qF "$TOKEN" "$WORK/dead.err"; then
    pass "unreachable target: the window says so (no token shown), exit 3"
else
    fail "unreachable target: the window says so, exit 3" "exit $rc: $(grep ems-sim-gtk "$WORK/dead.err")"
fi
if grep -qE "AddressSanitizer|runtime error|CRITICAL" "$WORK/gui.err" "$WORK/bad.err" "$WORK/dead.err"; then
    fail "no sanitizer reports or GTK criticals" "$(grep -hE "AddressSanitizer|runtime error|CRITICAL" \
        "$WORK/gui.err" "$WORK/bad.err" "$WORK/dead.err" | head -n 3)"
else
    pass "no sanitizer reports or GTK criticals"
fi

kill "$SERVER_PID" 2>/dev/null
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=""
finish
