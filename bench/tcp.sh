#!/usr/bin/env bash
# Sluice vs HAProxy: L4 TCP proxy benchmark, on loopback, in one run.
#
# Throughput (default): an `iperf3 -s` upstream pinned to CPU 1, each proxy pinned to CPU 0
# with a single worker (Sluice `workers: 1`, HAProxy `nbthread 1`, `mode tcp`), and an
# `iperf3 -c` client pinned to CPU 1 going through the proxy for DURATION seconds. REPS
# repetitions per direction (forward, and reverse with -R), alternating the order of peers.
# Reported per peer: median Gbit/s, proxy CPU (utime+stime from /proc/PID/stat around each
# run), peak RSS (VmHWM) and VmRSS (/proc/PID/status), and Sluice/HAProxy ratios. A direct
# client -> iperf3 run (no proxy) is included as a reference unless BASELINE=0.
#
# Idle connections (--idle or --idle-only): for each proxy, freshly started, bench/idle_conns.py
# opens IDLE_CONNS connections through it to an upstream that holds them, and reports the
# proxy's RSS per connection while idle, after a few bytes client->upstream, after a few bytes
# both ways (which shows buffers allocated lazily or held only while data is in flight), and
# after closing.
#
# Usage: bench/tcp.sh [--duration S] [--reps N] [--sluice PATH] [--haproxy PATH]
#                     [--directions "fwd rev"] [--buffer 32KiB] [--idle | --idle-only]
#                     [--conns N] [--out DIR]
# Every option also has an environment variable: DURATION REPS SLUICE HAPROXY DIRECTIONS
# SLUICE_BUFFER IDLE_CONNS OUT, plus STREAMS (iperf3 -P, default 1), BASELINE (1/0),
# HAPROXY_SPLICE (1 adds `option splice-auto`; default 0 = HAProxy's default, no splicing),
# HAPROXY_BUFSIZE (sets `tune.bufsize` in bytes; default unset = HAProxy's 16384)
# and PORT_BASE (first of 5 consecutive loopback ports, default 24500).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

DURATION=${DURATION:-10}
REPS=${REPS:-3}
SLUICE=${SLUICE:-$REPO/target/release/sluice}
HAPROXY=${HAPROXY:-haproxy}
DIRECTIONS=${DIRECTIONS:-fwd rev}
SLUICE_BUFFER=${SLUICE_BUFFER:-32KiB}
IDLE_CONNS=${IDLE_CONNS:-5000}
STREAMS=${STREAMS:-1}
BASELINE=${BASELINE:-1}
PORT_BASE=${PORT_BASE:-24500}
HAPROXY_SPLICE=${HAPROXY_SPLICE:-0}
HAPROXY_BUFSIZE=${HAPROXY_BUFSIZE:-}
OUT=${OUT:-}
RUN_THROUGHPUT=1
RUN_IDLE=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --duration) DURATION=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --sluice) SLUICE=$2; shift 2 ;;
        --haproxy) HAPROXY=$2; shift 2 ;;
        --directions) DIRECTIONS=$2; shift 2 ;;
        --buffer) SLUICE_BUFFER=$2; shift 2 ;;
        --conns) IDLE_CONNS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --idle) RUN_IDLE=1; shift ;;
        --idle-only) RUN_IDLE=1; RUN_THROUGHPUT=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "unknown option: $1" >&2; usage 2 >&2 ;;
    esac
done

# Ports: Sluice listener, Sluice admin, HAProxy listener, iperf3 server, idle holder.
P_SLUICE=$PORT_BASE
P_ADMIN=$((PORT_BASE + 1))
P_HAPROXY=$((PORT_BASE + 2))
P_IPERF=$((PORT_BASE + 3))
P_HOLD=$((PORT_BASE + 4))

die() { echo "tcp.sh: $*" >&2; exit 1; }

for tool in taskset iperf3 curl ss python3 "$HAPROXY"; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install -y haproxy iperf3 curl iproute2 util-linux python3)"
done
[[ -x $SLUICE ]] || die "no Sluice binary at $SLUICE (cargo build --release -p sluice, or set SLUICE=)"
[[ $(nproc) -ge 2 ]] || die "needs at least 2 CPUs (proxy on CPU 0, iperf3 on CPU 1)"

if [[ -z $OUT ]]; then OUT=$(mktemp -d /tmp/sluice-bench.XXXXXX); fi
mkdir -p "$OUT"
CLK_TCK=$(getconf CLK_TCK)

