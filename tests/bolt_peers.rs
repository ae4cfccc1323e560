//! The Bolt test peers (tests/bolt: sofa-rpc-node's server and client) against each other, and
//! Sluice's Bolt codec between them: proves the fixture the rpc_proxy tests drive works when
//! nothing sits in the middle, and that what the codec re-encodes, and the frames it makes
//! itself (local replies, heartbeats and their acks), are what a real Bolt peer accepts.
//! CI installs the node modules with `npm ci` in tests/bolt.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::bolt::{BoltClient, BoltServer};
use common::{connect, spawn_server};
use sluice_xprotocol::bolt::Bolt;
use sluice_xprotocol::{Frame, FrameKind, LocalError, Protocol};

// ---------------------------------------------------------------------------------------------
// The fixture, client straight to server
// ---------------------------------------------------------------------------------------------

#[test]
fn concurrent_echo_calls_each_get_their_own_answer() {
    let server = BoltServer::start("a");
    let run = BoltClient::new(server.addr)
        .count(200)
        .concurrency(20)
        .run();
    assert_eq!(
        (run.ok, run.errors, run.mismatched),
        (200, 0, 0),
        "{}",
        run.raw
    );
    assert_eq!(run.tags.get("a"), Some(&200));
    assert_eq!(run.results.first().map(String::as_str), Some("a:hello-0"));
}

#[test]
fn bolt_v2_calls_with_and_without_crc() {
    let server = BoltServer::start("v2");
    for crc in [false, true] {
        let run = BoltClient::new(server.addr)
            .v2(crc)
            .count(50)
            .concurrency(5)
            .run();
        assert_eq!((run.ok, run.mismatched), (50, 0), "crc {crc}: {}", run.raw);
    }
}

#[test]
fn a_thrown_error_reaches_the_client_with_its_message() {
    let server = BoltServer::start("a");
    let run = BoltClient::new(server.addr).method("fail").count(3).run();
    assert_eq!((run.ok, run.errors), (0, 3), "{}", run.raw);
    assert!(run.has_error("echo failed on purpose"), "{}", run.raw);
}

#[test]
fn unknown_services_and_versions_are_errors() {
    let server = BoltServer::start_version("a", "2.0");
    for run in [
        BoltClient::new(server.addr).run(),
        BoltClient::new(server.addr)
            .service("com.example.Nope")
            .version("2.0")
            .run(),
    ] {
        assert_eq!(run.errors, 1, "{}", run.raw);
        assert!(run.has_error("not found service"), "{}", run.raw);
    }
    let run = BoltClient::new(server.addr).version("2.0").run();
    assert_eq!(run.ok, 1, "{}", run.raw);
}

#[test]
fn a_client_timeout_cuts_a_slow_call() {
    let server = BoltServer::start("a");
    let start = Instant::now();
    let run = BoltClient::new(server.addr)
        .method("slow")
        .call_arg("3000")
        .timeout_ms(300)
        .count(2)
        .concurrency(2)
        .run();
    assert_eq!(run.errors, 2, "{}", run.raw);
    assert!(run
        .error_names
        .contains(&"RpcResponseTimeoutError".to_string()));
    assert!(
        start.elapsed() < Duration::from_millis(2900),
        "cut, not awaited"
    );
    let run = BoltClient::new(server.addr)
        .method("slow")
        .call_arg("50")
        .run();
    assert_eq!(run.results, ["a:slow:50"], "{}", run.raw);
}

#[test]
fn heartbeats_are_answered() {
    let server = BoltServer::start("a");
    assert_eq!(BoltClient::new(server.addr).heartbeat(), "answered");
    assert_eq!(
        BoltClient::new(server.addr).v2(true).heartbeat(),
        "answered"
    );
}

// ---------------------------------------------------------------------------------------------
// Sluice's codec against the real peers
// ---------------------------------------------------------------------------------------------

