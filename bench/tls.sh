#!/usr/bin/env bash
# TLS termination, Sluice vs nginx in one run, each with one worker pinned to one core
# (PROXY_CPU), the load generator (wrk, OpenSSL) pinned to the other (LOAD_CPU).
#
# Both terminate TLS with the same ECDSA P-256 certificate (examples/certs/gen.sh) and answer
# a fixed 100-byte 200 themselves (Sluice: direct_response; nginx: return), so the figures
# are the cost of TLS and HTTP/1.1, not of an upstream. Loads, peers alternated per repetition:
#   handshake: wrk -c50 with `Connection: close`: a new connection and a full handshake per
#              request (wrk keeps no client session cache, so nothing is resumed);
#   keepalive: wrk -c50 on kept-alive HTTPS connections.
# TLS_VERSION=1.3 (default) or 1.2 chooses what both servers offer.
# Reported per load and peer: median req/s, p50/p99, server CPU per request, peak RSS; then
# the Sluice / nginx ratios.
#
# Usage: bench/tls.sh   (env: SLUICE, DURATION=10, REPS=3, CONNS=50, TLS_VERSION=1.3,
#                        PROXY_CPU=0, LOAD_CPU=1, PORT_BASE=24700; needs nginx, wrk, curl,
#                        openssl, taskset, python3)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SLUICE=${SLUICE:-$REPO/target/release/sluice}
DURATION=${DURATION:-10}
REPS=${REPS:-3}
CONNS=${CONNS:-50}
TLS_VERSION=${TLS_VERSION:-1.3}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT_BASE=${PORT_BASE:-24700}
PORT=$PORT_BASE
ADMIN_PORT=$((PORT_BASE + 1))
OUT=$(mktemp -d /tmp/sluice-tls-bench.XXXXXX)

for t in nginx wrk curl openssl taskset python3; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install -y nginx-light wrk curl openssl util-linux python3)" >&2; exit 1; }
done
[ -x "$SLUICE" ] || { echo "no Sluice binary at $SLUICE (cargo build --release -p sluice)" >&2; exit 1; }
case $TLS_VERSION in
    1.3) NGINX_PROTO=TLSv1.3; SLUICE_TLS="min_version: TLS1_3" ;;
    1.2) NGINX_PROTO=TLSv1.2; SLUICE_TLS="cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]" ;;
    *) echo "TLS_VERSION is 1.2 or 1.3" >&2; exit 1 ;;
esac

PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

bash "$REPO/examples/certs/gen.sh" "$OUT/certs" >/dev/null
BODY=$(head -c 100 /dev/zero | tr '\0' 'x')

cat > "$OUT/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    ssl_protocols $NGINX_PROTO;
    ssl_prefer_server_ciphers off;
    server {
        listen 127.0.0.1:$PORT ssl;
        ssl_certificate $OUT/certs/server.pem;
        ssl_certificate_key $OUT/certs/server.key;
        location / { return 200 "$BODY"; }
    }
}
NGX
cat > "$OUT/sluice.yaml" <<YAML
admin: { address: "127.0.0.1:$ADMIN_PORT" }
workers: 1
listeners:
  - name: tls
    address: "127.0.0.1:$PORT"
    tls:
      certificates: [{ cert_chain: "$OUT/certs/server.pem", private_key: "$OUT/certs/server.key" }]
      alpn: [http/1.1]
      $SLUICE_TLS
    filters:
      - http_proxy:
          routes: [{ match: { prefix: / }, direct_response: { status: 200, body: "$BODY" } }]
YAML

start() { # peer
    case $1 in
        nginx) taskset -c "$PROXY_CPU" nginx -c "$OUT/nginx.conf" -p "$OUT" & ;;
        sluice) taskset -c "$PROXY_CPU" "$SLUICE" run -c "$OUT/sluice.yaml" --log-level warn 2>>"$OUT/sluice.log" & ;;
    esac
    PID=$!
    for _ in $(seq 200); do
        curl -sf --cacert "$OUT/certs/ca.pem" "https://127.0.0.1:$PORT/" >/dev/null && return
        sleep 0.05
    done
    echo "$1 did not come up" >&2; exit 1
}

