#!/bin/sh
# entrypoint.sh — starts ems in a container with its Docker secrets as variables.
#
# Docker mounts a service's secrets as files in /run/secrets.  A secret whose
# file name is a variable's name in lower case (db_password, rabbitmq_password,
# ems_admin_password, ems_ingest_token) sets that variable, unless the service
# set it already; other files (the JWT keys) are read by path through
# EMS_JWT_*_KEY_FILE.  So passwords never appear in the stack file or in
# `docker inspect`, and ems needs no variable of its own for them.
set -eu

for file in /run/secrets/*; do
    [ -f "$file" ] || continue
    name=${file##*/}
    case "$name" in
    [a-z]*) ;;
    *) continue ;;
    esac
    case "$name" in
    *[!a-z0-9_]*) continue ;;
    esac
    var=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
    eval "already=\${$var+set}"
    [ -z "$already" ] || continue
    value=$(cat "$file")
    export "$var=$value"
done

exec /usr/local/bin/ems "$@"
