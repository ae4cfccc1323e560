use bytes::BytesMut;

use super::vectors::*;
use super::*;
use crate::bolt::{class_name, fixed_header, status};
use crate::frame::FrameKind;
use crate::protocol::{DecodeErrorKind, Skip};

#[test]
fn decodes_what_sofa_rpc_node_sends() {
    for req in [V1_ECHO_REQUEST, V2_ECHO_REQUEST, V2_CRC_ECHO_REQUEST] {
        let f = decode_one(&hex(req));
        assert_eq!(f.kind, FrameKind::Request);
        assert_eq!(f.id, 1);
        assert_eq!(f.service_str(), "com.example.Echo:1.0");
        assert_eq!(f.method_str(), "echo", "from the Hessian body");
        assert_eq!(f.headers().len(), 1);
        assert_eq!(f.headers().get_str("service"), Some("com.example.Echo:1.0"));
        assert_eq!(
            &class_name(&f)[..],
            b"com.alipay.sofa.rpc.core.request.SofaRequest"
        );
        assert!(f.body.starts_with(b"O\xbc"));
        assert!(f.body.ends_with(b"hi-0"));
        assert_eq!(fixed_header(&f).unwrap().timeout, 3000);
    }
    let fail = decode_one(&hex(V1_FAIL_REQUEST));
    assert_eq!(fail.method_str(), "fail");

    for resp in [V1_ECHO_RESPONSE, V2_ECHO_RESPONSE, V2_CRC_ECHO_RESPONSE] {
        let f = decode_one(&hex(resp));
        assert_eq!(f.kind, FrameKind::Response);
        assert_eq!((f.id, f.status), (1, u32::from(status::SUCCESS)));
        assert!(f.headers().is_empty());
        assert!(f.service.is_empty() && f.method.is_empty());
        assert!(f.body.ends_with(b"\x08cap:hi-0N"));
    }
    for (ping, ack) in [
        (V1_HEARTBEAT, V1_HEARTBEAT_ACK),
        (V2_CRC_HEARTBEAT, V2_CRC_HEARTBEAT_ACK),
    ] {
        let p = decode_one(&hex(ping));
        assert_eq!((p.kind, p.id), (FrameKind::HeartbeatRequest, 4242));
        assert!(p.body.is_empty() && class_name(&p).is_empty());
        let a = decode_one(&hex(ack));
        assert_eq!((a.kind, a.id), (FrameKind::HeartbeatResponse, 4242));
    }
    let v2 = fixed_header(&decode_one(&hex(V2_CRC_ECHO_REQUEST))).unwrap();
    assert_eq!((v2.proto, v2.ver1, v2.switch), (2, 2, 1));
    assert!(v2.has_crc());
}

#[test]
fn raw_is_the_whole_frame_and_slices_share_it() {
    let bytes = hex(V1_ECHO_REQUEST);
    let f = decode_one(&bytes);
    assert_eq!(&f.raw[..], &bytes[..]);
    let raw = f.raw.as_ptr_range();
    for part in [&f.body, &f.service, &f.method] {
        assert!(raw.contains(&part.as_ptr()), "a slice of raw, not a copy");
    }
}

#[test]
fn every_prefix_is_incomplete_and_left_in_place() {
    for (name, vector) in ALL {
        let bytes = hex(vector);
        for n in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..n]);
            let got = Bolt.decode(&mut buf, MAX);
            assert!(
                matches!(got, Ok(None)),
                "{name}: {n} of {} bytes: {got:?}",
                bytes.len()
            );
            assert_eq!(buf.len(), n, "{name}: nothing consumed");
        }
    }
}

