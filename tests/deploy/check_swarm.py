#!/usr/bin/env python3
"""check_swarm.py — checks the swarm stack against the broker definitions and the binary.

    check_swarm.py STACK_RESOLVED.yml DEFINITIONS.json HELP.txt TEMPLATE SECRETS_DIR

STACK_RESOLVED.yml is deploy/swarm/stack.yml as `docker stack config` (or
`docker-compose config`) printed it; HELP.txt is `ems serve --help`;
TEMPLATE is deploy/nginx/ems.conf.template; SECRETS_DIR is what
deploy/swarm/secrets.sh wrote.  Prints one PASS or FAIL line per check and
exits 1 if any failed.

The queue table below is DESIGN.md's bus contract: which role produces and
which consumes each queue.  A role's broker user must be allowed to
configure and read exactly the queues it touches (and their .dlq) and
nothing else; only the simulator user may write to the data-collection
exchange.
"""
import base64
import hashlib
import json
import os
import re
import sys

import yaml

REPLICAS = 4
DATA = "external.data.collection.queue"
MONITORING = ["internal.loadbalancer.monitoring.queue.%d" % i for i in range(1, REPLICAS + 1)]

# queue -> (producers, consumers), from DESIGN.md "Bus contract".
BUS = {
    DATA: (["simulator", "monitoring"], ["balancer"]),  # monitoring: POST /api/readings
    "internal.auth.user.queue": (["auth"], ["users"]),
    "internal.auth.device.queue": (["auth"], ["devices"]),
    "internal.auth.websocket.queue": (["auth"], ["ws"]),  # revocations: docs/ws.md
    "internal.device.monitoring.queue": (["devices"], ["monitoring"]),
    "internal.monitoring.device.alert.queue": (["monitoring"], ["devices"]),
    "internal.device.websocket.user.notification.queue": (["devices"], ["ws"]),
}
for q in MONITORING:
    BUS[q] = (["balancer"], ["monitoring"])

# The variable that names each queue (RABBITMQ_MONITORING_QUEUE_PREFIX + n for the replicas').
QUEUE_VARS = {
    "RABBITMQ_AUTH_USER_QUEUE": "internal.auth.user.queue",
    "RABBITMQ_AUTH_DEVICE_QUEUE": "internal.auth.device.queue",
    "RABBITMQ_AUTH_WS_QUEUE": "internal.auth.websocket.queue",
    "RABBITMQ_DEVICE_MONITORING_QUEUE": "internal.device.monitoring.queue",
    "RABBITMQ_ALERT_QUEUE": "internal.monitoring.device.alert.queue",
    "RABBITMQ_NOTIFICATION_QUEUE": "internal.device.websocket.user.notification.queue",
    "RABBITMQ_DATA_COLLECTION_QUEUE": DATA,
}

failures = 0


def report(ok, what, detail=""):
    global failures
    if not ok:
        failures += 1
    print("%s: %s%s" % ("PASS" if ok else "FAIL", what, (" — " + detail) if detail else ""))


def full_match(rx, name):
    """RabbitMQ applies permission regexes with re:run (unanchored); "" means "^$"."""
    if rx == "":
        rx = "^$"
    return re.search(rx, name) is not None


def known_variables(help_text):
    """The environment variable column of `ems serve --help`: `  --flag   VAR   help`."""
    names = set()
    for line in help_text.splitlines():
        m = re.match(r"^\s+--[a-z0-9-]+\s+([A-Z][A-Z0-9_]*)\s", line)
        if m:
            names.add(m.group(1))
    return names


def is_ems_service(service):
    image = service.get("image", "")
    repo = image.rsplit("/", 1)[-1].split(":", 1)[0]
    return repo == "ems"


def as_dict(env):
    if isinstance(env, list):
        return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return dict(env or {})


