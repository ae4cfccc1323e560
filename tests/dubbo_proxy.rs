//! Dubbo through Sluice with Apache Dubbo's own Java library on both sides (tests/dubbo: a
//! provider and a consumer, dubbo protocol, hessian2, a direct URL to Sluice's address, no
//! registry): calls with concurrency, attachments, exceptions, heartbeats, the route timeout,
//! routing by interface, method, version and group, retries off a dead provider, 1,000 calls
//! in flight on one upstream connection, and hand-made bad frames next to a working consumer.
//!
//! JVMs start slowly, so each test starts its provider(s) and one consumer once, and the
//! consumer runs several steps on the same connection.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use bytes::{BufMut, BytesMut};
use common::dubbo::{Consumer, Provider, ProviderOpts};
use common::{connect, http_get, refused_addr, rpc, spawn_server, Sluice};
use sluice_xprotocol::dubbo::{hessian, Dubbo};
use sluice_xprotocol::{Frame, FrameKind, Protocol};

/// Sluice with a `dubbo` rpc_proxy listener (see `common::rpc::start`).
fn start(routes: &str, clusters: &str) -> (Sluice, SocketAddr) {
    rpc::start("dubbo", "", routes, clusters)
}

/// A round-robin cluster of `addrs`.
fn cluster(name: &str, addrs: &[SocketAddr]) -> String {
    rpc::cluster(name, addrs) + "    lb_policy: round_robin\n"
}

/// Every Echo call goes to `cluster`.
fn all_to(cluster: &str) -> String {
    format!(
        "          - match: {{ headers: [{{ name: service, exact: com.example.Echo }}] }}\n            route: {{ cluster: {cluster} }}\n"
    )
}

