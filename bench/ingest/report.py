#!/usr/bin/env python3
"""report.py RESULTS CEILING_S NDEV INTERVAL_B DAYS_B DAYS_C REPLICAS INTERVAL_C LOAD_RATE —
the markdown report of bench/ingest/run.sh from the lines it recorded (one
fact a line: "meta ...", "a1 ...", "a2 ...", "b ...", "c ...", "cpu ...",
"mem ...", "lat ...", "soak ...", "top ...")."""
import statistics
import sys


def kv(words):
    return {words[i]: words[i + 1] for i in range(0, len(words) - 1, 2)}


def main():
    path, ceiling_s, ndev, interval, days_b, days_c, replicas, interval_c, load_rate = sys.argv[1:10]
    meta, phase, cpu, mem, lat, top, lat_timeout, simfail = {}, {}, {}, [], {}, {}, {}, {}
    soak, soakdone = {}, None
    for line in open(path, encoding="utf-8"):
        w = line.rstrip("\n").split(" ")
        if w[0] == "meta":
            meta[w[1]] = " ".join(w[2:])
        elif w[0] in ("a1", "a2", "b", "c"):
            phase[w[0]] = {k: int(v) if v.lstrip("-").isdigit() else v for k, v in kv(w[1:]).items()}
        elif w[0] == "cpu":
            cpu.setdefault(w[1], []).append((w[2], float(w[3])))
        elif w[0] == "mem":
            mem.append((w[1], w[2], int(w[3]), int(w[4])))
        elif w[0] == "lat":
            lat.setdefault(w[1], []).append(float(w[2]))
        elif w[0] == "soak":
            soak.setdefault(w[2], []).append((int(w[1]), int(w[3]), int(w[4])))
        elif w[0] == "soakdone":
            soakdone = {k: int(v) for k, v in kv(w[1:]).items()}
        elif w[0] == "simfail":
            simfail[w[1]] = " ".join(w[2:])
        elif w[0] == "lat_timeout":
            lat_timeout[w[1]] = int(w[2])
        elif w[0] == "top":
            top.setdefault(w[1], []).append(" ".join(w[2:]))

    print("## Ingest: broker ceiling, distributed pipeline, embedded HTTP\n")
    print(f"- date: {meta.get('date')}; machine: {meta.get('machine')}")
    print(f"- binary: `{meta.get('binary')}` (ems-sim beside it)")
    print(f"- load average before / after: {meta.get('loadavg_before')} / {meta.get('loadavg_after')}")
    print(f"- knobs: BENCH_CEILING_S={ceiling_s} BENCH_DEVICES={ndev} BENCH_INTERVAL_B={interval} "
          f"BENCH_DAYS_B={days_b} BENCH_INTERVAL_C={interval_c} BENCH_DAYS_C={days_c} BENCH_REPLICAS={replicas} "
          f"BENCH_LOAD_RATE={load_rate}\n")

    rows, rate = [], {}
    for key, label in (("a1", "(a1) broker ceiling, **1 queue hop**: publish (confirms, batches of 1000) + consume "
                               "(prefetch 1000, multi-ack 500), no processing"),
                       ("a2", "(a2) broker ceiling, **2 queue hops** as the pipeline: publish → queue → relay "
                              "(batches ≤ 500, republish with confirms, then multi-ack) → queue → consume")):
        a = phase.get(key)
        if not a:
            continue
        wall = (a["last"] - a["t0"]) / 1000
        rate[key] = a["consumed"] / wall if wall > 0 else 0
        pub = a["confirmed"] / ((a["t_pub"] - a["t0"]) / 1000)
        rows.append((label, f"{a['confirmed']} sent / {a['consumed']} consumed", f"{wall:.1f}",
                     f"**{rate[key]:.0f}** msgs/s", f"{pub:.0f}", "", f"{a['busy']}", f"broker {a['rmq_cpu']} CPU-s"))
    for key, label in (("b", f"(b) ems-sim → RabbitMQ → balancer → {replicas} monitoring → PostgreSQL, "
                              "1 reading/message, 2 queue hops, counted when stored"),
                       ("c", "(c) embedded: ems-sim → POST /api/readings (1000/request) → SQLite, counted when stored")):
        p = phase.get(key)
        if not p:
            continue
        wall = (p["last"] - p["t0"]) / 1000
        rate[key] = p["stored"] / wall if wall > 0 and p["stored"] > 0 else 0
        pub = p["confirmed"] / max((p["t_pub"] - p["t0"]) / 1000, 0.001)
        note = "" if p["complete"] == 1 else "NOT all stored: stopped growing or timed out"
        if key in simfail:
            note += f"; ems-sim failed: `{simfail[key]}`"
        rows.append((label, f"{p['confirmed']} confirmed / {p['stored']} stored", f"{wall:.1f}",
                     f"**{rate[key]:.0f}** readings/s", f"{pub:.0f}", f"{(p['last'] - p['t_pub']) / 1000:.1f}",
                     f"{p['busy']}", note))
    print("| measurement | count | s (first sent → last stored/consumed) | rate | sender's confirmed rate /s "
          "| s from last confirm to last stored | machine CPU busy % | notes |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()

    print("| target (DESIGN.md) | measured | verdict |")
    print("|---|---|---|")
    if "a2" in rate and "b" in rate:
        ratio = rate["b"] / rate["a2"] if rate["a2"] else 0
        one = f"; against one hop (a1): {rate['b'] / rate['a1']:.2f}" if rate.get("a1") else ""
        print(f"| (b) ≥ 80 % of the broker's ceiling for the same hops | (b)/(a2) = **{ratio:.2f}**{one} | "
              f"{'met' if ratio >= 0.8 else 'NOT met'} |")
    if "c" in rate:
        print(f"| (c) ≥ 200k readings/s | {rate['c']:.0f} | {'met' if rate['c'] >= 200000 else 'NOT met'} |")
    if soak and soakdone:
        growth = []
        for name, samples in sorted(soak.items()):
            after1 = [r for t, _, r in samples if t >= 60] or [samples[0][2]]
            growth.append((name, after1[0], samples[-1][2], max(r for _, _, r in samples)))
        worst = max(g[2] - g[1] for g in growth) / 1024
        print(f"| stable memory over a 5-minute run | {soakdone['seconds']} s at {load_rate} readings/s: largest "
              f"VmRSS change from minute 1 to the end {worst:+.1f} MB (table below) | "
              f"{'met' if soakdone['seconds'] >= 300 and worst < 5 else 'see below'} |")
    else:
        print("| stable memory over a 5-minute run | not run (BENCH_SOAK_S=0) | not shown |")
    print()

    if lat:
        print("End-to-end latency: one reading at a time published to external.data.collection.queue, timed "
              "from just before the publish until GET /api/consumption on monitoring-1 (asked every "
              "millisecond) includes it — the reading is in the owner's hourly series.\n")
        print("| pipeline | samples | p50 ms | p90 ms | p99 ms | max ms | target |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for key, label in (("idle", "idle"), ("load", f"under {load_rate} readings/s of live load")):
            if key not in lat:
                continue
            s = sorted(lat[key])
            q = statistics.quantiles(s, n=100, method="inclusive") if len(s) > 1 else [s[0]] * 99
            print(f"| {label} | {len(s)} | **{statistics.median(s):.0f}** | {q[89]:.0f} | {q[98]:.0f} | {s[-1]:.0f} "
                  f"| < 1000 ms ({'met' if s[-1] < 1000 else 'NOT met'}) |")
        print()
    for key, n in lat_timeout.items():
        print(f"Latency ({key}): sample {n + 1} was NOT seen within 10 s; sampling stopped there.\n")
    if soak:
        print(f"Soak: VmRSS in MB every ~10 s while {load_rate} readings/s flowed"
              + (f" ({soakdone['confirmed']} confirmed, {soakdone['stored']} stored)" if soakdone else "") + ".\n")
        names = sorted(soak)
        times = [t for t, _, _ in soak[names[0]]]
        print("| s | " + " | ".join(names) + " |")
        print("|---:|" + "---:|" * len(names))
        for i, t in enumerate(times):
            print(f"| {t} | " + " | ".join(f"{soak[n][i][2] / 1024:.1f}" if i < len(soak[n]) else "" for n in names)
                  + " |")
        print("| VmHWM | " + " | ".join(f"{soak[n][-1][1] / 1024:.1f}" for n in names) + " |")
        print()
    if mem:
        print("| process | phase | VmHWM MB (peak) | VmRSS MB at the end |")
        print("|---|---|---:|---:|")
        for ph, name, hwm, rss in mem:
            print(f"| {name} | {ph} | {hwm / 1024:.1f} | {rss / 1024:.1f} |")
        print()

    for ph, label in (("b", "(b)"), ("c", "(c)")):
        if ph not in cpu or ph not in phase:
            continue
        wall = (phase[ph]["last"] - phase[ph]["t0"]) / 1000
        items = sorted(cpu[ph], key=lambda x: -x[1])
        print(f"CPU seconds used during {label} ({wall:.1f} s wall, 2 CPUs = {2 * wall:.1f} CPU-s available): " +
              ", ".join(f"{n} {v:.1f}" for n, v in items) + ".\n")
    for ph in ("b", "c"):
        if ph in top:
            print(f"`top` (1 s sample) ~4 s into ({ph}):\n\n```\n" + "\n".join(top[ph]) + "\n```\n")


main()
