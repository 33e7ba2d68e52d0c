"""
lib.py — what every file of the API suite shares.

The wire (send: one request per connection, raw paths, any body and
headers; Resp), the assertions (ok, err, eq, keys, poll), unique test data
and the principals who sign in (Principal; F, the fixtures the setup test
fills: the admin, clients A and B, their devices), the registry (@test, and
authz() for the rows of the authorization matrix) and the runner that prints
one line per test and then "N passed, N failed".  The role files
(test_<role>.py) hold the tests; ems_api_test.py imports them in order and
calls run().
"""

import http.client
import json
import os
import re
import secrets
import sys
import time
import urllib.parse

POLL_DEADLINE_S = 5.0
POLL_STEP_S = 0.05
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
JWT_RE = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")

# Objects more than one role file checks (docs/api.md).
PROFILE_KEYS = {"id", "username", "role", "first_name", "last_name", "email", "address",
                "created_at", "updated_at"}
LIST_KEYS = {"items", "total", "limit", "offset"}


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
# The authorization matrix: every endpoint × {anonymous, client A, client B, admin}
# ============================================================================
# Each role file lists its endpoints as Rows, beside its other tests, and
# hands them to authz(); the columns, the error each refusal must carry and
# how a cell runs are the same for every role, so they are here.

COLUMNS = ("anonymous", "client_a", "client_b", "admin")
ADMIN_ONLY = (401, 403, 403)  # anonymous, client A, client B on an admin-only endpoint
DENIED = {401: "unauthorized", 403: "forbidden"}


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


def authz(rows):
    """Registers one test per cell: "authz METHOD SHAPE as COLUMN -> STATUS"."""
    for row in rows:
        for col, label in enumerate(COLUMNS):
            TESTS.append((f"authz {row.method} {row.shape} as {label} -> {row.expect[col]}", _matrix_cell(row, col)))


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
