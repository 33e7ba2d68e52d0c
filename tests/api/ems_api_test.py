#!/usr/bin/env python3
"""
ems_api_test.py — black-box suite of the EMS REST API (auth, users, devices).

It speaks HTTP to a running EMS and nothing else, so the same suite checks
`ems serve` (embedded) and the nginx gateway of a distributed cluster.  What
it asserts is docs/api.md: every endpoint in normal use, the authorization
matrix (every endpoint as anonymous, client A, client B and admin), bad input
answered with the right 4xx and the JSON error envelope *and nothing changed*,
forged and expired tokens, account deletion, event propagation from auth to
users and devices, login rate limiting, and data surviving a restart.

Python 3 standard library only.  One line per test (PASS / FAIL / SKIP and
the name), then a line exactly "N passed, N failed"; exit 1 if any failed.
Events cross the bus asynchronously in distributed mode, so anything that
waits for another role polls with a deadline; there are no fixed sleeps
except the one wait for a token to expire.

Environment (the runners run_embedded.sh / run_distributed.sh set it):
  BASE_URL             http://127.0.0.1:<port> of `ems serve` or of the gateway   (required)
  ADMIN_PASSWORD       the initial admin's password; ADMIN_USERNAME, default admin (required)
  EMS_MODE             "embedded" or "distributed": what /api/config must report
  JWT_PUBLIC_KEY_FILE  the servers' public key (PEM) for the HS256 key-confusion test
  RESTART_CMD          shell command restarting the server(s) on the same data
  TTL_BASE_URL         where to log in as the admin for a token that lives 2 s ...
  TTL_USE_URL          ... and where to use it (default TTL_BASE_URL)
  TTL_ADMIN_PASSWORD   the admin's password there (default ADMIN_PASSWORD)
  FOREIGN_BASE_URL     an EMS with a key pair of its own: its tokens must be refused here
  FOREIGN_ADMIN_PASSWORD  its admin's password (default ADMIN_PASSWORD)
  WEB_INDEX_MARKER     text the served web app's index.html contains (checks static files work)
  WEB_SECRET_NAME      a file in the web root's parent dir that traversal must not reach ...
  WEB_SECRET_MARKER    ... and the text it contains
  ROLE_URLS            space-separated base URLs of the role processes: /healthz, /readyz
                       and /metrics are checked there (the gateway does not route them);
                       default BASE_URL
  ONLY                 run only the tests whose name contains this text
  EXCLUDE              comma-separated texts: skip the tests whose name contains one
A test whose input is missing is reported as SKIP with the reason, never PASS.

`ems_api_test.py wait-ready URL SECONDS [PIDFILE]` waits for URL/readyz to
answer 200 (the runners use it); it gives up early if PIDFILE's process died.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.parse
import uuid

POLL_DEADLINE_S = 5.0
POLL_STEP_S = 0.05
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PASSWD_RE = re.compile(rb"^root:[^:\n]*:0:0:", re.M)
JWT_RE = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")

ACCOUNT_KEYS = {"id", "username", "role", "created_at"}
USER_KEYS = {"id", "username", "role"}
PROFILE_KEYS = {"id", "username", "role", "first_name", "last_name", "email", "address",
                "created_at", "updated_at"}
DEVICE_KEYS = {"id", "name", "description", "address", "max_hourly_kwh", "energy_class",
               "owner_id", "created_at", "updated_at"}
LIST_KEYS = {"items", "total", "limit", "offset"}
ENERGY_CLASSES = ["A+++", "A++", "A+", "A", "B", "C", "D", "E", "F", "G"]


# ----------------------------------------------------------------------------
# The wire: one HTTP request per connection, raw paths, any body and headers.
# ----------------------------------------------------------------------------

class Resp:
    """An answer plus the request that produced it, for failure messages."""

    def __init__(self, method, path, status, headers, data):
        self.method, self.path, self.status = method, path, status
        self.headers = headers          # http.client.HTTPMessage (case-insensitive get) or {}
        self.data = data
        self._json, self._parsed = None, False

    def header(self, name):
        return self.headers.get(name) if self.headers else None

    @property
    def ctype(self):
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    @property
    def json(self):
        if not self._parsed:
            self._parsed = True
            try:
                self._json = json.loads(self.data.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                self._json = None
        return self._json

    def __str__(self):
        body = JWT_RE.sub("<jwt>", self.data.decode("utf-8", "replace"))[:300]  # no tokens in logs
        return f"{self.method} {self.path[:120]} -> {self.status} {body!r}"


class Env:
    base = urllib.parse.urlsplit(os.environ.get("BASE_URL", "http://127.0.0.1:8080"))
    roles = [urllib.parse.urlsplit(u) for u in os.environ.get("ROLE_URLS", "").split()] or [base]


def send(method, path, body=None, who=None, *, raw=None, ctype="application/json",
         auth=None, headers=None, base=None):
    """
    Sends one request.  body is JSON-encoded; raw (bytes) is sent as is;
    ctype=None sends no Content-Type; who is a Principal (its token) unless
    auth gives the whole Authorization value.  A connection error comes back
    as status 0 with the error text, so that tests report it like any answer.
    """
    url = base or Env.base
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    hdrs = {}
    if data is not None and ctype is not None:
        hdrs["Content-Type"] = ctype
    if auth is not None:
        hdrs["Authorization"] = auth
    elif who is not None and who.token:
        hdrs["Authorization"] = "Bearer " + who.token
    hdrs.update(headers or {})
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=15)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if data is not None or method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(data or b"")))
        conn.endheaders()
        if data:
            try:
                conn.send(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer (413) before reading it all
        r = conn.getresponse()
        return Resp(method, path, r.status, r.headers, r.read())
    except (OSError, http.client.HTTPException) as e:
        return Resp(method, path, 0, {}, f"connection error: {type(e).__name__}: {e}".encode())
    finally:
        conn.close()


# ----------------------------------------------------------------------------
# Assertions.
# ----------------------------------------------------------------------------

def ok(r, status):
    """Asserts a success status; returns the JSON body (None for 204)."""
    assert r.status == status, f"expected {status}, got {r}"
    if status == 204:
        assert not r.data, f"204 with a body: {r}"
        return None
    assert r.ctype == "application/json", f"Content-Type {r.ctype!r}, expected JSON: {r}"
    assert r.json is not None, f"body is not JSON: {r}"
    return r.json


def err(r, status, code):
    """Asserts status and the envelope {"error":{"code","message"}} exactly."""
    assert r.status == status, f"expected {status} {code}, got {r}"
    assert r.ctype == "application/json", f"error is not JSON (Content-Type {r.ctype!r}): {r}"
    j = r.json
    assert isinstance(j, dict) and set(j) == {"error"}, f"not an error envelope: {r}"
    e = j["error"]
    assert isinstance(e, dict) and set(e) == {"code", "message"}, f"envelope keys: {r}"
    assert e["code"] == code, f"error code {e['code']!r}, expected {code!r}: {r}"
    assert isinstance(e["message"], str) and e["message"], f"empty error message: {r}"


def eq(actual, expected, what):
    assert actual == expected, f"{what}: got {actual!r}, expected {expected!r}"


def keys(obj, expected, what):
    assert isinstance(obj, dict), f"{what} is not an object: {obj!r}"
    assert set(obj) == expected, f"{what} keys: got {sorted(obj)}, expected {sorted(expected)}"


def is_uuid(s, what):
    assert isinstance(s, str) and UUID_RE.match(s), f"{what} is not a lower-case UUID: {s!r}"


def now_ms():
    return int(time.time() * 1000)


def is_recent_ms(t, what):
    assert isinstance(t, int) and abs(t - now_ms()) < 120_000, \
        f"{what} is not epoch milliseconds of now: {t!r}"


def poll(fn, what, timeout=POLL_DEADLINE_S):
    """Calls fn() until it returns (True, value); returns value.  Never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        done, value = fn()
        if done:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s; last: {value}")
        time.sleep(POLL_STEP_S)


class Skip(Exception):
    pass


# ----------------------------------------------------------------------------
# Test data: unique names per run, principals, fixtures.
# ----------------------------------------------------------------------------

RUN = secrets.token_hex(3)
_seq = [0]


def uniq(prefix):
    """A unique, valid username-ish token: lower-case letters and digits only."""
    _seq[0] += 1
    return f"{prefix}{RUN}n{_seq[0]}x"  # the trailing x keeps n1x from matching inside n11x


def new_password():
    return "pw-" + secrets.token_urlsafe(12)


class Principal:
    """Someone who signs in: credentials, the current token, the account id."""

    def __init__(self, label, username, password, token=None, uid=None, role=None):
        self.label, self.username, self.password = label, username, password
        self.token, self.id, self.role = token, uid, role

    def login(self):
        j = ok(login(self.username, self.password), 200)
        self.token, self.id, self.role = j["token"], j["user"]["id"], j["user"]["role"]
        return self


