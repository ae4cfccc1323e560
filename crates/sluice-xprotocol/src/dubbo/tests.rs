//! The codec against frames captured from Apache Dubbo 3.3 (Java, hessian2) with
//! tests/dubbo/capture.py: the consumer and provider of tests/dubbo talking through a tee.

use bytes::{BufMut, Bytes, BytesMut};

use super::header::{FixedHeader, LEN};
use super::hessian::{self, Reader, Value};
use super::{status, Dubbo};
use crate::frame::{Frame, FrameKind};
use crate::protocol::{DecodeErrorKind, Detect, LocalError, Protocol, ResponseClass};

const MAX: usize = 16 << 20;

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| (b as char).to_digit(16).unwrap() as u8)
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

macro_rules! vector {
    ($name:literal) => {
        hex(include_str!(concat!("testdata/", $name, ".hex")))
    };
}

/// An `echo("hi#0")` call with attachments k=v and uni=héllo-世界-😀.
fn request_echo() -> Vec<u8> {
    vector!("request_echo")
}

fn decode(bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let f = Dubbo.decode(&mut buf, MAX).unwrap().expect("a whole frame");
    assert!(buf.is_empty(), "the frame's bytes were not all taken");
    f
}

fn encode(f: &Frame) -> Bytes {
    let mut out = BytesMut::new();
    Dubbo.encode(f, &mut out).unwrap();
    out.freeze()
}

