#!/usr/bin/env bash
# Bolt (SOFARPC) echo through Sluice's rpc_proxy vs direct, and vs MOSN when PEER_MOSN names a
# MOSN binary (skipped otherwise), on loopback, in one run.
#
# An echo server (bench/bolt-load `server`) is pinned to CPU 1; each proxy is pinned to CPU 0
# with one worker (Sluice `workers: 1`; MOSN GOMAXPROCS=1); the load generator (bench/bolt-load
# `load`) is pinned to CPU 1 and keeps INFLIGHT calls in flight on each of CONNS connections,
# checking every response. For each load shape in SHAPES ("CONNSxINFLIGHT") and REPS
# repetitions (peer order alternating), it reports req/s, p50/p99 latency, the proxy's CPU
# (utime+stime), req/s per proxy core, its RSS (VmRSS/VmHWM), and ratios between the peers.
#
# Before measuring, the load generator and echo server are checked against sofa-rpc-node
# (tests/bolt, `npm ci` there first): bolt-load must get correct answers from the Node server,
# and the Node client from the echo server, directly and through each proxy. Any failure stops
# the run (CHECK=0 skips this; --check-only runs only this).
#
# Usage: bench/bolt.sh [--duration S] [--warmup S] [--reps N] [--shapes "8x32 1x1"]
#                      [--payload BYTES] [--sluice PATH] [--mosn PATH] [--load PATH]
#                      [--out DIR] [--check-only]
# Environment: DURATION (10) WARMUP (2) REPS (3) SHAPES ("8x32 1x1") PAYLOAD (32) SLUICE
# (target/release/sluice) PEER_MOSN (unset: no MOSN) BOLT_LOAD (bench/bolt-load's release
# binary) MOSN_VERSION (a label for the report) OUT CHECK (1) NICE (0; e.g. -10 raises the priority of every benchmark process on a
# shared machine, root only) PORT_BASE (24700; 8 consecutive loopback ports).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
REPS=${REPS:-3}
SHAPES=${SHAPES:-8x32 1x1}
PAYLOAD=${PAYLOAD:-32}
SLUICE=${SLUICE:-$REPO/target/release/sluice}
PEER_MOSN=${PEER_MOSN:-}
BOLT_LOAD=${BOLT_LOAD:-${CARGO_TARGET_DIR:-$HERE/bolt-load/target}/release/bolt-load}
CHECK=${CHECK:-1}
NICE=${NICE:-0}
PORT_BASE=${PORT_BASE:-24700}
OUT=${OUT:-}
RUN_BENCH=1

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --shapes) SHAPES=$2; shift 2 ;;
        --payload) PAYLOAD=$2; shift 2 ;;
        --sluice) SLUICE=$2; shift 2 ;;
        --mosn) PEER_MOSN=$2; shift 2 ;;
        --load) BOLT_LOAD=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --check-only) CHECK=1; RUN_BENCH=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "unknown option: $1" >&2; usage 2 >&2 ;;
    esac
done

P_SLUICE=$PORT_BASE
P_ADMIN=$((PORT_BASE + 1))
P_MOSN=$((PORT_BASE + 2))
P_MOSN_ADMIN=$((PORT_BASE + 3))
P_ECHO=$((PORT_BASE + 4))
P_NODE=$((PORT_BASE + 5))

die() { echo "bolt.sh: $*" >&2; exit 1; }

for tool in taskset curl ss python3; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install -y curl iproute2 util-linux python3)"
done
[[ -x $SLUICE ]] || die "no Sluice binary at $SLUICE (cargo build --release -p sluice, or set SLUICE=)"
[[ -x $BOLT_LOAD ]] || die "no bolt-load binary at $BOLT_LOAD (cargo build --release --manifest-path bench/bolt-load/Cargo.toml, or set BOLT_LOAD=)"
[[ -z $PEER_MOSN || -x $PEER_MOSN ]] || die "PEER_MOSN=$PEER_MOSN is not an executable"
[[ $(nproc) -ge 2 ]] || die "needs at least 2 CPUs (proxy on CPU 0, load and echo server on CPU 1)"
if [[ $CHECK == 1 ]]; then
    command -v node >/dev/null || die "the sofa-rpc-node check needs node (or set CHECK=0)"
    [[ -d $REPO/tests/bolt/node_modules/sofa-rpc-node ]] \
        || die "the sofa-rpc-node check needs tests/bolt/node_modules: (cd tests/bolt && npm ci), or set CHECK=0"
