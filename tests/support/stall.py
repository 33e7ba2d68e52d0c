#!/usr/bin/env python3
"""stall.py — the support assistant must not stall the API (run by run_stall.sh).

Against an embedded `ems serve` with its default number of request threads
(BASE_URL, ADMIN_USERNAME, ADMIN_PASSWORD, INGEST_TOKEN):
  - 16 data questions at once ("how much did I use yesterday?", "which device
    uses the most?") from a customer with 5 devices all get a real answer,
    and GET /healthz asked over and over meanwhile answers within 1 s each
    time (answering data questions over HTTP to its own server, the server
    took 5.5 s, and 12 of 16 answers were "not available");
  - a customer with 335 devices (more than the device list's largest page)
    is told about all 335 and the kWh of all of them, and which one used
    most (it is on the last page).
Prints ok/FAIL lines and "N passed, N failed"; exits 1 on any failure.
"""
import datetime
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

BASE = urllib.parse.urlparse(os.environ["BASE_URL"])
ADMIN = (os.environ["ADMIN_USERNAME"], os.environ["ADMIN_PASSWORD"])
INGEST = os.environ["INGEST_TOKEN"]
RUN = os.urandom(3).hex()
HEALTHZ_BOUND_S = 1.0
QUESTIONS = 16
BIG = 335

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name} {detail}"[:2000], flush=True)


class Client:
    """One keep-alive connection; JSON in and out."""

    def __init__(self, timeout=30):
        self.timeout = timeout
        self.conn = None

    def send(self, method, path, body=None, token=None):
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(BASE.hostname, BASE.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, data, headers)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None), r
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise


api = Client()


def must(status_body, want, what):
    status, body, _ = status_body
    if status != want:
        print(f"FAIL setup: {what}: status {status}, not {want}: {body}", flush=True)
        sys.exit(1)
    return body


def poll(fn, what, timeout=20):
    end = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > end:
            print(f"FAIL setup: timed out waiting for {what}", flush=True)
            sys.exit(1)
        time.sleep(0.05)


def customer(prefix):
    name = f"{prefix}{RUN}"
    body = {"username": name, "password": "pw-" + RUN + "-long-enough", "first_name": "Fn" + name,
            "last_name": "Ln" + name, "email": f"{name}@example.test", "address": "Addr " + name}
    j = must(api.send("POST", "/api/auth/register", body), 201, "register")
    return j["token"], j["user"]["id"]


def devices_for(admin, owner, names):
    ids = []
    for name in names:
        d = must(api.send("POST", "/api/devices", {"name": name, "max_hourly_kwh": 100}, admin), 201, "create device")
        poll(lambda: api.send("PUT", f"/api/devices/{d['id']}/owner", {"user_id": owner}, admin)[0] == 200,
             f"device {d['id']} to accept its owner")
        ids.append(d["id"])
    return ids


def yesterday_noon_ms():
    today = datetime.datetime.now(datetime.timezone.utc).date()
    noon = datetime.datetime.combine(today - datetime.timedelta(days=1), datetime.time(12),
                                     tzinfo=datetime.timezone.utc)
    return int(noon.timestamp() * 1000)


def post_readings(admin, ids, kwh_of):
    # monitoring learns of a device over the bus: wait until it knows each one
    day = (datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1)).isoformat()
    for i in ids:
        poll(lambda: api.send("GET", f"/api/consumption/{i}?date={day}&tz=UTC", None, admin)[0] == 200,
             f"monitoring to know device {i}")
    at = yesterday_noon_ms()
    batch = [{"device_id": d, "timestamp": at, "measurement_value": kwh_of(n)} for n, d in enumerate(ids)]
    status, body, _ = api.send("POST", "/api/readings", batch, INGEST)
    if status // 100 != 2:
        print(f"FAIL setup: readings: {status} {body}", flush=True)
        sys.exit(1)


