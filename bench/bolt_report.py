#!/usr/bin/env python3
"""Turns bench/bolt.sh's runs.tsv into Markdown tables: per load shape and peer, the medians of
req/s, p50/p99 latency and proxy CPU, req/s per proxy core, RSS, and the ratios between peers.

Usage: bolt_report.py runs.tsv [peer=idle_rss_kb ...]
"""

import statistics
import sys


def num(s):
    try:
        return float(s)
    except ValueError:
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=0):
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def main():
    path = sys.argv[1]
    idle = dict(arg.split("=", 1) for arg in sys.argv[2:])
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            shape, peer, rep, rps, p50, p99, errors, cpu, rss, hwm, cpu0, cpu1, syscalls = line.rstrip("\n").split("\t")
            rows.append(dict(shape=shape, peer=peer, rep=int(rep), rps=num(rps), p50=num(p50), p99=num(p99),
                             errors=num(errors), cpu=num(cpu), rss=num(rss), hwm=num(hwm), cpu0=num(cpu0),
                             cpu1=num(cpu1), syscalls=num(syscalls)))
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    peers = list(dict.fromkeys(r["peer"] for r in rows))
    out = []
    for shape in shapes:
        conns, inflight = shape.split("x")
        out.append("")
        out.append(f"### {conns} connection(s) x {inflight} call(s) in flight each")
        out.append("")
        out.append("| peer | runs (req/s) | median req/s | p50 us | p99 us | proxy CPU % | req/s per proxy core | proxy syscalls per call | CPU0 / CPU1 busy % | VmRSS after MiB | peak RSS (VmHWM) MiB |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        summary = {}
        for peer in peers:
            rs = [r for r in rows if r["shape"] == shape and r["peer"] == peer]
            if not rs:
                continue
            m = dict(
                rps=med([r["rps"] for r in rs]),
                p50=med([r["p50"] for r in rs]),
                p99=med([r["p99"] for r in rs]),
                cpu=med([r["cpu"] for r in rs]),
                per_core=med([r["rps"] / (r["cpu"] / 100) if r["cpu"] else None for r in rs]),
                rss=max((r["rss"] for r in rs if r["rss"] is not None), default=None),
                hwm=max((r["hwm"] for r in rs if r["hwm"] is not None), default=None),
                cpu0=med([r["cpu0"] for r in rs]),
                cpu1=med([r["cpu1"] for r in rs]),
                syscalls=med([r["syscalls"] for r in rs]),
            )
            summary[peer] = m
            runs = ", ".join(fmt(r["rps"]) for r in sorted(rs, key=lambda r: r["rep"]))
            mib = lambda kb: None if kb is None else kb / 1024
            out.append(
                f"| {peer} | {runs} | {fmt(m['rps'])} | {fmt(m['p50'])} | {fmt(m['p99'])} | {fmt(m['cpu'], 1)} | "
                f"{fmt(m['per_core'])} | {fmt(m['syscalls'], 2)} | {fmt(m['cpu0'])} / {fmt(m['cpu1'])} | {fmt(mib(m['rss']), 1)} | {fmt(mib(m['hwm']), 1)} |"
            )
        out.append("")
        s, d, mo = summary.get("sluice"), summary.get("direct"), summary.get("mosn")
        if s and mo:
            out.append(
                f"Sluice / MOSN: req/s **{ratio(s['rps'], mo['rps'])}**, req/s per proxy core "
                f"**{ratio(s['per_core'], mo['per_core'])}**, p50 {ratio(s['p50'], mo['p50'])}, "
                f"p99 **{ratio(s['p99'], mo['p99'])}**, peak RSS {ratio(s['hwm'], mo['hwm'])}"
            )
        if s and d:
            out.append("")
            out.append(f"Sluice / direct: req/s {ratio(s['rps'], d['rps'])}, p99 {ratio(s['p99'], d['p99'])}")
        if mo and d:
            out.append("")
            out.append(f"MOSN / direct: req/s {ratio(mo['rps'], d['rps'])}, p99 {ratio(mo['p99'], d['p99'])}")
    if idle:
        out.append("")
        out.append("RSS at start (no connection): " + ", ".join(
            f"{peer} {int(kb) / 1024:.1f} MiB" for peer, kb in idle.items()))
    print("\n".join(out))


if __name__ == "__main__":
    main()
