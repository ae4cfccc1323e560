#!/usr/bin/env python3
"""A TCP tee that prints each Dubbo frame crossing it, as hex, for the codec's test vectors.

    capture.py LISTEN_PORT UPSTREAM_PORT [SECONDS]

Accepts connections on 127.0.0.1:LISTEN_PORT, relays them to 127.0.0.1:UPSTREAM_PORT, and
prints one line per whole frame: "c>s <hex>" (client to server) or "s>c <hex>". Stops after
SECONDS (default 30). A development tool: the tests use the vectors it printed, not this.
"""
import socket
import sys
import threading
import time


def frames(buf):
    """Whole frames at the front of buf, and what is left."""
    out = []
    while len(buf) >= 16 and buf[0] == 0xDA and buf[1] == 0xBB:
        n = 16 + int.from_bytes(buf[12:16], "big")
        if len(buf) < n:
            break
        out.append(buf[:n])
        buf = buf[n:]
    return out, buf


def pump(src, dst, tag, lock):
    buf = b""
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            data = b""
        if not data:
            break
        dst.sendall(data)
        buf += data
        got, buf = frames(buf)
        with lock:
            for f in got:
                print(tag, f.hex(), flush=True)
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def main():
    listen_port, upstream_port = int(sys.argv[1]), int(sys.argv[2])
    deadline = time.time() + (float(sys.argv[3]) if len(sys.argv) > 3 else 30)
    lock = threading.Lock()
    server = socket.create_server(("127.0.0.1", listen_port))
    server.settimeout(0.5)
    print("ready", flush=True)
    while time.time() < deadline:
        try:
            client, _ = server.accept()
        except socket.timeout:
            continue
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
        for a, b, tag in ((client, upstream, "c>s"), (upstream, client, "s>c")):
            threading.Thread(target=pump, args=(a, b, tag, lock), daemon=True).start()


if __name__ == "__main__":
    main()
