//! Our HTTP/1.1 server: one task per client connection reads each request head, hands the
//! request to the proxy, and writes the response, with no task or channel in between.
//!
//! hyper's server did the same job with more machinery than a proxy needs (a dispatcher
//! polling the service, a channel per request body, its own buffering of every write), and it
//! answered malformed requests itself, without a body saying why. Here:
//! - heads are parsed with `httparse` and framed strictly ([`request`]); a refused head gets
//!   a 400, 414, 431 or 501 naming the listener and the cause, then the connection closes;
//! - the request body is read straight off the connection when the proxy asks for it
//!   ([`conn::RequestBody`]), answering `Expect: 100-continue` at that moment;
//! - the response head and the first body bytes leave in one vectored write when the body is
//!   ready ([`response`] and `h1::outgoing`);
//! - requests are served one after another (pipelined requests wait in the read buffer), and
//!   while the proxy waits on the upstream the connection is watched: a client that closes
//!   cancels its request (Envoy does the same);
//! - `request_headers_timeout` bounds each head, idle keep-alive time included, and the route
//!   timeouts bound each exchange, with two timers per connection (`http_proxy::timer`) that
//!   are re-armed only when they fire early.

mod conn;
mod date;
pub mod request;
mod response;

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode, Version};
use http_body_util::BodyExt;
use sluice_net::Stream;
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

pub use self::conn::BodyError as ClientBodyError;
use self::conn::{
    begin_body, skip_buffered, Continue, Remaining, RequestBody, Shared, Writer, HEAD_CHUNK,
};
use self::request::{parse_request, HeadLimits, Parsed, Refusal, RequestHead};
use self::response::{encode_response, response_framing};
use super::outgoing::{Outgoing, SendError};
use super::Framing;
use crate::http_proxy::body::empty;
use crate::http_proxy::local_reply::headers_too_large;
use crate::http_proxy::recycle;
use crate::http_proxy::service::Proxy;
use crate::http_proxy::timer::LazyTimer;

/// A body nobody read is skipped, so the connection can serve another request, if what is
/// left of it arrives within these bounds; else the connection closes.
const SKIP_LIMIT: usize = 256 * 1024;
const SKIP_TIME: Duration = Duration::from_secs(1);
/// After a refusal, what the client still sends is read and dropped for this long (bounded
/// by [`SKIP_LIMIT`]) so that closing does not reset the connection under our answer.
const LINGER_TIME: Duration = Duration::from_secs(1);

/// What a listener's HTTP/1 connections share.
pub struct Settings {
    pub listener: Arc<str>,
    pub limits: HeadLimits,
    /// `max_request_headers_kb` as configured, for the 431's body.
    pub max_request_headers_kb: u32,
    pub headers_timeout: Option<Duration>,
    /// The connection is TLS: responses are flushed (see `Outgoing::flushing`).
    pub tls: bool,
}

/// The client connection once a `101 Switching Protocols` has gone out, with the bytes the
/// client already sent on the new protocol. Handed to the proxy with an upgrade request.
pub struct OnUpgrade(oneshot::Receiver<(Stream, BytesMut)>);

impl OnUpgrade {
    /// `None` when the 101 could not be written (the client went away).
    pub async fn wait(self) -> Option<(Stream, BytesMut)> {
        self.0.await.ok()
    }
}