def login(username, password, **kw):
    return send("POST", "/api/auth/login", {"username": username, "password": password}, **kw)


def profile_body(tag):
    return {"first_name": "Fn" + tag, "last_name": "Ln" + tag,
            "email": f"{tag}@example.test", "address": "Addr " + tag}


def register(prefix="cl", wait=True, **over):
    """Registers a client through /api/auth/register; waits for its profile unless told not to."""
    username, password = uniq(prefix), new_password()
    body = {"username": username, "password": password, **profile_body(username), **over}
    j = ok(send("POST", "/api/auth/register", body), 201)
    p = Principal(username, username, password, j["token"], j["user"]["id"], j["user"]["role"])
    p.body = body
    if wait:
        wait_profile(p.id)
    return p


def create_account(prefix="ac", role="client", wait=True):
    """Creates an account as the admin; waits for its profile unless told not to."""
    username, password = uniq(prefix), new_password()
    body = {"username": username, "password": password, "role": role, **profile_body(username)}
    j = ok(send("POST", "/api/auth/accounts", body, F.admin), 201)
    p = Principal(username, username, password, None, j["id"], role)
    p.body = body
    if wait:
        wait_profile(p.id)
    return p


def wait_profile(uid):
    def seen():
        r = send("GET", f"/api/users/{uid}", who=F.admin)
        return r.status == 200, r
    return poll(seen, f"profile {uid} to appear in /api/users").json


def device_body(**over):
    body = {"name": "dev " + uniq("d"), "max_hourly_kwh": 2.5, "description": "meter",
            "address": "Main St 1", "energy_class": "B"}
    body.update(over)
    return body


def create_device(owner=None, **over):
    d = ok(send("POST", "/api/devices", device_body(**over), F.admin), 201)
    if owner is not None:
        d = assign(d["id"], owner.id)
    return d


def assign(dev_id, user_id):
    """PUT owner, polling: the user may not have reached `devices` yet."""
    def put():
        r = send("PUT", f"/api/devices/{dev_id}/owner", {"user_id": user_id}, F.admin)
        return r.status == 200, r
    d = poll(put, f"device {dev_id} to accept owner {user_id}").json
    eq(d["owner_id"], user_id, "owner_id after assignment")
    return d


def get_device(dev_id):
    return ok(send("GET", f"/api/devices/{dev_id}", who=F.admin), 200)


def get_profile(uid):
    return ok(send("GET", f"/api/users/{uid}", who=F.admin), 200)


def device_total():
    return ok(send("GET", "/api/devices?limit=1", who=F.admin), 200)["total"]


def user_total(q):
    return ok(send("GET", "/api/users?q=" + urllib.parse.quote(q), who=F.admin), 200)["total"]


def list_all(path, who):
    """Every item of a paged list, 100 at a time."""
    items, offset = [], 0
    sep = "&" if "?" in path else "?"
    while True:
        j = ok(send("GET", f"{path}{sep}limit=100&offset={offset}", who=who), 200)
        items += j["items"]
        offset += 100
        if offset >= j["total"]:
            return items, j["total"]


class Fixtures:
    """Filled by the setup test: the admin, clients A and B, their devices."""


F = Fixtures()

# ----------------------------------------------------------------------------
# The runner.
# ----------------------------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append((fn.__name__, fn))
    return fn


def server_down():
    return send("GET", "/healthz").status == 0