fi

if [[ -z $OUT ]]; then OUT=$(mktemp -d /tmp/sluice-bolt-bench.XXXXXX); fi
mkdir -p "$OUT"
CLK_TCK=$(getconf CLK_TCK)

# --- process bookkeeping: everything started here is stopped on exit ----------------------
PIDS=()
stop_pid() {
    local pid=$1 i
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    local rest=() p
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || rest+=("$p"); done
    PIDS=("${rest[@]}")
}
cleanup() { local pid; for pid in "${PIDS[@]}"; do stop_pid "$pid"; done; }
# Runs a bounded command in the background and waits for it, so a signal to this script is
# handled at once and stops it too.
run_waited() {
    "$@" &
    local pid=$! rc=0
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    stop_pid "$pid"
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { [[ -z $(ss -Hltn "sport = :$1") ]]; }
for p in "$P_SLUICE" "$P_ADMIN" "$P_MOSN" "$P_MOSN_ADMIN" "$P_ECHO" "$P_NODE"; do
    port_free "$p" || die "port $p is in use (set PORT_BASE to another range)"
done

# Bounded wait until something listens on a port (without connecting to it).
wait_listen() {
    local port=$1 pid=$2 name=$3 i
    for i in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during start-up; see $OUT/$name.log"
        [[ -n $(ss -Hltn "sport = :$port") ]] && return 0
        sleep 0.1
    done
    die "$name not listening on $port after 15s; see $OUT/$name.log"
}

# --- peers ------------------------------------------------------------------------------
SLUICE_PID= MOSN_PID= ECHO_PID=

start_echo() {
    nice -n "$NICE" taskset -c 1 "$BOLT_LOAD" server --listen "127.0.0.1:$P_ECHO" --tag bench >"$OUT/echo.log" 2>&1 &
    ECHO_PID=$!
    PIDS+=("$ECHO_PID")
    wait_listen "$P_ECHO" "$ECHO_PID" echo
}

start_sluice() {
    cat >"$OUT/sluice.yaml" <<EOF
admin: { address: 127.0.0.1:$P_ADMIN }
workers: 1
drain_timeout: 1s
listeners:
  - name: bolt
    address: 127.0.0.1:$P_SLUICE
    filters:
      - rpc_proxy:
          protocol: bolt
          route_config: rpc
route_configs:
  - name: rpc
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes:
          - match: { headers: [{ name: service, exact: "com.example.Echo:1.0" }] }
            route: { cluster: echo }
clusters:
  - name: echo
    endpoints: [{ address: 127.0.0.1:$P_ECHO }]
    # The default (1024 calls in flight) would turn the larger shapes' calls into overflow
    # replies; MOSN's default is no limit.
    circuit_breakers: { max_requests: 1000000 }
EOF
    "$SLUICE" check -c "$OUT/sluice.yaml" >/dev/null || die "sluice check failed on $OUT/sluice.yaml"
    nice -n "$NICE" taskset -c 0 "$SLUICE" run -c "$OUT/sluice.yaml" --log-level warn >"$OUT/sluice.log" 2>&1 &
    SLUICE_PID=$!
    PIDS+=("$SLUICE_PID")
    local i
    for i in $(seq 100); do
        kill -0 "$SLUICE_PID" 2>/dev/null || die "sluice exited during start-up; see $OUT/sluice.log"
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$P_ADMIN/ready") == 200 ]] && return 0
        sleep 0.1
    done
    die "sluice /ready not 200 after 10s; see $OUT/sluice.log"
}

# MOSN's bolt proxy: a `proxy` network filter speaking bolt both ways, routed on the `service`
# header to a one-host cluster (MOSN multiplexes bolt calls over one connection per host, as
# Sluice does). Logs at ERROR only, into $OUT.
start_mosn() {
    cat >"$OUT/mosn.json" <<EOF
{
  "disable_upgrade": true,
  "servers": [{
    "default_log_path": "$OUT/mosn-default.log",
    "default_log_level": "ERROR",
    "routers": [{
      "router_config_name": "rpc",
      "virtual_hosts": [{
        "name": "all",
        "domains": ["*"],
        "routers": [{
          "match": {"headers": [{"name": "service", "value": "com.example.Echo:1.0"}]},
          "route": {"cluster_name": "echo"}
        }]
      }]
    }],
    "listeners": [{
      "name": "bolt",
      "address": "127.0.0.1:$P_MOSN",
      "bind_port": true,
      "filter_chains": [{
        "filters": [{
          "type": "proxy",
          "config": {"downstream_protocol": "bolt", "upstream_protocol": "bolt", "router_config_name": "rpc"}
        }]
      }]
    }]
  }],
  "cluster_manager": {
    "clusters": [{
      "name": "echo",
      "type": "SIMPLE",
      "lb_type": "LB_RANDOM",
      "hosts": [{"address": "127.0.0.1:$P_ECHO"}]
    }]
  },
  "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $P_MOSN_ADMIN}}}
}
EOF
    GOMAXPROCS=1 nice -n "$NICE" taskset -c 0 "$PEER_MOSN" start -c "$OUT/mosn.json" >"$OUT/mosn.log" 2>&1 &
    MOSN_PID=$!
    PIDS+=("$MOSN_PID")
    wait_listen "$P_MOSN" "$MOSN_PID" mosn
}

peer_pid() { case $1 in sluice) echo "$SLUICE_PID" ;; mosn) echo "$MOSN_PID" ;; *) echo "" ;; esac; }
peer_port() { case $1 in sluice) echo "$P_SLUICE" ;; mosn) echo "$P_MOSN" ;; direct) echo "$P_ECHO" ;; esac; }
cpu_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# utime+stime of a process and all its threads.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# --- header -----------------------------------------------------------------------------
{
    echo "# Sluice Bolt benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
    echo "- sluice: $SLUICE, repo HEAD $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
    if [[ -n $PEER_MOSN ]]; then
        echo "- mosn: $PEER_MOSN (${MOSN_VERSION:-version not given: set MOSN_VERSION to label it}), GOMAXPROCS=1"
    else
        echo "- mosn: skipped (PEER_MOSN not set)"
    fi
    echo "- load: $BOLT_LOAD; shapes '$SHAPES' (connections x calls in flight each), payload $PAYLOAD B, warmup ${WARMUP}s + ${DURATION}s, reps $REPS, nice $NICE"
    echo "- raw results: $OUT"
} | tee "$OUT/summary.md"

