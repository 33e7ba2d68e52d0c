#!/usr/bin/env bash
# run_http.sh <ems-binary> — the HTTP layer's hardening, black-box, against `ems serve`.
#
# Starts one embedded server (tests/lib/embedded.sh: free loopback ports, a
# temp data dir, stopped by PID at the end) with the limits made small enough
# to test in seconds: a 2 s header deadline, 8 connections per address and a
# metrics secret; http_test.py then trickles headers from 127.0.0.2, sends
# ambiguously framed requests, and reads /metrics with and without a token.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"
ems_args 1 "<path-to-ems-binary>" "$@"

export EMS_HTTP_HEADER_TIMEOUT=2 EMS_HTTP_MAX_CONNS_PER_IP=8
EMS_METRICS_TOKEN=$(random_token 24)
export EMS_METRICS_TOKEN
exec bash "$here/../lib/embedded.sh" "$ems" "$here/http_test.py"
