//! The Dubbo fixture (tests/dubbo: Apache Dubbo's Java library as provider and consumer)
//! checked on its own, consumer straight to provider, so that a failure of a proxy test
//! through Sluice is known to be Sluice's; and Sluice's Dubbo codec answering the real Java
//! consumer (local replies, heartbeats, the read-only event) with no proxy in between.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use common::dubbo::{Consumer, Provider, ProviderOpts};
use common::spawn_server;
use sluice_xprotocol::dubbo::{hessian, Dubbo};
use sluice_xprotocol::{Frame, FrameKind, LocalError, Protocol};

#[test]
fn calls_with_attachments_concurrently() {
    let p = Provider::start("a");
    let r = Consumer::new(p.addr)
        .count(40)
        .concurrency(8)
        .attachment("k", "v")
        .run();
    assert_eq!((r.ok, r.errors, r.mismatches), (40, 0, 0), "{}", r.raw);
    assert_eq!(r.tags.get("a"), Some(&40));

    // The provider sees the attachments: one fixed, one different on every call.
    for key in ["k", "call-index"] {
        let r = Consumer::new(p.addr)
            .method("attachment")
            .arg(key)
            .count(10)
            .concurrency(4)
            .attachment("k", "v")
            .run();
        assert_eq!(
            (r.ok, r.errors, r.mismatches),
            (10, 0, 0),
            "{key}: {}",
            r.raw
        );
    }
}

#[test]
fn an_exception_reaches_the_consumer_with_its_message() {
    let p = Provider::start("a");
    let r = Consumer::new(p.addr).method("fail").count(2).run();
    assert_eq!((r.ok, r.errors), (0, 2), "{}", r.raw);
    assert_eq!(
        r.error_types.get("java.lang.IllegalStateException"),
        Some(&2)
    );
    assert!(r.has_error("echo failed on purpose (a)"), "{}", r.raw);
}

#[test]
fn group_and_version_select_the_service() {
    let p = Provider::start_with(ProviderOpts::new("g").version("2.0").group("blue"));
    let r = Consumer::new(p.addr)
        .version("2.0")
        .group("blue")
        .count(3)
        .run();
    assert_eq!((r.ok, r.errors), (3, 0), "{}", r.raw);
    for wrong in [
        Consumer::new(p.addr).version("2.0").group("green"),
        Consumer::new(p.addr).version("1.0").group("blue"),
    ] {
        let r = wrong.run();
        assert_eq!((r.ok, r.errors), (0, 1), "{}", r.raw);
    }
}

#[test]
fn timeouts_and_a_full_thread_pool() {
    let p = Provider::start_with(ProviderOpts::new("t").threads(1));
    let r = Consumer::new(p.addr)
        .method("slow")
        .arg(2000)
        .timeout_ms(300)
        .run();
    assert_eq!(r.errors, 1, "{}", r.raw);
    assert!(r.has_error("timeout"), "{}", r.raw);
    // The provider's one thread still runs that call (the consumer only stopped waiting):
    // until a plain call gets through, it turns every call away.
    let freed = (0..20).any(|_| Consumer::new(p.addr).run().ok == 1);
    assert!(freed, "the provider's thread never came free");
    // Four slow calls at once on a one-thread pool: the provider turns some away with
    // SERVER_THREADPOOL_EXHAUSTED_ERROR.
    let r = Consumer::new(p.addr)
        .method("slow")
        .arg(1000)
        .count(4)
        .concurrency(4)
        .timeout_ms(5000)
        .run();
    assert!(r.ok >= 1 && r.errors >= 1, "{}", r.raw);
    assert!(r.has_error("thread pool is exhausted"), "{}", r.raw);
}

// ---------------------------------------------------------------------------------------------
// Sluice's codec as the provider
// ---------------------------------------------------------------------------------------------

