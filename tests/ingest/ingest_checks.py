"""ingest_checks.py — what the two ingest suites share, embedded and distributed.

Both suites make readings of their own, send them out of order with duplicates within and
across batches and in both accepted forms, disturb the servers mid-stream, and then compare
the totals the read API serves with the sums they computed themselves.  This module holds
those common steps: the PASS/FAIL tally and its "N passed, N failed" line, a small HTTP
client, the readings and their batches, the expected sums, and the checks of the totals and
of the alerts.  Randomness comes from the rng each suite passes in, so a suite's run stays
reproducible from its own seed.
"""
import datetime
import json
import sys
import time
import urllib.error
import urllib.request

passed = failed = 0


def check(name, ok, detail=""):
    """Counts one check and prints its line: "ok   <name>" or "FAIL <name> <detail>"."""
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def finish():
    """Prints "N passed, N failed" and exits 1 if any check failed."""
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def http(method, url, body=None, token=None, headers=None, timeout=10):
    """(status, raw body); body is bytes, str, or anything else sent as JSON.  An HTTP error
    status is an answer; a refused or broken connection raises."""
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_json(method, url, body=None, token=None, headers=None, timeout=10):
    """http(), with the answer parsed as JSON (None when empty or not JSON)."""
    status, raw = http(method, url, body, token, headers, timeout)
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def admin_and_devices(base, username, password, limits, prefix, where=""):
    """Logs the admin in and creates one device per hourly limit, named <prefix>-<i>:
    (token, [device ids]), or None after a failed check.  <where> ends the checks' names."""
    status, login = http_json("POST", base + "/api/auth/login", {"username": username, "password": password})
    check("admin logs in" + where, status == 200, (status, login))
    if status != 200:
        return None
    admin = login["token"]
    devices = []
    for i, limit in enumerate(limits):
        status, dev = http_json("POST", base + "/api/devices", {"name": f"{prefix}-{i}", "max_hourly_kwh": limit},
                                admin)
        if status != 201:
            check("devices created" + where, False, (status, dev))
            return None
        devices.append(dev["id"])
    return admin, devices


def wait_known(base, admin, devices, day, seconds, pause):
    """Checks that monitoring, told of new devices through the outbox, knows each within <seconds>."""
    known = 0
    until = time.time() + seconds
    while time.time() < until and known < len(devices):
        known = sum(http("GET", f"{base}/api/consumption/{d}?date={day}", None, admin)[0] == 200 for d in devices)
        time.sleep(pause)
    check("devices replicated to monitoring", known == len(devices), known)


def make_readings(devices, day0, days, step_min, max_kwh, rng):
    """(device, ms timestamp, kWh) every <step_min> minutes for <days> days from <day0>."""
    readings = []
    for dev in devices:
        t = day0
        while t < day0 + datetime.timedelta(days=days):
            readings.append((dev, int(t.timestamp() * 1000), round(rng.uniform(0.001, max_kwh), 3)))
            t += datetime.timedelta(minutes=step_min)
    return readings


def encode(reading, rng, iso_format):
    """One reading in one of the two accepted forms: 30 % in the original simulator's
    (deviceId, ISO time in <iso_format>, value), the rest in the native one."""
    dev, ts, kwh = reading
    if rng.random() < 0.3:
        iso = datetime.datetime.fromtimestamp(ts / 1000, datetime.timezone.utc).strftime(iso_format)
        return {"deviceId": dev, "timestamp": iso, "value": kwh}
    return {"timestamp": ts, "device_id": dev, "measurement_value": kwh}


def make_batches(readings, size, repeats, rng, iso_format):
    """The readings shuffled (out of order, and late) into JSON arrays of <size>, each with a
    duplicate of its own first reading and up to <repeats> already sent in earlier arrays."""
    shuffled = readings[:]
    rng.shuffle(shuffled)
    batches, sent = [], []
    for i in range(0, len(shuffled), size):
        part = shuffled[i:i + size]
        body = [encode(r, rng, iso_format) for r in part]
        body.append(encode(part[0], rng, iso_format))
        if sent:
            body.extend(encode(r, rng, iso_format) for r in rng.sample(sent, min(repeats, len(sent))))
        sent.extend(part)
        rng.shuffle(body)
        batches.append(json.dumps(body))
    return batches


def expected_sums(readings):
    """What the read API must serve: ({(device, UTC day): kWh}, {(device, UTC hour ms): kWh})."""
    expected_day, expected_hour = {}, {}
    for dev, ts, kwh in readings:
        day = datetime.datetime.fromtimestamp(ts / 1000, datetime.timezone.utc).date().isoformat()
        expected_day[(dev, day)] = expected_day.get((dev, day), 0) + kwh
        expected_hour[(dev, ts - ts % 3600000)] = expected_hour.get((dev, ts - ts % 3600000), 0) + kwh
    return expected_day, expected_hour


def daily_mismatches(base, admin, devices, day0, days, expected_day):
    """[(device, day, served, expected)] for every UTC day total that is not exact."""
    bad = []
    for dev in devices:
        for d in range(days):
            day = (day0 + datetime.timedelta(days=d)).date().isoformat()
            status, body = http_json("GET", f"{base}/api/consumption/{dev}?date={day}&tz=UTC", None, admin)
            got = body["total_kwh"] if status == 200 else None
            if got is None or abs(got - expected_day[(dev, day)]) > 1e-6:
                bad.append((dev, day, got, round(expected_day[(dev, day)], 6)))
    return bad


def check_alerts(base, admin, device, expected_hour, limit):
    """Checks that <device> has exactly one alert per UTC hour whose sum is over <limit>."""
    over = sorted(h for (d, h), kwh in expected_hour.items() if d == device and kwh > limit)
    status, body = http_json("GET", f"{base}/api/alerts?device_id={device}&limit=100", None, admin)
    got = sorted(a["hour_start"] for a in body["items"]) if status == 200 else None
    check("one alert per device and hour over the limit", got == over, (len(over), got and len(got)))
