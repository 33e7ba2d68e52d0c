#!/usr/bin/env bash
# run.sh [path/to/ems] — the ingest benchmark, in one run:
#
#   bash bench/ingest/run.sh [path/to/ems]    (default: $EMS_BIN, else build/ems;
#                                              ems-sim is taken from beside it)
#
# (a) Broker ceiling.  Starts deploy/local/cluster.sh in its own temp dir at
#     BENCH_PORT_BASE; before any reading flows, `ems-sim load` publishes
#     persistent one-reading messages (~90 B) with confirms in batches to a
#     queue of its own on that broker, and bench/ingest/drain.c (compiled
#     here) consumes them with prefetch 1000 and multi-acks and does nothing
#     else: msgs/s = consumed / (last consumed - first sent).  Measured twice:
#     (a1) ONE queue hop, drain on the sim's queue; (a2) TWO hops, as the
#     pipeline: bench/ingest/relay.c takes batches from the sim's queue,
#     republishes every message unchanged with confirms and multi-acks after
#     them (the balancer's protocol without its work), and drain consumes the
#     second queue.  (b)/(a2) is the ratio the target asks for.
# (b) Distributed pipeline.  Creates BENCH_DEVICES devices through the
#     gateway, waits until monitoring knows them, then `ems-sim backfill`
#     publishes one reading per message to external.data.collection.queue as
#     fast as the broker confirms (balancer -> 4 monitoring replicas ->
#     PostgreSQL).  Readings count once stored: the sum over the replicas of
#     ems_readings_stored_total on /metrics.  readings/s = stored / (time the
#     last was stored - time the first was sent).  The pipeline has TWO queue
#     hops.  Then latency: bench/ingest/probe.c publishes BENCH_SAMPLES
#     single readings one at a time and times each from just before the
#     publish until the device's hourly series (GET /api/consumption on
#     monitoring-1, asked every millisecond) includes it; once on the idle
#     pipeline and once while `ems-sim live` sends BENCH_LOAD_RATE readings/s
#     of the same devices.
# (s) Soak, when BENCH_SOAK_S > 0: `ems-sim live` at BENCH_LOAD_RATE
#     readings/s for BENCH_SOAK_S seconds through the whole pipeline, VmRSS
#     of every role and of RabbitMQ sampled every 10 s: is memory stable?
# (c) Embedded.  `ems serve` with EMS_INGEST_TOKEN, BENCH_DEVICES devices
#     created through its API, `ems-sim backfill --http --batch 1000`;
#     counted as stored the same way (/metrics of ems serve).
# During (b) and (c): CPU seconds of every process involved (from
# /proc/<pid>/stat), one `top` snapshot, and VmHWM / VmRSS of every role.
#
# The markdown report goes to stdout, progress to stderr; nothing is written
# into the repository.  Everything listens on 127.0.0.1; every process started
# here is stopped by PID on exit (also on failure or Ctrl-C); the temp dir is
# removed (BENCH_KEEP=1 keeps it).
#
# Knobs: BENCH_CEILING_S (s of publishing in (a), default 12), BENCH_DEVICES
# (100), BENCH_INTERVAL_B / BENCH_DAYS_B (s between a device's readings and
# days of history in (b): 120 and 1, 72k readings), BENCH_INTERVAL_C /
# BENCH_DAYS_C (60 and 3: 432k readings in (c)), BENCH_SAMPLES (20),
# BENCH_STORE_TIMEOUT (s to wait for the last reading to be stored, 90;
# the wait also ends after 20 s without progress),
# BENCH_PORT_BASE (27000), BENCH_REPLICAS (4), BENCH_LOAD_RATE (1000),
# BENCH_SOAK_S (0: no soak; 300 for the 5-minute memory run), BENCH_KEEP (0).
# Needs: gcc, librabbitmq-dev, libcurl-dev, curl, jq, python3, openssl, and
# what cluster.sh needs (PostgreSQL, RabbitMQ, nginx, envsubst).
# shellcheck disable=SC2317,SC2153  # cleanup runs from the EXIT trap; cluster.env sets AMQP_URL etc.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CLUSTER=$ROOT/deploy/local/cluster.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

