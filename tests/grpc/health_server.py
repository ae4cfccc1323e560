"""A grpc.health.v1 server (grpcio's own health servicer) for Sluice's health-check tests.

Usage: health_server.py PORT

Prints "ready" once serving on 127.0.0.1:PORT. Then each line on stdin sets the overall
status ("" service): SERVING or NOT_SERVING; "ok" is printed after each change. Exits when
stdin closes.
"""

import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def main():
    port = int(sys.argv[1])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    print("ready", flush=True)
    for line in sys.stdin:
        status = line.strip()
        if not status:
            continue
        servicer.set("", health_pb2.HealthCheckResponse.ServingStatus.Value(status))
        print("ok", flush=True)
    server.stop(0)


if __name__ == "__main__":
    main()