def run():
    only = os.environ.get("ONLY", "")
    exclude = [x for x in os.environ.get("EXCLUDE", "").split(",") if x]
    passed = failed = skipped = 0
    down_after = None
    started = time.monotonic()
    for name, fn in TESTS:
        if name != "setup_admin_login_and_fixtures" and (
                (only and only not in name) or any(x in name for x in exclude)):
            continue
        if down_after:
            failed += 1
            print(f"FAIL {name}: not run, the server stopped answering during {down_after}", flush=True)
            continue
        t0 = time.monotonic()
        failed_before = failed
        try:
            fn()
        except Skip as e:
            skipped += 1
            print(f"SKIP {name}: {e}", flush=True)
            continue
        except AssertionError as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
        except Exception as e:  # a crash in a test is a failure of that test, not of the run
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        else:
            passed += 1
            ms = (time.monotonic() - t0) * 1000
            print(f"PASS {name}" + (f" ({ms:.0f} ms)" if ms > 1000 else ""), flush=True)
        if name == "setup_admin_login_and_fixtures" and failed:
            print("setup failed: the remaining tests need its fixtures and were not run", flush=True)
            break
        if failed > failed_before and server_down():
            down_after = name
            print(f"ABORT: {Env.base.netloc} does not answer after {name} (crashed?)", flush=True)
    print(f"{skipped} skipped, {time.monotonic() - started:.1f} s", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


# ============================================================================
# Setup
# ============================================================================

@test
def setup_admin_login_and_fixtures():
    user = os.environ.get("ADMIN_USERNAME", "admin")
    password = os.environ.get("ADMIN_PASSWORD")
    assert password, "ADMIN_PASSWORD is not set"
    F.admin = Principal("admin", user, password).login()
    eq(F.admin.role, "admin", "initial admin's role")
    F.a = register("ca")
    F.a.label = "client_a"
    F.b = register("cb")
    F.b.label = "client_b"
    F.dev_a = create_device(owner=F.a, name="dev a " + RUN)
    F.dev_b = create_device(owner=F.b, name="dev b " + RUN)
    F.dev_u = create_device(name="dev u " + RUN)


# ============================================================================
# 1. Normal use of every endpoint
# ============================================================================

@test
def healthz_is_200():
    for base in {Env.base, *Env.roles}:
        r = send("GET", "/healthz", base=base)
        eq(r.status, 200, f"GET {base.netloc}/healthz: {r}")


@test
def readyz_is_200_when_ready():
    for base in Env.roles:
        r = send("GET", "/readyz", base=base)
        eq(r.status, 200, f"GET {base.netloc}/readyz: {r}")


@test
def metrics_is_prometheus_text_with_ems_http_requests_total():
    for base in Env.roles:
        r = send("GET", "/metrics", base=base, who=F.admin)
        eq(r.status, 200, f"GET {base.netloc}/metrics as an administrator: {r}")
        assert r.ctype == "text/plain", f"Content-Type {r.ctype!r}: {r}"
        assert b"ems_http_requests_total" in r.data, f"no ems_http_requests_total in {r}"


@test
def config_reports_version_mode_ws_url():
    j = ok(send("GET", "/api/config"), 200)
    assert {"version", "mode", "ws_url"} <= set(j), f"config keys {sorted(j)}"
    assert isinstance(j["version"], str) and j["version"], f"version {j['version']!r}"
    assert isinstance(j["ws_url"], str) and j["ws_url"], f"ws_url {j['ws_url']!r}"
    mode = os.environ.get("EMS_MODE")
    if mode:
        eq(j["mode"], mode, "mode")


@test
def register_returns_201_token_and_client_user_and_creates_profile():
    username, password = uniq("rg"), new_password()
    body = {"username": username, "password": password, "first_name": "Ada",
            "last_name": "Lovelace", "email": f"{username}@example.test"}
    j = ok(send("POST", "/api/auth/register", body), 201)
    keys(j, {"token", "expires_at", "user"}, "register answer")
    keys(j["user"], USER_KEYS, "user")
    is_uuid(j["user"]["id"], "user.id")
    eq(j["user"]["username"], username, "user.username")
    eq(j["user"]["role"], "client", "user.role")
    assert j["token"].count(".") == 2, f"token is not a JWT: {j['token'][:40]!r}"
    assert isinstance(j["expires_at"], int) and now_ms() < j["expires_at"] < now_ms() + 10 * 86400_000, \
        f"expires_at is not future epoch ms: {j['expires_at']!r}"
    p = Principal(username, username, password, j["token"], j["user"]["id"])
    wait_profile(p.id)
    me = ok(send("GET", "/api/users/me", who=p), 200)
    keys(me, PROFILE_KEYS, "profile")
    for k in ("first_name", "last_name", "email"):
        eq(me[k], body[k], f"profile {k}")
    eq(me["address"], "", "address defaults to empty")
    eq(me["role"], "client", "profile role")


@test
def login_returns_200_token_and_user():
    j = ok(login(F.a.username, F.a.password), 200)
    keys(j, {"token", "expires_at", "user"}, "login answer")
    eq(j["user"], {"id": F.a.id, "username": F.a.username, "role": "client"}, "login user")
    ok(send("GET", "/api/users/me", auth="Bearer " + j["token"]), 200)


@test
def login_with_wrong_password_or_unknown_user_is_401():
    p = register("lw")
    err(login(p.username, p.password + "x"), 401, "unauthorized")
    err(login(uniq("nobody"), "whatever-password"), 401, "unauthorized")
    ok(login(p.username, p.password), 200)


@test
def verify_is_204_with_identity_headers():
    r = send("GET", "/api/auth/verify", who=F.a)
    ok(r, 204)
    eq(r.header("X-User-Id"), F.a.id, "X-User-Id")
    eq(r.header("X-User-Role"), "client", "X-User-Role")
    eq(r.header("X-Username"), F.a.username, "X-Username")
    r = send("GET", "/api/auth/verify", who=F.admin)
    ok(r, 204)
    eq(r.header("X-User-Role"), "admin", "admin's X-User-Role")
    eq(r.header("X-User-Id"), F.admin.id, "admin's X-User-Id")


@test
def admin_creates_account_201_without_secrets_and_it_can_log_in():
    username, password = uniq("ad"), new_password()
    body = {"username": username, "password": password, "role": "client", **profile_body(username)}
    j = ok(send("POST", "/api/auth/accounts", body, F.admin), 201)
    keys(j, ACCOUNT_KEYS, "account")
    is_uuid(j["id"], "account id")
    eq((j["username"], j["role"]), (username, "client"), "account username/role")
    is_recent_ms(j["created_at"], "created_at")
    eq(ok(login(username, password), 200)["user"]["id"], j["id"], "login id")
    prof = wait_profile(j["id"])
    eq((prof["first_name"], prof["email"]), (body["first_name"], body["email"]), "profile from account")


@test
def admin_patches_account_username_password_role():
    p = create_account("pa")
    p.login()
    new_name = uniq("pr")
    j = ok(send("PATCH", f"/api/auth/accounts/{p.id}", {"username": new_name}, F.admin), 200)
    keys(j, ACCOUNT_KEYS, "account")
    eq(j["username"], new_name, "patched username")
    err(login(p.username, p.password), 401, "unauthorized")
    p.username = new_name
    ok(login(p.username, p.password), 200)

    old = p.password
    p.password = new_password()
    ok(send("PATCH", f"/api/auth/accounts/{p.id}", {"password": p.password}, F.admin), 200)
    err(login(p.username, old), 401, "unauthorized")
    p.login()

    before = p.token
    j = ok(send("PATCH", f"/api/auth/accounts/{p.id}", {"role": "admin"}, F.admin), 200)
    eq(j["role"], "admin", "patched role")
    err(send("GET", "/api/users/me", auth="Bearer " + before), 401, "unauthorized")
    p.login()
    eq(p.role, "admin", "role in a fresh login")
    ok(send("GET", "/api/users", who=p), 200)


@test
def admin_deletes_account_204_then_404():
    p = create_account("dl")
    ok(send("DELETE", f"/api/auth/accounts/{p.id}", who=F.admin), 204)
    err(login(p.username, p.password), 401, "unauthorized")
    err(send("DELETE", f"/api/auth/accounts/{p.id}", who=F.admin), 404, "not_found")
    err(send("PATCH", f"/api/auth/accounts/{p.id}", {"role": "client"}, F.admin), 404, "not_found")


@test
def password_change_returns_new_token_and_revokes_old_one():
    p = register("pc")
    old_token, old_pw, new_pw = p.token, p.password, new_password()
    j = ok(send("PUT", "/api/auth/password", {"old_password": old_pw, "new_password": new_pw}, p), 200)
    keys(j, {"token", "expires_at", "user"}, "password answer")
    eq(j["user"]["id"], p.id, "user id")
    err(send("GET", "/api/users/me", auth="Bearer " + old_token), 401, "unauthorized")
    err(send("GET", "/api/auth/verify", auth="Bearer " + old_token), 401, "unauthorized")
    ok(send("GET", "/api/users/me", auth="Bearer " + j["token"]), 200)
    err(login(p.username, old_pw), 401, "unauthorized")
    ok(login(p.username, new_pw), 200)


@test
def password_change_with_wrong_old_password_is_403_and_changes_nothing():
    p = register("pw")
    r = send("PUT", "/api/auth/password", {"old_password": "not-the-password", "new_password": new_password()}, p)
    err(r, 403, "forbidden")
    ok(send("GET", "/api/users/me", who=p), 200)
    ok(login(p.username, p.password), 200)


@test
def password_change_to_short_password_is_400_and_changes_nothing():
    p = register("ps")
    r = send("PUT", "/api/auth/password", {"old_password": p.password, "new_password": "short"}, p)
    err(r, 400, "bad_request")
    ok(send("GET", "/api/users/me", who=p), 200)
    ok(login(p.username, p.password), 200)


@test
def users_list_q_limit_offset_total_ordered_by_username():
    tag = "lst" + RUN
    made = []
    for suffix in ("c", "a", "b"):
        username = f"{tag}{suffix}"
        body = {"username": username, "password": new_password(), **profile_body(username)}
        made.append(ok(send("POST", "/api/auth/register", body), 201)["user"]["id"])
    for uid in made:
        wait_profile(uid)
    j = ok(send("GET", f"/api/users?q={tag}", who=F.admin), 200)
    keys(j, LIST_KEYS, "list")
    eq(j["total"], 3, "total for q")
    eq((j["limit"], j["offset"]), (20, 0), "default limit/offset")
    names = [i["username"] for i in j["items"]]
    eq(names, [tag + "a", tag + "b", tag + "c"], "items ordered by username")
    for i in j["items"]:
        keys(i, PROFILE_KEYS, "list item")
    j = ok(send("GET", f"/api/users?q={tag}&limit=2&offset=0", who=F.admin), 200)
    eq(([i["username"] for i in j["items"]], j["total"], j["limit"]), ([tag + "a", tag + "b"], 3, 2), "page 1")
    j = ok(send("GET", f"/api/users?q={tag}&limit=2&offset=2", who=F.admin), 200)
    eq(([i["username"] for i in j["items"]], j["total"], j["offset"]), ([tag + "c"], 3, 2), "page 2")
    eq(user_total(tag.upper()), 3, "q is case-insensitive")
    eq(user_total("Ln" + tag + "b"), 1, "q matches last_name")
    eq(user_total(f"{tag}c@example"), 1, "q matches email")
    j = ok(send("GET", "/api/users?limit=100", who=F.admin), 200)
    assert j["total"] >= 6, f"total {j['total']} below the users this suite made"


@test
def users_me_and_get_return_own_profile():
    me = ok(send("GET", "/api/users/me", who=F.a), 200)
    keys(me, PROFILE_KEYS, "profile")
    eq((me["id"], me["username"], me["role"]), (F.a.id, F.a.username, "client"), "me")
    eq(me["email"], F.a.body["email"], "email")
    is_recent_ms(me["created_at"], "created_at")
    eq(ok(send("GET", f"/api/users/{F.a.id}", who=F.a), 200)["id"], F.a.id, "GET own id")
    eq(ok(send("GET", f"/api/users/{F.a.id}", who=F.admin), 200)["username"], F.a.username, "admin GET")
    err(send("GET", f"/api/users/{uuid.uuid4()}", who=F.admin), 404, "not_found")


@test
def users_patch_by_self_and_by_admin_updates_profile():
    p = register("up")
    before = ok(send("GET", "/api/users/me", who=p), 200)
    j = ok(send("PATCH", f"/api/users/{p.id}", {"first_name": "Grace", "address": "Elm 5"}, p), 200)
    keys(j, PROFILE_KEYS, "patched profile")
    eq((j["first_name"], j["address"], j["last_name"]), ("Grace", "Elm 5", before["last_name"]), "self patch")
    assert j["updated_at"] >= before["updated_at"] and j["created_at"] == before["created_at"], \
        f"timestamps: before {before}, after {j}"
    j = ok(send("PATCH", f"/api/users/{p.id}", {"email": "new@example.test", "last_name": "Hopper"}, F.admin), 200)
    eq((j["email"], j["last_name"], j["first_name"]), ("new@example.test", "Hopper", "Grace"), "admin patch")
    eq(ok(send("GET", "/api/users/me", who=p), 200), j, "profile re-read after patch")


@test
def device_create_get_patch_delete():
    body = {"name": "Heat pump " + RUN, "max_hourly_kwh": 3.5, "description": "garage",
            "address": "Oak 9", "energy_class": "A++"}
    d = ok(send("POST", "/api/devices", body, F.admin), 201)
    keys(d, DEVICE_KEYS, "device")
    is_uuid(d["id"], "device id")
    for k, v in body.items():
        eq(d[k], v, f"created {k}")
    eq(d["owner_id"], None, "owner_id of a new device")
    is_recent_ms(d["created_at"], "created_at")
    eq(get_device(d["id"]), d, "GET after POST")
    p = ok(send("PATCH", f"/api/devices/{d['id']}",
                {"name": "Boiler " + RUN, "max_hourly_kwh": 7, "energy_class": None}, F.admin), 200)
    eq((p["name"], p["max_hourly_kwh"], p["energy_class"], p["description"]),
       ("Boiler " + RUN, 7, None, "garage"), "patched fields")
    assert p["updated_at"] >= d["updated_at"], f"updated_at went back: {d} -> {p}"
    eq(get_device(d["id"]), p, "GET after PATCH")
    ok(send("DELETE", f"/api/devices/{d['id']}", who=F.admin), 204)
    err(send("GET", f"/api/devices/{d['id']}", who=F.admin), 404, "not_found")
    err(send("DELETE", f"/api/devices/{d['id']}", who=F.admin), 404, "not_found")


@test
def device_create_with_only_required_fields_gets_defaults():
    d = ok(send("POST", "/api/devices", {"name": "bare " + RUN, "max_hourly_kwh": 1}, F.admin), 201)
    eq((d["description"], d["address"], d["energy_class"], d["owner_id"]), ("", "", None, None), "defaults")


@test
def device_create_with_owner_id_assigns_it():
    body = device_body(owner_id=F.a.id)
    d = ok(send("POST", "/api/devices", body, F.admin), 201)
    eq(d["owner_id"], F.a.id, "owner_id")
    ok(send("GET", f"/api/devices/{d['id']}", who=F.a), 200)


@test
def device_accepts_every_energy_class():
    for ec in ENERGY_CLASSES:
        d = ok(send("POST", "/api/devices", device_body(energy_class=ec), F.admin), 201)
        eq(d["energy_class"], ec, "energy_class")
        ok(send("DELETE", f"/api/devices/{d['id']}", who=F.admin), 204)


@test
def device_name_in_unicode_is_stored_verbatim():
    name = "Zähler ☀ 电表 " + RUN
    d = ok(send("POST", "/api/devices", device_body(name=name), F.admin), 201)
    eq(get_device(d["id"])["name"], name, "name")


@test
def device_assign_and_unassign_owner():
    d = create_device()
    j = ok(send("PUT", f"/api/devices/{d['id']}/owner", {"user_id": F.a.id}, F.admin), 200)
    keys(j, DEVICE_KEYS, "device")
    eq(j["owner_id"], F.a.id, "owner after PUT")
    eq(ok(send("GET", f"/api/devices/{d['id']}", who=F.a), 200)["owner_id"], F.a.id, "owner reads it")
    assert d["id"] in [i["id"] for i in list_all("/api/devices", F.a)[0]], "not in the owner's list"
    j = ok(send("DELETE", f"/api/devices/{d['id']}/owner", who=F.admin), 200)
    eq(j["owner_id"], None, "owner after DELETE owner")
    err(send("GET", f"/api/devices/{d['id']}", who=F.a), 403, "forbidden")
    assert d["id"] not in [i["id"] for i in list_all("/api/devices", F.a)[0]], "still in the old owner's list"


@test
def devices_list_admin_sees_all_ordered_by_name():
    items, total = list_all("/api/devices", F.admin)
    eq(len(items), total, "items over all pages")
    ids = {i["id"] for i in items}
    for d in (F.dev_a, F.dev_b, F.dev_u):
        assert d["id"] in ids, f"device {d['name']} missing from the admin's list"
    j = ok(send("GET", "/api/devices", who=F.admin), 200)
    keys(j, LIST_KEYS, "list")
    eq((j["limit"], j["offset"]), (20, 0), "default limit/offset")
    for i in j["items"]:
        keys(i, DEVICE_KEYS, "list item")
    # Only names every collation orders alike (SQLite BINARY, PostgreSQL C or a locale).
    names = [i["name"] for i in items if re.fullmatch(r"dev [a-z0-9 ]+", i["name"])]
    eq(names, sorted(names), "ordered by name")


@test
def devices_list_owner_and_unassigned_filters():
    items, total = list_all(f"/api/devices?owner={F.a.id}", F.admin)
    assert items and all(i["owner_id"] == F.a.id for i in items), f"owner filter: {items}"
    assert F.dev_a["id"] in {i["id"] for i in items}, "dev_a missing from ?owner=A"
    items, total = list_all("/api/devices?unassigned=true", F.admin)
    assert all(i["owner_id"] is None for i in items), "unassigned filter returned an owned device"
    ids = {i["id"] for i in items}
    assert F.dev_u["id"] in ids and F.dev_a["id"] not in ids, "unassigned filter membership"


@test
def devices_list_client_sees_only_own_and_filters_are_ignored():
    for query in ("", f"?owner={F.b.id}", "?unassigned=true"):
        items, total = list_all("/api/devices" + query, F.a)
        assert items, f"client A sees no devices with {query!r}"
        assert all(i["owner_id"] == F.a.id for i in items), f"client A sees others' devices with {query!r}"
        assert F.dev_a["id"] in {i["id"] for i in items}, f"dev_a missing for A with {query!r}"


@test
def devices_list_limit_offset_pages():
    for _ in range(3):
        create_device(owner=F.b)
    first = ok(send("GET", f"/api/devices?owner={F.b.id}&limit=1&offset=0", who=F.admin), 200)
    second = ok(send("GET", f"/api/devices?owner={F.b.id}&limit=1&offset=1", who=F.admin), 200)
    eq((len(first["items"]), len(second["items"]), first["limit"], second["offset"]), (1, 1, 1, 1), "page sizes")
    assert first["items"][0]["id"] != second["items"][0]["id"], "two pages returned the same device"
    assert first["total"] >= 4 and first["total"] == second["total"], f"totals {first['total']} {second['total']}"
    far = ok(send("GET", f"/api/devices?owner={F.b.id}&offset=1000", who=F.admin), 200)
    eq((far["items"], far["total"]), ([], first["total"]), "offset past the end")


@test
def unknown_route_is_404_and_wrong_method_is_405():
    err(send("GET", "/api/no-such-thing", who=F.admin), 404, "not_found")
    err(send("DELETE", "/api/devices", who=F.admin), 405, "method_not_allowed")
    err(send("GET", "/api/auth/login"), 405, "method_not_allowed")


# ============================================================================
# 2. Authorization matrix: every endpoint × {anonymous, client A, client B, admin}
# ============================================================================

class Row:
    """
    One endpoint.  make(who, state) returns (path, body) for one principal;
    prepare() runs once per row, before its first cell; actor(who, state)
    may stand another principal of the same kind in for the column's; after(who,
    resp) lets a cell record what it changed (a new password, say).
    """

    def __init__(self, method, shape, expect, make, prepare=None, after=None, roles=False, actor=None):
        self.method, self.shape, self.expect = method, shape, expect
        self.make, self.prepare, self.after, self.actor = make, prepare, after, actor
        self.roles = roles  # sent to every role process (ROLE_URLS), not the gateway
        self.state = None


def _change_password(who, st):
    if who is None:
        return "/api/auth/password", {"old_password": "anonymous-old", "new_password": new_password()}
    who.pending_password = new_password()
    return "/api/auth/password", {"old_password": who.password, "new_password": who.pending_password}


def _password_changed(who, r):
    if who is not None and r.status == 200:
        who.password, who.token = who.pending_password, r.json["token"]


def _reg(who, st):
    username = uniq("mx")
    return "/api/auth/register", {"username": username, "password": new_password(), **profile_body(username)}


def _acct(who, st):
    username = uniq("mx")
    return "/api/auth/accounts", {"username": username, "password": new_password(), "role": "client",
                                  **profile_body(username)}


def _spare_admin(st=None):
    """An admin whose password the matrix may change: the initial admin's stays as given."""
    return {"admin": create_account("pwadm", role="admin", wait=False).login()}


def _owned_device(st=None):
    return {"dev": create_device(owner=F.a)}


def _victim_account(st=None):
    return {"acct": create_account("mv", wait=False)}


A_ = (401, 403, 403)  # anonymous, client A, client B on an admin-only endpoint
MATRIX = [
    Row("POST", "/api/auth/register", (201, 201, 201, 201), _reg),
    Row("POST", "/api/auth/login", (200, 200, 200, 200),
        lambda w, st: ("/api/auth/login", {"username": F.a.username, "password": F.a.password})),
    Row("GET", "/api/auth/verify", (401, 204, 204, 204), lambda w, st: ("/api/auth/verify", None)),
    Row("POST", "/api/auth/accounts", A_ + (201,), _acct),
    Row("PATCH", "/api/auth/accounts/{id}", A_ + (200,),
        lambda w, st: (f"/api/auth/accounts/{st['acct'].id}", {"password": new_password()}), _victim_account),
    Row("DELETE", "/api/auth/accounts/{id}", A_ + (204,),
        lambda w, st: (f"/api/auth/accounts/{st['acct'].id}", None), _victim_account),
    Row("PUT", "/api/auth/password", (401, 200, 200, 200), _change_password, _spare_admin, _password_changed,
        actor=lambda w, st: st["admin"] if w is F.admin else w),
    Row("GET", "/api/users", A_ + (200,), lambda w, st: ("/api/users", None)),
    Row("GET", "/api/users/me", (401, 200, 200, 200), lambda w, st: ("/api/users/me", None)),
    Row("GET", "/api/users/{client_a}", (401, 200, 403, 200), lambda w, st: (f"/api/users/{F.a.id}", None)),
    Row("PATCH", "/api/users/{client_a}", (401, 200, 403, 200),
        lambda w, st: (f"/api/users/{F.a.id}", {"address": "set by " + (w.label if w else "anonymous")})),
    Row("GET", "/api/devices", (401, 200, 200, 200), lambda w, st: ("/api/devices", None)),
    Row("POST", "/api/devices", A_ + (201,), lambda w, st: ("/api/devices", device_body())),
    Row("GET", "/api/devices/{of_a}", (401, 200, 403, 200), lambda w, st: (f"/api/devices/{F.dev_a['id']}", None)),
    Row("PATCH", "/api/devices/{of_a}", A_ + (200,),
        lambda w, st: (f"/api/devices/{F.dev_a['id']}", {"description": "matrix"})),
    Row("DELETE", "/api/devices/{of_a}", A_ + (204,),
        lambda w, st: (f"/api/devices/{st['dev']['id']}", None), _owned_device),
    Row("PUT", "/api/devices/{of_a}/owner", A_ + (200,),
        lambda w, st: (f"/api/devices/{F.dev_a['id']}/owner", {"user_id": F.a.id})),
    Row("DELETE", "/api/devices/{of_a}/owner", A_ + (200,),
        lambda w, st: (f"/api/devices/{st['dev']['id']}/owner", None), _owned_device),
    Row("GET", "/api/config", (200, 200, 200, 200), lambda w, st: ("/api/config", None)),
    Row("GET", "/healthz", (200, 200, 200, 200), lambda w, st: ("/healthz", None)),
    Row("GET", "/readyz", (200, 200, 200, 200), lambda w, st: ("/readyz", None), roles=True),
    # Embedded, /metrics is for administrators (EMS_METRICS_ACCESS=admin); a distributed role's is
    # public on its own port, which only the gateway's network reaches.
    Row("GET", "/metrics", (401, 403, 403, 200) if os.environ.get("EMS_MODE") == "embedded" else (200, 200, 200, 200),
        lambda w, st: ("/metrics", None), roles=True),
]
DENIED = {401: "unauthorized", 403: "forbidden"}


def _matrix_cell(row, col):
    def cell():
        if row.state is None:
            row.state = row.prepare() if row.prepare else {}
        who = (None, F.a, F.b, F.admin)[col]
        if row.actor:
            who = row.actor(who, row.state)
        path, body = row.make(who, row.state)
        expect = row.expect[col]
        for base in (Env.roles if row.roles else [Env.base]):
            r = send(row.method, path, body, who, base=base)
            if row.after:
                row.after(who, r)
            if expect in DENIED:
                err(r, expect, DENIED[expect])
            else:
                eq(r.status, expect, f"status of {r}")
    return cell


for _row in MATRIX:
    for _col, _label in enumerate(("anonymous", "client_a", "client_b", "admin")):
        _name = f"authz {_row.method} {_row.shape} as {_label} -> {_row.expect[_col]}"
        TESTS.append((_name, _matrix_cell(_row, _col)))


@test
def client_b_patch_of_a_profile_and_device_changes_nothing():
    prof, dev = get_profile(F.a.id), get_device(F.dev_a["id"])
    err(send("PATCH", f"/api/users/{F.a.id}", {"first_name": "Mallory"}, F.b), 403, "forbidden")
    err(send("PATCH", f"/api/devices/{F.dev_a['id']}", {"name": "stolen"}, F.b), 403, "forbidden")
    err(send("PUT", f"/api/devices/{F.dev_a['id']}/owner", {"user_id": F.b.id}, F.b), 403, "forbidden")
    err(send("DELETE", f"/api/devices/{F.dev_a['id']}", who=F.b), 403, "forbidden")
    eq(get_profile(F.a.id), prof, "A's profile")
    eq(get_device(F.dev_a["id"]), dev, "A's device")


@test
def client_cannot_promote_itself_through_accounts_patch():
    p = register("sp")
    err(send("PATCH", f"/api/auth/accounts/{p.id}", {"role": "admin"}, p), 403, "forbidden")
    eq(ok(login(p.username, p.password), 200)["user"]["role"], "client", "role after the attempt")


# ============================================================================
# 3. Bad input: the right 4xx, the envelope, and nothing changed
# ============================================================================

DEVICE_POST_BAD = [
    # name, raw body or JSON-able body
    ("malformed_json", b'{"name": "x", "max_hourly_kwh": '),
    ("top_level_array", b'[{"name": "x", "max_hourly_kwh": 1}]'),
    ("top_level_string", b'"device"'),
    ("top_level_null", b"null"),
    ("empty_body", b""),
    ("invalid_utf8", b'{"name": "\xff\xfe", "max_hourly_kwh": 1}'),
    ("number_overflow", b'{"name": "x", "max_hourly_kwh": 1e999}'),
    ("trailing_garbage", b'{"name": "x", "max_hourly_kwh": 1} x'),
    ("name_wrong_type", {"name": 5, "max_hourly_kwh": 1}),
    ("kwh_as_string", {"name": "x", "max_hourly_kwh": "10"}),
    ("kwh_as_bool", {"name": "x", "max_hourly_kwh": True}),
    ("kwh_null", {"name": "x", "max_hourly_kwh": None}),
    ("kwh_zero", {"name": "x", "max_hourly_kwh": 0}),
    ("kwh_negative", {"name": "x", "max_hourly_kwh": -1.5}),
    ("kwh_over_million", {"name": "x", "max_hourly_kwh": 1000000.5}),
    ("missing_name", {"max_hourly_kwh": 1}),
    ("missing_kwh", {"name": "x"}),
    ("unknown_field", {"name": "x", "max_hourly_kwh": 1, "color": "red"}),
    ("unknown_energy_class", {"name": "x", "max_hourly_kwh": 1, "energy_class": "H"}),
    ("energy_class_wrong_type", {"name": "x", "max_hourly_kwh": 1, "energy_class": 1}),
    ("name_empty", {"name": "", "max_hourly_kwh": 1}),
    ("name_101_chars", {"name": "n" * 101, "max_hourly_kwh": 1}),
    ("description_501_chars", {"name": "x", "max_hourly_kwh": 1, "description": "d" * 501}),
    ("address_201_chars", {"name": "x", "max_hourly_kwh": 1, "address": "a" * 201}),
    ("owner_id_not_uuid", {"name": "x", "max_hourly_kwh": 1, "owner_id": "abc"}),
]


def _device_post_bad(body):
    def t():
        before = device_total()
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        err(send("POST", "/api/devices", who=F.admin, raw=raw), 400, "bad_request")
        eq(device_total(), before, "device count")
    return t


for _n, _b in DEVICE_POST_BAD:
    TESTS.append((f"bad_input POST /api/devices {_n} -> 400, nothing created", _device_post_bad(_b)))

DEVICE_PATCH_BAD = [
    ("malformed_json", b'{"name": '),
    ("kwh_zero", {"max_hourly_kwh": 0}),
    ("kwh_negative", {"max_hourly_kwh": -3}),
    ("kwh_as_string", {"max_hourly_kwh": "5"}),
    ("unknown_energy_class", {"energy_class": "Z"}),
    ("owner_id_not_patchable", {"owner_id": "00000000-0000-4000-8000-000000000000"}),
    ("name_empty", {"name": ""}),
    ("unknown_field", {"colour": "blue"}),
    ("id_not_patchable", {"id": "00000000-0000-4000-8000-000000000000"}),
]


def _device_patch_bad(body):
    def t():
        before = get_device(F.dev_u["id"])
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        err(send("PATCH", f"/api/devices/{F.dev_u['id']}", who=F.admin, raw=raw), 400, "bad_request")
        eq(get_device(F.dev_u["id"]), before, "device after a refused PATCH")
    return t


for _n, _b in DEVICE_PATCH_BAD:
    TESTS.append((f"bad_input PATCH /api/devices/{{id}} {_n} -> 400, unchanged", _device_patch_bad(_b)))


def _register_bad(field, value):
    def t():
        tag = uniq("rb")
        body = {"username": tag, "password": new_password(), **profile_body(tag)}
        if value is _MISSING:
            del body[field]
        else:
            body[field] = value
        err(send("POST", "/api/auth/register", body), 400, "bad_request")
        if field not in ("username", "password"):
            err(login(body["username"], body["password"]), 401, "unauthorized")
        eq(user_total(tag), 0, f"profiles matching {tag}")
    return t


_MISSING = object()
REGISTER_BAD = [
    ("username", "ab"), ("username", "u" * 65), ("username", "bad name"), ("username", "bad/name"),
    ("username", "naïve"), ("username", ""), ("username", 5), ("username", _MISSING),
    ("password", "7chars!"), ("password", "p" * 129), ("password", 12345678), ("password", _MISSING),
    ("email", "no-at-sign"), ("email", "@example.test"), ("email", "user@"), ("email", "a@b@c"),
    ("email", "x" * 250 + "@e.io"), ("email", _MISSING),
    ("first_name", ""), ("first_name", "f" * 101), ("first_name", None),
    ("last_name", ""), ("last_name", _MISSING),
    ("address", "a" * 201), ("role", "admin"), ("is_admin", True),
]
for _f, _v in REGISTER_BAD:
    _shown = ("missing" if _v is _MISSING else
              f"<{len(_v)} chars>" if isinstance(_v, str) and len(_v) > 24 else repr(_v))
    TESTS.append((f"bad_input POST /api/auth/register {_f}={_shown} -> 400, no account", _register_bad(_f, _v)))


@test
def register_boundaries_are_accepted():
    cases = [("username", "r" + RUN[:2]), ("username", ("u" + RUN + "x" * 64)[:64]),
             ("password", "p" * 8), ("password", "p" * 128), ("email", "a@b"),
             ("first_name", "f" * 100), ("address", "a" * 200), ("username", "A.b_c-" + RUN)]
    for field, value in cases:
        tag = uniq("bd")
        body = {"username": tag, "password": new_password(), **profile_body(tag)}
        body[field] = value
        r = send("POST", "/api/auth/register", body)
        eq(r.status, 201, f"register with {field} of {len(value)} chars: {r}")
        ok(login(body["username"], body["password"]), 200)


@test
def register_raw_bodies_malformed_empty_wrong_type_are_400():
    for raw in (b'{"username": "x"', b"", b"[]", b"42"):
        err(send("POST", "/api/auth/register", raw=raw), 400, "bad_request")
    err(send("POST", "/api/auth/login", raw=b'{"username": '), 400, "bad_request")
    err(send("POST", "/api/auth/login", {"username": F.a.username}), 400, "bad_request")
    err(send("POST", "/api/auth/login", {"username": F.a.username, "password": F.a.password, "x": 1}),
        400, "bad_request")


@test
def duplicate_username_is_409_and_keeps_the_first_account():
    p = register("du")
    body = {"username": p.username, "password": new_password(), **profile_body(uniq("du"))}
    err(send("POST", "/api/auth/register", body), 409, "conflict")
    body["role"] = "client"
    err(send("POST", "/api/auth/accounts", body, F.admin), 409, "conflict")
    ok(login(p.username, p.password), 200)
    err(login(p.username, body["password"]), 401, "unauthorized")
    eq(get_profile(p.id)["email"], p.body["email"], "first account's profile")


@test
def usernames_differing_only_in_case_are_409_or_both_can_log_in():
    upper = "Case" + uniq("u")
    first = {"username": upper, "password": new_password(), **profile_body(uniq("cs"))}
    ok(send("POST", "/api/auth/register", first), 201)
    second = {"username": upper.lower(), "password": new_password(), **profile_body(uniq("cs"))}
    r = send("POST", "/api/auth/register", second)
    if r.status == 409:
        err(r, 409, "conflict")
    else:
        eq(r.status, 201, f"second registration: {r}")
        ok(login(second["username"], second["password"]), 200)
    ok(login(first["username"], first["password"]), 200)


@test
def renaming_account_to_taken_username_is_409():
    p, q = register("rn"), register("rn")
    err(send("PATCH", f"/api/auth/accounts/{q.id}", {"username": p.username}, F.admin), 409, "conflict")
    ok(login(q.username, q.password), 200)


@test
def accounts_bad_input_is_400_404_409_and_changes_nothing():
    p = create_account("ab", wait=False)
    base = {"username": uniq("ab"), "password": new_password(), **profile_body(uniq("ab"))}
    for bad in ({**base, "role": "root"}, base, {**base, "role": "client", "extra": 1},
                {**base, "role": "client", "password": "short"}):
        err(send("POST", "/api/auth/accounts", bad, F.admin), 400, "bad_request")
    err(login(base["username"], base["password"]), 401, "unauthorized")
    for bad in ({}, {"role": "root"}, {"nickname": "x"}, {"username": "no spaces"}, {"password": "short"}):
        err(send("PATCH", f"/api/auth/accounts/{p.id}", bad, F.admin), 400, "bad_request")
    err(send("PATCH", f"/api/auth/accounts/{uuid.uuid4()}", {"role": "client"}, F.admin), 404, "not_found")
    err(send("DELETE", f"/api/auth/accounts/{uuid.uuid4()}", who=F.admin), 404, "not_found")
    eq(ok(login(p.username, p.password), 200)["user"]["role"], "client", "account after refused patches")


@test
def deleting_your_own_account_is_409():
    boss = create_account("self", role="admin", wait=False).login()
    err(send("DELETE", f"/api/auth/accounts/{boss.id}", who=boss), 409, "conflict")
    ok(send("GET", "/api/users/me", who=boss), 200)
    err(send("DELETE", f"/api/auth/accounts/{F.admin.id}", who=F.admin), 409, "conflict")
    ok(login(boss.username, boss.password), 200)


USERS_PATCH_BAD = [
    ("role_not_patchable", {"role": "admin"}),
    ("username_not_patchable", {"username": "renamed"}),
    ("email_invalid", {"email": "no-at"}),
    ("first_name_empty", {"first_name": ""}),
    ("first_name_wrong_type", {"first_name": 5}),
    ("last_name_101_chars", {"last_name": "l" * 101}),
    ("address_201_chars", {"address": "a" * 201}),
    ("malformed_json", b'{"first_name": "x"'),
]


def _users_patch_bad(body):
    def t():
        before = get_profile(F.b.id)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        err(send("PATCH", f"/api/users/{F.b.id}", who=F.b, raw=raw), 400, "bad_request")
        eq(get_profile(F.b.id), before, "profile after a refused PATCH")
    return t


for _n, _b in USERS_PATCH_BAD:
    TESTS.append((f"bad_input PATCH /api/users/{{id}} {_n} -> 400, unchanged", _users_patch_bad(_b)))


@test
def oversized_body_is_413_and_creates_nothing():
    before = device_total()
    big = json.dumps({"name": "big", "max_hourly_kwh": 1, "description": "x" * (1024 * 1024 + 10)}).encode()
    err(send("POST", "/api/devices", who=F.admin, raw=big), 413, "too_large")
    eq(device_total(), before, "device count")
    err(send("POST", "/api/auth/login", raw=json.dumps({"username": "x" * (1100 * 1024), "password": "p"}).encode()),
        413, "too_large")
    eq(send("GET", "/healthz").status, 200, "healthz after 413")


@test
def non_json_content_type_is_415_and_creates_nothing():
    before = device_total()
    raw = json.dumps({"name": "typed " + RUN, "max_hourly_kwh": 1}).encode()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        err(send("POST", "/api/devices", who=F.admin, raw=raw, ctype=ctype), 415, "unsupported_media_type")
    body = json.dumps({"username": F.a.username, "password": F.a.password}).encode()
    err(send("POST", "/api/auth/login", raw=body, ctype="text/plain"), 415, "unsupported_media_type")
    eq(device_total(), before, "device count")


@test
def json_content_type_with_charset_parameter_is_accepted():
    raw = json.dumps({"name": "charset " + RUN, "max_hourly_kwh": 1}).encode()
    ok(send("POST", "/api/devices", who=F.admin, raw=raw, ctype="application/json; charset=utf-8"), 201)


@test
def sql_metacharacters_in_device_name_are_stored_verbatim():
    before = device_total()
    name = "x'); DROP TABLE devices;--"
    d = ok(send("POST", "/api/devices", device_body(name=name, description='"; DELETE FROM devices; --'), F.admin), 201)
    eq(get_device(d["id"])["name"], name, "name")
    eq(get_device(d["id"])["description"], '"; DELETE FROM devices; --', "description")
    eq(device_total(), before + 1, "device count")
    eq(get_device(F.dev_b["id"])["id"], F.dev_b["id"], "another device still readable")


@test
def sql_metacharacters_in_profile_are_stored_verbatim():
    p = register("sq", last_name="O'Brien\"); DROP TABLE users;--")
    eq(ok(send("GET", "/api/users/me", who=p), 200)["last_name"], "O'Brien\"); DROP TABLE users;--", "last_name")
    eq(get_profile(F.a.id)["id"], F.a.id, "another profile still readable")


@test
def search_with_sql_or_like_metacharacters_returns_nothing_extra():
    for q in ("%' OR 1=1 --", "' OR ''='", "%", "\\", "*"):
        j = ok(send("GET", "/api/users?q=" + urllib.parse.quote(q), who=F.admin), 200)
        eq((j["total"], j["items"]), (0, []), f"users for q={q!r}")


@test
def null_character_in_string_is_refused_or_kept_verbatim():
    r = send("POST", "/api/devices", device_body(name="nul\u0000byte " + RUN), F.admin)
    if r.status == 400:
        err(r, 400, "bad_request")
    else:
        d = ok(r, 201)
        eq(get_device(d["id"])["name"], "nul\u0000byte " + RUN, "name with NUL (silently truncated?)")


@test
def invalid_uuids_in_paths_are_400():
    admin_paths = [
        ("GET", "/api/devices/not-a-uuid", None), ("GET", "/api/devices/123", None),
        ("GET", f"/api/devices/{uuid.uuid4()}0", None), ("GET", "/api/devices/' OR 1=1 --", None),
        ("PATCH", "/api/devices/xyz", {"name": "n"}), ("DELETE", "/api/devices/xyz", None),
        ("PUT", "/api/devices/xyz/owner", {"user_id": F.a.id}), ("DELETE", "/api/devices/xyz/owner", None),
        ("GET", "/api/users/zzz", None), ("PATCH", "/api/users/zzz", {"first_name": "n"}),
        ("PATCH", "/api/auth/accounts/xyz", {"role": "client"}), ("DELETE", "/api/auth/accounts/xyz", None),
    ]
    for method, path, body in admin_paths:
        err(send(method, urllib.parse.quote(path, safe="/"), body, F.admin), 400, "bad_request")


@test
def unknown_ids_in_paths_are_404():
    unknown = uuid.uuid4()
    for method, path, body in (("GET", f"/api/devices/{unknown}", None),
                               ("PATCH", f"/api/devices/{unknown}", {"name": "n"}),
                               ("DELETE", f"/api/devices/{unknown}", None),
                               ("PUT", f"/api/devices/{unknown}/owner", {"user_id": F.a.id}),
                               ("DELETE", f"/api/devices/{unknown}/owner", None),
                               ("PATCH", f"/api/users/{unknown}", {"first_name": "n"})):
        err(send(method, path, body, F.admin), 404, "not_found")


@test
def bad_owner_body_is_400_and_changes_nothing():
    before = get_device(F.dev_a["id"])
    for body in ({"user_id": "abc"}, {}, {"user_id": 5}, {"user_id": F.b.id, "x": 1}):
        err(send("PUT", f"/api/devices/{F.dev_a['id']}/owner", body, F.admin), 400, "bad_request")
    eq(get_device(F.dev_a["id"]), before, "device after refused owner changes")


@test
def bad_list_queries_are_400():
    for path in ("/api/devices", "/api/users"):
        for q in ("limit=0", "limit=101", "limit=-1", "limit=abc", "offset=-1", "offset=abc", "limit=1.5"):
            err(send("GET", f"{path}?{q}", who=F.admin), 400, "bad_request")
    for q in ("owner=not-a-uuid", "owner=" + urllib.parse.quote("' OR 1=1 --")):
        err(send("GET", f"/api/devices?{q}", who=F.admin), 400, "bad_request")
    j = ok(send("GET", "/api/users?limit=100", who=F.admin), 200)
    eq(j["limit"], 100, "limit 100 accepted")


@test
def web_app_index_and_client_routes_are_served():
    marker = os.environ.get("WEB_INDEX_MARKER")
    if not marker:
        raise Skip("no WEB_INDEX_MARKER: the runner serves no web app of its own")
    for path in ("/", "/index.html", "/devices/some-client-route"):
        r = send("GET", path)
        eq(r.status, 200, f"GET {path}: {r}")
        assert marker.encode() in r.data, f"GET {path} is not the web app's index.html: {r}"
    r = send("GET", "/assets/app.js")
    eq(r.status, 200, f"GET /assets/app.js: {r}")
    assert b"console.log" in r.data and "javascript" in r.ctype, f"asset not served as JS: {r}"


@test
def path_traversal_out_of_the_web_root_is_refused():
    name, marker = os.environ.get("WEB_SECRET_NAME"), os.environ.get("WEB_SECRET_MARKER")
    if not name or not marker:
        raise Skip("no WEB_SECRET_NAME/WEB_SECRET_MARKER: no file planted beside the web root")
    paths = [f"/../{name}", f"/%2e%2e/{name}", f"/%2E%2E/{name}", f"/..%2f{name}", f"/%2e%2e%2f{name}",
             f"/assets/../../{name}", f"/assets/%2e%2e/%2e%2e/{name}", f"/assets/..%2f..%2f{name}",
             f"/./../{name}", f"/..\\{name}", f"/..%5c{name}", f"/%252e%252e/{name}",
             f"/%c0%ae%c0%ae/{name}", f"/index.html/../../{name}", f"/....//{name}"]
    for p in paths:
        r = send("GET", p)
        assert 0 < r.status < 500, f"traversal attempt got {r}"
        assert marker.encode() not in r.data, f"the file outside the web root was served for {p}: {r}"
    eq(send("GET", "/healthz").status, 200, "healthz after traversal attempts")


@test
def path_traversal_does_not_return_etc_passwd():
    deep = "/.." * 12
    paths = [deep + "/etc/passwd", "/%2e%2e" * 12 + "/etc/passwd", "/..%2f" * 12 + "etc%2fpasswd",
             "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd",
             "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/assets/../../../../etc/passwd",
             "/assets/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/....//....//etc/passwd",
             "/%252e%252e/%252e%252e/etc/passwd", "/api/../../etc/passwd", "//etc/passwd",
             "/index.html/../../../etc/passwd", "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd"]
    for p in paths:
        r = send("GET", p)
        assert 0 < r.status < 500, f"traversal attempt got {r}"
        assert not PASSWD_RE.search(r.data), f"/etc/passwd served for {p}: {r}"
    eq(send("GET", "/healthz").status, 200, "healthz after traversal attempts")


# ============================================================================
# 4. Tokens: forged, confused, expired, foreign
# ============================================================================

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def token_parts(token):
    h, p, s = token.split(".")
    return json.loads(unb64url(h)), json.loads(unb64url(p)), s


def forge(header, payload, sig=""):
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}.{sig}"