/// A TCP relay in front of `target` that counts the connections it accepts: how many times a
/// consumer connected (Dubbo reconnects on its own, so a consumer's calls alone cannot tell).
struct Relay {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Relay {
    fn start(target: SocketAddr) -> Relay {
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        let addr = spawn_server(move |down: TcpStream| {
            counted.fetch_add(1, Ordering::SeqCst);
            let Ok(up) = TcpStream::connect(target) else {
                return;
            };
            let (mut down_r, mut up_w) = (down.try_clone().unwrap(), up.try_clone().unwrap());
            let upward = thread::spawn(move || {
                let _ = std::io::copy(&mut down_r, &mut up_w);
                let _ = up_w.shutdown(Shutdown::Write);
            });
            let (mut up_r, mut down_w) = (up, down);
            let _ = std::io::copy(&mut up_r, &mut down_w);
            let _ = down_w.shutdown(Shutdown::Write);
            let _ = upward.join();
        });
        Relay { addr, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// One `cluster.<name>.<stat>` counter from the admin's `/stats`.
fn stat(sluice: &Sluice, name: &str) -> u64 {
    let (_, body) = http_get(sluice.admin, "/stats").unwrap();
    body.lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(": ")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {name} in /stats:\n{body}"))
}

#[test]
fn calls_attachments_exceptions_heartbeats_and_the_route_timeout() {
    let mut provider = Provider::start("p");
    let routes = r#"
          - match: { headers: [{ name: service, exact: com.example.Echo }, { name: method, exact: slow }] }
            route: { cluster: p, timeout: 500ms }
"#
    .to_string()
        + &all_to("p");
    let (sluice, addr) = start(&routes, &cluster("p", &[provider.addr]));
    let relay = Relay::start(addr);
    // Heartbeats every second. Dubbo's consumer counts a connection it has read nothing from
    // for three intervals as down: it fails calls ("No provider available") and reconnects,
    // so unanswered heartbeats show as failed calls after the idle step and a second
    // connection at the relay. (Shorter intervals make a consumer JVM starved of CPU on a
    // loaded machine fail calls with no proxy at all.)
    let steps = Consumer::new(relay.addr)
        .heartbeat_ms(1_000)
        // 0: concurrent calls, each answered with its own argument by the provider.
        .count(200)
        .concurrency(16)
        .attachment("trace", "t-1")
        // 1: a custom attachment reaches the provider (it answers the value it received).
        .then()
        .method("attachment")
        .arg("trace")
        .attachment("trace", "t-2")
        .count(20)
        .concurrency(4)
        // 2: one that differs on every call (`call-index`), so none is mixed up on the way.
        .then()
        .method("attachment")
        .arg("call-index")
        .count(20)
        .concurrency(4)
        // 3: the provider throws; the consumer gets the exception itself.
        .then()
        .method("fail")
        .count(3)
        // 4: idle for five heartbeat intervals, then more calls.
        .then()
        .idle_ms(5_000)
        .count(10)
        // 5: slower than the route's 500 ms timeout (but not the consumer's 15 s).
        .then()
        .method("slow")
        .arg(3_000)
        .count(2)
        .concurrency(2)
        // 6: the late answers are dropped, and the connection serves on.
        .then()
        .count(10)
        .concurrency(2)
        .run_steps();

    let r = &steps[0];
    assert_eq!((r.ok, r.errors, r.mismatches), (200, 0, 0), "{}", r.raw);
    assert_eq!(r.tags.get("p"), Some(&200), "{}", r.raw);
    for r in &steps[1..=2] {
        assert_eq!((r.ok, r.errors, r.mismatches), (20, 0, 0), "{}", r.raw);
    }
    let r = &steps[3];
    assert_eq!((r.ok, r.errors), (0, 3), "{}", r.raw);
    assert_eq!(
        r.error_types.get("java.lang.IllegalStateException"),
        Some(&3),
        "{}",
        r.raw
    );
    assert!(r.has_error("echo failed on purpose (p)"), "{}", r.raw);
    let r = &steps[4];
    assert_eq!((r.ok, r.errors), (10, 0), "{}", r.raw);
    let r = &steps[5];
    assert_eq!((r.ok, r.errors), (0, 2), "{}", r.raw);
    assert!(
        r.has_error("upstream timeout: no response within 500ms (cluster \"p\")"),
        "{}",
        r.raw
    );
    let r = &steps[6];
    assert_eq!((r.ok, r.errors, r.mismatches), (10, 0, 0), "{}", r.raw);

    // Sluice answered every heartbeat: the consumer never reconnected.
    assert_eq!(relay.accepted(), 1, "the consumer reconnected");
    // Every call went up one connection.
    assert_eq!(
        provider.connections().len(),
        1,
        "{:?}",
        provider.connections()
    );
    assert_eq!(stat(&sluice, "cluster.p.upstream_rq_total"), 265);
}

#[test]
fn routes_by_interface_method_version_and_group() {
    // Both providers export every variant the consumer asks for, so each call is answered
    // wherever it goes: its tag shows where Sluice sent it.
    let variants = |tag: &str| {
        ProviderOpts::new(tag)
            .export("1.0", None)
            .export("2.0", None)
            .export("1.0", Some("a"))
            .export("1.0", Some("b"))
            .export("3.0", None)
    };
    let one = Provider::start_with(variants("one"));
    let two = Provider::start_with(variants("two"));
    let routes = r#"
          - match: { headers: [{ name: service, exact: com.example.Other }] }
            route: { cluster: two }
          - match: { headers: [{ name: service, exact: com.example.Echo }, { name: version, exact: "2.0" }] }
            route: { cluster: two }
          - match: { headers: [{ name: interface, exact: com.example.Echo }, { name: group, exact: b }] }
            route: { cluster: two }
          - match: { headers: [{ name: service, exact: com.example.Echo }, { name: method, exact: slow }] }
            route: { cluster: two }
          - match: { headers: [{ name: service, exact: com.example.Echo }, { name: version, exact: "1.0" }] }
            route: { cluster: one }
"#;
    let clusters = cluster("one", &[one.addr]) + &cluster("two", &[two.addr]);
    let (_sluice, addr) = start(routes, &clusters);
    let steps = Consumer::new(addr)
        .count(20)
        .concurrency(4)
        .then()
        .version("2.0")
        .count(20)
        .concurrency(4)
        .then()
        .group("a")
        .count(20)
        .concurrency(4)
        .then()
        .group("b")
        .count(20)
        .concurrency(4)
        .then()
        .method("slow")
        .arg(1)
        .count(20)
        .concurrency(4)
        // No route names version 3.0: Sluice's own "no route" reply.
        .then()
        .version("3.0")
        .count(2)
        .run_steps();
    let want = ["one", "two", "one", "two", "two"];
    for (r, tag) in steps.iter().zip(want) {
        assert_eq!((r.ok, r.errors, r.mismatches), (20, 0, 0), "{}", r.raw);
        assert_eq!(r.tags.get(tag), Some(&20), "step {}: {}", r.step, r.raw);
    }
    let r = &steps[5];
    assert_eq!((r.ok, r.errors), (0, 2), "{}", r.raw);
    assert!(
        r.has_error(
            "no route: listener \"rpc\" has no route for service \"com.example.Echo\" method \"echo\""
        ),
        "{}",
        r.raw
    );
}

#[test]
fn retries_move_calls_off_a_dead_provider() {
    let live = Provider::start("live");
    let dead = refused_addr();
    let routes = r#"
          - match: { headers: [{ name: service, exact: com.example.Echo }] }
            route: { cluster: up, retry_policy: { retry_on: "connect-failure,reset", num_retries: 2 } }
"#;
    // Six callers at once: more retries in flight than the default retry breaker's three
    // (a retry over it does not happen, as in Envoy), so the breaker is raised.
    let clusters =
        cluster("up", &[dead, live.addr]) + "    circuit_breakers: { max_retries: 100 }\n";
    let (sluice, addr) = start(routes, &clusters);
    let r = Consumer::new(addr).count(60).concurrency(6).run();
    assert_eq!((r.ok, r.errors, r.mismatches), (60, 0, 0), "{}", r.raw);
    assert_eq!(r.tags.get("live"), Some(&60), "{}", r.raw);
    // Round robin sent first tries to the dead host (every other one); each was retried on
    // the live one.
    let retries = stat(&sluice, "cluster.up.upstream_rq_retry");
    assert!(retries >= 10, "{retries} retries");
    assert_eq!(stat(&sluice, "cluster.up.upstream_rq_total"), 60 + retries);
    assert_eq!(stat(&sluice, "cluster.up.upstream_rq_retry_overflow"), 0);
}

#[test]
fn a_thousand_calls_in_flight_share_one_upstream_connection() {
    const CALLS: u32 = 1_000;
    // Threads for every held call, and some to spare.
    let mut provider = Provider::start_with(ProviderOpts::new("p").threads(CALLS + 100));
    let (_sluice, addr) = start(&all_to("p"), &cluster("p", &[provider.addr]));
    let relay = Relay::start(addr);
    // `gather`: the provider answers none of the calls until it holds all 1,000 of them, so
    // they are all in flight at once. Four consumer connections, one upstream connection.
    let r = Consumer::new(relay.addr)
        .connections(4)
        .timeout_ms(60_000)
        .method("gather")
        .count(CALLS)
        .concurrency(CALLS)
        .run();
    assert_eq!(
        (r.ok, r.errors, r.mismatches),
        (u64::from(CALLS), 0, 0),
        "{}",
        r.raw
    );
    assert_eq!(r.tags.get("p"), Some(&u64::from(CALLS)), "{}", r.raw);
    eprintln!("{CALLS} gathered calls through sluice: {} ms", r.elapsed_ms);
    assert_eq!(relay.accepted(), 4);
    assert_eq!(
        provider.connections().len(),
        1,
        "{:?}",
        provider.connections()
    );
}

// ---------------------------------------------------------------------------------------------
// Hand-made frames
// ---------------------------------------------------------------------------------------------

/// A Dubbo frame of `flag` (request, two-way, serialization) around `body`.
fn frame(flag: u8, id: u64, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0xda, 0xbb, flag, 0];
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend_from_slice(body);
    f
}

const TWO_WAY_HESSIAN2: u8 = 0x80 | 0x40 | 2;

/// `echo(arg)` on com.example.Echo 1.0, as a Dubbo consumer writes it.
fn echo_request(id: u64, arg: &str) -> Vec<u8> {
    let mut body = BytesMut::new();
    for s in [
        "2.0.2",
        "com.example.Echo",
        "1.0",
        "echo",
        "Ljava/lang/String;",
        arg,
    ] {
        hessian::write_string(&mut body, s.as_bytes()).unwrap();
    }
    body.put_u8(b'H');
    for s in ["path", "com.example.Echo", "version", "1.0"] {
        hessian::write_string(&mut body, s.as_bytes()).unwrap();
    }
    body.put_u8(b'Z');
    frame(TWO_WAY_HESSIAN2, id, &body)
}

/// A raw client connection that reads Dubbo frames.
struct Raw {
    s: TcpStream,
    buf: BytesMut,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        Raw {
            s: connect(addr),
            buf: BytesMut::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// The next frame, or `None` once the peer closed.
    fn recv(&mut self) -> Option<Frame> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(f) = Dubbo.decode(&mut self.buf, 1 << 20).unwrap() {
                return Some(f);
            }
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading a dubbo frame: {e}"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn expect_closed(&mut self, what: &str) {
        if let Some(f) = self.recv() {
            panic!("{what}: expected the close, got {f:?}");
        }
    }

    /// A BAD_REQUEST (40) reply to `id` whose message contains `text`.
    fn expect_bad_request(&mut self, id: u64, text: &str) {
        let r = self.recv().expect("an error response before the close");
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(
            (r.kind, r.id, r.status),
            (FrameKind::Response, id, 40),
            "{body}"
        );
        assert!(body.contains(text), "{text:?} not in {body:?}");
    }
}

/// The provider's answer to `echo_request(id, arg)`.
fn expect_echo(r: Option<Frame>, id: u64, want: &str) {
    let r = r.expect("an answer");
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(
        (r.kind, r.id, r.status),
        (FrameKind::Response, id, 20),
        "{body}"
    );
    assert!(body.contains(want), "{want:?} not in {body:?}");
}

#[test]
fn bad_frames_close_only_their_own_connection() {
    let provider = Provider::start("p");
    let (mut sluice, addr) = start(&all_to("p"), &cluster("p", &[provider.addr]));
    let relay = Relay::start(addr);
    // A real consumer, connected and working before the bad input and after it.
    let mut java = Consumer::new(relay.addr)
        .count(20)
        .concurrency(4)
        .then()
        .await_go()
        .count(20)
        .concurrency(4)
        .spawn();
    let r = java.report();
    assert_eq!((r.ok, r.errors, r.mismatches), (20, 0, 0), "{}", r.raw);
    // And a hand-made one, kept open throughout.
    let mut good = Raw::connect(addr);
    good.send(&echo_request(1, "before"));
    expect_echo(good.recv(), 1, "p:before");

    // Bad magic: nothing to answer (no request id), the close.
    let mut c = Raw::connect(addr);
    c.send(b"\xca\xfe\xba\xbe not dubbo at all");
    c.expect_closed("bad magic");

    // A length over max_frame_size (16 MiB by default): BAD_REQUEST for its id as soon as the
    // header is in, then the close.
    let mut c = Raw::connect(addr);
    let mut header = frame(TWO_WAY_HESSIAN2, 7, b"");
    header[12..16].copy_from_slice(&(16u32 << 20).to_be_bytes());
    c.send(&header);
    c.expect_bad_request(7, "over the limit of 16777216");
    c.expect_closed("too large");

    // A truncated frame, then the client's close: dropped without an answer.
    let mut c = Raw::connect(addr);
    let whole = echo_request(8, "cut");
    c.send(&whole[..whole.len() - 5]);
    c.s.shutdown(Shutdown::Write).unwrap();
    c.expect_closed("truncated");

    // Garbage after a valid frame: the valid call is answered, the garbage (no magic) ends
    // the connection.
    let mut c = Raw::connect(addr);
    let mut bytes = echo_request(9, "valid");
    bytes.extend_from_slice(b"\x00\x01 garbage garbage garbage");
    c.send(&bytes);
    expect_echo(c.recv(), 9, "p:valid");
    c.expect_closed("garbage after a valid frame");

    // A body that is not Hessian2: BAD_REQUEST with the reason, then the close.
    let mut c = Raw::connect(addr);
    c.send(&frame(TWO_WAY_HESSIAN2, 10, b"\xff\xfe\xfd not hessian"));
    c.expect_bad_request(10, "dubbo request body");
    c.expect_closed("bad hessian");

    // A body in a serialization Sluice does not read (6, fastjson): the same.
    let mut c = Raw::connect(addr);
    c.send(&frame(0x80 | 0x40 | 6, 11, b"{}"));
    c.expect_bad_request(11, "serialization id 6 is not supported");
    c.expect_closed("fastjson");

    // The bad connections are gone; the good ones never noticed.
    good.send(&echo_request(2, "after"));
    expect_echo(good.recv(), 2, "p:after");
    java.go();
    let r = java.report();
    assert_eq!((r.ok, r.errors, r.mismatches), (20, 0, 0), "{}", r.raw);
    java.finish();
    assert_eq!(relay.accepted(), 1, "the consumer reconnected");
    assert!(
        sluice.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "sluice exited; log:\n{}",
        sluice.log()
    );
    assert_eq!(http_get(sluice.admin, "/ready").unwrap().0, 200);
    assert!(!sluice.log().contains("panicked"), "{}", sluice.log());
}

#[test]
fn rbac_answers_a_denied_dubbo_call_with_a_dubbo_error() {
    let provider = Provider::start("p");
    let extra = "          stream_filters:
            - rbac:
                rules:
                  action: DENY
                  policies:
                    no-fail:
                      permissions: [ { header: { name: method, exact: fail } } ]
                      principals: [ { any: true } ]
";
    let (sluice, addr) = rpc::start(
        "dubbo",
        extra,
        &all_to("p"),
        &cluster("p", &[provider.addr]),
    );
    let steps = Consumer::new(addr)
        // 0: allowed calls pass.
        .count(3)
        // 1: the denied method gets Dubbo's error reply, with RBAC's message.
        .then()
        .method("fail")
        .count(2)
        // 2: the connection is still good.
        .then()
        .count(3)
        .run_steps();
    assert_eq!((steps[0].ok, steps[0].errors), (3, 0), "{}", steps[0].raw);
    assert_eq!((steps[1].ok, steps[1].errors), (0, 2), "{}", steps[1].raw);
    assert!(
        steps[1].has_error("RBAC: access denied"),
        "{}",
        steps[1].raw
    );
    assert_eq!((steps[2].ok, steps[2].errors), (3, 0), "{}", steps[2].raw);
    assert_eq!(stat(&sluice, "rpc.rpc.rbac.denied"), 2);
}
