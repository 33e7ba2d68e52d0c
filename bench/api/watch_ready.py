#!/usr/bin/env python3
"""watch_ready.py — time from process start to the first 200 from /readyz.

    watch_ready.py [--armed FILE] TIMEOUT_S NAME=PIDFILE=URL [NAME=PIDFILE=URL ...]

Started before the processes it watches (they may not exist yet): as soon as
a PID file appears, the process's start time is read from /proc/<pid>/stat
(field 22, clock ticks since boot), so the figure does not depend on when
this watcher noticed the process.  Each URL is polled every 10 ms; the first
200 ends that process's clock.  Prints one line per process:

    NAME <milliseconds>        or        NAME timeout

and exits 0 when all answered, 1 otherwise.  With --armed FILE it creates
FILE once it is running and polling: the caller waits for it before starting
the processes, so the interpreter's own start-up (most of a second of CPU on a
busy machine) does not compete with the start being timed.  The start time has the kernel
clock tick's resolution (10 ms at the usual 100 Hz), which is well below the
1 s target it is checked against.
"""
import http.client
import os
import sys
import time

POLL_S = 0.010


def start_time_s(pid):
    """Start of process pid on the CLOCK_BOOTTIME scale, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def read_pid(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def ready(url):
    """True when GET url answers 200; every failure is just 'not yet'."""
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80), timeout=0.5)
    try:
        conn.request("GET", "/" + path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def main(argv):
    armed = None
    if len(argv) > 2 and argv[1] == "--armed":
        armed = argv[2]
        argv = argv[:1] + argv[3:]
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    deadline = time.monotonic() + float(argv[1])
    pending = {}
    for spec in argv[2:]:
        name, pidfile, url = spec.split("=", 2)
        pending[name] = {"pidfile": pidfile, "url": url, "start": None}
    results = {}
    if armed:
        open(armed, "w").close()
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            w = pending[name]
            if w["start"] is None:
                pid = read_pid(w["pidfile"])
                if pid is None:
                    continue
                w["start"] = start_time_s(pid)
                if w["start"] is None:
                    continue
            if ready(w["url"]):
                now = time.clock_gettime(time.CLOCK_BOOTTIME)
                results[name] = round((now - w["start"]) * 1000)
                del pending[name]
        time.sleep(POLL_S)
    for spec in argv[2:]:
        name = spec.split("=", 1)[0]
        print(f"{name} {results[name] if name in results else 'timeout'}", flush=True)
    return 0 if not pending else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
