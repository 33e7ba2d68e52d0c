"""
test_users.py — the users role (src/roles/users): profiles.

List and search, /me, read and patch; who may call them; bad input, and SQL
or LIKE metacharacters taken as text.
"""

import json
import urllib.parse
import uuid

from lib import (ADMIN_ONLY, authz, eq, err, F, get_profile, is_recent_ms, keys, LIST_KEYS,
                 new_password, ok, profile_body, PROFILE_KEYS, register, Row, RUN, send, test,
                 TESTS, user_total, wait_profile)


# ----------------------------------------------------------------------------
# Normal use
# ----------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------
# Who may call them: this role's rows of the authorization matrix (lib.authz)
# ----------------------------------------------------------------------------


AUTHZ = [
    Row("GET", "/api/users", ADMIN_ONLY + (200,), lambda w, st: ("/api/users", None)),
    Row("GET", "/api/users/me", (401, 200, 200, 200), lambda w, st: ("/api/users/me", None)),
    Row("GET", "/api/users/{client_a}", (401, 200, 403, 200), lambda w, st: (f"/api/users/{F.a.id}", None)),
    Row("PATCH", "/api/users/{client_a}", (401, 200, 403, 200),
        lambda w, st: (f"/api/users/{F.a.id}", {"address": "set by " + (w.label if w else "anonymous")})),
]
authz(AUTHZ)


# ----------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------

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
def sql_metacharacters_in_profile_are_stored_verbatim():
    p = register("sq", last_name="O'Brien\"); DROP TABLE users;--")
    eq(ok(send("GET", "/api/users/me", who=p), 200)["last_name"], "O'Brien\"); DROP TABLE users;--", "last_name")
    eq(get_profile(F.a.id)["id"], F.a.id, "another profile still readable")


@test
def search_with_sql_or_like_metacharacters_returns_nothing_extra():
    for q in ("%' OR 1=1 --", "' OR ''='", "%", "\\", "*"):
        j = ok(send("GET", "/api/users?q=" + urllib.parse.quote(q), who=F.admin), 200)
        eq((j["total"], j["items"]), (0, []), f"users for q={q!r}")