def check_definitions(defs):
    queues = {q["name"]: q for q in defs.get("queues", [])}
    expected = set(BUS) | {q + ".dlq" for q in BUS}
    missing = sorted(expected - set(queues))
    report(not missing, "definitions name every queue of DESIGN.md and its .dlq (%d queues)" % len(expected),
           "missing " + ", ".join(missing) if missing else "")
    bad = []
    for name in sorted(BUS):
        q = queues.get(name)
        d = queues.get(name + ".dlq")
        if not q or not d:
            continue
        want = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": name + ".dlq"}
        if not q.get("durable") or q.get("auto_delete") or q.get("arguments") != want:
            bad.append(name)
        if not d.get("durable") or d.get("auto_delete") or d.get("arguments"):
            bad.append(name + ".dlq")
    report(not bad, "every queue durable, dead-lettering to its .dlq with the bus driver's arguments",
           ", ".join(bad))

    exchanges = {e["name"]: e for e in defs.get("exchanges", [])}
    binding = [b for b in defs.get("bindings", []) if b.get("source") == DATA and b.get("destination") == DATA
               and b.get("destination_type") == "queue" and b.get("routing_key") == DATA]
    report(DATA in exchanges and exchanges[DATA].get("type") == "direct" and exchanges[DATA].get("durable")
           and binding, "exchange %s (direct, durable) bound to the queue of that name" % DATA)
    return queues


def check_permissions(defs, queues, stack_users):
    users = {u["name"]: u for u in defs.get("users", [])}
    perms = {p["user"]: p for p in defs.get("permissions", []) if p.get("vhost") == "/"}
    with_password = sorted(u["name"] for u in users.values() if u.get("password_hash", ""))
    report(not with_password, "the committed definitions carry no password (secrets.sh adds them)",
           ", ".join(with_password))
    bad_rx = []
    for p in perms.values():
        for kind in ("configure", "write", "read"):
            try:
                re.compile(p[kind])
            except re.error as e:
                bad_rx.append("%s.%s: %s" % (p["user"], kind, e))
    report(not bad_rx, "every permission is a valid regular expression", "; ".join(bad_rx))

    names = sorted(queues)
    for role in sorted(stack_users):
        user = stack_users[role]
        p = perms.get(user)
        if user not in users or not p:
            report(False, "broker user %s of service %s exists with permissions on /" % (user, role))
            continue
        own = [q for q, (prod, cons) in BUS.items() if role in prod or role in cons]
        own_all = set(own) | {q + ".dlq" for q in own}
        conf = {q for q in names if full_match(p["configure"], q)}
        read = {q for q in names if full_match(p["read"], q)}
        # Declaring a queue with dead-letter arguments needs configure on it
        # and its .dlq, read on it, and write on the default exchange
        # ("amq.default" to the permission checks), which is also what a
        # publish through the default exchange needs.
        ok = conf == own_all
        report(ok, "%s may configure exactly its queues and their .dlq" % user,
               "" if ok else "extra %s, missing %s" % (sorted(conf - own_all), sorted(own_all - conf)))
        consumed = {q for q, (prod, cons) in BUS.items() if role in cons}
        ok = consumed <= read <= own_all
        report(ok, "%s may read only its own queues" % user,
               "" if ok else "extra %s, missing %s" % (sorted(read - own_all), sorted(consumed - read)))
        writes = {x for x in names + ["amq.default", DATA] if full_match(p["write"], x)}
        if own:
            ok = writes == {"amq.default"}
            report(ok, "%s may write only to the default exchange" % user, "" if ok else str(sorted(writes)))
        else:
            ok = not writes and full_match(p["configure"], "") and full_match(p["read"], "")
            report(ok, "%s (no queues) has no permission but to connect" % user)

    sim = perms.get("simulator")
    ok = (sim is not None and sim["configure"] in ("", "^$") and sim["read"] in ("", "^$")
          and full_match(sim["write"], DATA) and not full_match(sim["write"], "amq.default")
          and not any(full_match(sim["write"], q) for q in names if q != DATA))
    report(ok, "simulator may only write to the %s exchange (not the default exchange, which reaches every queue)"
           % DATA, "" if ok else json.dumps(sim))