start_echo
start_sluice
[[ -n $PEER_MOSN ]] && start_mosn
proxies=(sluice)
[[ -n $PEER_MOSN ]] && proxies+=(mosn)
# Ready means answering: one checked call through each proxy (a listening port is not enough
# for MOSN, whose routes and cluster come up after its listener).
for peer in "${proxies[@]}"; do
    answered=0
    for i in $(seq 50); do
        if "$BOLT_LOAD" load --address "127.0.0.1:$(peer_port "$peer")" --requests 1 --connections 1 \
            --inflight 1 --stall 2 >"$OUT/ready-$peer.json" 2>"$OUT/ready-$peer.err"; then
            answered=1
            break
        fi
        sleep 0.2
    done
    [[ $answered == 1 ]] || die "$peer does not answer a Bolt call after 10s; see $OUT/ready-$peer.err and $OUT/$peer.log"
done
echo "peers up: echo $ECHO_PID, sluice $SLUICE_PID${MOSN_PID:+, mosn $MOSN_PID}"
IDLE_RSS=()
for peer in "${proxies[@]}"; do IDLE_RSS+=("$peer=$(status_kb "$(peer_pid "$peer")" VmRSS)"); done

# --- correctness against sofa-rpc-node ---------------------------------------------------
if [[ $CHECK == 1 ]]; then
    NODE_DIR=$REPO/tests/bolt
    node "$NODE_DIR/server.js" --port "$P_NODE" --tag node >"$OUT/node-server.log" 2>&1 &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    for i in $(seq 150); do
        kill -0 "$NODE_PID" 2>/dev/null || die "the sofa-rpc-node server exited; see $OUT/node-server.log"
        grep -q '^ready' "$OUT/node-server.log" && break
        sleep 0.1
    done
    grep -q '^ready' "$OUT/node-server.log" || die "the sofa-rpc-node server not ready after 15s"

    # bolt-load -> the Node server: every response checked (id, status, "node:" + argument).
    check_load() { # name, then bolt-load load arguments
        local name=$1; shift
        if ! run_waited timeout 120 "$BOLT_LOAD" load --address "127.0.0.1:$P_NODE" --tag node "$@" \
            >"$OUT/check-$name.json" 2>"$OUT/check-$name.err"; then
            cat "$OUT/check-$name.err" >&2
            die "CHECK FAILED: bolt-load against the sofa-rpc-node server ($name); see $OUT/check-$name.*"
        fi
        echo "check: bolt-load -> sofa-rpc-node server ($name): $(tail -1 "$OUT/check-$name.err" | sed 's/^bolt-load: //')"
    }
    check_load v1 --requests 3000 --connections 4 --inflight 16
    check_load v2-crc --requests 1000 --connections 2 --inflight 8 --bolt 2 --crc --payload 3000
    check_load v2-long --requests 200 --connections 1 --inflight 4 --bolt 2 --payload 70000

    # The Node client -> the echo server (and through each proxy to it).
    check_client() { # name, address, then client.js arguments
        local name=$1 address=$2; shift 2
        local out="$OUT/check-client-$name.json"
        run_waited timeout 120 node "$NODE_DIR/client.js" --address "$address" "$@" >"$out" 2>"$OUT/check-client-$name.err" \
            || die "CHECK FAILED: the sofa-rpc-node client ($name) exited with an error; see $OUT/check-client-$name.err"
        python3 - "$out" "$@" <<'PY' || die "CHECK FAILED: the sofa-rpc-node client ($name) got wrong answers; see $out"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
args = sys.argv[2:]
if "--heartbeat" in args:
    ok = r.get("heartbeat") == "answered"
else:
    n = int(args[args.index("--count") + 1])
    ok = r["ok"] == n and r["errors"] == 0 and r["mismatched"] == 0 and r["tags"] == {"bench": n}
if not ok:
    print("unexpected result:", json.dumps(r)[:500], file=sys.stderr)
sys.exit(0 if ok else 1)
PY
        echo "check: sofa-rpc-node client -> $name: $(head -c 120 "$out")"
    }
    LONG_ARG=$(python3 -c 'print("y" * 3000)')
    check_client echo-v1 "127.0.0.1:$P_ECHO" --count 2000 --concurrency 50
    check_client echo-v2-crc "127.0.0.1:$P_ECHO" --count 500 --concurrency 20 --bolt 2 --crc
    check_client echo-long "127.0.0.1:$P_ECHO" --count 100 --concurrency 10 --arg "$LONG_ARG"
    check_client echo-heartbeat "127.0.0.1:$P_ECHO" --heartbeat
    for peer in "${proxies[@]}"; do
        check_client "$peer-to-echo" "127.0.0.1:$(peer_port "$peer")" --count 1000 --concurrency 50
    done
    stop_pid "$NODE_PID"
    echo "check: all passed" | tee -a "$OUT/summary.md"
