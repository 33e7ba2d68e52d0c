#!/usr/bin/env bash
# cluster.sh — EMS distributed on one machine, everything on 127.0.0.1.
#
#   cluster.sh start  [--dir DIR] [--port-base N] [--roles "auth users devices"] [--replicas N]
#   cluster.sh stop   [--dir DIR]
#   cluster.sh status [--dir DIR]
#   cluster.sh env    [--dir DIR]        prints DIR/cluster.env as `export` lines, for eval
#
# `start` brings up a private PostgreSQL (one database per role), a private
# RabbitMQ (management UI on), one `ems serve --role R` process per role
# (monitoring once per replica), and nginx in front (deploy/nginx), waits
# until every role's /readyz and the gateway answer, prints the addresses and
# `cluster: ready`, and writes DIR/cluster.env.  `stop` stops every process
# it started, by PID, and is idempotent.  A second `start` on the same DIR
# finds its data again; it refuses while that cluster still runs.
#
# Every port is derived from --port-base (default 18000), so clusters whose
# bases are 40 or more apart never clash:
#   base+0 gateway   base+1 auth   base+2 users   base+3 devices   base+4 balancer
#   base+5 ws        base+6 support   base+7 ws WebSocket   base+10.. monitoring replicas 1..N
#   base+20 gateway status   base+30 PostgreSQL   base+31 AMQP   base+32 RabbitMQ UI
#   (RabbitMQ's distribution and epmd ports: see tests/lib/rabbitmq.sh ports)
#
# The broker is loaded with deploy/swarm/rabbitmq-definitions.json, and each
# role logs in as its own least-privileged user, as in the swarm stack.
#
# Environment: EMS_BIN (default build/ems), EMS_WEB_DIR (default web/dist;
# a placeholder page if missing), EMS_ADMIN_PASSWORD and EMS_INGEST_TOKEN
# (generated and kept in DIR when unset), GW_LOGIN_RATE / GW_LOGIN_BURST
# (gateway login limit, default 10r/s burst 20), EMS_CLUSTER_TIMEOUT (seconds
# to wait for the broker and for readiness, default 90).  Any other EMS_* / seed
# variable set by the caller (EMS_LOG_LEVEL, EMS_LOGIN_RATE, ...) reaches
# the roles unchanged.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_LIB=$ROOT/tests/lib/pg.sh
MQ_LIB=$ROOT/tests/lib/rabbitmq.sh
TEMPLATE=$ROOT/deploy/nginx/ems.conf.template
DEFINITIONS=$ROOT/deploy/swarm/rabbitmq-definitions.json
ALL_ROLES="auth users devices monitoring balancer ws support"
READY_TIMEOUT=${EMS_CLUSTER_TIMEOUT:-90}
STOP_TIMEOUT=10

DIR=$ROOT/var/cluster
PORT_BASE=18000
ROLES=""
REPLICAS=4

say() { echo "cluster: $*"; }
die() {
    echo "cluster: $*" >&2
    exit 1
}

usage() {
    sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---- arguments ------------------------------------------------------------

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
        --dir=*) DIR=${1#*=} ;;
        --port-base=*) PORT_BASE=${1#*=} ;;
        --roles=*) ROLES=${1#*=} ;;
        --replicas=*) REPLICAS=${1#*=} ;;
        --dir | --port-base | --roles | --replicas)
            [ $# -ge 2 ] || die "$1 needs a value"
            case "$1" in
            --dir) DIR=$2 ;;
            --port-base) PORT_BASE=$2 ;;
            --roles) ROLES=$2 ;;
            --replicas) REPLICAS=$2 ;;
            esac
            shift
            ;;
        -h | --help) usage ;;
        *) die "unknown argument '$1' (see --help)" ;;
        esac
        shift
    done
    [ -n "$DIR" ] || die "--dir is empty"
    DIR=$(realpath -m -- "$DIR")
    if ! [[ "$PORT_BASE" =~ ^[0-9]+$ ]] || [ "$PORT_BASE" -lt 1024 ] || [ "$PORT_BASE" -gt 65490 ]; then
        die "--port-base must be a number from 1024 to 65490, not '$PORT_BASE'"
    fi
    [[ "$REPLICAS" =~ ^[1-9]$ ]] || die "--replicas must be 1..9, not '$REPLICAS'"
}

# ---- ports and names ------------------------------------------------------

