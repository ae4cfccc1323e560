#![no_main]
//! Arbitrary bytes through the Bolt codec: no input panics it, and every frame it decodes
//! encodes (as forwarded, and rebuilt after a header change) to bytes that decode to the same
//! frame. The replies it can make for a frame or a decode error must decode too.

use bytes::BytesMut;
use sluice_xprotocol::bolt::Bolt;
use sluice_xprotocol::{Frame, LocalError, Protocol};

const MAX: usize = 1 << 16;

fn decode_whole(bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let frame = Bolt
        .decode(&mut buf, MAX)
        .expect("what the codec encodes decodes")
        .expect("whole");
    assert!(buf.is_empty(), "one frame, nothing more");
    frame
}

fn encode(frame: &Frame) -> BytesMut {
    let mut out = BytesMut::new();
    Bolt.encode(frame, &mut out).expect("a decoded frame encodes");
    out
}

fn assert_same(a: &Frame, b: &Frame) {
    assert_eq!(a.kind, b.kind);
    assert_eq!(a.status, b.status);
    assert_eq!(a.headers(), b.headers());
    assert_eq!(a.body, b.body);
    assert_eq!(a.service, b.service);
    assert_eq!(a.method, b.method);
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = Bolt.detect(data);
    let mut buf = BytesMut::from(data);
    loop {
        match Bolt.decode(&mut buf, MAX) {
            Ok(Some(frame)) => {
                // Forwarded as is: the same bytes.
                let out = encode(&frame);
                assert_eq!(&out[..], &frame.raw[..]);
                let again = decode_whole(&out);
                assert_same(&frame, &again);
                assert_eq!(again.id, frame.id);

                // Under a new id, rebuilt from its parts.
                let mut changed = frame.clone();
                changed.headers_mut();
                changed.id ^= 0x8000_0001;
                let again = decode_whole(&encode(&changed));
                assert_same(&frame, &again);
                assert_eq!(again.id, changed.id);

                let _ = Bolt.classify(&frame);
                for reply in [
                    Bolt.heartbeat_reply(&frame),
                    Bolt.local_reply(&frame, LocalError::UpstreamFailure, "fuzz"),
                ]
                .into_iter()
                .flatten()
                {
                    assert_eq!(decode_whole(&encode(&reply)).id, frame.id);
                }
            }
            Ok(None) => break,
            Err(error) => {
                if let Some(reply) = Bolt.decode_error_reply(&error) {
                    decode_whole(&encode(&reply));
                }
                break;
            }
        }
    }
});
