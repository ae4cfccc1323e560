"""A gRPC client for Sluice's interop tests (tests/grpc.rs): runs one scenario against the
echo server of server.py (directly or through Sluice) and prints its result as plain lines.

Usage: client.py TARGET SCENARIO      (TARGET is host:port)

With the environment variable GRPC_TLS_CA (a PEM CA file) the channel uses TLS, verifying the
server against that CA and the name in GRPC_TLS_NAME.

Exits non-zero with a message on stderr when a call fails unexpectedly. Every call has a
deadline, so the script never hangs.
"""

import os
import queue
import sys

import grpc

MAX_MESSAGE = 16 * 1024 * 1024
TIMEOUT = 10  # seconds, per call
LARGE = 4 * 1024 * 1024
BIDI_COUNT = 100


def fail(message):
    sys.exit("client: " + message)


def describe(err):
    return "%s %r" % (err.code().name, err.details())


def scenario_unary(channel):
    reply = channel.unary_unary("/echo.Echo/Unary")(b"hello grpc", timeout=TIMEOUT)
    print("unary: " + reply.decode())


def print_status(err):
    """The status of a failed call as the tests expect it: code, details, the x-why trailer."""
    print("code: " + err.code().name)
    print("details: " + err.details())
    for key, value in err.trailing_metadata() or ():
        if key == "x-why":
            print("trailer x-why: " + value)


def scenario_error(channel):
    try:
        reply = channel.unary_unary("/echo.Echo/Unary")(b"fail", timeout=TIMEOUT)
    except grpc.RpcError as err:
        print_status(err)
        return
    fail("expected an error, got reply %r" % reply)


def scenario_server_stream(channel):
    call = channel.unary_stream("/echo.Echo/ServerStream")
    replies = [m.decode() for m in call(b"5", timeout=TIMEOUT)]
    print("server_stream: " + ",".join(replies))


def scenario_stream_error(channel):
    # The status and trailers come after response messages, in a real trailers frame.
    got = []
    try:
        for reply in channel.unary_stream("/echo.Echo/StreamFail")(b"", timeout=TIMEOUT):
            got.append(reply.decode())
    except grpc.RpcError as err:
        print("received: " + ",".join(got))
        print_status(err)
        return
    fail("expected an error after %r" % got)


def scenario_client_stream(channel):
    call = channel.stream_unary("/echo.Echo/ClientStream")
    reply = call(iter([b"a", b"bc", b"", b"def"]), timeout=TIMEOUT)
    print("client_stream: " + reply.decode())


def scenario_bidi(channel):
    # Ping-pong: each message is sent only after the previous echo came back, so the proxy
    # must forward both directions of the stream while it is open (no buffering to the end).
    echoed = queue.Queue()

    def requests():
        for i in range(BIDI_COUNT):
            yield b"m%d" % i
            try:
                echoed.get(timeout=TIMEOUT)
            except queue.Empty:
                return

    call = channel.stream_stream("/echo.Echo/Bidi")
    got = 0
    for reply in call(requests(), timeout=TIMEOUT):
        if reply != b"m%d" % got:
            fail("bidi: message %d came back as %r" % (got, reply))
        got += 1
        echoed.put(reply)
    print("bidi: %d echoed in order" % got)


def scenario_large(channel):
    payload = bytes(i * 7 % 251 for i in range(LARGE))
    reply = channel.unary_unary("/echo.Echo/Unary")(payload, timeout=TIMEOUT)
    if reply != payload:
        fail("large: got %d bytes back, not the %d sent" % (len(reply), len(payload)))
    print("large: %d bytes echoed" % len(reply))


def scenario_deadline(channel):
    try:
        reply = channel.unary_unary("/echo.Echo/Slow")(b"zzz", timeout=0.5)
    except grpc.RpcError as err:
        print("deadline: " + err.code().name)
        return
    fail("expected DEADLINE_EXCEEDED, got reply %r" % reply)


def scenario_name(channel):
    # Name (routed on its own) and Unary (routed with the rest of the service) on one channel.
    name = channel.unary_unary("/echo.Echo/Name")(b"", timeout=TIMEOUT)
    echo = channel.unary_unary("/echo.Echo/Unary")(b"x", timeout=TIMEOUT)
    print("name: " + name.decode())
    print("unary: " + echo.decode())


def scenario_flaky(channel):
    try:
        reply = channel.unary_unary("/echo.Echo/Flaky")(b"", timeout=TIMEOUT)
    except grpc.RpcError as err:
        print("flaky: " + err.code().name)
        return
    print("flaky: " + reply.decode())


def scenario_unknown(channel):
    try:
        reply = channel.unary_unary("/other.Service/Call")(b"x", timeout=TIMEOUT)
    except grpc.RpcError as err:
        print("unknown: " + err.code().name)
        return
    fail("expected an error, got reply %r" % reply)


GATHER = 12


def scenario_gather(channel):
    # GATHER calls at once; each reports the connection it reached the server on, and whether
    # all of them were in progress together (they are not if a proxy queues some behind others).
    call = channel.unary_unary("/echo.Echo/Gather")
    pending = [call.future(b"%d" % GATHER, timeout=TIMEOUT) for _ in range(GATHER)]
    replies = [p.result().decode().rsplit(" ", 1) for p in pending]
    print("together: %d/%d" % (sum(1 for _, t in replies if t == "yes"), GATHER))
    print("connections: %d" % len({peer for peer, _ in replies}))


SCENARIOS = {
    "unary": scenario_unary,
    "error": scenario_error,
    "server_stream": scenario_server_stream,
    "stream_error": scenario_stream_error,
    "client_stream": scenario_client_stream,
    "bidi": scenario_bidi,
    "large": scenario_large,
    "deadline": scenario_deadline,
    "name": scenario_name,
    "flaky": scenario_flaky,
    "unknown": scenario_unknown,
    "gather": scenario_gather,
}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in SCENARIOS:
        fail("usage: client.py TARGET {%s}" % "|".join(SCENARIOS))
    target, scenario = sys.argv[1], sys.argv[2]
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        # Talk to TARGET itself even when the environment names an HTTP proxy.
        ("grpc.enable_http_proxy", 0),
        # One attempt per call: a retry would hide a proxy failure.
        ("grpc.enable_retries", 0),
    ]
    if "GRPC_TLS_CA" in os.environ:
        with open(os.environ["GRPC_TLS_CA"], "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        options.append(("grpc.ssl_target_name_override", os.environ["GRPC_TLS_NAME"]))
        channel = grpc.secure_channel(target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    with channel:
        try:
            SCENARIOS[scenario](channel)
        except grpc.RpcError as err:
            fail("%s: unexpected RPC error %s" % (scenario, describe(err)))


if __name__ == "__main__":
    main()