def check_services(stack, known, defs):
    services = stack.get("services", {})
    ems = {name: s for name, s in services.items() if is_ems_service(s)}
    report(len(ems) >= 7, "stack runs ems for every role", ", ".join(sorted(ems)))
    stack_users = {}
    for name, s in sorted(ems.items()):
        env = as_dict(s.get("environment"))
        unknown = sorted(k for k in env if k not in known)
        report(not unknown, "%s: every variable is one `ems serve --help` lists" % name,
               "unknown: " + ", ".join(unknown) if unknown else "")
        targets = []
        for sec in s.get("secrets", []) or []:
            t = sec if isinstance(sec, str) else sec.get("target") or sec.get("source")
            targets.append(t)
        referenced = {os.path.basename(v) for k, v in env.items() if k.endswith("_FILE") and str(v).startswith("/run/secrets/")}
        bad = sorted(t for t in targets if t not in referenced and t.upper() not in known)
        report(not bad, "%s: every secret is a known variable (lower case) or a file a *_FILE variable names" % name,
               ", ".join(bad))
        missing_files = sorted(v for k, v in env.items() if k.endswith("_FILE") and str(v).startswith("/run/secrets/")
                               and os.path.basename(v) not in targets)
        report(not missing_files, "%s: every *_FILE variable names a mounted secret" % name, ", ".join(missing_files))
        cmd = s.get("command") or []
        role = cmd[cmd.index("--role") + 1] if "--role" in cmd else env.get("EMS_ROLE", "")
        if "RABBITMQ_USERNAME" in env:
            stack_users[role] = env["RABBITMQ_USERNAME"]
        for var, queue in QUEUE_VARS.items():
            if var in env and env[var] != queue:
                report(False, "%s: %s names %s, the definitions' %s" % (name, var, env[var], queue))
        if role == "monitoring":
            replicas = (s.get("deploy") or {}).get("replicas")
            ok = (env.get("REPLICA_ID") == "{{.Task.Slot}}" and str(env.get("EMS_REPLICAS")) == str(replicas)
                  and replicas == REPLICAS)
            report(ok, "monitoring: %s replicas, REPLICA_ID={{.Task.Slot}}, EMS_REPLICAS the same" % replicas)
    return stack_users


def check_gateway(stack, template_text):
    gw = stack.get("services", {}).get("gateway")
    if not gw:
        report(False, "stack has a gateway service")
        return
    used = set(re.findall(r"\$\{(GW_[A-Z_]+)\}", template_text))
    env = as_dict(gw.get("environment"))
    unknown = sorted(k for k in env if k.startswith("GW_") and k not in used)
    report(not unknown, "gateway: every GW_* variable is one the nginx template uses", ", ".join(unknown))
    services = set(stack.get("services", {}))
    bad = []
    for k, v in env.items():
        if k.endswith("_SERVERS"):
            for host in re.findall(r"server\s+([^:;\s]+)", str(v)):
                if host not in services:
                    bad.append("%s -> %s" % (k, host))
    report(not bad, "gateway: every upstream is a service of the stack", ", ".join(bad))


def check_secrets(stack, secrets_dir):
    files = {name: os.path.basename(s.get("file", "")) for name, s in (stack.get("secrets") or {}).items()}
    missing = sorted(f for f in files.values() if not os.path.isfile(os.path.join(secrets_dir, f)))
    report(not missing, "secrets.sh writes every secret file the stack reads (%d)" % len(files), ", ".join(missing))
    path = os.path.join(secrets_dir, "rabbitmq-definitions.json")
    if not os.path.isfile(path):
        return
    rendered = json.load(open(path))
    bad = []
    for u in rendered.get("users", []):
        pw_file = os.path.join(secrets_dir, "rabbitmq_%s_password" % u["name"])
        if not os.path.isfile(pw_file):
            bad.append(u["name"] + " (no password file)")
            continue
        raw = base64.b64decode(u.get("password_hash", ""))
        password = open(pw_file).read().strip().encode()
        if len(raw) != 36 or hashlib.sha256(raw[:4] + password).digest() != raw[4:]:
            bad.append(u["name"])
    report(not bad, "rendered definitions hold each user's password as RabbitMQ's salted SHA-256", ", ".join(bad))


def main():
    if len(sys.argv) != 6:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    stack_path, defs_path, help_path, template_path, secrets_dir = sys.argv[1:]
    try:
        stack = yaml.safe_load(open(stack_path))
    except (OSError, yaml.YAMLError) as e:
        report(False, "resolved stack parses", str(e))
        return 1
    try:
        defs = json.load(open(defs_path))
        report(True, "definitions JSON parses")
    except (OSError, ValueError) as e:
        report(False, "definitions JSON parses", str(e))
        return 1
    known = known_variables(open(help_path).read())
    report(len(known) >= 20, "`ems serve --help` lists the variables (%d)" % len(known))
    queues = check_definitions(defs)
    stack_users = check_services(stack, known, defs)
    check_permissions(defs, queues, stack_users)
    check_gateway(stack, open(template_path).read())
    check_secrets(stack, secrets_dir)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
