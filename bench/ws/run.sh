#!/usr/bin/env bash
# run.sh [path/to/ems] — the WebSocket benchmark, in one run:
#
#   bash bench/ws/run.sh [path/to/ems]        (default: $EMS_BIN, else build/ems)
#
# Starts, in a temp dir and on free loopback ports, a private PostgreSQL
# (ems_auth, ems_ws), a private RabbitMQ, `ems serve --role auth` and ONE
# `ems serve --role ws` (distributed mode: the alerts are published on the
# broker, as devices publishes them).  BENCH_SESSIONS client accounts and
# BENCH_PAIRS client/administrator pairs are written straight into auth's
# accounts table (no argon2 per account: a login is not what is measured),
# and an ES256 token is signed for each with the key pair of `ems keygen`,
# the claims of src/core/auth.h.  Then bench/ws/wsload.c (compiled here with
# gcc) measures, in one process and one run:
#   (a) VmRSS / VmHWM of the ws process idle, then with BENCH_SESSIONS
#       sessions open (opened BENCH_WAVE at a time; failures counted);
#   (b) BENCH_ALERTS alerts published on
#       internal.device.websocket.user.notification.queue BENCH_ALERT_GAP_MS
#       apart, each to another held user, while the sessions stay open:
#       publish -> notification frame at the client, p50/p90/p99/max; the
#       same alerts are sent once before, with only the first wave open, as
#       the baseline that shows what the open sessions cost;
#   (c) chat between BENCH_PAIRS client/administrator pairs (sessions of (a)
#       still open): each client keeps BENCH_WINDOW messages in flight, its
#       administrator answers each; messages/s counted when the peer gets
#       them, over BENCH_CHAT_S seconds after 1 s of warm-up.
# The markdown report goes to stdout, progress to stderr.  The ws process
# runs with EMS_WS_RATE=100000 (the default, 50 messages/s per session, would
# close a chat session of (c) as a flood).  Everything listens on 127.0.0.1;
# every process started here is stopped by PID on exit, also on failure or
# Ctrl-C; the temp dir is removed unless BENCH_KEEP=1.
#
# Knobs: BENCH_SESSIONS (10000), BENCH_WAVE (500), BENCH_ALERTS (500),
# BENCH_ALERT_GAP_MS (20: 50 alerts/s, well under what one ws consumer
# stores; at a few ms apart the run measures the consumer's queue instead), BENCH_PAIRS (50), BENCH_CHAT_S (10), BENCH_WINDOW
# (4), BENCH_KEEP (0).
# Needs: gcc, librabbitmq-dev, libssl-dev, python3 with cryptography,
# PostgreSQL 15, RabbitMQ (the test recipes in tests/lib).
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=tests/lib/common.sh
. "$src/tests/lib/common.sh"
ems=${1:-${EMS_BIN:-$src/build/ems}}
if [ ! -x "$ems" ]; then
  echo "usage: $0 [path/to/ems]   (no executable at $ems)" >&2
  exit 2
fi
ems=$(realpath "$ems")
sessions=${BENCH_SESSIONS:-10000}
wave=${BENCH_WAVE:-500}
alerts=${BENCH_ALERTS:-500}
gap_ms=${BENCH_ALERT_GAP_MS:-20}
npairs=${BENCH_PAIRS:-50}
chat_s=${BENCH_CHAT_S:-10}
window=${BENCH_WINDOW:-4}

# 10k sessions need 10k descriptors on both ends: the soft limit up to the hard one.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((sessions + 2 * npairs + 1000)) ]; then
  echo "run.sh: the hard limit on open files ($hard) is below what $sessions sessions need" >&2
  exit 1
fi
ulimit -Sn "$hard"

tmp=$(make_tmp bench-ws 711) # as root, PostgreSQL runs as postgres and must pass through
mkdir -p "$tmp/logs"
pids=()

log() { echo "bench/ws: $*" >&2; }

