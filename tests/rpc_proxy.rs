//! `rpc_proxy` through the real binary, with the example `kv` protocol: the framework's own
//! behaviour (routing, multiplexing, id remapping, retries, timeouts, local replies, bad input,
//! detection), which Bolt and Dubbo inherit. Their own suites drive their real libraries.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::thread;

use common::kv::{body, KvClient, KvServer};
use common::rpc::{self, cluster};
use common::{refused_addr, Sluice};
use sluice_xprotocol::FrameKind;

/// Sluice with an rpc_proxy listener speaking `protocol` (see `common::rpc::start`).
fn start(protocol: &str, routes: &str, clusters: &str) -> (Sluice, SocketAddr) {
    rpc::start(protocol, "", routes, clusters)
}

#[test]
fn routes_by_service_method_and_header() {
    let v1 = KvServer::start("v1");
    let v2 = KvServer::start("v2");
    let gray = KvServer::start("gray");
    let routes = r#"
          - match: { headers: [{ name: service, exact: "com.example.Echo:1.0" }, { name: method, exact: echo }, { name: stage, exact: gray }] }
            route: { cluster: gray }
          - match: { headers: [{ name: service, exact: "com.example.Echo:1.0" }, { name: method, exact: echo }] }
            route: { cluster: v2 }
          - match: { headers: [{ name: service, prefix: "com.example." }] }
            route: { cluster: v1 }
"#;
    let clusters =
        cluster("v1", &[v1.addr]) + &cluster("v2", &[v2.addr]) + &cluster("gray", &[gray.addr]);
    let (_sluice, addr) = start("kv", routes, &clusters);
    let mut c = KvClient::connect(addr);
    assert_eq!(body(&c.call("com.example.Echo:1.0", "echo", "a")), "v2:a");
    assert_eq!(body(&c.call("com.example.Other:1.0", "echo", "b")), "v1:b");
    assert_eq!(body(&c.call("com.example.Echo:1.0", "other", "c")), "v1:c");
    let r = c.call_with("com.example.Echo:1.0", "echo", &[("stage", "gray")], "d");
    assert_eq!(body(&r), "gray:d");

    // No route: the protocol's own "no route" status, with a message that says why.
    let r = c.call("org.elsewhere.Svc", "echo", "e");
    assert_eq!(r.kind, FrameKind::Response);
    assert_eq!(r.status, 4, "{}", body(&r));
    assert!(
        body(&r).contains("no route") && body(&r).contains("org.elsewhere.Svc"),
        "{}",
        body(&r)
    );
    // The connection carries on.
    assert_eq!(body(&c.call("com.example.Echo:1.0", "echo", "f")), "v2:f");
}

