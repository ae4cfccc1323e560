//! When to try a request again (Envoy's `retry_on` semantics), how long to wait before the next
//! try, and keeping the request body so it can be sent again.
//!
//! A retry is decided on the response head only, before anything reaches the client, so a
//! response that has started streaming downstream is never retried.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use sluice_config::route::{RetryOn, RetryPolicy};

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

/// The request body, read ahead up to the replay limit.
pub enum Replay {
    /// The whole body, small enough to send again on every try.
    Buffered(Bytes),
    /// Too large to keep: what was read, followed by the rest, good for one try only.
    Once(Body),
}

pub async fn read_for_replay(mut body: Body) -> Result<Replay, BoxError> {
    let mut chunks = VecDeque::new();
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers on a request are not replayed
        };
        len += data.len();
        chunks.push_back(data);
        if len > REPLAY_BUFFER_LIMIT {
            return Ok(Replay::Once(
                Prefixed {
                    head: chunks,
                    rest: body,
                }
                .boxed(),
            ));
        }
    }
    let mut all = Vec::with_capacity(len);
    for c in chunks {
        all.extend_from_slice(&c);
    }
    Ok(Replay::Buffered(Bytes::from(all)))
}

/// Bytes already read, then the rest of the stream.
struct Prefixed {
    head: VecDeque<Bytes>,
    rest: Body,
}

impl HttpBody for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(data) = self.head.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn size_hint(&self) -> SizeHint {
        let head: u64 = self.head.iter().map(|b| b.len() as u64).sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(head + rest.lower());
        if let Some(upper) = rest.upper() {
            hint.set_upper(head + upper);
        }
        hint
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
