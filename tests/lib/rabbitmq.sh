#!/usr/bin/env bash
# rabbitmq.sh — a private RabbitMQ broker for tests and the local cluster.
#
#   rabbitmq.sh start <dir> <amqp_port> [mgmt_port]   start (or restart) the broker kept in <dir>
#   rabbitmq.sh stop  <dir>                           stop it; kills by PID if shutdown fails
#   rabbitmq.sh wait  <amqp_port> [seconds]           wait until it accepts AMQP (default 30 s)
#   rabbitmq.sh ctl   <dir> <rabbitmqctl args...>     run rabbitmqctl against it (list_queues, ...)
#   rabbitmq.sh ports <amqp_port>                     print "<dist_port> <epmd_port>"
#   rabbitmq.sh pick                                  print a free amqp port whose derived ports are free
#
# Everything the broker writes lives in <dir>: its HOME (the Erlang cookie),
# data, logs, config and PID file, so that a start after a stop with the same
# <dir> and port finds its durable queues and persistent messages again.  The
# node listens on 127.0.0.1 only and runs its own epmd.  The distribution and
# epmd ports are derived from the amqp port by bijections on 1024..65535, so two
# instances with different amqp ports never share either.  A start in a <dir>
# whose broker still runs does nothing.
#
# With EMS_BROKER_OWNER_PID=<pid> in the environment, `start` also leaves a
# watcher that stops the broker once that process is gone, so a test that
# crashes does not leave a broker behind.
set -euo pipefail

RMQ_BIN=/usr/lib/rabbitmq/bin
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

die() { echo "rabbitmq.sh: $*" >&2; exit 1; }

is_port() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1024 ] && [ "$1" -le 65535 ]; }

# Shifts a port by $2 inside 1024..65535, wrapping around.
shift_port() { echo $(( ($1 - 1024 + $2) % (65536 - 1024) + 1024 )); }

dist_port() { shift_port "$1" 10000; }
epmd_port() { shift_port "$1" 20000; }

# Exports the environment the server and its command-line tools share.  The
# amqp port is recorded in <dir> so that `stop` needs only the directory.
broker_env() {
    local dir=$1 port=$2
    export HOME="$dir"
    export RABBITMQ_NODENAME="ems$port@localhost"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$port"
    export RABBITMQ_DIST_PORT
    RABBITMQ_DIST_PORT=$(dist_port "$port")
    export ERL_EPMD_ADDRESS=127.0.0.1
    export ERL_EPMD_PORT
    ERL_EPMD_PORT=$(epmd_port "$port")
    export RABBITMQ_MNESIA_BASE="$dir/mnesia"
    export RABBITMQ_LOG_BASE="$dir/log"
    export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
    export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
    export RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

# Free: a bind succeeds.  Nothing listening is not enough: a port held by a
# connection (the local end of an outgoing one, or one in TIME_WAIT after a
# load test) stops the broker too ("dist_port_already_used ... not_erlang").
port_free() {
    python3 -c 'import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

cmd_ports() {
    is_port "${1:-}" || die "ports: bad amqp port '${1:-}'"
    echo "$(dist_port "$1") $(epmd_port "$1")"
}

cmd_pick() {
    local p
    for _ in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 30000 ))
        if port_free "$p" && port_free "$(dist_port "$p")" && port_free "$(epmd_port "$p")"; then
            echo "$p"
            return 0
        fi
    done
    die "pick: no free port found"
}

cmd_wait() {
    local port=${1:-} secs=${2:-30}
    is_port "$port" || die "wait: bad amqp port '$port'"
    local url="amqp://guest:guest@127.0.0.1:$port"
    local deadline=$(( SECONDS + secs ))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if amqp-declare-queue -u "$url" -q ems.probe >/dev/null 2>&1; then
            amqp-delete-queue -u "$url" -q ems.probe >/dev/null 2>&1 || true
            return 0
        fi
        sleep 0.2
    done
    die "wait: no broker on 127.0.0.1:$port after ${secs}s"
}

