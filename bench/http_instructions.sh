#!/usr/bin/env bash
# User-space instructions per proxied HTTP/1.1 request, Sluice beside nginx, under callgrind.
#
# Wall-clock figures on a shared 2-vCPU VM swing 20-40 % between repetitions, and such VMs
# usually expose no hardware counters; an instruction count under valgrind is deterministic
# to within ~2 %, so it is the figure to compare two builds of the request path with. It
# says nothing about the kernel's share (about 60 % of the CPU here, the same for both
# proxies: each does one recv and one writev per request on each side).
#
# Usage: bench/http_instructions.sh [SLUICE_BINARY...]
#   default binary: target/release/sluice. Several binaries: each is measured (A/B).
# Needs: valgrind, nginx, wrk, curl. Ports: PORT_BASE (default 24600) .. +3, loopback only.
# Env: DURATION (10 s of measured load), CONNS (10), WRK_ARGS (extra wrk arguments).
set -euo pipefail

PORT_BASE=${PORT_BASE:-24600}
DURATION=${DURATION:-10}
CONNS=${CONNS:-10}
# Extra wrk arguments, e.g. WRK_ARGS='-H "Connection: close"' for a connection per request.
WRK_ARGS=${WRK_ARGS:-}
UP=$PORT_BASE PROXY=$((PORT_BASE + 1)) ADMIN=$((PORT_BASE + 2)) NGINX_PROXY=$((PORT_BASE + 3))
BINS=("$@")
[ ${#BINS[@]} -eq 0 ] && BINS=(target/release/sluice)

for tool in valgrind callgrind_control nginx wrk curl; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
for port in $UP $PROXY $ADMIN $NGINX_PROXY; do
    if ss -ltn "sport = :$port" | grep -q LISTEN; then
        echo "port $port is taken (set PORT_BASE)" >&2
        exit 1
    fi
done

WORK=$(mktemp -d /tmp/sluice-instr.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

cat >"$WORK/upstream.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/upstream.pid;
error_log $WORK/upstream.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$UP;
    location / { return 200 "$(printf '%0100d' 0)"; }
  }
}
EOF
cat >"$WORK/proxy.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $WORK/proxy.pid;
error_log $WORK/proxy.err;
events { worker_connections 4096; }
http {
  access_log off;
  upstream up { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PROXY;
    keepalive_requests 1000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
cat >"$WORK/sluice.yaml" <<EOF
admin: { address: "127.0.0.1:$ADMIN" }
workers: 1
listeners:
  - name: http
    address: "127.0.0.1:$PROXY"
    filters: [{ http_proxy: { codec: http1, route_config: main } }]
route_configs:
  - name: main
    virtual_hosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: / }, route: { cluster: up } }] }]
clusters:
  - { name: up, protocol: http1, endpoints: [{ address: "127.0.0.1:$UP" }] }
EOF

nginx -c "$WORK/upstream.conf" &
PIDS+=($!)

wait_for() {
    for _ in $(seq 150); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        sleep 0.2
    done
    echo "nothing answers on port $1" >&2
    exit 1
}

# measure NAME PORT COMMAND...: runs COMMAND under callgrind, warms up, zeroes the counters,
# runs the load, dumps, and prints instructions per request.
measure() {
    local name=$1 port=$2
    shift 2
    local slug
    slug=$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')
    local out="$WORK/cg.$slug"
    valgrind --tool=callgrind --callgrind-out-file="$out.%p" "$@" >"$WORK/$slug.log" 2>&1 &
    local pid=$!
    wait_for "$port"
    eval wrk -t1 -c"$CONNS" -d3s $WRK_ARGS "http://127.0.0.1:$port/" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    local requests
    requests=$(eval wrk -t1 -c"$CONNS" -d"${DURATION}s" $WRK_ARGS "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    local dump
    dump=$(ls "$out".*.1)
    local total
    total=$(awk '/^summary:/ {print $2}' "$dump")
    printf '%-50s %8d requests %8d instructions/request\n' "$name" "$requests" $((total / requests))
}

wait_for "$UP"
measure nginx "$NGINX_PROXY" nginx -c "$WORK/proxy.conf"
i=0
for bin in "${BINS[@]}"; do
    i=$((i + 1))
    measure "sluice[$i] $bin" "$PROXY" "$bin" run -c "$WORK/sluice.yaml"
done
echo "work files: $WORK"
