#!/usr/bin/env python3
"""Memory per idle HTTP/1.1 keep-alive connection of an HTTP proxy.

Opens N client connections to the proxy, sends one GET on each and reads the whole response
(Content-Length framed), then leaves them open and idle, and reports the growth of the
proxy's resident memory (/proc/PID/status VmRSS) per connection. This is the state a
sidecar spends most of its connections in.

Usage: idle_http.py --pid PID --connect HOST:PORT [-n 2000] [--path /]
Prints one JSON object. Every read is bounded by --timeout seconds.
"""

import argparse
import json
import resource
import socket
import time


def vm_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def read_response(sock):
    """Reads one Content-Length framed response; returns its status code."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("closed mid-body")
        body += chunk
    return int(lines[0].split()[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--connect", required=True, help="HOST:PORT of the proxy")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--path", default="/")
    ap.add_argument("--timeout", type=float, default=10)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.n + 100), hard))
    host, _, port = a.connect.rpartition(":")
    baseline = vm_rss(a.pid)
    socks = []
    request = f"GET {a.path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    for _ in range(a.n):
        s = socket.create_connection((host, int(port)), timeout=a.timeout)
        s.sendall(request)
        status = read_response(s)
        if status != 200:
            raise SystemExit(f"got status {status}")
        socks.append(s)
    time.sleep(0.5)  # let the proxy settle after the last response; not a readiness check
    idle = vm_rss(a.pid)
    print(json.dumps({
        "connections": a.n,
        "rss_baseline_kib": baseline // 1024,
        "rss_idle_kib": idle // 1024,
        "bytes_per_idle_connection": (idle - baseline) // a.n,
    }))
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
