//! Trace context in request headers: the formats, what a client's headers say, and what the
//! proxy writes upstream.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{b3, sw8, w3c};
use crate::TraceContext;

/// A header format for trace context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// W3C Trace Context (`traceparent`, `tracestate`).
    W3c,
    /// B3, one header per field (`x-b3-traceid`, ...).
    B3,
    /// B3's single `b3` header.
    B3Single,
    /// SkyWalking's `sw8`.
    Sw8,
}

impl Format {
    pub const NAMES: [&'static str; 4] = ["w3c", "b3", "b3_single", "sw8"];

    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "w3c" => Some(Format::W3c),
            "b3" => Some(Format::B3),
            "b3_single" => Some(Format::B3Single),
            "sw8" => Some(Format::Sw8),
            _ => None,
        }
    }

    /// What the client's headers in this format say; `None` when they are absent or
    /// malformed (never a panic: they come from the network).
    pub fn extract(self, headers: &HeaderMap) -> Option<Incoming> {
        match self {
            Format::W3c => w3c::extract(headers),
            Format::B3 => b3::extract_multi(headers),
            Format::B3Single => b3::extract_single(headers),
            Format::Sw8 => sw8::extract(headers),
        }
    }

    /// The headers this format reads and writes (lower case).
    pub fn header_names(self) -> &'static [HeaderName] {
        static W3C: [HeaderName; 2] = [w3c::TRACEPARENT, w3c::TRACESTATE];
        static B3: [HeaderName; 5] = [
            b3::TRACE_ID,
            b3::SPAN_ID,
            b3::PARENT_SPAN_ID,
            b3::SAMPLED,
            b3::FLAGS,
        ];
        static B3_SINGLE: [HeaderName; 1] = [b3::SINGLE];
        static SW8: [HeaderName; 1] = [sw8::SW8];
        match self {
            Format::W3c => &W3C,
            Format::B3 => &B3,
            Format::B3Single => &B3_SINGLE,
            Format::Sw8 => &SW8,
        }
    }

    /// Writes the proxy's span as the parent of the upstream's, replacing whatever the
    /// client sent in this format.
    pub fn inject(self, out: &Outgoing<'_>, headers: &mut HeaderMap) {
        match self {
            Format::W3c => w3c::inject(out, headers),
            Format::B3 => b3::inject_multi(out, headers),
            Format::B3Single => b3::inject_single(out, headers),
            Format::Sw8 => sw8::inject(out, headers),
        }
    }
}

/// A trace and the client's span in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

/// What a client's headers say about the trace its request belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The trace and the client's span, when the headers name them (B3 may carry only a
    /// sampling decision).
    pub ids: Option<Ids>,
    /// The client's sampling decision, when it made one.
    pub sampled: Option<bool>,
    /// The trace id as written when it is not 128-bit hex (SkyWalking's are free-form).
    pub foreign_trace_id: Option<Arc<str>>,
}

impl Incoming {
    pub fn ids(trace_id: [u8; 16], span_id: [u8; 8], sampled: Option<bool>) -> Incoming {
        Incoming {
            ids: Some(Ids { trace_id, span_id }),
            sampled,
            foreign_trace_id: None,
        }
    }

    /// A sampling decision without a trace.
    pub fn decision(sampled: bool) -> Incoming {
        Incoming {
            ids: None,
            sampled: Some(sampled),
            foreign_trace_id: None,
        }
    }
}

/// What the proxy writes upstream: its span, and what SkyWalking wants to know of it.
pub struct Outgoing<'a> {
    pub ctx: &'a TraceContext,
    /// The tracing `service_name`.
    pub service: &'a str,
    /// The node id.
    pub instance: &'a str,
    /// The request's path (SkyWalking's parent endpoint).
    pub endpoint: &'a str,
    /// The upstream host, as `host:port`.
    pub peer: &'a str,
}

/// A header value over `v`'s bytes (no copy); `None` if some byte is not allowed (cannot
/// happen for what the formats write: hex, base64 and dashes).
pub(super) fn header_value(v: Vec<u8>) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(v)).ok()
}
