//! `kv`: a small RPC protocol, written only against `sluice_xprotocol`'s public API to show
//! what adding a protocol to Sluice takes (docs/protocols.md walks through it).
//!
//! A frame is a 12-byte fixed header, then key/value headers, then the body:
//!
//! ```text
//! 0      2      3        4           8               12
//! | "kv" | kind | status | id (u32)  | length (u32)  | headers ... | body ... |
//! headers: count (u16), then per pair: key length (u16), key, value length (u16), value
//! ```
//! `length` counts everything after the fixed header. Kinds: 0 request, 1 response,
//! 2 one-way, 3 ping, 4 pong. Statuses: 0 ok, 1 application error, 2 server error, 3 busy,
//! 4 no route, 5 timeout, 6 bad request. The `service` and `method` headers are routed on.
//! Integers are big-endian.

use bytes::{BufMut, Bytes, BytesMut};
use sluice_xprotocol::protocol::{DecodeErrorKind, EncodeError};
use sluice_xprotocol::{
    DecodeError, Detect, Frame, FrameKind, Headers, LocalError, Protocol, ResponseClass,
};

pub const MAGIC: &[u8; 2] = b"kv";
const FIXED: usize = 12;
const KINDS: [FrameKind; 5] = [
    FrameKind::Request,
    FrameKind::Response,
    FrameKind::Oneway,
    FrameKind::HeartbeatRequest,
    FrameKind::HeartbeatResponse,
];

pub struct Kv;

/// A whole frame (`kind` a byte from the table above), as clients, servers and the proxy's
/// own replies make them.
pub fn build(kind: u8, status: u8, id: u32, hs: &[(&str, &str)], body: &[u8]) -> Option<Frame> {
    let pairs: Vec<_> = hs
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    let mut buf = BytesMut::new();
    write(&mut buf, [kind, status], id, &pairs, body);
    Kv.decode(&mut buf, usize::MAX).ok().flatten()
}

fn write(out: &mut BytesMut, head: [u8; 2], id: u32, hs: &[(&[u8], &[u8])], body: &[u8]) {
    let pairs: usize = hs.iter().map(|(k, v)| 4 + k.len() + v.len()).sum();
    out.put_slice(MAGIC);
    out.put_slice(&head);
    out.put_u32(id);
    out.put_u32(u32::try_from(2 + pairs + body.len()).unwrap_or(u32::MAX));
    out.put_u16(u16::try_from(hs.len()).unwrap_or(u16::MAX));
    for part in hs.iter().flat_map(|(k, v)| [k, v]) {
        out.put_u16(u16::try_from(part.len()).unwrap_or(u16::MAX));
        out.put_slice(part);
    }
    out.put_slice(body);
}

/// The u16-length-prefixed field at `*at`, moving past it.
fn field(frame: &Bytes, at: &mut usize) -> Option<Bytes> {
    let len = usize::from(u16::from_be_bytes(
        frame.get(*at..*at + 2)?.try_into().ok()?,
    ));
    let value = frame.slice_ref(frame.get(*at + 2..*at + 2 + len)?);
    *at += 2 + len;
    Some(value)
}

impl Protocol for Kv {
    fn name(&self) -> &'static str {
        "kv"
    }

    fn detect(&self, head: &[u8]) -> Detect {
        match head {
            [b'k', b'v', kind, ..] if usize::from(*kind) < KINDS.len() => Detect::Yes,
            [b'k'] | [b'k', b'v'] => Detect::NeedMore,
            _ => Detect::No,
        }
    }

    fn decode(&self, buf: &mut BytesMut, max: usize) -> Result<Option<Frame>, DecodeError> {
        if buf.len() < FIXED {
            return Ok(None);
        }
        if &buf[..2] != MAGIC {
            return Err(DecodeError::new(DecodeErrorKind::BadMagic, "not kv"));
        }
        let id = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let length = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
        let error = |kind, m: &str| Err(DecodeError::new(kind, m).with_request_id(u64::from(id)));
        if length > max {
            return error(DecodeErrorKind::TooLarge, &format!("{length} bytes"));
        }
        if buf.len() - FIXED < length {
            return Ok(None);
        }
        let frame = buf.split_to(FIXED + length).freeze();
        let Some(&kind) = KINDS.get(usize::from(frame[2])) else {
            return error(DecodeErrorKind::Malformed, "unknown kind");
        };
        let count = frame
            .get(12..14)
            .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
        let mut headers = Headers::with_capacity(usize::from(count));
        let mut at = 14;
        for _ in 0..count {
            match (field(&frame, &mut at), field(&frame, &mut at)) {
                (Some(k), Some(v)) => headers.push(k, v),
                _ => return error(DecodeErrorKind::Malformed, "headers run past the frame"),
            }
        }
        let body = frame
            .get(at..)
            .map_or_else(Bytes::new, |b| frame.slice_ref(b));
        let mut out = Frame::new(kind, u64::from(id), headers, body, frame.clone());
        out.status = u32::from(frame[3]);
        out.service = out.headers().get("service").cloned().unwrap_or_default();
        out.method = out.headers().get("method").cloned().unwrap_or_default();
        Ok(Some(out))
    }

    fn encode(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let id = u32::try_from(frame.id).map_err(|_| EncodeError("id over 32 bits".into()))?;
        let (Some(head), Some(rest)) = (frame.raw.get(..4), frame.raw.get(8..FIXED)) else {
            return Err(EncodeError("no fixed header".into()));
        };
        if frame.headers_modified() {
            let pairs: Vec<_> = frame
                .headers()
                .iter()
                .map(|(k, v)| (&k[..], &v[..]))
                .collect();
            write(dst, [head[2], head[3]], id, &pairs, &frame.body);
        } else {
            dst.put_slice(head);
            dst.put_u32(id);
            dst.put_slice(rest);
            dst.put_slice(frame.raw.get(FIXED..).unwrap_or_default());
        }
        Ok(())
    }

    fn heartbeat(&self, id: u64) -> Option<Frame> {
        build(3, 0, u32::try_from(id).ok()?, &[], b"")
    }

    fn heartbeat_reply(&self, ping: &Frame) -> Option<Frame> {
        build(4, 0, u32::try_from(ping.id).ok()?, &[], b"")
    }

    fn classify(&self, response: &Frame) -> ResponseClass {
        match response.status {
            0 => ResponseClass::Success,
            1 | 4 | 6 => ResponseClass::ApplicationError,
            3 => ResponseClass::Retriable,
            _ => ResponseClass::ServerError,
        }
    }

    fn local_reply(&self, request: &Frame, error: LocalError, message: &str) -> Option<Frame> {
        let status = match error {
            _ if request.kind != FrameKind::Request => return None,
            LocalError::NoRoute => 4,
            LocalError::Timeout => 5,
            LocalError::BadRequest => 6,
            LocalError::Overflow => 3,
            LocalError::NoHealthyUpstream | LocalError::UpstreamFailure => 2,
            LocalError::Forbidden => 7,
        };
        let id = u32::try_from(request.id).ok()?;
        let headers = [("error", error.as_str())];
        build(1, status, id, &headers, message.as_bytes())
    }

    fn decode_error_reply(&self, error: &DecodeError) -> Option<Frame> {
        let id = u32::try_from(error.request_id?).ok()?;
        let message = error.to_string();
        build(1, 6, id, &[("error", "bad request")], message.as_bytes())
    }
}
