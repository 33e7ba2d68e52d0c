"""
ws_embedded.py — the ws role's black-box suite against a running `ems serve`.

Environment: BASE_URL (the REST API), WS_PORT (the WebSocket port),
ADMIN_USERNAME / ADMIN_PASSWORD, SERVER_PID (checked alive at the end).
Registers two clients, signs the admin in, and checks over the wire:
authentication of the upgrade (a token revoked by a password change
or an account deletion included), chat both ways with typing and read
receipts, presence, offline delivery, authorization of sends and history,
and that bad frames, oversized messages, unknown types and floods get an
error or a close while the server keeps serving.  Prints "N passed, N failed".
"""
import json
import os
import secrets
import sys
import time
import traceback
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ws_client import Closed, Refused, WSClient  # noqa: E402

BASE = os.environ["BASE_URL"]
WS_PORT = int(os.environ["WS_PORT"])
HOST = "127.0.0.1"


def http(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
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


class User:
    def __init__(self, token, user):
        self.token, self.id, self.username, self.role = token, user["id"], user["username"], user["role"]

    def ws(self):
        c = WSClient.connect(HOST, WS_PORT, token=self.token)
        hello = c.expect("hello")
        assert hello["user"]["id"] == self.id, hello
        return c


def register(prefix):
    name = f"{prefix}{secrets.token_hex(4)}"
    status, j = http("POST", "/api/auth/register", {
        "username": name, "password": "pw-" + secrets.token_hex(8), "first_name": "T", "last_name": prefix,
        "email": f"{name}@example.org"})
    assert status == 201, (status, j)
    return User(j["token"], j["user"])


def login(username, password):
    status, j = http("POST", "/api/auth/login", {"username": username, "password": password})
    assert status == 200, (status, j)
    return User(j["token"], j["user"])


class F:
    """Fixtures shared by the tests."""


results = []


def test(fn):
    results.append(fn)
    return fn


@test
def refuses_missing_bad_and_foreign_tokens():
    for token in (None, "garbage", F.a.token[:-4] + "AAAA"):
        try:
            WSClient.connect(HOST, WS_PORT, token=token).close()
        except Refused:
            continue
        raise AssertionError(f"upgrade accepted with token {token!r:.20}")
    try:
        WSClient.connect(HOST, WS_PORT, token=F.a.token, path="/other").close()
        raise AssertionError("upgrade accepted on another path")
    except Refused:
        pass
    # The Authorization header is accepted as well as ?token=.
    c = WSClient.connect(HOST, WS_PORT, headers={"Authorization": "Bearer " + F.a.token})
    assert c.expect("hello")["user"]["role"] == "client"
    c.close()


def assert_signed_out(c):
    """An error frame 'unauthorized', then close code 4001 (sign in again)."""
    e = c.expect("error")
    assert e["code"] == "unauthorized", e
    code = c.wait_close()
    assert code == 4001, code


def assert_refused(token, why):
    try:
        WSClient.connect(HOST, WS_PORT, token=token).close()
        raise AssertionError("upgrade accepted " + why)
    except Refused:
        pass


@test
def revoked_tokens_are_refused_and_their_sockets_closed():
    # A password change moves the account's token version on: the sockets the old token opened close at once,
    # and it cannot open another.
    name, pw = f"wsr{secrets.token_hex(4)}", "pw-" + secrets.token_hex(8)
    st, j = http("POST", "/api/auth/register", {
        "username": name, "password": pw, "first_name": "T", "last_name": "R", "email": f"{name}@example.org"})
    assert st == 201, (st, j)
    old = User(j["token"], j["user"])
    c1, c2 = old.ws(), old.ws()  # good before the change (and now cached by ws)
    other = F.a.ws()
    st, j = http("PUT", "/api/auth/password", {"old_password": pw, "new_password": pw + "-2"}, token=old.token)
    assert st == 200 and j["token"] != old.token, (st, j)
    new = User(j["token"], j["user"])
    assert_signed_out(c1)
    assert_signed_out(c2)
    assert_refused(old.token, "with the token from before the password change")
    # The new token's socket, and other users', stay.
    n = new.ws()
    n.send_json({"type": "ping"})
    n.expect("pong")
    other.send_json({"type": "ping"})
    other.expect("pong")
    # An administrator changes the password: the new token's socket closes too.
    st, _ = http("PATCH", f"/api/auth/accounts/{new.id}", {"password": pw + "-3"}, token=F.admin.token)
    assert st == 200, st
    assert_signed_out(n)
    st, j = http("POST", "/api/auth/login", {"username": name, "password": pw + "-3"})
    assert st == 200, (st, j)
    last = User(j["token"], j["user"])
    d = last.ws()
    # An account deleted by an administrator: its socket closes, its token is refused.
    st, _ = http("DELETE", f"/api/auth/accounts/{last.id}", token=F.admin.token)
    assert st in (200, 204), st
    assert_signed_out(d)
    assert_refused(last.token, "with the token of a deleted account")
    other.send_json({"type": "ping"})
    other.expect("pong")
    other.close()


@test
def chat_round_trip_with_typing_seen_and_presence():
    adm = F.admin.ws()
    a1, a2 = F.a.ws(), F.a.ws()  # two sessions of one client
    # (an offline event of an earlier test's session may come first)
    pres = adm.expect("presence", where=lambda m: m["user_id"] == F.a.id and m["online"])
    assert pres["online"] is True and pres["role"] == "client", pres
    # client → admin, echoed to the client's other session
    a1.send_json({"type": "chat.typing"})
    t = adm.expect("chat.typing")
    assert t["user_id"] == F.a.id and t["conversation"] == F.a.id, t
    assert a2.quiet("chat.typing"), "typing was echoed to the typist's own sessions"
    a1.send_json({"type": "chat.send", "text": "my meter is odd"})
    m = adm.expect("chat.message")
    assert m["text"] == "my meter is odd" and m["sender_id"] == F.a.id and m["conversation"] == F.a.id, m
    assert m["sender_role"] == "client" and m["seen_at"] is None and m["sender_name"] == F.a.username, m
    assert a2.expect("chat.message")["id"] == m["id"]
    assert a1.expect("chat.message")["id"] == m["id"]
    # admin → client, with typing and a read receipt each way
    adm.send_json({"type": "chat.typing", "to": F.a.id})
    assert a1.expect("chat.typing")["role"] == "admin"
    adm.send_json({"type": "chat.seen", "conversation": F.a.id, "up_to": m["id"]})
    s = a1.expect("chat.seen")
    assert s["up_to"] == m["id"] and s["by"] == F.admin.id, s
    adm.send_json({"type": "chat.send", "to": F.a.id, "text": "looking into it"})
    r = a1.expect("chat.message")
    assert r["text"] == "looking into it" and r["sender_role"] == "admin", r
    assert a2.expect("chat.message")["id"] == r["id"]
    a2.send_json({"type": "chat.seen", "up_to": r["id"]})
    s = adm.expect("chat.seen", where=lambda m: m["role"] == "client")
    assert s["conversation"] == F.a.id and s["up_to"] == r["id"] and s["role"] == "client", s
    # a client may name the admin explicitly
    a1.send_json({"type": "chat.send", "to": F.admin.id, "text": "thanks"})
    assert adm.expect("chat.message")["text"] == "thanks"
    # presence: the client's last session closing is announced
    a1.close()
    assert adm.quiet("presence", 0.5, where=lambda m: m["user_id"] == F.a.id), "offline with a session left"
    a2.close()
    off = adm.expect("presence", where=lambda m: m["user_id"] == F.a.id)
    assert off["online"] is False, off
    adm.close()


@test
def presence_snapshot_is_one_batch():
    # Three clients online, then an administrator opens a session: who is online comes as one
    # presence.batch frame with one entry per client (not per session), not as a frame per client.
    clients = [register("wsp") for _ in range(3)]
    sessions = [c.ws() for c in clients] + [clients[0].ws()]
    adm = WSClient.connect(HOST, WS_PORT, token=F.admin.token)
    adm.expect("hello")
    seen = {}
    while len(seen) < 3:
        m = adm.expect("presence", timeout=3, where=lambda m: m["user_id"] in {c.id for c in clients})
        seen[m["user_id"]] = seen.get(m["user_id"], 0) + 1
    assert all(n == 1 for n in seen.values()), seen
    assert adm.batches == 1, adm.batches
    for s in sessions:
        s.close()
    adm.close()


@test
def history_and_conversations_over_rest():
    st, j = http("GET", f"/api/chat/conversations/{F.a.id}/messages", token=F.a.token)
    assert st == 200, (st, j)
    texts = [m["text"] for m in j["items"]]
    assert texts[-3:] == ["my meter is odd", "looking into it", "thanks"], texts
    assert j["items"][-3]["seen_at"] is not None and j["items"][-2]["seen_at"] is not None, j["items"]
    # paging: the newest first page of 1, then before it
    st, p1 = http("GET", f"/api/chat/conversations/{F.a.id}/messages?limit=1", token=F.admin.token)
    assert st == 200 and [m["text"] for m in p1["items"]] == ["thanks"] and p1["has_more"], p1
    st, p2 = http("GET", f"/api/chat/conversations/{F.a.id}/messages?limit=1&before={p1['items'][0]['id']}",
                  token=F.admin.token)
    assert st == 200 and [m["text"] for m in p2["items"]] == ["looking into it"], p2
    # the client may name its conversation by an admin's id too
    st, j = http("GET", f"/api/chat/conversations/{F.admin.id}/messages", token=F.a.token)
    assert st == 200 and j["conversation"] == F.a.id, (st, j)
    st, j = http("GET", "/api/chat/conversations", token=F.admin.token)
    assert st == 200, (st, j)
    conv = [c for c in j["items"] if c["conversation"] == F.a.id]
    assert conv and conv[0]["last_message"]["text"] == "thanks" and conv[0]["unread"] == 1, j
    assert conv[0]["client"]["username"] == F.a.username, conv
    st, j = http("GET", "/api/chat/conversations", token=F.a.token)
    assert st == 200 and [c["conversation"] for c in j["items"]] == [F.a.id], j
    assert j["items"][0]["unread"] == 0, j
    st, j = http("GET", "/api/chat/conversations", token=F.b.token)
    assert st == 200 and j["items"][0]["last_message"] is None, j


@test
def foreign_history_is_forbidden():
    st, j = http("GET", f"/api/chat/conversations/{F.a.id}/messages", token=F.b.token)
    assert st == 403 and j["error"]["code"] == "forbidden", (st, j)
    st, j = http("GET", f"/api/chat/conversations/{F.a.id}/messages")
    assert st == 401, (st, j)
    st, j = http("GET", "/api/chat/conversations/not-an-id/messages", token=F.admin.token)
    assert st == 400, (st, j)
    st, j = http("GET", f"/api/chat/conversations/{F.a.id}/messages?limit=1000", token=F.admin.token)
    assert st == 400, (st, j)


@test
def client_cannot_write_to_a_client():
    b = F.b.ws()  # b is known to ws now
    a = F.a.ws()
    for to in (F.b.id, "00000000-0000-4000-8000-000000000000"):
        a.send_json({"type": "chat.send", "to": to, "text": "psst"})
        e = a.expect("error")
        assert e["code"] == "forbidden", e
        a.send_json({"type": "chat.typing", "to": to})
        assert a.expect("error")["code"] == "forbidden"
    assert b.quiet("chat.message") and b.quiet("chat.typing")
    a.send_json({"type": "chat.seen", "conversation": F.b.id, "up_to": 1})
    assert a.expect("error")["code"] == "forbidden"
    # an admin cannot write to another admin either, nor without a recipient
    adm = F.admin.ws()
    adm.send_json({"type": "chat.send", "to": F.admin.id, "text": "me"})
    assert adm.expect("error")["code"] == "forbidden"
    adm.send_json({"type": "chat.send", "text": "nobody"})
    assert adm.expect("error")["code"] == "bad_request"
    for c in (a, b, adm):
        c.close()


@test
def offline_delivery_on_connect():
    # to an offline admin
    a = F.a.ws()
    a.send_json({"type": "chat.send", "text": "anyone there?"})
    sent = a.expect("chat.message")
    a.close()
    adm = F.admin.ws()
    got = adm.expect("chat.message", where=lambda m: m["id"] == sent["id"])
    assert got["text"] == "anyone there?", got
    # to an offline client
    adm.send_json({"type": "chat.send", "to": F.b.id, "text": "your device is back"})
    mid = adm.expect("chat.message", where=lambda m: m["conversation"] == F.b.id)["id"]
    adm.close()
    c = WSClient.connect(HOST, WS_PORT, token=F.b.token)
    hello = c.expect("hello")
    assert hello["unseen_messages"] >= 1, hello
    got = c.expect("chat.message")
    assert got["id"] == mid and got["text"] == "your device is back", got
    # once seen, it is not replayed
    c.send_json({"type": "chat.seen", "up_to": mid})
    c.expect("chat.seen")
    c.close()
    c = WSClient.connect(HOST, WS_PORT, token=F.b.token)
    assert c.expect("hello")["unseen_messages"] == 0
    c.close()


@test
def bad_frames_get_errors():
    c = F.a.ws()
    cases = [("not json", "bad_request"), ("[1]", "bad_request"), ('{"kind":"x"}', "bad_request"),
             ('{"type":"rocket.launch"}', "unknown_type"), ('{"type":"chat.send"}', "bad_request"),
             ('{"type":"chat.send","text":"   "}', "bad_request"),
             ('{"type":"chat.send","text":"x","to":"nope"}', "bad_request"),
             ('{"type":"chat.seen","up_to":"x"}', "bad_request"),
             ('{"type":"notification.read","id":999999}', "not_found")]
    for text, code in cases:
        c.send_text(text)
        e = c.expect("error")
        assert e["code"] == code, (text, e)
    c.send(2, b"\x00\x01")
    assert c.expect("error")["code"] == "unsupported_media_type"
    c.send_json({"type": "ping"})
    assert c.expect("pong")["type"] == "pong"
    c.close()


@test
def refs_come_back_on_the_echo_and_the_errors():
    # A client names its frames with "ref": the sender's copy of a stored message carries it, the
    # copies for everyone else do not, and an error about the frame carries it too.
    adm, a1, a2 = F.admin.ws(), F.a.ws(), F.a.ws()
    a1.send_json({"type": "chat.send", "text": "with a ref", "ref": "r-1 ✓"})
    echo = a1.expect("chat.message", where=lambda m: m.get("ref") == "r-1 ✓")
    assert echo["text"] == "with a ref" and echo["sender_id"] == F.a.id, echo
    for other in (a2, adm):
        m = other.expect("chat.message", where=lambda m: m["id"] == echo["id"])
        assert "ref" not in m, m
    # the sender gets the broadcast copy as well (without the ref), as before
    assert "ref" not in a1.expect("chat.message", where=lambda m: m["id"] == echo["id"])
    a1.send_json({"type": "chat.send", "text": "without one"})
    plain = a1.expect("chat.message", where=lambda m: m["text"] == "without one")
    assert "ref" not in plain and a1.quiet("chat.message", 0.3, where=lambda m: m["id"] == plain["id"]), plain
    # errors name the frame they are about
    for frame, code in ((({"type": "chat.send", "text": "", "ref": "empty"}), "bad_request"),
                        (({"type": "chat.send", "text": "x" * 4001, "ref": "long"}), "bad_request"),
                        (({"type": "chat.send", "to": F.b.id, "text": "hi", "ref": "client"}), "forbidden"),
                        (({"type": "rocket.launch", "ref": "unknown"}), "unknown_type")):
        a1.send_json(frame)
        e = a1.expect("error")
        assert e["code"] == code and e.get("ref") == frame["ref"], (frame, e)
    a1.send_json({"type": "ping", "ref": "p"})
    assert a1.expect("pong").get("ref") == "p"
    # a ref of 64 characters is fine (multi-byte ones count once); 65, an empty one or a number is refused,
    # and that error carries no ref; nothing is stored
    a1.send_json({"type": "chat.send", "text": "long ref", "ref": "é" * 64})
    assert a1.expect("chat.message", where=lambda m: "ref" in m)["ref"] == "é" * 64
    for ref in ("x" * 65, "", 7, None, ["r"]):
        a1.send_json({"type": "chat.send", "text": "refused ref", "ref": ref})
        e = a1.expect("error")
        assert e["code"] == "bad_request" and "ref" not in e, (ref, e)
    assert adm.quiet("chat.message", 0.3, where=lambda m: m["text"] == "refused ref"), "stored with a bad ref"
    for c in (adm, a1, a2):
        c.close()


@test
def oversized_message_is_refused_and_closed():
    c = F.a.ws()
    c.send_json({"type": "chat.send", "text": "x" * 20000})
    e = c.expect("error")
    assert e["code"] == "too_large", e
    assert c.wait_close() == 1009
    c.sock.close()
    # fragmented: the pieces add up over the limit
    c = F.a.ws()
    for _ in range(3):
        c.send(1 if _ == 0 else 0, b" " * 7000, fin=False)
    c.send(0, b"{}", fin=True)
    assert c.expect("error")["code"] == "too_large"
    assert c.wait_close() == 1009
    c.sock.close()


@test
def flood_is_closed():
    c = F.a.ws()
    # 60 messages (the limit is 50 a second) in one write, so that none is still in flight at the close
    c.sock.sendall(b"".join(c.frame(1, b'{"type":"ping"}') for _ in range(60)))
    assert c.wait_close() == 1008
    c.sock.close()


@test
def assistant_answers_in_the_askers_time_zone():
    # a device of the asker's, so that "yesterday" has an answer with its date and zone
    st, d = http("POST", "/api/devices", {"name": "tz meter", "max_hourly_kwh": 5, "owner_id": F.a.id},
                 token=F.admin.token)
    assert st == 201, (st, d)
    c = F.a.ws()
    c.send_json({"type": "chat.send", "to": "assistant", "text": "how much did I use yesterday?",
                 "tz": "Pacific/Kiritimati"})
    r = c.expect("chat.message", 15, where=lambda m: m["sender_id"] == "assistant")
    assert r["rule"] == "usage_yesterday" and "Pacific/Kiritimati" in r["text"], r
    c.send_json({"type": "chat.send", "to": "assistant", "text": "hello", "tz": "Mars/Olympus; drop"})
    e = c.expect("error")
    assert e["code"] == "bad_request" and "tz" in e["message"], e
    c.close()


@test
def assistant_answers_in_chat_from_rules():
    a1, a2 = F.a.ws(), F.a.ws()
    adm = F.admin.ws()
    a1.send_json({"type": "chat.send", "to": "assistant", "text": "how much did I use yesterday?"})
    q = a1.expect("chat.message")
    assert q["conversation"] == "assistant" and q["sender_id"] == F.a.id, q
    assert a2.expect("chat.message")["id"] == q["id"]
    r = a1.expect("chat.message", 15, where=lambda m: m["sender_id"] == "assistant")
    assert r["conversation"] == "assistant" and r["sender_role"] == "assistant", r
    assert r["sender_name"] == "Assistant" and r["source"] == "rule" and r.get("rule") and r["text"], r
    assert a2.expect("chat.message", 5, where=lambda m: m["sender_id"] == "assistant")["id"] == r["id"]
    # the administrators are not in it
    assert adm.quiet("chat.message", 0.5, where=lambda m: m["id"] in (q["id"], r["id"])), \
        "an administrator saw the assistant conversation"
    # history: listed with the peer "assistant", and readable by its owner
    st, j = http("GET", "/api/chat/conversations", token=F.a.token)
    assert st == 200, (st, j)
    conv = [c for c in j["items"] if c["conversation"] == "assistant"]
    assert conv and conv[0]["peer"] == "assistant" and conv[0]["last_message"]["id"] == r["id"], j
    assert F.a.id in [c["conversation"] for c in j["items"]], j  # the admin conversation stays listed
    st, j = http("GET", "/api/chat/conversations/assistant/messages", token=F.a.token)
    assert st == 200 and j["conversation"] == "assistant", (st, j)
    assert [m["id"] for m in j["items"]][-2:] == [q["id"], r["id"]], j
    assert j["items"][-2]["text"] == "how much did I use yesterday?", j
    # the answer keeps where it came from; the question, a person's message, has no source
    assert j["items"][-1]["source"] == "rule" and j["items"][-1]["rule"] == r["rule"], j
    assert "source" not in j["items"][-2] and "rule" not in j["items"][-2], j
    # nobody else reads it: another client's "assistant" is its own, an admin's list lacks it
    st, j = http("GET", "/api/chat/conversations/assistant/messages", token=F.b.token)
    assert st == 200 and all(m["id"] not in (q["id"], r["id"]) for m in j["items"]), j
    st, j = http("GET", "/api/chat/conversations", token=F.admin.token)
    assert st == 200 and all(c["last_message"]["id"] != r["id"] for c in j["items"]), j
    st, j = http("GET", f"/api/chat/conversations/{F.a.id}/messages", token=F.admin.token)
    assert st == 200 and all(m["id"] not in (q["id"], r["id"]) for m in j["items"]), j
    st, j = http("GET", f"/api/chat/conversations/{F.a.id}/messages", token=F.b.token)
    assert st == 403, (st, j)
    # an administrator may ask too
    adm.send_json({"type": "chat.send", "to": "assistant", "text": "hello"})
    r2 = adm.expect("chat.message", 15, where=lambda m: m["sender_id"] == "assistant")
    assert r2["conversation"] == "assistant" and r2["source"] in ("rule", "llm", "fallback"), r2
    assert a1.quiet("chat.message", 0.3, where=lambda m: m["id"] == r2["id"]), \
        "a client saw the admin's assistant conversation"
    for c in (a1, a2, adm):
        c.close()


@test
def server_still_serves():
    st, _ = http("GET", "/healthz")
    assert st == 200
    c = F.b.ws()
    c.send_json({"type": "ping"})
    c.expect("pong")
    c.close()
    pid = os.environ.get("SERVER_PID")
    if pid:
        os.kill(int(pid), 0)


def main():
    try:
        F.admin = login(os.environ["ADMIN_USERNAME"], os.environ["ADMIN_PASSWORD"])
        F.a, F.b = register("wsa"), register("wsb")
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