# --- process bookkeeping: everything started here is stopped on exit ----------------------
PIDS=()
stop_pid() { # TERM, up to 5 s to exit, then KILL; forgets the pid either way
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
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
}
# Runs a bounded command in the background and waits for it, so a signal to this script is
# handled at once (bash runs traps only between foreground commands) and stops it too.
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
for p in "$P_SLUICE" "$P_ADMIN" "$P_HAPROXY" "$P_IPERF" "$P_HOLD"; do
    port_free "$p" || die "port $p is in use (set PORT_BASE to another range)"
done

# Bounded wait until something listens on a port (without connecting to it).
wait_listen() {
    local port=$1 pid=$2 name=$3 i
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during start-up; see $OUT/$name.log"
        [[ -n $(ss -Hltn "sport = :$port") ]] && return 0
        sleep 0.1
    done
    die "$name not listening on $port after 10s; see $OUT/$name.log"
}

# --- peers ------------------------------------------------------------------------------
SLUICE_PID=
HAPROXY_PID=

start_sluice() { # $1 = upstream port, $2 = idle_timeout
    cat >"$OUT/sluice.yaml" <<EOF
admin: { address: 127.0.0.1:$P_ADMIN }
workers: 1
drain_timeout: 1s
listeners:
  - name: bench
    address: 127.0.0.1:$P_SLUICE
    backlog: 4096
    filters:
      - tcp_proxy: { cluster: up, idle_timeout: $2, buffer_size: $SLUICE_BUFFER }
clusters:
  - name: up
    endpoints: [{ address: 127.0.0.1:$1 }]
EOF
    "$SLUICE" check -c "$OUT/sluice.yaml" >/dev/null || die "sluice check failed on $OUT/sluice.yaml"
    taskset -c 0 "$SLUICE" run -c "$OUT/sluice.yaml" --log-level warn >"$OUT/sluice.log" 2>&1 &
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

start_haproxy() { # $1 = upstream port, $2 = client/server timeout, $3 = maxconn
    cat >"$OUT/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $3
$( [[ -n $HAPROXY_BUFSIZE ]] && echo "    tune.bufsize $HAPROXY_BUFSIZE" )

defaults
    mode tcp
    timeout connect 5s
    timeout client $2
    timeout server $2
$( [[ $HAPROXY_SPLICE == 1 ]] && echo "    option splice-auto" )

frontend bench
    bind 127.0.0.1:$P_HAPROXY
    default_backend up

backend up
    server up 127.0.0.1:$1
EOF
    "$HAPROXY" -c -q -f "$OUT/haproxy.cfg" || die "haproxy -c failed on $OUT/haproxy.cfg"
    taskset -c 0 "$HAPROXY" -db -f "$OUT/haproxy.cfg" >"$OUT/haproxy.log" 2>&1 &
    HAPROXY_PID=$!
    PIDS+=("$HAPROXY_PID")
    wait_listen "$P_HAPROXY" "$HAPROXY_PID" haproxy
}

peer_pid() { case $1 in sluice) echo "$SLUICE_PID" ;; haproxy) echo "$HAPROXY_PID" ;; *) echo "" ;; esac; }
peer_port() { case $1 in sluice) echo "$P_SLUICE" ;; haproxy) echo "$P_HAPROXY" ;; direct) echo "$P_IPERF" ;; esac; }
# Busy (non-idle, non-iowait) jiffies of one CPU, from /proc/stat.
cpu_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# --- header -----------------------------------------------------------------------------
{
    echo "# Sluice TCP benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
    echo "- sluice: $SLUICE ($("$SLUICE" version 2>/dev/null | head -1)), repo HEAD $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'), buffer_size $SLUICE_BUFFER"
    echo "- haproxy: $("$HAPROXY" -v | head -1), splice-auto $HAPROXY_SPLICE, tune.bufsize ${HAPROXY_BUFSIZE:-default}"
    echo "- iperf3: $(iperf3 --version | head -1)"
    echo "- duration ${DURATION}s, reps $REPS, directions '$DIRECTIONS', streams $STREAMS, idle conns $IDLE_CONNS"
    echo "- raw results: $OUT"
} | tee "$OUT/summary.md"