/// Serves one client connection until it closes, fails, or drains. `early` holds the bytes
/// protocol detection already read.
pub async fn serve(
    io: Stream,
    early: &[u8],
    proxy: Arc<Proxy>,
    client: Option<SocketAddr>,
    settings: &Settings,
    drain: &CancellationToken,
) {
    let shared = Shared::new(io, BytesMut::from(early));
    let mut fields = Vec::new();
    let mut wbuf = BytesMut::new();
    let mut drained = DrainWatch {
        token: drain,
        wait: pin!(drain.cancelled()),
        registered: false,
    };
    let mut timer = HeadTimer::new(settings.headers_timeout);
    // The route timeouts of the connection's requests, one after another.
    let mut route_timer = LazyTimer::default();
    loop {
        let head = match read_head(&shared, settings, &mut fields, &mut timer, &mut drained).await {
            HeadRead::Head(head) => head,
            HeadRead::Closed => return close(&shared, false).await,
            HeadRead::Refused(why) => {
                debug!(listener = %settings.listener, %why, "request refused");
                proxy.refused(client, why.status(), why.details(), true);
                let reply = refusal(&why, settings);
                let _ = Writer(&shared).write_all(&reply).await;
                return close(&shared, true).await;
            }
            HeadRead::TimedOut => {
                proxy.refused(
                    client,
                    StatusCode::REQUEST_TIMEOUT,
                    "request_header_timeout",
                    false,
                );
                let reply = timed_out(settings);
                let _ = Writer(&shared).write_all(&reply).await;
                return close(&shared, true).await;
            }
        };
        let RequestHead {
            request,
            framing,
            keep_alive,
            upgrade: wants_upgrade,
            trailers: takes_trailers,
            ..
        } = head;
        let version = request.version();
        let head_request = request.method() == Method::HEAD;
        let body = match framing {
            Framing::Empty => empty(),
            _ => RequestBody::new(shared.clone(), framing).boxed(),
        };
        let req = request.map(|()| body);
        let (upgrade_to, on_upgrade) = match wants_upgrade {
            true => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(OnUpgrade(rx)))
            }
            false => (None, None),
        };

        // The proxy's answer, unless the client leaves first.
        let response = {
            let mut service = pin!(proxy
                .clone()
                .handle(req, client, on_upgrade, &mut route_timer));
            let answered = poll_fn(|cx| {
                if let Poll::Ready(resp) = service.as_mut().poll(cx) {
                    return Poll::Ready(Some(resp));
                }
                if client_gone(&shared, settings.limits.bytes, cx) {
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            match answered {
                Some(resp) => resp,
                None => {
                    debug!(listener = %settings.listener, "client closed before the response; request cancelled");
                    return;
                }
            }
        };

        let status = response.status();
        let switching = upgrade_to.is_some() && status == StatusCode::SWITCHING_PROTOCOLS;
        let (parts, body) = response.into_parts();
        let framing = response_framing(status, head_request, &body, version);
        let mut keep = keep_alive
            && !drain.is_cancelled()
            && framing != Framing::UntilClose
            && status != StatusCode::SWITCHING_PROTOCOLS;
        match shared.lock() {
            Ok(mut c) => {
                // Answered before the body was asked for: the client may send it or not, so
                // where the next request starts is unknown.
                if c.continue_ == Continue::Owed {
                    c.continue_ = Continue::Forfeited;
                    keep &= matches!(c.body, Remaining::Done);
                }
            }
            Err(_) => return,
        }
        encode_response(
            status,
            &parts.headers,
            framing,
            &body,
            keep,
            version,
            &mut wbuf,
        );
        recycle::give_back(parts.headers);
        let mut out =
            Outgoing::new(wbuf.split().freeze(), framing, Some(body)).flushing(settings.tls);
        if !takes_trailers {
            out = out.without_trailers();
        }
        match poll_fn(|cx| out.poll_send(&mut Writer(&shared), cx)).await {
            Ok(()) => {}
            Err(SendError::Io(e)) => {
                debug!(listener = %settings.listener, error = %e, "client connection failed");
                return;
            }
            // The response cannot be completed: closing mid-body tells the client so.
            Err(SendError::Body(e)) => {
                debug!(listener = %settings.listener, error = %e, "response body failed; closing");
                return;
            }
        }
        drop(out);
        if switching {
            if let (Some(conn), Some(to)) = (shared.into_conn(), upgrade_to) {
                let _ = to.send((conn.io, conn.rbuf));
            }
            return;
        }
        if !keep {
            return close(&shared, false).await;
        }
        if !finish_body(&shared).await {
            return close(&shared, true).await;
        }
    }
}

#[allow(clippy::large_enum_variant)] // one per request, moved once: boxing would allocate
enum HeadRead {
    Head(RequestHead),
    /// The client closed (or failed, or we drain) between requests.
    Closed,
    Refused(Refusal),
    /// `request_headers_timeout` passed with part of a head in.
    TimedOut,
}

/// Waits for the next request head and starts its body.
async fn read_head(
    shared: &Shared,
    settings: &Settings,
    fields: &mut Vec<(http::HeaderName, std::ops::Range<usize>)>,
    timer: &mut HeadTimer,
    drained: &mut DrainWatch<'_, impl Future<Output = ()>>,
) -> HeadRead {
    timer.start();
    // Bytes of the buffer known not to end a head: a head is only re-parsed once new bytes
    // could complete it, so a client sending a head byte by byte costs no quadratic work.
    let mut scanned = 0;
    poll_fn(|cx| {
        let partial = {
            let Ok(mut conn) = shared.lock() else {
                return Poll::Ready(HeadRead::Closed);
            };
            conn.shrink_idle();
            loop {
                let len = conn.rbuf.len();
                if len > 0
                    && (scanned == 0
                        || may_end_head(&conn.rbuf, scanned)
                        || len > settings.limits.bytes)
                {
                    match parse_request(&mut conn.rbuf, settings.limits, fields) {
                        Ok(Parsed::Complete(head)) => {
                            begin_body(&mut conn, head.framing, head.expect_continue);
                            return Poll::Ready(HeadRead::Head(head));
                        }
                        Ok(Parsed::Partial) => scanned = len,
                        Err(why) => return Poll::Ready(HeadRead::Refused(why)),
                    }
                }
                match conn.poll_read_more(HEAD_CHUNK, cx) {
                    Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(HeadRead::Closed),
                    Poll::Ready(Ok(_)) => {}
                    Poll::Pending => break !conn.rbuf.is_empty(),
                }
            }
        };
        if drained.started(cx) {
            return Poll::Ready(HeadRead::Closed);
        }
        if timer.poll_expired(cx) {
            return Poll::Ready(if partial {
                HeadRead::TimedOut
            } else {
                HeadRead::Closed
            });
        }
        Poll::Pending
    })
    .await
}

/// The drain signal as the connection task sees it. The wait is polled once: the waiter it
/// registers keeps this task's waker until the drain starts, so later checks are an atomic
/// load (polling it again took the token's lock on every request).
struct DrainWatch<'a, F> {
    token: &'a CancellationToken,
    wait: Pin<&'a mut F>,
    registered: bool,
}

