#!/usr/bin/env python3
"""http_test.py — the HTTP layer's hardening against a running `ems serve`.

Run by run_http.sh (through tests/lib/embedded.sh), which starts the server
with EMS_HTTP_HEADER_TIMEOUT=2, EMS_HTTP_MAX_CONNS_PER_IP=8 and
EMS_METRICS_TOKEN, and passes BASE_URL, ADMIN_USERNAME, ADMIN_PASSWORD and
EMS_METRICS_TOKEN.  Checks, over plain sockets:

- slow clients: 127.0.0.2 opens more connections than its limit and trickles
  a header byte into each every 0.3 s; the ones past the limit are closed at
  once, /healthz from 127.0.0.1 keeps answering quickly meanwhile, the
  tricklers are closed once the header deadline passes (trickling does not
  extend it), and 127.0.0.2 is served again afterwards;
- framing: two Content-Lengths, Content-Length with chunked, and a transfer
  coding other than chunked are answered 400 in the JSON error envelope at
  once, the connection is closed, and a request pipelined behind never runs;
- /metrics: 401 without a token, 200 with an admin token or the metrics secret.

Prints "N passed, N failed"; exits 1 on any failure.
"""
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

BASE = os.environ["BASE_URL"]
HOST, PORT = urllib.parse.urlsplit(BASE).hostname, urllib.parse.urlsplit(BASE).port
HEADER_TIMEOUT = float(os.environ["EMS_HTTP_HEADER_TIMEOUT"])
PER_IP = int(os.environ["EMS_HTTP_MAX_CONNS_PER_IP"])
METRICS_TOKEN = os.environ["EMS_METRICS_TOKEN"]
TRICKLER = "127.0.0.2"

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name} {detail}"[:2000], flush=True)


def request(method, path, body=None, token=None):
    """(status, body bytes) through urllib, from 127.0.0.1."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def connect(source, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((HOST, PORT))
    return s


def closed_by_server(s, wait):
    """True if the server closed or reset s within `wait` seconds (data it sends is skipped)."""
    s.settimeout(wait)
    try:
        while s.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (socket.timeout, TimeoutError):
        return False


def read_all(s, wait):
    """Everything the server sends until it closes; None if it is still open after `wait` seconds."""
    s.settimeout(wait)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data
    except (socket.timeout, TimeoutError):
        return None


def timed_healthz():
    t0 = time.monotonic()
    try:
        status, _ = request("GET", "/healthz")
    except OSError as e:
        status = str(e)
    return status, time.monotonic() - t0


def test_slow_clients():
    held, extra = [], []
    start = time.monotonic()
    for _ in range(PER_IP):
        s = connect(TRICKLER)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        held.append(s)
    time.sleep(0.2)
    status, worst = timed_healthz()
    answers = [status]
    for _ in range(4):
        s = connect(TRICKLER)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
        except OSError:
            pass
        extra.append(s)
    refused = sum(closed_by_server(s, 1.0) for s in extra)
    check(f"connections past {PER_IP} from {TRICKLER} are closed", refused == len(extra),
          f"{refused} of {len(extra)} closed")
    for s in extra:
        s.close()

    # Trickle: one byte into each held connection every 0.3 s; each would restart an idle timeout.
    closed_at = {}
    deadline = start + HEADER_TIMEOUT + 3.0
    while time.monotonic() < deadline and len(closed_at) < len(held):
        for i, s in enumerate(held):
            if i in closed_at:
                continue
            try:
                s.sendall(b"a")
                if closed_by_server(s, 0.01):
                    closed_at[i] = time.monotonic() - start
            except OSError:
                closed_at[i] = time.monotonic() - start
        if len(closed_at) < len(held):
            status, took = timed_healthz()
            answers.append(status)
            worst = max(worst, took)
        time.sleep(0.3)
    check("/healthz from 127.0.0.1 answers while 127.0.0.2 trickles",
          answers and all(a == 200 for a in answers) and worst < 1.0, f"answers {answers}, slowest {worst:.2f} s")
    early = [t for t in closed_at.values() if t < HEADER_TIMEOUT - 0.3]
    check("no trickler is closed before the header deadline", not early, f"closed at {sorted(early)}")
    check(f"every trickler is closed within {HEADER_TIMEOUT:g} s + 3 s of its accept, however it trickles",
          len(closed_at) == len(held), f"closed {len(closed_at)} of {len(held)}: {sorted(closed_at.values())}")
    for s in held:
        s.close()

    time.sleep(0.3)
    s = connect(TRICKLER)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = read_all(s, 5) or b""
    s.close()
    check(f"{TRICKLER} is served again once its connections are gone", data.startswith(b"HTTP/1.1 200"),
          repr(data[:200]))


FRAMING = [
    ("two different Content-Lengths",
     b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}"),
    ("Content-Length with chunked",
     b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("Transfer-Encoding: xchunked",
     b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Transfer-Encoding: xchunked\r\n\r\n{}"),
]
PIPELINED = b"GET /api/config HTTP/1.1\r\nHost: x\r\n\r\n"


def test_framing():
    for name, req in FRAMING:
        s = connect("127.0.0.1")
        t0 = time.monotonic()
        s.sendall(req + PIPELINED)
        data = read_all(s, 5)
        took = time.monotonic() - t0
        s.close()
        if data is None:
            check(f"{name}: answered and closed", False, "still open after 5 s")
            continue
        head, _, body = data.partition(b"\r\n\r\n")
        try:
            env = json.loads(body.split(b"HTTP/1.1")[0])
        except ValueError:
            env = None
        check(f"{name}: 400 in the error envelope", head.startswith(b"HTTP/1.1 400") and
              isinstance(env, dict) and env.get("error", {}).get("code") == "bad_request", repr(data[:300]))
        check(f"{name}: answered at once, the connection closed", took < 1.0 and b"connection: close" in head.lower(),
              f"{took:.2f} s, {head[:300]!r}")
        check(f"{name}: the request pipelined behind it does not run", data.count(b"HTTP/1.1 ") == 1,
              repr(data[:600]))


def test_metrics():
    status, body = request("GET", "/metrics")
    check("/metrics without a token is 401", status == 401 and b"ems_http_requests_total" not in body,
          f"{status} {body[:200]!r}")
    status, body = request("GET", "/metrics", token=METRICS_TOKEN + "x")
    check("/metrics with a wrong secret is 401", status == 401, f"{status}")
    status, body = request("GET", "/metrics", token=METRICS_TOKEN)
    check("/metrics with the metrics secret is 200", status == 200 and b"ems_http_requests_total" in body,
          f"{status} {body[:200]!r}")
    status, body = request("POST", "/api/auth/login",
                           {"username": os.environ["ADMIN_USERNAME"], "password": os.environ["ADMIN_PASSWORD"]})
    token = json.loads(body)["token"] if status == 200 else None
    check("the admin logs in", token is not None, f"{status} {body[:200]!r}")
    if token:
        status, body = request("GET", "/metrics", token=token)
        check("/metrics with an admin token is 200", status == 200 and b"ems_http_requests_total" in body,
              f"{status} {body[:200]!r}")


def main():
    for t in (test_metrics, test_framing, test_slow_clients):
        try:
            t()
        except Exception as e:  # one broken test must not hide the others' results
            check(t.__name__, False, f"raised {type(e).__name__}: {e}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