def refused_everywhere(token, what):
    """A bad token must be 401 at the gateway check and at user and admin routes."""
    auth = "Bearer " + token
    for method, path in (("GET", "/api/auth/verify"), ("GET", "/api/users/me"),
                         ("GET", "/api/devices"), ("GET", "/api/users")):
        r = send(method, path, auth=auth)
        assert r.status == 401, f"{what}: expected 401, got {r}"
        err(r, 401, "unauthorized")


@test
def token_claims_are_es256_with_sub_role_exp():
    j = ok(login(F.a.username, F.a.password), 200)
    h, p, _ = token_parts(j["token"])
    eq(h.get("alg"), "ES256", "alg")
    assert {"sub", "username", "role", "iat", "exp"} <= set(p), f"claims {sorted(p)}"
    eq((p["sub"], p["username"], p["role"]), (F.a.id, F.a.username, "client"), "claims")
    assert abs(j["expires_at"] - p["exp"] * 1000) < 1000, f"expires_at {j['expires_at']} vs exp {p['exp']}"


@test
def missing_or_malformed_authorization_is_401():
    for auth in ("", "Bearer", "Bearer ", "Bearer abc", "Bearer a.b.c", "Basic YWRtaW46YWRtaW4=",
                 "Token " + F.admin.token, F.admin.token, "Bearer " + F.admin.token + "x"):
        for path in ("/api/auth/verify", "/api/users"):
            err(send("GET", path, auth=auth), 401, "unauthorized")


