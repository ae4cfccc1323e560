//! The one body type the proxy hands around: a streamed upstream or downstream body, the bytes
//! of a local reply, or a mirrored copy, boxed so all fit one type without buffering.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
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

/// A streamed body from hyper, not read here. A body known to be empty becomes [`empty`],
/// which boxes a zero-sized value and so allocates nothing.
pub fn streamed(body: hyper::body::Incoming) -> Body {
    if http_body::Body::is_end_stream(&body) {
        return empty();
    }
    body.map_err(BoxError::from).boxed()
}

/// The request body went past `max_request_body`; mapped to a 413.
#[derive(Debug)]
pub struct BodyTooLarge(pub u64);

impl std::fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request body larger than max_request_body ({} bytes)",
            self.0
        )
    }
}

impl std::error::Error for BodyTooLarge {}

/// Passes a body through, failing with [`BodyTooLarge`] once more than `limit` bytes went by.
pub fn limited(body: Body, limit: u64) -> Body {
    Limited {
        inner: body,
        limit,
        seen: 0,
    }
    .boxed()
}

struct Limited {
    inner: Body,
    limit: u64,
    seen: u64,
}

impl http_body::Body for Limited {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame {
            if let Some(data) = f.data_ref() {
                self.seen += data.len() as u64;
                if self.seen > self.limit {
                    return Poll::Ready(Some(Err(Box::new(BodyTooLarge(self.limit)))));
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How much of a refused request body is read and dropped before the answer.
const DISCARD_LIMIT: usize = 1 << 20;
const DISCARD_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads and drops up to 1 MiB of a body we will not forward, for at most a second: enough for
/// a client that already sent it to read our answer instead of hitting a reset.
pub async fn discard(mut body: Body) {
    let drain = async {
        let mut seen = 0;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > DISCARD_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIME, drain).await;
}
