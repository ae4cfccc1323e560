//! The one body type the proxy hands around: a streamed upstream or downstream body, or the
//! bytes of a local reply, boxed so both fit one type without buffering.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

pub type Body = BoxBody<Bytes, hyper::Error>;

/// A complete body from bytes (local replies).
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A streamed body from hyper, not read here.
pub fn streamed(body: hyper::body::Incoming) -> Body {
    body.boxed()
}
