//! The kv codec against the Protocol contract the framework relies on.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use sluice_protocol_kv::{build, Kv};
use sluice_xprotocol::protocol::DecodeErrorKind;
use sluice_xprotocol::{Detect, FrameKind, LocalError, Protocol, ResponseClass};

fn request() -> BytesMut {
    let frame = build(0, 0, 7, &[("service", "echo"), ("method", "say")], b"hello").unwrap();
    BytesMut::from(&frame.raw[..])
}

#[test]
fn decodes_routing_fields_headers_and_body() {
    let mut buf = request();
    buf.extend_from_slice(b"kv"); // the start of the next frame stays behind
    let frame = Kv.decode(&mut buf, 1024).unwrap().unwrap();
    assert_eq!(frame.kind, FrameKind::Request);
    assert_eq!(frame.id, 7);
    assert_eq!(frame.service_str(), "echo");
    assert_eq!(frame.method_str(), "say");
    assert_eq!(&frame.body[..], b"hello");
    assert_eq!(&buf[..], b"kv");
}

#[test]
fn every_prefix_is_incomplete_and_consumes_nothing() {
    let whole = request();
    for n in 0..whole.len() {
        let mut part = BytesMut::from(&whole[..n]);
        assert!(Kv.decode(&mut part, 1024).unwrap().is_none(), "prefix {n}");
        assert_eq!(part.len(), n);
    }
}

#[test]
fn encode_patches_the_id_and_rebuilds_changed_headers() {
    let mut frame = Kv.decode(&mut request(), 1024).unwrap().unwrap();
    frame.id = 99;
    let mut out = BytesMut::new();
    Kv.encode(&frame, &mut out).unwrap();
    let again = Kv.decode(&mut out, 1024).unwrap().unwrap();
    assert_eq!((again.id, &again.body[..]), (99, &b"hello"[..]));

    frame.headers_mut().set("method", "shout");
    Kv.encode(&frame, &mut out).unwrap();
    let again = Kv.decode(&mut out, 1024).unwrap().unwrap();
    assert_eq!((again.id, again.method_str()), (99, "shout"));
    assert_eq!(again.service_str(), "echo");
}

#[test]
fn bad_input_is_a_typed_error() {
    let mut bad = BytesMut::from(&b"xv\0\0\0\0\0\x01\0\0\0\0"[..]);
    assert_eq!(
        Kv.decode(&mut bad, 1024).unwrap_err().kind,
        DecodeErrorKind::BadMagic
    );

    let mut big = request();
    let err = Kv.decode(&mut big, 8).unwrap_err();
    assert_eq!(
        (err.kind, err.request_id),
        (DecodeErrorKind::TooLarge, Some(7))
    );

    // One header declared, none present.
    let mut short = BytesMut::from(&b"kv\0\0\0\0\0\x05\0\0\0\x02\0\x01"[..]);
    let err = Kv.decode(&mut short, 1024).unwrap_err();
    assert_eq!(
        (err.kind, err.request_id),
        (DecodeErrorKind::Malformed, Some(5))
    );
    let reply = Kv.decode_error_reply(&err).unwrap();
    assert_eq!(
        (reply.kind, reply.id, reply.status),
        (FrameKind::Response, 5, 6)
    );
}

#[test]
fn hooks() {
    assert_eq!(Kv.detect(b"k"), Detect::NeedMore);
    assert_eq!(Kv.detect(b"kv\0"), Detect::Yes);
    assert_eq!(Kv.detect(b"GET / HTTP/1.1"), Detect::No);
    let ping = Kv.heartbeat(3).unwrap();
    assert_eq!(ping.kind, FrameKind::HeartbeatRequest);
    let pong = Kv.heartbeat_reply(&ping).unwrap();
    assert_eq!((pong.kind, pong.id), (FrameKind::HeartbeatResponse, 3));
    let req = Kv.decode(&mut request(), 1024).unwrap().unwrap();
    let reply = Kv
        .local_reply(&req.without_payload(), LocalError::Timeout, "late")
        .unwrap();
    assert_eq!(
        (reply.id, reply.status, &reply.body[..]),
        (7, 5, &b"late"[..])
    );
    assert_eq!(Kv.classify(&reply), ResponseClass::ServerError);
    let oneway = build(2, 0, 1, &[], b"").unwrap();
    assert!(Kv.local_reply(&oneway, LocalError::NoRoute, "x").is_none());
}
