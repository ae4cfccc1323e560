use super::vectors::*;
use super::*;
use crate::protocol::Detect;

#[test]
fn requests_and_heartbeats_are_bolt() {
    for vector in [
        V1_ECHO_REQUEST,
        V1_FAIL_REQUEST,
        V1_HEARTBEAT,
        V2_ECHO_REQUEST,
        V2_CRC_ECHO_REQUEST,
        V2_CRC_HEARTBEAT,
    ] {
        let bytes = hex(vector);
        assert_eq!(Bolt.detect(&bytes), Detect::Yes);
        let yes_at = if bytes[0] == 1 { 4 } else { 5 };
        assert_eq!(Bolt.detect(&bytes[..yes_at]), Detect::Yes);
        for n in 0..yes_at {
            assert_eq!(Bolt.detect(&bytes[..n]), Detect::NeedMore, "{n} bytes");
        }
    }
    // One-way requests too.
    assert_eq!(Bolt.detect(&[1, 2, 0, 1]), Detect::Yes);
}

#[test]
fn other_protocols_are_not() {
    for head in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"POST /x HTTP/1.1\r\n",
        b"OPTIONS * HTTP/1.1\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"\xda\xbb\xc2\x00\x00\x00\x00\x00",
        b"\x16\x03\x01\x02\x00",
        b"SSH-2.0-x",
        b"\x00\x00\x00\x00",
    ] {
        for n in 1..=head.len() {
            assert_eq!(Bolt.detect(&head[..n]), Detect::No, "{:?}", &head[..n]);
        }
    }
}

#[test]
fn responses_and_unknown_commands_are_not() {
    for head in [
        &hex(V1_ECHO_RESPONSE)[..],
        &hex(V2_CRC_HEARTBEAT_ACK)[..],
        &[1, 1, 0, 2],
        &[1, 1, 1, 0],
        &[2, 3, 1, 0, 1],
        &[2, 2, 1, 0, 5],
    ] {
        assert_eq!(Bolt.detect(head), Detect::No, "{head:?}");
    }
}
