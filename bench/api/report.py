#!/usr/bin/env python3
"""report.py — turns bench/api/run.sh's raw results into the markdown it prints.

    report.py RESULTS_FILE

The results file has one record a line, its first word naming the kind:

    meta   KEY VALUE...                     facts about the run (machine, command, load)
    wrk    SCENARIO ROUND RPS P50_US P99_US REQUESTS NON2XX SOCKET_ERRORS BYTES
                                            (BYTES: everything read, headers included)
    size   SCENARIO BYTES                   body size of one answer
    ready  NAME MS|timeout                  process start -> first /readyz 200
    rss    NAME PHASE VMRSS_KB ANON_KB      VmRSS and RssAnon; PHASE is idle or loaded

Medians are taken per scenario over the rounds; a ratio is the median of the
API divided by the median of the static file it was measured beside (same
rounds, interleaved).  Targets are DESIGN.md's.
"""
import statistics
import sys

# scenario -> (label, path shown, static scenario it is compared with)
SCENARIOS = [
    ("emb_api", "embedded `ems serve`: authenticated read", "GET /api/devices/{id}", "emb_static"),
    ("emb_static", "private nginx: static file, same bytes", "GET /device.json", None),
    ("gw_api", "gateway nginx → auth verify + devices (distributed)", "GET /api/devices/{id}", "gw_static"),
    ("gw_static", "gateway nginx: static file, same bytes", "GET /device.json", None),
    ("dist_static", "private nginx again, during the distributed phase", "GET /device.json", None),
    ("auth_verify", "diagnostic: auth role asked directly (no nginx)", "GET /api/auth/verify", None),
    ("devices_direct", "diagnostic: devices role asked directly (no nginx)", "GET /api/devices/{id}", None),
]
RSS_TARGET_KB = 64 * 1024
READY_TARGET_MS = 1000


def load(path):
    meta, wrk, size, ready, rss = {}, {}, {}, {}, {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            kind, rest = parts[0], parts[1:]
            if kind == "meta":
                meta[rest[0]] = " ".join(rest[1:])
            elif kind == "wrk":
                scen = rest[0]
                rps, p50, p99, reqs, non2xx, errs, nbytes = (float(x) for x in rest[2:9])
                wrk.setdefault(scen, []).append(
                    {
                        "rps": rps,
                        "p50": p50,
                        "p99": p99,
                        "requests": reqs,
                        "non2xx": non2xx,
                        "errors": errs,
                        "per_answer": nbytes / reqs if reqs else 0,
                    }
                )
            elif kind == "size":
                size[rest[0]] = int(rest[1])
            elif kind == "ready":
                ready[rest[0]] = rest[1]
            elif kind == "rss":
                rss.setdefault(rest[0], {})[rest[1]] = int(rest[2])
                if len(rest) > 3:
                    rss[rest[0]][rest[1] + "_anon"] = int(rest[3])
    return meta, wrk, size, ready, rss


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def ms(us):
    return f"{us / 1000:.2f}"


def mb(kb):
    return f"{kb / 1024:.1f}"


def throughput_table(meta, wrk, size):
    out = [
        "| measurement | request | body / whole answer | req/s (median) | p50 ms | p99 ms | req/s per round | ratio | target |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    notes = []
    for scen, label, path, ref in SCENARIOS:
        runs = wrk.get(scen)
        if not runs:
            continue
        rps = med(runs, "rps")
        ratio, target = "", ""
        if ref and wrk.get(ref):
            r = rps / med(wrk[ref], "rps")
            ratio = f"**{r:.2f}**"
            target = (
                f"≥ 0.50 × static ({'met' if r >= 0.5 else 'NOT met'}), "
                f"p99 < 10 ms ({'met' if med(runs, 'p99') < 10000 else 'NOT met'})"
            )
        rounds = " / ".join(f"{r['rps']:.0f}" for r in runs)
        body = f"{size.get(scen, '?')} / {med(runs, 'per_answer'):.0f} B"
        out.append(
            f"| {label} | `{path}` | {body} | {rps:.0f} | {ms(med(runs, 'p50'))} | "
            f"{ms(med(runs, 'p99'))} | {rounds} | {ratio} | {target} |"
        )
        bad = sum(r["non2xx"] + r["errors"] for r in runs)
        if bad:
            notes.append(f"- {label}: {bad:.0f} answers were not 2xx or failed at the socket: the figure is suspect.")
    return out, notes


def footprint_table(ready, rss):
    out = [
        "| process | VmRSS idle MB | RssAnon idle MB | VmRSS after wrk MB | RssAnon after wrk MB "
        "| start → /readyz 200 ms | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    roles_idle = roles_loaded = roles_anon = roles_anon_loaded = 0
    slowest = None
    for name in sorted(set(rss) | set(ready), key=order_key):
        r = rss.get(name, {})
        t = ready.get(name, "")
        target = ""
        if name.startswith("ems_serve"):
            target = "ready < 1 s"
        elif not name.startswith("gateway"):
            target = "ready < 1 s; part of the sum"
            roles_idle += r.get("idle", 0)
            roles_loaded += r.get("loaded", 0)
            roles_anon += r.get("idle_anon", 0)
            roles_anon_loaded += r.get("loaded_anon", 0)
            if t.isdigit():
                slowest = max(slowest or 0, int(t))
        else:
            target = "not a role: not in the sum"
        cells = [mb(r[k]) if k in r else "" for k in ("idle", "idle_anon", "loaded", "loaded_anon")]
        out.append(f"| {DISPLAY.get(name, name)} | {' | '.join(cells)} | {t} | {target} |")
    if roles_idle:
        verdict = "met" if roles_idle < RSS_TARGET_KB else "NOT met"
        late = "met" if slowest is not None and slowest < READY_TARGET_MS else "NOT met"
        out.append(
            f"| **distributed roles, sum** | **{mb(roles_idle)}** | {mb(roles_anon)} | {mb(roles_loaded)} | "
            f"{mb(roles_anon_loaded)} | slowest {slowest if slowest is not None else '?'} | "
            f"< 64 MB idle ({verdict}); every role < 1 s ({late}) |"
        )
    return out


DISPLAY = {
    "ems_serve": "`ems serve` (embedded: every role in one process), first start",
    "ems_serve_restart": "`ems serve` again on the same data dir",
    "gateway_nginx": "gateway nginx (master + workers)",
}


def order_key(name):
    if name.startswith("ems_serve"):
        return (0, name)
    if name.startswith("gateway"):
        return (2, name)
    return (1, name)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    meta, wrk, size, ready, rss = load(argv[1])
    lines = [f"## EMS API benchmark — {meta.get('date', '?')}", ""]
    for key, label in [
        ("machine", "Machine"),
        ("binary", "Binary"),
        ("tools", "Tools"),
        ("command", "Command"),
        ("method", "Method"),
        ("load_before", "Load before the run"),
        ("load_embedded", "Load after the embedded phase"),
        ("load_after", "Load at the end"),
    ]:
        if key in meta:
            lines.append(f"- {label}: {meta[key]}")
    lines.append("")
    lines.append("### Authenticated read vs. nginx serving the same bytes")
    lines.append("")
    table, notes = throughput_table(meta, wrk, size)
    lines += table
    if notes:
        lines += [""] + notes
    lines += [
        "",
        "Ratio = median req/s of the read ÷ median req/s of the static file measured beside it "
        "in the same rounds (embedded: the private nginx; distributed: the same gateway nginx).",
        "",
        "### Footprint",
        "",
    ]
    lines += footprint_table(ready, rss)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
