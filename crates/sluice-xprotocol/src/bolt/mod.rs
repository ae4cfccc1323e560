//! SOFARPC's Bolt protocol (v1 and v2), as sofa-bolt (Java) and sofa-bolt-node speak it.
//!
//! A frame is a fixed header ([`header`]), then a class name (the request or response object's
//! Java class, e.g. `com.alipay.sofa.rpc.core.request.SofaRequest`), a header map
//! ([`header_map`]) and the serialized content. The proxy reads the fixed header and the header
//! map, and treats the class name and content as opaque, except for two narrow uses of the
//! Hessian content ([`hessian`]): reading the method name of requests whose header map lacks
//! it, and writing the error object of the replies it makes.
//!
//! What a decoded frame holds:
//! - `headers`: the header map, exactly as on the wire (no pseudo-headers). The class name is
//!   not a header: [`class_name`] reads it, and [`fixed_header`] the rest of the fixed header
//!   (version, codec, timeout, switch).
//! - `service`: the `service` header, else `sofa_head_target_service`.
//! - `method`: the `sofa_head_method_name` header, else the Hessian `SofaRequest.methodName`.
//! - `status`: a response's status ([`status`]).
//! - `body`: the content; `raw`: the whole frame.
//!
//! See docs/protocols/bolt.md for the user-facing summary.

mod cursor;
mod decode;
mod encode;
pub mod header;
pub mod header_map;
pub mod hessian;
pub mod status;
#[cfg(test)]
mod tests;

use bytes::{Bytes, BytesMut};

pub use decode::{METHOD_NAME, SERVICE, TARGET_SERVICE};
pub use header::FixedHeader;

use header::{
    CMD_HEARTBEAT, CMD_RPC_RESPONSE, CODEC_HESSIAN2, PROTO_V1, PROTO_V2, TYPE_ONEWAY, TYPE_REQUEST,
    TYPE_RESPONSE, VER2,
};

use crate::frame::{Frame, FrameKind};
use crate::protocol::{DecodeError, Detect, EncodeError, LocalError, Protocol, ResponseClass};

/// The Bolt codec. Stateless: one value serves every connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bolt;

/// The fixed header of a frame this codec decoded or built (`None` for a foreign `raw`).
pub fn fixed_header(frame: &Frame) -> Option<FixedHeader> {
    FixedHeader::parse(&frame.raw).ok().flatten()
}

/// A frame's class name (empty for heartbeats), as a slice of its bytes.
pub fn class_name(frame: &Frame) -> Bytes {
    let Some(fixed) = fixed_header(frame) else {
        return Bytes::new();
    };
    let start = fixed.fixed_len();
    let end = start + usize::from(fixed.class_len);
    if end > frame.raw.len() {
        return Bytes::new();
    }
    frame.raw.slice(start..end)
}

/// The fixed header of a response to `request`: same version, switch, codec and id.
fn response_to(request: &FixedHeader, cmd_code: u16, status: u16, id: u32) -> FixedHeader {
    FixedHeader {
        rpc_type: TYPE_RESPONSE,
        cmd_code,
        id,
        timeout: 0,
        status,
        class_len: 0,
        header_len: 0,
        content_len: 0,
        ..*request
    }
}

/// A v1 Hessian2 request header, for frames the proxy starts (heartbeats) and for answering a
/// request whose own header is unreadable.
fn v1_request(cmd_code: u16, id: u32) -> FixedHeader {
    FixedHeader {
        proto: PROTO_V1,
        ver1: 0,
        rpc_type: TYPE_REQUEST,
        cmd_code,
        ver2: VER2,
        id,
        codec: CODEC_HESSIAN2,
        switch: 0,
        // sofa-bolt's "no timeout"; servers ignore a heartbeat's timeout anyway.
        timeout: -1,
        status: 0,
        class_len: 0,
        header_len: 0,
        content_len: 0,
    }
}

/// An error response: Hessian2 content gets an `RpcServerException` carrying `message` (the
/// only way sofa-rpc-node shows a message for an error status); other serializations get no
/// content, which every client reads as an error without a message.
fn error_response(fixed: FixedHeader, message: &str) -> Option<Frame> {
    if fixed.codec == CODEC_HESSIAN2 {
        let body = hessian::server_exception(message);
        encode::build(
            FrameKind::Response,
            fixed,
            hessian::RPC_SERVER_EXCEPTION.as_bytes(),
            &body,
        )
    } else {
        encode::build(FrameKind::Response, fixed, &[], &[])
    }
}

