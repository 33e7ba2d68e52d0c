#!/usr/bin/env bash
# run_embedded.sh <ems-binary> — exact totals through `ems serve`, across a kill -9.
#
# Runs ingest_embedded.py in a private temp dir (removed on exit): it starts
# the server on a free loopback port, sends readings with duplicates,
# reordering and malformed bodies, kills the server with SIGKILL mid-stream,
# restarts it, re-sends what was not acknowledged and compares the served
# totals with its own sums.  Prints "N passed, N failed".
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 <path-to-ems-binary>" >&2
  exit 2
fi
ems=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ems-ingest-embedded.XXXXXX")
chmod 700 "$tmp"
trap 'rm -rf "$tmp"' EXIT

set +e
python3 "$here/ingest_embedded.py" "$ems" "$tmp"
rc=$?
if [ "$rc" -ne 0 ] && [ -f "$tmp/ems.log" ]; then
  echo "---- last lines of the server log"
  tail -n 40 "$tmp/ems.log"
fi
exit "$rc"