CEILING_S=${BENCH_CEILING_S:-12}
NDEV=${BENCH_DEVICES:-100}
INTERVAL_B=${BENCH_INTERVAL_B:-120}
INTERVAL_C=${BENCH_INTERVAL_C:-60}
DAYS_B=${BENCH_DAYS_B:-1}
DAYS_C=${BENCH_DAYS_C:-3}
SAMPLES=${BENCH_SAMPLES:-20}
STORE_TIMEOUT=${BENCH_STORE_TIMEOUT:-90}
PORT_BASE=${BENCH_PORT_BASE:-27000}
REPLICAS=${BENCH_REPLICAS:-4}
KEEP=${BENCH_KEEP:-0}
LOAD_RATE=${BENCH_LOAD_RATE:-1000}
SOAK_S=${BENCH_SOAK_S:-0}

# ---- checks ---------------------------------------------------------------

bench_ems ingest "${1:-}"
SIM=$(dirname "$EMS")/ems-sim
[ -x "$SIM" ] || die "no ems-sim beside $EMS"
need_tools gcc curl jq python3 openssl top
whole_numbers "$CEILING_S" "$NDEV" "$INTERVAL_B" "$INTERVAL_C" "$DAYS_B" "$DAYS_C" "$SAMPLES" "$STORE_TIMEOUT" \
    "$PORT_BASE" "$REPLICAS" "$LOAD_RATE" "$SOAK_S"
for role in monitoring balancer; do
    [[ " $("$EMS" --help 2>&1 | sed -n 's/^roles:[[:space:]]*//p' | head -n 1) " == *" $role "* ]] ||
        die "$EMS has no $role role"
done

# ---- temp dir and cleanup -------------------------------------------------

bench_tmp ingest-bench
mkdir -p "$tmp/ems-data"
chmod 0700 "$tmp/ems-data"

# ---- helpers --------------------------------------------------------------

now_ms() { date +%s%3N; }

# pid -> "VmHWM VmRSS" in kB
mem_kb() { awk '/^VmHWM:/ {h = $2} /^VmRSS:/ {r = $2} END {print h + 0, r + 0}' "/proc/$1/status" 2>/dev/null || echo "0 0"; }

