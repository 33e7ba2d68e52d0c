#!/usr/bin/env python3
"""ingest_embedded.py <ems-binary> <temp-dir> — exact totals through `ems serve`.

Starts `ems serve` (embedded mode) on a free loopback port with an ingest
token, creates devices through the API, and POSTs readings to /api/readings
in batches: out of order, with duplicates (within a batch and across
batches), in both accepted forms, with malformed bodies mixed in.  Part way
through, the server is killed with SIGKILL while batches are in flight; it
is started again on the same data directory and every batch that was not
acknowledged with 202 is sent again.  The totals the read API serves are
then compared with the sums this script computed itself: per device and UTC
day, per local hour in Asia/Kathmandu (+05:45), and the alerts (one per
device and UTC hour over the limit).  The server is stopped by its PID.
Prints "N passed, N failed"; exits 1 on any failure.
"""
import datetime
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zoneinfo

from ingest_checks import (admin_and_devices, check, check_alerts, daily_mismatches, expected_sums, finish, http,
                           http_json, make_batches, make_readings, wait_known)

EMS, TMP = sys.argv[1], sys.argv[2]
TOKEN = "ingest-" + os.urandom(8).hex()
ADMIN_PASSWORD = "pw-" + os.urandom(9).hex()
DAY0 = datetime.datetime(2026, 5, 1, tzinfo=datetime.timezone.utc)
DAYS = 2
STEP_MIN = 10
LOW_LIMIT = 0.8  # kWh per hour for the device that raises alerts
ISO = "%Y-%m-%dT%H:%M:%SZ"  # the original simulator's time form, in whole seconds