/// A provider made of Sluice's Dubbo codec: answers heartbeats itself (counting them) and
/// hands each request to `answer`, which writes what it likes with [`send`].
fn codec_provider(
    answer: impl Fn(&Frame, &mut TcpStream) + Send + Sync + 'static,
) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let heartbeats = Arc::new(AtomicUsize::new(0));
    let counted = heartbeats.clone();
    let addr = spawn_server(move |mut conn: TcpStream| {
        let mut buf = BytesMut::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            while let Some(frame) = Dubbo.decode(&mut buf, 1 << 20).unwrap() {
                match frame.kind {
                    FrameKind::HeartbeatRequest => {
                        counted.fetch_add(1, Ordering::Relaxed);
                        send(&mut conn, &Dubbo.heartbeat_reply(&frame).unwrap());
                    }
                    FrameKind::Request => answer(&frame, &mut conn),
                    _ => {}
                }
            }
        }
    });
    (addr, heartbeats)
}

fn send(conn: &mut TcpStream, frame: &Frame) {
    let mut out = BytesMut::new();
    Dubbo.encode(frame, &mut out).unwrap();
    let _ = conn.write_all(&out);
}

/// An OK response to `request` carrying the string `value` (flag RESPONSE_VALUE).
fn value_response(request: &Frame, value: &str) -> Frame {
    let mut body = BytesMut::new();
    body.put_u8(0x91);
    hessian::write_string(&mut body, value.as_bytes()).unwrap();
    let mut raw = BytesMut::new();
    raw.put_slice(&[0xda, 0xbb, 0x02, 20]);
    raw.put_u64(request.id);
    raw.put_u32(body.len() as u32);
    raw.put_slice(&body);
    let raw = raw.freeze();
    let mut f = Frame::new(
        FrameKind::Response,
        request.id,
        Default::default(),
        raw.slice(16..),
        raw,
    );
    f.status = 20;
    f
}

const LOCAL_ERRORS: [LocalError; 6] = [
    LocalError::NoRoute,
    LocalError::NoHealthyUpstream,
    LocalError::Overflow,
    LocalError::Timeout,
    LocalError::UpstreamFailure,
    LocalError::BadRequest,
];

#[test]
fn local_replies_and_heartbeats_reach_the_java_consumer() {
    // Call i gets the local reply for LOCAL_ERRORS[i], its index read from the attachment the
    // consumer sends.
    let (addr, heartbeats) = codec_provider(|req, conn| {
        let i: usize = req
            .headers()
            .get_str("call-index")
            .unwrap()
            .parse()
            .unwrap();
        let error = LOCAL_ERRORS[i];
        let message = format!("sluice local reply {i}: {}", error.as_str());
        send(conn, &Dubbo.local_reply(req, error, &message).unwrap());
    });
    let r = Consumer::new(addr)
        .count(LOCAL_ERRORS.len() as u32)
        .heartbeat_ms(200)
        .linger_ms(1000)
        .run();
    assert_eq!(
        (r.ok, r.errors),
        (0, LOCAL_ERRORS.len() as u64),
        "{}",
        r.raw
    );
    for (i, e) in LOCAL_ERRORS.iter().enumerate() {
        let want = format!("sluice local reply {i}: {}", e.as_str());
        assert!(r.has_error(&want), "{want} not in {}", r.raw);
    }
    assert!(heartbeats.load(Ordering::Relaxed) >= 2, "{}", r.raw);
}

#[test]
fn goaway_stops_the_java_consumer_sending() {
    // The read-only event goes out before each answer; the consumer soon sends nothing more
    // on the connection and fails its calls instead. (Soon, not at once: Dubbo handles events
    // on another thread than responses, and its directory notices the read-only connection a
    // call or two later.)
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let (addr, _) = codec_provider(move |req, conn| {
        seen.fetch_add(1, Ordering::Relaxed);
        send(conn, &Dubbo.goaway().unwrap());
        let arg = format!("codec:x#{}", req.headers().get_str("call-index").unwrap());
        send(conn, &value_response(req, &arg));
    });
    let r = Consumer::new(addr).count(10).run();
    assert!(r.ok >= 1 && r.errors >= 1, "{}", r.raw);
    assert!(r.has_error("No provider available"), "{}", r.raw);
    assert_eq!(requests.load(Ordering::Relaxed) as u64, r.ok, "{}", r.raw);
}
