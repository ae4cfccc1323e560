#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (not part of CI's tests; see docs/conformance.md).
# Usage: fuzz/run.sh [SECONDS_PER_TARGET]   (default 60). Needs the nightly toolchain;
# installs cargo-fuzz if missing. Findings land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# Seeds: a few well-formed messages, so the fuzzer starts past the request line.
seed() { mkdir -p "corpus/$1"; printf '%b' "$2" > "corpus/$1/$3"; }
seed h1_request 'GET /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc' get
seed h1_request 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, Upgrade\r\n\r\n' chunked
seed h1_response 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello' sized
seed h1_response 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\n\r\n' upgrade
seed h1_chunked '5;ext=1\r\nhello\r\n0\r\nx-trailer: t\r\n\r\n' trailers
# Dubbo: a request with attachments and a heartbeat, as Apache Dubbo 3.3 sends them.
mkdir -p corpus/dubbo_decode
for v in request_echo request_group heartbeat_request response_value; do
    python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(open(sys.argv[1]).read()))' \
        "../crates/sluice-xprotocol/src/dubbo/testdata/$v.hex" > "corpus/dubbo_decode/$v"
done
for target in h1_request h1_response h1_chunked dubbo_decode; do
    echo "== $target (${SECONDS_PER_TARGET}s)"
    cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$SECONDS_PER_TARGET" -max_len=4096
done