impl<F: Future<Output = ()>> DrainWatch<'_, F> {
    /// Whether the drain has started; if not, the task is woken when it does.
    fn started(&mut self, cx: &mut Context<'_>) -> bool {
        if self.registered {
            return self.token.is_cancelled();
        }
        self.registered = true;
        self.wait.as_mut().poll(cx).is_ready()
    }
}

/// Whether the bytes from `scanned` on (with the three before) hold an empty line.
fn may_end_head(buf: &[u8], scanned: usize) -> bool {
    let tail = buf.get(scanned.saturating_sub(3)..).unwrap_or_default();
    tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
}

/// While the proxy works on a request whose body is all in, reads ahead (pipelined bytes are
/// kept, up to the head limit) to notice a client that closed.
fn client_gone(shared: &Shared, limit: usize, cx: &mut Context<'_>) -> bool {
    let Ok(mut conn) = shared.lock() else {
        return true;
    };
    if !matches!(conn.body, Remaining::Done) {
        return false;
    }
    while conn.rbuf.len() <= limit {
        // Usually nothing comes: asking for a wake-up is cheaper than a read that finds nothing.
        match conn.io.poll_read_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return true,
            Poll::Pending => return false,
        }
        match conn.poll_read_more(HEAD_CHUNK, cx) {
            Poll::Ready(Ok(0) | Err(_)) => return true,
            Poll::Ready(Ok(_)) => {}
            Poll::Pending => return false,
        }
    }
    false
}

/// Skips what is left of a request body the proxy did not read, within bounds; true when the
/// connection can carry another request.
async fn finish_body(shared: &Shared) -> bool {
    let mut seen = 0;
    let skip = poll_fn(|cx| {
        let Ok(mut conn) = shared.lock() else {
            return Poll::Ready(false);
        };
        loop {
            if skip_buffered(&mut conn) {
                return Poll::Ready(true);
            }
            if matches!(conn.body, Remaining::Broken) || seen > SKIP_LIMIT {
                return Poll::Ready(false);
            }
            match conn.poll_read_more(HEAD_CHUNK, cx) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(false),
                Poll::Ready(Ok(n)) => seen += n,
                Poll::Pending => return Poll::Pending,
            }
        }
    });
    tokio::time::timeout(SKIP_TIME, skip).await.unwrap_or(false)
}

