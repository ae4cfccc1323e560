//! The one body type the proxy hands around: a streamed upstream or downstream body, the bytes
//! of a local reply, or a mirrored copy, boxed so all fit one type without buffering.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;

/// A complete body from bytes (local replies).
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A streamed body from hyper, not read here.
pub fn streamed(body: hyper::body::Incoming) -> Body {
    body.map_err(BoxError::from).boxed()
}
