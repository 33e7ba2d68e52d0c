#!/usr/bin/env bash
# run_swarm.sh — checks the Docker Swarm deployment without a Docker engine.
#
#   bash tests/deploy/run_swarm.sh <path-to-ems-binary>
#
# 1. deploy/swarm/stack.yml is a valid stack file: `docker stack config`
#    (docker CLI 23 or later), else `docker-compose config` (Debian 12's
#    docker-compose; its docker.io 20.10 client has no `stack config`).
# 2. deploy/swarm/secrets.sh generates every secret the stack reads.
# 3. check_swarm.py: the broker definitions name every queue with its .dlq and
#    give each role's user exactly its own queues; every variable set for an
#    ems service is one `ems serve --help` lists; the gateway's upstreams are
#    services of the stack.
# 4. deploy/swarm/entrypoint.sh and secrets.sh are valid shell.
# One PASS/FAIL line per check, then "N passed, N failed"; exit 1 on a failure.
set -uo pipefail

ROOT=${EMS_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
EMS=${1:-}
STACK=$ROOT/deploy/swarm/stack.yml
DEFS=$ROOT/deploy/swarm/rabbitmq-definitions.json
TEMPLATE=$ROOT/deploy/nginx/ems.conf.template
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

fail=0
pass=0
result() { # ok|fail text
    if [ "$1" = ok ]; then
        echo "PASS: $2"
        pass=$((pass + 1))
    else
        echo "FAIL: $2"
        fail=$((fail + 1))
    fi
}

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}

# ---- the binary's variables ---------------------------------------------------
if [ -z "$EMS" ] || [ ! -x "$EMS" ]; then
    result fail "the ems binary is given as \$1 (got '${EMS}')"
    finish
fi
if "$EMS" serve --help >"$TMP/help.txt" 2>&1; then
    result ok "ems serve --help"
else
    result fail "ems serve --help exited non-zero: $(head -n 3 "$TMP/help.txt")"
    finish
fi

# ---- the stack file -------------------------------------------------------------
validator=""
if docker stack config --help >/dev/null 2>&1; then
    validator="docker stack config"
    docker stack config -c "$STACK" >"$TMP/stack.yml" 2>"$TMP/stack.err"
    rc=$?
elif command -v docker-compose >/dev/null 2>&1; then
    validator="docker-compose config"
    docker-compose -f "$STACK" config >"$TMP/stack.yml" 2>"$TMP/stack.err"
    rc=$?
else
    result fail "no stack validator: install Debian's docker-compose (or a docker CLI >= 23 for 'docker stack config')"
    finish
fi
if [ "$rc" -eq 0 ]; then
    result ok "$validator accepts deploy/swarm/stack.yml"
else
    result fail "$validator rejects deploy/swarm/stack.yml: $(grep -v 'use the .configs. key' "$TMP/stack.err" | head -n 5)"
    finish
fi

# ---- secrets, rendered into a scratch folder ------------------------------------
if EMS_BIN="$EMS" bash "$ROOT/deploy/swarm/secrets.sh" --out "$TMP/secrets" >"$TMP/secrets.log" 2>&1; then
    result ok "deploy/swarm/secrets.sh generates the secrets"
else
    result fail "deploy/swarm/secrets.sh failed: $(tail -n 3 "$TMP/secrets.log")"
fi
before=$(cat "$TMP"/secrets/* 2>/dev/null | md5sum)
EMS_BIN="$EMS" bash "$ROOT/deploy/swarm/secrets.sh" --out "$TMP/secrets" >/dev/null 2>&1
if [ "$before" = "$(cat "$TMP"/secrets/* 2>/dev/null | md5sum)" ]; then
    result ok "a second secrets.sh run changes no secret (Docker cannot update one in place)"
else
    result fail "a second secrets.sh run changed the secrets"
fi

for script in deploy/swarm/entrypoint.sh deploy/swarm/secrets.sh deploy/local/cluster.sh; do
    if sh -n "$ROOT/$script" 2>/dev/null || bash -n "$ROOT/$script"; then
        result ok "$script parses"
    else
        result fail "$script does not parse"
    fi
done

# ---- the cross-checks ------------------------------------------------------------
py=python3
if ! $py -c 'import yaml' 2>/dev/null && [ -x /usr/bin/python3 ]; then py=/usr/bin/python3; fi
if ! $py -c 'import yaml' 2>/dev/null; then
    result fail "python3 with PyYAML (Debian: python3-yaml) for check_swarm.py"
    finish
fi
$py "$ROOT/tests/deploy/check_swarm.py" "$TMP/stack.yml" "$DEFS" "$TMP/help.txt" "$TEMPLATE" "$TMP/secrets" \
    >"$TMP/check.out" 2>&1
cat "$TMP/check.out"
pass=$((pass + $(grep -c '^PASS' "$TMP/check.out")))
fail=$((fail + $(grep -c '^FAIL' "$TMP/check.out")))
if ! grep -qE '^(PASS|FAIL)' "$TMP/check.out"; then
    result fail "check_swarm.py ran"
fi

finish
