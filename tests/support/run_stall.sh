#!/usr/bin/env bash
# run_stall.sh <ems-binary> — the support assistant does not stall the API:
# stall.py against an embedded `ems serve` with its default request threads
# (16 data questions at once while /healthz is timed; a customer with 335
# devices).  tests/lib/embedded.sh starts and stops the server.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../lib/embedded.sh" "$1" "$here/stall.py"