impl Protocol for Bolt {
    fn name(&self) -> &'static str {
        "bolt"
    }

    /// Yes for the start of a v1 or v2 request or heartbeat: a proto byte of 1 or 2 (v2 then a
    /// version of 1 or 2), a request or one-way type, and command code 0 or 1. No HTTP method,
    /// HTTP/2 preface, TLS record or Dubbo magic starts with byte 1 or 2.
    fn detect(&self, head: &[u8]) -> Detect {
        let type_at = match head.first() {
            None => return Detect::NeedMore,
            Some(&PROTO_V1) => 1,
            Some(&PROTO_V2) => match head.get(1) {
                None => return Detect::NeedMore,
                Some(1 | 2) => 2,
                Some(_) => return Detect::No,
            },
            Some(_) => return Detect::No,
        };
        match head.get(type_at) {
            None => return Detect::NeedMore,
            Some(&(TYPE_REQUEST | TYPE_ONEWAY)) => {}
            Some(_) => return Detect::No,
        }
        match (head.get(type_at + 1), head.get(type_at + 2)) {
            (None, _) => Detect::NeedMore,
            (Some(0), None) => Detect::NeedMore,
            (Some(0), Some(0 | 1)) => Detect::Yes,
            _ => Detect::No,
        }
    }

    fn decode(
        &self,
        buf: &mut BytesMut,
        max_frame_size: usize,
    ) -> Result<Option<Frame>, DecodeError> {
        decode::decode(buf, max_frame_size)
    }

    fn encode(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), EncodeError> {
        encode::encode(frame, dst)
    }

    fn heartbeat(&self, id: u64) -> Option<Frame> {
        let id = u32::try_from(id).ok()?;
        encode::build(
            FrameKind::HeartbeatRequest,
            v1_request(CMD_HEARTBEAT, id),
            &[],
            &[],
        )
    }

    /// A heartbeat ack in the ping's version, switch and codec (with a CRC if the ping had one).
    fn heartbeat_reply(&self, ping: &Frame) -> Option<Frame> {
        if ping.kind != FrameKind::HeartbeatRequest {
            return None;
        }
        let id = u32::try_from(ping.id).ok()?;
        let request = fixed_header(ping)?;
        let fixed = response_to(&request, CMD_HEARTBEAT, status::SUCCESS, id);
        encode::build(FrameKind::HeartbeatResponse, fixed, &[], &[])
    }

    fn classify(&self, response: &Frame) -> ResponseClass {
        u16::try_from(response.status)
            .map(status::classify)
            .unwrap_or(ResponseClass::ServerError)
    }

    /// A response with the status [`status::for_local_error`] gives, in the request's version
    /// and codec, to `request.id`; `message` (or the error's own words when empty) travels as
    /// the `RpcServerException`'s message.
    fn local_reply(&self, request: &Frame, error: LocalError, message: &str) -> Option<Frame> {
        if request.kind != FrameKind::Request {
            return None;
        }
        let id = u32::try_from(request.id).ok()?;
        let fixed = fixed_header(request).unwrap_or_else(|| v1_request(0, id));
        let fixed = response_to(&fixed, CMD_RPC_RESPONSE, status::for_local_error(error), id);
        let message = if message.is_empty() {
            error.as_str()
        } else {
            message
        };
        error_response(fixed, message)
    }

    /// A v1 Hessian2 CODEC_EXCEPTION response to the request the bad frame carried, if its
    /// fixed header was readable and its sender waits for an answer. v1 because the error does
    /// not say which version the request spoke, and every Bolt client decodes v1 responses.
    fn decode_error_reply(&self, error: &DecodeError) -> Option<Frame> {
        let id = u32::try_from(error.request_id?).ok()?;
        let fixed = response_to(
            &v1_request(0, id),
            CMD_RPC_RESPONSE,
            status::CODEC_EXCEPTION,
            id,
        );
        error_response(fixed, &error.to_string())
    }
}