def free_ports(n):
    """n free loopback ports, bound together while chosen so that they differ."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


PORT, WS_PORT = free_ports(2)  # the WebSocket's given: by default it is PORT+1, which may be taken
BASE = f"http://127.0.0.1:{PORT}"
LOG = open(os.path.join(TMP, "ems.log"), "ab")
server = None


def start_server():
    global server
    env = dict(os.environ, EMS_ADMIN_PASSWORD=ADMIN_PASSWORD, EMS_INGEST_TOKEN=TOKEN, EMS_LOG_LEVEL="warn",
               EMS_LOGIN_RATE="100000", EMS_WS_PORT=str(WS_PORT))
    server = subprocess.Popen([EMS, "serve", "--data-dir", os.path.join(TMP, "data"), "--port", str(PORT),
                               "--bind", "127.0.0.1"],
                              stdout=LOG, stderr=LOG, stdin=subprocess.DEVNULL, env=env)
    until = time.time() + 15
    while time.time() < until:
        try:
            with urllib.request.urlopen(BASE + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if server.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def stop_server(sig=signal.SIGTERM):
    if server and server.poll() is None:
        server.send_signal(sig)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def request(method, path, body=None, token=None, timeout=10):
    return http(method, BASE + path, body, token, timeout=timeout)


def request_json(method, path, body=None, token=None):
    return http_json(method, BASE + path, body, token)


# ---- the readings this script sends, and what they must add up to -------------

rng = random.Random(20261127)


MALFORMED = [b"not json", b"[]", b'{"timestamp": 1, "device_id": "x", "measurement_value": 1}',
             b'[{"timestamp": 1777593600000, "device_id": "7f000000-0000-4000-8000-000000000000"}]',
             b'{"deviceId": "7f000000-0000-4000-8000-000000000000", "timestamp": "yesterday", "value": 1}']


def send_all(batches, pending, stop_after=None):
    """Sends the batches whose index is in pending; removes the acknowledged ones."""
    statuses = {}
    for n, i in enumerate(sorted(pending)):
        if stop_after is not None and n == stop_after:
            threading.Timer(0.02, lambda: server.send_signal(signal.SIGKILL)).start()
        try:
            status, _ = request("POST", "/api/readings", batches[i], TOKEN, timeout=5)
        except (urllib.error.URLError, ConnectionError, OSError):
            status = 0
        statuses[status] = statuses.get(status, 0) + 1
        if status == 202:
            pending.discard(i)
        if rng.random() < 0.1:
            bad = rng.choice(MALFORMED)
            try:
                bad_status, _ = request("POST", "/api/readings", bad, TOKEN, timeout=5)
            except (urllib.error.URLError, ConnectionError, OSError):
                bad_status = 0
            malformed_statuses.append(bad_status)
    return statuses


malformed_statuses = []


def main():
    check("server starts", start_server())
    setup = admin_and_devices(BASE, "admin", ADMIN_PASSWORD, [1000.0, 1000.0, LOW_LIMIT], "ingest")
    if not setup:
        return
    admin, devices = setup
    wait_known(BASE, admin, devices, "2026-05-01", 10, 0.1)

    readings = make_readings(devices, DAY0, DAYS, STEP_MIN, 0.3, rng)
    batches = make_batches(readings, 25, 3, rng, ISO)
    pending = set(range(len(batches)))
    first = send_all(batches, pending, stop_after=len(batches) // 3)
    try:
        server.wait(10)
        killed = server.returncode == -signal.SIGKILL
    except subprocess.TimeoutExpired:
        killed = False
    check("server killed with SIGKILL mid-stream", killed, first)
    check("some batches were not acknowledged", len(pending) > 0, len(pending))
    check("server restarts on the same data", start_server())
    for _ in range(3):
        if pending:
            send_all(batches, pending)
    check("every batch acknowledged after re-sending", not pending, len(pending))
    check("malformed bodies refused with 400", malformed_statuses and all(s in (400, 0) for s in malformed_statuses)
          and 400 in malformed_statuses, malformed_statuses)

    expected_day, expected_hour = expected_sums(readings)
    bad = daily_mismatches(BASE, admin, devices, DAY0, DAYS, expected_day)
    check("daily totals exact after duplicates, reordering and kill -9", not bad, bad[:3])

    kathmandu = zoneinfo.ZoneInfo("Asia/Kathmandu")
    dev = devices[0]
    status, body = request_json("GET", f"/api/consumption/{dev}?date=2026-05-01&tz=Asia/Kathmandu", None, admin)
    local_start = datetime.datetime(2026, 5, 1, tzinfo=kathmandu)
    mismatch = []
    for h, hour in enumerate(body["hours"] if status == 200 else []):
        lo = int((local_start + datetime.timedelta(hours=h)).timestamp() * 1000)
        want = sum(kwh for d, ts, kwh in readings if d == dev and lo <= ts < lo + 3600000)
        if abs(hour["kwh"] - want) > 1e-6:
            mismatch.append((hour["start"], hour["kwh"], want))
    check("local hours in Asia/Kathmandu (+05:45) exact", status == 200 and len(body["hours"]) == 24 and not mismatch,
          mismatch[:3])

    check_alerts(BASE, admin, devices[2], expected_hour, LOW_LIMIT)
    status, body = request_json("GET", f"/api/alerts?device_id={devices[0]}", None, admin)
    check("no alert under the limit", status == 200 and body["items"] == [], status)

    status, _ = request("GET", f"/api/consumption/{devices[0]}?date=2026-05-01", None, None)
    check("read API needs a token", status == 401, status)
    status, _ = request("POST", "/api/readings", batches[0], "wrong-token")
    check("ingest needs the ingest token", status == 401, status)


try:
    main()
except Exception as e:  # a crash of the script is a failure, not a silent pass
    check("suite ran to the end", False, repr(e))
finally:
    stop_server()
    LOG.close()
    with open(os.path.join(TMP, "ems.log"), "rb") as f:
        log = f.read().decode(errors="replace")
    check("no sanitizer report in the server log",
          "Sanitizer" not in log and "runtime error:" not in log,
          "\n".join(line for line in log.splitlines() if "Sanitizer" in line or "runtime error" in line)[:2000])
    finish()
