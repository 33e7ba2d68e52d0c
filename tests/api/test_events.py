"""
test_events.py — what crosses roles: auth's account changes reach users and devices.

A created account gets a profile and can own a device; a renamed or promoted
one's profile follows; a deleted one's devices are unassigned, its token
refused and its profile gone.  In distributed mode these go over RabbitMQ, so
every check that waits on another role polls.
"""

import uuid

from lib import (assign, create_account, create_device, eq, err, F, get_device, get_profile, login,
                 new_password, ok, poll, profile_body, send, test, uniq, user_total)


# ----------------------------------------------------------------------------
# Deleting an account
# ----------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------
# Changes to an account reach users and devices
# ----------------------------------------------------------------------------

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
