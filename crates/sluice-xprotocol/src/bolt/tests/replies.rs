use super::vectors::*;
use super::*;
use crate::bolt::hessian::RPC_SERVER_EXCEPTION;
use crate::bolt::{class_name, fixed_header, status};
use crate::frame::FrameKind;
use crate::protocol::{DecodeErrorKind, LocalError, ResponseClass};

#[test]
fn heartbeat_acks_match_sofa_rpc_node_byte_for_byte() {
    for (ping, ack) in [
        (V1_HEARTBEAT, V1_HEARTBEAT_ACK),
        (V2_CRC_HEARTBEAT, V2_CRC_HEARTBEAT_ACK),
    ] {
        let reply = Bolt.heartbeat_reply(&decode_one(&hex(ping))).unwrap();
        assert_eq!(reply.kind, FrameKind::HeartbeatResponse);
        assert_eq!(&reply.raw[..], &hex(ack)[..]);
        assert_eq!(encode(&reply), hex(ack));
    }
    assert!(Bolt
        .heartbeat_reply(&decode_one(&hex(V1_ECHO_REQUEST)))
        .is_none());
}

#[test]
fn heartbeats_are_v1_and_differ_from_sofa_rpc_node_only_in_the_timeout() {
    let hb = Bolt.heartbeat(4242).unwrap();
    assert_eq!(hb.kind, FrameKind::HeartbeatRequest);
    let mut node = hex(V1_HEARTBEAT);
    node[10..14].copy_from_slice(&(-1i32).to_be_bytes());
    assert_eq!(&hb.raw[..], &node[..]);
    let decoded = decode_one(&hb.raw);
    assert_eq!(
        (decoded.kind, decoded.id),
        (FrameKind::HeartbeatRequest, 4242)
    );
    assert!(Bolt.heartbeat(u64::from(u32::MAX) + 1).is_none());
    // The proxy answers its own heartbeats' shape too.
    assert!(Bolt.heartbeat_reply(&decoded).is_some());
}

#[test]
fn local_replies_answer_in_the_requests_version_and_id() {
    let cases = [
        (LocalError::NoRoute, status::NO_PROCESSOR),
        (LocalError::NoHealthyUpstream, status::CONNECTION_CLOSED),
        (LocalError::Overflow, status::SERVER_THREADPOOL_BUSY),
        (LocalError::Timeout, status::TIMEOUT),
        (LocalError::UpstreamFailure, status::CONNECTION_CLOSED),
        (LocalError::BadRequest, status::CODEC_EXCEPTION),
    ];
    for vector in [V1_ECHO_REQUEST, V2_ECHO_REQUEST, V2_CRC_ECHO_REQUEST] {
        let mut request = decode_one(&hex(vector));
        request.id = 31337;
        let req_fixed = fixed_header(&request).unwrap();
        for (error, code) in cases {
            let reply = Bolt
                .local_reply(&request, error, "no route for com.example.Echo:1.0")
                .unwrap();
            let wire = encode(&reply);
            assert_eq!(wire, &reply.raw[..]);
            let got = decode_one(&wire);
            assert_eq!(got.kind, FrameKind::Response);
            assert_eq!(got.id, 31337);
            assert_eq!(got.status, u32::from(code), "{error:?}");
            let fixed = fixed_header(&got).unwrap();
            assert_eq!(
                (fixed.proto, fixed.ver1, fixed.switch, fixed.codec),
                (
                    req_fixed.proto,
                    req_fixed.ver1,
                    req_fixed.switch,
                    req_fixed.codec
                )
            );
            assert_eq!(&class_name(&got)[..], RPC_SERVER_EXCEPTION.as_bytes());
            let body = &got.body[..];
            assert!(body
                .windows(33)
                .any(|w| w == b"no route for com.example.Echo:1.0"));
            assert_ne!(Bolt.classify(&got), ResponseClass::Success);
        }
    }
}

#[test]
fn local_reply_body_is_the_hessian_error_object() {
    let request = decode_one(&hex(V1_ECHO_REQUEST));
    let reply = Bolt.local_reply(&request, LocalError::Timeout, "").unwrap();
    // 'O' class definition (name, 3 fields), 'o' instance 0, then the values.
    let mut expected =
        b"O\xc8\x34com.alipay.remoting.rpc.exception.RpcServerException\x93".to_vec();
    expected.extend_from_slice(b"\x0ddetailMessage\x0astackTrace\x05cause");
    expected.extend_from_slice(b"o\x90\x10upstream timeout");
    expected.extend_from_slice(b"Vt\x00\x1c[java.lang.StackTraceElementn\x00zN");
    assert_eq!(&reply.body[..], &expected[..]);
}

