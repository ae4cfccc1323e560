//! SOFARPC Bolt through Sluice: the real sofa-rpc-node client (tests/bolt/client.js) calls real
//! sofa-rpc-node servers (tests/bolt/server.js) through an `rpc_proxy` listener speaking
//! `bolt`. Unary calls with concurrency, heartbeats, application errors, timeouts (Sluice's and
//! the client's), routing by service, version, method and a raw Bolt header, retries off a dead
//! provider, 1,000 calls in flight on one upstream connection, Bolt v2 with CRC, and bad input
//! from a raw socket. CI installs the node modules with `npm ci` in tests/bolt.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;

use bytes::BytesMut;
use common::bolt::{capture_request, BoltClient, BoltServer, ClientRun};
use common::rpc::{self, all_to, cluster};
use common::{connect, refused_addr, stat, Sluice};
use sluice_xprotocol::bolt::{status, Bolt, FixedHeader};
use sluice_xprotocol::{Frame, FrameKind, Protocol};

/// Sluice with a `bolt` rpc_proxy listener (see `common::rpc::start`).
fn start_with(listener_extra: &str, routes: &str, clusters: &str) -> (Sluice, SocketAddr) {
    rpc::start("bolt", listener_extra, routes, clusters)
}

fn start(routes: &str, clusters: &str) -> (Sluice, SocketAddr) {
    start_with("", routes, clusters)
}

