"""
test_devices.py — the devices role (src/roles/devices): devices and owners.

Create, read, patch, delete; assign and unassign an owner; lists, filters and
pages as the admin and as a client; who may call them, and what client B
cannot do to client A's things; bad input.
"""

import json
import re

from lib import (ADMIN_ONLY, authz, create_device, device_body, device_total, eq, err, F,
                 get_device, get_profile, is_recent_ms, is_uuid, keys, list_all, LIST_KEYS, ok,
                 Row, RUN, send, test, TESTS)


DEVICE_KEYS = {"id", "name", "description", "address", "max_hourly_kwh", "energy_class",
               "owner_id", "created_at", "updated_at"}
ENERGY_CLASSES = ["A+++", "A++", "A+", "A", "B", "C", "D", "E", "F", "G"]


# ----------------------------------------------------------------------------
# Normal use
# ----------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------
# Who may call them: this role's rows of the authorization matrix (lib.authz)
# ----------------------------------------------------------------------------

def _owned_device(st=None):
    return {"dev": create_device(owner=F.a)}


AUTHZ = [
    Row("GET", "/api/devices", (401, 200, 200, 200), lambda w, st: ("/api/devices", None)),
    Row("POST", "/api/devices", ADMIN_ONLY + (201,), lambda w, st: ("/api/devices", device_body())),
    Row("GET", "/api/devices/{of_a}", (401, 200, 403, 200), lambda w, st: (f"/api/devices/{F.dev_a['id']}", None)),
    Row("PATCH", "/api/devices/{of_a}", ADMIN_ONLY + (200,),
        lambda w, st: (f"/api/devices/{F.dev_a['id']}", {"description": "matrix"})),
    Row("DELETE", "/api/devices/{of_a}", ADMIN_ONLY + (204,),
        lambda w, st: (f"/api/devices/{st['dev']['id']}", None), _owned_device),
    Row("PUT", "/api/devices/{of_a}/owner", ADMIN_ONLY + (200,),
        lambda w, st: (f"/api/devices/{F.dev_a['id']}/owner", {"user_id": F.a.id})),
    Row("DELETE", "/api/devices/{of_a}/owner", ADMIN_ONLY + (200,),
        lambda w, st: (f"/api/devices/{st['dev']['id']}/owner", None), _owned_device),
]
authz(AUTHZ)


@test
def client_b_patch_of_a_profile_and_device_changes_nothing():
    prof, dev = get_profile(F.a.id), get_device(F.dev_a["id"])
    err(send("PATCH", f"/api/users/{F.a.id}", {"first_name": "Mallory"}, F.b), 403, "forbidden")
    err(send("PATCH", f"/api/devices/{F.dev_a['id']}", {"name": "stolen"}, F.b), 403, "forbidden")
    err(send("PUT", f"/api/devices/{F.dev_a['id']}/owner", {"user_id": F.b.id}, F.b), 403, "forbidden")
    err(send("DELETE", f"/api/devices/{F.dev_a['id']}", who=F.b), 403, "forbidden")
    eq(get_profile(F.a.id), prof, "A's profile")
    eq(get_device(F.dev_a["id"]), dev, "A's device")


# ----------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------

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
def null_character_in_string_is_refused_or_kept_verbatim():
    r = send("POST", "/api/devices", device_body(name="nul\u0000byte " + RUN), F.admin)
    if r.status == 400:
        err(r, 400, "bad_request")
    else:
        d = ok(r, 201)
        eq(get_device(d["id"])["name"], "nul\u0000byte " + RUN, "name with NUL (silently truncated?)")


@test
def bad_owner_body_is_400_and_changes_nothing():
    before = get_device(F.dev_a["id"])
    for body in ({"user_id": "abc"}, {}, {"user_id": 5}, {"user_id": F.b.id, "x": 1}):
        err(send("PUT", f"/api/devices/{F.dev_a['id']}/owner", body, F.admin), 400, "bad_request")
    eq(get_device(F.dev_a["id"]), before, "device after refused owner changes")