/// Reads Bolt frames from `conn` until EOF, handing each to `on_frame`, which writes
/// whatever it answers.
fn each_frame(mut conn: TcpStream, mut on_frame: impl FnMut(Frame, &mut TcpStream)) {
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while let Some(frame) = Bolt.decode(&mut buf, 1 << 20).unwrap() {
            on_frame(frame, &mut conn);
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn send(conn: &mut TcpStream, frame: &Frame) {
    let mut out = BytesMut::new();
    Bolt.encode(frame, &mut out).unwrap();
    let _ = conn.write_all(&out);
}

/// A Bolt server made of the codec alone: it acks heartbeats and answers every request with
/// the local reply for `error`.
fn local_reply_server(error: LocalError) -> SocketAddr {
    spawn_server(move |conn| {
        each_frame(conn, |frame, conn| {
            let reply = match frame.kind {
                FrameKind::HeartbeatRequest => Bolt.heartbeat_reply(&frame),
                FrameKind::Request => {
                    let message = format!(
                        "sluice: {} for {}#{}",
                        error.as_str(),
                        frame.service_str(),
                        frame.method_str()
                    );
                    Bolt.local_reply(&frame, error, &message)
                }
                _ => None,
            };
            if let Some(reply) = reply {
                send(conn, &reply);
            }
        })
    })
}

#[test]
fn local_replies_are_clean_errors_on_the_client() {
    // Every error once, the versions in turn; then every version for one error.
    let errors = [
        LocalError::NoRoute,
        LocalError::NoHealthyUpstream,
        LocalError::Overflow,
        LocalError::Timeout,
        LocalError::UpstreamFailure,
        LocalError::BadRequest,
    ];
    let versions = [None, Some(false), Some(true)];
    let cases = errors
        .iter()
        .zip(versions.iter().cycle())
        .chain(versions.iter().skip(1).map(|v| (&LocalError::NoRoute, v)));
    for (&error, &v2) in cases {
        let addr = local_reply_server(error);
        let client = BoltClient::new(addr).count(3).timeout_ms(10_000);
        let client = match v2 {
            Some(crc) => client.v2(crc),
            None => client,
        };
        let start = Instant::now();
        let run = client.run();
        let expected = format!(
            "com.alipay.remoting.rpc.exception.RpcServerException: sluice: {} for com.example.Echo:1.0#echo",
            error.as_str()
        );
        assert_eq!(
            (run.ok, run.errors),
            (0, 3),
            "{error:?} {v2:?}: {}",
            run.raw
        );
        assert_eq!(run.error_messages, [expected], "{error:?} {v2:?}");
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "answered, not timed out"
        );
    }
}

#[test]
fn a_decode_error_reply_reaches_the_client_whatever_its_version() {
    // Every request is over this server's frame limit: it answers the error and closes, as
    // rpc_proxy does. The answer is v1 even to a v2 client.
    let addr = spawn_server(|mut conn| {
        let mut buf = BytesMut::new();
        let mut chunk = [0u8; 4096];
        loop {
            match Bolt.decode(&mut buf, 64) {
                Err(e) => {
                    if let Some(reply) = Bolt.decode_error_reply(&e) {
                        send(&mut conn, &reply);
                    }
                    return;
                }
                Ok(Some(_)) => unreachable!("no request fits in 64 bytes"),
                Ok(None) => {}
            }
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    for client in [BoltClient::new(addr), BoltClient::new(addr).v2(true)] {
        let run = client.timeout_ms(10_000).run();
        assert_eq!(run.errors, 1, "{}", run.raw);
        assert!(run.has_error("frame too large"), "{}", run.raw);
    }
}

#[test]
fn the_codecs_heartbeat_acks_satisfy_the_client() {
    let addr = local_reply_server(LocalError::NoRoute);
    assert_eq!(BoltClient::new(addr).heartbeat(), "answered");
    assert_eq!(BoltClient::new(addr).v2(false).heartbeat(), "answered");
    assert_eq!(BoltClient::new(addr).v2(true).heartbeat(), "answered");
}

#[test]
fn the_server_acks_the_codecs_heartbeat() {
    let server = BoltServer::start("a");
    let mut conn = connect(server.addr);
    send(&mut conn, &Bolt.heartbeat(77).unwrap());
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 256];
    let ack = loop {
        if let Some(frame) = Bolt.decode(&mut buf, 1 << 20).unwrap() {
            break frame;
        }
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "server closed instead of acking");
        buf.extend_from_slice(&chunk[..n]);
    };
    assert_eq!((ack.kind, ack.id), (FrameKind::HeartbeatResponse, 77));
}

/// What the relay does to request ids on the way up (and undoes on the way down): sets the
/// top bit, so the server sees ids that are negative as Java ints.
const ID_FLIP: u64 = 0xa5a5_0000;

/// A relay made of the codec alone, one upstream connection per downstream one: decodes every
/// frame, gives it a new id (and, on odd ids, a new header, which re-encodes it), and encodes
/// it again: the path rpc_proxy's frames take.
fn relay(upstream: SocketAddr) -> SocketAddr {
    spawn_server(move |down| {
        let up = TcpStream::connect(upstream).unwrap();
        let (down_w, up_r) = (down.try_clone().unwrap(), up.try_clone().unwrap());
        let answers = thread::spawn(move || {
            let mut down_w = down_w;
            each_frame(up_r, |mut frame, _| {
                frame.id ^= ID_FLIP;
                send(&mut down_w, &frame);
            });
            let _ = down_w.shutdown(Shutdown::Write);
        });
        let mut up_w = up;
        each_frame(down, |mut frame, _| {
            // A request whose routing fields did not decode is dropped: its call times out.
            if frame.kind == FrameKind::Request
                && (frame.service_str() != "com.example.Echo:1.0" || frame.method.is_empty())
            {
                return;
            }
            frame.id ^= ID_FLIP;
            if frame.id % 2 == 1 {
                frame.headers_mut().push("x-relayed-by", "sluice-codec");
            }
            send(&mut up_w, &frame);
        });
        let _ = up_w.shutdown(Shutdown::Write);
        let _ = answers.join();
    })
}

#[test]
fn the_codec_relays_real_traffic_under_new_ids() {
    let server = BoltServer::start("r");
    let relay = relay(server.addr);
    for v2 in [None, Some(false), Some(true)] {
        let client = BoltClient::new(relay).count(200).concurrency(16);
        let client = match v2 {
            Some(crc) => client.v2(crc),
            None => client,
        };
        let run = client.run();
        assert_eq!((run.ok, run.mismatched), (200, 0), "{v2:?}: {}", run.raw);
        assert_eq!(run.tags.get("r"), Some(&200));
    }
    assert_eq!(BoltClient::new(relay).v2(true).heartbeat(), "answered");
    let run = BoltClient::new(relay).method("fail").run();
    assert!(run.has_error("echo failed on purpose"), "{}", run.raw);
}
