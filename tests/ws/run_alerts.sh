#!/usr/bin/env bash
# run_alerts.sh <ems-binary> — the end-to-end alert: readings → monitoring →
# devices → ws → the owner's WebSocket sessions, in one `ems serve`.
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../lib/embedded.sh" "$1" "$here/ws_alerts.py"