@test
def token_with_one_signature_character_changed_is_401():
    token = ok(login(F.a.username, F.a.password), 200)["token"]
    h, p, s = token.split(".")
    i = len(s) // 2
    s2 = s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]
    refused_everywhere(f"{h}.{p}.{s2}", "changed signature")
    refused_everywhere(f"{h}.{p}.", "signature removed")


@test
def token_with_payload_swapped_to_admin_is_401():
    token = ok(login(F.a.username, F.a.password), 200)["token"]
    h, p, s = token.split(".")
    claims = json.loads(unb64url(p))
    for change in ({"role": "admin"}, {"sub": F.admin.id, "username": F.admin.username, "role": "admin"},
                   {"exp": claims["exp"] + 86400}):
        forged = f"{h}.{b64url(json.dumps({**claims, **change}).encode())}.{s}"
        refused_everywhere(forged, f"payload changed by {change}")


@test
def alg_none_token_with_admin_claims_is_401():
    _, claims, _ = token_parts(F.admin.token)
    for alg in ("none", "None", "NONE", "nOnE"):
        refused_everywhere(forge({"alg": alg, "typ": "JWT"}, claims), f"alg={alg}")
        refused_everywhere(forge({"alg": alg, "typ": "JWT"}, claims)[:-1], f"alg={alg}, two parts")


