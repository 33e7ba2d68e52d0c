# lib.sh — what the benchmark drivers bench/api/run.sh and bench/ingest/run.sh share; source it.
#
# Both start `ems serve` and a deploy/local/cluster.sh cluster in a temp dir, record result lines
# for their report.py, and must stop every process they started, also after a failure or Ctrl-C.
# This file sources tests/lib/common.sh (ports, PIDs, logs) and adds: say and die (progress and
# the end of a run, on stderr); bench_ems, need_tools and whole_numbers (the checks before a
# run); bench_tmp (the temp dir with run/ for PID files, logs/, the results file, and the EXIT
# trap that stops everything); record and record_machine (result lines); http_code and login
# (over HTTP); stop_cluster.  The driver sets ROOT (the source tree), CLUSTER (cluster.sh) and
# KEEP (1 keeps the temp dir) before calling bench_tmp.  A process whose PID file is in
# $tmp/run when the driver exits is stopped by PID; the cluster is stopped while
# cluster_started is 1.
# shellcheck shell=bash
# shellcheck disable=SC2034  # EMS, tmp, results and cluster_dir are set for the driver

# shellcheck source=tests/lib/common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/lib/common.sh"

# say <words>: one line of progress on stderr.
say() { echo "bench: $*" >&2; }

# die <words>: says why on stderr and exits 1 (the EXIT trap cleans up).
die() {
    echo "bench: $*" >&2
    exit 1
}

# bench_ems <driver> [path]: sets EMS to the binary given, else $EMS_BIN, else build/ems; dies
# unless it is executable.
bench_ems() {
    EMS=${2:-${EMS_BIN:-$ROOT/build/ems}}
    [ -x "$EMS" ] || die "no ems binary at '$EMS' (usage: bash bench/$1/run.sh [path/to/ems])"
    EMS=$(realpath "$EMS")
}

# need_tools <command>...: dies naming the first one not installed.
need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is not installed"
    done
}

# whole_numbers <value>...: dies unless every BENCH_* knob given is a whole number.
whole_numbers() {
    local n
    for n in "$@"; do
        [[ "$n" =~ ^[0-9]+$ ]] || die "BENCH_* knobs are whole numbers, not '$n'"
    done
}

# bench_tmp <name>: the temp dir ems-<name>.XXXXXX (PostgreSQL, running as its own user, must
# pass through it) with run/ and logs/, the results file, and the traps that clean up.
bench_tmp() {
    tmp=$(make_tmp "$1" 0711) || die "cannot make a temp dir"
    mkdir -p "$tmp/run" "$tmp/logs"
    chmod 0700 "$tmp/run" "$tmp/logs"
    results=$tmp/results
    : >"$results"
    cluster_dir=$tmp/cluster
    cluster_started=0
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# bench_cleanup: the EXIT trap: stops what run/ and the cluster hold, shows the ends of the logs
# after a failure (not after an interrupt: nothing failed), removes the temp dir.
bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pidfiles "$tmp"/run/*.pid
    [ "$cluster_started" -ne 1 ] || stop_cluster
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ]; then
        tail_logs 15 "$tmp"/logs/*.log "$cluster_dir"/logs/*.log >&2
    fi
    if [ "$KEEP" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
    exit "$rc"
}

# stop_cluster: cluster.sh stop on the driver's cluster; a failure is said, not fatal.
stop_cluster() {
    bash "$CLUSTER" stop --dir "$cluster_dir" >"$tmp/logs/cluster-stop.log" 2>&1 ||
        say "cluster stop failed: $(tail -n 3 "$tmp/logs/cluster-stop.log")"
    cluster_started=0
}

# record <words>: one result line for report.py.
record() { echo "$*" >>"$results"; }

# record_machine: the date and the machine the run is on.
record_machine() {
    local cpu_model mem_gb
    cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    mem_gb=$(awk '/^MemTotal:/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
    record "meta date $(date -u '+%Y-%m-%d %H:%M UTC')"
    record "meta machine $(nproc) CPUs ($cpu_model), ${mem_gb} GiB RAM, Linux $(uname -r)"
}

# http_code <curl args...>: the HTTP status of one request ("000" if none came).
http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@" || true; }

# login <base-url> <password>: prints the admin's token.
login() {
    local body
    body=$(jq -cn --arg p "$2" '{username: "admin", password: $p}')
    curl -sS -f -m 10 -H 'content-type: application/json' --data-binary "$body" "$1/api/auth/login" |
        jq -er .token
}