port_of() { # role [replica]
    local b=$PORT_BASE
    case "$1" in
    gateway) echo $((b)) ;;
    auth) echo $((b + 1)) ;;
    users) echo $((b + 2)) ;;
    devices) echo $((b + 3)) ;;
    balancer) echo $((b + 4)) ;;
    ws) echo $((b + 5)) ;;
    ws-socket) echo $((b + 7)) ;;
    support) echo $((b + 6)) ;;
    monitoring) echo $((b + 9 + ${2:-1})) ;;
    status) echo $((b + 20)) ;;
    postgres) echo $((b + 30)) ;;
    amqp) echo $((b + 31)) ;;
    mgmt) echo $((b + 32)) ;;
    *) die "no port for '$1'" ;;
    esac
}

# "auth", "monitoring-1", ...: one per process.
instances() {
    local r i
    for r in $ROLES; do
        if [ "$r" = monitoring ]; then
            for i in $(seq 1 "$REPLICAS"); do echo "monitoring-$i"; done
        else
            echo "$r"
        fi
    done
}

instance_role() { echo "${1%-[0-9]*}"; }
instance_replica() { [[ "$1" == *-[0-9]* ]] && echo "${1##*-}" || echo 1; }
instance_port() { port_of "$(instance_role "$1")" "$(instance_replica "$1")"; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- the ems binary and its roles -----------------------------------------

find_bin() {
    EMS_BIN=${EMS_BIN:-$ROOT/build/ems}
    [ -x "$EMS_BIN" ] || die "no ems binary at $EMS_BIN (build it with 'make build', or set EMS_BIN)"
    EMS_BIN=$(cd "$(dirname "$EMS_BIN")" && pwd)/$(basename "$EMS_BIN")
}

# The roles this binary has, from the "roles:" line of `ems --help`.
known_roles() {
    "$EMS_BIN" --help 2>&1 | sed -n 's/^roles:[[:space:]]*//p' | head -n 1
}

choose_roles() {
    local known r chosen=""
    known=" $(known_roles) "
    [ "$known" != "  " ] || die "$EMS_BIN --help lists no roles"
    if [ -z "$ROLES" ]; then
        for r in $ALL_ROLES; do
            [[ "$known" == *" $r "* ]] && chosen="$chosen $r"
        done
    else
        for r in $ROLES; do
            [[ "$known" == *" $r "* ]] || die "role '$r' is not in this binary (it has:$known)"
            [[ " $chosen " == *" $r "* ]] || chosen="$chosen $r"
        done
    fi
    ROLES=${chosen# }
    [ -n "$ROLES" ] || die "no roles to start"
}

# ---- secrets --------------------------------------------------------------

random_secret() { openssl rand -hex 16; }

# Writes DIR/<file> (0600) from $2 if given, else keeps the one there, else
# generates one; prints the value.
keep_secret() {
    local file=$DIR/$1 value=${2:-}
    if [ -z "$value" ]; then
        if [ -s "$file" ]; then
            cat "$file"
            return 0
        fi
        value=$(random_secret)
    fi
    (umask 077 && printf '%s\n' "$value" >"$file")
    printf '%s\n' "$value"
}

# ---- PIDs -----------------------------------------------------------------

pid_file() { echo "$DIR/run/$1.pid"; }

# The PID recorded for $1 if that process still runs and is the one we
# started (PIDs are reused: check its command line too).
live_pid() {
    local f pid cmd
    f=$(pid_file "$1")
    [ -f "$f" ] || return 1
    pid=$(cat "$f" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    case "$1" in
    nginx) [[ "$cmd" == *nginx* ]] || return 1 ;;
    *) [[ "$cmd" == *" serve --role $(instance_role "$1")"* ]] || return 1 ;;
    esac
    echo "$pid"
}

# ---- start ----------------------------------------------------------------

start_pg() {
    local port
    port=$(port_of postgres)
    bash "$PG_LIB" start "$DIR/pg" "$port" >/dev/null
    for r in $ROLES; do
        bash "$PG_LIB" createdb "$DIR/pg" "$port" "ems_$r"
    done
}

mgmt_api() { # method path [json]
    local url
    url="http://127.0.0.1:$(port_of mgmt)/api$2"
    if [ $# -ge 3 ]; then
        curl -sS -f -u guest:guest -X "$1" -H 'content-type: application/json' --data-binary "$3" "$url" >/dev/null
    else
        curl -sS -f -u guest:guest -X "$1" "$url" >/dev/null
    fi
}

start_rabbitmq() {
    local amqp mgmt user deadline
    amqp=$(port_of amqp)
    mgmt=$(port_of mgmt)
    bash "$MQ_LIB" start "$DIR/rabbitmq" "$amqp" "$mgmt"
    bash "$MQ_LIB" wait "$amqp" "$READY_TIMEOUT" >/dev/null
    deadline=$((SECONDS + READY_TIMEOUT))
    until mgmt_api GET /overview 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || die "RabbitMQ management UI did not answer on port $mgmt"
        sleep 0.3
    done
    # The stack's queues, users and permissions; then the users' passwords
    # (the definitions carry none).
    mgmt_api POST /definitions "@$DEFINITIONS" || die "RabbitMQ refused $DEFINITIONS"
    for user in $(broker_users); do
        mgmt_api PUT "/users/$user" \
            "{\"password\":\"$(keep_secret "secrets/rabbitmq-$user")\",\"tags\":\"$(broker_user_tags "$user")\"}" ||
            die "cannot set the password of RabbitMQ user $user"
    done
}

broker_users() {
    python3 -c 'import json,sys; print(" ".join(u["name"] for u in json.load(open(sys.argv[1]))["users"]))' \
        "$DEFINITIONS"
}

broker_user_tags() {
    python3 -c 'import json,sys
for u in json.load(open(sys.argv[1]))["users"]:
    if u["name"] == sys.argv[2]:
        t = u.get("tags", "")
        print(",".join(t) if isinstance(t, list) else t)' "$DEFINITIONS" "$1"
}

start_role() { # instance
    local inst=$1 role replica port broker_user
    role=$(instance_role "$inst")
    replica=$(instance_replica "$inst")
    port=$(instance_port "$inst")
    broker_user=$role
    local -a vars=(
        PORT="$port"
        EMS_BIND=127.0.0.1
        EMS_SQL_DIR="$ROOT/sql"
        DB_IP=127.0.0.1
        DB_PORT="$(port_of postgres)"
        DB_USER=postgres
        DB_PASSWORD=
        DB_DBNAME="ems_$role"
        RABBITMQ_HOST=127.0.0.1
        RABBITMQ_PORT="$(port_of amqp)"
        RABBITMQ_USERNAME="$broker_user"
        RABBITMQ_PASSWORD="$(keep_secret "secrets/rabbitmq-$broker_user")"
        RABBITMQ_VHOST=/
        EMS_JWT_PUBLIC_KEY_FILE="$DIR/keys/jwt-public.pem"
        EMS_REPLICAS="$REPLICAS"
        REPLICA_ID="$replica"
        EMS_INGEST_TOKEN="$INGEST_TOKEN"
        AUTH_SERVICE_HOST="http://127.0.0.1:$(port_of auth)"
        SUPPORT_SERVICE_HOST="http://127.0.0.1:$(port_of support)"
    )
    if [ "$role" = auth ]; then
        vars+=(EMS_JWT_PRIVATE_KEY_FILE="$DIR/keys/jwt-private.pem" EMS_ADMIN_PASSWORD="$ADMIN_PASSWORD")
    fi
    if [ "$role" = ws ]; then
        vars+=(EMS_WS_PORT="$(port_of ws-socket)")
    fi
    if [ "$role" = support ]; then
        # Answers from the caller's own data go through the gateway, with the caller's token.
        vars+=(EMS_API_URL="http://127.0.0.1:$(port_of gateway)")
    fi
    # A background job of a non-interactive shell is no group leader, so
    # env and setsid exec in place: $! is the ems process itself.
    env "${vars[@]}" setsid "$EMS_BIN" serve --role "$role" >>"$DIR/logs/$inst.log" 2>&1 </dev/null &
    echo $! >"$(pid_file "$inst")"
}

server_lines() { # role
    local r=$1 i out=""
    if [ "$r" = monitoring ]; then
        for i in $(seq 1 "$REPLICAS"); do out="${out}server 127.0.0.1:$(port_of monitoring "$i") max_fails=1 fail_timeout=2s; "; done
    else
        out="server 127.0.0.1:$(port_of "$r");"
    fi
    echo "$out"
}

render_nginx() {
    local web=${EMS_WEB_DIR:-$ROOT/web/dist} vars
    if [ ! -f "$web/index.html" ]; then
        web=$DIR/nginx/web
        mkdir -p "$web"
        cat >"$web/index.html" <<'EOF'
<!doctype html>
<html lang="en"><meta charset="utf-8"><title>EMS</title>
<body><h1>EMS gateway</h1>
<p>The API is up under <code>/api</code>. The web app is not built yet:
run <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>, then restart the cluster.</p>
</body></html>
EOF
    fi
    WEB_ROOT=$(cd "$web" && pwd)
    export GW_USER="" GW_PREFIX="$DIR/nginx" GW_ERROR_LOG="$DIR/logs/nginx-error.log"
    export GW_ACCESS_LOG="$DIR/logs/nginx-access.log" GW_WEB_ROOT="$WEB_ROOT"
    export GW_LISTEN GW_STATUS_LISTEN
    GW_LISTEN="127.0.0.1:$(port_of gateway)"
    GW_STATUS_LISTEN="127.0.0.1:$(port_of status)"
    export GW_LOGIN_RATE=${GW_LOGIN_RATE:-10r/s} GW_LOGIN_BURST=${GW_LOGIN_BURST:-20}
    # As root, nginx's workers would drop to nobody, who cannot read a
    # private (0700) cluster directory: they keep the caller's user.
    [ "$(id -u)" -ne 0 ] || GW_USER="user root;"
    export GW_AUTH_SERVERS GW_USERS_SERVERS GW_DEVICES_SERVERS GW_MONITORING_SERVERS GW_WS_SERVERS GW_SUPPORT_SERVERS
    GW_AUTH_SERVERS=$(server_lines auth)
    GW_USERS_SERVERS=$(server_lines users)
    GW_DEVICES_SERVERS=$(server_lines devices)
    GW_MONITORING_SERVERS=$(server_lines monitoring)
    GW_WS_SERVERS=$(server_lines ws)
    export GW_WS_SOCKET_SERVERS="server 127.0.0.1:$(port_of ws-socket);"
    GW_SUPPORT_SERVERS=$(server_lines support)
    # Only our ${GW_...} names: nginx's own $variables must stay as they are.
    # shellcheck disable=SC2016
    vars=$(grep -o '\${GW_[A-Z_]*}' "$TEMPLATE" | sort -u | tr '\n' ' ')
    envsubst "$vars" <"$TEMPLATE" >"$DIR/nginx/nginx.conf"
    nginx -t -q -c "$DIR/nginx/nginx.conf" -e "$GW_ERROR_LOG" 2>"$DIR/logs/nginx-test.log" ||
        die "nginx refused $DIR/nginx/nginx.conf: $(cat "$DIR/logs/nginx-test.log")"
}

start_nginx() {
    render_nginx
    setsid nginx -c "$DIR/nginx/nginx.conf" -e "$GW_ERROR_LOG" >>"$DIR/logs/nginx.log" 2>&1 </dev/null &
    echo $! >"$(pid_file nginx)"
}

http_status() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true; }

# Waits until every role's /readyz and the gateway's /healthz answer 200; a
# process that exits meanwhile fails the start with the end of its log.
wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT)) pending inst
    pending="$(instances) nginx"
    while [ -n "$pending" ]; do
        local still=""
        for inst in $pending; do
            if ! live_pid "$inst" >/dev/null; then
                local log=$DIR/logs/$inst.log
                [ "$inst" != nginx ] || log=$DIR/logs/nginx-error.log
                echo "cluster: $inst exited during start; the end of $log:" >&2
                tail -n 20 "$log" >&2 || true
                return 1
            fi
            if [ "$inst" = nginx ]; then
                [ "$(http_status "http://127.0.0.1:$(port_of gateway)/healthz")" = 200 ] || still="$still $inst"
            else
                [ "$(http_status "http://127.0.0.1:$(instance_port "$inst")/readyz")" = 200 ] || still="$still $inst"
            fi
        done
        pending=${still# }
        [ -n "$pending" ] || break
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "cluster: not ready after ${READY_TIMEOUT}s: $pending" >&2
            return 1
        fi
        sleep 0.2
    done
}

write_env() {
    local f=$DIR/cluster.env inst pids="" upper
    {
        echo "# written by deploy/local/cluster.sh start; sourceable"
        printf 'CLUSTER_DIR=%q\n' "$DIR"
        printf 'PORT_BASE=%q\n' "$PORT_BASE"
        printf 'ROLES=%q\n' "$ROLES"
        printf 'REPLICAS=%q\n' "$REPLICAS"
        printf 'EMS_BIN=%q\n' "$EMS_BIN"
        printf 'GATEWAY_URL=%q\n' "http://127.0.0.1:$(port_of gateway)"
        printf 'GATEWAY_STATUS_URL=%q\n' "http://127.0.0.1:$(port_of status)/status"
        printf 'ADMIN_USERNAME=%q\n' "${EMS_ADMIN_USERNAME:-admin}"
        printf 'ADMIN_PASSWORD=%q\n' "$ADMIN_PASSWORD"
        printf 'INGEST_TOKEN=%q\n' "$INGEST_TOKEN"
        printf 'JWT_PUBLIC_KEY_FILE=%q\n' "$DIR/keys/jwt-public.pem"
        printf 'PG_HOST=127.0.0.1\n'
        printf 'PG_PORT=%q\n' "$(port_of postgres)"
        printf 'PG_USER=postgres\n'
        printf 'AMQP_HOST=127.0.0.1\n'
        printf 'AMQP_PORT=%q\n' "$(port_of amqp)"
        printf 'AMQP_URL=%q\n' "amqp://guest:guest@127.0.0.1:$(port_of amqp)"
        printf 'SIMULATOR_AMQP_URL=%q\n' \
            "amqp://simulator:$(keep_secret secrets/rabbitmq-simulator)@127.0.0.1:$(port_of amqp)"
        printf 'RABBITMQ_MGMT_URL=%q\n' "http://127.0.0.1:$(port_of mgmt)"
        for inst in $(instances); do
            upper=$(echo "$inst" | tr 'a-z-' 'A-Z_')
            printf '%s_URL=%q\n' "$upper" "http://127.0.0.1:$(instance_port "$inst")"
            printf 'PID_%s=%q\n' "$upper" "$(cat "$(pid_file "$inst")")"
            pids="$pids $(cat "$(pid_file "$inst")")"
        done
        printf 'PID_NGINX=%q\n' "$(cat "$(pid_file nginx)")"
        pids="$pids $(cat "$(pid_file nginx)")"
        printf 'PIDS=%q\n' "${pids# }"
    } >"$f.tmp"
    chmod 600 "$f.tmp"
    mv "$f.tmp" "$f"
}

print_addresses() {
    local inst
    say "gateway        http://127.0.0.1:$(port_of gateway)   (status: http://127.0.0.1:$(port_of status)/status)"
    say "admin          ${EMS_ADMIN_USERNAME:-admin} / password in $DIR/admin-password"
    say "RabbitMQ UI    http://127.0.0.1:$(port_of mgmt)   (guest / guest; AMQP on 127.0.0.1:$(port_of amqp))"
    say "PostgreSQL     127.0.0.1:$(port_of postgres)   (user postgres; databases $(for r in $ROLES; do printf 'ems_%s ' "$r"; done))"
    for inst in $(instances); do
        say "$(printf '%-14s' "$inst") http://127.0.0.1:$(instance_port "$inst")   (log: $DIR/logs/$inst.log)"
    done
}

undo_start() {
    [ "$1" -ne 0 ] || return 0
    echo "cluster: stopping what was started" >&2
    cmd_stop >/dev/null 2>&1 || true
}

cmd_start() {
    local inst p
    find_bin
    choose_roles
    for inst in $(instances) nginx; do
        if live_pid "$inst" >/dev/null; then
            die "a cluster already runs in $DIR ($inst); stop it first: $0 stop --dir $DIR"
        fi
    done
    for p in $(for inst in $(instances); do instance_port "$inst"; done) \
        "$(port_of gateway)" "$(port_of status)" "$(port_of postgres)" "$(port_of amqp)" "$(port_of mgmt)" \
        "$(port_of ws-socket)"; do
        port_free "$p" || die "port $p on 127.0.0.1 is taken: choose another --port-base"
    done
    command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx)"
    command -v envsubst >/dev/null || die "envsubst is not installed (apt-get install gettext-base)"

    # The PostgreSQL server runs as the postgres user when we are root: it
    # must be able to pass through DIR (nothing in DIR is listable by others).
    mkdir -p "$DIR"
    [ "$(id -u)" -ne 0 ] || chmod 0711 "$DIR"
    mkdir -p "$DIR/run" "$DIR/logs" "$DIR/nginx" "$DIR/keys" "$DIR/secrets"
    chmod 0700 "$DIR/run" "$DIR/logs" "$DIR/nginx" "$DIR/keys" "$DIR/secrets"
    ADMIN_PASSWORD=$(keep_secret admin-password "${EMS_ADMIN_PASSWORD:-}")
    INGEST_TOKEN=$(keep_secret ingest-token "${EMS_INGEST_TOKEN:-}")
    if [ ! -s "$DIR/keys/jwt-public.pem" ] || [ ! -s "$DIR/keys/jwt-private.pem" ]; then
        "$EMS_BIN" keygen "$DIR/keys" >>"$DIR/logs/keygen.log" 2>&1 ||
            die "ems keygen $DIR/keys failed: $(tail -n 3 "$DIR/logs/keygen.log")"
    fi

    say "starting in $DIR (port base $PORT_BASE, roles: $ROLES)"
    # Whatever fails from here on, nothing started is left running.
    trap 'undo_start $?' EXIT
    start_pg
    start_rabbitmq
    for inst in $(instances); do start_role "$inst"; done
    start_nginx
    wait_ready || die "start failed (logs in $DIR/logs)"
    write_env
    trap - EXIT
    print_addresses
    say "ready"
}

# ---- stop -----------------------------------------------------------------

# SIGTERM to every process, SIGKILL to what is left after the timeout.
stop_processes() { # timeout name...
    local timeout=$1 name pid deadline left
    shift
    local -a pids=()
    for name in "$@"; do
        pid=$(live_pid "$name") || continue
        kill -TERM "$pid" 2>/dev/null || true
        pids+=("$name:$pid")
    done
    deadline=$((SECONDS + timeout))
    while [ ${#pids[@]} -gt 0 ]; do
        left=()
        for name in "${pids[@]}"; do
            pid=${name#*:}
            kill -0 "$pid" 2>/dev/null && left+=("$name")
        done
        pids=("${left[@]+"${left[@]}"}")
        [ ${#pids[@]} -gt 0 ] || break
        if [ "$SECONDS" -ge "$deadline" ]; then
            for name in "${pids[@]}"; do
                echo "cluster: ${name%%:*} did not stop in ${timeout}s: SIGKILL" >&2
                # setsid made each process the leader of its own group:
                # nginx's workers go with their master.
                kill -KILL -- "-${name#*:}" 2>/dev/null || kill -KILL "${name#*:}" 2>/dev/null || true
            done
            break
        fi
        sleep 0.1
    done
    for name in "$@"; do rm -f "$(pid_file "$name")"; done
}

cmd_stop() {
    local names="" f
    if [ -d "$DIR/run" ]; then
        for f in "$DIR"/run/*.pid; do
            [ -e "$f" ] || continue
            f=$(basename "$f" .pid)
            [ "$f" = nginx ] || names="$names $f"
        done
    fi
    # The gateway first, so no request reaches a role that is going away.
    stop_processes 5 nginx
    # shellcheck disable=SC2086
    [ -z "$names" ] || stop_processes "$STOP_TIMEOUT" $names
    bash "$MQ_LIB" stop "$DIR/rabbitmq"
    bash "$PG_LIB" stop "$DIR/pg"
    [ ! -f "$DIR/cluster.env" ] || sed -i 's/^PIDS=.*/PIDS=""/' "$DIR/cluster.env"
    say "stopped ($DIR)"
}

# ---- status / env ---------------------------------------------------------

cmd_status() {
    local f name pid code bad=0 url
    if ! ls "$DIR"/run/*.pid >/dev/null 2>&1; then
        say "not running ($DIR)"
        return 3
    fi
    # shellcheck disable=SC1091
    . "$DIR/cluster.env" 2>/dev/null || true
    for f in "$DIR"/run/*.pid; do
        name=$(basename "$f" .pid)
        if pid=$(live_pid "$name"); then
            if [ "$name" = nginx ]; then
                url="http://127.0.0.1:$(port_of gateway)/healthz"
            else
                url=$(grep -E "^$(echo "$name" | tr 'a-z-' 'A-Z_')_URL=" "$DIR/cluster.env" 2>/dev/null | cut -d= -f2)/readyz
            fi
            code=$(http_status "$url")
            say "$(printf '%-14s pid %-7s %s -> %s' "$name" "$pid" "$url" "$code")"
            [ "$code" = 200 ] || bad=1
        else
            say "$(printf '%-14s not running' "$name")"
            bad=1
        fi
    done
    if [ "$bad" -ne 0 ]; then
        say "degraded"
        return 1
    fi
    say "ready"
}

cmd_env() {
    [ -f "$DIR/cluster.env" ] || die "no $DIR/cluster.env: start the cluster first"
    grep -v '^#' "$DIR/cluster.env" | sed 's/^/export /'
}

main() {
    [ $# -ge 1 ] || usage
    local cmd=$1
    shift
    parse_args "$@"
    case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *) usage ;;
    esac
}

main "$@"
