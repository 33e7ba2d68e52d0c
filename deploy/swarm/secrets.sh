#!/usr/bin/env bash
# secrets.sh — the secrets stack.yml reads, generated once into deploy/swarm/secrets/.
#
#   deploy/swarm/secrets.sh [--out DIR]
#
# Writes (mode 0600, in a 0700 folder; a file already there is kept, so a
# second run changes nothing and a deployed stack keeps its passwords):
#   <role>_db_password             one per PostgreSQL (auth users devices monitoring ws)
#   rabbitmq_<user>_password       one per broker user of rabbitmq-definitions.json
#   rabbitmq-definitions.json      those definitions with each user's password hash
#                                  (rendered again on every run, identical while the
#                                  passwords and the definitions stay the same)
#   ems_admin_password             the first EMS administrator's password
#   ems_ingest_token               the bearer secret of POST /api/readings
#   jwt-private.pem, jwt-public.pem  the ES256 key pair (`ems keygen` if EMS_BIN or
#                                  build/ems exists, else openssl)
# Needs openssl and python3.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$HERE/secrets
DATABASES="auth users devices monitoring ws"

die() {
    echo "secrets.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
    --out) [ $# -ge 2 ] || die "--out needs a folder"; OUT=$2; shift ;;
    --out=*) OUT=${1#*=} ;;
    *) die "usage: secrets.sh [--out DIR]" ;;
    esac
    shift
done
command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"
command -v python3 >/dev/null || die "python3 is needed (apt-get install python3)"

umask 077
mkdir -p "$OUT"
chmod 0700 "$OUT"

# A random secret in $OUT/$1 unless the file is there already.
secret() {
    [ -s "$OUT/$1" ] || openssl rand -hex 24 >"$OUT/$1"
}

for db in $DATABASES; do secret "${db}_db_password"; done
secret ems_admin_password
secret ems_ingest_token

users=$(python3 -c 'import json,sys; print(" ".join(u["name"] for u in json.load(open(sys.argv[1]))["users"]))' \
    "$HERE/rabbitmq-definitions.json")
for user in $users; do secret "rabbitmq_${user}_password"; done

# RabbitMQ's rabbit_password_hashing_sha256: base64(salt ‖ sha256(salt ‖ password)).
# The 4-byte salt is taken from the (random, per-user) password itself, so
# the same passwords render the same file: Docker refuses to change a secret
# in place, and a re-run must not invent a new one.
python3 - "$HERE/rabbitmq-definitions.json" "$OUT" >"$OUT/rabbitmq-definitions.json" <<'EOF'
import base64, hashlib, json, os, sys
defs = json.load(open(sys.argv[1]))
for user in defs["users"]:
    with open(os.path.join(sys.argv[2], "rabbitmq_%s_password" % user["name"])) as f:
        password = f.read().strip().encode()
    salt = hashlib.sha256(b"ems-rabbitmq-salt:" + password).digest()[:4]
    user["password_hash"] = base64.b64encode(salt + hashlib.sha256(salt + password).digest()).decode()
    user["hashing_algorithm"] = "rabbit_password_hashing_sha256"
json.dump(defs, sys.stdout, indent=2)
print()
EOF

if [ ! -s "$OUT/jwt-private.pem" ] || [ ! -s "$OUT/jwt-public.pem" ]; then
    ems=${EMS_BIN:-$ROOT/build/ems}
    if [ -x "$ems" ]; then
        "$ems" keygen "$OUT" >/dev/null
    else
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$OUT/jwt-private.pem" 2>/dev/null
        openssl pkey -in "$OUT/jwt-private.pem" -pubout -out "$OUT/jwt-public.pem"
    fi
fi
chmod 0600 "$OUT"/*
echo "secrets.sh: secrets in $OUT"