/// Starts servers (tag, version) side by side: each takes node a second or so to come up.
fn servers(specs: &[(&str, &str)]) -> Vec<BoltServer> {
    let handles: Vec<_> = specs
        .iter()
        .map(|&(tag, version)| {
            let (tag, version) = (tag.to_string(), version.to_string());
            thread::spawn(move || BoltServer::start_version(&tag, &version))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Runs the clients at the same time; their results in the same order.
fn run_together(clients: Vec<BoltClient>) -> Vec<ClientRun> {
    let handles: Vec<_> = clients
        .into_iter()
        .map(|c| thread::spawn(move || c.run()))
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// The connections the server behind `addr` (Sluice) has accepted, asked through `addr`.
fn upstream_connections(addr: SocketAddr, tag: &str) -> String {
    let run = BoltClient::new(addr).method("connections").run();
    assert_eq!(run.ok, 1, "{}", run.raw);
    let answer = run.results[0].clone();
    answer
        .strip_prefix(&format!("{tag}:connections:"))
        .unwrap_or_else(|| panic!("not an answer of {tag}: {answer}"))
        .to_string()
}

fn assert_all_echoed(run: &ClientRun, n: u64, tag: &str) {
    assert_eq!(
        (run.ok, run.errors, run.mismatched),
        (n, 0, 0),
        "{}",
        run.raw
    );
    assert_eq!(run.tags.get(tag), Some(&n), "{}", run.raw);
}

// ---------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------

#[test]
fn concurrent_unary_calls_each_get_their_own_answer() {
    let server = BoltServer::start("up");
    let (_sluice, addr) = start(&all_to("up"), &cluster("up", &[server.addr]));
    // Three client processes (three downstream connections, each with its own ids from 1),
    // 300 calls each with 16 in flight: every call gets the echo of its own argument.
    let runs = run_together(
        (0..3)
            .map(|_| BoltClient::new(addr).count(300).concurrency(16))
            .collect(),
    );
    for run in &runs {
        assert_all_echoed(run, 300, "up");
    }
    assert_eq!(upstream_connections(addr, "up"), "1");
}

#[test]
fn heartbeats_are_answered_by_sluice_and_errors_reach_the_client() {
    let server = BoltServer::start("hb");
    let (_sluice, addr) = start(
        r#"
          - match: { headers: [{ name: service, prefix: "com.example." }] }
            route: { cluster: up, retry_policy: { retry_on: "5xx", num_retries: 2 } }
"#,
        &cluster("up", &[server.addr]),
    );
    // Heartbeats in every version: answered with the ping's id.
    assert_eq!(BoltClient::new(addr).heartbeat(), "answered");
    assert_eq!(BoltClient::new(addr).v2(false).heartbeat(), "answered");
    assert_eq!(BoltClient::new(addr).v2(true).heartbeat(), "answered");
    // ...by Sluice itself: none reached the server (this call opens the first connection).
    assert_eq!(upstream_connections(addr, "hb"), "1");

    // The service throws: a SERVER_EXCEPTION response, passed through with its message,
    // and not retried (another host would throw the same), even under retry_on 5xx.
    let run = BoltClient::new(addr).method("fail").count(3).run();
    assert_eq!((run.ok, run.errors), (0, 3), "{}", run.raw);
    assert_eq!(run.error_messages.len(), 1, "{}", run.raw);
    assert!(run.has_error("echo failed on purpose"), "{}", run.raw);
    assert_eq!(stat(&_sluice, "cluster.up.upstream_rq_retry"), 0);

    // The server's own error for a version it does not publish passes through too.
    let run = BoltClient::new(addr).version("9.9").run();
    assert!(run.has_error("not found service"), "{}", run.raw);

    // Sluice's own error: no route, as a Bolt error the client reads with its message.
    let run = BoltClient::new(addr).service("org.elsewhere.Svc").run();
    assert_eq!(run.errors, 1, "{}", run.raw);
    assert!(
        run.has_error("RpcServerException: no route")
            && run.has_error("service \"org.elsewhere.Svc:1.0\""),
        "{}",
        run.raw
    );
    // The echo still works after all that.
    assert_all_echoed(&BoltClient::new(addr).count(5).run(), 5, "hb");
}

#[test]
fn a_header_change_the_protocol_cannot_carry_gets_a_bad_request_reply() {
    let server = BoltServer::start("big");
    // Bolt's header map has a 15-bit length: this added value cannot be encoded.
    let big = "y".repeat(40_000);
    let (s, addr) = start(
        &format!(
            r#"
          - match: {{ headers: [{{ name: service, prefix: "com.example." }}] }}
            route: {{ cluster: up, retry_policy: {{ retry_on: "5xx,reset", num_retries: 2 }} }}
            request_headers_to_add:
              - header: {{ key: x-big, value: "{big}" }}
"#
        ),
        &cluster("up", &[server.addr]),
    );
    let run = BoltClient::new(addr).run();
    assert_eq!(run.errors, 1, "{}", run.raw);
    assert!(
        run.has_error("the request cannot be sent upstream (cluster \"up\")")
            && run.has_error("header map over 32767 bytes"),
        "{}",
        run.raw
    );
    // Not retried, and not held against the host.
    assert_eq!(stat(&s, "cluster.up.upstream_rq_retry"), 0);
}

#[test]
fn a_call_slower_than_the_route_timeout_gets_sluices_timeout_error() {
    let server = BoltServer::start("t");
    let (_sluice, addr) = start(
        r#"
          - match: { headers: [{ name: x-patience, exact: long }] }
            route: { cluster: up, timeout: 30s }
          - match: { headers: [{ name: method, exact: slow }] }
            route: { cluster: up, timeout: 500ms }
          - match: { prefix: / }
            route: { cluster: up }
"#,
        &cluster("up", &[server.addr]),
    );
    // The route gives up after 500ms, long before the client's 10 s: Sluice's TIMEOUT
    // response, with its message.
    let run = BoltClient::new(addr)
        .method("slow")
        .call_arg("5000")
        .timeout_ms(10_000)
        .count(2)
        .concurrency(2)
        .run();
    assert_eq!((run.ok, run.errors), (0, 2), "{}", run.raw);
    assert!(
        run.has_error("RpcServerException: upstream timeout: no response within 500ms"),
        "{}",
        run.raw
    );

    // A route that waits 30 s, a client that waits 300 ms: the client's own timeout error
    // (RpcResponseTimeoutError), as without a proxy. Sluice still relays the late answers;
    // the client has forgotten those ids.
    let run = BoltClient::new(addr)
        .header("x-patience", "long")
        .method("slow")
        .call_arg("2000")
        .timeout_ms(300)
        .count(2)
        .concurrency(2)
        .run();
    assert_eq!((run.ok, run.errors), (0, 2), "{}", run.raw);
    assert_eq!(run.error_names, ["RpcResponseTimeoutError"], "{}", run.raw);

    // The patient route does wait: a 1 s call comes back.
    let run = BoltClient::new(addr)
        .header("x-patience", "long")
        .method("slow")
        .call_arg("1000")
        .timeout_ms(10_000)
        .run();
    assert_eq!(run.results, ["t:slow:1000"], "{}", run.raw);
    assert_all_echoed(&BoltClient::new(addr).count(5).run(), 5, "t");
}

// ---------------------------------------------------------------------------------------------
// Routing, retries, multiplexing
// ---------------------------------------------------------------------------------------------

#[test]
fn routes_by_service_version_method_and_raw_header() {
    let s = servers(&[("v1", "1.0"), ("v2", "2.0"), ("m", "1.0"), ("gray", "1.0")]);
    let routes = r#"
          - match: { headers: [{ name: x-stage, exact: gray }] }
            route: { cluster: gray }
          - match: { headers: [{ name: service, exact: "com.example.Echo:2.0" }] }
            route: { cluster: v2 }
          - match: { headers: [{ name: service, exact: "com.example.Echo:1.0" }, { name: method, exact: slow }] }
            route: { cluster: m }
          - match: { headers: [{ name: service, prefix: "com.example." }] }
            route: { cluster: v1 }
"#;
    let clusters = cluster("v1", &[s[0].addr])
        + &cluster("v2", &[s[1].addr])
        + &cluster("m", &[s[2].addr])
        + &cluster("gray", &[s[3].addr]);
    let (_sluice, addr) = start(routes, &clusters);

    // By version (service exact): each provider answers its own version's calls.
    assert_all_echoed(&BoltClient::new(addr).count(10).run(), 10, "v1");
    let run = BoltClient::new(addr).version("2.0").count(10).run();
    assert_all_echoed(&run, 10, "v2");
    // By method (read from the Hessian2 body: sofa-rpc-node sends no method header).
    let run = BoltClient::new(addr).method("slow").call_arg("10").run();
    assert_eq!(run.results, ["m:slow:10"], "{}", run.raw);
    // By a raw Bolt header the client put in the header map, before the service routes.
    let run = BoltClient::new(addr)
        .header("x-stage", "gray")
        .count(10)
        .run();
    assert_all_echoed(&run, 10, "gray");
    let run = BoltClient::new(addr)
        .header("x-stage", "blue")
        .version("2.0")
        .count(3)
        .run();
    assert_all_echoed(&run, 3, "v2");
    // The prefix route takes other com.example services to v1 (which does not publish this
    // one, and says so); anything else has no route.
    let run = BoltClient::new(addr).service("com.example.Other").run();
    assert!(run.has_error("not found service"), "{}", run.raw);
    let run = BoltClient::new(addr).service("org.example.Echo").run();
    assert!(run.has_error("no route"), "{}", run.raw);
}

#[test]
fn retries_take_calls_off_a_dead_provider() {
    let live = BoltServer::start("live");
    let dead = refused_addr();
    let routes = r#"
          - match: { headers: [{ name: x-retry, exact: none }] }
            route: { cluster: up }
          - match: { prefix: / }
            route: { cluster: up, retry_policy: { retry_on: "connect-failure,reset", num_retries: 2 } }
"#;
    let clusters = format!(
        "  - name: up\n    lb_policy: round_robin\n    circuit_breakers: {{ max_retries: 100 }}\n    endpoints: [{{ address: \"{dead}\" }}, {{ address: \"{}\" }}]\n",
        live.addr
    );
    let (sluice, addr) = start(routes, &clusters);
    // Round robin sends every other try to the dead host; the retry takes it to the live one.
    let run = BoltClient::new(addr).count(40).concurrency(4).run();
    assert_all_echoed(&run, 40, "live");
    let retries = stat(&sluice, "cluster.up.upstream_rq_retry");
    assert!(
        retries >= 1,
        "no call was retried: the dead host was never tried"
    );

    // Without the retry policy, the dead host's turns fail with Sluice's connect error.
    let run = BoltClient::new(addr)
        .header("x-retry", "none")
        .count(10)
        .run();
    assert!(run.ok >= 1 && run.errors >= 1, "{}", run.raw);
    assert!(run.has_error("upstream connect error"), "{}", run.raw);
    assert_eq!(run.mismatched, 0, "{}", run.raw);
}

#[test]
fn a_thousand_calls_in_flight_share_one_upstream_connection_and_ids_never_cross() {
    let server = BoltServer::start("up");
    let (_sluice, addr) = start(&all_to("up"), &cluster("up", &[server.addr]));
    // Two client processes, 500 calls in flight each, all of them `gather(1000, ..)`: the
    // server answers none until it holds all 1,000, then answers in reverse order. Both
    // clients number their calls from the same ids, so Sluice must remap them onto the
    // upstream connection and back; each call checks it got the echo of its own argument.
    const PER_CLIENT: u32 = 500;
    let runs = run_together(
        (0..2)
            .map(|c| {
                BoltClient::new(addr)
                    .gather(2 * PER_CLIENT)
                    .call_arg(&format!("c{c}"))
                    .count(PER_CLIENT)
                    .concurrency(PER_CLIENT)
                    .timeout_ms(15_000)
            })
            .collect(),
    );
    for run in &runs {
        assert_all_echoed(run, u64::from(PER_CLIENT), "up");
    }
    // All of it over a single connection to the server.
    assert_eq!(upstream_connections(addr, "up"), "1");
}

#[test]
fn bolt_v2_with_crc_goes_through_beside_v1_on_one_upstream_connection() {
    let server = BoltServer::start("v2");
    let routes = r#"
          - match: { headers: [{ name: service, prefix: "com.example." }] }
            route: { cluster: up }
"#;
    let (_sluice, addr) = start(routes, &cluster("up", &[server.addr]));
    // Sluice rewrites the id of every frame, so it recomputes each CRC; the server checks the
    // requests', the client the responses'. v1, v2 and v2 with CRC at once.
    let runs = run_together(vec![
        BoltClient::new(addr).v2(true).count(300).concurrency(16),
        BoltClient::new(addr).v2(false).count(300).concurrency(16),
        BoltClient::new(addr).count(300).concurrency(16),
    ]);
    for run in &runs {
        assert_all_echoed(run, 300, "v2");
    }
    assert_eq!(BoltClient::new(addr).v2(true).heartbeat(), "answered");
    let run = BoltClient::new(addr).v2(true).method("fail").run();
    assert!(run.has_error("echo failed on purpose"), "{}", run.raw);
    let run = BoltClient::new(addr)
        .v2(true)
        .service("org.elsewhere.Svc")
        .run();
    assert!(run.has_error("no route"), "{}", run.raw);
    assert_eq!(upstream_connections(addr, "v2"), "1");
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

/// A raw client connection that decodes what comes back with Sluice's codec.
struct Raw {
    conn: TcpStream,
    buf: BytesMut,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        Raw {
            conn: connect(addr),
            buf: BytesMut::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.conn.write_all(bytes).unwrap();
    }

    /// The next frame, or `None` when the connection is closed (EOF or reset). Fails on
    /// bytes that do not decode, a partial frame at the close, or the read deadline.
    fn recv(&mut self) -> Option<Frame> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(frame) = Bolt.decode(&mut self.buf, 1 << 20).unwrap() {
                return Some(frame);
            }
            match self.conn.read(&mut chunk) {
                Ok(0) => {
                    assert!(self.buf.is_empty(), "closed after a partial frame");
                    return None;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e} (the connection was left open?)"),
            }
        }
    }

    /// Expects the connection to close without another frame.
    fn expect_closed(&mut self, what: &str) {
        if let Some(frame) = self.recv() {
            panic!("{what}: expected the close, got {frame:?}");
        }
    }

    /// Expects Sluice's CODEC_EXCEPTION reply to `id` saying `why`, then the close.
    fn expect_codec_error(&mut self, id: u64, why: &str) {
        let reply = self
            .recv()
            .unwrap_or_else(|| panic!("{why}: closed without an error reply"));
        assert_eq!(reply.kind, FrameKind::Response, "{why}");
        assert_eq!(
            (reply.id, reply.status),
            (id, u32::from(status::CODEC_EXCEPTION)),
            "{why}"
        );
        assert!(contains(&reply.body, why), "{why}: {:?}", reply.body);
        self.expect_closed(why);
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// `frame`'s bytes under another request id (the CRC, if any, recomputed).
fn with_id(frame: &Frame, id: u64) -> Vec<u8> {
    let mut frame = frame.clone();
    frame.id = id;
    let mut out = BytesMut::new();
    Bolt.encode(&frame, &mut out).unwrap();
    out.to_vec()
}

/// Sends a copy of the captured echo call on `raw` and checks the server's answer.
fn good_call(raw: &mut Raw, request: &Frame, id: u64) {
    raw.send(&with_id(request, id));
    let r = raw.recv().expect("the good connection was closed");
    assert_eq!((r.kind, r.id, r.status), (FrameKind::Response, id, 0));
    assert!(contains(&r.body, "bad:hello-0"), "{:?}", r.body);
}

#[test]
fn bad_frames_get_a_bolt_error_then_the_close_and_nothing_else_notices() {
    let server = BoltServer::start("bad");
    let (mut sluice, addr) = start_with(
        "          max_frame_size: 64KiB\n",
        &all_to("up"),
        &cluster("up", &[server.addr]),
    );
    // Genuine requests from the real client, to take apart: `echo("hello-0")` in v1, and in
    // v2 with a CRC.
    let v1 = capture_request(|a| BoltClient::new(a).timeout_ms(1000));
    let v2 = capture_request(|a| BoltClient::new(a).v2(true).timeout_ms(1000));
    let v1_fixed = FixedHeader::parse(&v1.raw).unwrap().unwrap();
    assert_eq!((v1_fixed.proto, v1_fixed.codec), (1, 1));
    assert!(FixedHeader::parse(&v2.raw).unwrap().unwrap().has_crc());

    // A real client keeps calling on its own connection while the bad ones come and go.
    let load = thread::spawn(move || BoltClient::new(addr).count(1000).concurrency(8).run());
    sluice.poll("the load client's first call", || {
        (stat(&sluice, "cluster.up.upstream_rq_total") > 0).then_some(())
    });
    let mut good = Raw::connect(addr);
    good_call(&mut good, &v1, 1);

    // A bad protocol byte: nothing to answer (no request id), so just the close.
    let mut bad = Raw::connect(addr);
    let mut bytes = v1.raw.to_vec();
    bytes[0] = 0x07;
    bad.send(&bytes);
    bad.expect_closed("bad protocol byte");

    // A length over max_frame_size (64 KiB here): refused on the fixed header alone.
    let mut big = Raw::connect(addr);
    let mut fixed = with_id(&v1, 9)[..22].to_vec();
    fixed[18..22].copy_from_slice(&(1u32 << 20).to_be_bytes());
    big.send(&fixed);
    big.expect_codec_error(9, "over the limit of 65536");

    // A header map whose first key runs past the map.
    let mut map = Raw::connect(addr);
    let mut bytes = with_id(&v1, 10);
    let at = 22 + usize::from(v1_fixed.class_len);
    bytes[at..at + 4].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    map.send(&bytes);
    map.expect_codec_error(10, "truncated Bolt header map");

    // A class name whose length is negative, as the Java short it is.
    let mut class = Raw::connect(addr);
    let mut bytes = with_id(&v1, 11);
    bytes[14..16].copy_from_slice(&0x8001u16.to_be_bytes());
    class.send(&bytes);
    class.expect_codec_error(11, "negative Bolt length");

    // A command code Bolt does not have.
    let mut cmd = Raw::connect(addr);
    let mut bytes = with_id(&v1, 12);
    bytes[2..4].copy_from_slice(&9u16.to_be_bytes());
    cmd.send(&bytes);
    cmd.expect_codec_error(12, "unknown Bolt command code 9");

    // A v2 frame whose CRC does not match its bytes.
    let mut crc = Raw::connect(addr);
    let mut bytes = with_id(&v2, 13);
    let last = bytes.len() - 5;
    bytes[last] ^= 0x55;
    crc.send(&bytes);
    crc.expect_codec_error(13, "CRC32 does not match");

    good_call(&mut good, &v1, 2);

    // A truncated frame, then the client's close: nothing to answer, the connection ends.
    let mut cut = Raw::connect(addr);
    let bytes = with_id(&v1, 14);
    cut.send(&bytes[..bytes.len() / 2]);
    cut.conn.shutdown(Shutdown::Write).unwrap();
    cut.expect_closed("truncated frame");

    // Garbage after a valid frame: nothing more is read, the valid call in flight is still
    // answered, then the connection closes.
    let mut tail = Raw::connect(addr);
    let mut bytes = with_id(&v1, 15);
    bytes.extend_from_slice(&[0xff; 32]);
    tail.send(&bytes);
    let r = tail.recv().expect("the valid call's answer");
    assert_eq!((r.id, r.status), (15, 0), "{r:?}");
    assert!(contains(&r.body, "bad:hello-0"), "{:?}", r.body);
    tail.expect_closed("garbage after a valid frame");

    // A real client whose argument makes the frame too large gets the error as a Bolt error.
    let run = BoltClient::new(addr).call_arg(&"x".repeat(70_000)).run();
    assert_eq!(run.errors, 1, "{}", run.raw);
    assert!(run.has_error("over the limit of 65536"), "{}", run.raw);

    // Nobody else noticed, and the process is up.
    good_call(&mut good, &v1, 3);
    let run = load.join().unwrap();
    assert_all_echoed(&run, 1000, "bad");
    assert!(
        sluice.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "sluice exited; log:\n{}",
        sluice.log()
    );
    assert!(!sluice.log().contains("panicked"), "{}", sluice.log());
    assert_all_echoed(&BoltClient::new(addr).count(5).run(), 5, "bad");
}

#[test]
fn an_upstream_response_over_max_frame_size_fails_only_its_own_call() {
    // A long tag makes the server's answers longer than the calls: an echo of 62,000 bytes
    // fits the 64 KiB limit on the way up, and its answer does not on the way down.
    let tag = "t".repeat(4000);
    let server = BoltServer::start(&tag);
    let (sluice, addr) = start_with(
        "          max_frame_size: 64KiB\n",
        &all_to("up"),
        &cluster("up", &[server.addr]),
    );
    // Twenty calls wait at the server, on Sluice's one connection to it...
    let waiting = thread::spawn(move || {
        BoltClient::new(addr)
            .gather(21)
            .count(20)
            .concurrency(20)
            .timeout_ms(15_000)
            .run()
    });
    sluice.poll("20 calls in flight upstream", || {
        (stat(&sluice, "cluster.up.upstream_rq_active") == 20).then_some(())
    });
    // ...when the oversized answer comes down it. Only its own call fails, with Sluice's
    // message; the connection stays up.
    let run = BoltClient::new(addr).call_arg(&"x".repeat(62_000)).run();
    assert_eq!((run.ok, run.errors), (0, 1), "{}", run.raw);
    assert!(
        run.has_error("upstream response too large") && run.has_error("over max_frame_size 65536"),
        "{}",
        run.raw
    );
    // The 21st call releases the twenty, and every one is answered.
    let run = BoltClient::new(addr).gather(21).call_arg("last").run();
    assert_all_echoed(&run, 1, &tag);
    assert_all_echoed(&waiting.join().unwrap(), 20, &tag);
    assert_eq!(upstream_connections(addr, &tag), "1");
}