def ask(token, text, timeout=30):
    c = Client(timeout)
    t0 = time.monotonic()
    try:
        status, body, r = c.send("POST", "/api/support/messages", {"text": text}, token)
        return status, body, time.monotonic() - t0
    except Exception as e:  # noqa: BLE001 - a hang or a reset is a result here
        return 0, {"error": repr(e)}, time.monotonic() - t0


def healthz_once():
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection(BASE.hostname, BASE.port, timeout=30)
        c.request("GET", "/healthz")
        ok = c.getresponse().status == 200
        c.close()
    except Exception:  # noqa: BLE001
        ok = False
    return ok, time.monotonic() - t0


def main():
    admin = must(api.send("POST", "/api/auth/login", {"username": ADMIN[0], "password": ADMIN[1]}), 200,
                 "admin login")["token"]

    # ---- 16 questions at once, /healthz meanwhile ----
    token, uid = customer("stall")
    ids = devices_for(admin, uid, [f"stall {RUN} {n}" for n in range(5)])
    post_readings(admin, ids, lambda n: 0.25 * (n + 1))  # 0.25 .. 1.25 kWh: 3.75 in all
    texts = ["How much did I use yesterday?", "Which of my devices uses the most energy?"]
    results = [None] * QUESTIONS
    lat = []
    done = threading.Event()

    def one(k):
        results[k] = ask(token, texts[k % 2])

    def prober():
        while not done.is_set():
            lat.append(healthz_once())
            time.sleep(0.02)

    probe = threading.Thread(target=prober)
    probe.start()
    threads = [threading.Thread(target=one, args=(k,)) for k in range(QUESTIONS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    done.set()
    probe.join()
    worst = max((s for _, s in lat), default=0.0)
    print(f"info {QUESTIONS} questions in {wall:.2f} s; /healthz asked {len(lat)} times meanwhile, "
          f"slowest {worst * 1000:.0f} ms", flush=True)
    statuses = [r[0] for r in results]
    check("16 data questions at once: every one 200", statuses == [200] * QUESTIONS, statuses)
    unavailable = [r[1].get("reply") for r in results if r[0] == 200 and "not available" in r[1].get("reply", "")]
    check("16 data questions at once: none 'not available'", not unavailable, f"{len(unavailable)}: {unavailable[:1]}")
    usage = [r[1].get("reply", "") for k, r in enumerate(results) if k % 2 == 0 and r[0] == 200]
    check("usage answers count the 5 devices and their 3.75 kWh",
          usage and all("5 device(s) used 3.75 kWh" in u for u in usage), usage[:1])
    top = [r[1].get("reply", "") for k, r in enumerate(results) if k % 2 == 1 and r[0] == 200]
    check("top-device answers name the biggest", top and all(f'"stall {RUN} 4"' in t for t in top), top[:1])
    check("/healthz asked during the questions", len(lat) > 0 and all(ok for ok, _ in lat), lat[:3])
    check(f"/healthz answers within {HEALTHZ_BOUND_S:.0f} s while the questions run", worst < HEALTHZ_BOUND_S,
          f"slowest {worst:.2f} s")

    # ---- a customer with more devices than a page holds ----
    token, uid = customer("many")
    ids = devices_for(admin, uid, [f"many {RUN} {n:03d}" for n in range(BIG)])
    post_readings(admin, ids, lambda n: (n + 1) / 100)  # 0.01 .. 3.35 kWh: 562.80 in all
    status, body, secs = ask(token, "How much did I use yesterday?")
    reply = (body or {}).get("reply", "")
    print(f"info {BIG} devices: answered in {secs * 1000:.0f} ms: {reply}", flush=True)
    check(f"{BIG} devices: usage counts all of them", status == 200 and f"your {BIG} device(s) used 562.80 kWh" in reply,
          f"{status} {body}")
    status, body, secs = ask(token, "Which of my devices uses the most energy?")
    reply = (body or {}).get("reply", "")
    check(f"{BIG} devices: the top device is on the last page",
          status == 200 and f'"many {RUN} {BIG - 1:03d}" used the most: 3.35 kWh' in reply, f"{status} {body}")

    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