fi
[[ $RUN_BENCH == 1 ]] || exit 0

# --- the load ---------------------------------------------------------------------------
# Syscalls per call of the proxy (perf's syscall tracepoint): a figure the machine's noise
# barely moves, unlike req/s and latency. Skipped where perf cannot count it.
PERF_OK=0
if command -v perf >/dev/null && perf stat -x, -e raw_syscalls:sys_enter -o /dev/null -- true >/dev/null 2>&1; then
    PERF_OK=1
fi
peers=(direct "${proxies[@]}")
printf '# shape\tpeer\trep\trps\tp50_us\tp99_us\terrors\tproxy_cpu%%\trss_kb\thwm_kb\tcpu0_busy%%\tcpu1_busy%%\tsyscalls_per_call\n' | tee "$OUT/runs.tsv"
for shape in $SHAPES; do
    conns=${shape%x*} inflight=${shape#*x}
    [[ $conns =~ ^[0-9]+$ && $inflight =~ ^[0-9]+$ ]] || die "a shape is CONNSxINFLIGHT, got $shape"
    for rep in $(seq "$REPS"); do
        order=("${peers[@]}")
        if (( rep % 2 == 0 )); then
            order=(); for ((i = ${#peers[@]} - 1; i >= 0; i--)); do order+=("${peers[i]}"); done
        fi
        for peer in "${order[@]}"; do
            pid=$(peer_pid "$peer")
            json="$OUT/load-$shape-$peer-$rep.json"
            perf_pid=
            if [[ -n $pid ]]; then
                t0=$(cpu_ticks "$pid")
                if [[ $PERF_OK == 1 ]]; then
                    perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -o "${json%.json}.perf" &
                    perf_pid=$!
                    PIDS+=("$perf_pid")
                fi
            fi
            c0a=$(cpu_busy 0) c1a=$(cpu_busy 1)
            s0=$(date +%s.%N)
            run_waited timeout $((WARMUP + DURATION + 60)) nice -n "$NICE" taskset -c 1 "$BOLT_LOAD" load \
                --address "127.0.0.1:$(peer_port "$peer")" --connections "$conns" --inflight "$inflight" \
                --warmup "$WARMUP" --duration "$DURATION" --payload "$PAYLOAD" \
                >"$json" 2>"${json%.json}.err" \
                || die "the load through $peer failed (errors in the responses); see ${json%.json}.err"
            s1=$(date +%s.%N)
            c0b=$(cpu_busy 0) c1b=$(cpu_busy 1)
            pct() { awk -v d="$1" -v hz="$CLK_TCK" -v s0="$s0" -v s1="$s1" 'BEGIN { printf "%.1f", 100 * d / hz / (s1 - s0) }'; }
            cpu0=$(pct $((c0b - c0a))) cpu1=$(pct $((c1b - c1a)))
            read -r rps p50 p99 errors < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["rps"], r["p50_us"], r["p99_us"], r["errors"])' "$json")
            cpu=- rss=- hwm=- syscalls=-
            if [[ -n $perf_pid ]]; then
                kill -INT "$perf_pid" 2>/dev/null || true
                wait "$perf_pid" 2>/dev/null || true
                stop_pid "$perf_pid"
                syscalls=$(python3 -c 'import json,sys
n = [l.split(",")[0] for l in open(sys.argv[1]) if "raw_syscalls:sys_enter" in l]
ok = json.load(open(sys.argv[2]))["ok"]
print("%.2f" % (int(n[0]) / ok) if n and n[0].isdigit() and ok else "-")' "${json%.json}.perf" "$json")
            fi
            if [[ -n $pid ]]; then
                t1=$(cpu_ticks "$pid")
                cpu=$(pct $((t1 - t0)))
                rss=$(status_kb "$pid" VmRSS)
                hwm=$(status_kb "$pid" VmHWM)
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$shape" "$peer" "$rep" "$rps" "$p50" "$p99" "$errors" "$cpu" "$rss" "$hwm" "$cpu0" "$cpu1" "$syscalls" | tee -a "$OUT/runs.tsv"
        done
    done
done

python3 "$HERE/bolt_report.py" "$OUT/runs.tsv" "${IDLE_RSS[@]}" | tee -a "$OUT/summary.md"
