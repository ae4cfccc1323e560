#!/usr/bin/env python3
"""Summarises bench/tcp.sh results as Markdown tables.

  report.py throughput RUNS.tsv   one row per iperf3 run ('#' lines skipped):
                                  dir peer rep gbps cpu_pct rss_kb hwm_kb cpu0_pct cpu1_pct
  report.py idle IDLE.jsonl       one idle_conns.py JSON object per line, with "peer" added
"""

import json
import statistics
import sys


def fmt(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f}"


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def throughput(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            d, peer, rep, gbps, cpu, rss, hwm, cpu0, cpu1 = line.split()
            num = lambda s: None if s == "-" else float(s)
            rows.append((d, peer, int(rep), float(gbps), num(cpu), num(rss), num(hwm), num(cpu0), num(cpu1)))

    for d in dict.fromkeys(r[0] for r in rows):
        print(f"\n### Direction: {d} ({'client -> proxy -> iperf3 server' if d == 'fwd' else 'iperf3 server -> proxy -> client (-R)'})\n")
        print("| peer | runs (Gbit/s) | median Gbit/s | proxy CPU % (median) | Gbit/s per proxy core | CPU0 / CPU1 busy % | peak RSS (VmHWM) MiB | VmRSS after MiB |")
        print("|---|---|---|---|---|---|---|---|")
        summary = {}
        for peer in dict.fromkeys(r[1] for r in rows if r[0] == d):
            rs = sorted((r for r in rows if r[0] == d and r[1] == peer), key=lambda r: r[2])
            g = statistics.median(r[3] for r in rs)
            cpus = [r[4] for r in rs if r[4] is not None]
            cpu = statistics.median(cpus) if cpus else None
            hwm = max((r[6] for r in rs if r[6] is not None), default=None)
            rss = rs[-1][5]
            eff = g / (cpu / 100) if cpu else None
            c0 = statistics.median(r[7] for r in rs)
            c1 = statistics.median(r[8] for r in rs)
            summary[peer] = (g, cpu, hwm, eff)
            runs = ", ".join(f"{r[3]:.2f}" for r in rs)
            mib = lambda kb: None if kb is None else kb / 1024
            print(f"| {peer} | {runs} | {g:.2f} | {fmt(cpu, 1)} | {fmt(eff)} | {c0:.0f} / {c1:.0f} | {fmt(mib(hwm), 1)} | {fmt(mib(rss), 1)} |")
        # The proxy is alone on CPU 0: CPU 0 busier than the proxy means something else ran there.
        noisy = [f"{r[1]} #{r[2]}" for r in rows if r[0] == d and r[4] is not None and r[7] - r[4] > 8]
        if noisy:
            print(f"\nWarning: other load on CPU 0 during {', '.join(noisy)} (CPU 0 busy exceeds proxy CPU by > 8 points).")
        s, h = summary.get("sluice"), summary.get("haproxy")
        if s and h:
            print()
            print(f"Sluice / HAProxy: throughput **{fmt(ratio(s[0], h[0]))}x**, "
                  f"peak RSS **{fmt(ratio(s[2], h[2]))}x**, "
                  f"CPU {fmt(ratio(s[1], h[1]))}x, "
                  f"Gbit/s per core {fmt(ratio(s[3], h[3]))}x")


def idle(path):
    with open(path) as f:
        res = [json.loads(line) for line in f if line.strip()]
    if not res:
        return
    n, payload = res[0]["connections"], res[0]["payload_bytes"]
    print(f"\n### Idle connections: N = {n}, payload {payload} B each way\n")
    print("| peer | baseline VmRSS MiB | idle: VmRSS MiB | idle B/conn | after c2s B/conn | after both ways B/conn | after close VmRSS MiB | connect s |")
    print("|---|---|---|---|---|---|---|---|")
    mib = lambda b: b / (1 << 20)
    for r in res:
        ph, pc = r["phases"], r["per_conn_bytes"]
        print(f"| {r['peer']} | {mib(ph['baseline']['VmRSS']):.1f} | {mib(ph['idle']['VmRSS']):.1f} | "
              f"{pc['idle']} | {pc['c2s']} | {pc['both']} | {mib(ph['closed']['VmRSS']):.1f} | {r['connect_seconds']} |")
    by = {r["peer"]: r for r in res}
    if "sluice" in by and "haproxy" in by:
        s, h = by["sluice"]["per_conn_bytes"], by["haproxy"]["per_conn_bytes"]
        print()
        print("Sluice / HAProxy per-connection memory: "
              + ", ".join(f"{k} {fmt(ratio(s[k], h[k]))}x" for k in ("idle", "c2s", "both")))


if __name__ == "__main__":
    {"throughput": throughput, "idle": idle}[sys.argv[1]](sys.argv[2])