# CPU seconds (user + system) a pid has used so far, or 0.
cpu_s() {
    local t
    t=$(sed -E 's/.*\) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
    awk -v t="${t:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'
}

# "busy total" jiffies of the whole machine
machine_ticks() { head -n 1 /proc/stat | awk '{t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t}'; }
busy_pct() { # "busy total" before, "busy total" after
    local b0 t0 b1 t1
    read -r b0 t0 <<<"$1"
    read -r b1 t1 <<<"$2"
    awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" 'BEGIN {printf "%.0f", (t > 0 ? 100 * b / t : 0)}'
}

# "name pid" lines for a phase's processes, in $tmp/procs-<phase>
procs_cluster() {
    local f pm
    for f in "$cluster_dir"/run/*.pid; do
        [ "$(basename "$f" .pid)" = nginx ] && continue
        echo "$(basename "$f" .pid) $(cat "$f")"
    done
    [ -f "$cluster_dir/rabbitmq/rabbitmq.pid" ] && echo "rabbitmq $(cat "$cluster_dir/rabbitmq/rabbitmq.pid")"
    pm=$(head -n 1 "$cluster_dir/pg/data/postmaster.pid" 2>/dev/null) || return 0
    echo "postgres $pm"
    for f in $(ps -o pid= --ppid "$pm"); do echo "postgres $f"; done
}

cpu_snapshot() { # procs-file out-file
    local name pid
    while read -r name pid; do echo "$name $pid $(cpu_s "$pid")"; done <"$1" >"$2"
}

# Records "cpu <phase> <name> <seconds>" from two snapshots, summed by name.
record_cpu() { # phase before after
    awk -v ph="$1" 'NR == FNR {b[$2] = $3; next} {d[$1] += $3 - b[$2]}
        END {for (n in d) printf "cpu %s %s %.2f\n", ph, n, d[n]}' "$2" "$3" | sort >>"$results"
}

stored_sum() { # metrics URLs...
    local u s=0 v
    for u in "$@"; do
        v=$(curl -s -m 2 "$u/metrics" | awk '$1 == "ems_readings_stored_total" {print $2}') || v=0
        s=$(awk -v s="$s" -v v="${v:-0}" 'BEGIN {printf "%d", s + v}')
    done
    echo "$s"
}

# Polls until the stored sum reaches want, the timeout, or 20 s without
# growth; sets last_store_ms (when the sum last grew) and stored.
wait_stored() { # want urls...
    local want=$1 deadline prev=-1
    shift
    deadline=$(($(now_ms) + STORE_TIMEOUT * 1000))
    while :; do
        stored=$(stored_sum "$@")
        [ "$stored" = "$prev" ] || last_store_ms=$(now_ms)
        prev=$stored
        [ "$stored" -lt "$want" ] || return 0
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        # No growth for 20 s: the pipeline is stuck, do not wait for the timeout.
        [ $(($(now_ms) - last_store_ms)) -lt 20000 ] || return 1
        sleep 0.1
    done
}

# Creates NDEV devices (limit high enough never to alert) and writes the sim
# config for them to $3.
make_devices() { # base-url token config-file interval
    local i ids=()
    for i in $(seq 1 "$NDEV"); do
        ids+=("$(curl -sS -f -m 10 -H "Authorization: Bearer $2" -H 'content-type: application/json' \
            --data-binary "{\"name\":\"ingest bench $i\",\"max_hourly_kwh\":100000}" "$1/api/devices" | jq -er .id)") ||
            die "creating device $i failed on $1"
    done
    printf '%s\n' "${ids[@]}" | jq -R . | jq -s --argjson iv "$4" \
        '{devices: map({id: .}), interval_s: $iv, timezone: "UTC", seed: 7}' >"$3"
    last_device=${ids[-1]}
}

wait_known() { # monitoring-url token device
    local day
    day=$(date -u +%F)
    for _ in $(seq 300); do
        [ "$(http_code -H "Authorization: Bearer $2" "$1/api/consumption/$3?date=$day&tz=UTC")" = 200 ] && return 0
        sleep 0.1
    done
    die "monitoring at $1 does not know device $3 after 30 s"
}

top_snapshot() { # phase: one top sample (over 1 s) 4 s in, top 13 processes
    sleep 3
    top -b -n 2 -d 1 -w 160 | awk '/^top -/ {n++} n == 2' | sed -n '7,19p' >"$tmp/top-$1" 2>/dev/null || true
}

sim_summary() { grep -E '^sent=' "$1" | tail -n 1; }

# A failed ems-sim run in (b) or (c) is a finding, not the end of the
# benchmark: what it got confirmed is still counted when stored.
sim_failed() { # phase log
    local why
    why=$(grep -v '^ts=' "$2" | tail -n 1)
    say "($1) ems-sim failed: $why"
    record "simfail $1 $why"
}
field() { sed -E "s/.*(^| )$1=([^ ]*).*/\2/" <<<"$2"; }

# backfill_phase PHASE URL... -- COMMAND...: runs COMMAND (an `ems-sim backfill`) while the CPU
# seconds of the processes in $tmp/procs-PHASE, the machine's load and one top snapshot are
# measured, waits until what it got confirmed is stored (the URLs' /metrics), and records
# "cpu PHASE ..." and "PHASE confirmed ... stored ...".
backfill_phase() {
    local phase=$1 urls=() base_stored m0 m1 t0 t_pub sum confirmed ok=1
    shift
    while [ "$1" != -- ]; do
        urls+=("$1")
        shift
    done
    shift
    base_stored=$(stored_sum "${urls[@]}")
    cpu_snapshot "$tmp/procs-$phase" "$tmp/cpu-${phase}0"
    m0=$(machine_ticks)
    top_snapshot "$phase" &
    echo $! >"$tmp/run/top.pid"
    t0=$(now_ms)
    TIMEFORMAT='%U %S'
    { time "$@" >"$tmp/sim-$phase.out" 2>"$tmp/logs/sim-$phase.log"; } 2>"$tmp/sim-$phase.time" ||
        sim_failed "$phase" "$tmp/logs/sim-$phase.log"
    t_pub=$(now_ms)
    sum=$(sim_summary "$tmp/sim-$phase.out")
    confirmed=$(field confirmed "$sum")
    confirmed=${confirmed:-0}
    wait_stored $((base_stored + confirmed)) "${urls[@]}" || ok=0
    m1=$(machine_ticks)
    cpu_snapshot "$tmp/procs-$phase" "$tmp/cpu-${phase}1"
    record_cpu "$phase" "$tmp/cpu-${phase}0" "$tmp/cpu-${phase}1"
    record "cpu $phase ems-sim $(tail -n 1 "$tmp/sim-$phase.time" | awk '{printf "%.2f", $1 + $2 + 0}')"
    record "$phase confirmed $confirmed stored $((stored - base_stored)) t0 $t0 t_pub $t_pub last $last_store_ms busy $(busy_pct "$m0" "$m1") complete $ok"
    say "($phase) confirmed $confirmed stored $((stored - base_stored)) in $((last_store_ms - t0)) ms"
    wait "$(cat "$tmp/run/top.pid")" 2>/dev/null || true
    rm -f "$tmp/run/top.pid"
}

# ---- facts ----------------------------------------------------------------

record_machine
record "meta binary $EMS"
record "meta loadavg_before $(cut -d' ' -f1-3 /proc/loadavg)"

for tool in drain relay probe; do
    gcc -std=c17 -O2 -Wall -Wextra -D_GNU_SOURCE "$HERE/$tool.c" -lrabbitmq -lcurl -o "$tmp/$tool" \
        2>"$tmp/logs/gcc.log" || die "cannot compile $tool.c: $(cat "$tmp/logs/gcc.log")"
done

# ---- cluster --------------------------------------------------------------

say "cluster.sh start --port-base $PORT_BASE --replicas $REPLICAS"
cluster_started=1
EMS_BIN=$EMS EMS_LOG_LEVEL=${EMS_LOG_LEVEL:-warn} \
    bash "$CLUSTER" start --dir "$cluster_dir" --port-base "$PORT_BASE" --replicas "$REPLICAS" \
    >"$tmp/logs/cluster-start.log" 2>&1 || die "cluster.sh start failed: $(tail -n 5 "$tmp/logs/cluster-start.log")"
# shellcheck disable=SC1091
. "$cluster_dir/cluster.env"
mon_urls=()
for i in $(seq 1 "$REPLICAS"); do mon_urls+=("http://127.0.0.1:$((PORT_BASE + 9 + i))"); done
procs_cluster >"$tmp/procs-b"

# ---- (a) broker ceiling ---------------------------------------------------

# ceiling HOPS: the sim publishes for CEILING_S s; with 2 hops relay forwards
# to the queue drain consumes.  Records "a<HOPS> ...".
ceiling() {
    local hops=$1 queue=bench.ceiling.$$.$1 last_queue rmq_pid rmq_cpu0 m0 m1 t0 t_pub sum confirmed
    local drain_pid first_ms last_ms consumed
    last_queue=$queue
    [ "$hops" = 2 ] && last_queue=$queue.out
    rmq_pid=$(cat "$cluster_dir/rabbitmq/rabbitmq.pid")
    say "(a$hops) ceiling, $hops hop(s): ems-sim load for ${CEILING_S} s to $queue, drain on $last_queue"
    "$tmp/drain" 127.0.0.1 "$AMQP_PORT" guest guest "$last_queue" 0 $((CEILING_S + 60)) \
        >"$tmp/drain-$hops.out" 2>"$tmp/logs/drain-$hops.log" &
    drain_pid=$!
    echo "$drain_pid" >"$tmp/run/drain.pid"
    if [ "$hops" = 2 ]; then
        "$tmp/relay" 127.0.0.1 "$AMQP_PORT" guest guest "$queue" "$last_queue" \
            >"$tmp/relay.out" 2>"$tmp/logs/relay.log" &
        echo $! >"$tmp/run/relay.pid"
    fi
    sleep 0.5
    rmq_cpu0=$(cpu_s "$rmq_pid")
    m0=$(machine_ticks)
    t0=$(now_ms)
    "$SIM" load --amqp "$AMQP_URL" --queue "$queue" --devices 1000 --rate 10000000 --duration "$CEILING_S" \
        --publish-batch 1000 --quiet --seed "$hops" >"$tmp/sim-a$hops.out" 2>"$tmp/logs/sim-a$hops.log" ||
        die "ems-sim load (ceiling) failed: $(tail -n 3 "$tmp/logs/sim-a$hops.log")"
    t_pub=$(now_ms)
    wait "$drain_pid" || say "drain stopped by its timeout"
    rm -f "$tmp/run/drain.pid"
    [ "$hops" = 2 ] && stop_pidfiles "$tmp/run/relay.pid"
    m1=$(machine_ticks)
    sum=$(sim_summary "$tmp/sim-a$hops.out")
    confirmed=$(field confirmed "$sum")
    confirmed=${confirmed:-0}
    read -r first_ms last_ms consumed <<<"$(sed -E 's/[a-z_]+=//g' "$tmp/drain-$hops.out")"
    record "a$hops confirmed $confirmed consumed $consumed t0 $t0 t_pub $t_pub first $first_ms last $last_ms busy $(busy_pct "$m0" "$m1") rmq_cpu $(awk -v a="$rmq_cpu0" -v b="$(cpu_s "$rmq_pid")" 'BEGIN {printf "%.1f", b - a}')"
    say "(a$hops) confirmed $confirmed consumed $consumed in $((last_ms - t0)) ms"
}
ceiling 1
ceiling 2

# ---- (b) distributed pipeline ---------------------------------------------

token=$(login "$GATEWAY_URL" "$ADMIN_PASSWORD") || die "admin login through the gateway failed"
say "(b) creating $NDEV devices through the gateway"
make_devices "$GATEWAY_URL" "$token" "$tmp/sim-b.json" "$INTERVAL_B"
for u in "${mon_urls[@]}"; do wait_known "$u" "$token" "$last_device"; done
say "(b) ems-sim backfill --days $DAYS_B (interval $INTERVAL_B s, $NDEV devices) into external.data.collection.queue"
backfill_phase b "${mon_urls[@]}" -- "$SIM" backfill --config "$tmp/sim-b.json" --amqp "$AMQP_URL" \
    --days "$DAYS_B" --publish-batch 1000 --quiet
while read -r name pid; do
    case "$name" in monitoring-* | balancer | rabbitmq) record "mem b $name $(mem_kb "$pid")" ;; esac
done <"$tmp/procs-b"

# Latency: one reading at a time until the hourly series has it (probe.c),
# on the idle pipeline, then under BENCH_LOAD_RATE readings/s of live load.
dev_b=$(jq -r '.devices[0].id' "$tmp/sim-b.json")
probe() { # label
    local rc=0
    "$tmp/probe" 127.0.0.1 "$AMQP_PORT" guest guest external.data.collection.queue \
        "${mon_urls[0]}/api/consumption/$dev_b" "$token" "$dev_b" "$SAMPLES" 20 \
        >"$tmp/probe-$1.out" 2>"$tmp/logs/probe-$1.log" || rc=$?
    sed -n "s/^lat_ms=/lat $1 /p" "$tmp/probe-$1.out" >>"$results"
    [ "$rc" -eq 0 ] || {
        say "(b) probe $1 failed (exit $rc): $(tail -n 1 "$tmp/logs/probe-$1.log")"
        record "lat_timeout $1 $(grep -c . "$tmp/probe-$1.out")"
    }
}

# live_load SECONDS: the bench devices at LOAD_RATE readings/s, days in the
# past that (b) did not fill, in the background (pid in run/live.pid).
live_starts=0
live_load() {
    local speed start
    speed=$(awk -v r="$LOAD_RATE" -v n="$NDEV" -v i="$INTERVAL_B" 'BEGIN {printf "%.3f", r * i / n}')
    # Each run its own stretch of the past (40, 80, ... days back): no reading repeats another's.
    live_starts=$((live_starts + 1))
    start=$(date -u -d "@$(($(date +%s) - live_starts * 40 * 86400))" +%F)
    "$SIM" live --config "$tmp/sim-b.json" --amqp "$AMQP_URL" --start "$start" --speed "$speed" \
        --duration "$1" --publish-batch 100 --quiet >"$tmp/sim-live.out" 2>"$tmp/logs/sim-live.log" &
    echo $! >"$tmp/run/live.pid"
}

say "(b) latency: $SAMPLES single readings, idle"
probe idle
say "(b) latency: $SAMPLES single readings under $LOAD_RATE readings/s"
live_load 600
sleep 2
probe load
stop_pidfiles "$tmp/run/live.pid"

# ---- (s) soak -----------------------------------------------------------------

if [ "$SOAK_S" -gt 0 ]; then
    say "(s) soak: $LOAD_RATE readings/s for $SOAK_S s, memory sampled every 10 s"
    soak_stored0=$(stored_sum "${mon_urls[@]}")
    live_load "$SOAK_S"
    t_soak=$(now_ms)
    while alive "$(cat "$tmp/run/live.pid" 2>/dev/null || echo 0)"; do
        el=$((($(now_ms) - t_soak) / 1000))
        while read -r name pid; do
            case "$name" in monitoring-* | balancer | rabbitmq) record "soak $el $name $(mem_kb "$pid")" ;; esac
        done <"$tmp/procs-b"
        sleep 10
    done
    rm -f "$tmp/run/live.pid"
    sum=$(sim_summary "$tmp/sim-live.out")
    confirmed=$(field confirmed "$sum")
    wait_stored $((soak_stored0 + ${confirmed:-0})) "${mon_urls[@]}" || say "(s) not all soak readings stored"
    record "soakdone confirmed ${confirmed:-0} stored $((stored - soak_stored0)) seconds $((($(now_ms) - t_soak) / 1000))"
