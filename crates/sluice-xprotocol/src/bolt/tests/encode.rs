use bytes::{Bytes, BytesMut};

use super::vectors::*;
use super::*;
use crate::bolt::header::crc_matches;
use crate::bolt::{class_name, fixed_header};
use crate::frame::FrameKind;
use crate::headers::Headers;

#[test]
fn unmodified_frames_are_forwarded_byte_for_byte() {
    for (name, vector) in ALL {
        let bytes = hex(vector);
        assert_eq!(encode(&decode_one(&bytes)), bytes, "{name}");
    }
}

#[test]
fn a_new_id_is_patched_in_and_the_crc_recomputed() {
    for (name, vector) in ALL {
        let bytes = hex(vector);
        let mut f = decode_one(&bytes);
        let old = f.id;
        f.id = 0xfedc_ba98;
        let out = encode(&f);
        assert_eq!(out.len(), bytes.len());
        let again = decode_one(&out);
        assert_eq!(again.id, 0xfedc_ba98, "{name}");
        assert_eq!(again.headers(), f.headers());
        assert_eq!(again.body, f.body);
        if fixed_header(&f).unwrap().has_crc() {
            assert!(crc_matches(&out), "{name}");
        }
        // Back to the old id: sofa-bolt-node's own bytes, CRC included.
        let mut again = again;
        again.id = old;
        assert_eq!(encode(&again), bytes, "{name}");
    }
}

#[test]
fn ids_over_32_bits_cannot_be_encoded() {
    let mut f = decode_one(&hex(V1_ECHO_REQUEST));
    f.id = u64::from(u32::MAX) + 1;
    assert!(Bolt.encode(&f, &mut BytesMut::new()).is_err());
}

#[test]
fn changed_headers_are_re_encoded() {
    for vector in [V1_ECHO_REQUEST, V2_ECHO_REQUEST, V2_CRC_ECHO_REQUEST] {
        let bytes = hex(vector);
        let mut f = decode_one(&bytes);
        // Touching the map without changing it gives sofa-bolt-node's bytes back: the map
        // encoding is the same.
        f.headers_mut();
        assert_eq!(encode(&f), bytes);

        f.headers_mut().push("x-sluice", "routed");
        f.headers_mut().set("service", "com.example.Echo:2.0");
        f.id = 99;
        let out = encode(&f);
        let again = decode_one(&out);
        assert_eq!(again.id, 99);
        assert_eq!(again.service_str(), "com.example.Echo:2.0");
        assert_eq!(again.headers().get_str("x-sluice"), Some("routed"));
        assert_eq!(again.method_str(), "echo");
        assert_eq!(again.body, f.body);
        assert_eq!(class_name(&again), class_name(&f));
        let (a, b) = (fixed_header(&again).unwrap(), fixed_header(&f).unwrap());
        assert_eq!(
            (a.proto, a.ver1, a.switch, a.codec),
            (b.proto, b.ver1, b.switch, b.codec)
        );
        assert_eq!(a.timeout, b.timeout);
        if b.has_crc() {
            assert!(crc_matches(&out));
        }

        assert!(f.headers_mut().remove("x-sluice"));
        assert!(f.headers_mut().remove("service"));
        let again = decode_one(&encode(&f));
        assert!(again.headers().is_empty());
        assert_eq!(again.service_str(), "");
    }
}

#[test]
fn a_changed_response_keeps_its_status() {
    let mut f = decode_one(&hex(V2_CRC_ECHO_RESPONSE));
    f.headers_mut().push("k", "v");
    let again = decode_one(&encode(&f));
    assert_eq!(again.kind, FrameKind::Response);
    assert_eq!(again.headers().get_str("k"), Some("v"));
    assert_eq!(again.body, f.body);
}

#[test]
fn header_maps_past_an_i16_cannot_be_encoded() {
    let mut f = decode_one(&hex(V1_ECHO_REQUEST));
    f.headers_mut().push("big", Bytes::from(vec![b'x'; 40_000]));
    assert!(Bolt.encode(&f, &mut BytesMut::new()).is_err());
    let mut f = decode_one(&hex(V1_ECHO_REQUEST));
    f.headers_mut().push("big", Bytes::from(vec![b'x'; 32_000]));
    decode_one(&encode(&f));
}

#[test]
fn a_foreign_raw_is_refused() {
    for raw in [&b""[..], b"GET / HTTP/1.1\r\n", &hex(V1_ECHO_REQUEST)[..40]] {
        let f = Frame::new(
            FrameKind::Request,
            1,
            Headers::new(),
            Bytes::new(),
            Bytes::copy_from_slice(raw),
        );
        assert!(Bolt.encode(&f, &mut BytesMut::new()).is_err());
    }
}

#[test]
fn encoding_appends_to_what_dst_holds() {
    let bytes = hex(V2_CRC_HEARTBEAT);
    let f = decode_one(&bytes);
    let mut dst = BytesMut::from(&b"prefix"[..]);
    Bolt.encode(&f, &mut dst).unwrap();
    Bolt.encode(&f, &mut dst).unwrap();
    assert_eq!(&dst[..6], b"prefix");
    assert_eq!(&dst[6..6 + bytes.len()], &bytes[..]);
    assert_eq!(&dst[6 + bytes.len()..], &bytes[..]);
}