fn header_list(f: &Frame) -> Vec<(String, String)> {
    f.headers()
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The message of an error response (a Hessian string body).
fn message(f: &Frame) -> String {
    match Reader::new(&f.body).read_value(0).unwrap() {
        Value::Str(s) => String::from_utf8(s.to_vec()).unwrap(),
        other => panic!("not a message: {other:?}"),
    }
}

/// A request frame (hessian2, two-way) with the given descriptor, argument bytes and
/// attachments-map bytes, for shapes Java does not send by default.
fn request_with(types: &str, args: &[u8], map: &[u8]) -> Vec<u8> {
    let mut body = BytesMut::new();
    for s in ["2.0.2", "com.example.Echo", "1.0", "echo", types] {
        hessian::write_string(&mut body, s.as_bytes()).unwrap();
    }
    body.put_slice(args);
    body.put_slice(map);
    let mut frame = BytesMut::new();
    FixedHeader {
        flag: 0xc2,
        status: 0,
        id: 7,
        body_len: body.len() as u32,
    }
    .write(&mut frame);
    frame.put_slice(&body);
    frame.to_vec()
}

#[test]
fn a_java_request_decodes_with_its_service_method_and_attachments() {
    let f = decode(&request_echo());
    assert_eq!(f.kind, FrameKind::Request);
    assert_eq!(f.id, 0x5b28_f210_22ca_3b1d);
    assert_eq!(f.service_str(), "com.example.Echo");
    assert_eq!(f.method_str(), "echo");
    assert_eq!(
        header_list(&f),
        pairs(&[
            ("uni", "héllo-世界-😀"),
            ("path", "com.example.Echo"),
            ("remote.application", "sluice-echo-consumer"),
            ("call-index", "0"),
            ("k", "v"),
            ("interface", "com.example.Echo"),
            ("version", "1.0"),
            ("timeout", "3000"),
            ("method", "echo"),
        ])
    );
    assert_eq!(f.headers().get_str("group"), None);
    assert_eq!(f.raw.as_ref(), request_echo().as_slice());
    assert_eq!(f.body, f.raw.slice(LEN..));
}

#[test]
fn group_and_a_call_without_arguments() {
    let f = decode(&vector!("request_group"));
    assert_eq!(f.method_str(), "attachment");
    assert_eq!(f.headers().get_str("group"), Some("g1"));
    assert_eq!(f.headers().get_str("version"), Some("1.0"));

    let f = decode(&vector!("request_fail"));
    assert_eq!(f.method_str(), "fail");
    assert_eq!(f.headers().get_str("call-index"), Some("0"));
}

#[test]
fn a_chunked_attachment_is_read_whole() {
    let f = decode(&vector!("request_chunked"));
    assert_eq!(f.headers().get("big").map(Bytes::len), Some(33_000));
    assert!(f.headers().get("big").unwrap().iter().all(|&b| b == b'x'));
    // A no-op rebuild writes the chunked string back as Java did.
    let mut g = f.clone();
    g.headers_mut();
    assert_eq!(encode(&g), f.raw);
}

#[test]
fn every_prefix_of_a_frame_is_incomplete_and_left_alone() {
    for v in [
        request_echo(),
        vector!("response_value"),
        vector!("response_exception"),
        vector!("heartbeat_request"),
        vector!("response_threadpool_exhausted"),
    ] {
        for n in 0..v.len() {
            let mut buf = BytesMut::from(&v[..n]);
            assert!(
                matches!(Dubbo.decode(&mut buf, MAX), Ok(None)),
                "prefix {n}"
            );
            assert_eq!(buf.len(), n);
        }
    }
}

#[test]
fn frames_back_to_back_decode_in_order() {
    let mut buf = BytesMut::new();
    buf.put_slice(&request_echo());
    buf.put_slice(&vector!("heartbeat_request"));
    buf.put_slice(&request_echo()[..20]);
    let a = Dubbo.decode(&mut buf, MAX).unwrap().unwrap();
    let b = Dubbo.decode(&mut buf, MAX).unwrap().unwrap();
    assert_eq!(
        (a.kind, b.kind),
        (FrameKind::Request, FrameKind::HeartbeatRequest)
    );
    assert!(matches!(Dubbo.decode(&mut buf, MAX), Ok(None)));
    assert_eq!(buf.len(), 20);
}

#[test]
fn encoding_patches_only_the_id() {
    let mut f = decode(&request_echo());
    f.id = 0x0102_0304_0506_0708;
    let out = encode(&f);
    let mut want = request_echo();
    want[4..12].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(out.as_ref(), want.as_slice());
    assert_eq!(Dubbo.max_request_id(), u64::MAX);
}

#[test]
fn responses_classify_by_status_and_body() {
    let cases = [
        (vector!("response_value"), 20, ResponseClass::Success),
        (
            vector!("response_exception"),
            20,
            ResponseClass::ApplicationError,
        ),
        (
            vector!("response_service_error"),
            70,
            ResponseClass::ServerError,
        ),
        (
            vector!("response_bad_request"),
            40,
            ResponseClass::ApplicationError,
        ),
        (
            vector!("response_threadpool_exhausted"),
            100,
            ResponseClass::Retriable,
        ),
    ];
    for (bytes, code, class) in cases {
        let f = decode(&bytes);
        assert_eq!(f.kind, FrameKind::Response);
        assert_eq!(f.status, code);
        assert_eq!(Dubbo.classify(&f), class, "status {code}");
        assert!(f.headers().is_empty());
        assert_eq!(encode(&f), f.raw);
    }
    let f = decode(&vector!("response_threadpool_exhausted"));
    assert!(
        message(&f).contains("thread pool is exhausted"),
        "{}",
        message(&f)
    );
    let f = decode(&vector!("response_service_error"));
    assert!(message(&f).contains("Not found exported service"));
}

#[test]
fn a_real_exception_body_is_stepped_over_whole() {
    // flag, Throwable (class definitions, typed lists, objects, refs), attachments map.
    let f = decode(&vector!("response_exception"));
    let mut r = Reader::new(&f.body);
    assert_eq!(r.read_int(), Ok(3));
    r.skip_value().unwrap();
    assert!(r.map_begin().unwrap());
    let mut keys = Vec::new();
    while !r.at_map_end().unwrap() {
        keys.push(r.read_value(1).unwrap());
        r.skip_value().unwrap();
    }
    assert_eq!(keys, [Value::Str("dubbo".into())]);
    assert!(r.is_at_end());
}

#[test]
fn heartbeats_match_javas_both_ways() {
    let ping = decode(&vector!("heartbeat_request"));
    assert_eq!(ping.kind, FrameKind::HeartbeatRequest);
    let pong = Dubbo.heartbeat_reply(&ping).unwrap();
    assert_eq!(
        encode(&pong).as_ref(),
        vector!("heartbeat_response").as_slice()
    );
    let ours = Dubbo.heartbeat(ping.id).unwrap();
    assert_eq!(
        encode(&ours).as_ref(),
        vector!("heartbeat_request").as_slice()
    );
    let pong = decode(&vector!("heartbeat_response"));
    assert_eq!(pong.kind, FrameKind::HeartbeatResponse);
    assert_eq!(Dubbo.classify(&pong), ResponseClass::Success);
    assert!(Dubbo.heartbeat_reply(&decode(&request_echo())).is_none());
}

#[test]
fn heartbeats_of_other_serializations_still_answer() {
    // A fastjson2 (id 23) heartbeat: a body Sluice cannot read, answered with the same one.
    let mut ping = vec![0xda, 0xbb, 0xe0 | 23, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3];
    ping.extend_from_slice(&[1, 2, 3]);
    let f = decode(&ping);
    assert_eq!(f.kind, FrameKind::HeartbeatRequest);
    let pong = encode(&Dubbo.heartbeat_reply(&f).unwrap());
    assert_eq!(&pong[..4], &[0xda, 0xbb, 0x20 | 23, 20]);
    assert_eq!(&pong[4..], &ping[4..]);
}

#[test]
fn requests_in_other_serializations_are_refused_with_a_reply() {
    let mut v = request_echo();
    v[2] = 0xc0 | 23;
    let err = Dubbo.decode(&mut BytesMut::from(&v[..]), MAX).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::Malformed);
    assert_eq!(err.request_id, Some(0x5b28_f210_22ca_3b1d));
    assert!(err.message.contains("serialization id 23"));
    let reply = Dubbo.decode_error_reply(&err).unwrap();
    assert_eq!(
        (reply.kind, reply.status, reply.id),
        (FrameKind::Response, 40, err.request_id.unwrap())
    );
    assert!(message(&reply).contains("hessian2"));
    // Decoded back, the reply is an ordinary response.
    let back = decode(&encode(&reply));
    assert_eq!(back.status, u32::from(status::BAD_REQUEST));
}

