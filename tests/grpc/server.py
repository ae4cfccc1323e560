"""A gRPC echo server for Sluice's interop tests (tests/grpc.rs), built on grpcio's generic
handlers with raw bytes, so neither protoc nor grpcio-tools is needed.

Usage: server.py PORT NAME [MAX_STREAMS]

Serves `echo.Echo` on 127.0.0.1:PORT (insecure, HTTP/2 prior knowledge) and prints "ready"
on stdout once it accepts calls. With the environment variables GRPC_TLS_CERT and GRPC_TLS_KEY
(PEM files) it serves over TLS instead. With MAX_STREAMS the server advertises that
SETTINGS_MAX_CONCURRENT_STREAMS per connection. Methods (all bytes in, bytes out):
  Unary         echoes the request; b"fail" aborts with INVALID_ARGUMENT, details
                "asked to fail" and trailing metadata x-why: because
  ServerStream  request N (ascii) -> N messages b"msg-0" .. b"msg-<N-1>"
  ClientStream  concatenation of every request message
  Bidi          echoes each message as it arrives
  StreamFail    two messages, then the same error as Unary's b"fail" (trailers after data)
  Name          NAME, so tests can tell servers apart
  Flaky         UNAVAILABLE when NAME is "down", else NAME (for retry tests)
  Slow          answers only after 10s (or when the call is cancelled), for deadline tests
  Gather        request N (ascii): waits until N Gather calls are in progress at once (at
                most 5s), then answers "<peer> <yes|no>": the connection the call came on,
                and whether all N were there together
"""

import os
import sys
import threading
from concurrent import futures

import grpc

MAX_MESSAGE = 16 * 1024 * 1024


def main():
    port, name = sys.argv[1], sys.argv[2].encode()
    max_streams = int(sys.argv[3]) if len(sys.argv) > 3 else None
    gathering = threading.Condition()
    gathered = [0]

    def unary(request, context):
        if request == b"fail":
            context.set_trailing_metadata((("x-why", "because"),))
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "asked to fail")
        return request

    def server_stream(request, context):
        for i in range(int(request.decode("ascii"))):
            yield b"msg-%d" % i

    def client_stream(request_iterator, context):
        return b"".join(request_iterator)

    def bidi(request_iterator, context):
        for message in request_iterator:
            yield message

    def stream_fail(request, context):
        yield b"before-0"
        yield b"before-1"
        context.set_trailing_metadata((("x-why", "because"),))
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "asked to fail")

    def name_of(request, context):
        return name

    def flaky(request, context):
        if name == b"down":
            context.abort(grpc.StatusCode.UNAVAILABLE, "this one is down")
        return name

    def slow(request, context):
        done = threading.Event()
        context.add_callback(done.set)
        done.wait(10)
        return request

    def gather(request, context):
        want = int(request.decode("ascii"))
        with gathering:
            gathered[0] += 1
            gathering.notify_all()
            together = gathering.wait_for(lambda: gathered[0] >= want, timeout=5)
        return ("%s %s" % (context.peer(), "yes" if together else "no")).encode()

    handler = grpc.method_handlers_generic_handler(
        "echo.Echo",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
            "StreamFail": grpc.unary_stream_rpc_method_handler(stream_fail),
            "Name": grpc.unary_unary_rpc_method_handler(name_of),
            "Flaky": grpc.unary_unary_rpc_method_handler(flaky),
            "Slow": grpc.unary_unary_rpc_method_handler(slow),
            "Gather": grpc.unary_unary_rpc_method_handler(gather),
        },
    )
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]
    if max_streams is not None:
        options.append(("grpc.max_concurrent_streams", max_streams))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=options)
    server.add_generic_rpc_handlers((handler,))
    address = "127.0.0.1:%s" % port
    if "GRPC_TLS_CERT" in os.environ:
        with open(os.environ["GRPC_TLS_KEY"], "rb") as f:
            key = f.read()
        with open(os.environ["GRPC_TLS_CERT"], "rb") as f:
            chain = f.read()
        bound = server.add_secure_port(address, grpc.ssl_server_credentials([(key, chain)]))
    else:
        bound = server.add_insecure_port(address)
    if bound == 0:
        sys.exit("cannot bind 127.0.0.1:%s" % port)
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
