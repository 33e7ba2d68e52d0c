#!/usr/bin/env python3
"""ingest_distributed.py <cluster.env> — exact totals through RabbitMQ and PostgreSQL.

Runs against a cluster started by deploy/local/cluster.sh (gateway, auth,
devices, balancer, monitoring replicas, a real broker and a real database).
Creates devices through the gateway, then publishes readings to
external.data.collection.queue (persistent, through the broker's management
API): arrays of readings in both accepted forms, out of order, with
duplicates within and across messages and malformed messages mixed in.
Mid-stream (the replicas are throttled by SIMULATOR_DELAY_MS, so that
they hold unacknowledged work) it kills a monitoring replica with SIGKILL
and later the balancer, and starts each again with the command line and environment it
had (read from /proc before the kill), and then restarts the broker itself.  It then waits for the totals the
read API serves to match the sums it computed itself: per device and UTC
day, and one alert per device and hour over the limit.  Malformed messages
must be in external.data.collection.queue.dlq.  Prints "N passed, N failed".
"""
import base64
import concurrent.futures
import datetime
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from ingest_checks import (admin_and_devices, check, check_alerts, daily_mismatches, expected_sums, finish,
                           http_json, make_batches, make_readings, wait_known)

ENV = {}
with open(sys.argv[1]) as f:
    for line in f:
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            ENV[key] = value.strip("'\"")

GATEWAY = ENV["GATEWAY_URL"]
MGMT = ENV["RABBITMQ_MGMT_URL"]
BASIC = {"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()}  # for the management API
QUEUE = "external.data.collection.queue"
DAY0 = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)
DAYS = 1
STEP_MIN = 5
LOW_LIMIT = 1.0
BURST = 40  # messages published at once right before a kill
# The original simulator's time form over AMQP: Java's LocalDateTime.toString(), which drops zero
# seconds and has no zone ("2026-06-01T00:05"; UTC, as EMS_READING_TZ is unset).  Every reading
# here falls on a whole minute.
ISO = "%Y-%m-%dT%H:%M"
rng = random.Random(424242)
restarted = []  # processes this script started again; stopped by PID at the end


def publish(payload):
    """A persistent message on the input queue; True once the broker routed it."""
    body = {"properties": {"delivery_mode": 2}, "routing_key": QUEUE, "payload": payload,
            "payload_encoding": "string"}
    for _ in range(300):  # up to 30 s: the broker may be restarting
        try:
            status, answer = http_json("POST", MGMT + "/api/exchanges/%2F/amq.default/publish", body, headers=BASIC)
            if status == 200 and answer and answer.get("routed"):
                return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    return False


def queue_messages(name):
    status, q = http_json("GET", MGMT + "/api/queues/%2F/" + urllib.parse.quote(name, safe=""), headers=BASIC)
    return q.get("messages", 0) if status == 200 and q else -1


def pipeline_backlog():
    """Messages (ready and unacknowledged) in the input queue and the replica queues; -1 if unknown."""
    status, queues = http_json("GET", MGMT + "/api/queues/%2F", headers=BASIC)
    if status != 200 or not isinstance(queues, list):
        return -1
    names = [q for q in queues if not q["name"].endswith(".dlq") and
             (q["name"] == QUEUE or q["name"].startswith("internal.loadbalancer.monitoring.queue."))]
    return sum(q.get("messages", 0) for q in names) if names else -1


def snapshot(pid):
    """The command line, environment and cwd of a running process, to start it again after a kill."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(a.decode().split("=", 1) for a in f.read().split(b"\0") if b"=" in a)
    return argv, env, os.readlink(f"/proc/{pid}/cwd"), os.readlink(f"/proc/{pid}/fd/1")


def kill_and_restart(name, pid, pause):
    argv, env, cwd, log = snapshot(pid)
    os.kill(pid, signal.SIGKILL)
    gone = False
    for _ in range(100):
        try:
            with open(f"/proc/{pid}/stat") as f:
                gone = f.read().split(") ")[1].startswith("Z")
        except FileNotFoundError:
            gone = True
        if gone:
            break
        time.sleep(0.05)
    check(f"{name} killed with SIGKILL", gone)
    time.sleep(pause)
    with open(log, "ab") as out:
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    restarted.append(p)
    port = env["PORT"]
    ready = False
    for _ in range(150):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                ready = r.status == 200
        except (urllib.error.URLError, OSError):
            pass
        if ready:
            break
        time.sleep(0.1)
    check(f"{name} restarted", ready)


def restart_broker():
    """Stops and starts the cluster's RabbitMQ on the same data: durable queues, persistent messages."""
    lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib", "rabbitmq.sh")
    rmq = os.path.join(ENV["CLUSTER_DIR"], "rabbitmq")
    mgmt_port = urllib.parse.urlparse(MGMT).port
    with open(os.path.join(ENV["CLUSTER_DIR"], "logs", "broker-restart.log"), "ab") as log:
        ok = subprocess.run(["bash", lib, "stop", rmq], stdout=log, stderr=log).returncode == 0
        ok = ok and subprocess.run(["bash", lib, "start", rmq, ENV["AMQP_PORT"], str(mgmt_port)], stdout=log,
                                   stderr=log).returncode == 0
        ok = ok and subprocess.run(["bash", lib, "wait", ENV["AMQP_PORT"], "60"], stdout=log, stderr=log).returncode == 0
    check("RabbitMQ restarted mid-stream", ok)


