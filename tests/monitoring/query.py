#!/usr/bin/env python3
"""query.py — the monitoring role's read API against a running `ems serve`.

Run by run_query.sh (through tests/lib/embedded.sh), which passes BASE_URL,
ADMIN_USERNAME, ADMIN_PASSWORD and INGEST_TOKEN.  Posts a month and a half
of readings for one device (every 10 minutes, values chosen by this script)
with the ingest token, then checks what the read API serves against sums
computed here with Python's own time-zone data:

- daily totals (GET /api/consumption/{id}/days) for a whole month in
  Europe/Bucharest, including the day summer time starts (23 hours), and for
  October, with the 25-hour day it ends; in Asia/Kathmandu (+05:45);
- that a day's total there equals the day's hourly series and the CSV;
- bad input (dates, ranges, zones, ids) answered 400 / 404, and the owner,
  another client, an admin and no token answered 200 / 403 / 200 / 401.

Prints "N passed, N failed"; exits 1 on any failure.
"""
import csv
import datetime
import io
import json
import os
import random
import sys
import time
import urllib.error
import urllib.request
import zoneinfo

BASE = os.environ["BASE_URL"]
INGEST = os.environ["INGEST_TOKEN"]
RUN = os.urandom(3).hex()
STEP_MS = 10 * 60 * 1000
FIRST = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc) - datetime.timedelta(days=1)
LAST = datetime.datetime(2026, 4, 2, tzinfo=datetime.timezone.utc)
OCT_FIRST = datetime.datetime(2026, 10, 20, tzinfo=datetime.timezone.utc)
OCT_LAST = datetime.datetime(2026, 11, 2, tzinfo=datetime.timezone.utc)

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name} {detail}"[:2000], flush=True)


def request(method, path, body=None, token=None, raw=False):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            payload = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        payload, status = e.read(), e.code
    if raw:
        return status, payload.decode()
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, payload.decode(errors="replace")


def login(username, password):
    status, body = request("POST", "/api/auth/login", {"username": username, "password": password})
    assert status == 200, (status, body)
    return body["token"], body["user"]["id"]


def register(prefix):
    name, password = f"{prefix}{RUN}", "pw-" + os.urandom(8).hex()
    status, body = request("POST", "/api/auth/register", {
        "username": name, "password": password, "first_name": "F" + prefix, "last_name": "L" + prefix,
        "email": f"{name}@example.org"})
    assert status == 201, (status, body)
    return body["token"], body["user"]["id"]


def readings_between(first, last, seed):
    rnd = random.Random(seed)
    t = int(first.timestamp() * 1000)
    end = int(last.timestamp() * 1000)
    out = []
    while t < end:
        out.append((t, round(rnd.uniform(0.01, 0.5), 6)))
        t += STEP_MS
    return out


def post_all(device, readings):
    for i in range(0, len(readings), 1000):
        chunk = [{"device_id": device, "timestamp": ts, "measurement_value": kwh} for ts, kwh in readings[i:i + 1000]]
        status, body = request("POST", "/api/readings", chunk, INGEST)
        if status != 202:
            return status, body
    return 202, None


def local_day_sums(readings, tz):
    zone = zoneinfo.ZoneInfo(tz)
    sums = {}
    for ts, kwh in readings:
        day = datetime.datetime.fromtimestamp(ts / 1000, zone).date().isoformat()
        sums[day] = sums.get(day, 0.0) + kwh
    return sums


def days_of(first, last):
    d, out = first, []
    while d <= last:
        out.append(d.isoformat())
        d += datetime.timedelta(days=1)
    return out


def check_month(device, token, readings, tz, first, last, what):
    want = local_day_sums(readings, tz)
    status, body = request("GET", f"/api/consumption/{device}/days?from={first}&to={last}&tz={tz}", token=token)
    if status != 200:
        check(what, False, (status, body))
        return None
    dates = days_of(first, last)
    got = [(d["date"], d["kwh"]) for d in body["days"]]
    bad = [(d, k, want.get(d, 0.0)) for d, k in got if abs(k - want.get(d, 0.0)) > 1e-6]
    total = sum(want.get(d, 0.0) for d in dates)
    peak = max(dates, key=lambda d: want.get(d, 0.0))
    check(what, [d for d, _ in got] == dates and not bad and abs(body["total_kwh"] - total) < 1e-6
          and abs(body["average_kwh"] - total / len(dates)) < 1e-6 and body["peak"]["date"] == peak
          and body["unit"] == "kWh" and body["tz"] == tz and body["from"] == first.isoformat()
          and body["to"] == last.isoformat(), (bad[:3], body["total_kwh"], total))
    return body


