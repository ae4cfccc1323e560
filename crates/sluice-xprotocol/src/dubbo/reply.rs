//! Frames Sluice writes itself: error replies, heartbeats and the read-only event.

use bytes::{Bytes, BytesMut};

use super::header::{FixedHeader, FLAG_EVENT, FLAG_REQUEST, FLAG_TWO_WAY, HESSIAN2, LEN};
use super::hessian;
use crate::frame::{Frame, FrameKind};
use crate::headers::Headers;

/// Hessian's null: the body of every heartbeat, both ways.
pub const NULL_BODY: &[u8] = b"N";

/// Dubbo's read-only event ("R"): a provider going away tells its consumers to send it
/// nothing new on this connection.
pub const READONLY_EVENT: &[u8] = b"R";

/// A frame of `flag`, `status` and `id` around `body`.
pub fn frame(kind: FrameKind, flag: u8, status: u8, id: u64, body: &[u8]) -> Frame {
    frame_with(kind, flag, status, id, body, Headers::new())
}

fn frame_with(
    kind: FrameKind,
    flag: u8,
    status: u8,
    id: u64,
    body: &[u8],
    headers: Headers,
) -> Frame {
    let mut raw = BytesMut::with_capacity(LEN + body.len());
    FixedHeader {
        flag,
        status,
        id,
        // Bodies built here are short messages; a longer one is cut at the length's limit.
        body_len: u32::try_from(body.len()).unwrap_or(u32::MAX),
    }
    .write(&mut raw);
    raw.extend_from_slice(body);
    let raw = raw.freeze();
    let mut f = Frame::new(kind, id, headers, raw.slice(LEN..), raw);
    f.status = u32::from(status);
    f
}

/// An error response to request `id`: `status` with `message` as the body, which is how a
/// Dubbo provider reports a failure (the consumer's exception carries the message).
pub fn error_response(id: u64, status: u8, message: &str) -> Frame {
    let mut body = BytesMut::with_capacity(message.len() + 3);
    // `message` is a `str`, so it is UTF-8 and the write cannot fail; if it ever did, an
    // empty message still answers the call.
    if hessian::write_string(&mut body, message.as_bytes()).is_err() {
        body.clear();
        let _ = hessian::write_string(&mut body, b"");
    }
    frame(FrameKind::Response, HESSIAN2, status, id, &body)
}

pub fn heartbeat(id: u64) -> Frame {
    frame(
        FrameKind::HeartbeatRequest,
        FLAG_REQUEST | FLAG_TWO_WAY | FLAG_EVENT | HESSIAN2,
        0,
        id,
        NULL_BODY,
    )
}

/// The answer to a heartbeat: same id and serialization, and the ping's own body, which is
/// that serialization's null (so this works for serializations Sluice cannot read).
pub fn heartbeat_reply(id: u64, serialization: u8, ping_body: &Bytes) -> Frame {
    frame(
        FrameKind::HeartbeatResponse,
        FLAG_EVENT | serialization,
        super::status::OK,
        id,
        ping_body,
    )
}

/// The read-only event, one-way (nobody answers it).
pub fn readonly_event() -> Frame {
    let mut body = BytesMut::new();
    let _ = hessian::write_string(&mut body, READONLY_EVENT);
    let mut headers = Headers::new();
    headers.push(super::EVENT_HEADER, Bytes::from_static(READONLY_EVENT));
    frame_with(
        FrameKind::Oneway,
        FLAG_REQUEST | FLAG_EVENT | HESSIAN2,
        0,
        0,
        &body,
        headers,
    )
}
