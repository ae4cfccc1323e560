#!/usr/bin/env bash
# Runs every fuzz target (each fuzz_targets/*.rs) for a bounded time, then prints how many
# executions each reached. Not part of CI's tests; see docs/conformance.md.
# Usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#   seconds default to $FUZZ_SECONDS, else 60; targets default to all of them.
# Needs the nightly toolchain; installs cargo-fuzz if missing. Findings land in
# fuzz/artifacts/<target>/. A new target needs only its file and its [[bin]] in Cargo.toml
# (`cargo fuzz add` writes both); seeds below are optional.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET=${1:-${FUZZ_SECONDS:-60}}
shift || true
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

# Seeds: a few well-formed inputs per target, so the fuzzer starts past the first bytes.
seed() { mkdir -p "corpus/$1"; printf '%b' "$2" > "corpus/$1/$3"; }
seed_hex() { mkdir -p "corpus/$1"; printf '%b' "$(printf '%s' "$2" | sed 's/../\\x&/g')" > "corpus/$1/$3"; }
seed h1_request 'GET /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc' get
seed h1_request 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, Upgrade\r\n\r\n' chunked
seed h1_response 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello' sized
seed h1_response 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\n\r\n' upgrade
seed h1_chunked '5;ext=1\r\nhello\r\n0\r\nx-trailer: t\r\n\r\n' trailers
# Bolt frames sofa-rpc-node sent (crates/sluice-xprotocol/src/bolt/tests/vectors.rs): a v1
# request with a header map and a Hessian body, a v2 heartbeat with a CRC, a v1 response.
seed_hex bolt_decode 0101000101000000010100000bb8002c0023000000e5636f6d2e616c697061792e736f66612e7270632e636f72652e726571756573742e536f666152657175657374000000077365727669636500000014636f6d2e6578616d706c652e4563686f3a312e304fbc636f6d2e616c697061792e736f66612e7270632e636f72652e726571756573742e536f666152657175657374950a6d6574686f644e616d650d6d6574686f64417267536967731774617267657453657276696365556e697175654e616d650d7461726765744170704e616d650c7265717565737450726f70736f90046563686f567400115b6a6176612e6c616e672e537472696e676e01106a6176612e6c616e672e537472696e677a14636f6d2e6578616d706c652e4563686f3a312e304e4d077365727669636514636f6d2e6578616d706c652e4563686f3a312e307a0468692d30 v1_request
seed_hex bolt_decode 02020100000100001092010100000bb8000000000000000058277024 v2_crc_heartbeat
seed_hex bolt_decode 010000020100000001010000002e00000000006a636f6d2e616c697061792e736f66612e7270632e636f72652e726573706f6e73652e536f6661526573706f6e73654fbe636f6d2e616c697061792e736f66612e7270632e636f72652e726573706f6e73652e536f6661526573706f6e7365940769734572726f72086572726f724d73670b617070526573706f6e73650d726573706f6e736550726f70736f90464e086361703a68692d304e v1_response
# Dubbo: a request with attachments and a heartbeat, as Apache Dubbo 3.3 sends them.
mkdir -p corpus/dubbo_decode
for v in request_echo request_group heartbeat_request response_value; do
    python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(open(sys.argv[1]).read()))' \
        "../crates/sluice-xprotocol/src/dubbo/testdata/$v.hex" > "corpus/dubbo_decode/$v"
done

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
mkdir -p logs
summary=()
for target in "${targets[@]}"; do
    echo "== $target (${SECONDS_PER_TARGET}s)"
    mkdir -p "corpus/$target"
    log="logs/$target.log"
    status=0
    cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 >"$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|Done )' "$log" || true
    runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -n 1 || true)
    summary+=("$target: ${runs:-?} executions in ${SECONDS_PER_TARGET}s (exit $status)")
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log"
        printf '%s\n' "${summary[@]}"
        echo "fuzz: $target failed (full output in fuzz/$log; inputs in fuzz/artifacts/$target/)"
        exit "$status"
    fi
done
echo "== executions per target"
printf '%s\n' "${summary[@]}"
