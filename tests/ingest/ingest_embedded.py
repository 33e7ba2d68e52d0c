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
import json
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

EMS, TMP = sys.argv[1], sys.argv[2]
TOKEN = "ingest-" + os.urandom(8).hex()
ADMIN_PASSWORD = "pw-" + os.urandom(9).hex()
DAY0 = datetime.datetime(2026, 5, 1, tzinfo=datetime.timezone.utc)
DAYS = 2
STEP_MIN = 10
LOW_LIMIT = 0.8  # kWh per hour for the device that raises alerts

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


PORT = free_port()
WS_PORT = free_port()  # not PORT+1, the default, which may be taken
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
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, raw
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def request_json(method, path, body=None, token=None):
    status, raw = request(method, path, body, token)
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


# ---- the readings this script sends, and what they must add up to -------------

rng = random.Random(20261127)


def make_readings(device_ids):
    readings = []
    for dev in device_ids:
        t = DAY0
        while t < DAY0 + datetime.timedelta(days=DAYS):
            readings.append((dev, int(t.timestamp() * 1000), round(rng.uniform(0.001, 0.3), 3)))
            t += datetime.timedelta(minutes=STEP_MIN)
    return readings


def encode(reading):
    dev, ts, kwh = reading
    if rng.random() < 0.3:  # the original simulator's form, ISO time
        iso = datetime.datetime.fromtimestamp(ts / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"deviceId": dev, "timestamp": iso, "value": kwh}
    return {"timestamp": ts, "device_id": dev, "measurement_value": kwh}


def make_batches(readings):
    shuffled = readings[:]
    rng.shuffle(shuffled)  # out of order, and late
    batches, sent = [], []
    for i in range(0, len(shuffled), 25):
        part = shuffled[i:i + 25]
        body = [encode(r) for r in part]
        body.append(encode(part[0]))  # a duplicate within the batch
        if sent:
            body.extend(encode(r) for r in rng.sample(sent, min(3, len(sent))))  # and across batches
        sent.extend(part)
        rng.shuffle(body)
        batches.append(json.dumps(body).encode())
    return batches


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
    status, login = request_json("POST", "/api/auth/login", {"username": "admin", "password": ADMIN_PASSWORD})
    check("admin logs in", status == 200, (status, login))
    if status != 200:
        return
    admin = login["token"]
    devices = []
    for i, limit in enumerate([1000.0, 1000.0, LOW_LIMIT]):
        status, dev = request_json("POST", "/api/devices", {"name": f"ingest-{i}", "max_hourly_kwh": limit}, admin)
        if status != 201:
            check("devices created", False, (status, dev))
            return
        devices.append(dev["id"])
    # Monitoring hears of the devices through the outbox: wait until it knows each one.
    known = 0
    until = time.time() + 10
    while time.time() < until and known < len(devices):
        known = sum(request("GET", f"/api/consumption/{d}?date=2026-05-01", None, admin)[0] == 200 for d in devices)
        time.sleep(0.1)
    check("devices replicated to monitoring", known == len(devices))

    readings = make_readings(devices)
    batches = make_batches(readings)
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

    expected_day, expected_hour = {}, {}
    for dev, ts, kwh in readings:
        day = datetime.datetime.fromtimestamp(ts / 1000, datetime.timezone.utc).date().isoformat()
        expected_day[(dev, day)] = expected_day.get((dev, day), 0) + kwh
        expected_hour[(dev, ts - ts % 3600000)] = expected_hour.get((dev, ts - ts % 3600000), 0) + kwh
    bad = []
    for dev in devices:
        for d in range(DAYS):
            day = (DAY0 + datetime.timedelta(days=d)).date().isoformat()
            status, body = request_json("GET", f"/api/consumption/{dev}?date={day}&tz=UTC", None, admin)
            got = body["total_kwh"] if status == 200 else None
            if got is None or abs(got - expected_day[(dev, day)]) > 1e-6:
                bad.append((dev, day, got, expected_day[(dev, day)]))
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

    over = sorted(h for (d, h), kwh in expected_hour.items() if d == devices[2] and kwh > LOW_LIMIT)
    status, body = request_json("GET", f"/api/alerts?device_id={devices[2]}&limit=100", None, admin)
    got = sorted(a["hour_start"] for a in body["items"]) if status == 200 else None
    check("one alert per device and hour over the limit", got == over, (len(over), got and len(got)))
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
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
