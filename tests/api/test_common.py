"""
test_common.py — what every role answers alike (src/core/http.c; /api/config: src/main.c).

/healthz, /readyz, /metrics and /api/config (on each role's own port in
distributed mode: ROLE_URLS), and who may call them; unknown routes and wrong
methods; body limits and media types; ids and list queries that do not
parse; the web app, and path traversal out of its root.
"""

import json
import os
import re
import urllib.parse
import uuid

from lib import authz, device_total, Env, eq, err, F, ok, Row, RUN, send, Skip, test


PASSWD_RE = re.compile(rb"^root:[^:\n]*:0:0:", re.M)  # a line of /etc/passwd


# ----------------------------------------------------------------------------
# Probes and the configuration
# ----------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------
# Who may call them: their rows of the authorization matrix (lib.authz)
# ----------------------------------------------------------------------------

AUTHZ = [
    Row("GET", "/api/config", (200, 200, 200, 200), lambda w, st: ("/api/config", None)),
    Row("GET", "/healthz", (200, 200, 200, 200), lambda w, st: ("/healthz", None)),
    Row("GET", "/readyz", (200, 200, 200, 200), lambda w, st: ("/readyz", None), roles=True),
    # Embedded, /metrics is for administrators (EMS_METRICS_ACCESS=admin); a distributed role's is
    # public on its own port, which only the gateway's network reaches.
    Row("GET", "/metrics", (401, 403, 403, 200) if os.environ.get("EMS_MODE") == "embedded" else (200, 200, 200, 200),
        lambda w, st: ("/metrics", None), roles=True),
]
authz(AUTHZ)


# ----------------------------------------------------------------------------
# Routing, bodies and media types
# ----------------------------------------------------------------------------

@test
def unknown_route_is_404_and_wrong_method_is_405():
    err(send("GET", "/api/no-such-thing", who=F.admin), 404, "not_found")
    err(send("DELETE", "/api/devices", who=F.admin), 405, "method_not_allowed")
    err(send("GET", "/api/auth/login"), 405, "method_not_allowed")


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
def bad_list_queries_are_400():
    for path in ("/api/devices", "/api/users"):
        for q in ("limit=0", "limit=101", "limit=-1", "limit=abc", "offset=-1", "offset=abc", "limit=1.5"):
            err(send("GET", f"{path}?{q}", who=F.admin), 400, "bad_request")
    for q in ("owner=not-a-uuid", "owner=" + urllib.parse.quote("' OR 1=1 --")):
        err(send("GET", f"/api/devices?{q}", who=F.admin), 400, "bad_request")
    j = ok(send("GET", "/api/users?limit=100", who=F.admin), 200)
    eq(j["limit"], 100, "limit 100 accepted")


# ----------------------------------------------------------------------------
# The web app, and path traversal out of it
# ----------------------------------------------------------------------------

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
