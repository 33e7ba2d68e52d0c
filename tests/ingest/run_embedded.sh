#!/usr/bin/env bash
# run_embedded.sh <ems-binary> — exact totals through `ems serve`, across a kill -9.
#
# Runs ingest_embedded.py in a private temp dir (removed on exit): it starts
# the server on a free loopback port, sends readings with duplicates,
# reordering and malformed bodies, kills the server with SIGKILL mid-stream,
# restarts it, re-sends what was not acknowledged and compares the served
# totals with its own sums.  Prints "N passed, N failed".
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"

ems_args 1 "<path-to-ems-binary>" "$@"
tmp=$(make_tmp ingest-embedded 700)
trap 'rm -rf "$tmp"' EXIT

set +e
python3 "$here/ingest_embedded.py" "$ems" "$tmp"
rc=$?
if [ "$rc" -ne 0 ]; then tail_logs 40 "$tmp/ems.log"; fi
exit "$rc"
