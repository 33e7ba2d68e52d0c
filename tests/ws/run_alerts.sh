#!/usr/bin/env bash
# run_alerts.sh <ems-binary> — the end-to-end alert: readings → monitoring →
# devices → ws → the owner's WebSocket sessions, in one `ems serve`.
exec bash "$(dirname "$0")/embedded.sh" "$@" ws_alerts.py