/// Closes the connection: our side first (FIN); with `linger`, what the client still sends
/// is read and dropped for a moment, so that the close does not turn into a reset that could
/// destroy our last answer before the client reads it.
async fn close(shared: &Shared, linger: bool) {
    let _ = Writer(shared).shutdown().await;
    if !linger {
        return;
    }
    let drop_input = async {
        let mut scratch = [0u8; 4096];
        let mut total = 0;
        while total < SKIP_LIMIT {
            let read = poll_fn(|cx| {
                let Ok(mut conn) = shared.lock() else {
                    return Poll::Ready(0);
                };
                conn.rbuf.clear();
                let mut buf = tokio::io::ReadBuf::new(&mut scratch);
                match Pin::new(&mut conn.io).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) => Poll::Ready(buf.filled().len()),
                    Poll::Ready(Err(_)) => Poll::Ready(0),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            if read == 0 {
                break;
            }
            total += read;
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drop_input).await;
}

/// The answer to a refused head: the status, and a body naming the listener and the cause.
fn refusal(why: &Refusal, settings: &Settings) -> Bytes {
    let listener = &settings.listener;
    let body = match why {
        Refusal::TooLarge => headers_too_large(
            listener,
            settings.max_request_headers_kb,
            settings.limits.fields,
        ),
        Refusal::TargetTooLong => {
            format!("URI too long: listener \"{listener}\" refused the request line ({why})\n")
        }
        Refusal::Malformed(cause) => format!(
            "bad request: listener \"{listener}\" could not parse the request line or headers: {cause}\n"
        ),
        Refusal::UnsupportedCoding(_) => {
            format!("not implemented: listener \"{listener}\" refused the request: {why}\n")
        }
    };
    local(why.status(), &body)
}

fn timed_out(settings: &Settings) -> Bytes {
    let body = format!(
        "request timeout: listener \"{}\" did not receive a whole request head within {:?} (request_headers_timeout)\n",
        settings.listener,
        settings.headers_timeout.unwrap_or_default()
    );
    local(StatusCode::REQUEST_TIMEOUT, &body)
}

/// A complete `text/plain` response that closes the connection.
fn local(status: StatusCode, body: &str) -> Bytes {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let mut out = BytesMut::new();
    let framing = Framing::Length(body.len() as u64);
    encode_response(
        status,
        &headers,
        framing,
        &empty(),
        false,
        Version::HTTP_11,
        &mut out,
    );
    out.extend_from_slice(body.as_bytes());
    out.freeze()
}

/// `request_headers_timeout`: each head moves the deadline of the connection's one
/// [`LazyTimer`], so a keep-alive connection pays neither a timer registration nor a timer
/// poll per request.
struct HeadTimer {
    timeout: Option<Duration>,
    deadline: Instant,
    timer: LazyTimer,
}

impl HeadTimer {
    fn new(timeout: Option<Duration>) -> Self {
        HeadTimer {
            timeout,
            deadline: Instant::now(),
            timer: LazyTimer::default(),
        }
    }

    fn start(&mut self) {
        if let Some(t) = self.timeout {
            self.deadline = Instant::now() + t;
        }
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.timeout.is_some() && self.timer.poll_expired(self.deadline, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::may_end_head;

    #[test]
    fn head_end_detection() {
        assert!(may_end_head(b"GET / HTTP/1.1\r\n\r\n", 0));
        assert!(may_end_head(b"GET / HTTP/1.1\r\n\r\n", 15));
        assert!(may_end_head(b"GET / HTTP/1.1\n\n", 14));
        assert!(!may_end_head(b"GET / HTTP/1.1\r\nHost: x\r\n", 0));
        assert!(!may_end_head(b"GET / HTTP/1.1\r\nHost: x\r\nX: y", 20));
    }
}
