#!/usr/bin/env python3
"""report.py RESULTS CEILING_S NDEV INTERVAL_B DAYS_B DAYS_C REPLICAS INTERVAL_C — the
markdown report of bench/ingest/run.sh from the lines it recorded (one fact
a line: "meta ...", "a ...", "b ...", "c ...", "cpu ...", "mem ...",
"lat ...", "top ...")."""
import statistics
import sys


def kv(words):
    return {words[i]: words[i + 1] for i in range(0, len(words) - 1, 2)}


def main():
    path, ceiling_s, ndev, interval, days_b, days_c, replicas, interval_c = sys.argv[1:9]
    meta, phase, cpu, mem, lat, top, lat_timeout, simfail = {}, {}, {}, [], [], {}, [], {}
    for line in open(path, encoding="utf-8"):
        w = line.rstrip("\n").split(" ")
        if w[0] == "meta":
            meta[w[1]] = " ".join(w[2:])
        elif w[0] in ("a", "b", "c"):
            phase[w[0]] = {k: int(v) if v.lstrip("-").isdigit() else v for k, v in kv(w[1:]).items()}
        elif w[0] == "cpu":
            cpu.setdefault(w[1], []).append((w[2], float(w[3])))
        elif w[0] == "mem":
            mem.append((w[1], w[2], int(w[3]), int(w[4])))
        elif w[0] == "lat":
            lat.append(int(w[2]))
        elif w[0] == "simfail":
            simfail[w[1]] = " ".join(w[2:])
        elif w[0] == "lat_timeout":
            lat_timeout.append(int(w[2]))
        elif w[0] == "top":
            top.setdefault(w[1], []).append(" ".join(w[2:]))

    print("## Ingest: broker ceiling, distributed pipeline, embedded HTTP\n")
    print(f"- date: {meta.get('date')}; machine: {meta.get('machine')}")
    print(f"- binary: `{meta.get('binary')}` (ems-sim beside it)")
    print(f"- load average before / after: {meta.get('loadavg_before')} / {meta.get('loadavg_after')}")
    print(f"- knobs: BENCH_CEILING_S={ceiling_s} BENCH_DEVICES={ndev} BENCH_INTERVAL_B={interval} "
          f"BENCH_DAYS_B={days_b} BENCH_INTERVAL_C={interval_c} BENCH_DAYS_C={days_c} BENCH_REPLICAS={replicas}\n")

    rows, rate = [], {}
    a = phase.get("a")
    if a:
        wall = (a["last"] - a["t0"]) / 1000
        rate["a"] = a["consumed"] / wall if wall > 0 else 0
        pub = a["confirmed"] / ((a["t_pub"] - a["t0"]) / 1000)
        rows.append(("(a) broker ceiling: publish (confirms, batches of 1000) + consume (prefetch 1000, "
                     "multi-ack 500), no processing, 1 queue hop", f"{a['confirmed']} sent / {a['consumed']} consumed",
                     f"{wall:.1f}", f"**{rate['a']:.0f}** msgs/s", f"{pub:.0f}", "", f"{a['busy']}",
                     f"broker {a['rmq_cpu']} CPU-s"))
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
    if "a" in rate and "b" in rate:
        ratio = rate["b"] / rate["a"] if rate["a"] else 0
        print(f"| (b) ≥ 80 % of the broker's ceiling for the same hops | (b)/(a) = **{ratio:.2f}** "
              f"(a is ONE hop; the pipeline has two, so a two-hop ceiling would be lower) | "
              f"{'met' if ratio >= 0.8 else 'NOT met'} |")
    if "c" in rate:
        print(f"| (c) ≥ 200k readings/s | {rate['c']:.0f} | {'met' if rate['c'] >= 200000 else 'NOT met'} |")
    print("| stable memory over a 5-minute run | not run for 5 minutes; VmHWM vs VmRSS after the short run below | "
          "not shown |")
    print()

    if lat:
        s = sorted(lat)
        q = statistics.quantiles(s, n=20, method="inclusive") if len(s) > 1 else [s[0]] * 19
        print(f"End-to-end latency on the idle pipeline, {len(s)} single readings published one at a time "
              "(amqp-publish, a new connection each: its connect is inside the figure) until the replicas' "
              "stored count grew (polled with curl, ~20 ms resolution): "
              f"p50 **{statistics.median(s):.0f} ms**, p95 {q[18]:.0f} ms, max {s[-1]} ms.\n")

    if lat_timeout:
        print(f"Latency sample {lat_timeout[0]} was NOT stored within 10 s; sampling stopped there.\n")
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
