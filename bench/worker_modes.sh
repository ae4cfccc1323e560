#!/usr/bin/env bash
# Sluice worker modes side by side: `work_stealing` (one multi-thread runtime) vs `per_core`
# (one current-thread runtime and one SO_REUSEPORT socket per worker), both with WORKERS
# workers, on the same L4 path: wrk -> Sluice tcp_proxy -> nginx (1 worker, 100-byte 200).
#
# Two loads per mode, modes alternated per repetition:
#   keepalive: wrk -t2 -c100, many small request/response exchanges on long-lived connections
#              (where cross-thread wakeups and work stealing matter);
#   churn:     the same with `Connection: close`, one TCP connection per request
#              (where the spreading of accepts across workers matters);
#   streams:   two long bulk streams (iperf3 -P 2, to an iperf3 upstream): few heavy
#              connections, where per_core depends on the kernel's hash putting them on
#              different workers and work stealing can rebalance.
# Reported: median req/s, median p99 latency, Sluice CPU seconds per 100k requests, and the
# per_core / work_stealing ratios. Nothing is pinned: on a 2-core machine the load generator,
# nginx and Sluice share both cores, so read ratios, not absolute numbers.
#
# Usage: bench/worker_modes.sh   (env: SLUICE, DURATION=10, REPS=3 (streams: 2 x REPS),
#                                 WORKERS=2, CONNS=100, PORT_BASE=24600;
#                                 needs nginx, wrk, iperf3, curl, python3)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SLUICE=${SLUICE:-$REPO/target/release/sluice}
DURATION=${DURATION:-10}
REPS=${REPS:-3}
WORKERS=${WORKERS:-2}
CONNS=${CONNS:-100}
PORT_BASE=${PORT_BASE:-24600}
UP_PORT=$PORT_BASE
PX_PORT=$((PORT_BASE + 1))
ADMIN_PORT=$((PORT_BASE + 2))
IPERF_PORT=$((PORT_BASE + 3))
OUT=$(mktemp -d /tmp/sluice-worker-modes.XXXXXX)

for t in nginx wrk iperf3 curl python3; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install -y nginx-light wrk curl python3)" >&2; exit 1; }
done
[ -x "$SLUICE" ] || { echo "no Sluice binary at $SLUICE (cargo build --release -p sluice)" >&2; exit 1; }

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

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
    server { listen 127.0.0.1:$UP_PORT reuseport; location / { return 200 "$BODY"; } }
}
NGX
nginx -c "$OUT/nginx.conf" -p "$OUT" &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$UP_PORT/" >/dev/null && break; sleep 0.05; done
iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do ss -ltn "sport = :$IPERF_PORT" | grep -q LISTEN && break; sleep 0.05; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_one() { # mode load rep
    local mode=$1 load=$2 rep=$3
    local up=$UP_PORT
    [ "$load" = streams ] && up=$IPERF_PORT
    cat > "$OUT/sluice-$mode.yaml" <<YAML
admin: { address: "127.0.0.1:$ADMIN_PORT" }
workers: $WORKERS
worker_mode: $mode
listeners:
  - name: tcp
    address: "127.0.0.1:$PX_PORT"
    filters: [{ tcp_proxy: { cluster: up } }]
clusters:
  - name: up
    endpoints: [{ address: "127.0.0.1:$up" }]
YAML
    "$SLUICE" run -c "$OUT/sluice-$mode.yaml" --log-level warn 2>>"$OUT/sluice.log" &
    local pid=$!
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null && break; sleep 0.05; done
    local t0 t1
    if [ "$load" = streams ]; then
        t0=$(cpu_ticks "$pid")
        timeout $((DURATION + 20)) iperf3 -c 127.0.0.1 -p "$PX_PORT" -P 2 -t "$DURATION" -J > "$OUT/iperf-$mode-$load-$rep.json"
        t1=$(cpu_ticks "$pid")
    else
        local hdr=()
        [ "$load" = churn ] && hdr=(-H "Connection: close")
        wrk -t2 -c"$CONNS" -d2s "${hdr[@]}" "http://127.0.0.1:$PX_PORT/" >/dev/null
        t0=$(cpu_ticks "$pid")
        wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "${hdr[@]}" "http://127.0.0.1:$PX_PORT/" > "$OUT/wrk-$mode-$load-$rep.txt"
        t1=$(cpu_ticks "$pid")
    fi
    kill -TERM "$pid"; wait "$pid" || true
    echo "$mode $load $rep $((t1 - t0))" >> "$OUT/cpu.txt"
}

