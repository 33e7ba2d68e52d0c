#!/usr/bin/env bash
# run_deadletters.sh <ems-binary> — readings of an unknown device, black-box, against `ems serve`.
#
# Embedded, such readings are dead-lettered in process; up to 1,000 dead
# letters of any size were kept per queue, and each post logged its lines.
# Posts 60 bodies of ~1 MiB (one unknown device, ~10k readings each) with the
# ingest token and checks that the server's RSS grows by less than 40 MiB
# (the dead letters kept are bounded by bus_dlq_max_bytes, 8 MiB; not in an
# AddressSanitizer build, whose allocator keeps freed memory), that
# every post is answered 202 and every reading counted in /metrics, that the
# dropped dead letters are counted, and that the log has far fewer than 60
# lines about them (log_rate_limit), with the rest counted in log.suppressed.
# The server is started by tests/lib/embedded.sh; the suite below is written
# to its temp dir and finds the server's log through /proc/<pid>/fd/2.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 <path-to-ems-binary>"; exit 2; }
# shellcheck source=tests/lib/common.sh
. "$here/../lib/common.sh"
work=$(make_tmp deadletters 700)
trap 'rm -rf "$work"' EXIT

cat >"$work/deadletters.py" <<'PY'
import json, os, re, sys, urllib.request, uuid

BASE, TOKEN, PID = os.environ["BASE_URL"], os.environ["INGEST_TOKEN"], os.environ["SERVER_PID"]
POSTS, BODY = 60, 1_000_000
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f" — {detail}"))
    passed, failed = passed + bool(ok), failed + (not ok)


def rss_kib():
    with open(f"/proc/{PID}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def post(body):
    req = urllib.request.Request(BASE + "/api/readings", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + TOKEN})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def metric(text, series):
    m = re.search("^" + re.escape(series) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


device = str(uuid.uuid4())  # no such device: its readings are dead-lettered
one = lambda i: json.dumps({"timestamp": 1764237600000 + i * 1000, "device_id": device, "measurement_value": 0.001})
n = BODY // (len(one(0)) + 1)
body = ("[" + ",".join(one(i) for i in range(n)) + "]").encode()
log = os.readlink(f"/proc/{PID}/fd/2")
before = rss_kib()
statuses = [post(body) for _ in range(POSTS)]
growth = (rss_kib() - before) / 1024
print(f"{POSTS} posts of {len(body)} bytes ({n} readings each) for an unknown device: RSS +{growth:.1f} MiB")
check("every post answered 202", all(s == 202 for s in statuses), statuses)
with open(f"/proc/{PID}/maps") as f:
    sanitized = "libasan" in f.read()
if sanitized:  # ASan's quarantine and size-class caches keep freed memory: RSS says nothing here
    print(f"SKIP RSS grows by less than 40 MiB — an AddressSanitizer build (+{growth:.1f} MiB); the normal build checks it")
else:
    check("RSS grows by less than 40 MiB", growth < 40, f"{growth:.1f} MiB")
login = urllib.request.Request(BASE + "/api/auth/login", method="POST", headers={"Content-Type": "application/json"},
                               data=json.dumps({"username": os.environ["ADMIN_USERNAME"],
                                                "password": os.environ["ADMIN_PASSWORD"]}).encode())
with urllib.request.urlopen(login, timeout=10) as r:
    admin = json.loads(r.read())["token"]
with urllib.request.urlopen(urllib.request.Request(BASE + "/metrics", headers={"Authorization": "Bearer " + admin}),
                            timeout=10) as r:
    text = r.read().decode()  # /metrics is for administrators in embedded mode
unknown = metric(text, "ems_readings_unknown_device_total")
check("every reading counted as of an unknown device", unknown == POSTS * n, unknown)
dropped = sum(float(v) for v in re.findall(r"^ems_bus_dead_letters_dropped_total\{[^}]*\} (\S+)$", text, re.M))
check("dead letters dropped from memory are counted", dropped >= POSTS - 8, dropped)
with open(log) as f:
    lines = f.read().splitlines()
about = [l for l in lines if "event=monitoring.unknown_device" in l or ("event=bus.reject" in l)]
print(f"log lines about them: {len(about)}")
check("far fewer than 60 log lines about them", len(about) <= 25, len(about))
told = sum(int(m.group(1)) for l in lines for m in [re.search(r"event=log.suppressed of=(?:monitoring.unknown_device|bus.reject) lines=(\d+)", l)] if m)
print(f"... and {told} counted in log.suppressed so far (the rest are told when the window ends)")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY

bash "$here/../lib/embedded.sh" "$1" "$work/deadletters.py"