# --- throughput -------------------------------------------------------------------------
if [[ $RUN_THROUGHPUT == 1 ]]; then
    taskset -c 1 iperf3 -s -B 127.0.0.1 -p "$P_IPERF" >"$OUT/iperf3-server.log" 2>&1 &
    IPERF_PID=$!
    PIDS+=("$IPERF_PID")
    wait_listen "$P_IPERF" "$IPERF_PID" iperf3-server
    start_sluice "$P_IPERF" 60s
    start_haproxy "$P_IPERF" 60s 1024

    peers=(sluice haproxy)
    [[ $BASELINE == 1 ]] && peers=(direct "${peers[@]}")
    printf '# dir\tpeer\trep\tgbps\tproxy_cpu%%\trss_kb\thwm_kb\tcpu0_busy%%\tcpu1_busy%%\n' | tee "$OUT/runs.tsv"
    for dir in $DIRECTIONS; do
        case $dir in fwd) rflag=() ;; rev) rflag=(-R) ;; *) die "direction must be fwd or rev, got $dir" ;; esac
        for rep in $(seq "$REPS"); do
            order=("${peers[@]}")
            if (( rep % 2 == 0 )); then # alternate: reverse the order every other repetition
                order=(); for ((i = ${#peers[@]} - 1; i >= 0; i--)); do order+=("${peers[i]}"); done
            fi
            for peer in "${order[@]}"; do
                pid=$(peer_pid "$peer")
                json="$OUT/iperf-$dir-$peer-$rep.json"
                [[ -n $pid ]] && t0=$(cpu_ticks "$pid")
                c0a=$(cpu_busy 0) c1a=$(cpu_busy 1)
                s0=$(date +%s.%N)
                run_waited timeout $((DURATION + 30)) taskset -c 1 iperf3 -c 127.0.0.1 -p "$(peer_port "$peer")" \
                    -t "$DURATION" -P "$STREAMS" "${rflag[@]}" -J --connect-timeout 3000 >"$json" \
                    || die "iperf3 through $peer failed; see $json"
                s1=$(date +%s.%N)
                c0b=$(cpu_busy 0) c1b=$(cpu_busy 1)
                pct() { awk -v d="$1" -v hz="$CLK_TCK" -v s0="$s0" -v s1="$s1" 'BEGIN { printf "%.1f", 100 * d / hz / (s1 - s0) }'; }
                cpu0=$(pct $((c0b - c0a))) cpu1=$(pct $((c1b - c1a)))
                gbps=$(python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e9))' "$json")
                cpu=- rss=- hwm=-
                if [[ -n $pid ]]; then
                    t1=$(cpu_ticks "$pid")
                    cpu=$(pct $((t1 - t0)))
                    rss=$(status_kb "$pid" VmRSS)
                    hwm=$(status_kb "$pid" VmHWM)
                fi
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$dir" "$peer" "$rep" "$gbps" "$cpu" "$rss" "$hwm" "$cpu0" "$cpu1" | tee -a "$OUT/runs.tsv"
            done
        done
    done
    python3 "$HERE/report.py" throughput "$OUT/runs.tsv" | tee -a "$OUT/summary.md"
    cleanup
fi

# --- idle connections -------------------------------------------------------------------
if [[ $RUN_IDLE == 1 ]]; then
    # The proxy holds 2 fds per connection; idle_conns.py raises its own limit.
    need=$((2 * IDLE_CONNS + 256))
    if (( $(ulimit -Hn) < need )); then ulimit -Hn "$need" || die "cannot raise the fd hard limit to $need"; fi
    if (( $(ulimit -Sn) < need )); then ulimit -Sn "$need"; fi
    : >"$OUT/idle.jsonl"
    for peer in sluice haproxy; do
        if [[ $peer == sluice ]]; then start_sluice "$P_HOLD" 600s; else start_haproxy "$P_HOLD" 600s $((IDLE_CONNS + 100)); fi
        pid=$(peer_pid "$peer")
        run_waited timeout 300 taskset -c 1 python3 "$HERE/idle_conns.py" --pid "$pid" -n "$IDLE_CONNS" \
            --connect "127.0.0.1:$(peer_port "$peer")" --listen "127.0.0.1:$P_HOLD" \
            >"$OUT/idle-$peer.json" || die "idle_conns.py failed against $peer"
        python3 -c 'import json,sys; d=json.load(sys.stdin); d["peer"]=sys.argv[1]; print(json.dumps(d))' "$peer" \
            <"$OUT/idle-$peer.json" | tee -a "$OUT/idle.jsonl"
        stop_pid "$pid"
    done
    python3 "$HERE/report.py" idle "$OUT/idle.jsonl" | tee -a "$OUT/summary.md"
fi

echo
echo "summary: $OUT/summary.md"
