#!/usr/bin/env python3
"""Fills a fresh embedded EMS with a demo: a customer `demo` with three devices
and the last week of their readings, sent by ems-sim through POST /api/readings.

usage: demo.py BASE_URL EMS_SIM   (EMS_ADMIN_PASSWORD and EMS_INGEST_TOKEN in the environment)
Everything goes through the public API, as an administrator would do it."""
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

base, sim = sys.argv[1], sys.argv[2]


def call(method, path, body=None, token=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


status, login = call("POST", "/api/auth/login",
                     {"username": "admin", "password": os.environ["EMS_ADMIN_PASSWORD"]})
if status != 200:
    sys.exit(f"demo: admin login failed ({status})")
admin = login["token"]

status, account = call("POST", "/api/auth/accounts", {
    "username": "demo", "password": "demo-password", "role": "client",
    "first_name": "Dana", "last_name": "Demo", "email": "demo@example.com",
    "address": "Str. Memorandumului 28, Cluj-Napoca"}, admin)
if status == 409:
    print("demo: the demo customer exists already")
    sys.exit(0)
if status != 201:
    sys.exit(f"demo: cannot create the demo customer ({status}: {account})")

devices = []
for name, limit, cls, scale in (("Kitchen", 1.2, "A+", 1.0), ("Heat pump", 2.5, "A++", 2.2),
                                ("Workshop", 1.5, "B", 1.4)):
    status, dev = call("POST", "/api/devices", {
        "name": name, "max_hourly_kwh": limit, "energy_class": cls,
        "description": f"Demo meter: {name.lower()}", "owner_id": account["id"]}, admin)
    if status != 201:
        sys.exit(f"demo: cannot create device {name} ({status}: {dev})")
    devices.append({"id": dev["id"], "name": name, "scale": scale})

config = {"devices": devices, "interval_s": 600, "timezone": "Europe/Bucharest", "seed": 7,
          "target": {"http": base + "/api/readings", "token": os.environ["EMS_INGEST_TOKEN"]}}
with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    json.dump(config, f)
try:
    done = subprocess.run([sim, "backfill", "--config", f.name, "--days", "7", "--batch", "500"],
                          capture_output=True, text=True, timeout=300)
finally:
    os.unlink(f.name)
if done.returncode != 0:
    sys.exit(f"demo: ems-sim failed: {done.stderr.strip()[-500:]}")
print("demo: " + done.stdout.strip())