# CPU ticks of a process and its children (nginx's worker is a child of its master).
cpu_ticks() {
    local total=0 p
    for p in $1 $(pgrep -P "$1" || true); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$total"
}
peak_rss_kib() {
    local total=0 p
    for p in $1 $(pgrep -P "$1" || true); do
        total=$((total + $(awk '/VmHWM/ {print $2}' "/proc/$p/status")))
    done
    echo "$total"
}

run_one() { # peer load rep
    local peer=$1 load=$2 rep=$3 hdr=()
    [ "$load" = handshake ] && hdr=(-H "Connection: close")
    start "$peer"
    local url="https://127.0.0.1:$PORT/"
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s "${hdr[@]}" "$url" >/dev/null
    local t0 t1
    t0=$(cpu_ticks "$PID")
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "${hdr[@]}" "$url" > "$OUT/wrk-$peer-$load-$rep.txt"
    t1=$(cpu_ticks "$PID")
    echo "$peer $load $rep $((t1 - t0)) $(peak_rss_kib "$PID")" >> "$OUT/cpu.txt"
    kill -TERM "$PID"; wait "$PID" 2>/dev/null || true
    PID=
}

for rep in $(seq "$REPS"); do
    if (( rep % 2 )); then peers="sluice nginx"; else peers="nginx sluice"; fi
    for load in handshake keepalive; do
        for peer in $peers; do
            echo "rep $rep: $load $peer" >&2
            run_one "$peer" "$load" "$rep"
        done
    done
done

python3 - "$OUT" "$(getconf CLK_TCK)" "$TLS_VERSION" <<'PY'
import re, statistics, sys, pathlib
out, hz, version = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
cpu, rss = {}, {}
for line in (out / "cpu.txt").read_text().split("\n"):
    if line:
        p, l, r, t, m = line.split()
        cpu[(p, l, r)] = int(t) / hz
        rss[(p, l, r)] = int(m)
def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
def parse(path):
    s = path.read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", s).group(1))
    reqs = int(re.search(r"(\d+) requests in", s).group(1))
    p50 = ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", s).groups())
    p99 = ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", s).groups())
    errs = re.search(r"Non-2xx or 3xx responses: \d+|Socket errors: .*", s)
    return rps, p50, p99, reqs, errs.group(0) if errs else ""
rows = {}
for path in sorted(out.glob("wrk-*.txt")):
    _, peer, load, rep = path.stem.split("-")
    rps, p50, p99, reqs, errs = parse(path)
    rows.setdefault((load, peer), []).append(
        (rps, p50, p99, cpu[(peer, load, rep)] / reqs * 1e6, rss[(peer, load, rep)] / 1024, errs))
print(f"TLS {version}, one core per server, {len(next(iter(rows.values())))} repetitions (medians)\n")
print("| load | server | req/s | p50 ms | p99 ms | CPU us/req | peak RSS MiB | errors |")
print("|---|---|---|---|---|---|---|---|")
med = {}
for (load, peer), rs in sorted(rows.items()):
    m = tuple(statistics.median(r[i] for r in rs) for i in range(5))
    med[(load, peer)] = m
    errs = "; ".join(sorted({r[5] for r in rs if r[5]})) or "none"
    print(f"| {load} | {peer} | {m[0]:.0f} | {m[1]:.2f} | {m[2]:.2f} | {m[3]:.0f} | {m[4]:.1f} | {errs} |")
print()
for load in ("handshake", "keepalive"):
    a, b = med.get((load, "sluice")), med.get((load, "nginx"))
    if a and b:
        print(f"{load}: Sluice / nginx: req/s {a[0]/b[0]:.2f}x, p50 {a[1]/b[1]:.2f}x, p99 {a[2]/b[2]:.2f}x, CPU per request {a[3]/b[3]:.2f}x, RSS {a[4]/b[4]:.2f}x")
PY
echo "raw results: $OUT" >&2
