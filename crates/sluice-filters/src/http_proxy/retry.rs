//! When to try a request again (Envoy's `retry_on` semantics), how long to wait before the next
//! try, and keeping a copy of the request body (while it streams) so it can be sent again.
//!
//! A retry is decided on the response head only, before anything reaches the client, so a
//! response that has started streaming downstream is never retried.

use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use sluice_config::route::{RetryOn, RetryPolicy};
use tokio::sync::oneshot;

use super::body::{Body, BoxError};

/// Request bodies up to this size are kept for replay; a larger one is sent once, unretried.
pub const REPLAY_BUFFER_LIMIT: usize = 64 * 1024;
/// First backoff interval (Envoy's default); each retry doubles it, up to ten times as long.
const BASE_INTERVAL: Duration = Duration::from_millis(25);

/// How a try ended, in the terms `retry_on` speaks.
pub enum Outcome<'a> {
    /// A response head arrived.
    Response(StatusCode, &'a HeaderMap),
    /// The connection could not be made.
    ConnectFailure,
    /// The upstream reset or closed before a response head.
    Reset,
    /// HTTP/2 REFUSED_STREAM: the upstream never processed the request.
    RefusedStream,
    /// `per_try_timeout` passed before a response head.
    PerTryTimeout,
    /// A circuit breaker refused the try; nothing was sent.
    Overflow,
}

pub fn retriable(policy: &RetryPolicy, outcome: &Outcome<'_>) -> bool {
    policy
        .retry_on
        .iter()
        .any(|on| matches(*on, policy, outcome))
}

fn matches(on: RetryOn, policy: &RetryPolicy, outcome: &Outcome<'_>) -> bool {
    use Outcome::*;
    match (on, outcome) {
        // A breaker's refusal is the proxy protecting the upstream: trying again defeats it.
        (_, Overflow) => false,
        // "5xx" also covers every way of getting no response at all.
        (RetryOn::FiveXx, Response(s, _)) => s.is_server_error(),
        (RetryOn::FiveXx, _) => true,
        (RetryOn::GatewayError, Response(s, _)) => matches!(s.as_u16(), 502..=504),
        (RetryOn::GatewayError, PerTryTimeout | ConnectFailure) => true,
        (RetryOn::Reset, Reset | RefusedStream) => true,
        (RetryOn::ConnectFailure, ConnectFailure) => true,
        (RetryOn::RefusedStream, RefusedStream) => true,
        (RetryOn::RetriableStatusCodes, Response(s, _)) => {
            policy.retriable_status_codes.contains(&s.as_u16())
        }
        (RetryOn::Retriable4xx, Response(s, _)) => s.as_u16() == 409,
        (grpc, Response(_, headers)) => grpc_status(headers).is_some_and(|code| match grpc {
            RetryOn::Cancelled => code == 1,
            RetryOn::DeadlineExceeded => code == 4,
            RetryOn::ResourceExhausted => code == 8,
            RetryOn::Internal => code == 13,
            RetryOn::Unavailable => code == 14,
            _ => false,
        }),
        _ => false,
    }
}

/// A gRPC status in the response head (a trailers-only response carries it there).
fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Exponential backoff with full jitter: a random wait up to 25ms x 2^retry, capped at 250ms.
pub fn backoff(retry: u32) -> Duration {
    let cap = BASE_INTERVAL * 10;
    let ceiling = BASE_INTERVAL.saturating_mul(1u32 << retry.min(8)).min(cap);
    ceiling.mul_f64(fastrand::f64())
}

/// The downstream request body, shared by the tries of one request.
///
/// Each try streams the body upstream as it arrives (a bidirectional gRPC call must not wait
/// for its end), while the frames are also kept, up to the replay limit, so that another try can
/// send them again before pulling more from the client. Tries run one at a time: the source is
/// moved into a try's body and comes back through a channel when the upstream client drops that body.
pub struct Source {
    downstream: Body,
    kept: Vec<Frame<Bytes>>,
    kept_len: usize,
    /// More than the replay limit went by: no further try can be made.
    overflowed: bool,
    /// The downstream body has ended (everything is in `kept`).
    ended: bool,
}

