"""
test_restart.py — data survives a restart.

RESTART_CMD restarts the server (embedded) or the auth, users and devices
processes (distributed) on the same data; profiles, devices and old tokens
must survive, and events must flow again.  The runner imports this file last.
"""

import os
import subprocess

from lib import (assign, create_account, create_device, eq, get_device, get_profile, login, ok,
                 register, RUN, send, Skip, test)


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