#[test]
fn a_thousand_calls_in_flight_share_one_upstream_connection_and_ids_never_cross() {
    let server = KvServer::start("up");
    let routes = "          - match: { prefix: / }\n            route: { cluster: up }\n";
    let (_sluice, addr) = start("kv", routes, &cluster("up", &[server.addr]));
    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 250;
    // Every call is a `gather` of all 1,000: the server answers none until it holds every
    // one of them on one connection, then answers in reverse order. So all 1,000 were in
    // flight at once over a single upstream connection, and each client id must come back
    // with its own payload.
    let total = CLIENTS * PER_CLIENT;
    let handles: Vec<_> = (0..CLIENTS)
        .map(|c| {
            thread::spawn(move || {
                let mut client = KvClient::connect(addr);
                for i in 0..PER_CLIENT {
                    let id = (i * 7 + 3) as u32; // client ids overlap across clients
                    let payload = format!("{total}:c{c}-i{i}");
                    client.send(0, id, &[("service", "s"), ("method", "gather")], &payload);
                }
                let mut seen = 0;
                while seen < PER_CLIENT {
                    let r = client.recv().expect("closed before every response");
                    let i = (r.id as usize - 3) / 7;
                    assert_eq!(body(&r), format!("up:c{c}-i{i}"), "id {} crossed", r.id);
                    seen += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    assert_eq!(server.requests.load(Ordering::SeqCst), total);
}

#[test]
fn retries_move_off_a_dead_host_and_a_timeout_answers_in_protocol() {
    let live = KvServer::start("live");
    let dead = refused_addr();
    let routes = r#"
          - match: { headers: [{ name: method, exact: slow }] }
            route: { cluster: up, timeout: 300ms }
          - match: { prefix: / }
            route: { cluster: up, retry_policy: { retry_on: "connect-failure,reset", num_retries: 2 } }
"#;
    let clusters = format!(
        "  - name: up\n    lb_policy: round_robin\n    endpoints: [{{ address: \"{dead}\" }}, {{ address: \"{}\" }}]\n",
        live.addr
    );
    let (_sluice, addr) = start("kv", routes, &clusters);
    let mut c = KvClient::connect(addr);
    for i in 0..20 {
        let r = c.call("s", "echo", &i.to_string());
        assert_eq!((r.status, body(&r)), (0, format!("live:{i}")));
    }
    // The route's timeout passes first: the protocol's timeout status, and the call ends.
    // This route has no retries, so round robin's turns on the dead host fail (status 2).
    let mut timeouts = 0;
    for _ in 0..4 {
        let r = c.call("s", "slow", "2000");
        match r.status {
            5 => {
                assert!(body(&r).contains("upstream timeout"), "{}", body(&r));
                timeouts += 1;
            }
            2 => assert!(body(&r).contains("connect"), "{}", body(&r)),
            other => panic!("status {other}: {}", body(&r)),
        }
    }
    assert!(timeouts >= 1, "no call reached the live host");
}

#[test]
fn heartbeats_are_answered_oneways_delivered_and_application_errors_passed_through() {
    let server = KvServer::start("up");
    let routes = "          - match: { prefix: / }\n            route: { cluster: up }\n";
    let (_sluice, addr) = start("kv", routes, &cluster("up", &[server.addr]));
    let mut c = KvClient::connect(addr);
    c.send_raw(&sluice_protocol_kv::build(3, 0, 42, &[], b"").unwrap().raw);
    let pong = c.recv().unwrap();
    assert_eq!((pong.kind, pong.id), (FrameKind::HeartbeatResponse, 42));

    c.send(2, 5, &[("service", "s"), ("method", "note")], "x");
    let r = c.call("s", "fail", "");
    assert_eq!((r.status, body(&r)), (1, "boom".to_string()));
    common::Sluice::poll(&_sluice, "the one-way request upstream", || {
        (server.oneways.load(Ordering::SeqCst) == 1).then_some(())
    });
    // Headers reach the upstream as sent.
    let r = c.call_with("s", "headers", &[("x-trace", "t1")], "");
    assert_eq!(body(&r), "service=s,method=headers,x-trace=t1");
}

#[test]
fn quiet_upstream_connections_are_kept_by_heartbeats_and_dropped_when_unanswered() {
    let server = KvServer::start("up");
    let routes = "          - match: { prefix: / }\n            route: { cluster: up }\n";
    let extra =
        "          upstream_heartbeat_interval: 100ms\n          upstream_heartbeat_timeout: 300ms";
    let (s, addr) = rpc::start("kv", extra, routes, &cluster("up", &[server.addr]));
    let mut c = KvClient::connect(addr);
    let load = |n: &std::sync::atomic::AtomicUsize| n.load(Ordering::SeqCst);
    assert_eq!(body(&c.call("s", "echo", "a")), "up:a");

    // Idle, the upstream connection is pinged and, answering, kept.
    s.poll("heartbeats on the quiet upstream connection", || {
        (load(&server.heartbeats) >= 3).then_some(())
    });
    assert_eq!(body(&c.call("s", "echo", "b")), "up:b");
    assert_eq!((load(&server.connections), load(&server.closed)), (1, 0));

    // A peer that stops answering is dropped; the next call dials again.
    server.mute_heartbeats.store(true, Ordering::SeqCst);
    s.poll("the unanswering upstream connection to close", || {
        (load(&server.closed) == 1).then_some(())
    });
    server.mute_heartbeats.store(false, Ordering::SeqCst);
    assert_eq!(body(&c.call("s", "echo", "c")), "up:c");
    assert_eq!(load(&server.connections), 2);
}

#[test]
fn route_header_mutations_rewrite_requests_and_responses() {
    let server = KvServer::start("up");
    let routes = r#"          - match: { prefix: / }
            route: { cluster: up }
            request_headers_to_add:
              - header: { key: traceId, value: "%REQ(x-trace)%-%PROTOCOL%" }
              - header: { key: x-env, value: prod }
                append_action: OVERWRITE_IF_EXISTS_OR_ADD
            request_headers_to_remove: [x-drop]
            response_headers_to_add:
              - header: { key: x-served-by, value: "%UPSTREAM_REMOTE_ADDRESS%" }
"#;
    let (_sluice, addr) = start("kv", routes, &cluster("up", &[server.addr]));
    let mut c = KvClient::connect(addr);
    let r = c.call_with(
        "s",
        "headers",
        &[("x-trace", "t1"), ("X-Env", "dev"), ("x-drop", "1")],
        "",
    );
    // Removals and overwrites ignore case; added keys keep theirs.
    assert_eq!(
        body(&r),
        "service=s,method=headers,x-trace=t1,traceId=t1-kv,x-env=prod"
    );
    let served_by = server.addr.to_string();
    assert_eq!(r.headers().get_str("x-served-by"), Some(served_by.as_str()));
}

#[test]
fn bad_frames_close_only_their_connection() {
    let server = KvServer::start("up");
    let routes = "          - match: { prefix: / }\n            route: { cluster: up }\n";
    let (_sluice, addr) = start("kv", routes, &cluster("up", &[server.addr]));
    let mut good = KvClient::connect(addr);
    assert_eq!(body(&good.call("s", "echo", "1")), "up:1");

    // Bad magic: closed without a reply (there is no request to answer).
    let mut bad = KvClient::connect(addr);
    bad.send_raw(b"GARBAGE-GARBAGE-GARBAGE");
    assert!(bad.recv().is_none());

    // A frame declaring more than max_frame_size (16 MiB by default): the protocol's
    // bad-request reply for that id, then the close.
    let mut big = KvClient::connect(addr);
    big.send_raw(b"kv\0\0\0\0\0\x09\x7f\0\0\0");
    let r = big.recv().expect("an error reply");
    assert_eq!((r.id, r.status), (9, 6));
    assert!(body(&r).contains("too large"), "{}", body(&r));
    assert!(big.recv().is_none());

    // Garbage after a valid frame: the valid one is answered, then the connection closes.
    let mut tail = KvClient::connect(addr);
    let mut bytes =
        sluice_protocol_kv::build(0, 0, 3, &[("service", "s"), ("method", "echo")], b"ok")
            .unwrap()
            .raw
            .to_vec();
    bytes.extend_from_slice(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff");
    tail.send_raw(&bytes);
    // A truncated frame then a close: nothing to answer, nothing breaks.
    let mut truncated = KvClient::connect(addr);
    truncated.send_raw(b"kv\0\0\0\0\0\x01\0\0");
    drop(truncated);

    // The first connection never noticed.
    assert_eq!(body(&good.call("s", "echo", "2")), "up:2");
    // The valid call before the garbage got its answer before the close.
    let r = tail.recv().expect("the valid call's answer");
    assert_eq!((r.id, body(&r)), (3, "up:ok".to_string()));
    assert!(tail.recv().is_none());
}

#[test]
fn auto_detects_kv_and_http_on_one_port() {
    let server = KvServer::start("up");
    let nginx_like = common::spawn_server(|mut conn| {
        use std::io::{Read, Write};
        let mut buf = [0u8; 4096];
        let _ = conn.read(&mut buf);
        let _ = conn
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello");
    });
    let routes = r#"
          - match: { headers: [{ name: service, present: true }] }
            route: { cluster: up }
          - match: { prefix: /to-kv }
            route: { cluster: up, timeout: 300ms }
          - match: { prefix: / }
            route: { cluster: web }
"#;
    let clusters = cluster("up", &[server.addr]) + &cluster("web", &[nginx_like]);
    let (_sluice, addr) = start("auto", routes, &clusters);
    let curl = |path: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-m", "10", "-w", " %{http_code}"])
            .arg(format!("http://{addr}{path}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // HTTP to the kv cluster first: its hosts get an HTTP pool (the kv server never answers
    // HTTP, so the route times out); kv calls to the same hosts still get their connection.
    assert!(curl("/to-kv").ends_with(" 504"));
    let mut c = KvClient::connect(addr);
    assert_eq!(body(&c.call("s", "echo", "rpc")), "up:rpc");
    assert_eq!(curl("/"), "hello 200");
}
