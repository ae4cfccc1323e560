#![no_main]
//! Dubbo decoding on arbitrary bytes: never a panic; every frame that decodes encodes back
//! (as it came, and rebuilt from its headers) to bytes that decode to the same frame.

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_xprotocol::dubbo::Dubbo;
use sluice_xprotocol::{Frame, FrameKind, LocalError, Protocol};

const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = Dubbo.detect(data);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = Dubbo.decode(&mut buf, MAX) {
        check(&frame);
    }
});

fn check(f: &Frame) {
    // As it came: the same bytes.
    let out = encode(f);
    assert_eq!(out, f.raw);
    same(f, &decode(out));

    // Rebuilt from its headers (a request's attachments): the same frame.
    let mut rebuilt = f.clone();
    rebuilt.headers_mut();
    same(f, &decode(encode(&rebuilt)));

    // With a header added, that header too.
    if f.kind.is_request() && !f.service.is_empty() {
        let mut added = f.clone();
        added.headers_mut().push("x-fuzz", "é😀");
        let back = decode(encode(&added));
        assert_eq!(back.headers().get_str("x-fuzz"), Some("é😀"));
    }

    // The other hooks take any frame.
    let _ = Dubbo.classify(f);
    let _ = Dubbo.heartbeat_reply(f);
    if let Some(reply) = Dubbo.local_reply(f, LocalError::NoRoute, "no route") {
        assert_eq!(decode(encode(&reply)).kind, FrameKind::Response);
    }
}

fn encode(f: &Frame) -> BytesMut {
    let mut out = BytesMut::new();
    Dubbo.encode(f, &mut out).expect("a decoded frame encodes");
    out
}

fn decode(mut bytes: BytesMut) -> Frame {
    let f = Dubbo
        .decode(&mut bytes, usize::MAX)
        .expect("an encoded frame decodes")
        .expect("an encoded frame is whole");
    assert!(bytes.is_empty());
    f
}

fn same(a: &Frame, b: &Frame) {
    assert_eq!((a.kind, a.id, a.status), (b.kind, b.id, b.status));
    assert_eq!((&a.service, &a.method), (&b.service, &b.method));
    assert_eq!(a.headers(), b.headers());
}
