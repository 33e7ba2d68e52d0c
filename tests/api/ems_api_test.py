#!/usr/bin/env python3
"""
ems_api_test.py — black-box suite of the EMS REST API (auth, users, devices):
the one entry point that run_embedded.sh and run_distributed.sh call.

It speaks HTTP to a running EMS and nothing else, so the same suite checks
`ems serve` (embedded) and the nginx gateway of a distributed cluster.  What
it asserts is docs/api.md: every endpoint in normal use, the authorization
matrix (every endpoint as anonymous, client A, client B and admin), bad input
answered with the right 4xx and the JSON error envelope *and nothing changed*,
forged and expired tokens, account deletion, event propagation from auth to
users and devices, login rate limiting, and data surviving a restart.

The tests live in one file per role, found by the role's name, each with its
normal use, its rows of the authorization matrix and its bad input:
  test_common.py    what every role answers alike: probes, /api/config,
                    routing, body limits, media types, the web app
  test_auth.py      accounts, login, verify, passwords, tokens, rate limits
  test_users.py     profiles
  test_devices.py   devices and their owners
  test_events.py    what crosses roles: account changes reaching users, devices
  test_restart.py   data surviving a restart (last: it restarts the servers)
lib.py holds what they share: the client, assertions, fixtures, Principal,
the @test registry, the matrix's machinery and the runner.  Tests run in
registration order: the setup (lib.py), then the files in the order they
are imported below.

Python 3 standard library only.  One line per test (PASS / FAIL / SKIP and
the name), then a line exactly "N passed, N failed"; exit 1 if any failed.
Events cross the bus asynchronously in distributed mode, so anything that
waits for another role polls with a deadline; there are no fixed sleeps
except the one wait for a token to expire.

Environment (the runners run_embedded.sh / run_distributed.sh set it):
  BASE_URL             http://127.0.0.1:<port> of `ems serve` or of the gateway   (required)
  ADMIN_PASSWORD       the initial admin's password; ADMIN_USERNAME, default admin (required)
  EMS_MODE             "embedded" or "distributed": what /api/config must report
  JWT_PUBLIC_KEY_FILE  the servers' public key (PEM) for the HS256 key-confusion test
  RESTART_CMD          shell command restarting the server(s) on the same data
  TTL_BASE_URL         where to log in as the admin for a token that lives 2 s ...
  TTL_USE_URL          ... and where to use it (default TTL_BASE_URL)
  TTL_ADMIN_PASSWORD   the admin's password there (default ADMIN_PASSWORD)
  FOREIGN_BASE_URL     an EMS with a key pair of its own: its tokens must be refused here
  FOREIGN_ADMIN_PASSWORD  its admin's password (default ADMIN_PASSWORD)
  WEB_INDEX_MARKER     text the served web app's index.html contains (checks static files work)
  WEB_SECRET_NAME      a file in the web root's parent dir that traversal must not reach ...
  WEB_SECRET_MARKER    ... and the text it contains
  ROLE_URLS            space-separated base URLs of the role processes: /healthz, /readyz
                       and /metrics are checked there (the gateway does not route them);
                       default BASE_URL
  ONLY                 run only the tests whose name contains this text
  EXCLUDE              comma-separated texts: skip the tests whose name contains one
A test whose input is missing is reported as SKIP with the reason, never PASS.

`ems_api_test.py wait-ready URL SECONDS [PIDFILE]` waits for URL/readyz to
answer 200 (the runners use it); it gives up early if PIDFILE's process died.
"""

import os
import sys

import lib
# Importing a file registers its tests; the order of these imports is the run's.
import test_common  # noqa: F401
import test_auth  # noqa: F401
import test_users  # noqa: F401
import test_devices  # noqa: F401
import test_events  # noqa: F401
import test_restart  # noqa: F401

if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "wait-ready":
        sys.exit(lib.wait_ready(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None))
    if not os.environ.get("BASE_URL"):
        print("BASE_URL is not set (see the docstring)", file=sys.stderr)
        sys.exit(2)
    sys.exit(lib.run())
