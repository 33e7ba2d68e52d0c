#!/usr/bin/env python3
"""auth_test.py — the auth role's limits and the name checks, black-box, from many loopback addresses.

Run by run_auth.sh against an embedded `ems serve` started with small limits (see there).  Every
client socket is bound to an address of its own in 127.0.0.0/8 before it connects, so that the server
sees the attacker, the owner and the gateway as different peers.  The server trusts X-Real-IP only
from 127.0.0.1 (EMS_TRUSTED_PROXIES), which plays the gateway here.

Environment: BASE_URL, ADMIN_USERNAME, ADMIN_PASSWORD, and the limits the server was started with
(LOGIN_MAX_FAILURES, LOGIN_MAX_FAILURES_USER, REGISTER_RATE, PASSWORD_MAX_FAILURES, PASSWORD_WINDOW).
"""
import http.client
import itertools
import json
import os
import secrets
import sys
import time
import traceback
import urllib.parse

BASE = urllib.parse.urlsplit(os.environ["BASE_URL"])
ADMIN = (os.environ.get("ADMIN_USERNAME", "admin"), os.environ["ADMIN_PASSWORD"])
LOGIN_MAX = int(os.environ["LOGIN_MAX_FAILURES"])
LOGIN_MAX_USER = int(os.environ["LOGIN_MAX_FAILURES_USER"])
REGISTER_RATE = int(os.environ["REGISTER_RATE"])
PASSWORD_MAX = int(os.environ["PASSWORD_MAX_FAILURES"])
PASSWORD_WINDOW = int(os.environ["PASSWORD_WINDOW"])

GATEWAY = "127.0.0.1"
_hosts = (f"127.0.{i // 250 + 1}.{i % 250 + 2}" for i in itertools.count())


def fresh_address():
    """A loopback address no other test has used: each test's counters start at zero."""
    return next(_hosts)


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"{self.status} {self.body[:300]!r}"


