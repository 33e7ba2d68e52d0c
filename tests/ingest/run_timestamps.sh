#!/usr/bin/env bash
# run_timestamps.sh <ems-binary> — meter timestamps as real meters write them, through `ems serve`.
#
# Runs ingest_timestamps.py in a private temp dir (removed on exit): POST
# /api/readings takes "2026-11-20T11:10" (Java's LocalDateTime without
# seconds), places it in EMS_READING_TZ, refuses junk with 400, and a bad
# EMS_READING_TZ stops start-up.  Prints "N passed, N failed".
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"

ems_args 1 "<path-to-ems-binary>" "$@"
tmp=$(make_tmp ingest-timestamps 700)
trap 'rm -rf "$tmp"' EXIT

set +e
python3 "$here/ingest_timestamps.py" "$ems" "$tmp"
rc=$?
if [ "$rc" -ne 0 ]; then tail_logs 40 "$tmp/ems.log"; fi
exit "$rc"