def main():
    setup = admin_and_devices(GATEWAY, ENV.get("ADMIN_USERNAME", "admin"), ENV["ADMIN_PASSWORD"],
                              [500.0, 500.0, 500.0, 500.0, 500.0, LOW_LIMIT], "dist", " through the gateway")
    if not setup:
        return
    admin, devices = setup
    wait_known(GATEWAY, admin, devices, "2026-06-01", 20, 0.2)

    readings = make_readings(devices, DAY0, DAYS, STEP_MIN, 0.2, rng)
    messages = make_batches(readings, 12, 2, rng, ISO)
    malformed = ["not json", "[]", '{"timestamp":1,"device_id":"x","measurement_value":1}']
    dlq_before = queue_messages(QUEUE + ".dlq")

    replica = ENV.get("PID_MONITORING_2") and "MONITORING_2" or "MONITORING_1"
    kills = {
        len(messages) // 3: lambda: kill_and_restart(replica.lower().replace("_", "-"), int(ENV["PID_" + replica]), 1.0),
        len(messages) // 2: lambda: kill_and_restart("balancer", int(ENV["PID_BALANCER"]), 1.0),
        3 * len(messages) // 4: restart_broker,
    }
    published = bad_sent = 0
    n = 0
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        while n < len(messages):
            if kills and n >= min(kills):
                # A burst first, so that the process has deliveries in hand when it dies.
                burst = messages[n:n + BURST]
                published += sum(pool.map(publish, burst))
                n += len(burst)
                kills.pop(min(kills))()
                continue
            published += publish(messages[n])
            if n % 40 == 0:
                bad_sent += publish(malformed[(n // 40) % len(malformed)])
            n += 1
    check("every message routed by the broker", published == len(messages), (published, len(messages)))

    expected_day, expected_hour = expected_sums(readings)
    bad = ["not checked"]
    until = time.time() + 90  # consumers reconnect with a backoff of up to 5 s after the broker restart
    while time.time() < until and bad:
        bad = daily_mismatches(GATEWAY, admin, devices, DAY0, DAYS, expected_day)
        if bad:
            time.sleep(0.5)
    check("daily totals exact after kill -9 of a replica and of the balancer and a broker restart", not bad, bad[:3])
    # Any redelivery still on its way would show once the pipeline's queues are drained: the
    # input queue and every replica queue hold nothing, ready or unacknowledged.
    until = time.time() + 30
    while time.time() < until and pipeline_backlog() != 0:
        time.sleep(0.2)
    check("the pipeline's queues drained", pipeline_backlog() == 0, pipeline_backlog())
    status, body = http_json("GET", f"{GATEWAY}/api/consumption/{devices[0]}?date=2026-06-01&tz=UTC", None, admin)
    check("totals stay exact (nothing counted twice later)",
          status == 200 and abs(body["total_kwh"] - expected_day[(devices[0], "2026-06-01")]) < 1e-6)

    check_alerts(GATEWAY, admin, devices[-1], expected_hour, LOW_LIMIT)

    dlq = -1
    until = time.time() + 10
    while time.time() < until:
        dlq = queue_messages(QUEUE + ".dlq")
        if dlq >= dlq_before + bad_sent:
            break
        time.sleep(0.3)
    check("malformed messages dead-lettered", bad_sent > 0 and dlq - dlq_before == bad_sent, (bad_sent, dlq_before, dlq))


try:
    main()
except Exception as e:
    check("suite ran to the end", False, repr(e))
finally:
    for p in restarted:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    finish()
