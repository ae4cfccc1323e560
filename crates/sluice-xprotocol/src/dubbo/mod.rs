//! Dubbo 2 (the `dubbo://` protocol of Apache Dubbo), with hessian2 bodies.
//!
//! What Sluice reads: the fixed header (`header.rs`) of every frame; of a request's body
//! (`request.rs`), the service path, version, method and attachments, stepping over the
//! arguments without building them; of a response, only its status and, for `classify`, the
//! first value of an OK body (value or exception). Everything else travels as the bytes it
//! came in.
//!
//! Serializations: only hessian2 (id 2), Dubbo's long-standing default and what every Dubbo
//! SDK speaks. A request in another serialization (Dubbo 3.2+ prefers fastjson2 unless told
//! otherwise) is a decode error with a clear message, answered with BAD_REQUEST: the proxy
//! cannot route what it cannot read. Heartbeats and responses of any serialization pass,
//! since neither needs a body read.
//!
//! Events (the event flag): a two-way request with a null body is a heartbeat, answered with
//! the same id. Any other event (Dubbo's read-only event "R", which a provider that shuts down
//! sends its consumers) decodes as a one-way frame with no service, its value in the `event`
//! header; `goaway` sends that read-only event.

mod header;
pub mod hessian;
mod reply;
mod request;
pub mod status;

#[cfg(test)]
mod tests;

use bytes::{Bytes, BytesMut};

use crate::frame::{Frame, FrameKind};
use crate::headers::Headers;
use crate::protocol::{
    DecodeError, DecodeErrorKind, Detect, EncodeError, LocalError, Protocol, ResponseClass,
};
use header::{FixedHeader, HESSIAN2, LEN, MAGIC};

/// The header under which a non-heartbeat event shows its value ("R" for read-only).
pub const EVENT_HEADER: &str = "event";

/// Dubbo's response-body flags (the first value of an OK response); 0 and 3 carry an
/// exception thrown by the service.
const RESPONSE_WITH_EXCEPTION: i64 = 0;
const RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS: i64 = 3;

/// The Dubbo codec. Stateless: one value serves every connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dubbo;

impl Protocol for Dubbo {
    fn name(&self) -> &'static str {
        "dubbo"
    }

    fn detect(&self, head: &[u8]) -> Detect {
        match head {
            [] | [0xda] => Detect::NeedMore,
            [0xda, 0xbb, ..] => Detect::Yes,
            _ => Detect::No,
        }
    }

    fn decode(
        &self,
        buf: &mut BytesMut,
        max_frame_size: usize,
    ) -> Result<Option<Frame>, DecodeError> {
        if buf.iter().zip(MAGIC).any(|(b, m)| *b != m) {
            return Err(DecodeError::new(
                DecodeErrorKind::BadMagic,
                "not a Dubbo frame (no 0xdabb magic)",
            ));
        }
        let Some(h) = FixedHeader::parse(buf) else {
            return Ok(None);
        };
        // Only a two-way request can be answered, so only it carries its id into the error.
        let blame = |e: DecodeError| match h.expects_reply() {
            true => e.with_request_id(h.id),
            false => e,
        };
        if h.body_len > i32::MAX as u32 {
            return Err(blame(DecodeError::malformed(format!(
                "body length {} is negative as Dubbo's signed int",
                h.body_len
            ))));
        }
        let total = LEN + h.body_len as usize;
        if total > max_frame_size {
            // The header is sound: the stream can resume after the frame.
            return Err(blame(DecodeError::new(
                DecodeErrorKind::TooLarge,
                format!("frame of {total} bytes is over the limit of {max_frame_size}"),
            ))
            .with_skip(h.id, total));
        }
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let raw = buf.split_to(total).freeze();
        decode_frame(h, raw).map(Some).map_err(blame)
    }

    fn encode(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let raw = &frame.raw;
        let h = FixedHeader::parse(raw)
            .filter(|h| raw.len() == LEN + h.body_len as usize)
            .ok_or_else(|| EncodeError("dubbo: raw is not one whole frame".into()))?;
        let rebuild = frame.headers_modified() && h.is_request() && !h.is_event();
        if !rebuild {
            // Only a request's attachments can be rewritten: any other frame's headers must
            // still be what it was decoded with.
            if frame.headers_modified()
                && !decode_frame(h, raw.clone()).is_ok_and(|f| f.headers() == frame.headers())
            {
                return Err(EncodeError(
                    "dubbo: only a request's headers (its attachments) can be changed".into(),
                ));
            }
            dst.reserve(raw.len());
            dst.extend_from_slice(raw.get(..header::ID_RANGE.start).unwrap_or_default());
            dst.extend_from_slice(&frame.id.to_be_bytes());
            dst.extend_from_slice(raw.get(header::ID_RANGE.end..).unwrap_or_default());
            return Ok(());
        }
        if h.serialization() != HESSIAN2 {
            return Err(EncodeError(
                "dubbo: only hessian2 bodies can be rebuilt".into(),
            ));
        }
        let start = dst.len();
        FixedHeader { id: frame.id, ..h }.write(dst);
        let body = raw.slice(LEN..);
        let rebuilt = request::rebuild(&body, frame.headers(), dst)
            .map_err(|e| EncodeError(format!("dubbo: rebuilding the request: {e}")))
            .and_then(|()| {
                u32::try_from(dst.len() - start - LEN)
                    .ok()
                    .filter(|&n| n <= i32::MAX as u32)
                    .ok_or_else(|| EncodeError("dubbo: rebuilt body is too large".into()))
            });
        match rebuilt {
            Ok(body_len) => {
                let len_at = start + 12;
                if let Some(slot) = dst.get_mut(len_at..len_at + 4) {
                    slot.copy_from_slice(&body_len.to_be_bytes());
                }
                Ok(())
            }
            Err(e) => {
                dst.truncate(start);
                Err(e)
            }
        }
    }

    /// Dubbo ids are Java longs, taken from a counter that wraps: every 64-bit value is one.
    fn max_request_id(&self) -> u64 {
        u64::MAX
    }

    fn heartbeat(&self, id: u64) -> Option<Frame> {
        Some(reply::heartbeat(id))
    }

    fn heartbeat_reply(&self, ping: &Frame) -> Option<Frame> {
        if ping.kind != FrameKind::HeartbeatRequest {
            return None;
        }
        let h = FixedHeader::parse(&ping.raw)?;
        let body = ping.raw.slice(LEN.min(ping.raw.len())..);
        Some(reply::heartbeat_reply(ping.id, h.serialization(), &body))
    }

    /// Non-OK statuses by `status::classify_status`; an OK response by its body's first
    /// value: an exception the service threw is an `ApplicationError`, anything else (a value,
    /// null, a body Sluice cannot read) is `Success`.
    fn classify(&self, response: &Frame) -> ResponseClass {
        let Ok(code) = u8::try_from(response.status) else {
            return ResponseClass::ServerError;
        };
        if response.kind != FrameKind::Response || code != status::OK {
            return status::classify_status(code);
        }
        let hessian2 =
            FixedHeader::parse(&response.raw).is_some_and(|h| h.serialization() == HESSIAN2);
        let body = response.raw.slice(LEN.min(response.raw.len())..);
        match hessian2.then(|| hessian::Reader::new(&body).read_int()) {
            Some(Ok(RESPONSE_WITH_EXCEPTION | RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS)) => {
                ResponseClass::ApplicationError
            }
            _ => ResponseClass::Success,
        }
    }

    fn local_reply(&self, request: &Frame, error: LocalError, message: &str) -> Option<Frame> {
        (request.kind == FrameKind::Request)
            .then(|| reply::error_response(request.id, status::for_local_error(error), message))
    }

    /// BAD_REQUEST with the error as its message, when the bad frame was a two-way request
    /// (the only case `decode` puts a request id in the error).
    fn decode_error_reply(&self, error: &DecodeError) -> Option<Frame> {
        let id = error.request_id?;
        Some(reply::error_response(
            id,
            status::BAD_REQUEST,
            &error.to_string(),
        ))
    }

    /// Dubbo's read-only event. A Java consumer stops sending new calls on the connection at
    /// once (calls in flight still complete) and uses it again only after reconnecting; one
    /// whose only provider is this proxy fails new calls until then, so send it just before
    /// the connection closes.
    fn goaway(&self) -> Option<Frame> {
        Some(reply::readonly_event())
    }
}

