#!/usr/bin/env bash
# run_layout.sh — no role includes another role's header, and no two
# headers under src/ share a name.
#
# The contract between roles (a reading's wire forms, the replica hash,
# zones and local days) lives in src/core/; a role that needs something from
# another role's folder means that something belongs in core.  Fails on any
# `#include "<role>/..."` in src/roles/<other role>/ and prints the lines.
# A quoted `#include "x.h"` looks in the including file's folder, then along
# the include path (src/core, src/roles, src/sim, ...): with two headers of
# one name, which one a file gets depends on where it sits and on the path's
# order, not on what it meant.  Fails on any header name found twice under
# src/ (core, roles, sim, sim/gtk) and prints the paths.
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

dups=$(find "$src/src" -name '*.h' -printf '%f\n' | sort | uniq -d)
if [ -n "$dups" ]; then
    for name in $dups; do
        find "$src/src" -name "$name" | sed "s|^$src/||; s|^|header name used twice ($name): |"
    done
    echo "run_layout: two headers under src/ share a name; rename one (e.g. <role>_<what>.h)" >&2
    exit 1
fi
echo "run_layout: every header name under src/ is unique"