#[test]
fn local_replies_to_other_serializations_carry_no_content() {
    let mut spec = Spec::request(vec![], b"\x0a\x03abc");
    spec.fixed.codec = 11;
    let request = decode_one(&spec.bytes());
    let reply = Bolt
        .local_reply(&request, LocalError::NoRoute, "m")
        .unwrap();
    let got = decode_one(&reply.raw);
    assert!(got.body.is_empty() && class_name(&got).is_empty());
    assert_eq!(fixed_header(&got).unwrap().codec, 11);
}

#[test]
fn no_local_reply_for_one_way_requests_or_heartbeats() {
    let mut spec = Spec::request(vec![], b"");
    spec.fixed.rpc_type = 2;
    let oneway = decode_one(&spec.bytes());
    assert_eq!(oneway.kind, FrameKind::Oneway);
    assert!(Bolt
        .local_reply(&oneway, LocalError::NoRoute, "x")
        .is_none());
    let ping = decode_one(&hex(V1_HEARTBEAT));
    assert!(Bolt.local_reply(&ping, LocalError::NoRoute, "x").is_none());
}

#[test]
fn decode_errors_with_a_request_id_get_a_codec_exception() {
    let e = Bolt
        .decode(
            &mut bytes::BytesMut::from(&hex(V2_CRC_ECHO_REQUEST)[..]),
            64,
        )
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::TooLarge);
    let reply = Bolt.decode_error_reply(&e).unwrap();
    let got = decode_one(&reply.raw);
    assert_eq!((got.kind, got.id), (FrameKind::Response, 1));
    assert_eq!(got.status, u32::from(status::CODEC_EXCEPTION));
    assert_eq!(fixed_header(&got).unwrap().proto, 1);
    assert!(got
        .body
        .windows(14)
        .any(|w| w == b"frame too large"[..14].as_ref()));

    let e = Bolt
        .decode(&mut bytes::BytesMut::from(&hex(V1_ECHO_RESPONSE)[..]), 64)
        .unwrap_err();
    assert!(Bolt.decode_error_reply(&e).is_none());
    assert!(Bolt.decode_error_reply(&decode_err(b"GET /")).is_none());
}

#[test]
fn classify_follows_the_status() {
    let table = [
        (status::SUCCESS, ResponseClass::Success),
        (status::ERROR, ResponseClass::ServerError),
        (status::SERVER_EXCEPTION, ResponseClass::ApplicationError),
        (status::UNKNOWN, ResponseClass::ServerError),
        (status::SERVER_THREADPOOL_BUSY, ResponseClass::Retriable),
        (status::ERROR_COMM, ResponseClass::ServerError),
        (status::NO_PROCESSOR, ResponseClass::ServerError),
        (status::TIMEOUT, ResponseClass::ServerError),
        (status::CLIENT_SEND_ERROR, ResponseClass::ServerError),
        (status::CODEC_EXCEPTION, ResponseClass::ServerError),
        (status::CONNECTION_CLOSED, ResponseClass::ServerError),
        (
            status::SERVER_SERIAL_EXCEPTION,
            ResponseClass::ApplicationError,
        ),
        (
            status::SERVER_DESERIAL_EXCEPTION,
            ResponseClass::ApplicationError,
        ),
        (0x0a, ResponseClass::ServerError),
        (0xffff, ResponseClass::ServerError),
    ];
    let mut f = decode_one(&hex(V1_ECHO_RESPONSE));
    for (code, class) in table {
        f.status = u32::from(code);
        assert_eq!(Bolt.classify(&f), class, "{code:#x}");
        assert_eq!(status::name(code).is_some(), code != 0x0a && code != 0xffff);
    }
    f.status = 0x1_0000;
    assert_eq!(Bolt.classify(&f), ResponseClass::ServerError);
    assert_eq!(
        Bolt.classify(&decode_one(&hex(V1_HEARTBEAT_ACK))),
        ResponseClass::Success
    );
}
