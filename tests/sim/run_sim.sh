#!/usr/bin/env bash
# run_sim.sh — black-box test of the `ems-sim` command line.
#
#   bash tests/sim/run_sim.sh <path-to-ems>      (ems-sim is next to ems)
#
# Starts a private RabbitMQ on a free loopback port, backfills a day for
# three devices into it and checks with amqp-tools that the queue holds
# exactly the confirmed number of messages, that every body parses and that
# the values add up to the reported total; the same with faults injected
# (duplicates, shuffling, malformed messages, batches); a live replay; the
# unreachable-broker message and exit code; invalid configs; and the HTTP
# target against a real embedded `ems serve` (a server that comes back late,
# exact stored totals under duplicates and malformed messages, HTTP 401).
# Prints PASS/FAIL lines and "N passed, N failed"; stops the broker and the
# server on exit.
set -u

EMS=${1:?usage: run_sim.sh <path-to-ems>}
SIM="$(cd "$(dirname "$EMS")" && pwd)/ems-sim"
SRC=${EMS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
RMQ="$SRC/tests/lib/rabbitmq.sh"
WORK=$(mktemp -d /tmp/ems-sim-test.XXXXXX)
passed=0 failed=0
SERVER_PID=""

cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    bash "$RMQ" stop "$WORK/rmq" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1${2:+: $2}"; failed=$((failed + 1)); }
check() { # check <name> <command...>: PASS if the command succeeds
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

# The value of key=value in a summary line.
field() { sed -nE "s/.*(^| )$1=([^ ]+).*/\2/p" <<<"$2"; }

DEV1=5f1e0c2a-3b4d-4e5f-8a6b-7c8d9e0f1a2b
DEV2=6a2f1d3b-4c5e-4f60-9b7c-8d9e0f1a2b3c
DEV3=7b302e4c-5d6f-4071-8c8d-9e0f1a2b3c4d

if [ ! -x "$SIM" ]; then
    fail "ems-sim binary" "not found at $SIM"
    finish
fi

# The broker boots (5-20 s) while the checks that need none run.
PORT=$(bash "$RMQ" pick)
URL="amqp://guest:guest@127.0.0.1:$PORT"
if ! bash "$RMQ" start "$WORK/rmq" "$PORT"; then
    fail "private RabbitMQ" "did not start (see $WORK/rmq)"
    finish
fi

# ---- things that need no broker ------------------------------------------

cat >"$WORK/bad-key.json" <<EOF
{"devices": [{"id": "$DEV1", "scal": 2}]}
EOF
cat >"$WORK/bad-type.json" <<EOF
{"devices": [{"id": "$DEV1"}], "interval_s": "ten"}
EOF
out=$("$SIM" backfill --config "$WORK/bad-key.json" 2>&1 >/dev/null); rc=$?
check "invalid config: unknown key is named, exit 2" \
    test "$rc" -eq 2 -a -n "$(grep -F "bad-key.json: devices[0]: unknown key 'scal'" <<<"$out")"
out=$("$SIM" live --config "$WORK/bad-type.json" 2>&1 >/dev/null); rc=$?
check "invalid config: wrong type is named, exit 2" \
    test "$rc" -eq 2 -a -n "$(grep -F "interval_s: expected an integer" <<<"$out")"
out=$("$SIM" backfill --config "$WORK/missing.json" 2>&1 >/dev/null); rc=$?
check "missing config file: clear message, exit 2" \
    test "$rc" -eq 2 -a -n "$(grep -F "missing.json: No such file or directory" <<<"$out")"
out=$("$SIM" backfill --days 1 --device not-a-uuid 2>&1 >/dev/null); rc=$?
check "bad --device: clear message, exit 2" test "$rc" -eq 2 -a -n "$(grep -F "is not a UUID" <<<"$out")"
out=$("$SIM" backfill --speed 3 --device $DEV1 2>&1 >/dev/null); rc=$?
check "flag of another mode refused" test "$rc" -eq 2 -a -n "$(grep -F -- "--speed applies to: live" <<<"$out")"
out=$("$SIM" validate --config "$SRC/deploy/sim/example.json" 2>&1); rc=$?
check "example config validates" test "$rc" -eq 0 -a -n "$(grep -F "config ok: 3 device(s)" <<<"$out")"

# Unreachable broker: a port nobody listens on.
DEAD=$(bash "$RMQ" pick)
start=$SECONDS
out=$("$SIM" backfill --days 1 --device $DEV1 --amqp "amqp://guest:guest@127.0.0.1:$DEAD" --max-retry-s 2 \
    --log-level error 2>&1 >/dev/null); rc=$?
took=$((SECONDS - start))
check "unreachable broker: exit 3" test "$rc" -eq 3
check "unreachable broker: 'broker unreachable ... retrying' then gives up" \
    test -n "$(grep -F "broker unreachable (127.0.0.1:$DEAD" <<<"$out" | grep -F retrying)" \
    -a -n "$(grep -F "gave up after 2 s" <<<"$out")" -a "$took" -le 10
check "unreachable broker: no password in messages" test -z "$(grep -F "guest:guest" <<<"$out")"

# ---- the broker ----------------------------------------------------------

if ! bash "$RMQ" wait "$PORT" 90; then
    fail "private RabbitMQ" "did not start (see $WORK/rmq)"
    finish
fi

cat >"$WORK/sim.json" <<EOF
{
  "devices": [{"id": "$DEV1"}, {"id": "$DEV2", "scale": 1.5}, {"id": "$DEV3", "scale": 0.5}],
  "interval_s": 600,
  "timezone": "Europe/Bucharest",
  "seed": 2024,
  "target": {"amqp": "$URL", "queue": "sim.test.plain"}
}
EOF

# Takes exactly $2 messages from queue $1 into $3 (one body per line), then checks the queue is empty.
drain() {
    local q=$1 n=$2 file=$3
    : >"$file"
    [ "$n" -gt 0 ] || return 0
    # One small exec per message: awk ends each body with a newline.
    timeout 120 amqp-consume -u "$URL" -q "$q" -c "$n" -p 1000 -- awk 1 >"$file" || return 1
    [ "$(wc -l <"$file")" -eq "$n" ] || return 1
    ! amqp-get -u "$URL" -q "$q" >/dev/null 2>&1
}

# Checks bodies against a summary line: parse, count, distinct sum, malformed count.
verify() { # verify <bodies> <summary-json> <expected malformed>
    python3 - "$1" "$2" "$3" <<'EOF'
import json, sys, re
bodies, summary, want_bad = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
uuid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
def good(r):
    return (isinstance(r, dict) and set(r) == {"timestamp", "device_id", "measurement_value"}
            and isinstance(r["timestamp"], int) and isinstance(r["device_id"], str)
            and uuid.match(r["device_id"]) and isinstance(r["measurement_value"], (int, float))
            and not isinstance(r["measurement_value"], bool))
seen, bad, copies = {}, 0, 0
for line in open(bodies):
    try:
        v = json.loads(line)
    except ValueError:
        bad += 1; continue
    rs = v if isinstance(v, list) else [v]
    if not rs or not all(good(r) for r in rs):
        bad += 1; continue
    for r in rs:
        key, micro = (r["device_id"], r["timestamp"]), round(r["measurement_value"] * 1e6)
        copies += 1
        if key in seen and seen[key] != micro: sys.exit("copies of %s differ" % (key,))
        seen[key] = micro
total = sum(seen.values())
per_dev = {}
for (d, _), m in seen.items(): per_dev[d] = per_dev.get(d, 0) + m
errors = []
if bad != want_bad: errors.append("malformed %d != %d" % (bad, want_bad))
if len(seen) != summary["readings"]: errors.append("distinct %d != %d" % (len(seen), summary["readings"]))
if copies != summary["confirmed"]: errors.append("copies %d != %d" % (copies, summary["confirmed"]))
if total != summary["total_micro_kwh"]: errors.append("sum %d != %d" % (total, summary["total_micro_kwh"]))
for d in summary["devices"]:
    if per_dev.get(d["device_id"], 0) != d["total_micro_kwh"]: errors.append("device %s" % d["device_id"])
    if sum(h["micro_kwh"] for h in d.get("hours", [])) != d["total_micro_kwh"]: errors.append("hours of " + d["device_id"])
if any(t % 600000 for _, t in seen): errors.append("timestamps off the 10-minute grid")
if errors: sys.exit("; ".join(errors))
EOF
}

# 1. A day of history for three devices, one reading per message.
line=$("$SIM" backfill --config "$WORK/sim.json" --days 1 --end 2024-03-11 --summary-json "$WORK/plain.json" \
    --quiet 2>"$WORK/plain.err"); rc=$?
check "backfill: exit 0" test "$rc" -eq 0
check "backfill: 3 devices x 144 readings confirmed" \
    test "$(field confirmed "$line")" = 432 -a "$(field sent "$line")" = 432 -a "$(field messages "$line")" = 432
total=$(field total_kwh "$line")
check "backfill: total_kwh matches the summary file" grep -qF "\"total_kwh\": $total," "$WORK/plain.json"
if drain sim.test.plain 432 "$WORK/plain.txt"; then
    pass "backfill: the queue holds exactly the confirmed number of messages"
    out=$(verify "$WORK/plain.txt" "$WORK/plain.json" 0 2>&1)
    check "backfill: bodies parse and values sum to total_kwh ${out:+($out)}" test -z "$out"
else
    fail "backfill: the queue holds exactly the confirmed number of messages"
fi

# 2. The same with faults: duplicates, shuffling, late readings, malformed extras, arrays of 5.
line=$("$SIM" backfill --config "$WORK/sim.json" --queue sim.test.faults --days 1 --end 2024-03-11 \
    --duplicates 0.1 --late 0.05 --late-by 10 --shuffle --malformed 0.05 --batch 5 \
    --summary-json "$WORK/faults.json" --quiet 2>"$WORK/faults.err"); rc=$?
check "faults: exit 0" test "$rc" -eq 0
check "faults: same total as without faults" test "$(field total_kwh "$line")" = "$total"
msgs=$(field messages "$line")
bad=$(field malformed "$line")
check "faults: duplicates and malformed were injected" test "$(field duplicates "$line")" -gt 0 -a "$bad" -gt 0
if drain sim.test.faults "$msgs" "$WORK/faults.txt"; then
    pass "faults: the queue holds exactly the confirmed number of messages"
    out=$(verify "$WORK/faults.txt" "$WORK/faults.json" "$bad" 2>&1)
    check "faults: distinct good readings sum to total_kwh, malformed counted ${out:+($out)}" test -z "$out"
else
    fail "faults: the queue holds exactly the confirmed number of messages"
fi

# 3. Live: replay an hour of a past day 36000 times faster.
line=$("$SIM" live --config "$WORK/sim.json" --queue sim.test.live --start 2024-03-10T12:00 \
    --end 2024-03-10T13:00 --speed 36000 --quiet 2>"$WORK/live.err"); rc=$?
check "live replay: exit 0, 6 intervals x 3 devices" test "$rc" -eq 0 -a "$(field confirmed "$line")" = 18
check "live replay: queue holds them" drain sim.test.live 18 "$WORK/live.txt"

# 4. A publish-only broker user, as the cluster's and the stack's "simulator":
#    it may write only to an exchange bound to the queue, so ems-sim must
#    publish there (--exchange) and declare nothing.
cat >"$WORK/via.json" <<EOF
{"queues": [{"name": "sim.test.via", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {}}],
 "exchanges": [{"name": "sim.test.via.x", "vhost": "/", "type": "direct", "durable": true, "auto_delete": false,
                "internal": false, "arguments": {}}],
 "bindings": [{"source": "sim.test.via.x", "vhost": "/", "destination": "sim.test.via", "destination_type": "queue",
               "routing_key": "sim.test.via", "arguments": {}}]}
EOF
bash "$RMQ" ctl "$WORK/rmq" import_definitions "$WORK/via.json" >"$WORK/via-ctl.log" 2>&1 &&
    bash "$RMQ" ctl "$WORK/rmq" add_user meter meter-pw >>"$WORK/via-ctl.log" 2>&1 &&
    bash "$RMQ" ctl "$WORK/rmq" set_permissions -p / meter '^$' '^sim\.test\.via\.x$' '^$' >>"$WORK/via-ctl.log" 2>&1
check "publish-only user and exchange set up" test "$?" -eq 0
METER="amqp://meter:meter-pw@127.0.0.1:$PORT"
line=$("$SIM" backfill --config "$WORK/sim.json" --amqp "$METER" --queue sim.test.via --exchange sim.test.via.x \
    --days 1 --end 2024-03-11 --summary-json "$WORK/via-sum.json" --quiet 2>"$WORK/via.err"); rc=$?
check "publish-only user with --exchange: exit 0, 432 confirmed" test "$rc" -eq 0 -a "$(field confirmed "$line")" = 432
if drain sim.test.via 432 "$WORK/via.txt"; then
    pass "publish-only user with --exchange: the queue holds them"
    out=$(verify "$WORK/via.txt" "$WORK/via-sum.json" 0 2>&1)
    check "publish-only user with --exchange: values sum to total_kwh ${out:+($out)}" test -z "$out"
else
    fail "publish-only user with --exchange: the queue holds them"
fi
out=$("$SIM" backfill --config "$WORK/sim.json" --amqp "$METER" --queue sim.test.via --days 1 --end 2024-03-11 \
    --max-retry-s 2 --quiet --log-level error 2>&1 >/dev/null); rc=$?
check "publish-only user without --exchange: refused, the message says why" \
    test "$rc" -ne 0 -a -n "$(grep -F -- "--exchange" <<<"$out")"
out=$("$SIM" backfill --config "$WORK/sim.json" --amqp "$METER" --queue sim.test.via --exchange no.such.x \
    --days 1 --end 2024-03-11 --max-retry-s 2 --quiet --log-level error 2>&1 >/dev/null); rc=$?
check "an exchange that does not exist: refused, named" test "$rc" -ne 0 -a -n "$(grep -F "no.such.x" <<<"$out")"
check "a publish-only user leaves no password in messages" test -z "$(grep -F "meter-pw" <<<"$out")"

# ---- the HTTP target: a real embedded ems serve ---------------------------

export HPORT EMS_WS_PORT
pick_ports() { # two distinct free ports, held together while chosen (the WebSocket's is not PORT+1)
    read -r HPORT EMS_WS_PORT <<<"$(python3 -c 'import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"
}
ADMIN_PW="admin-$RANDOM$RANDOM"
INGEST="ingest-$RANDOM$RANDOM"
serve() { # starts ems serve on $HPORT over $WORK/ems
    EMS_ADMIN_PASSWORD=$ADMIN_PW EMS_INGEST_TOKEN=$INGEST EMS_LOG_LEVEL=warn \
        "$EMS" serve --data-dir "$WORK/ems" --port "$HPORT" --bind 127.0.0.1 --web-dir "" >>"$WORK/ems.log" 2>&1 &
    SERVER_PID=$!
}
ready() { # up to 30 s; says why when the server died or never answered
    for _ in $(seq 1 300); do
        curl -fs "http://127.0.0.1:$HPORT/readyz" >/dev/null 2>&1 && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "---- ems serve (pid $SERVER_PID) not ready; last lines of its log:"
    tail -n 30 "$WORK/ems.log"
    return 1
}
api() { # api METHOD PATH [BODY]: JSON answer on stdout
    curl -fs -X "$1" "http://127.0.0.1:$HPORT$2" -H "Authorization: Bearer $ADMIN_TOKEN" \
        -H 'Content-Type: application/json' ${3:+-d "$3"}
}
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# A port free when picked can be taken before the server binds it (another
# process's outgoing connection): only then is the start tried again.
for attempt in 1 2 3; do
    pick_ports
    serve
    ready && break
    if [ "$attempt" -eq 3 ] || ! grep -q "Address already in use" "$WORK/ems.log"; then
        fail "http: ems serve ready"
        finish
    fi
    wait "$SERVER_PID" 2>/dev/null
done
ADMIN_TOKEN=$(curl -fs "http://127.0.0.1:$HPORT/api/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$ADMIN_PW\"}" | json '["token"]')
H1=$(api POST /api/devices '{"name":"sim meter 1","max_hourly_kwh":50}' | json '["id"]')
H2=$(api POST /api/devices '{"name":"sim meter 2","max_hourly_kwh":50}' | json '["id"]')

# The server goes away and comes back 1.5 s after ems-sim starts: it must retry, not give up.
kill -TERM "$SERVER_PID" && wait "$SERVER_PID" 2>/dev/null
(sleep 1.5 && EMS_ADMIN_PASSWORD=$ADMIN_PW EMS_INGEST_TOKEN=$INGEST EMS_LOG_LEVEL=warn \
    exec "$EMS" serve --data-dir "$WORK/ems" --port "$HPORT" --bind 127.0.0.1 --web-dir "" >>"$WORK/ems.log" 2>&1) &
SERVER_PID=$!
line=$(EMS_INGEST_TOKEN=$INGEST "$SIM" backfill --device "$H1" --device "$H2" --seed 7 --days 2 --end 2024-03-11 \
    --http "http://127.0.0.1:$HPORT/api/readings" --malformed 0.02 --duplicates 0.05 --quiet 2>"$WORK/http.err"); rc=$?
check "http: exit 0 after the server came back (retried)" \
    test "$rc" -eq 0 -a -n "$(grep -i -E "unreachable|retrying" "$WORK/http.err")"
stored=0
for dev in "$H1" "$H2"; do
    for day in 2024-03-08 2024-03-09 2024-03-10 2024-03-11; do
        t=$(api GET "/api/consumption/$dev?date=$day&tz=UTC" | json '["total_kwh"]')
        stored=$(python3 -c "print($stored + ${t:-0})")
    done
done
check "http: 576 distinct readings confirmed" test "$(field readings "$line")" = 576
check "http: the server's stored totals equal total_kwh (duplicates counted once)" \
    python3 -c "import sys; sys.exit(abs($stored - $(field total_kwh "$line")) > 1e-6)"
check "http: malformed messages were sent, refused, and added nothing" test "$(field malformed "$line")" -gt 0
out=$("$SIM" backfill --device "$H1" --days 1 --http "http://127.0.0.1:$HPORT/api/readings" --token wrong 2>&1 >/dev/null); rc=$?
check "http 401: exit 4 with the server's message" \
    test "$rc" -eq 4 -a -n "$(grep -F "HTTP 401: missing or invalid token" <<<"$out")"

finish