def send(method, path, body=None, token=None, source="127.0.0.1", headers=None):
    conn = http.client.HTTPConnection(BASE.hostname, BASE.port, timeout=30, source_address=(source, 0))
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    if token:
        h["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, data, h)
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def expect(reply, status, what):
    if reply.status != status:
        raise AssertionError(f"{what}: expected {status}, got {reply!r}")
    return reply


def expect_429(reply, what):
    expect(reply, 429, what)
    assert reply.json["error"]["code"] == "rate_limited", f"{what}: {reply!r}"
    retry = reply.headers.get("retry-after", "")
    assert retry.isdigit() and int(retry) >= 1, f"{what}: Retry-After is {retry!r}"
    return int(retry)


def login(username, password, source, headers=None):
    return send("POST", "/api/auth/login", {"username": username, "password": password}, source=source,
                headers=headers)


def profile(username, **over):
    return {"first_name": "Test", "last_name": "User", "email": f"{username}@example.test", **over}


def register(prefix, source=None, **over):
    """Registers a client from a fresh address (or source); returns (username, password, id, token)."""
    username, password = f"{prefix}{secrets.token_hex(4)}", "pw-" + secrets.token_hex(8)
    body = {"username": username, "password": password, **profile(username), **over}
    j = expect(send("POST", "/api/auth/register", body, source=source or fresh_address()), 201, "register").json
    return username, password, j["user"]["id"], j["token"]


_admin_token = None


def admin():
    global _admin_token
    if not _admin_token:
        _admin_token = expect(login(*ADMIN, fresh_address()), 200, "admin login").json["token"]
    return _admin_token


def users_matching(q):
    r = expect(send("GET", "/api/users?" + urllib.parse.urlencode({"q": q, "limit": 100}), token=admin()), 200,
               "user search")
    return r.json["items"] if isinstance(r.json, dict) else r.json


def wait_profile(uid):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = send("GET", f"/api/users/{uid}", token=admin())
        if r.status == 200:
            return r.json
        time.sleep(0.05)
    raise AssertionError(f"profile {uid} never appeared")


# ---- finding 2: nobody can lock another's account ------------------------------------------------

def owner_gets_in_from_elsewhere_after_a_guesser_is_locked_out():
    user, pw, _, _ = register("own")
    attacker, owner = fresh_address(), fresh_address()
    for i in range(LOGIN_MAX):
        expect(login(user, f"wrong-{i}", attacker), 401, f"guess {i}")
    expect_429(login(user, "wrong-again", attacker), "the guesser past the limit")
    expect_429(login(user, pw, attacker), "even the right password, from the guesser's address")
    expect_429(login(user.upper(), pw, attacker), "any case of the username")
    expect(login(user, pw, owner), 200, "the owner from another address")
    expect(login(user, pw, owner), 200, "and again")


def a_client_cannot_spoof_its_address_with_headers():
    # 127.0.0.x other than .1 is not a trusted proxy: its X-Real-IP and X-Forwarded-For are ignored.
    user, pw, _, _ = register("spf")
    attacker = fresh_address()
    for i in range(LOGIN_MAX):
        fake = {"X-Real-IP": f"198.51.100.{i + 1}", "X-Forwarded-For": f"198.51.100.{i + 1}"}
        expect(login(user, f"wrong-{i}", attacker, fake), 401, f"guess {i}")
    fake = {"X-Real-IP": "198.51.100.200", "X-Forwarded-For": "198.51.100.200"}
    expect_429(login(user, pw, attacker, fake), "a new X-Real-IP from an untrusted peer")


def behind_the_gateway_the_client_address_is_x_real_ip():
    # From the trusted gateway each X-Real-IP is a client of its own: one locked out, another not.
    user, pw, _, _ = register("gw")
    bad, good = {"X-Real-IP": "203.0.113.7"}, {"X-Real-IP": "203.0.113.8"}
    for i in range(LOGIN_MAX):
        expect(login(user, f"wrong-{i}", GATEWAY, bad), 401, f"guess {i} through the gateway")
    expect_429(login(user, pw, GATEWAY, bad), "the guesser behind the gateway")
    expect(login(user, pw, GATEWAY, good), 200, "the owner behind the gateway")
    expect(login(user, pw, fresh_address()), 200, "the owner directly")


def a_guesser_spread_over_addresses_meets_the_username_ceiling():
    user, pw, _, _ = register("cap")
    guesses = 0
    while guesses < LOGIN_MAX_USER:
        source = fresh_address()
        for _ in range(min(LOGIN_MAX, LOGIN_MAX_USER - guesses)):
            expect(login(user, f"wrong-{guesses}", source), 401, f"guess {guesses}")
            guesses += 1
    expect_429(login(user, pw, fresh_address()), "any address once the username's ceiling is reached")


# ---- finding 5: registration and the old password ---------------------------------------------------

def registrations_past_the_rate_get_429_and_create_nothing():
    source = fresh_address()
    bad = {"username": "x", "password": "short"}  # refused input costs nothing and is not counted
    expect(send("POST", "/api/auth/register", bad, source=source), 400, "bad input")
    for _ in range(REGISTER_RATE):
        register("rg", source)
    username = f"rgx{secrets.token_hex(4)}"
    body = {"username": username, "password": "pw-" + secrets.token_hex(8), **profile(username)}
    retry = expect_429(send("POST", "/api/auth/register", body, source=source), "one registration too many")
    assert retry <= 60, f"Retry-After {retry} is past the minute"
    expect(login(username, body["password"], fresh_address()), 401, "no account was made")
    time.sleep(0.3)  # an account would have announced its profile by now
    assert not users_matching(username), "a profile was made"
    expect(send("POST", "/api/auth/register", body, source=fresh_address()), 201, "another address may register")


def wrong_old_passwords_past_the_limit_get_429_then_the_window_ends():
    user, pw, _, token = register("pw")
    new_pw = "new-" + secrets.token_hex(8)
    attempts = fresh_address(), fresh_address()  # per account: changing address does not help
    for i in range(PASSWORD_MAX):
        r = send("PUT", "/api/auth/password", {"old_password": f"guess-{i}", "new_password": new_pw}, token,
                 source=attempts[i % 2])
        expect(r, 403, f"wrong old password {i}")
    r = send("PUT", "/api/auth/password", {"old_password": "guess-x", "new_password": new_pw}, token,
             source=attempts[0])
    expect_429(r, "a guess past the limit")
    r = send("PUT", "/api/auth/password", {"old_password": pw, "new_password": new_pw}, token, source=attempts[1])
    retry = expect_429(r, "the right old password inside the window")
    assert retry <= PASSWORD_WINDOW, f"Retry-After {retry} past the {PASSWORD_WINDOW} s window"
    expect(login(user, pw, fresh_address()), 200, "the password did not change")
    time.sleep(retry + 0.2)
    r = send("PUT", "/api/auth/password", {"old_password": pw, "new_password": new_pw}, token, source=attempts[0])
    expect(r, 200, "the right old password after the window")
    expect(login(user, new_pw, fresh_address()), 200, "the new password")


# ---- finding 8: strict UTF-8 and names that show -----------------------------------------------------

BLANK_NAMES = {
    "soft hyphen": "\u00ad",
    "zero-width space": "\u200b\u200b",
    "BOM": "\ufeff",
    "word joiner": "\u2060",
    "combining mark alone": "\u0301",
    "spaces": "   ",
    "no-break and ideographic space": "\u00a0\u3000",
    "Hangul filler": "\u3164",
}
CONTROL_NAMES = {"C1 control": "Ann\u0085e", "C1 CSI": "\u009b31m"}


def blank_or_control_names_at_registration_are_400_and_make_nothing():
    for what, name in {**BLANK_NAMES, **CONTROL_NAMES}.items():
        for field in ("first_name", "last_name"):
            username = f"bl{secrets.token_hex(4)}"
            body = {"username": username, "password": "pw-" + secrets.token_hex(8), **profile(username)}
            body[field] = name
            r = expect(send("POST", "/api/auth/register", body, source=fresh_address()), 400, f"{field} {what}")
            assert field in r.json["error"]["message"], f"{field} {what}: {r!r}"
            expect(login(username, body["password"], fresh_address()), 401, f"{field} {what}: no account")


def blank_names_on_a_profile_are_400_and_change_nothing():
    _, _, uid, token = register("pf")
    before = wait_profile(uid)
    for what, name in {**BLANK_NAMES, **CONTROL_NAMES}.items():
        for field in ("first_name", "last_name"):
            r = expect(send("PATCH", f"/api/users/{uid}", {field: name}, token), 400, f"{field} {what}")
            if what in BLANK_NAMES:
                assert "visible" in r.json["error"]["message"], f"{field} {what}: {r!r}"
    expect(send("PATCH", f"/api/users/{uid}", {"first_name": "Zo\u00eb\u200b"}, token), 200, "a name that shows")
    after = expect(send("GET", f"/api/users/{uid}", token=token), 200, "profile").json
    assert {k: v for k, v in after.items() if k not in ("first_name", "updated_at")} == \
        {k: v for k, v in before.items() if k not in ("first_name", "updated_at")}, f"{before} -> {after}"


def blank_device_names_are_400_and_change_nothing():
    device = {"name": "meter " + secrets.token_hex(3), "max_hourly_kwh": 2.5}
    d = expect(send("POST", "/api/devices", device, admin()), 201, "a device").json
    for what, name in {**BLANK_NAMES, **CONTROL_NAMES}.items():
        r = expect(send("POST", "/api/devices", {**device, "name": name}, admin()), 400, f"create, {what}")
        assert "name" in r.json["error"]["message"], f"{what}: {r!r}"
        expect(send("PATCH", f"/api/devices/{d['id']}", {"name": name}, admin()), 400, f"rename, {what}")
    now = expect(send("GET", f"/api/devices/{d['id']}", token=admin()), 200, "the device").json
    assert now == d, f"the device changed: {d} -> {now}"


def overlong_and_surrogate_text_is_400():
    # JSON cannot carry them (jansson refuses the body), but a query string can: q reaches ems_text_ok raw.
    for what, raw in {"overlong '/'": "%E0%80%AF", "overlong in four bytes": "%F0%80%80%AF",
                      "surrogate": "%ED%A0%80", "above U+10FFFF": "%F4%90%80%80", "cut": "ab%E2%82",
                      "C1 control": "%C2%85"}.items():
        r = send("GET", "/api/users?q=" + raw, token=admin())
        expect(r, 400, f"q with {what}")
    expect(send("GET", "/api/users?q=" + urllib.parse.quote("Zo\u00eb"), token=admin()), 200, "q in UTF-8")
    body = b'{"username":"ovl%s","password":"pw-12345678","first_name":"\xc0\xaf","last_name":"L",' \
           b'"email":"o@example.test"}' % secrets.token_hex(3).encode()
    conn = http.client.HTTPConnection(BASE.hostname, BASE.port, timeout=30, source_address=(fresh_address(), 0))
    conn.request("POST", "/api/auth/register", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    status = r.status
    r.read()
    conn.close()
    assert status == 400, f"overlong bytes in a JSON name: {status}"


TESTS = [
    owner_gets_in_from_elsewhere_after_a_guesser_is_locked_out,
    a_client_cannot_spoof_its_address_with_headers,
    behind_the_gateway_the_client_address_is_x_real_ip,
    a_guesser_spread_over_addresses_meets_the_username_ceiling,
    registrations_past_the_rate_get_429_and_create_nothing,
    wrong_old_passwords_past_the_limit_get_429_then_the_window_ends,
    blank_or_control_names_at_registration_are_400_and_make_nothing,
    blank_names_on_a_profile_are_400_and_change_nothing,
    blank_device_names_are_400_and_change_nothing,
    overlong_and_surrogate_text_is_400,
]


def main():
    failed = 0
    for t in TESTS:
        start = time.monotonic()
        try:
            t()
            print(f"ok   {t.__name__} ({time.monotonic() - start:.1f} s)")
        except Exception:  # noqa: BLE001 — report every test, then fail
            failed += 1
            print(f"FAIL {t.__name__}")
            traceback.print_exc()
    print(f"{len(TESTS) - failed}/{len(TESTS)} passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
