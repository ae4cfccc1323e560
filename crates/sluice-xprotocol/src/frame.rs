//! One decoded protocol frame: a request, a response or a heartbeat.

use bytes::Bytes;

use crate::headers::Headers;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A request that expects a response with the same id.
    Request,
    /// A request that expects none (Bolt's one-way, Dubbo's two-way flag unset).
    Oneway,
    Response,
    /// A keepalive probe; answered by whoever receives it, never routed.
    HeartbeatRequest,
    HeartbeatResponse,
}

impl FrameKind {
    pub fn is_request(self) -> bool {
        matches!(self, FrameKind::Request | FrameKind::Oneway)
    }

    pub fn is_heartbeat(self) -> bool {
        matches!(
            self,
            FrameKind::HeartbeatRequest | FrameKind::HeartbeatResponse
        )
    }
}

/// A frame as the framework sees it: kind, id, routing fields, headers and an opaque body.
///
/// `raw` is the whole frame as it was decoded (or as a protocol built it). Forwarding an
/// unmodified frame writes `raw` with only the request id patched, so the framework never
/// needs to understand a protocol's other fields; once a filter changes the headers
/// (`headers_mut`), the protocol re-encodes from `raw`'s fixed fields and the new headers.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: FrameKind,
    /// The request id as it will be encoded: the framework rewrites it when it moves a request
    /// onto a shared upstream connection, and back on the response.
    pub id: u64,
    /// A response's status in the protocol's own codes (0 for requests).
    pub status: u32,
    /// The service a request calls (Bolt's `service` header, Dubbo's interface path; Dubbo's
    /// version is a header of its own), for routing; empty when the frame has none.
    pub service: Bytes,
    /// The method a request calls; empty when the frame has none.
    pub method: Bytes,
    headers: Headers,
    /// The payload, opaque to the framework.
    pub body: Bytes,
    /// The frame's bytes as decoded, whole (see the type's doc).
    pub raw: Bytes,
    headers_modified: bool,
}

impl Frame {
    /// A frame over `raw`, the bytes it was decoded from (or encoded to, for frames a
    /// protocol builds itself).
    pub fn new(kind: FrameKind, id: u64, headers: Headers, body: Bytes, raw: Bytes) -> Self {
        Frame {
            kind,
            id,
            status: 0,
            service: Bytes::new(),
            method: Bytes::new(),
            headers,
            body,
            raw,
            headers_modified: false,
        }
    }

    /// A copy that shares `raw` but carries no headers or body (reference counts, no
    /// allocation): what the framework keeps to answer a request whose frame went upstream.
    /// `Protocol::local_reply` must therefore build replies from `kind`, `id` and `raw`.
    pub fn without_payload(&self) -> Frame {
        Frame {
            kind: self.kind,
            id: self.id,
            status: self.status,
            service: self.service.clone(),
            method: self.method.clone(),
            headers: Headers::new(),
            body: Bytes::new(),
            raw: self.raw.clone(),
            headers_modified: false,
        }
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The headers, for a change: encoding then rebuilds the frame instead of copying `raw`.
    pub fn headers_mut(&mut self) -> &mut Headers {
        self.headers_modified = true;
        &mut self.headers
    }

    /// Whether `headers_mut` was called since the frame was decoded.
    pub fn headers_modified(&self) -> bool {
        self.headers_modified
    }

    /// `service` as text (empty if it is not UTF-8).
    pub fn service_str(&self) -> &str {
        std::str::from_utf8(&self.service).unwrap_or("")
    }

    /// `method` as text (empty if it is not UTF-8).
    pub fn method_str(&self) -> &str {
        std::str::from_utf8(&self.method).unwrap_or("")
    }
}