@test
def hs256_token_signed_with_the_public_key_is_401():
    path = os.environ.get("JWT_PUBLIC_KEY_FILE")
    if not path or not os.path.exists(path):
        raise Skip("JWT_PUBLIC_KEY_FILE not given or missing")
    pem = open(path, "rb").read()
    _, claims, _ = token_parts(F.admin.token)
    for secret in (pem, pem.strip(), pem.strip() + b"\n"):
        for alg, digest in (("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)):
            head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
            body = b64url(json.dumps(claims).encode())
            sig = b64url(hmac.new(secret, f"{head}.{body}".encode(), digest).digest())
            refused_everywhere(f"{head}.{body}.{sig}", f"{alg} with the public key as secret")


def _admin_login_at(url_var, password_var):
    """Logs the admin in at the server named by an environment variable."""
    url = os.environ.get(url_var)
    if not url:
        raise Skip(f"no {url_var} given for this mode")
    base = urllib.parse.urlsplit(url)
    password = os.environ.get(password_var) or os.environ.get("ADMIN_PASSWORD")
    user = os.environ.get("ADMIN_USERNAME", "admin")
    return base, ok(send("POST", "/api/auth/login", {"username": user, "password": password}, base=base), 200)


@test
def expired_token_is_401():
    _, j = _admin_login_at("TTL_BASE_URL", "TTL_ADMIN_PASSWORD")
    base = urllib.parse.urlsplit(os.environ.get("TTL_USE_URL") or os.environ["TTL_BASE_URL"])
    issued = time.monotonic()
    auth = "Bearer " + j["token"]
    ok(send("GET", "/api/users", auth=auth, base=base), 200)
    assert j["expires_at"] - now_ms() <= 5000, f"TTL server's token lives too long: expires_at {j['expires_at']}"

    def expired():
        r = send("GET", "/api/users", auth=auth, base=base)
        return r.status == 401, r
    r = poll(expired, "token to expire", timeout=6)
    err(r, 401, "unauthorized")
    assert time.monotonic() - issued >= 1.0, "token refused before its lifetime was over"
    err(send("GET", "/api/auth/verify", auth=auth, base=base), 401, "unauthorized")
    err(send("GET", "/api/devices", auth=auth, base=base), 401, "unauthorized")


@test
def token_signed_by_another_servers_key_is_401():
    base, j = _admin_login_at("FOREIGN_BASE_URL", "FOREIGN_ADMIN_PASSWORD")
    ok(send("GET", "/api/auth/verify", auth="Bearer " + j["token"], base=base), 204)
    refused_everywhere(j["token"], "token from a server with another key")


# ============================================================================
# 5. Deleting an account
# ============================================================================

@test
def deleted_account_devices_unassigned_token_refused_profile_gone():
    c = create_account("gone")
    c.login()
    d1, d2 = create_device(owner=c), create_device(owner=c)
    ok(send("GET", f"/api/devices/{d1['id']}", who=c), 200)
    ok(send("DELETE", f"/api/auth/accounts/{c.id}", who=F.admin), 204)

    def refused():
        r = send("GET", "/api/users/me", who=c)
        return r.status == 401, r
    err(poll(refused, "deleted account's token to be refused"), 401, "unauthorized")
    err(send("GET", "/api/auth/verify", who=c), 401, "unauthorized")
    err(send("GET", "/api/devices", who=c), 401, "unauthorized")
    err(login(c.username, c.password), 401, "unauthorized")
    for d in (d1, d2):
        def unassigned(dev_id=d["id"]):
            dev = get_device(dev_id)
            return dev["owner_id"] is None, dev
        poll(unassigned, f"device {d['id']} to be unassigned")

    def gone():
        r = send("GET", f"/api/users/{c.id}", who=F.admin)
        return r.status == 404, r
    err(poll(gone, "deleted profile to disappear"), 404, "not_found")
    eq(user_total(c.username), 0, "profiles matching the deleted username")
    err(send("PUT", f"/api/devices/{d1['id']}/owner", {"user_id": c.id}, F.admin), 404, "not_found")


# ============================================================================
# 6. Event propagation auth → users, devices
# ============================================================================

@test
def created_account_appears_in_users_and_can_own_a_device():
    username, password = uniq("ev"), new_password()
    body = {"username": username, "password": password, "role": "client", **profile_body(username)}
    acct = ok(send("POST", "/api/auth/accounts", body, F.admin), 201)

    def listed():
        j = ok(send("GET", f"/api/users?q={username}", who=F.admin), 200)
        return j["total"] == 1, j
    j = poll(listed, f"{username} to appear in /api/users")
    prof = j["items"][0]
    eq((prof["id"], prof["username"], prof["role"]), (acct["id"], username, "client"), "profile identity")
    eq((prof["first_name"], prof["last_name"], prof["email"], prof["address"]),
       (body["first_name"], body["last_name"], body["email"], body["address"]), "profile data")
    d = create_device()
    assign(d["id"], acct["id"])


@test
def assigning_to_unknown_user_is_404_and_keeps_owner():
    before = get_device(F.dev_a["id"])
    err(send("PUT", f"/api/devices/{F.dev_a['id']}/owner", {"user_id": str(uuid.uuid4())}, F.admin),
        404, "not_found")
    eq(get_device(F.dev_a["id"]), before, "device after refused assignment")
    d = create_device()
    err(send("PUT", f"/api/devices/{d['id']}/owner", {"user_id": str(uuid.uuid4())}, F.admin), 404, "not_found")
    eq(get_device(d["id"])["owner_id"], None, "unassigned device stays unassigned")


@test
def account_rename_and_role_change_reach_the_profile():
    p = create_account("rr")
    new_name = uniq("rr")
    ok(send("PATCH", f"/api/auth/accounts/{p.id}", {"username": new_name, "role": "admin"}, F.admin), 200)

    def updated():
        prof = get_profile(p.id)
        return (prof["username"], prof["role"]) == (new_name, "admin"), prof
    poll(updated, "profile to follow the account's username and role")


# ============================================================================
# 7. Login rate limiting
# ============================================================================

@test
def six_bad_logins_for_one_username_are_429():
    p = register("rl")
    for i in range(5):
        err(login(p.username, f"wrong-password-{i}"), 401, "unauthorized")
    err(login(p.username, "wrong-password-5"), 429, "rate_limited")
    err(login(p.username, p.password), 429, "rate_limited")
    err(login(p.username.upper(), p.password), 429, "rate_limited")  # login ignores case: so must the limit
    ok(login(F.a.username, F.a.password), 200)


def _fnv1a_collider(name, slots):
    """Another username landing in name's slot of a FNV-1a-hashed table of `slots` entries."""
    def slot(s):
        h = 2166136261
        for c in s.lower().encode():
            h = ((h ^ c) * 16777619) & 0xFFFFFFFF
        return h % slots
    target = slot(name)
    return next(f"other{i}" for i in range(1_000_000) if slot(f"other{i}") == target)


@test
def login_lockout_is_not_reset_by_attempts_on_other_usernames():
    # The other usernames include ones that share the locked name's slot in a
    # hashed counter table (a common way to keep per-user counters): evicting
    # the counter must not give an attacker five fresh guesses.
    p = register("lk")
    for i in range(5):
        err(login(p.username, f"wrong-password-{i}"), 401, "unauthorized")
    for other in (_fnv1a_collider(p.username, 1024), _fnv1a_collider(p.username, 4096), uniq("zz")):
        login(other, "any-password")
    err(login(p.username, p.password), 429, "rate_limited")


# ============================================================================
# 8. Data survives a restart
# ============================================================================

@test
def data_survives_a_restart():
    cmd = os.environ.get("RESTART_CMD")
    if not cmd:
        raise Skip("no RESTART_CMD: this mode's runner cannot restart the servers")
    p = register("rs")
    ok(send("PATCH", f"/api/users/{p.id}", {"address": "Before restart 1"}, p), 200)
    d = create_device(owner=p, name="survivor " + RUN)
    prof, dev = get_profile(p.id), get_device(d["id"])
    done = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert done.returncode == 0, f"restart failed ({done.returncode}): {done.stdout.decode()[-600:]}"
    eq(send("GET", "/readyz").status, 200, "readyz after restart")
    eq(get_device(d["id"]), dev, "device after restart")
    eq(get_profile(p.id), prof, "profile after restart")
    ok(send("GET", "/api/users/me", who=p), 200)  # the key pair survived: old tokens still verify
    ok(login(p.username, p.password), 200)
    q = create_account("ar")  # events still flow after the restart
    assign(create_device()["id"], q.id)


# ============================================================================
# Helpers for the runners
# ============================================================================

def wait_ready(url, seconds, pidfile=None):
    """Polls url/readyz until 200; 1 if the deadline passes or the process died."""
    base = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        if send("GET", "/readyz", base=base).status == 200:
            return 0
        if pidfile and not _alive(pidfile):
            print(f"wait-ready: the server of {pidfile} exited", file=sys.stderr)
            return 1
        time.sleep(0.05)
    print(f"wait-ready: {url}/readyz not 200 within {seconds} s", file=sys.stderr)
    return 1


def _alive(pidfile):
    try:
        pid = int(open(pidfile).read().strip())
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, ValueError, IndexError):
        return False


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "wait-ready":
        sys.exit(wait_ready(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None))
    if not os.environ.get("BASE_URL"):
        print("BASE_URL is not set (see the docstring)", file=sys.stderr)
        sys.exit(2)
    sys.exit(run())