#[test]
fn a_one_way_request_has_no_reply() {
    let mut v = request_echo();
    v[2] &= !0x40;
    let f = decode(&v);
    assert_eq!(f.kind, FrameKind::Oneway);
    assert!(Dubbo.local_reply(&f, LocalError::NoRoute, "x").is_none());
    // Nor does its decode error.
    let mut bad = v.clone();
    bad[16] = 0x40;
    let err = Dubbo
        .decode(&mut BytesMut::from(&bad[..]), MAX)
        .unwrap_err();
    assert_eq!(err.request_id, None);
    assert!(Dubbo.decode_error_reply(&err).is_none());
}

#[test]
fn local_replies_carry_status_and_message() {
    let req = decode(&request_echo());
    for (error, code) in [
        (LocalError::NoRoute, 60),
        (LocalError::NoHealthyUpstream, 60),
        (LocalError::Overflow, 100),
        (LocalError::Timeout, 31),
        (LocalError::UpstreamFailure, 80),
        (LocalError::BadRequest, 40),
    ] {
        let reply = Dubbo
            .local_reply(&req, error, "sluice: no route for com.example.Echo")
            .unwrap();
        let back = decode(&encode(&reply));
        assert_eq!(
            (back.kind, back.id, back.status),
            (FrameKind::Response, req.id, code)
        );
        assert_eq!(back.raw[2], 2, "hessian2, not a request, not an event");
        assert_eq!(message(&back), "sluice: no route for com.example.Echo");
    }
}

#[test]
fn too_large_as_soon_as_the_header_is_read() {
    let v = request_echo();
    let mut buf = BytesMut::from(&v[..16]);
    let err = Dubbo.decode(&mut buf, 100).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::TooLarge);
    assert_eq!(err.request_id, Some(0x5b28_f210_22ca_3b1d));
    assert_eq!(Dubbo.decode_error_reply(&err).unwrap().status, 40);
    // A response has nobody to answer.
    let mut buf = BytesMut::from(&vector!("response_exception")[..16]);
    let err = Dubbo.decode(&mut buf, 100).unwrap_err();
    assert_eq!(
        (err.kind, err.request_id),
        (DecodeErrorKind::TooLarge, None)
    );
    // It can be passed over, though: its id and length say which call to fail and where the
    // next frame starts.
    let skip = err.skip.unwrap();
    assert_eq!(
        skip.len,
        vector!("response_exception").len(),
        "the whole frame"
    );
    assert_eq!(skip.id.to_be_bytes(), vector!("response_exception")[4..12]);
    // Exactly at the limit is fine.
    assert!(Dubbo
        .decode(&mut BytesMut::from(&v[..]), v.len())
        .unwrap()
        .is_some());
    // A length with the sign bit set.
    let mut neg = v[..16].to_vec();
    neg[12] = 0x80;
    let err = Dubbo
        .decode(&mut BytesMut::from(&neg[..]), usize::MAX)
        .unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::Malformed);
}

#[test]
fn bad_magic_and_detection() {
    for head in [&[0x00][..], &[0xda, 0x00], &b"GET / HTTP/1.1\r\n"[..]] {
        let err = Dubbo.decode(&mut BytesMut::from(head), MAX).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::BadMagic, "{head:02x?}");
        assert_eq!(Dubbo.detect(head), Detect::No);
    }
    assert!(matches!(
        Dubbo.decode(&mut BytesMut::from(&[0xda][..]), MAX),
        Ok(None)
    ));
    assert_eq!(Dubbo.detect(&[]), Detect::NeedMore);
    assert_eq!(Dubbo.detect(&[0xda]), Detect::NeedMore);
    assert_eq!(Dubbo.detect(&[0xda, 0xbb]), Detect::Yes);
    assert_eq!(Dubbo.detect(&request_echo()), Detect::Yes);
}

