"""
ws_distributed.py — deliveries between two ws replicas (run by run_distributed.sh).

Environment: AUTH_URL, REST_URLS (the two replicas' REST, space-separated),
WS_PORTS (their WebSocket ports), AMQP_URL, ADMIN_USERNAME / ADMIN_PASSWORD.
The administrator connects to replica 1 and the client to replica 2; every
live delivery must cross.  Both replicas ask auth whether a token was revoked.  Prints "N passed, N failed".
"""
import json
import os
import secrets
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ws_client import Refused, WSClient  # noqa: E402

AUTH = os.environ["AUTH_URL"]
REST = os.environ["REST_URLS"].split()
PORTS = [int(p) for p in os.environ["WS_PORTS"].split()]
NQ = "internal.device.websocket.user.notification.queue"


def http(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


class F:
    pass


def connect(who, replica):
    c = WSClient.connect("127.0.0.1", PORTS[replica], token=who["token"])
    assert c.expect("hello")["user"]["id"] == who["user"]["id"]
    return c


results = []


def test(fn):
    results.append(fn)
    return fn


@test
def chat_typing_seen_and_presence_cross_replicas():
    adm = connect(F.admin, 0)
    cli = connect(F.client, 1)
    cid = F.client["user"]["id"]
    p = adm.expect("presence", where=lambda m: m["user_id"] == cid and m["online"])
    assert p["role"] == "client", p
    cli.send_json({"type": "chat.typing"})
    assert adm.expect("chat.typing")["user_id"] == cid
    cli.send_json({"type": "chat.send", "text": "hello from replica 2"})
    m = adm.expect("chat.message")
    assert m["text"] == "hello from replica 2" and m["conversation"] == cid, m
    adm.send_json({"type": "chat.seen", "conversation": cid, "up_to": m["id"]})
    assert cli.expect("chat.seen")["up_to"] == m["id"]
    adm.send_json({"type": "chat.typing", "to": cid})
    assert cli.expect("chat.typing")["role"] == "admin"
    adm.send_json({"type": "chat.send", "to": cid, "text": "hello from replica 1"})
    r = cli.expect("chat.message", where=lambda x: x["sender_role"] == "admin")
    assert r["text"] == "hello from replica 1", r
    cli.close()
    off = adm.expect("presence", where=lambda x: x["user_id"] == cid and not x["online"])
    assert off["online"] is False
    adm.close()


@test
def notification_reaches_the_owner_on_either_replica():
    cid = F.client["user"]["id"]
    sessions = [connect(F.client, 0), connect(F.client, 1)]
    other = connect(F.other, 0)
    event = {"event_id": str(uuid.uuid4()), "type": "alert", "device_id": str(uuid.uuid4()),
             "device_name": "Heat pump", "owner_id": cid, "hour_start": 1764237600000,
             "total_kwh": 4.2, "limit_kwh": 3.0}
    subprocess.run(["amqp-publish", "-u", os.environ["AMQP_URL"], "-r", NQ, "-p", "-C", "application/json",
                    "-b", json.dumps(event)], check=True)
    ids = set()
    for s in sessions:
        n = s.expect("notification", timeout=10)
        assert n["device_name"] == "Heat pump" and n["kind"] == "alert", n
        ids.add(n["id"])
    assert len(ids) == 1, ids
    assert other.quiet("notification", 1.0), "another user got the notification"
    for c in sessions + [other]:
        c.close()


@test
def history_is_shared():
    cid = F.client["user"]["id"]
    for base in REST:
        st, j = http("GET", f"{base}/api/chat/conversations/{cid}/messages", token=F.admin["token"])
        assert st == 200, (st, j)
        assert [m["text"] for m in j["items"]] == ["hello from replica 2", "hello from replica 1"], j
    st, j = http("GET", f"{REST[1]}/api/chat/conversations/{cid}/messages", token=F.other["token"])
    assert st == 403, (st, j)


@test
def offline_message_waits_for_the_next_session():
    cid = F.client["user"]["id"]
    adm = connect(F.admin, 1)
    adm.send_json({"type": "chat.send", "to": cid, "text": "while you were away"})
    adm.expect("chat.message")
    adm.close()
    cli = connect(F.client, 0)
    m = cli.expect("chat.message", where=lambda x: x["text"] == "while you were away")
    assert m["sender_role"] == "admin"
    cli.close()


@test
def assistant_without_support_apologizes_over_postgres():
    # No support role runs here and no SUPPORT_SERVICE_HOST is set: the assistant apologizes,
    # and both messages are kept in the client's own assistant conversation.
    cli = connect(F.client, 1)
    cli.send_json({"type": "chat.send", "to": "assistant", "text": "did I go over my limit?"})
    q = cli.expect("chat.message", where=lambda m: m["conversation"] == "assistant")
    r = cli.expect("chat.message", 15, where=lambda m: m["sender_id"] == "assistant")
    assert r["source"] == "unavailable" and r["sender_name"] == "Assistant" and r["text"], r
    cli.close()
    st, j = http("GET", f"{REST[0]}/api/chat/conversations/assistant/messages", token=F.client["token"])
    assert st == 200 and [m["id"] for m in j["items"]] == [q["id"], r["id"]], (st, j)
    # the apology keeps its source in the history, over PostgreSQL too
    assert j["items"][1]["source"] == "unavailable" and "source" not in j["items"][0], j
    st, j = http("GET", f"{REST[0]}/api/chat/conversations", token=F.client["token"])
    assert st == 200 and "assistant" in [c["conversation"] for c in j["items"]], (st, j)
    st, j = http("GET", f"{REST[0]}/api/chat/conversations", token=F.admin["token"])
    assert st == 200 and "assistant" not in [c["conversation"] for c in j["items"]], (st, j)
    st, j = http("GET", f"{REST[1]}/api/chat/conversations/assistant/messages", token=F.other["token"])
    assert st == 200 and j["items"] == [], (st, j)


@test
def revoked_token_is_refused_by_every_replica_and_its_sockets_closed():
    # auth announces the revocation on internal.auth.websocket.queue: one replica takes it and passes it to the
    # other, so the sockets the old token opened close on both.  Each replica also asks auth (AUTH_SERVICE_HOST)
    # whether a new socket's token version still holds.
    name, pw = f"wsr{secrets.token_hex(4)}", "pw-" + secrets.token_hex(8)
    st, j = http("POST", f"{AUTH}/api/auth/register", {
        "username": name, "password": pw, "first_name": "T", "last_name": "R", "email": f"{name}@example.org"})
    assert st == 201, (st, j)
    open_ = [connect(j, replica) for replica in (0, 1)]
    st, k = http("PUT", f"{AUTH}/api/auth/password", {"old_password": pw, "new_password": pw + "-2"},
                 token=j["token"])
    assert st == 200, (st, k)
    for replica, c in enumerate(open_):
        e = c.expect("error")
        assert e["code"] == "unauthorized", (replica, e)
        code = c.wait_close()
        assert code == 4001, (f"replica {replica + 1}", code)
    for replica in (0, 1):
        try:
            WSClient.connect("127.0.0.1", PORTS[replica], token=j["token"]).close()
            raise AssertionError(f"replica {replica + 1} accepted a token revoked by a password change")
        except Refused:
            pass
        connect(k, replica).close()


def peers(rest):
    """The ems_ws_peers gauge on a replica's /metrics (public on a distributed role's port); -1 if absent."""
    try:
        with urllib.request.urlopen(rest + "/metrics", timeout=2) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("ems_ws_peers "):
                    return float(line.split()[1])
    except (urllib.error.URLError, OSError):
        pass
    return -1


def register(prefix):
    name = f"{prefix}{secrets.token_hex(4)}"
    st, j = http("POST", f"{AUTH}/api/auth/register", {
        "username": name, "password": "pw-" + secrets.token_hex(8), "first_name": "T", "last_name": prefix,
        "email": f"{name}@example.org"})
    assert st == 201, (st, j)
    return j


def main():
    try:
        st, F.admin = http("POST", f"{AUTH}/api/auth/login",
                           {"username": os.environ["ADMIN_USERNAME"], "password": os.environ["ADMIN_PASSWORD"]})
        assert st == 200, (st, F.admin)
        F.client, F.other = register("wsd"), register("wse")
        # Each replica must know the other from its heartbeat (every 2 s): its ems_ws_peers gauge says so.
        until = time.time() + 15
        while time.time() < until and not all(peers(url) >= 1 for url in REST):
            time.sleep(0.2)
        assert all(peers(url) >= 1 for url in REST), "the replicas never saw each other's heartbeat"
    except Exception:
        traceback.print_exc()
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    for fn in results:
        try:
            fn()
            passed += 1
            print(f"ok   {fn.__name__}")
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__}")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
