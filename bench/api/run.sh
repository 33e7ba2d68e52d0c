#!/usr/bin/env bash
# run.sh [path/to/ems] — the API benchmark: an authenticated read against
# nginx serving the same bytes, in one run, plus each process's footprint.
#
#   bash bench/api/run.sh [path/to/ems]      (default: $EMS_BIN, else build/ems)
#
# Embedded phase: starts `ems serve` on a free loopback port with a temp data
# dir and a random admin password, logs in as admin, creates a device and
# fetches GET /api/devices/{id}; writes that answer's exact bytes to a file
# that a private nginx (config written here: loopback port, open_file_cache,
# access_log off) serves; then measures both with wrk, ROUNDS times
# interleaved, and stops `ems serve`.
# Distributed phase: starts deploy/local/cluster.sh in its own temp dir on
# port base BENCH_PORT_BASE, and measures the same read through the gateway
# (nginx forward-auth: each read costs auth's /verify plus devices' read)
# beside a static file of the same bytes served by that same gateway, and the
# private nginx once more; as diagnostics, auth's /verify and devices' read
# asked directly, without nginx; then stops the cluster.
# Footprint: VmRSS of every ems process after start plus a few requests
# ("idle") and after the wrk rounds, and the time from process start to the
# first 200 from /readyz (bench/api/watch_ready.py, polling every 10 ms):
# `ems serve` on an empty data dir and once more on the same data, each role
# as cluster.sh starts them all at once on fresh databases.
#
# The markdown report goes to stdout, progress to stderr; nothing is written
# into the repository.  Everything listens on 127.0.0.1 only, every process
# started here is stopped by PID on exit (also on failure or Ctrl-C), and the
# temp dir is removed (BENCH_KEEP=1 keeps it, for its logs).
#
# Knobs (environment): BENCH_DURATION (s, default 10), BENCH_WARMUP (s, 2),
# BENCH_THREADS (2), BENCH_CONNECTIONS (50), BENCH_ROUNDS (3),
# BENCH_PORT_BASE (26000; the cluster uses base+0..base+40 and its broker's
# derived ports), BENCH_REPLICAS (monitoring replicas, 4),
# BENCH_DISTRIBUTED (1; 0 skips the cluster), BENCH_KEEP (0).
# Needs: wrk, nginx, curl, jq, python3, openssl, and what cluster.sh needs
# (PostgreSQL, RabbitMQ, envsubst).
# shellcheck disable=SC2317,SC2153  # cleanup runs from the EXIT trap; cluster.env sets GATEWAY_URL etc.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CLUSTER=$ROOT/deploy/local/cluster.sh
LUA=$HERE/report.lua
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-50}
ROUNDS=${BENCH_ROUNDS:-3}
PORT_BASE=${BENCH_PORT_BASE:-26000}
REPLICAS=${BENCH_REPLICAS:-4}
DISTRIBUTED=${BENCH_DISTRIBUTED:-1}
KEEP=${BENCH_KEEP:-0}

# ---- checks ---------------------------------------------------------------

bench_ems api "${1:-}"
need_tools wrk nginx curl jq python3 openssl
whole_numbers "$DURATION" "$WARMUP" "$THREADS" "$CONNS" "$ROUNDS" "$PORT_BASE" "$REPLICAS"
[ "$CONNS" -ge "$THREADS" ] || die "BENCH_CONNECTIONS must be at least BENCH_THREADS"

# ---- temp dir and cleanup -------------------------------------------------

bench_tmp bench
# The private nginx's files, and the embedded server's data.
mkdir -p "$tmp/ems-data" "$tmp/web" "$tmp/gw-web" "$tmp/nginx"
chmod 0700 "$tmp/ems-data" "$tmp/nginx"
watcher=""

# ---- helpers --------------------------------------------------------------

# pid -> "VmRSS RssAnon" in kB ("0 0" if gone).  VmRSS counts the shared
# libraries' pages in every process that maps them; RssAnon is the process's
# own memory, which is what adding processes up should count.
rss_kb() {
    awk '/^VmRSS:/ {r = $2} /^RssAnon:/ {a = $2} END {print r + 0, a + 0}' "/proc/$1/status" 2>/dev/null ||
        echo "0 0"
}

# nginx: the master and its workers.
nginx_rss_kb() { # master pid
    local r a pid sum_r=0 sum_a=0
    for pid in "$1" $(ps -o pid= --ppid "$1"); do
        read -r r a <<<"$(rss_kb "$pid")"
        sum_r=$((sum_r + r))
        sum_a=$((sum_a + a))
    done
    echo "$sum_r $sum_a"
}

