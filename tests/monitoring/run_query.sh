#!/usr/bin/env bash
# run_query.sh <ems-binary> — the monitoring read API (daily totals over a
# month, hourly series, CSV, refusals) against `ems serve`: query.py.
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../lib/embedded.sh" "$1" "$here/query.py"
