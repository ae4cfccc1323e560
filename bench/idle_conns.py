#!/usr/bin/env python3
"""Idle-connection memory of a TCP proxy.

Runs an upstream "holder" (accepts connections and keeps them open) and N clients in one
asyncio process. The clients connect through the proxy under test; the proxy's memory
(/proc/PID/status) is sampled at each phase:

  baseline   proxy running, no connections
  idle       N connections open through the proxy, no byte sent yet
  c2s        after each client sent PAYLOAD bytes (upstream got them all)
  both       after the upstream also replied PAYLOAD bytes on each (clients got them all)
  closed     after every connection was closed and the proxy's fd count dropped back

Per-connection figures are (VmRSS(phase) - VmRSS(baseline)) / N. Prints one JSON object.

Usage: idle_conns.py --pid PID --connect HOST:PORT --listen HOST:PORT [-n 5000]
The proxy at --connect must forward to --listen. Every wait is bounded by --timeout.
"""

import argparse
import asyncio
import json
import os
import resource
import sys
import time


def proc_status(pid):
    """VmRSS, VmHWM, RssAnon of a process, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def parse_addr(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


class Holder:
    """Upstream that accepts connections, collects what they send, and can reply."""

    def __init__(self):
        self.conns = []  # (reader, writer)
        self.accepted = asyncio.Event()
        self.want = 0

    async def on_conn(self, reader, writer):
        self.conns.append((reader, writer))
        if len(self.conns) >= self.want:
            self.accepted.set()


async def wait_for(what, fut, deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(what)
    try:
        return await asyncio.wait_for(fut, left)
    except asyncio.TimeoutError:
        raise TimeoutError(what) from None


async def settle_and_sample(pid, settle):
    # Give the proxy a moment to finish bookkeeping for the last events before sampling.
    await asyncio.sleep(settle)
    return proc_status(pid)


async def main(args):
    pid, n, payload = args.pid, args.n, b"x" * args.payload
    deadline = time.monotonic() + args.timeout
    phases = {}

    holder = Holder()
    holder.want = n
    lhost, lport = parse_addr(args.listen)
    server = await asyncio.start_server(holder.on_conn, lhost, lport, backlog=4096)

    base_fds = fd_count(pid)
    phases["baseline"] = await settle_and_sample(pid, args.settle)

    # 1. Open N connections through the proxy, a bounded number at a time.
    chost, cport = parse_addr(args.connect)
    sem = asyncio.Semaphore(args.concurrency)

    async def connect_one():
        async with sem:
            return await asyncio.open_connection(chost, cport)

    t0 = time.monotonic()
    clients = await wait_for("connect", asyncio.gather(*(connect_one() for _ in range(n))), deadline)
    await wait_for("upstream accepts", holder.accepted.wait(), deadline)
    connect_secs = time.monotonic() - t0
    phases["idle"] = await settle_and_sample(pid, args.settle)
    idle_fds = fd_count(pid)

    # 2. Each client sends PAYLOAD bytes; wait until the upstream has all of them.
    for _, w in clients:
        w.write(payload)
    await wait_for("client drain", asyncio.gather(*(w.drain() for _, w in clients)), deadline)
    await wait_for(
        "upstream reads",
        asyncio.gather(*(r.readexactly(len(payload)) for r, _ in holder.conns)),
        deadline,
    )
    phases["c2s"] = await settle_and_sample(pid, args.settle)

    # 3. The upstream replies PAYLOAD bytes on each; wait until every client has them.
    for _, w in holder.conns:
        w.write(payload)
    await wait_for("holder drain", asyncio.gather(*(w.drain() for _, w in holder.conns)), deadline)
    await wait_for(
        "client reads",
        asyncio.gather(*(r.readexactly(len(payload)) for r, _ in clients)),
        deadline,
    )
    phases["both"] = await settle_and_sample(pid, args.settle)

    # 4. Close everything; wait (bounded) until the proxy has closed its sockets too.
    for _, w in clients:
        w.close()
    for _, w in holder.conns:
        w.close()
    server.close()
    while fd_count(pid) > base_fds + 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    phases["closed"] = await settle_and_sample(pid, args.settle)

    base = phases["baseline"]["VmRSS"]
    result = {
        "pid": pid,
        "connections": n,
        "payload_bytes": len(payload),
        "connect_seconds": round(connect_secs, 3),
        "proxy_fds": {"baseline": base_fds, "idle": idle_fds},
        "phases": phases,
        "per_conn_bytes": {
            k: round((v["VmRSS"] - base) / n) for k, v in phases.items() if k != "baseline"
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pid", type=int, required=True, help="proxy process to measure")
    p.add_argument("--connect", required=True, help="proxy listener HOST:PORT")
    p.add_argument("--listen", required=True, help="where the holder listens (proxy upstream)")
    p.add_argument("-n", type=int, default=5000, help="connections (default 5000)")
    p.add_argument("--payload", type=int, default=64, help="bytes sent each way (default 64)")
    p.add_argument("--concurrency", type=int, default=256, help="connects in flight")
    p.add_argument("--settle", type=float, default=0.5, help="seconds before each sample")
    p.add_argument("--timeout", type=float, default=120, help="overall time limit, seconds")
    args = p.parse_args()

    # Client + holder sides: 2 fds per connection, plus slack.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * args.n + 256
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.exit(f"idle_conns.py: need {need} fds, hard limit is {hard} (raise ulimit -Hn)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    try:
        asyncio.run(main(args))
    except TimeoutError as e:
        sys.exit(f"idle_conns.py: timed out waiting for: {e}")
