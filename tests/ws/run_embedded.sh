#!/usr/bin/env bash
# run_embedded.sh <ems-binary> — the ws suite (chat, typing, seen, presence,
# history, refusals, bad frames, the Assistant) against `ems serve`.
# Notifications are covered by tests/unit/test_ws.c (the real role over the
# in-process bus); the end-to-end alert from readings by run_alerts.sh.
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../lib/embedded.sh" "$1" "$here/ws_embedded.py"
