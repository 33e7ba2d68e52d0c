#!/usr/bin/env bash
# run_auth.sh <ems-binary> — the auth role's limits and the name checks, black-box, against `ems serve`.
#
# Starts one embedded server (tests/lib/embedded.sh: free loopback ports, a
# temp data dir, stopped by PID at the end) with the limits made small enough
# to test in seconds, and 127.0.0.1 as the one trusted proxy; auth_test.py
# then talks to it from many loopback addresses (127.0.x.y): a guesser and
# the owner of an account, a client sending X-Real-IP of its own, the
# "gateway" at 127.0.0.1 naming clients in X-Real-IP, a burst of
# registrations, guesses at the old password of a password change, and
# names that are blank to the eye or not strict UTF-8.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"
ems_args 1 "<path-to-ems-binary>" "$@"

export LOGIN_MAX_FAILURES=3 LOGIN_MAX_FAILURES_USER=7 REGISTER_RATE=3 PASSWORD_MAX_FAILURES=3 PASSWORD_WINDOW=3
export EMS_LOGIN_MAX_FAILURES=$LOGIN_MAX_FAILURES EMS_LOGIN_MAX_FAILURES_USER=$LOGIN_MAX_FAILURES_USER \
  EMS_LOGIN_WINDOW=60 EMS_REGISTER_RATE=$REGISTER_RATE EMS_REGISTER_HOURLY=1000 \
  EMS_PASSWORD_MAX_FAILURES=$PASSWORD_MAX_FAILURES EMS_PASSWORD_WINDOW=$PASSWORD_WINDOW \
  EMS_TRUSTED_PROXIES=127.0.0.1
exec bash "$here/../lib/embedded.sh" "$ems" "$here/auth_test.py"