impl Source {
    pub fn new(downstream: Body) -> Box<Self> {
        Box::new(Source {
            downstream,
            kept: Vec::new(),
            kept_len: 0,
            overflowed: false,
            ended: false,
        })
    }

    /// Whether another try can send the whole body again.
    pub fn replayable(&self) -> bool {
        !self.overflowed
    }

    /// The body for one try, and where the source comes back once that body is dropped.
    pub fn attempt(self: Box<Self>) -> (Body, oneshot::Receiver<Box<Source>>) {
        let (tx, rx) = oneshot::channel();
        let body = Attempt {
            source: Some(self),
            replayed: 0,
            back: Some(tx),
        };
        (body.boxed(), rx)
    }
}

struct Attempt {
    source: Option<Box<Source>>,
    /// Frames of `kept` already sent by this try.
    replayed: usize,
    back: Option<oneshot::Sender<Box<Source>>>,
}

impl HttpBody for Attempt {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(src) = this.source.as_mut() else {
            return Poll::Ready(None);
        };
        if this.replayed < src.kept.len() {
            let frame = clone_frame(&src.kept[this.replayed]);
            this.replayed += 1;
            return Poll::Ready(Some(Ok(frame)));
        }
        if src.ended {
            return Poll::Ready(None);
        }
        let frame = ready!(Pin::new(&mut src.downstream).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                let len = f.data_ref().map_or(0, |d| d.len());
                if !src.overflowed && src.kept_len + len <= REPLAY_BUFFER_LIMIT {
                    src.kept.push(clone_frame(f));
                    src.kept_len += len;
                    this.replayed += 1;
                } else {
                    // Too big to send again: stop keeping, free what was kept.
                    src.overflowed = true;
                    src.kept = Vec::new();
                    this.replayed = 0;
                }
            }
            Some(Err(_)) => src.overflowed = true,
            None => src.ended = true,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.source
            .as_ref()
            .is_none_or(|s| s.ended && self.replayed >= s.kept.len())
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if let (Some(source), Some(back)) = (self.source.take(), self.back.take()) {
            let _ = back.send(source);
        }
    }
}

fn clone_frame(f: &Frame<Bytes>) -> Frame<Bytes> {
    match (f.data_ref(), f.trailers_ref()) {
        (Some(d), _) => Frame::data(d.clone()),
        (None, Some(t)) => Frame::trailers(t.clone()),
        (None, None) => Frame::data(Bytes::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(on: &[RetryOn]) -> RetryPolicy {
        RetryPolicy {
            retry_on: on.to_vec(),
            num_retries: 2,
            per_try_timeout: None,
            retriable_status_codes: vec![418],
        }
    }

    #[test]
    fn conditions() {
        let h = HeaderMap::new();
        let resp = |code: u16| Outcome::Response(StatusCode::from_u16(code).unwrap(), &h);
        let p = policy(&[RetryOn::FiveXx]);
        assert!(retriable(&p, &resp(500)));
        assert!(retriable(&p, &Outcome::Reset));
        assert!(!retriable(&p, &resp(404)));
        let p = policy(&[RetryOn::GatewayError]);
        assert!(retriable(&p, &resp(503)) && !retriable(&p, &resp(500)));
        let p = policy(&[RetryOn::ConnectFailure]);
        assert!(retriable(&p, &Outcome::ConnectFailure) && !retriable(&p, &Outcome::Reset));
        let p = policy(&[RetryOn::RetriableStatusCodes]);
        assert!(retriable(&p, &resp(418)) && !retriable(&p, &resp(503)));
        let mut g = HeaderMap::new();
        g.insert("grpc-status", "14".parse().unwrap());
        let p = policy(&[RetryOn::Unavailable]);
        assert!(retriable(&p, &Outcome::Response(StatusCode::OK, &g)));
        assert!(!retriable(
            &policy(&[RetryOn::Cancelled]),
            &Outcome::Response(StatusCode::OK, &g)
        ));
    }

    #[test]
    fn backoff_is_bounded() {
        for retry in 0..40 {
            assert!(backoff(retry) <= BASE_INTERVAL * 10);
        }
    }
}