#[test]
fn hessian_garbage_is_malformed_with_the_request_id() {
    // The service path replaced by a reserved tag.
    let mut v = request_echo();
    v[22] = 0x40;
    let err = Dubbo.decode(&mut BytesMut::from(&v[..]), MAX).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::Malformed);
    assert_eq!(err.request_id, Some(0x5b28_f210_22ca_3b1d));
    // A body cut short (length adjusted so the frame is whole).
    let mut cut = request_echo();
    cut.truncate(cut.len() - 5);
    let len = (cut.len() - LEN) as u32;
    cut[12..16].copy_from_slice(&len.to_be_bytes());
    let err = Dubbo
        .decode(&mut BytesMut::from(&cut[..]), MAX)
        .unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::Malformed);
    // Every single-byte change of a real request decodes or fails, never panics, and what
    // decodes encodes back to the same bytes.
    let v = request_echo();
    for i in 0..v.len() {
        for x in [0x00, 0x40, 0x5a, 0x7f, 0x80, 0xed, 0xff] {
            let mut m = v.clone();
            m[i] = x;
            let mut buf = BytesMut::from(&m[..]);
            if let Ok(Some(f)) = Dubbo.decode(&mut buf, MAX) {
                assert_eq!(encode(&f).as_ref(), &m[..f.raw.len()]);
            }
        }
    }
}

#[test]
fn depth_bombs_are_refused() {
    // An argument of lists nested 10,000 deep.
    let mut arg = vec![b'W'; 10_000];
    arg.extend(std::iter::repeat_n(b'Z', 10_000));
    let v = request_with("Ljava/util/List;", &arg, b"HZ");
    let err = Dubbo.decode(&mut BytesMut::from(&v[..]), MAX).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::Malformed);
    assert!(err.message.contains("nest"), "{}", err.message);
    assert_eq!(err.request_id, Some(7));
    // And inside an attachment value.
    let mut map = b"H\x01a".to_vec();
    map.extend(vec![b'H'; 5_000]);
    let v = request_with("", &[], &map);
    let err = Dubbo.decode(&mut BytesMut::from(&v[..]), MAX).unwrap_err();
    assert!(err.message.contains("nest"), "{}", err.message);
    // A list claiming four billion elements ends at the body's end.
    let v = request_with("Ljava/util/List;", b"X\x49\x7f\xff\xff\xff", b"HZ");
    assert!(Dubbo.decode(&mut BytesMut::from(&v[..]), MAX).is_err());
}

#[test]
fn arguments_are_counted_by_the_descriptor() {
    // Two arguments, an int and a map; the attachments come after both.
    let v = request_with("ILjava/util/Map;", b"\x95H\x01xHZZ", b"H\x01a\x01bZ");
    let f = decode(&v);
    assert_eq!(f.headers().get_str("a"), Some("b"));
    // One argument too few on the wire: the map is taken for the argument, and the body ends.
    let v = request_with("ILjava/util/Map;I", b"\x95H\x01xHZZ", b"H\x01a\x01bZ");
    assert!(Dubbo.decode(&mut BytesMut::from(&v[..]), MAX).is_err());
    // No attachments at all (a null map).
    let f = decode(&request_with("", &[], b"N"));
    assert_eq!(f.headers().get_str("method"), Some("echo"));
}

#[test]
fn a_no_op_rebuild_is_byte_identical() {
    for v in [
        request_echo(),
        vector!("request_group"),
        vector!("request_fail"),
    ] {
        let mut f = decode(&v);
        f.headers_mut();
        assert!(f.headers_modified());
        assert_eq!(encode(&f).as_ref(), v.as_slice());
    }
}

#[test]
fn changed_headers_rebuild_the_attachments() {
    let original = decode(&request_echo());
    let mut f = original.clone();
    f.id = 42;
    f.headers_mut().set("k", "changed");
    f.headers_mut().remove("timeout");
    f.headers_mut().push("x-sluice", "héllo-😀");
    let out = encode(&f);
    let back = decode(&out);
    assert_eq!(back.id, 42);
    assert_eq!(back.kind, FrameKind::Request);
    assert_eq!(
        (back.service_str(), back.method_str()),
        ("com.example.Echo", "echo")
    );
    let mut want = header_list(&f);
    // `method` mirrors the body and is listed after the attachments.
    want.retain(|(k, _)| k != "method");
    want.push(("method".into(), "echo".into()));
    assert_eq!(header_list(&back), want);
    // The arguments are the same bytes: the body up to the map is unchanged.
    let map_at = original
        .raw
        .windows(2)
        .position(|w| w == b"\x48\x03")
        .unwrap();
    assert_eq!(out[LEN..map_at], original.raw[LEN..map_at]);
    assert_eq!(
        FixedHeader::parse(&out).unwrap().body_len as usize,
        out.len() - LEN
    );
}