cleanup() {
  local rc=$?
  stop_pids "${pids[@]}"
  backends_stop "$tmp"
  if [ "$rc" -ne 0 ]; then tail_logs 15 "$tmp"/logs/*.log >&2; fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "compiling wsload"
gcc -O2 -std=c17 -Wall -Wextra -Werror -D_GNU_SOURCE "$here/wsload.c" -lrabbitmq -lcrypto -o "$tmp/wsload"

read -r pg_port auth_port ws_rest ws_port <<<"$(free_ports 4)"
log "starting PostgreSQL and RabbitMQ"
backends_start "$tmp" "$pg_port" ems_auth ems_ws

"$ems" keygen "$tmp/keys" >/dev/null
set_role_env "$src/sql" "$tmp/keys" "$pg_port" "$amqp_port"
log "starting auth and ws"
env "${role_env[@]}" PORT="$auth_port" DB_DBNAME=ems_auth EMS_JWT_PRIVATE_KEY_FILE="$tmp/keys/jwt-private.pem" \
  EMS_ADMIN_PASSWORD="bench-$RANDOM$RANDOM" "$ems" serve --role auth >"$tmp/logs/auth.log" 2>&1 </dev/null &
pids+=($!)
env "${role_env[@]}" PORT="$ws_rest" EMS_WS_PORT="$ws_port" EMS_WS_REPLICA_ID=bench DB_DBNAME=ems_ws \
  AUTH_SERVICE_HOST="http://127.0.0.1:$auth_port" EMS_WS_RATE=100000 \
  "$ems" serve --role ws >"$tmp/logs/ws.log" 2>&1 </dev/null &
ws_pid=$!
pids+=("$ws_pid")
for port in "$auth_port" "$ws_rest"; do
  wait_ready "http://127.0.0.1:$port" 30 || { log "the process on port $port did not become ready"; exit 1; }
done

log "creating $sessions + 2x$npairs accounts and signing their tokens"
psql -q -v ON_ERROR_STOP=1 "postgresql://postgres@127.0.0.1:$pg_port/ems_auth" >/dev/null <<SQL
INSERT INTO accounts (id, username, password_hash, role, token_version, created_at, updated_at)
SELECT gen_random_uuid()::text, 'bench-h-' || lpad(g::text, 6, '0'), '!', 'client', 1, 0, 0
  FROM generate_series(1, $sessions) g;
INSERT INTO accounts (id, username, password_hash, role, token_version, created_at, updated_at)
SELECT gen_random_uuid()::text, 'bench-' || r || '-' || lpad(g::text, 6, '0'), '!',
       CASE r WHEN 'c' THEN 'client' ELSE 'admin' END, 1, 0, 0
  FROM generate_series(1, $npairs) g, (VALUES ('c'), ('a')) v(r);
SQL
psql -At -F ' ' "postgresql://postgres@127.0.0.1:$pg_port/ems_auth" \
  -c "SELECT id, username, role, token_version FROM accounts WHERE username LIKE 'bench-%' ORDER BY username" \
  >"$tmp/accounts.txt"
python3 - "$tmp/keys/jwt-private.pem" "$tmp/accounts.txt" "$tmp/hold.txt" "$tmp/pairs.txt" <<'PY'
# ES256 JWTs with the claims of src/core/auth.h: sub, username, role, ver, iat, exp.
import base64, json, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), password=None)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "ES256", "typ": "JWT"}, separators=(",", ":")).encode())
now = int(time.time())

def token(uid, name, role, ver):
    claims = {"sub": uid, "username": name, "role": role, "ver": int(ver), "iat": now, "exp": now + 3600}
    signing = head + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
    r, s = decode_dss_signature(key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
    return signing + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

held, clients, admins = [], {}, {}
for line in open(sys.argv[2]):
    uid, name, role, ver = line.split()
    t = token(uid, name, role, ver)
    if name.startswith("bench-h-"):
        held.append(f"{uid} {t}")
    else:
        (clients if name.startswith("bench-c-") else admins)[name[8:]] = (uid, t)
open(sys.argv[3], "w").write("\n".join(held) + "\n")
with open(sys.argv[4], "w") as f:
    for k in sorted(clients):
        f.write(f"{clients[k][0]} {clients[k][1]} {admins[k][0]} {admins[k][1]}\n")
PY

log "running wsload ($sessions sessions, $alerts alerts, $npairs chat pairs)"
"$tmp/wsload" --port "$ws_port" --server-pid "$ws_pid" --hold "$tmp/hold.txt" --pairs "$tmp/pairs.txt" \
  --amqp-port "$amqp_port" --wave "$wave" --alerts "$alerts" --alert-gap-ms "$gap_ms" \
  --chat-seconds "$chat_s" --window "$window" >"$tmp/result.txt"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
ws_cpu=$(awk '{printf "%.1f", ($14 + $15) / 100}' "/proc/$ws_pid/stat")
kill -0 "$ws_pid" 2>/dev/null || { log "the ws process died"; exit 1; }
refused=$(grep -c 'ws.refused' "$tmp/logs/ws.log" || true)
slow=$(grep -c 'ws.slow_consumer' "$tmp/logs/ws.log" || true)

# The report.
declare -A r
while IFS='=' read -r k v; do r[$k]=$v; done <"$tmp/result.txt"
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
met() { awk -v v="$1" -v t="$2" 'BEGIN { print (v >= 0 && v < t) ? "met" : "not met" }'; }
per_conn=$(awk -v a="${r[rss_open_kb]}" -v b="${r[rss_idle_kb]}" -v n="${r[sessions_open]}" \
  'BEGIN { if (n > 0) printf "%.1f", (a - b) / n; else print "-" }')
cat <<EOF
## WebSocket (bench/ws)

\`bash bench/ws/run.sh${1:+ $1}\` — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),
load average $load_before before the run and $load_after after it. One \`ems serve --role ws\` (distributed:
PostgreSQL + RabbitMQ, auth beside it), the load client \`bench/ws/wsload.c\` on the same machine.

| what | measured | target | |
|---|---|---|---|
| sessions held (opened $wave at a time) | ${r[sessions_open]} of ${r[sessions_wanted]} (${r[sessions_failed]} failed) in ${r[connect_s]} s | 10,000 | $([ "${r[sessions_open]}" -ge 10000 ] && echo met || echo "not met") |
| ws VmRSS idle / VmHWM idle | $(mb "${r[rss_idle_kb]}") MB / $(mb "${r[hwm_idle_kb]}") MB | | |
| ws VmRSS with the sessions open / VmHWM | $(mb "${r[rss_open_kb]}") MB / $(mb "${r[hwm_open_kb]}") MB | < 100 MB | $(met "$(mb "${r[rss_open_kb]}")" 100) |
| per session (RSS open − idle) / sessions | $per_conn kB | | |
| baseline, ${r[base_alerts_sessions]} sessions open: alert publish → client, p50 / p99 / max | ${r[base_alert_p50_ms]} / ${r[base_alert_p99_ms]} / ${r[base_alert_max_ms]} ms (${r[base_alerts_received]} of ${r[base_alerts_sent]} received) | | |
| alert publish → client, p50 / p90 | ${r[alert_p50_ms]} ms / ${r[alert_p90_ms]} ms | | |
| alert publish → client, p99 / max | ${r[alert_p99_ms]} ms / ${r[alert_max_ms]} ms | p99 < 50 ms | $(met "${r[alert_p99_ms]}" 50) |
| alerts received / sent (${r[alert_gap_ms]} ms apart, ${r[alerts_sessions]} sessions open) | ${r[alerts_received]} / ${r[alerts_sent]} (${r[alerts_duplicate]} twice) | all | $([ "${r[alerts_received]}" = "${r[alerts_sent]}" ] && echo met || echo "not met") |
| chat: pairs' sessions opened until every administrator has heard of every client online | ${r[chat_settle_s]} s (${r[chat_admin_presence]} of ${r[chat_admin_presence_wanted]} presence entries, in ${r[chat_admin_presence_frames]:-?} frames) | | |
| chat messages/s delivered to the peer, ${r[chat_pairs_open]} of ${r[chat_pairs]} pairs, window ${r[chat_window]} | ${r[chat_msgs_per_s]} | | |
| chat frames received by the pairs' sessions in all | ${r[chat_frames_received]} | | |
| ws VmRSS / VmHWM at the end | $(mb "${r[rss_end_kb]}") MB / $(mb "${r[hwm_end_kb]}") MB | | |
| sessions still open at the end | ${r[sessions_open_at_end]} (after the alerts: ${r[sessions_open_after_alerts]}); chat sessions lost: ${r[chat_sessions_lost]} | | |
| ws CPU time over the whole run | $ws_cpu s | | |
| \`ws.refused\` / \`ws.slow_consumer\` log lines | $refused / $slow | 0 / 0 | |
EOF