fi

stop_cluster

# ---- (c) embedded ---------------------------------------------------------

read -r port ws_port <<<"$(free_ports 2)"
admin_password=$(openssl rand -hex 16)
ingest_token=$(openssl rand -hex 24)
say "(c) ems serve on 127.0.0.1:$port"
# The bench reads ems_readings_stored_total from /metrics, which embedded mode keeps for
# administrators unless told otherwise.
EMS_ADMIN_PASSWORD=$admin_password EMS_INGEST_TOKEN=$ingest_token EMS_BIND=127.0.0.1 EMS_WS_PORT=$ws_port \
    EMS_METRICS_ACCESS=public EMS_LOG_LEVEL=${EMS_LOG_LEVEL:-warn} setsid "$EMS" serve --port "$port" --data-dir "$tmp/ems-data" \
    --sql-dir "$ROOT/sql" >"$tmp/logs/ems.log" 2>&1 </dev/null &
echo $! >"$tmp/run/ems.pid"
ems_pid=$!
base=http://127.0.0.1:$port
wait_ready "$base" 10 "$ems_pid" || die "ems serve not ready after 10 s"
token=$(login "$base" "$admin_password") || die "admin login on ems serve failed"
make_devices "$base" "$token" "$tmp/sim-c.json" "$INTERVAL_C"
wait_known "$base" "$token" "$last_device"
echo "ems-serve $ems_pid" >"$tmp/procs-c"
say "(c) ems-sim backfill --days $DAYS_C (interval $INTERVAL_C s) --http --batch 1000"
backfill_phase c "$base" -- env EMS_INGEST_TOKEN="$ingest_token" "$SIM" backfill --config "$tmp/sim-c.json" \
    --http "$base/api/readings" --batch 1000 --days "$DAYS_C" --quiet
record "mem c ems-serve $(mem_kb "$ems_pid")"
stop_pidfiles "$tmp/run/ems.pid"

record "meta loadavg_after $(cut -d' ' -f1-3 /proc/loadavg)"
for ph in b c; do
    [ -s "$tmp/top-$ph" ] || continue
    sed "s/^/top $ph /" "$tmp/top-$ph" >>"$results"
done
python3 "$HERE/report.py" "$results" "$CEILING_S" "$NDEV" "$INTERVAL_B" "$DAYS_B" "$DAYS_C" "$REPLICAS" "$INTERVAL_C" \
    "$LOAD_RATE"
