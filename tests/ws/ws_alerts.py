"""
ws_alerts.py — the end-to-end overconsumption alert against a running `ems serve`.

Environment: BASE_URL (the REST API), WS_PORT (the WebSocket port),
ADMIN_USERNAME / ADMIN_PASSWORD, INGEST_TOKEN, SERVER_PID (checked alive at
the end).  The admin creates two clients and a device with max_hourly_kwh 1.0
owned by client A; A holds two WebSocket sessions and B one.  Readings posted
to /api/readings push one UTC hour of the device over its limit, and the path
readings → monitoring → devices → ws must bring exactly one notification to
each of A's sessions and none to B; more readings in that hour raise no
second one; an alert raised while A is offline reaches A when it reconnects.
Prints "N passed, N failed".
"""
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ws_client import WSClient  # noqa: E402
from ws_embedded import HOST, WS_PORT, http, login, register  # noqa: E402

INGEST = os.environ["INGEST_TOKEN"]
HOUR_MS = 3600 * 1000
HOUR1 = 1777593600000  # 2026-05-01T00:00:00Z, an hour boundary
HOUR2 = HOUR1 + 5 * HOUR_MS

passed = failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok   {name}")
    except Exception:
        failed += 1
        print(f"FAIL {name}")
        traceback.print_exc()


def post_readings(device, hour, kwhs):
    body = [{"timestamp": hour + (i + 1) * 60000, "device_id": device, "measurement_value": k}
            for i, k in enumerate(kwhs)]
    st, j = http("POST", "/api/readings", body, token=INGEST)
    assert st == 202, (st, j)


def alerts_for(session, device, hour=None, timeout=0.5):
    """Every notification for device (and hour) arriving on session within timeout."""
    got = []
    end = time.time() + timeout
    while True:
        left = end - time.time()
        if left <= 0:
            return got
        try:
            m = session.expect("notification", left)
        except (OSError, TimeoutError):
            return got
        if m.get("device_id") == device and (hour is None or m.get("hour_start") == hour):
            got.append(m)


def first_alert(session, device, hour, timeout=10.0):
    m = session.expect("notification", timeout,
                       where=lambda m: m.get("device_id") == device and m.get("hour_start") == hour)
    assert m["kind"] == "alert" and m["limit_kwh"] == 1.0 and m["total_kwh"] > 1.0, m
    return m


class S:
    """State carried from one step to the next."""


def setup():
    S.admin = login(os.environ["ADMIN_USERNAME"], os.environ["ADMIN_PASSWORD"])
    S.a, S.b = register("ala"), register("alb")
    st, dev = http("POST", "/api/devices", {"name": "Heater", "max_hourly_kwh": 1.0, "owner_id": S.a.id},
                   token=S.admin.token)
    assert st == 201 and dev["owner_id"] == S.a.id, (st, dev)
    S.dev = dev["id"]
    # Monitoring hears of the device through the outbox: wait until it knows it.
    until = time.time() + 15
    while time.time() < until:
        if http("GET", f"/api/consumption/{S.dev}?date=2026-05-01", token=S.admin.token)[0] == 200:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("monitoring never learned of the device")


def alert_reaches_every_session_of_the_owner_only():
    S.a1, S.a2, S.b1 = S.a.ws(), S.a.ws(), S.b.ws()
    post_readings(S.dev, HOUR1, [0.4, 0.4])  # 0.8: under the limit
    assert not alerts_for(S.a1, S.dev, timeout=0.5), "alert under the limit"
    post_readings(S.dev, HOUR1 + 30 * 60000, [0.3])  # 1.1: over it
    t0 = time.time()
    m1 = first_alert(S.a1, S.dev, HOUR1)
    m2 = first_alert(S.a2, S.dev, HOUR1)
    assert time.time() - t0 < 10, "too slow"
    assert m1["id"] == m2["id"] and m1["read_at"] is None, (m1, m2)
    assert not alerts_for(S.b1, S.dev, timeout=1.0), "the other client got the alert"
    S.first = m1


def no_second_alert_in_the_same_hour():
    post_readings(S.dev, HOUR1 + 40 * 60000, [0.5, 0.2])
    # the readings are stored once the POST answers; give the pipeline time to (not) speak
    for s in (S.a1, S.a2):
        extra = alerts_for(s, S.dev, HOUR1, timeout=2.0)
        assert not extra, extra
    assert not alerts_for(S.b1, S.dev, timeout=0.2)
    st, j = http("GET", f"/api/alerts?device_id={S.dev}", token=S.a.token)
    assert st == 200 and [a["hour_start"] for a in j["items"]] == [HOUR1], (st, j)


def offline_owner_gets_the_alert_on_connect():
    # mark the first alert read so that only the new one is replayed
    S.a1.send_json({"type": "notification.read", "id": S.first["id"]})
    S.a1.expect("notification.read")
    for s in (S.a1, S.a2):
        s.close()
    post_readings(S.dev, HOUR2, [0.7, 0.7])
    # wait until monitoring has raised it, so that A is surely offline when it lands
    until = time.time() + 10
    while time.time() < until:
        st, j = http("GET", f"/api/alerts?device_id={S.dev}", token=S.admin.token)
        if st == 200 and any(a["hour_start"] == HOUR2 for a in j["items"]):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("monitoring raised no alert for the second hour")
    time.sleep(1.0)  # devices → ws: stored for the offline owner
    assert not alerts_for(S.b1, S.dev, timeout=0.2), "the other client got the alert"
    c = WSClient.connect(HOST, WS_PORT, token=S.a.token)
    hello = c.expect("hello")
    assert hello["unread_notifications"] == 1, hello
    m = first_alert(c, S.dev, HOUR2, timeout=5.0)
    assert m["read_at"] is None, m
    assert not alerts_for(c, S.dev, HOUR1, timeout=0.5), "the read alert was replayed"
    c.close()
    S.b1.close()


def server_still_serves():
    st, _ = http("GET", "/healthz")
    assert st == 200
    pid = os.environ.get("SERVER_PID")
    if pid:
        os.kill(int(pid), 0)


def main():
    try:
        setup()
    except Exception:
        traceback.print_exc()
        print("0 passed, 1 failed")
        return 1
    for fn in (alert_reaches_every_session_of_the_owner_only, no_second_alert_in_the_same_hour,
               offline_owner_gets_the_alert_on_connect, server_still_serves):
        check(fn.__name__, fn)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