# Share of the CPUs busy over one second, from /proc/stat: the load the rest
# of the machine puts on it.
cpu_busy_pct() {
    local a b
    a=$(head -n 1 /proc/stat)
    sleep 1
    b=$(head -n 1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN {
        n = split(a, x); split(b, y); total = 0
        for (i = 2; i <= 9 && i <= n; i++) total += y[i] - x[i]   # guest time is inside user
        idle = (y[5] - x[5]) + (y[6] - x[6])
        printf "%.0f", (total > 0 ? 100 * (total - idle) / total : 0) }'
}

load_line() { echo "loadavg $(cut -d' ' -f1-3 /proc/loadavg), CPUs busy $(cpu_busy_pct) % over 1 s"; }

create_device() { # base-url token -> id
    local body
    body='{"name":"bench meter 0001","max_hourly_kwh":2.5,"description":"benchmark device",'
    body+='"address":"1 Loopback Road","energy_class":"A+"}'
    curl -sS -f -m 10 -H "Authorization: Bearer $2" -H 'content-type: application/json' \
        --data-binary "$body" "$1/api/devices" | jq -er .id
}

# A few reads, so "idle" RSS is that of a server that has answered requests.
warm_reads() { # url token
    for _ in 1 2 3 4 5; do
        [ "$(http_code -H "Authorization: Bearer $2" "$1")" = 200 ] || die "GET $1 did not answer 200"
    done
}

run_wrk() { # scenario round url [token]
    local scen=$1 round=$2 url=$3 token=${4:-} out line
    BENCH_TOKEN=$token timeout $((WARMUP + 30)) \
        wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$LUA" "$url" >/dev/null 2>&1 || true
    out=$(BENCH_TOKEN=$token timeout $((DURATION + 30)) \
        wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s -s "$LUA" "$url" 2>&1) ||
        die "wrk failed on $url: $out"
    line=$(grep '^BENCH ' <<<"$out") || die "wrk printed no BENCH line for $url: $out"
    # BENCH rps=.. p50_us=.. p99_us=.. requests=.. non2xx=.. socket_errors=.. bytes=..
    record "wrk $scen $round $(sed -E 's/^BENCH //; s/[a-z0-9_]+=//g' <<<"$line")"
    say "$(printf '%-12s round %s: %s' "$scen" "$round" "${line#BENCH }")"
}

# start_watcher OUT TIMEOUT SPEC...: watch_ready.py in the background (its PID
# in $watcher and run/watcher.pid), returning once it polls, before the
# processes it times start.  end_watcher: waits for its verdict.
start_watcher() {
    local out=$1 armed=$tmp/watcher-armed
    shift
    rm -f "$armed"
    python3 "$HERE/watch_ready.py" --armed "$armed" "$@" >"$out" &
    watcher=$!
    echo "$watcher" >"$tmp/run/watcher.pid"
    for _ in $(seq 3000); do
        [ -e "$armed" ] && return 0
        alive "$watcher" || die "watch_ready.py exited early"
        sleep 0.01
    done
    die "watch_ready.py did not start"
}
end_watcher() {
    local rc=0
    wait "$watcher" || rc=$?
    rm -f "$tmp/run/watcher.pid"
    return "$rc"
}

# ---- facts about the run --------------------------------------------------

commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1)" ]; then commit="$commit + uncommitted changes"; fi
record_machine
record "meta binary $EMS ($("$EMS" version 2>/dev/null | head -n 1), source $commit)"
record "meta tools $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2), $(nginx -v 2>&1 | sed 's/^nginx version: //')"
record "meta command bash bench/api/run.sh $EMS   (BENCH_DURATION=$DURATION BENCH_WARMUP=$WARMUP BENCH_THREADS=$THREADS BENCH_CONNECTIONS=$CONNS BENCH_ROUNDS=$ROUNDS BENCH_REPLICAS=$REPLICAS)"
record "meta method wrk -t$THREADS -c$CONNS -d${DURATION}s after a ${WARMUP} s warm-up run, $ROUNDS round(s) interleaved (read, static, read, static, ...), medians; wrk runs on the same CPUs as the servers"
load=$(load_line)
say "before the run: $load"
record "meta load_before $load"

# ---- embedded -------------------------------------------------------------

# The WebSocket port is given: by default it is PORT+1, which may be taken.
read -r ems_port ems_ws_port ngx_port <<<"$(free_ports 3)"
admin_password=$(openssl rand -hex 16)
say "embedded: ems serve on 127.0.0.1:$ems_port, private nginx on 127.0.0.1:$ngx_port"

# start_ems NAME: starts `ems serve` on the embedded data dir, waits for
# /readyz and records the time from process start as NAME.
start_ems() {
    local ms
    rm -f "$tmp/ready-embedded"
    start_watcher "$tmp/ready-embedded" 30 "$1=$tmp/run/ems.pid=http://127.0.0.1:$ems_port/readyz"
    EMS_ADMIN_PASSWORD=$admin_password EMS_BIND=127.0.0.1 EMS_WS_PORT=$ems_ws_port \
        setsid "$EMS" serve --port "$ems_port" --data-dir "$tmp/ems-data" --sql-dir "$ROOT/sql" \
        --web-dir "$tmp/web" >>"$tmp/logs/ems.log" 2>&1 </dev/null &
    echo $! >"$tmp/run/ems.pid"
    end_watcher || die "ems serve was not ready within 30 s"
    ms=$(cut -d' ' -f2 "$tmp/ready-embedded")
    record "ready $1 $ms"
    say "embedded: $1 ready after $ms ms"
}
start_ems ems_serve
ems_pid=$(cat "$tmp/run/ems.pid")

base=http://127.0.0.1:$ems_port
token=$(login "$base" "$admin_password") || die "admin login failed on $base"
device=$(create_device "$base" "$token") || die "creating a device failed on $base"
api_url=$base/api/devices/$device
curl -sS -f -m 5 -H "Authorization: Bearer $token" -o "$tmp/web/device.json" "$api_url"
warm_reads "$api_url" "$token"
record "size emb_api $(stat -c %s "$tmp/web/device.json")"
record "size emb_static $(stat -c %s "$tmp/web/device.json")"
record "size dist_static $(stat -c %s "$tmp/web/device.json")"
record "rss ems_serve idle $(rss_kb "$ems_pid")"

# The private nginx: the same bytes as a static file, cached file handles,
# no access log, keep-alive as long as the gateway's.
ngx_user=""
[ "$(id -u)" -ne 0 ] || ngx_user="user root;"
cat >"$tmp/nginx/nginx.conf" <<EOF
$ngx_user
worker_processes auto;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/logs/nginx-error.log warn;
events { worker_connections 1024; }
http {
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path       $tmp/nginx/proxy;
    fastcgi_temp_path     $tmp/nginx/fastcgi;
    uwsgi_temp_path       $tmp/nginx/uwsgi;
    scgi_temp_path        $tmp/nginx/scgi;
    types { application/json json; }
    default_type application/octet-stream;
    access_log off;
    server_tokens off;
    open_file_cache max=100 inactive=60s;
    keepalive_requests 10000;
    server {
        listen 127.0.0.1:$ngx_port;
        root $tmp/web;
    }
}
EOF
nginx -t -q -c "$tmp/nginx/nginx.conf" -e "$tmp/logs/nginx-error.log" 2>"$tmp/logs/nginx-test.log" ||
    die "nginx refused its config: $(cat "$tmp/logs/nginx-test.log")"
setsid nginx -c "$tmp/nginx/nginx.conf" -e "$tmp/logs/nginx-error.log" >"$tmp/logs/nginx.log" 2>&1 </dev/null &
echo $! >"$tmp/run/nginx.pid"
static_url=http://127.0.0.1:$ngx_port/device.json
for _ in $(seq 50); do
    [ "$(http_code "$static_url")" = 200 ] && break
    sleep 0.1
done
curl -sS -f -m 5 -o "$tmp/static-check" "$static_url" || die "private nginx does not serve $static_url"
cmp -s "$tmp/static-check" "$tmp/web/device.json" || die "private nginx serves other bytes than the API"

for round in $(seq 1 "$ROUNDS"); do
    run_wrk emb_api "$round" "$api_url" "$token"
    run_wrk emb_static "$round" "$static_url"
done
record "rss ems_serve loaded $(rss_kb "$ems_pid")"
stop_pidfiles "$tmp/run/ems.pid"
# Once more on the same data: no key pair or admin account to create.
start_ems ems_serve_restart
stop_pidfiles "$tmp/run/ems.pid"
record "meta load_embedded $(load_line)"

# ---- distributed ----------------------------------------------------------

if [ "$DISTRIBUTED" = 1 ]; then
    # The instances cluster.sh will start, and their ports (its documented
    # layout: base+1 auth, +2 users, +3 devices, +4 balancer, +5 ws,
    # +6 support, +9+i monitoring replica i).
    known=" $("$EMS" --help 2>&1 | sed -n 's/^roles:[[:space:]]*//p' | head -n 1) "
    specs=()
    for role in auth users devices monitoring balancer ws support; do
        [[ "$known" == *" $role "* ]] || continue
        case "$role" in
        auth) off=1 ;; users) off=2 ;; devices) off=3 ;; balancer) off=4 ;;
        ws) off=5 ;; support) off=6 ;; monitoring) off=0 ;;
        esac
        if [ "$role" = monitoring ]; then
            for i in $(seq 1 "$REPLICAS"); do
                specs+=("monitoring-$i=$cluster_dir/run/monitoring-$i.pid=http://127.0.0.1:$((PORT_BASE + 9 + i))/readyz")
            done
        else
            specs+=("$role=$cluster_dir/run/$role.pid=http://127.0.0.1:$((PORT_BASE + off))/readyz")
        fi
    done
    say "distributed: cluster.sh start --port-base $PORT_BASE (instances: ${specs[*]%%=*})"
    start_watcher "$tmp/ready-distributed" 150 "${specs[@]}"
    echo '<!doctype html><title>EMS bench</title>' >"$tmp/gw-web/index.html"
    cluster_started=1
    EMS_BIN=$EMS EMS_WEB_DIR=$tmp/gw-web \
        bash "$CLUSTER" start --dir "$cluster_dir" --port-base "$PORT_BASE" --replicas "$REPLICAS" \
        >"$tmp/logs/cluster-start.log" 2>&1 ||
        die "cluster.sh start failed: $(tail -n 5 "$tmp/logs/cluster-start.log")"
    end_watcher || say "some role was not seen ready by the watcher: $(tr '\n' ' ' <"$tmp/ready-distributed")"
    while read -r name ms; do record "ready $name $ms"; done <"$tmp/ready-distributed"
    say "distributed: ready ($(tr '\n' ' ' <"$tmp/ready-distributed")ms)"

    # shellcheck disable=SC1091
    . "$cluster_dir/cluster.env"
    gw_token=$(login "$GATEWAY_URL" "$ADMIN_PASSWORD") || die "admin login through the gateway failed"
    gw_device=$(create_device "$GATEWAY_URL" "$gw_token") || die "creating a device through the gateway failed"
    gw_api_url=$GATEWAY_URL/api/devices/$gw_device
    curl -sS -f -m 5 -H "Authorization: Bearer $gw_token" -o "$tmp/gw-web/device.json" "$gw_api_url"
    warm_reads "$gw_api_url" "$gw_token"
    gw_static_url=$GATEWAY_URL/device.json
    curl -sS -f -m 5 -o "$tmp/static-check" "$gw_static_url" || die "the gateway does not serve $gw_static_url"
    cmp -s "$tmp/static-check" "$tmp/gw-web/device.json" || die "the gateway serves other bytes than the API"
    record "size gw_api $(stat -c %s "$tmp/gw-web/device.json")"
    record "size gw_static $(stat -c %s "$tmp/gw-web/device.json")"
    # Diagnostics: the two upstream calls a gateway read costs, each asked
    # directly (no nginx), to show where the time goes.
    verify_url=$AUTH_URL/api/auth/verify
    devices_url=$DEVICES_URL/api/devices/$gw_device
    [ "$(http_code -H "Authorization: Bearer $gw_token" "$verify_url")" = 204 ] ||
        die "GET $verify_url did not answer 204"
    warm_reads "$devices_url" "$gw_token"
    record "size auth_verify 0"
    record "size devices_direct $(stat -c %s "$tmp/gw-web/device.json")"

    cluster_rss() { # phase
        local f name
        for f in "$cluster_dir"/run/*.pid; do
            name=$(basename "$f" .pid)
            if [ "$name" = nginx ]; then
                record "rss gateway_nginx $1 $(nginx_rss_kb "$(cat "$f")")"
            else
                record "rss $name $1 $(rss_kb "$(cat "$f")")"
            fi
        done
    }
    cluster_rss idle

    for round in $(seq 1 "$ROUNDS"); do
        run_wrk gw_api "$round" "$gw_api_url" "$gw_token"
        run_wrk gw_static "$round" "$gw_static_url"
        run_wrk dist_static "$round" "$static_url"
        run_wrk auth_verify "$round" "$verify_url" "$gw_token"
        run_wrk devices_direct "$round" "$devices_url" "$gw_token"
    done
    cluster_rss loaded
    stop_cluster
fi

record "meta load_after $(load_line)"
python3 "$HERE/report.py" "$results"
