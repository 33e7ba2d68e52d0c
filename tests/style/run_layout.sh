#!/usr/bin/env bash
# run_layout.sh — no role includes another role's header.
#
# The contract between roles (a reading's wire forms, the replica hash,
# zones and local days) lives in src/core/; a role that needs something from
# another role's folder means that something belongs in core.  Fails on any
# `#include "<role>/..."` in src/roles/<other role>/ and prints the lines.
# ($1, the ems binary ctest passes, is not needed.)
set -u
src="${EMS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
roles="$src/src/roles"
bad=0
for dir in "$roles"/*/; do
    role=$(basename "$dir")
    for other in "$roles"/*/; do
        name=$(basename "$other")
        [ "$name" = "$role" ] && continue
        # Quoted or angled, with or without a leading ../ or roles/.
        hits=$(grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]([.][.]/|roles/)*$name/" \
            "$dir"*.c "$dir"*.h 2>/dev/null)
        if [ -n "$hits" ]; then
            printf '%s\n' "$hits" | sed "s|^$src/||; s|^|cross-role include ($role -> $name): |"
            bad=1
        fi
    done
done
if [ "$bad" -ne 0 ]; then
    echo "run_layout: a role includes another role's header; move the shared part to src/core/" >&2
    exit 1
fi
echo "run_layout: no cross-role includes"