def main():
    admin, _ = login(os.environ.get("ADMIN_USERNAME", "admin"), os.environ["ADMIN_PASSWORD"])
    owner, owner_id = register("qa")
    other, _ = register("qb")
    status, dev = request("POST", "/api/devices", {"name": f"meter {RUN}", "max_hourly_kwh": 2.5,
                                                   "owner_id": owner_id}, admin)
    assert status == 201, (status, dev)
    device = dev["id"]
    until = time.time() + 10  # monitoring hears of the device through the outbox
    while request("GET", f"/api/consumption/{device}?date=2026-03-01", token=admin)[0] != 200:
        assert time.time() < until, "monitoring never learned of the device"
        time.sleep(0.1)

    readings = readings_between(FIRST, LAST, 1) + readings_between(OCT_FIRST, OCT_LAST, 2)
    status, body = post_all(device, readings)
    check("readings accepted", status == 202, (status, body))

    march = check_month(device, owner, readings, "Europe/Bucharest", datetime.date(2026, 3, 1),
                        datetime.date(2026, 3, 31), "March in Europe/Bucharest: every daily total exact")
    check_month(device, owner, readings, "Europe/Bucharest", datetime.date(2026, 10, 20),
                datetime.date(2026, 10, 31), "October 20-31 in Europe/Bucharest (a 25-hour day): exact")
    check_month(device, admin, readings, "Asia/Kathmandu", datetime.date(2026, 3, 1),
                datetime.date(2026, 3, 31), "March in Asia/Kathmandu (+05:45), read by an admin: exact")
    check_month(device, owner, readings, "UTC", datetime.date(2026, 4, 1), datetime.date(2026, 4, 30),
                "a month with one day of data: the other days are 0")

    if march:
        by_date = {d["date"]: d["kwh"] for d in march["days"]}
        status, day = request("GET", f"/api/consumption/{device}?date=2026-03-29&tz=Europe/Bucharest", token=owner)
        check("the 23-hour day: its daily total equals its hourly series",
              status == 200 and len(day["hours"]) == 23 and abs(day["total_kwh"] - by_date["2026-03-29"]) < 1e-6,
              (status, day if status != 200 else day["total_kwh"]))
        status, text = request("GET", f"/api/consumption/{device}.csv?from=2026-03-01&to=2026-03-31"
                                      "&tz=Europe/Bucharest", token=owner, raw=True)
        rows = list(csv.reader(io.StringIO(text)))[1:] if status == 200 else []
        csv_total = sum(float(r[1]) for r in rows)
        check("the month's total equals the CSV's sum", abs(csv_total - march["total_kwh"]) < 1e-4,
              (status, csv_total, march["total_kwh"]))
        check("the month's limit is the device's hourly limit", march["limit_kwh"] == 2.5, march["limit_kwh"])

    path = f"/api/consumption/{device}/days"
    refused = {
        "from after to": f"{path}?from=2026-03-02&to=2026-03-01",
        "more than 366 days": f"{path}?from=2026-01-01&to=2027-01-02",
        "a bad date": f"{path}?from=2026-02-30x&to=2026-03-01",
        "a date that is not a date": f"{path}?from=yesterday&to=2026-03-01",
        "an unknown zone": f"{path}?from=2026-03-01&to=2026-03-02&tz=Mars/Olympus",
        "a bad device id": "/api/consumption/not-a-uuid/days?from=2026-03-01&to=2026-03-02",
    }
    for what, p in refused.items():
        status, body = request("GET", p, token=owner)
        check(f"400 for {what}", status == 400 and isinstance(body, dict) and "error" in body, (status, body))
    status, _ = request("GET", "/api/consumption/00000000-0000-4000-8000-000000000000/days?from=2026-03-01"
                               "&to=2026-03-02", token=admin)
    check("404 for an unknown device", status == 404, status)
    status, _ = request("GET", f"{path}?from=2026-03-01&to=2026-03-02", token=other)
    check("403 for another client's device", status == 403, status)
    status, _ = request("GET", f"{path}?from=2026-03-01&to=2026-03-02")
    check("401 without a token", status == 401, status)
    status, body = request("GET", f"{path}?from=2026-03-05&to=2026-03-05", token=owner)
    check("a range of one day", status == 200 and len(body["days"]) == 1, (status, body))


try:
    main()
except Exception as e:  # a crash of the script is a failure, not a silent pass
    check("suite ran to the end", False, repr(e))
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