for rep in $(seq "$REPS"); do
    if (( rep % 2 )); then modes="work_stealing per_core"; else modes="per_core work_stealing"; fi
    for load in keepalive churn; do
        for mode in $modes; do
            echo "rep $rep: $load $mode" >&2
            run_one "$mode" "$load" "$rep"
        done
    done
    # Bulk streams vary more (where the two connections land is luck): twice the samples.
    for sub in a b; do
        for mode in $modes; do
            echo "rep $rep$sub: streams $mode" >&2
            run_one "$mode" streams "$rep$sub"
        done
    done
done

python3 - "$OUT" "$(getconf CLK_TCK)" <<'PY'
import re, statistics, sys, pathlib
out, hz = pathlib.Path(sys.argv[1]), int(sys.argv[2])
cpu = {}
for line in (out / "cpu.txt").read_text().split("\n"):
    if line:
        m, l, r, t = line.split()
        cpu[(m, l, r)] = int(t) / hz
def parse(p):
    s = p.read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", s).group(1))
    reqs = int(re.search(r"(\d+) requests in", s).group(1))
    v, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", s).groups()
    p99 = float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", s)
    return rps, p99, reqs, errs.group(0) if errs else ""
rows = {}
for p in sorted(out.glob("wrk-*.txt")):
    _, mode, load, rep = p.stem.split("-")
    rps, p99, reqs, errs = parse(p)
    rows.setdefault((load, mode), []).append((rps, p99, cpu[(mode, load, rep)] / reqs * 1e5, errs))
print(f"| load | mode | req/s (median) | p99 ms (median) | Sluice CPU s / 100k req | errors |")
print("|---|---|---|---|---|---|")
med = {}
for (load, mode), rs in sorted(rows.items()):
    m = tuple(statistics.median(r[i] for r in rs) for i in range(3))
    med[(load, mode)] = m
    errs = "; ".join(sorted({r[3] for r in rs if r[3]})) or "none"
    print(f"| {load} | {mode} | {m[0]:.0f} | {m[1]:.2f} | {m[2]:.2f} | {errs} |")
import json
streams = {}
for p in sorted(out.glob("iperf-*.json")):
    _, mode, load, rep = p.stem.split("-")
    bps = json.loads(p.read_text())["end"]["sum_received"]["bits_per_second"]
    gb = bps * 1e-9
    streams.setdefault(mode, []).append((gb, cpu[(mode, load, rep)]))
if streams:
    print()
    print("| load | mode | runs (Gbit/s) | median Gbit/s | Sluice CPU s (median) |")
    print("|---|---|---|---|---|")
    for mode, rs in sorted(streams.items()):
        runs = ", ".join(f"{g:.2f}" for g, _ in rs)
        print(f"| streams | {mode} | {runs} | {statistics.median(g for g, _ in rs):.2f} | {statistics.median(c for _, c in rs):.1f} |")
print()
if "per_core" in streams and "work_stealing" in streams:
    a = statistics.median(g for g, _ in streams["per_core"])
    b = statistics.median(g for g, _ in streams["work_stealing"])
    print(f"streams: per_core / work_stealing: Gbit/s {a/b:.2f}x (median); min {min(g for g, _ in streams['per_core']):.2f} vs {min(g for g, _ in streams['work_stealing']):.2f}")
for load in ("keepalive", "churn"):
    a, b = med.get((load, "per_core")), med.get((load, "work_stealing"))
    if a and b:
        print(f"{load}: per_core / work_stealing: req/s {a[0]/b[0]:.2f}x, p99 {a[1]/b[1]:.2f}x, CPU per request {a[2]/b[2]:.2f}x")
PY
echo "raw results: $OUT" >&2
