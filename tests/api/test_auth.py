"""
test_auth.py — the auth role (src/roles/auth): accounts, credentials, tokens.

Registration, login, /api/auth/verify (the gateway's forward-auth check),
accounts, password changes; who may call them; bad input; forged,
key-confused, expired and foreign tokens; login rate limiting.
"""

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.parse
import uuid

from lib import (ADMIN_ONLY, authz, create_account, eq, err, F, get_profile, is_recent_ms, is_uuid,
                 keys, login, new_password, now_ms, ok, poll, Principal, profile_body,
                 PROFILE_KEYS, register, Row, RUN, send, Skip, test, TESTS, uniq, user_total,
                 wait_profile)


ACCOUNT_KEYS = {"id", "username", "role", "created_at"}
USER_KEYS = {"id", "username", "role"}


# ----------------------------------------------------------------------------
# Normal use
# ----------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------
# Who may call them: this role's rows of the authorization matrix (lib.authz)
# ----------------------------------------------------------------------------

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


def _victim_account(st=None):
    return {"acct": create_account("mv", wait=False)}


AUTHZ = [
    Row("POST", "/api/auth/register", (201, 201, 201, 201), _reg),
    Row("POST", "/api/auth/login", (200, 200, 200, 200),
        lambda w, st: ("/api/auth/login", {"username": F.a.username, "password": F.a.password})),
    Row("GET", "/api/auth/verify", (401, 204, 204, 204), lambda w, st: ("/api/auth/verify", None)),
    Row("POST", "/api/auth/accounts", ADMIN_ONLY + (201,), _acct),
    Row("PATCH", "/api/auth/accounts/{id}", ADMIN_ONLY + (200,),
        lambda w, st: (f"/api/auth/accounts/{st['acct'].id}", {"password": new_password()}), _victim_account),
    Row("DELETE", "/api/auth/accounts/{id}", ADMIN_ONLY + (204,),
        lambda w, st: (f"/api/auth/accounts/{st['acct'].id}", None), _victim_account),
    Row("PUT", "/api/auth/password", (401, 200, 200, 200), _change_password, _spare_admin, _password_changed,
        actor=lambda w, st: st["admin"] if w is F.admin else w),
]
authz(AUTHZ)


@test
def client_cannot_promote_itself_through_accounts_patch():
    p = register("sp")
    err(send("PATCH", f"/api/auth/accounts/{p.id}", {"role": "admin"}, p), 403, "forbidden")
    eq(ok(login(p.username, p.password), 200)["user"]["role"], "client", "role after the attempt")


# ----------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------
# Tokens: forged, confused, expired, foreign
# ----------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------
# Login rate limiting
# ----------------------------------------------------------------------------

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