#[test]
fn frames_back_to_back_come_out_one_by_one() {
    let mut stream = Vec::new();
    for (_, vector) in ALL {
        stream.extend(hex(vector));
    }
    let tail = hex(V1_ECHO_REQUEST);
    stream.extend_from_slice(&tail[..10]);
    let mut buf = BytesMut::from(&stream[..]);
    for (name, vector) in ALL {
        let f = Bolt.decode(&mut buf, MAX).unwrap().unwrap();
        assert_eq!(&f.raw[..], &hex(vector)[..], "{name}");
    }
    assert!(Bolt.decode(&mut buf, MAX).unwrap().is_none());
    assert_eq!(&buf[..], &tail[..10]);
}

#[test]
fn too_large_as_soon_as_the_fixed_header_is_read() {
    let bytes = hex(V1_ECHO_REQUEST);
    let mut buf = BytesMut::from(&bytes[..22]);
    let e = Bolt.decode(&mut buf, 100).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::TooLarge);
    assert_eq!(e.request_id, Some(1), "a request: the proxy can answer it");
    assert_eq!(
        e.skip,
        Some(Skip {
            id: 1,
            len: bytes.len()
        })
    );
    // Exactly the limit is fine.
    let mut buf = BytesMut::from(&bytes[..]);
    assert!(Bolt.decode(&mut buf, bytes.len()).unwrap().is_some());
    // A response has no one to answer, but it can be passed over: its id and length say
    // which call to fail and where the next frame starts.
    let resp = hex(V1_ECHO_RESPONSE);
    let e = Bolt.decode(&mut BytesMut::from(&resp[..]), 50).unwrap_err();
    assert_eq!((e.kind, e.request_id), (DecodeErrorKind::TooLarge, None));
    assert_eq!(
        e.skip,
        Some(Skip {
            id: 1,
            len: resp.len()
        })
    );
    // Nor does a one-way request.
    let mut oneway = Spec::request(vec![], &[0; 100]);
    oneway.fixed.rpc_type = 2;
    let e = Bolt
        .decode(&mut BytesMut::from(&oneway.bytes()[..]), 50)
        .unwrap_err();
    assert_eq!((e.kind, e.request_id), (DecodeErrorKind::TooLarge, None));
}

#[test]
fn huge_declared_lengths_wait_or_fail_without_allocating() {
    let mut spec = Spec::request(vec![], b"");
    spec.fixed.content_len = i32::MAX as u32;
    let bytes = spec.bytes();
    let mut buf = BytesMut::from(&bytes[..]);
    assert!(Bolt.decode(&mut buf, usize::MAX).unwrap().is_none());
    assert_eq!(
        Bolt.decode(&mut buf, MAX).unwrap_err().kind,
        DecodeErrorKind::TooLarge
    );
}

#[test]
fn lengths_negative_as_java_numbers_are_malformed() {
    for (class, header, content) in [(0x8000, 0, 0), (0, 0xffff, 0), (0, 0, 0x8000_0000)] {
        let mut spec = Spec::request(vec![], b"");
        spec.fixed.class_len = class;
        spec.fixed.header_len = header;
        spec.fixed.content_len = content;
        let e = decode_err(&spec.bytes());
        assert_eq!(
            e.kind,
            DecodeErrorKind::Malformed,
            "{class} {header} {content}"
        );
        assert_eq!(e.request_id, Some(7));
    }
}

#[test]
fn bad_magic() {
    for first in [0u8, 3, b'G', b'P', 0xda, 0x16] {
        let e = decode_err(&[first, 1, 0, 1, 1, 0, 0, 0, 1]);
        assert_eq!(e.kind, DecodeErrorKind::BadMagic, "{first:#x}");
        assert_eq!(e.request_id, None);
    }
}