# The PID of the launcher started by `start`: rabbitmq-server stays as the
# parent of the Erlang VM and leads the session setsid gave it.
running_pid() {
    local dir=$1 pid
    [ -f "$dir/launcher.pid" ] || return 1
    pid=$(cat "$dir/launcher.pid" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

cmd_start() {
    local dir=${1:-} port=${2:-} mgmt=${3:-}
    [ -n "$dir" ] || die "start: no directory"
    is_port "$port" || die "start: bad amqp port '$port'"
    [ -z "$mgmt" ] || is_port "$mgmt" || die "start: bad management port '$mgmt'"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if running_pid "$dir" >/dev/null; then
        return 0
    fi
    broker_env "$dir" "$port"
    mkdir -p "$RABBITMQ_MNESIA_BASE" "$RABBITMQ_LOG_BASE"
    : >"$RABBITMQ_CONF_ENV_FILE"
    echo "$port" >"$dir/amqp_port"
    {
        echo "listeners.tcp.default = 127.0.0.1:$port"
        echo "loopback_users = none"
        echo "log.console = false"
        echo "log.file.level = info"
        if [ -n "$mgmt" ]; then
            echo "management.tcp.ip = 127.0.0.1"
            echo "management.tcp.port = $mgmt"
        fi
    } >"$RABBITMQ_CONFIG_FILE"
    echo "[]." >"$RABBITMQ_ADVANCED_CONFIG_FILE"
    # An explicit empty list keeps the machine-wide plugin file out.
    echo "[]." >"$RABBITMQ_ENABLED_PLUGINS_FILE"
    if [ -n "$mgmt" ]; then
        "$RMQ_BIN/rabbitmq-plugins" enable --offline rabbitmq_management >>"$dir/plugins.log" 2>&1 ||
            die "start: could not enable the management plugin (see $dir/plugins.log)"
    fi
    rm -f "$RABBITMQ_PID_FILE"
    # A background job of a non-interactive shell is not a group leader, so
    # setsid execs in place and $! is the launcher, leader of a new session.
    setsid "$RMQ_BIN/rabbitmq-server" >>"$dir/server.log" 2>&1 </dev/null &
    echo $! >"$dir/launcher.pid"
    local owner=${EMS_BROKER_OWNER_PID:-}
    if [[ "$owner" =~ ^[0-9]+$ ]]; then
        # A zombie still answers kill -0: read its state too.
        setsid bash -c 'while kill -0 "$1" 2>/dev/null && ! grep -q "^State:.*Z" "/proc/$1/status" 2>/dev/null
                        do sleep 1; done; exec bash "$2" stop "$3"' \
            watcher "$owner" "$SELF" "$dir" >/dev/null 2>&1 </dev/null &
    fi
}

cmd_stop() {
    local dir=${1:-} port pid
    [ -n "$dir" ] || die "stop: no directory"
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd)
    [ -f "$dir/amqp_port" ] || return 0
    port=$(cat "$dir/amqp_port")
    broker_env "$dir" "$port"
    pid=$(running_pid "$dir" || true)
    if [ -n "$pid" ]; then
        timeout 30 "$RMQ_BIN/rabbitmqctl" shutdown >>"$dir/stop.log" 2>&1 || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            # The launcher leads its own process group: signal the group so
            # the Erlang VM goes too.
            kill -TERM -- "-$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
    fi
    # epmd outlives the broker; ours listens on our own port only.
    epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
    rm -f "$RABBITMQ_PID_FILE" "$dir/launcher.pid"
}

cmd_ctl() {
    local dir=${1:-}
    [ -n "$dir" ] && [ -f "$dir/amqp_port" ] || die "ctl: no broker in '$dir'"
    dir=$(cd "$dir" && pwd)
    shift
    broker_env "$dir" "$(cat "$dir/amqp_port")"
    exec "$RMQ_BIN/rabbitmqctl" "$@"
}

case "${1:-}" in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
wait) shift; cmd_wait "$@" ;;
ctl) shift; cmd_ctl "$@" ;;
ports) shift; cmd_ports "$@" ;;
pick) shift; cmd_pick "$@" ;;
*) die "usage: rabbitmq.sh start <dir> <amqp_port> [mgmt_port] | stop <dir> | wait <amqp_port> [seconds] | ctl <dir> <args...> | ports <amqp_port> | pick" ;;
esac