#[test]
fn changing_the_version_or_method_rewrites_the_body() {
    let mut f = decode(&request_echo());
    f.headers_mut().set("version", "2.0");
    f.headers_mut().set("method", "slow");
    let back = decode(&encode(&f));
    assert_eq!(back.method_str(), "slow");
    assert_eq!(back.headers().get_str("version"), Some("2.0"));
    assert_eq!(back.headers().get_str("method"), Some("slow"));
    // The body's version field too, and no "method" attachment.
    let mut r = Reader::new(&back.body);
    let fields: Vec<_> = (0..4).map(|_| r.read_string().unwrap().unwrap()).collect();
    assert_eq!(fields[2], "2.0");
    assert_eq!(fields[3], "slow");
    assert_eq!(
        back.headers()
            .iter()
            .filter(|(k, _)| k.as_ref() == b"method")
            .count(),
        1
    );
}

#[test]
fn attachments_that_are_not_headers_survive_a_rebuild() {
    // n=5 (an int), z=null, obj={x:y}, 1=v (an int key), and a string.
    let map = b"H\x01n\x95\x01zN\x03objH\x01x\x01yZ\x91\x01v\x01a\x011Z";
    let v = request_with("", &[], map);
    let f = decode(&v);
    assert_eq!(f.headers().get_str("n"), Some("5"));
    assert_eq!(f.headers().get("z"), None);
    assert_eq!(f.headers().get("obj"), None);
    let mut g = f.clone();
    g.headers_mut().set("a", "2");
    let out = encode(&g);
    let back = decode(&out);
    assert_eq!(back.headers().get_str("a"), Some("2"));
    assert_eq!(back.headers().get_str("n"), Some("5"));
    // The opaque entries come first, as they were; n is still an int.
    let body = out.slice(LEN..);
    let mut entries = Vec::new();
    super::request::parse(&body, |a| {
        entries.push(body.slice(a.key_span.start..a.value_span.end))
    })
    .unwrap();
    let want: Vec<&[u8]> = vec![
        b"\x01zN",
        b"\x03objH\x01x\x01yZ",
        b"\x91\x01v",
        b"\x01n\x95",
        b"\x01a\x012",
    ];
    assert_eq!(entries, want);
}

#[test]
fn responses_and_heartbeats_refuse_header_changes() {
    let mut f = decode(&vector!("response_value"));
    f.headers_mut();
    assert_eq!(encode(&f), f.raw);
    f.headers_mut().push("x", "y");
    assert!(Dubbo.encode(&f, &mut BytesMut::new()).is_err());
}

#[test]
fn goaway_is_the_readonly_event() {
    let g = Dubbo.goaway().unwrap();
    let out = encode(&g);
    assert_eq!(&out[..4], &[0xda, 0xbb, 0xa2, 0]);
    assert_eq!(&out[LEN..], b"\x01R");
    let back = decode(&out);
    assert_eq!(back.kind, FrameKind::Oneway);
    assert_eq!(back.headers().get_str("event"), Some("R"));
    assert!(back.service.is_empty());
    assert_eq!(header_list(&back), header_list(&g));
}

#[test]
fn responses_of_other_serializations_pass_as_they_are() {
    let mut v = vector!("response_exception");
    v[2] = 23;
    let f = decode(&v);
    assert_eq!(Dubbo.classify(&f), ResponseClass::Success);
    assert_eq!(encode(&f).as_ref(), v.as_slice());
}

#[test]
fn a_body_field_shadowed_by_a_non_header_attachment_still_mirrors() {
    // Found by fuzzing: "version" as a binary attachment (not a header), so the `version`
    // header mirrors the body's field and a rebuild must not add it to the map.
    let map = b"H\x07version\x23\x31\x2e\x30\x01k\x01vZ";
    let f = decode(&request_with("", &[], map));
    assert_eq!(f.headers().get_str("version"), Some("1.0"));
    let mut g = f.clone();
    g.headers_mut();
    let out = encode(&g);
    assert_eq!(out.as_ref(), f.raw.as_ref());
    assert_eq!(header_list(&decode(&out)), header_list(&f));
}