#[test]
fn unknown_types_commands_and_versions_are_malformed() {
    let e = decode_err(&[1, 7]);
    assert_eq!((e.kind, e.request_id), (DecodeErrorKind::Malformed, None));

    for (rpc_type, cmd) in [(1, 2), (1, 9), (2, 0), (2, 2), (0, 1), (0, 3)] {
        let mut spec = Spec::request(vec![], b"");
        spec.fixed.rpc_type = rpc_type;
        spec.fixed.cmd_code = cmd;
        let e = decode_err(&spec.bytes());
        assert_eq!(
            e.kind,
            DecodeErrorKind::Malformed,
            "type {rpc_type} cmd {cmd}"
        );
    }
    let mut spec = Spec::request(vec![], b"");
    spec.fixed.cmd_code = 9;
    assert_eq!(decode_err(&spec.bytes()).request_id, Some(7));

    for ver1 in [0, 3, 0xff] {
        let mut spec = Spec::request(vec![], b"");
        spec.fixed.proto = 2;
        spec.fixed.ver1 = ver1;
        assert_eq!(decode_err(&spec.bytes()).kind, DecodeErrorKind::Malformed);
    }
}

#[test]
fn crc_mismatch_is_malformed() {
    let mut bytes = hex(V2_CRC_ECHO_REQUEST);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let e = decode_err(&bytes);
    assert_eq!(
        (e.kind, e.request_id),
        (DecodeErrorKind::Malformed, Some(1))
    );
    // The same bytes, switch bit off (and no trailer), decode: only v2 version 2 with the
    // switch on carries a CRC.
    let mut spec = Spec::request(vec![], b"x");
    spec.fixed.proto = 2;
    spec.fixed.ver1 = 1;
    spec.fixed.switch = 1;
    assert!(!spec.fixed.has_crc());
    decode_one(&spec.bytes());
}

#[test]
fn truncated_header_maps_are_malformed() {
    let good = map(&[(Some("service"), Some("a.B:1.0"))]);
    for cut in 1..good.len() {
        let spec = Spec::request(good[..cut].to_vec(), b"body");
        let e = decode_err(&spec.bytes());
        assert_eq!(e.kind, DecodeErrorKind::Malformed, "cut at {cut}");
        assert_eq!(e.request_id, Some(7));
    }
    // A length claiming more than the map holds, though the frame goes on.
    let mut lying = map(&[(Some("k"), Some("v"))]);
    lying[3] = 200;
    let e = decode_err(&Spec::request(lying, &[0; 300]).bytes());
    assert_eq!(e.kind, DecodeErrorKind::Malformed);
}

#[test]
fn null_pairs_are_dropped_and_empty_values_kept() {
    let header = map(&[
        (Some("a"), None),
        (None, Some("b")),
        (Some("empty"), Some("")),
        (Some("service"), Some("x.Y:1.0")),
    ]);
    let f = decode_one(&Spec::request(header, b"").bytes());
    assert_eq!(f.headers().len(), 2);
    assert_eq!(f.headers().get_str("empty"), Some(""));
    assert_eq!(f.service_str(), "x.Y:1.0");
}

#[test]
fn routing_fields_prefer_the_headers() {
    let header = map(&[
        (Some("service"), Some("")),
        (Some("sofa_head_target_service"), Some("t.S:2.0")),
        (Some("sofa_head_method_name"), Some("fromHeader")),
    ]);
    let body =
        b"O\xbccom.alipay.sofa.rpc.core.request.SofaRequest\x91\nmethodNameo\x90\x08fromBody";
    let f = decode_one(&Spec::request(header.clone(), body).bytes());
    assert_eq!(f.service_str(), "t.S:2.0", "an empty service falls back");
    assert_eq!(f.method_str(), "fromHeader");

    let f = decode_one(&Spec::request(vec![], body).bytes());
    assert_eq!((f.service_str(), f.method_str()), ("", "fromBody"));

    // Not Hessian2 (protobuf is 11): the body is not read.
    let mut spec = Spec::request(vec![], body);
    spec.fixed.codec = 11;
    assert_eq!(decode_one(&spec.bytes()).method_str(), "");
    // Nor for another class.
    let mut spec = Spec::request(vec![], body);
    spec.class = b"other.Class".to_vec();
    spec.fixed.class_len = 11;
    assert_eq!(decode_one(&spec.bytes()).method_str(), "");
}