/// A whole frame (`raw`, with header `h`) as the framework sees it.
fn decode_frame(h: FixedHeader, raw: Bytes) -> Result<Frame, DecodeError> {
    let body = raw.slice(LEN..);
    if !h.is_request() {
        // Only heartbeat responses carry the event flag.
        let kind = match h.is_event() {
            true => FrameKind::HeartbeatResponse,
            false => FrameKind::Response,
        };
        let mut f = Frame::new(kind, h.id, Headers::new(), body, raw);
        f.status = u32::from(h.status);
        return Ok(f);
    }
    if h.is_event() {
        return Ok(decode_event(h, body, raw));
    }
    if h.serialization() != HESSIAN2 {
        return Err(DecodeError::malformed(format!(
            "serialization id {} is not supported: Sluice reads Dubbo requests in hessian2 (id 2) only",
            h.serialization()
        )));
    }
    let (prefix, headers) = request::headers(&body)
        .map_err(|e| DecodeError::malformed(format!("dubbo request body: {e}")))?;
    let kind = match h.is_two_way() {
        true => FrameKind::Request,
        false => FrameKind::Oneway,
    };
    let mut f = Frame::new(kind, h.id, headers, body, raw);
    f.service = prefix.path.unwrap_or_default();
    f.method = prefix.method.unwrap_or_default();
    Ok(f)
}

/// A request with the event flag: a heartbeat when two-way with a null body (the null of
/// whatever serialization; for one Sluice cannot read, two-way alone decides, as Dubbo sends
/// no other two-way event), else a one-way control event.
fn decode_event(h: FixedHeader, body: Bytes, raw: Bytes) -> Frame {
    let hessian2 = h.serialization() == HESSIAN2;
    let null = if hessian2 {
        body.as_ref() == reply::NULL_BODY
    } else {
        h.is_two_way()
    };
    if null && h.is_two_way() {
        return Frame::new(FrameKind::HeartbeatRequest, h.id, Headers::new(), body, raw);
    }
    let mut headers = Headers::new();
    if hessian2 {
        if let Ok(hessian::Value::Str(v)) = hessian::Reader::new(&body).read_value(0) {
            headers.push(EVENT_HEADER, v);
        }
    }
    Frame::new(FrameKind::Oneway, h.id, headers, body, raw)
}
