#!/usr/bin/env python3
"""ingest_timestamps.py <ems-binary> <temp-dir> — meter timestamps through POST /api/readings.

Starts `ems serve` (embedded) with EMS_READING_TZ=Europe/Bucharest and an
ingest token, creates a device, and POSTs readings whose timestamps are
written as real meters and clients write them: "2026-11-20T11:10" (the
original Java simulator: LocalDateTime.toString() drops zero seconds), with
a space, with an offset, with nine fraction digits.  Each must be taken (202)
and land in the UTC hour this script computes (a time without a zone is
Bucharest wall time); junk after a timestamp is refused with 400.  Then a
server with an unknown EMS_READING_TZ must refuse to start, naming the
option.  Prints "N passed, N failed"; exits 1 on any failure.
"""
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from ingest_checks import admin_and_devices, check, finish, http, http_json, wait_known

EMS, TMP = sys.argv[1], sys.argv[2]
TOKEN = "ingest-" + os.urandom(8).hex()
ADMIN_PASSWORD = "pw-" + os.urandom(9).hex()
ZONE = "Europe/Bucharest"  # +02:00 in November


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


PORT, WS_PORT = free_ports(2)
BASE = f"http://127.0.0.1:{PORT}"
LOG = open(os.path.join(TMP, "ems.log"), "ab")
server = None


def start_server(zone):
    global server
    env = dict(os.environ, EMS_ADMIN_PASSWORD=ADMIN_PASSWORD, EMS_INGEST_TOKEN=TOKEN, EMS_LOG_LEVEL="warn",
               EMS_WS_PORT=str(WS_PORT), EMS_READING_TZ=zone)
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


def stop_server():
    if server and server.poll() is None:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# (timestamp as sent, kWh, the UTC hour of 2026-11-20 it must land in)
TAKEN = [
    ("2026-11-20T11:10", 0.5, 9),                     # Bucharest wall time: 09:10Z
    ("2026-11-20 12:20:00", 0.25, 10),                # a space, seconds
    ("2026-11-20T13:30:00.123456789", 0.125, 11),     # nine fraction digits
    ("2026-11-20T14:40Z", 2.0, 14),                   # an explicit zone wins over reading_tz
    ("2026-11-20T20:30+0545", 4.0, 14),               # Kathmandu: 14:45Z (14:40Z again would be a duplicate)
]
REFUSED = ["2026-11-20T11:10Zjunk", "2026-11-20", "2026-11-20T11:10+15:00", "2026-11-20T24:30"]


def main():
    check("server starts with EMS_READING_TZ", start_server(ZONE))
    setup = admin_and_devices(BASE, "admin", ADMIN_PASSWORD, [1000.0], "ts")
    if not setup:
        return
    admin, (dev,) = setup
    wait_known(BASE, admin, [dev], "2026-11-20", 10, 0.1)
    for ts, kwh, _ in TAKEN:
        status, body = http("POST", BASE + "/api/readings", {"deviceId": dev, "timestamp": ts, "value": kwh}, TOKEN)
        check(f"POST /api/readings takes {ts!r}", status == 202, (status, body[:200]))
    for ts in REFUSED:
        status, body = http("POST", BASE + "/api/readings", {"deviceId": dev, "timestamp": ts, "value": 1}, TOKEN)
        check(f"POST /api/readings refuses {ts!r} with 400", status == 400 and b"timestamp" in body,
              (status, body[:200]))
    want = [0.0] * 24
    for _, kwh, hour in TAKEN:
        want[hour] += kwh
    got = None
    until = time.time() + 10
    while time.time() < until:
        status, day = http_json("GET", f"{BASE}/api/consumption/{dev}?date=2026-11-20&tz=UTC", None, admin)
        got = [h["kwh"] for h in day["hours"]] if status == 200 else None
        if got and all(abs(a - b) < 1e-9 for a, b in zip(got, want)):
            break
        time.sleep(0.2)
    check("each reading in the UTC hour its zone puts it in", got is not None and len(got) == 24
          and all(abs(a - b) < 1e-9 for a, b in zip(got, want)), (got, want))
    stop_server()

    LOG.flush()
    bad = subprocess.run([EMS, "serve", "--data-dir", os.path.join(TMP, "data2"), "--port", str(PORT),
                          "--bind", "127.0.0.1"], env=dict(os.environ, EMS_READING_TZ="Mars/Olympus"),
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    check("an unknown EMS_READING_TZ stops start-up, naming the option",
          bad.returncode == 2 and b"reading_tz" in bad.stderr, (bad.returncode, bad.stderr[-300:]))


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
